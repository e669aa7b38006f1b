// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace probegate::core {

// Live progress of a long download or build (docs/CONTRACTS.md "Progress"):
// for a person at a terminal, one line redrawn in place with what is done,
// the rate and an ETA; for a CI log, nothing beyond the one-line messages.

// Whether to draw it: stderr is a terminal and `ci` ($CI) is unset, empty,
// "0" or "false".
bool live_progress_wanted(bool stderr_is_tty, const char* ci);
// This process's answer (isatty(2) and $CI), decided once.
bool live_progress();

enum class ProgressUnit { bytes, steps };

// Where a job stands.
struct ProgressFigures {
  ProgressUnit unit = ProgressUnit::bytes;
  std::uint64_t done = 0;
  std::optional<std::uint64_t> total; // unknown: no share, no ETA
  bool estimated = false;             // the total is a guess (an earlier build's steps)
  double elapsed_s = 0;
};

// Seconds left at the mean rate so far, (total - done) / (done / elapsed):
// none without a total, before the first unit, or past an estimated total.
std::optional<double> eta_s(const ProgressFigures& figures);
// "7s", "1m05s", "2h03m".
std::string format_duration(double seconds);
// "89.6/139.3 MB (64%), 30.1 MB/s, eta 2s"; "512/~855 steps (59%), 4.1/s,
// 2m05s, eta ~1m27s"; "512 steps, 2m05s" without a total.
std::string format_figures(const ProgressFigures& figures);
// "probegate: <what>: <figures>" in at most columns - 1 characters: `what`
// is shortened first (the figures are the point), then the end is cut.
std::string progress_line(std::string_view what, std::string_view figures, int columns);

// Where live lines go; tests inject one with their own clock.
struct LiveOutput {
  bool enabled = false;
  // Shows `line` in place of the last one; "" clears it.
  std::function<void(std::string_view line)> draw;
  std::function<std::chrono::steady_clock::time_point()> now;
  std::function<int()> columns; // the terminal's width
};
// stderr: enabled when live_progress(); each draw is "\r\x1b[K" and the line.
const LiveOutput& stderr_output();
// What a one-line message starts with so that it replaces a live line:
// "\r\x1b[K" when live, else "".
std::string_view live_line_reset();

// One job's live line: redrawn at most every k_redraw_every, cleared when
// the job ends (the destructor). Does nothing when the output is not enabled.
class ProgressLine {
public:
  static constexpr std::chrono::milliseconds k_redraw_every{250};

  ProgressLine(std::string what, ProgressUnit unit, std::optional<std::uint64_t> total,
               bool estimated, const LiveOutput& output = stderr_output());
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  bool live() const { return m_output.enabled; }
  // Whether update() would draw now: callers that must work to learn how
  // far the job is (a directory listing) ask first.
  bool due() const;
  // Records `done` and redraws the line when due.
  void update(std::uint64_t done);
  // The figures as of now (for tests and messages).
  ProgressFigures figures() const;

private:
  std::string m_what;
  ProgressFigures m_figures;
  const LiveOutput& m_output;
  std::chrono::steady_clock::time_point m_started;
  std::optional<std::chrono::steady_clock::time_point> m_drawn;
};

} // namespace probegate::core
