// SPDX-License-Identifier: GPL-2.0-only
// Checks shared by the fuzzers. A sanitizer report, an uncaught exception or
// a broken invariant ends the run with a crash input that libFuzzer keeps.
#pragma once

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

// Text that may reach a terminal: valid UTF-8 without C0 controls (except
// newline and tab), DEL or C1 controls (U+0080..U+009F, e.g. U+009B CSI).
// Returns the offset of the first offending byte, or npos.
inline size_t first_unsafe_byte(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
        return i;
      ++i;
      continue;
    }
    size_t length = 0;
    unsigned code = 0;
    unsigned min = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
      code = c & 0x1Fu;
      min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      code = c & 0x0Fu;
      min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      code = c & 0x07u;
      min = 0x10000;
    } else {
      return i;
    }
    if (i + length > text.size())
      return i;
    for (size_t k = 1; k < length; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80)
        return i;
      code = (code << 6) | (cc & 0x3Fu);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF) ||
        (code >= 0x80 && code <= 0x9F))
      return i;
    i += length;
  }
  return std::string_view::npos;
}

inline void terminal_safe(std::string_view text, std::string_view name) {
  const size_t at = first_unsafe_byte(text);
  if (at == std::string_view::npos)
    return;
  const size_t from = at > 40 ? at - 40 : 0;
  invariant(false, name, text.substr(from, 120));
}

} // namespace probegate::fuzz
