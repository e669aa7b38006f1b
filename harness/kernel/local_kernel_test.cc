// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"
#include "kernel/local_kernel.h"
#include "proc/fake_process_runner.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <unistd.h>

namespace probegate::kernel {
namespace {

namespace fs = std::filesystem;

// A tiny ELF "vmlinux": the magic, a banner and the strings we look for.
std::string elf(std::string_view release, std::initializer_list<std::string_view> strings = {}) {
  std::string out("\x7f"
                  "ELF\2\1\1",
                  7);
  out.append(64, '\0');
  out += "Linux version %s\n"; // a format string that starts like the banner
  out.push_back('\0');
  out += fmt::format("Linux version {} (builder@host) (gcc-12) #1 SMP\n", release);
  out.push_back('\0');
  for (auto s : strings) {
    out += s;
    out.push_back('\0');
  }
  return out;
}

// gzip of `data`, as the payload of a bzImage.
std::string gzip(std::string_view data) {
  archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_raw(a);
  std::string out(data.size() + 4096, '\0');
  size_t used = 0;
  EXPECT_EQ(archive_write_open_memory(a, out.data(), out.size(), &used), ARCHIVE_OK);
  archive_entry* entry = archive_entry_new();
  archive_entry_set_filetype(entry, AE_IFREG);
  archive_entry_set_pathname(entry, "vmlinux");
  archive_entry_set_size(entry, static_cast<la_int64_t>(data.size()));
  EXPECT_EQ(archive_write_header(a, entry), ARCHIVE_OK);
  archive_write_data(a, data.data(), data.size());
  archive_entry_free(entry);
  archive_write_close(a);
  archive_write_free(a);
  out.resize(used);
  return out;
}

// A bzImage: setup header with "HdrS" and kernel_version pointing at the
// version string, then a compressed ELF.
std::string bzimage(std::string_view version, std::string_view payload_elf) {
  std::string out(0x600, '\0');
  out.replace(0x202, 4, "HdrS");
  const size_t at = 0x400; // string at 0x400, pointer stored as 0x400 - 0x200
  out[0x20E] = static_cast<char>((at - 0x200) & 0xFF);
  out[0x20F] = static_cast<char>((at - 0x200) >> 8);
  out.replace(at, version.size(), version);
  return out + gzip(payload_elf);
}

void write(const fs::path& path, std::string_view content) {
  ASSERT_TRUE(core::write_file_atomic(path, content));
}

class LocalKernel : public ::testing::Test {
protected:
  void SetUp() override {
    auto tmp = core::TempDir::create(::testing::TempDir(), "local-kernel-");
    ASSERT_TRUE(tmp);
    m_tmp.emplace(std::move(*tmp));
  }
  fs::path dir() const { return m_tmp->path(); }
  fs::path cache() const { return dir() / "cache"; }

  core::Result<KernelArtifact> fetch(std::string_view text) {
    auto ref = parse_kernel_ref(text);
    EXPECT_TRUE(ref);
    auto got = fetch_local_kernel(*ref, m_runner, cache(),
                                  [&](std::string_view line) { m_progress.emplace_back(line); });
    EXPECT_TRUE(m_runner.commands().empty())
        << "no process is needed for a local kernel that is no git checkout";
    return got;
  }
  // A fetch that may run git (its replies pushed on m_runner first).
  core::Result<KernelArtifact> fetch_from_git(std::string_view text) {
    auto ref = parse_kernel_ref(text);
    EXPECT_TRUE(ref);
    return fetch_local_kernel(*ref, m_runner, cache(), [](std::string_view) {});
  }

  // A built tree (or O= dir): vmlinux, kernel.release, a prepared kbuild.
  fs::path built_tree(std::string_view config = "CONFIG_MODULES=y\n") {
    const fs::path tree = dir() / "linux";
    write(tree / "vmlinux", elf("6.1.192", {"module.async_probe", "async_probe"}));
    write(tree / "include/config/kernel.release", "6.1.192\n");
    write(tree / ".config", config);
    write(tree / "Makefile", "# kbuild\n");
    write(tree / "scripts/mod/modpost", "");
    write(tree / "modules.builtin", "kernel/drivers/char/misc.ko\n");
    write(tree / "modules.order", "");
    return tree;
  }

