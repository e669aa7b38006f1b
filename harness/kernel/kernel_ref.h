// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"

#include <string>
#include <string_view>

namespace probegate::kernel {

// A kernel as the user names it on the command line or in a suite
// (DESIGN.md "Kernel refs"). Pure data; KernelStore turns it into files.
struct KernelRef {
  enum class Kind { debian_abi, debian_line, debian_suite, file, tree };
  Kind kind = Kind::debian_line;
  std::string value;  // "6.1.0-56-amd64", "6.1", "sid", or a path
  std::string kbuild; // file: refs only
  std::string text;   // as written, for messages and result.json
};

core::Result<KernelRef> parse_kernel_ref(std::string_view text);

} // namespace probegate::kernel
