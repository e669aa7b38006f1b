// SPDX-License-Identifier: GPL-2.0-only
#include "core/progress.h"

#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace probegate::core {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(Progress, LiveOnlyOnATerminalOutsideCi) {
  EXPECT_TRUE(live_progress_wanted(true, nullptr));
  EXPECT_TRUE(live_progress_wanted(true, ""));
  EXPECT_TRUE(live_progress_wanted(true, "false"));
  EXPECT_TRUE(live_progress_wanted(true, "0"));
  EXPECT_FALSE(live_progress_wanted(true, "true")) << "GitLab and GitHub set CI=true";
  EXPECT_FALSE(live_progress_wanted(true, "1"));
  EXPECT_FALSE(live_progress_wanted(false, nullptr)) << "a log file or a pipe";
  EXPECT_FALSE(live_progress_wanted(false, "true"));
}

TEST(Progress, EtaIsWhatIsLeftAtTheMeanRate) {
  ProgressFigures f{
      .unit = ProgressUnit::bytes, .done = 25, .total = 100, .estimated = false, .elapsed_s = 5};
  ASSERT_TRUE(eta_s(f));
  EXPECT_DOUBLE_EQ(*eta_s(f), 15.0); // 5 a second, 75 left
  f.done = 100;
  EXPECT_DOUBLE_EQ(*eta_s(f), 0.0);
  f.done = 0;
  EXPECT_EQ(eta_s(f), std::nullopt) << "no rate before the first byte";
  f.done = 10;
  f.total.reset();
  EXPECT_EQ(eta_s(f), std::nullopt) << "no total, no ETA";
  f.total = 8;
  EXPECT_EQ(eta_s(f), std::nullopt) << "past an estimated total the guess was wrong";
  f.total = 20;
  f.elapsed_s = 0;
  EXPECT_EQ(eta_s(f), std::nullopt);
}

TEST(Progress, DurationsReadLikeAClock) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(7.4), "7s");
  EXPECT_EQ(format_duration(59.6), "1m00s");
  EXPECT_EQ(format_duration(65), "1m05s");
  EXPECT_EQ(format_duration(7380), "2h03m");
  EXPECT_EQ(format_duration(-3), "0s");
}

TEST(Progress, FiguresOfADownload) {
  ProgressFigures f{.unit = ProgressUnit::bytes,
                    .done = 89'600'000,
                    .total = 139'330'232,
                    .estimated = false,
                    .elapsed_s = 2};
  EXPECT_EQ(format_figures(f), "89.6/139.3 MB (64%), 44.8 MB/s, eta 1s");
  f.done = 512;
  f.total = 2'048;
  f.elapsed_s = 1;
  EXPECT_EQ(format_figures(f), "0.5/2.0 kB (25%), 512 B/s, eta 3s");
  f.total.reset();
  EXPECT_EQ(format_figures(f), "512 B, 512 B/s");
  f.done = 0;
  f.total = 1'000'000;
  EXPECT_EQ(format_figures(f), "0.0/1.0 MB (0%)");
}

TEST(Progress, FiguresOfABuildSayWhenTheTotalIsAGuess) {
  ProgressFigures f{
      .unit = ProgressUnit::steps, .done = 512, .total = 855, .estimated = true, .elapsed_s = 125};
  EXPECT_EQ(format_figures(f), "512/~855 steps (59%), 4.1/s, 2m05s, eta ~1m24s");
  f.estimated = false;
  EXPECT_EQ(format_figures(f), "512/855 steps (59%), 4.1/s, 2m05s, eta 1m24s");
  f.total.reset();
  EXPECT_EQ(format_figures(f), "512 steps, 4.1/s, 2m05s");
  f.done = 1;
  EXPECT_EQ(format_figures(f), "1 step, 0.0/s, 2m05s");
  f.done = 512;
  f.total = 500;
  f.estimated = true;
  EXPECT_EQ(format_figures(f), "512 steps (past the ~500 of the last build), 4.1/s, 2m05s");
}

TEST(Progress, ALineFitsTheTerminalShorteningWhatFirst) {
  EXPECT_EQ(progress_line("downloading 6.1.0-47-amd64", "1.0/2.0 MB (50%)", 80),
            "probegate: downloading 6.1.0-47-amd64: 1.0/2.0 MB (50%)");
  const auto cut = progress_line("downloading a-very-long-package-name", "1.0/2.0 MB (50%)", 50);
  EXPECT_EQ(cut, "probegate: downloading a-ver...: 1.0/2.0 MB (50%)");
  EXPECT_EQ(cut.size(), 49u);
  EXPECT_EQ(progress_line("x", "a figure far too wide for this", 20), "probegate: ...: a f");
}

// A live output on a clock the test moves, recording what it draws.
struct Recorder {
  Clock::time_point now{};
  std::vector<std::string> drawn;
  LiveOutput output(bool enabled) {
    return {.enabled = enabled,
            .draw = [this](std::string_view line) { drawn.emplace_back(line); },
            .now = [this] { return now; },
            .columns = [] { return 100; }};
  }
};

TEST(Progress, ALineIsRedrawnAFewTimesASecondAndClearedAtTheEnd) {
  Recorder r;
  const auto output = r.output(true);
  {
    ProgressLine line("downloading x", ProgressUnit::bytes, 4'000, false, output);
    EXPECT_TRUE(line.due());
    line.update(0);
    r.now += 100ms;
    EXPECT_FALSE(line.due());
    line.update(1'000); // too soon: not drawn
    r.now += 150ms;
    line.update(2'000);
    r.now += 10ms;
    line.update(3'000);
    EXPECT_EQ(line.figures().done, 3'000u);
  }
  ASSERT_EQ(r.drawn.size(), 3u);
  EXPECT_EQ(r.drawn[0], "probegate: downloading x: 0.0/4.0 kB (0%)");
  EXPECT_EQ(r.drawn[1], "probegate: downloading x: 2.0/4.0 kB (50%), 8.0 kB/s, eta 0s");
  EXPECT_EQ(r.drawn[2], "") << "the line is cleared when the job ends";
}

TEST(Progress, NothingIsDrawnWhenNotLive) {
  Recorder r;
  const auto output = r.output(false);
  {
    ProgressLine line("building", ProgressUnit::steps, std::nullopt, false, output);
    EXPECT_FALSE(line.live());
    EXPECT_FALSE(line.due());
    line.update(5);
    r.now += 1s;
    line.update(6);
  }
  EXPECT_TRUE(r.drawn.empty());
}

} // namespace
} // namespace probegate::core
