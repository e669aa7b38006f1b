// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"
#include "verdict/outcome.h"
#include "verdict/verdict.h"

#include <algorithm>
#include <gtest/gtest.h>

namespace probegate::verdict {
namespace {

// The reproduction table (docs/FACTS.md "Reproduction table on Debian 6.1"), as
// recorded on Debian 6.1 with udev 252 (2 edu devices, 4000 ms probes, udev
// timeout 3 s unless "default").
struct Row {
  const char* log;
  int bound;
  int failures;
  bool loader_killed;
  size_t kills;
};

class ReproductionTable : public ::testing::TestWithParam<Row> {};

// "6.1-sync-kill.log" -> "sync_kill" (gtest names are identifiers).
std::string test_name(std::string log) {
  log = log.substr(log.find('-') + 1);
  log.resize(log.size() - 4);
  std::ranges::replace(log, '-', '_');
  return log;
}

TEST_P(ReproductionTable, OutcomeMatchesWhatWasMeasured) {
  const Row row = GetParam();
  auto text = core::read_file(std::string(PROBEGATE_TESTDATA "/console/") + row.log);
  ASSERT_TRUE(text);
  const auto o = derive_outcome(console::parse_console(*text), 2, false);
  EXPECT_TRUE(o.booted);
  EXPECT_EQ(o.devices_bound, row.bound);
  EXPECT_EQ(o.probe_failures, row.failures);
  EXPECT_EQ(o.udev_worker_killed, row.loader_killed);
  EXPECT_EQ(o.udev_kills.size(), row.kills);
  EXPECT_EQ(o.time_to_available_s.has_value(), row.bound == 2);
  int loading = 0;
  for (const auto& k : o.udev_kills)
    loading += k.loading_module;
  EXPECT_EQ(loading, row.loader_killed ? 1 : 0) << "exactly one worker loads the module";
}

INSTANTIATE_TEST_SUITE_P(Debian61, ReproductionTable,
                         ::testing::Values(Row{"6.1-sync-kill.log", 0, 2, true, 2},
                                           Row{"6.1-default-timeout.log", 2, 0, false, 0},
                                           Row{"6.1-nokthread.log", 2, 0, true, 2},
                                           // the second device's worker is killed while blocked in
                                           // uevent_show: harmless, and not the loader
                                           // (docs/FACTS.md "Which worker is killed")
                                           Row{"6.1-async-param.log", 2, 0, false, 1},
                                           Row{"6.1-module-default.log", 2, 0, false, 0},
                                           Row{"6.1-driver-cmdline.log", 2, 0, true, 2},
                                           Row{"6.1-prefer-async.log", 2, 0, true, 2},
                                           Row{"6.1-force-sync-param.log", 0, 2, true, 2}),
                         [](const ::testing::TestParamInfo<Row>& param) {
                           return test_name(param.param.log);
                         });

// The same eight rows on Debian's 6.12 (6.12.117+deb12, bookworm), whose
// kernel words a failed probe "probe with driver slowprobe failed".
INSTANTIATE_TEST_SUITE_P(Debian612, ReproductionTable,
                         ::testing::Values(Row{"6.12-sync.log", 0, 2, true, 2},
                                           Row{"6.12-sync-default-timeout.log", 2, 0, false, 0},
                                           Row{"6.12-sync-no-kthread.log", 2, 0, true, 2},
                                           // unlike 6.1, no worker is killed at all: the second
                                           // device's worker is not left blocked on the device lock
                                           Row{"6.12-module-param.log", 2, 0, false, 0},
                                           Row{"6.12-module-default.log", 2, 0, false, 0},
                                           Row{"6.12-driver-cmdline.log", 2, 0, true, 2},
                                           Row{"6.12-prefer-async.log", 2, 0, true, 2},
                                           Row{"6.12-force-sync-module-param.log", 0, 2, true, 2}),
                         [](const ::testing::TestParamInfo<Row>& param) {
                           return test_name(param.param.log);
                         });

// Bullseye's 5.10: no module.async_probe (that row skips before booting), and
// async_probe=0 still means async, as on every kernel before 6.0.
INSTANTIATE_TEST_SUITE_P(Debian510, ReproductionTable,
                         ::testing::Values(Row{"5.10-sync.log", 0, 2, true, 2},
                                           Row{"5.10-sync-default-timeout.log", 2, 0, false, 0},
                                           Row{"5.10-sync-no-kthread.log", 2, 0, true, 2},
                                           Row{"5.10-module-param.log", 2, 0, false, 0},
                                           Row{"5.10-module-param-0.log", 2, 0, false, 1},
                                           Row{"5.10-driver-cmdline.log", 2, 0, true, 2},
                                           Row{"5.10-prefer-async.log", 2, 0, true, 2},
                                           Row{"5.10-force-sync-module-param.log", 0, 2, true, 2}),
                         [](const ::testing::TestParamInfo<Row>& param) {
                           return test_name(param.param.log);
                         });

// Trixie's 6.12 (6.12.117+deb13) and sid's 7.2 (7.2.13+deb14), with
// async_probe=0 meaning sync since 6.0.
INSTANTIATE_TEST_SUITE_P(
    Debian612Trixie, ReproductionTable,
    ::testing::Values(Row{"6.12-trixie-sync.log", 0, 2, true, 2},
                      Row{"6.12-trixie-sync-default-timeout.log", 2, 0, false, 0},
                      Row{"6.12-trixie-sync-no-kthread.log", 2, 0, true, 2},
                      Row{"6.12-trixie-module-param.log", 2, 0, false, 0},
                      Row{"6.12-trixie-module-param-0.log", 0, 2, true, 2},
                      Row{"6.12-trixie-module-default.log", 2, 0, false, 0},
                      Row{"6.12-trixie-driver-cmdline.log", 2, 0, true, 2},
                      Row{"6.12-trixie-prefer-async.log", 2, 0, true, 2},
                      Row{"6.12-trixie-force-sync-module-param.log", 0, 2, true, 2}),
    [](const ::testing::TestParamInfo<Row>& param) { return test_name(param.param.log); });

INSTANTIATE_TEST_SUITE_P(Debian72Sid, ReproductionTable,
                         ::testing::Values(Row{"7.2-sync.log", 0, 2, true, 2},
                                           Row{"7.2-sync-default-timeout.log", 2, 0, false, 0},
                                           Row{"7.2-sync-no-kthread.log", 2, 0, true, 2},
                                           Row{"7.2-module-param.log", 2, 0, false, 0},
                                           Row{"7.2-module-param-0.log", 0, 2, true, 2},
                                           Row{"7.2-module-default.log", 2, 0, false, 0},
                                           Row{"7.2-driver-cmdline.log", 2, 0, true, 2},
                                           Row{"7.2-prefer-async.log", 2, 0, true, 2},
                                           Row{"7.2-force-sync-module-param.log", 0, 2, true, 2}),
                         [](const ::testing::TestParamInfo<Row>& param) {
                           return test_name(param.param.log);
                         });

// Debian's 6.1.192 source built here (tinyconfig + kernel-configs/): like
// Debian's 6.1, the second device's worker is killed harmlessly under
// async probing.
INSTANTIATE_TEST_SUITE_P(Built61, ReproductionTable,
                         ::testing::Values(Row{"6.1-built-module-param.log", 2, 0, false, 1},
                                           Row{"6.1-built-module-param-0.log", 0, 2, true, 2},
                                           Row{"6.1-built-module-default.log", 2, 0, false, 1}),
                         [](const ::testing::TestParamInfo<Row>& param) {
                           return test_name(param.param.log);
                         });

// timeout_signal=SIGABRT (udev timeout 3 s, two 16 s probes with a kthread,
// 6.1): udev reports both workers killed, yet the probes run to their end and
// bind, since SIGABRT is no fatal signal to the kernel's waits; the loader's
// worker ends by signal 6 once init_module returns. udev 252 and later send
// the failed events out again with UDEV_WORKER_SIGNAL_NAME=ABRT; 247 does not
// (docs/FACTS.md "The second witness: UDEV_WORKER_* properties").
TEST(Outcome, SigabrtKillsTheWorkerButTheDevicesBind) {
  struct Case {
    const char* log;
    size_t failed_events;
  };
  for (const auto& c : {Case{"6.1-bullseye-sigabrt.log", 0}, Case{"6.1-bookworm-sigabrt.log", 2},
                        Case{"6.1-sid-sigabrt.log", 2}}) {
    auto text = core::read_file(std::string(PROBEGATE_TESTDATA "/console/") + c.log);
    ASSERT_TRUE(text) << c.log;
    const auto o = derive_outcome(console::parse_console(*text), 2, false);
    EXPECT_TRUE(o.booted) << c.log;
    EXPECT_EQ(o.devices_bound, 2) << c.log;
    EXPECT_EQ(o.probe_failures, 0) << c.log;
    EXPECT_TRUE(o.udev_worker_killed) << c.log;
    ASSERT_EQ(o.udev_kills.size(), 2u) << c.log;
    for (const auto& k : o.udev_kills)
      EXPECT_EQ(k.signal, 6) << c.log << " worker " << k.worker_pid;
    ASSERT_EQ(o.udev_failed_events.size(), c.failed_events) << c.log;
    for (const auto& e : o.udev_failed_events) {
      EXPECT_EQ(e.signal, 6) << c.log;
      EXPECT_EQ(e.signal_name, "ABRT") << c.log;
      EXPECT_TRUE(e.devpath.starts_with("/devices/pci0000:00/")) << e.devpath;
    }
    ASSERT_EQ(o.probes.size(), 2u) << c.log;
    for (const auto& p : o.probes) {
      ASSERT_TRUE(p.start_s && p.end_s) << c.log;
      // the whole 16 s delay, then the kthread (not cut short by a kill)
      EXPECT_GE(*p.end_s - *p.start_s, 16.0) << c.log << " " << p.device;
      EXPECT_LT(*p.end_s - *p.start_s, 16.5) << c.log << " " << p.device;
      EXPECT_EQ(p.result, 0) << c.log;
    }
  }
}

// Under systemd the boot's end comes from systemd's own lines: the device
// that never appeared, emergency mode, or initrd.target reached.
TEST(Outcome, SystemdDecidesWhetherTheMachineBooted) {
  auto outcome_of = [](const char* log) {
    auto text = core::read_file(std::string(PROBEGATE_TESTDATA "/console/") + log);
    EXPECT_TRUE(text) << log;
    return derive_outcome(console::parse_console(text ? *text : ""), 2, false);
  };
  const auto failed = outcome_of("6.1-bookworm-systemd-emergency.log");
  EXPECT_EQ(failed.init, "systemd");
  EXPECT_FALSE(failed.booted);
  EXPECT_TRUE(failed.emergency);
  EXPECT_FALSE(failed.reached_target);
  ASSERT_EQ(failed.systemd_device_timeouts.size(), 1u);
  EXPECT_EQ(failed.systemd_device_timeouts[0].unit, "dev-slowprobe0.device");
  EXPECT_EQ(failed.devices_bound, 0);
  EXPECT_EQ(failed.probe_failures, 2);
  EXPECT_TRUE(failed.udev_worker_killed);

  const auto fixed = outcome_of("6.1-bookworm-systemd-module-param.log");
  EXPECT_TRUE(fixed.booted);
  EXPECT_FALSE(fixed.emergency);
  EXPECT_EQ(fixed.reached_target, "initrd.target");
  EXPECT_EQ(fixed.devices_bound, 2);
  EXPECT_EQ(fixed.systemd_version, 252);

  // A real machine's log: no agent at all, Debian's "unit - description".
  const auto real = outcome_of("excerpts/systemd-252-description-style.log");
  EXPECT_EQ(real.init, "systemd");
  EXPECT_FALSE(real.booted);
  EXPECT_TRUE(real.emergency);

  EXPECT_EQ(outcome_of("6.1-sync-kill.log").init, "agent");
}

// A kill of the loader's worker counts only while it was inside
// init_module(). With async_probe requested the loader returns at once; its
// worker, going on with its event, blocks on the device lock the 16 s async
// probe holds and is killed there, harmlessly (bullseye's udev 247, 6.1).
// Without it (driver_async_probe=), init_module() waits for the async
// probes, so a kill while they run is inside it.
TEST(Outcome, AKillAfterInitModuleReturnedIsNotTheLoaders) {
  auto text = core::read_file(PROBEGATE_TESTDATA "/console/6.1-bullseye-module-param-16s.log");
  ASSERT_TRUE(text);
  const auto log = console::parse_console(*text);
  EXPECT_EQ(log.module_async_requested, true);
  const auto o = derive_outcome(log, 2, false);
  ASSERT_EQ(o.udev_kills.size(), 1u);
  EXPECT_EQ(o.udev_kills[0].worker_pid, *log.loader_pid) << "the loader's pid, later";
  EXPECT_FALSE(o.udev_kills[0].loading_module);
  EXPECT_FALSE(o.udev_worker_killed);
  EXPECT_EQ(o.devices_bound, 2);

  auto waiting = core::read_file(PROBEGATE_TESTDATA "/console/6.1-driver-cmdline.log");
  ASSERT_TRUE(waiting);
  const std::string done = "slowprobe: init done pid=96 ret=0";
  const auto at = waiting->find(done);
  ASSERT_NE(at, std::string::npos);
  waiting->insert(at + done.size(), " async_requested=0");
  const auto w = derive_outcome(console::parse_console(*waiting), 2, false);
  EXPECT_TRUE(w.udev_worker_killed) << "killed while init_module() waited for the probes";
}

TEST(Outcome, AgentSilenceFallsBackOnTheModulesLines) {
  auto text = core::read_file(PROBEGATE_TESTDATA "/console/6.1-default-timeout.log");
  ASSERT_TRUE(text);
  // Cut the log before the agent's ready report, as a deadline would.
  const auto cut = text->find("probegate: event=probes-waited");
  ASSERT_NE(cut, std::string::npos);
  const auto o = derive_outcome(console::parse_console(text->substr(0, cut)), 2, true);
  EXPECT_FALSE(o.booted);
  EXPECT_TRUE(o.timed_out);
  EXPECT_EQ(o.devices_bound, 2);
}

} // namespace
} // namespace probegate::verdict

