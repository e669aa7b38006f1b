// SPDX-License-Identifier: GPL-2.0-only
// End to end: a pool of libvirt hosts (issue 14, `run --hosts`), on two real
// libvirt daemons on this machine (tools/libvirt-hosts.sh: each in a mount
// namespace of its own, reachable as qemu+tcp:// on loopback). One daemon
// is SIGKILLed while it runs a case: the suite still finishes, every case
// once, its lost cases run again on the other host, and summary.json says
// who ran what and which host was lost. Files reach the hosts through their
// storage pools, once. A bad hosts file is exit 2 before anything boots.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

namespace probegate {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string k_hosts_script = PROBEGATE_SOURCE_DIR "/tools/libvirt-hosts.sh";

struct Daemon {
  std::string name; // host1, host2
  std::string uri;
  pid_t pid = 0;
};

class Pool : public e2e::PrivateCacheTest {
protected:
  Pool() : PrivateCacheTest("pg-pool-") {}
  void SetUp() override {
    PrivateCacheTest::SetUp();
    if (HasFatalFailure() || IsSkipped())
      return;
    if (::geteuid() != 0)
      PROBEGATE_E2E_SKIP() << "libvirt daemons of their own need root";
    core::Command start;
    start.argv = {k_hosts_script, "start", (dir() / "hosts").string(), "2"};
    // libvirt's QEMU capabilities, probed once for every test's daemons.
    start.env = {{"LIBVIRT_HOSTS_CAPS_CACHE",
                  (core::cache_root() / "libvirt" / "hosts-capabilities").string()}};
    start.timeout = 5min;
    const auto started = e2e::run_captured(start);
    m_started = true;
    ASSERT_EQ(started.exit_code, 0) << started.output;
    std::istringstream lines(started.output);
    std::string line;
    while (std::getline(lines, line)) {
      Daemon d;
      std::istringstream words(line);
      if (words >> d.name >> d.uri >> d.pid && d.name.starts_with("host"))
        m_daemons.push_back(d);
    }
    ASSERT_EQ(m_daemons.size(), 2U) << started.output;
  }
  void TearDown() override {
    if (!m_started)
      return;
    core::Command stop;
    stop.argv = {k_hosts_script, "stop", (dir() / "hosts").string()};
    stop.timeout = 2min;
    const auto stopped = e2e::run_captured(stop);
    EXPECT_EQ(stopped.exit_code, 0) << stopped.output;
  }

  // A hosts file naming the daemons `one` and `two`, a slot each, each with
  // a storage pool directory of its own.
  fs::path hosts_file(size_t count) const {
    std::string text = "hosts:\n";
    const char* names[] = {"one", "two"};
    for (size_t i = 0; i < count; ++i)
      text += fmt::format("  - name: {}\n    uri: {}\n    slots: 1\n    pool_dir: {}\n", names[i],
                          m_daemons[i].uri,
                          (dir() / "hosts" / ("pool-" + std::string(names[i]))).string());
    const auto file = dir() / fmt::format("hosts-{}.yaml", count);
    EXPECT_TRUE(core::write_file_atomic(file, text));
    return file;
  }

  // The probegate domains a daemon has running.
  static std::string domains(const std::string& uri) {
    core::Command list;
    list.argv = {"virsh", "-q", "-c", uri, "list", "--name"};
    list.timeout = 1min;
    return e2e::run_captured(list).output;
  }

