// SPDX-License-Identifier: GPL-2.0-only
#include "spec/run_spec.h"

#include "kernel/knobs.h"
#include "spec/options.h"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace probegate::spec {

std::string_view probe_type_name(ProbeType type) {
  switch (type) {
  case ProbeType::default_type:
    return "default";
  case ProbeType::prefer_async:
    return "prefer-async";
  case ProbeType::force_sync:
    return "force-sync";
  }
  return "default";
}

std::string_view async_knob_name(AsyncKnob knob) {
  switch (knob) {
  case AsyncKnob::none:
    return "none";
  case AsyncKnob::module_param:
    return "module-param";
  case AsyncKnob::modprobe_conf:
    return "modprobe-conf";
  case AsyncKnob::driver_cmdline:
    return "driver-cmdline";
  case AsyncKnob::module_default:
    return "module-default";
  }
  return "none";
}

std::string_view fault_name(Fault fault) {
  switch (fault) {
  case Fault::none:
    break;
  case Fault::corrupt_initramfs:
    return "corrupt-initramfs";
  case Fault::panic:
    return "panic";
  case Fault::oops:
    return "oops";
  case Fault::hang:
    return "hang";
  }
  return "none";
}

core::Status validate(const RunSpec& spec) {
  for (const auto& option : run_options())
    if (auto in_range = check_range(option, spec); !in_range)
      return in_range;
  if (spec.expect.bound && (*spec.expect.bound < 0 || *spec.expect.bound > spec.devices))
    return core::usage_error("--expect-bound {} is impossible with --devices {}: at most {} "
                             "devices can bind",
                             *spec.expect.bound, spec.devices, spec.devices);
  if (spec.async == AsyncKnob::driver_cmdline && spec.async_value == 0)
    return core::usage_error("--async driver-cmdline takes no value: driver_async_probe= names "
                             "drivers; drop --async-value 0");
  if (spec.expect.at_modprobe_return && spec.load != Load::modprobe)
    return core::usage_error("--expect-at-modprobe-return needs --load modprobe: only then does "
                             "the agent run modprobe and count devices when it returns");
  if (spec.expect.at_modprobe_return &&
      (*spec.expect.at_modprobe_return < 0 || *spec.expect.at_modprobe_return > spec.devices))
    return core::usage_error("--expect-at-modprobe-return {} is impossible with --devices {}",
                             *spec.expect.at_modprobe_return, spec.devices);
  if (spec.init == Init::systemd && spec.load == Load::modprobe)
    return core::usage_error("--init systemd with --load modprobe: under systemd udev loads the "
                             "module (the agent's modprobe is --init agent's); drop one");
  if (spec.init == Init::systemd && spec.inject_fault != Fault::none &&
      spec.inject_fault != Fault::corrupt_initramfs)
    return core::usage_error("--inject-fault {} needs --init agent: the agent injects it",
                             fault_name(spec.inject_fault));
  if (spec.device_timeout_s && spec.init != Init::systemd)
    return core::usage_error("--device-timeout is systemd's: add --init systemd");
  if (!spec.connect.empty() && spec.backend != Backend::libvirt)
    return core::usage_error("--connect names a libvirt URI: add --backend libvirt");
  if (spec.clock == vm::Clock::virtual_time && spec.accel == "kvm")
    return core::usage_error("--clock virtual needs TCG (icount); with --accel kvm use "
                             "--clock real");
  return {};
}

const std::vector<std::string>& userspace_values() {
  static const std::vector<std::string> values = [] {
    std::vector<std::string> out;
    for (auto word : find_option("userspace")->words)
      out.emplace_back(word);
    return out;
  }();
  return values;
}

core::Result<std::string> userspace_suite(const RunSpec& spec, std::string_view kernel_suite) {
  if (std::ranges::find(userspace_values(), spec.userspace) == userspace_values().end())
    return core::usage_error("--userspace (suite key userspace) must be one of {}, not '{}'",
                             fmt::join(userspace_values(), ", "), spec.userspace);
  if (spec.userspace != "kernel")
    return spec.userspace.substr(std::string_view("debian:").size());
  if (kernel_suite.empty())
    return std::string(k_default_userspace_suite);
  for (const auto& value : userspace_values())
    if (value == fmt::format("debian:{}", kernel_suite))
      return std::string(kernel_suite);
  return core::usage_error("userspace: kernel: the kernel comes from Debian {}, which has no "
                           "user space here (one of {})",
                           kernel_suite, fmt::join(userspace_values(), ", "));
}

