// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "drivers/attempts.h"
#include "drivers/boot.h"
#include "pool/hosts.h"
#include "report/run_result.h"
#include "report/session.h"
#include "spec/option_cli.h"
#include "suite/suite.h"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace probegate::drivers {

struct SuiteOptions {
  int jobs = 1;
  int repeat = 1;
  bool fail_fast = false;
  int retries = 0;                   // --retries: AttemptPolicy::retries (0 unless asked for)
  std::filesystem::path session_dir; // results/<session>
  // run --hosts: the pool. One worker per slot of each host (`jobs` is
  // ignored); empty: `jobs` workers on this machine.
  std::vector<pool::Host> hosts;
};

// Runs one case once on a pool host (`host`), or on this machine (nullptr).
using PlacedRunner = std::function<core::Result<report::RunResult>(
    const spec::RunSpec& spec, const std::filesystem::path& run_dir, const pool::Host* host)>;

// Hears about progress, from the worker threads (calls are serialised).
class SuiteObserver {
public:
  virtual ~SuiteObserver() = default;
  virtual void started(const suite::Case& c, int running) = 0;
  virtual void finished(const report::CaseReport& c, int done, int total, int running) = 0;
  // A pool host went away; its cases in flight go back to the queue.
  virtual void host_lost(const report::HostReport&) {}
};

// Runs the cases on `jobs` workers in suite order; --repeat N runs each N
// times (repeats that disagree make it flaky); --fail-fast stops handing out
// cases after the first fail, crash or error. The session directory holds an
// INCOMPLETE marker from the start until every case has finished; an
// interrupt leaves it there and returns the finished cases intact.
// With a pool (options.hosts) each worker serves one slot of one host and
// takes the first queued case its host can run; a case whose host is lost
// (ErrorKind::host_lost) goes back to the front of the queue for the other
// hosts, its attempt moved under <session>/lost-hosts/<host>/, and the
// host takes no more. Cases no remaining host can run stay "not run".
report::Session run_suite(const std::string& suite_name, const std::vector<suite::Case>& cases,
                          const SuiteOptions& options, const PlacedRunner& runner,
                          SuiteObserver& observer);
report::Session run_suite(const std::string& suite_name, const std::vector<suite::Case>& cases,
                          const SuiteOptions& options, const CaseRunner& runner,
                          SuiteObserver& observer);

// The directory of a case inside the session (ids nest: knobs/sync/dev2).
std::filesystem::path case_dir(const std::filesystem::path& session, const std::string& id);

// Every kernel of the cases, parsed, then resolved and fetched, and every
// user space's base layer, before anything is created or booted; then each
// `expect_bound: capacity` is resolved against its udev. An error names
// where the suite gives it.
core::Status prefetch_inputs(const std::vector<suite::Case>& cases, Environment& env);

// The session in the formats CI engines read, besides summary.json and
// junit.xml (`run` and `merge`).
struct Exports {
  bool ktap = false; // --ktap: KTAP on stdout; the table goes to stderr
  std::string kcidb; // --kcidb FILE: KCIDB v5.3 JSON
  std::string kcidb_origin = "probegate";
};
// --kcidb-origin must be a KCIDB origin ([a-z0-9_]+): exit 2 before anything runs.
core::Status check_exports(const Exports& exports);
// After the session is written: KTAP on stdout, the KCIDB file.
core::Status export_session(const report::Session& session, const Exports& exports);

// `probegate run` as typed.
struct SuiteRequest {
  std::string suite_file;
  std::optional<int> jobs; // default: what cores and memory allow
  std::string filter;
  int repeat = 1;
  int retries = 0;
  bool fail_fast = false;
  std::string shard;             // --shard I/N or auto ("": the whole suite)
  std::string durations;         // --durations: an earlier summary.json, to balance shards
  std::string hosts;             // --hosts FILE: run on a pool of libvirt hosts
  spec::CliRunOptions overrides; // --fresh-boot, --backend, --connect: for every case
  Exports exports;
};

// Loads and filters the suite, fetches its kernels, runs it with progress
// on the terminal, writes the session under env.results and prints its
// table. Returns `probegate run`'s exit code.
core::Result<int> suite_command(const SuiteRequest& request, Environment& env);

} // namespace probegate::drivers
