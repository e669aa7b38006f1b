// SPDX-License-Identifier: GPL-2.0-only
#include "drivers/boot.h"

#include "console/boot_log.h"
#include "core/files.h"
#include "image/initramfs.h"
#include "kernel/kernel_store.h"
#include "modules/module_builder.h"
#include "vm/accel.h"
#include "vm/libvirt.h"
#include "vm/saved_state.h"
#include "vm/vm_spec.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <ranges>
#include <string>
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
// The guest time at which every boot's agent starts udevd (images/init's
// sync point): later than any kernel's pause point, so that a fresh boot and
// a restored one go on from there in step
// (docs/CONTRACTS.md "Boot once, restore per case"). Idle guest time costs no
// wall time on the virtual clock.
constexpr std::int64_t k_sync_at_ns = 10'000'000'000;
constexpr double k_sync_at_s = 10;

// What one boot carries from stage to stage.
struct BootRun {
  BootRun(const spec::RunSpec& s, Environment& e, kernel::KernelRef r)
      : spec(s), env(e), ref(std::move(r)) {}
  spec::RunSpec spec; // expect_bound: capacity resolved once the user space is known
  Environment& env;
  kernel::KernelRef ref; // parsed once, before anything is written
  Clock::time_point started = Clock::now();
  report::RunResult result;
  kernel::KernelArtifact kernel;
  image::BaseLayer base; // the user space, and its udev's version
  int udev_extra_s = 0;  // seconds udevd waits past the timeout (spec::udev_extra_s)
  std::optional<modules::BuiltModule> module; // none when slowprobe is built in
  std::string fault_module;                   // pgfault.ko for --inject-fault
  std::string agent_module;                   // pgagent.ko; none with slowprobe built in
  std::optional<core::TempDir> scratch;
  image::Initramfs initramfs; // a fresh boot's
  std::filesystem::path modules_layer;
  std::filesystem::path config;        // a restore's: the case's files (fw_cfg)
  std::optional<vm::SavedState> saved; // a restore's: its group's state
  vm::AccelChoice accel;
};

// The machine every boot of this case's group runs: the argv of a fresh boot,
// of the boot that saves its state, and of each restore differ only in what
// the guest cannot see (and the restore's fw_cfg file).
vm::VmSpec machine_spec(const BootRun& run) {
  vm::VmSpec vm_spec;
  vm_spec.kernel = run.kernel.vmlinux;
  vm_spec.cmdline = run.result.kernel_cmdline;
  vm_spec.edu_devices = run.spec.devices;
  vm_spec.accel = run.accel.accel;
  vm_spec.clock = run.accel.accel == vm::Accel::kvm ? vm::Clock::real_time : run.spec.clock;
  return vm_spec;
}

// The agent stops at its pause point and takes the case's files from
// fw_cfg (images/init), on a fresh boot as after a restore; not where
// pgagent cannot load (slowprobe built in) or the image is broken on purpose.
bool has_pause_point(const BootRun& run) {
  return !run.agent_module.empty() && run.spec.inject_fault != spec::Fault::corrupt_initramfs;
}

// Boot once, restore per case, unless the case asks for a fresh boot, runs
// on libvirt (every case afresh: docs/CONTRACTS.md "Backends") or on a
// real-time clock (KVM, or --clock real), where no two boots repeat anyway.
bool restorable(const BootRun& run) {
  return has_pause_point(run) && !run.spec.fresh_boot && run.spec.backend == spec::Backend::qemu &&
         machine_spec(run).clock == vm::Clock::virtual_time;
}

// Runs one stage, recording its wall time in stage_s[name].
template <typename Stage> core::Status timed(BootRun& run, const char* name, Stage stage) {
  const auto start = Clock::now();
  auto done = stage(run);
  run.result.stage_s[name] = seconds_since(start);
  return done;
}

