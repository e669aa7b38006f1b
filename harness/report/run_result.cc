// SPDX-License-Identifier: GPL-2.0-only
#include "report/run_result.h"

#include "core/command.h"
#include "core/files.h"
#include "core/text.h"

#include <nlohmann/json.hpp>

namespace probegate::report {

namespace {

template <typename T> nlohmann::json opt(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}

nlohmann::json outcome_json(const verdict::Outcome& o) {
  nlohmann::json kills = nlohmann::json::array();
  for (const auto& k : o.udev_kills)
    kills.push_back({{"device", k.device},
                     {"seqnum", k.seqnum},
                     {"worker_pid", k.worker_pid},
                     {"guest_time_s", opt(k.t_s)},
                     {"loading_module", k.loading_module},
                     {"signal", opt(k.signal)}});
  nlohmann::json failed = nlohmann::json::array();
  for (const auto& e : o.udev_failed_events)
    failed.push_back({{"seqnum", e.seqnum},
                      {"devpath", e.devpath},
                      {"signal", opt(e.signal)},
                      {"signal_name", e.signal_name},
                      {"exit_status", opt(e.exit_status)},
                      {"errno_name", e.errno_name}});
  nlohmann::json probes = nlohmann::json::array();
  for (const auto& p : o.probes)
    probes.push_back({{"device", p.device},
                      {"start_s", opt(p.start_s)},
                      {"end_s", opt(p.end_s)},
                      {"result", opt(p.result)}});
  nlohmann::json device_timeouts = nlohmann::json::array();
  for (const auto& d : o.systemd_device_timeouts)
    device_timeouts.push_back({{"unit", d.unit}, {"guest_time_s", d.t_s}});
  return {{"booted", o.booted},
          {"timed_out", o.timed_out},
          {"devices_expected", o.devices_expected},
          {"devices_bound", o.devices_bound},
          {"probe_failures", o.probe_failures},
          {"udev_worker_killed", o.udev_worker_killed},
          {"udev_slow_warnings", o.udev_slow_warnings},
          {"udev_kills", kills},
          {"udev_failed_events", failed},
          {"probes", probes},
          {"panic", o.panic},
          {"panic_line", opt(o.panic_line)},
          {"oops_line", opt(o.oops_line)},
          {"oops_rip", opt(o.oops_rip)},
          {"console_records_dropped", o.console_records_dropped},
          {"time_to_available_s", opt(o.time_to_available_s)},
          {"init_module_returned_s", opt(o.init_module_returned_s)},
          {"guest_module_async_probe", opt(o.guest_module_async_probe)},
          {"devices_at_modprobe_return", opt(o.devices_at_modprobe_return)},
          {"loader_pid", opt(o.loader_pid)},
          {"infra_error", opt(o.infra_error)},
          {"guest_kernel", o.guest_kernel},
          {"udev_version", opt(o.udev_version)},
          {"init", o.init},
          {"emergency", o.emergency},
          {"reached_target", opt(o.reached_target)},
          {"systemd_device_timeouts", device_timeouts},
          {"systemd_version", opt(o.systemd_version)}};
}

} // namespace

nlohmann::json checks_json(const verdict::Verdict& verdict) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : verdict.checks)
    out.push_back(
        {{"name", c.name}, {"expected", c.expected}, {"actual", c.actual}, {"pass", c.pass}});
  return out;
}

nlohmann::json userspace_json(const RunResult& r) {
  return {
      {"ref", r.spec.userspace},
      {"suite", r.userspace_suite.empty() ? nlohmann::json() : nlohmann::json(r.userspace_suite)},
      {"udev", opt(r.outcome.udev_version)},
      {"udev_extra_timeout_s", opt(r.udev_extra_s)},
      {"init", spec::init_name(r.spec.init)},
      {"systemd", r.outcome.systemd_version ? nlohmann::json(*r.outcome.systemd_version)
                  : r.systemd_package       ? nlohmann::json(r.systemd_package)
                                            : nlohmann::json()}};
}

