// SPDX-License-Identifier: GPL-2.0-only
#include "drivers/suite_run.h"

#include "core/files.h"
#include "core/progress.h"
#include "core/text.h"
#include "image/initramfs.h"
#include "kernel/kernel_ref.h"
#include "kernel/kernel_store.h"
#include "report/kcidb.h"
#include "suite/shard.h"
#include "vm/libvirt.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <fmt/ranges.h>
#include <map>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace probegate::drivers {

namespace fs = std::filesystem;
using verdict::VerdictKind;

fs::path case_dir(const fs::path& session, const std::string& id) {
  return session / id;
}

namespace {

// The error of a run that could not write into the session directory
// ("cannot write <session>/…/console.log (is its file system full?)"), or "".
std::string lost_results(const report::CaseReport& c, const fs::path& session_dir) {
  for (const auto& run : c.runs)
    if (run.verdict.kind == VerdictKind::error && run.error.starts_with("cannot write ") &&
        run.error.find(session_dir.string()) != std::string::npos)
      return run.error;
  return {};
}

bool stops_fail_fast(VerdictKind v) {
  return v == VerdictKind::fail || v == VerdictKind::crash || v == VerdictKind::error ||
         v == VerdictKind::flaky;
}

enum class CaseEnd {
  finished,
  interrupted,
  host_lost, // to be run again on another host
};

// Runs one case (all its repeats).
CaseEnd run_case(const suite::Case& c, const SuiteOptions& options, const CaseRunner& runner,
                 report::CaseReport& out) {
  out.id = c.id;
  out.where = c.where;
  out.row = c.row;
  out.kernel = c.spec.kernel;
  out.dir = case_dir(options.session_dir, c.id);
  if (c.skip) {
    out.verdict = VerdictKind::skip;
    out.reason = *c.skip;
    (void)core::write_file_atomic(out.dir / "skipped.txt", *c.skip + "\n");
    return CaseEnd::finished;
  }
  out.ran = true;
  std::vector<VerdictKind> verdicts;
  const AttemptPolicy policy{.repeat = options.repeat, .retries = options.retries};
  for (auto& attempt : run_attempts(c.spec, out.dir, policy, runner)) {
    out.retried += attempt.retried;
    if (attempt.interrupted()) {
      out.verdict = VerdictKind::error;
      out.reason = "interrupted";
      return CaseEnd::interrupted;
    }
    if (attempt.host_lost()) {
      out.verdict = VerdictKind::error;
      out.reason = attempt.result.error().message;
      return CaseEnd::host_lost;
    }
    if (!attempt.result) {
      const auto& error = attempt.result.error();
      report::RunResult failed;
      failed.spec = c.spec;
      failed.dir = attempt.dir;
      failed.verdict.kind = VerdictKind::error;
      failed.verdict.reason = error.message;
      failed.error = error.message;
      out.runs.push_back(std::move(failed));
    } else {
      out.runs.push_back(std::move(*attempt.result));
    }
    verdicts.push_back(out.runs.back().verdict.kind);
  }
  out.verdict = report::combine_repeats(verdicts);
  if (out.verdict == VerdictKind::flaky) {
    std::string seen;
    for (auto v : verdicts)
      seen += std::string(seen.empty() ? "" : ", ") + std::string(verdict::verdict_name(v));
    out.reason = fmt::format("repeats disagree: {}", seen);
  } else if (!out.runs.empty() && out.verdict != VerdictKind::pass) {
    const auto& last = out.runs.back();
    out.reason = last.error.empty() ? last.verdict.reason : last.error;
  }
  return CaseEnd::finished;
}

// What a lost host's case left in its directory, moved out of the way of
// its next attempt: <session>/lost-hosts/<host>/<id>.
void set_aside(const fs::path& session, const std::string& host, const std::string& id) {
  const fs::path from = case_dir(session, id);
  const fs::path to = session / report::k_lost_dir / host / id;
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  fs::remove_all(to, ec);
  fs::rename(from, to, ec);
  if (ec)
    fs::remove_all(from, ec);
}

} // namespace

report::Session run_suite(const std::string& suite_name, const std::vector<suite::Case>& cases,
                          const SuiteOptions& options, const CaseRunner& runner,
                          SuiteObserver& observer) {
  return run_suite(
      suite_name, cases, options,
      [&](const spec::RunSpec& spec, const fs::path& dir, const pool::Host*) {
        return runner(spec, dir);
      },
      observer);
}

