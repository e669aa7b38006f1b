// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/source_build.h"

#include "core/files.h"
#include "core/progress.h"
#include "kernel/debian_apt.h"
#include "kernel/debian_index.h"

#include <algorithm>
#include <chrono>
#include <fmt/ranges.h>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

namespace probegate::kernel {

namespace fs = std::filesystem;
using core::Result;
using Clock = std::chrono::steady_clock;

namespace {

// Bumped when the way a build is made changes, so old entries are not reused.
constexpr std::string_view k_recipe = "probegate-kernel-build-1";
constexpr std::string_view k_complete = "complete.json"; // written last
constexpr std::string_view k_compiler = "CC=gcc-12";     // as ModuleBuilder builds modules
constexpr auto k_progress_every = std::chrono::seconds(30);

bool is_source_file(const fs::path& p) {
  return p.extension() == ".c" || p.extension() == ".h";
}

// "CONFIG_X=..." or "# CONFIG_X is not set" for `option` in a .config.
std::string config_line(std::string_view config, std::string_view option) {
  const std::string set = std::string(option) + "=";
  const std::string unset = "# " + std::string(option) + " is not set";
  size_t start = 0;
  while (start < config.size()) {
    size_t end = config.find('\n', start);
    if (end == std::string_view::npos)
      end = config.size();
    const std::string_view line = config.substr(start, end - start);
    if (line.starts_with(set) || line == unset)
      return std::string(line);
    start = end + 1;
  }
  return {};
}

std::string sanitize(std::string_view version) {
  std::string out(version);
  std::ranges::replace(out, ':', '_'); // make cannot take ':' in paths
  std::ranges::replace(out, '/', '_');
  return out;
}

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r'))
    text.pop_back();
  return text;
}

} // namespace

bool is_source_package(std::string_view source) {
  static const std::regex package(R"(linux-source-\d+\.\d+)");
  return std::regex_match(source.begin(), source.end(), package);
}

namespace {

// Calls `each(line)` for every line of `text`.
template <typename F> void for_each_line(std::string_view text, F each) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos)
      end = text.size();
    each(std::string(text.substr(start, end - start)));
    start = end + 1;
  }
}

const std::regex& set_y_line() {
  static const std::regex line(R"(^\s*(CONFIG_[A-Za-z0-9_]+)=y\s*$)");
  return line;
}

// "# CONFIG_X is not set" or CONFIG_X=<not y>: withdraws an earlier =y.
const std::regex& other_value_line() {
  static const std::regex line(
      R"(^\s*(?:# (CONFIG_[A-Za-z0-9_]+) is not set|(CONFIG_[A-Za-z0-9_]+)=(?!y\s*$).*)$)");
  return line;
}

} // namespace

std::vector<std::string> options_set_y(std::string_view fragment) {
  std::vector<std::string> out;
  for_each_line(fragment, [&](const std::string& line) {
    std::smatch match;
    if (std::regex_match(line, match, set_y_line()))
      out.push_back(match[1]);
  });
  return out;
}

std::vector<std::string> dropped_options(const std::vector<Fragment>& fragments,
                                         std::string_view config) {
  // The last word on an option wins, as in merge_config.sh.
  std::map<std::string, std::string> wanted_by;
  std::vector<std::string> order;
  for (const auto& fragment : fragments) {
    for_each_line(fragment.content, [&](const std::string& line) {
      std::smatch match;
      if (std::regex_match(line, match, set_y_line())) {
        if (!wanted_by.contains(match[1]))
          order.push_back(match[1]);
        wanted_by[match[1]] = fragment.name;
      } else if (std::regex_match(line, match, other_value_line())) {
        wanted_by.erase(match[1].matched ? match[1].str() : match[2].str());
      }
    });
  }
  std::vector<std::string> out;
  for (const auto& option : order) {
    const auto it = wanted_by.find(option);
    if (it == wanted_by.end())
      continue;
    const std::string have = config_line(config, option);
    if (have == option + "=y")
      continue;
    out.push_back(fmt::format("{}=y ({}): the final .config has {}", option, it->second,
                              have.empty() ? "no such option" : "'" + have + "'"));
  }
  return out;
}

