// SPDX-License-Identifier: GPL-2.0-only
#include "verdict/verdict.h"

#include <fmt/core.h>

namespace probegate::verdict {

namespace {

std::string yes_no(bool b) {
  return b ? "yes" : "no";
}

} // namespace

std::string_view verdict_name(VerdictKind kind) {
  switch (kind) {
  case VerdictKind::pass:
    return "pass";
  case VerdictKind::skip:
    return "skip";
  case VerdictKind::flaky:
    return "flaky";
  case VerdictKind::fail:
    return "fail";
  case VerdictKind::crash:
    return "crash";
  case VerdictKind::error:
    return "error";
  }
  return "error";
}

std::string_view tri_name(Tri tri) {
  switch (tri) {
  case Tri::yes:
    return "yes";
  case Tri::no:
    return "no";
  case Tri::any:
    return "any";
  }
  return "any";
}

int exit_code(VerdictKind kind) {
  switch (kind) {
  case VerdictKind::pass:
  case VerdictKind::skip:
    return 0;
  case VerdictKind::flaky:
  case VerdictKind::fail:
  case VerdictKind::crash:
    return 1;
  case VerdictKind::error:
    return 3;
  }
  return 3;
}

std::optional<Verdict> judge_knob(std::string_view knob, bool present, const Expectations& expect,
                                  std::string_view owner) {
  if (knob.empty() && !expect.skip.value_or(false))
    return std::nullopt;
  const bool missing = !knob.empty() && !present;
  if (!missing && !expect.skip.value_or(false))
    return std::nullopt;
  Verdict v;
  const std::string what =
      knob.empty() ? std::string("(the case uses no knob)") : std::string(knob);
  v.checks.push_back({"knob_missing", yes_no(expect.skip.value_or(missing)), yes_no(missing),
                      !expect.skip || *expect.skip == missing});
  if (!v.checks.back().pass) {
    v.kind = VerdictKind::fail;
    v.reason = missing ? fmt::format("{} lacks {}, but expect_skip is no", owner, what)
                       : fmt::format("expect_skip is yes, but {} has {}", owner, what);
    return v;
  }
  v.kind = VerdictKind::skip;
  v.reason = fmt::format("{} lacks {}", owner, what);
  return v;
}

Verdict judge(const Outcome& o, const Expectations& expect) {
  Verdict v;
  if (expect.boot)
    v.checks.push_back(
        {"booted", yes_no(*expect.boot), yes_no(o.booted), o.booted == *expect.boot});
  if (expect.bound)
    v.checks.push_back({"devices_bound", std::to_string(*expect.bound),
                        std::to_string(o.devices_bound), o.devices_bound == *expect.bound});
  if (expect.udev_kill != Tri::any) {
    const bool want = expect.udev_kill == Tri::yes;
    v.checks.push_back({"udev_worker_killed", yes_no(want), yes_no(o.udev_worker_killed),
                        o.udev_worker_killed == want});
  }
  if (expect.at_modprobe_return) {
    const auto actual = o.devices_at_modprobe_return;
    v.checks.push_back({"devices_at_modprobe_return", std::to_string(*expect.at_modprobe_return),
                        actual ? std::to_string(*actual) : "unknown",
                        actual == expect.at_modprobe_return});
  }
  // A flooded console lost records: what was measured is incomplete, so
  // the run cannot pass, whatever the other checks say.
  if (o.console_records_dropped > 0)
    v.checks.push_back(
        {"console_records_dropped", "0", std::to_string(o.console_records_dropped), false});
  if (o.infra_error) {
    v.kind = VerdictKind::error;
    v.reason = *o.infra_error;
    return v;
  }
  if (o.panic || o.oops_line) {
    v.kind = VerdictKind::crash;
    v.reason = o.panic ? *o.panic_line : *o.oops_line;
    if (!o.panic && o.oops_rip)
      v.reason += " at " + *o.oops_rip;
    return v;
  }
  for (const auto& check : v.checks) {
    if (!check.pass) {
      v.kind = VerdictKind::fail;
      if (o.timed_out)
        v.reason = "the boot passed its deadline";
      return v;
    }
  }
  return v;
}

std::optional<VerdictKind> verdict_from_name(std::string_view name) {
  for (auto kind : {VerdictKind::pass, VerdictKind::skip, VerdictKind::flaky, VerdictKind::fail,
                    VerdictKind::crash, VerdictKind::error})
    if (verdict_name(kind) == name)
      return kind;
  return std::nullopt;
}

} // namespace probegate::verdict
