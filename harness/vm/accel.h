// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "proc/process_runner.h"
#include "vm/vm_spec.h"

#include <filesystem>
#include <optional>
#include <string>

namespace probegate::vm {

struct AccelChoice {
  Accel accel = Accel::tcg;
  std::string reason; // why, for the user and result.json
};

// Pure decision: `requested` is auto|kvm|tcg; `kvm_boots` is the result of a
// real tiny KVM boot (nullopt when none was tried because /dev/kvm is absent).
core::Result<AccelChoice> decide_accel(std::string_view requested, bool dev_kvm_exists,
                                       std::optional<bool> kvm_boots);

// --accel auto probes KVM with a real tiny boot of `vmlinux` (a /dev/kvm that
// exists may still hang guests: FACTS.md) and remembers the answer until the
// host reboots, in <cache>/accel-<boot id>.
core::Result<AccelChoice> choose_accel(std::string_view requested, proc::ProcessRunner& runner,
                                       const std::filesystem::path& vmlinux,
                                       const std::filesystem::path& cache);

} // namespace probegate::vm
