// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/kernel_store.h"

#include "core/files.h"
#include "kernel/debian_index.h"
#include "kernel/vmlinux.h"

#include <chrono>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <regex>

namespace probegate::kernel {

namespace fs = std::filesystem;
using core::Result;
using namespace std::chrono_literals;

namespace {

constexpr auto k_index_max_age = 12h;
constexpr std::string_view k_artifact_file = "artifact.json";

core::Command apt_command(std::vector<std::string> argv) {
  core::Command c;
  c.argv = std::move(argv);
  c.env["LC_ALL"] = "C";
  c.timeout = 15min;
  return c;
}

// The arch headers' Makefile includes the common headers by absolute path
// (/usr/src/linux-headers-<abi>-common); point it at our unpacked copy, at
// the place the entry will have once published.
core::Status repoint_headers(const fs::path& final_tree, const fs::path& kbuild_dir) {
  const fs::path makefile = kbuild_dir / "Makefile";
  auto text = core::read_file(makefile);
  if (!text)
    return core::infra_error("unpacked headers lack {}", makefile.string());
  const std::string fixed = std::regex_replace(*text, std::regex(R"((^|[ =])/usr/src/)"),
                                               "$1" + (final_tree / "usr/src").string() + "/");
  return core::write_file_atomic(makefile, fixed);
}

} // namespace

void to_json(nlohmann::json& j, const KernelArtifact& a) {
  j = {{"ref", a.ref},
       {"release", a.release},
       {"line", a.line},
       {"vmlinuz", a.vmlinuz.string()},
       {"vmlinux", a.vmlinux.string()},
       {"kbuild_dir", a.kbuild_dir.string()},
       {"modules_dir", a.modules_dir.string()},
       {"packages", a.packages}};
}

void from_json(const nlohmann::json& j, KernelArtifact& a) {
  a.ref = j.value("ref", "");
  a.release = j.at("release").get<std::string>();
  a.line = j.at("line").get<std::string>();
  a.vmlinuz = j.at("vmlinuz").get<std::string>();
  a.vmlinux = j.at("vmlinux").get<std::string>();
  a.kbuild_dir = j.at("kbuild_dir").get<std::string>();
  a.modules_dir = j.at("modules_dir").get<std::string>();
  a.packages = j.at("packages").get<std::map<std::string, std::string>>();
}

KernelStore::KernelStore(proc::ProcessRunner& runner, fs::path cache, Progress progress)
    : m_runner(runner), m_cache(std::move(cache)), m_progress(std::move(progress)) {}

fs::path KernelStore::entry_dir(const std::string& release) const {
  return m_cache / "kernels" / release;
}

Result<KernelArtifact> KernelStore::load(const std::string& release) const {
  const fs::path dir = entry_dir(release);
  auto text = core::read_file(dir / k_artifact_file);
  if (!text)
    return std::unexpected(text.error());
  try {
    auto artifact = nlohmann::json::parse(*text).get<KernelArtifact>();
    artifact.dir = dir;
    return artifact;
  } catch (const std::exception& e) {
    return core::infra_error("corrupt cache entry {}: {}; delete it and fetch again",
                             (dir / k_artifact_file).string(), e.what());
  }
}

std::vector<KernelArtifact> KernelStore::cached() const {
  std::vector<KernelArtifact> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(m_cache / "kernels", ec)) {
    if (auto artifact = load(entry.path().filename().string()))
      out.push_back(std::move(*artifact));
  }
  std::ranges::sort(
      out, [](const auto& a, const auto& b) { return release_less(a.release, b.release); });
  return out;
}

Result<std::vector<std::string>> KernelStore::available(bool refresh) {
  const fs::path index = m_cache / "index" / "debian-linux-image-pkgnames.txt";
  std::error_code ec;
  const auto written = fs::last_write_time(index, ec);
  const bool fresh = !ec && fs::file_time_type::clock::now() - written < k_index_max_age;
  if (!refresh && fresh) {
    if (auto text = core::read_file(index))
      return image_releases(*text);
  }
  std::string names;
  auto result = proc::run_checked(m_runner, apt_command({"apt-cache", "pkgnames", "linux-image-"}),
                                  [&](std::string_view line) {
                                    names.append(line).push_back('\n');
                                    return proc::LineAction::keep_going;
                                  });
  if (!result)
    return std::unexpected(result.error());
  auto releases = image_releases(names);
  if (releases.empty())
    return core::infra_error("apt knows no linux-image-*-amd64 package: run `apt-get update` "
                             "(README.md's set-up command does)");
  if (auto saved = core::write_file_atomic(index, names); !saved)
    return std::unexpected(saved.error());
  return releases;
}

Result<std::string> KernelStore::resolve(const KernelRef& ref) {
  if (ref.kind == KernelRef::Kind::file || ref.kind == KernelRef::Kind::tree)
    return core::usage_error("kernel ref '{}': file: and tree: kernels are not supported yet; "
                             "use debian:<line> or debian:<abi>",
                             ref.text);
  if (ref.kind == KernelRef::Kind::debian_abi && fs::exists(entry_dir(ref.value) / k_artifact_file))
    return ref.value;
  auto releases = available();
  if (!releases)
    return std::unexpected(releases.error());
  auto find = [&](const std::vector<std::string>& list) -> std::optional<std::string> {
    if (ref.kind == KernelRef::Kind::debian_line)
      return newest_in_line(list, ref.value);
    if (std::ranges::find(list, ref.value) != list.end())
      return ref.value;
    return std::nullopt;
  };
  auto found = find(*releases);
  if (!found) { // the index may be stale: ask apt once more
    releases = available(true);
    if (!releases)
      return std::unexpected(releases.error());
    found = find(*releases);
  }
  if (found)
    return *found;
  const auto known = lines(*releases);
  std::vector<std::string> in_line;
  for (const auto& r : *releases)
    if (line_of(r) == line_of(ref.value))
      in_line.push_back(r);
  return core::usage_error("unknown kernel '{}': Debian's index has the lines {}{}", ref.text,
                           fmt::join(known, ", "),
                           in_line.empty() ? std::string()
                                           : fmt::format("; ABIs of {}: {}", line_of(ref.value),
                                                         fmt::join(in_line, ", ")));
}

