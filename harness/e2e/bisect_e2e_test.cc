// SPDX-License-Identifier: GPL-2.0-only
// End to end: `probegate bisect` over kernel lines and over a parameter.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace probegate {
namespace {

namespace fs = std::filesystem;

nlohmann::json bisect_log(const fs::path& results) {
  const fs::path dir = e2e::only_session(results);
  return nlohmann::json::parse(*core::read_file(dir / "bisect.json"));
}

// async_probe=0 meant "async" until 6.0: the first line where it stopped is 6.1.
TEST(BisectE2e, NamesTheFirstLineWhereAsyncProbeZeroStoppedMeaningAsync) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-bisect-");
  ASSERT_TRUE(tmp);
  const auto ran = e2e::run_probegate(
      {"bisect", "--kernels", "debian:5.10,debian:6.1,debian:6.12,debian:sid", "--async",
       "module-param", "--async-value", "0", "--devices", "2", "--probe-delay-ms", "4000",
       "--udev-timeout", "3", "--expect-bound", "2", "--results", tmp->path().string()});
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find("first different: debian:6.1"), std::string::npos) << ran.output;
  const auto log = bisect_log(tmp->path());
  EXPECT_EQ(log.at("answer").at("first"), "debian:6.1");
  EXPECT_EQ(log.at("answer").at("last_same"), "debian:5.10");
  EXPECT_TRUE(log.at("answer").at("certain").get<bool>());
  EXPECT_LE(log.at("steps").size(), 3u) << "log2(4) + the two ends";
  for (const auto& step : log.at("steps"))
    for (const auto& dir : step.at("dirs"))
      EXPECT_TRUE(fs::exists(fs::path(dir.get<std::string>()) / "result.json")) << dir;
}

// The capacity question by measurement: 2400 ms sync probes, udev timeout
// 10 s: the kill lands at 10..11 s, so floor(10/2.4) = floor(11/2.4) = 4.
TEST(BisectE2e, ParamFindsTheCapacityOfASyncProbe) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-bisect-");
  ASSERT_TRUE(tmp);
  const auto ran = e2e::run_probegate({"bisect", "--kernel", "debian:6.1", "--param",
                                       "devices=1..8", "--probe-delay-ms", "2400", "--udev-timeout",
                                       "10", "--results", tmp->path().string()});
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  const auto log = bisect_log(tmp->path());
  EXPECT_EQ(log.at("answer").at("last_same"), "devices=4") << ran.output;
  EXPECT_EQ(log.at("answer").at("first"), "devices=5");
  EXPECT_NE(ran.output.find("most devices that bind: 4 measured, 4 predicted"), std::string::npos)
      << ran.output;
  // report.html beside bisect.json: the answer, and each step linked to its runs.
  const auto page = core::read_file(e2e::only_session(tmp->path()) / "report.html");
  ASSERT_TRUE(page) << e2e::leftovers(e2e::only_session(tmp->path()));
  EXPECT_NE(page->find("<th>first that differs</th><td><strong>devices=5</strong>"),
            std::string::npos)
      << *page;
  EXPECT_NE(page->find("/result.json\">"), std::string::npos) << *page;
}

TEST(BisectE2e, BadInputExits2BeforeAnythingBoots) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"bisect", "--kernels", "debian:6.1"},
           {"bisect", "--kernels", "debian:6.1,debian:nope"},
           {"bisect", "--param", "devices=8..1"},
           {"bisect", "--kernels", "debian:5.10,debian:6.1", "--line", "debian:6.1"},
           {"bisect", "--kernels", "debian:5.10,debian:6.1", "--case", "nosuch.yaml:x"},
           {"bisect", "--param", "devices=1..4", "--expect-bound", "3"},
       }) {
    const auto ran = e2e::run_probegate(args);
    EXPECT_EQ(ran.exit_code, 2) << args.back() << ": " << ran.output;
    EXPECT_EQ(ran.output.find("booting"), std::string::npos) << ran.output;
  }
}

} // namespace
} // namespace probegate
