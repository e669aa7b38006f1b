// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "kernel/debian_apt.h"
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

  // The exact release a ref means, and the suite that has it:
  // `debian:<line>` is the newest ABI of the line in any suite,
  // `debian:<suite>` the newest of that suite.
  core::Result<Offer> resolve(const KernelRef& ref);
  // Resolves and, unless cached, downloads and unpacks.
  core::Result<KernelArtifact> fetch(const KernelRef& ref);
  // Kernels already in the cache.
  std::vector<KernelArtifact> cached() const;
  // Releases Debian's suites offer (indexes kept for a while: apt is slow).
  core::Result<std::vector<Offer>> available(bool refresh = false, bool offline = false,
                                             std::vector<std::string>* unreachable = nullptr);

private:
  core::Result<KernelArtifact> load(const std::string& release) const;
  // Whether a cached entry still holds what it was published with
  // (core/manifest.h); checked once per process and entry.
  core::Status check_entry(const KernelArtifact& artifact) const;
  core::Result<KernelArtifact> download(const KernelRef& ref, const Offer& offer);
  std::filesystem::path entry_dir(const std::string& release) const;
  // `what`: the live progress line's label (core/progress.h).
  core::Status download_debs(const std::string& suite, const std::vector<std::string>& packages,
                             const std::filesystem::path& into, std::string what);
  core::Status unpack_deb(const std::filesystem::path& deb, const std::filesystem::path& into);
  core::Status adapt_kbuild_helpers(const std::string& suite, const std::filesystem::path& tree,
                                    const std::filesystem::path& final_tree,
                                    const std::filesystem::path& debs);

  proc::ProcessRunner& m_runner;
  DebianApt m_apt;
  std::filesystem::path m_cache;
  Progress m_progress;
};

} // namespace probegate::kernel
