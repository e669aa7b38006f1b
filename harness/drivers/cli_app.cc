// SPDX-License-Identifier: GPL-2.0-only
// The `probegate` command line, made with CLI11: every subcommand, its
// options (the run options from spec/options.h's table) and its dispatch to
// drivers/, and the exit codes of errors.
#include "drivers/cli_app.h"

#include "core/files.h"
#include "core/progress.h"
#include "core/text.h"
#include "drivers/bisect.h"
#include "drivers/cli_docs.h"
#include "drivers/commands.h"
#include "drivers/git_bisect_run.h"
#include "drivers/suite_run.h"
#include "spec/option_cli.h"
#include "spec/options.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fmt/core.h>
#include <functional>

namespace probegate::drivers {

namespace {

using spec::CliRunOptions;

int report_error(const core::Error& error) {
  // Messages can quote a suite's bytes or a guest's text: printable only.
  fmt::print(stderr, "{}probegate: {} error: {}\n", core::live_line_reset(),
             core::kind_name(error.kind), core::printable(error.message));
  return core::exit_code(error.kind);
}

bool g_verbose = false;

// A one-line message; on a terminal it replaces a live progress line.
void progress(std::string_view line) {
  fmt::print(stderr, "{}probegate: {}\n", core::live_line_reset(), line);
}

// Runs a command against the outside world: real processes, the cache and
// the data directory; an error becomes its exit code.
int run_with(const std::string& results,
             const std::function<core::Result<int>(Environment&)>& command) {
  auto runner = proc::make_process_runner(g_verbose);
  Environment env{*runner, core::cache_root(), core::data_root(), results, progress};
  auto code = command(env);
  return code ? *code : report_error(code.error());
}

// --ktap, --kcidb and --kcidb-origin, of `run` and `merge`.
void add_exports(CLI::App& command, Exports& exports) {
  command.add_flag("--ktap", exports.ktap,
                   "Print KTAP (version 1) on stdout, for kunit-style parsers and LAVA; the table "
                   "goes to stderr");
  auto* kcidb = command.add_option("--kcidb", exports.kcidb, "Write KCIDB v5.3 JSON to this file");
  command
      .add_option("--kcidb-origin", exports.kcidb_origin,
                  "The KCIDB origin of the ids ([a-z0-9_]+)")
      ->capture_default_str()
      ->needs(kcidb);
}

} // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"probegate: boot real kernels in QEMU and catch probes killed by udev's timeout"};
  // The data directory too: which guest sources and images this binary uses.
  app.set_version_flag("--version", fmt::format("probegate {} (data: {})", PROBEGATE_VERSION,
                                                core::data_root().string()));
  app.add_flag("-v,--verbose", g_verbose, "Print every command probegate runs, with its pid");
  app.require_subcommand(1);

  std::string results = "results"; // --results of whichever subcommand runs
  CliRunOptions boot_options;
  auto* boot = app.add_subcommand("boot", "Boot one kernel with one configuration and judge it");
  spec::add_run_options(*boot, boot_options, true);
  boot->add_option("--results", results, "Results root")->capture_default_str();
  bool boot_console = false;
  boot->add_flag("--console", boot_console,
                 "Print the guest's console as it boots (control characters removed)");

  CliRunOptions parse_options;
  std::string log_path;
  bool json = false;
  auto* parse = app.add_subcommand("parse", "Judge a saved console log offline");
  parse->add_option("log", log_path, "console.log of a run")->required();
  spec::add_run_options(*parse, parse_options, false);
  parse->add_flag("--json", json, "Print the result as JSON");

  SuiteRequest run_options;
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
  spec::add_session_options(*run, run_options.overrides);
  run->add_option("--hosts", run_options.hosts,
                  "A hosts file (YAML): run the cases on a pool of libvirt hosts, as many at "
                  "once as their slots");
  run->add_option("--shard", run_options.shard,
                  "Run shard I/N of the suite (1-based), or auto: GitLab's "
                  "CI_NODE_INDEX/CI_NODE_TOTAL");
  run->add_option("--durations", run_options.durations,
                  "An earlier summary.json: balance the shards by its wall times")
      ->check(CLI::ExistingFile);
  run->add_option("--results", results, "Results root")->capture_default_str();
  add_exports(*run, run_options.exports);

