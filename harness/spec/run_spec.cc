// SPDX-License-Identifier: GPL-2.0-only
#include "spec/run_spec.h"

#include "kernel/knobs.h"

#include <algorithm>
#include <charconv>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

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

core::Result<ProbeType> parse_probe_type(std::string_view text) {
  for (auto type : {ProbeType::default_type, ProbeType::prefer_async, ProbeType::force_sync})
    if (probe_type_name(type) == text)
      return type;
  return core::usage_error("--probe-type must be default, prefer-async or force-sync, not '{}'",
                           text);
}

core::Result<AsyncKnob> parse_async_knob(std::string_view text) {
  for (auto knob : {AsyncKnob::none, AsyncKnob::module_param, AsyncKnob::modprobe_conf,
                    AsyncKnob::driver_cmdline, AsyncKnob::module_default})
    if (async_knob_name(knob) == text)
      return knob;
  return core::usage_error("--async must be none, module-param, modprobe-conf, driver-cmdline "
                           "or module-default, not '{}'",
                           text);
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

core::Result<Fault> parse_fault(std::string_view text) {
  for (auto fault : {Fault::none, Fault::corrupt_initramfs, Fault::panic, Fault::oops, Fault::hang})
    if (fault_name(fault) == text)
      return fault;
  return core::usage_error(
      "--inject-fault must be none, corrupt-initramfs, panic, oops or hang, not '{}'", text);
}

core::Result<verdict::Tri> parse_tri(std::string_view text, std::string_view option) {
  if (text == "yes")
    return verdict::Tri::yes;
  if (text == "no")
    return verdict::Tri::no;
  if (text == "any")
    return verdict::Tri::any;
  return core::usage_error("{} must be yes, no or any, not '{}'", option, text);
}

core::Status validate(const RunSpec& spec) {
  if (spec.devices < 0 || spec.devices > k_max_devices)
    return core::usage_error("--devices must be 0 to {}, not {}", k_max_devices, spec.devices);
  if (spec.probe_delay_ms < 0 || spec.probe_delay_ms > 3'600'000)
    return core::usage_error("--probe-delay-ms must be 0 to 3600000, not {}", spec.probe_delay_ms);
  if (spec.async_value != 0 && spec.async_value != 1)
    return core::usage_error("--async-value must be 0 or 1, not {}", spec.async_value);
  if (spec.udev_timeout_s && (*spec.udev_timeout_s < 1 || *spec.udev_timeout_s > 86400))
    return core::usage_error("--udev-timeout must be 1 to 86400 seconds, not {}",
                             *spec.udev_timeout_s);
  if (spec.expect.bound && (*spec.expect.bound < 0 || *spec.expect.bound > spec.devices))
    return core::usage_error("--expect-bound {} is impossible with --devices {}: at most {} "
                             "devices can bind",
                             *spec.expect.bound, spec.devices, spec.devices);
  if (spec.deadline_s && *spec.deadline_s < 1)
    return core::usage_error("--deadline must be at least 1 second, not {}", *spec.deadline_s);
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
  if (spec.clock == vm::Clock::virtual_time && spec.accel == "kvm")
    return core::usage_error("--clock virtual needs TCG (icount); with --accel kvm use "
                             "--clock real");
  if (auto suite = userspace_suite(spec, ""); !suite)
    return std::unexpected(suite.error());
  return {};
}

const std::vector<std::string>& userspace_values() {
  static const std::vector<std::string> values{"debian:bullseye", "debian:bookworm",
                                               "debian:trixie", "debian:sid", "kernel"};
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

Capacity predicted_capacity(const RunSpec& spec) {
  const int timeout = spec.udev_timeout_s.value_or(k_udev_default_timeout_s);
  if (spec.probe_delay_ms <= 0)
    return {spec.devices, spec.devices};
  const int low = timeout * 1000 / spec.probe_delay_ms;
  const int high = (timeout + 1) * 1000 / spec.probe_delay_ms;
  return {std::min(spec.devices, low), std::min(spec.devices, high)};
}

core::Status resolve_capacity(RunSpec& spec) {
  if (!spec.expect_capacity)
    return {};
  if (spec.async != AsyncKnob::none || spec.probe_type != ProbeType::default_type ||
      !spec.probe_kthread)
    return core::usage_error("expect_bound: capacity models a synchronous probe that fails once "
                             "killed: use it with async none, probe_type default, probe_kthread "
                             "yes");
  const auto c = predicted_capacity(spec);
  if (c.at_least != c.at_most)
    return core::usage_error(
        "expect_bound: capacity is ambiguous for {} ms probes and a {} s timeout: the kill lands "
        "in [T, T+1] s, so {} or {} devices may bind; pick a delay away from the boundary",
        spec.probe_delay_ms, spec.udev_timeout_s.value_or(k_udev_default_timeout_s), c.at_least,
        c.at_most);
  spec.expect.bound = c.at_least;
  return {};
}

int effective_deadline(const RunSpec& spec) {
  if (spec.deadline_s)
    return *spec.deadline_s;
  const int timeout = spec.udev_timeout_s.value_or(k_udev_default_timeout_s);
  const int probes_s = (spec.devices * spec.probe_delay_ms + 999) / 1000;
  return 60 + std::max(probes_s, timeout + 11) + 30;
}

std::string kernel_cmdline(const RunSpec& spec, std::string_view console) {
  std::string out = fmt::format("console={} panic=-1 printk.devkmsg=on", console);
  if (spec.udev_timeout_s)
    out += fmt::format(" udev.event_timeout={}", *spec.udev_timeout_s);
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

nlohmann::json options_json(const RunSpec& spec) {
  nlohmann::json j = {
      {"kernel", spec.kernel},
      {"devices", spec.devices},
      {"probe_delay_ms", spec.probe_delay_ms},
      {"probe_kthread", spec.probe_kthread},
      {"probe_type", probe_type_name(spec.probe_type)},
      {"async", async_knob_name(spec.async)},
      {"async_value", spec.async_value},
      {"load", spec.load == Load::udev ? "udev" : "modprobe"},
      {"expect_at_modprobe_return", spec.expect.at_modprobe_return
                                        ? nlohmann::json(*spec.expect.at_modprobe_return)
                                        : nlohmann::json()},
      {"udev_timeout",
       spec.udev_timeout_s ? nlohmann::json(*spec.udev_timeout_s) : nlohmann::json()},
      {"expect_bound", spec.expect.bound ? nlohmann::json(*spec.expect.bound) : nlohmann::json()},
      {"expect_udev_kill", verdict::tri_name(spec.expect.udev_kill)},
      {"expect_boot",
       spec.expect.boot ? nlohmann::json(*spec.expect.boot ? "yes" : "no") : nlohmann::json()},
      {"expect_skip",
       spec.expect.skip ? nlohmann::json(*spec.expect.skip ? "yes" : "no") : nlohmann::json()},
      {"accel", spec.accel},
      {"clock", spec.clock == vm::Clock::virtual_time ? "virtual" : "real"},
      {"deadline", effective_deadline(spec)},
      {"inject_fault", fault_name(spec.inject_fault)},
      {"userspace", spec.userspace},
  };
  return j;
}

namespace {

core::Result<int> to_int(std::string_view key, std::string_view value) {
  int out = 0;
  const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || ptr != value.data() + value.size())
    return core::usage_error("{} must be a whole number, not '{}'", key, value);
  return out;
}

core::Result<bool> to_bool(std::string_view key, std::string_view value) {
  if (value == "yes" || value == "true")
    return true;
  if (value == "no" || value == "false")
    return false;
  return core::usage_error("{} must be yes or no, not '{}'", key, value);
}

} // namespace

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

const std::vector<std::string>& option_keys() {
  static const std::vector<std::string> keys{"kernel",         "devices",
                                             "probe_delay_ms", "probe_kthread",
                                             "probe_type",     "async",
                                             "async_value",    "udev_timeout",
                                             "expect_bound",   "expect_udev_kill",
                                             "expect_boot",    "accel",
                                             "clock",          "deadline",
                                             "load",           "expect_at_modprobe_return",
                                             "expect_skip",    "inject_fault",
                                             "userspace"};
  return keys;
}

core::Status apply_option(RunSpec& spec, std::string_view key, std::string_view value) {
  auto set_int = [&](auto& field) -> core::Status {
    auto v = to_int(key, value);
    if (!v)
      return std::unexpected(v.error());
    field = *v;
    return {};
  };
  if (key == "kernel") {
    spec.kernel = std::string(value);
  } else if (key == "devices") {
    return set_int(spec.devices);
  } else if (key == "probe_delay_ms") {
    return set_int(spec.probe_delay_ms);
  } else if (key == "probe_kthread") {
    auto v = to_bool(key, value);
    if (!v)
      return std::unexpected(v.error());
    spec.probe_kthread = *v;
  } else if (key == "probe_type") {
    auto v = parse_probe_type(value);
    if (!v)
      return std::unexpected(v.error());
    spec.probe_type = *v;
  } else if (key == "async") {
    auto v = parse_async_knob(value);
    if (!v)
      return std::unexpected(v.error());
    spec.async = *v;
  } else if (key == "async_value") {
    return set_int(spec.async_value);
  } else if (key == "udev_timeout") {
    return set_int(spec.udev_timeout_s.emplace());
  } else if (key == "expect_bound") {
    spec.expect_capacity = value == "capacity";
    if (spec.expect_capacity)
      return {};
    return set_int(spec.expect.bound.emplace());
  } else if (key == "expect_udev_kill") {
    auto v = parse_tri(value, "expect_udev_kill");
    if (!v)
      return std::unexpected(v.error());
    spec.expect.udev_kill = *v;
  } else if (key == "expect_boot") {
    auto v = parse_tri(value, "expect_boot");
    if (!v)
      return std::unexpected(v.error());
    spec.expect.boot =
        *v == verdict::Tri::any ? std::nullopt : std::optional<bool>(*v == verdict::Tri::yes);
  } else if (key == "accel") {
    if (value != "auto" && value != "kvm" && value != "tcg")
      return core::usage_error("accel must be auto, kvm or tcg, not '{}'", value);
    spec.accel = std::string(value);
  } else if (key == "clock") {
    if (value != "virtual" && value != "real")
      return core::usage_error("clock must be virtual or real, not '{}'", value);
    spec.clock = value == "virtual" ? vm::Clock::virtual_time : vm::Clock::real_time;
  } else if (key == "deadline") {
    return set_int(spec.deadline_s.emplace());
  } else if (key == "load") {
    if (value != "udev" && value != "modprobe")
      return core::usage_error("load must be udev or modprobe, not '{}'", value);
    spec.load = value == "udev" ? Load::udev : Load::modprobe;
  } else if (key == "expect_at_modprobe_return") {
    return set_int(spec.expect.at_modprobe_return.emplace());
  } else if (key == "expect_skip") {
    auto v = to_bool(key, value);
    if (!v)
      return std::unexpected(v.error());
    spec.expect.skip = *v;
  } else if (key == "inject_fault") {
    auto v = parse_fault(value);
    if (!v)
      return std::unexpected(v.error());
    spec.inject_fault = *v;
  } else if (key == "userspace") {
    spec.userspace = std::string(value);
    if (auto suite = userspace_suite(spec, ""); !suite)
      return std::unexpected(suite.error());
  } else {
    return core::usage_error("unknown option '{}'", key);
  }
  return {};
}

} // namespace probegate::spec
