// SPDX-License-Identifier: GPL-2.0-only
// End to end: `probegate run` on real boots.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <map>
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

// The facts of a run that do not depend on how long the host took.
nlohmann::json facts(const fs::path& run_dir) {
  const auto r = nlohmann::json::parse(*core::read_file(run_dir / "result.json"));
  const auto& o = r.at("outcome");
  nlohmann::json kills = nlohmann::json::array();
  for (const auto& k : o.at("udev_kills"))
    kills.push_back({k.at("device"), k.at("loading_module"), k.at("signal")});
  nlohmann::json probes = nlohmann::json::array();
  for (const auto& p : o.at("probes"))
    probes.push_back({p.at("device"), p.at("result")});
  return {{"verdict", r.at("verdict")},
          {"checks", r.at("checks")},
          {"booted", o.at("booted")},
          {"devices_bound", o.at("devices_bound")},
          {"probe_failures", o.at("probe_failures")},
          {"udev_worker_killed", o.at("udev_worker_killed")},
          {"udev_kills", kills},
          {"probes", probes},
          {"kernel_cmdline", r.at("kernel_cmdline")}};
}

// Every case of a summary.json: id -> the facts of its last run.
std::map<std::string, nlohmann::json> case_facts(const fs::path& session) {
  const auto summary = nlohmann::json::parse(*core::read_file(session / "summary.json"));
  std::map<std::string, nlohmann::json> out;
  for (const auto& c : summary.at("cases"))
    out[c.at("id").get<std::string>()] = facts(c.at("runs").back().at("dir").get<std::string>());
  return out;
}

TEST_F(RunE2e, KnobsSuitePassesOnDebian61AndItsThreeShardsMergeToTheSameRun) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  const auto whole = m_tmp->path() / "whole";
  const auto ran = e2e::run_probegate(
      {"run", PROBEGATE_SOURCE_DIR "/suites/knobs.yaml", "--results", whole.string()});
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  const auto whole_session = e2e::only_session(whole);
  const auto summary = nlohmann::json::parse(*core::read_file(whole_session / "summary.json"));
  EXPECT_EQ(summary.at("counts").at("pass"), 8) << ran.output;

  // Three CI jobs, balanced by the whole run's wall times; the second finds
  // its place as a GitLab job does.
  const auto shards = m_tmp->path() / "shards";
  std::vector<std::string> merge = {"merge"};
  size_t sharded_cases = 0;
  for (int i = 1; i <= 3; ++i) {
    const auto results = shards / std::to_string(i);
    const auto shard = e2e::run_probegate(
        {"run", PROBEGATE_SOURCE_DIR "/suites/knobs.yaml", "--shard",
         i == 2 ? "auto" : fmt::format("{}/3", i), "--durations",
         (whole_session / "summary.json").string(), "--results", results.string()},
        i == 2 ? std::map<std::string, std::string>{{"CI_NODE_INDEX", "2"}, {"CI_NODE_TOTAL", "3"}}
               : std::map<std::string, std::string>{});
    EXPECT_EQ(shard.exit_code, 0) << shard.output;
    const auto session = e2e::only_session(results);
    EXPECT_NE(session.filename().string().find(fmt::format("shard{}of3", i)), std::string::npos)
        << session;
    const auto j = nlohmann::json::parse(*core::read_file(session / "summary.json"));
    EXPECT_GE(j.at("cases").size(), 1u) << "longest first: no shard of 8 cases in 3 is empty";
    sharded_cases += j.at("cases").size();
    merge.push_back(session.string());
  }
  EXPECT_EQ(sharded_cases, 8u) << "every case in exactly one shard";

  // One shard lost: the merge says which, keeps INCOMPLETE and exits 3.
  const auto partial = m_tmp->path() / "partial";
  const auto lost = e2e::run_probegate({"merge", merge[1], merge[3], "--out", partial.string()});
  EXPECT_EQ(lost.exit_code, 3) << lost.output;
  EXPECT_NE(lost.output.find("missing shards: 2"), std::string::npos) << lost.output;
  EXPECT_TRUE(fs::exists(partial / "INCOMPLETE"));
  // A shard given twice is bad input.
  const auto twice =
      e2e::run_probegate({"merge", merge[1], merge[1], "--out", (m_tmp->path() / "x").string()});
  EXPECT_EQ(twice.exit_code, 2) << twice.output;
  EXPECT_NE(twice.output.find("shard 1/3 is given twice"), std::string::npos) << twice.output;

  const auto merged = m_tmp->path() / "merged";
  merge.insert(merge.end(), {"--out", merged.string()});
  const auto joined = e2e::run_probegate(merge);
  EXPECT_EQ(joined.exit_code, 0) << joined.output;
  EXPECT_FALSE(fs::exists(merged / "INCOMPLETE"));
  const auto merged_summary = nlohmann::json::parse(*core::read_file(merged / "summary.json"));
  std::vector<std::string> whole_ids, merged_ids;
  for (const auto& c : summary.at("cases"))
    whole_ids.push_back(c.at("id"));
  for (const auto& c : merged_summary.at("cases"))
    merged_ids.push_back(c.at("id"));
  EXPECT_EQ(merged_ids, whole_ids) << "the suite's order";
  EXPECT_EQ(merged_summary.at("counts"), summary.at("counts"));
  EXPECT_EQ(case_facts(merged), case_facts(whole_session));
  EXPECT_TRUE(fs::exists(merged / "junit.xml"));
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

