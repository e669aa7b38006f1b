// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/kernel_ref.h"

#include "kernel/debian_index.h"

#include <regex>

namespace probegate::kernel {

namespace {

constexpr std::string_view k_forms =
    "debian:<line> (debian:6.1), debian:<abi> (debian:6.1.0-56-amd64), debian:<suite> "
    "(debian:sid), build:<source>[,fragment=<file>][,builtin-slowprobe] "
    "(build:linux-source-6.1), "
    "file:<image>[,kbuild=<dir>] or tree:<built kernel source dir>";

bool is_known_suite(const std::string& name) {
  for (const auto& suite : debian_suites("", ""))
    if (suite.name == name)
      return true;
  return false;
}

} // namespace

core::Result<KernelRef> parse_kernel_ref(std::string_view text) {
  KernelRef ref;
  ref.text = std::string(text);
  const auto colon = text.find(':');
  if (colon == std::string_view::npos || colon + 1 == text.size())
    return core::usage_error("kernel ref '{}' is not one of {}", text, k_forms);
  const std::string scheme(text.substr(0, colon));
  std::string rest(text.substr(colon + 1));
  if (scheme == "debian") {
    static const std::regex line(R"(\d+\.\d+)");
    static const std::regex abi(R"(\d+\.\d+(\.\d+)*(-\d+|\+deb\d+(\.\d+)?)(-amd64)?)");
    static const std::regex suite(R"([a-z]+)");
    if (std::regex_match(rest, line)) {
      ref.kind = KernelRef::Kind::debian_line;
    } else if (std::regex_match(rest, suite) && is_known_suite(rest)) {
      ref.kind = KernelRef::Kind::debian_suite;
    } else if (std::regex_match(rest, abi)) {
      ref.kind = KernelRef::Kind::debian_abi;
      if (!rest.ends_with("-amd64"))
        rest += "-amd64";
    } else {
      return core::usage_error("kernel ref '{}': '{}' is neither a Debian line (6.1), an "
                               "ABI (6.1.0-56-amd64) nor a suite (bullseye, bookworm, trixie, sid)",
                               text, rest);
    }
    ref.value = rest;
    return ref;
  }
  if (scheme == "file") {
    ref.kind = KernelRef::Kind::file;
    if (const auto comma = rest.find(",kbuild="); comma != std::string::npos) {
      ref.kbuild = rest.substr(comma + 8);
      rest.resize(comma);
    }
    ref.value = rest;
    return ref;
  }
  if (scheme == "build") {
    ref.kind = KernelRef::Kind::build;
    std::vector<std::string> parts;
    for (size_t at; (at = rest.find(',')) != std::string::npos; rest.erase(0, at + 1))
      parts.push_back(rest.substr(0, at));
    parts.push_back(rest);
    ref.value = parts.front();
    if (ref.value.empty())
      return core::usage_error(
          "kernel ref '{}': build: needs a source, e.g. build:linux-source-6.1", text);
    for (size_t i = 1; i < parts.size(); ++i) {
      if (parts[i] == "builtin-slowprobe")
        ref.builtin_slowprobe = true;
      else if (parts[i].starts_with("fragment=") && parts[i].size() > 9)
        ref.fragments.push_back(parts[i].substr(9));
      else
        return core::usage_error("kernel ref '{}': '{}' is neither fragment=<file> nor "
                                 "builtin-slowprobe",
                                 text, parts[i]);
    }
    return ref;
  }
  if (scheme == "tree") {
    ref.kind = KernelRef::Kind::tree;
    ref.value = rest;
    return ref;
  }
  return core::usage_error("kernel ref '{}': unknown scheme '{}:'; use {}", text, scheme, k_forms);
}

} // namespace probegate::kernel
