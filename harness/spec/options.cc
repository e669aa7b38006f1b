// SPDX-License-Identifier: GPL-2.0-only
#include "spec/options.h"

#include "vm/libvirt.h"

#include <algorithm>
#include <charconv>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace probegate::spec {

namespace {

using Text = std::optional<std::string>;

Text number(int value) {
  return std::to_string(value);
}

Text maybe_number(const std::optional<int>& value) {
  return value ? number(*value) : std::nullopt;
}

Text yes_no(bool value) {
  return value ? "yes" : "no";
}

Text maybe_yes_no(const std::optional<bool>& value) {
  return value ? yes_no(*value) : std::nullopt;
}

// "a, b or c"
std::string one_of(const std::vector<std::string_view>& words) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i)
    out += fmt::format("{}{}", i == 0 ? "" : i + 1 == words.size() ? " or " : ", ", words[i]);
  return out;
}

template <typename Enum, size_t N>
Enum from_name(std::string_view word, const Enum (&all)[N], std::string_view (*name)(Enum)) {
  for (auto value : all)
    if (name(value) == word)
      return value;
  return all[0];
}

constexpr ProbeType k_probe_types[] = {ProbeType::default_type, ProbeType::prefer_async,
                                       ProbeType::force_sync};
constexpr AsyncKnob k_knobs[] = {AsyncKnob::none, AsyncKnob::module_param, AsyncKnob::modprobe_conf,
                                 AsyncKnob::driver_cmdline, AsyncKnob::module_default};
constexpr UdevVia k_vias[] = {UdevVia::cmdline, UdevVia::cmdline_rd, UdevVia::udev_conf,
                              UdevVia::udevd_arg};
constexpr Fault k_faults[] = {Fault::none, Fault::corrupt_initramfs, Fault::panic, Fault::oops,
                              Fault::hang};

