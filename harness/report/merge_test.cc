// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"
#include "report/merge.h"
#include "report/run_result.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace probegate::report {
namespace {

namespace fs = std::filesystem;
using verdict::VerdictKind;

class Scratch : public ::testing::Test {
protected:
  void SetUp() override {
    m_dir = fs::temp_directory_path() /
            fmt::format("pg-merge-{}-{}", ::getpid(),
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(m_dir);
    fs::create_directories(m_dir);
  }
  void TearDown() override { fs::remove_all(m_dir); }
  fs::path m_dir;
};

// A run with something in every kind of field.
RunResult rich_run(const fs::path& dir) {
  RunResult r;
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"devices", "3"},
                                                        {"udev_timeout", "5"},
                                                        {"async", "module-param"},
                                                        {"userspace", "debian:trixie"},
                                                        {"init", "systemd"},
                                                        {"expect_bound", "2"}})
    EXPECT_TRUE(spec::apply_option(r.spec, key, value)) << key;
  r.spec.name = "knobs/module-param";
  r.kernel_release = "6.1.0-27-amd64";
  r.userspace_suite = "trixie";
  r.udev_extra_s = 10;
  r.systemd_package = 257;
  auto& o = r.outcome;
  o.booted = true;
  o.devices_expected = 3;
  o.devices_bound = 2;
  o.probe_failures = 1;
  o.udev_worker_killed = true;
  o.udev_kills.push_back({.device = "slowprobe.0",
                          .seqnum = 1234,
                          .worker_pid = 77,
                          .t_s = 15.25,
                          .loading_module = true,
                          .signal = 9});
  o.udev_failed_events.push_back({.seqnum = 1234,
                                  .devpath = "/devices/pci0000:00/0000:00:03.0",
                                  .signal = 9,
                                  .signal_name = "KILL",
                                  .exit_status = std::nullopt,
                                  .errno_name = ""});
  o.probes.push_back({.device = "slowprobe0", .start_s = 1.5, .end_s = 17.5, .result = -4});
  o.probes.push_back(
      {.device = "slowprobe1", .start_s = 1.5, .end_s = std::nullopt, .result = std::nullopt});
  o.systemd_device_timeouts.push_back({.unit = "dev-slowprobe0.device", .t_s = 91.92});
  o.init = "systemd";
  o.emergency = true;
  o.systemd_version = 257;
  o.udev_version = 257;
  o.guest_module_async_probe = true;
  o.time_to_available_s = 17.5;
  o.guest_kernel = "6.1.0-27-amd64 \x1b[31m<script>";
  r.verdict.kind = VerdictKind::fail;
  r.verdict.reason = "";
  r.verdict.checks = {{"devices_bound", "2", "2", true}, {"booted", "yes", "no", false}};
  r.kernel_git = kernel::GitCheckout{.commit = "0123456789abcdef0123456789abcdef01234567",
                                     .dirty = true,
                                     .repository_url = "https://git.kernel.org/pub/scm/linux.git",
                                     .branch = "master"};
  r.kernel_cmdline = "console=ttyS0 udev.event_timeout=5";
  r.qemu_argv = {"qemu-system-x86_64", "-icount", "shift=0"};
  r.accel = "tcg";
  r.accel_reason = "no /dev/kvm";
  r.stage_s = {{"boot", 7.5}, {"image", 0.25}};
  r.host_before_qemu_s = 0.5;
  r.wall_s = 8.25;
  r.dir = dir;
  return r;
}

TEST_F(Scratch, AResultJsonReadsBackToTheSameDocument) {
  const auto run = rich_run(m_dir);
  ASSERT_TRUE(write_result(run));
  auto back = read_result(m_dir / "result.json");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(to_json(*back).dump(2), to_json(run).dump(2));
  EXPECT_EQ(back->dir, m_dir);
}

TEST_F(Scratch, AnUnreadableResultNamesItsFile) {
  ASSERT_TRUE(
      core::write_file_atomic(m_dir / "result.json", "{\"format\": \"probegate-result/1\"}"));
  auto back = read_result(m_dir / "result.json");
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().kind, core::ErrorKind::usage);
  EXPECT_NE(back.error().message.find((m_dir / "result.json").string()), std::string::npos)
      << back.error().message;
}

// One shard's session directory, written as `probegate run --shard` does.
Session write_shard(const fs::path& dir, int index, int total, const std::vector<std::string>& ids,
                    const std::string& sha = "abc") {
  Session s;
  s.suite = "knobs";
  s.dir = dir;
  s.complete = true;
  s.suite_sha256 = sha;
  s.suite_cases = {"knobs/a", "knobs/b", "knobs/c"};
  s.shard_index = index;
  s.shard_total = total;
  s.wall_s = 10.0 * index;
  for (const auto& id : ids) {
    CaseReport c;
    c.id = id;
    c.row = id;
    c.kernel = "debian:6.1";
    c.dir = dir / id;
    c.ran = true;
    c.runs.push_back(rich_run(dir / id));
    c.verdict = c.runs.back().verdict.kind;
    EXPECT_TRUE(write_result(c.runs.back()));
    s.cases.push_back(std::move(c));
  }
  EXPECT_TRUE(write_session(s));
  return s;
}

