// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "kernel/kernel_artifact.h"
#include "kernel/kernel_ref.h"
#include "proc/process_runner.h"

#include <filesystem>
#include <functional>
#include <string_view>

namespace probegate::kernel {

// Kernels built elsewhere: `file:<image>[,kbuild=<dir>]` and `tree:<dir>`
// (DESIGN.md "Kernel refs"). Turns the ref into a KernelArtifact whose small
// cache entry (<cache>/kernels/<file|tree>-<hash>/) holds artifact.json, the
// uncompressed vmlinux where one had to be extracted, and a modules/ folder
// with the depmod inputs (modules.builtin, .modinfo, .order) copied from the
// tree; large files stay where they are. The entry is keyed by the image's
// content, so a rebuilt tree gets a fresh entry.
core::Result<KernelArtifact>
fetch_local_kernel(const KernelRef& ref, proc::ProcessRunner& runner,
                   const std::filesystem::path& cache,
                   const std::function<void(std::string_view)>& progress);

} // namespace probegate::kernel