std::string listing_identity(std::vector<FileStamp> files) {
  std::ranges::sort(files, {}, &FileStamp::path);
  std::string all;
  for (const auto& f : files)
    all += fmt::format("{}\t{}\t{}\n", f.path, f.size, f.mtime_ns);
  return core::sha256_hex(all);
}

std::string build_key(std::string_view source_identity, const std::vector<Fragment>& fragments,
                      bool builtin_slowprobe, std::string_view slowprobe_hash) {
  std::string all = fmt::format("{}\nsource {}\n", k_recipe, source_identity);
  for (const auto& fragment : fragments)
    all += fmt::format("fragment {}\n", core::sha256_hex(fragment.content));
  if (builtin_slowprobe)
    all += fmt::format("builtin-slowprobe {}\n", slowprobe_hash);
  return core::sha256_hex(all);
}

bool kbuild_step(std::string_view line) {
  // Two spaces, a word in capitals ("CC", "HOSTCC", "LD"), maybe " [M]",
  // then spaces and what it made.
  if (!line.starts_with("  ") || line.size() < 4)
    return false;
  size_t i = 2;
  while (i < line.size() && ((line[i] >= 'A' && line[i] <= 'Z') ||
                             (line[i] >= '0' && line[i] <= '9') || line[i] == '_'))
    ++i;
  if (i < 4 || line[2] < 'A' || line[2] > 'Z')
    return false;
  if (line.substr(i).starts_with(" [M]"))
    i += 4;
  const size_t target = line.find_first_not_of(' ', i);
  return target != std::string_view::npos && target > i;
}

std::string hook_misc_makefile(std::string_view makefile) {
  std::string out(makefile);
  if (!out.empty() && out.back() != '\n')
    out.push_back('\n');
  out += "obj-$(CONFIG_SLOWPROBE)\t\t+= slowprobe/\n";
  return out;
}

Result<std::string> hook_misc_kconfig(std::string_view kconfig) {
  const auto last = kconfig.rfind("endmenu");
  if (last == std::string_view::npos)
    return core::infra_error("drivers/misc/Kconfig has no endmenu to hook slowprobe in before");
  std::string out(kconfig.substr(0, last));
  out += "source \"drivers/misc/slowprobe/Kconfig\"\n";
  out += kconfig.substr(last);
  return out;
}

SourceBuilder::SourceBuilder(proc::ProcessRunner& runner, fs::path cache, fs::path data,
                             std::function<void(std::string_view)> progress,
                             const core::LiveOutput& live)
    : m_runner(runner), m_cache(std::move(cache)), m_data(std::move(data)),
      m_progress(std::move(progress)), m_live(live) {}

Result<std::string> SourceBuilder::capture(const core::Command& command, bool* ok) {
  std::string out;
  auto ran = m_runner.run(command, [&](std::string_view line) {
    out.append(line).push_back('\n');
    return proc::LineAction::keep_going;
  });
  if (!ran)
    return std::unexpected(ran.error());
  if (ok)
    *ok = ran->ok();
  else if (!ran->ok())
    return core::infra_error("`{}` failed: {}", core::to_shell(command), ran->tail);
  return out;
}

