// SPDX-License-Identifier: GPL-2.0-only
#include "core/command.h"

#include <algorithm>

namespace probegate::core {

std::string shell_quote(std::string_view word) {
  const bool plain = !word.empty() && std::ranges::all_of(word, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("-_./=:,+@%").find(c) != std::string_view::npos;
  });
  if (plain)
    return std::string(word);
  std::string out = "'";
  for (char c : word) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  out += '\'';
  return out;
}

std::string to_shell(const Command& command) {
  std::string out;
  for (const auto& [key, value] : command.env)
    out += key + "=" + shell_quote(value) + " ";
  for (const auto& word : command.argv) {
    if (&word != &command.argv.front())
      out += ' ';
    out += shell_quote(word);
  }
  return out;
}

} // namespace probegate::core
