// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"
#include "drivers/bisect_run.h"

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
    o.repeat = repeat;
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
  o.differs_if_any = false;
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