Result<fs::path> SourceBuilder::package_source(const std::string& package, std::string* identity) {
  const fs::path sources = m_cache / "sources";
  core::Command show;
  show.argv = {"apt-cache", "show", "--no-all-versions", package};
  bool known = false;
  auto shown = capture(show, &known);
  if (!shown && shown.error().kind == core::ErrorKind::interrupted)
    return std::unexpected(shown.error());
  std::string version;
  if (shown && known) {
    static const std::regex field(R"((^|\n)Version: ([^\n]+))");
    std::smatch match;
    if (std::regex_search(*shown, match, field))
      version = match[2];
  }
  if (version.empty()) {
    // No apt (or it does not know the package): a cached copy still builds.
    std::string newest;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(sources, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with(package + "_") && fs::exists(entry.path() / "Makefile") &&
          (newest.empty() || release_less(newest, name)))
        newest = name;
    }
    if (newest.empty())
      return core::usage_error("--source {}: the host's apt has no package {} (`apt-cache policy "
                               "{}`); bookworm has linux-source-6.1 and linux-source-6.12, or "
                               "give a kernel source dir",
                               package, package, package);
    m_progress(fmt::format("apt does not know {}; using the cached {}", package, newest));
    *identity = "package " + newest;
    return sources / newest;
  }
  const std::string name = package + "_" + sanitize(version);
  *identity = "package " + name;
  const fs::path dir = sources / name;
  if (fs::exists(dir / "Makefile"))
    return dir;
  auto lock = core::FileLock::acquire(m_cache / "locks" / ("source-" + name + ".lock"));
  if (!lock)
    return std::unexpected(lock.error());
  if (fs::exists(dir / "Makefile"))
    return dir;

  auto tmp = core::TempDir::create(m_cache / "tmp", "source-");
  if (!tmp)
    return std::unexpected(tmp.error());
  const fs::path debs = tmp->path() / "deb";
  const fs::path unpacked = tmp->path() / "unpacked";
  const fs::path tree = tmp->path() / "tree";
  fs::create_directories(debs);
  fs::create_directories(tree);
  m_progress(fmt::format("downloading {} {} with the host's apt", package, version));
  core::Command download;
  download.argv = {"apt-get", "download", "-q", package + "=" + version};
  download.cwd = debs;
  download.timeout = std::chrono::minutes(30);
  if (auto got = apt_download(m_runner, download, "downloading " + package, m_live); !got)
    return std::unexpected(core::with_context(got.error(), "downloading " + package));
  fs::path deb;
  for (const auto& entry : fs::directory_iterator(debs))
    if (entry.path().extension() == ".deb")
      deb = entry.path();
  if (deb.empty())
    return core::infra_error("apt-get download {} left no .deb in {}", package, debs.string());
  core::Command unpack;
  unpack.argv = {"dpkg-deb", "-x", deb.string(), unpacked.string()};
  unpack.timeout = std::chrono::minutes(10);
  if (auto done = proc::run_checked(m_runner, unpack); !done)
    return std::unexpected(done.error());
  fs::path tarball;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(unpacked / "usr/src", ec))
    if (entry.path().filename().string().starts_with(package + ".tar"))
      tarball = entry.path();
  if (tarball.empty())
    return core::infra_error("{} holds no usr/src/{}.tar.*", deb.string(), package);
  m_progress(fmt::format("unpacking {}", tarball.filename().string()));
  core::Command untar;
  untar.argv = {"tar", "-xf", tarball.string(), "-C", tree.string()};
  untar.timeout = std::chrono::minutes(30);
  if (auto done = proc::run_checked(m_runner, untar); !done)
    return std::unexpected(done.error());
  fs::path top;
  for (const auto& entry : fs::directory_iterator(tree))
    if (entry.is_directory())
      top = entry.path();
  if (top.empty() || !fs::exists(top / "Makefile"))
    return core::infra_error("{} holds no kernel source tree", tarball.string());
  if (auto published = core::publish_dir(top, dir); !published)
    return std::unexpected(published.error());
  return dir;
}

