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

TEST(DebianApt, PrintUrisNamesTheFilesAndTheirSizes) {
  // Recorded from bookworm's apt-get download --print-uris (2026-12-01).
  const auto files = parse_print_uris(
      "'http://deb.debian.org/debian/pool/main/g/gcc-12/cpp-12_12.2.0-14%2bdeb12u1_amd64.deb' "
      "cpp-12_12.2.0-14+deb12u1_amd64.deb 9767788 SHA256:fedbb98e877adde83c983c6071537ea25ac52b277a"
      "c6e4637d85025949ca1454\n"
      "'http://deb.debian.org/debian-security/pool/updates/main/l/linux/linux-source-6.1_6.1.192-3_"
      "all.deb' linux-source-6.1_6.1.192-3_all.deb 139330232 SHA256:5259c57ca9\n"
      "W: something apt warns about\n"
      "'http://x/y.deb' ../escape.deb 12 SHA256:00\n"
      "'http://x/z.deb' z.deb 99999999999999999999999 SHA256:00\n");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].name, "cpp-12_12.2.0-14+deb12u1_amd64.deb");
  EXPECT_EQ(files[0].size, 9'767'788u);
  EXPECT_EQ(files[1].name, "linux-source-6.1_6.1.192-3_all.deb");
  EXPECT_EQ(files[1].size, 139'330'232u);
}

// Plays apt: --print-uris names two files; the download writes them into
// its cwd 1 kB at a time, a status line after each while the clock moves.
class AptPlayer final : public proc::ProcessRunner {
public:
  explicit AptPlayer(std::chrono::steady_clock::time_point& now) : m_now(now) {}
  std::vector<core::Command> commands;

  core::Result<proc::ProcessResult> run(const core::Command& command,
                                        const proc::LineSink& sink) override {
    commands.push_back(command);
    proc::ProcessResult result;
    result.exit_code = 0;
    if (std::ranges::find(command.argv, "--print-uris") != command.argv.end()) {
      sink("'http://deb.debian.org/debian/pool/main/a/a/a_1_amd64.deb' a_1_amd64.deb 3000 "
           "SHA256:aa");
      sink("'http://deb.debian.org/debian/pool/main/b/b/b_2_all.deb' b_2_all.deb 1000 SHA256:bb");
      return result;
    }
    for (size_t kb = 1; kb <= 4; ++kb) {
      (void)core::write_file_atomic(command.cwd / "a_1_amd64.deb",
                                    std::string(std::min<size_t>(kb, 3) * 1000, 'a'));
      if (kb == 4)
        (void)core::write_file_atomic(command.cwd / "b_2_all.deb", std::string(1000, 'b'));
      m_now += std::chrono::milliseconds(300);
      sink("dlstatus:1:0.0000:Retrieving file 1 of 2");
    }
    return result;
  }

private:
  std::chrono::steady_clock::time_point& m_now;
};

TEST(DebianApt, ADownloadShowsBytesAndAnEtaOnlyWhenLive) {
  auto tmp = core::TempDir::create(::testing::TempDir(), "apt-download-");
  ASSERT_TRUE(tmp);
  std::chrono::steady_clock::time_point now{};
  std::vector<std::string> drawn;
  auto output = [&](bool enabled) {
    return core::LiveOutput{.enabled = enabled,
                            .draw = [&](std::string_view line) { drawn.emplace_back(line); },
                            .now = [&] { return now; },
                            .columns = [] { return 80; }};
  };
  core::Command download;
  download.argv = {"apt-get", "-o", "Dir::State=/s", "download", "-q", "a", "b"};
  download.cwd = tmp->path() / "live";
  fs::create_directories(download.cwd);

  AptPlayer apt(now);
  const auto live = output(true);
  ASSERT_TRUE(apt_download(apt, download, "downloading a and b", live));
  ASSERT_EQ(apt.commands.size(), 2u);
  EXPECT_EQ(apt.commands[0].argv,
            (std::vector<std::string>{"apt-get", "-o", "Dir::State=/s", "download", "--print-uris",
                                      "-q", "a", "b"}));
  EXPECT_EQ(apt.commands[1].argv,
            (std::vector<std::string>{"apt-get", "-o", "Dir::State=/s", "download", "-o",
                                      "APT::Status-Fd=1", "-q", "a", "b"}));
  EXPECT_EQ(apt.commands[1].cwd, download.cwd);
  EXPECT_EQ(drawn, (std::vector<std::string>{
                       "probegate: downloading a and b: 0.0/4.0 kB (0%)",
                       "probegate: downloading a and b: 1.0/4.0 kB (25%), 3.3 kB/s, eta 1s",
                       "probegate: downloading a and b: 2.0/4.0 kB (50%), 3.3 kB/s, eta 1s",
                       "probegate: downloading a and b: 3.0/4.0 kB (75%), 3.3 kB/s, eta 0s",
                       "probegate: downloading a and b: 4.0/4.0 kB (100%), 3.3 kB/s, eta 0s", ""}));

  // Not live (CI, a log file): the command as given, nothing drawn.
  drawn.clear();
  proc::FakeProcessRunner quiet;
  quiet.push({.lines = {"Get:1 http://deb.debian.org/debian bookworm/main amd64 a 1 [3000 B]"}});
  ASSERT_TRUE(apt_download(quiet, download, "downloading a and b", output(false)));
  ASSERT_EQ(quiet.commands().size(), 1u);
  EXPECT_EQ(quiet.commands()[0].argv, download.argv);
  EXPECT_TRUE(drawn.empty());

  // A failed download is still an error that quotes apt.
  proc::FakeProcessRunner failing;
  failing.push({.lines = {"E: Failed to fetch http://deb.debian.org/a.deb"}, .exit_code = 100});
  auto failed = apt_download(failing, download, "downloading a and b", output(false));
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("E: Failed to fetch"), std::string::npos);
}

} // namespace
} // namespace probegate::kernel
