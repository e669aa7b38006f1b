// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "kernel/kernel_artifact.h"
#include "proc/process_runner.h"

#include <filesystem>
#include <functional>
#include <string>

namespace probegate::modules {

// A guest module built for one kernel.
struct BuiltModule {
  std::string name; // e.g. slowprobe
  std::filesystem::path ko;
  std::string source_hash;
};

// Hash of a module's source files (*.c, *.h, Kbuild, Makefile), by relative
// name and content: the cache key together with the kernel release.
core::Result<std::string> source_hash(const std::filesystem::path& source_dir);

// Builds guest-modules/<name> against a kernel's kbuild dir with kbuild's
// external-module make, in a scratch copy so the source tree stays clean;
// results are cached under <cache>/modules/<release>/<name>-<hash>/.
class ModuleBuilder {
public:
  ModuleBuilder(proc::ProcessRunner& runner, std::filesystem::path cache,
                std::function<void(std::string_view)> progress);
  core::Result<BuiltModule> build(const kernel::KernelArtifact& kernel,
                                  const std::filesystem::path& source_dir);

private:
  proc::ProcessRunner& m_runner;
  std::filesystem::path m_cache;
  std::function<void(std::string_view)> m_progress;
};

} // namespace probegate::modules