Result<std::string> SourceBuilder::dir_identity(const fs::path& dir) {
  // A git checkout: its commit and what differs from it (tracked changes by
  // content, untracked files by size and mtime).
  core::Command top;
  top.argv = {"git", "-C", dir.string(), "rev-parse", "--show-toplevel", "HEAD"};
  bool is_git = false;
  auto top_out = capture(top, &is_git); // fails where git is not installed: not a checkout
  if (!top_out && top_out.error().kind == core::ErrorKind::interrupted)
    return std::unexpected(top_out.error());
  std::error_code ec;
  if (top_out && is_git) {
    const std::string text = *top_out;
    const auto newline = text.find('\n');
    const fs::path toplevel = text.substr(0, newline);
    if (fs::equivalent(toplevel, dir, ec)) {
      const std::string head = trim(text.substr(newline + 1));
      core::Command status;
      status.argv = {"git", "-C", dir.string(), "status", "--porcelain"};
      auto status_out = capture(status);
      if (!status_out)
        return std::unexpected(status_out.error());
      core::Command diff;
      diff.argv = {"git", "-C", dir.string(), "diff", "HEAD"};
      auto diff_out = capture(diff);
      if (!diff_out)
        return std::unexpected(diff_out.error());
      std::vector<FileStamp> untracked;
      size_t start = 0;
      const std::string& st = *status_out;
      while (start < st.size()) {
        size_t end = st.find('\n', start);
        if (end == std::string::npos)
          end = st.size();
        const std::string line = st.substr(start, end - start);
        if (line.starts_with("?? ")) {
          const fs::path path = dir / line.substr(3);
          auto stamp = [&](const fs::path& p) {
            const auto time = fs::last_write_time(p, ec);
            untracked.push_back(
                {fs::relative(p, dir, ec).string(),
                 fs::is_regular_file(p, ec) ? fs::file_size(p, ec) : 0,
                 static_cast<std::int64_t>(
                     std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch())
                         .count())});
          };
          if (fs::is_directory(path, ec)) {
            for (const auto& entry : fs::recursive_directory_iterator(path, ec))
              stamp(entry.path());
          } else {
            stamp(path);
          }
        }
        start = end + 1;
      }
      return fmt::format("git {} {} {} {} {}", dir.string(), head, core::sha256_hex(*status_out),
                         core::sha256_hex(*diff_out), listing_identity(std::move(untracked)));
    }
  }
  std::vector<FileStamp> files;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec)
      return core::infra_error("cannot list {}: {}", dir.string(), ec.message());
    if (it->path().filename() == ".git") {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec))
      continue;
    const auto time = it->last_write_time(ec);
    files.push_back({fs::relative(it->path(), dir, ec).string(), it->file_size(ec),
                     static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                   time.time_since_epoch())
                                                   .count())});
  }
  return fmt::format("dir {} {}", dir.string(), listing_identity(std::move(files)));
}

