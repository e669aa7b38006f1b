// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"
#include "image/cpio.h"
#include "image/initramfs.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

namespace probegate::image {
namespace {

std::vector<CpioEntry> sample() {
  return {
      {"dev", CpioEntry::Type::dir, 0755, {}, {}, 0, 0},
      {"dev/console", CpioEntry::Type::chardev, 0600, {}, {}, 5, 1},
      {"bin", CpioEntry::Type::dir, 0755, {}, {}, 0, 0},
      {"bin/sh", CpioEntry::Type::symlink, 0777, {}, "busybox", 0, 0},
      {"init", CpioEntry::Type::file, 0755, "#!/bin/sh\necho hi\n", {}, 0, 0},
      {"odd", CpioEntry::Type::file, 0644, "abc", {}, 0, 0},
  };
}

TEST(Cpio, SameEntriesGiveTheSameBytes) {
  auto a = write_cpio(sample());
  auto b = write_cpio(sample());
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->size() % 4, 0u) << "layers must be 4-byte aligned to concatenate";
  EXPECT_EQ(a->substr(0, 6), "070701") << "newc magic";
}

TEST(Cpio, ReadsBackWithLibarchive) {
  auto bytes = write_cpio(sample());
  ASSERT_TRUE(bytes);
  auto names = list_cpio(*bytes);
  ASSERT_TRUE(names) << names.error().message;
  EXPECT_EQ(*names,
            (std::vector<std::string>{"dev", "dev/console", "bin", "bin/sh", "init", "odd"}));
}

TEST(Cpio, ContentChangesTheBytes) {
  auto entries = sample();
  auto a = write_cpio(entries);
  entries.back().data = "abd";
  auto b = write_cpio(entries);
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
}

TEST(Cpio, TreeIsSortedAndHonoursExcludes) {
  auto tmp = core::TempDir::create(::testing::TempDir(), "cpio-");
  ASSERT_TRUE(tmp);
  const auto root = tmp->path();
  std::filesystem::create_directories(root / "usr/share/doc/pkg");
  std::filesystem::create_directories(root / "bin");
  std::ofstream(root / "usr/share/doc/pkg/README") << "doc";
  std::ofstream(root / "bin/tool") << "tool";
  std::filesystem::create_symlink("tool", root / "bin/alias");
  auto entries = entries_from_tree(root, {"usr/share/doc"});
  ASSERT_TRUE(entries);
  std::vector<std::string> paths;
  for (const auto& e : *entries)
    paths.push_back(e.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"bin", "bin/alias", "bin/tool", "usr", "usr/share"}));
  EXPECT_EQ((*entries)[1].type, CpioEntry::Type::symlink);
  EXPECT_EQ((*entries)[1].target, "tool");
  EXPECT_EQ((*entries)[2].data, "tool");
}

// The contents of the entry at `path`, or "<missing>".
std::string data_of(const std::vector<CpioEntry>& entries, const std::string& path) {
  for (const auto& e : entries)
    if (e.path == path)
      return e.data;
  return "<missing>";
}

TEST(RunLayer, CarriesTheRunParameters) {
  RunLayerSpec spec;
  spec.devices = 2;
  spec.deadline_s = 120;
  spec.settle_timeout_s = 100;
  spec.modprobe_options = {"options slowprobe delay_ms=4000"};
  const auto entries = run_layer_entries(spec);
  auto find = [&](const std::string& path) { return data_of(entries, path); };
  EXPECT_NE(find("etc/probegate/run.env").find("PG_DEVICES=2\n"), std::string::npos);
  EXPECT_NE(find("etc/probegate/run.env").find("PG_DEADLINE=120\n"), std::string::npos);
  EXPECT_NE(find("etc/modprobe.d/probegate.conf").find("options slowprobe delay_ms=4000\n"),
            std::string::npos);
  EXPECT_EQ(find("etc/udev/udev.conf"), "<missing>") << "the package's udev.conf stays";
  EXPECT_EQ(find("etc/probegate/run.env").find("PG_UDEVD"), std::string::npos);
  EXPECT_EQ(find("etc/probegate/run.env").find("PG_SYNC_NS"), std::string::npos)
      << "no sync point without pgagent";
  spec.sync_ns = 10'000'000'000;
  EXPECT_NE(
      data_of(run_layer_entries(spec), "etc/probegate/run.env").find("PG_SYNC_NS=10000000000\n"),
      std::string::npos);
}

// The image a saved state boots holds nothing of any case: pgagent alone.
TEST(AgentLayer, HoldsPgagentAndNoCaseFile) {
  const auto entries = agent_layer_entries("\x7f"
                                           "ELF");
  EXPECT_EQ(data_of(entries, "etc/probegate/pgagent.ko"), "\x7f"
                                                          "ELF");
  EXPECT_EQ(data_of(entries, "etc/probegate/run.env"), "<missing>");
  EXPECT_EQ(entries.size(), 3U); // etc, etc/probegate, the module
}

