// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"
#include "core/hash_memo.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace probegate::core {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class HashMemoTest : public ::testing::Test {
protected:
  void SetUp() override {
    auto dir = TempDir::create(fs::temp_directory_path(), "pg-hashmemo-");
    ASSERT_TRUE(dir);
    m_dir.emplace(std::move(*dir));
    ASSERT_TRUE(write_file_atomic(file(), "the kernel's bytes"));
  }
  fs::path file() const { return m_dir->path() / "vmlinux"; }
  fs::path memo_path() const { return m_dir->path() / "hashes.json"; }
  // Hashes vmlinux into the memo, then rewrites the remembered hash to
  // "remembered": a later hash that says so came from the memo.
  void remember_and_plant() const {
    auto memo = HashMemo::load(memo_path(), 0s);
    ASSERT_TRUE(memo.sha256(file()));
    memo.save();
    auto json = nlohmann::json::parse(*read_file(memo_path()));
    json["files"]["vmlinux"]["sha256"] = "remembered";
    ASSERT_TRUE(write_file_atomic(memo_path(), json.dump()));
  }
  std::optional<TempDir> m_dir;
};

TEST_F(HashMemoTest, HashesLikeSha256File) {
  auto memo = HashMemo::load(memo_path(), 0s);
  EXPECT_EQ(memo.sha256(file()).value(), sha256_file(file()).value());
}

TEST_F(HashMemoTest, AnUnchangedFileIsNotReadAgain) {
  remember_and_plant();
  auto again = HashMemo::load(memo_path(), 0s);
  EXPECT_EQ(again.sha256(file()).value(), "remembered");
  // Reached through another spelling of the same directory.
  EXPECT_EQ(again.sha256(m_dir->path() / "." / "vmlinux").value(), "remembered");
}

TEST_F(HashMemoTest, AChangedFileIsHashedAgain) {
  remember_and_plant();
  ASSERT_TRUE(write_file_atomic(file(), "damaged, and longer than it was")); // a new inode
  auto again = HashMemo::load(memo_path(), 0s);
  EXPECT_EQ(again.sha256(file()).value(), sha256_file(file()).value());
}

TEST_F(HashMemoTest, ATruncatedFileIsHashedAgain) {
  remember_and_plant();
  fs::resize_file(file(), 3); // same inode, new size and ctime
  auto again = HashMemo::load(memo_path(), 0s);
  EXPECT_EQ(again.sha256(file()).value(), sha256_hex("the"));
}

TEST_F(HashMemoTest, AFileChangedJustNowIsNotRemembered) {
  auto memo = HashMemo::load(memo_path()); // the default: ctime at least 2 s old
  ASSERT_TRUE(memo.sha256(file()));
  memo.save();
  EXPECT_FALSE(fs::exists(memo_path()));
}

TEST_F(HashMemoTest, AGarbledMemoIsEmpty) {
  ASSERT_TRUE(write_file_atomic(memo_path(), "{\"files\": [1, 2"));
  auto memo = HashMemo::load(memo_path(), 0s);
  EXPECT_EQ(memo.sha256(file()).value(), sha256_file(file()).value());
}

TEST_F(HashMemoTest, AMissingFileIsAnError) {
  auto memo = HashMemo::load(memo_path(), 0s);
  auto sum = memo.sha256(m_dir->path() / "absent");
  ASSERT_FALSE(sum);
  EXPECT_NE(sum.error().message.find("absent"), std::string::npos);
}

} // namespace
} // namespace probegate::core
