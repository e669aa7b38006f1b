// SPDX-License-Identifier: GPL-2.0-only
#include "drivers/git_bisect_run.h"

#include "core/files.h"
#include "core/text.h"
#include "drivers/attempts.h"
#include "kernel/source_build.h"
#include "report/run_result.h"

#include <fmt/format.h>
#include <unistd.h>

namespace probegate::drivers {

int git_bisect_exit_code(const std::vector<verdict::VerdictKind>& verdicts, bool bad_if_any) {
  if (verdicts.empty())
    return k_git_skip;
  int bad = 0;
  for (auto v : verdicts) {
    if (v == verdict::VerdictKind::error || v == verdict::VerdictKind::skip)
      return k_git_skip;
    bad += v != verdict::VerdictKind::pass;
  }
  const AttemptPolicy rule{.differs_if_any = bad_if_any};
  return decides(rule, bad, static_cast<int>(verdicts.size())) ? k_git_bad : k_git_good;
}

// `git bisect run probegate bisect-run ...` from a kernel source tree: build
// the checked-out commit incrementally out of tree, boot the case, and answer
// in git's terms (git_bisect_exit_code). Usage errors are 128, which
// aborts the bisection instead of blaming the commit.
int git_bisect_run(const GitBisectRunRequest& b, Environment& env) {
  auto abort_with = [](const core::Error& error) {
    fmt::print(stderr, "probegate: {} error: {} (exit {}: git bisect stops)\n",
               core::kind_name(error.kind), error.message, k_git_abort);
    return k_git_abort;
  };
  const auto policy = attempt_policy(b.repeat, b.bad_if);
  if (!policy)
    return abort_with(policy.error());
  // A commit's repeats restore one group: save it at once. A single boot of
  // each commit's kernel saves nothing.
  env.save_at_first_sight = b.repeat > 1;
  auto spec = spec::to_spec(b.run);
  if (!spec)
    return abort_with(spec.error());
  std::error_code ec;
  const auto source = std::filesystem::current_path(ec);
  if (ec || !std::filesystem::exists(source / "Makefile") ||
      !std::filesystem::exists(source / "Kconfig"))
    return abort_with({core::ErrorKind::usage,
                       fmt::format("bisect-run runs inside a kernel source tree (`git bisect run "
                                   "probegate bisect-run ...`); {} has no Makefile and Kconfig",
                                   source.string())});
  const std::filesystem::path build_dir =
      b.build_dir.empty()
          ? env.cache / "bisect-run" / core::sha256_hex(source.string()).substr(0, 16)
          : std::filesystem::absolute(b.build_dir);
  kernel::SourceBuilder builder(env.runner, env.cache, env.data, env.progress);
  auto built = builder.build_incremental(source, build_dir, b.fragments);
  if (!built) {
    if (built.error().kind == core::ErrorKind::usage)
      return abort_with(built.error());
    if (built.error().kind == core::ErrorKind::interrupted)
      return 130;
    fmt::print(stderr, "probegate: this commit does not build, skipped (exit {}): {}\n", k_git_skip,
               built.error().message);
    return k_git_skip;
  }
  spec->kernel = "tree:" + built->string();
  const auto dir = env.results / fmt::format("bisect-run-{}-{}", core::time_stamp(), ::getpid());
  const auto attempts = run_attempts(
      *spec, dir, *policy,
      [&](const spec::RunSpec& s, const std::filesystem::path& d) { return boot(s, env, d); },
      [](const Attempt& a) { return a.testable(); });
  std::vector<verdict::VerdictKind> verdicts;
  for (const auto& a : attempts) {
    if (a.interrupted())
      return 130;
    if (!a.result && a.result.error().kind == core::ErrorKind::usage)
      return abort_with(a.result.error());
    if (!a.result) {
      fmt::print(stderr, "probegate: {}\n", a.result.error().message);
      verdicts.push_back(verdict::VerdictKind::error);
      break;
    }
    fmt::print("{}", report::render_text(*a.result));
    verdicts.push_back(a.result->verdict.kind);
  }
  const int code = git_bisect_exit_code(verdicts, policy->differs_if_any);
  fmt::print("probegate: bisect-run: {} (exit {})\n",
             code == k_git_good  ? "good"
             : code == k_git_bad ? "bad"
                                 : "cannot test, skip",
             code);
  return code;
}

} // namespace probegate::drivers