std::vector<OptionDef> make_table() {
  std::vector<OptionDef> t;
  t.push_back({
      .key = "name",
      .flag = "--name",
      .help = "Name of the run (its results directory starts with it)",
      .type = OptionType::text,
      .in_suite = false, // a suite names each run after its case
      .set = [](RunSpec& s, const OptionValue& v) { s.name = std::string(v.word); },
      .get = [](const RunSpec& s) -> Text { return s.name; },
  });
  t.push_back({
      .key = "kernel",
      .flag = "--kernel",
      .help = "debian:<line>|debian:<abi>|file:<image>[,kbuild=<dir>]|tree:<dir>",
      .type = OptionType::text,
      .id_prefix = "",
      .by_kernel = false, // by_kernel is keyed by it
      .set = [](RunSpec& s, const OptionValue& v) { s.kernel = std::string(v.word); },
      .get = [](const RunSpec& s) -> Text { return s.kernel; },
  });
  t.push_back({
      .key = "devices",
      .flag = "--devices",
      .help = "Number of edu PCI devices the VM gets",
      .type = OptionType::integer,
      .min = 0,
      .max = k_max_devices,
      .id_prefix = "dev",
      .bisect_param = true,
      .set = [](RunSpec& s, const OptionValue& v) { s.devices = v.number; },
      .get = [](const RunSpec& s) { return number(s.devices); },
  });
  t.push_back({
      .key = "probe_delay_ms",
      .flag = "--probe-delay-ms",
      .help = "How long each probe sleeps",
      .type = OptionType::integer,
      .min = 0,
      .max = 3'600'000,
      .id_prefix = "delay",
      .bisect_param = true,
      .set = [](RunSpec& s, const OptionValue& v) { s.probe_delay_ms = v.number; },
      .get = [](const RunSpec& s) { return number(s.probe_delay_ms); },
  });
  t.push_back({
      .key = "probe_kthread",
      .flag = "--probe-kthread",
      .negation = "--no-probe-kthread",
      .help = "After the delay, start a kthread in probe (fails with -EINTR once killed)",
      .type = OptionType::yes_no,
      .id_prefix = "probe_kthread-",
      .cli_switch = true,
      .set = [](RunSpec& s, const OptionValue& v) { s.probe_kthread = v.yes; },
      .get = [](const RunSpec& s) { return yes_no(s.probe_kthread); },
      .json = [](const RunSpec& s) { return nlohmann::json(s.probe_kthread); },
  });
  t.push_back({
      .key = "probe_type",
      .flag = "--probe-type",
      .help = "How the driver asks to be probed",
      .type = OptionType::choice,
      .words = {"default", "prefer-async", "force-sync"},
      .id_prefix = "type-",
      .set =
          [](RunSpec& s, const OptionValue& v) {
            s.probe_type = from_name(v.word, k_probe_types, probe_type_name);
          },
      .get = [](const RunSpec& s) -> Text { return std::string(probe_type_name(s.probe_type)); },
  });
  t.push_back({
      .key = "async",
      .flag = "--async",
      .help = "Which async-probe knob is set",
      .type = OptionType::choice,
      .words = {"none", "module-param", "modprobe-conf", "driver-cmdline", "module-default"},
      .id_prefix = "async-",
      .set = [](RunSpec& s,
                const OptionValue& v) { s.async = from_name(v.word, k_knobs, async_knob_name); },
      .get = [](const RunSpec& s) -> Text { return std::string(async_knob_name(s.async)); },
  });
  t.push_back({
      .key = "async_value",
      .flag = "--async-value",
      .help = "Value given to async_probe",
      .type = OptionType::integer,
      .min = 0,
      .max = 1,
      .id_prefix = "value",
      .set = [](RunSpec& s, const OptionValue& v) { s.async_value = v.number; },
      .get = [](const RunSpec& s) { return number(s.async_value); },
  });
  t.push_back({
      .key = "udev_timeout",
      .flag = "--udev-timeout",
      .help = "udevd event timeout in seconds (default: udevd's own, 180)",
      .type = OptionType::integer,
      .min = 1,
      .max = 86400,
      .unit = "second",
      .id_prefix = "timeout",
      .bisect_param = true,
      .set = [](RunSpec& s, const OptionValue& v) { s.udev_timeout_s = v.number; },
      .get = [](const RunSpec& s) { return maybe_number(s.udev_timeout_s); },
  });
  t.push_back({
      .key = "expect_bound",
      .flag = "--expect-bound",
      // Its range depends on --devices: validate() checks it.
      .help = "Devices that must bind (capacity: as many as init + N x probe <= timeout predicts)",
      .type = OptionType::integer,
      .words = {"capacity"},
      .id_prefix = "bound",
      .set =
          [](RunSpec& s, const OptionValue& v) {
            s.expect_capacity = v.word == "capacity";
            if (s.expect_capacity)
              s.expect.bound.reset();
            else
              s.expect.bound = v.number;
          },
      .get = [](const RunSpec& s) -> Text {
        if (s.expect_capacity && !s.expect.bound)
          return "capacity";
        return maybe_number(s.expect.bound);
      },
  });
  t.push_back({
      .key = "expect_udev_kill",
      .flag = "--expect-udev-kill",
      .help = "Whether the module-loading udev worker must be killed",
      .type = OptionType::choice,
      .words = {"yes", "no", "any"},
      .id_prefix = "expect_udev_kill-",
      .set =
          [](RunSpec& s, const OptionValue& v) {
            s.expect.udev_kill = v.word == "yes"  ? verdict::Tri::yes
                                 : v.word == "no" ? verdict::Tri::no
                                                  : verdict::Tri::any;
          },
      .get = [](const RunSpec& s) -> Text {
        return std::string(verdict::tri_name(s.expect.udev_kill));
      },
  });
  t.push_back({
      .key = "expect_boot",
      .flag = "--expect-boot",
      .help = "Whether the guest must boot",
      .type = OptionType::choice,
      .words = {"yes", "no", "any"},
      .id_prefix = "expect_boot-",
      .set =
          [](RunSpec& s, const OptionValue& v) {
            s.expect.boot = v.word == "any" ? std::nullopt : std::optional<bool>(v.word == "yes");
          },
      .get = [](const RunSpec& s) { return maybe_yes_no(s.expect.boot); },
  });
  t.push_back({
      .key = "accel",
      .flag = "--accel",
      .help = "QEMU accelerator (auto: KVM once a tiny boot proved it works)",
      .type = OptionType::choice,
      .words = {"auto", "kvm", "tcg"},
      .id_prefix = "accel-",
      .set = [](RunSpec& s, const OptionValue& v) { s.accel = std::string(v.word); },
      .get = [](const RunSpec& s) -> Text { return s.accel; },
  });
  t.push_back({
      .key = "clock",
      .flag = "--clock",
      .help = "How guest time runs (virtual: TCG icount, waiting is free and timing exact)",
      .type = OptionType::choice,
      .words = {"virtual", "real"},
      .id_prefix = "clock-",
      .set =
          [](RunSpec& s, const OptionValue& v) {
            s.clock = v.word == "virtual" ? vm::Clock::virtual_time : vm::Clock::real_time;
          },
      .get = [](const RunSpec& s) -> Text {
        return s.clock == vm::Clock::virtual_time ? "virtual" : "real";
      },
  });
  t.push_back({
      .key = "deadline",
      .flag = "--deadline",
      .help = "Guest seconds before the run is cut short (default: enough for every probe and "
              "the udev kill)",
      .type = OptionType::integer,
      .min = 1,
      .unit = "second",
      .id_prefix = "deadline",
      .set = [](RunSpec& s, const OptionValue& v) { s.deadline_s = v.number; },
      .get = [](const RunSpec& s) { return maybe_number(s.deadline_s); },
      // What the guest was given, derived or not.
      .json = [](const RunSpec& s) { return nlohmann::json(effective_deadline(s)); },
  });
  t.push_back({
      .key = "load",
      .flag = "--load",
      .help = "Who loads the module (udev: by modalias; modprobe: the agent runs it)",
      .type = OptionType::choice,
      .words = {"udev", "modprobe"},
      .id_prefix = "load-",
      .set = [](RunSpec& s,
                const OptionValue& v) { s.load = v.word == "udev" ? Load::udev : Load::modprobe; },
      .get = [](const RunSpec& s) -> Text { return s.load == Load::udev ? "udev" : "modprobe"; },
  });
  t.push_back({
      .key = "expect_at_modprobe_return",
      .flag = "--expect-at-modprobe-return",
      .help = "Devices that must exist when modprobe returns (with --load modprobe)",
      .type = OptionType::integer,
      .id_prefix = "expect_at_modprobe_return-",
      .set = [](RunSpec& s, const OptionValue& v) { s.expect.at_modprobe_return = v.number; },
      .get = [](const RunSpec& s) { return maybe_number(s.expect.at_modprobe_return); },
  });
  t.push_back({
      .key = "expect_skip",
      .flag = "--expect-skip",
      .help = "yes: the kernel must lack the --async knob (the run skips); no: it must have it. "
              "Default: a missing knob skips the run",
      .type = OptionType::yes_no,
      .id_prefix = "expect_skip-",
      .set = [](RunSpec& s, const OptionValue& v) { s.expect.skip = v.yes; },
      .get = [](const RunSpec& s) { return maybe_yes_no(s.expect.skip); },
  });
  t.push_back({
      .key = "keep_initramfs",
      .flag = "--keep-initramfs",
      .help = "Keep the run's initramfs.img in its results directory",
      .type = OptionType::yes_no,
      .in_suite = false,
      .cli_switch = true,
      .set = [](RunSpec& s, const OptionValue& v) { s.keep_initramfs = v.yes; },
      .get = [](const RunSpec& s) { return yes_no(s.keep_initramfs); },
  });
  t.push_back({
      .key = "fresh_boot",
      .flag = "--fresh-boot",
      .help = "Boot every case from scratch instead of restoring its group's saved state",
      .type = OptionType::yes_no,
      .cli_switch = true,
      .session_wide = true,
      .set = [](RunSpec& s, const OptionValue& v) { s.fresh_boot = v.yes; },
      .get = [](const RunSpec& s) { return yes_no(s.fresh_boot); },
  });
  t.push_back({
      .key = "inject_fault",
      .flag = "--inject-fault",
      .help = "Break the run on purpose, to test probegate itself",
      .type = OptionType::choice,
      .words = {"none", "corrupt-initramfs", "panic", "oops", "hang"},
      .id_prefix = "inject_fault-",
      .cli_group = "Testing probegate",
      .set = [](RunSpec& s,
                const OptionValue& v) { s.inject_fault = from_name(v.word, k_faults, fault_name); },
      .get = [](const RunSpec& s) -> Text { return std::string(fault_name(s.inject_fault)); },
  });
  t.push_back({
      .key = "userspace",
      .flag = "--userspace",
      .help = "The guest's udev, kmod and libraries: a Debian suite's packages, or `kernel` (the "
              "suite the kernel came from)",
      .type = OptionType::choice,
      .words = {"debian:bullseye", "debian:bookworm", "debian:trixie", "debian:sid", "kernel"},
      .id_prefix = "userspace-",
      .set = [](RunSpec& s, const OptionValue& v) { s.userspace = std::string(v.word); },
      .get = [](const RunSpec& s) -> Text { return s.userspace; },
  });
  t.push_back({
      .key = "udev_timeout_via",
      .flag = "--udev-timeout-via",
      .help = "Where udevd's event timeout and timeout signal are given: udev.* or rd.udev.* on "
              "the kernel command line, udev.conf, or systemd-udevd's arguments",
      .type = OptionType::choice,
      .words = {"cmdline", "cmdline-rd", "udev-conf", "udevd-arg"},
      .id_prefix = "via-",
      .set = [](RunSpec& s,
                const OptionValue& v) { s.udev_via = from_name(v.word, k_vias, udev_via_name); },
      .get = [](const RunSpec& s) -> Text { return std::string(udev_via_name(s.udev_via)); },
  });
  t.push_back({
      .key = "udev_timeout_signal",
      .flag = "--udev-timeout-signal",
      .help = "The signal udevd sends a worker past its timeout (default: udevd's own, KILL)",
      .type = OptionType::choice,
      .words = {"KILL", "ABRT", "TERM", "INT", "QUIT", "HUP", "USR1", "USR2"},
      .id_prefix = "sig",
      .set = [](RunSpec& s, const OptionValue& v) { s.udev_signal = std::string(v.word); },
      .get = [](const RunSpec& s) -> Text {
        return s.udev_signal.empty() ? std::nullopt : Text(s.udev_signal);
      },
  });
  t.push_back({
      .key = "udev_extra_timeout",
      .flag = "--udev-extra-timeout",
      .help = "Seconds udevd waits past the timeout before the kill "
              "(SYSTEMD_UDEV_EXTRA_TIMEOUT_SEC; default: udevd's own, 10 from udev 256 on)",
      .type = OptionType::integer,
      .min = 0,
      .max = 3600,
      .unit = "second",
      .id_prefix = "extra",
      .bisect_param = true,
      .set = [](RunSpec& s, const OptionValue& v) { s.udev_extra_timeout_s = v.number; },
      .get = [](const RunSpec& s) { return maybe_number(s.udev_extra_timeout_s); },
  });
  t.push_back({
      .key = "init",
      .flag = "--init",
      .help = "PID 1 of the initramfs: probegate's agent, or the user space's systemd waiting for "
              "the devices as a distro initrd waits for its root disk",
      .type = OptionType::choice,
      .words = {"agent", "systemd"},
      .id_prefix = "init-",
      .set =
          [](RunSpec& s, const OptionValue& v) {
            s.init = v.word == "systemd" ? Init::systemd : Init::agent;
          },
      .get = [](const RunSpec& s) -> Text { return std::string(init_name(s.init)); },
  });
  t.push_back({
      .key = "device_timeout",
      .flag = "--device-timeout",
      .help = "--init systemd: seconds systemd waits for each device (default: its own, 90)",
      .type = OptionType::integer,
      .min = 1,
      .max = 86400,
      .unit = "second",
      .id_prefix = "device_timeout",
      .set = [](RunSpec& s, const OptionValue& v) { s.device_timeout_s = v.number; },
      .get = [](const RunSpec& s) { return maybe_number(s.device_timeout_s); },
  });
  t.push_back({
      .key = "backend",
      .flag = "--backend",
      .help = "What runs the VM: probegate's own QEMU, or libvirt (the embedded driver unless "
              "--connect names a daemon)",
      .type = OptionType::choice,
      .words = {"qemu", "libvirt"},
      .id_prefix = "backend-",
      .session_wide = true,
      .set =
          [](RunSpec& s, const OptionValue& v) {
            s.backend = v.word == "qemu" ? Backend::qemu : Backend::libvirt;
          },
      .get = [](const RunSpec& s) -> Text {
        return s.backend == Backend::qemu ? "qemu" : "libvirt";
      },
  });
  t.push_back({
      .key = "connect",
      .flag = "--connect",
      .help = "--backend libvirt: the libvirt URI (qemu:///system, qemu+tcp://HOST/system, "
              "qemu+ssh://USER@HOST/system; default: the embedded driver, no daemon)",
      .type = OptionType::text,
      .id_prefix = "connect-",
      .session_wide = true,
      .set = [](RunSpec& s, const OptionValue& v) { s.connect = std::string(v.word); },
      .check = vm::check_libvirt_uri,
      .get = [](const RunSpec& s) -> Text {
        return s.connect.empty() ? std::nullopt : Text(s.connect);
      },
      // Credentials never reach result.json.
      .json =
          [](const RunSpec& s) {
            return s.connect.empty() ? nlohmann::json(nullptr)
                                     : nlohmann::json(vm::redact_uri(s.connect));
          },
  });
  return t;
}

