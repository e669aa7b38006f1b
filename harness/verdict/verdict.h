// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "verdict/outcome.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace probegate::verdict {

enum class Tri { yes, no, any };

// What a run expects (the --expect-* options). Unset: not checked.
struct Expectations {
  std::optional<int> bound;
  Tri udev_kill = Tri::any;
  std::optional<bool> boot = true;
  std::optional<int> at_modprobe_return; // devices present when modprobe returned
  // The kernel lacks the case's knob, so the case skips (`expect_skip`).
  // Unset: a missing knob skips, a present one runs.
  std::optional<bool> skip;
};

// Worst first: error > crash > fail > flaky > skip > pass (docs/CONTRACTS.md "Verdicts").
enum class VerdictKind { pass, skip, flaky, fail, crash, error };

struct Check {
  std::string name;
  std::string expected;
  std::string actual;
  bool pass = false;
};

struct Verdict {
  VerdictKind kind = VerdictKind::pass;
  std::vector<Check> checks;
  std::string reason; // for error, crash and skip
};

// Pure: Outcome + Expectations -> Verdict.
Verdict judge(const Outcome& outcome, const Expectations& expect);

// Pure: before a boot, whether the kernel has the knob the case needs
// (`knob` empty: it needs none). A verdict means "do not boot": skip with the
// reason where the knob is missing, fail where the suite's expect_skip says
// otherwise. nullopt: boot.
// `owner` names what lacks it: "the kernel", "udev 252 (debian:bookworm)".
std::optional<Verdict> judge_knob(std::string_view knob, bool present, const Expectations& expect,
                                  std::string_view owner = "the kernel");

std::string_view verdict_name(VerdictKind kind);
// The inverse, for results read back: nullopt for a name no verdict has.
std::optional<VerdictKind> verdict_from_name(std::string_view name);
// The CLI's exit code for a verdict: 0 pass/skip, 1 fail/crash/flaky, 3 error.
int exit_code(VerdictKind kind);
std::string_view tri_name(Tri tri);

} // namespace probegate::verdict
