// SPDX-License-Identifier: GPL-2.0-only
#include "image/initramfs.h"

#include "core/files.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace probegate::image {

namespace fs = std::filesystem;

namespace {

// Bump when the layout of the base layer changes in code (not in images/).
constexpr std::string_view k_base_format = "base-v1";

CpioEntry dir(std::string path) {
  return CpioEntry{std::move(path), CpioEntry::Type::dir, 0755, {}, {}, 0, 0};
}

CpioEntry file(std::string path, std::string data, std::uint32_t mode = 0644) {
  return CpioEntry{std::move(path), CpioEntry::Type::file, mode, std::move(data), {}, 0, 0};
}

core::Result<fs::path> write_layer(const std::vector<CpioEntry>& entries, const fs::path& out) {
  auto bytes = write_cpio(entries);
  if (!bytes)
    return std::unexpected(bytes.error());
  if (auto saved = core::write_file_atomic(out, *bytes); !saved)
    return std::unexpected(saved.error());
  return out;
}

} // namespace

std::vector<std::string> list_lines(std::string_view text) {
  std::vector<std::string> out;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    if (const auto hash = line.find('#'); hash != std::string::npos)
      line.resize(hash);
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos)
      continue;
    const auto last = line.find_last_not_of(" \t\r");
    out.push_back(line.substr(first, last - first + 1));
  }
  return out;
}

std::vector<CpioEntry> run_layer_entries(const RunLayerSpec& spec) {
  std::string env = "# written by probegate for this run\n";
  env += fmt::format("PG_DEVICES={}\nPG_DEADLINE={}\nPG_SETTLE_TIMEOUT={}\nPG_LOAD={}\n",
                     spec.devices, spec.deadline_s, spec.settle_timeout_s,
                     spec.agent_modprobe ? "modprobe" : "udev");
  if (!spec.inject.empty())
    env += fmt::format("PG_INJECT={}\n", spec.inject);
  std::string modprobe = "# written by probegate for this run\n";
  for (const auto& line : spec.modprobe_options)
    modprobe += line + "\n";
  std::vector<CpioEntry> entries{dir("etc"), dir("etc/probegate"),
                                 file("etc/probegate/run.env", env), dir("etc/modprobe.d"),
                                 file("etc/modprobe.d/probegate.conf", modprobe)};
  if (!spec.fault_module.empty())
    entries.push_back(file("etc/probegate/pgfault.ko", spec.fault_module));
  return entries;
}

ImageBuilder::ImageBuilder(proc::ProcessRunner& runner, fs::path cache, fs::path data_root,
                           std::function<void(std::string_view)> progress)
    : m_runner(runner), m_cache(std::move(cache)), m_data(std::move(data_root)),
      m_progress(std::move(progress)) {}

core::Result<fs::path> ImageBuilder::base_layer() {
  // The key covers everything under images/: package list, excludes, /init
  // and the rootfs overlay.
  std::string key_text(k_base_format);
  for (const auto* name : {"images/base-packages.txt", "images/base-exclude.txt", "images/init"})
    if (!fs::exists(m_data / name))
      return core::infra_error("{} is missing: is PROBEGATE_DATA_DIR ({}) a probegate checkout?",
                               (m_data / name).string(), m_data.string());
  auto overlay = entries_from_tree(m_data / "images", {});
  if (!overlay)
    return std::unexpected(overlay.error());
  for (const auto& e : *overlay)
    key_text += '\0' + e.path + '\0' + e.target + '\0' + core::sha256_hex(e.data);
  const fs::path out =
      m_cache / "layers" / ("base-" + core::sha256_hex(key_text).substr(0, 16) + ".cpio");
  if (fs::exists(out))
    return out;
  auto lock = core::FileLock::acquire(m_cache / "locks" / "base-layer.lock");
  if (!lock)
    return std::unexpected(lock.error());
  if (fs::exists(out))
    return out;
  return build_base(out);
}

