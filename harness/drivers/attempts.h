// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "report/run_result.h"
#include "spec/run_spec.h"

#include <filesystem>
#include <functional>
#include <string_view>
#include <vector>

namespace probegate::drivers {

// Runs one case once into `run_dir` (the real one calls boot(); tests pass a
// fake). An interrupted Error stops the driver; other Errors are the case's.
using CaseRunner = std::function<core::Result<report::RunResult>(
    const spec::RunSpec& spec, const std::filesystem::path& run_dir)>;

// How every driver that boots (suite, bisect, bisect-run) runs one item:
// `repeat` boots, each in <dir>/repeat-K/ (in <dir> itself for one); an
// infrastructure error (an error verdict, or a boot that failed around the
// kernel) is booted again up to `retries` times in <attempt>/retry-N/,
// beside the failed attempt, which stays as it is; an interrupt or a usage
// error is never retried. Repeats are read with `differs_if_any`: any
// differing repeat decides, else a majority must.
struct AttemptPolicy {
  int repeat = 1;
  int retries = 1;
  bool differs_if_any = true;
};

// The policy of `--repeat N --bad-if any|majority` (bisect, bisect-run):
// a usage error names both options.
core::Result<AttemptPolicy> attempt_policy(int repeat, std::string_view bad_if);

std::filesystem::path repeat_dir(const std::filesystem::path& dir, const AttemptPolicy& policy,
                                 int k);
std::filesystem::path retry_dir(const std::filesystem::path& attempt, int r);

// Whether `differing` of `runs` repeats make the item differ (or a commit bad).
bool decides(const AttemptPolicy& policy, int differing, int runs);

// One repeat: its last attempt's result, and how many retries it took.
struct Attempt {
  core::Result<report::RunResult> result;
  int retried = 0;
  std::filesystem::path dir; // where its first attempt went
  bool interrupted() const {
    return !result && result.error().kind == core::ErrorKind::interrupted;
  }
  // Its pool host went away: the item is to be run again elsewhere.
  bool host_lost() const { return !result && result.error().kind == core::ErrorKind::host_lost; }
  // A verdict on the kernel, neither an error around it nor a skip.
  bool testable() const {
    return result && result->verdict.kind != verdict::VerdictKind::error &&
           result->verdict.kind != verdict::VerdictKind::skip;
  }
};

// The repeats of one item in order, each with its retries; after each,
// `go_on` says whether to run the next (all of them when empty). An
// interrupt or a lost host always stops.
std::vector<Attempt> run_attempts(const spec::RunSpec& spec, const std::filesystem::path& dir,
                                  const AttemptPolicy& policy, const CaseRunner& runner,
                                  const std::function<bool(const Attempt&)>& go_on = {});

} // namespace probegate::drivers
