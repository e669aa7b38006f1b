// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "spec/run_spec.h"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace probegate::suite {

// One case of a suite after matrix expansion: a stable, readable id
// ("knobs/driver-cmdline/dev2", safe as a relative directory), the run to
// do, and why it is skipped, if it is.
struct Case {
  std::string id;
  spec::RunSpec spec;
  std::optional<std::string> skip;
  std::string where;        // file:line:column of the case, for messages
  std::string row;          // the id without its kernel segment: a row of the knob x kernel table
  std::string kernel_where; // file:line:column of its kernel value (else `where`)
};

struct Suite {
  std::string name;
  std::string description;
  std::vector<Case> cases;
};

inline constexpr size_t k_max_cases = 4096;

// Pure: YAML text -> Suite. `file` only names the source in messages. Every
// error is a usage error with file:line:column and what is allowed.
//
//   suite: knobs                 # name (default: the file's stem)
//   defaults: {kernel: debian:6.1, devices: 2}
//   matrix: {udev_timeout: [3, 180]}   # lists here, in defaults or in a
//   cases:                             # case expand to their cross product
//     - id: sync
//       expect_bound: 0
//     - id: driver-cmdline
//       async: driver-cmdline
//       skip: why, if it must not run
//       by_kernel:                       # options that differ on one kernel
//         debian:5.10: {expect_skip: yes}
core::Result<Suite> parse_suite(std::string_view text, std::string_view file);
core::Result<Suite> load_suite(const std::filesystem::path& file);

// Cases whose id matches the glob (fnmatch); all of them for "".
std::vector<Case> filter_cases(const std::vector<Case>& cases, std::string_view glob);

} // namespace probegate::suite
