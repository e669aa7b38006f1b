// SPDX-License-Identifier: GPL-2.0-only
#include "image/initramfs.h"

#include "core/files.h"
#include "core/text.h"
#include "image/lib_closure.h"
#include "image/userspace.h"
#include "kernel/debian_apt.h"

#include <algorithm>
#include <chrono>
#include <fmt/ranges.h>
#include <fnmatch.h>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace probegate::image {

namespace fs = std::filesystem;

namespace {

// Bump when the layout of the base layer changes in code (not in images/).
constexpr std::string_view k_base_format = "base-v3";
// Where the agent's base layer has images/pgwitness.c, built.
constexpr std::string_view k_witness_path = "usr/lib/probegate/pgwitness";
// How long a base layer is taken without asking apt whether its packages
// changed: as long as DebianApt keeps a suite's index.
constexpr auto k_ask_apt_every = std::chrono::hours(12);

CpioEntry dir(std::string path) {
  return CpioEntry{std::move(path), CpioEntry::Type::dir, 0755, {}, {}, 0, 0};
}

CpioEntry file(std::string path, std::string data, std::uint32_t mode = 0644) {
  return CpioEntry{std::move(path), CpioEntry::Type::file, mode, std::move(data), {}, 0, 0};
}

// images/pgwitness.c built with the host's C compiler, static so that it
// runs on every Debian user space: the agent's second witness of failed
// udev workers. Its source is part of the layer's images/ key.
core::Result<std::string> build_witness(proc::ProcessRunner& runner, const fs::path& source,
                                        const fs::path& dir) {
  const fs::path out = dir / "pgwitness";
  core::Command cc;
  cc.argv = {"gcc",     "-static", "-Os", "-s",         "-Wall",
             "-Wextra", "-Werror", "-o",  out.string(), source.string()};
  if (auto built = proc::run_checked(runner, cc); !built)
    return std::unexpected(core::with_context(
        built.error(), "building the agent's images/pgwitness.c (it needs gcc and libc6-dev)"));
  return core::read_file(out);
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

std::vector<CpioEntry> agent_layer_entries(const std::string& agent_module) {
  return {dir("etc"), dir("etc/probegate"), file("etc/probegate/pgagent.ko", agent_module)};
}

std::vector<CpioEntry> run_layer_entries(const RunLayerSpec& spec) {
  std::string env = "# written by probegate for this run\n";
  env += fmt::format("PG_DEVICES={}\nPG_DEADLINE={}\nPG_SETTLE_TIMEOUT={}\nPG_LOAD={}\n",
                     spec.devices, spec.deadline_s, spec.settle_timeout_s,
                     spec.agent_modprobe ? "modprobe" : "udev");
  if (!spec.inject.empty())
    env += fmt::format("PG_INJECT={}\n", spec.inject);
  if (spec.sync_ns > 0)
    env += fmt::format("PG_SYNC_NS={}\n", spec.sync_ns);
  // Words without spaces or quotes (spec::udev_settings makes them).
  if (!spec.udevd_args.empty())
    env += fmt::format("PG_UDEVD_ARGS='{}'\n", fmt::join(spec.udevd_args, " "));
  if (!spec.udevd_env.empty())
    env += fmt::format("PG_UDEVD_ENV='{}'\n", fmt::join(spec.udevd_env, " "));
  std::string modprobe = "# written by probegate for this run\n";
  for (const auto& line : spec.modprobe_options)
    modprobe += line + "\n";
  std::vector<CpioEntry> entries{dir("etc"), dir("etc/probegate"),
                                 file("etc/probegate/run.env", env), dir("etc/modprobe.d"),
                                 file("etc/modprobe.d/probegate.conf", modprobe)};
  if (!spec.fault_module.empty())
    entries.push_back(file("etc/probegate/pgfault.ko", spec.fault_module));
  if (!spec.udev_conf.empty()) {
    std::string conf = "# written by probegate for this run\n";
    for (const auto& line : spec.udev_conf)
      conf += line + "\n";
    entries.push_back(dir("etc/udev"));
    entries.push_back(file("etc/udev/udev.conf", conf));
  }
  if (spec.systemd) {
    const std::string header = "# SPDX-License-Identifier: GPL-2.0-only\n# written by probegate "
                               "for this run\n";
    std::string units;
    for (int i = 0; i < spec.devices; ++i)
      units += fmt::format(" dev-slowprobe{}.device", i);
    entries.push_back(dir("etc/systemd/system/initrd.target.requires"));
    entries.push_back(file("etc/systemd/system/probegate-devices.target",
                           header + fmt::format("[Unit]\nDescription=probegate: the slowprobe "
                                                "devices\nDefaultDependencies=no\n"
                                                "Before=initrd.target\n{}{}",
                                                units.empty() ? "" : "Requires=" + units + "\n",
                                                units.empty() ? "" : "After=" + units + "\n")));
    CpioEntry link{"etc/systemd/system/initrd.target.requires/probegate-devices.target",
                   CpioEntry::Type::symlink,
                   0777,
                   {},
                   "../probegate-devices.target"};
    entries.push_back(std::move(link));
    if (spec.device_timeout_s)
      for (int i = 0; i < spec.devices; ++i) {
        const auto unit = fmt::format("etc/systemd/system/dev-slowprobe{}.device.d", i);
        entries.push_back(dir(unit));
        entries.push_back(
            file(unit + "/probegate.conf", header + fmt::format("[Unit]\nJobRunningTimeoutSec={}\n",
                                                                *spec.device_timeout_s)));
      }
    // udevd's environment and arguments: the packages' ExecStart= (247 to
    // 262) gives none, so ours replaces it whole
    // (docs/FACTS.md "systemd as PID 1 in the initramfs").
    if (!spec.udevd_env.empty() || !spec.udevd_args.empty()) {
      std::string service = "[Service]\n";
      if (!spec.udevd_env.empty())
        service += fmt::format("Environment={}\n", fmt::join(spec.udevd_env, " "));
      if (!spec.udevd_args.empty())
        service += fmt::format("ExecStart=\nExecStart=/lib/systemd/systemd-udevd {}\n",
                               fmt::join(spec.udevd_args, " "));
      entries.push_back(dir("etc/systemd/system/systemd-udevd.service.d"));
      entries.push_back(
          file("etc/systemd/system/systemd-udevd.service.d/probegate.conf", header + service));
    }
  }
  return entries;
}

ImageBuilder::ImageBuilder(proc::ProcessRunner& runner, fs::path cache, fs::path data_root,
                           std::function<void(std::string_view)> progress)
    : m_runner(runner), m_cache(std::move(cache)), m_data(std::move(data_root)),
      m_progress(std::move(progress)) {}

core::Result<BaseLayer> ImageBuilder::base_layer(const std::string& suite, bool systemd) {
  // The suites the private apt serves are the ones a layer can come from.
  kernel::DebianApt apt(m_runner, m_cache);
  if (const auto suites = apt.suite_names(); std::ranges::find(suites, suite) == suites.end())
    return core::usage_error("no base layer for Debian suite '{}': use one of {}", suite,
                             fmt::join(suites, ", "));
  for (const auto* name : {"images/userspace-roots.txt", "images/base-exclude.txt", "images/init",
                           "images/pgwitness.c"})
    if (!fs::exists(m_data / name))
      return core::infra_error("{} is missing: is PROBEGATE_DATA_DIR ({}) a probegate checkout?",
                               (m_data / name).string(), m_data.string());
  auto roots_text = core::read_file(m_data / "images/userspace-roots.txt");
  if (!roots_text)
    return std::unexpected(roots_text.error());
  auto roots = list_lines(*roots_text);
  // --init systemd: systemd's package too, of which only the keep globs'
  // files are roots.
  std::map<std::string, std::vector<std::string>> keep;
  if (systemd) {
    auto text = core::read_file(m_data / "images/systemd-roots.txt");
    if (!text)
      return std::unexpected(text.error());
    auto parsed = root_keep_globs(*text);
    if (!parsed)
      return std::unexpected(core::with_context(parsed.error(), "images/systemd-roots.txt"));
    keep = std::move(*parsed);
    for (const auto& [package, globs] : keep)
      roots.push_back(package);
  }
  const std::string flavour = systemd ? "systemd-" : "";

  // Half of the key: everything under images/ (roots, excludes, /init, the
  // overlays); the other half is the exact packages.
  std::string images_text = std::string(k_base_format) + '\0' + suite + '\0' + flavour;
  auto overlay = entries_from_tree(m_data / "images", {});
  if (!overlay)
    return std::unexpected(overlay.error());
  for (const auto& e : *overlay)
    images_text += '\0' + e.path + '\0' + e.target + '\0' + core::sha256_hex(e.data);
  const std::string images_key = core::sha256_hex(images_text);

  // The layer last built for this suite and these images/, so that a warm
  // boot does not ask apt (two commands, ~3 s) every time: reused while
  // younger than the apt index is, or whenever apt cannot be asked.
  // Its four lines: the images/ key, the layer, the udev and systemd major
  // versions. One memo per images/ key: two probegates sharing a cache (a
  // checkout and the .deb) would otherwise each find the other's and ask.
  const fs::path last = m_cache / "layers" /
                        fmt::format("base-{}{}-{}.last", flavour, suite, images_key.substr(0, 16));
  std::optional<BaseLayer> last_layer;
  // The one memo per suite of earlier versions too, for a first boot after
  // an upgrade that cannot reach apt (its images/ key must still match).
  const fs::path legacy = m_cache / "layers" / ("base-" + flavour + suite + ".last");
  for (const auto& memo : {last, legacy}) {
    auto text = core::read_file(memo);
    if (!text)
      continue;
    const auto lines = list_lines(*text);
    const auto udev = lines.size() == 4 ? core::parse_int(lines[2]) : std::nullopt;
    const auto init = lines.size() == 4 ? core::parse_int(lines[3]) : std::nullopt;
    if (udev && *udev > 0 && init && lines[0] == images_key && fs::exists(lines[1])) {
      last_layer = BaseLayer{lines[1], *udev, *init};
      break;
    }
  }
  if (last_layer) {
    std::error_code ec;
    const auto written = fs::last_write_time(last, ec);
    if (!ec && fs::file_time_type::clock::now() - written < k_ask_apt_every)
      return *last_layer;
  }

  // What the suite's apt would download now: the roots, their library
  // packages, at their current versions.
  std::vector<std::string> packages;
  std::vector<std::string> debs;
  auto asked = [&]() -> core::Status {
    if (auto ready = apt.ready(suite); !ready)
      return ready;
    std::vector<std::string> argv{"apt-cache",       "depends",       "--recurse",
                                  "--no-recommends", "--no-suggests", "--no-conflicts",
                                  "--no-breaks",     "--no-replaces", "--no-enhances"};
    argv.insert(argv.end(), roots.begin(), roots.end());
    auto depends = apt.capture(suite, argv);
    if (!depends)
      return std::unexpected(depends.error());
    packages = userspace_packages(*depends, roots);
    std::vector<std::string> uris{"apt-get", "download", "--print-uris", "-q"};
    uris.insert(uris.end(), packages.begin(), packages.end());
    auto printed = apt.capture(suite, uris);
    if (!printed)
      return std::unexpected(printed.error());
    debs = deb_file_names(*printed);
    if (debs.size() != packages.size())
      return core::infra_error("apt-get download --print-uris named {} .deb files for {} "
                               "packages of {}",
                               debs.size(), packages.size(), suite);
    return {};
  }();
  if (!asked) {
    if (asked.error().kind == core::ErrorKind::usage)
      return std::unexpected(asked.error());
    if (last_layer) {
      m_progress(fmt::format("cannot ask apt about Debian {} ({}); using its last base layer",
                             suite, asked.error().message));
      return *last_layer;
    }
    return std::unexpected(
        core::with_context(asked.error(), "listing the " + suite + " user space packages"));
  }

  std::string key_text = images_key;
  for (const auto& deb : debs)
    key_text += '\0' + deb;
  const fs::path out =
      m_cache / "layers" /
      fmt::format("base-{}{}-{}.cpio", flavour, suite, core::sha256_hex(key_text).substr(0, 16));
  const int udev = deb_major_version(debs, "udev");
  if (udev == 0)
    return core::infra_error("Debian {} names no udev package with a numeric version among {}",
                             suite, fmt::join(debs, " "));
  // The memo's four lines; since the systemd flavour came, a three-line
  // writer here made every warm boot ask apt again (~2 s) and dropped the
  // systemd version.
  const int systemd_version = systemd ? deb_major_version(debs, "systemd") : 0;
  auto remember = [&](const fs::path& layer) -> core::Result<BaseLayer> {
    (void)core::write_file_atomic(
        last, fmt::format("{}\n{}\n{}\n{}\n", images_key, layer.string(), udev, systemd_version));
    return BaseLayer{layer, udev, systemd_version};
  };
  if (fs::exists(out))
    return remember(out);
  auto lock = core::FileLock::acquire(m_cache / "locks" / ("base-layer-" + suite + ".lock"));
  if (!lock)
    return std::unexpected(lock.error());
  if (fs::exists(out))
    return remember(out);
  auto built = build_base(suite, roots, keep, packages, out);
  if (!built)
    return std::unexpected(built.error());
  return remember(*built);
}

core::Result<fs::path>
ImageBuilder::build_base(const std::string& suite, const std::vector<std::string>& roots,
                         const std::map<std::string, std::vector<std::string>>& keep_globs,
                         const std::vector<std::string>& packages, const fs::path& out) {
  const bool systemd = !keep_globs.empty();
  auto exclude_text = core::read_file(m_data / "images/base-exclude.txt");
  // The agent reads no unit file; systemd's are chosen by the keep globs.
  auto flavour_exclude = systemd ? core::Result<std::string>("")
                                 : core::read_file(m_data / "images/agent-exclude.txt");
  auto init = core::read_file(m_data / "images/init");
  if (!exclude_text || !flavour_exclude || !init)
    return core::infra_error("cannot read images/ in {}", m_data.string());
  auto tmp = core::TempDir::create(m_cache / "tmp", "base-");
  if (!tmp)
    return std::unexpected(tmp.error());
  const fs::path debs = tmp->path() / "debs";
  const fs::path root = tmp->path() / "root";
  fs::create_directories(debs);
  fs::create_directories(root);
  m_progress(
      fmt::format("building the Debian {} user space from {} packages", suite, packages.size()));
  kernel::DebianApt apt(m_runner, m_cache);
  std::vector<std::string> argv{"apt-get", "download", "-q"};
  argv.insert(argv.end(), packages.begin(), packages.end());
  auto download = apt.command(suite, argv);
  download.cwd = debs;
  if (auto got =
          kernel::apt_download(m_runner, download, "downloading the " + suite + " user space");
      !got)
    return std::unexpected(
        core::with_context(got.error(), "downloading the " + suite + " user space packages"));

  // Unpack every package into one tree; remember which paths the roots
  // ship: of the libraries' packages only what the ELF files need is kept.
  std::set<std::string> root_files;
  std::vector<fs::path> deb_files;
  for (const auto& deb : fs::directory_iterator(debs))
    deb_files.push_back(deb.path());
  std::ranges::sort(deb_files);
  std::string manifest;
  for (const auto& deb : deb_files) {
    manifest += deb.filename().string() + "\n";
    const auto package = deb_package(deb.filename().string());
    const bool is_root = std::ranges::find(roots, package) != roots.end();
    const auto globs = keep_globs.find(package);
    core::Command unpack;
    unpack.argv = {"dpkg-deb", "-X", deb.string(), root.string()};
    auto done = proc::run_checked(m_runner, unpack, [&](std::string_view line) {
      if (is_root) {
        std::string path(line);
        while (path.starts_with("./"))
          path.erase(0, 2);
        while (path.ends_with("/"))
          path.pop_back();
        const bool kept =
            globs == keep_globs.end() || std::ranges::any_of(globs->second, [&](const auto& glob) {
              return ::fnmatch(glob.c_str(), path.c_str(), 0) == 0;
            });
        if (!path.empty() && path != "." && kept)
          root_files.insert(path);
      }
      return proc::LineAction::keep_going;
    });
    if (!done)
      return std::unexpected(done.error());
  }
  std::error_code ec;
  for (const auto* name : {"rootfs", "systemd"}) {
    if (std::string_view(name) == "systemd" && !systemd)
      continue;
    fs::copy(m_data / "images" / name, root,
             fs::copy_options::recursive | fs::copy_options::overwrite_existing |
                 fs::copy_options::copy_symlinks,
             ec);
    if (ec)
      return core::infra_error("cannot copy images/{}: {}", name, ec.message());
    auto overlay = entries_from_tree(m_data / "images" / name, {});
    if (!overlay)
      return std::unexpected(overlay.error());
    for (const auto& e : *overlay)
      root_files.insert(e.path);
  }
  // Usr-merged suites (trixie, sid) ship only /usr: the guest still needs
  // /bin/busybox (the agent's #!), /lib64/ld-linux-x86-64.so.2 (every
  // PT_INTERP) and /lib/systemd/systemd-udevd, as base-files' links give a
  // real system. Suites that ship / and /usr keep their split layout.
  for (const auto* top : {"bin", "sbin", "lib", "lib64"}) {
    if (fs::exists(fs::symlink_status(root / top)) || !fs::is_directory(root / "usr" / top))
      continue;
    fs::create_directory_symlink(fs::path("usr") / top, root / top, ec);
    if (ec)
      return core::infra_error("cannot link /{} to usr/{}: {}", top, top, ec.message());
    root_files.insert(top);
  }

  auto excludes = list_lines(*exclude_text);
  for (auto& line : list_lines(*flavour_exclude))
    excludes.push_back(std::move(line));
  auto entries = entries_from_tree(root, excludes);
  if (!entries)
    return std::unexpected(entries.error());
  // Every program the roots ship starts the library closure; glibc also
  // dlopen()s its NSS module for /etc/group (udev rules name groups).
  std::vector<std::string> starts;
  for (const auto& e : *entries) {
    if (!root_files.contains(e.path))
      continue;
    if ((e.type == CpioEntry::Type::file && !library_name(e.path)) ||
        (e.type != CpioEntry::Type::dir &&
         fs::path(e.path).filename().string().starts_with("libnss_files.so.")))
      starts.push_back(e.path);
  }
  auto closure = library_closure(root, starts);
  if (!closure)
    return std::unexpected(
        core::with_context(closure.error(), "the Debian " + suite + " user space"));
  std::set<std::string> present;
  for (const auto& e : *entries)
    present.insert(e.path);
  for (const auto& path : *closure)
    if (!present.contains(path))
      return core::infra_error("the Debian {} user space needs /{}, but images/base-exclude.txt "
                               "leaves it out",
                               suite, path);
  std::set<std::string> dirs; // parents of what is kept
  auto keep = [&](const CpioEntry& e) {
    if (closure->contains(e.path))
      return true;
    if (!root_files.contains(e.path))
      return false;
    return e.type == CpioEntry::Type::dir || !library_name(e.path);
  };
  std::vector<CpioEntry> kept;
  for (auto& e : *entries) {
    if (e.type == CpioEntry::Type::dir || !keep(e))
      continue;
    for (auto parent = fs::path(e.path).parent_path(); !parent.empty();
         parent = parent.parent_path())
      dirs.insert(parent.string());
    kept.push_back(std::move(e));
  }
  for (auto& e : *entries)
    if (e.type == CpioEntry::Type::dir && (dirs.contains(e.path) || root_files.contains(e.path)))
      kept.push_back(std::move(e));
  // Directories the layer must have, whether or not a package ships them.
  std::vector<std::string> needed{"dev", "proc", "sys",           "run",
                                  "tmp", "etc",  "etc/probegate", "etc/modprobe.d"};
  if (!systemd) {
    auto witness = build_witness(m_runner, m_data / "images/pgwitness.c", tmp->path());
    if (!witness)
      return std::unexpected(witness.error());
    for (auto parent = fs::path(k_witness_path).parent_path(); !parent.empty();
         parent = parent.parent_path())
      needed.push_back(parent.string());
    kept.push_back(file(std::string(k_witness_path), std::move(*witness), 0755));
  }
  for (const auto& path : needed)
    if (std::ranges::find(kept, path, &CpioEntry::path) == kept.end())
      kept.push_back(dir(path));
  kept.push_back(CpioEntry{"dev/console", CpioEntry::Type::chardev, 0600, {}, {}, 5, 1});
  kept.push_back(file("init", *init, 0755));
  kept.push_back(file("etc/probegate/base-packages.txt", manifest));
  std::ranges::stable_sort(kept, {}, &CpioEntry::path);
  return write_layer(kept, out);
}

core::Result<fs::path> ImageBuilder::modules_layer(const kernel::KernelArtifact& kernel,
                                                   const modules::BuiltModule* module) {
  const fs::path out =
      m_cache / "layers" /
      (module ? fmt::format("modules-v2-{}-{}-{}.cpio", kernel.dir.filename().string(),
                            module->name, module->source_hash.substr(0, 16))
              : fmt::format("modules-v2-{}-builtin.cpio", kernel.dir.filename().string()));
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
  // No entry for /lib itself: in a usr-merged base layer (trixie, sid) /lib
  // is a link to usr/lib, and the kernel's unpacker would replace that link
  // with a directory holding only the modules (v1 layers did), hiding
  // /lib/systemd. lib/modules/... then lands in usr/lib/modules.
  std::erase_if(*entries, [](const CpioEntry& e) { return e.path == "lib"; });
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