core::Status SourceBuilder::copy_with_slowprobe(const fs::path& source, const fs::path& copy,
                                                const fs::path& logs) {
  std::error_code ec;
  fs::remove_all(copy, ec);
  m_progress(fmt::format("copying {} (hard links) to build slowprobe in", source.string()));
  core::Command link;
  link.argv = {"cp", "-al", source.string(), copy.string()};
  link.log_path = logs / "copy.log";
  link.timeout = std::chrono::minutes(30);
  auto linked = m_runner.run(link);
  if (!linked)
    return std::unexpected(linked.error());
  if (!linked->ok()) { // another file system: hard links cannot cross it
    fs::remove_all(copy, ec);
    m_progress(fmt::format("hard links failed ({}); copying instead", trim(linked->tail)));
    core::Command full = link;
    full.argv = {"cp", "-a", source.string(), copy.string()};
    if (auto copied = proc::run_checked(m_runner, full); !copied)
      return std::unexpected(copied.error());
  }
  // Every file we change is replaced (write_file_atomic renames a new file
  // over the link), never written through: the source tree stays untouched.
  const fs::path misc = copy / "drivers/misc";
  auto makefile = core::read_file(misc / "Makefile");
  if (!makefile)
    return core::infra_error("{} has no drivers/misc/Makefile", source.string());
  auto kconfig = core::read_file(misc / "Kconfig");
  if (!kconfig)
    return core::infra_error("{} has no drivers/misc/Kconfig", source.string());
  auto hooked = hook_misc_kconfig(*kconfig);
  if (!hooked)
    return std::unexpected(hooked.error());
  if (auto saved = core::write_file_atomic(misc / "Makefile", hook_misc_makefile(*makefile));
      !saved)
    return saved;
  if (auto saved = core::write_file_atomic(misc / "Kconfig", *hooked); !saved)
    return saved;
  const fs::path module_src = m_data / "guest-modules" / "slowprobe";
  const fs::path dest = misc / "slowprobe";
  fs::create_directories(dest, ec);
  for (const auto& entry : fs::directory_iterator(module_src, ec)) {
    if (!entry.is_regular_file() || !is_source_file(entry.path()))
      continue;
    auto text = core::read_file(entry.path());
    if (!text)
      return std::unexpected(text.error());
    if (auto saved = core::write_file_atomic(dest / entry.path().filename(), *text); !saved)
      return saved;
  }
  if (auto saved = core::write_file_atomic(
          dest / "Makefile", "# SPDX-License-Identifier: GPL-2.0-only\n# Added by probegate "
                             "kernels build --builtin-slowprobe\nobj-$(CONFIG_SLOWPROBE) += "
                             "slowprobe.o\n");
      !saved)
    return saved;
  return core::write_file_atomic(dest / "Kconfig",
                                 "# SPDX-License-Identifier: GPL-2.0-only\n"
                                 "config SLOWPROBE\n"
                                 "\ttristate \"probegate slow-probe test driver\"\n"
                                 "\tdepends on PCI\n"
                                 "\thelp\n"
                                 "\t  probegate's test driver (guest-modules/slowprobe), built\n"
                                 "\t  in by `probegate kernels build --builtin-slowprobe`.\n");
}

core::Status SourceBuilder::make(const fs::path& source, const fs::path& build,
                                 const std::vector<std::string>& targets, const fs::path& log,
                                 const Steps& steps) {
  core::Command make;
  make.argv = {"make", "-C", source.string(), "O=" + build.string(), std::string(k_compiler)};
  const unsigned jobs = std::max(1U, std::thread::hardware_concurrency());
  make.argv.push_back(fmt::format("-j{}", jobs));
  make.argv.insert(make.argv.end(), targets.begin(), targets.end());
  make.log_path = log;
  make.timeout = std::chrono::hours(4);
  const auto started = Clock::now();
  auto last_report = started;
  // On a terminal the live line counts kbuild's steps; in a log, a line
  // every k_progress_every says the build is still going.
  core::ProgressLine live(steps.what, core::ProgressUnit::steps, steps.expected,
                          steps.expected.has_value(), m_live);
  std::uint64_t counted = 0;
  auto ran = m_runner.run(make, [&](std::string_view line) {
    if (kbuild_step(line))
      live.update(++counted);
    if (const auto now = Clock::now(); !live.live() && now - last_report >= k_progress_every) {
      last_report = now;
      m_progress(fmt::format(
          "building… {} s: {}",
          std::chrono::duration_cast<std::chrono::seconds>(now - started).count(), line));
    }
    return proc::LineAction::keep_going;
  });
  if (!ran)
    return std::unexpected(ran.error());
  if (!ran->ok())
    return core::infra_error("`{}` failed ({}); the build log is {}; its last lines:\n{}",
                             core::to_shell(make),
                             ran->timed_out ? "timed out"
                             : ran->signal  ? fmt::format("signal {}", ran->signal)
                                            : fmt::format("exit {}", ran->exit_code),
                             log.string(), ran->tail);
  return {};
}

