// SPDX-License-Identifier: GPL-2.0-only
// End to end: the libvirt backend (issue 14), on libvirt's real embedded
// QEMU driver. The knob suite finds on libvirt what it finds on probegate's
// own QEMU; bad URIs are usage errors before anything boots; an unreachable
// daemon and a domain killed from outside are infrastructure errors; a
// signal destroys the domain, and what a SIGKILLed run left is destroyed by
// the next run.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <csignal>
#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <string>

namespace probegate {
namespace {

namespace fs = std::filesystem;

class Libvirt : public e2e::PrivateCacheTest {
protected:
  Libvirt() : PrivateCacheTest("pg-libvirt-") {}
  void SetUp() override {
    PrivateCacheTest::SetUp();
    if (HasFatalFailure() || IsSkipped())
      return;
    // A runtime directory of its own, for the embedded roots (short: QEMU's
    // monitor socket lives below them).
    auto runtime = core::TempDir::create("/tmp", "pgl-");
    ASSERT_TRUE(runtime) << runtime.error().message;
    m_runtime.emplace(std::move(*runtime));
    m_env["PROBEGATE_RUNTIME_DIR"] = m_runtime->path().string();
  }
  std::optional<core::TempDir> m_runtime;

  // The embedded roots of this test's runs: run-<pid>-XXXXXX.
  std::vector<fs::path> roots() const {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(m_runtime->path() / "libvirt", ec))
      if (e.path().filename().string().starts_with("run-"))
        out.push_back(e.path());
    return out;
  }

  // The pid of probegate that owns `root`, from its name.
  static pid_t owner(const fs::path& root) {
    return std::atoi(root.filename().string().c_str() + 4);
  }

  // The QEMU libvirt runs for a domain under `root` (its pid file), or 0.
  static pid_t domain_qemu(const fs::path& root) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root / "run" / "qemu", ec))
      if (e.path().extension() == ".pid" && e.path().filename() != "driver.pid")
        if (auto text = core::read_file(e.path()))
          return std::atoi(text->c_str());
    return 0;
  }

  // probegate `args` with this test's cache; `when` (the first console line
  // holding `text`) runs `act` once, with the run's embedded root.
  e2e::Captured run_acting(const std::vector<std::string>& args, std::string_view text,
                           const std::function<void(const fs::path& root)>& act) {
    auto runner = proc::make_process_runner();
    core::Command command;
    command.argv = {PROBEGATE_BINARY};
    command.argv.insert(command.argv.end(), args.begin(), args.end());
    command.env = m_env;
    command.timeout = std::chrono::minutes(10);
    e2e::Captured out;
    bool acted = false;
    auto ran = runner->run(command, [&](std::string_view line) {
      out.output.append(line).push_back('\n');
      if (!acted && line.find(text) != std::string_view::npos) {
        const auto all = roots();
        if (all.size() == 1) {
          act(all.front());
          acted = true;
        }
      }
      return proc::LineAction::keep_going;
    });
    EXPECT_TRUE(acted) << "never saw '" << text << "' with one embedded root:\n" << out.output;
    if (ran)
      out.exit_code = ran->signal ? 128 + ran->signal : ran->exit_code;
    return out;
  }

  static std::vector<std::string> slow_boot(const fs::path& results) {
    return {"boot",           "--backend", "libvirt",   "--console",        "--kernel",
            "debian:6.1",     "--devices", "1",         "--probe-delay-ms", "6000",
            "--expect-bound", "1",         "--results", results.string()};
  }
};

// What a case found that does not hang on the guest's exact instants.
// The backends' guest times differ by up to milliseconds
// (docs/FACTS.md "libvirt"), and whether udev also kills a worker that is
// not loading the module, one that waits on the loader, is decided within
// them (docs/FACTS.md "Which worker is killed"): those counts are left out.
nlohmann::json verdict_fields(const nlohmann::json& r) {
  auto out = e2e::found(r);
  for (const char* timing_bound : {"udev_kills", "udev_slow_warnings", "udev_failed_events"})
    out.erase(timing_bound);
  return out;
}

// suites/knobs.yaml on libvirt finds what it finds on probegate's QEMU
// (fresh boots on both: libvirt boots every case afresh): every verdict,
// whether the loader was killed, the bound devices and every probe's
// result. result.json names the backend and the URI, and the run directory
// keeps the domain XML.
TEST_F(Libvirt, KnobSuiteFindsWhatTheQemuBackendFinds) {
  const auto qemu = e2e::run_knobs(dir() / "qemu", {"--fresh-boot"}, m_env);
  const auto libvirt = e2e::run_knobs(dir() / "libvirt", {"--backend", "libvirt"}, m_env);
  ASSERT_EQ(qemu.size(), 8U);
  ASSERT_EQ(libvirt.size(), 8U);
  int booted = 0;
  for (const auto& [id, r] : libvirt) {
    ASSERT_TRUE(qemu.contains(id)) << id;
    EXPECT_EQ(verdict_fields(r), verdict_fields(qemu.at(id))) << id;
    EXPECT_EQ(r.at("backend"), "libvirt") << id;
    EXPECT_EQ(qemu.at(id).at("backend"), "qemu") << id;
    if (r.at("verdict") == "skip")
      continue;
    ++booted;
    EXPECT_TRUE(r.at("libvirt_uri").get<std::string>().starts_with("qemu:///embed?root="))
        << r.at("libvirt_uri");
  }
  int xmls = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir() / "libvirt"))
    if (e.path().filename() == "domain.xml") {
      ++xmls;
      EXPECT_NE(core::read_file(e.path())->find("<qemu:arg value='shift=0,sleep=off'/>"),
                std::string::npos);
    }
  EXPECT_EQ(xmls, booted);
  // The run's embedded root went with it.
  EXPECT_TRUE(roots().empty()) << e2e::leftovers(m_runtime->path() / "libvirt");
}

