// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "bisect/search.h"
#include "core/error.h"
#include "drivers/attempts.h"
#include "drivers/boot.h"
#include "drivers/suite_run.h"
#include "spec/option_cli.h"
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
  AttemptPolicy policy;                             // --repeat, --bad-if; errors retried once
  std::filesystem::path dir;                        // results/bisect-<time>; holds bisect.json
  std::map<size_t, bisect::Step> known;             // from a resumed bisect.json
  std::function<void(const bisect::Step&)> on_step; // progress: one line per decided step
};

// `--param NAME=LO..HI`: an option of the table that bisect may vary
// (spec::OptionDef::bisect_param) and its values.
struct ParamRange {
  std::string key; // udev_timeout
  int lo = 0;
  int hi = 0;
};
core::Result<ParamRange> parse_param(std::string_view text);

// The items of a bisection: a label and a run for each.
struct BisectItems {
  std::vector<std::string> labels;
  std::vector<spec::RunSpec> specs;
  std::string rule;  // how a step is judged, for the user
  std::string param; // the key --param varies; "" for kernels
};
// One run per value of `range`, checked before anything boots. Without
// --expect-bound (`bound_given`), every step expects all its devices to bind
// (and, as always, the guest to boot), so the search finds the threshold
// where the outcome changes; else the expectations given judge each step.
core::Result<BisectItems> param_items(const spec::RunSpec& base, const ParamRange& range,
                                      bool bound_given);

// Runs the search with real boots (through `runner`). Each step's repeats go
// to <dir>/<NN>-<label>/ by the AttemptPolicy; an infrastructure error after
// its retry makes the item untestable (never counted as a difference), and
// so does a skip (knob missing). bisect.json is rewritten after every step, so an
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

// The final answer for a terminal.
std::string render_answer(const std::vector<std::string>& labels, const bisect::Answer& answer);

// `probegate bisect` as typed: exactly one of kernels, line or param.
struct BisectRequest {
  std::string kernels;  // comma-separated refs
  std::string line;     // debian:6.1
  std::string param;    // udev-timeout=1..60
  std::string case_ref; // SUITE.yaml:ID, instead of run options
  int repeat = 1;
  std::string bad_if = "any";
  std::string resume; // the directory of an interrupted bisection
  spec::CliRunOptions run;
};

// Builds the items, checks every run before anything boots, bisects with
// real boots (steps printed as they are decided) and prints the answer.
// Returns `probegate bisect`'s exit code (exit_code()).
core::Result<int> bisect_command(const BisectRequest& request, Environment& env);

} // namespace probegate::drivers
