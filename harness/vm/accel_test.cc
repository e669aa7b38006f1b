// SPDX-License-Identifier: GPL-2.0-only
// choose_accel() against a FakeProcessRunner: the probe's bound, where its
// answer is remembered, and that it leaves nothing behind. The real twin,
// with a /dev/kvm that is not KVM, is harness/e2e/kvm_probe_e2e_test.cc.
#include "core/files.h"
#include "proc/fake_process_runner.h"
#include "vm/accel.h"

#include <filesystem>
#include <gtest/gtest.h>

namespace probegate::vm {
namespace {

namespace fs = std::filesystem;

// Lists a directory's entries, for failure messages that say what was left.
std::string listing(const fs::path& dir) {
  std::string out;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec))
    out += e.path().string() + "\n";
  return out.empty() ? "(empty)" : out;
}

proc::FakeProcessRunner::Reply hangs() {
  proc::FakeProcessRunner::Reply reply;
  reply.times_out = true;
  return reply;
}

class ChooseAccel : public ::testing::Test {
protected:
  void SetUp() override {
    auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-accel-test-");
    ASSERT_TRUE(tmp);
    m_tmp.emplace(std::move(*tmp));
    m_host.dev_kvm = m_tmp->path() / "kvm"; // exists: a node that may or may not be KVM
    ASSERT_TRUE(core::write_file_atomic(m_host.dev_kvm, ""));
    m_host.memo_dir = m_tmp->path() / "run";
    m_host.scratch = m_tmp->path() / "scratch";
    fs::create_directories(m_host.scratch);
    m_host.boot_id = "boot-1";
  }

  std::optional<core::TempDir> m_tmp;
  KvmProbeHost m_host;
  proc::FakeProcessRunner m_runner;
};

TEST_F(ChooseAccel, AHangingKvmFallsBackToTcgWithinTheBound) {
  m_runner.push(hangs());
  auto chosen = choose_accel("auto", m_runner, "/k/vmlinux", m_host);
  ASSERT_TRUE(chosen) << chosen.error().message;
  EXPECT_EQ(chosen->accel, Accel::tcg);
  EXPECT_EQ(chosen->probe_bound_s, 5.0);
  EXPECT_NE(chosen->reason.find("within 5 s"), std::string::npos) << chosen->reason;
  EXPECT_NE(chosen->reason.find("it hung"), std::string::npos) << chosen->reason;
  ASSERT_EQ(m_runner.commands().size(), 1U);
  EXPECT_LE(m_runner.commands()[0].timeout, std::chrono::seconds(5));
  EXPECT_TRUE(fs::is_empty(m_host.scratch)) << listing(m_host.scratch);
}

TEST_F(ChooseAccel, KvmRequestedOnAHangingKvmIsAnInfrastructureError) {
  m_runner.push(hangs());
  auto chosen = choose_accel("kvm", m_runner, "/k/vmlinux", m_host);
  ASSERT_FALSE(chosen);
  EXPECT_EQ(chosen.error().kind, core::ErrorKind::infra);
  EXPECT_NE(chosen.error().message.find("within 5 s"), std::string::npos);
}

TEST_F(ChooseAccel, TheAnswerIsRememberedPerHostBootOutsideTheCache) {
  m_runner.push({.lines = {"[    0.000000] Linux version 6.1.0 (debian)"}});
  auto first = choose_accel("auto", m_runner, "/k/vmlinux", m_host);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->accel, Accel::kvm);
  EXPECT_TRUE(fs::is_empty(m_host.scratch)) << listing(m_host.scratch);
  // The memo is one file in the host-wide directory, nothing else.
  ASSERT_TRUE(fs::exists(m_host.memo_dir)) << listing(m_tmp->path());
  EXPECT_EQ(std::distance(fs::directory_iterator(m_host.memo_dir), fs::directory_iterator()), 1)
      << listing(m_host.memo_dir);

  // The same boot: no second probe (the fake has no reply left to give).
  auto again = choose_accel("kvm", m_runner, "/k/vmlinux", m_host);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->accel, Accel::kvm);
  EXPECT_NE(again->reason.find("remembered"), std::string::npos) << again->reason;
  EXPECT_EQ(first->reason.find("remembered"), std::string::npos) << first->reason;
  EXPECT_EQ(m_runner.commands().size(), 1U);

  // After a reboot the host is asked again.
  m_host.boot_id = "boot-2";
  proc::FakeProcessRunner::Reply refused; // QEMU refused the device at once
  refused.exit_code = 1;
  m_runner.push(refused);
  auto rebooted = choose_accel("auto", m_runner, "/k/vmlinux", m_host);
  ASSERT_TRUE(rebooted);
  EXPECT_EQ(rebooted->accel, Accel::tcg);
  EXPECT_NE(rebooted->reason.find("QEMU ended with exit 1"), std::string::npos) << rebooted->reason;
  EXPECT_EQ(m_runner.commands().size(), 2U);
}

TEST_F(ChooseAccel, NoDevKvmOrTcgRequestedRunsNoProbe) {
  auto tcg = choose_accel("tcg", m_runner, "/k/vmlinux", m_host);
  ASSERT_TRUE(tcg);
  EXPECT_EQ(tcg->accel, Accel::tcg);
  EXPECT_FALSE(tcg->probe_bound_s);
  m_host.dev_kvm = m_tmp->path() / "missing";
  auto missing = choose_accel("auto", m_runner, "/k/vmlinux", m_host);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->accel, Accel::tcg);
  EXPECT_TRUE(m_runner.commands().empty());
  EXPECT_FALSE(fs::exists(m_host.memo_dir)) << listing(m_tmp->path());
}

} // namespace
} // namespace probegate::vm
