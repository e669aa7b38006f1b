// SPDX-License-Identifier: GPL-2.0-only
// End to end: report.html of a real smoke run, opened in a real headless
// Chromium (Debian's package). The page loads with no console error, the
// sync-killed case's timeline has udevd's kill left of its probe's end, and
// a hostile console (a <script>, escape sequences, invalid UTF-8) is shown
// as text, never run.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <regex>

namespace probegate {
namespace {

namespace fs = std::filesystem;

std::string chromium() {
  for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (fs::exists(path))
      return path;
  return {};
}

// Chromium, headless, on a local file; its stderr carries the page's
// console messages (--enable-logging=stderr).
e2e::Captured open_in_chromium(const fs::path& page, std::vector<std::string> mode,
                               const fs::path& profile) {
  core::Command command;
  command.argv = {chromium(),
                  "--headless",
                  "--no-sandbox",
                  "--disable-gpu",
                  "--disable-dev-shm-usage",
                  "--no-first-run",
                  "--enable-logging=stderr",
                  "--v=0",
                  "--user-data-dir=" + profile.string(),
                  "--window-size=1280,2400"};
  command.argv.insert(command.argv.end(), mode.begin(), mode.end());
  command.argv.push_back("file://" + page.string());
  command.timeout = std::chrono::minutes(3);
  return e2e::run_captured(command);
}

// The x of udevd's kill and the right edge of the failed probe in the
// timeline of the section whose heading names `id`.
std::pair<double, double> kill_and_probe_end(const std::string& dom, const std::string& id) {
  const auto start = dom.find("<h2>" + id + " ");
  if (start == std::string::npos)
    return {-1, -1};
  const auto end = dom.find("</section>", start);
  const std::string section = dom.substr(start, end - start);
  std::smatch kill, probe;
  if (!std::regex_search(section, kill,
                         std::regex(R"re(<line class="mark udev-kill"[^>]*? x1="([0-9.]+)")re")) ||
      !std::regex_search(section, probe,
                         std::regex(R"re(<rect class="probe failed"[^>]*? x="([0-9.]+)"[^>]*? )re"
                                    R"re(width="([0-9.]+)")re")))
    return {-1, -1};
  return {std::stod(kill[1]), std::stod(probe[1]) + std::stod(probe[2])};
}

TEST(ReportE2e, TheSmokeReportOpensInChromiumWithTheKillBeforeTheProbeEnds) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  if (chromium().empty())
    PROBEGATE_E2E_SKIP() << "chromium is not installed (tools/setup.sh deps installs it)";
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-report-");
  ASSERT_TRUE(tmp);
  // KTAP alone on stdout (stderr dropped here), KCIDB into a file.
  const auto kcidb = tmp->path() / "kcidb.json";
  core::Command smoke;
  smoke.argv = {"sh",
                "-c",
                "exec \"$0\" \"$@\" 2>/dev/null",
                PROBEGATE_BINARY,
                "run",
                PROBEGATE_SOURCE_DIR "/suites/smoke.yaml",
                "--results",
                (tmp->path() / "results").string(),
                "--ktap",
                "--kcidb",
                kcidb.string(),
                "--kcidb-origin",
                "probegate_ci"};
  smoke.timeout = std::chrono::minutes(15);
  const auto ran = e2e::run_captured(smoke);
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_TRUE(ran.output.starts_with("KTAP version 1\n# probegate suite smoke\n1..5\n"))
      << ran.output;
  EXPECT_NE(ran.output.find("\nok 1 smoke/sync-killed\n"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("\nok 5 smoke/module-param-modprobe-returns-before-devices\n"),
            std::string::npos)
      << ran.output;
  // The KCIDB file against KCIDB's own v5.3 schema (kept in testdata/kcidb with its source).
  core::Command validate;
  validate.argv = {"/usr/bin/python3", "-c",
                   "import json, sys, jsonschema\n"
                   "schema = json.load(open(sys.argv[1]))\n"
                   "doc = json.load(open(sys.argv[2]))\n"
                   "jsonschema.Draft7Validator(schema, "
                   "format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER).validate(doc)\n"
                   "print(len(doc['tests']), 'tests valid')\n",
                   PROBEGATE_TESTDATA "/kcidb/v05_03.schema.json", kcidb.string()};
  const auto valid = e2e::run_captured(validate);
  EXPECT_EQ(valid.exit_code, 0) << valid.output;
  EXPECT_NE(valid.output.find("5 tests valid"), std::string::npos) << valid.output;
  const auto doc = nlohmann::json::parse(*core::read_file(kcidb));
  EXPECT_EQ(doc.at("tests")[0].at("path"), "probegate.smoke.sync-killed");
  EXPECT_EQ(doc.at("tests")[0].at("status"), "PASS");
  EXPECT_EQ(doc.at("checkouts").size(), 1u);
  const auto session = e2e::only_session(tmp->path() / "results");
  ASSERT_TRUE(fs::exists(session / "report.html")) << e2e::leftovers(session);

  // A hostile guest: its banner and a systemd line carry a script, a
  // terminal escape and bytes that are not UTF-8.
  const std::string hostile = "<script>document.title='pwned'</script>\x1b[2J\xff\xfe";
  const auto run_dir = session / "smoke/sync-killed";
  auto result = nlohmann::json::parse(*core::read_file(run_dir / "result.json"));
  result["outcome"]["guest_kernel"] = "6.1 <script>document.title='pwned'</script>";
  ASSERT_TRUE(core::write_file_atomic(run_dir / "result.json", result.dump(2)));
  auto console = *core::read_file(run_dir / "console.log");
  console += "[   11.000000] systemd[1]: Timed out waiting for device " + hostile + ".device.\n";
  ASSERT_TRUE(core::write_file_atomic(run_dir / "console.log", console));
  const auto remade = e2e::run_probegate({"report", session.string()});
  ASSERT_EQ(remade.exit_code, 0) << remade.output;
  const auto html = *core::read_file(session / "report.html");
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find('\x1b'), std::string::npos);