// Kernel: resolve the ref, fetch and unpack unless cached.
core::Status fetch_kernel(BootRun& run) {
  kernel::KernelStore store(run.env.runner, run.env.cache, run.env.progress);
  auto kernel = store.fetch(run.ref);
  if (!kernel)
    return std::unexpected(kernel.error());
  run.kernel = std::move(*kernel);
  run.result.kernel_release = run.kernel.release;
  run.result.kernel_git = run.kernel.git;
  // User space: the suite named, or the one the kernel came from.
  auto userspace = spec::userspace_suite(run.spec, run.kernel.suite);
  if (!userspace)
    return std::unexpected(userspace.error());
  run.result.userspace_suite = *userspace;
  return {};
}

// User space: the suite's base layer (cached), whose udev version decides
// when the kill lands, and so the capacity a case expects and its deadline.
core::Status fetch_userspace(BootRun& run) {
  image::ImageBuilder images(run.env.runner, run.env.cache, run.env.data, run.env.progress);
  auto base = images.base_layer(run.result.userspace_suite, run.spec.init == spec::Init::systemd);
  if (!base)
    return std::unexpected(base.error());
  run.base = std::move(*base);
  run.result.systemd_package = run.base.systemd;
  run.udev_extra_s = spec::udev_extra_s(run.spec, run.base.udev);
  if (auto resolved = spec::resolve_capacity(run.spec, run.udev_extra_s); !resolved)
    return resolved;
  const auto lacking = spec::udev_knob_missing(run.spec, run.base.udev);
  if (!lacking.empty() && run.env.explicit_request && !run.spec.expect.skip)
    return core::usage_error("udev {} of debian:{} lacks {}: choose a user space that has it "
                             "(--userspace), or add --expect-skip yes",
                             run.base.udev, run.result.userspace_suite, lacking);
  run.result.spec = run.spec;
  run.result.udev_extra_s = run.udev_extra_s;
  return {};
}

// Run directory: from here on, every outcome leaves a result.json.
core::Status make_run_dir(BootRun& run, const fs::path& run_dir) {
  run.result.dir = run_dir.empty() ? run.env.results / run_name(run.spec) : run_dir;
  std::error_code ec;
  fs::create_directories(run.result.dir, ec);
  if (ec)
    return core::infra_error("cannot create {}: {}", run.result.dir.string(), ec.message());
  return {};
}

// Knob: a kernel that lacks the case's knob skips it; read from the image,
// not guessed from the version (5.10 has no module.async_probe:
// docs/FACTS.md "Kernel history of the async-probe knobs").
std::optional<verdict::Verdict> knob_verdict(const BootRun& run) {
  const auto& spec = run.spec;
  std::string knob(spec::required_knob(spec));
  const auto has_knob = run.kernel.knobs.find(knob);
  bool knob_present = has_knob != run.kernel.knobs.end() && has_knob->second;
  if (run.kernel.slowprobe_builtin) {
    // Module parameters and module.async_probe act on loadable modules only.
    if (spec.load == spec::Load::modprobe) {
      knob = "a loadable slowprobe (load: modprobe; it is built in)";
      knob_present = false;
    } else if (!knob.empty() && spec.async != spec::AsyncKnob::driver_cmdline) {
      knob += " for a built-in slowprobe (it acts on loadable modules only)";
      knob_present = false;
    }
  }
  if (const auto lacking = spec::udev_knob_missing(spec, run.base.udev); !lacking.empty())
    return verdict::judge_knob(
        lacking, false, spec.expect,
        fmt::format("udev {} (debian:{})", run.base.udev, run.result.userspace_suite));
  return verdict::judge_knob(knob, knob_present, spec.expect);
}

// The bytes of one of guest-modules/ built for this kernel (cached).
core::Result<std::string> built_module(BootRun& run, std::string_view name) {
  modules::ModuleBuilder builder(run.env.runner, run.env.cache, run.env.progress);
  auto built = builder.build(run.kernel, run.env.data / "guest-modules" / name);
  if (!built)
    return std::unexpected(built.error());
  return core::read_file(built->ko);
}

