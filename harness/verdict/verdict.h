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
};

// Worst first: error > crash > fail > flaky > skip > pass (DESIGN.md).
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

std::string_view verdict_name(VerdictKind kind);
// The CLI's exit code for a verdict: 0 pass/skip, 1 fail/crash/flaky, 3 error.
int exit_code(VerdictKind kind);
std::string_view tri_name(Tri tri);

} // namespace probegate::verdict
