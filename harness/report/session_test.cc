// SPDX-License-Identifier: GPL-2.0-only
#include "report/session.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace probegate::report {
namespace {

using verdict::VerdictKind;

Session sample() {
  Session s;
  s.suite = "knobs";
  s.wall_s = 12.5;
  CaseReport pass{"knobs/a", "k.yaml:3:5", VerdictKind::pass, "", {}, "/r/knobs/a", true};
  RunResult run;
  run.wall_s = 7;
  run.dir = "/nonexistent/run";
  run.verdict.kind = VerdictKind::fail;
  run.verdict.checks = {{"devices_bound", "0", "2", false}, {"booted", "yes", "yes", true}};
  run.outcome.devices_bound = 2;
  run.outcome.devices_expected = 2;
  CaseReport fail{"knobs/<b>&\"c\"", "k.yaml:6:5", VerdictKind::fail, "", {run}, "/r/b", true};
  CaseReport skip{"knobs/d", "k.yaml:9:5", VerdictKind::skip, "5.10 lacks it \x1b[31m", {},
                  "",        false};
  CaseReport error{"knobs/e", "k.yaml:12:5", VerdictKind::error, "QEMU died \xFF", {}, "", true};
  s.cases = {pass, fail, skip, error};
  return s;
}

TEST(Junit, CountsAndNamesTheFailedCheck) {
  const auto xml = junit_xml(sample());
  EXPECT_NE(xml.find("tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\""), std::string::npos)
      << xml;
  EXPECT_NE(xml.find("message=\"devices_bound: expected 0, actual 2\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("name=\"knobs/&lt;b&gt;&amp;&quot;c&quot;\""), std::string::npos) << xml;
  EXPECT_EQ(xml.find('\x1b'), std::string::npos) << "escape sequences reach no report";
  EXPECT_EQ(xml.find("\xFF"), std::string::npos) << "invalid UTF-8 reaches no report";
  EXPECT_NE(xml.find("<skipped message=\"5.10 lacks it  [31m\"/>"), std::string::npos) << xml;
}

TEST(Summary, IsValidJsonWithEveryCase) {
  const auto j = nlohmann::json::parse(summary_json(sample()));
  EXPECT_EQ(j.at("suite"), "knobs");
  EXPECT_EQ(j.at("verdict"), "error");
  EXPECT_EQ(j.at("cases").size(), 4u);
  EXPECT_EQ(j.at("counts").at("fail"), 1);
  EXPECT_EQ(j.at("cases")[1].at("runs")[0].at("failed_checks"),
            "devices_bound: expected 0, actual 2");
  EXPECT_FALSE(j.at("complete").get<bool>());
}

TEST(Table, OneRowPerCase) {
  const auto table = render_table(sample());
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 5);
  EXPECT_NE(table.find("knobs/d"), std::string::npos);
}

} // namespace
} // namespace probegate::report

namespace probegate::report {
namespace {

TEST(RenderText, GuestTextReachesNoTerminalRaw) {
  RunResult r;
  r.verdict.kind = verdict::VerdictKind::crash;
  r.verdict.reason = "Kernel panic - \x1b[2J\x1b]0;owned\x07 \xFF";
  const auto text = render_text(r);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_EQ(text.find('\x07'), std::string::npos);
  EXPECT_EQ(text.find("\xFF"), std::string::npos);
  EXPECT_NE(text.find("Kernel panic"), std::string::npos);
}

} // namespace
} // namespace probegate::report