// Module: build the test module against this kernel's headers (cached),
// unless the kernel has it built in: then its parameters go on the kernel
// command line. --inject-fault panic|oops|hang: the agent loads pgfault, a
// module of its own, so the fault comes from outside the test module.
core::Status build_modules(BootRun& run) {
  const auto& spec = run.spec;
  modules::ModuleBuilder builder(run.env.runner, run.env.cache, run.env.progress);
  if (run.kernel.slowprobe_builtin) {
    run.result.kernel_cmdline += spec::builtin_cmdline_params(spec);
  } else {
    auto built = builder.build(run.kernel, run.env.data / "guest-modules" / "slowprobe");
    if (!built)
      return std::unexpected(built.error());
    run.module = std::move(*built);
  }
  // pgagent: the case's files after the pause point, and the sync point. A
  // built-in slowprobe means no pause point (pgagent would be the only module).
  if (!run.kernel.slowprobe_builtin) {
    auto agent = built_module(run, "pgagent");
    if (!agent)
      return std::unexpected(agent.error());
    run.agent_module = std::move(*agent);
  }
  if (spec.inject_fault == spec::Fault::none || spec.inject_fault == spec::Fault::corrupt_initramfs)
    return {};
  auto fault = built_module(run, "pgfault");
  if (!fault)
    return std::unexpected(fault.error());
  run.fault_module = std::move(*fault);
  return {};
}

// Image: cached base and modules layers + this run's config layer.
// The image of a boot with the agent: the case's files come through fw_cfg.
core::Result<image::Initramfs> agent_image(const BootRun& run, image::ImageBuilder& images,
                                           const fs::path& path) {
  return images.assemble({run.base.path, run.modules_layer},
                         image::agent_layer_entries(run.agent_module), path);
}

core::Status build_image(BootRun& run) {
  const auto& spec = run.spec;
  image::ImageBuilder images(run.env.runner, run.env.cache, run.env.data, run.env.progress);
  auto modules_layer = images.modules_layer(run.kernel, run.module ? &*run.module : nullptr);
  if (!modules_layer)
    return std::unexpected(modules_layer.error());
  const int deadline = spec::effective_deadline(spec);
  const auto udev = spec::udev_settings(spec);
  image::RunLayerSpec layer{
      .devices = spec.devices,
      .deadline_s = deadline,
      .settle_timeout_s = deadline,
      .agent_modprobe = spec.load == spec::Load::modprobe,
      .modprobe_options = spec::modprobe_options(spec),
      .inject = run.fault_module.empty() ? "" : std::string(fault_name(spec.inject_fault)),
      .fault_module = std::move(run.fault_module),
      .udev_conf = udev.conf,
      .udevd_args = udev.args,
      .udevd_env = udev.env,
      .systemd = spec.init == spec::Init::systemd,
      .device_timeout_s = spec.device_timeout_s,
      // On a real-time clock the wait would cost real seconds, and no two
      // boots repeat there anyway.
      .sync_ns = has_pause_point(run) && machine_spec(run).clock == vm::Clock::virtual_time
                     ? k_sync_at_ns
                     : 0};
  auto scratch = core::TempDir::create(run.env.cache / "tmp", "run-");
  if (!scratch)
    return std::unexpected(scratch.error());
  run.scratch.emplace(std::move(*scratch));
  run.modules_layer = *modules_layer;
  const fs::path keep = spec.keep_initramfs ? run.result.dir : run.scratch->path();
  if (has_pause_point(run)) { // the case's files go in through fw_cfg
    auto bytes = image::write_cpio(image::run_layer_entries(layer));
    if (!bytes)
      return std::unexpected(bytes.error());
    run.config = keep / "run.cpio";
    if (auto written = spec.keep_initramfs ? core::write_file_atomic(run.config, *bytes)
                                           : core::write_scratch_file(run.config, *bytes);
        !written)
      return written;
    if (restorable(run))
      return {}; // the image is the saved state's
  }
  auto initramfs = has_pause_point(run)
                       ? agent_image(run, images, keep / "initramfs.img")
                       : images.assemble({run.base.path, run.modules_layer},
                                         image::run_layer_entries(layer), keep / "initramfs.img");
  if (!initramfs)
    return std::unexpected(initramfs.error());
  if (spec.inject_fault == spec::Fault::corrupt_initramfs)
    if (auto corrupted = image::corrupt_start(initramfs->path); !corrupted)
      return corrupted;
  run.initramfs = std::move(*initramfs);
  return {};
}

