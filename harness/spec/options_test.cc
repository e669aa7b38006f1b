// SPDX-License-Identifier: GPL-2.0-only
#include "spec/option_cli.h"
#include "spec/options.h"
#include "suite/suite.h"

#include <CLI/CLI.hpp>
#include <climits>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace probegate::spec {
namespace {

// A value for every option, the other options it needs, and a value its
// parser refuses ("" where any text goes). A new option fails
// EveryOptionHasASample until it gets a row here.
struct Sample {
  std::string value;
  std::vector<std::string> needs;
  std::string bad;
};
const std::map<std::string, Sample, std::less<>> k_samples{
    {"name", {"run-x", {}, ""}},
    {"kernel", {"debian:6.12", {}, ""}},
    {"devices", {"5", {}, "two"}},
    {"probe_delay_ms", {"2400", {}, "1.5"}},
    {"probe_kthread", {"no", {}, ""}},
    {"probe_type", {"force-sync", {}, "fast"}},
    {"async", {"modprobe-conf", {}, "sometimes"}},
    {"async_value", {"0", {}, "0x1"}},
    {"udev_timeout", {"7", {}, "soon"}},
    {"expect_bound", {"1", {}, "all"}},
    {"expect_udev_kill", {"yes", {}, "maybe"}},
    {"expect_boot", {"no", {}, "perhaps"}},
    {"accel", {"tcg", {}, "hvf"}},
    {"clock", {"real", {}, "wall"}},
    {"deadline", {"77", {}, ""}},
    {"load", {"modprobe", {}, "insmod"}},
    {"expect_at_modprobe_return", {"1", {"--load", "modprobe"}, "x"}},
    {"expect_skip", {"yes", {}, "perhaps"}},
    {"keep_initramfs", {"yes", {}, ""}},
    {"fresh_boot", {"yes", {}, ""}},
    {"inject_fault", {"panic", {}, "reboot"}},
    {"userspace", {"debian:bullseye", {}, "debian:buster"}},
    {"udev_timeout_via", {"udev-conf", {}, "grub"}},
    {"udev_timeout_signal", {"ABRT", {}, "SIGABRT"}},
    {"udev_extra_timeout", {"0", {}, "ten"}},
    {"init", {"systemd", {}, "sysvinit"}},
    {"device_timeout", {"10", {"--init", "systemd"}, "soon"}},
    {"backend", {"libvirt", {}, "xen"}},
    {"connect", {"qemu+tcp://10.0.0.2/system", {"--backend", "libvirt"}, "qemu+tpc://x/system"}},
};

// argv for `option` set to `value`, as a user types it.
std::vector<std::string> args_for(const OptionDef& option, const std::string& value) {
  if (option.cli_switch)
    return {std::string(value == "yes" ? option.flag : option.negation)};
  return {std::string(option.flag), value};
}

// Parses argv as `probegate boot` does.
core::Result<RunSpec> from_cli(std::vector<std::string> args) {
  CLI::App app;
  CliRunOptions options;
  add_run_options(app, options, true);
  args.insert(args.begin(), "probegate");
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return core::usage_error("{}", e.what());
  }
  return to_spec(options);
}

// A suite of one case whose options are result.json's "options".
core::Result<RunSpec> from_json(const nlohmann::json& options) {
  std::string text = "cases:\n  - id: a\n";
  for (const auto& [key, value] : options.items())
    if (!value.is_null())
      text += fmt::format("    {}: {}\n", key, value.dump());
  auto suite = suite::parse_suite(text, "t.yaml");
  if (!suite)
    return std::unexpected(suite.error());
  return suite->cases.at(0).spec;
}

TEST(Options, EveryOptionHasASampleAndOneKeyAndFlag) {
  std::set<std::string_view> keys, flags;
  for (const auto& o : run_options()) {
    EXPECT_TRUE(k_samples.contains(o.key)) << o.key;
    EXPECT_TRUE(keys.insert(o.key).second) << o.key;
    EXPECT_TRUE(flags.insert(o.flag).second) << o.flag;
    EXPECT_TRUE(o.set && o.get) << o.key;
    EXPECT_TRUE(!o.cli_switch || o.type == OptionType::yes_no) << o.key;
  }
}

// The suite keys and their order are a contract: case ids list segments in it.
TEST(Options, SuiteKeysKeepTheirOrder) {
  EXPECT_EQ(option_keys(), (std::vector<std::string>{"kernel",
                                                     "devices",
                                                     "probe_delay_ms",
                                                     "probe_kthread",
                                                     "probe_type",
                                                     "async",
                                                     "async_value",
                                                     "udev_timeout",
                                                     "expect_bound",
                                                     "expect_udev_kill",
                                                     "expect_boot",
                                                     "accel",
                                                     "clock",
                                                     "deadline",
                                                     "load",
                                                     "expect_at_modprobe_return",
                                                     "expect_skip",
                                                     "fresh_boot",
                                                     "inject_fault",
                                                     "userspace",
                                                     "udev_timeout_via",
                                                     "udev_timeout_signal",
                                                     "udev_extra_timeout",
                                                     "init",
                                                     "device_timeout",
                                                     "backend",
                                                     "connect"}));
  EXPECT_EQ(bisect_param_names(), "devices, probe-delay-ms, udev-timeout or udev-extra-timeout");
}

