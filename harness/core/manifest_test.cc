// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"
#include "core/manifest.h"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

namespace probegate::core {
namespace {

namespace fs = std::filesystem;

class Manifest : public ::testing::Test {
protected:
  void SetUp() override {
    auto dir = TempDir::create(fs::temp_directory_path(), "pg-manifest-");
    ASSERT_TRUE(dir);
    m_dir.emplace(std::move(*dir));
    fs::create_directories(root() / "tree/include");
    ASSERT_TRUE(write_file_atomic(root() / "vmlinux", std::string(5000, 'k')));
    ASSERT_TRUE(write_file_atomic(root() / "tree/include/a.h", "#define A 1\n"));
    ASSERT_TRUE(write_file_atomic(root() / "artifact.json", "{}"));
    auto entries = compute_manifest(root(), {"artifact.json"});
    ASSERT_TRUE(entries);
    ASSERT_TRUE(write_file_atomic(root() / k_manifest_file, format_manifest(*entries)));
  }
  const fs::path& root() const { return m_dir->path(); }
  static bool all(const std::string&) { return true; }
  std::optional<TempDir> m_dir;
};

TEST_F(Manifest, ListsEveryFileButTheSkippedOnesSorted) {
  auto entries = compute_manifest(root(), {"artifact.json", std::string(k_manifest_file)});
  ASSERT_TRUE(entries);
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].path, "tree/include/a.h");
  EXPECT_EQ((*entries)[1].path, "vmlinux");
  EXPECT_EQ((*entries)[1].size, 5000u);
  auto again = parse_manifest(format_manifest(*entries));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->at(1).sha256, entries->at(1).sha256);
}

TEST_F(Manifest, AnIntactEntryPasses) {
  EXPECT_TRUE(verify_manifest(root(), all));
  // artifact.json is not covered: probegate rewrites it (knob backfill).
  ASSERT_TRUE(write_file_atomic(root() / "artifact.json", "{\"knobs\": {}}"));
  EXPECT_TRUE(verify_manifest(root(), all));
}

TEST_F(Manifest, ABitFlipIsFoundWhereTheFileIsHashed) {
  {
    std::fstream f(root() / "vmlinux", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1234);
    f.put('X');
  }
  auto checked = verify_manifest(root(), all);
  ASSERT_FALSE(checked);
  EXPECT_NE(checked.error().message.find("vmlinux has SHA-256"), std::string::npos)
      << checked.error().message;
  // Only stat'ed: a flip of the same size passes (the cost of speed).
  EXPECT_TRUE(verify_manifest(root(), [](const std::string& p) { return p != "vmlinux"; }));
}

TEST_F(Manifest, TruncatedAndMissingFilesAreFoundWithoutHashing) {
  fs::resize_file(root() / "vmlinux", 100);
  auto none = [](const std::string&) { return false; };
  auto checked = verify_manifest(root(), none);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().message, "vmlinux has 100 bytes, not 5000");
  fs::remove(root() / "tree/include/a.h");
  checked = verify_manifest(root(), none);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().message, "tree/include/a.h is missing");
}

TEST_F(Manifest, AMissingOrGarbledManifestIsAnError) {
  ASSERT_TRUE(write_file_atomic(root() / k_manifest_file, "not a manifest\n"));
  EXPECT_FALSE(verify_manifest(root(), all));
  fs::remove(root() / k_manifest_file);
  EXPECT_FALSE(verify_manifest(root(), all));
}

} // namespace
} // namespace probegate::core