// Accelerator: KVM only where a real tiny boot proved it works; on a pool
// host, where its `kvm: true` label says it does (the suite sends a case
// that asks for KVM only there).
core::Status pick_accel(BootRun& run) {
  auto accel = run.env.host != nullptr
                   ? vm::decide_accel(run.spec.accel, run.env.host->kvm(),
                                      run.env.host->kvm() ? std::optional(true) : std::nullopt)
                   : vm::choose_accel(run.spec.accel, run.env.runner, run.kernel.vmlinux);
  if (!accel)
    return std::unexpected(accel.error());
  run.accel = std::move(*accel);
  run.result.accel = run.accel.accel == vm::Accel::kvm ? "kvm" : "tcg";
  run.result.accel_reason = run.accel.reason;
  run.result.accel_probe_bound_s = run.accel.probe_bound_s;
  return {};
}

// How often a group's boot is saved again when the save moved the guest's
// clock (docs/CONTRACTS.md "Boot once, restore per case").
constexpr int k_save_tries = 2;

// A group whose every save moved the clock is remembered in the cache
// beside its states, `states/<key>.moved` (JSON: each try's step), so
// later processes boot its cases fresh at once instead of saving again.
// The key covers everything the move depends on (kernel, machine, agent,
// QEMU); deleting the file makes the next run try again.
fs::path moved_marker(const BootRun& run, const std::string& key) {
  return run.env.cache / "states" / (key + ".moved");
}

void remember_moving_group(const BootRun& run, const std::string& key,
                           const std::vector<long long>& steps_ns) {
  const nlohmann::json moved{{"kernel", run.kernel.release}, {"steps_ns", steps_ns}};
  if (auto written = core::write_file_atomic(moved_marker(run, key), moved.dump() + "\n"); !written)
    run.env.progress(fmt::format("cannot remember that the saves of {} move: {}",
                                 run.kernel.release, written.error().message));
}

// A state made adds about 100 MB to the cache: the states no run restored
// for vm::k_state_unused_for go (a bisection's, an older probegate's).
void forget_unused_states(const BootRun& run) {
  const auto pruned =
      vm::prune_unused_states(run.env.cache / "states", run.env.cache / "locks",
                              fs::file_time_type::clock::now(), vm::k_state_unused_for);
  if (pruned.states > 0)
    run.env.progress(fmt::format("deleted {} saved state{} no run restored for {} days ({} MB)",
                                 pruned.states, pruned.states == 1 ? "" : "s",
                                 vm::k_state_unused_for.count() / 24, pruned.bytes >> 20));
}

// One boot of the group up to the pause point, saved into a scratch dir.
struct MadeState {
  core::TempDir staging;
  vm::SavedState state;
};

