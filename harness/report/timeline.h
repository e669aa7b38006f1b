// SPDX-License-Identifier: GPL-2.0-only
// A run's timeline in guest seconds, from its console (the same parser a
// live boot feeds) and its result: when the events start, udevd's warning
// and kill, each probe's start and end, init_module() returning, the boot
// finishing and the deadline. Drawn as SVG for report.html.
#pragma once

#include "console/boot_log.h"
#include "report/run_result.h"

#include <optional>
#include <string>
#include <vector>

namespace probegate::report {

struct Timeline {
  struct Mark {
    double t_s = 0;
    std::string kind;  // CSS class: events, module-load, udev-warning, udev-kill, ...
    std::string label; // what a reader sees; may quote the guest (escaped when drawn)
  };
  struct Probe {
    std::string device;
    double start_s = 0;
    std::optional<double> end_s; // none: still probing when the console ended
    std::optional<int> result;   // 0, or -errno
    bool appeared = false;       // its misc device was created
  };
  std::vector<Mark> marks; // in time order
  std::vector<Probe> probes;
  // udevd's event timeout, from the module's load to where udevd kills
  // (timeout plus its extra wait).
  std::optional<double> udev_window_start_s, udev_window_end_s;
  std::string udev_window_label;
  double deadline_s = 0; // the run's deadline (guest seconds)
  double end_s = 0;      // the last thing the console said
  // Where the axis starts: the whole guest second before the agent's sync
  // point (docs/CONTRACTS.md "Boot once, restore per case"), when it has
  // one, so that the idle wait before udevd starts is not drawn; else 0.
  double start_s = 0;
};

// Pure.
Timeline make_timeline(const RunResult& run, const console::BootLog& log);
// Pure: one self-contained <svg>. Every mark is a <line class="mark KIND"
// data-t="…">, every probe a <rect class="probe …" data-start="…"
// data-end="…">, so a reader (or a test in a browser) can find them.
std::string timeline_svg(const Timeline& timeline);

} // namespace probegate::report