nlohmann::json to_json(const RunResult& r) {
  const nlohmann::json checks = checks_json(r.verdict);
  nlohmann::json j = {
      {"format", "probegate-result/1"},
      {"name", r.spec.name},
      {"verdict", verdict::verdict_name(r.verdict.kind)},
      {"reason", r.verdict.reason},
      {"kernel",
       {{"ref", r.spec.kernel},
        {"release", r.kernel_release},
        {"git", r.kernel_git ? nlohmann::json(*r.kernel_git) : nlohmann::json()}}},
      {"userspace", userspace_json(r)},
      {"options", spec::options_json(r.spec)},
      {"expect_capacity", r.spec.expect_capacity},
      {"outcome", outcome_json(r.outcome)},
      {"checks", checks},
      {"kernel_cmdline", r.kernel_cmdline},
      {"qemu_argv", r.qemu_argv},
      {"qemu_command",
       r.qemu_argv.empty() ? "" : core::to_shell(core::Command{r.qemu_argv, {}, {}, {}, {}, {}})},
      {"accel", r.accel},
      {"accel_reason", r.accel_reason},
      {"accel_probe_bound_s",
       r.accel_probe_bound_s ? nlohmann::json(*r.accel_probe_bound_s) : nlohmann::json(nullptr)},
      {"stage_s", r.stage_s},
      {"host_before_qemu_s", r.host_before_qemu_s},
      {"boot_path",
       {{"restored", r.boot_path.restored},
        {"state_key", r.boot_path.state_key},
        {"state_bytes", r.boot_path.state_bytes},
        {"state_made", r.boot_path.state_made},
        {"paused_at_s", r.boot_path.paused_at_s},
        {"restore_s", r.boot_path.restore_s},
        {"pause_step_ns", r.boot_path.pause_step_ns ? nlohmann::json(*r.boot_path.pause_step_ns)
                                                    : nlohmann::json(nullptr)},
        {"fresh_reason", r.boot_path.fresh_reason}}},
      {"libvirt_uri", r.libvirt_uri},
      {"host", r.host},
      {"uploaded_bytes", r.uploaded_bytes},
      {"wall_s", r.wall_s},
      {"error", r.error},
  };
  // Run options also at the top level, by the names of docs/CONTRACTS.md "result.json".
  for (const auto& [key, value] : j["options"].items())
    if (!j.contains(key))
      j[key] = value;
  return j;
}

// ASCII only (ensure_ascii): a guest's C1 controls (U+009B CSI) become
// \u009b, so `cat result.json` is safe on a terminal; parsers read it back.
core::Status write_result(const RunResult& result) {
  return core::write_file_atomic(
      result.dir / "result.json",
      to_json(result).dump(2, ' ', true, nlohmann::json::error_handler_t::replace) + "\n");
}