core::Result<MadeState> make_state(BootRun& run, image::ImageBuilder& images, vm::VmSpec machine) {
  run.env.progress(
      fmt::format("booting {} once to save it for every case of its group", run.kernel.release));
  auto staging = core::TempDir::create(run.env.cache / "tmp", "state-");
  if (!staging)
    return std::unexpected(staging.error());
  auto initramfs = agent_image(run, images, staging->path() / "boot.img");
  if (!initramfs)
    return std::unexpected(initramfs.error());
  machine.initrd = initramfs->path;
  // The saving boot has a config file too (an empty archive: the guest
  // stops before it reads it), so that its fw_cfg lists what a restore's does.
  auto empty = image::write_cpio({});
  if (!empty)
    return std::unexpected(empty.error());
  machine.config_file = staging->path() / "empty.cpio";
  if (auto written = core::write_file_atomic(machine.config_file, *empty); !written)
    return std::unexpected(written.error());
  auto made = vm::save_guest(run.env.runner, machine, staging->path() / "state", staging->path());
  if (!made)
    return std::unexpected(made.error());
  return MadeState{std::move(*staging), std::move(*made)};
}

// A group that cannot or need not restore: this case boots fresh, from the
// image a fresh boot with the agent uses, and says why.
core::Status boot_fresh_instead(BootRun& run, image::ImageBuilder& images, std::string reason) {
  run.result.boot_path.fresh_reason = std::move(reason);
  const fs::path keep = run.spec.keep_initramfs ? run.result.dir : run.scratch->path();
  auto initramfs = agent_image(run, images, keep / "initramfs.img");
  if (!initramfs)
    return std::unexpected(initramfs.error());
  run.initramfs = std::move(*initramfs);
  return {};
}

