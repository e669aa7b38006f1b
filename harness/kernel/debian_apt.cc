// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/debian_apt.h"

#include "core/files.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fmt/format.h>
#include <regex>
#include <unistd.h>

namespace probegate::kernel {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr auto k_index_max_age = 12h;
constexpr std::string_view k_keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";

std::string env_or(const char* name, std::string_view fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : std::string(fallback);
}

// VERSION_CODENAME from os-release; "" where the host is not Debian.
std::string host_codename() {
  auto text = core::read_file("/etc/os-release");
  if (!text)
    return {};
  static const std::regex codename(R"((^|\n)VERSION_CODENAME=\"?([a-z]+))");
  std::smatch m;
  return std::regex_search(*text, m, codename) ? m[2].str() : std::string();
}

bool fresh(const fs::path& file) {
  std::error_code ec;
  const auto written = fs::last_write_time(file, ec);
  return !ec && fs::file_time_type::clock::now() - written < k_index_max_age;
}

} // namespace

DebianApt::DebianApt(proc::ProcessRunner& runner, fs::path cache)
    : m_runner(runner), m_cache(std::move(cache)), m_host_suite(host_codename()),
      m_suites(debian_suites(
          env_or("PROBEGATE_DEBIAN_MIRROR", "http://deb.debian.org/debian"),
          env_or("PROBEGATE_DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security"))) {}

std::vector<std::string> DebianApt::suite_names() const {
  std::vector<std::string> out;
  for (const auto& suite : m_suites)
    out.push_back(suite.name);
  return out;
}

fs::path DebianApt::suite_dir(const std::string& suite) const {
  return m_cache / "apt" / suite;
}

core::Command DebianApt::command(const std::string& suite, std::vector<std::string> argv) const {
  core::Command c;
  c.env["LC_ALL"] = "C";
  c.timeout = 15min;
  if (suite != m_host_suite) {
    const fs::path dir = suite_dir(suite);
    const std::vector<std::string> options = {
        "Dir::Etc::SourceList=" + (dir / "sources.list").string(),
        "Dir::Etc::SourceParts=" + (dir / "empty").string(),
        "Dir::Etc::Preferences=" + (dir / "empty" / "preferences").string(),
        "Dir::Etc::PreferencesParts=" + (dir / "empty").string(),
        "Dir::Etc::Trusted=" + std::string(k_keyring),
        "Dir::Etc::TrustedParts=" + (dir / "empty").string(),
        "Dir::State=" + (dir / "state").string(),
        "Dir::State::status=" + (dir / "state" / "status").string(),
        "Dir::Cache=" + (dir / "cache").string(),
        "APT::Architecture=amd64",
        "APT::Architectures=amd64",
        "Acquire::Languages=none",
        // A stale mirror (a lab's snapshot, this project's CI mirror) serves
        // sid's index past its Valid-Until; the signature is still checked
        // (docs/FACTS.md "Debian kernels reachable").
        "Acquire::Check-Valid-Until=false",
    };
    std::vector<std::string> full{argv.front()};
    for (const auto& o : options) {
      full.push_back("-o");
      full.push_back(o);
    }
    full.insert(full.end(), argv.begin() + 1, argv.end());
    argv = std::move(full);
  }
  if (geteuid() == 0) // root's apt drops to _apt, who cannot write into our cache
    argv.insert(argv.begin() + 1, {"-o", "APT::Sandbox::User=root"});
  c.argv = std::move(argv);
  return c;
}

core::Result<std::string> DebianApt::capture(const std::string& suite,
                                             std::vector<std::string> argv) {
  std::string out;
  auto ran =
      proc::run_checked(m_runner, command(suite, std::move(argv)), [&](std::string_view line) {
        out.append(line).push_back('\n');
        return proc::LineAction::keep_going;
      });
  if (!ran)
    return std::unexpected(ran.error());
  return out;
}

core::Status DebianApt::prepare(const DebianSuite& suite, bool refresh) {
  const fs::path dir = suite_dir(suite.name);
  const fs::path stamp = dir / "updated";
  if (!refresh && fresh(stamp))
    return {};
  auto lock = core::FileLock::acquire(m_cache / "locks" / ("apt-" + suite.name + ".lock"));
  if (!lock)
    return std::unexpected(lock.error());
  if (!refresh && fresh(stamp)) // another process updated it meanwhile
    return {};
  std::error_code ec;
  for (const auto* sub : {"empty", "state/lists/partial", "cache/archives/partial"})
    fs::create_directories(dir / sub, ec);
  std::string sources;
  for (const auto& line : suite.source_lines)
    sources += line + "\n";
  if (auto saved = core::write_file_atomic(dir / "sources.list", sources); !saved)
    return saved;
  if (!fs::exists(dir / "state" / "status"))
    if (auto saved = core::write_file_atomic(dir / "state" / "status", ""); !saved)
      return saved;
  if (!fs::exists(k_keyring))
    return core::infra_error("{} is missing: install debian-archive-keyring", k_keyring);
  auto update = command(suite.name, {"apt-get", "-q", "update"});
  if (auto ran = proc::run_checked(m_runner, update); !ran)
    return std::unexpected(core::with_context(ran.error(), "updating Debian " + suite.name));
  return core::write_file_atomic(stamp, "");
}