core::Result<int> to_int(std::string_view text) {
  int out = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || ptr != text.data() + text.size())
    return std::unexpected(core::Error{core::ErrorKind::usage, ""});
  return out;
}

} // namespace

const std::vector<OptionDef>& run_options() {
  static const std::vector<OptionDef> table = make_table();
  return table;
}

const OptionDef* find_option(std::string_view key) {
  const auto& table = run_options();
  const auto it = std::ranges::find(table, key, &OptionDef::key);
  return it == table.end() ? nullptr : &*it;
}

core::Status set_option(RunSpec& spec, const OptionDef& option, std::string_view text,
                        std::string_view name) {
  OptionValue value{.word = text};
  const bool word = std::ranges::find(option.words, text) != option.words.end();
  switch (option.type) {
  case OptionType::integer:
    if (!word) {
      auto n = to_int(text);
      if (!n)
        return core::usage_error("{} must be a whole number{}, not '{}'", name,
                                 option.words.empty() ? std::string()
                                                      : fmt::format(" or {}", one_of(option.words)),
                                 text);
      value.number = *n;
    }
    break;
  case OptionType::yes_no:
    if (text != "yes" && text != "true" && text != "no" && text != "false")
      return core::usage_error("{} must be yes or no, not '{}'", name, text);
    value.yes = text == "yes" || text == "true";
    break;
  case OptionType::choice:
    if (!word)
      return core::usage_error("{} must be {}, not '{}'", name, one_of(option.words), text);
    break;
  case OptionType::text:
    if (option.check != nullptr)
      if (auto checked = option.check(text, name); !checked)
        return checked;
    break;
  }
  option.set(spec, value);
  return {};
}

