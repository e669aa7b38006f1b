// SPDX-License-Identifier: GPL-2.0-only
// The `probegate` command: argument parsing and exit codes only; the work is
// in drivers/.
#include "console/boot_log.h"
#include "core/files.h"
#include "core/interrupt.h"
#include "core/text.h"
#include "drivers/bisect_run.h"
#include "drivers/boot.h"
#include "drivers/suite_run.h"
#include "kernel/debian_index.h"
#include "kernel/kernel_store.h"
#include "kernel/source_build.h"
#include "report/run_result.h"
#include "report/session.h"
#include "spec/run_spec.h"
#include "suite/suite.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fmt/core.h>
#include <fmt/ranges.h>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
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
  std::string load = "udev";
  std::optional<int> expect_at_modprobe_return;
  std::optional<std::string> expect_skip;
  std::string inject_fault = "none";
  std::string userspace = "debian:bookworm";
};

// CLI11 reads an empty argument as 0: `--devices ""` would boot no device.
const CLI::Validator k_not_empty(
    [](const std::string& value) {
      return value.empty() ? std::string("an empty value is no number") : std::string();
    },
    "", "not empty");

void add_run_options(CLI::App* app, RunOptions& o) {
  app->add_option("--name", o.name, "Name of the run (its results directory starts with it)");
  app->add_option("--devices", o.devices, "Number of edu PCI devices the VM gets")
      ->capture_default_str()
      ->check(k_not_empty);
  app->add_option("--probe-delay-ms", o.probe_delay_ms, "How long each probe sleeps")
      ->capture_default_str()
      ->check(k_not_empty);
  app->add_flag("--probe-kthread,!--no-probe-kthread", o.probe_kthread,
                "After the delay, start a kthread in probe (fails with -EINTR once killed)");
  app->add_option("--probe-type", o.probe_type, "default|prefer-async|force-sync")
      ->capture_default_str();
  app->add_option("--async", o.async,
                  "none|module-param|modprobe-conf|driver-cmdline|module-default")
      ->capture_default_str();
  app->add_option("--async-value", o.async_value, "Value given to async_probe (0 or 1)")
      ->capture_default_str()
      ->check(k_not_empty);
  app->add_option("--udev-timeout", o.udev_timeout,
                  "udevd event timeout in seconds (default: udevd's own, 180)")
      ->check(k_not_empty);
  app->add_option("--expect-bound", o.expect_bound, "Devices that must bind")->check(k_not_empty);
  app->add_option("--expect-udev-kill", o.expect_udev_kill,
                  "Whether the module-loading udev worker must be killed: yes|no|any")
      ->capture_default_str();
  app->add_option("--expect-boot", o.expect_boot, "Whether the guest must boot: yes|no|any")
      ->capture_default_str();
  app->add_option("--accel", o.accel, "auto|kvm|tcg")->capture_default_str();
  app->add_option("--clock", o.clock, "virtual (TCG icount: waiting is free, timing exact) or real")
      ->capture_default_str();
  app->add_option("--deadline", o.deadline, "Guest seconds before the run is cut short")
      ->check(k_not_empty);
  app->add_option("--load", o.load,
                  "udev (loads the module by modalias) or modprobe (the agent runs it)")
      ->capture_default_str();
  app->add_option("--expect-at-modprobe-return", o.expect_at_modprobe_return,
                  "Devices that must exist when modprobe returns (with --load modprobe)")
      ->check(k_not_empty);
  app->add_option("--expect-skip", o.expect_skip,
                  "yes: the kernel must lack the --async knob (the run skips); no: it must have "
                  "it. Default: a missing knob skips the run");
  app->add_option("--userspace", o.userspace,
                  "Guest user space: debian:bullseye|debian:bookworm|debian:trixie|debian:sid, "
                  "or kernel (the suite the kernel came from)")
      ->capture_default_str();
  app->add_flag("--keep-initramfs", o.keep_initramfs,
                "Keep the run's initramfs.img in its results directory");
  app->add_option("--inject-fault", o.inject_fault,
                  "Break the run on purpose, to test probegate itself: "
                  "none|corrupt-initramfs|panic|oops|hang")
      ->capture_default_str()
      ->group("Testing probegate");
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
  if (auto fault = spec::apply_option(s, "inject_fault", o.inject_fault); !fault)
    return std::unexpected(fault.error());
  if (auto load = spec::apply_option(s, "load", o.load); !load)
    return std::unexpected(load.error());
  if (auto userspace = spec::apply_option(s, "userspace", o.userspace); !userspace)
    return std::unexpected(userspace.error());
  s.expect.at_modprobe_return = o.expect_at_modprobe_return;
  if (o.expect_skip)
    if (auto skip = spec::apply_option(s, "expect_skip", *o.expect_skip); !skip)
      return core::usage_error("--expect-skip must be yes or no, not '{}'", *o.expect_skip);
  if (auto valid = spec::validate(s); !valid)
    return std::unexpected(valid.error());
  return s;
}