core::Status DebianApt::ready(const std::string& suite) {
  if (suite == m_host_suite)
    return {};
  for (const auto& known : m_suites)
    if (known.name == suite)
      return prepare(known, false);
  return core::usage_error("probegate knows no Debian suite '{}'", suite);
}

core::Result<std::vector<Offer>> DebianApt::offers(bool refresh, bool offline,
                                                   std::vector<std::string>* unreachable) {
  std::vector<Offer> out;
  std::optional<core::Error> last_error;
  for (const auto& suite : m_suites) {
    const fs::path index = m_cache / "index" / (suite.name + "-pkgnames.txt");
    std::optional<std::string> names;
    if (offline || (!refresh && fresh(index))) {
      if (auto text = core::read_file(index))
        names = *text;
    }
    if (!names && !offline) {
      core::Status ready = suite.name == m_host_suite ? core::Status{} : prepare(suite, refresh);
      auto text = ready ? capture(suite.name, {"apt-cache", "pkgnames", "linux-image-"})
                        : core::Result<std::string>(std::unexpected(ready.error()));
      if (text && !image_releases(*text).empty()) {
        if (auto saved = core::write_file_atomic(index, *text); !saved)
          return std::unexpected(saved.error());
        names = *text;
      } else {
        last_error = text ? core::Error{core::ErrorKind::infra,
                                        fmt::format("apt knows no linux-image-*-amd64 package "
                                                    "of {}: run `apt-get update`",
                                                    suite.name)}
                          : text.error();
        if (auto stale = core::read_file(index)) // better old than nothing
          names = *stale;
      }
    }
    if (!names) {
      if (unreachable)
        unreachable->push_back(suite.name);
      continue;
    }
    for (auto& release : image_releases(*names))
      out.push_back({std::move(release), suite.name});
  }
  if (out.empty())
    return last_error ? std::unexpected(*last_error)
                      : core::infra_error("no Debian kernel index in {}; run without --offline "
                                          "once with network",
                                          (m_cache / "index").string());
  return out;
}

namespace {

// `command` with `options` right after its `download` word.
core::Command with_download_options(core::Command command,
                                    const std::vector<std::string>& options) {
  auto at = std::ranges::find(command.argv, "download");
  if (at != command.argv.end())
    command.argv.insert(at + 1, options.begin(), options.end());
  return command;
}

} // namespace

core::Status apt_download(proc::ProcessRunner& runner, const core::Command& download,
                          std::string what, const core::LiveOutput& output) {
  core::Command fetch = download;
  std::vector<AptFile> files; // what --print-uris names; none: no total, no ETA
  if (output.enabled) {
    core::Command list = with_download_options(download, {"--print-uris"});
    list.timeout = std::min<std::chrono::milliseconds>(list.timeout, 2min);
    auto listed = proc::output_if_ok(runner, list);
    if (!listed)
      return std::unexpected(listed.error());
    if (*listed)
      files = parse_print_uris(**listed);
    fetch = with_download_options(download, {"-o", "APT::Status-Fd=1"});
  }
  std::optional<std::uint64_t> total;
  for (const auto& file : files)
    total = total.value_or(0) + file.size;
  core::ProgressLine line(std::move(what), core::ProgressUnit::bytes, total, false, output);
  // apt writes each file under its final name as it arrives, and the
  // download dir holds nothing else: docs/FACTS.md "apt-get download writes in place".
  auto arrived = [&] {
    std::uint64_t bytes = 0;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(download.cwd, ec)) {
      const auto size = entry.path().extension() == ".deb" ? entry.file_size(ec) : 0;
      bytes += ec ? 0 : size;
    }
    return bytes;
  };
  line.update(0);
  auto got = proc::run_checked(runner, fetch, [&](std::string_view) {
    if (line.due())
      line.update(arrived());
    return proc::LineAction::keep_going;
  });
  if (!got)
    return std::unexpected(got.error());
  return {};
}

} // namespace probegate::kernel