namespace {

// A field that may be null or absent.
template <typename T> std::optional<T> maybe(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return std::nullopt;
  return it->get<T>();
}

template <typename T> T field(const nlohmann::json& j, const char* key, T fallback = T{}) {
  return maybe<T>(j, key).value_or(std::move(fallback));
}

verdict::Outcome outcome_from_json(const nlohmann::json& j) {
  verdict::Outcome o;
  for (const auto& k : j.at("udev_kills"))
    o.udev_kills.push_back({.device = field<std::string>(k, "device"),
                            .seqnum = field<int>(k, "seqnum"),
                            .worker_pid = field<int>(k, "worker_pid"),
                            .t_s = maybe<double>(k, "guest_time_s"),
                            .loading_module = field<bool>(k, "loading_module"),
                            .signal = maybe<int>(k, "signal")});
  for (const auto& e : j.at("udev_failed_events"))
    o.udev_failed_events.push_back({.seqnum = field<int>(e, "seqnum"),
                                    .devpath = field<std::string>(e, "devpath"),
                                    .signal = maybe<int>(e, "signal"),
                                    .signal_name = field<std::string>(e, "signal_name"),
                                    .exit_status = maybe<int>(e, "exit_status"),
                                    .errno_name = field<std::string>(e, "errno_name")});
  for (const auto& p : j.at("probes"))
    o.probes.push_back({.device = field<std::string>(p, "device"),
                        .start_s = maybe<double>(p, "start_s"),
                        .end_s = maybe<double>(p, "end_s"),
                        .result = maybe<int>(p, "result")});
  for (const auto& d : j.at("systemd_device_timeouts"))
    o.systemd_device_timeouts.push_back(
        {.unit = field<std::string>(d, "unit"), .t_s = field<double>(d, "guest_time_s")});
  o.booted = field<bool>(j, "booted");
  o.timed_out = field<bool>(j, "timed_out");
  o.devices_expected = field<int>(j, "devices_expected");
  o.devices_bound = field<int>(j, "devices_bound");
  o.probe_failures = field<int>(j, "probe_failures");
  o.udev_worker_killed = field<bool>(j, "udev_worker_killed");
  o.udev_slow_warnings = field<int>(j, "udev_slow_warnings");
  o.panic = field<bool>(j, "panic");
  o.panic_line = maybe<std::string>(j, "panic_line");
  o.oops_line = maybe<std::string>(j, "oops_line");
  o.oops_rip = maybe<std::string>(j, "oops_rip");
  o.console_records_dropped = field<size_t>(j, "console_records_dropped");
  o.time_to_available_s = maybe<double>(j, "time_to_available_s");
  o.init_module_returned_s = maybe<double>(j, "init_module_returned_s");
  o.guest_module_async_probe = maybe<bool>(j, "guest_module_async_probe");
  o.devices_at_modprobe_return = maybe<int>(j, "devices_at_modprobe_return");
  o.loader_pid = maybe<int>(j, "loader_pid");
  o.infra_error = maybe<std::string>(j, "infra_error");
  o.guest_kernel = field<std::string>(j, "guest_kernel");
  o.udev_version = maybe<int>(j, "udev_version");
  o.init = field<std::string>(j, "init", "agent");
  o.emergency = field<bool>(j, "emergency");
  o.reached_target = maybe<std::string>(j, "reached_target");
  o.systemd_version = maybe<int>(j, "systemd_version");
  return o;
}

core::Result<RunResult> result_from_json(const nlohmann::json& j) {
  if (field<std::string>(j, "format") != "probegate-result/1")
    return core::usage_error("not a probegate-result/1 document");
  auto spec = spec::spec_from_json(j.at("options"));
  if (!spec)
    return std::unexpected(spec.error());
  RunResult r;
  r.spec = std::move(*spec);
  r.spec.name = field<std::string>(j, "name");
  r.spec.expect_capacity = field<bool>(j, "expect_capacity");
  r.kernel_release = field<std::string>(j.at("kernel"), "release");
  if (const auto& kernel = j.at("kernel"); kernel.contains("git") && kernel.at("git").is_object())
    r.kernel_git = kernel.at("git").get<kernel::GitCheckout>();
  const auto& userspace = j.at("userspace");
  r.userspace_suite = field<std::string>(userspace, "suite");
  r.udev_extra_s = maybe<int>(userspace, "udev_extra_timeout_s");
  r.systemd_package = field<int>(userspace, "systemd");
  r.outcome = outcome_from_json(j.at("outcome"));
  const auto kind = verdict::verdict_from_name(field<std::string>(j, "verdict"));
  if (!kind)
    return core::usage_error("unknown verdict '{}'", field<std::string>(j, "verdict"));
  r.verdict.kind = *kind;
  r.verdict.reason = field<std::string>(j, "reason");
  for (const auto& c : j.at("checks"))
    r.verdict.checks.push_back({.name = field<std::string>(c, "name"),
                                .expected = field<std::string>(c, "expected"),
                                .actual = field<std::string>(c, "actual"),
                                .pass = field<bool>(c, "pass")});
  r.kernel_cmdline = field<std::string>(j, "kernel_cmdline");
  r.qemu_argv = field<std::vector<std::string>>(j, "qemu_argv");
  r.accel = field<std::string>(j, "accel");
  r.accel_reason = field<std::string>(j, "accel_reason");
  r.accel_probe_bound_s = maybe<double>(j, "accel_probe_bound_s");
  r.stage_s = field<std::map<std::string, double>>(j, "stage_s");
  r.host_before_qemu_s = field<double>(j, "host_before_qemu_s");
  if (j.contains("boot_path")) { // absent in results older than the saved states
    const auto& b = j.at("boot_path");
    r.boot_path = {.restored = field<bool>(b, "restored"),
                   .state_key = field<std::string>(b, "state_key"),
                   .state_bytes = field<std::uintmax_t>(b, "state_bytes"),
                   .state_made = field<bool>(b, "state_made"),
                   .paused_at_s = field<double>(b, "paused_at_s"),
                   .restore_s = field<double>(b, "restore_s"),
                   .pause_step_ns = maybe<long long>(b, "pause_step_ns"),
                   .fresh_reason = b.value("fresh_reason", "")};
  }
  r.libvirt_uri = j.value("libvirt_uri", ""); // absent before the libvirt backend
  r.host = j.value("host", "");               // absent before pools of hosts
  r.uploaded_bytes = j.value("uploaded_bytes", std::uintmax_t{0});
  r.wall_s = field<double>(j, "wall_s");
  r.error = field<std::string>(j, "error");
  return r;
}

} // namespace

