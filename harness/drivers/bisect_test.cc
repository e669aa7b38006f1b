// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"
#include "drivers/bisect.h"
#include "drivers/git_bisect_run.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace probegate::drivers {
namespace {

namespace fs = std::filesystem;
using verdict::VerdictKind;

// A fake kernel history: runs[label] lists the verdicts its boots give, in
// order (the last repeats); a label missing from it is interrupted.
struct FakeBoots {
  std::map<std::string, std::vector<VerdictKind>> runs;
  std::map<std::string, int> calls;
  CaseRunner runner() {
    return
        [this](const spec::RunSpec& spec, const fs::path& dir) -> core::Result<report::RunResult> {
          auto it = runs.find(spec.kernel);
          if (it == runs.end())
            return std::unexpected(core::Error{core::ErrorKind::interrupted, "interrupted"});
          const int n = calls[spec.kernel]++;
          report::RunResult r;
          r.spec = spec;
          r.dir = dir;
          r.verdict.kind = it->second.at(std::min<size_t>(n, it->second.size() - 1));
          if (r.verdict.kind == VerdictKind::error)
            r.error = "QEMU died";
          return r;
        };
  }
};

class BisectRun : public ::testing::Test {
protected:
  void SetUp() override {
    auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-bisect-");
    ASSERT_TRUE(tmp);
    m_tmp.emplace(std::move(*tmp));
  }
  BisectOptions options(std::vector<std::string> labels, int repeat = 1) {
    BisectOptions o;
    o.labels = std::move(labels);
    o.policy.repeat = repeat;
    o.dir = m_tmp->path();
    o.spec_for = [labels = o.labels](size_t i) {
      spec::RunSpec s;
      s.kernel = labels[i];
      return s;
    };
    return o;
  }
  std::optional<core::TempDir> m_tmp;
};

TEST_F(BisectRun, InfrastructureErrorsAreRetriedOnceThenUntestable) {
  FakeBoots boots;
  boots.runs = {{"a", {VerdictKind::pass}},
                {"b", {VerdictKind::error, VerdictKind::pass}}, // retried: a pass
                {"c", {VerdictKind::error}},                    // twice: untestable
                {"d", {VerdictKind::fail}},
                {"e", {VerdictKind::fail}}};
  auto answer = run_bisect(options({"a", "b", "c", "d", "e"}), boots.runner());
  ASSERT_TRUE(answer);
  // c could be the first failure: the answer is the range b..d, c never blamed.
  EXPECT_EQ(answer->kind, bisect::Answer::Kind::ambiguous);
  EXPECT_EQ(answer->first, 3u);
  EXPECT_EQ(answer->last_same, 1u);
  EXPECT_EQ(boots.calls["c"], 2);
  EXPECT_EQ(answer->skipped, (std::vector<size_t>{2}));
}

TEST_F(BisectRun, RepeatsFollowTheRule) {
  // b differs in one of three repeats.
  FakeBoots any;
  any.runs = {{"a", {VerdictKind::pass}},
              {"b", {VerdictKind::pass, VerdictKind::fail, VerdictKind::pass}},
              {"c", {VerdictKind::fail}}};
  auto o = options({"a", "b", "c"}, 3);
  auto by_any = run_bisect(o, any.runner());
  ASSERT_TRUE(by_any);
  EXPECT_EQ(by_any->first, 1u) << "--bad-if any: one differing repeat is enough";
  EXPECT_FALSE(by_any->certain) << "disagreeing repeats make the answer uncertain";
  FakeBoots majority = any;
  majority.calls.clear();
  o.policy.differs_if_any = false;
  auto by_majority = run_bisect(o, majority.runner());
  ASSERT_TRUE(by_majority);
  EXPECT_EQ(by_majority->first, 2u) << "--bad-if majority: 1 of 3 is not enough";
}

TEST_F(BisectRun, AnInterruptedBisectionResumesFromItsLog) {
  std::vector<std::string> labels;
  FakeBoots boots;
  for (int i = 0; i < 16; ++i) {
    labels.push_back("k" + std::to_string(i));
    boots.runs[labels.back()] = {i < 11 ? VerdictKind::pass : VerdictKind::fail};
  }
  boots.runs.erase("k11"); // the third step boots k11... and is interrupted
  auto first = run_bisect(options(labels), boots.runner());
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().kind, core::ErrorKind::interrupted);
  auto known = load_bisect_log(m_tmp->path() / "bisect.json", labels);
  ASSERT_TRUE(known) << known.error().message;
  EXPECT_GE(known->size(), 2u);

  FakeBoots again;
  for (int i = 0; i < 16; ++i)
    again.runs[labels[i]] = {i < 11 ? VerdictKind::pass : VerdictKind::fail};
  auto o = options(labels);
  o.known = *known;
  auto resumed = run_bisect(o, again.runner());
  ASSERT_TRUE(resumed);
  EXPECT_EQ(resumed->first, 11u);
  for (const auto& [i, step] : *known)
    EXPECT_EQ(again.calls.count(labels[i]), 0u) << labels[i] << " ran again";
  const auto log = nlohmann::json::parse(*core::read_file(m_tmp->path() / "bisect.json"));
  EXPECT_EQ(log.at("answer").at("first"), "k11");
  EXPECT_EQ(log.at("answer").at("kind"), "found");
}

