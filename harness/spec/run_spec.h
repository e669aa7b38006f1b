// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "verdict/verdict.h"
#include "vm/vm_spec.h"

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace probegate::spec {

enum class ProbeType { default_type, prefer_async, force_sync };
enum class AsyncKnob { none, module_param, modprobe_conf, driver_cmdline, module_default };
// Who loads the module: udev by modalias (the failure under test), or the
// agent running `modprobe slowprobe` itself (udev's autoload blacklisted),
// to see how many devices exist the moment modprobe returns.
enum class Load { udev, modprobe };
// A fault injected on purpose, to prove the host tells each apart (issue 7):
// a corrupt initramfs (an infrastructure error), a panic and an Oops from a
// module other than the test module (crashes), a guest that hangs until its
// deadline (timed out). Never used by a real test of a kernel.
enum class Fault { none, corrupt_initramfs, panic, oops, hang };
// Where udevd's event timeout and timeout signal are given: the kernel
// command line (`udev.` or `rd.udev.`), /etc/udev/udev.conf, or
// systemd-udevd's own arguments (docs/FACTS.md "Setting the timeout").
enum class UdevVia { cmdline, cmdline_rd, udev_conf, udevd_arg };
// PID 1 of the initramfs: probegate's agent (busybox sh starting udevd, as
// initramfs-tools does), or the suite's systemd with its udevd, waiting for
// the slowprobe devices as a distro initrd waits for its root disk.
enum class Init { agent, systemd };
// What runs the VM (docs/CONTRACTS.md "Backends").
enum class Backend { qemu, libvirt };

// One boot, as the user asked for it (docs/CONTRACTS.md "Run options"). Pure data:
// the CLI and suites fill it; the functions below derive the guest's
// configuration from it.
struct RunSpec {
  std::string name;
  std::string kernel = "debian:6.1";
  int devices = 2;
  int probe_delay_ms = 0;
  bool probe_kthread = true;
  ProbeType probe_type = ProbeType::default_type;
  AsyncKnob async = AsyncKnob::none;
  Load load = Load::udev;
  int async_value = 1;
  std::optional<int> udev_timeout_s; // unset: udevd's own default
  verdict::Expectations expect;
  std::string accel = "auto";
  vm::Clock clock = vm::Clock::virtual_time;
  std::optional<int> deadline_s; // guest seconds; unset: derived
  bool keep_initramfs = false;   // copy the image into the run directory
  bool fresh_boot = false;       // boot from scratch, never from a saved state
  bool expect_capacity = false;  // expect_bound: capacity (see predicted_capacity)
  Fault inject_fault = Fault::none;
  // The guest's user space: debian:<suite>, or `kernel` for the suite the
  // kernel came from (see userspace_suite()).
  std::string userspace = "debian:bookworm";
  UdevVia udev_via = UdevVia::cmdline;
  std::string udev_signal;                 // KILL, ABRT, …; "": udevd's own (KILL)
  std::optional<int> udev_extra_timeout_s; // unset: udevd's own (see udev_extra_s)
  Init init = Init::agent;
  std::optional<int> device_timeout_s; // --init systemd: each device unit's; unset: systemd's 90 s
  Backend backend = Backend::qemu;
  std::string connect; // --backend libvirt: the URI; "": the embedded driver
};

inline constexpr int k_systemd_default_device_timeout_s = 90;

inline constexpr int k_udev_default_timeout_s = 180;
inline constexpr std::string_view k_default_userspace_suite = "bookworm";

// The values `userspace` takes: debian:bullseye … debian:sid, kernel.
const std::vector<std::string>& userspace_values();
// The Debian suite whose packages make the guest's user space. `kernel`
// takes `kernel_suite`, the suite the kernel was found in ("" for file:,
// tree: and build: kernels: then bookworm). Pure; an unknown value is a
// usage error naming the option and the accepted values.
core::Result<std::string> userspace_suite(const RunSpec& spec, std::string_view kernel_suite);
inline constexpr int k_max_devices = 32;

// Every integer option's range (from the option table), then the rules
// between options. Messages name the command line's flags.
core::Status validate(const RunSpec& spec);

// The seconds udevd waits past the event timeout before the kill, for the
// udev of `udev_major`: --udev-extra-timeout if given, else 10 from udev 256
// on and 0 before (docs/FACTS.md "udev 256 and later wait 10 s more").
int udev_extra_s(const RunSpec& spec, int udev_major);
inline constexpr int k_udev_extra_since = 256;
inline constexpr int k_udev_default_extra_s = 10;
// What a udev of `udev_major` lacks of what the run asks for ("" for
// nothing): such a case is a SKIP with this as its reason.
std::string udev_knob_missing(const RunSpec& spec, int udev_major);

// How the run's udev settings reach udevd: kernel command line words,
// udev.conf lines, systemd-udevd arguments and environment.
struct UdevSettings {
  std::string cmdline; // " udev.event_timeout=3 udev.timeout_signal=SIGABRT"
  std::vector<std::string> conf;
  std::vector<std::string> args;
  std::vector<std::string> env;
};
UdevSettings udev_settings(const RunSpec& spec);
std::string_view udev_via_name(UdevVia via);
std::string_view init_name(Init init);

// With a synchronous probe the worker is killed T+E..T+E+1 s after its event
// started (E: udev_extra_s; the second is udev's timer slack, docs/FACTS.md "Timer slack"),
// so the devices that bind are those whose probes end before that:
// floor((T + E) / delay) to floor((T + E + 1) / delay), at most `devices`.
struct Capacity {
  int at_least = 0;
  int at_most = 0;
};
Capacity predicted_capacity(const RunSpec& spec, int extra_s);
// Whether `expect_bound: capacity` fits the run (a synchronous probe that
// fails once killed). The number comes from resolve_capacity once the user
// space, and so the extra seconds, are known.
core::Status check_capacity(const RunSpec& spec);
// Turns `expect_bound: capacity` into a number; a usage error where the
// prediction is a range (the case would be flaky by design).
core::Status resolve_capacity(RunSpec& spec, int extra_s);
// Guest seconds after which the agent gives up: enough for every probe, the
// udev kill (timeout + extra + 1 s, the extra being --udev-extra-timeout or
// at least udev >= 256's 10 s) and the settle, with margin.
int effective_deadline(const RunSpec& spec);
std::string kernel_cmdline(const RunSpec& spec, std::string_view console = "ttyS0");
std::vector<std::string> modprobe_options(const RunSpec& spec);
// slowprobe built into the kernel (=y) takes its parameters from the kernel
// command line: " slowprobe.delay_ms=… slowprobe.kthread=… …".
std::string builtin_cmdline_params(const RunSpec& spec);

// The name of the kernel knob a run needs (kernel/knobs.h), "" for none:
// module-param and modprobe-conf need the loader's per-module async_probe,
// driver-cmdline needs driver_async_probe=, module-default module.async_probe.
std::string_view required_knob(const RunSpec& spec);

std::string_view probe_type_name(ProbeType type);
std::string_view async_knob_name(AsyncKnob knob);
std::string_view fault_name(Fault fault);

// Made from the option table (spec/options.h):
// The run options as result.json records them (keys are the suite keys).
nlohmann::json options_json(const RunSpec& spec);
// The inverse: a RunSpec from result.json's "options" (null or absent keys
// keep their defaults). Errors name the key.
core::Result<RunSpec> spec_from_json(const nlohmann::json& options);
// Sets one run option from its suite key (`probe_delay_ms`) and text value,
// as a suite file gives them. Errors name the key and what is allowed.
core::Status apply_option(RunSpec& spec, std::string_view key, std::string_view value);
// The suite keys apply_option() knows, in table order, for "allowed keys" messages.
const std::vector<std::string>& option_keys();

} // namespace probegate::spec