core::Result<RunResult> read_result(const std::filesystem::path& file) {
  auto text = core::read_file(file);
  if (!text)
    return std::unexpected(text.error());
  try {
    auto r = result_from_json(nlohmann::json::parse(*text));
    if (!r)
      return std::unexpected(core::with_context(r.error(), file.string()));
    r->dir = file.parent_path();
    return r;
  } catch (const nlohmann::json::exception& e) {
    return core::usage_error("{}: not a readable probegate result: {}", file.string(), e.what());
  }
}

namespace {

// Reasons can quote the guest's console: no escape sequence reaches a terminal.
using core::printable;

} // namespace

std::string render_text(const RunResult& r) {
  // An unnamed run is known by its results directory (`boot` without --name)
  // or, judged offline, by nothing but being a run.
  const std::string subject = !r.spec.name.empty() ? r.spec.name
                              : !r.dir.empty()     ? r.dir.filename().string()
                                                   : std::string("run");
  std::string out =
      fmt::format("{}: {} on {} ({} devices, probe {} ms{}, async {}, udev timeout {})\n",
                  printable(subject), verdict::verdict_name(r.verdict.kind),
                  printable(r.kernel_release.empty() ? r.spec.kernel : r.kernel_release),
                  r.spec.devices, r.spec.probe_delay_ms, r.spec.probe_kthread ? " + kthread" : "",
                  spec::async_knob_name(r.spec.async),
                  r.spec.udev_timeout_s ? std::to_string(*r.spec.udev_timeout_s) + " s"
                                        : std::string("default"));
  for (const auto& c : r.verdict.checks)
    out += fmt::format("  {} {:<20} expected {:<4} actual {}\n", c.pass ? "ok  " : "FAIL", c.name,
                       c.expected, c.actual);
  const auto& o = r.outcome;
  if (r.stage_s.contains("boot")) // nothing to say about a run that never booted
    out += fmt::format(
        "  bound {}/{}, probe failures {}, loader killed {}, udev kills {}, slow "
        "warnings {}{}\n",
        o.devices_bound, o.devices_expected, o.probe_failures, o.udev_worker_killed ? "yes" : "no",
        o.udev_kills.size(), o.udev_slow_warnings,
        o.time_to_available_s ? fmt::format(", available at {:.3f} s", *o.time_to_available_s)
                              : std::string());
  if (!r.verdict.reason.empty())
    out += fmt::format("  reason: {}\n", printable(r.verdict.reason));
  if (!r.error.empty())
    out += fmt::format("  error: {}\n", printable(r.error));
  if (!r.dir.empty())
    out += fmt::format("  results: {}\n", r.dir.string());
  return out;
}

} // namespace probegate::report
