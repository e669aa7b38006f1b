// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"

#include <array>
#include <chrono>
#include <filesystem>
#include <gtest/gtest.h>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

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

// A scratch file replaces what was there, whole, and a directory that is
// not there is an error that names the file.
TEST(WriteScratchFile, WritesOrSaysWhy) {
  auto dir = TempDir::create(fs::temp_directory_path(), "pg-scratch-");
  ASSERT_TRUE(dir);
  const fs::path file = dir->path() / "run.cpio";
  ASSERT_TRUE(write_scratch_file(file, std::string(5000, 'x')));
  ASSERT_TRUE(write_scratch_file(file, "short"));
  EXPECT_EQ(read_file(file).value_or(""), "short");
  const auto missing = write_scratch_file(dir->path() / "no-such-dir" / "run.cpio", "x");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("no-such-dir/run.cpio"), std::string::npos)
      << missing.error().message;
}

// Jobs of one run write the same cache file at once (a module layer that two
// cases need): every writer succeeds, and the file is one writer's whole
// content, never a mix, with no temporary file left.
TEST(WriteFileAtomic, ThreadsWritingOneFileAllSucceed) {
  auto dir = TempDir::create(fs::temp_directory_path(), "pg-atomic-");
  ASSERT_TRUE(dir);
  const fs::path file = dir->path() / "layer.cpio";
  constexpr int k_writers = 8;
  std::array<bool, k_writers> ok{};
  {
    std::vector<std::jthread> writers;
    for (int i = 0; i < k_writers; ++i)
      writers.emplace_back([&, i] {
        const std::string content(1 << 20, static_cast<char>('a' + i));
        ok[static_cast<size_t>(i)] = true;
        for (int round = 0; round < 20; ++round)
          if (!write_file_atomic(file, content))
            ok[static_cast<size_t>(i)] = false;
      });
  }
  for (int i = 0; i < k_writers; ++i)
    EXPECT_TRUE(ok[static_cast<size_t>(i)]) << "writer " << i;
  const auto content = read_file(file);
  ASSERT_TRUE(content);
  ASSERT_EQ(content->size(), 1U << 20);
  EXPECT_EQ(content->find_first_not_of(content->front()), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644U);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir->path()), fs::directory_iterator()), 1);
}

// A held lock makes try_acquire give up at once (a prune skips a state in
// use); once released, try_acquire takes it.
TEST(FileLock, TryAcquireGivesUpWhileAnotherHolderHasIt) {
  auto dir = TempDir::create(fs::temp_directory_path(), "pg-trylock-");
  ASSERT_TRUE(dir);
  const fs::path path = dir->path() / "locks/one.lock";
  {
    auto held = FileLock::acquire(path);
    ASSERT_TRUE(held);
    // flock(2) locks belong to the open file, so a second open in the same
    // process competes like another process would.
    auto tried = FileLock::try_acquire(path);
    ASSERT_TRUE(tried);
    EXPECT_FALSE(tried->has_value());
  }
  auto tried = FileLock::try_acquire(path);
  ASSERT_TRUE(tried);
  EXPECT_TRUE(tried->has_value());
}

// A state's `used` file: created empty, and dated now on every touch.
TEST(TouchFile, CreatesTheFileAndMovesItsTimeToNow) {
  auto dir = TempDir::create(fs::temp_directory_path(), "pg-touch-");
  ASSERT_TRUE(dir);
  const fs::path path = dir->path() / "used";
  ASSERT_TRUE(touch_file(path));
  EXPECT_EQ(fs::file_size(path), 0U);
  const auto old = fs::file_time_type::clock::now() - std::chrono::hours(48);
  fs::last_write_time(path, old);
  ASSERT_TRUE(touch_file(path));
  EXPECT_GT(fs::last_write_time(path), old + std::chrono::hours(47));
  EXPECT_FALSE(touch_file(dir->path() / "missing/used"));
}

// A guest's memory, mostly zeros: the copy reads back byte for byte, its
// hash is the original's, its zero blocks are holes, and a trailing zero
// stretch keeps the size. An existing target is refused, not overwritten.
TEST(CopySparse, KeepsTheContentAndLeavesHolesForZeros) {
  auto dir = TempDir::create(fs::temp_directory_path(), "pg-sparse-");
  ASSERT_TRUE(dir);
  const fs::path from = dir->path() / "ram.live";
  const fs::path to = dir->path() / "ram";
  std::string memory(8 << 20, '\0'); // 8 MB, of which 3 pages and a byte are not zero
  memory.replace(4096, 4096, std::string(4096, 'k'));
  memory.replace(3 << 20, 8192, std::string(8192, 'u'));
  memory[(5 << 20) + 17] = '\x01';
  ASSERT_TRUE(write_file_atomic(from, memory));
  const auto sum = copy_sparse(from, to);
  ASSERT_TRUE(sum) << sum.error().message;
  EXPECT_EQ(*sum, sha256_hex(memory));
  const auto copied = read_file(to);
  ASSERT_TRUE(copied);
  EXPECT_TRUE(*copied == memory) << "the copy differs";
  struct stat st {};
  ASSERT_EQ(::stat(to.c_str(), &st), 0);
  EXPECT_LT(st.st_blocks * 512, 1 << 20) << "the zeros were written, not left as holes";
  const auto again = copy_sparse(from, to);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find(to.string()), std::string::npos) << again.error().message;
  EXPECT_TRUE(*read_file(to) == memory);
}

} // namespace
} // namespace probegate::core
