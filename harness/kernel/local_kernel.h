// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "kernel/kernel_artifact.h"
#include "kernel/kernel_ref.h"
#include "proc/process_runner.h"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace probegate::kernel {

// Kernels built elsewhere: `file:<image>[,kbuild=<dir>]` and `tree:<dir>`
// (docs/CONTRACTS.md "Kernel refs"). Turns the ref into a KernelArtifact whose small
// cache entry (<cache>/kernels/<file|tree>-<hash>/) holds artifact.json, the
// uncompressed vmlinux where one had to be extracted, and a modules/ folder
// with the depmod inputs (modules.builtin, .modinfo, .order) copied from the
// tree; large files stay where they are. The entry is keyed by the image's
// content, so a rebuilt tree gets a fresh entry. A tree: whose source (the
// tree, or an O= dir's `source` link) is a git checkout records its commit
// (git_checkout); nothing else runs a process.
core::Result<KernelArtifact>
fetch_local_kernel(const KernelRef& ref, proc::ProcessRunner& runner,
                   const std::filesystem::path& cache,
                   const std::function<void(std::string_view)>& progress);

// Pure helpers of fetch_local_kernel, unit-tested on synthetic images.
// The release (uname -r) a bzImage names in its setup header (the
// kernel_version string), or an ELF vmlinux in its "Linux version " banner.
std::optional<std::string> release_of_bzimage(std::string_view image);
std::optional<std::string> release_of_vmlinux(std::string_view elf);
// UTS_RELEASE of a kbuild dir's include/generated/utsrelease.h.
std::optional<std::string> release_of_utsrelease_h(std::string_view header);
// Whether `module` is built into a kernel: listed in modules.builtin, =y in
// its .config, or (without either) its parameters registered as
// "<module>.<param>" in vmlinux, which only a built-in module does.
bool module_built_in(std::string_view module, std::string_view modules_builtin,
                     std::string_view config, std::string_view vmlinux);

// `git status --porcelain=v2 --branch`, read: the commit (nullopt where
// the output names no 40-hex commit), the branch (empty when detached),
// whether it has an upstream, and whether anything differs from the commit.
struct GitStatus {
  std::string commit;
  std::string branch;
  bool has_upstream = false;
  bool dirty = false;
};
std::optional<GitStatus> parse_git_status(std::string_view porcelain_v2);
// A remote's URL as KCIDB's git_repository_url may carry it: https:// and
// no user or password in it; nullopt otherwise (ssh, file paths, tokens).
std::optional<std::string> public_https_url(std::string_view url);
// The commit of the git checkout whose top is `source` (it holds .git), its
// dirtiness and, when its branch has an upstream with an https URL, that
// URL and branch; nullopt where `source` is no checkout or git cannot say
// (not installed, a repository of another owner). Only an interrupt is an
// error. git runs without taking the index lock (GIT_OPTIONAL_LOCKS=0).
core::Result<std::optional<GitCheckout>> git_checkout(proc::ProcessRunner& runner,
                                                      const std::filesystem::path& source);

} // namespace probegate::kernel
