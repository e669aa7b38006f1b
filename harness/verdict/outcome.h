// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "console/boot_log.h"

#include <optional>
#include <string>
#include <vector>

namespace probegate::verdict {

// One udevd worker kill (docs/CONTRACTS.md "udev_worker_killed and udev_kills":
// every kill is listed; only the one of the worker inside init_module() can fail
// probes).
struct UdevKill {
  std::string device;
  int seqnum = 0;
  int worker_pid = 0;
  std::optional<double> t_s;
  bool loading_module = false;
  // How the worker ended, from udevd's "terminated by signal N" line: 9 for
  // SIGKILL; with --udev-timeout-signal ABRT, 6, once init_module returned.
  std::optional<int> signal;
};

// One device's probe, from slowprobe's own lines: when it started and ended
// in guest time, and its result (0, or -errno).
struct Probe {
  std::string device;
  std::optional<double> start_s, end_s;
  std::optional<int> result;
};

// A failed event as udevd sent it out again (udev 251 and later: the
// UDEV_WORKER_* properties, seen by `udevadm monitor --property`): a
// witness beside the log lines, from the agent's `udev-worker-failed` facts.
struct UdevFailedEvent {
  int seqnum = 0;
  std::string devpath;
  std::optional<int> signal;
  std::string signal_name; // "KILL", "ABRT"
  std::optional<int> exit_status;
  std::string errno_name;
};

// A device systemd gave up waiting for ("Timed out waiting for device").
struct DeviceTimeout {
  std::string unit; // "dev-slowprobe0.device" (or "/dev/slowprobe0" on 247's wording)
  double t_s = 0;
};

// What happened in one boot, as facts (the result.json "outcome" object).
struct Outcome {
  bool booted = false;    // the agent reached its ready point
  bool timed_out = false; // a deadline ended the boot: the host's or the agent's
  int devices_expected = 0;
  int devices_bound = 0;           // misc devices the probes created
  int probe_failures = 0;          // devices whose probe failed
  bool udev_worker_killed = false; // the module-loading worker was killed
  int udev_slow_warnings = 0;
  bool panic = false;
  std::optional<std::string> panic_line;
  std::optional<std::string> oops_line;
  std::optional<std::string> oops_rip;       // where: "func+0x59/0x1000 [module]"
  std::optional<double> time_to_available_s; // guest uptime when the last device bound
  // --load modprobe only: when modprobe (so init_module()) returned, and how
  // many devices existed at that moment.
  std::optional<double> init_module_returned_s;
  std::optional<int> devices_at_modprobe_return;
  std::optional<int> loader_pid;
  std::vector<UdevKill> udev_kills;
  std::vector<UdevFailedEvent> udev_failed_events;
  std::vector<Probe> probes; // in device order
  // PID 1: "agent", or "systemd" when systemd's own lines are in the log.
  // Under systemd, booted means it reached its default target (initrd.target
  // in an initramfs) and never entered emergency mode.
  std::string init = "agent";
  bool emergency = false;
  std::optional<std::string> reached_target; // initrd.target, multi-user.target, ...
  std::vector<DeviceTimeout> systemd_device_timeouts;
  std::optional<int> systemd_version;
  // Console records the parser dropped (a flood, console::k_max_records):
  // then the facts are incomplete and the run cannot pass.
  size_t console_records_dropped = 0;
  std::optional<std::string> infra_error; // e.g. "Initramfs unpacking failed"
  std::string guest_kernel;               // from the banner
  // /sys/module/module/parameters/async_probe exists in the running kernel
  // (the agent's `knobs` fact); unset where the agent did not say.
  std::optional<bool> guest_module_async_probe;
  // `udevadm --version` in the guest (the agent's `userspace` fact).
  std::optional<int> udev_version;
};

// Pure: BootLog (+ what the host knows) -> Outcome.
Outcome derive_outcome(const console::BootLog& log, int devices_expected, bool timed_out);

} // namespace probegate::verdict