  std::vector<std::string> merge_dirs;
  std::string merge_out;
  auto* merge = app.add_subcommand("merge", "Merge the shards of a suite run into one session");
  merge->add_option("dirs", merge_dirs, "Session directories of the shards")
      ->required()
      ->check(CLI::ExistingDirectory);
  merge->add_option("--out", merge_out, "Directory for the merged session")->required();
  Exports merge_exports;
  add_exports(*merge, merge_exports);

  std::string report_dir;
  auto* report = app.add_subcommand("report", "Make a session's report.html again");
  report->add_option("dir", report_dir, "A session directory (of run or merge)")
      ->required()
      ->check(CLI::ExistingDirectory);

  BisectRequest bisect_options;
  auto* bisect = app.add_subcommand(
      "bisect", "Find the first kernel (or parameter value) whose verdict differs from the first");
  bisect->add_option("--kernels", bisect_options.kernels, "Ordered kernel refs: A,B,C");
  bisect->add_option("--line", bisect_options.line, "Every Debian ABI of a line: debian:6.1");
  bisect->add_option("--param", bisect_options.param,
                     fmt::format("A threshold: NAME=LO..HI, NAME one of {} (udev-timeout=1..60)",
                                 spec::bisect_param_names()));
  bisect->add_option("--case", bisect_options.case_ref,
                     "The run of a suite case, SUITE.yaml:ID (instead of run options)");
  spec::add_run_options(*bisect, bisect_options.run, true);
  bisect->add_option("--repeat", bisect_options.repeat, "Boots per step")->capture_default_str();
  bisect
      ->add_option("--bad-if", bisect_options.bad_if,
                   "any: one differing repeat makes a step differ; majority: most must")
      ->capture_default_str();
  bisect->add_option("--results", results, "Results root")->capture_default_str();
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

  GitBisectRunRequest bisect_run_command;
  auto* bisect_run_cmd = app.add_subcommand(
      "bisect-run", "For `git bisect run` in a kernel source tree: build the commit, boot the "
                    "case; exit 0 good, 1 bad, 125 cannot test, 128 bad usage");
  spec::add_run_options(*bisect_run_cmd, bisect_run_command.run, false);
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
  bisect_run_cmd->add_option("--results", results, "Results root")->capture_default_str();

  // The manual page and shell completions, made from this app itself.
  auto* man = app.add_subcommand("man", "Print the manual page (roff): man -l <(probegate man)");
  std::string shell;
  auto* completion = app.add_subcommand("completion", "Print a shell completion script");
  completion->add_option("shell", shell, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    // Under `git bisect run`, 2 would blame the commit: bad usage aborts.
    const bool for_git = argc > 1 && std::string_view(argv[1]) == "bisect-run";
    return code == 0 ? 0 : for_git ? k_git_abort : 2;
  }
  // What a killed probegate left in the cache's scratch (an initramfs, a
  // half download) goes now.
  if (!*parse && !*merge && !*report && !*man && !*completion)
    if (const int swept = core::sweep_dead_temp_dirs(core::cache_root() / "tmp");
        swept > 0 && g_verbose)
      fmt::print(stderr, "probegate: removed {} scratch directories of processes that died\n",
                 swept);
  if (*bisect_run_cmd)
    return run_with(results, [&](Environment& env) -> core::Result<int> {
      return git_bisect_run(bisect_run_command, env);
    });
  if (*boot)
    return run_with(
        results, [&](Environment& env) { return boot_command(boot_options, boot_console, env); });
  if (*bisect)
    return run_with(results, [&](Environment& env) { return bisect_command(bisect_options, env); });
  if (*run)
    return run_with(results, [&](Environment& env) { return suite_command(run_options, env); });
  if (*parse) {
    auto code = parse_command(parse_options, log_path, json);
    return code ? *code : report_error(code.error());
  }
  if (*man) {
    fmt::print("{}", man_page(app));
    return 0;
  }
  if (*completion) {
    fmt::print("{}", shell == "bash" ? bash_completion(app) : zsh_completion(app));
    return 0;
  }
  if (*report) {
    auto code = report_command(report_dir);
    return code ? *code : report_error(code.error());
  }
  if (*merge) {
    auto code = merge_command(merge_dirs, merge_out, merge_exports);
    return code ? *code : report_error(code.error());
  }
  if (*fetch)
    return run_with({}, [&](auto& env) { return fetch_command(fetch_refs, env); });
  if (*list)
    return run_with({}, [&](auto& env) { return list_command(offline, env); });
  if (*build)
    return run_with({}, [&](auto& env) { return build_command(build_request, env); });
  return 2;
}

} // namespace probegate::drivers
