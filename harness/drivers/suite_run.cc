// SPDX-License-Identifier: GPL-2.0-only
#include "drivers/suite_run.h"

#include "core/files.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace probegate::drivers {

namespace fs = std::filesystem;
using verdict::VerdictKind;

fs::path case_dir(const fs::path& session, const std::string& id) {
  return session / id;
}

namespace {

bool stops_fail_fast(VerdictKind v) {
  return v == VerdictKind::fail || v == VerdictKind::crash || v == VerdictKind::error ||
         v == VerdictKind::flaky;
}

// Runs one case (all its repeats). Returns false when interrupted.
bool run_case(const suite::Case& c, const SuiteOptions& options, const CaseRunner& runner,
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
    return true;
  }
  out.ran = true;
  std::vector<VerdictKind> verdicts;
  for (int k = 1; k <= options.repeat; ++k) {
    const fs::path dir = options.repeat == 1 ? out.dir : out.dir / fmt::format("repeat-{}", k);
    auto result = runner(c.spec, dir);
    // --retries: an infrastructure error (QEMU killed, a download failed) is
    // run again, in retry-N/ beside the failed attempt, which stays as it is.
    for (int retry = 1;
         retry <= options.retries && result && result->verdict.kind == VerdictKind::error;
         ++retry) {
      ++out.retried;
      result = runner(c.spec, dir / fmt::format("retry-{}", retry));
    }
    if (!result) {
      if (result.error().kind == core::ErrorKind::interrupted) {
        out.verdict = VerdictKind::error;
        out.reason = "interrupted";
        return false;
      }
      report::RunResult failed;
      failed.spec = c.spec;
      failed.dir = dir;
      failed.verdict.kind = VerdictKind::error;
      failed.verdict.reason = result.error().message;
      failed.error = result.error().message;
      out.runs.push_back(std::move(failed));
    } else {
      out.runs.push_back(std::move(*result));
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
  return true;
}

} // namespace

report::Session run_suite(const std::string& suite_name, const std::vector<suite::Case>& cases,
                          const SuiteOptions& options, const CaseRunner& runner,
                          SuiteObserver& observer) {
  const auto started = std::chrono::steady_clock::now();
  report::Session session;
  session.suite = suite_name;
  session.dir = options.session_dir;
  session.jobs = std::max(1, options.jobs);
  session.repeat = std::max(1, options.repeat);
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

  std::atomic<size_t> next{0};
  std::atomic<bool> stop{!storage_error.empty()};
  std::atomic<bool> interrupted{false};
  std::mutex lock;
  int running = 0;
  int done = 0;
  SuiteOptions per_case = options;
  per_case.repeat = session.repeat;

  auto worker = [&] {
    for (;;) {
      if (stop)
        return;
      const size_t i = next++;
      if (i >= cases.size())
        return;
      {
        std::lock_guard guard(lock);
        ++running;
        observer.started(cases[i], running);
      }
      report::CaseReport report;
      const bool finished = run_case(cases[i], per_case, runner, report);
      std::lock_guard guard(lock);
      --running;
      if (!finished) {
        interrupted = true;
        stop = true;
        return;
      }
      session.cases[i] = std::move(report);
      ++done;
      observer.finished(session.cases[i], done, static_cast<int>(cases.size()), running);
      if (options.fail_fast && stops_fail_fast(session.cases[i].verdict))
        stop = true;
      if (auto marked = mark(static_cast<size_t>(done)); !marked && storage_error.empty()) {
        storage_error = marked.error().message;
        stop = true;
      }
    }
  };
  {
    std::vector<std::jthread> workers;
    for (int j = 0; j < session.jobs; ++j)
      workers.emplace_back(worker);
  }
  session.interrupted = interrupted;
  session.storage_error = storage_error;
  if (!storage_error.empty())
    for (auto& c : session.cases)
      if (!c.ran)
        c.reason = "not run: the results directory cannot be written (" + storage_error + ")";
  // Complete: every case the session meant to run has run (--fail-fast
  // stopping early is a decision, not a loss).
  session.complete = !interrupted && storage_error.empty();
  session.wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return session;
}

} // namespace probegate::drivers
