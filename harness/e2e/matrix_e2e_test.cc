// SPDX-License-Identifier: GPL-2.0-only
// The long matrix (ctest label `matrix`, not in CI): the whole knob x kernel
// table twice in a row, and every cell must come out the same.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <iostream>
#include <nlohmann/json.hpp>

namespace probegate {
namespace {

namespace fs = std::filesystem;

nlohmann::json table_of_one_run(const fs::path& results) {
  const auto ran = e2e::run_probegate(
      {"run", PROBEGATE_SOURCE_DIR "/suites/knobs-by-kernel.yaml", "--results", results.string()});
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  const fs::path session = e2e::only_session(results);
  // The table itself goes to the test's log, for the record (issue 5).
  if (auto table = core::read_file(session / "knob-table.md"))
    std::cout << *table << "\n";
  const auto summary = nlohmann::json::parse(*core::read_file(session / "summary.json"));
  return summary.at("knob_table");
}

TEST(MatrixE2e, KnobTableTwiceWithIdenticalCells) {
  if (!e2e::skip_reason().empty())
    PROBEGATE_E2E_SKIP() << e2e::skip_reason();
  auto first = core::TempDir::create(fs::temp_directory_path(), "probegate-matrix-");
  auto second = core::TempDir::create(fs::temp_directory_path(), "probegate-matrix-");
  ASSERT_TRUE(first && second);
  const auto a = table_of_one_run(first->path());
  const auto b = table_of_one_run(second->path());
  ASSERT_FALSE(a.at("rows").empty());
  EXPECT_EQ(a.at("kernels").size(), 5u);
  EXPECT_EQ(a, b) << "cells differ between two runs:\n" << a.dump(1) << "\n" << b.dump(1);
}

} // namespace
} // namespace probegate
