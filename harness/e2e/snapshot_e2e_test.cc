// SPDX-License-Identifier: GPL-2.0-only
// End to end: boot once, restore per case (issue 13). suites/knobs.yaml
// restored from saved states against the same suite booted fresh; restores
// of one saved state repeat to the microsecond; a damaged state is rebuilt;
// two jobs of one group make one state; one boot saves its group at the
// second sight.
#include "core/files.h"
#include "core/hash_memo.h"
#include "e2e/e2e_support.h"
#include "vm/saved_state.h"

#include <chrono>
#include <filesystem>
#include <fmt/core.h>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace probegate {
namespace {

namespace fs = std::filesystem;

class Snapshot : public e2e::PrivateCacheTest {
protected:
  Snapshot() : PrivateCacheTest("pg-snapshot-") {}
};

// Every case of a group restored from a save that did not move the guest's
// clock: pgagent stops the guest's timers around the stop, so there is no
// fallback to a fresh boot (docs/CONTRACTS.md "Boot once, restore per case").
void expect_exact_restore(const std::string& id, const nlohmann::json& r) {
  const auto& path = r.at("boot_path");
  EXPECT_TRUE(path.at("restored").get<bool>()) << id;
  EXPECT_EQ(path.at("fresh_reason").get<std::string>(), "") << id;
  EXPECT_LE(path.at("pause_step_ns").get<long long>(), vm::k_unmoved_step_ns) << id;
}

// The knob table restored from saved states is the knob table of fresh
// boots, every outcome field to the microsecond, pids and orders included;
// restores of the same states repeat it.
TEST_F(Snapshot, RestoredKnobTableFindsWhatFreshBootsFind) {
  const auto fresh = e2e::run_knobs(dir() / "fresh", {"--fresh-boot"}, m_env);
  const auto first = e2e::run_knobs(dir() / "first", {}, m_env);
  const auto again = e2e::run_knobs(dir() / "again", {}, m_env);
  ASSERT_EQ(fresh.size(), 8U);
  ASSERT_EQ(first.size(), 8U);
  ASSERT_EQ(again.size(), 8U);
  std::set<std::string> groups;
  int made = 0;
  for (const auto& [id, r] : first) {
    const auto& path = r.at("boot_path");
    EXPECT_FALSE(fresh.at(id).at("boot_path").at("restored").get<bool>()) << id;
    EXPECT_EQ(e2e::found(r), e2e::found(fresh.at(id))) << id;
    EXPECT_EQ(r.at("outcome"), fresh.at(id).at("outcome")) << id;
    expect_exact_restore(id, r);
    EXPECT_GT(path.at("state_bytes").get<long long>(), 1 << 20) << id;
    groups.insert(path.at("state_key").get<std::string>());
    made += path.at("state_made").get<bool>();
    // The second run restores the first run's states, and repeats it.
    expect_exact_restore(id, again.at(id));
    EXPECT_FALSE(again.at(id).at("boot_path").at("state_made").get<bool>()) << id;
    EXPECT_EQ(again.at(id).at("outcome"), r.at("outcome")) << id;
  }
  // One state per kernel command line: udev.event_timeout=3 alone (3
  // cases), =180, slowprobe.async_probe (2 cases), module.async_probe and
  // driver_async_probe; each made once.
  EXPECT_EQ(groups.size(), 5U);
  EXPECT_EQ(made, 5);
}

// A saved state whose bytes changed, in the devices' stream or in the
// guest's memory, is never restored: the next case of its group boots and
// saves it again, and still passes.
TEST_F(Snapshot, DamagedStateIsRebuilt) {
  const std::vector<std::string> one{"--filter", "knobs/sync"};
  const auto before = e2e::run_knobs(dir() / "before", one, m_env);
  ASSERT_EQ(before.size(), 1U);
  expect_exact_restore("before", before.at("knobs/sync"));
  const auto key = before.at("knobs/sync").at("boot_path").at("state_key").get<std::string>();
  for (const std::string file : {"state", "ram"}) {
    const fs::path damaged = m_cache / "states" / key / file;
    ASSERT_TRUE(fs::exists(damaged)) << file;
    // A restore in a new process hashes the state once and remembers it
    // (once the files are 2 s old): the damage below must be found in spite
    // of that memo.
    core::Result<std::string> memo = std::unexpected(core::Error{});
    for (int run = 0; run < 3 && !(memo && memo->find('"' + file + '"') != std::string::npos);
         ++run) {
      const auto again = e2e::run_knobs(dir() / fmt::format("again-{}-{}", file, run), one, m_env);
      ASSERT_EQ(again.size(), 1U);
      EXPECT_FALSE(again.at("knobs/sync").at("boot_path").at("state_made").get<bool>());
      memo = core::read_file(damaged.parent_path() / core::k_hash_memo_file);
    }
    ASSERT_TRUE(memo) << "a verified state has no hash memo";
    EXPECT_NE(memo->find('"' + file + '"'), std::string::npos) << *memo;
    {
      std::fstream f(damaged, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(fs::file_size(damaged) / 2));
      f.put('\x5a');
    }
    const auto after = e2e::run_knobs(dir() / ("after-" + file), one, m_env);
    ASSERT_EQ(after.size(), 1U);
    EXPECT_TRUE(after.at("knobs/sync").at("boot_path").at("state_made").get<bool>())
        << "the damaged " << file << " was trusted";
    expect_exact_restore("after", after.at("knobs/sync"));
    EXPECT_EQ(after.at("knobs/sync").at("verdict"), "pass");
  }
  EXPECT_EQ(e2e::leftovers(m_cache / "tmp"), "");
}

// The knob case of `probegate boot` (one boot: its group is saved at second
// sight), into `results`; its output and result.json.
std::pair<std::string, nlohmann::json>
boot_knob_case(const fs::path& results, const std::map<std::string, std::string>& env) {
  auto booted =
      e2e::boot_into(results,
                     {"boot", "--kernel", "debian:6.1", "--devices", "2", "--probe-delay-ms",
                      "4000", "--probe-kthread", "--udev-timeout", "3", "--expect-bound", "0",
                      "--expect-udev-kill", "yes", "--results", results.string()},
                     env);
  EXPECT_EQ(booted.ran.exit_code, 0) << booted.ran.output;
  return std::pair{booted.ran.output, booted.result};
}

// One boot (or a bisection step) of a group the cache has not seen boots
// fresh and notes the group; the next boot of it saves it and restores (and
// the save deletes a state unused for 20 days); the third restores that
// state and records its use; after damage the fourth saves it again. All
// four find the same; the restores repeat each other to the microsecond.
TEST_F(Snapshot, ABootSavesItsGroupAtTheSecondSight) {
  const auto [first_output, first] = boot_knob_case(dir() / "first", m_env);
  ASSERT_FALSE(first.empty()) << first_output;
  const auto& first_path = first.at("boot_path");
  EXPECT_FALSE(first_path.at("restored").get<bool>());
  EXPECT_FALSE(first_path.at("state_made").get<bool>());
  EXPECT_EQ(first_output.find("once to save it"), std::string::npos) << first_output;
  const auto reason = first_path.at("fresh_reason").get<std::string>();
  EXPECT_NE(reason.find("first boot of this group"), std::string::npos) << reason;
  // Only the note: no state yet.
  std::vector<std::string> seen;
  for (const auto& entry : fs::directory_iterator(m_cache / "states"))
    seen.push_back(entry.path().filename().string());
  ASSERT_EQ(seen.size(), 1U) << e2e::leftovers(m_cache / "states");
  EXPECT_TRUE(seen[0].ends_with(".seen")) << seen[0];
  EXPECT_NE(reason.find(seen[0]), std::string::npos) << reason;

  // A state no run used for 20 days, which the next save deletes.
  const fs::path aged = m_cache / "states" / "0000000000000000000aged";
  fs::create_directories(aged);
  for (const char* file : {"state.json", "state", "ram"})
    ASSERT_TRUE(core::write_file_atomic(aged / file, "x"));
  const auto long_ago = [](const fs::path& file, std::chrono::hours age) {
    ASSERT_TRUE(core::set_file_times(file, fs::file_time_type::clock::now() - age)) << file;
  };
  for (const char* file : {"state.json", "state", "ram"})
    long_ago(aged / file, std::chrono::hours(24 * 20));
  long_ago(aged, std::chrono::hours(24 * 20));

  const auto [second_output, second] = boot_knob_case(dir() / "second", m_env);
  ASSERT_FALSE(second.empty()) << second_output;
  expect_exact_restore("second", second);
  EXPECT_TRUE(second.at("boot_path").at("state_made").get<bool>());
  const auto key = second.at("boot_path").at("state_key").get<std::string>();
  EXPECT_EQ(seen[0], key + ".seen");
  EXPECT_EQ(first_path.at("state_key"), key);
  // The note is gone with the state made, and so is the aged state; the
  // new state records its use.
  EXPECT_NE(second_output.find("deleted 1 saved state no run restored for 14 days"),
            std::string::npos)
      << second_output;
  EXPECT_EQ(e2e::leftovers(m_cache / "states"), key + "\n");
  const fs::path used = m_cache / "states" / key / vm::k_state_used_file;
  ASSERT_TRUE(fs::exists(used));

  // A restore records its use too.
  long_ago(used, std::chrono::hours(48));
  const auto [third_output, third] = boot_knob_case(dir() / "third", m_env);
  ASSERT_FALSE(third.empty()) << third_output;
  expect_exact_restore("third", third);
  EXPECT_FALSE(third.at("boot_path").at("state_made").get<bool>());
  EXPECT_GT(fs::last_write_time(used), fs::file_time_type::clock::now() - std::chrono::hours(1));

  // A damaged state counts as seen: the next boot saves it again at once.
  {
    const fs::path damaged = m_cache / "states" / key / "state";
    std::fstream f(damaged, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(damaged) / 2));
    f.put('\x5a');
  }
  const auto [fourth_output, fourth] = boot_knob_case(dir() / "fourth", m_env);
  ASSERT_FALSE(fourth.empty()) << fourth_output;
  expect_exact_restore("fourth", fourth);
  EXPECT_TRUE(fourth.at("boot_path").at("state_made").get<bool>())
      << "the damaged state was trusted";

