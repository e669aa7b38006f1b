// SPDX-License-Identifier: GPL-2.0-only
#include "image/userspace.h"

#include <gtest/gtest.h>

namespace probegate::image {
namespace {

// Cut from bullseye's `apt-cache depends --recurse --no-recommends … udev`.
constexpr std::string_view k_bullseye_udev = R"(udev
  Depends: libacl1
  Depends: libc6
  Depends: libkmod2
  Depends: adduser
 |Depends: dpkg
  Depends: systemd-sysv
  Depends: libudev1
 |Depends: libsystemd0
  Depends: libelogind0
  Depends: util-linux
libacl1
  Depends: libc6
libc6
  Depends: libgcc-s1
  Depends: libcrypt1
libkmod2
  Depends: libc6
  Depends: liblzma5
  Depends: libssl1.1
adduser
  Depends: passwd
 |Depends: debconf
  Depends: <debconf-2.0>
    cdebconf
    debconf
dpkg
  PreDepends: zlib1g
libudev1
  Depends: libc6
libsystemd0
  PreDepends: libzstd1
  PreDepends: <libfoo-virtual>
    libfoo1
  PreDepends: liblz4-1
util-linux
  PreDepends: libmount1
libelogind0
  Depends: libc6
libgcc-s1
libcrypt1
liblzma5
libssl1.1
  PreDepends: zlib1g
libzstd1
liblz4-1
zlib1g
libmount1
<debconf-2.0>
)";

TEST(Userspace, RootsAndTheirLibraryClosureFirstAlternativeOnly) {
  const auto got = userspace_packages(k_bullseye_udev, {"udev", "busybox-static"});
  // Not adduser, dpkg, util-linux (no libraries), nor libelogind0 (the
  // second alternative); a virtual package counts as its first provider.
  const std::vector<std::string> want{"udev",      "busybox-static", "libacl1",     "libc6",
                                      "libkmod2",  "libudev1",       "libsystemd0", "libgcc-s1",
                                      "libcrypt1", "liblzma5",       "libssl1.1",   "libzstd1",
                                      "libfoo1",   "liblz4-1",       "zlib1g"};
  EXPECT_EQ(got, want);
}

TEST(Userspace, PrintUrisGivesSortedDebNames) {
  const auto names = deb_file_names(
      "'http://deb.debian.org/debian/pool/main/u/udev/udev_252.39-1~deb12u2_amd64.deb' "
      "udev_252.39-1~deb12u2_amd64.deb 1802212 SHA256:ab\n"
      "'http://deb.debian.org/debian/pool/main/k/kmod/kmod_30%2b20221128-1_amd64.deb' "
      "kmod_30+20221128-1_amd64.deb 95828 SHA256:cd\n"
      "W: something\n");
  EXPECT_EQ(names, (std::vector<std::string>{"kmod_30+20221128-1_amd64.deb",
                                             "udev_252.39-1~deb12u2_amd64.deb"}));
  EXPECT_EQ(deb_package(names[0]), "kmod");
  EXPECT_EQ(deb_major_version(names, "udev"), 252);
  EXPECT_EQ(deb_major_version(names, "kmod"), 30);
  EXPECT_EQ(deb_major_version(names, "systemd"), 0) << "not among them";
}

TEST(Userspace, MajorVersionsSkipTheEpochAndRefuseNonNumbers) {
  EXPECT_EQ(deb_major_version({"udev_257.9-1_amd64.deb"}, "udev"), 257);
  EXPECT_EQ(deb_major_version({"libudev1_247.3-7+deb11u6_amd64.deb", "udev_1:262~rc1-2_amd64.deb"},
                              "udev"),
            262);
  EXPECT_EQ(deb_major_version({"udev_x.1_amd64.deb"}, "udev"), 0);
  EXPECT_EQ(deb_major_version({"udevil_1.0_amd64.deb"}, "udev"), 0);
}

TEST(Userspace, LibraryNames) {
  EXPECT_TRUE(library_name("usr/lib/x86_64-linux-gnu/libkmod.so.2"));
  EXPECT_TRUE(library_name("usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so"));
  EXPECT_TRUE(library_name("lib64/ld-linux-x86-64.so.2"));
  EXPECT_FALSE(library_name("usr/bin/udevadm"));
  EXPECT_FALSE(library_name("usr/lib/udev/rules.d/50-udev-default.rules"));
  EXPECT_FALSE(library_name("usr/share/foo.sony"));
}

TEST(Userspace, RootKeepGlobsNameThePackageAndItsFiles) {
  auto keep = root_keep_globs("# comment\n\nsystemd: lib/systemd/systemd */system/initrd.target\n");
  ASSERT_TRUE(keep) << keep.error().message;
  ASSERT_EQ(keep->size(), 1u);
  EXPECT_EQ(keep->at("systemd"),
            (std::vector<std::string>{"lib/systemd/systemd", "*/system/initrd.target"}));
  auto colonless = root_keep_globs("systemd lib/systemd/systemd\n");
  ASSERT_FALSE(colonless);
  EXPECT_NE(colonless.error().message.find("line 1"), std::string::npos);
  EXPECT_FALSE(root_keep_globs("systemd:\n")) << "a package that keeps nothing";
}
} // namespace
} // namespace probegate::image
