// SPDX-License-Identifier: GPL-2.0-only
#include "vm/accel.h"

#include "core/files.h"
#include "image/cpio.h"

namespace probegate::vm {

namespace fs = std::filesystem;

core::Result<AccelChoice> decide_accel(std::string_view requested, bool dev_kvm_exists,
                                       std::optional<bool> kvm_boots) {
  if (requested == "tcg")
    return AccelChoice{Accel::tcg, "TCG requested (--accel tcg)"};
  if (requested != "kvm" && requested != "auto")
    return core::usage_error("--accel must be auto, kvm or tcg, not '{}'", requested);
  if (!dev_kvm_exists) {
    if (requested == "kvm")
      return core::infra_error("--accel kvm: /dev/kvm does not exist on this host; use --accel "
                               "auto or tcg");
    return AccelChoice{Accel::tcg, "KVM unavailable (/dev/kvm is missing): using TCG with the "
                                   "virtual clock"};
  }
  if (kvm_boots.value_or(false))
    return AccelChoice{Accel::kvm, "KVM works (a probe boot reached the kernel banner)"};
  if (requested == "kvm")
    return core::infra_error("--accel kvm: /dev/kvm exists but a probe boot hung or failed; use "
                             "--accel auto or tcg");
  return AccelChoice{Accel::tcg, "KVM unusable (/dev/kvm exists but a probe boot hung): using "
                                 "TCG with the virtual clock"};
}

core::Result<AccelChoice> choose_accel(std::string_view requested, proc::ProcessRunner& runner,
                                       const fs::path& vmlinux, const fs::path& cache) {
  const bool dev_kvm = fs::exists("/dev/kvm");
  if (requested == "tcg" || !dev_kvm)
    return decide_accel(requested, dev_kvm, std::nullopt);
  std::string boot_id = "unknown";
  if (auto id = core::read_file("/proc/sys/kernel/random/boot_id"))
    boot_id = id->substr(0, id->find('\n'));
  const fs::path memo = cache / ("accel-" + boot_id);
  if (auto known = core::read_file(memo))
    return decide_accel(requested, true, *known == "kvm");

  // The tiny boot: no init at all, so the kernel panics at once; reaching
  // its banner proves KVM runs guests here.
  const fs::path empty_initrd = cache / "tmp" / "empty.cpio";
  auto empty = image::write_cpio({});
  if (!empty || !core::write_file_atomic(empty_initrd, *empty))
    return core::infra_error("cannot write {}", empty_initrd.string());
  VmSpec spec;
  spec.kernel = vmlinux;
  spec.initrd = empty_initrd;
  spec.accel = Accel::kvm;
  spec.clock = Clock::real_time;
  spec.cmdline = "console=ttyS0 panic=-1 rdinit=/probegate-no-init";
  core::Command probe;
  probe.argv = qemu_argv(spec);
  probe.timeout = std::chrono::seconds(30);
  bool banner = false;
  auto ran = runner.run(probe, [&](std::string_view line) {
    if (line.find("Linux version") != std::string_view::npos)
      banner = true;
    return banner ? proc::LineAction::stop : proc::LineAction::keep_going;
  });
  if (!ran)
    return std::unexpected(ran.error());
  (void)core::write_file_atomic(memo, banner ? "kvm" : "tcg");
  return decide_accel(requested, true, banner);
}

} // namespace probegate::vm