// Saved state: the group's (kernel, machine, command line, user space and
// agent) guest, booted to the agent's pause point and saved once in the
// cache; made here when absent or damaged, under a lock that concurrent
// runs share.
core::Status prepare_state(BootRun& run) {
  if (!restorable(run))
    return {};
  image::ImageBuilder images(run.env.runner, run.env.cache, run.env.data, run.env.progress);
  auto agent_layer = image::write_cpio(image::agent_layer_entries(run.agent_module));
  if (!agent_layer)
    return std::unexpected(agent_layer.error());
  vm::VmSpec machine = machine_spec(run);
  machine.initrd = "INITRD";
  std::error_code ec;
  // v2: only saves that did not move the clock; v3: the memory in its own file.
  std::string identity = "state-v3";
  for (const auto& word : vm::qemu_argv(machine))
    identity += "\n" + word;
  // The layers' names hold their contents' hashes; the kernel's may be
  // rebuilt in place (tree:), so its size and time too.
  const auto vmlinux_time = fs::last_write_time(run.kernel.vmlinux, ec).time_since_epoch().count();
  identity += fmt::format("\n{}\n{}\n{}\n{} {}\n{}", run.base.path.filename().string(),
                          run.modules_layer.filename().string(), core::sha256_hex(*agent_layer),
                          fs::file_size(run.kernel.vmlinux, ec), vmlinux_time, vm::qemu_identity());
  const std::string key = core::sha256_hex(identity).substr(0, 24);
  const fs::path dir = run.env.cache / "states" / key;
  // The group's key, on a fresh boot instead too (which group it was).
  run.result.boot_path.state_key = key;
  auto acquired = core::FileLock::acquire(vm::state_lock_path(run.env.cache / "locks", key));
  if (!acquired)
    return std::unexpected(acquired.error());
  std::optional<core::FileLock> lock(std::move(*acquired));
  auto saved = vm::load_saved_state(dir);
  if (!saved) {
    const bool had_state = fs::exists(dir, ec);
    fs::remove_all(dir, ec); // absent, or damaged: never restored
    const fs::path marker = moved_marker(run, key);
    const fs::path seen = dir.string() + std::string(vm::k_seen_suffix);
    if (!had_state && !run.env.save_at_first_sight && !fs::exists(seen, ec) &&
        !fs::exists(marker, ec)) {
      // The group's first sight: saving it would cost more than this fresh
      // boot, and one boot or a bisection step may never see it again.
      fs::create_directories(seen.parent_path(), ec);
      if (auto noted = core::touch_file(seen); !noted)
        run.env.progress(fmt::format("cannot remember the group of {}: {}", run.kernel.release,
                                     noted.error().message));
      return boot_fresh_instead(
          run, images,
          fmt::format("the first boot of this group: its next boot saves it for restores "
                      "(remembered in {})",
                      seen.string()));
    }
    if (!fs::exists(marker, ec)) {
      std::vector<long long> steps_ns;
      for (int attempt = 1; attempt <= k_save_tries && !saved; ++attempt) {
        auto made = make_state(run, images, machine);
        if (!made)
          return std::unexpected(made.error());
        steps_ns.push_back(made->state.pause_step_ns);
        if (made->state.pause_step_ns > vm::unmoved_step_ns()) {
          run.env.progress(fmt::format(
              "the save of {} moved the guest's clock by {} ns: its restores would not repeat a "
              "fresh boot, so it is not kept{}",
              run.kernel.release, made->state.pause_step_ns,
              attempt < k_save_tries ? " (booting again to save it)" : ""));
          continue;
        }
        auto published = vm::publish_saved_state(made->state, dir);
        if (!published)
          return std::unexpected(published.error());
        saved = std::move(*published);
        run.result.boot_path.state_made = true;
        fs::remove(seen, ec);
      }
      if (!saved)
        remember_moving_group(run, key, steps_ns);
    }
    if (!saved)
      return boot_fresh_instead(
          run, images,
          fmt::format("every save of this group ({} tries) moved the guest's clock at the pause "
                      "point (remembered in {}: delete it to try again)",
                      k_save_tries, marker.string()));
  }
  // When it was last used, for forget_unused_states (under the lock).
  if (auto touched = core::touch_file(dir / vm::k_state_used_file); !touched)
    run.env.progress(
        fmt::format("cannot record the use of {}: {}", dir.string(), touched.error().message));
  if (run.spec.keep_initramfs) {
    fs::copy_file(saved->initramfs, run.result.dir / "initramfs.img",
                  fs::copy_options::overwrite_existing, ec);
    if (ec)
      return core::infra_error("cannot copy {}: {}", saved->initramfs.string(), ec.message());
  }
  run.saved = std::move(*saved);
  run.result.boot_path.restored = true;
  run.result.boot_path.state_bytes = run.saved->disk_bytes;
  run.result.boot_path.paused_at_s = run.saved->paused_at_s;
  if (run.result.boot_path.state_made) {
    // Not under this group's lock: the group's other jobs restore meanwhile.
    lock.reset();
    forget_unused_states(run);
  }
  return {};
}

// What the VM stage hands to the judge.
struct Console {
  console::BootLog log;
  proc::ProcessResult qemu;
  bool timed_out = false; // the host's deadline or the guest's
};

