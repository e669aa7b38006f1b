// SPDX-License-Identifier: GPL-2.0-only
// The `probegate` command: argument parsing and exit codes only; the work is
// in drivers/.
#include "console/boot_log.h"
#include "core/files.h"
#include "core/interrupt.h"
#include "drivers/boot.h"
#include "kernel/debian_index.h"
#include "kernel/kernel_store.h"
#include "report/run_result.h"
#include "spec/run_spec.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fmt/core.h>
#include <fmt/ranges.h>
#include <iostream>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace {

using namespace probegate;

// Run options as typed on the command line, before they become a RunSpec.
struct RunOptions {
  std::string kernel = "debian:6.1";
  std::string name;
  int devices = 2;
  int probe_delay_ms = 0;
  bool probe_kthread = true;
  std::string probe_type = "default";
  std::string async = "none";
  int async_value = 1;
  std::optional<int> udev_timeout;
  std::optional<int> expect_bound;
  std::string expect_udev_kill = "any";
  std::string expect_boot = "yes";
  std::string accel = "auto";
  std::string clock = "virtual";
  std::optional<int> deadline;
  bool keep_initramfs = false;
};

void add_run_options(CLI::App* app, RunOptions& o) {
  app->add_option("--name", o.name, "Name of the run (its results directory starts with it)");
  app->add_option("--devices", o.devices, "Number of edu PCI devices the VM gets")
      ->capture_default_str();
  app->add_option("--probe-delay-ms", o.probe_delay_ms, "How long each probe sleeps")
      ->capture_default_str();
  app->add_flag("--probe-kthread,!--no-probe-kthread", o.probe_kthread,
                "After the delay, start a kthread in probe (fails with -EINTR once killed)");
  app->add_option("--probe-type", o.probe_type, "default|prefer-async|force-sync")
      ->capture_default_str();
  app->add_option("--async", o.async,
                  "none|module-param|modprobe-conf|driver-cmdline|module-default")
      ->capture_default_str();
  app->add_option("--async-value", o.async_value, "Value given to async_probe (0 or 1)")
      ->capture_default_str();
  app->add_option("--udev-timeout", o.udev_timeout,
                  "udevd event timeout in seconds (default: udevd's own, 180)");
  app->add_option("--expect-bound", o.expect_bound, "Devices that must bind");
  app->add_option("--expect-udev-kill", o.expect_udev_kill,
                  "Whether the module-loading udev worker must be killed: yes|no|any")
      ->capture_default_str();
  app->add_option("--expect-boot", o.expect_boot, "Whether the guest must boot: yes|no|any")
      ->capture_default_str();
  app->add_option("--accel", o.accel, "auto|kvm|tcg")->capture_default_str();
  app->add_option("--clock", o.clock, "virtual (TCG icount: waiting is free, timing exact) or real")
      ->capture_default_str();
  app->add_option("--deadline", o.deadline, "Guest seconds before the run is cut short");
  app->add_flag("--keep-initramfs", o.keep_initramfs,
                "Keep the run's initramfs.img in its results directory");
}

core::Result<spec::RunSpec> to_spec(const RunOptions& o) {
  spec::RunSpec s;
  s.kernel = o.kernel;
  s.name = o.name;
  s.devices = o.devices;
  s.probe_delay_ms = o.probe_delay_ms;
  s.probe_kthread = o.probe_kthread;
  auto type = spec::parse_probe_type(o.probe_type);
  if (!type)
    return std::unexpected(type.error());
  s.probe_type = *type;
  auto knob = spec::parse_async_knob(o.async);
  if (!knob)
    return std::unexpected(knob.error());
  s.async = *knob;
  s.async_value = o.async_value;
  s.udev_timeout_s = o.udev_timeout;
  s.expect.bound = o.expect_bound;
  auto kill = spec::parse_tri(o.expect_udev_kill, "--expect-udev-kill");
  if (!kill)
    return std::unexpected(kill.error());
  s.expect.udev_kill = *kill;
  auto boot = spec::parse_tri(o.expect_boot, "--expect-boot");
  if (!boot)
    return std::unexpected(boot.error());
  s.expect.boot =
      *boot == verdict::Tri::any ? std::nullopt : std::optional<bool>(*boot == verdict::Tri::yes);
  if (o.accel != "auto" && o.accel != "kvm" && o.accel != "tcg")
    return core::usage_error("--accel must be auto, kvm or tcg, not '{}'", o.accel);
  s.accel = o.accel;
  if (o.clock != "virtual" && o.clock != "real")
    return core::usage_error("--clock must be virtual or real, not '{}'", o.clock);
  s.clock = o.clock == "virtual" ? vm::Clock::virtual_time : vm::Clock::real_time;
  s.deadline_s = o.deadline;
  s.keep_initramfs = o.keep_initramfs;
  if (auto valid = spec::validate(s); !valid)
    return std::unexpected(valid.error());
  return s;
}

int report_error(const core::Error& error) {
  fmt::print(stderr, "probegate: {} error: {}\n", core::kind_name(error.kind), error.message);
  return core::exit_code(error.kind);
}

bool g_verbose = false;

