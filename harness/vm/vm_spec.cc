// SPDX-License-Identifier: GPL-2.0-only
#include "vm/vm_spec.h"

#include <fmt/core.h>

namespace probegate::vm {

std::vector<std::string> qemu_argv(const VmSpec& spec, const QemuProfile& profile) {
  const bool kvm = spec.accel == Accel::kvm;
  std::vector<std::string> argv{
      profile.binary,
      "-machine",
      fmt::format("{},accel={}", profile.machine, kvm ? "kvm" : "tcg"),
      "-bios",
      profile.firmware,
      "-m",
      std::to_string(spec.memory_mb),
      "-smp",
      std::to_string(spec.cpus),
      "-nodefaults",
      "-no-user-config",
      "-no-reboot",
      "-display",
      "none",
      "-monitor",
      "none",
      "-serial",
      "stdio",
      "-net",
      "none",
  };
  // No -cpu host: it aborts on some broken KVM hosts
  // (docs/FACTS.md "KVM: absent or broken"); the default model boots Debian kernels everywhere.
  if (!kvm && spec.clock == Clock::virtual_time) {
    // A fixed RTC base date too: the host's date would seed the guest's
    // randomness (hash seeds, udev's worker order) differently every run.
    argv.insert(argv.end(),
                {"-icount", "shift=0,sleep=off", "-rtc", "base=2025-01-01T00:00:00,clock=vm"});
  }
  argv.insert(argv.end(), {"-kernel", spec.kernel.string(), "-initrd", spec.initrd.string(),
                           "-append", spec.cmdline});
  for (int i = 0; i < spec.edu_devices; ++i)
    argv.insert(argv.end(), {"-device", profile.test_device});
  return argv;
}

} // namespace probegate::vm
