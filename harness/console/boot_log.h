// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace probegate::console {

// One slowprobe probe, from the module's own start/end lines.
struct ProbeRecord {
  std::string device; // PCI address
  int pid = 0;        // the task the probe ran in
  std::string comm;
  std::optional<double> start_s, end_s; // guest uptime
  std::optional<int> result;            // 0 or -errno
  std::string misc;                     // misc device created, if any
};

// A udevd worker line: "taking a long time", "killed", "terminated by signal".
struct UdevWorkerLine {
  enum class Kind { slow, killed, terminated, failed };
  Kind kind = Kind::slow;
  std::optional<double> t_s;
  std::string device; // udevd's device prefix; empty when the line has none
  int worker_pid = 0;
  int seqnum = 0; // slow and killed lines only
  int signal = 0; // terminated lines only
};

// A fact the guest agent reported (docs/PROTOCOL.md): "probegate: event=…".
struct AgentFact {
  std::optional<double> t_s;
  std::string event;
  std::map<std::string, std::string> fields;
};

// Everything the host learns from a console: what the kernel, the test
// module, udevd and the agent said, with guest timestamps. Pure data, built
// line by line by ConsoleParser; verdicts are computed from it elsewhere.
struct BootLog {
  int banners = 0; // "Linux version" lines; a second one means a reboot
  std::string linux_version;
  std::optional<double> last_time_s;
  std::optional<int> loader_pid; // the task inside init_module() for slowprobe
  std::optional<double> module_init_start_s, module_init_done_s;
  std::optional<int> module_init_ret;
  // The module's own word on whether init_module() returns without waiting
  // for its async probes (`async_requested=` on "init done"; absent in logs
  // of older probegate and for a built-in slowprobe).
  std::optional<bool> module_async_requested;
  std::map<std::string, ProbeRecord> probes;        // by device
  std::map<std::string, int> kernel_probe_failures; // device -> error, the kernel's own line
  std::vector<UdevWorkerLine> udev;
  std::vector<AgentFact> facts;
  std::optional<int> udev_version;  // the agent's `userspace udev=N` fact
  std::optional<std::string> panic; // the "Kernel panic" line
  std::optional<std::string> oops;  // first Oops/BUG/cut-here line
  // Where that Oops happened: the first kernel-mode "RIP: 0010:" after it,
  // e.g. "pgfault_init+0x59/0x1000 [pgfault]" (the module in brackets).
  std::optional<std::string> oops_rip;
  std::optional<std::string> initramfs_error;
  // systemd as PID 1: "systemd[1]: " lines in kmsg form
  // (docs/FACTS.md "systemd as PID 1 in the initramfs"). Units are named as the line names
  // them: "initrd.target", or its description ("Initrd Default Target") where
  // systemd prints descriptions.
  std::optional<int> systemd_version; // "systemd 252.39-1 running in system mode"
  std::vector<std::pair<std::string, double>> systemd_reached; // "Reached target X."
  std::vector<std::pair<std::string, double>>
      systemd_device_timeouts; // "Timed out waiting for device X."
  std::vector<std::pair<std::string, double>>
      systemd_dependency_failed;             // "Dependency failed for X."
  std::optional<double> systemd_emergency_s; // emergency.service (or its shell) started
  size_t lines = 0;
  // Records not kept because their kind had k_max_records already: only a
  // guest flooding its console gets here (a real boot has a few dozen).
  size_t dropped_records = 0;

  const AgentFact* fact(std::string_view event) const;
};

// Feeds console lines one at a time (as they stream from QEMU or from a
// saved log) into a BootLog. Understands both kernel wordings of a failed
// probe (6.1: "probe of X failed with error", 6.12+: "probe with driver")
// and udevd's worker lines of v247 to v262.
// Records of one kind (facts, probes, probe failures, udev worker lines)
// kept at most: the guest's text is untrusted, memory stays bounded.
inline constexpr size_t k_max_records = 4096;

class ConsoleParser {
public:
  void feed(std::string_view line);
  const BootLog& log() const { return m_log; }
  BootLog take() { return std::move(m_log); }

private:
  bool full(size_t records);                          // counts the drop
  void feed_systemd(std::string_view text, double t); // a "systemd[1]: " line
  BootLog m_log;
};

BootLog parse_console(std::string_view text);

// A saved console log, read in 64 KiB pieces: memory stays bounded for any
// size (a 1 GB flood, an endless line). Lines are cut every 64 KiB as the
// process runner cuts QEMU's output, so a file parses as its boot did.
core::Result<BootLog> parse_console_file(const std::filesystem::path& path);

} // namespace probegate::console
