// SPDX-License-Identifier: GPL-2.0-only
#include "vm/accel.h"

#include "core/files.h"
#include "core/text.h"
#include "image/cpio.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

namespace probegate::vm {

namespace fs = std::filesystem;

namespace {

constexpr double k_bound_s = static_cast<double>(k_kvm_probe_bound.count());

// The memo's name: one answer per host boot and per device behind /dev/kvm
// (a different node at /dev/kvm, in a container or a test, is asked anew).
std::string memo_name(const KvmProbeHost& host) {
  struct stat st {};
  std::string device = "none";
  if (::stat(host.dev_kvm.c_str(), &st) == 0)
    device = S_ISCHR(st.st_mode) ? fmt::format("c{}-{}", major(st.st_rdev), minor(st.st_rdev))
                                 : fmt::format("ino{}", static_cast<unsigned long>(st.st_ino));
  return fmt::format("kvm-probe-{}-{}", host.boot_id, device);
}

// The tiny boot: no init at all, so the kernel panics at once; reaching its
// banner within the bound proves KVM runs guests here.
struct ProbeAnswer {
  bool boots = false;
  std::string detail; // how a failed probe ended, for the reason
};

ProbeAnswer answer_of(bool banner, const proc::ProcessResult& ran) {
  if (banner)
    return {true, ""};
  if (ran.timed_out)
    return {false, "it hung"};
  std::string tail = ran.tail;
  while (!tail.empty() && tail.back() == '\n')
    tail.pop_back();
  const auto last = tail.rfind('\n');
  return {false, fmt::format("QEMU ended with {} {}: {}", ran.signal ? "signal" : "exit",
                             ran.signal ? ran.signal : ran.exit_code,
                             last == std::string::npos ? tail : tail.substr(last + 1))};
}

core::Result<ProbeAnswer> probe_kvm(proc::ProcessRunner& runner, const fs::path& vmlinux,
                                    const KvmProbeHost& host) {
  auto scratch = core::TempDir::create(host.scratch, "probegate-kvm-probe-");
  if (!scratch)
    return std::unexpected(scratch.error());
  const fs::path empty_initrd = scratch->path() / "empty.cpio";
  auto empty = image::write_cpio({});
  if (!empty)
    return std::unexpected(empty.error());
  if (auto written = core::write_file_atomic(empty_initrd, *empty); !written)
    return std::unexpected(written.error());
  VmSpec spec;
  spec.kernel = vmlinux;
  spec.initrd = empty_initrd;
  spec.accel = Accel::kvm;
  spec.clock = Clock::real_time;
  spec.cmdline = "console=ttyS0 panic=-1 rdinit=/probegate-no-init";
  core::Command probe;
  probe.argv = qemu_argv(spec);
  probe.timeout = k_kvm_probe_bound;
  bool banner = false;
  auto ran = runner.run(probe, [&](std::string_view line) {
    if (line.find("Linux version") != std::string_view::npos)
      banner = true;
    return banner ? proc::LineAction::stop : proc::LineAction::keep_going;
  });
  if (!ran)
    return std::unexpected(ran.error());
  return answer_of(banner, *ran);
}

} // namespace

core::Result<AccelChoice> decide_accel(std::string_view requested, bool dev_kvm_exists,
                                       std::optional<bool> kvm_boots) {
  if (requested == "tcg")
    return AccelChoice{Accel::tcg, "TCG requested (--accel tcg)", std::nullopt};
  if (requested != "kvm" && requested != "auto")
    return core::usage_error("--accel must be auto, kvm or tcg, not '{}'", requested);
  if (!dev_kvm_exists) {
    if (requested == "kvm")
      return core::infra_error("--accel kvm: /dev/kvm does not exist on this host; use --accel "
                               "auto or tcg");
    return AccelChoice{Accel::tcg,
                       "KVM unavailable (/dev/kvm is missing): using TCG with the virtual clock",
                       std::nullopt};
  }
  if (kvm_boots.value_or(false))
    return AccelChoice{
        Accel::kvm,
        fmt::format("KVM works (a probe boot reached the kernel banner within {} s)", k_bound_s),
        k_bound_s};
  if (requested == "kvm")
    return core::infra_error("--accel kvm: /dev/kvm exists but a probe boot did not reach the "
                             "kernel banner within {} s; use --accel auto or tcg",
                             k_bound_s);
  return AccelChoice{Accel::tcg,
                     fmt::format("KVM unusable (/dev/kvm exists but a probe boot did not reach "
                                 "the kernel banner within {} s): using TCG with the virtual clock",
                                 k_bound_s),
                     k_bound_s};
}

KvmProbeHost KvmProbeHost::current() {
  std::error_code ec;
  return {"/dev/kvm", core::runtime_root(), fs::temp_directory_path(ec), core::host_boot_id()};
}

core::Result<AccelChoice> choose_accel(std::string_view requested, proc::ProcessRunner& runner,
                                       const fs::path& vmlinux, const KvmProbeHost& host) {
  const bool dev_kvm = fs::exists(host.dev_kvm);
  if (requested == "tcg" || !dev_kvm)
    return decide_accel(requested, dev_kvm, std::nullopt);
  if (requested != "kvm" && requested != "auto")
    return decide_accel(requested, dev_kvm, std::nullopt);
  const fs::path memo = host.memo_dir / memo_name(host);
  if (auto known = core::read_file(memo); known && (*known == "kvm" || *known == "tcg")) {
    auto choice = decide_accel(requested, true, *known == "kvm");
    if (choice)
      choice->reason += fmt::format("; remembered since this host booted ({})", memo.string());
    return choice;
  }
  auto probed = probe_kvm(runner, vmlinux, host);
  if (!probed)
    return std::unexpected(probed.error());
  // A memo that cannot be written only costs the next run another probe.
  (void)core::write_file_atomic(memo, probed->boots ? "kvm" : "tcg");
  auto choice = decide_accel(requested, true, probed->boots);
  if (!probed->detail.empty()) {
    if (choice)
      choice->reason += fmt::format(" ({})", core::printable(probed->detail));
    else
      choice.error().message += fmt::format(" ({})", core::printable(probed->detail));
  }
  return choice;
}

} // namespace probegate::vm
