// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"
#include "drivers/suite_run.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <gtest/gtest.h>
#include <map>
#include <mutex>

namespace probegate::drivers {
namespace {

namespace fs = std::filesystem;
using verdict::VerdictKind;

suite::Case make_case(std::string id, std::optional<std::string> skip = {}) {
  suite::Case c;
  c.id = std::move(id);
  c.spec.name = c.id;
  c.skip = std::move(skip);
  c.where = "test.yaml:1:1";
  return c;
}

class Recorder final : public SuiteObserver {
public:
  void started(const suite::Case& c, int running) override {
    m_started.push_back(c.id);
    m_max_running = std::max(m_max_running, running);
  }
  void finished(const report::CaseReport& c, int, int, int) override { m_finished.push_back(c.id); }
  std::vector<std::string> m_started, m_finished;
  int m_max_running = 0;
};

// A fake case runner: verdicts scripted per case id (one per repeat).
struct Script {
  std::map<std::string, std::vector<VerdictKind>> verdicts;
  std::map<std::string, int> calls;
  std::string interrupt_on;
  std::string cannot_write_on; // this case fails to write its console log
  std::mutex lock;

  CaseRunner runner() {
    return [this](const spec::RunSpec& spec,
                  const fs::path& dir) -> core::Result<report::RunResult> {
      std::lock_guard guard(lock);
      if (spec.name == interrupt_on)
        return std::unexpected(core::Error{core::ErrorKind::interrupted, "interrupted"});
      const int n = calls[spec.name]++;
      report::RunResult r;
      r.spec = spec;
      r.dir = dir;
      const auto& v = verdicts[spec.name];
      r.verdict.kind = v.empty() ? VerdictKind::pass : v[std::min<size_t>(n, v.size() - 1)];
      if (spec.name == cannot_write_on) {
        r.verdict.kind = VerdictKind::error;
        r.error = "cannot write " + (dir / "console.log").string() + " (is its file system full?)";
      }
      return r;
    };
  }
};

class SuiteRun : public ::testing::Test {
protected:
  void SetUp() override {
    auto tmp = core::TempDir::create(fs::temp_directory_path(), "suite-run-");
    ASSERT_TRUE(tmp);
    m_tmp.emplace(std::move(*tmp));
    m_options.session_dir = m_tmp->path() / "session";
  }
  std::optional<core::TempDir> m_tmp;
  SuiteOptions m_options;
  Recorder m_recorder;
  Script m_script;
};

// A full results disk that still takes the small INCOMPLETE marker: the case
// that could not write its console log stops the session all the same.
TEST_F(SuiteRun, ACaseThatCannotWriteItsResultsStopsTheSession) {
  const std::vector cases{make_case("s/a"), make_case("s/b"), make_case("s/c")};
  m_script.cannot_write_on = "s/b";
  auto session = run_suite("s", cases, m_options, m_script.runner(), m_recorder);
  EXPECT_FALSE(session.complete);
  EXPECT_NE(session.storage_error.find("console.log"), std::string::npos) << session.storage_error;
  EXPECT_EQ(m_recorder.m_started, (std::vector<std::string>{"s/a", "s/b"})) << "s/c booted";
  EXPECT_FALSE(session.cases[2].ran);
  EXPECT_NE(session.cases[2].reason.find("the results directory cannot be written"),
            std::string::npos)
      << session.cases[2].reason;
}

TEST_F(SuiteRun, RunsEveryCaseInOrderAndKeepsSuiteOrderInTheReport) {
  const std::vector cases{make_case("s/a"), make_case("s/b"), make_case("s/c", "no knob")};
  m_script.verdicts["s/b"] = {VerdictKind::fail};
  auto session = run_suite("s", cases, m_options, m_script.runner(), m_recorder);
  EXPECT_TRUE(session.complete);
  // The marker goes only once summary.json is written.
  EXPECT_TRUE(fs::exists(m_options.session_dir / "INCOMPLETE"));
  session.dir = m_options.session_dir;
  ASSERT_TRUE(report::write_session(session));
  EXPECT_FALSE(fs::exists(m_options.session_dir / "INCOMPLETE"));
  ASSERT_EQ(session.cases.size(), 3u);
  EXPECT_EQ(session.cases[0].verdict, VerdictKind::pass);
  EXPECT_EQ(session.cases[1].verdict, VerdictKind::fail);
  EXPECT_EQ(session.cases[2].verdict, VerdictKind::skip);
  EXPECT_EQ(session.cases[2].reason, "no knob");
  EXPECT_TRUE(fs::exists(m_options.session_dir / "s/c/skipped.txt"));
  EXPECT_EQ(session.worst(), VerdictKind::fail);
  EXPECT_EQ(m_recorder.m_started, (std::vector<std::string>{"s/a", "s/b", "s/c"}));
  EXPECT_EQ(m_recorder.m_max_running, 1);
}

TEST_F(SuiteRun, JobsRunCasesAtOnce) {
  std::vector<suite::Case> cases;
  for (int i = 0; i < 8; ++i)
    cases.push_back(make_case("s/" + std::to_string(i)));
  // The runner blocks until two cases are inside it at the same time.
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  CaseRunner runner = [&](const spec::RunSpec& spec, const fs::path& dir) {
    if (++inside >= 2)
      overlapped = true;
    for (int spin = 0; spin < 2000000 && !overlapped; ++spin)
      std::this_thread::yield();
    --inside;
    report::RunResult r;
    r.spec = spec;
    r.dir = dir;
    return core::Result<report::RunResult>(r);
  };
  m_options.jobs = 2;
  auto session = run_suite("s", cases, m_options, runner, m_recorder);
  EXPECT_TRUE(session.complete);
  EXPECT_TRUE(overlapped) << "two workers never ran at once";
  EXPECT_EQ(m_recorder.m_finished.size(), 8u);
}

TEST_F(SuiteRun, FailFastStopsStartingCases) {
  const std::vector cases{make_case("s/a"), make_case("s/b"), make_case("s/c")};
  m_script.verdicts["s/a"] = {VerdictKind::fail};
  m_options.fail_fast = true;
  auto session = run_suite("s", cases, m_options, m_script.runner(), m_recorder);
  EXPECT_EQ(m_recorder.m_started, (std::vector<std::string>{"s/a"}));
  EXPECT_FALSE(session.cases[1].ran);
  EXPECT_EQ(session.cases[1].verdict, VerdictKind::error) << "a case not run is never a pass";
}

TEST_F(SuiteRun, InterruptionKeepsFinishedCasesAndMarksTheSession) {
  const std::vector cases{make_case("s/a"), make_case("s/b"), make_case("s/c")};
  m_script.interrupt_on = "s/b";
  auto session = run_suite("s", cases, m_options, m_script.runner(), m_recorder);
  EXPECT_TRUE(session.interrupted);
  EXPECT_FALSE(session.complete);
  EXPECT_TRUE(fs::exists(m_options.session_dir / "INCOMPLETE"));
  EXPECT_EQ(session.cases[0].verdict, VerdictKind::pass);
  EXPECT_FALSE(session.cases[2].ran);
}

// A fake of a full disk (the e2e twin mounts a small tmpfs): once the
// marker cannot be rewritten after a case, no further case boots.
TEST_F(SuiteRun, AResultsDirectoryThatCannotBeWrittenStopsTheSession) {
  const std::vector cases{make_case("s/a"), make_case("s/b"), make_case("s/c")};
  int booted = 0;
  CaseRunner runner = [&](const spec::RunSpec& spec, const fs::path& dir) {
    ++booted;
    // The marker's rename target becomes a non-empty directory.
    const fs::path marker = m_options.session_dir / "INCOMPLETE";
    fs::remove(marker);
    fs::create_directories(marker / "blocked");
    report::RunResult r;
    r.spec = spec;
    r.dir = dir;
    return core::Result<report::RunResult>(r);
  };
  auto session = run_suite("s", cases, m_options, runner, m_recorder);
  EXPECT_FALSE(session.complete);
  EXPECT_FALSE(session.storage_error.empty());
  EXPECT_EQ(booted, 1) << "cases booted into an unwritable directory";
  EXPECT_TRUE(session.cases[0].ran);
  EXPECT_FALSE(session.cases[1].ran);
  EXPECT_NE(session.cases[1].reason.find("cannot be written"), std::string::npos);
  EXPECT_EQ(session.worst(), VerdictKind::error);
}

TEST_F(SuiteRun, RepeatsThatDisagreeAreFlaky) {
  const std::vector cases{make_case("s/steady"), make_case("s/wobbly")};
  m_script.verdicts["s/steady"] = {VerdictKind::fail, VerdictKind::fail, VerdictKind::fail};
  m_script.verdicts["s/wobbly"] = {VerdictKind::pass, VerdictKind::fail, VerdictKind::pass};
  m_options.repeat = 3;
  auto session = run_suite("s", cases, m_options, m_script.runner(), m_recorder);
  EXPECT_EQ(session.cases[0].verdict, VerdictKind::fail);
  EXPECT_EQ(session.cases[1].verdict, VerdictKind::flaky);
  EXPECT_EQ(session.cases[1].reason, "repeats disagree: pass, fail, pass");
  EXPECT_EQ(session.cases[1].runs.size(), 3u);
  EXPECT_EQ(session.cases[1].runs[1].dir, m_options.session_dir / "s/wobbly/repeat-2");
  EXPECT_EQ(session.worst(), VerdictKind::fail) << "fail outranks flaky";
}

TEST_F(SuiteRun, RetriesRunInfrastructureErrorsAgainButNeverFailures) {
  const std::vector cases{make_case("s/qemu-killed"), make_case("s/broken-infra"),
                          make_case("s/kernel-fails")};
  m_script.verdicts["s/qemu-killed"] = {VerdictKind::error, VerdictKind::pass};
  m_script.verdicts["s/broken-infra"] = {VerdictKind::error};
  m_script.verdicts["s/kernel-fails"] = {VerdictKind::fail};
  m_options.retries = 1;
  auto session = run_suite("s", cases, m_options, m_script.runner(), m_recorder);
  EXPECT_EQ(session.cases[0].verdict, VerdictKind::pass);
  EXPECT_EQ(session.cases[0].retried, 1);
  EXPECT_EQ(session.cases[0].runs[0].dir, m_options.session_dir / "s/qemu-killed/retry-1");
  EXPECT_EQ(session.cases[1].verdict, VerdictKind::error) << "one retry, then the error stands";
  EXPECT_EQ(m_script.calls["s/broken-infra"], 2);
  EXPECT_EQ(m_script.calls["s/kernel-fails"], 1) << "a kernel failure is never retried";
  // Without --retries nothing runs twice.
  Script once;
  once.verdicts["s/qemu-killed"] = {VerdictKind::error, VerdictKind::pass};
  m_options.retries = 0;
  auto strict = run_suite("s", {make_case("s/qemu-killed")}, m_options, once.runner(), m_recorder);
  EXPECT_EQ(strict.cases[0].verdict, VerdictKind::error);
  EXPECT_EQ(once.calls["s/qemu-killed"], 1);
}

TEST(CombineRepeats, Table) {
  using V = VerdictKind;
  EXPECT_EQ(report::combine_repeats({V::pass, V::pass}), V::pass);
  EXPECT_EQ(report::combine_repeats({V::pass, V::fail}), V::flaky);
  EXPECT_EQ(report::combine_repeats({V::pass, V::error}), V::error);
  EXPECT_EQ(report::combine_repeats({V::crash, V::crash}), V::crash);
  EXPECT_EQ(report::worse(V::flaky, V::fail), V::fail);
  EXPECT_EQ(report::worse(V::skip, V::pass), V::skip);
}

// A pool of hosts (run --hosts) with a fake runner that loses a host.
class PoolRun : public SuiteRun {
protected:
  static pool::Host host(std::string name, int slots, bool kvm = false) {
    pool::Host h;
    h.name = std::move(name);
    h.uri = "qemu+tcp://" + h.name + "/system";
    h.slots = slots;
    if (kvm)
      h.labels["kvm"] = "true";
    return h;
  }
  // Every case on `lose` fails as its host going away; the rest pass, but
  // only once `lose` has had a case (so that it surely gets one).
  PlacedRunner runner(const std::string& lose) {
    return [this, lose](const spec::RunSpec& spec, const fs::path& dir,
                        const pool::Host* on) -> core::Result<report::RunResult> {
      std::unique_lock guard(m_lock);
      m_ran.emplace_back(spec.name, on ? on->name : "");
      m_changed.notify_all();
      if (on && !lose.empty() && on->name != lose)
        m_changed.wait(guard, [&] {
          return std::ranges::any_of(m_ran, [&](const auto& r) { return r.second == lose; });
        });
      // What a boot writes before its host goes: left in the case dir.
      (void)core::write_file_atomic(dir / "console.log", on ? on->name + "\n" : "\n");
      if (on && on->name == lose)
        return std::unexpected(core::Error{core::ErrorKind::host_lost, "lost " + lose});
      report::RunResult r;
      r.spec = spec;
      r.dir = dir;
      r.verdict.kind = VerdictKind::pass;
      return r;
    };
  }
  std::mutex m_lock;
  std::condition_variable m_changed;
  std::vector<std::pair<std::string, std::string>> m_ran; // case, host
};

TEST_F(PoolRun, ALostHostsCasesRunAgainElsewhereOnceEach) {
  m_options.hosts = {host("a", 1), host("b", 2)};
  std::vector<suite::Case> cases;
  for (int i = 0; i < 5; ++i)
    cases.push_back(make_case("c" + std::to_string(i)));
  const auto session = run_suite("pool", cases, m_options, runner("b"), m_recorder);
  EXPECT_TRUE(session.complete);
  EXPECT_EQ(session.jobs, 3);
  ASSERT_EQ(session.hosts.size(), 2u);
  EXPECT_FALSE(session.hosts[0].lost);
  EXPECT_EQ(session.hosts[0].cases, 5);
  EXPECT_TRUE(session.hosts[1].lost);
  EXPECT_EQ(session.hosts[1].lost_reason, "lost b");
  EXPECT_EQ(session.hosts[1].cases, 0);
  int retried_from_b = 0;
  for (const auto& c : session.cases) {
    EXPECT_EQ(c.verdict, VerdictKind::pass) << c.id;
    EXPECT_EQ(c.host, "a") << c.id;
    ASSERT_EQ(c.runs.size(), 1u) << c.id;
    if (!c.lost_on.empty()) {
      EXPECT_EQ(c.lost_on, std::vector<std::string>{"b"});
      ++retried_from_b;
      // The lost attempt is kept aside; the case dir holds the new one only.
      EXPECT_EQ(*core::read_file(m_options.session_dir / "lost-hosts" / "b" / c.id / "console.log"),
                "b\n");
      EXPECT_EQ(*core::read_file(c.dir / "console.log"), "a\n");
    }
  }
  // b had two slots: one or two cases were in flight there when it went.
  EXPECT_GE(retried_from_b, 1);
  EXPECT_LE(retried_from_b, 2);
  EXPECT_EQ(m_recorder.m_finished.size(), 5u); // each finished once
  int on_b = 0;
  for (const auto& [name, on] : m_ran)
    on_b += on == "b";
  EXPECT_EQ(on_b, retried_from_b); // b took nothing after it was lost
}

TEST_F(PoolRun, EveryHostLostLeavesTheRestNotRunAndTheSessionIncomplete) {
  m_options.hosts = {host("b", 1)};
  const std::vector<suite::Case> cases{make_case("x"), make_case("y")};
  const auto session = run_suite("pool", cases, m_options, runner("b"), m_recorder);
  EXPECT_FALSE(session.complete);
  EXPECT_TRUE(session.hosts[0].lost);
  for (const auto& c : session.cases) {
    EXPECT_EQ(c.verdict, VerdictKind::error);
    EXPECT_FALSE(c.ran);
    EXPECT_NE(c.reason.find("every host that could run it"), std::string::npos) << c.reason;
  }
  EXPECT_EQ(session.cases[0].lost_on, std::vector<std::string>{"b"});
  EXPECT_NE(session.cases[0].reason.find("lost with host b"), std::string::npos);
  EXPECT_TRUE(session.cases[1].lost_on.empty());
  EXPECT_TRUE(m_recorder.m_finished.empty());
}

TEST_F(PoolRun, ACaseThatAsksForKvmGoesOnlyToAKvmHost) {
  m_options.hosts = {host("tcg", 2), host("kvm", 1, true)};
  auto wants_kvm = make_case("k");
  wants_kvm.spec.accel = "kvm";
  const std::vector<suite::Case> cases{make_case("a"), wants_kvm, make_case("b"), make_case("c")};
  const auto session = run_suite("pool", cases, m_options, runner(""), m_recorder);
  EXPECT_TRUE(session.complete);
  EXPECT_EQ(session.cases[1].host, "kvm");
  for (const auto& [name, on] : m_ran) {
    if (name == "k") {
      EXPECT_EQ(on, "kvm");
    }
  }
  EXPECT_EQ(session.hosts[0].cases + session.hosts[1].cases, 4);
}

TEST_F(PoolRun, WithoutAPoolALostHostIsTheCasesError) {
  m_options.jobs = 1;
  const std::vector<suite::Case> cases{make_case("x")};
  const PlacedRunner lost = [](const spec::RunSpec&, const fs::path&,
                               const pool::Host*) -> core::Result<report::RunResult> {
    return std::unexpected(core::Error{core::ErrorKind::host_lost, "gone"});
  };
  const auto session = run_suite("one", cases, m_options, lost, m_recorder);
  EXPECT_EQ(session.cases[0].verdict, VerdictKind::error);
  EXPECT_EQ(session.cases[0].reason, "gone");
  EXPECT_TRUE(session.complete);
}

} // namespace
} // namespace probegate::drivers
