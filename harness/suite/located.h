// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"

#include <algorithm>
#include <fmt/core.h>
#include <string>
#include <utility>
#include <yaml-cpp/yaml.h>

namespace probegate::suite {

// Where a YAML node sits in the file a user wrote (suites, hosts files):
// every usage error about it starts with file:line:column.
struct Located {
  std::string file;
  std::string at(const YAML::Mark& m) const {
    // An empty document has no mark (-1): it is line 1.
    return fmt::format("{}:{}:{}", file, std::max(m.line, 0) + 1, std::max(m.column, 0) + 1);
  }
  template <typename... Args>
  std::unexpected<core::Error> error(const YAML::Mark& m, fmt::format_string<Args...> f,
                                     Args&&... args) const {
    return core::usage_error("{}: {}", at(m), fmt::format(f, std::forward<Args>(args)...));
  }
};

} // namespace probegate::suite
