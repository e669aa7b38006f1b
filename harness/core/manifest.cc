// SPDX-License-Identifier: GPL-2.0-only
#include "core/manifest.h"

#include "core/files.h"

#include <algorithm>
#include <charconv>
#include <fmt/format.h>

namespace probegate::core {

namespace fs = std::filesystem;

Result<std::vector<ManifestEntry>> compute_manifest(const fs::path& dir,
                                                    const std::vector<std::string>& skip) {
  std::vector<ManifestEntry> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file() || it->is_symlink())
      continue;
    std::string path = fs::relative(it->path(), dir).string();
    if (std::ranges::find(skip, path) != skip.end())
      continue;
    auto sha = sha256_file(it->path());
    if (!sha)
      return std::unexpected(sha.error());
    out.push_back({std::move(path), it->file_size(), std::move(*sha)});
  }
  if (ec)
    return infra_error("cannot list {}: {}", dir.string(), ec.message());
  std::ranges::sort(out, {}, &ManifestEntry::path);
  return out;
}

std::string format_manifest(const std::vector<ManifestEntry>& entries) {
  std::string out;
  for (const auto& e : entries)
    out += fmt::format("{} {} {}\n", e.sha256, e.size, e.path);
  return out;
}

Result<std::vector<ManifestEntry>> parse_manifest(std::string_view text) {
  std::vector<ManifestEntry> out;
  int number = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++number;
    const auto first = line.find(' ');
    const auto second = first == std::string_view::npos ? first : line.find(' ', first + 1);
    ManifestEntry e;
    if (second == std::string_view::npos || first != 64)
      return infra_error("manifest line {} is not '<sha256> <size> <path>'", number);
    e.sha256 = std::string(line.substr(0, first));
    const auto size = line.substr(first + 1, second - first - 1);
    if (std::from_chars(size.data(), size.data() + size.size(), e.size).ptr !=
        size.data() + size.size())
      return infra_error("manifest line {} has no size", number);
    e.path = std::string(line.substr(second + 1));
    out.push_back(std::move(e));
  }
  return out;
}

Status verify_manifest(const fs::path& dir,
                       const std::function<bool(const std::string& path)>& hash_fully,
                       HashMemo* memo) {
  auto text = read_file(dir / k_manifest_file);
  if (!text)
    return infra_error("{} has no {}", dir.string(), k_manifest_file);
  auto entries = parse_manifest(*text);
  if (!entries)
    return std::unexpected(entries.error());
  for (const auto& e : *entries) {
    const fs::path file = dir / e.path;
    std::error_code ec;
    const auto size = fs::file_size(file, ec);
    if (ec)
      return infra_error("{} is missing", e.path);
    if (size != e.size)
      return infra_error("{} has {} bytes, not {}", e.path, size, e.size);
    if (!hash_fully(e.path))
      continue;
    auto sha = memo != nullptr ? memo->sha256(file) : sha256_file(file);
    if (!sha)
      return std::unexpected(sha.error());
    if (*sha != e.sha256)
      return infra_error("{} has SHA-256 {}, not {}", e.path, sha->substr(0, 16),
                         e.sha256.substr(0, 16));
  }
  return {};
}

} // namespace probegate::core