core::Result<fs::path> ImageBuilder::build_base(const fs::path& out) {
  auto packages_text = core::read_file(m_data / "images/base-packages.txt");
  auto exclude_text = core::read_file(m_data / "images/base-exclude.txt");
  auto init = core::read_file(m_data / "images/init");
  if (!packages_text || !exclude_text || !init)
    return core::infra_error("cannot read images/ in {}", m_data.string());
  const auto packages = list_lines(*packages_text);
  auto tmp = core::TempDir::create(m_cache / "tmp", "base-");
  if (!tmp)
    return std::unexpected(tmp.error());
  const fs::path debs = tmp->path() / "debs";
  const fs::path root = tmp->path() / "root";
  fs::create_directories(debs);
  fs::create_directories(root);
  m_progress(fmt::format("building the base user space from {} Debian packages", packages.size()));
  core::Command download;
  download.argv = {"apt-get", "download", "-q"};
  download.argv.insert(download.argv.end(), packages.begin(), packages.end());
  download.cwd = debs;
  download.env["LC_ALL"] = "C";
  if (auto got = proc::run_checked(m_runner, download); !got)
    return std::unexpected(core::with_context(got.error(), "downloading the base packages"));
  std::string manifest;
  for (const auto& deb : fs::directory_iterator(debs)) {
    manifest += deb.path().filename().string() + "\n";
    core::Command unpack;
    unpack.argv = {"dpkg-deb", "-x", deb.path().string(), root.string()};
    if (auto done = proc::run_checked(m_runner, unpack); !done)
      return std::unexpected(done.error());
  }
  std::error_code ec;
  fs::copy(m_data / "images" / "rootfs", root,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
  if (ec)
    return core::infra_error("cannot copy images/rootfs: {}", ec.message());
  auto entries = entries_from_tree(root, list_lines(*exclude_text));
  if (!entries)
    return std::unexpected(entries.error());
  for (auto extra : {dir("dev"), dir("proc"), dir("sys"), dir("run"), dir("tmp"), dir("etc"),
                     dir("etc/probegate"), dir("etc/modprobe.d")}) {
    if (std::ranges::find(*entries, extra.path, &CpioEntry::path) == entries->end())
      entries->push_back(extra);
  }
  entries->push_back(CpioEntry{"dev/console", CpioEntry::Type::chardev, 0600, {}, {}, 5, 1});
  entries->push_back(file("init", *init, 0755));
  entries->push_back(file("etc/probegate/base-packages.txt", manifest));
  std::ranges::stable_sort(*entries, {}, &CpioEntry::path);
  return write_layer(*entries, out);
}

core::Result<fs::path> ImageBuilder::modules_layer(const kernel::KernelArtifact& kernel,
                                                   const modules::BuiltModule* module) {
  const fs::path out =
      m_cache / "layers" /
      (module ? fmt::format("modules-{}-{}-{}.cpio", kernel.dir.filename().string(), module->name,
                            module->source_hash.substr(0, 16))
              : fmt::format("modules-{}-builtin.cpio", kernel.dir.filename().string()));
  if (fs::exists(out))
    return out;
  auto tmp = core::TempDir::create(m_cache / "tmp", "modules-");
  if (!tmp)
    return std::unexpected(tmp.error());
  const fs::path root = tmp->path() / "root";
  const fs::path dest = root / "lib" / "modules" / kernel.release;
  std::error_code ec;
  fs::create_directories(dest / "extra");
  fs::copy(kernel.modules_dir, dest, fs::copy_options::recursive, ec);
  if (ec)
    return core::infra_error("cannot copy {}: {}", kernel.modules_dir.string(), ec.message());
  if (module) {
    fs::copy_file(module->ko, dest / "extra" / (module->name + ".ko"), ec);
    if (ec)
      return core::infra_error("cannot copy {}: {}", module->ko.string(), ec.message());
  }
  core::Command depmod;
  depmod.argv = {"depmod", "-b", root.string(), kernel.release};
  if (auto done = proc::run_checked(m_runner, depmod); !done)
    return std::unexpected(done.error());
  auto entries = entries_from_tree(root, {});
  if (!entries)
    return std::unexpected(entries.error());
  return write_layer(*entries, out);
}

core::Result<Initramfs> ImageBuilder::assemble(const std::vector<fs::path>& layers,
                                               const std::vector<CpioEntry>& run_entries,
                                               const fs::path& out) {
  auto run_layer = write_cpio(run_entries);
  if (!run_layer)
    return std::unexpected(run_layer.error());
  Initramfs result{out, layers, 0};
  const fs::path partial = out.string() + ".partial";
  {
    std::ofstream dst(partial, std::ios::binary | std::ios::trunc);
    for (const auto& layer : layers) {
      std::ifstream src(layer, std::ios::binary);
      if (!src)
        return core::infra_error("cannot read initramfs layer {}", layer.string());
      dst << src.rdbuf();
    }
    dst.write(run_layer->data(), static_cast<std::streamsize>(run_layer->size()));
    if (!dst)
      return core::infra_error("cannot write {}", partial.string());
  }
  std::error_code ec;
  fs::rename(partial, out, ec);
  if (ec)
    return core::infra_error("cannot write {}: {}", out.string(), ec.message());
  result.size = fs::file_size(out, ec);
  return result;
}

core::Status corrupt_start(const fs::path& image) {
  std::fstream file(image, std::ios::binary | std::ios::in | std::ios::out);
  // Not '0' (a cpio header) nor NUL (padding) nor any compressor's magic.
  file.write("pgjunk", 6);
  file.close();
  if (!file)
    return core::infra_error("cannot corrupt {} for --inject-fault", image.string());
  return {};
}

} // namespace probegate::image
