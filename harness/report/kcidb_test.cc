// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"
#include "report/kcidb.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <regex>

namespace probegate::report {
namespace {

using verdict::VerdictKind;

Session two_kernels() {
  Session s;
  s.suite = "knobs";
  s.dir = "/r/knobs-20261130-1";
  int n = 0;
  for (const auto& [kernel, verdict] :
       std::vector<std::pair<std::string, VerdictKind>>{{"debian:6.1", VerdictKind::pass},
                                                        {"debian:6.1", VerdictKind::error},
                                                        {"debian:5.10", VerdictKind::skip},
                                                        {"tree:/src/linux", VerdictKind::crash}}) {
    CaseReport c;
    c.id = fmt::format("knobs/case{}/{}", n++, kernel);
    c.kernel = kernel;
    c.verdict = verdict;
    if (verdict != VerdictKind::skip) {
      RunResult r;
      r.kernel_release = kernel == "debian:6.1" ? "6.1.0-57-amd64" : "6.1.0-rc1";
      r.wall_s = 7.5;
      c.runs.push_back(r);
    }
    s.cases.push_back(c);
  }
  return s;
}

// A checkout against KCIDB's own v5.3 schema (testdata/kcidb/, its source
// noted there): the required fields are there, and every field is one the
// schema names, of its type, matching its pattern. (The e2e report test
// runs the full Draft-07 validator on a real session's file.)
void expect_schema_valid_checkout(const nlohmann::json& checkout) {
  static const auto schema =
      nlohmann::json::parse(*core::read_file(PROBEGATE_TESTDATA "/kcidb/v05_03.schema.json"));
  const auto& def = schema.at("$defs").at("checkout");
  for (const auto& required : def.at("required"))
    EXPECT_TRUE(checkout.contains(required.get<std::string>())) << required;
  for (const auto& [key, value] : checkout.items()) {
    ASSERT_TRUE(def.at("properties").contains(key)) << "the schema has no checkout field " << key;
    const auto& property = def.at("properties").at(key);
    const auto type = property.value("type", "");
    EXPECT_TRUE((type == "string" && value.is_string()) ||
                (type == "boolean" && value.is_boolean()) ||
                (type == "object" && value.is_object()))
        << key << " should be a " << type << ", is " << value;
    if (property.contains("pattern")) {
      EXPECT_TRUE(std::regex_search(value.get<std::string>(),
                                    std::regex(property.at("pattern").get<std::string>())))
          << key << " = " << value << " against " << property.at("pattern");
    }
  }
}

TEST(Kcidb, OneCheckoutAndBuildPerKernelAndATestPerCase) {
  const auto j = kcidb_json(two_kernels(), "probegate_ci");
  EXPECT_EQ(j.at("version"), (nlohmann::json{{"major", 5}, {"minor", 3}}));
  ASSERT_EQ(j.at("checkouts").size(), 3u);
  ASSERT_EQ(j.at("builds").size(), 3u);
  ASSERT_EQ(j.at("tests").size(), 4u);
  EXPECT_EQ(j.at("checkouts")[0].at("id"), "probegate_ci:debian:6.1@6.1.0-57-amd64");
  EXPECT_EQ(j.at("checkouts")[1].at("valid"), false) << "5.10 was never resolved";
  const auto& tests = j.at("tests");
  EXPECT_EQ(tests[0].at("status"), "PASS");
  EXPECT_EQ(tests[1].at("status"), "MISS") << "an infrastructure error is never FAIL";
  EXPECT_EQ(tests[2].at("status"), "SKIP");
  EXPECT_EQ(tests[3].at("status"), "FAIL");
  EXPECT_EQ(tests[0].at("build_id"), j.at("builds")[0].at("id"));
  EXPECT_EQ(tests[3].at("path"), "probegate.knobs.case3.tree_.src.linux");
  EXPECT_EQ(tests[0].at("id"), "probegate_ci:knobs-20261130-1/knobs/case0/debian:6.1");
  // The schema's patterns (testdata/kcidb/v05_03.schema.json).
  const std::regex path(R"(^([a-zA-Z0-9_-]+(\.[a-zA-Z0-9_-]+)*)?$)");
  for (const auto& t : tests)
    EXPECT_TRUE(std::regex_match(t.at("path").get<std::string>(), path)) << t.at("path");
  for (const auto& checkout : j.at("checkouts")) {
    expect_schema_valid_checkout(checkout);
    EXPECT_FALSE(checkout.contains("git_commit_hash")) << "no run recorded a commit";
  }
}

TEST(Kcidb, AKernelFromAGitCheckoutCarriesItsCommit) {
  Session s = two_kernels(); // its tree:/src/linux ran from a checkout with local changes
  const std::string head = "9b0bb61c6f1d2e3a4b5c6d7e8f90a1b2c3d4e5f6";
  for (auto& c : s.cases)
    for (auto& r : c.runs)
      if (c.kernel == "tree:/src/linux")
        r.kernel_git = kernel::GitCheckout{
            .commit = head,
            .dirty = true,
            .repository_url = "https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git",
            .branch = "linux-6.1.y"};
  // A build: kernel from a detached, clean checkout with no upstream.
  CaseReport built;
  built.id = "knobs/case4/build:/src/bisect";
  built.kernel = "build:/src/bisect";
  built.verdict = VerdictKind::pass;
  RunResult run;
  run.kernel_release = "6.1.192";
  run.kernel_git = kernel::GitCheckout{
      .commit = std::string(40, 'a'), .dirty = false, .repository_url = "", .branch = ""};
  built.runs.push_back(run);
  s.cases.push_back(built);

  const auto j = kcidb_json(s, "probegate");
  ASSERT_EQ(j.at("checkouts").size(), 4u);
  const auto& tree = j.at("checkouts")[2];
  EXPECT_EQ(tree.at("tree_name"), "tree");
  EXPECT_EQ(tree.at("git_commit_hash"), head);
  EXPECT_EQ(tree.at("git_repository_url"),
            "https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git");
  EXPECT_EQ(tree.at("git_repository_branch"), "linux-6.1.y");
  EXPECT_EQ(tree.at("misc").at("git_dirty"), true);
  const auto& bisected = j.at("checkouts")[3];
  EXPECT_EQ(bisected.at("tree_name"), "build");
  EXPECT_EQ(bisected.at("git_commit_hash"), std::string(40, 'a'));
  EXPECT_FALSE(bisected.contains("git_repository_url")) << "no upstream: no URL, no branch";
  EXPECT_FALSE(bisected.contains("git_repository_branch"));
  EXPECT_EQ(bisected.at("misc").at("git_dirty"), false);
  EXPECT_FALSE(j.at("checkouts")[0].contains("git_commit_hash")) << "a Debian package";
  for (const auto& checkout : j.at("checkouts"))
    expect_schema_valid_checkout(checkout);

  // The check can fail: an abbreviated hash breaks the schema's pattern.
  nlohmann::json abbreviated = tree;
  abbreviated["git_commit_hash"] = "9b0bb61";
  EXPECT_NONFATAL_FAILURE(expect_schema_valid_checkout(abbreviated), "git_commit_hash = ");
}

TEST(Kcidb, TheOriginFollowsKcidbsRule) {
  EXPECT_TRUE(check_kcidb_origin("probegate_ci2"));
  for (const char* bad : {"", "Probegate", "probe-gate", "a b", "x:y"}) {
    auto ok = check_kcidb_origin(bad);
    ASSERT_FALSE(ok) << bad;
    EXPECT_EQ(ok.error().kind, core::ErrorKind::usage);
    EXPECT_NE(ok.error().message.find("--kcidb-origin"), std::string::npos);
  }
}

} // namespace
} // namespace probegate::report
