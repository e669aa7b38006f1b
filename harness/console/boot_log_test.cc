// SPDX-License-Identifier: GPL-2.0-only
#include "console/boot_log.h"
#include "core/files.h"

#include <algorithm>
#include <filesystem>
#include <gtest/gtest.h>

namespace probegate::console {
namespace {

BootLog parse_file(const std::string& name) {
  auto text = core::read_file(std::string(PROBEGATE_TESTDATA "/console/") + name);
  EXPECT_TRUE(text) << name;
  return parse_console(text.value_or(""));
}

TEST(ConsoleParser, SyncKillOn61) {
  const auto log = parse_file("6.1-sync-kill.log");
  EXPECT_EQ(log.banners, 1);
  EXPECT_EQ(log.linux_version, "6.1.0-56-amd64");
  ASSERT_TRUE(log.loader_pid);
  ASSERT_EQ(log.probes.size(), 2u);
  const auto& first = log.probes.at("0000:00:02.0");
  EXPECT_EQ(first.pid, *log.loader_pid) << "a sync probe runs in the loading worker";
  EXPECT_EQ(first.comm, "(udev-worker)");
  EXPECT_EQ(first.result, -4);
  EXPECT_TRUE(first.misc.empty());
  ASSERT_TRUE(first.start_s && first.end_s);
  EXPECT_NEAR(*first.end_s - *first.start_s, 4.2, 0.1);
  EXPECT_EQ(log.kernel_probe_failures.size(), 2u);
  EXPECT_EQ(log.kernel_probe_failures.at("0000:00:03.0"), -4);
  ASSERT_EQ(log.module_init_ret, 0);

  int slow = 0, killed = 0, terminated = 0, loader_killed = 0;
  for (const auto& w : log.udev) {
    slow += w.kind == UdevWorkerLine::Kind::slow;
    killed += w.kind == UdevWorkerLine::Kind::killed;
    loader_killed += w.kind == UdevWorkerLine::Kind::killed && w.worker_pid == *log.loader_pid;
    terminated += w.kind == UdevWorkerLine::Kind::terminated;
    EXPECT_TRUE(w.device == "0000:00:02.0" || w.device == "0000:00:03.0") << w.device;
  }
  EXPECT_EQ(slow, 2);
  EXPECT_EQ(killed, 2);
  EXPECT_EQ(terminated, 2);
  EXPECT_EQ(loader_killed, 1);

  ASSERT_NE(log.fact("ready"), nullptr);
  EXPECT_EQ(log.fact("ready")->fields.at("bound"), "0");
  EXPECT_EQ(log.fact("pci")->fields.at("edu"), "2");
  EXPECT_EQ(log.fact("probes-waited")->fields.at("outcome"), "complete");
  EXPECT_FALSE(log.panic);
  EXPECT_FALSE(log.oops);
  EXPECT_FALSE(log.initramfs_error);
}

// Whole boots of one 6.1 kernel with each suite's user space (udev
// timeout 3 s, synchronous probes with a kthread): the agent's `userspace`
// fact gives the udev version, and each udev's wording of the kill (247 and
// 257 without a period, 262 with one) gives the loader's kill; udev 257 and
// 262 kill 10 s later (docs/FACTS.md "udev 256 and later wait 10 s more").
TEST(ConsoleParser, UdevOfEachSuiteReportsItsVersionAndKill) {
  struct Row {
    const char* log;
    int udev;
    double kill_s;
  };
  for (const auto& row : {Row{"6.1-bullseye-sync-kill.log", 247, 5.94},
                          Row{"6.1-trixie-sync-kill-16s.log", 257, 16.10},
                          Row{"6.1-sid-sync-kill-16s.log", 262, 16.15}}) {
    const auto log = parse_file(row.log);
    EXPECT_EQ(log.udev_version, row.udev) << row.log;
    ASSERT_TRUE(log.loader_pid) << row.log;
    int loader_kills = 0;
    for (const auto& w : log.udev)
      if (w.kind == UdevWorkerLine::Kind::killed && w.worker_pid == *log.loader_pid) {
        ++loader_kills;
        ASSERT_TRUE(w.t_s);
        EXPECT_NEAR(*w.t_s, row.kill_s, 0.01) << row.log;
      }
    EXPECT_EQ(loader_kills, 1) << row.log;
    EXPECT_EQ(log.kernel_probe_failures.size(), 2u) << row.log;
  }
}

// systemd as PID 1 (--init systemd), bookworm's 252 and trixie's 257: the
// device wait times out into emergency mode, or initrd.target is reached;
// and a real machine's wording ("unit - description", Debian's default).
TEST(ConsoleParser, SystemdLinesTellTheBootsEnd) {
  const auto failed = parse_file("6.1-bookworm-systemd-emergency.log");
  EXPECT_EQ(failed.systemd_version, 252);
  ASSERT_EQ(failed.systemd_device_timeouts.size(), 1u);
  EXPECT_EQ(failed.systemd_device_timeouts[0].first, "dev-slowprobe0.device");
  EXPECT_NEAR(failed.systemd_device_timeouts[0].second, 91.92, 0.01) << "90 s after PID 1 began";
  EXPECT_TRUE(failed.systemd_emergency_s);
  for (const auto& [unit, t] : failed.systemd_reached)
    EXPECT_NE(unit, "initrd.target");

  const auto booted = parse_file("6.1-trixie-systemd-module-param.log");
  EXPECT_EQ(booted.systemd_version, 257);
  EXPECT_TRUE(booted.systemd_device_timeouts.empty());
  EXPECT_FALSE(booted.systemd_emergency_s);
  EXPECT_TRUE(std::ranges::any_of(booted.systemd_reached,
                                  [](const auto& r) { return r.first == "initrd.target"; }));

  const auto real = parse_file("excerpts/systemd-252-description-style.log");
  ASSERT_EQ(real.systemd_device_timeouts.size(), 1u);
  EXPECT_EQ(real.systemd_device_timeouts[0].first, "dev-disk-by\\x2duuid-0b1c.device");
  EXPECT_EQ(real.systemd_dependency_failed.back().first, "initrd.target");
  EXPECT_TRUE(real.systemd_emergency_s);
}

TEST(ConsoleParser, UserspaceFactNeedsAVersionNumber) {
  EXPECT_EQ(parse_console("[    1.789373] probegate: event=userspace udev=262\n").udev_version,
            262);
  EXPECT_FALSE(parse_console("[    1.789373] probegate: event=userspace udev=\n").udev_version);
  EXPECT_FALSE(parse_console("[    1.789373] probegate: event=userspace udev=x1\n").udev_version);
}

TEST(ConsoleParser, AsyncProbesRunInKernelWorkers) {
  const auto log = parse_file("6.1-async-param.log");
  ASSERT_TRUE(log.loader_pid);
  for (const auto& [device, probe] : log.probes) {
    EXPECT_NE(probe.pid, *log.loader_pid) << device << " probed in the udev worker";
    EXPECT_EQ(probe.result, 0) << device;
    EXPECT_FALSE(probe.misc.empty()) << device;
  }
  // init_module() returned long before the probes ended.
  ASSERT_TRUE(log.module_init_done_s);
  for (const auto& [device, probe] : log.probes)
    EXPECT_LT(*log.module_init_done_s, *probe.end_s);
}

TEST(ConsoleParser, OlderAndNewerWordings) {
  const auto old_udev = parse_file("excerpts/udev247-kernel612.log");
  ASSERT_EQ(old_udev.udev.size(), 4u);
  EXPECT_EQ(old_udev.udev[2].kind, UdevWorkerLine::Kind::terminated);
  EXPECT_EQ(old_udev.udev[2].device, "") << "a line without a device prefix";
  EXPECT_EQ(old_udev.udev[2].signal, 9);
  EXPECT_EQ(old_udev.udev[3].kind, UdevWorkerLine::Kind::failed);
  EXPECT_EQ(old_udev.udev[3].worker_pid, 109);
  EXPECT_EQ(old_udev.kernel_probe_failures.at("0000:00:02.0"), -4) << "6.12 wording";

  const auto new_udev = parse_file("excerpts/udev262.log");
  ASSERT_EQ(new_udev.udev.size(), 3u);
  EXPECT_EQ(new_udev.udev[1].kind, UdevWorkerLine::Kind::killed);
  EXPECT_EQ(new_udev.udev[1].seqnum, 702);
  EXPECT_DOUBLE_EQ(*new_udev.udev[1].t_s, 15.1);
}

TEST(ConsoleParser, BrokenBoots) {
  const auto log = parse_file("excerpts/broken-boots.log");
  ASSERT_TRUE(log.initramfs_error);
  EXPECT_NE(log.initramfs_error->find("junk"), std::string::npos);
  ASSERT_TRUE(log.panic);
  EXPECT_EQ(log.facts.size(), 0u);
}

TEST(ConsoleParser, UntimedAndOddLinesAreHarmless) {
  ConsoleParser p;
  p.feed("");
  p.feed("[");
  p.feed("[ abc] probegate: event=ready bound=1");
  p.feed("SeaBIOS (version 1.16)");
  p.feed("[    1.5] probegate: event=misc name=slowprobe0 junk =novalue");
  const auto& log = p.log();
  ASSERT_EQ(log.facts.size(), 1u) << "an unparsable stamp is not a fact line";
  EXPECT_EQ(log.facts[0].event, "misc");
  EXPECT_EQ(log.facts[0].fields.at("name"), "slowprobe0");
  EXPECT_EQ(log.lines, 5u);
  EXPECT_DOUBLE_EQ(*log.last_time_s, 1.5);
}

// Found by the console fuzzer: std::regex recursed once per character and a
// 30 KB guest line overflowed the stack.
TEST(ConsoleParser, EndlessLinesDoNotCrashIt) {
  for (const auto* head : {"slowprobe 0000:00:02.0: probe start ", "Worker [", "x: Worker [1] "}) {
    std::string line = "[    1.000000] " + std::string(head) + std::string(200000, 'a');
    ConsoleParser parser;
    parser.feed(line);
    EXPECT_EQ(parser.log().lines, 1u);
  }
}

// A guest flooding its console with records of every kind: memory stays
// bounded (k_max_records each) and the drops are counted.
TEST(ConsoleParser, AFloodOfRecordsIsCappedAndCounted) {
  ConsoleParser parser;
  const size_t flood = k_max_records + 1000;
  for (size_t i = 0; i < flood; ++i) {
    const std::string n = std::to_string(i);
    parser.feed("[    1.000000] probegate: event=misc name=x" + n);
    parser.feed("[    1.000000] slowprobe 0000:" + n + ": probe start pid=1 comm=x delay_ms=0");
    parser.feed("[    1.000000] systemd-udevd[1]: dev" + n + ": Worker [2] processing SEQNUM=" + n +
                " killed");
    parser.feed("[    1.000000] slowprobe: probe of dev" + n + " failed with error -4");
  }
  const auto& log = parser.log();
  EXPECT_EQ(log.facts.size(), k_max_records);
  EXPECT_EQ(log.probes.size(), k_max_records);
  EXPECT_EQ(log.udev.size(), k_max_records);
  EXPECT_EQ(log.kernel_probe_failures.size(), k_max_records);
  EXPECT_EQ(log.dropped_records, 4 * (flood - k_max_records));
  EXPECT_EQ(log.lines, 4 * flood);
}

TEST(ParseConsoleFile, ReadsAsTheStringParserAndCutsEndlessLines) {
  const std::string path = std::string(PROBEGATE_TESTDATA) + "/console/6.1-sync-kill.log";
  const auto text = core::read_file(path);
  ASSERT_TRUE(text);
  const auto from_file = parse_console_file(path);
  ASSERT_TRUE(from_file);
  const auto from_text = parse_console(*text);
  EXPECT_EQ(from_file->lines, from_text.lines);
  EXPECT_EQ(from_file->facts.size(), from_text.facts.size());
  EXPECT_EQ(from_file->probes.size(), from_text.probes.size());
  EXPECT_EQ(from_file->udev.size(), from_text.udev.size());

  auto tmp = core::TempDir::create(std::filesystem::temp_directory_path(), "pg-console-");
  ASSERT_TRUE(tmp);
  const auto endless = tmp->path() / "endless.log";
  ASSERT_TRUE(core::write_file_atomic(endless, std::string(200 * 1024, 'x') + "\nend\n"));
  const auto cut = parse_console_file(endless);
  ASSERT_TRUE(cut);
  EXPECT_EQ(cut->lines, 5u) << "64 KiB pieces, as the process runner cuts them";
  EXPECT_FALSE(parse_console_file(tmp->path() / "missing.log"));
}

} // namespace
} // namespace probegate::console
