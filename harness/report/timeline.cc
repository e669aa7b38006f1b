// SPDX-License-Identifier: GPL-2.0-only
#include "report/timeline.h"

#include "report/session.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace probegate::report {

namespace {

void mark(Timeline& t, std::optional<double> at, std::string kind, std::string label) {
  if (at)
    t.marks.push_back({*at, std::move(kind), std::move(label)});
}

std::optional<double> fact_time(const console::BootLog& log, std::string_view event) {
  const auto* f = log.fact(event);
  return f ? f->t_s : std::nullopt;
}

} // namespace

Timeline make_timeline(const RunResult& run, const console::BootLog& log) {
  Timeline t;
  mark(t, fact_time(log, "udevd-started"), "udevd", "udevd starts");
  mark(t, fact_time(log, "triggered"), "events", "udev events start (udevadm trigger)");
  mark(t, log.module_init_start_s, "module-load", "slowprobe's init_module() starts");
  mark(t, log.module_init_done_s, "module-returned", "init_module() returns");
  mark(t, fact_time(log, "modprobe-returned"), "modprobe-returned", "modprobe returns");
  for (const auto& u : log.udev) {
    if (u.kind == console::UdevWorkerLine::Kind::slow)
      mark(t, u.t_s, "udev-warning",
           fmt::format("udevd: worker {} taking a long time (seq {})", u.worker_pid, u.seqnum));
    else if (u.kind == console::UdevWorkerLine::Kind::killed)
      mark(t, u.t_s, "udev-kill",
           fmt::format("udevd kills worker {} (seq {})", u.worker_pid, u.seqnum));
  }
  for (const auto& [unit, at] : log.systemd_device_timeouts)
    mark(t, at, "device-timeout", "systemd: timed out waiting for " + unit);
  mark(t, log.systemd_emergency_s, "emergency", "systemd: emergency mode");
  for (const auto& [target, at] : log.systemd_reached)
    if (run.outcome.reached_target && target == *run.outcome.reached_target)
      mark(t, at, "ready", "systemd reached " + target);
  mark(t, fact_time(log, "ready"), "ready", "the agent's ready: the boot finished");
  mark(t, fact_time(log, "deadline"), "deadline", "the agent's deadline fired");
  for (const auto& [device, p] : log.probes) {
    if (!p.start_s)
      continue;
    t.probes.push_back({.device = device,
                        .start_s = *p.start_s,
                        .end_s = p.end_s,
                        .result = p.result,
                        .appeared = !p.misc.empty()});
  }
  std::ranges::stable_sort(t.marks, {}, &Timeline::Mark::t_s);
  if (log.module_init_start_s) {
    const int timeout = run.spec.udev_timeout_s.value_or(spec::k_udev_default_timeout_s);
    const int extra = run.udev_extra_s.value_or(0);
    // udevd's timers have 1 s accuracy: the kill lands from T to T+1 s
    // (docs/FACTS.md "Timer slack"), the last second drawn lighter.
    t.udev_window_start_s = *log.module_init_start_s;
    t.udev_window_end_s = *log.module_init_start_s + timeout + extra;
    t.udev_window_label = extra > 0 ? fmt::format("udev event timeout {} s + {} s", timeout, extra)
                                    : fmt::format("udev event timeout {} s", timeout);
    t.udev_window_label += " (+1 s timer slack)";
  }
  t.deadline_s = spec::effective_deadline(run.spec);
  t.end_s = log.last_time_s.value_or(0);
  if (const auto synced = fact_time(log, "synced"))
    t.start_s = std::floor(*synced);
  return t;
}

namespace {

constexpr double k_width = 960, k_left = 170, k_right = 20, k_row = 22, k_top = 70;

struct Scale {
  double t0 = 0;
  double t1 = 1;
  double x(double t) const {
    return k_left + std::clamp(t - t0, 0.0, t1 - t0) / (t1 - t0) * (k_width - k_left - k_right);
  }
};

} // namespace

