// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"
#include "report/session.h"

#include <algorithm>
#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace probegate::report {
namespace {

using verdict::VerdictKind;

Session sample() {
  Session s;
  s.suite = "knobs";
  s.wall_s = 12.5;
  CaseReport pass{"knobs/a", "k.yaml:3:5", VerdictKind::pass, "", {}, "/r/knobs/a", true, "", ""};
  RunResult run;
  run.wall_s = 7;
  run.dir = "/nonexistent/run";
  run.verdict.kind = VerdictKind::fail;
  run.verdict.checks = {{"devices_bound", "0", "2", false}, {"booted", "yes", "yes", true}};
  run.outcome.devices_bound = 2;
  run.outcome.devices_expected = 2;
  run.spec.userspace = "kernel";
  run.userspace_suite = "trixie";
  run.outcome.udev_version = 257;
  CaseReport fail{
      "knobs/<b>&\"c\"", "k.yaml:6:5", VerdictKind::fail, "", {run}, "/r/b", true, "", ""};
  CaseReport skip{
      "knobs/d", "k.yaml:9:5", VerdictKind::skip, "5.10 lacks it \x1b[31m", {}, "", false, "", ""};
  CaseReport error{"knobs/e", "k.yaml:12:5", VerdictKind::error, "QEMU died \xFF", {}, "", true, "",
                   ""};
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
  // Each run says which user space it booted, as its result.json does.
  const auto& userspace = j.at("cases")[1].at("runs")[0].at("userspace");
  EXPECT_EQ(userspace.at("ref"), "kernel");
  EXPECT_EQ(userspace.at("suite"), "trixie");
  EXPECT_EQ(userspace.at("udev"), 257);
}

TEST(Table, OneRowPerCase) {
  const auto table = render_table(sample());
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 5);
  EXPECT_NE(table.find("knobs/d"), std::string::npos);
}

// Two kernels, one knob each: a bound/killed cell, a skip cell, a failure.
Session two_kernels() {
  Session s;
  s.suite = "kk";
  auto booted = [](int bound, bool killed, VerdictKind v) {
    RunResult r;
    r.spec.devices = 2;
    r.kernel_release = "6.1.0-56-amd64";
    r.stage_s["boot"] = 7;
    r.outcome.devices_bound = bound;
    r.outcome.udev_worker_killed = killed;
    r.verdict.kind = v;
    return r;
  };
  RunResult skipped;
  skipped.kernel_release = "5.10.0-46-amd64";
  skipped.verdict.kind = VerdictKind::skip;
  auto report = [](std::string id, std::string row, std::string kernel, VerdictKind v,
                   std::string reason, std::vector<RunResult> runs) {
    CaseReport c;
    c.id = std::move(id);
    c.row = std::move(row);
    c.kernel = std::move(kernel);
    c.verdict = v;
    c.reason = std::move(reason);
    c.runs = std::move(runs);
    c.ran = true;
    return c;
  };
  s.cases = {
      report("kk/sync/debian-5.10", "kk/sync", "debian:5.10", VerdictKind::pass, "",
             {booted(0, true, VerdictKind::pass)}),
      report("kk/sync/debian-6.1", "kk/sync", "debian:6.1", VerdictKind::fail, "",
             {booted(1, true, VerdictKind::fail)}),
      report("kk/default/debian-5.10", "kk/default", "debian:5.10", VerdictKind::skip,
             "the kernel lacks module.async_probe | x", {skipped}),
      report("kk/default/debian-6.1", "kk/default", "debian:6.1", VerdictKind::pass, "",
             {booted(2, false, VerdictKind::pass)}),
  };
  return s;
}

