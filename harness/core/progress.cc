// SPDX-License-Identifier: GPL-2.0-only
#include "core/progress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fmt/core.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace probegate::core {

namespace {

constexpr int k_default_columns = 80;

// The decimal unit apt prints sizes in, chosen by the larger figure so that
// done and total read alike: (divisor, name).
std::pair<double, std::string_view> byte_unit(std::uint64_t bytes) {
  if (bytes >= 1'000'000'000)
    return {1e9, "GB"};
  if (bytes >= 1'000'000)
    return {1e6, "MB"};
  if (bytes >= 1'000)
    return {1e3, "kB"};
  return {1, "B"};
}

std::string scaled(std::uint64_t bytes, double divisor) {
  return divisor == 1 ? fmt::format("{}", bytes)
                      : fmt::format("{:.1f}", static_cast<double>(bytes) / divisor);
}

int terminal_columns() {
  winsize size{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
    return size.ws_col;
  return k_default_columns;
}

} // namespace

bool live_progress_wanted(bool stderr_is_tty, const char* ci) {
  if (!stderr_is_tty)
    return false;
  const std::string_view value = ci ? ci : "";
  return value.empty() || value == "0" || value == "false";
}

bool live_progress() {
  static const bool live = live_progress_wanted(::isatty(STDERR_FILENO) == 1, std::getenv("CI"));
  return live;
}

std::optional<double> eta_s(const ProgressFigures& f) {
  if (!f.total || f.done == 0 || f.elapsed_s <= 0 || f.done > *f.total)
    return std::nullopt;
  const double rate = static_cast<double>(f.done) / f.elapsed_s;
  return static_cast<double>(*f.total - f.done) / rate;
}

std::string format_duration(double seconds) {
  const auto s = static_cast<long long>(std::llround(std::max(0.0, seconds)));
  if (s < 60)
    return fmt::format("{}s", s);
  if (s < 3600)
    return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
}

std::string format_figures(const ProgressFigures& f) {
  const std::string_view guess = f.estimated ? "~" : "";
  const bool past = f.total && f.done > *f.total;
  std::string out;
  if (f.unit == ProgressUnit::bytes) {
    const auto [divisor, unit] = byte_unit(std::max(f.done, f.total.value_or(0)));
    out = f.total && !past ? fmt::format("{}/{}{} {}", scaled(f.done, divisor), guess,
                                         scaled(*f.total, divisor), unit)
                           : fmt::format("{} {}", scaled(f.done, divisor), unit);
  } else {
    out = f.total && !past ? fmt::format("{}/{}{} steps", f.done, guess, *f.total)
                           : fmt::format("{} step{}", f.done, f.done == 1 ? "" : "s");
  }
  if (f.total && !past && *f.total > 0)
    out += fmt::format(" ({}%)", f.done * 100 / *f.total);
  if (past)
    out += fmt::format(" (past the {}{} of the last build)", guess, *f.total);
  if (f.elapsed_s > 0 && f.done > 0) {
    const double rate = static_cast<double>(f.done) / f.elapsed_s;
    if (f.unit == ProgressUnit::bytes) {
      const auto [divisor, unit] = byte_unit(static_cast<std::uint64_t>(rate));
      out += fmt::format(", {} {}/s", scaled(static_cast<std::uint64_t>(rate), divisor), unit);
    } else {
      out += fmt::format(", {:.1f}/s", rate);
    }
  }
  if (f.unit == ProgressUnit::steps)
    out += ", " + format_duration(f.elapsed_s);
  if (const auto eta = eta_s(f))
    out += fmt::format(", eta {}{}", guess, format_duration(*eta));
  return out;
}

std::string progress_line(std::string_view what, std::string_view figures, int columns) {
  const auto room = static_cast<size_t>(std::max(columns - 1, 1));
  constexpr std::string_view prefix = "probegate: ";
  constexpr std::string_view ellipsis = "...";
  const size_t fixed = prefix.size() + 2 + figures.size();
  std::string shown(what);
  if (fixed + shown.size() > room) {
    const size_t keep = room > fixed + ellipsis.size() ? room - fixed - ellipsis.size() : 0;
    shown = std::string(what.substr(0, keep)) + std::string(ellipsis);
  }
  std::string line = fmt::format("{}{}: {}", prefix, shown, figures);
  if (line.size() > room)
    line.resize(room);
  return line;
}

const LiveOutput& stderr_output() {
  static const LiveOutput output{
      .enabled = live_progress(),
      .draw =
          [](std::string_view line) {
            // One write per draw: lines of other threads never interleave in it.
            fmt::print(stderr, "\r\x1b[K{}", line);
            std::fflush(stderr);
          },
      .now = [] { return std::chrono::steady_clock::now(); },
      .columns = terminal_columns,
  };
  return output;
}

std::string_view live_line_reset() {
  return live_progress() ? "\r\x1b[K" : "";
}

ProgressLine::ProgressLine(std::string what, ProgressUnit unit, std::optional<std::uint64_t> total,
                           bool estimated, const LiveOutput& output)
    : m_what(std::move(what)), m_figures{.unit = unit,
                                         .done = 0,
                                         .total = total,
                                         .estimated = estimated,
                                         .elapsed_s = 0},
      m_output(output),
      m_started(output.enabled ? output.now() : std::chrono::steady_clock::time_point{}) {}

ProgressLine::~ProgressLine() {
  if (m_drawn)
    m_output.draw("");
}

bool ProgressLine::due() const {
  return m_output.enabled && (!m_drawn || m_output.now() - *m_drawn >= k_redraw_every);
}

void ProgressLine::update(std::uint64_t done) {
  m_figures.done = done;
  if (!due())
    return;
  const auto now = m_output.now();
  m_figures.elapsed_s = std::chrono::duration<double>(now - m_started).count();
  m_drawn = now;
  m_output.draw(progress_line(m_what, format_figures(m_figures), m_output.columns()));
}

ProgressFigures ProgressLine::figures() const {
  return m_figures;
}

} // namespace probegate::core
