// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "core/hash_memo.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace probegate::core {

// What a cache entry held when it was published: every regular file's path
// (relative), size and SHA-256, so that damage done later (a disk error, a
// truncating copy, a stray edit) is found before the entry is used.
struct ManifestEntry {
  std::string path;
  std::uintmax_t size = 0;
  std::string sha256;
};

inline constexpr std::string_view k_manifest_file = "manifest.sha256";

// Every regular file below `dir` except `skip` (relative paths), sorted.
Result<std::vector<ManifestEntry>> compute_manifest(const std::filesystem::path& dir,
                                                    const std::vector<std::string>& skip);
// One line per file: "<sha256> <size> <path>".
std::string format_manifest(const std::vector<ManifestEntry>& entries);
// A usage-free parse: an infra error names the bad line.
Result<std::vector<ManifestEntry>> parse_manifest(std::string_view text);

// Checks `dir` against its manifest file: every listed file must exist with
// its size; the files `hash_fully` picks are hashed too (the others only
// stat'ed, for speed), through `memo` when given (a file unchanged since
// it was hashed is not read again). The error says which file is damaged
// and how.
Status verify_manifest(const std::filesystem::path& dir,
                       const std::function<bool(const std::string& path)>& hash_fully,
                       HashMemo* memo = nullptr);

} // namespace probegate::core