// A URI with a typo, or --connect without --backend libvirt, is bad input:
// exit 2, the option named, nothing booted or written.
TEST_F(Libvirt, BadUriIsAUsageErrorBeforeAnythingBoots) {
  const auto results = dir() / "results";
  const auto typo = e2e::run_probegate(
      {"run", PROBEGATE_SOURCE_DIR "/suites/smoke.yaml", "--backend", "libvirt", "--connect",
       "qemu+tpc://127.0.0.1/system", "--results", results.string()},
      m_env);
  EXPECT_EQ(typo.exit_code, 2) << typo.output;
  EXPECT_NE(typo.output.find("--connect"), std::string::npos) << typo.output;
  EXPECT_NE(typo.output.find("unknown transport 'tpc'"), std::string::npos) << typo.output;
  const auto alone = e2e::run_probegate(
      {"boot", "--connect", "qemu:///system", "--results", results.string()}, m_env);
  EXPECT_EQ(alone.exit_code, 2) << alone.output;
  EXPECT_NE(alone.output.find("--backend libvirt"), std::string::npos) << alone.output;
  const auto suite = dir() / "bad.yaml";
  ASSERT_TRUE(core::write_file_atomic(suite, "suite: bad\ncases:\n  - id: a\n    backend: libvirt\n"
                                             "    connect: qemu://host/sytem\n"));
  const auto in_suite =
      e2e::run_probegate({"run", suite.string(), "--results", results.string()}, m_env);
  EXPECT_EQ(in_suite.exit_code, 2) << in_suite.output;
  EXPECT_NE(in_suite.output.find("bad.yaml"), std::string::npos) << in_suite.output;
  EXPECT_NE(in_suite.output.find("/sytem"), std::string::npos) << in_suite.output;
  EXPECT_EQ(e2e::leftovers(results), "");
}

// No daemon behind the URI: an infrastructure error (exit 3) in result.json.
TEST_F(Libvirt, UnreachableDaemonIsAnInfrastructureError) {
  const auto results = dir() / "results";
  const auto booted =
      e2e::boot_into(results, {"boot", "--backend", "libvirt", "--connect",
                               "qemu+tcp://127.0.0.1:1/system", "--results", results.string()});
  EXPECT_EQ(booted.ran.exit_code, 3) << booted.ran.output;
  EXPECT_EQ(booted.result.at("verdict"), "error") << booted.result.dump(2);
  EXPECT_NE(booted.result.at("error").get<std::string>().find("cannot connect to libvirt"),
            std::string::npos)
      << booted.result.dump(2);
}

// QEMU killed from outside the domain's owner: exit 3, never a kernel
// failure, and nothing left running.
TEST_F(Libvirt, DomainKilledFromOutsideIsAnInfrastructureError) {
  const auto results = dir() / "results";
  pid_t qemu = 0;
  const auto ran = run_acting(slow_boot(results), "event=udevd-started", [&](const fs::path& root) {
    qemu = domain_qemu(root);
    ASSERT_GT(qemu, 0);
    ::kill(qemu, SIGKILL);
  });
  EXPECT_EQ(ran.exit_code, 3) << ran.output;
  EXPECT_FALSE(e2e::alive(qemu));
  const auto result =
      nlohmann::json::parse(*core::read_file(e2e::only_session(results) / "result.json"));
  EXPECT_EQ(result.at("verdict"), "error") << result.dump(2);
  EXPECT_NE(result.at("error").get<std::string>().find("libvirt"), std::string::npos)
      << result.dump(2);
}

// SIGINT mid-boot: probegate destroys its domain before it exits.
TEST_F(Libvirt, InterruptDestroysTheDomain) {
  const auto results = dir() / "results";
  pid_t qemu = 0;
  const auto ran = run_acting(slow_boot(results), "event=udevd-started", [&](const fs::path& root) {
    qemu = domain_qemu(root);
    ::kill(owner(root), SIGINT);
  });
  EXPECT_NE(ran.exit_code, 0) << ran.output;
  EXPECT_GT(qemu, 0);
  EXPECT_FALSE(e2e::alive(qemu)) << ran.output;
  EXPECT_TRUE(roots().empty()) << e2e::leftovers(m_runtime->path() / "libvirt");
}

// A SIGKILLed probegate cannot destroy its domain (the embedded driver
// keeps no daemon to do it): the next run on the same cache does, and
// removes the dead run's root.
TEST_F(Libvirt, NextRunDestroysWhatAKilledRunLeft) {
  const auto results = dir() / "results";
  pid_t qemu = 0;
  fs::path dead_root;
  const auto killed =
      run_acting(slow_boot(results), "event=udevd-started", [&](const fs::path& root) {
        qemu = domain_qemu(root);
        dead_root = root;
        ::kill(owner(root), SIGKILL);
      });
  ASSERT_GT(qemu, 0) << killed.output;
  ASSERT_TRUE(e2e::alive(qemu)) << "the killed run's QEMU should outlive it";
  const auto next = e2e::run_probegate({"boot", "--backend", "libvirt", "--kernel", "debian:6.1",
                                        "--results", (dir() / "next").string()},
                                       m_env);
  EXPECT_EQ(next.exit_code, 0) << next.output;
  EXPECT_FALSE(e2e::alive(qemu)) << "the next run left the dead run's QEMU running";
  EXPECT_FALSE(fs::exists(dead_root));
}

} // namespace
} // namespace probegate