core::Status check_range(const OptionDef& option, const RunSpec& spec) {
  if (option.type != OptionType::integer || (option.min == INT_MIN && option.max == INT_MAX))
    return {};
  const auto text = option.get(spec);
  const auto n = text ? to_int(*text) : core::Result<int>();
  if (!text || !n || (*n >= option.min && *n <= option.max))
    return {};
  const auto unit = [&](int bound) {
    return option.unit.empty() ? std::string()
                               : fmt::format(" {}{}", option.unit, bound == 1 ? "" : "s");
  };
  if (option.max == INT_MAX)
    return core::usage_error("{} must be at least {}{}, not {}", option.flag, option.min,
                             unit(option.min), *n);
  if (option.max == option.min + 1 && option.unit.empty())
    return core::usage_error("{} must be {} or {}, not {}", option.flag, option.min, option.max,
                             *n);
  return core::usage_error("{} must be {} to {}{}, not {}", option.flag, option.min, option.max,
                           unit(option.max), *n);
}

std::string bisect_param_names() {
  std::vector<std::string_view> names;
  for (const auto& o : run_options())
    if (o.bisect_param)
      names.push_back(o.flag.substr(2));
  return one_of(names);
}

const std::vector<std::string>& option_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> out;
    for (const auto& o : run_options())
      if (o.in_suite)
        out.emplace_back(o.key);
    return out;
  }();
  return keys;
}

