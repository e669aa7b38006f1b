// SPDX-License-Identifier: GPL-2.0-only
#include "bisect/search.h"

#include <algorithm>
#include <cmath>
#include <gtest/gtest.h>
#include <set>

namespace probegate::bisect {
namespace {

// A fake oracle: item i has verdicts[i] ("" = untestable); counts calls.
struct Fake {
  explicit Fake(std::vector<std::string> v) : verdicts(std::move(v)) {}
  std::vector<std::string> verdicts;
  std::vector<size_t> asked;
  std::set<size_t> disagree;
  Oracle oracle() {
    return [this](size_t i, const std::string&) {
      asked.push_back(i);
      Step s;
      s.label = "k" + std::to_string(i);
      if (verdicts.at(i).empty()) {
        s.cls = Class::untestable;
        s.why = "build failed";
      } else {
        s.cls = Class::same; // search() classifies
        s.verdict = verdicts[i];
      }
      s.disagreed = disagree.contains(i);
      return s;
    };
  }
};

std::vector<std::string> history(size_t n, size_t first_bad) {
  std::vector<std::string> v(n, "pass");
  for (size_t i = first_bad; i < n; ++i)
    v[i] = "fail";
  return v;
}

TEST(Search, FindsTheFirstDifferentItemInLogSteps) {
  for (size_t n : {2u, 3u, 7u, 16u, 100u}) {
    for (size_t first = 1; first < n; ++first) {
      Fake f(history(n, first));
      const auto a = search(n, f.oracle());
      ASSERT_EQ(a.kind, Answer::Kind::found) << n << "/" << first;
      EXPECT_EQ(a.first, first) << n;
      EXPECT_EQ(a.last_same, first - 1) << n;
      EXPECT_TRUE(a.certain);
      EXPECT_LE(f.asked.size(), 2 + static_cast<size_t>(std::ceil(std::log2(n))))
          << "n=" << n << " first=" << first;
      std::set<size_t> unique(f.asked.begin(), f.asked.end());
      EXPECT_EQ(unique.size(), f.asked.size()) << "no item runs twice";
    }
  }
}

TEST(Search, AFixIsTheSameSearchAsARegression) {
  Fake f(std::vector<std::string>{"fail", "fail", "fail", "pass", "pass"});
  const auto a = search(5, f.oracle());
  EXPECT_EQ(a.kind, Answer::Kind::found);
  EXPECT_EQ(a.first, 3u);
}

TEST(Search, NoChangeWhenTheLastIsLikeTheFirst) {
  Fake f(std::vector<std::string>{"pass", "fail", "pass"});
  const auto a = search(3, f.oracle());
  EXPECT_EQ(a.kind, Answer::Kind::no_change);
  EXPECT_EQ(f.asked, (std::vector<size_t>{0, 2}));
}

TEST(Search, UntestableItemsAreSteppedAround) {
  // 0..9, first bad 6; 4, 5 and 7 cannot be tested.
  Fake f(
      std::vector<std::string>{"pass", "pass", "pass", "pass", "", "", "fail", "", "fail", "fail"});
  const auto a = search(10, f.oracle());
  // 4 and 5 were tried and skipped: the change is in 4..6, and the answer says so.
  EXPECT_EQ(a.kind, Answer::Kind::ambiguous);
  EXPECT_EQ(a.last_same, 3u);
  EXPECT_EQ(a.first, 6u);
  EXPECT_EQ(a.skipped, (std::vector<size_t>{4, 5}));
  // With only 7 untestable, the answer is exact.
  Fake h(std::vector<std::string>{"pass", "pass", "pass", "pass", "pass", "pass", "fail", "",
                                  "fail", "fail"});
  const auto c = search(10, h.oracle());
  EXPECT_EQ(c.kind, Answer::Kind::found);
  EXPECT_EQ(c.first, 6u);
  Fake g(std::vector<std::string>{"pass", "", "", "fail"});
  const auto b = search(4, g.oracle());
  EXPECT_EQ(b.kind, Answer::Kind::ambiguous);
  EXPECT_EQ(b.last_same, 0u);
  EXPECT_EQ(b.first, 3u);
  EXPECT_FALSE(b.certain);
}

TEST(Search, UntestableEndsAndStarts) {
  Fake first_bad(std::vector<std::string>{"", "pass", "fail"});
  EXPECT_EQ(search(3, first_bad.oracle()).kind, Answer::Kind::first_untestable);
  Fake last_bad(std::vector<std::string>{"pass", "fail", ""});
  const auto a = search(3, last_bad.oracle());
  EXPECT_EQ(a.kind, Answer::Kind::found) << "the last testable item is the far end";
  EXPECT_EQ(a.first, 1u);
}

TEST(Search, DisagreeingRepeatsMakeTheAnswerUncertain) {
  Fake f(history(8, 5));
  f.disagree = {4, 5, 6, 7};
  const auto a = search(8, f.oracle());
  EXPECT_EQ(a.first, 5u);
  EXPECT_FALSE(a.certain);
}

TEST(Search, ResumeReusesKnownStepsWithoutRunningThem) {
  Fake f(history(16, 11));
  const auto full = search(16, f.oracle());
  // Interrupted after three steps: resume from them.
  std::map<size_t, Step> known;
  for (size_t i = 0; i < 3; ++i)
    known[full.steps[i].index] = full.steps[i];
  Fake g(history(16, 11));
  const auto resumed = search(16, g.oracle(), known);
  EXPECT_EQ(resumed.first, 11u);
  EXPECT_EQ(g.asked.size(), full.steps.size() - 3);
  for (const auto& [i, step] : known)
    EXPECT_EQ(std::count(g.asked.begin(), g.asked.end(), i), 0) << i;
}

} // namespace
} // namespace probegate::bisect
