// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace probegate::core {

// Guest output is untrusted: replaces every invalid UTF-8 sequence with
// U+FFFD so that JSON, XML and terminals only ever see valid text.
std::string sanitize_utf8(std::string_view text);
// sanitize_utf8, and every control character, C0 and C1 (escape sequences,
// bells, carriage returns, U+009B CSI) replaced by a space: safe to print on
// a terminal.
std::string printable(std::string_view text);
// Text for XML (and HTML): markup characters escaped, invalid UTF-8 and the
// control characters XML 1.0 forbids replaced.
std::string xml_escape(std::string_view text);

// Text that may reach a terminal: valid UTF-8 without C0 controls (but
// newline and tab), DEL or C1 controls (U+0080..U+009F, e.g. U+009B CSI).
// The offset of the first byte that breaks this, or npos. The tests and
// the fuzzers check probegate's output with it.
size_t first_unsafe_byte(std::string_view text);

// UTC now as results directories name it: 20261130-165646.
std::string time_stamp();

// A whole decimal integer ("252"); nullopt for "", "25x", " 2" or overflow.
std::optional<int> parse_int(std::string_view text);

} // namespace probegate::core