  std::optional<core::TempDir> m_tmp;
  proc::FakeProcessRunner m_runner;
  std::vector<std::string> m_progress;
};

TEST(LocalKernelRelease, ReadFromTheBzImageHeader) {
  const auto image =
      bzimage("6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC", "x");
  EXPECT_EQ(release_of_bzimage(image), "6.1.0-56-amd64");
  EXPECT_EQ(release_of_bzimage("not a kernel"), std::nullopt);
  std::string no_pointer = image;
  no_pointer[0x20E] = no_pointer[0x20F] = '\0';
  EXPECT_EQ(release_of_bzimage(no_pointer), std::nullopt);
  std::string past_end = image.substr(0, 0x300);
  EXPECT_EQ(release_of_bzimage(past_end), std::nullopt);
}

TEST(LocalKernelRelease, ReadFromTheVmlinuxBanner) {
  EXPECT_EQ(release_of_vmlinux(elf("6.12.57+deb13-amd64")), "6.12.57+deb13-amd64");
  EXPECT_EQ(release_of_vmlinux(std::string("\x7f"
                                           "ELF Linux version %s\0",
                                           22)),
            std::nullopt);
}

TEST(LocalKernelRelease, ReadFromUtsreleaseH) {
  EXPECT_EQ(release_of_utsrelease_h("#define UTS_RELEASE \"6.1.0-56-amd64\"\n"), "6.1.0-56-amd64");
  EXPECT_EQ(release_of_utsrelease_h("nothing"), std::nullopt);
}

TEST(LocalKernelBuiltin, FromModulesBuiltinConfigOrParameters) {
  EXPECT_TRUE(module_built_in("slowprobe", "kernel/drivers/misc/slowprobe/slowprobe.ko\n", "", ""));
  EXPECT_FALSE(module_built_in("slowprobe", "kernel/drivers/misc/notslowprobe.ko.x\n", "", ""));
  EXPECT_TRUE(module_built_in("slowprobe", "", "CONFIG_PCI=y\nCONFIG_SLOWPROBE=y\n", ""));
  EXPECT_FALSE(module_built_in("slowprobe", "", "CONFIG_SLOWPROBE=m\n", ""));
  EXPECT_FALSE(module_built_in("slowprobe", "", "# CONFIG_SLOWPROBE=y is a comment\n", ""));
  EXPECT_TRUE(module_built_in("slowprobe", "", "", std::string("x\0slowprobe.delay_ms\0y", 22)));
  EXPECT_FALSE(module_built_in("slowprobe", "", "", std::string("x\0slowprobe.\0y", 14)));
  EXPECT_FALSE(module_built_in("slowprobe", "", "", elf("6.1.0")));
}

TEST_F(LocalKernel, TreeGivesAnArtifactWithItsOwnFiles) {
  const fs::path tree = built_tree();
  auto a = fetch("tree:" + tree.string());
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->ref, "tree:" + tree.string());
  EXPECT_EQ(a->release, "6.1.192");
  EXPECT_EQ(a->line, "6.1");
  EXPECT_EQ(a->vmlinux, tree / "vmlinux");
  EXPECT_TRUE(a->vmlinuz.empty()) << "no arch/x86/boot/bzImage in this tree";
  EXPECT_EQ(a->kbuild_dir, tree);
  EXPECT_FALSE(a->slowprobe_builtin);
  EXPECT_TRUE(a->knobs.at("module.async_probe"));
  EXPECT_FALSE(a->knobs.at("driver_async_probe="));
  EXPECT_TRUE(a->dir.filename().string().starts_with("tree-"));
  EXPECT_EQ(a->dir.parent_path(), cache() / "kernels");
  EXPECT_EQ(*core::read_file(a->modules_dir / "modules.builtin"), "kernel/drivers/char/misc.ko\n");
  EXPECT_EQ(*core::read_file(a->modules_dir / "modules.builtin.modinfo"), "")
      << "missing inputs become empty files";
  EXPECT_TRUE(fs::exists(a->dir / "artifact.json"));

  // Cached: the same entry, with the ref as written this time.
  auto again = fetch("tree:" + tree.string() + "/");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->dir, a->dir);
  EXPECT_EQ(again->ref, "tree:" + tree.string() + "/");

