// SPDX-License-Identifier: GPL-2.0-only
#include "modules/module_builder.h"

#include "core/files.h"
#include "core/progress.h"
#include "kernel/debian_index.h"
#include "kernel/source_build.h"

#include <algorithm>
#include <vector>

namespace probegate::modules {

namespace fs = std::filesystem;

namespace {

bool is_source(const fs::path& p) {
  const auto name = p.filename().string();
  return p.extension() == ".c" || p.extension() == ".h" || name == "Kbuild" || name == "Makefile";
}

} // namespace

core::Result<std::string> source_hash(const fs::path& source_dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(source_dir, ec)) {
    if (entry.is_regular_file() && is_source(entry.path()))
      files.push_back(fs::relative(entry.path(), source_dir));
  }
  if (ec || files.empty())
    return core::usage_error("no module sources (*.c, Kbuild) in {}", source_dir.string());
  std::ranges::sort(files);
  std::string all;
  for (const auto& file : files) {
    auto text = core::read_file(source_dir / file);
    if (!text)
      return std::unexpected(text.error());
    all += file.string() + '\0' + core::sha256_hex(*text) + '\n';
  }
  return core::sha256_hex(all);
}

ModuleBuilder::ModuleBuilder(proc::ProcessRunner& runner, fs::path cache,
                             std::function<void(std::string_view)> progress)
    : m_runner(runner), m_cache(std::move(cache)), m_progress(std::move(progress)) {}

core::Result<BuiltModule> ModuleBuilder::build(const kernel::KernelArtifact& kernel,
                                               const fs::path& source_dir) {
  const std::string name = source_dir.filename().string();
  auto hash = source_hash(source_dir);
  if (!hash)
    return std::unexpected(hash.error());
  // Keyed by the kernel's cache entry, not its release: two local builds may
  // share a release string and differ in config.
  const fs::path entry =
      m_cache / "modules" / kernel.dir.filename() / (name + "-" + hash->substr(0, 16));
  BuiltModule built{name, entry / (name + ".ko"), *hash};
  if (fs::exists(built.ko))
    return built;
  auto lock = core::FileLock::acquire(m_cache / "locks" /
                                      ("module-" + kernel.dir.filename().string() + ".lock"));
  if (!lock)
    return std::unexpected(lock.error());
  if (fs::exists(built.ko))
    return built;

  auto tmp = core::TempDir::create(m_cache / "tmp", "module-");
  if (!tmp)
    return std::unexpected(tmp.error());
  const fs::path work = tmp->path() / "src";
  std::error_code ec;
  fs::create_directories(work);
  for (const auto& entry_it : fs::directory_iterator(source_dir)) {
    if (entry_it.is_regular_file() && is_source(entry_it.path()))
      fs::copy_file(entry_it.path(), work / entry_it.path().filename(), ec);
  }
  m_progress(fmt::format("building module {} for {}", name, kernel.release));
  core::Command make;
  make.argv = {"make", "-C", kernel.kbuild_dir.string(), "M=" + work.string(), "CC=gcc-12"};
  if (auto config = core::read_file(kernel.kbuild_dir / ".config"))
    for (auto& var : kernel::module_make_vars(*config))
      make.argv.push_back(std::move(var));
  make.argv.push_back("modules");
  make.timeout = std::chrono::minutes(10);
  make.log_path = tmp->path() / "build.log";
  // A few steps (compile, modpost, link): counted on a terminal, no ETA.
  core::ProgressLine live(fmt::format("building module {}", name), core::ProgressUnit::steps,
                          std::nullopt, false);
  std::uint64_t steps = 0;
  auto made = proc::run_checked(m_runner, make, [&](std::string_view line) {
    if (kernel::kbuild_step(line))
      live.update(++steps);
    return proc::LineAction::keep_going;
  });
  if (!made)
    return std::unexpected(core::with_context(made.error(), "building " + name));
  const fs::path staging = tmp->path() / "out";
  fs::create_directories(staging);
  fs::copy_file(work / (name + ".ko"), staging / (name + ".ko"), ec);
  if (ec)
    return core::infra_error("the build of {} made no {}.ko: {}", name, name, ec.message());
  if (auto published = core::publish_dir(staging, entry); !published)
    return std::unexpected(published.error());
  return built;
}

} // namespace probegate::modules
