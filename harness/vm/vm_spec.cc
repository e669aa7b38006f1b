// SPDX-License-Identifier: GPL-2.0-only
#include "vm/vm_spec.h"

#include <fmt/core.h>

namespace probegate::vm {

// QEMU's option syntax doubles a comma inside a value.
std::string option_value(const std::filesystem::path& path) {
  std::string out;
  for (char c : path.string()) {
    out += c;
    if (c == ',')
      out += ',';
  }
  return out;
}

std::vector<std::string> device_args(const VmSpec& spec, const QemuProfile& profile) {
  std::vector<std::string> args;
  for (int i = 0; i < spec.edu_devices; ++i)
    args.insert(args.end(), {"-device", profile.test_device});
  // Guest-visible: the same on every boot. A guest panic notification is
  // ignored (the console says it) unless the guest is meant to stop there.
  args.insert(args.end(), {"-device", "pvpanic", "-action",
                           spec.guest_can_pause ? "panic=pause" : "panic=none"});
  if (!spec.config_file.empty())
    args.insert(args.end(), {"-fw_cfg", fmt::format("name={},file={}", k_config_fw_cfg,
                                                    option_value(spec.config_file))});
  return args;
}

std::vector<std::string> qemu_argv(const VmSpec& spec, const QemuProfile& profile) {
  const bool kvm = spec.accel == Accel::kvm;
  std::vector<std::string> argv{
      profile.binary,
      "-machine",
      fmt::format("{},accel={}{}", profile.machine, kvm ? "kvm" : "tcg",
                  spec.ram_file.empty() ? "" : fmt::format(",memory-backend={}", k_ram_backend)),
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
      // The serial port as a device, after the machine's own (libvirt's
      // way): its place among the ISA devices is guest-visible.
      "-chardev",
      "stdio,id=charserial0",
      "-device",
      "isa-serial,chardev=charserial0,id=serial0,index=0",
      "-net",
      "none",
  };
  if (!spec.ram_file.empty())
    argv.insert(argv.end(),
                {"-object", fmt::format("memory-backend-file,id={},size={}M,mem-path={},share={}",
                                        k_ram_backend, spec.memory_mb, option_value(spec.ram_file),
                                        spec.ram_shared ? "on" : "off")});
  // No -cpu host: it aborts on some broken KVM hosts
  // (docs/FACTS.md "KVM: absent or broken"); the default model boots Debian kernels everywhere.
  if (!kvm && spec.clock == Clock::virtual_time) {
    // A fixed RTC base date too: the host's date would seed the guest's
    // randomness (hash seeds, udev's worker order) differently every run.
    argv.insert(argv.end(),
                {"-icount", k_icount, "-rtc", fmt::format("base={},clock=vm", k_rtc_base)});
  }
  argv.insert(argv.end(), {"-kernel", spec.kernel.string(), "-initrd", spec.initrd.string(),
                           "-append", spec.cmdline});
  const auto devices = device_args(spec, profile);
  argv.insert(argv.end(), devices.begin(), devices.end());
  if (!spec.qmp_socket.empty())
    argv.insert(argv.end(),
                {"-chardev",
                 fmt::format("socket,id=qmp,path={},server=off", option_value(spec.qmp_socket)),
                 "-mon", "chardev=qmp,mode=control"});
  if (spec.incoming)
    argv.insert(argv.end(), {"-incoming", "defer"});
  return argv;
}

} // namespace probegate::vm
