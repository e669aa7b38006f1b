// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace probegate::image {

// A path inside an unpacked tree, with every symlink on the way resolved
// against the tree's root (never the host's /): "lib64/ld-linux-x86-64.so.2"
// in a usr-merged tree ends in usr/lib/x86_64-linux-gnu/….
struct TreePath {
  std::string path;               // the file finally reached, relative to the root
  std::vector<std::string> links; // the symlinks followed, relative to the root
};
std::optional<TreePath> resolve_in_tree(const std::filesystem::path& root, std::string_view path);

// The shared objects the ELF files `starts` (paths relative to `root`) need
// to run inside that tree, as the guest's ld.so finds them: PT_INTERP,
// DT_NEEDED through DT_RUNPATH/DT_RPATH ($ORIGIN too) and the default
// directories, recursively, plus the libraries their dlopen notes name
// where the tree has them (optional by nature: none is an error). Returns
// every file and symlink to keep (the starts included). A needed soname or
// interpreter the tree lacks is an infra error naming the ELF file and it.
core::Result<std::set<std::string>> library_closure(const std::filesystem::path& root,
                                                    const std::vector<std::string>& starts);

} // namespace probegate::image