namespace {

// A kernel source dir given by the user, checked for what an O= build needs.
Result<fs::path> checked_source_dir(const std::string& given) {
  std::error_code ec;
  fs::path source = fs::absolute(given).lexically_normal();
  if (source.has_parent_path() && source.filename().empty())
    source = source.parent_path();
  if (!fs::is_directory(source, ec))
    return core::usage_error("--source {}: no such directory; give a kernel source dir or a "
                             "Debian package linux-source-X.Y (bookworm: 6.1, 6.12)",
                             given);
  if (!fs::exists(source / "scripts/kconfig/merge_config.sh"))
    return core::usage_error("--source {}: not a kernel source tree (no "
                             "scripts/kconfig/merge_config.sh)",
                             source.string());
  if (fs::exists(source / ".config") || fs::exists(source / "include/config"))
    return core::usage_error("--source {}: the tree has been built in place (it has a "
                             ".config); out-of-tree builds need a clean tree: run `make "
                             "mrproper` there, or give a clean copy",
                             source.string());
  return source;
}

} // namespace

Result<SourceBuilder::Inputs>
SourceBuilder::config_inputs(const std::vector<fs::path>& user_fragments) {
  // Ours (kernel-configs/*.config, sorted), then the user's in the order given.
  Inputs inputs;
  std::error_code ec;
  std::vector<fs::path> ours;
  for (const auto& entry : fs::directory_iterator(m_data / "kernel-configs", ec))
    if (entry.path().extension() == ".config")
      ours.push_back(entry.path());
  std::ranges::sort(ours);
  if (ours.empty())
    return core::infra_error("no config fragments in {}", (m_data / "kernel-configs").string());
  for (const auto& path : ours) {
    auto text = core::read_file(path);
    if (!text)
      return std::unexpected(text.error());
    inputs.fragments.push_back({"kernel-configs/" + path.filename().string(), *text});
    inputs.files.push_back(path);
  }
  for (const auto& path : user_fragments) {
    const fs::path absolute = fs::absolute(path).lexically_normal();
    auto text = core::read_file(absolute);
    if (!text)
      return core::usage_error("--fragment {}: {}", path.string(), text.error().message);
    inputs.fragments.push_back({path.string(), *text});
    inputs.files.push_back(absolute);
  }
  return inputs;
}

namespace {

// The kbuild steps a finished build's log holds: the next build of the same
// source is taken to need as many, for its ETA.
std::optional<std::uint64_t> steps_in_log(const fs::path& log) {
  auto text = core::read_file(log);
  if (!text)
    return std::nullopt;
  std::uint64_t steps = 0;
  for (size_t start = 0; start < text->size();) {
    const size_t end = std::min(text->find('\n', start), text->size());
    steps += kbuild_step(std::string_view(*text).substr(start, end - start)) ? 1 : 0;
    start = end + 1;
  }
  return steps > 0 ? std::optional(steps) : std::nullopt;
}

} // namespace

core::Status SourceBuilder::configure_and_make(const fs::path& src, const fs::path& build_dir,
                                               const fs::path& logs, const Inputs& inputs,
                                               std::string_view label,
                                               std::optional<std::uint64_t> expected) {
  std::vector<std::string> names;
  for (const auto& fragment : inputs.fragments)
    names.push_back(fragment.name);
  m_progress(fmt::format("configuring {}: tinyconfig + {}", label, fmt::join(names, ", ")));
  // The live line names the tree by its last component, the messages in full.
  std::string_view trimmed = label;
  while (trimmed.size() > 1 && trimmed.ends_with('/'))
    trimmed.remove_suffix(1);
  const std::string tree = fs::path(trimmed).filename().string();
  const Steps configuring{fmt::format("configuring {}", tree), std::nullopt};
  if (auto made = make(src, build_dir, {"tinyconfig"}, logs / "tinyconfig.log", configuring); !made)
    return made;
  core::Command merge;
  merge.argv = {"sh",
                (src / "scripts/kconfig/merge_config.sh").string(),
                "-m",
                "-O",
                build_dir.string(),
                (build_dir / ".config").string()};
  for (const auto& file : inputs.files)
    merge.argv.push_back(file.string());
  merge.cwd = build_dir;
  merge.log_path = logs / "merge_config.log";
  if (auto merged = proc::run_checked(m_runner, merge); !merged)
    return std::unexpected(merged.error());
  if (auto made = make(src, build_dir, {"olddefconfig"}, logs / "olddefconfig.log", configuring);
      !made)
    return made;
  auto config = core::read_file(build_dir / ".config");
  if (!config)
    return core::infra_error("make olddefconfig wrote no {}", (build_dir / ".config").string());
  if (const auto dropped = dropped_options(inputs.fragments, *config); !dropped.empty())
    return core::usage_error("Kconfig dropped {} option(s) the fragments set to y (a dependency "
                             "is off, or the option does not exist in this kernel; `make O={} "
                             "menuconfig` shows why):\n  {}",
                             dropped.size(), build_dir.string(), fmt::join(dropped, "\n  "));

  m_progress(fmt::format("building vmlinux, bzImage and modules of {} in {} (log: {})", label,
                         build_dir.string(), (logs / "build.log").string()));
  if (auto made = make(src, build_dir, {"vmlinux", "bzImage", "modules"}, logs / "build.log",
                       {fmt::format("building {}", tree), expected});
      !made)
    return made;
  for (const auto* output : {"vmlinux", "arch/x86/boot/bzImage", "include/config/kernel.release"})
    if (!fs::exists(build_dir / output))
      return core::infra_error("the build made no {} (log: {})", (build_dir / output).string(),
                               (logs / "build.log").string());
  return {};
}

