// SPDX-License-Identifier: GPL-2.0-only
#include "console/boot_log.h"
#include "report/html.h"
#include "report/timeline.h"

#include <algorithm>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <regex>

namespace probegate::report {
namespace {

using verdict::VerdictKind;

console::BootLog sync_kill_log() {
  auto log = console::parse_console_file(PROBEGATE_TESTDATA "/console/6.1-sync-kill.log");
  EXPECT_TRUE(log);
  return log ? *log : console::BootLog{};
}

RunResult sync_kill_run() {
  RunResult r;
  r.spec.udev_timeout_s = 4;
  r.spec.devices = 2;
  r.outcome.devices_expected = 2;
  r.outcome.udev_worker_killed = true;
  r.stage_s["boot"] = 7;
  return r;
}

// A real console (6.1, udev 252, 4 s timeout, 4 s probes): udevd kills the
// loader at 5.97 s, before its probe ends at 6.18 s.
TEST(Timeline, HasTheKillBeforeTheProbeEndsAndTheUdevWindow) {
  const auto t = make_timeline(sync_kill_run(), sync_kill_log());
  std::vector<double> kills;
  for (const auto& m : t.marks)
    if (m.kind == "udev-kill")
      kills.push_back(m.t_s);
  ASSERT_EQ(kills.size(), 2u);
  EXPECT_DOUBLE_EQ(kills[0], 5.966666);
  ASSERT_EQ(t.probes.size(), 2u);
  EXPECT_EQ(t.probes[0].device, "0000:00:02.0");
  EXPECT_DOUBLE_EQ(*t.probes[0].end_s, 6.181289);
  EXPECT_EQ(t.probes[0].result, -4);
  EXPECT_FALSE(t.probes[0].appeared);
  ASSERT_TRUE(t.udev_window_start_s);
  EXPECT_DOUBLE_EQ(*t.udev_window_start_s, 1.967804);
  EXPECT_DOUBLE_EQ(*t.udev_window_end_s, 5.967804);
  EXPECT_EQ(t.udev_window_label, "udev event timeout 4 s (+1 s timer slack)");
  EXPECT_TRUE(std::ranges::is_sorted(t.marks, {}, &Timeline::Mark::t_s));
  const auto kinds = [&] {
    std::string out;
    for (const auto& m : t.marks)
      out += m.kind + " ";
    return out;
  }();
  EXPECT_EQ(kinds, "udevd module-load events udev-warning udev-warning udev-kill udev-kill "
                   "module-returned ready ");
}

double attribute(const std::string& svg, const std::string& element, const std::string& attr) {
  std::smatch m;
  const std::regex re(element + "[^>]*? " + attr + "=\"([0-9.]+)\"");
  EXPECT_TRUE(std::regex_search(svg, m, re)) << element << " " << attr;
  return m.empty() ? -1 : std::stod(m[1]);
}

// A boot with a sync point starts udevd at guest 10 s: the axis starts at
// the whole second before it, not at 0 (eight idle seconds drawn for nothing).
TEST(Timeline, StartsAtTheSyncPoint) {
  auto log = sync_kill_log();
  EXPECT_EQ(make_timeline(sync_kill_run(), log).start_s, 0) << "no sync point: from 0";
  console::ConsoleParser parser;
  parser.feed("[    1.750000] probegate: event=pause-point");
  parser.feed("[    9.989315] probegate: event=synced");
  parser.feed("[   10.009803] probegate: event=udevd-started pid=90");
  parser.feed("[   18.527685] probegate: event=poweroff");
  const auto t = make_timeline(sync_kill_run(), parser.log());
  EXPECT_EQ(t.start_s, 9);
  const auto svg = timeline_svg(t);
  EXPECT_NE(svg.find(">9 s</text>"), std::string::npos) << svg;
  EXPECT_EQ(svg.find(">0 s</text>"), std::string::npos) << svg;
  EXPECT_GT(attribute(svg, "<line class=\"mark udevd\"", "x1"), 170 + 10) << svg;
}

TEST(Timeline, DrawsTheKillLeftOfTheProbesEnd) {
  const auto svg = timeline_svg(make_timeline(sync_kill_run(), sync_kill_log()));
  const double kill_x = attribute(svg, "<line class=\"mark udev-kill\"", "x1");
  const double probe_x = attribute(svg, "<rect class=\"probe failed\"", "x");
  const double probe_w = attribute(svg, "<rect class=\"probe failed\"", "width");
  EXPECT_LT(kill_x, probe_x + probe_w) << svg;
  EXPECT_GT(kill_x, probe_x) << svg;
}

Session hostile_session() {
  Session s;
  s.suite = "smoke";
  s.complete = true;
  for (const char* kernel : {"debian:6.1", "debian:6.12"}) {
    CaseReport c;
    c.id = fmt::format("smoke/<script>alert(1)</script>/{}", kernel);
    c.row = "smoke/<script>alert(1)</script>";
    c.kernel = kernel;
    c.verdict = VerdictKind::fail;
    c.ran = true;
    auto r = sync_kill_run();
    r.spec.expect.bound = 2;
    r.verdict.kind = VerdictKind::fail;
    r.verdict.checks = {{"devices_bound", "2", "0", false}};
    r.outcome.guest_kernel = "6.1 <img src=x onerror=alert(1)> \x1b[31m\xff\xfe";
    c.runs.push_back(r);
    s.cases.push_back(c);
  }
  return s;
}

TEST(Html, EscapesEveryGuestStringAndForbidsScripts) {
  const auto html =
      session_html(hostile_session(), [](const RunResult&) { return sync_kill_log(); });
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(html.find('\x1b'), std::string::npos);
  EXPECT_EQ(html.find("\xff"), std::string::npos);
  EXPECT_NE(html.find("Content-Security-Policy\" content=\"default-src 'none'"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"))
      << "nothing is fetched from the network";
}

TEST(Html, ColoursTheMatrixAndLinksEachCellToItsRun) {
  const auto html = session_html(hostile_session(), [](const RunResult&) { return std::nullopt; });
  EXPECT_NE(html.find("<table class=\"matrix\">"), std::string::npos) << html;
  EXPECT_NE(html.find("<td class=\"fail\"><a href=\"#case-2\">0/2 bound, loader killed (fail)</a>"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("<section id=\"case-2\">"), std::string::npos);
  EXPECT_NE(html.find("class=\"capacity-bound\" data-bound=\"0\" data-expected=\"2\""),
            std::string::npos);
  EXPECT_EQ(html.find("<svg class=\"timeline\""), std::string::npos) << "no console, no timeline";
}

} // namespace
} // namespace probegate::report

namespace probegate::report {
namespace {

TEST(Html, ABisectionShowsItsAnswerAndLinksEachStepsRuns) {
  const auto log = nlohmann::json::parse(R"({
    "format": "probegate-bisect/1",
    "items": ["debian:5.10", "debian:6.1", "debian:<script>x</script>"],
    "steps": [
      {"index": 0, "label": "debian:5.10", "class": "same", "verdict": "pass", "why": "2/2 bound",
       "runs": 1, "differing": 0, "disagreed": false, "dirs": ["/r/b/00-debian_5.10"]},
      {"index": 2, "label": "debian:<script>x</script>", "class": "differs", "verdict": "fail",
       "why": "devices_bound expected 2, actual 0", "runs": 1, "differing": 1,
       "disagreed": false, "dirs": ["/r/b/02-x"]}],
    "answer": {"kind": "found", "last_same": "debian:6.1", "first": "debian:<script>x</script>",
               "certain": true, "steps": 2}})");
  const auto html = bisect_html(log, "/r/b");
  EXPECT_NE(html.find("<th>first that differs</th><td><strong>debian:&lt;script&gt;x&lt;/script&gt;"
                      "</strong></td>"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("<a href=\"00-debian_5.10/result.json\">"), std::string::npos) << html;
  EXPECT_NE(html.find("<tr class=\"fail\"><td>2</td>"), std::string::npos) << html;
  EXPECT_EQ(html.find("<script"), std::string::npos);
  const auto unfinished = bisect_html(nlohmann::json::parse(R"({"items": ["a", "b"]})"), "/r/b");
  EXPECT_NE(unfinished.find("has not finished"), std::string::npos);
}

} // namespace
} // namespace probegate::report