// `man -l` renders the page `probegate man` prints, and groff finds nothing
// to warn about in it.
TEST_F(RunE2e, TheManPageRendersWithManAndGroffWithoutWarnings) {
  const auto page = m_tmp->path() / "probegate.1";
  const auto made = e2e::run_probegate({"man"});
  ASSERT_EQ(made.exit_code, 0) << made.output;
  ASSERT_TRUE(core::write_file_atomic(page, made.output));
  core::Command man;
  man.argv = {"man", "-l", page.string()};
  man.env = {{"MANWIDTH", "100"}, {"MANPAGER", "cat"}, {"PAGER", "cat"}};
  const auto shown = e2e::run_captured(man);
  EXPECT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_NE(shown.output.find("probegate run suite"), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("--udev-timeout-via"), std::string::npos) << shown.output;
  core::Command groff;
  groff.argv = {"groff", "-man", "-Tutf8", "-ww", "-z", page.string()};
  const auto warned = e2e::run_captured(groff);
  EXPECT_EQ(warned.exit_code, 0) << warned.output;
  EXPECT_EQ(warned.output, "") << "groff's warnings";
}

// The bash completion, loaded in a real bash, completes a subcommand, an
// option and an option's choices.
TEST_F(RunE2e, BashCompletesCommandsOptionsAndChoices) {
  const auto script = m_tmp->path() / "probegate.bash";
  const auto made = e2e::run_probegate({"completion", "bash"});
  ASSERT_EQ(made.exit_code, 0) << made.output;
  ASSERT_TRUE(core::write_file_atomic(script, made.output));
  auto complete = [&](const std::string& line) {
    core::Command bash;
    bash.argv = {"bash", "-c",
                 fmt::format("source '{}'; COMP_WORDS=({}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); "
                             "_probegate; printf '%s\n' \"${{COMPREPLY[@]}}\" | sort",
                             script.string(), line)};
    return e2e::run_captured(bash).output;
  };
  EXPECT_EQ(complete("probegate me"), "merge\n");
  EXPECT_EQ(complete("probegate boot --ini"), "--init\n");
  EXPECT_EQ(complete("probegate boot --init ''"), "agent\nsystemd\n");
  EXPECT_EQ(complete("probegate kernels f"), "fetch\n");
  EXPECT_EQ(complete("probegate boot --udev-timeout-via cmdline-"), "cmdline-rd\n");
}

} // namespace
} // namespace probegate