int report_error(const core::Error& error) {
  // Messages can quote a suite's bytes or a guest's text: printable only.
  fmt::print(stderr, "probegate: {} error: {}\n", core::kind_name(error.kind),
             core::printable(error.message));
  return core::exit_code(error.kind);
}

bool g_verbose = false;

void progress(std::string_view line) {
  fmt::print(stderr, "probegate: {}\n", line);
}

int cmd_boot(const RunOptions& options, const std::string& results, bool console) {
  auto spec = to_spec(options);
  if (!spec)
    return report_error(spec.error());
  auto runner = proc::make_process_runner(g_verbose);
  drivers::Environment env{*runner, core::cache_root(), core::data_root(), results, progress};
  if (console) // guest text is untrusted: printable only
    env.console = [](std::string_view line) { fmt::print(stderr, "{}\n", core::printable(line)); };
  auto result = drivers::boot(*spec, env);
  if (!result)
    return report_error(result.error());
  fmt::print("{}", report::render_text(*result));
  if (result->verdict.kind == verdict::VerdictKind::error)
    return 3;
  return verdict::exit_code(result->verdict.kind);
}

// Progress of a suite: one status line on a terminal, one plain line per
// finished case otherwise (CI logs).
class ConsoleObserver final : public drivers::SuiteObserver {
public:
  ConsoleObserver(int total, int jobs)
      : m_total(total), m_jobs(jobs), m_tty(::isatty(2) == 1),
        m_started(std::chrono::steady_clock::now()) {}

  void started(const suite::Case&, int running) override {
    std::lock_guard guard(m_print);
    m_running = running;
    status();
  }

  // A progress message from any worker: above the status line, which is
  // redrawn under it.
  void note(std::string_view message) {
    std::lock_guard guard(m_print);
    fmt::print(stderr, "{}probegate: {}\n", m_tty ? "\r\x1b[K" : "", message);
    status();
  }

  void finished(const report::CaseReport& c, int done, int total, int running) override {
    std::lock_guard guard(m_print);
    m_done = done;
    m_running = running;
    if (c.verdict != verdict::VerdictKind::pass && c.verdict != verdict::VerdictKind::skip)
      ++m_failed;
    if (m_tty) {
      if (c.verdict != verdict::VerdictKind::pass && c.verdict != verdict::VerdictKind::skip)
        fmt::print(stderr, "\r\x1b[K{} {}\n", verdict::verdict_name(c.verdict), c.id);
      status();
    } else {
      fmt::print("[{}/{}] {} {}{}\n", done, total, verdict::verdict_name(c.verdict), c.id,
                 c.reason.empty() ? "" : " (" + c.reason + ")");
      std::fflush(stdout);
    }
  }

  void end() {
    if (m_tty)
      fmt::print(stderr, "\r\x1b[K");
  }

private:
  void status() {
    if (!m_tty)
      return;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - m_started).count();
    std::string eta = "?";
    if (m_done > 0)
      eta = fmt::format("{:.0f}s", elapsed / m_done * (m_total - m_done) / std::max(1, m_jobs));
    fmt::print(stderr, "\r\x1b[K[{}/{}] {} running, {} failed, eta {}", m_done, m_total, m_running,
               m_failed, eta);
  }

  int m_total;
  int m_jobs;
  bool m_tty;
  std::chrono::steady_clock::time_point m_started;
  int m_done = 0;
  int m_running = 0;
  int m_failed = 0;
  std::mutex m_print;
};

std::string time_stamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::array<char, 32> stamp{};
  std::strftime(stamp.data(), stamp.size(), "%Y%m%d-%H%M%S", &tm);
  return stamp.data();
}

int default_jobs() {
  // One TCG guest keeps one core busy and needs ~0.6 GB.
  const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGE_SIZE);
  const long by_memory = pages > 0 && page > 0 ? pages / (1024L * 1024 * 1024 / page) : 1;
  return static_cast<int>(std::max(1L, std::min(cores, by_memory)));
}

