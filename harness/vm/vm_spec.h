// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace probegate::vm {

enum class Accel { kvm, tcg };
// virtual: TCG with -icount shift=0,sleep=off (idle guest time costs no wall
// time, timing repeats exactly); real: the host clock.
enum class Clock { virtual_time, real_time };

// One VM to boot. Pure data; qemu_argv() turns it into a command line.
struct VmSpec {
  std::filesystem::path kernel; // vmlinux (PVH entry)
  std::filesystem::path initrd;
  std::string cmdline;
  int edu_devices = 0;
  Accel accel = Accel::tcg;
  Clock clock = Clock::virtual_time;
  int memory_mb = 512;
  int cpus = 1; // icount needs one vCPU (docs/FACTS.md "The virtual clock")
  // Boot once, restore per case (docs/CONTRACTS.md "Boot once, restore per case").
  // Every boot has the pvpanic device, so that a fresh boot and a restored
  // one run on the same machine; only a boot that makes a saved state lets
  // the guest stop itself through it.
  bool guest_can_pause = false;
  std::filesystem::path config_file; // fw_cfg opt/probegate/run.cpio, read by pgagent
  std::filesystem::path qmp_socket;  // QEMU connects here (vm::Qmp listens)
  bool incoming = false;             // wait for a saved state (QMP migrate-incoming)
};

// The fw_cfg file the guest's pgagent module serves as /proc/probegate-config.
inline constexpr const char* k_config_fw_cfg = "opt/probegate/run.cpio";

// Machine quirks as data, not ifs (kunit's QemuArchParams): the one x86_64
// profile that boots Debian kernels fastest under TCG (docs/FACTS.md "Fastest boot under TCG").
struct QemuProfile {
  std::string binary = "qemu-system-x86_64";
  std::string machine = "pc";
  std::string firmware = "/usr/share/qemu/qboot.rom";
  std::string test_device = "edu";
  std::string console = "ttyS0";
};

std::vector<std::string> qemu_argv(const VmSpec& spec, const QemuProfile& profile = {});

} // namespace probegate::vm
