// SPDX-License-Identifier: GPL-2.0-only
// End to end: kernels that are not Debian's packages. A kernel built from
// Debian's linux-source-6.1 by `probegate kernels build` boots as a tree:
// ref, and Debian's own 6.1 image boots as a file: ref with its headers as
// kbuild dir. Skips (never passes) where QEMU, Debian's mirror or the kernel
// cannot be had. The source build is cached, so only the first run pays it.
#include "core/files.h"
#include "e2e/e2e_support.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>

namespace probegate {
namespace {

namespace fs = std::filesystem;

class LocalKernelE2e : public ::testing::Test {
protected:
  void SetUp() override {
    if (!e2e::skip_reason().empty())
      PROBEGATE_E2E_SKIP() << e2e::skip_reason();
    auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-local-");
    ASSERT_TRUE(tmp);
    m_results.emplace(std::move(*tmp));
  }

  // One boot, one edu device, no delay: the module (or built-in driver) binds it.
  e2e::Booted boot_one(const std::string& kernel) {
    return e2e::boot_into(m_results->path(),
                          {"boot", "--results", m_results->path().string(), "--kernel", kernel,
                           "--devices", "1", "--probe-delay-ms", "0", "--expect-bound", "1"});
  }

  std::optional<core::TempDir> m_results;
};

// The last line of `output` that starts with `prefix`.
std::string line_starting(const std::string& output, std::string_view prefix) {
  std::istringstream in(output);
  std::string found;
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(prefix))
      found = line;
  return found;
}

TEST_F(LocalKernelE2e, SourceBuildBootsAsATree) {
  const auto built = e2e::run_probegate({"kernels", "build", "--source", "linux-source-6.1"}, {},
                                        e2e::k_kernel_build_timeout);
  if (built.exit_code == 3 &&
      built.output.find("downloading linux-source-6.1") != std::string::npos)
    PROBEGATE_E2E_SKIP() << "cannot download linux-source-6.1:\n" << built.output;
  ASSERT_EQ(built.exit_code, 0) << built.output;
  const std::string ref = line_starting(built.output, "tree:");
  ASSERT_FALSE(ref.empty()) << built.output;
  const fs::path build_dir = ref.substr(5);
  EXPECT_TRUE(fs::exists(build_dir / "vmlinux"));
  EXPECT_TRUE(fs::exists(build_dir.parent_path() / "complete.json"));

  const auto booted = boot_one(ref);
  ASSERT_EQ(booted.ran.exit_code, 0) << booted.ran.output;
  const auto& r = booted.result;
  EXPECT_EQ(r.at("verdict"), "pass");
  EXPECT_EQ(r.at("kernel").at("ref"), ref);
  EXPECT_TRUE(r.at("kernel").at("release").get<std::string>().starts_with("6.1."));
  EXPECT_EQ(r.at("kernel").at("release"), r.at("outcome").at("guest_kernel"))
      << "the guest ran the kernel we built";
  EXPECT_EQ(r.at("outcome").at("devices_bound"), 1);
}

TEST_F(LocalKernelE2e, DebianImageBootsAsAFileWithItsHeaders) {
  const auto fetched = e2e::run_probegate({"kernels", "fetch", "debian:6.1"});
  ASSERT_EQ(fetched.exit_code, 0) << fetched.output;
  // "debian:6.1 <release> <entry dir>"
  std::istringstream line(line_starting(fetched.output, "debian:6.1 "));
  std::string ref, release, dir;
  line >> ref >> release >> dir;
  ASSERT_FALSE(dir.empty()) << fetched.output;
  const auto artifact = nlohmann::json::parse(*core::read_file(fs::path(dir) / "artifact.json"));
  const std::string kernel = "file:" + artifact.at("vmlinuz").get<std::string>() +
                             ",kbuild=" + artifact.at("kbuild_dir").get<std::string>();

  const auto booted = boot_one(kernel);
  ASSERT_EQ(booted.ran.exit_code, 0) << booted.ran.output;
  EXPECT_EQ(booted.result.at("verdict"), "pass");
  EXPECT_EQ(booted.result.at("kernel").at("release"), release);
  EXPECT_EQ(booted.result.at("outcome").at("devices_bound"), 1);

  // Without its headers the module cannot be built: bad usage, said up front.
  const auto no_kbuild =
      e2e::run_probegate({"boot", "--results", m_results->path().string(), "--kernel",
                          "file:" + artifact.at("vmlinuz").get<std::string>(), "--devices", "1"});
  EXPECT_EQ(no_kbuild.exit_code, 2) << no_kbuild.output;
  EXPECT_NE(no_kbuild.output.find(",kbuild=<dir>"), std::string::npos) << no_kbuild.output;
}

} // namespace
} // namespace probegate
