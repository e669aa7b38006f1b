// SPDX-License-Identifier: GPL-2.0-only
#include "verdict/verdict.h"

#include <gtest/gtest.h>

namespace probegate::verdict {
namespace {

Outcome outcome(bool booted, int bound, bool killed) {
  Outcome o;
  o.booted = booted;
  o.devices_expected = 2;
  o.devices_bound = bound;
  o.udev_worker_killed = killed;
  return o;
}

TEST(Verdict, Table) {
  struct Row {
    Outcome o;
    Expectations e;
    VerdictKind kind;
  };
  const Row rows[] = {
      {outcome(true, 0, true), {0, Tri::yes, true, std::nullopt, std::nullopt}, VerdictKind::pass},
      {outcome(true, 2, false), {0, Tri::yes, true, std::nullopt, std::nullopt}, VerdictKind::fail},
      {outcome(true, 2, false), {2, Tri::no, true, std::nullopt, std::nullopt}, VerdictKind::pass},
      {outcome(true, 2, true), {2, Tri::no, true, std::nullopt, std::nullopt}, VerdictKind::fail},
      {outcome(true, 2, true), {2, Tri::any, true, std::nullopt, std::nullopt}, VerdictKind::pass},
      {outcome(false, 2, false),
       {2, Tri::any, true, std::nullopt, std::nullopt},
       VerdictKind::fail},
      {outcome(false, 0, false),
       {std::nullopt, Tri::any, false, std::nullopt, std::nullopt},
       VerdictKind::pass},
      {outcome(false, 0, false),
       {std::nullopt, Tri::any, std::nullopt, std::nullopt, std::nullopt},
       VerdictKind::pass},
  };
  for (size_t i = 0; i < std::size(rows); ++i)
    EXPECT_EQ(judge(rows[i].o, rows[i].e).kind, rows[i].kind) << "row " << i;
}

TEST(Verdict, EveryCheckSaysExpectedAndActual) {
  const auto v = judge(outcome(true, 1, true), {2, Tri::no, true, std::nullopt, std::nullopt});
  ASSERT_EQ(v.checks.size(), 3u);
  EXPECT_EQ(v.checks[1].name, "devices_bound");
  EXPECT_EQ(v.checks[1].expected, "2");
  EXPECT_EQ(v.checks[1].actual, "1");
  EXPECT_FALSE(v.checks[1].pass);
  EXPECT_EQ(v.checks[2].name, "udev_worker_killed");
  EXPECT_EQ(v.checks[2].actual, "yes");
}

TEST(Verdict, PanicIsACrashAndInfraIsAnError) {
  auto o = outcome(false, 0, false);
  o.panic = true;
  o.panic_line = "Kernel panic - not syncing: VFS";
  EXPECT_EQ(judge(o, {}).kind, VerdictKind::crash);
  o.infra_error = "Initramfs unpacking failed: junk in compressed archive";
  const auto v = judge(o, {});
  EXPECT_EQ(v.kind, VerdictKind::error);
  EXPECT_EQ(exit_code(v.kind), 3);
}

TEST(Verdict, ExitCodes) {
  EXPECT_EQ(exit_code(VerdictKind::pass), 0);
  EXPECT_EQ(exit_code(VerdictKind::skip), 0);
  EXPECT_EQ(exit_code(VerdictKind::fail), 1);
  EXPECT_EQ(exit_code(VerdictKind::crash), 1);
  EXPECT_EQ(exit_code(VerdictKind::flaky), 1);
  EXPECT_EQ(exit_code(VerdictKind::error), 3);
}

TEST(Verdict, KnobSupportDecidesBeforeTheBoot) {
  const Expectations unset{};
  Expectations want_skip{};
  want_skip.skip = true;
  Expectations want_knob{};
  want_knob.skip = false;
  // A case without a knob, or with one the kernel has, boots.
  EXPECT_FALSE(judge_knob("", false, unset));
  EXPECT_FALSE(judge_knob("module.async_probe", true, unset));
  EXPECT_FALSE(judge_knob("module.async_probe", true, want_knob));
  // A missing knob skips, with the knob named.
  auto skipped = judge_knob("module.async_probe", false, unset);
  ASSERT_TRUE(skipped);
  EXPECT_EQ(skipped->kind, VerdictKind::skip);
  EXPECT_NE(skipped->reason.find("module.async_probe"), std::string::npos);
  skipped = judge_knob("module.async_probe", false, want_skip);
  ASSERT_TRUE(skipped);
  EXPECT_EQ(skipped->kind, VerdictKind::skip);
  // The suite's expectation disagrees with the kernel: a failure, not a skip.
  auto lost = judge_knob("module.async_probe", false, want_knob);
  ASSERT_TRUE(lost);
  EXPECT_EQ(lost->kind, VerdictKind::fail);
  auto backported = judge_knob("module.async_probe", true, want_skip);
  ASSERT_TRUE(backported);
  EXPECT_EQ(backported->kind, VerdictKind::fail);
  ASSERT_EQ(backported->checks.size(), 1u);
  EXPECT_EQ(backported->checks[0].name, "knob_missing");
  EXPECT_FALSE(backported->checks[0].pass);
}

TEST(Verdict, AFloodedConsoleCannotPass) {
  Outcome o;
  o.booted = true;
  o.devices_expected = o.devices_bound = 2;
  Expectations e;
  e.boot = true;
  e.bound = 2;
  EXPECT_EQ(judge(o, e).kind, VerdictKind::pass);
  o.console_records_dropped = 12;
  const auto v = judge(o, e);
  EXPECT_EQ(v.kind, VerdictKind::fail);
  ASSERT_FALSE(v.checks.empty());
  EXPECT_EQ(v.checks.back().name, "console_records_dropped");
  EXPECT_EQ(v.checks.back().actual, "12");
}

TEST(Verdict, NamesReadBackToTheirKinds) {
  for (auto kind : {VerdictKind::pass, VerdictKind::skip, VerdictKind::flaky, VerdictKind::fail,
                    VerdictKind::crash, VerdictKind::error})
    EXPECT_EQ(verdict_from_name(verdict_name(kind)), kind) << verdict_name(kind);
  EXPECT_FALSE(verdict_from_name("PASS"));
  EXPECT_FALSE(verdict_from_name(""));
}

} // namespace
} // namespace probegate::verdict
