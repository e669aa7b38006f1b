// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "core/progress.h"
#include "proc/process_runner.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace probegate::kernel {

// What `probegate kernels build` was asked for.
struct SourceBuildRequest {
  std::string source; // a kernel source dir, or a Debian package: linux-source-X.Y
  std::vector<std::filesystem::path> fragments; // --fragment, merged after kernel-configs/
  bool builtin_slowprobe = false;
};

// A config fragment as merged: where it came from (for messages) and its text.
struct Fragment {
  std::string name;
  std::string content;
};

// One file of a source dir that is not a git checkout, for its identity.
struct FileStamp {
  std::string path; // relative to the source dir
  std::uintmax_t size = 0;
  std::int64_t mtime_ns = 0;
};

// Pure parts, unit-tested.
// "linux-source-6.1": a Debian source package rather than a directory.
bool is_source_package(std::string_view source);
// The CONFIG_ options a fragment sets to y, in order.
std::vector<std::string> options_set_y(std::string_view fragment);
// Each `CONFIG_X=y` of the fragments that the final .config lacks (Kconfig
// drops an option whose dependencies are off), as a line naming the fragment
// and what the .config has instead.
std::vector<std::string> dropped_options(const std::vector<Fragment>& fragments,
                                         std::string_view config);
// Identity of a source dir without git: every file's path, size and mtime.
std::string listing_identity(std::vector<FileStamp> files);
// The build cache key: the source's identity and every input of the config.
std::string build_key(std::string_view source_identity, const std::vector<Fragment>& fragments,
                      bool builtin_slowprobe, std::string_view slowprobe_hash);
// One step of kbuild's quiet output ("  CC      init/main.o", "  LD [M]
// x.ko"): what a build's live progress line counts.
bool kbuild_step(std::string_view line);
// drivers/misc/{Makefile,Kconfig} with the slowprobe directory hooked in.
std::string hook_misc_makefile(std::string_view makefile);
core::Result<std::string> hook_misc_kconfig(std::string_view kconfig);

// Builds a small guest kernel out of tree (tinyconfig + kernel-configs/ +
// the user's fragments), cached under <cache>/builds/<key>/ with a marker
// written last, so an interrupted build is never taken for a finished one.
// Debian's linux-source-X.Y packages are downloaded and unpacked once under
// <cache>/sources/. The user's source dir is never written to: slowprobe is
// built in from a hard-linked copy. Every program runs through the
// ProcessRunner (the test seam).
class SourceBuilder {
public:
  // `live`: where the download's and each make's live progress line goes.
  SourceBuilder(proc::ProcessRunner& runner, std::filesystem::path cache,
                std::filesystem::path data, std::function<void(std::string_view)> progress,
                const core::LiveOutput& live = core::stderr_output());
  // The finished O= build dir: `tree:<it>` boots it.
  core::Result<std::filesystem::path> build(const SourceBuildRequest& request);
  // The same config and make steps in a build dir the caller keeps (bisect:
  // one dir for every commit, so make rebuilds only what changed). Not
  // cached or keyed: the dir is rebuilt in place each call.
  core::Result<std::filesystem::path>
  build_incremental(const std::filesystem::path& source, const std::filesystem::path& build_dir,
                    const std::vector<std::filesystem::path>& fragments);

private:
  // Fragments in merge order, with the files merge_config.sh reads.
  struct Inputs {
    std::vector<Fragment> fragments;
    std::vector<std::filesystem::path> files;
  };
  core::Result<Inputs> config_inputs(const std::vector<std::filesystem::path>& user_fragments);
  // `expected`: the steps the main make is taken to need (from an earlier
  // build), for its ETA; none: steps and elapsed time only.
  core::Status configure_and_make(const std::filesystem::path& src,
                                  const std::filesystem::path& build_dir,
                                  const std::filesystem::path& logs, const Inputs& inputs,
                                  std::string_view label, std::optional<std::uint64_t> expected);
  // The kbuild steps of the newest finished build in the cache of the same
  // package (any version) or source dir.
  std::optional<std::uint64_t> previous_build_steps(std::string_view requested,
                                                    const std::filesystem::path& source) const;
  core::Result<std::filesystem::path> package_source(const std::string& package,
                                                     std::string* identity);
  core::Result<std::string> dir_identity(const std::filesystem::path& dir);
  core::Result<std::string> capture(const core::Command& command, bool* ok = nullptr);
  core::Status copy_with_slowprobe(const std::filesystem::path& source,
                                   const std::filesystem::path& copy,
                                   const std::filesystem::path& logs);
  // A make's live progress line: its label and the steps it is expected to take.
  struct Steps {
    std::string what;
    std::optional<std::uint64_t> expected;
  };
  core::Status make(const std::filesystem::path& source, const std::filesystem::path& build,
                    const std::vector<std::string>& targets, const std::filesystem::path& log,
                    const Steps& steps);

  proc::ProcessRunner& m_runner;
  std::filesystem::path m_cache;
  std::filesystem::path m_data;
  std::function<void(std::string_view)> m_progress;
  const core::LiveOutput& m_live;
};

} // namespace probegate::kernel
