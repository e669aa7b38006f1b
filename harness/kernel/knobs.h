// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace probegate::kernel {

// Async-probe knobs, read from the kernel image itself rather than guessed
// from its version (stable lines carry backports;
// docs/FACTS.md "Kernel history of the async-probe knobs").
// Each key is the name the kernel registers, so a string search of the
// uncompressed image finds it:
//   "async_probe"         per-module parameter, handled by the module loader (4.2)
//   "driver_async_probe=" boot option, a __setup() string (5.1)
//   "module.async_probe"  default for every module, a core parameter (6.0)
inline constexpr std::string_view k_knob_module_param = "async_probe";
inline constexpr std::string_view k_knob_driver_cmdline = "driver_async_probe=";
inline constexpr std::string_view k_knob_module_default = "module.async_probe";

using KnobSupport = std::map<std::string, bool>;

// Searches an uncompressed kernel image (vmlinux) for each knob's name as a
// NUL-terminated string.
KnobSupport detect_knobs(std::string_view vmlinux);

} // namespace probegate::kernel