Result<KernelArtifact> KernelStore::fetch(const KernelRef& ref) {
  auto release = resolve(ref);
  if (!release)
    return std::unexpected(release.error());
  if (auto artifact = load(*release)) {
    artifact->ref = ref.text;
    return artifact;
  }
  auto lock = core::FileLock::acquire(m_cache / "locks" / ("kernel-" + *release + ".lock"));
  if (!lock)
    return std::unexpected(lock.error());
  if (auto artifact = load(*release)) { // another process fetched it meanwhile
    artifact->ref = ref.text;
    return artifact;
  }
  return download(ref, *release);
}

Result<KernelArtifact> KernelStore::download(const KernelRef& ref, const std::string& release) {
  auto tmp = core::TempDir::create(m_cache / "tmp", "kernel-");
  if (!tmp)
    return std::unexpected(tmp.error());
  const fs::path debs = tmp->path() / "debs";
  const fs::path entry = tmp->path() / "entry";
  const fs::path tree = entry / "tree";
  const fs::path image_root = tmp->path() / "image";
  fs::create_directories(debs);
  fs::create_directories(tree);

  std::string headers_show;
  auto shown = proc::run_checked(
      m_runner, apt_command({"apt-cache", "show", "--no-all-versions", "linux-headers-" + release}),
      [&](std::string_view line) {
        headers_show.append(line).push_back('\n');
        return proc::LineAction::keep_going;
      });
  if (!shown)
    return std::unexpected(core::with_context(shown.error(), "looking up the headers"));
  const auto packages = packages_for(release, headers_show);
  m_progress(fmt::format("downloading {} ({})", release, fmt::join(packages, ", ")));
  auto download_argv = std::vector<std::string>{"apt-get", "download", "-q"};
  download_argv.insert(download_argv.end(), packages.begin(), packages.end());
  auto download_command = apt_command(download_argv);
  download_command.cwd = debs;
  if (auto got = proc::run_checked(m_runner, download_command); !got)
    return std::unexpected(core::with_context(got.error(), "downloading " + release));

  KernelArtifact artifact;
  artifact.ref = ref.text;
  artifact.release = release;
  artifact.line = line_of(release);
  std::error_code ec;
  for (const auto& deb : fs::directory_iterator(debs)) {
    const std::string name = deb.path().filename().string(); // name_version_arch.deb
    const auto first = name.find('_');
    const auto second = name.find('_', first + 1);
    artifact.packages[name.substr(0, first)] = name.substr(first + 1, second - first - 1);
    const fs::path target = name.starts_with("linux-image-") ? image_root : tree;
    core::Command unpack;
    unpack.argv = {"dpkg-deb", "-x", deb.path().string(), target.string()};
    if (auto done = proc::run_checked(m_runner, unpack); !done)
      return std::unexpected(done.error());
  }
  m_progress(fmt::format("unpacking {}", release));

  // The image: keep the bzImage, extract vmlinux, keep depmod's inputs only.
  const fs::path vmlinuz = image_root / "boot" / ("vmlinuz-" + release);
  auto bzimage = core::read_file(vmlinuz);
  if (!bzimage)
    return core::infra_error("package linux-image-{} holds no boot/vmlinuz-{}", release, release);
  auto elf = extract_vmlinux(*bzimage);
  if (!elf)
    return std::unexpected(elf.error());
  if (auto saved = core::write_file_atomic(entry / "vmlinuz", *bzimage); !saved)
    return std::unexpected(saved.error());
  if (auto saved = core::write_file_atomic(entry / "vmlinux", *elf); !saved)
    return std::unexpected(saved.error());
  const fs::path modules_src = image_root / "lib" / "modules" / release;
  const fs::path modules_dst = entry / "modules";
  fs::create_directories(modules_dst);
  for (const auto& file : fs::directory_iterator(modules_src, ec)) {
    if (file.is_regular_file())
      fs::copy_file(file.path(), modules_dst / file.path().filename(), ec);
  }
  if (!fs::exists(modules_dst / "modules.builtin"))
    return core::infra_error("package linux-image-{} has no modules.builtin", release);

  const fs::path final_dir = entry_dir(release);
  const fs::path kbuild_dir = tree / "usr" / "src" / ("linux-headers-" + release);
  if (auto fixed = repoint_headers(final_dir / "tree", kbuild_dir); !fixed)
    return std::unexpected(fixed.error());
  artifact.dir = final_dir;
  artifact.vmlinuz = final_dir / "vmlinuz";
  artifact.vmlinux = final_dir / "vmlinux";
  artifact.modules_dir = final_dir / "modules";
  artifact.kbuild_dir = final_dir / fs::relative(kbuild_dir, entry);
  if (auto saved =
          core::write_file_atomic(entry / k_artifact_file, nlohmann::json(artifact).dump(2));
      !saved)
    return std::unexpected(saved.error());
  if (auto published = core::publish_dir(entry, final_dir); !published)
    return std::unexpected(published.error());
  m_progress(fmt::format("kernel {} ready in {}", release, final_dir.string()));
  return load(release);
}

} // namespace probegate::kernel