  const auto dom = open_in_chromium(session / "report.html", {"--dump-dom"}, tmp->path() / "p1");
  ASSERT_EQ(dom.exit_code, 0) << dom.output;
  EXPECT_NE(dom.output.find("<title>probegate: smoke</title>"), std::string::npos)
      << "the injected script ran, or the page did not load:\n"
      << dom.output.substr(0, 2000);
  EXPECT_EQ(dom.output.find("pwned</title>"), std::string::npos);
  EXPECT_NE(dom.output.find("&lt;script&gt;document.title='pwned'&lt;/script&gt;"),
            std::string::npos)
      << "the guest's text is shown as text";
  EXPECT_EQ(dom.output.find("CONSOLE"), std::string::npos) << "the page logged to its console:\n"
                                                           << dom.output.substr(0, 4000);
  const auto [kill_x, probe_end_x] = kill_and_probe_end(dom.output, "smoke/sync-killed");
  ASSERT_GT(kill_x, 0) << "no udev kill or failed probe in the sync-killed timeline";
  EXPECT_LT(kill_x, probe_end_x) << "udevd's kill is drawn before the probe ends";

  const auto png = tmp->path() / "smoke.png";
  const auto shot = open_in_chromium(session / "report.html", {"--screenshot=" + png.string()},
                                     tmp->path() / "p2");
  ASSERT_EQ(shot.exit_code, 0) << shot.output;
  ASSERT_TRUE(fs::exists(png)) << shot.output;
  const auto bytes = *core::read_file(png);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_GT(bytes.size(), 20000u) << "a blank page";
  if (const char* keep = std::getenv("PROBEGATE_KEEP_SCREENSHOT"))
    fs::copy_file(png, keep, fs::copy_options::overwrite_existing);
}

} // namespace
} // namespace probegate