struct RunCommand {
  std::string suite_file;
  std::optional<int> jobs;
  std::string filter;
  int repeat = 1;
  int retries = 0;
  bool fail_fast = false;
  std::string results = "results";
};

int cmd_run(const RunCommand& o) {
  auto loaded = suite::load_suite(o.suite_file);
  if (!loaded)
    return report_error(loaded.error());
  const auto cases = suite::filter_cases(loaded->cases, o.filter);
  if (cases.empty())
    return report_error(core::Error{core::ErrorKind::usage,
                                    fmt::format("--filter '{}' matches none of the {} cases of {}",
                                                o.filter, loaded->cases.size(), o.suite_file)});
  if (o.repeat < 1 || o.repeat > 1000)
    return report_error(core::Error{core::ErrorKind::usage, "--repeat must be 1 to 1000"});
  if (o.jobs && (*o.jobs < 1 || *o.jobs > 64))
    return report_error(core::Error{core::ErrorKind::usage, "--jobs must be 1 to 64"});
  // Every kernel is parsed, then resolved and fetched, before anything is
  // created or booted; an error names where the suite gives that kernel.
  // ref text -> (the parsed ref, where the suite first gives it)
  std::map<std::string, std::pair<kernel::KernelRef, std::string>> kernels;
  for (const auto& c : cases) {
    if (kernels.contains(c.spec.kernel))
      continue;
    auto ref = kernel::parse_kernel_ref(c.spec.kernel);
    if (!ref)
      return report_error(core::with_context(ref.error(), c.kernel_where));
    kernels.emplace(c.spec.kernel, std::pair{std::move(*ref), c.kernel_where});
  }
  auto runner = proc::make_process_runner(g_verbose);
  kernel::KernelStore store(*runner, core::cache_root(), progress);
  for (const auto& [text, ref_where] : kernels)
    if (auto fetched = store.fetch(ref_where.first); !fetched)
      return report_error(core::with_context(fetched.error(), ref_where.second));

  const auto stamp = time_stamp();
  drivers::SuiteOptions options;
  options.jobs = o.jobs.value_or(default_jobs());
  options.repeat = o.repeat;
  options.fail_fast = o.fail_fast;
  options.retries = o.retries;
  options.session_dir =
      std::filesystem::path(o.results) / fmt::format("{}-{}-{}", loaded->name, stamp, ::getpid());
  std::error_code ec;
  std::filesystem::create_directories(options.session_dir, ec);
  if (ec)
    return report_error(core::Error{
        core::ErrorKind::infra,
        fmt::format("cannot create {}: {}", options.session_dir.string(), ec.message())});

  ConsoleObserver observer(static_cast<int>(cases.size()), options.jobs);
  drivers::Environment env{*runner, core::cache_root(), core::data_root(), o.results,
                           [&](std::string_view m) { observer.note(m); }};
  fmt::print(stderr, "probegate: {} cases of {} on {} jobs{} -> {}\n", cases.size(), loaded->name,
             options.jobs, o.repeat > 1 ? fmt::format(", {} repeats each", o.repeat) : "",
             options.session_dir.string());
  auto session = drivers::run_suite(
      loaded->name, cases, options,
      [&](const spec::RunSpec& spec, const std::filesystem::path& dir) {
        return drivers::boot(spec, env, dir);
      },
      observer);
  observer.end();
  auto written = report::write_session(session);
  fmt::print("{}", report::render_table(session));
  if (const auto table = report::knob_table(session); !table.kernels.empty())
    fmt::print("\nknob x kernel ({}):\n{}", (session.dir / "knob-table.md").string(),
               report::knob_table_markdown(table));
  fmt::print("{}: {} ({} cases, {:.1f} s){}\n", loaded->name,
             verdict::verdict_name(session.worst()), session.cases.size(), session.wall_s,
             session.complete ? "" : " INCOMPLETE");
  fmt::print("results: {}\n", session.dir.string());
  if (!written)
    return report_error(written.error());
  if (session.interrupted)
    return 130;
  return verdict::exit_code(session.worst());
}

