// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"

#include <string>
#include <string_view>
#include <vector>

namespace probegate::kernel {

// A kernel as the user names it on the command line or in a suite
// (docs/CONTRACTS.md "Kernel refs"). Pure data; KernelStore turns it into files.
struct KernelRef {
  enum class Kind { debian_abi, debian_line, debian_suite, file, tree, build };
  Kind kind = Kind::debian_line;
  std::string value;  // "6.1.0-56-amd64", "6.1", "sid", or a path
  std::string kbuild; // file: refs only
  // build: refs (`build:linux-source-6.1[,fragment=F][,builtin-slowprobe]`):
  // built by `kernels build` on first use, then booted as its tree.
  std::vector<std::string> fragments;
  bool builtin_slowprobe = false;
  std::string text; // as written, for messages and result.json
};

core::Result<KernelRef> parse_kernel_ref(std::string_view text);

} // namespace probegate::kernel
