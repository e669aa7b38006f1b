// SPDX-License-Identifier: GPL-2.0-only
#include "drivers/boot.h"

#include "console/boot_log.h"
#include "core/files.h"
#include "image/initramfs.h"
#include "kernel/kernel_store.h"
#include "modules/module_builder.h"
#include "vm/accel.h"
#include "vm/vm_spec.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <unistd.h>

namespace probegate::drivers {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string run_name(const spec::RunSpec& spec) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::array<char, 32> stamp{};
  std::strftime(stamp.data(), stamp.size(), "%Y%m%d-%H%M%S", &tm);
  std::string name = spec.name.empty() ? "boot" : spec.name;
  std::ranges::replace(name, '/', '_'); // one directory per run
  return fmt::format("{}-{}-{}", name, stamp.data(), ::getpid());
}

// Guest seconds past the agent's own deadline before the host pulls the plug.
constexpr double k_guest_grace_s = 15;

} // namespace

report::RunResult judge_console(const spec::RunSpec& spec, const console::BootLog& log,
                                bool timed_out) {
  report::RunResult result;
  result.spec = spec;
  result.outcome = verdict::derive_outcome(log, spec.devices, timed_out);
  result.kernel_release = result.outcome.guest_kernel;
  result.verdict = verdict::judge(result.outcome, spec.expect);
  return result;
}