core::Status apply_option(RunSpec& spec, std::string_view key, std::string_view value) {
  const OptionDef* option = find_option(key);
  if (!option || !option->in_suite)
    return core::usage_error("unknown option '{}'", key);
  return set_option(spec, *option, value, key);
}

nlohmann::json options_json(const RunSpec& spec) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& o : run_options()) {
    if (!o.in_suite)
      continue;
    if (o.json) {
      j[std::string(o.key)] = o.json(spec);
      continue;
    }
    const auto text = o.get(spec);
    auto& field = j[std::string(o.key)];
    if (!text)
      field = nullptr;
    else if (auto n = to_int(*text); o.type == OptionType::integer && n)
      field = *n;
    else
      field = *text;
  }
  return j;
}

core::Result<RunSpec> spec_from_json(const nlohmann::json& options) {
  RunSpec spec;
  if (!options.is_object())
    return core::usage_error("the run options are not a JSON object");
  for (const auto& o : run_options()) {
    const auto it = options.find(std::string(o.key));
    if (!o.in_suite || it == options.end() || it->is_null())
      continue;
    const std::string text = it->is_string()    ? it->get<std::string>()
                             : it->is_boolean() ? std::string(it->get<bool>() ? "yes" : "no")
                                                : it->dump();
    if (auto ok = set_option(spec, o, text, o.key); !ok)
      return std::unexpected(ok.error());
  }
  return spec;
}

} // namespace probegate::spec
