// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "image/cpio.h"
#include "kernel/kernel_artifact.h"
#include "modules/module_builder.h"
#include "proc/process_runner.h"

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace probegate::image {

// What the per-run config layer says to the guest's /init (docs/PROTOCOL.md).
struct RunLayerSpec {
  int devices = 0;
  int deadline_s = 0;
  int settle_timeout_s = 0;
  bool agent_modprobe = false;               // the agent loads the module (PG_LOAD=modprobe)
  std::vector<std::string> modprobe_options; // "options slowprobe delay_ms=4000 …"
  // --inject-fault panic|oops|hang: PG_INJECT, and the pgfault module the
  // agent loads to inject it (etc/probegate/pgfault.ko).
  std::string inject;
  std::string fault_module;
  // udevd's settings for this run (spec::udev_settings): udev.conf lines
  // (etc/udev/udev.conf replaces the package's), systemd-udevd arguments
  // and environment (PG_UDEVD_ARGS, PG_UDEVD_ENV).
  std::vector<std::string> udev_conf;
  std::vector<std::string> udevd_args;
  std::vector<std::string> udevd_env;
  // --init systemd: initrd.target requires the devices' units
  // (dev-slowprobe0.device ...), each waited for device_timeout_s (unset:
  // systemd's own); udevd_env goes into a drop-in of systemd-udevd.service.
  bool systemd = false;
  std::optional<int> device_timeout_s;
  // The guest time to start udevd at (PG_SYNC_NS; 0: at once).
  std::int64_t sync_ns = 0;
};

// Pure: the files of the per-run layer: in the image when the kernel has
// slowprobe built in, else one cpio archive the agent reads from fw_cfg.
std::vector<CpioEntry> run_layer_entries(const RunLayerSpec& spec);
// Pure: the last layer of an image whose agent takes its case's files from
// fw_cfg after its pause point: pgagent.ko alone. A saved state's boot and a
// fresh boot of any case of its group boot the same image.
std::vector<CpioEntry> agent_layer_entries(const std::string& agent_module);

// A finished initramfs: the concatenated layers and where each came from.
struct Initramfs {
  std::filesystem::path path;
  std::vector<std::filesystem::path> layers;
  std::uintmax_t size = 0;
};

// A cached base layer and what the host must know of its user space before
// it boots: the versions that decide udevd's timing and spellings.
struct BaseLayer {
  std::filesystem::path path;
  int udev = 0;    // major version of the suite's udev package (252)
  int systemd = 0; // --init systemd: that of its systemd package; 0 under the agent
};

// Builds initramfs images as concatenated cpio layers (the kernel unpacks
// them in order): a base user space from one Debian suite's packages
// (busybox-static, udev, kmod, libc6: images/userspace-roots.txt, plus the
// libraries their ELF files need), a per-kernel
// modules layer (.ko + depmod output) and a small per-run config layer. The
// first two are cached by content, so a warm run only writes the last.
class ImageBuilder {
public:
  ImageBuilder(proc::ProcessRunner& runner, std::filesystem::path cache,
               std::filesystem::path data_root, std::function<void(std::string_view)> progress);

  // `suite`: bullseye, bookworm, trixie or sid (the suites kernel::DebianApt serves).
  // `systemd`: the layer boots systemd as PID 1 (images/systemd-roots.txt
  // and the images/systemd overlay), not the agent.
  core::Result<BaseLayer> base_layer(const std::string& suite, bool systemd = false);
  // `module` null: the kernel has slowprobe built in; the layer then holds
  // only the kernel's module metadata (depmod's output included).
  core::Result<std::filesystem::path> modules_layer(const kernel::KernelArtifact& kernel,
                                                    const modules::BuiltModule* module);
  core::Result<Initramfs> assemble(const std::vector<std::filesystem::path>& layers,
                                   const std::vector<CpioEntry>& run_entries,
                                   const std::filesystem::path& out);

private:
  core::Result<std::filesystem::path>
  build_base(const std::string& suite, const std::vector<std::string>& roots,
             const std::map<std::string, std::vector<std::string>>& keep,
             const std::vector<std::string>& packages, const std::filesystem::path& out);

  proc::ProcessRunner& m_runner;
  std::filesystem::path m_cache;
  std::filesystem::path m_data;
  std::function<void(std::string_view)> m_progress;
};

// --inject-fault corrupt-initramfs: overwrites the start of an assembled
// image (a copy, never a cached layer) so that the kernel cannot unpack it
// ("Initramfs unpacking failed: invalid magic at start of compressed archive").
core::Status corrupt_start(const std::filesystem::path& image);

// Non-comment, non-blank lines of a list file (images/userspace-roots.txt).
std::vector<std::string> list_lines(std::string_view text);

} // namespace probegate::image