void progress(std::string_view line) {
  fmt::print(stderr, "probegate: {}\n", line);
}

int cmd_boot(const RunOptions& options, const std::string& results) {
  auto spec = to_spec(options);
  if (!spec)
    return report_error(spec.error());
  auto runner = proc::make_process_runner(g_verbose);
  drivers::Environment env{*runner, core::cache_root(), core::data_root(), results, progress};
  auto result = drivers::boot(*spec, env);
  if (!result)
    return report_error(result.error());
  fmt::print("{}", report::render_text(*result));
  if (result->verdict.kind == verdict::VerdictKind::error)
    return 3;
  return verdict::exit_code(result->verdict.kind);
}

int cmd_parse(const RunOptions& options, bool devices_given, const std::string& log_path,
              bool json) {
  auto spec = to_spec(options);
  if (!spec)
    return report_error(spec.error());
  auto text = core::read_file(log_path);
  if (!text)
    return report_error(text.error());
  if (!devices_given) { // the agent said how many edu devices it saw
    const auto log = console::parse_console(*text);
    if (const auto* pci = log.fact("pci"); pci && pci->fields.contains("edu"))
      spec->devices = std::stoi(pci->fields.at("edu"));
  }
  const bool timed_out = false;
  auto result = drivers::judge_console(*spec, *text, timed_out);
  if (json)
    fmt::print("{}\n", report::to_json(result).dump(2));
  else
    fmt::print("{}", report::render_text(result));
  return verdict::exit_code(result.verdict.kind);
}

int cmd_kernels_fetch(const std::vector<std::string>& refs) {
  auto runner = proc::make_process_runner(g_verbose);
  kernel::KernelStore store(*runner, core::cache_root(), progress);
  for (const auto& text : refs) {
    auto ref = kernel::parse_kernel_ref(text);
    if (!ref)
      return report_error(ref.error());
    auto artifact = store.fetch(*ref);
    if (!artifact)
      return report_error(artifact.error());
    fmt::print("{} {} {}\n", text, artifact->release, artifact->dir.string());
  }
  return 0;
}

int cmd_kernels_list(bool offline) {
  auto runner = proc::make_process_runner(g_verbose);
  kernel::KernelStore store(*runner, core::cache_root(), progress);
  fmt::print("cached kernels ({}):\n", (core::cache_root() / "kernels").string());
  for (const auto& k : store.cached())
    fmt::print("  {:<24} line {:<6} {}\n", k.release, k.line, k.dir.string());
  if (offline)
    return 0;
  auto available = store.available();
  if (!available)
    return report_error(available.error());
  fmt::print("fetchable Debian lines (debian:<line> = newest ABI):\n");
  for (const auto& line : kernel::lines(*available))
    fmt::print("  debian:{:<6} -> {}\n", line, *kernel::newest_in_line(*available, line));
  return 0;
}

int run_cli(int argc, char** argv) {
  CLI::App app{"probegate: boot real kernels in QEMU and catch probes killed by udev's timeout"};
  app.set_version_flag("--version", PROBEGATE_VERSION);
  app.add_flag("-v,--verbose", g_verbose, "Print every command probegate runs, with its pid");
  app.require_subcommand(1);

  RunOptions boot_options;
  std::string results = "results";
  auto* boot = app.add_subcommand("boot", "Boot one kernel with one configuration and judge it");
  boot->add_option("--kernel", boot_options.kernel,
                   "debian:<line>|debian:<abi>|file:<image>[,kbuild=<dir>]|tree:<dir>")
      ->capture_default_str();
  add_run_options(boot, boot_options);
  boot->add_option("--results", results, "Results root")->capture_default_str();

  RunOptions parse_options;
  std::string log_path;
  bool json = false;
  auto* parse = app.add_subcommand("parse", "Judge a saved console log offline");
  parse->add_option("log", log_path, "console.log of a run")->required();
  add_run_options(parse, parse_options);
  parse->add_flag("--json", json, "Print the result as JSON");

  auto* kernels = app.add_subcommand("kernels", "Fetch and list kernels");
  kernels->require_subcommand(1);
  std::vector<std::string> fetch_refs;
  auto* fetch = kernels->add_subcommand("fetch", "Download and unpack kernels into the cache");
  fetch->add_option("refs", fetch_refs, "Kernel refs, e.g. debian:6.1")->required();
  bool offline = false;
  auto* list = kernels->add_subcommand("list", "List cached and fetchable kernels");
  list->add_flag("--offline", offline, "Only what is in the cache");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (*boot)
    return cmd_boot(boot_options, results);
  if (*parse)
    return cmd_parse(parse_options, parse->count("--devices") > 0, log_path, json);
  if (*fetch)
    return cmd_kernels_fetch(fetch_refs);
  if (*list)
    return cmd_kernels_list(offline);
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  // Ctrl-C and SIGTERM are handled where children can be cleaned up first.
  probegate::core::block_interrupts();
  const int code = run_cli(argc, argv);
  if (code != 130 && probegate::core::interrupt_pending()) {
    fmt::print(stderr, "probegate: interrupted\n");
    return 130;
  }
  return code;
}
