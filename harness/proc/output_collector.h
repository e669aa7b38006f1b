// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/command.h"
#include "core/error.h"
#include "proc/process_runner.h"

#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace probegate::proc {

// Guest output is untrusted: a saved log stops growing here (parsing goes on).
inline constexpr std::uint64_t k_max_log_bytes = 64ull * 1024 * 1024;

// What every reader of a program's or a guest's output does with it: splits
// it into lines for the sink, keeps the last lines for error messages, and
// writes command.log_path (after command.log_preamble) as `<log>.partial`,
// renamed into place by close_log() and removed otherwise, so that no half
// log is left behind. Used by the process runner and the libvirt backend.
class OutputCollector {
public:
  OutputCollector(const core::Command& command, const LineSink& sink);
  ~OutputCollector();
  OutputCollector(const OutputCollector&) = delete;
  OutputCollector& operator=(const OutputCollector&) = delete;

  // Returns false when the sink asked to stop.
  bool feed(std::string_view data);
  // Ends a last line that had no newline.
  bool flush();
  core::Status close_log();
  std::string tail() const;

private:
  std::filesystem::path partial_path() const { return m_log_path.string() + ".partial"; }
  bool finish_line();

  const LineSink& m_sink;
  std::filesystem::path m_log_path;
  std::ofstream m_log;
  int m_write_errno = 0; // why the log could not be written (ENOSPC), once known
  std::uint64_t m_logged = 0;
  bool m_published = false;
  std::string m_partial;
  std::deque<std::string> m_tail;
};

} // namespace probegate::proc
