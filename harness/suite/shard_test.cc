// SPDX-License-Identifier: GPL-2.0-only
#include "suite/shard.h"

#include <algorithm>
#include <cmath>
#include <gtest/gtest.h>
#include <map>
#include <numeric>

namespace probegate::suite {
namespace {

auto env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(Shard, ReadsIOverNAndGitLabsVariables) {
  auto s = parse_shard("2/3", env_of({}));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->index, 2);
  EXPECT_EQ(s->total, 3);
  s = parse_shard("auto", env_of({{"CI_NODE_INDEX", "4"}, {"CI_NODE_TOTAL", "5"}}));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->index, 4);
  EXPECT_EQ(s->total, 5);
}

TEST(Shard, RejectsWhatIsNotAShard) {
  for (const char* bad : {"0/3", "4/3", "3", "1/0", "a/b", "1/3x", "-1/3", "1/1001", ""}) {
    auto s = parse_shard(bad, env_of({}));
    ASSERT_FALSE(s) << bad;
    EXPECT_EQ(s.error().kind, core::ErrorKind::usage);
    EXPECT_NE(s.error().message.find("--shard must be I/N"), std::string::npos)
        << s.error().message;
  }
  auto s = parse_shard("auto", env_of({{"CI_NODE_TOTAL", "3"}}));
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("CI_NODE_INDEX is unset"), std::string::npos)
      << s.error().message;
  s = parse_shard("auto", env_of({{"CI_NODE_INDEX", "4"}, {"CI_NODE_TOTAL", "3"}}));
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("from CI_NODE_INDEX/CI_NODE_TOTAL"), std::string::npos)
      << s.error().message;
}

// FNV-1a's published test vectors: the split is the same on every machine.
TEST(Shard, HashIsFnv1a64) {
  EXPECT_EQ(case_hash(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(case_hash("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(case_hash("foobar"), 0x85944171f73967e8ULL);
}

std::vector<std::string> ids(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i)
    out.push_back("knobs/case" + std::to_string(i));
  return out;
}

TEST(Shard, EveryCaseLandsInExactlyOneShard) {
  const auto all = ids(40);
  for (int total = 1; total <= 7; ++total) {
    const auto where = assign_shards(all, {}, total);
    ASSERT_EQ(where.size(), all.size());
    for (int w : where) {
      EXPECT_GE(w, 1);
      EXPECT_LE(w, total);
    }
    // The same inputs, the same split; a case's shard does not depend on its
    // neighbours when nothing was recorded.
    EXPECT_EQ(assign_shards(all, {}, total), where);
    const std::vector<std::string> some(all.begin() + 5, all.end());
    const auto fewer = assign_shards(some, {}, total);
    EXPECT_TRUE(std::equal(fewer.begin(), fewer.end(), where.begin() + 5));
  }
}

TEST(Shard, RecordedDurationsGoLongestFirstToTheLightestShard) {
  const std::vector<std::string> all = {"a", "b", "c", "d", "e"};
  const std::map<std::string, double> d = {{"a", 10}, {"b", 7}, {"c", 6}, {"d", 5}, {"e", 2}};
  // a -> 1 (10); b -> 2 (7); c -> 2 (13); d -> 1 (15); e -> 2 (15).
  EXPECT_EQ(assign_shards(all, d, 2), (std::vector<int>{1, 2, 2, 1, 2}));
  // Better than the hash: the two loads differ by no more than the shortest case.
  std::vector<double> load(2, 0);
  const auto where = assign_shards(all, d, 2);
  for (size_t i = 0; i < all.size(); ++i)
    load[static_cast<size_t>(where[i] - 1)] += d.at(all[i]);
  EXPECT_LE(std::abs(load[0] - load[1]), 2.0);
}

TEST(Shard, UnrecordedCasesGoByTheirHashAndCountAtTheMean) {
  const std::vector<std::string> all = {"new", "a", "b"};
  const std::map<std::string, double> d = {{"a", 4}, {"b", 4}};
  const auto where = assign_shards(all, d, 2);
  const int hashed = static_cast<int>(case_hash("new") % 2) + 1;
  EXPECT_EQ(where[0], hashed);
  // "new" weighs 4 on its shard: a goes to the other one, b then to the lower of two equals.
  EXPECT_EQ(where[1], 3 - hashed);
  EXPECT_EQ(where[2], 1);
}

} // namespace
} // namespace probegate::suite
