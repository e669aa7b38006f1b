// SPDX-License-Identifier: GPL-2.0-only
// Saved states that no run restored for a while are deleted, never one
// whose lock is held; first-sight markers age out the same way.
#include "core/files.h"
#include "vm/saved_state.h"

#include <chrono>
#include <filesystem>
#include <gtest/gtest.h>
#include <string>

namespace probegate::vm {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;

class PruneStates : public ::testing::Test {
protected:
  void SetUp() override {
    auto dir = core::TempDir::create(fs::temp_directory_path(), "pg-prune-");
    ASSERT_TRUE(dir);
    m_dir.emplace(std::move(*dir));
    fs::create_directories(states());
  }
  fs::path states() const { return m_dir->path() / "states"; }
  fs::path locks() const { return m_dir->path() / "locks"; }
  static void date(const fs::path& file, fs::file_time_type when) {
    ASSERT_TRUE(core::set_file_times(file, when)) << file;
  }
  // A state directory: `ram` (1 MB) and `state`, its state.json and (when
  // given) its `used` file, every time of each and of the directory dated
  // `age` ago.
  fs::path state(const std::string& key, hours age, bool with_used = true) {
    const fs::path dir = states() / key;
    fs::create_directories(dir);
    EXPECT_TRUE(core::write_file_atomic(dir / "ram", std::string(1 << 20, 'x')));
    EXPECT_TRUE(core::write_file_atomic(dir / "state", "devices"));
    EXPECT_TRUE(core::write_file_atomic(dir / "state.json", "{}\n"));
    if (with_used) {
      EXPECT_TRUE(core::touch_file(dir / k_state_used_file));
    }
    for (const auto& entry : fs::directory_iterator(dir))
      date(entry.path(), m_now - age);
    date(dir, m_now - age);
    return dir;
  }
  Pruned prune() const { return prune_unused_states(states(), locks(), m_now, hours(24 * 14)); }

  std::optional<core::TempDir> m_dir;
  fs::file_time_type m_now = fs::file_time_type::clock::now();
};

TEST_F(PruneStates, DeletesWhatNoRunUsedForTwoWeeksAndKeepsTheRest) {
  const auto old = state("old", hours(24 * 20));
  const auto recent = state("recent", hours(24 * 3));
  // Made long ago, restored yesterday: `used` says so.
  const auto reused = state("reused", hours(24 * 30));
  fs::last_write_time(reused / k_state_used_file, m_now - hours(24));
  // No `used` (an older probegate's state): its state.json's time counts,
  // and the access times of what a restore reads.
  const auto legacy = state("legacy", hours(24 * 20), false);
  const auto restored_by_older = state("restored-by-older", hours(24 * 20), false);
  date(restored_by_older / "state", m_now - hours(2));
  const auto mapped_by_older = state("mapped-by-older", hours(24 * 20), false);
  date(mapped_by_older / "ram", m_now - hours(2));
  const auto pruned = prune();
  EXPECT_EQ(pruned.states, 2);
  EXPECT_GE(pruned.bytes, 2U << 20);
  EXPECT_FALSE(fs::exists(old));
  EXPECT_FALSE(fs::exists(legacy));
  EXPECT_TRUE(fs::exists(recent / "ram"));
  EXPECT_TRUE(fs::exists(reused / "ram"));
  EXPECT_TRUE(fs::exists(restored_by_older / "ram"));
  EXPECT_TRUE(fs::exists(mapped_by_older / "ram"));
}

TEST_F(PruneStates, LeavesAStateWhoseLockIsHeld) {
  const auto old = state("busy", hours(24 * 20));
  {
    auto held = core::FileLock::acquire(state_lock_path(locks(), "busy"));
    ASSERT_TRUE(held);
    EXPECT_EQ(prune().states, 0);
    EXPECT_TRUE(fs::exists(old / "ram"));
  }
  EXPECT_EQ(prune().states, 1);
  EXPECT_FALSE(fs::exists(old));
}

TEST_F(PruneStates, ForgetsOldFirstSightsAndKeepsMovedMarkers) {
  const fs::path stale = states() / (std::string("a") + std::string(k_seen_suffix));
  const fs::path fresh = states() / (std::string("b") + std::string(k_seen_suffix));
  const fs::path moved = states() / "c.moved";
  for (const auto& file : {stale, fresh, moved})
    ASSERT_TRUE(core::touch_file(file));
  fs::last_write_time(stale, m_now - hours(24 * 15));
  fs::last_write_time(moved, m_now - hours(24 * 90));
  EXPECT_EQ(prune().states, 0);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(fresh));
  EXPECT_TRUE(fs::exists(moved));
}

TEST_F(PruneStates, AMissingStatesDirectoryIsNothingToDo) {
  fs::remove_all(states());
  EXPECT_EQ(prune().states, 0);
}

} // namespace
} // namespace probegate::vm
