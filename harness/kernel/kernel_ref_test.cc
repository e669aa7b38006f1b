// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"
#include "kernel/debian_index.h"
#include "kernel/kernel_ref.h"

#include <gtest/gtest.h>

namespace probegate::kernel {
namespace {

TEST(KernelRef, ParsesEveryForm) {
  auto line = parse_kernel_ref("debian:6.1");
  ASSERT_TRUE(line);
  EXPECT_EQ(line->kind, KernelRef::Kind::debian_line);
  EXPECT_EQ(line->value, "6.1");

  auto abi = parse_kernel_ref("debian:6.1.0-56-amd64");
  ASSERT_TRUE(abi);
  EXPECT_EQ(abi->kind, KernelRef::Kind::debian_abi);
  EXPECT_EQ(abi->value, "6.1.0-56-amd64");

  auto short_abi = parse_kernel_ref("debian:6.12.57+deb12");
  ASSERT_TRUE(short_abi);
  EXPECT_EQ(short_abi->value, "6.12.57+deb12-amd64");

  auto file = parse_kernel_ref("file:/boot/vmlinuz,kbuild=/usr/src/linux");
  ASSERT_TRUE(file);
  EXPECT_EQ(file->kind, KernelRef::Kind::file);
  EXPECT_EQ(file->value, "/boot/vmlinuz");
  EXPECT_EQ(file->kbuild, "/usr/src/linux");

  auto tree = parse_kernel_ref("tree:/src/linux");
  ASSERT_TRUE(tree);
  EXPECT_EQ(tree->kind, KernelRef::Kind::tree);
}

TEST(KernelRef, SuiteNamesAreRefs) {
  auto sid = parse_kernel_ref("debian:sid");
  ASSERT_TRUE(sid);
  EXPECT_EQ(sid->kind, KernelRef::Kind::debian_suite);
  EXPECT_EQ(sid->value, "sid");
  auto trixie_abi = parse_kernel_ref("debian:6.12.90+deb13.1");
  ASSERT_TRUE(trixie_abi);
  EXPECT_EQ(trixie_abi->kind, KernelRef::Kind::debian_abi);
  EXPECT_EQ(trixie_abi->value, "6.12.90+deb13.1-amd64");
}

TEST(KernelRef, BuildRefsNameASourceAndItsOptions) {
  auto plain = parse_kernel_ref("build:linux-source-6.1");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->kind, KernelRef::Kind::build);
  EXPECT_EQ(plain->value, "linux-source-6.1");
  EXPECT_FALSE(plain->builtin_slowprobe);
  auto full = parse_kernel_ref("build:/src/linux,fragment=a.config,builtin-slowprobe,fragment=b");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->value, "/src/linux");
  EXPECT_TRUE(full->builtin_slowprobe);
  EXPECT_EQ(full->fragments, (std::vector<std::string>{"a.config", "b"}));
  for (const char* bad : {"build:", "build:x,colour=red", "build:x,fragment="})
    EXPECT_FALSE(parse_kernel_ref(bad)) << bad;
}

TEST(KernelRef, RejectsMalformedRefsAsUsageErrors) {
  for (const char* bad :
       {"", "6.1", "debian:", "debian:six", "debian:6", "git:abc", "debian:6.1-"}) {
    auto ref = parse_kernel_ref(bad);
    ASSERT_FALSE(ref) << bad;
    EXPECT_EQ(ref.error().kind, core::ErrorKind::usage) << bad;
    EXPECT_NE(ref.error().message.find("debian:"), std::string::npos) << bad;
  }
}

class DebianIndex : public ::testing::Test {
protected:
  void SetUp() override {
    auto text = core::read_file(PROBEGATE_TESTDATA "/debian/bookworm-pkgnames-linux-image.txt");
    ASSERT_TRUE(text);
    m_releases = image_releases(*text);
  }
  std::vector<std::string> m_releases;
};

TEST_F(DebianIndex, KeepsOnlyGenericAmd64Releases) {
  ASSERT_FALSE(m_releases.empty());
  for (const auto& r : m_releases) {
    EXPECT_TRUE(r.ends_with("-amd64")) << r;
    EXPECT_EQ(r.find("cloud"), std::string::npos) << r;
    EXPECT_EQ(r.find("-rt-"), std::string::npos) << r;
    EXPECT_NE(r, "6.12-amd64") << "a metapackage is not a release";
  }
}

TEST_F(DebianIndex, NewestOfALineUsesNaturalOrder) {
  EXPECT_EQ(newest_in_line(m_releases, "6.1"), "6.1.0-56-amd64");
  EXPECT_EQ(newest_in_line(m_releases, "6.12"), "6.12.117+deb12-amd64");
  EXPECT_EQ(newest_in_line(m_releases, "5.10"), std::nullopt);
  EXPECT_EQ(lines(m_releases), (std::vector<std::string>{"6.1", "6.12"}));
}

TEST(DebianIndexOrder, ComparesNumbersAsNumbers) {
  EXPECT_TRUE(release_less("6.1.0-9-amd64", "6.1.0-10-amd64"));
  EXPECT_TRUE(release_less("6.12.9+deb12-amd64", "6.12.100+deb12-amd64"));
  EXPECT_FALSE(release_less("6.12.100+deb12-amd64", "6.12.9+deb12-amd64"));
  EXPECT_EQ(line_of("6.12.57+deb12-amd64"), "6.12");
  EXPECT_EQ(line_of("5.10.0-35-amd64"), "5.10");
}

TEST(DebianIndexPackages, HeadersPullCommonAndKbuild) {
  auto text =
      core::read_file(PROBEGATE_TESTDATA "/debian/bookworm-show-linux-headers-6.1.0-56-amd64.txt");
  ASSERT_TRUE(text);
  EXPECT_EQ(packages_for("6.1.0-56-amd64", *text),
            (std::vector<std::string>{"linux-image-6.1.0-56-amd64", "linux-headers-6.1.0-56-amd64",
                                      "linux-headers-6.1.0-56-common", "linux-kbuild-6.1"}));
}

} // namespace
} // namespace probegate::kernel
