// SPDX-License-Identifier: GPL-2.0-only
#include "drivers/attempts.h"

#include <fmt/format.h>

namespace probegate::drivers {

namespace fs = std::filesystem;

core::Result<AttemptPolicy> attempt_policy(int repeat, std::string_view bad_if) {
  if (repeat < 1 || (bad_if != "any" && bad_if != "majority"))
    return core::usage_error("--repeat must be at least 1 and --bad-if any or majority");
  return AttemptPolicy{.repeat = repeat, .retries = 1, .differs_if_any = bad_if == "any"};
}

fs::path repeat_dir(const fs::path& dir, const AttemptPolicy& policy, int k) {
  return policy.repeat == 1 ? dir : dir / fmt::format("repeat-{}", k);
}

fs::path retry_dir(const fs::path& attempt, int r) {
  return attempt / fmt::format("retry-{}", r);
}

bool decides(const AttemptPolicy& policy, int differing, int runs) {
  return policy.differs_if_any ? differing > 0 : 2 * differing > runs;
}

namespace {

// Infrastructure trouble is worth another boot; what the kernel did, an
// interrupt or bad input is not.
bool worth_retrying(const core::Result<report::RunResult>& result) {
  if (result)
    return result->verdict.kind == verdict::VerdictKind::error;
  return result.error().kind == core::ErrorKind::infra;
}

} // namespace

std::vector<Attempt> run_attempts(const spec::RunSpec& spec, const fs::path& dir,
                                  const AttemptPolicy& policy, const CaseRunner& runner,
                                  const std::function<bool(const Attempt&)>& go_on) {
  std::vector<Attempt> out;
  for (int k = 1; k <= policy.repeat; ++k) {
    Attempt a{.result = {}, .retried = 0, .dir = repeat_dir(dir, policy, k)};
    a.result = runner(spec, a.dir);
    while (a.retried < policy.retries && worth_retrying(a.result)) {
      ++a.retried;
      a.result = runner(spec, retry_dir(a.dir, a.retried));
    }
    out.push_back(std::move(a));
    if (out.back().interrupted() || out.back().host_lost() || (go_on && !go_on(out.back())))
      break;
  }
  return out;
}

} // namespace probegate::drivers
