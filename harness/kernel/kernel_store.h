// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "kernel/kernel_artifact.h"
#include "kernel/kernel_ref.h"
#include "proc/process_runner.h"

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace probegate::kernel {

using Progress = std::function<void(std::string_view)>;

// Turns KernelRefs into KernelArtifacts under <cache>/kernels/<release>/:
// downloads Debian's packages by name with apt (apt checks signatures),
// unpacks them without installing, extracts vmlinux, and publishes each entry
// with one rename so a killed fetch never leaves a usable-looking entry.
// All outside work goes through the ProcessRunner (the test seam).
class KernelStore {
public:
  KernelStore(proc::ProcessRunner& runner, std::filesystem::path cache, Progress progress);

  // The exact release a ref means; `debian:<line>` is the newest ABI of the line.
  core::Result<std::string> resolve(const KernelRef& ref);
  // Resolves and, unless cached, downloads and unpacks.
  core::Result<KernelArtifact> fetch(const KernelRef& ref);
  // Kernels already in the cache.
  std::vector<KernelArtifact> cached() const;
  // Releases Debian's index offers (cached for a while: apt-cache is slow).
  core::Result<std::vector<std::string>> available(bool refresh = false);

private:
  core::Result<KernelArtifact> load(const std::string& release) const;
  core::Result<KernelArtifact> download(const KernelRef& ref, const std::string& release);
  std::filesystem::path entry_dir(const std::string& release) const;

  proc::ProcessRunner& m_runner;
  std::filesystem::path m_cache;
  Progress m_progress;
};

} // namespace probegate::kernel
