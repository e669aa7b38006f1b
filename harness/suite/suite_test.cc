// SPDX-License-Identifier: GPL-2.0-only
#include "suite/suite.h"

#include <gtest/gtest.h>

namespace probegate::suite {
namespace {

std::vector<std::string> ids(const Suite& s) {
  std::vector<std::string> out;
  for (const auto& c : s.cases)
    out.push_back(c.id);
  return out;
}

TEST(Suite, DefaultsCasesAndMatrixExpand) {
  auto s = parse_suite(R"(
suite: knobs
defaults:
  kernel: debian:6.1
  devices: 2
  probe_delay_ms: 4000
  udev_timeout: 3
cases:
  - id: sync
    expect_bound: 0
    expect_udev_kill: yes
  - id: driver-cmdline
    async: driver-cmdline
    devices: [1, 2]
    expect_bound: 1
    skip: not on this kernel
)",
                       "knobs.yaml");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(ids(*s), (std::vector<std::string>{"knobs/sync", "knobs/driver-cmdline/dev1",
                                               "knobs/driver-cmdline/dev2"}));
  const auto& sync = s->cases[0].spec;
  EXPECT_EQ(sync.devices, 2);
  EXPECT_EQ(sync.probe_delay_ms, 4000);
  EXPECT_EQ(sync.udev_timeout_s, 3);
  EXPECT_EQ(sync.expect.bound, 0);
  EXPECT_EQ(sync.expect.udev_kill, verdict::Tri::yes);
  EXPECT_EQ(sync.name, "knobs/sync");
  EXPECT_FALSE(s->cases[0].skip);
  EXPECT_EQ(s->cases[2].spec.async, spec::AsyncKnob::driver_cmdline);
  EXPECT_EQ(s->cases[2].skip, "not on this kernel");
  EXPECT_EQ(s->cases[1].where, "knobs.yaml:12:5");
}

constexpr std::string_view k_capacity = R"(
suite: capacity
matrix:
  devices: [1, 2, 4]
  udev_timeout: [3, 30]
  async: [none, module-param]
)";

TEST(Suite, MatrixWithoutCasesIsTheCrossProduct) {
  auto s = parse_suite(k_capacity, "c.yaml");
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_EQ(s->cases.size(), 12u);
  EXPECT_EQ(s->cases.front().id, "capacity/dev1-async-none-timeout3");
  EXPECT_EQ(s->cases.back().id, "capacity/dev4-async-module-param-timeout30");
  // Stable: the same text gives the same ids in the same order.
  EXPECT_EQ(ids(*s), ids(*parse_suite(k_capacity, "c.yaml")));
}

TEST(Suite, UserspaceIsAKeyAndAMatrixAxis) {
  auto s = parse_suite("suite: us\nmatrix:\n  userspace: [debian:bullseye, kernel]\n", "us.yaml");
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_EQ(s->cases.size(), 2u);
  EXPECT_EQ(s->cases[0].spec.userspace, "debian:bullseye");
  EXPECT_EQ(s->cases[1].spec.userspace, "kernel");
  EXPECT_NE(s->cases[0].id, s->cases[1].id);
  auto bad = parse_suite("cases:\n  - id: a\n    userspace: debian:buster\n", "bad.yaml");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, core::ErrorKind::usage);
  EXPECT_TRUE(bad.error().message.starts_with("bad.yaml:3:16")) << bad.error().message;
  EXPECT_NE(bad.error().message.find("debian:trixie"), std::string::npos);
}

TEST(Suite, NameDefaultsToTheFileStem) {
  auto s = parse_suite("defaults: {devices: 1}\n", "suites/tiny.yaml");
  ASSERT_TRUE(s);
  EXPECT_EQ(ids(*s), (std::vector<std::string>{"tiny"}));
}

// Each malformed suite: a usage error at the right place, saying what is allowed.
struct Bad {
  const char* text;
  const char* where;
  const char* says;
};

class BadSuite : public ::testing::TestWithParam<Bad> {};

