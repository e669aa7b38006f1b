// SPDX-License-Identifier: GPL-2.0-only
// End to end: `probegate run` on real boots.
#include "core/files.h"
#include "proc/process_runner.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace probegate {
namespace {

namespace fs = std::filesystem;

TEST(RunE2e, WrongExpectationExits1AndJunitNamesTheCheck) {
  if (!fs::exists("/usr/bin/qemu-system-x86_64"))
    GTEST_SKIP() << "qemu-system-x86_64 is not installed";
  auto runner = proc::make_process_runner();
  core::Command fetch;
  fetch.argv = {PROBEGATE_BINARY, "kernels", "fetch", "debian:6.1"};
  if (auto fetched = runner->run(fetch); !fetched || !fetched->ok())
    GTEST_SKIP() << "cannot fetch debian:6.1 (no network to Debian's mirror?)";
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-run-");
  ASSERT_TRUE(tmp);
  core::Command run;
  run.argv = {PROBEGATE_BINARY,
              "run",
              PROBEGATE_TESTDATA "/suites/one-wrong.yaml",
              "--jobs",
              "2",
              "--results",
              tmp->path().string()};
  std::string output;
  auto ran = runner->run(run, [&](std::string_view line) {
    output.append(line).push_back('\n');
    return proc::LineAction::keep_going;
  });
  ASSERT_TRUE(ran);
  EXPECT_EQ(ran->exit_code, 1) << output;
  fs::path session;
  for (const auto& e : fs::directory_iterator(tmp->path()))
    session = e.path();
  ASSERT_FALSE(session.empty());
  EXPECT_FALSE(fs::exists(session / "INCOMPLETE"));
  const auto junit = *core::read_file(session / "junit.xml");
  EXPECT_NE(junit.find("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""), std::string::npos)
      << junit;
  EXPECT_NE(junit.find("message=\"devices_bound: expected 2, actual 0\""), std::string::npos)
      << junit;
  core::Command xmllint;
  xmllint.argv = {"xmllint", "--noout", "--schema", PROBEGATE_TESTDATA "/junit/junit.xsd",
                  (session / "junit.xml").string()};
  auto valid = runner->run(xmllint);
  ASSERT_TRUE(valid) << valid.error().message;
  EXPECT_EQ(valid->exit_code, 0) << "junit.xml does not match its schema:\n" << valid->tail;
  const auto summary = nlohmann::json::parse(*core::read_file(session / "summary.json"));
  EXPECT_TRUE(summary.at("complete").get<bool>());
  EXPECT_EQ(summary.at("verdict"), "fail");
  EXPECT_TRUE(fs::exists(session / "one-wrong/right/result.json"));
  EXPECT_TRUE(fs::exists(session / "one-wrong/wrong/console.log"));
}

TEST(RunE2e, KnobsSuitePassesOnDebian61) {
  if (!fs::exists("/usr/bin/qemu-system-x86_64"))
    GTEST_SKIP() << "qemu-system-x86_64 is not installed";
  auto runner = proc::make_process_runner();
  core::Command fetch;
  fetch.argv = {PROBEGATE_BINARY, "kernels", "fetch", "debian:6.1"};
  if (auto fetched = runner->run(fetch); !fetched || !fetched->ok())
    GTEST_SKIP() << "cannot fetch debian:6.1 (no network to Debian's mirror?)";
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-run-");
  ASSERT_TRUE(tmp);
  core::Command run;
  run.argv = {PROBEGATE_BINARY, "run", PROBEGATE_SOURCE_DIR "/suites/knobs.yaml", "--results",
              tmp->path().string()};
  std::string output;
  auto ran = runner->run(run, [&](std::string_view line) {
    output.append(line).push_back('\n');
    return proc::LineAction::keep_going;
  });
  ASSERT_TRUE(ran);
  EXPECT_EQ(ran->exit_code, 0) << output;
  fs::path session;
  for (const auto& e : fs::directory_iterator(tmp->path()))
    session = e.path();
  const auto summary = nlohmann::json::parse(*core::read_file(session / "summary.json"));
  EXPECT_EQ(summary.at("counts").at("pass"), 8) << output;
}

TEST(RunE2e, MalformedSuiteExits2BeforeAnythingBoots) {
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-run-");
  ASSERT_TRUE(tmp);
  const auto suite = tmp->path() / "bad.yaml";
  ASSERT_TRUE(
      core::write_file_atomic(suite, "cases:\n  - id: x\n    devices: 2\n    expect_bound: 3\n"));
  auto runner = proc::make_process_runner();
  core::Command run;
  run.argv = {PROBEGATE_BINARY, "run", suite.string(), "--results", (tmp->path() / "r").string()};
  std::string output;
  auto ran = runner->run(run, [&](std::string_view line) {
    output.append(line).push_back('\n');
    return proc::LineAction::keep_going;
  });
  ASSERT_TRUE(ran);
  EXPECT_EQ(ran->exit_code, 2);
  EXPECT_NE(output.find(suite.string() + ":2:5"), std::string::npos) << output;
  EXPECT_FALSE(fs::exists(tmp->path() / "r")) << "nothing is written for bad input";
}

} // namespace
} // namespace probegate
