// SPDX-License-Identifier: GPL-2.0-only
// End to end: `git bisect run probegate bisect-run` names the commit that
// planted a regression in the kernel's async-probe path (issue 6). The
// history (tools/kernel-history.sh) is made once from Debian's
// linux-source-6.1 and kept in the cache; each bisect step is an incremental
// out-of-tree build of the commit and one boot. The build dir starts as a
// copy of the `kernels build` one (tools/seed-build.sh), so the first step
// rebuilds the few files that commit changed, not the whole kernel.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <sstream>

namespace probegate {
namespace {

namespace fs = std::filesystem;

e2e::Captured sh(const std::string& script, const fs::path& cwd = {}) {
  core::Command c;
  c.argv = {"bash", "-c", script};
  c.cwd = cwd;
  c.timeout = std::chrono::minutes(60);
  return e2e::run_captured(c);
}

TEST(BisectRunE2e, GitBisectRunNamesThePlantedCommit) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  if (!fs::exists("/usr/bin/git"))
    PROBEGATE_E2E_SKIP() << "git is not installed";
  // The 6.1 source, unpacked by `kernels build` (which also proves the
  // tinyconfig build works before the bisection relies on it).
  const auto built = e2e::run_probegate({"kernels", "build", "--source", "linux-source-6.1"}, {},
                                        e2e::k_kernel_build_timeout);
  ASSERT_EQ(built.exit_code, 0) << built.output;
  const auto tree = built.output.find("tree:");
  ASSERT_NE(tree, std::string::npos) << built.output;
  const fs::path built_dir =
      built.output.substr(tree + 5, built.output.find('\n', tree) - tree - 5);
  const auto source = sh("ls -d \"${PROBEGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/probegate}\""
                         "/sources/linux-source-6.1_*/ | sort -V | tail -1");
  ASSERT_EQ(source.exit_code, 0) << source.output;
  fs::path src = source.output.substr(0, source.output.find('\n'));
  if (src.filename().empty()) // ls -d .../ prints the trailing slash
    src = src.parent_path();
  ASSERT_TRUE(fs::exists(src / "Makefile")) << src;
  const fs::path history = src.parent_path().parent_path() / "test-history" / src.filename();
  if (!fs::exists(history / ".git")) {
    const auto script =
        sh(std::string(PROBEGATE_SOURCE_DIR "/tools/kernel-history.sh ") +
           core::shell_quote(src.string()) + " " + core::shell_quote(history.string()));
    ASSERT_EQ(script.exit_code, 0) << script.output;
  }
  const fs::path build_dir = history.string() + ".build";
  if (!fs::exists(build_dir / "vmlinux")) {
    const auto seeded =
        sh(std::string(PROBEGATE_SOURCE_DIR "/tools/seed-build.sh ") +
           core::shell_quote(built_dir.string()) + " " + core::shell_quote(history.string()) + " " +
           core::shell_quote(build_dir.string()));
    ASSERT_EQ(seeded.exit_code, 0) << seeded.output;
  }
  // A bisection killed half-way leaves a detached HEAD: read every commit.
  const auto log =
      sh("git bisect reset >/dev/null 2>&1; git log --all --format='%H %s' --reverse", history);
  ASSERT_EQ(log.exit_code, 0) << log.output;
  std::string good, planted, bad;
  std::istringstream lines(log.output);
  for (std::string line; std::getline(lines, line);) {
    const auto hash = line.substr(0, 40);
    if (good.empty())
      good = hash;
    if (line.find("planted regression") != std::string::npos)
      planted = hash;
    bad = hash;
  }
  ASSERT_FALSE(planted.empty()) << log.output;
  const std::string run = std::string(PROBEGATE_BINARY) + " bisect-run --build-dir " +
                          core::shell_quote(build_dir.string()) +
                          " --async module-param --devices 2 --probe-delay-ms 4000 --udev-timeout 3"
                          " --expect-bound 2";
  const auto bisected = sh("git bisect reset >/dev/null 2>&1; git bisect start " + bad + " " +
                               good + " && git bisect run " + run +
                               "; rc=$?; git bisect reset >/dev/null 2>&1;"
                               " exit $rc",
                           history);
  ASSERT_EQ(bisected.exit_code, 0) << bisected.output;
  EXPECT_NE(bisected.output.find(planted + " is the first bad commit"), std::string::npos)
      << bisected.output;
}

} // namespace
} // namespace probegate
