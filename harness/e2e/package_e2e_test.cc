// SPDX-License-Identifier: GPL-2.0-only
// End to end: the .deb. CPack builds it from the release build; `dpkg -i`
// installs it into a scratch root (`--root`, its own dpkg database; the
// libraries it depends on are the host's, hence --force-depends), and the
// binary there runs with the data it carries: --version names it, a
// saved console parses, the man page and completions are in their places,
// and the smoke suite runs from the installed suite file.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace probegate {
namespace {

namespace fs = std::filesystem;

e2e::Captured run(std::vector<std::string> argv, const fs::path& cwd = {}) {
  core::Command command;
  command.argv = std::move(argv);
  command.cwd = cwd;
  command.timeout = std::chrono::minutes(15);
  return e2e::run_captured(command);
}

TEST(PackageE2e, TheDebInstallsIntoAScratchRootAndRunsFromThere) {
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-deb-");
  ASSERT_TRUE(tmp);
  const auto made = run({"cpack", "-G", "DEB", "--config", PROBEGATE_BUILD_DIR "/CPackConfig.cmake",
                         "-B", (tmp->path() / "pkg").string()});
  ASSERT_EQ(made.exit_code, 0) << made.output;
  fs::path deb;
  for (const auto& e : fs::directory_iterator(tmp->path() / "pkg"))
    if (e.path().extension() == ".deb")
      deb = e.path();
  ASSERT_FALSE(deb.empty()) << e2e::leftovers(tmp->path() / "pkg");
  const auto fields = run({"dpkg-deb", "-f", deb.string(), "Package", "Depends"});
  ASSERT_EQ(fields.exit_code, 0) << fields.output;
  EXPECT_NE(fields.output.find("Package: probegate"), std::string::npos) << fields.output;
  EXPECT_NE(fields.output.find("qemu-system-x86"), std::string::npos) << fields.output;
  EXPECT_NE(fields.output.find("libyaml-cpp"), std::string::npos)
      << "dpkg-shlibdeps found the libraries:\n"
      << fields.output;

  const auto root = tmp->path() / "root";
  fs::create_directories(root / "var/lib/dpkg/updates");
  fs::create_directories(root / "var/lib/dpkg/info");
  ASSERT_TRUE(core::write_file_atomic(root / "var/lib/dpkg/status", ""));
  const auto installed =
      run({"dpkg", "--root=" + root.string(), "--force-depends", "-i", deb.string()});
  ASSERT_EQ(installed.exit_code, 0) << installed.output;
  const auto status =
      run({"dpkg-query", "--root=" + root.string(), "-W", "-f=${Status} ${Version}", "probegate"});
  EXPECT_EQ(status.output.rfind("install ok installed ", 0), 0U) << status.output;
  const auto listed = run({"dpkg", "--root=" + root.string(), "-L", "probegate"});
  EXPECT_NE(listed.output.find("/usr/bin/probegate\n"), std::string::npos) << listed.output;
  for (const char* file :
       {"usr/bin/probegate", "usr/share/man/man1/probegate.1.gz",
        "usr/share/bash-completion/completions/probegate",
        "usr/share/zsh/vendor-completions/_probegate", "usr/share/probegate/images/init",
        "usr/share/probegate/guest-modules/slowprobe/slowprobe.c",
        "usr/share/probegate/guest-modules/pgagent/pgagent.c",
        "usr/share/probegate/suites/smoke.yaml", "usr/share/doc/probegate/copyright"})
    EXPECT_TRUE(fs::exists(root / file)) << file;
  const std::string probegate = (root / "usr/bin/probegate").string();
  const auto version = run({probegate, "--version"});
  EXPECT_EQ(version.exit_code, 0) << version.output;
  EXPECT_NE(version.output.find("(data: " + (root / "usr/share/probegate").string() + ")"),
            std::string::npos)
      << "the installed binary uses the installed data:\n"
      << version.output;
  const auto man = run({"man", "-l", (root / "usr/share/man/man1/probegate.1.gz").string()});
  EXPECT_EQ(man.exit_code, 0) << man.output;

  const auto parsed = run({probegate, "parse", "--json", "--devices", "2", "--udev-timeout", "4",
                           PROBEGATE_TESTDATA "/console/6.1-sync-kill.log"});
  const auto json = nlohmann::json::parse(
      parsed.output.substr(std::min(parsed.output.find('{'), parsed.output.size())), nullptr,
      false);
  ASSERT_TRUE(json.is_object()) << parsed.output;
  EXPECT_EQ(json.at("outcome").at("udev_worker_killed"), true);

  // From another directory, as a user would after `dpkg -i`.
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  const auto smoke =
      run({probegate, "run", (root / "usr/share/probegate/suites/smoke.yaml").string(), "--results",
           "results"},
          tmp->path());
  EXPECT_EQ(smoke.exit_code, 0) << smoke.output;
  EXPECT_NE(smoke.output.find("smoke: pass (5 cases"), std::string::npos) << smoke.output;
}

} // namespace
} // namespace probegate
