// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/local_kernel.h"

#include "core/files.h"
#include "kernel/debian_index.h"
#include "kernel/knobs.h"
#include "kernel/vmlinux.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <nlohmann/json.hpp>
#include <vector>

namespace probegate::kernel {

namespace fs = std::filesystem;
using core::Result;

namespace {

constexpr std::string_view k_elf_magic = "\x7F"
                                         "ELF";
// The inputs depmod wants beside the modules (initramfs.cc copies the folder).
constexpr std::array<std::string_view, 3> k_depmod_inputs{
    "modules.builtin", "modules.builtin.modinfo", "modules.order"};
constexpr std::string_view k_slowprobe = "slowprobe";

// The bzImage setup header (Documentation/x86/boot.rst): "HdrS" at 0x202,
// and at 0x20E a pointer, less 0x200, to the kernel version string.
constexpr size_t k_header_magic_at = 0x202;
constexpr size_t k_kernel_version_at = 0x20E;

bool is_bzimage(std::string_view image) {
  return image.size() > k_kernel_version_at + 2 &&
         image.substr(k_header_magic_at, 4) == std::string_view("HdrS");
}

std::string first_word(std::string_view text) {
  const auto end = text.find_first_of(" \t\r\n");
  return std::string(text.substr(0, end));
}

std::string first_line(std::string_view text) {
  return std::string(text.substr(0, text.find('\n')));
}

std::string read_or_empty(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    return {};
  auto text = core::read_file(path);
  return text ? std::move(*text) : std::string();
}

fs::path absolute_path(std::string_view text) {
  fs::path path = fs::absolute(fs::path(text)).lexically_normal();
  if (path.has_parent_path() && path.filename().empty()) // "dir/": the same entry as "dir"
    path = path.parent_path();
  return path;
}

// "CONFIG_X=y" as a whole line of a .config.
bool config_has(std::string_view config, std::string_view line) {
  for (size_t pos = config.find(line); pos != std::string_view::npos;
       pos = config.find(line, pos + 1)) {
    const bool starts = pos == 0 || config[pos - 1] == '\n';
    const size_t end = pos + line.size();
    const bool ends = end == config.size() || config[end] == '\n';
    if (starts && ends)
      return true;
  }
  return false;
}

Result<KernelArtifact> load_entry(const fs::path& dir, const std::string& ref_text) {
  auto artifact = load_artifact(dir);
  if (artifact)
    artifact->ref = ref_text;
  return artifact;
}

// depmod's inputs from the tree or kbuild dir; empty files where it has none
// (Debian's headers carry no modules.builtin: depmod still needs the files).
core::Status copy_depmod_inputs(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  for (const auto name : k_depmod_inputs) {
    const std::string content = from.empty() ? std::string() : read_or_empty(from / name);
    if (auto saved = core::write_file_atomic(to / name, content); !saved)
      return saved;
  }
  return {};
}

// What the ref points at, checked and made absolute.
struct LocalKernel {
  std::string kind; // "file" or "tree"
  fs::path image;   // the file whose content keys the entry
  fs::path tree;    // tree: the built source or O= dir
  fs::path kbuild;  // may be empty for file:
};

Result<LocalKernel> locate(const KernelRef& ref) {
  std::error_code ec;
  LocalKernel local;
  if (ref.kind == KernelRef::Kind::tree) {
    local.kind = "tree";
    local.tree = absolute_path(ref.value);
    if (!fs::is_directory(local.tree, ec))
      return core::usage_error("kernel ref '{}': {} is not a directory; give a built kernel "
                               "source tree or its O= build dir",
                               ref.text, local.tree.string());
    local.image = local.tree / "vmlinux";
    if (!fs::is_regular_file(local.image, ec))
      return core::usage_error("kernel ref '{}': {} is not built (no vmlinux): run `make vmlinux "
                               "modules_prepare` there, or build one with `probegate kernels "
                               "build --source <dir>`",
                               ref.text, local.tree.string());
    if (!fs::is_regular_file(local.tree / "include/config/kernel.release", ec))
      return core::usage_error("kernel ref '{}': {} has no include/config/kernel.release: is it "
                               "a kernel build dir? Run `make vmlinux modules_prepare` there",
                               ref.text, local.tree.string());
    local.kbuild = local.tree;
    return local;
  }
  local.kind = "file";
  local.image = absolute_path(ref.value);
  if (!fs::is_regular_file(local.image, ec))
    return core::usage_error("kernel ref '{}': {} is not a file; give a bzImage or an ELF vmlinux",
                             ref.text, local.image.string());
  if (!ref.kbuild.empty()) {
    local.kbuild = absolute_path(ref.kbuild);
    if (!fs::is_regular_file(local.kbuild / "Makefile", ec))
      return core::usage_error("kernel ref '{}': kbuild dir {} has no Makefile; give the "
                               "kernel's build dir (a built tree, its O= dir or its headers)",
                               ref.text, local.kbuild.string());
  }
  return local;
}

std::string entry_key(const LocalKernel& local, std::string_view content_hash) {
  return core::sha256_hex(fmt::format("{}\n{}\n{}\n{}\n", local.kind, local.image.string(),
                                      local.kbuild.string(), content_hash));
}

} // namespace

std::optional<std::string> release_of_bzimage(std::string_view image) {
  if (!is_bzimage(image))
    return std::nullopt;
  const auto lo = static_cast<unsigned char>(image[k_kernel_version_at]);
  const auto hi = static_cast<unsigned char>(image[k_kernel_version_at + 1]);
  const size_t pointer = static_cast<size_t>(lo) | (static_cast<size_t>(hi) << 8);
  if (pointer == 0 || pointer + 0x200 >= image.size())
    return std::nullopt;
  std::string release = first_word(image.substr(pointer + 0x200, 256));
  if (const auto nul = release.find('\0'); nul != std::string::npos)
    release.resize(nul);
  if (release.empty() || !std::isdigit(static_cast<unsigned char>(release.front())))
    return std::nullopt;
  return release;
}

std::optional<std::string> release_of_vmlinux(std::string_view elf) {
  // linux_banner: "Linux version <release> (<user>@<host>) ...". Other
  // strings may start alike; the banner's release starts with a digit.
  constexpr std::string_view banner = "Linux version ";
  for (size_t pos = elf.find(banner); pos != std::string_view::npos;
       pos = elf.find(banner, pos + 1)) {
    const std::string_view rest = elf.substr(pos + banner.size(), 256);
    if (rest.empty() || !std::isdigit(static_cast<unsigned char>(rest.front())))
      continue;
    const auto end = rest.find_first_of(std::string_view(" \0\n", 3));
    if (end == std::string_view::npos || rest[end] != ' ')
      continue;
    return std::string(rest.substr(0, end));
  }
  return std::nullopt;
}

std::optional<std::string> release_of_utsrelease_h(std::string_view header) {
  constexpr std::string_view define = "#define UTS_RELEASE \"";
  const auto start = header.find(define);
  if (start == std::string_view::npos)
    return std::nullopt;
  const auto from = start + define.size();
  const auto end = header.find('"', from);
  if (end == std::string_view::npos)
    return std::nullopt;
  return std::string(header.substr(from, end - from));
}

bool module_built_in(std::string_view module, std::string_view modules_builtin,
                     std::string_view config, std::string_view vmlinux) {
  const std::string ko = fmt::format("/{}.ko", module);
  for (size_t pos = modules_builtin.find(ko); pos != std::string_view::npos;
       pos = modules_builtin.find(ko, pos + 1)) {
    const size_t end = pos + ko.size();
    if (end == modules_builtin.size() || modules_builtin[end] == '\n')
      return true;
  }
  std::string symbol(module);
  for (auto& c : symbol)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (config_has(config, "CONFIG_" + symbol + "=y"))
    return true;
  // Built-in module parameters are registered as "<module>.<param>".
  const std::string prefix = std::string(module) + ".";
  for (size_t pos = vmlinux.find(prefix); pos != std::string_view::npos;
       pos = vmlinux.find(prefix, pos + 1)) {
    size_t end = pos + prefix.size();
    while (end < vmlinux.size() &&
           (std::islower(static_cast<unsigned char>(vmlinux[end])) || vmlinux[end] == '_'))
      ++end;
    if (end > pos + prefix.size() && end < vmlinux.size() && vmlinux[end] == '\0')
      return true;
  }
  return false;
}

std::optional<GitStatus> parse_git_status(std::string_view porcelain_v2) {
  GitStatus status;
  for (size_t start = 0; start < porcelain_v2.size();) {
    const size_t end = std::min(porcelain_v2.find('\n', start), porcelain_v2.size());
    const std::string_view line = porcelain_v2.substr(start, end - start);
    start = end + 1;
    if (line.starts_with("# branch.oid "))
      status.commit = line.substr(13);
    else if (line.starts_with("# branch.head ") && line.substr(14) != "(detached)")
      status.branch = line.substr(14);
    else if (line.starts_with("# branch.upstream "))
      status.has_upstream = true;
    else if (!line.empty() && !line.starts_with("# "))
      status.dirty = true; // a changed, unmerged or untracked path
  }
  const bool full_hash =
      status.commit.size() == 40 && std::ranges::all_of(status.commit, [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      });
  return full_hash ? std::optional(status) : std::nullopt;
}

std::optional<std::string> public_https_url(std::string_view url) {
  constexpr std::string_view scheme = "https://";
  if (!url.starts_with(scheme))
    return std::nullopt;
  const std::string_view rest = url.substr(scheme.size());
  const std::string_view host = rest.substr(0, rest.find('/'));
  const bool clean = std::ranges::none_of(
      url, [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; });
  if (host.empty() || host.find('@') != std::string_view::npos || !clean)
    return std::nullopt;
  return std::string(url);
}

namespace {

// What `git -C <dir> <args>` prints, or nullopt where git failed or is
// missing; only an interrupt is an error.
Result<std::optional<std::string>> git_output(proc::ProcessRunner& runner, const fs::path& dir,
                                              const std::vector<std::string>& args) {
  core::Command git;
  git.argv = {"git", "-C", dir.string()};
  git.argv.insert(git.argv.end(), args.begin(), args.end());
  git.env = {{"GIT_OPTIONAL_LOCKS", "0"}, {"LC_ALL", "C"}};
  git.timeout = std::chrono::minutes(2);
  return proc::output_if_ok(runner, git);
}

} // namespace

Result<std::optional<GitCheckout>> git_checkout(proc::ProcessRunner& runner,
                                                const fs::path& source) {
  std::error_code ec;
  if (!source.is_absolute() || !fs::exists(source / ".git", ec))
    return std::nullopt;
  auto status_text = git_output(runner, source, {"status", "--porcelain=v2", "--branch"});
  if (!status_text)
    return std::unexpected(status_text.error());
  const auto status = *status_text ? parse_git_status(**status_text) : std::nullopt;
  if (!status)
    return std::nullopt; // git cannot say, or no commit yet
  GitCheckout checkout{
      .commit = status->commit, .dirty = status->dirty, .repository_url = "", .branch = ""};
  if (status->branch.empty() || !status->has_upstream)
    return checkout;
  // "origin\trefs/heads/master": the upstream's remote and its branch there.
  auto upstream =
      git_output(runner, source,
                 {"for-each-ref", "--format=%(upstream:remotename)%09%(upstream:remoteref)",
                  "refs/heads/" + status->branch});
  if (!upstream)
    return std::unexpected(upstream.error());
  const std::string line = *upstream ? first_line(**upstream) : std::string();
  const auto tab = line.find('\t');
  if (tab == std::string::npos || !line.substr(tab + 1).starts_with("refs/heads/"))
    return checkout;
  auto url = git_output(runner, source, {"remote", "get-url", line.substr(0, tab)});
  if (!url)
    return std::unexpected(url.error());
  if (const auto shown = *url ? public_https_url(first_line(**url)) : std::nullopt) {
    checkout.repository_url = *shown;
    checkout.branch = line.substr(tab + 1 + std::string_view("refs/heads/").size());
  }
  return checkout;
}

core::Result<KernelArtifact>
fetch_local_kernel(const KernelRef& ref, proc::ProcessRunner& runner, const fs::path& cache,
                   const std::function<void(std::string_view)>& progress) {
  auto local = locate(ref);
  if (!local)
    return std::unexpected(local.error());
  auto content_hash = core::sha256_file(local->image);
  if (!content_hash)
    return std::unexpected(content_hash.error());
  // Keyed by content: a rebuilt tree or a new image gets a fresh entry (and
  // so a fresh module build, which ModuleBuilder keys by the entry's name).
  const std::string name = local->kind + "-" + entry_key(*local, *content_hash).substr(0, 16);
  const fs::path final_dir = kernels_dir(cache) / name;
  if (auto cached = load_entry(final_dir, ref.text))
    return cached;
  auto lock = core::FileLock::acquire(cache / "locks" / ("kernel-" + name + ".lock"));
  if (!lock)
    return std::unexpected(lock.error());
  if (auto cached = load_entry(final_dir, ref.text)) // another process made it meanwhile
    return cached;

  auto bytes = core::read_file(local->image);
  if (!bytes)
    return std::unexpected(bytes.error());
  auto tmp = core::TempDir::create(cache / "tmp", "kernel-" + local->kind + "-");
  if (!tmp)
    return std::unexpected(tmp.error());
  const fs::path entry = tmp->path() / "entry";
  fs::create_directories(entry);

  KernelArtifact artifact;
  artifact.ref = ref.text;
  artifact.dir = final_dir;
  std::string elf; // the uncompressed image, for the knobs
  if (local->kind == "tree") {
    if (!bytes->starts_with(k_elf_magic))
      return core::usage_error("kernel ref '{}': {} is not an ELF file; rebuild the tree", ref.text,
                               local->image.string());
    artifact.release = first_word(read_or_empty(local->tree / "include/config/kernel.release"));
    artifact.vmlinux = local->image;
    if (const fs::path bz = local->tree / "arch/x86/boot/bzImage"; fs::is_regular_file(bz))
      artifact.vmlinuz = bz;
    elf = std::move(*bytes);
  } else if (bytes->starts_with(k_elf_magic)) {
    artifact.vmlinux = local->image;
    auto release = release_of_vmlinux(*bytes);
    if (!release)
      return core::usage_error("kernel ref '{}': {} is an ELF file without a \"Linux version\" "
                               "banner: is it a kernel's vmlinux?",
                               ref.text, local->image.string());
    artifact.release = *release;
    elf = std::move(*bytes);
  } else if (is_bzimage(*bytes)) {
    progress(fmt::format("extracting vmlinux from {}", local->image.string()));
    auto extracted = extract_vmlinux(*bytes);
    if (!extracted)
      return core::usage_error("kernel ref '{}': {}", ref.text, extracted.error().message);
    auto release = release_of_bzimage(*bytes);
    if (!release)
      release = release_of_vmlinux(*extracted);
    if (!release)
      return core::usage_error("kernel ref '{}': {} names no kernel release (no kernel_version "
                               "in its header, no banner in its vmlinux)",
                               ref.text, local->image.string());
    artifact.release = *release;
    artifact.vmlinuz = local->image;
    artifact.vmlinux = final_dir / "vmlinux";
    if (auto saved = core::write_file_atomic(entry / "vmlinux", *extracted); !saved)
      return std::unexpected(saved.error());
    elf = std::move(*extracted);
  } else {
    return core::usage_error("kernel ref '{}': {} is neither a bzImage nor an ELF vmlinux",
                             ref.text, local->image.string());
  }
  if (artifact.release.empty())
    return core::usage_error("kernel ref '{}': {} names no release; rebuild the tree", ref.text,
                             (local->tree / "include/config/kernel.release").string());
  artifact.line = line_of(artifact.release);
  artifact.knobs = detect_knobs(elf);

  const std::string config =
      local->kbuild.empty() ? std::string() : read_or_empty(local->kbuild / ".config");
  const std::string builtin_list =
      local->kbuild.empty() ? std::string() : read_or_empty(local->kbuild / "modules.builtin");
  artifact.slowprobe_builtin = module_built_in(k_slowprobe, builtin_list, config, elf);

  if (local->kbuild.empty() && !artifact.slowprobe_builtin)
    return core::usage_error("kernel ref '{}': the test module must be built against this "
                             "kernel: add ',kbuild=<dir>' (its build dir, O= dir or headers), "
                             "e.g. file:{},kbuild=/lib/modules/{}/build",
                             ref.text, ref.value, artifact.release);
  if (!artifact.slowprobe_builtin) {
    // Fail here, with what to do, rather than in the module build later.
    if (!config.empty() && !config_has(config, "CONFIG_MODULES=y"))
      return core::usage_error("kernel ref '{}': {} has no module support (CONFIG_MODULES is "
                               "off): enable it, or build with slowprobe built in (`probegate "
                               "kernels build --builtin-slowprobe`)",
                               ref.text, (local->kbuild / ".config").string());
    if (!fs::exists(local->kbuild / "scripts/mod/modpost"))
      return core::usage_error("kernel ref '{}': {} is not prepared for external modules (no "
                               "scripts/mod/modpost): run `make modules_prepare` there",
                               ref.text, local->kbuild.string());
    const auto kbuild_release =
        release_of_utsrelease_h(read_or_empty(local->kbuild / "include/generated/utsrelease.h"));
    if (kbuild_release && *kbuild_release != artifact.release)
      return core::usage_error("kernel ref '{}': the image is {} but kbuild dir {} is for {}; "
                               "give the kbuild dir of the same build",
                               ref.text, artifact.release, local->kbuild.string(), *kbuild_release);
    artifact.kbuild_dir = local->kbuild;
  } else if (!local->kbuild.empty()) {
    artifact.kbuild_dir = local->kbuild;
  }

  if (local->kind == "tree") {
    // An O= dir links to its source tree; an in-tree build is its own.
    std::error_code ec;
    const fs::path link = local->tree / "source";
    const fs::path source = fs::is_symlink(link, ec) ? fs::canonical(link, ec) : local->tree;
    auto git = source.empty() ? Result<std::optional<GitCheckout>>(std::nullopt)
                              : git_checkout(runner, source);
    if (!git)
      return std::unexpected(git.error());
    artifact.git = *git;
  }
  if (auto copied = copy_depmod_inputs(local->kbuild, entry / "modules"); !copied)
    return std::unexpected(copied.error());
  artifact.modules_dir = final_dir / "modules";
  if (auto saved =
          core::write_file_atomic(entry / k_artifact_file, nlohmann::json(artifact).dump(2));
      !saved)
    return std::unexpected(saved.error());
  if (auto published = core::publish_dir(entry, final_dir); !published)
    return std::unexpected(published.error());
  progress(fmt::format("kernel {} ({}{}) ready in {}", artifact.release, ref.text,
                       artifact.slowprobe_builtin ? ", slowprobe built in" : "",
                       final_dir.string()));
  return load_entry(final_dir, ref.text);
}

} // namespace probegate::kernel
