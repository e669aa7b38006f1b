// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <limits>
#include <openssl/evp.h>
#include <optional>
#include <regex>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace probegate::core {

namespace {

std::string errno_text() {
  return std::strerror(errno);
}

Status write_all(int fd, std::string_view content) {
  while (!content.empty()) {
    const ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return std::unexpected(Error{ErrorKind::infra, errno_text()});
    }
    content.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

} // namespace

Status write_file_atomic(const fs::path& path, std::string_view content) {
  std::error_code ec;
  if (path.has_parent_path())
    fs::create_directories(path.parent_path(), ec);
  // A name of its own per call: two threads of one run (--jobs) may write
  // the same cache file at once, and each must rename a whole file.
  std::string name = path.string() + ".tmp.XXXXXX";
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0)
    return infra_error("cannot write {}: {}", name, errno_text());
  const fs::path tmp = name;
  // mkostemp makes the file 0600; cache files are read by other users too.
  auto written = ::fchmod(fd, 0644) == 0
                     ? write_all(fd, content)
                     : Status(std::unexpected(Error{ErrorKind::infra, errno_text()}));
  const bool synced = written && ::fsync(fd) == 0;
  const std::string sync_error = synced ? "" : errno_text();
  ::close(fd);
  if (!written || !synced) {
    fs::remove(tmp, ec);
    return infra_error("cannot write {}: {}", path.string(),
                       written ? sync_error : written.error().message);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text();
    fs::remove(tmp, ec);
    return infra_error("cannot rename {} into place: {}", path.string(), why);
  }
  return {};
}

Status write_scratch_file(const fs::path& path, std::string_view content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return infra_error("cannot write {}: {}", path.string(), errno_text());
  auto written = write_all(fd, content);
  const bool closed = ::close(fd) == 0;
  if (!written || !closed)
    return infra_error("cannot write {}: {}", path.string(),
                       written ? errno_text() : written.error().message);
  return {};
}

Result<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return usage_error("cannot read {}: {}", path.string(), errno_text());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

Status publish_dir(const fs::path& staging, const fs::path& final_path) {
  std::error_code ec;
  fs::create_directories(final_path.parent_path(), ec);
  if (::rename(staging.c_str(), final_path.c_str()) == 0)
    return {};
  if (errno == ENOTEMPTY || errno == EEXIST) {
    fs::remove_all(staging, ec);
    return {};
  }
  return infra_error("cannot move {} to {}: {}", staging.string(), final_path.string(),
                     errno_text());
}

namespace {

class Sha256 {
public:
  Sha256() : m_ctx(EVP_MD_CTX_new()) { EVP_DigestInit_ex(m_ctx, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(m_ctx); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size) { EVP_DigestUpdate(m_ctx, data, size); }
  std::string hex() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    EVP_DigestFinal_ex(m_ctx, digest.data(), &length);
    std::string out;
    for (unsigned int i = 0; i < length; ++i)
      out += fmt::format("{:02x}", digest[i]);
    return out;
  }

private:
  EVP_MD_CTX* m_ctx;
};

} // namespace

std::string sha256_hex(std::string_view data) {
  Sha256 sha;
  sha.update(data.data(), data.size());
  return sha.hex();
}

Result<std::string> sha256_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return infra_error("cannot read {}: {}", path.string(), errno_text());
  Sha256 sha;
  std::array<char, 1 << 16> buffer{};
  while (in) {
    in.read(buffer.data(), buffer.size());
    sha.update(buffer.data(), static_cast<size_t>(in.gcount()));
  }
  return sha.hex();
}

Result<std::string> copy_sparse(const fs::path& from, const fs::path& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0)
    return infra_error("cannot read {}: {}", from.string(), errno_text());
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    const std::string why = errno_text();
    ::close(in);
    return infra_error("cannot create {}: {}", to.string(), why);
  }
  constexpr size_t k_block = 4096;
  static const std::array<char, k_block> zeros{};
  std::vector<char> buffer(size_t{1} << 20);
  Sha256 sha;
  off_t offset = 0;
  std::string failed;
  while (failed.empty()) {
    const ssize_t n = ::read(in, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n < 0)
        failed = fmt::format("cannot read {}: {}", from.string(), errno_text());
      break;
    }
    const auto length = static_cast<size_t>(n);
    sha.update(buffer.data(), length);
    for (size_t at = 0; at < length && failed.empty(); at += k_block) {
      const size_t size = std::min(k_block, length - at);
      if (std::memcmp(buffer.data() + at, zeros.data(), size) == 0)
        continue;
      const auto where = offset + static_cast<off_t>(at);
      if (::pwrite(out, buffer.data() + at, size, where) != static_cast<ssize_t>(size))
        failed = fmt::format("cannot write {}: {}", to.string(), errno_text());
    }
    offset += n;
  }
  // The holes at the end count too: the copy has the original's size.
  if (failed.empty() && (::ftruncate(out, offset) != 0 || ::fsync(out) != 0))
    failed = fmt::format("cannot write {}: {}", to.string(), errno_text());
  ::close(in);
  ::close(out);
  if (!failed.empty()) {
    std::error_code ec;
    fs::remove(to, ec);
    return infra_error("{}", failed);
  }
  return sha.hex();
}