report::Session run_suite(const std::string& suite_name, const std::vector<suite::Case>& cases,
                          const SuiteOptions& options, const PlacedRunner& runner,
                          SuiteObserver& observer) {
  const auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  report::Session session;
  session.suite = suite_name;
  session.dir = options.session_dir;
  session.repeat = std::max(1, options.repeat);
  // One worker per slot: this machine's `jobs`, or each host's slots.
  std::vector<const pool::Host*> slots;
  for (const auto& host : options.hosts) {
    session.hosts.push_back({.name = host.name,
                             .uri = vm::redact_uri(host.uri),
                             .slots = host.slots,
                             .labels = host.labels,
                             .cases = 0,
                             .lost = false,
                             .lost_reason = {},
                             .lost_at_s = 0});
    slots.insert(slots.end(), static_cast<size_t>(host.slots), &host);
  }
  if (options.hosts.empty())
    slots.assign(static_cast<size_t>(std::max(1, options.jobs)), nullptr);
  session.jobs = static_cast<int>(slots.size());
  session.cases.resize(cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    session.cases[i].id = cases[i].id;
    session.cases[i].where = cases[i].where;
    session.cases[i].row = cases[i].row;
    session.cases[i].kernel = cases[i].spec.kernel;
    session.cases[i].verdict = VerdictKind::error;
    session.cases[i].reason = "not run (interrupted or stopped by --fail-fast)";
  }
  // The marker stays until summary.json is written (report::write_session).
  // It is rewritten after every case: a results directory that can no
  // longer be written (a full disk) stops the session there, rather than
  // booting cases whose results would be lost.
  const fs::path marker = options.session_dir / report::k_incomplete_marker;
  auto mark = [&](size_t finished) {
    return core::write_file_atomic(
        marker, fmt::format("this session has not finished: {} of {} cases ran; summary.json "
                            "(once written) says which\n",
                            finished, cases.size()));
  };
  std::string storage_error;
  if (auto marked = mark(0); !marked)
    storage_error = marked.error().message;

  // The queue: cases in suite order; a lost host's cases come back to its
  // front. A worker waits while cases are in flight elsewhere (one may come
  // back) and nothing queued is for its host.
  std::deque<size_t> queue;
  for (size_t i = 0; i < cases.size(); ++i)
    queue.push_back(i);
  std::condition_variable queue_changed;
  int in_flight = 0;
  bool stop = !storage_error.empty();
  bool interrupted = false;
  std::mutex lock;
  int running = 0;
  int done = 0;
  SuiteOptions per_case = options;
  per_case.repeat = session.repeat;
  auto runs_on = [&](size_t i, const pool::Host* host) {
    return host == nullptr || cases[i].skip || pool::can_run(*host, cases[i].spec.accel);
  };
  auto host_report = [&](const pool::Host* host) -> report::HostReport& {
    return session.hosts[static_cast<size_t>(host - options.hosts.data())];
  };

  auto worker = [&](const pool::Host* host) {
    const CaseRunner bound = [&](const spec::RunSpec& spec, const fs::path& dir) {
      return runner(spec, dir, host);
    };
    for (;;) {
      size_t i = 0;
      {
        std::unique_lock guard(lock);
        for (;;) {
          if (stop || (host != nullptr && host_report(host).lost))
            return;
          const auto next = std::ranges::find_if(queue, [&](size_t c) { return runs_on(c, host); });
          if (next != queue.end()) {
            i = *next;
            queue.erase(next);
            break;
          }
          if (in_flight == 0)
            return;
          queue_changed.wait(guard);
        }
        ++in_flight;
        ++running;
        observer.started(cases[i], running);
      }
      report::CaseReport report;
      const CaseEnd end = run_case(cases[i], per_case, bound, report);
      std::lock_guard guard(lock);
      --in_flight;
      --running;
      queue_changed.notify_all();
      if (end == CaseEnd::interrupted) {
        interrupted = true;
        stop = true;
        return;
      }
      if (end == CaseEnd::host_lost && host != nullptr) {
        auto& lost = host_report(host);
        if (!lost.lost) {
          lost.lost = true;
          lost.lost_reason = report.reason;
          lost.lost_at_s = elapsed();
          observer.host_lost(lost);
        }
        session.cases[i].lost_on.push_back(host->name);
        set_aside(options.session_dir, host->name, cases[i].id);
        queue.push_front(i);
        return;
      }
      auto lost_on = std::move(session.cases[i].lost_on);
      session.cases[i] = std::move(report);
      session.cases[i].lost_on = std::move(lost_on);
      if (host != nullptr) {
        session.cases[i].host = host->name;
        ++host_report(host).cases;
      }
      ++done;
      observer.finished(session.cases[i], done, static_cast<int>(cases.size()), running);
      if (options.fail_fast && stops_fail_fast(session.cases[i].verdict))
        stop = true;
      if (auto marked = mark(static_cast<size_t>(done)); !marked && storage_error.empty()) {
        storage_error = marked.error().message;
        stop = true;
      }
      // A case that could not write its own results stops the session as a
      // marker that cannot be written does: the next case's would be lost too.
      if (const auto lost = lost_results(session.cases[i], options.session_dir);
          !lost.empty() && storage_error.empty()) {
        storage_error = lost;
        stop = true;
      }
    }
  };
  {
    std::vector<std::jthread> workers;
    for (const auto* host : slots)
      workers.emplace_back(worker, host);
  }
  session.interrupted = interrupted;
  session.storage_error = storage_error;
  if (!storage_error.empty())
    for (auto& c : session.cases)
      if (!c.ran)
        c.reason = "not run: the results directory cannot be written (" + storage_error + ")";
  // Cases left queued when no host that could run them remains.
  const bool stranded = !stop && !queue.empty();
  if (stranded)
    for (size_t i : queue)
      session.cases[i].reason =
          session.cases[i].lost_on.empty()
              ? "not run: every host that could run it was lost"
              : fmt::format("not run: lost with host {}, and every host that could run it again "
                            "was lost",
                            fmt::join(session.cases[i].lost_on, ", "));
  // Complete: every case the session meant to run has run (--fail-fast
  // stopping early is a decision, not a loss).
  session.complete = !interrupted && storage_error.empty() && !stranded;
  session.wall_s = elapsed();
  return session;
}

