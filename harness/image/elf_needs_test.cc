// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"
#include "image/elf_needs.h"

#include <algorithm>
#include <cstring>
#include <elf.h>
#include <filesystem>
#include <gtest/gtest.h>

namespace probegate::image {
namespace {

std::optional<ElfNeeds> host_elf(const char* path) {
  if (!std::filesystem::exists(path))
    return std::nullopt;
  auto bytes = core::read_file(path);
  EXPECT_TRUE(bytes);
  auto needs = read_elf_needs(*bytes);
  EXPECT_TRUE(needs) << path;
  return needs ? *needs : std::nullopt;
}

bool has(const std::vector<std::string>& list, std::string_view what) {
  return std::ranges::find(list, what) != list.end();
}

TEST(ElfNeeds, HostTrueNeedsLibcThroughTheLoader) {
  auto elf = host_elf("/bin/true");
  ASSERT_TRUE(elf);
  EXPECT_TRUE(has(elf->needed, "libc.so.6"));
  EXPECT_EQ(elf->interp, "/lib64/ld-linux-x86-64.so.2");
  EXPECT_TRUE(elf->runpath.empty());
}

TEST(ElfNeeds, HostLibcAndLoaderAreSharedObjects) {
  auto libc = host_elf("/lib/x86_64-linux-gnu/libc.so.6");
  ASSERT_TRUE(libc);
  EXPECT_TRUE(libc->shared_object);
  EXPECT_TRUE(has(libc->needed, "ld-linux-x86-64.so.2"));
  auto loader = host_elf("/lib64/ld-linux-x86-64.so.2");
  ASSERT_TRUE(loader);
  EXPECT_TRUE(loader->shared_object);
  EXPECT_TRUE(loader->interp.empty());
  EXPECT_TRUE(loader->needed.empty());
}

TEST(ElfNeeds, HostSystemdHasARunpath) {
  auto elf = host_elf("/lib/systemd/systemd");
  if (!elf)
    GTEST_SKIP() << "no /lib/systemd/systemd on this host";
  EXPECT_TRUE(has(elf->runpath, "/usr/lib/x86_64-linux-gnu/systemd"));
  EXPECT_TRUE(std::ranges::any_of(
      elf->needed, [](const std::string& s) { return s.starts_with("libsystemd-shared-"); }));
}

TEST(ElfNeeds, ScriptsAreNotElf) {
  auto needs = read_elf_needs("#!/bin/sh\necho hi\n");
  ASSERT_TRUE(needs);
  EXPECT_FALSE(*needs);
}

TEST(ElfNeeds, TruncatedOrForeignElfIsAnError) {
  EXPECT_FALSE(read_elf_needs("\x7f"
                              "ELF"));
  std::string elf32(64, '\0');
  std::memcpy(elf32.data(), ELFMAG, 4);
  elf32[EI_CLASS] = ELFCLASS32;
  elf32[EI_DATA] = ELFDATA2LSB;
  EXPECT_FALSE(read_elf_needs(elf32));
  auto bytes = core::read_file("/bin/true");
  ASSERT_TRUE(bytes);
  EXPECT_FALSE(read_elf_needs(bytes->substr(0, 200))) << "program headers cut off";
}

// A minimal ELF with one SHT_NOTE section holding systemd's dlopen note,
// as libsystemd-shared-257.so carries for libkmod (udev 257 dlopen()s it).
TEST(ElfNeeds, DlopenNotesNameAlternativeSonames) {
  const std::string json =
      R"([{"feature":"kmod","description":"Support for loading kernel modules",)"
      R"("priority":"recommended","soname":["libkmod.so.2"]},)"
      R"({"feature":"crypt","soname":["libcrypt.so.2","libcrypt.so.1"]}])";
  std::string note(sizeof(Elf64_Nhdr), '\0');
  Elf64_Nhdr nh{4, static_cast<Elf64_Word>(json.size() + 1), 0x407c0c0a};
  std::memcpy(note.data(), &nh, sizeof nh);
  note += std::string("FDO\0", 4);
  note += json;
  note.push_back('\0');
  note.resize((note.size() + 3) / 4 * 4, '\0');

  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, 4);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_type = ET_DYN;
  eh.e_shentsize = sizeof(Elf64_Shdr);
  eh.e_shnum = 1;
  eh.e_shoff = sizeof(Elf64_Ehdr) + note.size();
  Elf64_Shdr sh{};
  sh.sh_type = SHT_NOTE;
  sh.sh_offset = sizeof(Elf64_Ehdr);
  sh.sh_size = note.size();
  sh.sh_addralign = 4;
  std::string image(reinterpret_cast<const char*>(&eh), sizeof eh);
  image += note;
  image.append(reinterpret_cast<const char*>(&sh), sizeof sh);

  auto needs = read_elf_needs(image);
  ASSERT_TRUE(needs && *needs);
  ASSERT_EQ((*needs)->dlopen.size(), 2u);
  EXPECT_EQ((*needs)->dlopen[0], std::vector<std::string>{"libkmod.so.2"});
  EXPECT_EQ((*needs)->dlopen[1], (std::vector<std::string>{"libcrypt.so.2", "libcrypt.so.1"}));
  EXPECT_TRUE((*needs)->shared_object);
}

} // namespace
} // namespace probegate::image
