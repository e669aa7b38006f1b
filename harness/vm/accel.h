// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "proc/process_runner.h"
#include "vm/vm_spec.h"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace probegate::vm {

// How long the KVM probe boot may take to print the kernel banner. Under TCG
// the same boot prints it in about 0.2 s of wall time here, and KVM is faster
// still; a /dev/kvm that has not answered in 5 s hangs guests
// (docs/FACTS.md "KVM: absent or broken").
inline constexpr std::chrono::seconds k_kvm_probe_bound{5};

struct AccelChoice {
  Accel accel = Accel::tcg;
  std::string reason;                  // why, for the user and result.json
  std::optional<double> probe_bound_s; // set when a KVM probe decided (now or earlier)
};

// Pure decision: `requested` is auto|kvm|tcg; `kvm_boots` is the result of a
// real tiny KVM boot (nullopt when none was tried because /dev/kvm is absent).
core::Result<AccelChoice> decide_accel(std::string_view requested, bool dev_kvm_exists,
                                       std::optional<bool> kvm_boots);

// What the probe looks at on this host: the test seam of choose_accel().
struct KvmProbeHost {
  std::filesystem::path dev_kvm = "/dev/kvm";
  std::filesystem::path memo_dir; // host-wide, outlives every cache (core::runtime_root())
  std::filesystem::path scratch;  // where the probe's TempDir goes
  std::string boot_id;            // the memo is valid until the host reboots
  static KvmProbeHost current();
};

// --accel auto (and kvm) probes KVM with a real tiny boot of `vmlinux`,
// bounded by k_kvm_probe_bound: a /dev/kvm that exists may still hang guests
// (docs/FACTS.md "QEMU and acceleration"). The answer is remembered per host
// boot and per /dev/kvm device number in host.memo_dir, shared by every
// cache; the probe's scratch lives in a TempDir and goes with it.
core::Result<AccelChoice> choose_accel(std::string_view requested, proc::ProcessRunner& runner,
                                       const std::filesystem::path& vmlinux,
                                       const KvmProbeHost& host = KvmProbeHost::current());

} // namespace probegate::vm