core::Status prefetch_inputs(const std::vector<suite::Case>& cases, Environment& env) {
  // ref text -> (the parsed ref, where the suite first gives it)
  std::map<std::string, std::pair<kernel::KernelRef, std::string>> kernels;
  for (const auto& c : cases) {
    if (kernels.contains(c.spec.kernel))
      continue;
    auto ref = kernel::parse_kernel_ref(c.spec.kernel);
    if (!ref)
      return std::unexpected(core::with_context(ref.error(), c.kernel_where));
    kernels.emplace(c.spec.kernel, std::pair{std::move(*ref), c.kernel_where});
  }
  kernel::KernelStore store(env.runner, env.cache, env.progress);
  std::map<std::string, std::string> kernel_suite; // ref text -> the Debian suite it came from
  for (const auto& [text, ref_where] : kernels) {
    auto fetched = store.fetch(ref_where.first);
    if (!fetched)
      return std::unexpected(core::with_context(fetched.error(), ref_where.second));
    kernel_suite[text] = fetched->suite;
  }
  // The user spaces, whose udev versions decide `expect_bound: capacity`:
  // an ambiguous prediction is the suite's mistake, found before any boot.
  image::ImageBuilder images(env.runner, env.cache, env.data, env.progress);
  // (Debian suite, systemd as PID 1) -> the udev major version of the layer
  // the case boots, built here once so that its boot finds it cached.
  std::map<std::pair<std::string, bool>, int> udev;
  for (const auto& c : cases) {
    auto suite = spec::userspace_suite(c.spec, kernel_suite[c.spec.kernel]);
    if (!suite)
      return std::unexpected(core::with_context(suite.error(), c.where));
    const auto layer = std::pair{*suite, c.spec.init == spec::Init::systemd};
    if (!udev.contains(layer)) {
      auto base = images.base_layer(layer.first, layer.second);
      if (!base)
        return std::unexpected(core::with_context(base.error(), c.where));
      udev[layer] = base->udev;
    }
    auto resolved = c.spec;
    if (auto fits = spec::resolve_capacity(resolved, spec::udev_extra_s(c.spec, udev[layer]));
        !fits)
      return core::usage_error("{}: case {} (udev {} of debian:{}): {}", c.where, c.id, udev[layer],
                               *suite, fits.error().message);
  }
  return {};
}

namespace {

// Progress of a suite: one status line on a terminal (core::live_progress:
// not under CI), one plain line per finished case otherwise (CI logs).
class ConsoleObserver final : public SuiteObserver {
public:
  // `lines`: where a line per finished case goes when stderr is no terminal.
  ConsoleObserver(int total, int jobs, std::FILE* lines)
      : m_total(total), m_jobs(jobs), m_tty(core::live_progress()), m_lines(lines),
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
      fmt::print(m_lines, "[{}/{}] {} {}{}{}\n", done, total, verdict::verdict_name(c.verdict),
                 c.id, c.host.empty() ? "" : " on " + c.host,
                 c.reason.empty() ? "" : " (" + c.reason + ")");
      std::fflush(m_lines);
    }
  }

  void host_lost(const report::HostReport& host) override {
    std::lock_guard guard(m_print);
    fmt::print(stderr,
               "{}probegate: lost host {} ({}): {}; its cases in flight run again on the "
               "other hosts\n",
               m_tty ? "\r\x1b[K" : "", host.name, host.uri, host.lost_reason);
    status();
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
  std::FILE* m_lines;
  std::chrono::steady_clock::time_point m_started;
  int m_done = 0;
  int m_running = 0;
  int m_failed = 0;
  std::mutex m_print;
};