TEST_P(BadSuite, IsAUsageErrorWithFileLineColumn) {
  const Bad bad = GetParam();
  auto s = parse_suite(bad.text, "bad.yaml");
  ASSERT_FALSE(s) << bad.text;
  EXPECT_EQ(s.error().kind, core::ErrorKind::usage);
  EXPECT_TRUE(s.error().message.starts_with(bad.where)) << s.error().message;
  EXPECT_NE(s.error().message.find(bad.says), std::string::npos) << s.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Errors, BadSuite,
    ::testing::Values(
        Bad{"defaults: {devicez: 2}\n", "bad.yaml:1:12", "unknown key 'devicez'; allowed: kernel"},
        Bad{"defaults: {devices: two}\n", "bad.yaml:1:21", "devices must be a whole number"},
        Bad{"cases:\n  - id: a\n    async: sometimes\n", "bad.yaml:3:12", "module-param"},
        Bad{"cases:\n  - devices: 1\n", "bad.yaml:2:5", "has no 'id'"},
        Bad{"cases:\n  - id: a b\n", "bad.yaml:2:9", "may hold only"},
        Bad{"cases:\n  - id: ../up\n", "bad.yaml:2:9", "may hold only"},
        Bad{"cases:\n  - id: ..\n", "bad.yaml:2:9", "may hold only"},
        Bad{"cases:\n  - id: .\n", "bad.yaml:2:9", "may hold only"},
        Bad{"suite: ..\ncases:\n  - id: a\n", "bad.yaml:1:8", "suite name"},
        Bad{"", "bad.yaml:1:1", ""},
        Bad{"cases:\n  - id: a\n  - id: a\n", "bad.yaml:3:5", "already used at bad.yaml:2:5"},
        Bad{"cases:\n  - id: a\n    devices: 1\n    expect_bound: 2\n", "bad.yaml:2:5",
            "impossible with --devices 1"},
        Bad{"defaults: [1, 2]\n", "bad.yaml:1:11", "expected a map"},
        Bad{"colour: red\n", "bad.yaml:1:1", "unknown key 'colour'"},
        Bad{"defaults: {devices: [1, [2]]}\n", "bad.yaml:1:25", "plain values"},
        Bad{"defaults: {devices: []}\n", "bad.yaml:1:21", "non-empty list"},
        Bad{"defaults: {devices: 2\n", "bad.yaml:2:1", "not valid YAML"},
        Bad{"- just\n- a list\n", "bad.yaml:1:1", "a suite is a map"},
        Bad{"cases: 3\n", "bad.yaml:1:8", "'cases' must be a list"},
        Bad{"cases: []\n", "bad.yaml:1:1", "no cases"},
        Bad{"suite: a/b\ndefaults: {devices: 1}\n", "bad.yaml:1:8", "suite name"},
        Bad{"matrix:\n  devices: [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]\n"
            "  probe_delay_ms: [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]\n"
            "  udev_timeout: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]\n",
            "bad.yaml:", "more than 4096 cases"},
        Bad{"defaults: {kernel: [debian:5.10, debian:6.1]}\ncases:\n  - id: a\n    by_kernel:\n"
            "      debian:6.12: {expect_bound: 1}\n",
            "bad.yaml:5:7", "by_kernel: 'debian:6.12' is none of this case's kernels"},
        Bad{"cases:\n  - id: a\n    by_kernel: [debian:6.1]\n", "bad.yaml:3:16",
            "by_kernel maps a kernel ref"},
        Bad{"cases:\n  - id: a\n    by_kernel:\n      debian:6.1: {expect_bound: [1, 2]}\n",
            "bad.yaml:4:38", "single values"},
        Bad{"cases:\n  - id: a\n    by_kernel:\n      debian:6.1: {expect_skip: maybe}\n",
            "bad.yaml:4:33", "expect_skip must be yes or no"}),
    [](const ::testing::TestParamInfo<Bad>& param) { return std::to_string(param.index); });

TEST(Suite, ByKernelOverridesOneKernelAndRowsDropTheKernel) {
  auto s = parse_suite(R"(
suite: kk
defaults:
  kernel: [debian:5.10, debian:6.1]
  devices: [1, 2]
cases:
  - id: default
    async: module-default
    expect_bound: 1
    by_kernel:
      debian:5.10: {expect_skip: yes}
)",
                       "kk.yaml");
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_EQ(s->cases.size(), 4u);
  for (const auto& c : s->cases) {
    EXPECT_EQ(c.spec.expect.skip.has_value(), c.spec.kernel == "debian:5.10") << c.id;
    EXPECT_EQ(c.spec.expect.bound, 1) << c.id << ": the other options stay";
  }
  EXPECT_EQ(s->cases[0].id, "kk/default/debian-5.10-dev1");
  EXPECT_EQ(s->cases[0].row, "kk/default/dev1");
  EXPECT_EQ(s->cases[3].row, "kk/default/dev2");
}

TEST(Suite, IdsStayBelowTheSession) {
  auto s = parse_suite("matrix:\n  kernel: [debian:6.1, ..]\ncases:\n  - id: a\n", "x.yaml");
  ASSERT_TRUE(s) << s.error().message;
  for (const auto& c : s->cases)
    for (const auto* bad : {"/../", "/./"})
      EXPECT_EQ((c.id + "/").find(bad), std::string::npos) << c.id;
}

TEST(Suite, FilterIsAGlobOnIds) {
  auto s = parse_suite("cases:\n  - id: sync\n  - id: async-a\n  - id: async-b\n", "k.yaml");
  ASSERT_TRUE(s);
  EXPECT_EQ(filter_cases(s->cases, "k/async-*").size(), 2u);
  EXPECT_EQ(filter_cases(s->cases, "").size(), 3u);
  EXPECT_EQ(filter_cases(s->cases, "nothing").size(), 0u);
}

TEST(Suite, MissingFileIsAUsageError) {
  auto s = load_suite("/nonexistent/suite.yaml");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, core::ErrorKind::usage);
  EXPECT_NE(s.error().message.find("/nonexistent/suite.yaml"), std::string::npos);
}

} // namespace
} // namespace probegate::suite
