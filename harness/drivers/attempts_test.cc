// SPDX-License-Identifier: GPL-2.0-only
#include "drivers/attempts.h"

#include <gtest/gtest.h>

namespace probegate::drivers {
namespace {

namespace fs = std::filesystem;
using verdict::VerdictKind;

// Replays `replies` in order (the last repeats) and records every directory.
struct Replay {
  std::vector<core::Result<VerdictKind>> replies = {};
  std::vector<std::string> dirs = {};
  CaseRunner runner() {
    return
        [this](const spec::RunSpec& spec, const fs::path& dir) -> core::Result<report::RunResult> {
          const auto& reply = replies.at(std::min(dirs.size(), replies.size() - 1));
          dirs.push_back(dir.string());
          if (!reply)
            return std::unexpected(reply.error());
          report::RunResult r;
          r.spec = spec;
          r.dir = dir;
          r.verdict.kind = *reply;
          return r;
        };
  }
};

core::Result<VerdictKind> failing(core::ErrorKind kind) {
  return std::unexpected(core::Error{kind, "no"});
}

TEST(Attempts, RepeatsGoToTheirDirectoriesAndOneRunToTheItemsOwn) {
  Replay one{{VerdictKind::pass}};
  ASSERT_EQ(run_attempts({}, "item", {}, one.runner()).size(), 1u);
  EXPECT_EQ(one.dirs, (std::vector<std::string>{"item"}));
  Replay three{{VerdictKind::pass}};
  auto runs = run_attempts({}, "item", {.repeat = 3}, three.runner());
  EXPECT_EQ(runs.size(), 3u);
  EXPECT_EQ(three.dirs,
            (std::vector<std::string>{"item/repeat-1", "item/repeat-2", "item/repeat-3"}));
}

TEST(Attempts, AnInfrastructureErrorIsRetriedOnceBesideTheFailedAttempt) {
  Replay r{{VerdictKind::error, VerdictKind::pass}};
  auto runs = run_attempts({}, "item", {}, r.runner());
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].retried, 1);
  EXPECT_EQ(runs[0].result->verdict.kind, VerdictKind::pass);
  EXPECT_EQ(r.dirs, (std::vector<std::string>{"item", "item/retry-1"}));

  Replay twice{{VerdictKind::error}};
  runs = run_attempts({}, "item", {}, twice.runner());
  EXPECT_EQ(runs[0].result->verdict.kind, VerdictKind::error) << "once, not forever";
  EXPECT_EQ(twice.dirs.size(), 2u);

  Replay failed{{failing(core::ErrorKind::infra), VerdictKind::fail}};
  runs = run_attempts({}, "item", {}, failed.runner());
  EXPECT_EQ(runs[0].result->verdict.kind, VerdictKind::fail);

  Replay suite{{VerdictKind::error}}; // `run` retries only with --retries
  runs = run_attempts({}, "item", {.repeat = 2, .retries = 0}, suite.runner());
  EXPECT_EQ(suite.dirs, (std::vector<std::string>{"item/repeat-1", "item/repeat-2"}));
}

TEST(Attempts, WhatTheKernelDidAndBadInputAreNeverRetried) {
  for (auto reply :
       {core::Result<VerdictKind>(VerdictKind::fail), core::Result<VerdictKind>(VerdictKind::crash),
        core::Result<VerdictKind>(VerdictKind::skip), failing(core::ErrorKind::usage)}) {
    Replay r{{reply}};
    auto runs = run_attempts({}, "item", {}, r.runner());
    EXPECT_EQ(r.dirs.size(), 1u);
    EXPECT_FALSE(runs[0].testable() && reply && *reply == VerdictKind::skip);
  }
}

TEST(Attempts, AnInterruptOrTheCallerStopsTheRepeats) {
  Replay interrupted{{VerdictKind::pass, failing(core::ErrorKind::interrupted)}};
  auto runs = run_attempts({}, "item", {.repeat = 5}, interrupted.runner());
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_TRUE(runs[1].interrupted());
  EXPECT_EQ(interrupted.dirs.size(), 2u) << "an interrupt is not retried";

  Replay untestable{{VerdictKind::pass, VerdictKind::skip}};
  runs = run_attempts({}, "item", {.repeat = 5}, untestable.runner(),
                      [](const Attempt& a) { return a.testable(); });
  EXPECT_EQ(runs.size(), 2u);
}

TEST(Attempts, RepeatAndBadIfAreOnePolicy) {
  auto policy = attempt_policy(3, "majority");
  ASSERT_TRUE(policy);
  EXPECT_EQ(policy->repeat, 3);
  EXPECT_EQ(policy->retries, 1) << "an infrastructure error is retried once";
  EXPECT_FALSE(policy->differs_if_any);
  for (auto [repeat, bad_if] : {std::pair{0, "any"}, {1, "sometimes"}}) {
    auto bad = attempt_policy(repeat, bad_if);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().kind, core::ErrorKind::usage);
    EXPECT_NE(bad.error().message.find("--bad-if any or majority"), std::string::npos);
  }
}

TEST(Attempts, AnyOrMajorityDecides) {
  const AttemptPolicy any{.differs_if_any = true};
  const AttemptPolicy majority{.differs_if_any = false};
  EXPECT_FALSE(decides(any, 0, 3));
  EXPECT_TRUE(decides(any, 1, 3));
  EXPECT_FALSE(decides(majority, 1, 3));
  EXPECT_TRUE(decides(majority, 2, 3));
  EXPECT_FALSE(decides(majority, 1, 2)) << "a tie is not a majority";
}

} // namespace
} // namespace probegate::drivers