std::optional<std::uint64_t> SourceBuilder::previous_build_steps(std::string_view requested,
                                                                 const fs::path& source) const {
  // The same package (any version), or the same source dir.
  const bool package = is_source_package(requested) && source.parent_path() == m_cache / "sources";
  std::optional<std::uint64_t> steps;
  fs::file_time_type newest{};
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(m_cache / "builds", ec)) {
    const auto finished = fs::last_write_time(entry.path() / k_complete, ec);
    auto inputs = core::read_file(entry.path() / "inputs.json");
    if (ec || !inputs || (steps && finished <= newest))
      continue;
    const auto j = nlohmann::json::parse(*inputs, nullptr, false);
    const bool same = j.is_object() && (package ? j.value("source", "") == requested
                                                : j.value("source_dir", "") == source.string());
    if (!same)
      continue;
    if (auto counted = steps_in_log(entry.path() / "logs/build.log")) {
      steps = counted;
      newest = finished;
    }
  }
  return steps;
}

Result<fs::path> SourceBuilder::build(const SourceBuildRequest& request) {
  std::error_code ec;
  // The source: Debian's package (unpacked once) or the user's dir.
  fs::path source;
  std::string identity;
  if (is_source_package(request.source) && !fs::exists(request.source, ec)) {
    auto got = package_source(request.source, &identity);
    if (!got)
      return std::unexpected(got.error());
    source = *got;
  } else {
    auto checked = checked_source_dir(request.source);
    if (!checked)
      return std::unexpected(checked.error());
    source = *checked;
    auto got = dir_identity(source);
    if (!got)
      return std::unexpected(got.error());
    identity = *got;
  }

  // The config inputs: ours, the user's, and slowprobe's own symbol when it
  // is built in (its file is written into the entry below).
  auto inputs = config_inputs(request.fragments);
  if (!inputs)
    return std::unexpected(inputs.error());
  std::string slowprobe_hash;
  if (request.builtin_slowprobe) {
    inputs->fragments.push_back({"--builtin-slowprobe", "CONFIG_SLOWPROBE=y\n"});
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(m_data / "guest-modules/slowprobe", ec))
      if (entry.is_regular_file() && is_source_file(entry.path()))
        files.push_back(entry.path());
    std::ranges::sort(files);
    if (files.empty())
      return core::infra_error("no slowprobe sources in {}",
                               (m_data / "guest-modules/slowprobe").string());
    std::string all;
    for (const auto& file : files) {
      auto text = core::read_file(file);
      if (!text)
        return std::unexpected(text.error());
      all += file.filename().string() + '\0' + core::sha256_hex(*text) + '\n';
    }
    slowprobe_hash = core::sha256_hex(all);
  }

  const std::string key =
      build_key(identity, inputs->fragments, request.builtin_slowprobe, slowprobe_hash)
          .substr(0, 16);
  const fs::path entry = m_cache / "builds" / key;
  const fs::path build_dir = entry / "build";
  const fs::path logs = entry / "logs";
  if (fs::exists(entry / k_complete)) {
    m_progress(fmt::format("cached build of {} in {}", request.source, build_dir.string()));
    return build_dir;
  }
  auto lock = core::FileLock::acquire(m_cache / "locks" / ("build-" + key + ".lock"));
  if (!lock)
    return std::unexpected(lock.error());
  if (fs::exists(entry / k_complete))
    return build_dir;
  // Built in place (the O= dir records absolute paths, so it cannot be
  // renamed after); the marker, written last, is what makes it an entry.
  // An interrupted build is resumed: kbuild rebuilds what is out of date.
  if (fs::exists(entry))
    m_progress(fmt::format("resuming the unfinished build in {}", entry.string()));
  fs::create_directories(build_dir, ec);
  fs::create_directories(logs, ec);
  if (ec)
    return core::infra_error("cannot create {}: {}", build_dir.string(), ec.message());
  nlohmann::json described = {{"source", request.source},
                              {"source_dir", source.string()},
                              {"identity", identity},
                              {"builtin_slowprobe", request.builtin_slowprobe}};
  for (const auto& fragment : inputs->fragments)
    described["fragments"].push_back(fragment.name);
  if (auto saved = core::write_file_atomic(entry / "inputs.json", described.dump(2)); !saved)
    return std::unexpected(saved.error());

  fs::path src = source;
  if (request.builtin_slowprobe) {
    src = entry / "src";
    if (auto copied = copy_with_slowprobe(source, src, logs); !copied)
      return std::unexpected(copied.error());
    const fs::path own = entry / "slowprobe.config";
    if (auto saved = core::write_file_atomic(own, "CONFIG_SLOWPROBE=y\n"); !saved)
      return std::unexpected(saved.error());
    inputs->files.push_back(own);
  }

  const auto started = Clock::now();
  if (auto made = configure_and_make(src, build_dir, logs, *inputs, request.source,
                                     previous_build_steps(request.source, source));
      !made)
    return std::unexpected(made.error());
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  const nlohmann::json done = {
      {"seconds", seconds},
      {"release", trim(*core::read_file(build_dir / "include/config/kernel.release"))},
      {"vmlinux_bytes", fs::file_size(build_dir / "vmlinux", ec)}};
  if (auto saved = core::write_file_atomic(entry / k_complete, done.dump(2)); !saved)
    return std::unexpected(saved.error());
  m_progress(fmt::format("built {} in {:.0f} s", request.source, seconds));
  return build_dir;
}

Result<fs::path> SourceBuilder::build_incremental(const fs::path& source, const fs::path& build_dir,
                                                  const std::vector<fs::path>& fragments) {
  auto checked = checked_source_dir(source.string());
  if (!checked)
    return std::unexpected(checked.error());
  auto inputs = config_inputs(fragments);
  if (!inputs)
    return std::unexpected(inputs.error());
  const fs::path logs = build_dir / "probegate-logs";
  std::error_code ec;
  fs::create_directories(logs, ec);
  if (ec)
    return core::infra_error("cannot create {}: {}", logs.string(), ec.message());
  auto lock = core::FileLock::acquire(logs / "build.lock");
  if (!lock)
    return std::unexpected(lock.error());
  const auto started = Clock::now();
  // The last build in this dir (bisect-run's previous step) sets the ETA.
  if (auto made = configure_and_make(*checked, build_dir, logs, *inputs, checked->string(),
                                     steps_in_log(logs / "build.log"));
      !made)
    return std::unexpected(made.error());
  m_progress(fmt::format("built {} in {:.0f} s", checked->string(),
                         std::chrono::duration<double>(Clock::now() - started).count()));
  return build_dir;
}

} // namespace probegate::kernel
