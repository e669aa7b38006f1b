// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "kernel/knobs.h"

#include <filesystem>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

namespace probegate::kernel {

// The git commit a `tree:` or `build:` kernel's source was at, when that
// source is a git checkout (its top holds .git); recorded when the kernel's
// cache entry is made. KCIDB's checkout carries it (report/kcidb.h).
struct GitCheckout {
  std::string commit;         // the full hash of HEAD, 40 hex digits
  bool dirty = false;         // tracked changes or untracked files on top of it
  std::string repository_url; // the upstream's remote, only an https:// URL without credentials
  std::string branch;         // the upstream's branch on that remote ("master")
};
void to_json(nlohmann::json& j, const GitCheckout& g);
void from_json(const nlohmann::json& j, GitCheckout& g);

// A kernel ready to boot and to build modules against, all local files.
// Produced by KernelStore, consumed by modules/, image/ and vm/.
struct KernelArtifact {
  std::string ref;     // as the user wrote it
  std::string release; // uname -r, e.g. 6.1.0-56-amd64
  std::string line;    // e.g. 6.1
  std::filesystem::path dir;
  std::filesystem::path vmlinuz;               // compressed image (bzImage)
  std::filesystem::path vmlinux;               // uncompressed ELF, for the PVH entry
  std::filesystem::path kbuild_dir;            // `make -C` target for external modules
  std::filesystem::path modules_dir;           // lib/modules/<release> files depmod wants
  std::map<std::string, std::string> packages; // name -> version
  // The .deb files it was unpacked from, with their SHA-256: apt checked each
  // against Debian's signed index before we unpacked it.
  std::map<std::string, std::string> debs_sha256;
  std::string suite;              // Debian suite it came from, if any
  KnobSupport knobs;              // detect_knobs() on vmlinux
  bool slowprobe_builtin = false; // slowprobe is =y in this kernel
  std::optional<GitCheckout> git; // tree: and build: kernels from a git checkout
};

// The file in a kernel's cache entry that describes it.
inline constexpr std::string_view k_artifact_file = "artifact.json";

void to_json(nlohmann::json& j, const KernelArtifact& a);
// A cache entry's artifact.json, with `dir` set; an infra error names a
// corrupt entry and what to do.
core::Result<KernelArtifact> load_artifact(const std::filesystem::path& dir);
// `cache`/kernels with its links resolved: where entries are made and read.
std::filesystem::path kernels_dir(const std::filesystem::path& cache);
void from_json(const nlohmann::json& j, KernelArtifact& a);

} // namespace probegate::kernel