// The cases of this shard, as sorted ids (all of them when not sharded).
struct ShardCases {
  int index = 1;
  int total = 1;
  std::vector<std::string> ids;
};

core::Result<ShardCases> sharded(const SuiteRequest& o, const std::vector<std::string>& ids) {
  if (o.shard.empty()) {
    if (!o.durations.empty())
      return core::usage_error("--durations balances shards: give --shard I/N with it");
    return ShardCases{.index = 1, .total = 1, .ids = {}};
  }
  auto shard = suite::parse_shard(o.shard, [](const char* name) { return std::getenv(name); });
  if (!shard)
    return std::unexpected(shard.error());
  std::map<std::string, double> durations;
  if (!o.durations.empty()) {
    auto read = suite::read_durations(o.durations);
    if (!read)
      return std::unexpected(read.error());
    durations = std::move(*read);
  }
  ShardCases out{.index = shard->index, .total = shard->total, .ids = {}};
  const auto where = suite::assign_shards(ids, durations, shard->total);
  for (size_t i = 0; i < ids.size(); ++i)
    if (where[i] == shard->index)
      out.ids.push_back(ids[i]);
  std::ranges::sort(out.ids);
  return out;
}

// The pool of `--hosts`, checked against the other options and the cases
// before anything boots; empty without --hosts. Every case then runs on
// libvirt, on the host a slot gives it.
core::Result<std::vector<pool::Host>> pool_hosts(const SuiteRequest& o,
                                                 std::vector<suite::Case>& cases) {
  if (o.hosts.empty())
    return std::vector<pool::Host>{};
  auto hosts = pool::load_hosts(o.hosts);
  if (!hosts)
    return std::unexpected(hosts.error());
  if (o.overrides.has("connect"))
    return core::usage_error("--connect and --hosts both say where cases run: give one");
  if (auto backend = o.overrides.given.find("backend");
      backend != o.overrides.given.end() && backend->second != "libvirt")
    return core::usage_error("--hosts runs cases on libvirt hosts; --backend {} cannot go with it",
                             backend->second);
  for (auto& c : cases) {
    if (!c.spec.connect.empty())
      return core::usage_error("{}: case {} sets connect: {}; with --hosts, {} chooses the host",
                               c.where, c.id, vm::redact_uri(c.spec.connect), o.hosts);
    c.spec.backend = spec::Backend::libvirt;
    if (!c.skip && std::ranges::none_of(
                       *hosts, [&](const pool::Host& h) { return pool::can_run(h, c.spec.accel); }))
      return core::usage_error("{}: case {} asks for accel {}, and no host of {} has the label "
                               "kvm: true",
                               c.where, c.id, c.spec.accel, o.hosts);
  }
  return hosts;
}

int default_jobs() {
  // One TCG guest keeps one core busy and needs ~0.6 GB.
  const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGE_SIZE);
  const long by_memory = pages > 0 && page > 0 ? pages / (1024L * 1024 * 1024 / page) : 1;
  return static_cast<int>(std::max(1L, std::min(cores, by_memory)));
}

} // namespace

core::Status check_exports(const Exports& exports) {
  if (!exports.kcidb.empty())
    return report::check_kcidb_origin(exports.kcidb_origin);
  return {};
}

core::Status export_session(const report::Session& session, const Exports& exports) {
  if (exports.ktap) {
    std::fflush(stderr);
    fmt::print("{}", report::ktap(session));
    std::fflush(stdout);
  }
  if (!exports.kcidb.empty())
    return report::write_kcidb(session, exports.kcidb, exports.kcidb_origin);
  return {};
}