TEST(RunLayer, CarriesUdevdSettingsThroughTheirChannels) {
  RunLayerSpec spec;
  spec.devices = 2;
  spec.udev_conf = {"event_timeout=3", "timeout_signal=SIGABRT"};
  spec.udevd_args = {"--event-timeout=3"};
  spec.udevd_env = {"SYSTEMD_UDEV_EXTRA_TIMEOUT_SEC=0"};
  const auto entries = run_layer_entries(spec);
  auto find = [&](const std::string& path) { return data_of(entries, path); };
  EXPECT_NE(find("etc/udev/udev.conf").find("event_timeout=3\ntimeout_signal=SIGABRT\n"),
            std::string::npos);
  const auto env = find("etc/probegate/run.env");
  EXPECT_NE(env.find("PG_UDEVD_ARGS='--event-timeout=3'\n"), std::string::npos) << env;
  EXPECT_NE(env.find("PG_UDEVD_ENV='SYSTEMD_UDEV_EXTRA_TIMEOUT_SEC=0'\n"), std::string::npos)
      << env;
}

// --init systemd: initrd.target requires every slowprobe device's unit, each
// waited for --device-timeout seconds; udevd's environment goes into a
// drop-in of systemd-udevd.service.
TEST(RunLayer, UnderSystemdMakesTheInitrdWaitForTheDevices) {
  RunLayerSpec spec;
  spec.devices = 2;
  spec.systemd = true;
  spec.device_timeout_s = 10;
  spec.udevd_env = {"SYSTEMD_UDEV_EXTRA_TIMEOUT_SEC=0"};
  const auto entries = run_layer_entries(spec);
  const auto target = data_of(entries, "etc/systemd/system/probegate-devices.target");
  EXPECT_NE(target.find("Requires= dev-slowprobe0.device dev-slowprobe1.device\n"),
            std::string::npos)
      << target;
  EXPECT_NE(target.find("Before=initrd.target\n"), std::string::npos) << target;
  const auto link = std::ranges::find(
      entries, "etc/systemd/system/initrd.target.requires/probegate-devices.target",
      &CpioEntry::path);
  ASSERT_NE(link, entries.end());
  EXPECT_EQ(link->type, CpioEntry::Type::symlink);
  EXPECT_EQ(link->target, "../probegate-devices.target");
  EXPECT_NE(data_of(entries, "etc/systemd/system/dev-slowprobe1.device.d/probegate.conf")
                .find("JobRunningTimeoutSec=10\n"),
            std::string::npos);
  EXPECT_NE(data_of(entries, "etc/systemd/system/systemd-udevd.service.d/probegate.conf")
                .find("Environment=SYSTEMD_UDEV_EXTRA_TIMEOUT_SEC=0\n"),
            std::string::npos);
  EXPECT_EQ(data_of(entries, "etc/systemd/system/systemd-udevd.service.d/probegate.conf")
                .find("ExecStart"),
            std::string::npos)
      << "the package's command line stays when no argument is given";
  // --udev-timeout-via udevd-arg: the package's ExecStart= is replaced.
  spec.udevd_args = {"--event-timeout=3"};
  EXPECT_NE(
      data_of(run_layer_entries(spec), "etc/systemd/system/systemd-udevd.service.d/probegate.conf")
          .find("\nExecStart=\nExecStart=/lib/systemd/systemd-udevd --event-timeout=3\n"),
      std::string::npos);
  spec.systemd = false;
  EXPECT_EQ(data_of(run_layer_entries(spec), "etc/systemd/system/probegate-devices.target"),
            "<missing>");
}

TEST(RunLayer, CarriesTheFaultModuleOnlyWhenAFaultIsInjected) {
  RunLayerSpec spec;
  spec.devices = 1;
  auto has = [](const std::vector<CpioEntry>& entries, std::string_view path) {
    return std::ranges::any_of(entries, [&](const CpioEntry& e) { return e.path == path; });
  };
  const auto plain = run_layer_entries(spec);
  EXPECT_FALSE(has(plain, "etc/probegate/pgfault.ko"));
  spec.inject = "oops";
  spec.fault_module = "\x7f"
                      "ELF";
  const auto injected = run_layer_entries(spec);
  ASSERT_TRUE(has(injected, "etc/probegate/pgfault.ko"));
  for (const auto& e : injected) {
    if (e.path == "etc/probegate/run.env") {
      EXPECT_NE(e.data.find("PG_INJECT=oops\n"), std::string::npos) << e.data;
    }
  }
}

TEST(CorruptStart, BreaksTheFirstHeaderOfACopyOnly) {
  auto tmp = core::TempDir::create(std::filesystem::temp_directory_path(), "pg-corrupt-");
  ASSERT_TRUE(tmp);
  const auto image = tmp->path() / "initramfs.img";
  auto cpio = write_cpio({CpioEntry{"init", CpioEntry::Type::file, 0755, "#!/bin/sh\n", {}, 0, 0}});
  ASSERT_TRUE(cpio);
  ASSERT_TRUE(core::write_file_atomic(image, *cpio));
  ASSERT_TRUE(list_cpio(*cpio));
  ASSERT_TRUE(corrupt_start(image));
  const auto broken = core::read_file(image);
  ASSERT_TRUE(broken);
  EXPECT_EQ(broken->size(), cpio->size());
  EXPECT_TRUE(broken->starts_with("pgjunk"));
  EXPECT_FALSE(list_cpio(*broken)) << "libarchive still reads it";
}

TEST(ListLines, DropsCommentsAndBlanks) {
  EXPECT_EQ(list_lines("# c\nudev\n\n  kmod  # why\n\t\n"),
            (std::vector<std::string>{"udev", "kmod"}));
}

} // namespace
} // namespace probegate::image
