// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/knobs.h"

#include <algorithm>
#include <functional>

namespace probegate::kernel {

namespace {

// `name` followed by its NUL terminator. The linker merges string tails
// ("async_probe" may live inside "module.async_probe"), so only the end is
// anchored; the longer names are specific enough not to need a start.
bool has_c_string(std::string_view image, std::string_view name) {
  std::string needle(name);
  needle.push_back('\0');
  const std::boyer_moore_horspool_searcher searcher(needle.begin(), needle.end());
  return std::search(image.begin(), image.end(), searcher) != image.end();
}

} // namespace

KnobSupport detect_knobs(std::string_view vmlinux) {
  KnobSupport out;
  for (auto name : {k_knob_module_param, k_knob_driver_cmdline, k_knob_module_default})
    out[std::string(name)] = has_c_string(vmlinux, name);
  return out;
}

} // namespace probegate::kernel
