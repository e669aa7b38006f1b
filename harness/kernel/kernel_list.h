// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "kernel/kernel_store.h"

#include <filesystem>
#include <string>

namespace probegate::kernel {

// `probegate kernels list`, in two parts (the second may wait on the
// network): the cached kernels with their knobs, then what can be fetched,
// per line and per suite (the newest ABI of each). `offline`: from the saved
// package indexes only.
std::string cached_kernels(const KernelStore& store, const std::filesystem::path& cache);
core::Result<std::string> fetchable_kernels(KernelStore& store, bool offline);

} // namespace probegate::kernel