namespace probegate::verdict {
namespace {

TEST(Outcome, TheGuestSaysWhetherModuleAsyncProbeExists) {
  auto no = derive_outcome(
      console::parse_console("[    1.892574] probegate: event=knobs module.async_probe=no\n"), 1,
      false);
  EXPECT_EQ(no.guest_module_async_probe, false);
  auto yes = derive_outcome(
      console::parse_console("[    1.741926] probegate: event=knobs module.async_probe=yes\n"), 1,
      false);
  EXPECT_EQ(yes.guest_module_async_probe, true);
  auto silent = derive_outcome(console::parse_console("[    1.0] Linux version 6.1.0\n"), 1, false);
  EXPECT_FALSE(silent.guest_module_async_probe.has_value());
}

// Real boots of Debian 6.1 with `probegate boot --inject-fault F --devices 1
// --probe-delay-ms 1000 --expect-bound 1` (hang: also --deadline 20); the e2e
// twins are in e2e/faults_e2e_test.cc.
struct FaultRow {
  const char* fault;
  VerdictKind kind;
  const char* reason; // a part of the verdict's reason
  bool booted;
  bool timed_out;
};

class FaultLogs : public ::testing::TestWithParam<FaultRow> {};

TEST_P(FaultLogs, EachFaultHasItsOwnOutcome) {
  const FaultRow row = GetParam();
  auto text =
      core::read_file(std::string(PROBEGATE_TESTDATA "/console/faults/6.1-") + row.fault + ".log");
  ASSERT_TRUE(text);
  const auto o = derive_outcome(console::parse_console(*text), 1, false);
  EXPECT_EQ(o.booted, row.booted);
  EXPECT_EQ(o.timed_out, row.timed_out);
  Expectations expect;
  expect.boot = true;
  expect.bound = 1;
  const auto v = judge(o, expect);
  EXPECT_EQ(v.kind, row.kind) << v.reason;
  EXPECT_NE(v.reason.find(row.reason), std::string::npos) << v.reason;
}

INSTANTIATE_TEST_SUITE_P(
    Debian61, FaultLogs,
    ::testing::Values(
        FaultRow{"corrupt-initramfs", VerdictKind::error,
                 "Initramfs unpacking failed: invalid magic at start of compressed archive", false,
                 false},
        FaultRow{"panic", VerdictKind::crash, "Kernel panic - not syncing: pgfault: injected panic",
                 false, false},
        // The Oops is in pgfault, not in the test module, and the boot goes
        // on (the device binds): still a crash, and the reason says where.
        FaultRow{"oops", VerdictKind::crash,
                 "BUG: kernel NULL pointer dereference, address: 0000000000000000 at "
                 "pgfault_init+0x59/0x1000 [pgfault]",
                 true, false},
        // The agent's own deadline ended it: timed out, the kernel's failure.
        FaultRow{"hang", VerdictKind::fail, "the boot passed its deadline", false, true}),
    [](const ::testing::TestParamInfo<FaultRow>& param) {
      std::string name = param.param.fault;
      std::ranges::replace(name, '-', '_');
      return name;
    });

} // namespace
} // namespace probegate::verdict
