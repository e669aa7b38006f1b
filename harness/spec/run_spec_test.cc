// SPDX-License-Identifier: GPL-2.0-only
#include "spec/run_spec.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace probegate::spec {
namespace {

TEST(RunSpec, UserspaceNamesASuiteOrTheKernels) {
  RunSpec s;
  EXPECT_EQ(userspace_suite(s, "trixie").value(), "bookworm") << "the default stays bookworm";
  s.userspace = "debian:bullseye";
  EXPECT_EQ(userspace_suite(s, "sid").value(), "bullseye");
  s.userspace = "kernel";
  EXPECT_EQ(userspace_suite(s, "trixie").value(), "trixie");
  EXPECT_EQ(userspace_suite(s, "").value(), "bookworm") << "file:, tree: and build: kernels";
  s.userspace = "debian:buster";
  auto bad = userspace_suite(s, "");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, core::ErrorKind::usage);
  EXPECT_NE(bad.error().message.find("userspace"), std::string::npos);
  EXPECT_NE(bad.error().message.find("debian:sid"), std::string::npos);
  EXPECT_FALSE(apply_option(s, "userspace", "ubuntu:noble"));
  EXPECT_TRUE(apply_option(s, "userspace", "kernel"));
  EXPECT_EQ(options_json(s)["userspace"], "kernel");
}

TEST(RunSpec, KnobsLandWhereTheKernelReadsThem) {
  RunSpec s;
  s.udev_timeout_s = 3;
  EXPECT_EQ(kernel_cmdline(s), "console=ttyS0 panic=-1 printk.devkmsg=on udev.event_timeout=3");
  s.async = AsyncKnob::module_param;
  EXPECT_TRUE(kernel_cmdline(s).ends_with(" slowprobe.async_probe=1"));
  s.async = AsyncKnob::module_default;
  s.async_value = 0;
  EXPECT_TRUE(kernel_cmdline(s).ends_with(" module.async_probe=0"));
  s.async = AsyncKnob::driver_cmdline;
  s.async_value = 1;
  EXPECT_TRUE(kernel_cmdline(s).ends_with(" driver_async_probe=slowprobe"));
  s.async = AsyncKnob::modprobe_conf;
  EXPECT_EQ(kernel_cmdline(s), "console=ttyS0 panic=-1 printk.devkmsg=on udev.event_timeout=3");
  EXPECT_TRUE(modprobe_options(s).front().ends_with(" async_probe=1"));
}

TEST(RunSpec, ProbeParametersGoToModprobeD) {
  RunSpec s;
  s.probe_delay_ms = 4000;
  s.probe_kthread = false;
  s.probe_type = ProbeType::force_sync;
  EXPECT_EQ(modprobe_options(s),
            (std::vector<std::string>{
                "options slowprobe delay_ms=4000 kthread=0 kill_check=1 probe_type=2"}));
}

TEST(RunSpec, BuiltInSlowprobeTakesItsParametersOnTheCommandLine) {
  RunSpec s;
  s.probe_delay_ms = 4000;
  s.probe_kthread = false;
  s.probe_type = ProbeType::force_sync;
  EXPECT_EQ(builtin_cmdline_params(s), " slowprobe.delay_ms=4000 slowprobe.kthread=0 "
                                       "slowprobe.kill_check=1 slowprobe.probe_type=2");
}

TEST(RunSpec, EachKnobNamesWhatTheKernelMustHave) {
  RunSpec s;
  EXPECT_EQ(required_knob(s), "");
  s.async = AsyncKnob::module_param;
  EXPECT_EQ(required_knob(s), "async_probe");
  s.async = AsyncKnob::modprobe_conf;
  EXPECT_EQ(required_knob(s), "async_probe");
  s.async = AsyncKnob::driver_cmdline;
  EXPECT_EQ(required_knob(s), "driver_async_probe=");
  s.async = AsyncKnob::module_default;
  EXPECT_EQ(required_knob(s), "module.async_probe");
}

