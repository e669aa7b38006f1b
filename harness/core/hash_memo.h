// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace probegate::core {

// Its name in a cache entry.
inline constexpr std::string_view k_hash_memo_file = "hashes.json";

// What stat(2) says of a file. Every write, truncation, chmod or rename
// over it changes its ctime or its inode, and user space cannot set a ctime
// back (docs/CONTRACTS.md "What the cache trusts").
struct FileStamp {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

std::optional<FileStamp> file_stamp(const std::filesystem::path& path);

// The SHA-256 of a cache entry's files, remembered in a memo file beside
// them with each file's stamp when it was hashed: a file whose stamp is
// unchanged is not read again, so a process need not hash hundreds of
// megabytes before every use. A hash is remembered only when the file's
// ctime is older than `settled`: a write within the same timestamp tick
// (coarse: a jiffy) would keep the ctime it was hashed with.
class HashMemo {
public:
  static constexpr std::chrono::seconds k_settled{2};

  // A missing or unreadable memo is empty: every file is hashed.
  static HashMemo load(std::filesystem::path memo_file, std::chrono::seconds settled = k_settled);

  // The file's SHA-256: the memo's when the file's stamp is the one it was
  // hashed with, else read and hashed (and remembered once settled).
  Result<std::string> sha256(const std::filesystem::path& file);

  // Writes the memo when a hash was added. A failure (a read-only cache,
  // say) costs only a hash next time, so it is not an error.
  void save();

private:
  struct Known {
    FileStamp stamp;
    std::string sha256;
  };
  HashMemo(std::filesystem::path file, std::chrono::seconds settled)
      : m_file(std::move(file)), m_settled(settled) {}
  std::string key(const std::filesystem::path& file) const;

  std::filesystem::path m_file;
  std::chrono::seconds m_settled;
  std::map<std::string, Known> m_known;
  bool m_added = false;
};

} // namespace probegate::core
