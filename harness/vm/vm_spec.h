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
  // 256 MB holds every user space's initramfs with room to spare; a
  // restore fills every 2 MB huge page that holds a saved page, so half the
  // memory is half that work (docs/MEASUREMENTS.md "Guest memory: 256 MB").
  int memory_mb = 256;
  int cpus = 1; // icount needs one vCPU (docs/FACTS.md "The virtual clock")
  // Boot once, restore per case (docs/CONTRACTS.md "Boot once, restore per case").
  // Every boot has the pvpanic device, so that a fresh boot and a restored
  // one run on the same machine; only a boot that makes a saved state lets
  // the guest stop itself through it.
  bool guest_can_pause = false;
  std::filesystem::path config_file; // fw_cfg opt/probegate/run.cpio, read by pgagent
  std::filesystem::path qmp_socket;  // QEMU connects here (vm::Qmp listens)
  bool incoming = false;             // wait for a saved state (QMP migrate-incoming)
  // Guest memory in this file instead of anonymous memory (a saved state's,
  // docs/FACTS.md "Saving and restoring a guest"): shared for the boot that
  // saves, so the file holds the guest's memory; private for a restore, which
  // reads the file's pages as it touches them and keeps its writes to itself.
  std::filesystem::path ram_file;
  bool ram_shared = false;
};

// The id of the memory backend that holds the guest's RAM when it lives in a
// file: the RAM block's name in a saved state, the same for save and restore.
inline constexpr const char* k_ram_backend = "guest-ram";

// The virtual clock (docs/FACTS.md "The virtual clock"): one instruction a
// nanosecond, idle time skipped, and an RTC that starts at a fixed date
// (k_rtc_base_epoch seconds since 1970, UTC).
inline constexpr const char* k_icount = "shift=0,sleep=off";
inline constexpr const char* k_rtc_base = "2025-01-01T00:00:00";
inline constexpr long long k_rtc_base_epoch = 1735689600;

// QEMU's option syntax: a comma inside a value is doubled.
std::string option_value(const std::filesystem::path& path);

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

// The part of qemu_argv() libvirt has no elements for: the test devices,
// pvpanic and its action, the case's fw_cfg file.
std::vector<std::string> device_args(const VmSpec& spec, const QemuProfile& profile = {});

} // namespace probegate::vm
