// SPDX-License-Identifier: GPL-2.0-only
#include "image/userspace.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <sstream>

namespace probegate::image {

namespace {

bool library_package(std::string_view name) {
  return name.starts_with("lib") || name.starts_with("zlib");
}

// One package's dependency groups: each group lists alternatives; an
// alternative is a package or "<virtual>" followed by its providers.
struct Alternative {
  std::string name;
  std::vector<std::string> providers;
};
using Groups = std::vector<std::vector<Alternative>>;

std::map<std::string, Groups> parse_depends(std::string_view text) {
  std::map<std::string, Groups> out;
  std::istringstream in{std::string(text)};
  std::string line;
  Groups* current = nullptr;
  bool open_group = false; // the last alternative had a '|': the next one joins its group
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.empty())
      continue;
    if (line.front() != ' ' && line.front() != '|') {
      current = &out[line];
      open_group = false;
      continue;
    }
    if (!current)
      continue;
    if (line.starts_with("    ")) { // a provider of the virtual package above
      if (!current->empty() && !current->back().empty()) {
        const auto first = line.find_first_not_of(' ');
        current->back().back().providers.push_back(line.substr(first));
      }
      continue;
    }
    const bool alternative = line.starts_with(" |");
    const auto colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    const auto start = line.find_first_not_of(" |");
    const std::string kind_name = line.substr(start, colon - start);
    if (kind_name != "Depends" && kind_name != "PreDepends")
      continue;
    std::string name = line.substr(colon + 1);
    name.erase(0, name.find_first_not_of(' '));
    if (!open_group || current->empty())
      current->emplace_back();
    current->back().push_back({name, {}});
    open_group = alternative;
  }
  return out;
}

} // namespace

std::vector<std::string> userspace_packages(std::string_view depends_output,
                                            const std::vector<std::string>& roots) {
  const auto graph = parse_depends(depends_output);
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& root : roots)
    seen.insert(root);
  std::vector<std::string> order = roots;
  size_t next = 0;
  while (next < order.size()) {
    const std::string package = order[next++];
    out.push_back(package);
    const auto it = graph.find(package);
    if (it == graph.end())
      continue;
    for (const auto& group : it->second) {
      std::string chosen;
      for (const auto& alt : group) {
        if (alt.name.starts_with("<")) {
          if (!alt.providers.empty()) {
            chosen = alt.providers.front();
            break;
          }
          continue;
        }
        chosen = alt.name;
        break;
      }
      if (chosen.empty() || !library_package(chosen) || seen.contains(chosen))
        continue;
      seen.insert(chosen);
      order.push_back(chosen);
    }
  }
  return out;
}

std::vector<std::string> deb_file_names(std::string_view print_uris_output) {
  std::vector<std::string> out;
  std::istringstream in{std::string(print_uris_output)};
  std::string uri, file;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    if (!(words >> uri >> file) || !uri.starts_with("'") || !file.ends_with(".deb"))
      continue;
    out.push_back(file);
  }
  std::ranges::sort(out);
  return out;
}

std::string deb_package(std::string_view file_name) {
  return std::string(file_name.substr(0, file_name.find('_')));
}

int deb_major_version(const std::vector<std::string>& debs, std::string_view package) {
  for (const auto& deb : debs) {
    if (deb_package(deb) != package)
      continue;
    // package_[epoch:]version_arch.deb
    std::string_view version = std::string_view(deb).substr(package.size() + 1);
    if (const auto colon = version.find(':');
        colon != std::string_view::npos && colon < version.find('_'))
      version.remove_prefix(colon + 1);
    int major = 0;
    const auto [end, ec] = std::from_chars(version.data(), version.data() + version.size(), major);
    return ec == std::errc{} && end != version.data() ? major : 0;
  }
  return 0;
}

core::Result<std::map<std::string, std::vector<std::string>>>
root_keep_globs(std::string_view text) {
  std::map<std::string, std::vector<std::string>> out;
  std::istringstream in{std::string(text)};
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (const auto hash = line.find('#'); hash != std::string::npos)
      line.resize(hash);
    std::istringstream words(line);
    std::string package;
    if (!(words >> package))
      continue;
    if (!package.ends_with(':'))
      return core::usage_error("line {}: '{}' is not 'package: glob ...'", number, package);
    package.pop_back();
    auto& globs = out[package];
    for (std::string glob; words >> glob;)
      globs.push_back(glob);
    if (globs.empty())
      return core::usage_error("line {}: {} keeps no file (no globs after the colon)", number,
                               package);
  }
  return out;
}

bool library_name(std::string_view path) {
  const auto slash = path.rfind('/');
  const auto name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const auto so = name.find(".so");
  return so != std::string_view::npos && so > 0 && (so + 3 == name.size() || name[so + 3] == '.');
}

} // namespace probegate::image
