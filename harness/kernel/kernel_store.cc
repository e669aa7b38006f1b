// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/kernel_store.h"

#include "core/files.h"
#include "core/manifest.h"
#include "kernel/debian_index.h"
#include "kernel/knobs.h"
#include "kernel/local_kernel.h"
#include "kernel/source_build.h"
#include "kernel/vmlinux.h"

#include <chrono>
#include <fmt/ranges.h>
#include <gnu/libc-version.h>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

namespace probegate::kernel {

namespace fs = std::filesystem;
using core::Result;
using namespace std::chrono_literals;

namespace {

// The host's glibc minor version (36 on bookworm).
int host_glibc_minor() {
  const std::string_view version = gnu_get_libc_version(); // "2.36"
  const auto dot = version.find('.');
  int minor = 0;
  for (size_t i = dot + 1; dot != std::string_view::npos && i < version.size() &&
                           std::isdigit(static_cast<unsigned char>(version[i]));
       ++i)
    minor = minor * 10 + (version[i] - '0');
  return minor;
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
       {"packages", a.packages},
       {"debs_sha256", a.debs_sha256},
       {"suite", a.suite},
       {"knobs", a.knobs},
       {"slowprobe_builtin", a.slowprobe_builtin},
       {"git", a.git ? nlohmann::json(*a.git) : nlohmann::json()}};
}

void to_json(nlohmann::json& j, const GitCheckout& g) {
  j = {{"commit", g.commit},
       {"dirty", g.dirty},
       {"repository_url", g.repository_url},
       {"branch", g.branch}};
}

void from_json(const nlohmann::json& j, GitCheckout& g) {
  g.commit = j.at("commit").get<std::string>();
  g.dirty = j.value("dirty", false);
  g.repository_url = j.value("repository_url", "");
  g.branch = j.value("branch", "");
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
  a.debs_sha256 = j.value("debs_sha256", std::map<std::string, std::string>{});
  a.suite = j.value("suite", "");
  a.knobs = j.value("knobs", KnobSupport{});
  a.slowprobe_builtin = j.value("slowprobe_builtin", false);
  if (j.contains("git") && j.at("git").is_object())
    a.git = j.at("git").get<GitCheckout>();
}

KernelStore::KernelStore(proc::ProcessRunner& runner, fs::path cache, Progress progress)
    : m_runner(runner), m_apt(runner, cache), m_cache(std::move(cache)),
      m_progress(std::move(progress)) {}

fs::path KernelStore::entry_dir(const std::string& release) const {
  return kernels_dir(m_cache) / release;
}

fs::path kernels_dir(const fs::path& cache) {
  // An entry records absolute paths (artifact.json, the headers' Makefile),
  // so they must not go through a link that may vanish: a private cache
  // whose kernels/ links to the shared one (the e2e tests) would leave the
  // shared entry pointing into a deleted directory.
  std::error_code ec;
  auto real = fs::weakly_canonical(cache / "kernels", ec);
  return ec ? cache / "kernels" : real;
}

Result<KernelArtifact> load_artifact(const fs::path& dir) {
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

Result<KernelArtifact> KernelStore::load(const std::string& release) const {
  const fs::path dir = entry_dir(release);
  auto artifact = load_artifact(dir);
  if (artifact && artifact->knobs.empty()) { // an entry from before knob detection
    if (auto elf = core::read_file(artifact->vmlinux)) {
      artifact->knobs = detect_knobs(*elf);
      (void)core::write_file_atomic(dir / k_artifact_file, nlohmann::json(*artifact).dump(2));
    }
  }
  return artifact;
}

namespace {

// What goes into the guest is hashed in full; the headers tree (16,000
// files, which a module build would trip over) only by size.
bool hashed_fully(const std::string& path) {
  return path == "vmlinuz" || path == "vmlinux" || path.starts_with("modules/");
}

} // namespace

core::Status KernelStore::check_entry(const KernelArtifact& artifact) const {
  // Once per process and entry: a suite boots the same kernel many times.
  static std::mutex mutex;
  static std::set<fs::path> intact;
  const std::scoped_lock lock(mutex);
  if (intact.contains(artifact.dir))
    return {};
  // Paths recorded by an older probegate through a link that is gone.
  for (const fs::path& used : {artifact.vmlinux, artifact.vmlinuz, artifact.kbuild_dir})
    if (!used.empty() && !fs::exists(used))
      return core::infra_error("it names {}, which does not exist", used.string());
  if (!fs::exists(artifact.dir / core::k_manifest_file)) {
    // An entry from before manifests: trusted on first use, checked after.
    auto entries = core::compute_manifest(
        artifact.dir, {std::string(k_artifact_file), std::string(core::k_hash_memo_file)});
    if (!entries)
      return std::unexpected(entries.error());
    if (auto saved = core::write_file_atomic(artifact.dir / core::k_manifest_file,
                                             core::format_manifest(*entries));
        !saved)
      return saved;
  } else {
    auto memo = core::HashMemo::load(artifact.dir / core::k_hash_memo_file);
    if (auto checked = core::verify_manifest(artifact.dir, hashed_fully, &memo); !checked)
      return checked;
    memo.save();
  }
  intact.insert(artifact.dir);
  return {};
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

Result<std::vector<Offer>> KernelStore::available(bool refresh, bool offline,
                                                  std::vector<std::string>* unreachable) {
  return m_apt.offers(refresh, offline, unreachable);
}

Result<Offer> KernelStore::resolve(const KernelRef& ref) {
  if (ref.kind == KernelRef::Kind::file || ref.kind == KernelRef::Kind::tree ||
      ref.kind == KernelRef::Kind::build)
    return core::usage_error("kernel ref '{}' names local files, not a Debian release", ref.text);
  if (ref.kind == KernelRef::Kind::debian_abi) {
    if (auto cached = load(ref.value))
      return Offer{ref.value, cached->suite};
  }
  auto find = [&](const std::vector<Offer>& offers) -> std::optional<Offer> {
    std::optional<Offer> best;
    for (const auto& offer : offers) {
      const bool match = ref.kind == KernelRef::Kind::debian_abi ? offer.release == ref.value
                         : ref.kind == KernelRef::Kind::debian_line
                             ? line_of(offer.release) == ref.value
                             : offer.suite == ref.value;
      if (match && (!best || release_less(best->release, offer.release)))
        best = offer;
    }
    return best;
  };
  std::vector<std::string> unreachable;
  auto offers = available(false, false, &unreachable);
  if (!offers)
    return std::unexpected(offers.error());
  auto found = find(*offers);
  if (!found) { // an index may be stale: ask apt once more
    unreachable.clear();
    offers = available(true, false, &unreachable);
    if (!offers)
      return std::unexpected(offers.error());
    found = find(*offers);
  }
  if (found)
    return *found;
  std::vector<std::string> releases;
  std::set<std::string> suites;
  for (const auto& offer : *offers) {
    releases.push_back(offer.release);
    suites.insert(offer.suite);
  }
  const auto known = lines(releases);
  std::vector<std::string> in_line;
  for (const auto& r : releases)
    if (line_of(r) == line_of(ref.value))
      in_line.push_back(r);
  // A suite that could not be asked may hold the kernel: not the user's
  // mistake but the mirror's (exit 3, never 2).
  if (!unreachable.empty())
    return core::infra_error(
        "cannot resolve kernel '{}': Debian's {} could not be reached (the others, {}, do not "
        "have it); try again, or check the mirror",
        ref.text, fmt::join(unreachable, ", "), fmt::join(suites, ", "));
  return core::usage_error(
      "unknown kernel '{}': Debian's suites {} have the lines {}{}{}", ref.text,
      fmt::join(suites, ", "), fmt::join(known, ", "),
      in_line.empty() || ref.kind == KernelRef::Kind::debian_suite
          ? std::string()
          : fmt::format("; ABIs of {}: {}", line_of(ref.value), fmt::join(in_line, ", ")),
      unreachable.empty() ? std::string()
                          : fmt::format(" (not reachable now: {})", fmt::join(unreachable, ", ")));
}

Result<KernelArtifact> KernelStore::fetch(const KernelRef& ref) {
  if (ref.kind == KernelRef::Kind::file || ref.kind == KernelRef::Kind::tree)
    return fetch_local_kernel(ref, m_runner, m_cache, m_progress);
  if (ref.kind == KernelRef::Kind::build) { // built once (cached), then a tree: kernel
    SourceBuilder builder(m_runner, m_cache, core::data_root(), m_progress);
    SourceBuildRequest request{ref.value, {}, ref.builtin_slowprobe};
    for (const auto& fragment : ref.fragments)
      request.fragments.emplace_back(fragment);
    auto built = builder.build(request);
    if (!built)
      return std::unexpected(core::with_context(built.error(), ref.text));
    KernelRef tree = ref;
    tree.kind = KernelRef::Kind::tree;
    tree.value = built->string();
    auto artifact = fetch_local_kernel(tree, m_runner, m_cache, m_progress);
    if (artifact)
      artifact->ref = ref.text;
    return artifact;
  }
  auto offer = resolve(ref);
  if (!offer)
    return std::unexpected(offer.error());
  if (auto artifact = load(offer->release); artifact && check_entry(*artifact)) {
    artifact->ref = ref.text;
    return artifact;
  }
  auto lock = core::FileLock::acquire(m_cache / "locks" / ("kernel-" + offer->release + ".lock"));
  if (!lock)
    return std::unexpected(lock.error());
  if (auto artifact = load(offer->release)) { // another process may have fetched it meanwhile
    auto intact = check_entry(*artifact);
    if (intact) {
      artifact->ref = ref.text;
      return artifact;
    }
    // Damaged since it was published: set it aside in one rename (a reader
    // that has it open keeps its files), then fetch it again.
    m_progress(fmt::format("the cached kernel {} is damaged ({}): fetching it again",
                           offer->release, intact.error().message));
    auto graveyard = core::TempDir::create(m_cache / "tmp", "damaged-");
    if (!graveyard)
      return std::unexpected(graveyard.error());
    std::error_code ec;
    fs::rename(entry_dir(offer->release), graveyard->path() / "entry", ec);
    if (ec)
      return core::infra_error("cannot move the damaged {} aside: {}",
                               entry_dir(offer->release).string(), ec.message());
  }
  return download(ref, *offer);
}

Result<KernelArtifact> KernelStore::download(const KernelRef& ref, const Offer& offer) {
  const std::string& release = offer.release;
  auto tmp = core::TempDir::create(m_cache / "tmp", "kernel-");
  if (!tmp)
    return std::unexpected(tmp.error());
  const fs::path debs = tmp->path() / "debs";
  const fs::path entry = tmp->path() / "entry";
  const fs::path tree = entry / "tree";
  const fs::path image_root = tmp->path() / "image";
  fs::create_directories(debs);
  fs::create_directories(tree);

  auto headers_show = m_apt.capture(
      offer.suite, {"apt-cache", "show", "--no-all-versions", "linux-headers-" + release});
  if (!headers_show)
    return std::unexpected(core::with_context(headers_show.error(), "looking up the headers"));
  auto image_show = m_apt.capture(
      offer.suite, {"apt-cache", "show", "--no-all-versions", "linux-image-" + release});
  if (!image_show)
    return std::unexpected(core::with_context(image_show.error(), "looking up the image"));
  auto packages = packages_for(release, *headers_show);
  for (auto& part : image_parts(release, *image_show))
    packages.push_back(std::move(part));
  m_progress(
      fmt::format("downloading {} from {} ({})", release, offer.suite, fmt::join(packages, ", ")));
  if (auto got = download_debs(offer.suite, packages, debs, "downloading " + release); !got)
    return std::unexpected(core::with_context(got.error(), "downloading " + release));

  KernelArtifact artifact;
  artifact.ref = ref.text;
  artifact.release = release;
  artifact.line = line_of(release);
  artifact.suite = offer.suite;
  for (const auto& deb : fs::directory_iterator(debs)) {
    if (!deb.is_regular_file())
      continue;
    const std::string name = deb.path().filename().string(); // name_version_arch.deb
    auto sha = core::sha256_file(deb.path());
    if (!sha)
      return std::unexpected(sha.error());
    artifact.debs_sha256[name] = *sha;
    const auto first = name.find('_');
    const auto second = name.find('_', first + 1);
    const std::string package = name.substr(0, first);
    artifact.packages[package] = name.substr(first + 1, second - first - 1);
    const bool image_part = package.starts_with("linux-image-") ||
                            package.starts_with("linux-binary-") ||
                            package.starts_with("linux-base-");
    if (auto done = unpack_deb(deb.path(), image_part ? image_root : tree); !done)
      return std::unexpected(done.error());
  }
  m_progress(fmt::format("unpacking {}", release));

  // The image: keep the bzImage, extract vmlinux, keep depmod's inputs only.
  // bookworm ships boot/vmlinuz-<abi>; sid ships usr/lib/modules/<abi>/vmlinuz
  // (in linux-binary-<abi>), or vmlinuz.unsigned in linux-image-<abi>-unsigned.
  const fs::path modules_src = fs::exists(image_root / "usr/lib/modules" / release)
                                   ? image_root / "usr/lib/modules" / release
                                   : image_root / "lib/modules" / release;
  std::optional<std::string> bzimage;
  for (const auto& candidate : {image_root / "boot" / ("vmlinuz-" + release),
                                modules_src / "vmlinuz", modules_src / "vmlinuz.unsigned"}) {
    if (auto bytes = core::read_file(candidate)) {
      bzimage = std::move(*bytes);
      break;
    }
  }
  if (!bzimage)
    return core::infra_error("the packages of {} ({}) hold no vmlinuz", release,
                             fmt::join(packages, ", "));
  auto elf = extract_vmlinux(*bzimage);
  if (!elf)
    return std::unexpected(elf.error());
  artifact.knobs = detect_knobs(*elf);
  if (auto saved = core::write_file_atomic(entry / "vmlinuz", *bzimage); !saved)
    return std::unexpected(saved.error());
  if (auto saved = core::write_file_atomic(entry / "vmlinux", *elf); !saved)
    return std::unexpected(saved.error());
  const fs::path modules_dst = entry / "modules";
  fs::create_directories(modules_dst);
  std::error_code ec;
  for (const auto& file : fs::directory_iterator(modules_src, ec)) {
    if (file.is_regular_file() && file.path().filename().string().starts_with("modules."))
      fs::copy_file(file.path(), modules_dst / file.path().filename(), ec);
  }
  if (!fs::exists(modules_dst / "modules.builtin"))
    return core::infra_error("the packages of {} have no modules.builtin", release);

  const fs::path final_dir = entry_dir(release);
  const fs::path kbuild_dir = tree / "usr" / "src" / ("linux-headers-" + release);
  if (auto fixed = repoint_headers(final_dir / "tree", kbuild_dir); !fixed)
    return std::unexpected(fixed.error());
  if (auto wrapped = adapt_kbuild_helpers(offer.suite, tree, final_dir / "tree", debs); !wrapped)
    return std::unexpected(wrapped.error());
  artifact.dir = final_dir;
  artifact.vmlinuz = final_dir / "vmlinuz";
  artifact.vmlinux = final_dir / "vmlinux";
  artifact.modules_dir = final_dir / "modules";
  artifact.kbuild_dir = final_dir / fs::relative(kbuild_dir, entry);
  if (auto saved =
          core::write_file_atomic(entry / k_artifact_file, nlohmann::json(artifact).dump(2));
      !saved)
    return std::unexpected(saved.error());
  // Last: what the entry holds now is what every later use must find.
  auto manifest = core::compute_manifest(entry, {std::string(k_artifact_file)});
  if (!manifest)
    return std::unexpected(manifest.error());
  if (auto saved =
          core::write_file_atomic(entry / core::k_manifest_file, core::format_manifest(*manifest));
      !saved)
    return std::unexpected(saved.error());
  if (auto published = core::publish_dir(entry, final_dir); !published)
    return std::unexpected(published.error());
  m_progress(fmt::format("kernel {} ready in {}", release, final_dir.string()));
  return load(release);
}

core::Status KernelStore::download_debs(const std::string& suite,
                                        const std::vector<std::string>& packages,
                                        const fs::path& into, std::string what) {
  auto argv = std::vector<std::string>{"apt-get", "download", "-q"};
  argv.insert(argv.end(), packages.begin(), packages.end());
  auto command = m_apt.command(suite, argv);
  command.cwd = into;
  return apt_download(m_runner, command, std::move(what));
}

core::Status KernelStore::unpack_deb(const fs::path& deb, const fs::path& into) {
  core::Command unpack;
  unpack.argv = {"dpkg-deb", "-x", deb.string(), into.string()};
  if (auto done = proc::run_checked(m_runner, unpack); !done)
    return std::unexpected(done.error());
  return {};
}

// Kbuild's helper programs (fixdep, modpost, objtool) of a newer suite need
// a newer glibc than the host's (sid's ask for 2.38, bookworm has 2.36).
// Each such program is renamed and replaced by a script that starts it
// through the loader of that suite's own libc6, unpacked beside it; the
// host's libraries (libelf, zlib) stay on the search path after it.
core::Status KernelStore::adapt_kbuild_helpers(const std::string& suite, const fs::path& tree,
                                               const fs::path& final_tree, const fs::path& debs) {
  const int host_minor = host_glibc_minor();
  std::vector<fs::path> needy;
  std::error_code ec;
  for (const auto& file : fs::recursive_directory_iterator(tree / "usr/lib", ec)) {
    if (!file.is_regular_file() || file.is_symlink() ||
        (file.status().permissions() & fs::perms::owner_exec) == fs::perms::none)
      continue;
    auto bytes = core::read_file(file.path());
    if (!bytes)
      return std::unexpected(bytes.error());
    if (auto minor = glibc_minor_needed(*bytes); minor && *minor > host_minor)
      needy.push_back(file.path());
  }
  if (needy.empty())
    return {};
  m_progress(fmt::format("{} kbuild helpers need a newer glibc than the host's 2.{}: using "
                         "{}'s libc6",
                         needy.size(), host_minor, suite));
  const fs::path libc_debs = debs / "libc";
  fs::create_directories(libc_debs);
  if (auto got = download_debs(suite, {"libc6"}, libc_debs, "downloading " + suite + "'s libc6");
      !got)
    return got;
  for (const auto& deb : fs::directory_iterator(libc_debs))
    if (auto done = unpack_deb(deb.path(), tree / "libc"); !done)
      return done;
  std::optional<fs::path> loader;
  for (const auto* path : {"usr/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2",
                           "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"}) {
    if (fs::exists(tree / "libc" / path)) {
      loader = final_tree / "libc" / path;
      break;
    }
  }
  if (!loader)
    return core::infra_error("{}'s libc6 holds no ld-linux-x86-64.so.2", suite);
  const std::string libraries = fmt::format("{}:{}:/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu",
                                            (final_tree / "libc/usr/lib/x86_64-linux-gnu").string(),
                                            (final_tree / "libc/lib/x86_64-linux-gnu").string());
  for (const auto& program : needy) {
    fs::path real = program;
    real += ".glibc-" + suite;
    fs::rename(program, real, ec);
    if (ec)
      return core::infra_error("cannot rename {}: {}", program.string(), ec.message());
    const fs::path final_real = final_tree / fs::relative(real, tree);
    const std::string script =
        fmt::format("#!/bin/sh\n# probegate: {} needs {}'s glibc\nexec {} --library-path {} {} "
                    "\"$@\"\n",
                    program.filename().string(), suite, core::shell_quote(loader->string()),
                    core::shell_quote(libraries), core::shell_quote(final_real.string()));
    if (auto saved = core::write_file_atomic(program, script); !saved)
      return saved;
    fs::permissions(program,
                    fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                        fs::perms::others_read | fs::perms::others_exec,
                    ec);
  }
  return {};
}

} // namespace probegate::kernel