core::Result<int> suite_command(const SuiteRequest& o, Environment& env) {
  auto loaded = suite::load_suite(o.suite_file);
  if (!loaded)
    return std::unexpected(loaded.error());
  if (auto ok = check_exports(o.exports); !ok)
    return std::unexpected(ok.error());
  auto cases = suite::filter_cases(loaded->cases, o.filter);
  auto hosts = pool_hosts(o, cases);
  if (!hosts)
    return std::unexpected(hosts.error());
  for (auto& c : cases) {
    if (auto set = spec::apply_options(c.spec, o.overrides); !set)
      return std::unexpected(set.error());
    if (auto valid = spec::validate(c.spec); !valid)
      return std::unexpected(core::with_context(valid.error(), "case " + c.id));
  }
  if (cases.empty())
    return std::unexpected(core::Error{
        core::ErrorKind::usage, fmt::format("--filter '{}' matches none of the {} cases of {}",
                                            o.filter, loaded->cases.size(), o.suite_file)});
  std::vector<std::string> suite_cases;
  for (const auto& c : cases)
    suite_cases.push_back(c.id);
  auto shard = sharded(o, suite_cases);
  if (!shard)
    return std::unexpected(shard.error());
  if (shard->total > 1)
    std::erase_if(
        cases, [&](const suite::Case& c) { return !std::ranges::binary_search(shard->ids, c.id); });
  auto suite_sha256 = core::sha256_file(o.suite_file);
  if (!suite_sha256)
    return std::unexpected(suite_sha256.error());
  if (o.repeat < 1 || o.repeat > 1000)
    return std::unexpected(core::Error{core::ErrorKind::usage, "--repeat must be 1 to 1000"});
  if (o.jobs && (*o.jobs < 1 || *o.jobs > 64))
    return std::unexpected(core::Error{core::ErrorKind::usage, "--jobs must be 1 to 64"});
  if (o.jobs && !hosts->empty())
    return core::usage_error("--jobs and --hosts both say how many cases run at once: with "
                             "--hosts, the slots of {} do",
                             o.hosts);
  if (auto fetched = prefetch_inputs(cases, env); !fetched)
    return std::unexpected(fetched.error());

  const auto stamp = core::time_stamp();
  SuiteOptions options;
  options.jobs = o.jobs.value_or(default_jobs());
  options.repeat = o.repeat;
  options.fail_fast = o.fail_fast;
  options.retries = o.retries;
  options.hosts = std::move(*hosts);
  if (!options.hosts.empty())
    options.jobs = 0;
  options.session_dir =
      env.results / fmt::format("{}-{}-{}{}", loaded->name, stamp, ::getpid(),
                                shard->total > 1
                                    ? fmt::format("-shard{}of{}", shard->index, shard->total)
                                    : std::string());
  std::error_code ec;
  std::filesystem::create_directories(options.session_dir, ec);
  if (ec)
    return std::unexpected(core::Error{
        core::ErrorKind::infra,
        fmt::format("cannot create {}: {}", options.session_dir.string(), ec.message())});

  // Under --ktap stdout carries KTAP alone.
  std::FILE* text = o.exports.ktap ? stderr : stdout;
  int slots = options.jobs;
  for (const auto& host : options.hosts)
    slots += host.slots;
  ConsoleObserver observer(static_cast<int>(cases.size()), slots, text);
  Environment noted = env;          // progress goes above the status line
  noted.save_at_first_sight = true; // the other cases, and the next runs, restore
  noted.progress = [&](std::string_view m) { observer.note(m); };
  fmt::print(
      stderr, "probegate: {} cases of {}{} on {}{} -> {}\n", cases.size(), loaded->name,
      shard->total > 1 ? fmt::format(" (shard {}/{} of {} cases)", shard->index, shard->total,
                                     suite_cases.size())
                       : std::string(),
      options.hosts.empty() ? fmt::format("{} jobs", options.jobs)
                            : fmt::format("{} hosts ({} slots)", options.hosts.size(), slots),
      o.repeat > 1 ? fmt::format(", {} repeats each", o.repeat) : "", options.session_dir.string());
  auto session = run_suite(
      loaded->name, cases, options,
      [&](const spec::RunSpec& spec, const std::filesystem::path& dir, const pool::Host* host) {
        if (host == nullptr)
          return boot(spec, noted, dir);
        auto placed = spec;
        placed.connect = host->uri;
        Environment on_host = noted;
        on_host.host = host;
        return boot(placed, on_host, dir);
      },
      observer);
  observer.end();
  session.suite_sha256 = *suite_sha256;
  session.filter = o.filter;
  session.suite_cases = std::move(suite_cases);
  session.shard_index = shard->index;
  session.shard_total = shard->total;
  auto written = report::write_session(session);
  fmt::print(text, "{}", report::render_session(session));
  if (written)
    written = export_session(session, o.exports);
  if (!written)
    return std::unexpected(written.error());
  if (session.interrupted)
    return 130;
  return verdict::exit_code(session.worst());
}

} // namespace probegate::drivers
