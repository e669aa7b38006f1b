// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "drivers/boot.h"
#include "spec/option_cli.h"
#include "verdict/verdict.h"

#include <filesystem>
#include <string>
#include <vector>

namespace probegate::drivers {

// `probegate bisect-run`'s exit code for `git bisect run`, from the verdicts
// of one commit's repeats: 0 good, 1 bad, 125 cannot test (an error after
// its retry, or a skip: knob missing). git counts 1..127 but 125 as bad, so
// bad usage is 128 (it aborts the bisection) and never 2.
inline constexpr int k_git_good = 0;
inline constexpr int k_git_bad = 1;
inline constexpr int k_git_skip = 125;
inline constexpr int k_git_abort = 128;
int git_bisect_exit_code(const std::vector<verdict::VerdictKind>& verdicts, bool bad_if_any);

// `probegate bisect-run` as typed, run inside a kernel source tree.
struct GitBisectRunRequest {
  std::vector<std::filesystem::path> fragments;
  std::string build_dir; // out-of-tree build kept between steps; "": one per tree in the cache
  int repeat = 1;
  std::string bad_if = "any";
  spec::CliRunOptions run;
};

// One step of `git bisect run`: builds the checked-out commit incrementally
// out of tree, boots the case and returns git's exit code (a commit that
// does not build is 125; bad usage 128; an interrupt 130).
int git_bisect_run(const GitBisectRunRequest& request, Environment& env);

} // namespace probegate::drivers