TEST(RunSpec, DefaultTimeoutIsUdevsOwn) {
  RunSpec s;
  EXPECT_EQ(kernel_cmdline(s).find("event_timeout"), std::string::npos);
  EXPECT_GE(effective_deadline(s), k_udev_default_timeout_s + 11);
  s.deadline_s = 7;
  EXPECT_EQ(effective_deadline(s), 7);
}

TEST(RunSpec, ImpossibleCombinationsAreUsageErrors) {
  auto bad = [](auto mutate) {
    RunSpec s;
    mutate(s);
    auto v = validate(s);
    return !v && v.error().kind == core::ErrorKind::usage;
  };
  EXPECT_TRUE(bad([](RunSpec& s) { s.expect.bound = 3; }));
  EXPECT_TRUE(bad([](RunSpec& s) { s.devices = -1; }));
  EXPECT_TRUE(bad([](RunSpec& s) { s.devices = 33; }));
  EXPECT_TRUE(bad([](RunSpec& s) { s.async_value = 2; }));
  EXPECT_TRUE(bad([](RunSpec& s) { s.udev_timeout_s = 0; }));
  EXPECT_TRUE(bad([](RunSpec& s) { s.deadline_s = 0; }));
  EXPECT_TRUE(bad([](RunSpec& s) { s.probe_delay_ms = -5; }));
  EXPECT_TRUE(bad([](RunSpec& s) {
    s.async = AsyncKnob::driver_cmdline;
    s.async_value = 0;
  }));
  EXPECT_TRUE(bad([](RunSpec& s) { s.accel = "kvm"; }));
  EXPECT_FALSE(bad([](RunSpec& s) { s.expect.bound = 2; }));
}

TEST(RunSpec, ParsersNameTheChoices) {
  RunSpec s;
  ASSERT_TRUE(apply_option(s, "async", "modprobe-conf"));
  EXPECT_EQ(s.async, AsyncKnob::modprobe_conf);
  auto knob = apply_option(s, "async", "sometimes");
  ASSERT_FALSE(knob);
  EXPECT_NE(knob.error().message.find("module-param"), std::string::npos);
  ASSERT_TRUE(apply_option(s, "probe_type", "prefer-async"));
  EXPECT_EQ(s.probe_type, ProbeType::prefer_async);
  EXPECT_FALSE(apply_option(s, "probe_type", "async"));
  ASSERT_TRUE(apply_option(s, "expect_udev_kill", "any"));
  EXPECT_EQ(s.expect.udev_kill, verdict::Tri::any);
  EXPECT_FALSE(apply_option(s, "expect_udev_kill", "maybe"));
}

} // namespace
} // namespace probegate::spec

namespace probegate::spec {
namespace {

TEST(Capacity, PredictsDevicesWhoseProbesEndBeforeTheKill) {
  RunSpec s;
  s.devices = 6;
  s.probe_delay_ms = 2400;
  for (auto [timeout, bound] : {std::pair{3, 1}, {5, 2}, {10, 4}}) {
    s.udev_timeout_s = timeout;
    s.expect_capacity = true;
    ASSERT_TRUE(resolve_capacity(s)) << timeout;
    EXPECT_EQ(s.expect.bound, bound) << timeout;
  }
  s.devices = 2;
  s.udev_timeout_s = 10;
  ASSERT_TRUE(resolve_capacity(s));
  EXPECT_EQ(s.expect.bound, 2) << "never more than the devices there are";
}

TEST(Capacity, RefusesAmbiguousAndAsyncCases) {
  RunSpec s;
  s.devices = 4;
  s.probe_delay_ms = 2000; // kill in [3, 4] s: 1 or 2 probes end before it
  s.udev_timeout_s = 3;
  s.expect_capacity = true;
  auto r = resolve_capacity(s);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("1 or 2 devices"), std::string::npos) << r.error().message;
  s.probe_delay_ms = 2400;
  s.async = AsyncKnob::module_param;
  EXPECT_FALSE(resolve_capacity(s));
}

} // namespace
} // namespace probegate::spec
