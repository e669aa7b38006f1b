// SPDX-License-Identifier: GPL-2.0-only
// End to end: `probegate run` on real boots.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace probegate {
namespace {

namespace fs = std::filesystem;

class RunE2e : public ::testing::Test {
protected:
  void SetUp() override {
    auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-run-");
    ASSERT_TRUE(tmp);
    m_tmp.emplace(std::move(*tmp));
  }
  std::optional<core::TempDir> m_tmp;
};

TEST_F(RunE2e, WrongExpectationExits1AndJunitNamesTheCheck) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  const auto ran = e2e::run_probegate({"run", PROBEGATE_TESTDATA "/suites/one-wrong.yaml", "--jobs",
                                       "2", "--results", m_tmp->path().string()});
  EXPECT_EQ(ran.exit_code, 1) << ran.output;
  const fs::path session = e2e::only_session(m_tmp->path());
  ASSERT_FALSE(session.empty());
  EXPECT_FALSE(fs::exists(session / "INCOMPLETE"));
  const auto junit = *core::read_file(session / "junit.xml");
  EXPECT_NE(junit.find("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""), std::string::npos)
      << junit;
  EXPECT_NE(junit.find("message=\"devices_bound: expected 2, actual 0\""), std::string::npos)
      << junit;
  auto runner = proc::make_process_runner();
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

TEST_F(RunE2e, KnobsSuitePassesOnDebian61) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  const auto ran = e2e::run_probegate(
      {"run", PROBEGATE_SOURCE_DIR "/suites/knobs.yaml", "--results", m_tmp->path().string()});
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  const auto summary =
      nlohmann::json::parse(*core::read_file(e2e::only_session(m_tmp->path()) / "summary.json"));
  EXPECT_EQ(summary.at("counts").at("pass"), 8) << ran.output;
}

TEST_F(RunE2e, MalformedSuiteExits2BeforeAnythingBoots) {
  const auto suite = m_tmp->path() / "bad.yaml";
  ASSERT_TRUE(
      core::write_file_atomic(suite, "cases:\n  - id: x\n    devices: 2\n    expect_bound: 3\n"));
  const auto ran =
      e2e::run_probegate({"run", suite.string(), "--results", (m_tmp->path() / "r").string()});
  EXPECT_EQ(ran.exit_code, 2);
  EXPECT_NE(ran.output.find(suite.string() + ":2:5"), std::string::npos) << ran.output;
  EXPECT_FALSE(fs::exists(m_tmp->path() / "r")) << "nothing is written for bad input";
}

} // namespace
} // namespace probegate
