// SPDX-License-Identifier: GPL-2.0-only
#include "image/lib_closure.h"

#include "core/files.h"
#include "image/elf_needs.h"

#include <deque>
#include <fmt/format.h>
#include <map>

namespace probegate::image {

namespace fs = std::filesystem;

namespace {

// ld.so's default directories on Debian amd64 (no ld.so.cache in the
// guest), then lib64 where the interpreter lives.
const std::vector<std::string> k_default_dirs{
    "lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib", "usr/lib", "lib64", "usr/lib64"};

constexpr int k_max_links = 40; // as the kernel's ELOOP limit

std::deque<std::string> components(std::string_view path) {
  std::deque<std::string> out;
  while (!path.empty()) {
    const auto slash = path.find('/');
    if (auto part = path.substr(0, slash); !part.empty() && part != ".")
      out.emplace_back(part);
    if (slash == std::string_view::npos)
      break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts)
    out += (out.empty() ? "" : "/") + p;
  return out;
}

std::string dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

} // namespace

std::optional<TreePath> resolve_in_tree(const fs::path& root, std::string_view path) {
  TreePath out;
  std::vector<std::string> done;
  auto todo = components(path);
  int hops = 0;
  while (!todo.empty()) {
    std::string part = std::move(todo.front());
    todo.pop_front();
    if (part == "..") {
      if (!done.empty())
        done.pop_back();
      continue;
    }
    done.push_back(part);
    const std::string here = join(done);
    std::error_code ec;
    const auto status = fs::symlink_status(root / here, ec);
    if (ec || !fs::exists(status))
      return std::nullopt;
    if (!fs::is_symlink(status))
      continue;
    if (++hops > k_max_links)
      return std::nullopt;
    out.links.push_back(here);
    const std::string target = fs::read_symlink(root / here, ec).string();
    if (ec)
      return std::nullopt;
    done.pop_back();
    if (target.starts_with("/"))
      done.clear();
    auto more = components(target);
    todo.insert(todo.begin(), more.begin(), more.end());
  }
  out.path = join(done);
  return out;
}

core::Result<std::set<std::string>> library_closure(const fs::path& root,
                                                    const std::vector<std::string>& starts) {
  std::set<std::string> keep;
  std::deque<std::string> todo; // resolved files still to read
  std::set<std::string> read;
  auto take = [&](const TreePath& found) {
    for (const auto& link : found.links)
      keep.insert(link);
    keep.insert(found.path);
    if (read.insert(found.path).second)
      todo.push_back(found.path);
  };
  for (const auto& start : starts) {
    auto found = resolve_in_tree(root, start);
    if (!found)
      return core::infra_error("{} is not in the unpacked tree {}", start, root.string());
    take(*found);
  }
  // A soname -> where it was found from a given search list; the same
  // library is looked up by many objects.
  std::map<std::pair<std::string, std::vector<std::string>>, std::optional<TreePath>> memo;
  auto find = [&](const std::string& soname,
                  const std::vector<std::string>& dirs) -> std::optional<TreePath> {
    auto key = std::make_pair(soname, dirs);
    if (auto it = memo.find(key); it != memo.end())
      return it->second;
    std::optional<TreePath> found;
    for (const auto& dir : dirs) {
      found = resolve_in_tree(root, dir + "/" + soname);
      if (found && fs::is_regular_file(root / found->path))
        break;
      found.reset();
    }
    memo[key] = found;
    return found;
  };

  // Sonames already loaded: like ld.so, a later object's need of the same
  // soname is met by it, whatever that object's own search path (systemd's
  // libsystemd-core needs libsystemd-shared, which only the executable's
  // RUNPATH finds).
  std::set<std::string> loaded;
  while (!todo.empty()) {
    const std::string file = todo.front();
    todo.pop_front();
    auto bytes = core::read_file(root / file);
    if (!bytes)
      return std::unexpected(bytes.error());
    auto needs = read_elf_needs(*bytes);
    if (!needs)
      return core::infra_error("/{}: {}", file, needs.error().message);
    if (!*needs)
      continue; // a script or data: nothing to load
    const auto& elf = **needs;
    if (!elf.interp.empty()) {
      auto found = resolve_in_tree(root, elf.interp);
      if (!found || !fs::is_regular_file(root / found->path))
        return core::infra_error("/{} needs the interpreter {}, which no package of the base "
                                 "layer provides",
                                 file, elf.interp);
      take(*found);
    }
    std::vector<std::string> dirs;
    for (const auto& entry : elf.runpath) {
      std::string dir = entry;
      for (const std::string_view origin : {"$ORIGIN", "${ORIGIN}"})
        for (auto at = dir.find(origin); at != std::string::npos; at = dir.find(origin))
          dir.replace(at, origin.size(), "/" + dir_of(file));
      dirs.push_back(dir);
    }
    dirs.insert(dirs.end(), k_default_dirs.begin(), k_default_dirs.end());
    for (const auto& soname : elf.needed) {
      if (loaded.contains(soname))
        continue;
      auto found = soname.find('/') == std::string::npos ? find(soname, dirs)
                                                         : resolve_in_tree(root, soname);
      if (!found)
        return core::infra_error("/{} needs {}, which no package of the base layer provides", file,
                                 soname);
      take(*found);
      loaded.insert(soname);
    }
    for (const auto& alternatives : elf.dlopen)
      for (const auto& soname : alternatives)
        if (auto found = find(soname, dirs)) {
          take(*found);
          break;
        }
  }
  return keep;
}

} // namespace probegate::image
