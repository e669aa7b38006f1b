// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"
#include "image/lib_closure.h"

#include <filesystem>
#include <gtest/gtest.h>

namespace probegate::image {
namespace {

namespace fs = std::filesystem;

// A usr-merged tree as trixie's packages unpack: everything under usr/,
// with the top-level links probegate adds, holding the host's /bin/true,
// its libc and loader, and one library nothing needs.
class LibClosure : public ::testing::Test {
protected:
  void SetUp() override {
    auto tmp = core::TempDir::create(fs::temp_directory_path(), "closure-");
    ASSERT_TRUE(tmp);
    m_tmp.emplace(std::move(*tmp));
    root = m_tmp->path();
    fs::create_directories(root / "usr/bin");
    fs::create_directories(root / "usr/lib/x86_64-linux-gnu");
    fs::create_directories(root / "usr/lib64");
    fs::create_directory_symlink("usr/bin", root / "bin");
    fs::create_directory_symlink("usr/lib", root / "lib");
    fs::create_directory_symlink("usr/lib64", root / "lib64");
    fs::copy_file("/bin/true", root / "usr/bin/true");
    const fs::path libc = fs::canonical("/lib/x86_64-linux-gnu/libc.so.6");
    const fs::path ld = fs::canonical("/lib64/ld-linux-x86-64.so.2");
    fs::copy_file(libc, root / "usr/lib/x86_64-linux-gnu/libc.so.6");
    fs::copy_file(ld, root / "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
    fs::create_symlink("../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                       root / "usr/lib64/ld-linux-x86-64.so.2");
    fs::copy_file(libc, root / "usr/lib/x86_64-linux-gnu/libunused.so.1");
  }
  fs::path root;

private:
  std::optional<core::TempDir> m_tmp;
};

TEST_F(LibClosure, FollowsInterpreterAndNeededThroughTreeSymlinks) {
  auto keep = library_closure(root, {"bin/true"});
  ASSERT_TRUE(keep) << keep.error().message;
  for (const auto* path :
       {"bin", "usr/bin/true", "lib64", "usr/lib64/ld-linux-x86-64.so.2",
        "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "usr/lib/x86_64-linux-gnu/libc.so.6"})
    EXPECT_TRUE(keep->contains(path)) << path;
  EXPECT_FALSE(keep->contains("usr/lib/x86_64-linux-gnu/libunused.so.1"));
}

TEST_F(LibClosure, AMissingSonameNamesTheFileAndTheSoname) {
  fs::remove(root / "usr/lib/x86_64-linux-gnu/libc.so.6");
  auto keep = library_closure(root, {"usr/bin/true"});
  ASSERT_FALSE(keep);
  EXPECT_NE(keep.error().message.find("/usr/bin/true needs libc.so.6"), std::string::npos)
      << keep.error().message;
}

TEST_F(LibClosure, AbsoluteLinksResolveInsideTheTreeNotOnTheHost) {
  fs::create_symlink("/lib/x86_64-linux-gnu/libc.so.6", root / "usr/bin/libc-link");
  auto found = resolve_in_tree(root, "/bin/libc-link");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->path, "usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(found->links, (std::vector<std::string>{"bin", "usr/bin/libc-link", "lib"}));
  EXPECT_FALSE(resolve_in_tree(root, "usr/lib/x86_64-linux-gnu/libnothere.so.1"));
}

} // namespace
} // namespace probegate::image
