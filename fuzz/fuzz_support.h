// SPDX-License-Identifier: GPL-2.0-only
// Checks shared by the fuzzers. A sanitizer report, an uncaught exception or
// a broken invariant ends the run with a crash input that libFuzzer keeps.
#pragma once

#include "core/text.h"

#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

namespace probegate::fuzz {

// Invariants already reported (a kept input under
// harness/testdata/fuzz-findings/ each) are tolerated when their names are in
// $PROBEGATE_FUZZ_KNOWN (comma-separated), so that the fuzzers keep measuring
// until the bug is fixed; bench/fuzz.sh sets it from fuzz-findings/KNOWN.
inline bool is_known(std::string_view name) {
  static const std::set<std::string, std::less<>> known = [] {
    std::set<std::string, std::less<>> out;
    if (const char* env = std::getenv("PROBEGATE_FUZZ_KNOWN")) {
      std::stringstream in{std::string(env)};
      for (std::string item; std::getline(in, item, ',');)
        if (!item.empty())
          out.insert(item);
    }
    return out;
  }();
  return known.contains(name);
}

// Bytes as a C string literal would show them, so that the report itself
// puts nothing raw on the terminal.
inline std::string escaped(std::string_view text, size_t limit = 400) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (text.size() > limit)
    out += "...";
  return out;
}

inline void invariant(bool ok, std::string_view name, std::string_view detail) {
  if (ok || is_known(name))
    return;
  std::fprintf(stderr, "==probegate-fuzz== invariant '%.*s' broken: %s\n",
               static_cast<int>(name.size()), name.data(), escaped(detail).c_str());
  std::abort();
}

inline void terminal_safe(std::string_view text, std::string_view name) {
  const size_t at = core::first_unsafe_byte(text);
  if (at == std::string_view::npos)
    return;
  const size_t from = at > 40 ? at - 40 : 0;
  invariant(false, name, text.substr(from, 120));
}

} // namespace probegate::fuzz