int cmd_parse(const RunOptions& options, bool devices_given, const std::string& log_path,
              bool json) {
  auto spec = to_spec(options);
  if (!spec)
    return report_error(spec.error());
  auto parsed = console::parse_console_file(log_path);
  if (!parsed)
    return report_error(parsed.error());
  const auto& log = *parsed;
  if (!devices_given) { // the agent said how many edu devices it saw
    if (const auto* pci = log.fact("pci"); pci && pci->fields.contains("edu")) {
      // Guest text is untrusted: parse without throwing, keep sane counts only.
      const int edu = std::atoi(pci->fields.at("edu").c_str());
      if (edu >= 0 && edu <= spec::k_max_devices)
        spec->devices = edu;
    }
  }
  const bool timed_out = false;
  auto result = drivers::judge_console(*spec, log, timed_out);
  if (json)
    fmt::print("{}\n", report::to_json(result).dump(
                           2, ' ', /*ensure_ascii: no C1 control reaches a terminal*/ true,
                           nlohmann::json::error_handler_t::replace));
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

// Builds a guest kernel from source and prints the ref that boots it.
int cmd_kernels_build(const kernel::SourceBuildRequest& request) {
  auto runner = proc::make_process_runner(g_verbose);
  kernel::SourceBuilder builder(*runner, core::cache_root(), core::data_root(), progress);
  auto built = builder.build(request);
  if (!built)
    return report_error(built.error());
  // Register it as a tree: kernel now, so the first boot finds it ready.
  const std::string ref = "tree:" + built->string();
  kernel::KernelStore store(*runner, core::cache_root(), progress);
  auto artifact = store.fetch(*kernel::parse_kernel_ref(ref));
  if (!artifact)
    return report_error(artifact.error());
  fmt::print("{}\n", ref);
  return 0;
}

int cmd_kernels_list(bool offline) {
  auto runner = proc::make_process_runner(g_verbose);
  kernel::KernelStore store(*runner, core::cache_root(), progress);
  fmt::print("cached kernels ({}):\n", (core::cache_root() / "kernels").string());
  for (const auto& k : store.cached()) {
    std::vector<std::string> knobs;
    for (const auto& [name, present] : k.knobs)
      knobs.push_back(fmt::format("{}{}", present ? "+" : "-", name));
    fmt::print("  {:<26} line {:<5} {:<9} knobs {}  {}\n", k.release, k.line,
               k.suite.empty() ? "local" : k.suite, fmt::join(knobs, " "), k.dir.string());
  }
  std::vector<std::string> unreachable;
  auto offers = store.available(false, offline, &unreachable);
  if (!offers) {
    if (offline) {
      fmt::print("fetchable Debian kernels: no saved index (run `probegate kernels list` once "
                 "with network)\n");
      return 0;
    }
    return report_error(offers.error());
  }
  std::vector<std::string> releases;
  std::map<std::string, std::string> suite_of;
  std::map<std::string, std::string> newest_of_suite;
  for (const auto& o : *offers) {
    releases.push_back(o.release);
    suite_of[o.release] = o.suite;
    auto& newest = newest_of_suite[o.suite];
    if (newest.empty() || kernel::release_less(newest, o.release))
      newest = o.release;
  }
  fmt::print("fetchable Debian kernels{} (debian:<line> = newest ABI of the line in any suite):\n",
             offline ? ", from the saved indexes" : "");
  for (const auto& line : kernel::lines(releases)) {
    const auto newest = *kernel::newest_in_line(releases, line);
    fmt::print("  debian:{:<9} -> {:<26} {}\n", line, newest, suite_of[newest]);
  }
  for (const auto& [suite, newest] : newest_of_suite)
    fmt::print("  debian:{:<9} -> {:<26} {}\n", suite, newest, suite);
  if (!unreachable.empty())
    fmt::print("not reachable: {}\n", fmt::join(unreachable, ", "));
  return 0;
}

struct BisectCommand {
  std::string kernels;  // comma-separated refs
  std::string line;     // debian:6.1
  std::string param;    // udev-timeout=1..60
  std::string case_ref; // SUITE.yaml:ID
  int repeat = 1;
  std::string bad_if = "any";
  std::string results = "results";
  std::string resume;
  std::vector<std::string> run_options_given; // run options set on the command line
};

// The base run of a bisection: a suite's case, or the run options.
core::Result<spec::RunSpec> bisect_base(const BisectCommand& b, const RunOptions& run) {
  if (b.case_ref.empty())
    return to_spec(run);
  if (!b.run_options_given.empty())
    return core::usage_error("--case takes the run from its suite; drop {}",
                             fmt::join(b.run_options_given, ", "));
  const auto colon = b.case_ref.rfind(':');
  if (colon == std::string::npos)
    return core::usage_error("--case '{}' must be SUITE.yaml:ID, e.g. suites/knobs.yaml:knobs/sync",
                             b.case_ref);
  auto loaded = suite::load_suite(b.case_ref.substr(0, colon));
  if (!loaded)
    return std::unexpected(loaded.error());
  const std::string id = b.case_ref.substr(colon + 1);
  std::vector<std::string> ids;
  for (const auto& c : loaded->cases) {
    if (c.id == id)
      return c.spec;
    ids.push_back(c.id);
  }
  return core::usage_error("--case: {} has no case '{}'; its cases: {}",
                           b.case_ref.substr(0, colon), id, fmt::join(ids, ", "));
}

int cmd_bisect(const BisectCommand& b, const RunOptions& run, bool expect_bound_given) {
  const int modes = !b.kernels.empty() + !b.line.empty() + !b.param.empty();
  if (modes != 1)
    return report_error(core::Error{core::ErrorKind::usage,
                                    "bisect needs exactly one of --kernels A,B,..., --line "
                                    "debian:<line> or --param NAME=LO..HI"});
  if (b.repeat < 1 || (b.bad_if != "any" && b.bad_if != "majority"))
    return report_error(core::Error{core::ErrorKind::usage,
                                    "--repeat must be at least 1 and --bad-if any or majority"});
  auto base = bisect_base(b, run);
  if (!base)
    return report_error(base.error());
  auto runner = proc::make_process_runner(g_verbose);

  // The ordered items.
  std::vector<std::string> labels;
  std::string param_key;
  std::vector<int> param_values;
  if (!b.kernels.empty()) {
    std::string rest = b.kernels;
    for (size_t at; (at = rest.find(',')) != std::string::npos; rest.erase(0, at + 1))
      labels.push_back(rest.substr(0, at));
    labels.push_back(rest);
  } else if (!b.line.empty()) {
    auto ref = kernel::parse_kernel_ref(b.line);
    if (!ref)
      return report_error(ref.error());
    if (ref->kind != kernel::KernelRef::Kind::debian_line)
      return report_error(core::Error{core::ErrorKind::usage,
                                      fmt::format("--line takes debian:<line>, not '{}'", b.line)});
    kernel::KernelStore store(*runner, core::cache_root(), progress);
    auto offers = store.available();
    if (!offers)
      return report_error(offers.error());
    std::vector<std::string> releases;
    for (const auto& o : *offers)
      if (kernel::line_of(o.release) == ref->value)
        releases.push_back(o.release);
    std::ranges::sort(releases, kernel::release_less);
    for (const auto& r : releases)
      labels.push_back("debian:" + r);
  } else {
    // At most 9 digits: the numbers must fit (stol would throw).
    static const std::regex form(R"(([a-z_-]+)=(\d{1,9})\.\.(\d{1,9}))");
    std::smatch m;
    if (!std::regex_match(b.param, m, form))
      return report_error(core::Error{
          core::ErrorKind::usage,
          fmt::format("--param '{}' must be NAME=LO..HI, e.g. udev-timeout=1..60", b.param)});
    param_key = m[1].str();
    std::ranges::replace(param_key, '-', '_');
    if (param_key != "udev_timeout" && param_key != "devices" && param_key != "probe_delay_ms")
      return report_error(core::Error{
          core::ErrorKind::usage,
          fmt::format("--param {}: bisect searches udev-timeout, devices or probe-delay-ms",
                      m[1].str())});
    const long lo = std::stol(m[2].str());
    const long hi = std::stol(m[3].str());
    if (lo >= hi || hi - lo > 100000)
      return report_error(core::Error{
          core::ErrorKind::usage,
          fmt::format("--param {}: the range {}..{} must go up and hold at most 100000 values",
                      param_key, lo, hi)});
    for (long v = lo; v <= hi; ++v) {
      param_values.push_back(static_cast<int>(v));
      labels.push_back(fmt::format("{}={}", param_key, v));
    }
  }
  if (labels.size() < 2)
    return report_error(
        core::Error{core::ErrorKind::usage, fmt::format("bisect needs at least two items, got {}",
                                                        fmt::join(labels, ", "))});

  drivers::BisectOptions options;
  options.labels = labels;
  options.repeat = b.repeat;
  options.differs_if_any = b.bad_if == "any";
  // Every item's run, checked before anything boots.
  std::vector<spec::RunSpec> specs;
  for (size_t i = 0; i < labels.size(); ++i) {
    spec::RunSpec s = *base;
    if (param_key.empty()) {
      if (auto ref = kernel::parse_kernel_ref(labels[i]); !ref)
        return report_error(ref.error());
      s.kernel = labels[i];
    } else {
      (void)spec::apply_option(s, param_key, std::to_string(param_values[i]));
      // "How many devices fit": by default a step passes when every device binds.
      if (param_key == "devices" && !expect_bound_given && b.case_ref.empty())
        s.expect.bound = param_values[i];
      if (auto resolved = spec::resolve_capacity(s); !resolved)
        return report_error(core::with_context(resolved.error(), labels[i]));
    }
    s.name = labels[i];
    if (auto valid = spec::validate(s); !valid)
      return report_error(core::with_context(valid.error(), labels[i]));
    specs.push_back(std::move(s));
  }
  options.spec_for = [&](size_t i) { return specs[i]; };
  options.dir = b.resume.empty() ? std::filesystem::path(b.results) /
                                       fmt::format("bisect-{}-{}", time_stamp(), ::getpid())
                                 : std::filesystem::path(b.resume);
  if (!b.resume.empty()) {
    auto known = drivers::load_bisect_log(options.dir / "bisect.json", labels);
    if (!known)
      return report_error(known.error());
    options.known = std::move(*known);
  }
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec)
    return report_error(
        core::Error{core::ErrorKind::infra,
                    fmt::format("cannot create {}: {}", options.dir.string(), ec.message())});
  fmt::print(stderr, "probegate: bisecting {} items, {} .. {}{} -> {}\n", labels.size(),
             labels.front(), labels.back(),
             options.known.empty() ? "" : fmt::format(" ({} steps resumed)", options.known.size()),
             options.dir.string());
  int step_number = static_cast<int>(options.known.size());
  options.on_step = [&](const bisect::Step& s) {
    fmt::print("step {}: {:<28} {:<5} {:<10} {}\n", ++step_number, s.label, s.verdict,
               bisect::class_name(s.cls),
               s.disagreed
                   ? fmt::format("repeats disagree ({}/{} differ); {}", s.differing, s.runs, s.why)
                   : s.why);
    std::fflush(stdout);
  };
  drivers::Environment env{*runner, core::cache_root(), core::data_root(), b.results, progress};
  auto answer =
      drivers::run_bisect(options, [&](const spec::RunSpec& s, const std::filesystem::path& dir) {
        return drivers::boot(s, env, dir);
      });
  if (!answer) {
    fmt::print(stderr, "probegate: resume with --resume {}\n", options.dir.string());
    return report_error(answer.error());
  }
  fmt::print("{}", drivers::render_answer(labels, *answer));
  if (param_key == "devices" && answer->kind == bisect::Answer::Kind::found) {
    // The capacity question, measured against init + N x probe <= timeout.
    spec::RunSpec wide = *base;
    wide.devices = param_values.back();
    if (const auto c = spec::predicted_capacity(wide); wide.async == spec::AsyncKnob::none)
      fmt::print("  most devices that bind: {} measured, {}{} predicted (udev timeout {} s, "
                 "{} ms probes)\n",
                 param_values[answer->last_same], c.at_least,
                 c.at_most != c.at_least ? fmt::format("..{}", c.at_most) : std::string(),
                 wide.udev_timeout_s.value_or(spec::k_udev_default_timeout_s), wide.probe_delay_ms);
  }
  fmt::print("results: {}\n", options.dir.string());
  return drivers::exit_code(*answer);
}

