// SPDX-License-Identifier: GPL-2.0-only
// Kernels of every Debian suite, resolved against package indexes recorded
// from Debian's mirror (harness/testdata/debian/, 2026-11-23).
#include "core/files.h"
#include "kernel/debian_apt.h"
#include "kernel/debian_index.h"
#include "kernel/kernel_store.h"
#include "proc/fake_process_runner.h"

#include <algorithm>
#include <gtest/gtest.h>

namespace probegate::kernel {
namespace {

namespace fs = std::filesystem;

std::string recorded(const std::string& name) {
  auto text = core::read_file(fs::path(PROBEGATE_TESTDATA) / "debian" / name);
  EXPECT_TRUE(text) << name;
  return text ? *text : std::string();
}

TEST(DebianSuites, EachLineHasItsNewestRelease) {
  const auto bullseye = image_releases(recorded("bullseye-pkgnames-linux-image.txt"));
  EXPECT_EQ(newest_in_line(bullseye, "5.10"), "5.10.0-46-amd64");
  // bullseye's 6.1 backports (6.1.0-0.deb11.52) are not bookworm's 6.1.
  EXPECT_EQ(newest_in_line(bullseye, "6.1"), std::nullopt);
  const auto trixie = image_releases(recorded("trixie-pkgnames-linux-image.txt"));
  EXPECT_EQ(newest_in_line(trixie, "6.12"), "6.12.117+deb13-amd64");
  EXPECT_NE(std::ranges::find(trixie, "6.12.90+deb13.1-amd64"), trixie.end())
      << "point rebuilds (+deb13.1) are releases too";
  const auto sid = image_releases(recorded("sid-pkgnames-linux-image.txt"));
  EXPECT_EQ(lines(sid), (std::vector<std::string>{"7.2"}));
  EXPECT_TRUE(release_less("6.12.90+deb13-amd64", "6.12.90+deb13.1-amd64"));
}

TEST(DebianSuites, SidSplitsTheImageAndTheModulesStayBehind) {
  EXPECT_EQ(
      image_parts("7.2.13+deb14-amd64", recorded("sid-show-linux-image-7.2.13+deb14-amd64.txt")),
      (std::vector<std::string>{"linux-base-7.2.13+deb14-amd64",
                                "linux-binary-7.2.13+deb14-amd64"}));
  EXPECT_TRUE(
      image_parts("6.1.0-56-amd64", recorded("bookworm-show-linux-image-6.1.0-56-amd64.txt"))
          .empty());
  EXPECT_TRUE(
      image_parts("5.10.0-46-amd64", recorded("bullseye-show-linux-image-5.10.0-46-amd64.txt"))
          .empty());
  EXPECT_EQ(
      packages_for("7.2.13+deb14-amd64", recorded("sid-show-linux-headers-7.2.13+deb14-amd64.txt")),
      (std::vector<std::string>{"linux-image-7.2.13+deb14-amd64",
                                "linux-headers-7.2.13+deb14-amd64",
                                "linux-headers-7.2.13+deb14-common", "linux-kbuild-7.2.13+deb14"}));
  EXPECT_EQ(
      packages_for("5.10.0-46-amd64", recorded("bullseye-show-linux-headers-5.10.0-46-amd64.txt")),
      (std::vector<std::string>{"linux-image-5.10.0-46-amd64", "linux-headers-5.10.0-46-amd64",
                                "linux-headers-5.10.0-46-common", "linux-kbuild-5.10"}));
}

TEST(DebianSuites, NewerGccKernelsGetTheirFlagsEmptied) {
  const std::string sid = "CONFIG_CC_VERSION_TEXT=\"gcc-16\"\nCONFIG_GCC_VERSION=160200\n"
                          "CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT=y\n"
                          "CONFIG_DEBUG_INFO_BTF_MODULES=y\n";
  EXPECT_EQ(module_make_vars(sid),
            (std::vector<std::string>{"CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT=",
                                      "CONFIG_DEBUG_INFO_BTF_MODULES="}));
  const std::string bookworm = "CONFIG_GCC_VERSION=120200\nCONFIG_DEBUG_INFO_BTF_MODULES=y\n";
  EXPECT_TRUE(module_make_vars(bookworm).empty()) << "gcc-12 kernels build as they are";
  EXPECT_TRUE(module_make_vars("# no gcc here\n").empty());
  const std::string trixie_no_btf = "CONFIG_GCC_VERSION=140200\n"
                                    "CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT=y\n";
  EXPECT_EQ(module_make_vars(trixie_no_btf),
            (std::vector<std::string>{"CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT="}));
}

TEST(DebianSuites, GlibcNeedsAreReadFromTheVersionStrings) {
  std::string elf("\x7f"
                  "ELF",
                  4);
  elf += std::string("\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.38\0GLIBC_PRIVATE\0", 47);
  EXPECT_EQ(glibc_minor_needed(elf), 38);
  EXPECT_EQ(glibc_minor_needed(std::string("\x7f"
                                           "ELF\0no versions",
                                           16)),
            std::nullopt);
  EXPECT_EQ(glibc_minor_needed("#!/bin/sh\n# GLIBC_2.99\n"), std::nullopt) << "scripts need none";
}

// A cache whose indexes are recorded: resolution runs no process at all.
class Resolve : public ::testing::Test {
protected:
  void SetUp() override {
    auto dir = core::TempDir::create(fs::temp_directory_path(), "probegate-resolve-");
    ASSERT_TRUE(dir);
    m_cache.emplace(std::move(*dir));
    for (const auto* suite : {"bullseye", "bookworm", "trixie", "sid"})
      ASSERT_TRUE(core::write_file_atomic(
          m_cache->path() / "index" / (std::string(suite) + "-pkgnames.txt"),
          recorded(std::string(suite) + "-pkgnames-linux-image.txt")));
  }
  core::Result<Offer> resolve(const std::string& text) {
    auto ref = parse_kernel_ref(text);
    EXPECT_TRUE(ref) << text;
    KernelStore store(m_runner, m_cache->path(), [](std::string_view) {});
    return store.resolve(*ref);
  }
  proc::FakeProcessRunner m_runner;
  std::optional<core::TempDir> m_cache;
};

TEST_F(Resolve, LinesAbisAndSuites) {
  const std::vector<std::tuple<std::string, std::string, std::string>> rows{
      {"debian:5.10", "5.10.0-46-amd64", "bullseye"},
      {"debian:6.1", "6.1.0-56-amd64", "bookworm"},
      {"debian:6.12", "6.12.117+deb13-amd64", "trixie"}, // newest of the line, any suite
      {"debian:6.12.117+deb12", "6.12.117+deb12-amd64", "bookworm"},
      {"debian:7.2", "7.2.13+deb14-amd64", "sid"},
      {"debian:sid", "7.2.13+deb14-amd64", "sid"},
      {"debian:bookworm", "6.12.117+deb12-amd64", "bookworm"},
      {"debian:bullseye", "5.10.0-46-amd64", "bullseye"},
  };
  for (const auto& [ref, release, suite] : rows) {
    auto offer = resolve(ref);
    ASSERT_TRUE(offer) << ref << ": " << offer.error().message;
    EXPECT_EQ(offer->release, release) << ref;
    EXPECT_EQ(offer->suite, suite) << ref;
  }
  EXPECT_TRUE(m_runner.commands().empty()) << "fresh indexes need no apt";
}

TEST_F(Resolve, UnknownKernelsNameWhatExists) {
  // The lookup retries with apt once (the index may be stale); apt is
  // unreachable here, so the saved indexes answer.
  auto offer = resolve("debian:4.19");
  ASSERT_FALSE(offer);
  EXPECT_EQ(offer.error().kind, core::ErrorKind::usage);
  for (const auto* expected : {"5.10", "6.1", "6.12", "7.2", "bullseye", "sid"})
    EXPECT_NE(offer.error().message.find(expected), std::string::npos)
        << expected << " in: " << offer.error().message;
}

// sid could not be asked (no saved index, apt fails): whether it has the
// kernel is unknown, so that is the mirror's trouble, not bad input.
TEST_F(Resolve, AKernelOfASuiteThatCannotBeReachedIsAnInfrastructureError) {
  fs::remove(m_cache->path() / "index" / "sid-pkgnames.txt");
  auto offer = resolve("debian:sid");
  ASSERT_FALSE(offer);
  EXPECT_EQ(offer.error().kind, core::ErrorKind::infra) << offer.error().message;
  EXPECT_NE(offer.error().message.find("Debian's sid could not be reached"), std::string::npos)
      << offer.error().message;
  EXPECT_TRUE(resolve("debian:6.1")) << "the reachable suites still answer";
}

TEST(DebianApt, OtherSuitesUseAPrivateConfiguration) {
  proc::FakeProcessRunner runner;
  DebianApt apt(runner, "/cache");
  const std::string other = apt.host_suite() == "sid" ? "bullseye" : "sid";
  const auto c = apt.command(other, {"apt-get", "download", "libc6"});
  const std::string shell = core::to_shell(c);
  for (const auto* expected :
       {"Dir::Etc::SourceList=/cache/apt/", "Dir::State=/cache/apt/", "Dir::Cache=/cache/apt/",
        "Dir::Etc::Trusted=/usr/share/keyrings/debian-archive-keyring.gpg",
        "Dir::Etc::SourceParts=/cache/apt/", "Acquire::Check-Valid-Until=false"})
    EXPECT_NE(shell.find(expected), std::string::npos) << expected << " in " << shell;
  EXPECT_EQ(c.argv.front(), "apt-get");
  EXPECT_EQ(c.argv.back(), "libc6");
  if (!apt.host_suite().empty()) {
    const auto host = apt.command(apt.host_suite(), {"apt-cache", "pkgnames"});
    EXPECT_EQ(core::to_shell(host).find("Dir::"), std::string::npos)
        << "the host's suite uses the host's apt";
  }
}

} // namespace
} // namespace probegate::kernel