  bool m_started = false;
  std::vector<Daemon> m_daemons;
};

nlohmann::json summary_of(const fs::path& results) {
  return nlohmann::json::parse(*core::read_file(e2e::only_session(results) / "summary.json"));
}

// Host two's daemon is SIGKILLed as soon as it runs a domain (its pid file
// appears). Every case is still recorded once, those lost on two ran again
// on one, and nothing is left running on one.
TEST_F(Pool, AKilledHostsCasesFinishOnTheOtherHost) {
  const fs::path results = dir() / "results";
  const fs::path two_domains = dir() / "hosts" / "host2" / "run" / "qemu";
  std::atomic<bool> killed{false}, done{false};
  std::jthread killer([&] {
    while (!done && !killed) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(two_domains, ec))
        if (e.path().filename().string().starts_with("probegate-") &&
            e.path().extension() == ".pid") {
          ::kill(m_daemons[1].pid, SIGKILL);
          killed = true;
          break;
        }
      std::this_thread::sleep_for(50ms); // a poll for the pid file, not a wait for an effect
    }
  });
  const auto ran = e2e::run_probegate({"run", PROBEGATE_SOURCE_DIR "/suites/knobs.yaml", "--hosts",
                                       hosts_file(2).string(), "--results", results.string()},
                                      m_env, 30min);
  done = true;
  killer.join();
  ASSERT_TRUE(killed) << "host two never ran a domain:\n" << ran.output;
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find("lost host two"), std::string::npos) << ran.output;

  const auto summary = summary_of(results);
  EXPECT_TRUE(summary.at("complete").get<bool>());
  ASSERT_EQ(summary.at("hosts").size(), 2U);
  const auto& one = summary.at("hosts")[0];
  const auto& two = summary.at("hosts")[1];
  EXPECT_EQ(one.at("name"), "one");
  EXPECT_FALSE(one.at("lost").get<bool>());
  EXPECT_TRUE(two.at("lost").get<bool>()) << two.dump(2);
  EXPECT_NE(two.at("lost_reason").get<std::string>().find("127.0.0.1"), std::string::npos)
      << two.dump(2);
  // Every case once: the hosts' counts add up to the suite, each case names
  // its host, and a case lost on two ran again on one.
  ASSERT_EQ(summary.at("cases").size(), 8U);
  EXPECT_EQ(one.at("cases").get<int>() + two.at("cases").get<int>(), 8);
  const auto session = e2e::only_session(results);
  int moved = 0;
  for (const auto& c : summary.at("cases")) {
    const auto id = c.at("id").get<std::string>();
    EXPECT_EQ(c.at("verdict"), "pass") << id << ": " << c.at("reason");
    ASSERT_EQ(c.at("runs").size(), 1U) << id;
    const auto result = nlohmann::json::parse(
        *core::read_file(fs::path(c.at("runs")[0].at("dir").get<std::string>()) / "result.json"));
    EXPECT_EQ(result.at("host"), c.at("host")) << id;
    EXPECT_TRUE(result.at("libvirt_uri").get<std::string>().starts_with("qemu+tcp://127.0.0.1:"))
        << id;
    if (c.at("lost_on").empty())
      continue;
    ++moved;
    EXPECT_EQ(c.at("lost_on"), nlohmann::json::array({"two"})) << id;
    EXPECT_EQ(c.at("host"), "one") << id;
    // The attempt on two is kept aside, as an error, never as the case.
    const auto lost = nlohmann::json::parse(
        *core::read_file(session / "lost-hosts" / "two" / id / "result.json"));
    EXPECT_EQ(lost.at("verdict"), "error") << id;
  }
  EXPECT_GE(moved, 1);
  EXPECT_EQ(domains(m_daemons[0].uri), "") << "domains left on host one";

  // The files went to one's pool once, named by content, each with its
  // mark of a finished upload; a second run there sends nothing.
  int volumes = 0;
  for (const auto& e : fs::directory_iterator(dir() / "hosts" / "pool-one"))
    if (const auto name = e.path().filename().string();
        name.starts_with("pg-") && !name.ends_with(".ok")) {
      ++volumes;
      EXPECT_TRUE(fs::exists(e.path().string() + ".ok")) << name;
    }
  EXPECT_GE(volumes, 3) << "kernel, initrd and firmware";
  const fs::path again = dir() / "again";
  const auto second = e2e::run_probegate({"run", PROBEGATE_SOURCE_DIR "/suites/knobs.yaml",
                                          "--filter", "knobs/sync", "--hosts",
                                          hosts_file(1).string(), "--results", again.string()},
                                         m_env, 10min);
  EXPECT_EQ(second.exit_code, 0) << second.output;
  const auto r = e2e::results_of(again);
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r.begin()->second.at("uploaded_bytes"), 0) << r.begin()->second.dump(2);
  EXPECT_EQ(r.begin()->second.at("host"), "one");
}

// Every host lost: the cases left are recorded as not run, the session as
// incomplete, and the exit code is 3 (infrastructure), not a kernel's.
TEST_F(Pool, LosingEveryHostIsAnInfrastructureError) {
  ::kill(m_daemons[0].pid, SIGKILL);
  const fs::path results = dir() / "results";
  const auto ran = e2e::run_probegate({"run", PROBEGATE_SOURCE_DIR "/suites/knobs.yaml", "--filter",
                                       "knobs/sync*", "--hosts", hosts_file(1).string(),
                                       "--results", results.string()},
                                      m_env, 10min);
  EXPECT_EQ(ran.exit_code, 3) << ran.output;
  const auto summary = summary_of(results);
  EXPECT_FALSE(summary.at("complete").get<bool>());
  EXPECT_TRUE(summary.at("hosts")[0].at("lost").get<bool>());
  EXPECT_NE(summary.at("hosts")[0].at("lost_reason").get<std::string>().find("cannot connect"),
            std::string::npos);
  for (const auto& c : summary.at("cases")) {
    EXPECT_EQ(c.at("verdict"), "error");
    EXPECT_NE(c.at("reason").get<std::string>().find("every host that could run it"),
              std::string::npos)
        << c.at("reason");
  }
}

// Bad input is exit 2 with file:line before anything boots: no session
// directory is made.
TEST(PoolInput, BadHostsFilesAndOptionsAreUsageErrors) {
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "pg-pool-input-");
  ASSERT_TRUE(tmp);
  const auto results = tmp->path() / "results";
  const auto bad = tmp->path() / "bad.yaml";
  ASSERT_TRUE(core::write_file_atomic(bad, "hosts:\n  - uri: qemu+tpc://lab1/system\n"));
  const auto good = tmp->path() / "good.yaml";
  ASSERT_TRUE(core::write_file_atomic(good, "hosts:\n  - uri: qemu+tcp://127.0.0.1:1/system\n"));
  const std::string suite = PROBEGATE_SOURCE_DIR "/suites/knobs.yaml";
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  for (const auto& [args, says] : std::vector<Case>{
           {{"--hosts", bad.string()},
            bad.string() + ":2:10: 'uri' must be a URI with a transport"},
           {{"--hosts", (tmp->path() / "none.yaml").string()}, "none.yaml does not exist"},
           {{"--hosts", good.string(), "--jobs", "2"}, "--jobs and --hosts"},
           {{"--hosts", good.string(), "--backend", "qemu"}, "--backend qemu cannot go with it"},
           {{"--hosts", good.string(), "--connect", "qemu:///system"}, "--connect and --hosts"}}) {
    std::vector<std::string> argv{"run", suite, "--results", results.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto ran = e2e::run_probegate(argv);
    EXPECT_EQ(ran.exit_code, 2) << ran.output;
    EXPECT_NE(ran.output.find(says), std::string::npos) << ran.output;
    EXPECT_EQ(e2e::leftovers(results), "");
  }
}

} // namespace
} // namespace probegate
