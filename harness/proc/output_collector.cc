// SPDX-License-Identifier: GPL-2.0-only
#include "proc/output_collector.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/core.h>
#include <fmt/ostream.h>

namespace probegate::proc {

namespace {
constexpr size_t k_max_line = 64 * 1024;
constexpr size_t k_tail_lines = 20;
} // namespace

OutputCollector::OutputCollector(const core::Command& command, const LineSink& sink)
    : m_sink(sink), m_log_path(command.log_path) {
  if (!m_log_path.empty()) {
    m_log.open(partial_path(), std::ios::binary | std::ios::trunc);
    m_log.write(command.log_preamble.data(),
                static_cast<std::streamsize>(command.log_preamble.size()));
    m_logged = command.log_preamble.size();
  }
}

// A log that never became whole (the child could not start, the run was
// interrupted, the disk filled) is not left half-written.
OutputCollector::~OutputCollector() {
  if (!m_log_path.empty() && !m_published) {
    std::error_code ec;
    std::filesystem::remove(partial_path(), ec);
  }
}

bool OutputCollector::feed(std::string_view data) {
  if (m_log.is_open() && m_logged < k_max_log_bytes) {
    const auto room =
        static_cast<size_t>(std::min<std::uint64_t>(data.size(), k_max_log_bytes - m_logged));
    errno = 0;
    m_log.write(data.data(), static_cast<std::streamsize>(room));
    if (!m_log && m_write_errno == 0)
      m_write_errno = errno;
    m_logged += room;
    if (m_logged >= k_max_log_bytes)
      m_log << fmt::format("\n[probegate: log capped at {} MiB; the rest was read, not saved]\n",
                           k_max_log_bytes >> 20);
  }
  bool go_on = true;
  for (char c : data) {
    if (c == '\n' || m_partial.size() >= k_max_line)
      go_on = finish_line() && go_on;
    if (c != '\n')
      m_partial += c;
  }
  return go_on;
}

bool OutputCollector::flush() {
  return m_partial.empty() || finish_line();
}

core::Status OutputCollector::close_log() {
  if (!m_log.is_open())
    return {};
  errno = 0;
  m_log.close();
  if (!m_log && m_write_errno == 0)
    m_write_errno = errno;
  std::error_code ec;
  if (!m_log) { // a full disk: no half log is left behind
    std::filesystem::remove(partial_path(), ec);
    return core::infra_error("cannot write {}: {} (is its file system full?)", m_log_path.string(),
                             m_write_errno ? std::strerror(m_write_errno) : "write failed");
  }
  std::filesystem::rename(partial_path(), m_log_path, ec);
  if (ec) {
    std::filesystem::remove(partial_path(), ec);
    return core::infra_error("cannot rename {}: {}", m_log_path.string(), ec.message());
  }
  m_published = true;
  return {};
}

std::string OutputCollector::tail() const {
  std::string out;
  for (const auto& line : m_tail)
    out += line + "\n";
  return out;
}

bool OutputCollector::finish_line() {
  if (!m_partial.empty() && m_partial.back() == '\r')
    m_partial.pop_back();
  m_tail.push_back(m_partial);
  if (m_tail.size() > k_tail_lines)
    m_tail.pop_front();
  const bool go_on = !m_sink || m_sink(m_partial) == LineAction::keep_going;
  m_partial.clear();
  return go_on;
}

} // namespace probegate::proc
