// SPDX-License-Identifier: GPL-2.0-only
#include "core/hash_memo.h"

#include "core/files.h"

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

namespace probegate::core {

namespace fs = std::filesystem;

namespace {

std::int64_t nanoseconds(const timespec& t) {
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

nlohmann::json to_json(const FileStamp& s) {
  return {{"dev", s.dev},
          {"ino", s.ino},
          {"size", s.size},
          {"mtime_ns", s.mtime_ns},
          {"ctime_ns", s.ctime_ns}};
}

FileStamp stamp_from(const nlohmann::json& j) {
  return {j.value("dev", std::uint64_t{0}), j.value("ino", std::uint64_t{0}),
          j.value("size", std::uint64_t{0}), j.value("mtime_ns", std::int64_t{0}),
          j.value("ctime_ns", std::int64_t{0})};
}

} // namespace

std::optional<FileStamp> file_stamp(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    return std::nullopt;
  return FileStamp{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                   static_cast<std::uint64_t>(st.st_size), nanoseconds(st.st_mtim),
                   nanoseconds(st.st_ctim)};
}

HashMemo HashMemo::load(fs::path memo_file, std::chrono::seconds settled) {
  HashMemo memo(std::move(memo_file), settled);
  auto text = read_file(memo.m_file);
  if (!text)
    return memo;
  const auto json = nlohmann::json::parse(*text, nullptr, false);
  if (json.is_discarded() || !json.is_object() || !json.contains("files") ||
      !json["files"].is_object())
    return memo;
  for (const auto& [name, known] : json["files"].items()) {
    if (!known.is_object() || !known.value("sha256", nlohmann::json()).is_string())
      continue;
    memo.m_known[name] = {stamp_from(known), known["sha256"].get<std::string>()};
  }
  return memo;
}

// Relative to the memo's directory when the file is in it: the same entry
// reached through another path (a symlinked cache) is the same file.
std::string HashMemo::key(const fs::path& file) const {
  const auto relative = file.lexically_normal().lexically_relative(m_file.parent_path());
  if (relative.empty() || *relative.begin() == "..")
    return file.lexically_normal().string();
  return relative.string();
}

Result<std::string> HashMemo::sha256(const fs::path& file) {
  const auto before = file_stamp(file);
  if (!before)
    return infra_error("cannot stat {}: {}", file.string(), std::strerror(errno));
  const std::string name = key(file);
  if (const auto known = m_known.find(name);
      known != m_known.end() && known->second.stamp == *before)
    return known->second.sha256;
  auto sum = sha256_file(file);
  if (!sum)
    return sum;
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const auto settled_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(m_settled).count();
  // Unchanged while it was read, and settled: remembered.
  if (file_stamp(file) == before && before->ctime_ns <= now - settled_ns) {
    m_known[name] = {*before, *sum};
    m_added = true;
  }
  return sum;
}

void HashMemo::save() {
  if (!m_added)
    return;
  nlohmann::json files = nlohmann::json::object();
  for (const auto& [name, known] : m_known) {
    auto entry = to_json(known.stamp);
    entry["sha256"] = known.sha256;
    files[name] = std::move(entry);
  }
  const nlohmann::json memo{{"files", std::move(files)}};
  if (write_file_atomic(m_file, memo.dump(1) + "\n"))
    m_added = false;
}

} // namespace probegate::core
