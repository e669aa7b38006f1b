// SPDX-License-Identifier: GPL-2.0-only
#include "report/kcidb.h"

#include "core/files.h"
#include "core/text.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>

namespace probegate::report {

namespace {

constexpr size_t k_log_excerpt_max = 16384; // the schema's maxLength

// A path segment as KCIDB allows it: [a-zA-Z0-9_-]+.
std::string path_segment(std::string_view text) {
  std::string out;
  for (char c : text)
    out += std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ? c : '_';
  return out.empty() ? "_" : out;
}

// probegate.<suite>.<case segments>: "smoke/sync-killed" ->
// probegate.smoke.sync-killed, "knobs/sync/debian:6.1" -> ….debian_6_1.
std::string test_path(const Session& s, const std::string& id) {
  std::string out = "probegate";
  if (!id.starts_with(s.suite + "/"))
    out += "." + path_segment(s.suite);
  size_t start = 0;
  while (start <= id.size()) {
    const size_t end = std::min(id.find('/', start), id.size());
    out += "." + path_segment(std::string_view(id).substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string_view status(verdict::VerdictKind kind) {
  switch (kind) {
  case verdict::VerdictKind::pass:
    return "PASS";
  case verdict::VerdictKind::skip:
    return "SKIP";
  case verdict::VerdictKind::error:
    return "MISS";
  case verdict::VerdictKind::fail:
  case verdict::VerdictKind::flaky:
  case verdict::VerdictKind::crash:
    break;
  }
  return "FAIL";
}

} // namespace

core::Status check_kcidb_origin(std::string_view origin) {
  if (origin.empty() || !std::ranges::all_of(origin, [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      }))
    return core::usage_error("--kcidb-origin must match [a-z0-9_]+ (KCIDB's rule), not '{}'",
                             core::printable(origin));
  return {};
}

nlohmann::json kcidb_json(const Session& s, std::string_view origin) {
  const std::string o(origin);
  nlohmann::json checkouts = nlohmann::json::array();
  nlohmann::json builds = nlohmann::json::array();
  nlohmann::json tests = nlohmann::json::array();
  // kernel ref -> the release that ran (empty: never resolved) and the git
  // commit of its source (tree: and build: kernels from a checkout)
  std::map<std::string, std::string> releases;
  std::map<std::string, kernel::GitCheckout> commits;
  std::vector<std::string> order;
  for (const auto& c : s.cases) {
    if (!releases.contains(c.kernel))
      order.push_back(c.kernel);
    auto& release = releases[c.kernel];
    for (const auto& r : c.runs) {
      if (!r.kernel_release.empty())
        release = r.kernel_release;
      if (r.kernel_git)
        commits[c.kernel] = *r.kernel_git;
    }
  }
  std::map<std::string, std::string> build_ids;
  for (const auto& ref : order) {
    const auto& release = releases[ref];
    const std::string checkout_id = fmt::format("{}:{}@{}", o, ref, release);
    nlohmann::json checkout = {
        {"id", checkout_id},
        {"origin", o},
        {"tree_name", ref.substr(0, ref.find(':'))},
        {"comment", fmt::format("kernel {} ({})", ref, release.empty() ? "not resolved" : release)},
        {"valid", !release.empty()}};
    if (const auto git = commits.find(ref); git != commits.end()) {
      checkout["git_commit_hash"] = git->second.commit;
      if (!git->second.repository_url.empty()) {
        checkout["git_repository_url"] = git->second.repository_url;
        checkout["git_repository_branch"] = git->second.branch;
      }
      // Changes on top of the commit: what was built is not the commit alone.
      checkout["misc"] = {{"git_dirty", git->second.dirty}};
    }
    checkouts.push_back(checkout);
    build_ids[ref] = fmt::format("{}:build:{}@{}", o, ref, release);
    nlohmann::json build = {{"id", build_ids[ref]},
                            {"checkout_id", checkout_id},
                            {"origin", o},
                            {"architecture", "x86_64"},
                            {"comment", release.empty() ? ref : release},
                            {"status", release.empty() ? "MISS" : "PASS"}};
    builds.push_back(build);
  }
  const std::string session_name = s.dir.filename().string();
  for (const auto& c : s.cases) {
    double duration = 0;
    for (const auto& r : c.runs)
      duration += r.wall_s;
    const RunResult* last = c.runs.empty() ? nullptr : &c.runs.back();
    nlohmann::json misc = {{"verdict", verdict::verdict_name(c.verdict)},
                           {"reason", core::printable(c.reason)},
                           {"where", c.where},
                           {"runs", c.runs.size()},
                           {"results_dir", c.dir.string()}};
    nlohmann::json test = {{"id", fmt::format("{}:{}/{}", o, session_name, c.id)},
                           {"build_id", build_ids[c.kernel]},
                           {"origin", o},
                           {"path", test_path(s, c.id)},
                           {"status", status(c.verdict)},
                           {"duration", duration}};
    if (last) {
      misc["devices_bound"] = last->outcome.devices_bound;
      misc["devices_expected"] = last->outcome.devices_expected;
      misc["udev_worker_killed"] = last->outcome.udev_worker_killed;
      test["environment"] = {
          {"comment",
           fmt::format("QEMU {}, user space {}, init {}", last->accel,
                       last->userspace_suite.empty() ? last->spec.userspace : last->userspace_suite,
                       spec::init_name(last->spec.init))},
          {"misc",
           {{"udev", last->outcome.udev_version ? nlohmann::json(*last->outcome.udev_version)
                                                : nlohmann::json()},
            {"kernel_cmdline", last->kernel_cmdline}}}};
      if (c.verdict != verdict::VerdictKind::pass && !last->dir.empty())
        test["log_excerpt"] =
            console_tail(last->dir / "console.log", {.line_bytes = 400,
                                                     .max_lines = SIZE_MAX,
                                                     .max_bytes = k_log_excerpt_max,
                                                     .printable = true});
    }
    test["misc"] = misc;
    tests.push_back(test);
  }
  return {{"version", {{"major", 5}, {"minor", 3}}},
          {"checkouts", checkouts},
          {"builds", builds},
          {"tests", tests}};
}

core::Status write_kcidb(const Session& session, const std::filesystem::path& file,
                         std::string_view origin) {
  return core::write_file_atomic(
      file,
      kcidb_json(session, origin).dump(2, ' ', true, nlohmann::json::error_handler_t::replace) +
          "\n");
}

} // namespace probegate::report
