// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "bisect/search.h"
#include "core/error.h"
#include "drivers/suite_run.h"
#include "spec/run_spec.h"

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace probegate::drivers {

// One bisection: ordered items (kernel refs or parameter values), the run to
// do for each, and how to read repeats.
struct BisectOptions {
  std::vector<std::string> labels;                  // "debian:6.1", "udev_timeout=7"
  std::function<spec::RunSpec(size_t)> spec_for;    // the run of item i
  int repeat = 1;                                   // boots per step
  bool differs_if_any = true;                       // --bad-if any (else majority)
  std::filesystem::path dir;                        // results/bisect-<time>; holds bisect.json
  std::map<size_t, bisect::Step> known;             // from a resumed bisect.json
  std::function<void(const bisect::Step&)> on_step; // progress: one line per decided step
};

// Runs the search with real boots (through `runner`). Each step's repeats go
// to <dir>/<NN>-<label>/[repeat-K/]; an error verdict is retried once, then
// the item is untestable (never counted as a difference); a skip (knob
// missing) is untestable. bisect.json is rewritten after every step, so an
// interrupted bisection resumes from it (load_bisect_log).
core::Result<bisect::Answer> run_bisect(const BisectOptions& options, const CaseRunner& runner);

// bisect.json: the items, every decided step and, once done, the answer.
std::string bisect_log_json(const std::vector<std::string>& labels,
                            const std::vector<bisect::Step>& steps, const bisect::Answer* answer);
// The steps of a previous bisect.json over the same items; a usage error if
// the items differ (that log belongs to another bisection).
core::Result<std::map<size_t, bisect::Step>>
load_bisect_log(const std::filesystem::path& file, const std::vector<std::string>& labels);

// `probegate bisect`'s exit code: 0 an answer (found, or a range where the
// items between could not be tested), 1 no change between the ends, 3 the
// first item cannot be tested (nothing to compare with).
int exit_code(const bisect::Answer& answer);

// `probegate bisect-run`'s exit code for `git bisect run`, from the verdicts
// of one commit's repeats: 0 good, 1 bad, 125 cannot test (an error after
// its retry, or a skip: knob missing). git counts 1..127 but 125 as bad, so
// bad usage is 128 (it aborts the bisection) and never 2.
inline constexpr int k_git_good = 0;
inline constexpr int k_git_bad = 1;
inline constexpr int k_git_skip = 125;
inline constexpr int k_git_abort = 128;
int git_bisect_exit_code(const std::vector<verdict::VerdictKind>& verdicts, bool bad_if_any);

// The final answer for a terminal.
std::string render_answer(const std::vector<std::string>& labels, const bisect::Answer& answer);

} // namespace probegate::drivers
