// SPDX-License-Identifier: GPL-2.0-only
#include "vm/accel.h"
#include "vm/saved_state.h"
#include "vm/vm_spec.h"

#include <algorithm>
#include <gtest/gtest.h>

namespace probegate::vm {
namespace {

VmSpec two_devices() {
  VmSpec spec;
  spec.kernel = "/k/vmlinux";
  spec.initrd = "/r/initramfs.img";
  spec.cmdline = "console=ttyS0 panic=-1";
  spec.edu_devices = 2;
  return spec;
}

TEST(QemuArgv, TcgVirtualClockBootsPvhWithQboot) {
  const auto argv = qemu_argv(two_devices());
  const std::vector<std::string> expected{"qemu-system-x86_64",
                                          "-machine",
                                          "pc,accel=tcg",
                                          "-bios",
                                          "/usr/share/qemu/qboot.rom",
                                          "-m",
                                          "256",
                                          "-smp",
                                          "1",
                                          "-nodefaults",
                                          "-no-user-config",
                                          "-no-reboot",
                                          "-display",
                                          "none",
                                          "-monitor",
                                          "none",
                                          "-chardev",
                                          "stdio,id=charserial0",
                                          "-device",
                                          "isa-serial,chardev=charserial0,id=serial0,index=0",
                                          "-net",
                                          "none",
                                          "-icount",
                                          "shift=0,sleep=off",
                                          "-rtc",
                                          "base=2025-01-01T00:00:00,clock=vm",
                                          "-kernel",
                                          "/k/vmlinux",
                                          "-initrd",
                                          "/r/initramfs.img",
                                          "-append",
                                          "console=ttyS0 panic=-1",
                                          "-device",
                                          "edu",
                                          "-device",
                                          "edu",
                                          "-device",
                                          "pvpanic",
                                          "-action",
                                          "panic=none"};
  EXPECT_EQ(argv, expected);
}

// A restore runs the machine that saved the state: the same argv up to the
// guest-invisible parts (what a panic does, the case's fw_cfg file, QMP and
// -incoming), so a saved state never meets other hardware.
TEST(QemuArgv, RestoreDiffersFromTheSavingBootOnlyOutsideTheGuest) {
  auto saving = two_devices();
  saving.guest_can_pause = true;
  saving.config_file = "/s/empty.cpio";
  saving.qmp_socket = "/s/save.qmp";
  saving.ram_file = "/s/ram.live";
  saving.ram_shared = true;
  SavedState saved;
  saved.dir = "/c/states/k";
  saved.state = "/c/states/k/state";
  saved.initramfs = "/r/initramfs.img";
  saved.ram = "/c/states/k/ram";
  const auto restore = restore_spec(saving, saved, "/run/a,b/run.cpio", "/run/qmp.sock");
  const auto before = qemu_argv(saving);
  const auto after = qemu_argv(restore);
  auto guest_side = [](std::vector<std::string> argv) {
    for (const char* option : {"-action", "-fw_cfg", "-mon", "-incoming", "-object"})
      if (auto at = std::ranges::find(argv, option); at != argv.end())
        argv.erase(at, at + 2);
    if (auto qmp = std::ranges::find_if(
            argv, [](const std::string& word) { return word.starts_with("socket,id=qmp,"); });
        qmp != argv.end())
      argv.erase(qmp - 1, qmp + 1);
    return argv;
  };
  EXPECT_EQ(guest_side(before), guest_side(after));
  EXPECT_NE(std::ranges::find(before, "panic=pause"), before.end());
  EXPECT_NE(std::ranges::find(after, "defer"), after.end());
  // QEMU's option syntax: a comma inside a value is doubled.
  EXPECT_NE(std::ranges::find(after, "name=opt/probegate/run.cpio,file=/run/a,,b/run.cpio"),
            after.end());
  EXPECT_NE(std::ranges::find(after, "socket,id=qmp,path=/run/qmp.sock,server=off"), after.end());
  // The memory: where the saving boot wrote it, mapped shared; the saved
  // copy for the restore, mapped privately so that the file stays as saved.
  EXPECT_EQ(before[2], "pc,accel=tcg,memory-backend=guest-ram");
  EXPECT_NE(std::ranges::find(
                before, "memory-backend-file,id=guest-ram,size=256M,mem-path=/s/ram.live,share=on"),
            before.end());
  EXPECT_NE(std::ranges::find(after, "memory-backend-file,id=guest-ram,size=256M,"
                                     "mem-path=/c/states/k/ram,share=off"),
            after.end());
}

TEST(QemuArgv, KvmAndRealClockHaveNoIcount) {
  auto spec = two_devices();
  spec.accel = Accel::kvm;
  spec.clock = Clock::real_time;
  const auto argv = qemu_argv(spec);
  EXPECT_EQ(argv[2], "pc,accel=kvm");
  EXPECT_EQ(std::ranges::find(argv, "-icount"), argv.end());
  EXPECT_EQ(std::ranges::find(argv, "host"), argv.end()) << "-cpu host aborts on broken KVM";
  spec.accel = Accel::tcg;
  const auto real_tcg = qemu_argv(spec);
  EXPECT_EQ(std::ranges::find(real_tcg, "-icount"), real_tcg.end());
}

TEST(QemuArgv, ZeroDevicesMeansNoEdu) {
  auto spec = two_devices();
  spec.edu_devices = 0;
  const auto argv = qemu_argv(spec);
  EXPECT_EQ(std::ranges::find(argv, "edu"), argv.end());
}

TEST(Accel, DecisionTable) {
  struct Row {
    const char* requested;
    bool dev_kvm;
    std::optional<bool> boots;
    std::optional<Accel> chosen; // nullopt: an error
  };
  const Row rows[] = {
      {"tcg", true, true, Accel::tcg},    {"auto", false, std::nullopt, Accel::tcg},
      {"auto", true, false, Accel::tcg},  {"auto", true, true, Accel::kvm},
      {"kvm", true, true, Accel::kvm},    {"kvm", false, std::nullopt, std::nullopt},
      {"kvm", true, false, std::nullopt}, {"fast", true, true, std::nullopt},
  };
  for (const auto& row : rows) {
    auto got = decide_accel(row.requested, row.dev_kvm, row.boots);
    ASSERT_EQ(got.has_value(), row.chosen.has_value()) << row.requested << row.dev_kvm;
    if (got) {
      EXPECT_EQ(got->accel, *row.chosen) << row.requested;
      EXPECT_FALSE(got->reason.empty());
    }
  }
  EXPECT_EQ(decide_accel("kvm", false, std::nullopt).error().kind, core::ErrorKind::infra);
  EXPECT_EQ(decide_accel("fast", true, true).error().kind, core::ErrorKind::usage);
}

} // namespace
} // namespace probegate::vm