  // Rebuilt: a new vmlinux makes a new entry.
  write(tree / "vmlinux", elf("6.1.192", {"async_probe"}));
  auto rebuilt = fetch("tree:" + tree.string());
  ASSERT_TRUE(rebuilt);
  EXPECT_NE(rebuilt->dir, a->dir);
  EXPECT_FALSE(rebuilt->knobs.at("module.async_probe"));
}

// A private cache whose kernels/ links to a shared one (as the e2e tests'
// caches do): the entry records the shared directory's own paths, which
// stay valid once the private cache and its link are gone.
TEST_F(LocalKernel, AnEntryMadeThroughALinkRecordsTheRealPaths) {
  const fs::path shared = dir() / "shared-kernels";
  fs::create_directories(shared);
  fs::create_directories(cache());
  fs::create_directory_symlink(shared, cache() / "kernels");
  auto a = fetch("tree:" + built_tree().string());
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->dir.parent_path(), fs::canonical(shared));
  fs::remove(cache() / "kernels");
  auto stored = load_artifact(a->dir);
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_TRUE(fs::exists(stored->modules_dir / "modules.builtin")) << stored->modules_dir;
}

TEST_F(LocalKernel, TreeWithSlowprobeBuiltIn) {
  const fs::path tree = built_tree("CONFIG_MODULES=y\nCONFIG_SLOWPROBE=y\n");
  write(tree / "arch/x86/boot/bzImage", "bz");
  auto a = fetch("tree:" + tree.string());
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_TRUE(a->slowprobe_builtin);
  EXPECT_EQ(a->vmlinuz, tree / "arch/x86/boot/bzImage");
}

TEST_F(LocalKernel, TreeErrorsSayWhatToDo) {
  auto missing = fetch("tree:" + (dir() / "nope").string());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, core::ErrorKind::usage);
  EXPECT_NE(missing.error().message.find((dir() / "nope").string()), std::string::npos);

  fs::create_directories(dir() / "unbuilt");
  auto unbuilt = fetch("tree:" + (dir() / "unbuilt").string());
  ASSERT_FALSE(unbuilt);
  EXPECT_EQ(unbuilt.error().kind, core::ErrorKind::usage);
  EXPECT_NE(unbuilt.error().message.find("no vmlinux"), std::string::npos)
      << unbuilt.error().message;

  const fs::path tree = built_tree();
  fs::remove(tree / "scripts/mod/modpost");
  auto unprepared = fetch("tree:" + tree.string());
  ASSERT_FALSE(unprepared);
  EXPECT_NE(unprepared.error().message.find("modules_prepare"), std::string::npos);

  write(tree / "scripts/mod/modpost", "");
  write(tree / ".config", "# CONFIG_MODULES is not set\n");
  auto no_modules = fetch("tree:" + tree.string());
  ASSERT_FALSE(no_modules);
  EXPECT_NE(no_modules.error().message.find("CONFIG_MODULES"), std::string::npos);
  EXPECT_FALSE(fs::exists(cache() / "kernels") && !fs::is_empty(cache() / "kernels"))
      << "a refused kernel leaves no entry";
}

TEST_F(LocalKernel, BzImageFileWithKbuild) {
  const std::string image =
      bzimage("6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP",
              elf("6.1.0-56-amd64", {"module.async_probe", "driver_async_probe=", "async_probe"}));
  write(dir() / "vmlinuz", image);
  const fs::path kbuild = dir() / "headers";
  write(kbuild / "Makefile", "# kbuild\n");
  write(kbuild / "scripts/mod/modpost", "");
  write(kbuild / "include/generated/utsrelease.h", "#define UTS_RELEASE \"6.1.0-56-amd64\"\n");
  auto a = fetch("file:" + (dir() / "vmlinuz").string() + ",kbuild=" + kbuild.string());
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->release, "6.1.0-56-amd64");
  EXPECT_EQ(a->vmlinuz, dir() / "vmlinuz");
  EXPECT_EQ(a->vmlinux, a->dir / "vmlinux") << "extracted into the entry";
  EXPECT_TRUE(core::read_file(a->vmlinux)
                  ->starts_with("\x7f"
                                "ELF"));
  EXPECT_EQ(a->kbuild_dir, kbuild);
  EXPECT_TRUE(a->knobs.at("driver_async_probe="));
  EXPECT_TRUE(a->dir.filename().string().starts_with("file-"));
  for (const auto* name : {"modules.builtin", "modules.builtin.modinfo", "modules.order"})
    EXPECT_TRUE(fs::exists(a->modules_dir / name)) << name;

  // The headers of another build: refused before any module build.
  write(kbuild / "include/generated/utsrelease.h", "#define UTS_RELEASE \"6.1.0-55-amd64\"\n");
  write(dir() / "vmlinuz2", image + "changed");
  auto mismatch = fetch("file:" + (dir() / "vmlinuz2").string() + ",kbuild=" + kbuild.string());
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().kind, core::ErrorKind::usage);
  EXPECT_NE(mismatch.error().message.find("6.1.0-55-amd64"), std::string::npos);
}