std::string timeline_svg(const Timeline& t) {
  // The axis ends after the last thing that happened; a udev window or a
  // deadline far beyond it is drawn to the edge and says where it ends.
  double last = t.end_s;
  for (const auto& m : t.marks)
    last = std::max(last, m.t_s);
  for (const auto& p : t.probes)
    last = std::max(last, p.end_s.value_or(p.start_s));
  if (t.udev_window_end_s && *t.udev_window_end_s < last * 2)
    last = std::max(last, *t.udev_window_end_s + 1);
  const double span = std::max(1.0, (last - t.start_s) * 1.05);
  const Scale s{.t0 = t.start_s, .t1 = t.start_s + span};
  const double height = k_top + k_row * static_cast<double>(t.probes.size() + 1) + 40;
  std::string out = fmt::format(
      "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" role=\"img\">\n",
      k_width, height);
  const double bottom = height - 30;
  if (t.udev_window_start_s) {
    const double x0 = s.x(*t.udev_window_start_s), x1 = s.x(*t.udev_window_end_s);
    const bool clipped = *t.udev_window_end_s > s.t1;
    out += fmt::format("<rect class=\"udev-window\" data-start=\"{:.6f}\" data-end=\"{:.6f}\" "
                       "x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" height=\"{:.1f}\"/>\n",
                       *t.udev_window_start_s, *t.udev_window_end_s, x0, k_top - 8,
                       std::max(1.0, x1 - x0), bottom - k_top + 8);
    out += fmt::format("<rect class=\"udev-slack\" x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" "
                       "height=\"{:.1f}\"/>\n",
                       x1, k_top - 8, std::max(0.0, s.x(*t.udev_window_end_s + 1) - x1),
                       bottom - k_top + 8);
    out += fmt::format("<text class=\"udev-window-label\" x=\"{:.1f}\" y=\"{}\">{}{}</text>\n",
                       x0 + 4, k_top - 12, xml_escape(t.udev_window_label),
                       clipped ? fmt::format(" (ends at {:.1f} s →)", *t.udev_window_end_s) : "");
  }
  // The axis, a tick per sensible step.
  const double step = span <= 12 ? 1 : span <= 60 ? 5 : span <= 240 ? 20 : 60;
  out += fmt::format("<line class=\"axis\" x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\"/>\n", k_left,
                     bottom, k_width - k_right);
  for (double v = s.t0; v <= s.t1; v += step)
    out += fmt::format("<text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\">{:g} s</text>\n", s.x(v),
                       bottom + 16, v);
  for (size_t i = 0; i < t.probes.size(); ++i) {
    const auto& p = t.probes[i];
    const double y = k_top + k_row * static_cast<double>(i);
    const double end = p.end_s.value_or(s.t1);
    const bool failed = p.result && *p.result != 0;
    out += fmt::format("<text class=\"row\" x=\"{}\" y=\"{:.1f}\">probe {}</text>\n", k_left - 6,
                       y + 13, xml_escape(p.device));
    out += fmt::format(
        "<rect class=\"probe{}\" data-start=\"{:.6f}\" data-end=\"{}\" x=\"{:.1f}\" y=\"{:.1f}\" "
        "width=\"{:.1f}\" height=\"{}\"><title>probe of {}: {:.3f} s to {}{}</title></rect>\n",
        failed       ? " failed"
        : p.appeared ? " bound"
                     : "",
        p.start_s, p.end_s ? fmt::format("{:.6f}", *p.end_s) : std::string("open"), s.x(p.start_s),
        y + 2, std::max(1.0, s.x(end) - s.x(p.start_s)), k_row - 6, xml_escape(p.device), p.start_s,
        p.end_s ? fmt::format("{:.3f} s", *p.end_s) : std::string("the end of the console"),
        p.result ? fmt::format(", result {}", *p.result) : std::string());
  }
  for (size_t i = 0; i < t.marks.size(); ++i) {
    const auto& m = t.marks[i];
    const double x = s.x(m.t_s);
    out += fmt::format("<line class=\"mark {}\" data-t=\"{:.6f}\" x1=\"{:.1f}\" y1=\"{}\" "
                       "x2=\"{:.1f}\" y2=\"{:.1f}\"><title>{:.3f} s: {}</title></line>\n",
                       m.kind, m.t_s, x, k_top - 8 - static_cast<double>(i % 3) * 14, x, bottom,
                       m.t_s, xml_escape(m.label));
    out += fmt::format("<text class=\"mark-label {}\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
                       m.kind, x + 2, k_top - 10 - static_cast<double>(i % 3) * 14 - 16, i + 1);
  }
  out += fmt::format("<text class=\"deadline\" x=\"{}\" y=\"{:.1f}\">deadline {} s{}</text>\n",
                     k_width - k_right, height - 2, t.deadline_s, t.deadline_s > s.t1 ? " →" : "");
  out += "</svg>\n";
  return out;
}

} // namespace probegate::report