Status touch_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return infra_error("cannot open {}: {}", path.string(), errno_text());
  ::close(fd);
  return set_file_times(path, fs::file_time_type::clock::now());
}

Status set_file_times(const fs::path& path, fs::file_time_type when) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::file_clock::to_sys(when).time_since_epoch())
                      .count();
  const timespec at{ns / 1'000'000'000, ns % 1'000'000'000};
  const std::array<timespec, 2> both{at, at};
  if (::utimensat(AT_FDCWD, path.c_str(), both.data(), 0) != 0)
    return infra_error("cannot set the time of {}: {}", path.string(), errno_text());
  return {};
}

std::optional<fs::file_time_type> access_time(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return std::nullopt;
  const std::chrono::sys_time<std::chrono::nanoseconds> read(
      std::chrono::seconds(st.st_atim.tv_sec) + std::chrono::nanoseconds(st.st_atim.tv_nsec));
  return std::chrono::file_clock::from_sys(read);
}

Result<TempDir> TempDir::create(const fs::path& parent, std::string_view prefix) {
  std::error_code ec;
  fs::create_directories(parent, ec);
  // The owner's pid in the name lets sweep_dead_temp_dirs() find the
  // leftovers of a process that was killed (SIGKILL runs no destructor).
  std::string pattern =
      (parent / fmt::format("{}{}-XXXXXX", prefix, static_cast<long>(::getpid()))).string();
  if (::mkdtemp(pattern.data()) == nullptr)
    return infra_error("cannot create a temporary directory in {}: {}", parent.string(),
                       errno_text());
  return TempDir(fs::path(pattern));
}

std::optional<long> dead_owner(const fs::path& dir) {
  static const std::regex name(R"(^.*?(\d+)-[A-Za-z0-9]{6}$)");
  std::smatch m;
  const std::string file = dir.filename().string();
  if (!std::regex_match(file, m, name))
    return std::nullopt;
  long pid = 0;
  const std::string digits = m[1].str();
  if (std::from_chars(digits.data(), digits.data() + digits.size(), pid).ec != std::errc() ||
      pid <= 0 || pid > std::numeric_limits<pid_t>::max())
    return std::nullopt;
  if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH)
    return std::nullopt; // alive (or not ours to judge)
  return pid;
}

int sweep_dead_temp_dirs(const fs::path& parent) {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    if (!entry.is_directory() || !dead_owner(entry.path()))
      continue;
    std::error_code gone;
    fs::remove_all(entry.path(), gone);
    if (!gone)
      ++removed;
  }
  return removed;
}

TempDir::TempDir(TempDir&& other) noexcept : m_path(std::move(other.m_path)) {
  other.m_path.clear();
}

TempDir::~TempDir() {
  if (!m_path.empty()) {
    std::error_code ec;
    fs::remove_all(m_path, ec);
  }
}

Result<std::optional<FileLock>> FileLock::lock(const fs::path& path, bool wait) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return infra_error("cannot open lock file {}: {}", path.string(), errno_text());
  while (::flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK && !wait) {
      ::close(fd);
      return std::nullopt;
    }
    if (errno != EINTR) {
      const std::string why = errno_text();
      ::close(fd);
      return infra_error("cannot lock {}: {}", path.string(), why);
    }
  }
  return FileLock(fd);
}

Result<FileLock> FileLock::acquire(const fs::path& path) {
  auto held = lock(path, true);
  if (!held)
    return std::unexpected(held.error());
  return std::move(**held);
}

Result<std::optional<FileLock>> FileLock::try_acquire(const fs::path& path) {
  return lock(path, false);
}

FileLock::FileLock(FileLock&& other) noexcept : m_fd(other.m_fd) {
  other.m_fd = -1;
}

FileLock::~FileLock() {
  if (m_fd >= 0)
    ::close(m_fd);
}

fs::path cache_root() {
  if (const char* own = std::getenv("PROBEGATE_CACHE"); own && *own)
    return own;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return fs::path(xdg) / "probegate";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : "/tmp") / ".cache" / "probegate";
}

fs::path runtime_root() {
  if (const char* own = std::getenv("PROBEGATE_RUNTIME_DIR"); own && *own)
    return own;
  if (::geteuid() == 0)
    return "/run/probegate";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg)
    return fs::path(xdg) / "probegate";
  std::error_code ec;
  return fs::temp_directory_path(ec) / fmt::format("probegate-{}", ::geteuid());
}

std::string host_boot_id() {
  auto id = read_file("/proc/sys/kernel/random/boot_id");
  if (!id || id->empty())
    return "unknown";
  return id->substr(0, id->find('\n'));
}

fs::path data_root() {
  if (const char* own = std::getenv("PROBEGATE_DATA_DIR"); own && *own)
    return own;
  // Installed (the .deb, `cmake --install`): <prefix>/bin/probegate beside
  // <prefix>/share/probegate.
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto installed = exe.parent_path().parent_path() / "share/probegate";
    if (fs::exists(installed / "images/init", ec))
      return installed;
  }
  return PROBEGATE_SOURCE_DIR;
}

} // namespace probegate::core
