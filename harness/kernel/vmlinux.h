// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"

#include <string>
#include <string_view>

namespace probegate::kernel {

// Finds the compressed payload inside a bzImage (xz, zstd or gzip stream)
// and returns the uncompressed vmlinux ELF, which QEMU boots through the PVH
// entry far faster than the bzImage (docs/FACTS.md "Fastest boot under TCG").
// Pure: bytes in, bytes out.
core::Result<std::string> extract_vmlinux(std::string_view bzimage);

} // namespace probegate::kernel