TEST_F(LocalKernel, FileWithoutKbuildNeedsBuiltinSlowprobe) {
  write(dir() / "vmlinux", elf("6.1.192"));
  auto plain = fetch("file:" + (dir() / "vmlinux").string());
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().kind, core::ErrorKind::usage);
  EXPECT_NE(plain.error().message.find(",kbuild=<dir>"), std::string::npos)
      << plain.error().message;
  EXPECT_NE(plain.error().message.find("file:" + (dir() / "vmlinux").string()), std::string::npos);

  write(dir() / "builtin", elf("6.1.192", {"slowprobe.delay_ms", "slowprobe.kthread"}));
  auto builtin = fetch("file:" + (dir() / "builtin").string());
  ASSERT_TRUE(builtin) << builtin.error().message;
  EXPECT_TRUE(builtin->slowprobe_builtin);
  EXPECT_TRUE(builtin->kbuild_dir.empty());
  EXPECT_EQ(builtin->vmlinux, dir() / "builtin") << "an ELF file is booted where it is";
}

TEST_F(LocalKernel, RelativePathsAreStoredAbsolute) {
  write(dir() / "k" / "builtin", elf("6.1.192", {"slowprobe.delay_ms"}));
  const fs::path before = fs::current_path();
  fs::current_path(dir());
  auto a = fetch("file:k/builtin");
  fs::current_path(before);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->vmlinux, dir() / "k" / "builtin");
  EXPECT_EQ(a->ref, "file:k/builtin");
}

TEST_F(LocalKernel, NotAKernelImage) {
  write(dir() / "junk", "just some bytes, neither HdrS nor ELF");
  auto a = fetch("file:" + (dir() / "junk").string() + ",kbuild=" + dir().string());
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().kind, core::ErrorKind::usage);
  write(dir() / "Makefile", "");
  a = fetch("file:" + (dir() / "junk").string() + ",kbuild=" + dir().string());
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("neither a bzImage nor an ELF"), std::string::npos)
      << a.error().message;
  auto missing = fetch("file:" + (dir() / "missing").string());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, core::ErrorKind::usage);
}

// Recorded from git 2.39 (`git status --porcelain=v2 --branch`).
constexpr std::string_view k_head = "9b0bb61c6f1d2e3a4b5c6d7e8f90a1b2c3d4e5f6";

TEST(LocalKernelGit, StatusGivesTheCommitBranchAndChanges) {
  const std::string on_branch = fmt::format("# branch.oid {}\n# branch.head linux-6.1.y\n"
                                            "# branch.upstream origin/linux-6.1.y\n"
                                            "# branch.ab +0 -0\n",
                                            k_head);
  auto clean = parse_git_status(on_branch);
  ASSERT_TRUE(clean);
  EXPECT_EQ(clean->commit, k_head);
  EXPECT_EQ(clean->branch, "linux-6.1.y");
  EXPECT_TRUE(clean->has_upstream);
  EXPECT_FALSE(clean->dirty);
  auto changed = parse_git_status(
      on_branch + "1 .M N... 100644 100644 100644 3c1f 3c1f drivers/misc/Kconfig\n? new.c\n");
  ASSERT_TRUE(changed);
  EXPECT_TRUE(changed->dirty);
  EXPECT_TRUE(parse_git_status(on_branch + "? untracked.c\n")->dirty);
  auto detached =
      parse_git_status(fmt::format("# branch.oid {}\n# branch.head (detached)\n", k_head));
  ASSERT_TRUE(detached);
  EXPECT_EQ(detached->branch, "");
  EXPECT_FALSE(detached->has_upstream);
  EXPECT_EQ(parse_git_status("# branch.oid (initial)\n# branch.head master\n"), std::nullopt)
      << "no commit yet";
  EXPECT_EQ(parse_git_status("# branch.oid 9b0bb61\n"), std::nullopt) << "not a full hash";
  EXPECT_EQ(parse_git_status(""), std::nullopt);
}

