// SPDX-License-Identifier: GPL-2.0-only
#include "report/kcidb.h"

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
