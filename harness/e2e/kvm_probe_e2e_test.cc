// SPDX-License-Identifier: GPL-2.0-only
// End to end: a host where /dev/kvm exists but is not KVM (issue 16). In a
// private mount namespace (`unshare -m`) a tmpfs over /dev holds the usual
// nodes plus a /dev/kvm that is really /dev/null's device (1:3). probegate
// must probe it within the bound, fall back to TCG under --accel auto and
// fail with exit 3 under --accel kvm, and leave nothing behind: no scratch,
// no QEMU, nothing in the cache; the one thing kept is the memo in the
// host-wide runtime directory.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <algorithm>
#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace probegate {
namespace {

namespace fs = std::filesystem;

// Replaces /dev in a private mount namespace, then runs "$@" there.
constexpr const char* k_fake_dev = R"(set -eu
mount --make-rprivate /
d=$1
shift
mount -t tmpfs -o mode=755 probegate-dev "$d"
for n in null zero full random urandom tty ptmx; do
  if [ -e "/dev/$n" ]; then cp -a "/dev/$n" "$d/"; fi
done
ln -s /proc/self/fd "$d/fd"
ln -s /proc/self/fd/0 "$d/stdin"
ln -s /proc/self/fd/1 "$d/stdout"
ln -s /proc/self/fd/2 "$d/stderr"
mkdir "$d/pts" "$d/shm"
mount --rbind /dev/pts "$d/pts"
mount --rbind /dev/shm "$d/shm"
mknod "$d/kvm" c 1 3
mount --rbind "$d" /dev
exec "$@"
)";

class KvmProbeE2e : public ::testing::Test {
protected:
  void SetUp() override {
    if (!e2e::skip_reason().empty())
      PROBEGATE_E2E_SKIP() << e2e::skip_reason();
    if (::geteuid() != 0 || !fs::exists("/usr/bin/unshare"))
      PROBEGATE_E2E_SKIP() << "a private mount namespace needs root and unshare (util-linux)";
    auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-kvm-probe-e2e-");
    ASSERT_TRUE(tmp);
    m_tmp.emplace(std::move(*tmp));
    for (const char* d : {"dev", "tmp", "run", "results"})
      fs::create_directories(m_tmp->path() / d);
  }

  // probegate -v boot ... inside the namespace with the fake /dev/kvm.
  e2e::Captured boot(const std::string& accel) {
    std::vector<std::string> cmd = {"unshare",
                                    "-m",
                                    "bash",
                                    "-c",
                                    k_fake_dev,
                                    "fake-dev",
                                    (m_tmp->path() / "dev").string(),
                                    PROBEGATE_BINARY,
                                    "-v",
                                    "boot",
                                    "--accel",
                                    accel,
                                    "--kernel",
                                    "debian:6.1",
                                    "--devices",
                                    "1",
                                    "--probe-delay-ms",
                                    "0",
                                    "--expect-bound",
                                    "1",
                                    "--results",
                                    (m_tmp->path() / "results").string()};
    if (accel == "kvm") // the virtual clock is TCG's
      cmd.insert(cmd.end(), {"--clock", "real"});
    core::Command c;
    c.argv = cmd;
    c.env = {{"TMPDIR", (m_tmp->path() / "tmp").string()},
             {"PROBEGATE_RUNTIME_DIR", (m_tmp->path() / "run").string()}};
    c.timeout = std::chrono::minutes(10);
    return e2e::run_captured(c);
  }

  std::optional<core::TempDir> m_tmp;
};

TEST_F(KvmProbeE2e, AutoFallsBackToTcgWithinTheBoundAndKvmExitsThree) {
  const fs::path cache_tmp = core::cache_root() / "tmp";
  const std::string cache_tmp_before = e2e::leftovers(cache_tmp);

  const auto autoed = boot("auto");
  ASSERT_EQ(autoed.exit_code, 0) << autoed.output;
  // The first QEMU started is the probe's; it is gone.
  const pid_t probe = e2e::qemu_pid(autoed.output);
  ASSERT_NE(probe, 0) << "no probe boot was started:\n" << autoed.output;
  EXPECT_NE(autoed.output.find("accel=kvm"), std::string::npos) << autoed.output;
  EXPECT_FALSE(e2e::alive(probe)) << "the probe's QEMU " << probe << " is still running";
  const fs::path session = e2e::only_session(m_tmp->path() / "results");
  const auto result = nlohmann::json::parse(*core::read_file(session / "result.json"));
  EXPECT_EQ(result.at("accel"), "tcg");
  EXPECT_EQ(result.at("accel_probe_bound_s"), 5.0);
  const std::string reason = result.at("accel_reason");
  EXPECT_NE(reason.find("within 5 s"), std::string::npos) << reason;
  EXPECT_NE(reason.find("QEMU ended with"), std::string::npos) << "how QEMU refused: " << reason;
  // The bound holds (a contract, not a speed target): QEMU cannot use the
  // device, and even a hang would be cut at 5 s plus the kill's grace.
  EXPECT_LT(result.at("stage_s").at("accel").get<double>(), 15.0) << result.dump(2);
  EXPECT_EQ(result.at("verdict"), "pass");

  // Nothing left: no scratch in TMPDIR, nothing new in the cache's tmp.
  EXPECT_EQ(e2e::leftovers(m_tmp->path() / "tmp"), "") << "left in TMPDIR";
  EXPECT_EQ(e2e::leftovers(cache_tmp), cache_tmp_before) << "left in " << cache_tmp;
  // The memo: one file in the runtime directory, saying TCG.
  const std::string memo = e2e::leftovers(m_tmp->path() / "run");
  ASSERT_EQ(std::count(memo.begin(), memo.end(), '\n'), 1) << memo;
  EXPECT_EQ(*core::read_file(m_tmp->path() / "run" / memo.substr(0, memo.size() - 1)), "tcg");

  // --accel kvm on the same host: an infrastructure error, from the memo.
  const auto kvm = boot("kvm");
  EXPECT_EQ(kvm.exit_code, 3) << kvm.output;
  EXPECT_NE(kvm.output.find("/dev/kvm exists"), std::string::npos) << kvm.output;
  EXPECT_EQ(e2e::leftovers(m_tmp->path() / "tmp"), "") << "left in TMPDIR";

  // Without the memo, --accel kvm probes itself and still exits 3.
  fs::remove_all(m_tmp->path() / "run");
  const auto fresh = boot("kvm");
  EXPECT_EQ(fresh.exit_code, 3) << fresh.output;
  EXPECT_NE(fresh.output.find("within 5 s"), std::string::npos) << fresh.output;
  const pid_t fresh_probe = e2e::qemu_pid(fresh.output);
  EXPECT_NE(fresh_probe, 0) << fresh.output;
  EXPECT_FALSE(e2e::alive(fresh_probe));
  EXPECT_EQ(e2e::leftovers(m_tmp->path() / "tmp"), "") << "left in TMPDIR";
}

} // namespace
} // namespace probegate
