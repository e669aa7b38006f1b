// SPDX-License-Identifier: GPL-2.0-only
#include "pool/hosts.h"

#include <gtest/gtest.h>

namespace probegate::pool {
namespace {

TEST(Hosts, ParsesAPoolWithDefaults) {
  auto hosts = parse_hosts(R"(hosts:
  - uri: qemu+tcp://10.0.0.5/system
    slots: 2
    labels: {kvm: true, rack: b2}
  - name: lab2
    uri: qemu+ssh://ci@lab2:2222/system
    pool: pg
    pool_dir: /srv/pg
  - uri: qemu:///system
)",
                           "hosts.yaml");
  ASSERT_TRUE(hosts) << hosts.error().message;
  ASSERT_EQ(hosts->size(), 3u);
  const auto& a = (*hosts)[0];
  EXPECT_EQ(a.name, "10.0.0.5");
  EXPECT_EQ(a.slots, 2);
  EXPECT_TRUE(a.kvm());
  EXPECT_EQ(a.labels.at("rack"), "b2");
  EXPECT_EQ(a.storage_pool, "probegate");
  EXPECT_EQ(a.pool_dir, "/var/lib/libvirt/probegate");
  EXPECT_EQ(a.where, "hosts.yaml:2:5");
  const auto& b = (*hosts)[1];
  EXPECT_EQ(b.name, "lab2");
  EXPECT_EQ(b.slots, 1);
  EXPECT_FALSE(b.kvm());
  EXPECT_EQ(b.storage_pool, "pg");
  EXPECT_EQ(b.pool_dir, "/srv/pg");
  EXPECT_EQ((*hosts)[2].name, "local");
  EXPECT_TRUE(can_run(a, "kvm"));
  EXPECT_FALSE(can_run(b, "kvm"));
  EXPECT_TRUE(can_run(b, "auto"));
  EXPECT_TRUE(can_run(b, "tcg"));
}

TEST(Hosts, TheDefaultNameKeepsThePort) {
  auto hosts = parse_hosts("hosts:\n  - uri: qemu+tcp://127.0.0.1:16510/system\n"
                           "  - uri: qemu+tcp://127.0.0.1:16511/system\n",
                           "h.yaml");
  ASSERT_TRUE(hosts) << hosts.error().message;
  EXPECT_EQ((*hosts)[0].name, "127.0.0.1_16510");
  EXPECT_EQ((*hosts)[1].name, "127.0.0.1_16511");
}

struct Bad {
  const char* text;
  const char* where; // file:line:column the message starts with
  const char* says;  // part of the message
};

class BadHosts : public ::testing::TestWithParam<Bad> {};

TEST_P(BadHosts, IsAUsageErrorThatSaysWhere) {
  const auto& bad = GetParam();
  auto hosts = parse_hosts(bad.text, "h.yaml");
  ASSERT_FALSE(hosts);
  EXPECT_EQ(hosts.error().kind, core::ErrorKind::usage);
  EXPECT_TRUE(hosts.error().message.starts_with(std::string("h.yaml:") + bad.where + ": "))
      << hosts.error().message;
  EXPECT_NE(hosts.error().message.find(bad.says), std::string::npos) << hosts.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Hosts, BadHosts,
    ::testing::Values(
        Bad{"- uri: qemu:///system\n", "1:1", "a map with one key, 'hosts'"},
        Bad{"hosts: []\n", "1:8", "non-empty list"}, Bad{"hosts:\n", "1:1", "non-empty list"},
        Bad{"host:\n  - uri: qemu:///system\n", "1:1", "'host' is not allowed"},
        Bad{"hosts:\n  - slots: 2\n", "2:5", "has no 'uri'"},
        Bad{"hosts:\n  - uri: qemu+tpc://h/system\n", "2:10", "unknown transport 'tpc'"},
        Bad{"hosts:\n  - uri: qemu+tcp://h/sytem\n", "2:10", "/system, /session or /embed"},
        Bad{"hosts:\n  - uri: qemu:///embed?root=/x\n", "2:10", "a libvirt daemon"},
        Bad{"hosts:\n  - uri: qemu:///system\n    slots: 0\n", "3:12", "1 to 64"},
        Bad{"hosts:\n  - uri: qemu:///system\n    slots: two\n", "3:12", "1 to 64"},
        Bad{"hosts:\n  - uri: qemu:///system\n    slots: 65\n", "3:12", "1 to 64"},
        Bad{"hosts:\n  - uri: qemu:///system\n    slot: 2\n", "3:5", "unknown key 'slot'"},
        Bad{"hosts:\n  - uri: qemu:///system\n    labels: kvm\n", "3:13", "map of plain values"},
        Bad{"hosts:\n  - uri: qemu:///system\n    labels: {kvm: yes}\n", "3:13",
            "'kvm' must be true or false"},
        Bad{"hosts:\n  - uri: qemu:///system\n    pool_dir: srv/pg\n", "3:15", "absolute"},
        Bad{"hosts:\n  - uri: qemu:///system\n    name: a b\n", "3:11", "letters, digits"},
        Bad{"hosts:\n  - uri: qemu:///system\n  - uri: qemu:///system\n", "3:5",
            "listed twice (first at h.yaml:2:5)"},
        Bad{"hosts:\n  - {uri: 'qemu+tcp://a/system', name: x}\n  - {uri: "
            "'qemu+tcp://b/system', name: x}\n",
            "3:5", "host name 'x' is taken"},
        Bad{"hosts:\n  - uri: qemu:///system\n    uri: qemu:///session\n", "3:5", "given twice"},
        Bad{"hosts:\n  - [qemu:///system]\n", "2:5", "each host is a map"},
        Bad{"hosts: {uri: x\n", "2:1", "not valid YAML"}));

TEST(Hosts, AMissingFileIsAUsageError) {
  auto hosts = load_hosts("/nonexistent/hosts.yaml");
  ASSERT_FALSE(hosts);
  EXPECT_EQ(hosts.error().kind, core::ErrorKind::usage);
  EXPECT_NE(hosts.error().message.find("/nonexistent/hosts.yaml does not exist"),
            std::string::npos);
}

} // namespace
} // namespace probegate::pool
