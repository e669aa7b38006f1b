// SPDX-License-Identifier: GPL-2.0-only
#include "verdict/outcome.h"

#include "core/text.h"

#include <algorithm>
#include <cstdlib>
#include <set>

namespace probegate::verdict {

namespace {

// Whether the loader's worker was still inside init_module() at `t`: before
// the module's init returned, or, unless the module was loaded with
// async_probe requested, while one of its async probes still ran (the
// loader waits for them: async_synchronize_full() in do_init_module()). A
// worker that goes on with its event after init_module() returned, and is
// killed there, kills no probe. Logs without the module's word count every
// kill of the loader's pid.
bool inside_init_module(const console::BootLog& log, std::optional<double> t) {
  if (!log.module_async_requested || !log.module_init_done_s || !t || *t < *log.module_init_done_s)
    return true;
  if (*log.module_async_requested)
    return false;
  for (const auto& [device, probe] : log.probes)
    if (probe.start_s && (!probe.end_s || *probe.end_s > *t))
      return true;
  return false;
}

} // namespace

Outcome derive_outcome(const console::BootLog& log, int devices_expected, bool timed_out) {
  using Kind = console::UdevWorkerLine::Kind;
  Outcome o;
  o.devices_expected = devices_expected;
  // The host's deadline, or the agent's own (the guest's user space hung).
  o.timed_out = timed_out || log.fact("deadline") != nullptr;
  // The ready point, unless the agent's deadline fired first (then any
  // `ready` is a race the deadline wins: docs/PROTOCOL.md).
  o.booted = log.fact("ready") != nullptr && log.fact("deadline") == nullptr;
  // systemd as PID 1: its own lines decide, so that a real machine's log
  // (no agent at all) is judged the same way.
  if (log.systemd_version || !log.systemd_reached.empty()) {
    o.init = "systemd";
    o.systemd_version = log.systemd_version;
    static const std::set<std::string, std::less<>> k_boot_targets{
        "initrd.target",     "Initrd Default Target", "multi-user.target",
        "Multi-User System", "graphical.target",      "Graphical Interface"};
    for (const auto& [unit, t] : log.systemd_reached)
      if (k_boot_targets.contains(unit))
        o.reached_target = unit;
    for (const auto& [unit, t] : log.systemd_device_timeouts)
      o.systemd_device_timeouts.push_back({unit, t});
    o.emergency = log.systemd_emergency_s.has_value() || log.fact("emergency") != nullptr;
    for (const auto& [unit, t] : log.systemd_reached)
      o.emergency = o.emergency || unit == "emergency.target" || unit == "Emergency Mode";
    o.booted = o.reached_target.has_value() && !o.emergency && log.fact("deadline") == nullptr &&
               !timed_out;
  }
  o.guest_kernel = log.linux_version;
  o.loader_pid = log.loader_pid;
  o.panic = log.panic.has_value();
  o.panic_line = log.panic;
  o.oops_line = log.oops;
  o.oops_rip = log.oops_rip;
  o.infra_error = log.initramfs_error;
  o.console_records_dropped = log.dropped_records;
  o.udev_version = log.udev_version;

  // Bound = what the probes created, as the agent saw it after the waits
  // (docs/FACTS.md "Counting bound devices": the driver link appears before
  // probe ends, so it is no proof).
  std::set<std::string> misc;
  for (const auto& fact : log.facts)
    if (fact.event == "misc" && fact.fields.contains("name"))
      misc.insert(fact.fields.at("name"));
  if (!o.booted) { // the agent never reported: fall back on the module's own lines
    for (const auto& [device, probe] : log.probes)
      if (probe.result == 0 && !probe.misc.empty())
        misc.insert(probe.misc);
  }
  o.devices_bound = static_cast<int>(misc.size());

  std::set<std::string> failed;
  for (const auto& [device, error] : log.kernel_probe_failures)
    failed.insert(device);
  for (const auto& [device, probe] : log.probes)
    if (probe.result.value_or(0) < 0)
      failed.insert(device);
  o.probe_failures = static_cast<int>(failed.size());
  for (const auto& [device, probe] : log.probes)
    o.probes.push_back({device, probe.start_s, probe.end_s, probe.result});

  std::optional<double> last_bound;
  for (const auto& [device, probe] : log.probes)
    if (probe.result == 0 && probe.end_s)
      last_bound = std::max(last_bound.value_or(0.0), *probe.end_s);
  if (devices_expected > 0 && o.devices_bound >= devices_expected)
    o.time_to_available_s = last_bound;

  if (const auto* knobs = log.fact("knobs"); knobs && knobs->fields.contains("module.async_probe"))
    o.guest_module_async_probe = knobs->fields.at("module.async_probe") == "yes";

  if (const auto* loaded = log.fact("modprobe-returned")) {
    o.init_module_returned_s = loaded->t_s;
    if (loaded->fields.contains("devices"))
      o.devices_at_modprobe_return = std::atoi(loaded->fields.at("devices").c_str());
  }

  for (const auto& line : log.udev) {
    if (line.kind == Kind::slow) {
      ++o.udev_slow_warnings;
    } else if (line.kind == Kind::killed) {
      UdevKill kill{line.device,
                    line.seqnum,
                    line.worker_pid,
                    line.t_s,
                    log.loader_pid && *log.loader_pid == line.worker_pid &&
                        inside_init_module(log, line.t_s),
                    std::nullopt};
      for (const auto& end : log.udev)
        if (end.kind == Kind::terminated && end.worker_pid == line.worker_pid)
          kill.signal = end.signal;
      o.udev_worker_killed = o.udev_worker_killed || kill.loading_module;
      o.udev_kills.push_back(std::move(kill));
    }
  }
  for (const auto& fact : log.facts) {
    if (fact.event != "udev-worker-failed")
      continue;
    auto field = [&](const char* key) {
      const auto it = fact.fields.find(key);
      return it == fact.fields.end() ? std::string() : it->second;
    };
    o.udev_failed_events.push_back({core::parse_int(field("seqnum")).value_or(0), field("devpath"),
                                    core::parse_int(field("signal")), field("signal_name"),
                                    core::parse_int(field("exit_status")), field("errno_name")});
  }
  return o;
}

} // namespace probegate::verdict
