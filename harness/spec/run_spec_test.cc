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

TEST(RunSpec, SystemdIsPid1AndTheDeadlineOutlastsItsDeviceTimeout) {
  RunSpec s;
  EXPECT_EQ(kernel_cmdline(s).find("rdinit="), std::string::npos);
  s.init = Init::systemd;
  EXPECT_NE(kernel_cmdline(s).find(" rdinit=/usr/lib/probegate/init systemd.log_target=kmsg "
                                   "systemd.status_unit_format=name"),
            std::string::npos);
  EXPECT_GT(effective_deadline(s), k_systemd_default_device_timeout_s)
      << "the default device timeout, then emergency mode";
  s.device_timeout_s = 600;
  EXPECT_GT(effective_deadline(s), 600);
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
  EXPECT_TRUE(bad([](RunSpec& s) {
    s.init = Init::systemd;
    s.load = Load::modprobe;
  }));
  EXPECT_TRUE(bad([](RunSpec& s) { s.device_timeout_s = 10; })) << "systemd's option";
  EXPECT_TRUE(bad([](RunSpec& s) {
    s.init = Init::systemd;
    s.inject_fault = Fault::panic;
  }));
  EXPECT_FALSE(bad([](RunSpec& s) {
    s.init = Init::systemd;
    s.udev_via = UdevVia::udevd_arg;
    s.udev_timeout_s = 3;
  })) << "a drop-in of systemd-udevd.service gives udevd its arguments";
  EXPECT_FALSE(bad([](RunSpec& s) {
    s.init = Init::systemd;
    s.device_timeout_s = 10;
  }));
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
    ASSERT_TRUE(resolve_capacity(s, 0)) << timeout;
    EXPECT_EQ(s.expect.bound, bound) << timeout;
  }
  s.devices = 2;
  s.udev_timeout_s = 10;
  ASSERT_TRUE(resolve_capacity(s, 0));
  EXPECT_EQ(s.expect.bound, 2) << "never more than the devices there are";
}

TEST(Capacity, FollowsTheExtraSecondsOfTheUdevInTheImage) {
  RunSpec s;
  s.devices = 8;
  s.probe_delay_ms = 2400;
  s.udev_timeout_s = 3;
  s.expect_capacity = true;
  EXPECT_EQ(udev_extra_s(s, 252), 0);
  EXPECT_EQ(udev_extra_s(s, 257), 10) << "udev 256 and later wait 10 s more";
  ASSERT_TRUE(resolve_capacity(s, udev_extra_s(s, 252)));
  EXPECT_EQ(s.expect.bound, 1); // kill at 3..4 s
  s.expect.bound.reset();
  ASSERT_TRUE(resolve_capacity(s, udev_extra_s(s, 262)));
  EXPECT_EQ(s.expect.bound, 5); // kill at 13..14 s: 5 x 2.4 s = 12 s end before it
  s.udev_extra_timeout_s = 0;
  EXPECT_EQ(udev_extra_s(s, 262), 0) << "--udev-extra-timeout 0 turns it off";
}

TEST(UdevKnobs, EachSpellingReachesUdevdThroughItsOwnChannel) {
  RunSpec s;
  s.udev_timeout_s = 3;
  s.udev_signal = "ABRT";
  auto u = udev_settings(s);
  EXPECT_EQ(u.cmdline, " udev.event_timeout=3 udev.timeout_signal=SIGABRT");
  EXPECT_TRUE(u.conf.empty() && u.args.empty() && u.env.empty());
  s.udev_via = UdevVia::cmdline_rd;
  EXPECT_EQ(udev_settings(s).cmdline, " rd.udev.event_timeout=3 rd.udev.timeout_signal=SIGABRT");
  s.udev_via = UdevVia::udev_conf;
  u = udev_settings(s);
  EXPECT_EQ(u.cmdline, "");
  EXPECT_EQ(u.conf, (std::vector<std::string>{"event_timeout=3", "timeout_signal=SIGABRT"}));
  EXPECT_EQ(kernel_cmdline(s).find("udev."), std::string::npos);
  s.udev_via = UdevVia::udevd_arg;
  s.udev_extra_timeout_s = 0;
  u = udev_settings(s);
  EXPECT_EQ(u.args, (std::vector<std::string>{"--event-timeout=3", "--timeout-signal=SIGABRT"}));
  EXPECT_EQ(u.env, (std::vector<std::string>{"SYSTEMD_UDEV_EXTRA_TIMEOUT_SEC=0"}));
}

TEST(UdevKnobs, AnExtraTimeoutIsMissingBeforeUdev256) {
  RunSpec s;
  EXPECT_EQ(udev_knob_missing(s, 247), "") << "nothing asked for";
  s.udev_extra_timeout_s = 0;
  EXPECT_NE(udev_knob_missing(s, 252).find("SYSTEMD_UDEV_EXTRA_TIMEOUT_SEC"), std::string::npos);
  EXPECT_EQ(udev_knob_missing(s, 256), "");
  s.udev_extra_timeout_s = 30;
  EXPECT_GE(effective_deadline(s), k_udev_default_timeout_s + 31)
      << "the deadline leaves room for a longer extra wait";
}

TEST(Capacity, RefusesAmbiguousAndAsyncCases) {
  RunSpec s;
  s.devices = 4;
  s.probe_delay_ms = 2000; // kill in [3, 4] s: 1 or 2 probes end before it
  s.udev_timeout_s = 3;
  s.expect_capacity = true;
  auto r = resolve_capacity(s, 0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("1 or 2 devices"), std::string::npos) << r.error().message;
  s.probe_delay_ms = 2400;
  ASSERT_TRUE(resolve_capacity(s, 10)) << "13..14 s / 2.4 s: all 4 either way";
  s.async = AsyncKnob::module_param;
  EXPECT_FALSE(resolve_capacity(s, 0));
  EXPECT_FALSE(check_capacity(s)) << "refused before the user space is known";
}

} // namespace
} // namespace probegate::spec