int udev_extra_s(const RunSpec& spec, int udev_major) {
  return spec.udev_extra_timeout_s.value_or(
      udev_major >= k_udev_extra_since ? k_udev_default_extra_s : 0);
}

std::string udev_knob_missing(const RunSpec& spec, int udev_major) {
  if (spec.udev_extra_timeout_s && udev_major < k_udev_extra_since)
    return fmt::format("SYSTEMD_UDEV_EXTRA_TIMEOUT_SEC (--udev-extra-timeout; udev {} and later)",
                       k_udev_extra_since);
  return {};
}

std::string_view init_name(Init init) {
  return init == Init::systemd ? "systemd" : "agent";
}

std::string_view udev_via_name(UdevVia via) {
  switch (via) {
  case UdevVia::cmdline:
    return "cmdline";
  case UdevVia::cmdline_rd:
    return "cmdline-rd";
  case UdevVia::udev_conf:
    return "udev-conf";
  case UdevVia::udevd_arg:
    return "udevd-arg";
  }
  return "cmdline";
}

UdevSettings udev_settings(const RunSpec& spec) {
  UdevSettings out;
  const std::string signal = spec.udev_signal.empty() ? "" : "SIG" + spec.udev_signal;
  switch (spec.udev_via) {
  case UdevVia::cmdline:
  case UdevVia::cmdline_rd: {
    const std::string_view prefix = spec.udev_via == UdevVia::cmdline ? "" : "rd.";
    if (spec.udev_timeout_s)
      out.cmdline += fmt::format(" {}udev.event_timeout={}", prefix, *spec.udev_timeout_s);
    if (!signal.empty())
      out.cmdline += fmt::format(" {}udev.timeout_signal={}", prefix, signal);
    break;
  }
  case UdevVia::udev_conf:
    if (spec.udev_timeout_s)
      out.conf.push_back(fmt::format("event_timeout={}", *spec.udev_timeout_s));
    if (!signal.empty())
      out.conf.push_back(fmt::format("timeout_signal={}", signal));
    break;
  case UdevVia::udevd_arg:
    if (spec.udev_timeout_s)
      out.args.push_back(fmt::format("--event-timeout={}", *spec.udev_timeout_s));
    if (!signal.empty())
      out.args.push_back(fmt::format("--timeout-signal={}", signal));
    break;
  }
  if (spec.udev_extra_timeout_s)
    out.env.push_back(fmt::format("SYSTEMD_UDEV_EXTRA_TIMEOUT_SEC={}", *spec.udev_extra_timeout_s));
  return out;
}

Capacity predicted_capacity(const RunSpec& spec, int extra_s) {
  const int timeout = spec.udev_timeout_s.value_or(k_udev_default_timeout_s) + extra_s;
  if (spec.probe_delay_ms <= 0)
    return {spec.devices, spec.devices};
  const int low = timeout * 1000 / spec.probe_delay_ms;
  const int high = (timeout + 1) * 1000 / spec.probe_delay_ms;
  return {std::min(spec.devices, low), std::min(spec.devices, high)};
}

core::Status check_capacity(const RunSpec& spec) {
  if (!spec.expect_capacity)
    return {};
  if (spec.async != AsyncKnob::none || spec.probe_type != ProbeType::default_type ||
      !spec.probe_kthread)
    return core::usage_error("expect_bound: capacity models a synchronous probe that fails once "
                             "killed: use it with async none, probe_type default, probe_kthread "
                             "yes");
  return {};
}