core::Result<report::RunResult> boot(const spec::RunSpec& spec, Environment& env,
                                     const fs::path& run_dir) {
  const auto started = Clock::now();
  if (auto valid = spec::validate(spec); !valid)
    return std::unexpected(valid.error());
  auto ref = kernel::parse_kernel_ref(spec.kernel);
  if (!ref)
    return std::unexpected(ref.error());

  report::RunResult result;
  result.spec = spec;
  result.kernel_cmdline = spec::kernel_cmdline(spec);
  // Infrastructure errors from here on are recorded in the run directory.
  auto fail = [&](core::Error error) -> core::Result<report::RunResult> {
    if (error.kind == core::ErrorKind::usage && result.dir.empty())
      return std::unexpected(error);
    result.verdict.kind = verdict::VerdictKind::error;
    result.verdict.reason = std::string(core::kind_name(error.kind));
    result.error = error.message;
    result.wall_s = seconds_since(started);
    if (!result.dir.empty())
      (void)report::write_result(result);
    if (error.kind == core::ErrorKind::interrupted)
      return std::unexpected(error);
    return result;
  };

  // Kernel: resolve the ref, fetch and unpack unless cached.
  auto stage = Clock::now();
  kernel::KernelStore store(env.runner, env.cache, env.progress);
  auto kernel = store.fetch(*ref);
  if (!kernel)
    return fail(kernel.error());
  result.kernel_release = kernel->release;
  result.stage_s["fetch"] = seconds_since(stage);
  // User space: the suite named, or the one the kernel came from.
  auto userspace = spec::userspace_suite(spec, kernel->suite);
  if (!userspace)
    return fail(userspace.error());
  result.userspace_suite = *userspace;

  // Run directory: from here on, every outcome leaves a result.json.
  result.dir = run_dir.empty() ? env.results / run_name(spec) : run_dir;
  std::error_code ec;
  fs::create_directories(result.dir, ec);
  if (ec)
    return fail(
        core::Error{core::ErrorKind::infra,
                    fmt::format("cannot create {}: {}", result.dir.string(), ec.message())});

  // Knob: a kernel that lacks the case's knob skips it
  // (docs/FACTS.md "Kernel history of the async-probe knobs": 5.10 has no
  // module.async_probe); read from the image, not guessed from the version.
  std::string knob(spec::required_knob(spec));
  const auto has_knob = kernel->knobs.find(knob);
  bool knob_present = has_knob != kernel->knobs.end() && has_knob->second;
  if (kernel->slowprobe_builtin) {
    // Module parameters and module.async_probe act on loadable modules only.
    if (spec.load == spec::Load::modprobe) {
      knob = "a loadable slowprobe (load: modprobe; it is built in)";
      knob_present = false;
    } else if (!knob.empty() && spec.async != spec::AsyncKnob::driver_cmdline) {
      knob += " for a built-in slowprobe (it acts on loadable modules only)";
      knob_present = false;
    }
  }
  if (auto decided = verdict::judge_knob(knob, knob_present, spec.expect)) {
    result.verdict = *decided;
    result.wall_s = seconds_since(started);
    if (auto written = report::write_result(result); !written)
      return std::unexpected(written.error());
    return result;
  }

  // Module: build the test module against this kernel's headers (cached),
  // unless the kernel has it built in: then its parameters go on the kernel
  // command line.
  stage = Clock::now();
  std::optional<modules::BuiltModule> module;
  if (kernel->slowprobe_builtin) {
    result.kernel_cmdline += spec::builtin_cmdline_params(spec);
  } else {
    modules::ModuleBuilder builder(env.runner, env.cache, env.progress);
    auto built = builder.build(*kernel, env.data / "guest-modules" / "slowprobe");
    if (!built)
      return fail(built.error());
    module = std::move(*built);
  }
  // --inject-fault panic|oops|hang: the agent loads pgfault, a module of
  // its own, so the fault comes from outside the test module.
  std::string fault_module;
  if (spec.inject_fault != spec::Fault::none &&
      spec.inject_fault != spec::Fault::corrupt_initramfs) {
    modules::ModuleBuilder builder(env.runner, env.cache, env.progress);
    auto built = builder.build(*kernel, env.data / "guest-modules" / "pgfault");
    if (!built)
      return fail(built.error());
    auto bytes = core::read_file(built->ko);
    if (!bytes)
      return fail(bytes.error());
    fault_module = std::move(*bytes);
  }
  result.stage_s["module_build"] = seconds_since(stage);

  // Image: cached base and modules layers + this run's config layer.
  stage = Clock::now();
  image::ImageBuilder images(env.runner, env.cache, env.data, env.progress);
  auto base = images.base_layer(result.userspace_suite);
  if (!base)
    return fail(base.error());
  auto modules_layer = images.modules_layer(*kernel, module ? &*module : nullptr);
  if (!modules_layer)
    return fail(modules_layer.error());
  const int deadline = spec::effective_deadline(spec);
  image::RunLayerSpec layer{spec.devices,
                            deadline,
                            deadline,
                            spec.load == spec::Load::modprobe,
                            spec::modprobe_options(spec),
                            fault_module.empty() ? "" : std::string(fault_name(spec.inject_fault)),
                            std::move(fault_module)};
  auto scratch = core::TempDir::create(env.cache / "tmp", "run-");
  if (!scratch)
    return fail(scratch.error());
  const fs::path image_path =
      (spec.keep_initramfs ? result.dir : scratch->path()) / "initramfs.img";
  auto initramfs =
      images.assemble({*base, *modules_layer}, image::run_layer_entries(layer), image_path);
  if (!initramfs)
    return fail(initramfs.error());
  if (spec.inject_fault == spec::Fault::corrupt_initramfs)
    if (auto corrupted = image::corrupt_start(initramfs->path); !corrupted)
      return fail(corrupted.error());
  result.stage_s["image"] = seconds_since(stage);

  // Accelerator: KVM only where a real tiny boot proved it works.
  stage = Clock::now();
  auto accel = vm::choose_accel(spec.accel, env.runner, kernel->vmlinux);
  if (!accel)
    return fail(accel.error());
  result.accel = accel->accel == vm::Accel::kvm ? "kvm" : "tcg";
  result.accel_reason = accel->reason;
  result.accel_probe_bound_s = accel->probe_bound_s;
  result.stage_s["accel"] = seconds_since(stage);

  // Boot: stream the console into the parser; stop at the guest deadline.
  vm::VmSpec vm_spec;
  vm_spec.kernel = kernel->vmlinux;
  vm_spec.initrd = initramfs->path;
  vm_spec.cmdline = result.kernel_cmdline;
  vm_spec.edu_devices = spec.devices;
  vm_spec.accel = accel->accel;
  vm_spec.clock = accel->accel == vm::Accel::kvm ? vm::Clock::real_time : spec.clock;
  result.qemu_argv = vm::qemu_argv(vm_spec);
  core::Command qemu;
  qemu.argv = result.qemu_argv;
  qemu.log_path = result.dir / "console.log";
  qemu.timeout = std::chrono::seconds(120 + 2 * deadline);
  console::ConsoleParser parser;
  bool guest_deadline = false;
  result.host_before_qemu_s = seconds_since(started);
  env.progress(fmt::format("booting {}{} ({}{}), guest deadline {} s",
                           spec.name.empty() ? "" : spec.name + ": ", kernel->release, result.accel,
                           vm_spec.clock == vm::Clock::virtual_time ? ", virtual clock" : "",
                           deadline));
  stage = Clock::now();
  auto ran = env.runner.run(qemu, [&](std::string_view line) {
    if (env.console)
      env.console(line);
    parser.feed(line);
    const auto& log = parser.log();
    // The guest has said all it will; power-off itself may wait for a
    // running probe (device_shutdown takes every device lock).
    if (!log.facts.empty() && log.facts.back().event == "poweroff")
      return proc::LineAction::stop;
    if (log.last_time_s && *log.last_time_s > deadline + k_guest_grace_s) {
      guest_deadline = true;
      return proc::LineAction::stop;
    }
    return proc::LineAction::keep_going;
  });
  result.stage_s["boot"] = seconds_since(stage);
  if (!ran)
    return fail(ran.error());

  const auto& log = parser.log();
  const bool timed_out = ran->timed_out || guest_deadline;
  result.outcome = verdict::derive_outcome(log, spec.devices, timed_out);
  result.verdict = verdict::judge(result.outcome, spec.expect);
  // The running kernel must agree with what the host read from its image:
  // a disagreement is a bug of ours (knob detection), never the kernel's.
  if (const auto guest = result.outcome.guest_module_async_probe;
      guest && kernel->knobs.contains(std::string(kernel::k_knob_module_default)) &&
      kernel->knobs.at(std::string(kernel::k_knob_module_default)) != *guest)
    return fail(core::Error{
        core::ErrorKind::infra,
        fmt::format("the image of {} {} module.async_probe, but the running kernel {} it: "
                    "probegate's knob detection is wrong for this kernel",
                    kernel->release, *guest ? "lacks" : "has", *guest ? "has" : "lacks")});
  const bool qemu_failed = !timed_out && !ran->stopped && (ran->signal != 0 || ran->exit_code != 0);
  if (log.banners == 0) // nothing booted: QEMU or the image is at fault, not the kernel
    return fail(core::Error{core::ErrorKind::infra,
                            fmt::format("QEMU printed no kernel banner ({}): {}",
                                        ran->signal ? fmt::format("signal {}", ran->signal)
                                                    : fmt::format("exit {}", ran->exit_code),
                                        ran->tail)});
  if (qemu_failed)
    return fail(core::Error{core::ErrorKind::infra,
                            fmt::format("QEMU ended abnormally ({}) after the kernel started: {}",
                                        ran->signal ? fmt::format("signal {}", ran->signal)
                                                    : fmt::format("exit {}", ran->exit_code),
                                        ran->tail)});
  result.wall_s = seconds_since(started);
  if (auto written = report::write_result(result); !written)
    return std::unexpected(written.error());
  return result;
}

} // namespace probegate::drivers