TEST(LocalKernelGit, OnlyPublicHttpsUrlsAreRecorded) {
  EXPECT_EQ(public_https_url("https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git"),
            "https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git");
  for (const auto* url :
       {"git@github.com:torvalds/linux.git", "ssh://git.kernel.org/linux.git", "/srv/git/linux.git",
        "http://git.kernel.org/linux.git", "https://user:token@example.org/linux.git", "https://",
        "https:///x", "https://example.org/a b"})
    EXPECT_EQ(public_https_url(url), std::nullopt) << url;
}

TEST_F(LocalKernel, ATreeFromAGitCheckoutRecordsItsCommit) {
  const fs::path tree = built_tree();
  fs::create_directories(tree / ".git");
  m_runner.push({.lines = {fmt::format("# branch.oid {}", k_head), "# branch.head linux-6.1.y",
                           "# branch.upstream origin/linux-6.1.y", "# branch.ab +0 -0",
                           "? probegate-notes.txt"}});
  m_runner.push({.lines = {"origin\trefs/heads/linux-6.1.y"}});
  m_runner.push({.lines = {"https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git"}});
  auto a = fetch_from_git("tree:" + tree.string());
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(a->git);
  EXPECT_EQ(a->git->commit, k_head);
  EXPECT_TRUE(a->git->dirty) << "an untracked file";
  EXPECT_EQ(a->git->repository_url,
            "https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git");
  EXPECT_EQ(a->git->branch, "linux-6.1.y");
  const auto& commands = m_runner.commands();
  ASSERT_EQ(commands.size(), 3u);
  EXPECT_EQ(commands[0].argv, (std::vector<std::string>{"git", "-C", tree.string(), "status",
                                                        "--porcelain=v2", "--branch"}));
  EXPECT_EQ(commands[0].env.at("GIT_OPTIONAL_LOCKS"), "0") << "git never takes the index lock";
  EXPECT_EQ(commands[1].argv.back(), "refs/heads/linux-6.1.y");
  EXPECT_EQ(commands[2].argv,
            (std::vector<std::string>{"git", "-C", tree.string(), "remote", "get-url", "origin"}));

  // Cached: the commit recorded with the entry, git not asked again.
  auto again = fetch_from_git("tree:" + tree.string());
  ASSERT_TRUE(again);
  EXPECT_EQ(m_runner.commands().size(), 3u);
  ASSERT_TRUE(again->git);
  EXPECT_EQ(again->git->commit, k_head);
  EXPECT_EQ(again->git->branch, "linux-6.1.y");
}

TEST_F(LocalKernel, AnOutOfTreeBuildAsksItsSourceTree) {
  // An O= dir links to its source (kbuild's `source`); bisect leaves HEAD detached.
  const fs::path source = dir() / "src";
  fs::create_directories(source / ".git");
  const fs::path build = built_tree();
  fs::create_directory_symlink(source, build / "source");
  m_runner.push({.lines = {fmt::format("# branch.oid {}", k_head), "# branch.head (detached)"}});
  auto a = fetch_from_git("tree:" + build.string());
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(a->git);
  EXPECT_EQ(a->git->commit, k_head);
  EXPECT_FALSE(a->git->dirty);
  EXPECT_EQ(a->git->repository_url, "") << "no branch, no upstream";
  ASSERT_EQ(m_runner.commands().size(), 1u);
  EXPECT_EQ(m_runner.commands()[0].argv[2], source.string());
}

TEST_F(LocalKernel, AGitThatCannotSayLeavesNoCommit) {
  const fs::path tree = built_tree();
  fs::create_directories(tree / ".git");
  // git refuses a repository of another owner ("dubious ownership"), exit 128.
  m_runner.push({.lines = {"fatal: detected dubious ownership in repository"}, .exit_code = 128});
  auto a = fetch_from_git("tree:" + tree.string());
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_FALSE(a->git);
  auto json = core::read_file(a->dir / "artifact.json");
  ASSERT_TRUE(json);
  EXPECT_NE(json->find("\"git\": null"), std::string::npos) << *json;
}

} // namespace
} // namespace probegate::kernel
