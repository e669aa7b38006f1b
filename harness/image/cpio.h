// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace probegate::image {

// One member of an initramfs layer. Pure data: InitramfsSpec is a list of these.
struct CpioEntry {
  enum class Type { file, dir, symlink, chardev };
  std::string path; // relative, no leading slash
  Type type = Type::file;
  std::uint32_t mode = 0644; // permission bits
  std::string data;          // file contents
  std::string target;        // symlink target
  std::uint32_t dev_major = 0;
  std::uint32_t dev_minor = 0;
};

// Writes entries as one newc cpio archive (uncompressed, padded to 4 bytes so
// layers concatenate): fixed mtime 0, uid/gid 0, inode numbers in order, so
// the same entries always give the same bytes.
core::Result<std::string> write_cpio(const std::vector<CpioEntry>& entries);

// Every file, directory and symlink below `root`, sorted by path, minus the
// paths matching one of `excludes` (fnmatch globs on the relative path).
core::Result<std::vector<CpioEntry>> entries_from_tree(const std::filesystem::path& root,
                                                       const std::vector<std::string>& excludes);

// The member names of one cpio archive, read back with libarchive.
core::Result<std::vector<std::string>> list_cpio(std::string_view bytes);

} // namespace probegate::image