// A listed value names its case (and its results directory): a contract too.
TEST(Options, ListedValuesKeepTheirCaseIdSegments) {
  auto suite = suite::parse_suite("matrix:\n"
                                  "  devices: [1, 2]\n"
                                  "  probe_delay_ms: [0, 10]\n"
                                  "  async: [none, module-param]\n"
                                  "  async_value: [0, 1]\n"
                                  "  udev_timeout: [3, 180]\n"
                                  "  probe_type: [default, force-sync]\n"
                                  "  accel: [auto, tcg]\n",
                                  "t.yaml");
  ASSERT_TRUE(suite) << suite.error().message;
  EXPECT_EQ(suite->cases.back().id,
            "t/dev2-delay10-type-force-sync-async-module-param-value1-timeout180-accel-tcg");
}

// CLI args -> RunSpec -> result.json -> suite keys -> RunSpec, per option.
TEST(Options, EveryOptionRoundTripsFromTheCommandLineThroughJsonAndASuite) {
  for (const auto& o : run_options()) {
    SCOPED_TRACE(std::string(o.key));
    const auto& sample = k_samples.find(o.key)->second;
    auto args = args_for(o, sample.value);
    args.insert(args.end(), sample.needs.begin(), sample.needs.end());
    auto cli = from_cli(args);
    ASSERT_TRUE(cli) << cli.error().message;
    EXPECT_EQ(o.get(*cli), sample.value) << "the flag sets the option";
    EXPECT_NE(o.get(*cli), o.get(RunSpec{})) << "the sample is not the default";
    if (!o.in_suite)
      continue;
    const auto json = options_json(*cli);
    auto suite = from_json(json);
    ASSERT_TRUE(suite) << suite.error().message;
    EXPECT_EQ(options_json(*suite), json);
    for (const auto& other : run_options()) {
      // result.json records the deadline the guest got, derived or not.
      if (other.in_suite && (!other.json || other.key == o.key)) {
        EXPECT_EQ(other.get(*suite), other.get(*cli)) << other.key;
      }
    }
  }
}

TEST(Options, BadValuesNameTheFlagOrTheFileAndLine) {
  for (const auto& o : run_options()) {
    const auto& sample = k_samples.find(o.key)->second;
    if (sample.bad.empty())
      continue;
    SCOPED_TRACE(std::string(o.key));
    auto cli = from_cli(args_for(o, sample.bad));
    ASSERT_FALSE(cli);
    EXPECT_EQ(cli.error().kind, core::ErrorKind::usage);
    EXPECT_NE(cli.error().message.find(std::string(o.flag) + " must be"), std::string::npos)
        << cli.error().message;
    auto suite = suite::parse_suite(
        fmt::format("cases:\n  - id: a\n    {}: {}\n", o.key, sample.bad), "t.yaml");
    ASSERT_FALSE(suite);
    EXPECT_EQ(suite.error().message.rfind(
                  fmt::format("t.yaml:3:{}: {} must be", 7 + o.key.size(), o.key), 0),
              0u)
        << suite.error().message;
  }
}

TEST(Options, OutOfRangeValuesNameTheFlagAndTheCase) {
  for (const auto& o : run_options()) {
    if (o.type != OptionType::integer || o.min == INT_MIN)
      continue;
    SCOPED_TRACE(std::string(o.key));
    const std::string low = std::to_string(o.min - 1);
    auto cli = from_cli(args_for(o, low));
    ASSERT_FALSE(cli);
    EXPECT_NE(cli.error().message.find(fmt::format("{} must be", o.flag)), std::string::npos)
        << cli.error().message;
    auto suite =
        suite::parse_suite(fmt::format("cases:\n  - id: a\n    {}: {}\n", o.key, low), "t.yaml");
    ASSERT_FALSE(suite);
    EXPECT_EQ(
        suite.error().message.rfind(fmt::format("t.yaml:2:5: case t/a: {} must be", o.flag), 0), 0u)
        << suite.error().message;
  }
}

TEST(Options, ByKernelCannotSetTheKernel) {
  auto suite = suite::parse_suite("cases:\n  - id: a\n    by_kernel:\n      debian:6.1: {kernel: "
                                  "\"debian:6.12\"}\n",
                                  "t.yaml");
  ASSERT_FALSE(suite);
  EXPECT_NE(suite.error().message.find("t.yaml:4:20: by_kernel cannot set 'kernel'"),
            std::string::npos)
      << suite.error().message;
}

} // namespace
} // namespace probegate::spec
