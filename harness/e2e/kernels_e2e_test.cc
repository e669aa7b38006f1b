// SPDX-License-Identifier: GPL-2.0-only
// End to end: one knob x kernel slice on every Debian line (5.10, 6.1, 6.12,
// 7.x) and on a kernel built from source, the part of
// suites/knobs-by-kernel.yaml that CI runs.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace probegate {
namespace {

namespace fs = std::filesystem;

TEST(KernelsE2e, AsyncProbeZeroAndModuleDefaultOnEveryLine) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-kernels-");
  ASSERT_TRUE(tmp);
  const auto ran =
      e2e::run_probegate({"run", PROBEGATE_SOURCE_DIR "/suites/knobs-by-kernel.yaml", "--filter",
                          "knobs-by-kernel/module-*", "--results", tmp->path().string()});
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  const fs::path session = e2e::only_session(tmp->path());
  const auto summary = nlohmann::json::parse(*core::read_file(session / "summary.json"));
  const auto& table = summary.at("knob_table");
  EXPECT_EQ(table.at("kernels"), nlohmann::json({"debian:5.10", "debian:6.1", "debian:6.12",
                                                 "debian:sid", "build:linux-source-6.1"}));
  const auto& releases = table.at("releases");
  EXPECT_TRUE(releases.at("debian:5.10").get<std::string>().starts_with("5.10."));
  EXPECT_TRUE(releases.at("debian:6.1").get<std::string>().starts_with("6.1."));
  EXPECT_TRUE(releases.at("debian:6.12").get<std::string>().starts_with("6.12."));
  EXPECT_TRUE(releases.at("debian:sid").get<std::string>().starts_with("7."));
  std::map<std::string, nlohmann::json> rows;
  for (const auto& row : table.at("rows"))
    rows[row.at("case")] = row.at("cells");
  ASSERT_EQ(rows.size(), 3u) << table.dump(2);
  // The 6.0 change: async_probe=0 meant async before it, sync after it.
  EXPECT_EQ(rows["module-param-0"].at("debian:5.10").at("devices_bound"), 2);
  EXPECT_TRUE(releases.at("build:linux-source-6.1").get<std::string>().starts_with("6.1."));
  for (const auto* k : {"debian:6.1", "debian:6.12", "debian:sid", "build:linux-source-6.1"}) {
    EXPECT_EQ(rows["module-param-0"].at(k).at("devices_bound"), 0) << k;
    EXPECT_EQ(rows["module-param-0"].at(k).at("udev_worker_killed"), true) << k;
    EXPECT_EQ(rows["module-default"].at(k).at("devices_bound"), 2) << k;
  }
  // 5.10 has no module.async_probe: a skip with the reason, never booted.
  const auto& missing = rows["module-default"].at("debian:5.10");
  EXPECT_EQ(missing.at("verdict"), "skip");
  EXPECT_TRUE(missing.at("devices_bound").is_null());
  EXPECT_NE(missing.at("text").get<std::string>().find("module.async_probe"), std::string::npos);
  const auto markdown = core::read_file(session / "knob-table.md");
  ASSERT_TRUE(markdown);
  EXPECT_NE(markdown->find("| module-param-0 | 2/2 bound, no kill | 0/2 bound, loader killed |"),
            std::string::npos)
      << *markdown;
}

} // namespace
} // namespace probegate