core::Status resolve_capacity(RunSpec& spec, int extra_s) {
  if (!spec.expect_capacity)
    return {};
  if (auto fits = check_capacity(spec); !fits)
    return fits;
  const auto c = predicted_capacity(spec, extra_s);
  if (c.at_least != c.at_most)
    return core::usage_error(
        "expect_bound: capacity is ambiguous for {} ms probes and a {} s timeout (+{} s udev "
        "waits on top): the kill lands in [T, T+1] s, so {} or {} devices may bind; pick a delay "
        "away from the boundary",
        spec.probe_delay_ms, spec.udev_timeout_s.value_or(k_udev_default_timeout_s), extra_s,
        c.at_least, c.at_most);
  spec.expect.bound = c.at_least;
  return {};
}

int effective_deadline(const RunSpec& spec) {
  if (spec.deadline_s)
    return *spec.deadline_s;
  const int timeout = spec.udev_timeout_s.value_or(k_udev_default_timeout_s);
  const int extra = std::max(spec.udev_extra_timeout_s.value_or(0), k_udev_default_extra_s);
  const int probes_s = (spec.devices * spec.probe_delay_ms + 999) / 1000;
  int longest = std::max(probes_s, timeout + extra + 1);
  if (spec.init == Init::systemd) // the device wait, then emergency mode
    longest =
        std::max(longest, spec.device_timeout_s.value_or(k_systemd_default_device_timeout_s) + 10);
  return 60 + longest + 30;
}

std::string kernel_cmdline(const RunSpec& spec, std::string_view console) {
  std::string out = fmt::format("console={} panic=-1 printk.devkmsg=on", console);
  // systemd as PID 1 (docs/FACTS.md "systemd as PID 1 in the initramfs"),
  // once images/systemd's init pinned the boot ID: its lines and udevd's to
  // kmsg, unit names (not descriptions) in every message, no status redraws
  // or colours on the serial console.
  if (spec.init == Init::systemd)
    out +=
        " rdinit=/usr/lib/probegate/init systemd.log_target=kmsg systemd.status_unit_format=name "
        "systemd.show_status=error TERM=dumb";
  out += udev_settings(spec).cmdline;
  switch (spec.async) {
  case AsyncKnob::module_param:
    out += fmt::format(" slowprobe.async_probe={}", spec.async_value);
    break;
  case AsyncKnob::driver_cmdline:
    out += " driver_async_probe=slowprobe";
    break;
  case AsyncKnob::module_default:
    out += fmt::format(" module.async_probe={}", spec.async_value);
    break;
  case AsyncKnob::none:
  case AsyncKnob::modprobe_conf:
    break;
  }
  return out;
}

namespace {

int probe_type_value(ProbeType type) {
  return type == ProbeType::prefer_async ? 1 : type == ProbeType::force_sync ? 2 : 0;
}

} // namespace

std::string builtin_cmdline_params(const RunSpec& spec) {
  return fmt::format(" slowprobe.delay_ms={} slowprobe.kthread={} slowprobe.kill_check=1 "
                     "slowprobe.probe_type={}",
                     spec.probe_delay_ms, spec.probe_kthread ? 1 : 0,
                     probe_type_value(spec.probe_type));
}

std::vector<std::string> modprobe_options(const RunSpec& spec) {
  std::string line = fmt::format(
      "options slowprobe delay_ms={} kthread={} kill_check=1 probe_type={}", spec.probe_delay_ms,
      spec.probe_kthread ? 1 : 0, probe_type_value(spec.probe_type));
  if (spec.async == AsyncKnob::modprobe_conf)
    line += fmt::format(" async_probe={}", spec.async_value);
  if (spec.load == Load::modprobe) // udev must not load it by modalias first
    return {line, "blacklist slowprobe"};
  return {line};
}

std::string_view required_knob(const RunSpec& spec) {
  switch (spec.async) {
  case AsyncKnob::module_param:
  case AsyncKnob::modprobe_conf:
    return kernel::k_knob_module_param;
  case AsyncKnob::driver_cmdline:
    return kernel::k_knob_driver_cmdline;
  case AsyncKnob::module_default:
    return kernel::k_knob_module_default;
  case AsyncKnob::none:
    break;
  }
  return {};
}

} // namespace probegate::spec