TEST_F(Scratch, ShardsMergeInSuiteOrderFromWhereverTheyWereMoved) {
  write_shard(m_dir / "made/1", 1, 2, {"knobs/c", "knobs/a"});
  write_shard(m_dir / "made/2", 2, 2, {"knobs/b"});
  // A CI engine hands the artifacts over somewhere else.
  fs::rename(m_dir / "made", m_dir / "moved");
  auto one = read_session(m_dir / "moved/1");
  ASSERT_TRUE(one) << one.error().message;
  auto two = read_session(m_dir / "moved/2");
  ASSERT_TRUE(two) << two.error().message;
  EXPECT_EQ(one->cases.at(0).runs.at(0).dir, m_dir / "moved/1/knobs/c");

  auto merged = merge_sessions({*two, *one}, m_dir / "out");
  ASSERT_TRUE(merged) << merged.error().message;
  ASSERT_EQ(merged->cases.size(), 3u);
  EXPECT_EQ(merged->cases[0].id, "knobs/a");
  EXPECT_EQ(merged->cases[1].id, "knobs/b");
  EXPECT_EQ(merged->cases[2].id, "knobs/c");
  EXPECT_TRUE(merged->complete);
  EXPECT_TRUE(merged->missing_shards.empty());
  EXPECT_DOUBLE_EQ(merged->wall_s, 20.0);
  EXPECT_EQ(merged->cases[2].runs.at(0).outcome.udev_kills.at(0).t_s, 15.25);

  fs::create_directories(m_dir / "out");
  ASSERT_TRUE(write_session(*merged));
  EXPECT_FALSE(fs::exists(m_dir / "out" / k_incomplete_marker));
  const auto j = nlohmann::json::parse(*core::read_file(m_dir / "out/summary.json"));
  EXPECT_EQ(j.at("cases").size(), 3u);
  EXPECT_EQ(j.at("merged_from").size(), 2u);
  EXPECT_EQ(j.at("counts").at("fail"), 3);
}

TEST_F(Scratch, AMissingShardIsNamedAndTheMergeStaysIncomplete) {
  auto one = write_shard(m_dir / "1", 1, 3, {"knobs/a"});
  auto three = write_shard(m_dir / "3", 3, 3, {"knobs/c"});
  auto merged = merge_sessions({one, three}, m_dir / "out");
  ASSERT_TRUE(merged) << merged.error().message;
  EXPECT_FALSE(merged->complete);
  EXPECT_EQ(merged->missing_shards, std::vector<int>{2});
  fs::create_directories(m_dir / "out");
  ASSERT_TRUE(write_session(*merged));
  EXPECT_TRUE(fs::exists(m_dir / "out" / k_incomplete_marker));
  EXPECT_NE(render_session(*merged).find("missing shards: 2 (1 of the suite's 3 cases not run)"),
            std::string::npos)
      << render_session(*merged);
}

TEST_F(Scratch, MergeRefusesWhatIsNotOneRun) {
  auto one = write_shard(m_dir / "1", 1, 2, {"knobs/a"});
  auto again = write_shard(m_dir / "1b", 1, 2, {"knobs/b"});
  auto twice = write_shard(m_dir / "2", 2, 2, {"knobs/a", "knobs/b"});
  auto other = write_shard(m_dir / "o", 2, 2, {"knobs/b"}, "def");
  auto refused = [&](const std::vector<Session>& shards, std::string_view says) {
    auto merged = merge_sessions(shards, m_dir / "out");
    ASSERT_FALSE(merged) << says;
    EXPECT_EQ(merged.error().kind, core::ErrorKind::usage);
    EXPECT_NE(merged.error().message.find(says), std::string::npos) << merged.error().message;
  };
  refused({one, again}, "shard 1/2 is given twice");
  refused({one, twice}, "case knobs/a appears twice");
  refused({one, other}, "suite files (sha256) differ (abc and def)");
  auto renamed = one;
  renamed.suite = "smoke";
  refused({twice, renamed}, "suites differ");
}

TEST_F(Scratch, ASessionWithoutSummaryIsNotFinished) {
  fs::create_directories(m_dir / "s");
  auto s = read_session(m_dir / "s");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("is not a finished session"), std::string::npos)
      << s.error().message;
}

} // namespace
} // namespace probegate::report
