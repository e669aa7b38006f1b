// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <string>
#include <unistd.h>

namespace probegate::core {
namespace {

namespace fs = std::filesystem;

TEST(TempDir, CarriesItsOwnersPidAndGoesAway) {
  fs::path path;
  {
    auto dir = TempDir::create(fs::temp_directory_path(), "pg-files-");
    ASSERT_TRUE(dir);
    path = dir->path();
    EXPECT_TRUE(
        path.filename().string().starts_with("pg-files-" + std::to_string(::getpid()) + "-"));
    EXPECT_TRUE(fs::is_directory(path));
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(SweepDeadTempDirs, RemovesOnlyWhatADeadProcessLeft) {
  auto parent = TempDir::create(fs::temp_directory_path(), "pg-sweep-");
  ASSERT_TRUE(parent);
  // A pid no process can have: pids stay below kernel.pid_max.
  const auto pid_max = read_file("/proc/sys/kernel/pid_max");
  ASSERT_TRUE(pid_max);
  const long child = std::stol(*pid_max);
  const fs::path dead = parent->path() / ("run-" + std::to_string(child) + "-AbC123");
  const fs::path alive = parent->path() / ("run-" + std::to_string(::getpid()) + "-AbC123");
  const fs::path foreign = parent->path() / "someone-elses";
  for (const auto& dir : {dead, alive, foreign})
    fs::create_directories(dir / "inside");
  EXPECT_EQ(sweep_dead_temp_dirs(parent->path()), 1);
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(alive));
  EXPECT_TRUE(fs::exists(foreign));
  EXPECT_EQ(sweep_dead_temp_dirs(parent->path() / "no-such-dir"), 0);
}

} // namespace
} // namespace probegate::core