// Boot: stream the console into the parser; stop at the guest deadline.
core::Result<Console> run_vm(BootRun& run) {
  const auto& spec = run.spec;
  const int deadline = spec::effective_deadline(spec);
  vm::VmSpec vm_spec = machine_spec(run);
  vm_spec.initrd = run.initramfs.path;
  vm_spec.config_file = run.config;
  core::Command qemu;
  qemu.log_path = run.result.dir / "console.log";
  qemu.timeout = std::chrono::seconds(120 + 2 * deadline);
  console::ConsoleParser parser;
  // Every console line, the saved boot's and this run's: the user's
  // --console, the parser, pgagent's clock step.
  auto take_line = [&](std::string_view line) {
    if (run.env.console)
      run.env.console(line);
    parser.feed(line);
    if (const auto moved = vm::pause_step_of(line))
      run.result.boot_path.pause_step_ns = *moved;
  };
  std::optional<vm::Restore> restore;
  const bool libvirt = spec.backend == spec::Backend::libvirt;
  if (run.saved) {
    vm_spec = vm::restore_spec(vm_spec, *run.saved, run.config, run.scratch->path() / "qmp.sock");
    auto listening = vm::Restore::listen(vm_spec.qmp_socket, run.saved->state);
    if (!listening)
      return std::unexpected(listening.error());
    restore.emplace(std::move(*listening));
    // The boot up to the saved state, as if this run had printed it.
    qemu.log_preamble = run.saved->console;
    for (const auto line : std::views::split(run.saved->console, '\n')) {
      if (const std::string_view text(line.begin(), line.end()); !text.empty())
        take_line(text);
    }
  }
  if (!libvirt)
    run.result.qemu_argv = vm::qemu_argv(vm_spec);
  qemu.argv = run.result.qemu_argv;
  bool guest_deadline = false;
  run.result.host_before_qemu_s = seconds_since(run.started);
  run.env.progress(fmt::format("booting {}{} ({}{}{}), guest deadline {} s",
                               spec.name.empty() ? "" : spec.name + ": ", run.kernel.release,
                               run.result.accel,
                               vm_spec.clock == vm::Clock::virtual_time ? ", virtual clock" : "",
                               libvirt ? ", libvirt" : "", deadline));
  const proc::LineSink sink = [&](std::string_view line) {
    take_line(line);
    const auto& log = parser.log();
    // The guest has said all it will; power-off itself may wait for a
    // running probe (device_shutdown takes every device lock).
    if (!log.facts.empty() && log.facts.back().event == "poweroff")
      return proc::LineAction::stop;
    if (log.last_time_s && *log.last_time_s > k_sync_at_s + deadline + k_guest_grace_s) {
      guest_deadline = true;
      return proc::LineAction::stop;
    }
    return proc::LineAction::keep_going;
  };
  if (libvirt) {
    vm::LibvirtTarget target;
    target.uri = spec.connect;
    target.cache = run.env.cache;
    if (const auto* host = run.env.host) {
      target.pool_host = true;
      target.storage_pool = host->storage_pool;
      target.pool_dir = host->pool_dir;
      run.result.host = host->name;
    }
    auto ran = vm::run_domain(target, vm_spec, spec.name, qemu, sink);
    if (!ran)
      return std::unexpected(ran.error());
    run.result.libvirt_uri = ran->uri;
    if (target.pool_host) {
      run.result.stage_s["libvirt_upload"] = ran->upload_s;
      run.result.uploaded_bytes = ran->uploaded_bytes;
    }
    run.result.stage_s["libvirt_connect"] = ran->connect_s;
    run.result.stage_s["libvirt_create"] = ran->create_s;
    run.result.stage_s["libvirt_destroy"] = ran->destroy_s;
    if (auto kept = core::write_file_atomic(run.result.dir / "domain.xml", ran->xml); !kept)
      return std::unexpected(kept.error());
    return Console{parser.log(), ran->ended, ran->ended.timed_out || guest_deadline};
  }
  if (restore)
    restore->start();
  auto ran = run.env.runner.run(qemu, sink);
  if (restore) {
    auto resumed = restore->finish();
    if (!ran)
      return std::unexpected(ran.error());
    if (!resumed)
      return std::unexpected(core::with_context(
          resumed.error(), fmt::format("restoring {} (QEMU {}): {}", run.saved->dir.string(),
                                       ran->how_it_ended(), ran->tail)));
    run.result.boot_path.restore_s = restore->resume_wall_s();
  }
  if (!ran)
    return std::unexpected(ran.error());
  return Console{parser.log(), *ran, ran->timed_out || guest_deadline};
}