TEST(KnobTable, RowsAreCasesColumnsAreKernels) {
  const auto t = knob_table(two_kernels());
  EXPECT_EQ(t.kernels, (std::vector<std::string>{"debian:5.10", "debian:6.1"}));
  EXPECT_EQ(t.rows, (std::vector<std::string>{"sync", "default"}));
  EXPECT_EQ(t.cells.at("sync").at("debian:5.10").text, "0/2 bound, loader killed");
  EXPECT_EQ(t.cells.at("sync").at("debian:6.1").text, "1/2 bound, loader killed (fail)");
  EXPECT_EQ(t.cells.at("default").at("debian:6.1").text, "2/2 bound, no kill");
  EXPECT_EQ(t.cells.at("default").at("debian:5.10").text,
            "skip: the kernel lacks module.async_probe | x");
  EXPECT_EQ(t.releases.at("debian:5.10"), "5.10.0-46-amd64");

  const auto md = knob_table_markdown(t);
  EXPECT_NE(md.find("| case | debian:5.10 (5.10.0-46-amd64) | debian:6.1 (6.1.0-56-amd64) |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("lacks module.async_probe \\| x"), std::string::npos) << "pipes escaped";
  EXPECT_EQ(std::count(md.begin(), md.end(), '\n'), 4);

  const auto j = nlohmann::json::parse(summary_json(two_kernels()));
  EXPECT_EQ(j.at("knob_table").at("rows")[0].at("cells").at("debian:6.1").at("devices_bound"), 1);
  EXPECT_TRUE(
      j.at("knob_table").at("rows")[1].at("cells").at("debian:5.10").at("devices_bound").is_null());
}

TEST(KnobTable, OneKernelMakesNoTable) {
  EXPECT_TRUE(knob_table(sample()).kernels.empty());
  EXPECT_FALSE(nlohmann::json::parse(summary_json(sample())).contains("knob_table"));
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

TEST(RenderText, AnUnnamedRunHasASubject) {
  RunResult r; // `probegate boot --devices 0`: no --name, no device
  r.spec.devices = 0;
  r.spec.kernel = "debian:6.1";
  EXPECT_TRUE(render_text(r).starts_with("run: pass on debian:6.1 (0 devices")) << render_text(r);
  r.dir = "/results/boot-20261130-165646-42";
  EXPECT_TRUE(render_text(r).starts_with("boot-20261130-165646-42: pass on ")) << render_text(r);
  r.spec.name = "smoke/a";
  EXPECT_TRUE(render_text(r).starts_with("smoke/a: pass on ")) << render_text(r);
}

TEST(ResultJson, IsAsciiSoAGuestsControlsCannotReachATerminal) {
  auto tmp = core::TempDir::create(std::filesystem::temp_directory_path(), "pg-result-");
  ASSERT_TRUE(tmp);
  RunResult run;
  run.dir = tmp->path();
  run.outcome.oops_line = "BUG: \xc2\x9b"
                          "2J \xe2\x9c\x93 \xff"; // C1 CSI, a check mark, bad UTF-8
  ASSERT_TRUE(write_result(run));
  const auto text = core::read_file(tmp->path() / "result.json");
  ASSERT_TRUE(text);
  for (unsigned char c : *text)
    ASSERT_LT(c, 0x80) << "a raw byte >= 0x80 in result.json";
  const auto back = nlohmann::json::parse(*text);
  EXPECT_EQ(back.at("outcome").at("oops_line"), "BUG: \u009b2J \u2713 \ufffd");
  for (unsigned char c : summary_json(sample()))
    ASSERT_LT(c, 0x80) << "a raw byte >= 0x80 in summary.json";
}

} // namespace
} // namespace probegate::report

namespace probegate::report {
namespace {

TEST(Ktap, OneResultLinePerCaseWithSkipErrorAndTheFailedCheck) {
  const auto out = ktap(sample());
  EXPECT_TRUE(out.starts_with("KTAP version 1\n# probegate suite knobs\n1..4\nok 1 knobs/a\n"))
      << out;
  EXPECT_NE(out.find("# knobs/<b>&\"c\": devices_bound: expected 0, actual 2\n"
                     "not ok 2 knobs/<b>&\"c\"\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("ok 3 knobs/d # SKIP 5.10 lacks it"), std::string::npos) << out;
  EXPECT_NE(out.find("not ok 4 knobs/e # ERROR QEMU died"), std::string::npos) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  EXPECT_EQ(out.find("\xFF"), std::string::npos);
}

} // namespace
} // namespace probegate::report

namespace probegate::report {
namespace {

TEST(ConsoleTail, KeepsTheLastLinesWithinEveryLimit) {
  const auto log = std::filesystem::temp_directory_path() /
                   fmt::format("pg-tail-{}.log", static_cast<long>(::getpid()));
  std::string text;
  for (int i = 0; i < 50; ++i)
    text += fmt::format("line {:02} \x1b[31m{}\n", i, std::string(600, 'x'));
  ASSERT_TRUE(core::write_file_atomic(log, text));
  const auto junit = console_tail(
      log, {.line_bytes = 500, .max_lines = 40, .max_bytes = SIZE_MAX, .printable = false});
  EXPECT_TRUE(junit.starts_with("line 10 \x1b[31m")) << junit.substr(0, 40);
  EXPECT_EQ(std::ranges::count(junit, '\n'), 40);
  EXPECT_EQ(junit.size(), 40u * 501);
  const auto kcidb = console_tail(
      log, {.line_bytes = 400, .max_lines = SIZE_MAX, .max_bytes = 1000, .printable = true});
  EXPECT_EQ(kcidb.size(), 802u) << "two whole lines of 400 and their newlines fit in 1000";
  EXPECT_TRUE(kcidb.starts_with("line 48  [31m")) << kcidb.substr(0, 40);
  EXPECT_EQ(kcidb.find('\x1b'), std::string::npos);
  std::filesystem::remove(log);
}

} // namespace
} // namespace probegate::report