struct BisectRunCommand {
  std::vector<std::filesystem::path> fragments;
  std::string build_dir;
  int repeat = 1;
  std::string bad_if = "any";
  std::string results = "results";
};

// `git bisect run probegate bisect-run ...` from a kernel source tree: build
// the checked-out commit incrementally out of tree, boot the case, and answer
// in git's terms (drivers::git_bisect_exit_code). Usage errors are 128, which
// aborts the bisection instead of blaming the commit.
int cmd_bisect_run(const BisectRunCommand& b, const RunOptions& run) {
  auto abort_with = [](const core::Error& error) {
    fmt::print(stderr, "probegate: {} error: {} (exit {}: git bisect stops)\n",
               core::kind_name(error.kind), error.message, drivers::k_git_abort);
    return drivers::k_git_abort;
  };
  if (b.repeat < 1 || (b.bad_if != "any" && b.bad_if != "majority"))
    return abort_with({core::ErrorKind::usage, "--repeat must be at least 1 and --bad-if any or "
                                               "majority"});
  auto spec = to_spec(run);
  if (!spec)
    return abort_with(spec.error());
  std::error_code ec;
  const auto source = std::filesystem::current_path(ec);
  if (ec || !std::filesystem::exists(source / "Makefile") ||
      !std::filesystem::exists(source / "Kconfig"))
    return abort_with({core::ErrorKind::usage,
                       fmt::format("bisect-run runs inside a kernel source tree (`git bisect run "
                                   "probegate bisect-run ...`); {} has no Makefile and Kconfig",
                                   source.string())});
  auto runner = proc::make_process_runner(g_verbose);
  const std::filesystem::path build_dir =
      b.build_dir.empty()
          ? core::cache_root() / "bisect-run" / core::sha256_hex(source.string()).substr(0, 16)
          : std::filesystem::absolute(b.build_dir);
  kernel::SourceBuilder builder(*runner, core::cache_root(), core::data_root(), progress);
  auto built = builder.build_incremental(source, build_dir, b.fragments);
  if (!built) {
    if (built.error().kind == core::ErrorKind::usage)
      return abort_with(built.error());
    if (built.error().kind == core::ErrorKind::interrupted)
      return 130;
    fmt::print(stderr, "probegate: this commit does not build, skipped (exit {}): {}\n",
               drivers::k_git_skip, built.error().message);
    return drivers::k_git_skip;
  }
  spec->kernel = "tree:" + built->string();
  drivers::Environment env{*runner, core::cache_root(), core::data_root(), b.results, progress};
  std::vector<verdict::VerdictKind> verdicts;
  for (int k = 0; k < b.repeat; ++k) {
    core::Result<report::RunResult> result;
    for (int attempt = 0; attempt < 2; ++attempt) { // an infrastructure error is retried once
      result = drivers::boot(*spec, env);
      if (!result && result.error().kind == core::ErrorKind::interrupted)
        return 130;
      if (!result && result.error().kind == core::ErrorKind::usage)
        return abort_with(result.error());
      if (result && result->verdict.kind != verdict::VerdictKind::error)
        break;
    }
    if (!result) {
      fmt::print(stderr, "probegate: {}\n", result.error().message);
      verdicts.push_back(verdict::VerdictKind::error);
      break;
    }
    fmt::print("{}", report::render_text(*result));
    verdicts.push_back(result->verdict.kind);
  }
  const int code = drivers::git_bisect_exit_code(verdicts, b.bad_if == "any");
  fmt::print("probegate: bisect-run: {} (exit {})\n",
             code == drivers::k_git_good  ? "good"
             : code == drivers::k_git_bad ? "bad"
                                          : "cannot test, skip",
             code);
  return code;
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
  bool boot_console = false;
  boot->add_flag("--console", boot_console,
                 "Print the guest's console as it boots (control characters removed)");

  RunOptions parse_options;
  std::string log_path;
  bool json = false;
  auto* parse = app.add_subcommand("parse", "Judge a saved console log offline");
  parse->add_option("log", log_path, "console.log of a run")->required();
  add_run_options(parse, parse_options);
  parse->add_flag("--json", json, "Print the result as JSON");

  RunCommand run_options;
  auto* run = app.add_subcommand("run", "Run a YAML suite: a matrix of boots, in parallel");
  run->add_option("suite", run_options.suite_file, "Suite file, e.g. suites/smoke.yaml")
      ->required();
  run->add_option("-j,--jobs", run_options.jobs,
                  "Boots at once (default: what cores and memory allow)");
  run->add_option("--filter", run_options.filter, "Only cases whose id matches this glob");
  run->add_option("--repeat", run_options.repeat,
                  "Run each case N times; disagreeing repeats are FLAKY")
      ->capture_default_str();
  run->add_option("--retries", run_options.retries,
                  "Run a case again after an infrastructure error (QEMU killed, download "
                  "failed), up to N times")
      ->capture_default_str()
      ->check(CLI::Range(0, 5));
  run->add_flag("--fail-fast", run_options.fail_fast,
                "Stop starting cases after the first failure");
  run->add_option("--results", run_options.results, "Results root")->capture_default_str();

  RunOptions bisect_run;
  BisectCommand bisect_options;
  auto* bisect = app.add_subcommand(
      "bisect", "Find the first kernel (or parameter value) whose verdict differs from the first");
  bisect->add_option("--kernels", bisect_options.kernels, "Ordered kernel refs: A,B,C");
  bisect->add_option("--line", bisect_options.line, "Every Debian ABI of a line: debian:6.1");
  bisect->add_option("--param", bisect_options.param,
                     "A threshold: udev-timeout=1..60, devices=1..8 or probe-delay-ms=LO..HI");
  bisect->add_option("--case", bisect_options.case_ref,
                     "The run of a suite case, SUITE.yaml:ID (instead of run options)");
  bisect->add_option("--kernel", bisect_run.kernel, "Kernel for --param")->capture_default_str();
  const size_t before_run_options = bisect->get_options().size();
  add_run_options(bisect, bisect_run);
  std::vector<std::string> run_option_names;
  for (size_t i = before_run_options; i < bisect->get_options().size(); ++i)
    run_option_names.push_back(bisect->get_options()[i]->get_name());
  bisect->add_option("--repeat", bisect_options.repeat, "Boots per step")->capture_default_str();
  bisect
      ->add_option("--bad-if", bisect_options.bad_if,
                   "any: one differing repeat makes a step differ; majority: most must")
      ->capture_default_str();
  bisect->add_option("--results", bisect_options.results, "Results root")->capture_default_str();
  bisect->add_option("--resume", bisect_options.resume,
                     "Continue an interrupted bisection from its results directory");

  auto* kernels = app.add_subcommand("kernels", "Fetch, build and list kernels");
  kernels->require_subcommand(1);
  std::vector<std::string> fetch_refs;
  auto* fetch = kernels->add_subcommand("fetch", "Download and unpack kernels into the cache");
  fetch->add_option("refs", fetch_refs, "Kernel refs, e.g. debian:6.1")->required();
  bool offline = false;
  auto* list = kernels->add_subcommand("list", "List cached and fetchable kernels");
  list->add_flag("--offline", offline, "Only what is in the cache");
  kernel::SourceBuildRequest build_request;
  auto* build = kernels->add_subcommand(
      "build", "Build a small guest kernel from source (tinyconfig + kernel-configs/); prints "
               "the tree: ref that boots it");
  build
      ->add_option("--source", build_request.source,
                   "A clean kernel source dir, or linux-source-X.Y (Debian's package)")
      ->required();
  build->add_option("--fragment", build_request.fragments,
                    "Config fragment merged after kernel-configs/*.config (repeatable)");
  build->add_flag("--builtin-slowprobe", build_request.builtin_slowprobe,
                  "Build the slowprobe test driver into the kernel (=y)");

  RunOptions bisect_run_options;
  BisectRunCommand bisect_run_command;
  auto* bisect_run_cmd = app.add_subcommand(
      "bisect-run", "For `git bisect run` in a kernel source tree: build the commit, boot the "
                    "case; exit 0 good, 1 bad, 125 cannot test, 128 bad usage");
  add_run_options(bisect_run_cmd, bisect_run_options);
  bisect_run_cmd->add_option("--fragment", bisect_run_command.fragments,
                             "Config fragment merged after kernel-configs/*.config (repeatable)");
  bisect_run_cmd->add_option("--build-dir", bisect_run_command.build_dir,
                             "Out-of-tree build dir kept between steps (default: in the cache, "
                             "one per source tree)");
  bisect_run_cmd->add_option("--repeat", bisect_run_command.repeat, "Boots per commit")
      ->capture_default_str();
  bisect_run_cmd
      ->add_option("--bad-if", bisect_run_command.bad_if,
                   "any: one failing repeat makes the commit bad; majority: most must")
      ->capture_default_str();
  bisect_run_cmd->add_option("--results", bisect_run_command.results, "Results root")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    // Under `git bisect run`, 2 would blame the commit: bad usage aborts.
    const bool for_git = argc > 1 && std::string_view(argv[1]) == "bisect-run";
    return code == 0 ? 0 : for_git ? drivers::k_git_abort : 2;
  }
  // What a killed probegate left in the cache's scratch (an initramfs, a
  // half download) goes now.
  if (!*parse)
    if (const int swept = core::sweep_dead_temp_dirs(core::cache_root() / "tmp");
        swept > 0 && g_verbose)
      fmt::print(stderr, "probegate: removed {} scratch directories of processes that died\n",
                 swept);
  if (*bisect_run_cmd)
    return cmd_bisect_run(bisect_run_command, bisect_run_options);
  if (*boot)
    return cmd_boot(boot_options, results, boot_console);
  if (*bisect) {
    for (const auto& name : run_option_names)
      if (bisect->count(name) > 0)
        bisect_options.run_options_given.push_back(name);
    return cmd_bisect(bisect_options, bisect_run, bisect->count("--expect-bound") > 0);
  }
  if (*run)
    return cmd_run(run_options);
  if (*parse)
    return cmd_parse(parse_options, parse->count("--devices") > 0, log_path, json);
  if (*fetch)
    return cmd_kernels_fetch(fetch_refs);
  if (*list)
    return cmd_kernels_list(offline);
  if (*build)
    return cmd_kernels_build(build_request);
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