  // The restores repeat each other to the microsecond; the fresh boot
  // finds the same. Fresh against restored to the microsecond is
  // RestoredKnobTableFindsWhatFreshBootsFind's claim. Once, in a full e2e
  // run, this fresh boot's worker pids and kill times differed from its
  // restores' (5 pids, 24 us), as recorded in
  // docs/MEASUREMENTS.md "Where a restored case's time goes, and saving at the second sight".
  for (const auto* later : {&second, &third, &fourth}) {
    EXPECT_EQ(e2e::found(*later), e2e::found(first));
    EXPECT_EQ(later->at("outcome"), second.at("outcome"));
  }
  EXPECT_EQ(third.at("verdict"), "pass");
}

// A group whose saves move the guest's clock: once seen, the next process
// tries two saves and boots fresh; the cache remembers it, and the process
// after boots fresh at once. Whether a real save moves is a race in QEMU (Debian 5.10's
// did in every save with the guest's memory in anonymous pages, and in 1 of 4
// with it in a file; docs/FACTS.md "Saving and restoring a guest"), so the
// test counts every step as a move through PROBEGATE_UNMOVED_STEP_NS=0.
TEST_F(Snapshot, AGroupWhoseSavesMoveIsRememberedAndBootsFresh) {
  auto env = m_env;
  env["PROBEGATE_UNMOVED_STEP_NS"] = "0";
  const auto boot = [&](const std::string& name) { return boot_knob_case(dir() / name, env); };
  const auto [sight_output, sight] = boot("sight");
  ASSERT_FALSE(sight.empty()) << sight_output;
  EXPECT_EQ(sight_output.find("once to save it"), std::string::npos) << sight_output;
  const auto [first_output, first] = boot("first");
  ASSERT_FALSE(first.empty()) << first_output;
  EXPECT_FALSE(first.at("boot_path").at("restored").get<bool>()) << first_output;
  EXPECT_NE(first_output.find("moved the guest's clock by"), std::string::npos) << first_output;
  std::vector<fs::path> markers;
  for (const auto& entry : fs::directory_iterator(m_cache / "states"))
    if (entry.path().extension() == ".moved")
      markers.push_back(entry.path());
  ASSERT_EQ(markers.size(), 1U) << e2e::leftovers(m_cache / "states");
  // The first sight's note stays: the group has no state.
  EXPECT_TRUE(fs::exists(fs::path(markers[0]).replace_extension(".seen")));
  const auto moved = nlohmann::json::parse(core::read_file(markers[0]).value_or("{}"));
  ASSERT_EQ(moved.at("steps_ns").size(), 2U) << moved.dump();
  for (const auto& step : moved.at("steps_ns"))
    EXPECT_GT(step.get<long long>(), 0) << moved.dump();

  const auto [second_output, second] = boot("second");
  ASSERT_FALSE(second.empty()) << second_output;
  EXPECT_EQ(second_output.find("once to save it"), std::string::npos) << second_output;
  const auto reason = second.at("boot_path").at("fresh_reason").get<std::string>();
  EXPECT_NE(reason.find(markers[0].string()), std::string::npos) << reason;
  EXPECT_FALSE(second.at("boot_path").at("restored").get<bool>());
  // Every fresh boot: the same outcome in every field.
  EXPECT_EQ(second.at("outcome"), first.at("outcome"));
  EXPECT_EQ(sight.at("outcome"), first.at("outcome"));
  EXPECT_EQ(second.at("verdict"), "pass");
}

// Two jobs starting two cases of one group on a cold cache: one boots and
// saves, the other waits on the lock and restores that state.
TEST_F(Snapshot, TwoJobsOfOneGroupMakeOneState) {
  const auto ran =
      e2e::run_knobs(dir() / "cold", {"--filter", "knobs/*sync"}, m_env); // sync, prefer-async
  ASSERT_EQ(ran.size(), 2U);
  int made = 0;
  std::set<std::string> keys;
  for (const auto& [id, r] : ran) {
    EXPECT_EQ(r.at("verdict"), "pass") << id;
    expect_exact_restore(id, r);
    made += r.at("boot_path").at("state_made").get<bool>();
    keys.insert(r.at("boot_path").at("state_key").get<std::string>());
  }
  ASSERT_EQ(keys.size(), 1U);
  EXPECT_EQ(made, 1);
  EXPECT_EQ(e2e::leftovers(m_cache / "states"), *keys.begin() + "\n");
}

} // namespace
} // namespace probegate
