// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/debian_index.h"

#include <algorithm>
#include <cctype>
#include <regex>
#include <set>
#include <sstream>

namespace probegate::kernel {

std::vector<std::string> image_releases(std::string_view pkgnames_output) {
  static const std::regex image(R"(linux-image-(\d+\.\d+[0-9.]*(-\d+|\+deb\d+)-amd64))");
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

} // namespace probegate::kernel