// What only a live boot can get wrong around the kernel: the running kernel
// disagreeing with what the host read from its image (a bug of ours in knob
// detection, never the kernel's), no kernel at all, or QEMU dying.
core::Status check_live_boot(const BootRun& run, const Console& console) {
  const auto& knobs = run.kernel.knobs;
  const std::string module_default(kernel::k_knob_module_default);
  if (const auto guest = run.result.outcome.guest_module_async_probe;
      guest && knobs.contains(module_default) && knobs.at(module_default) != *guest)
    return core::infra_error("the image of {} {} module.async_probe, but the running kernel {} "
                             "it: probegate's knob detection is wrong for this kernel",
                             run.kernel.release, *guest ? "lacks" : "has",
                             *guest ? "has" : "lacks");
  if (const auto guest = console.log.udev_version; guest && *guest != run.base.udev)
    return core::infra_error("the guest ran udev {}, but the host predicted the kill time of the "
                             "debian:{} udev package {}: probegate read the base layer wrongly",
                             *guest, run.result.userspace_suite, run.base.udev);
  if (console.log.banners == 0) // nothing booted: QEMU or the image is at fault
    return core::infra_error("QEMU printed no kernel banner ({}): {}", console.qemu.how_it_ended(),
                             console.qemu.tail);
  const bool qemu_failed = !console.timed_out && !console.qemu.stopped &&
                           (console.qemu.signal != 0 || console.qemu.exit_code != 0);
  if (qemu_failed)
    return core::infra_error("QEMU ended abnormally ({}) after the kernel started: {}",
                             console.qemu.how_it_ended(), console.qemu.tail);
  return {};
}

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
  if (auto valid = spec::validate(spec); !valid)
    return std::unexpected(valid.error());
  auto ref = kernel::parse_kernel_ref(spec.kernel);
  if (!ref)
    return std::unexpected(ref.error());
  BootRun run{spec, env, std::move(*ref)};
  auto& result = run.result;
  result.spec = spec;
  result.kernel_cmdline = spec::kernel_cmdline(spec);
  // Usage errors before the run directory exists are returned as they are;
  // anything else from here on is an `error` verdict in result.json.
  auto fail = [&](core::Error error) -> core::Result<report::RunResult> {
    if (error.kind == core::ErrorKind::usage && result.dir.empty())
      return std::unexpected(error);
    result.verdict.kind = verdict::VerdictKind::error;
    result.verdict.reason = std::string(core::kind_name(error.kind));
    result.error = error.message;
    result.wall_s = seconds_since(run.started);
    if (!result.dir.empty())
      (void)report::write_result(result);
    if (error.kind == core::ErrorKind::interrupted ||
        (error.kind == core::ErrorKind::host_lost && env.host != nullptr))
      return std::unexpected(error);
    return result;
  };
  auto finish = [&]() -> core::Result<report::RunResult> {
    result.wall_s = seconds_since(run.started);
    if (auto written = report::write_result(result); !written)
      return std::unexpected(written.error());
    return result;
  };

  if (auto done = timed(run, "fetch", fetch_kernel); !done)
    return fail(done.error());
  if (auto done = timed(run, "userspace", fetch_userspace); !done)
    return fail(done.error());
  if (auto done = make_run_dir(run, run_dir); !done)
    return fail(done.error());
  if (auto skip = knob_verdict(run)) {
    result.verdict = *skip;
    return finish();
  }
  if (auto done = timed(run, "module_build", build_modules); !done)
    return fail(done.error());
  if (auto done = timed(run, "accel", pick_accel); !done)
    return fail(done.error());
  if (auto done = timed(run, "image", build_image); !done)
    return fail(done.error());
  if (auto done = timed(run, "state", prepare_state); !done)
    return fail(done.error());
  const auto booting = Clock::now();
  auto console = run_vm(run);
  result.stage_s["boot"] = seconds_since(booting);
  if (!console)
    return fail(console.error());

  // The same judge as `probegate parse`, then what only a live boot checks.
  const auto judged = judge_console(run.spec, console->log, console->timed_out);
  result.outcome = judged.outcome;
  result.verdict = judged.verdict;
  if (auto live = check_live_boot(run, *console); !live)
    return fail(live.error());
  return finish();
}

} // namespace probegate::drivers
