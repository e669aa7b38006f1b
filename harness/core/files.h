// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace probegate::core {

namespace fs = std::filesystem;

// Writes a file so that readers see the old content or the new, never a part:
// a temporary beside it, fsync, rename.
Status write_file_atomic(const fs::path& path, std::string_view content);
// Writes a new file in place, without fsync: for a run's scratch files, which
// no other process reads and which a crash discards anyway (an fsync there
// cost 2 ms, and up to 0.2 s while the disk was busy).
Status write_scratch_file(const fs::path& path, std::string_view content);
Result<std::string> read_file(const fs::path& path);

// Moves a finished directory into its final place in one rename. If another
// process published the same entry first, ours is discarded (same content).
Status publish_dir(const fs::path& staging, const fs::path& final_path);

std::string sha256_hex(std::string_view data);
Result<std::string> sha256_file(const fs::path& path);

// Copies `from` to a new file `to`, leaving a hole wherever a 4 kB block is
// all zeros (a guest's memory is mostly zeros), and fsyncs it. Returns the
// SHA-256 of the content, holes read as zeros, as sha256_file() would.
Result<std::string> copy_sparse(const fs::path& from, const fs::path& to);

// Sets the file's modification time to now, creating it (empty) if absent.
Status touch_file(const fs::path& path);
// Sets the access and modification times of a file or directory to `when`.
Status set_file_times(const fs::path& path, fs::file_time_type when);
// When the file was last read (its access time), or nullopt.
std::optional<fs::file_time_type> access_time(const fs::path& path);

// A directory removed with its contents when the owner goes out of scope
// (ninja's ScopedTempDir). Created under `parent`, which is created if needed.
class TempDir {
public:
  static Result<TempDir> create(const fs::path& parent, std::string_view prefix);
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  ~TempDir();
  const fs::path& path() const { return m_path; }

private:
  explicit TempDir(fs::path path) : m_path(std::move(path)) {}
  fs::path m_path;
};

// The pid in a TempDir's name (<prefix><pid>-XXXXXX) when that process no
// longer runs; nullopt when it runs or the name carries no pid.
std::optional<long> dead_owner(const fs::path& dir);

// Removes the temporary directories under `parent` whose owner (the pid in
// their name) no longer runs: what a SIGKILLed probegate left. Returns how
// many went.
int sweep_dead_temp_dirs(const fs::path& parent);

// An exclusive advisory lock (flock) on a file, held for the owner's
// lifetime: serialises the building of one cache entry across processes.
class FileLock {
public:
  static Result<FileLock> acquire(const fs::path& path);
  // The lock if no one holds it now, else nullopt (never waits).
  static Result<std::optional<FileLock>> try_acquire(const fs::path& path);
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&&) = delete;
  FileLock(const FileLock&) = delete;
  ~FileLock();

private:
  explicit FileLock(int fd) : m_fd(fd) {}
  static Result<std::optional<FileLock>> lock(const fs::path& path, bool wait);
  int m_fd = -1;
};

// $PROBEGATE_CACHE, else $XDG_CACHE_HOME/probegate, else ~/.cache/probegate.
fs::path cache_root();
// Host-wide state that lasts until the host reboots and is shared by every
// cache of the host (the KVM probe's answer): $PROBEGATE_RUNTIME_DIR, else
// /run/probegate for root, else $XDG_RUNTIME_DIR/probegate, else
// <tmp>/probegate-<uid>.
fs::path runtime_root();
// The host's boot ID (/proc/sys/kernel/random/boot_id), or "unknown".
std::string host_boot_id();
// Where guest-modules/ and images/ live: $PROBEGATE_DATA_DIR, else
// <prefix>/share/probegate beside an installed <prefix>/bin/probegate, else
// the source tree the binary was built from.
fs::path data_root();

} // namespace probegate::core