TEST_F(BisectRun, ALogOfOtherItemsIsRefused) {
  ASSERT_TRUE(core::write_file_atomic(m_tmp->path() / "bisect.json",
                                      bisect_log_json({"x", "y"}, {}, nullptr)));
  auto known = load_bisect_log(m_tmp->path() / "bisect.json", {"a", "b"});
  ASSERT_FALSE(known);
  EXPECT_EQ(known.error().kind, core::ErrorKind::usage);
  EXPECT_NE(known.error().message.find("other items"), std::string::npos);
  auto missing = load_bisect_log(m_tmp->path() / "none.json", {"a", "b"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, core::ErrorKind::usage);
}

// A fake kernel whose loader is killed before any probe ends below a udev
// timeout of 7 s, and lets every device bind from 7 s on; it judges as the
// real one does: only the expectations given can fail.
CaseRunner threshold_at_7(std::vector<int>& booted) {
  return
      [&booted](const spec::RunSpec& spec, const fs::path& dir) -> core::Result<report::RunResult> {
        booted.push_back(*spec.udev_timeout_s);
        report::RunResult r;
        r.spec = spec;
        r.dir = dir;
        r.outcome.devices_bound = *spec.udev_timeout_s >= 7 ? spec.devices : 0;
        r.outcome.udev_worker_killed = r.outcome.devices_bound == 0;
        const bool met = !spec.expect.bound || *spec.expect.bound == r.outcome.devices_bound;
        r.verdict.kind = met ? VerdictKind::pass : VerdictKind::fail;
        return r;
      };
}

TEST_F(BisectRun, AParamWithoutExpectationsFindsWhereTheOutcomeChanges) {
  auto range = parse_param("udev-timeout=1..12");
  ASSERT_TRUE(range) << range.error().message;
  EXPECT_EQ(range->key, "udev_timeout");
  spec::RunSpec base;
  base.devices = 2;
  base.probe_delay_ms = 1500;
  auto items = param_items(base, *range, /*bound_given=*/false);
  ASSERT_TRUE(items) << items.error().message;
  EXPECT_NE(items->rule.find("expects every device to bind"), std::string::npos) << items->rule;
  BisectOptions o = options(items->labels);
  o.spec_for = [&](size_t i) { return items->specs[i]; };
  std::vector<int> booted;
  auto answer = run_bisect(o, threshold_at_7(booted));
  ASSERT_TRUE(answer);
  ASSERT_EQ(answer->kind, bisect::Answer::Kind::found) << "0/2 bound at 1, 2/2 at 12";
  EXPECT_EQ(items->labels[answer->first], "udev_timeout=7");
  EXPECT_EQ(items->labels[answer->last_same], "udev_timeout=6");
  EXPECT_LE(booted.size(), 6u) << "about log2(12) + 2 boots";
}

TEST_F(BisectRun, AParamWithAnExpectedBoundKeepsIt) {
  spec::RunSpec base;
  base.devices = 2;
  base.expect.bound = 0;
  auto items = param_items(base, *parse_param("udev_timeout=1..4"), /*bound_given=*/true);
  ASSERT_TRUE(items);
  for (const auto& s : items->specs)
    EXPECT_EQ(s.expect.bound, 0);
  EXPECT_EQ(items->labels.back(), "udev_timeout=4");
  for (const char* bad : {"udev-timeout", "foo=1..2", "udev-timeout=5..1", "devices=1..40"}) {
    const auto error = [&] {
      const auto range = parse_param(bad);
      if (!range)
        return range.error();
      auto refused = param_items(base, *range, false);
      return refused ? core::Error{} : refused.error();
    }();
    EXPECT_EQ(error.kind, core::ErrorKind::usage) << bad;
    EXPECT_FALSE(error.message.empty()) << bad;
  }
}

TEST(BisectExit, GitBisectRunCodes) {
  using V = VerdictKind;
  EXPECT_EQ(git_bisect_exit_code({V::pass}, true), 0);
  EXPECT_EQ(git_bisect_exit_code({V::fail}, true), 1);
  EXPECT_EQ(git_bisect_exit_code({V::crash}, true), 1);
  EXPECT_EQ(git_bisect_exit_code({V::skip}, true), 125) << "a missing knob cannot be tested";
  EXPECT_EQ(git_bisect_exit_code({V::error}, true), 125) << "infrastructure is never bad";
  EXPECT_EQ(git_bisect_exit_code({}, true), 125);
  EXPECT_EQ(git_bisect_exit_code({V::pass, V::fail, V::pass}, true), 1);
  EXPECT_EQ(git_bisect_exit_code({V::pass, V::fail, V::pass}, false), 0);
  EXPECT_EQ(git_bisect_exit_code({V::fail, V::fail, V::pass}, false), 1);
  EXPECT_EQ(git_bisect_exit_code({V::pass, V::error}, false), 125);
  for (int code : {k_git_good, k_git_bad, k_git_skip})
    EXPECT_LT(code, 128);
  EXPECT_GE(k_git_abort, 128) << "bad usage must abort, not blame a commit";
  EXPECT_NE(k_git_abort, 2);
}

TEST(BisectExit, EveryOutcomeHasItsCode) {
  bisect::Answer a;
  a.kind = bisect::Answer::Kind::found;
  EXPECT_EQ(exit_code(a), 0);
  a.kind = bisect::Answer::Kind::ambiguous;
  EXPECT_EQ(exit_code(a), 0);
  a.kind = bisect::Answer::Kind::no_change;
  EXPECT_EQ(exit_code(a), 1);
  a.kind = bisect::Answer::Kind::first_untestable;
  EXPECT_EQ(exit_code(a), 3);
}

} // namespace
} // namespace probegate::drivers
