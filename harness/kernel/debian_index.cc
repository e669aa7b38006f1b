// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/debian_index.h"

#include <algorithm>
#include <cctype>
#include <fmt/format.h>
#include <regex>
#include <set>
#include <sstream>

namespace probegate::kernel {

std::vector<std::string> image_releases(std::string_view pkgnames_output) {
  static const std::regex image(R"(linux-image-(\d+\.\d+[0-9.]*(-\d+|\+deb\d+(\.\d+)?)-amd64))");
  std::vector<std::string> out;
  std::istringstream in{std::string(pkgnames_output)};
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, image))
      out.push_back(m[1]);
  }
  std::ranges::sort(out, release_less);
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string line_of(std::string_view release) {
  const auto first = release.find('.');
  if (first == std::string_view::npos)
    return std::string(release);
  const auto end = release.find_first_not_of("0123456789", first + 1);
  return std::string(release.substr(0, end));
}

bool release_less(std::string_view a, std::string_view b) {
  size_t i = 0;
  size_t j = 0;
  while (i < a.size() && j < b.size()) {
    const bool da = std::isdigit(static_cast<unsigned char>(a[i])) != 0;
    const bool db = std::isdigit(static_cast<unsigned char>(b[j])) != 0;
    if (da && db) {
      size_t ei = i;
      size_t ej = j;
      while (ei < a.size() && std::isdigit(static_cast<unsigned char>(a[ei])))
        ++ei;
      while (ej < b.size() && std::isdigit(static_cast<unsigned char>(b[ej])))
        ++ej;
      const auto na = std::stoull(std::string(a.substr(i, ei - i)));
      const auto nb = std::stoull(std::string(b.substr(j, ej - j)));
      if (na != nb)
        return na < nb;
      i = ei;
      j = ej;
    } else {
      if (a[i] != b[j])
        return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

std::optional<std::string> newest_in_line(const std::vector<std::string>& releases,
                                          std::string_view line) {
  std::optional<std::string> best;
  for (const auto& release : releases) {
    if (line_of(release) == line && (!best || release_less(*best, release)))
      best = release;
  }
  return best;
}

std::vector<std::string> lines(const std::vector<std::string>& releases) {
  std::set<std::string,
           decltype([](const std::string& a, const std::string& b) { return release_less(a, b); })>
      out;
  for (const auto& release : releases)
    out.insert(line_of(release));
  return {out.begin(), out.end()};
}

std::vector<std::string> depends(std::string_view show_output) {
  std::istringstream in{std::string(show_output)};
  std::string line;
  std::vector<std::string> out;
  while (std::getline(in, line)) {
    if (!line.starts_with("Depends:"))
      continue;
    std::istringstream fields(line.substr(8));
    std::string field;
    while (std::getline(fields, field, ',')) {
      // "pkg (>= 1.0) | other" -> "pkg": the first alternative is what apt picks.
      std::istringstream words(field);
      std::string name;
      words >> name;
      if (!name.empty())
        out.push_back(name);
    }
    break;
  }
  return out;
}

std::vector<AptFile> parse_print_uris(std::string_view output) {
  std::istringstream in{std::string(output)};
  std::vector<AptFile> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with('\''))
      continue;
    std::istringstream words(line);
    std::string uri, name, size;
    words >> uri >> name >> size;
    const bool number = !size.empty() && size.size() < 20 &&
                        std::ranges::all_of(size, [](char c) { return c >= '0' && c <= '9'; });
    if (number && !name.empty() && name.find('/') == std::string::npos)
      out.push_back({name, std::stoull(size)});
  }
  return out;
}

std::vector<std::string> packages_for(std::string_view release,
                                      std::string_view headers_show_output) {
  std::vector<std::string> out{"linux-image-" + std::string(release),
                               "linux-headers-" + std::string(release)};
  for (const auto& dep : depends(headers_show_output)) {
    if (dep.starts_with("linux-headers-") || dep.starts_with("linux-kbuild-"))
      out.push_back(dep);
  }
  return out;
}

std::vector<std::string> image_parts(std::string_view release, std::string_view image_show_output) {
  std::vector<std::string> out;
  for (const auto& dep : depends(image_show_output)) {
    if (dep.find(release) != std::string::npos && !dep.starts_with("linux-modules-"))
      out.push_back(dep);
  }
  return out;
}

std::vector<DebianSuite> debian_suites(std::string_view mirror, std::string_view security_mirror) {
  auto main_line = [&](std::string_view suite) {
    return fmt::format("deb {} {} main", mirror, suite);
  };
  auto security = [&](std::string_view suite) {
    return fmt::format("deb {} {}-security main", security_mirror, suite);
  };
  return {
      {"bullseye", {main_line("bullseye"), security("bullseye")}},
      {"bookworm", {main_line("bookworm"), main_line("bookworm-updates"), security("bookworm")}},
      {"trixie", {main_line("trixie"), main_line("trixie-updates"), security("trixie")}},
      {"sid", {main_line("sid")}},
  };
}

std::optional<int> glibc_minor_needed(std::string_view elf) {
  if (!elf.starts_with("\x7f"
                       "ELF"))
    return std::nullopt;
  constexpr std::string_view tag = "GLIBC_2.";
  std::optional<int> best;
  for (auto at = elf.find(tag); at != std::string_view::npos; at = elf.find(tag, at + 1)) {
    int minor = 0;
    size_t i = at + tag.size();
    const size_t first = i;
    while (i < elf.size() && std::isdigit(static_cast<unsigned char>(elf[i])) && i - first < 4)
      minor = minor * 10 + (elf[i++] - '0');
    if (i > first && (i == elf.size() || elf[i] == '\0' || elf[i] == '.'))
      best = std::max(best.value_or(0), minor);
  }
  return best;
}

std::vector<std::string> module_make_vars(std::string_view kernel_config) {
  static const std::regex gcc_version(R"((^|\n)CONFIG_GCC_VERSION=(\d+))");
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_search(kernel_config.begin(), kernel_config.end(), m, gcc_version))
    return {};
  if (std::stol(m[2].str()) < 130000) // built with gcc-12 or older: gcc-12 takes every flag
    return {};
  std::vector<std::string> out;
  for (const auto* option :
       {"CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT", "CONFIG_DEBUG_INFO_BTF_MODULES"})
    if (kernel_config.find(fmt::format("\n{}=y", option)) != std::string_view::npos)
      out.push_back(fmt::format("{}=", option));
  return out;
}

} // namespace probegate::kernel
