// SPDX-License-Identifier: GPL-2.0-only
#include "report/merge.h"

#include "core/files.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace probegate::report {

namespace fs = std::filesystem;

namespace {

// `recorded` under the directory the summary was written in, moved under
// where that directory is now.
fs::path relocate(const std::string& recorded, const fs::path& was, const fs::path& now) {
  const fs::path p(recorded);
  if (was.empty() || p.empty())
    return p;
  const auto rel = p.lexically_relative(was);
  if (rel.empty() || *rel.begin() == "..")
    return p;
  return now / rel;
}

core::Result<Session> session_from_json(const nlohmann::json& j, const fs::path& dir) {
  if (j.value("format", "") != "probegate-summary/1")
    return core::usage_error("not a probegate-summary/1 document");
  if (!j.contains("suite_cases") || !j.contains("dir"))
    return core::usage_error("written by a probegate older than `merge`: run the suite again");
  Session s;
  s.suite = j.at("suite").get<std::string>();
  s.dir = dir;
  s.complete = j.at("complete").get<bool>();
  s.interrupted = j.at("interrupted").get<bool>();
  s.wall_s = j.at("wall_s").get<double>();
  s.jobs = j.at("jobs").get<int>();
  s.repeat = j.at("repeat").get<int>();
  s.suite_sha256 = j.at("suite_sha256").get<std::string>();
  s.filter = j.at("filter").get<std::string>();
  s.suite_cases = j.at("suite_cases").get<std::vector<std::string>>();
  s.shard_index = j.at("shard").at("index").get<int>();
  s.shard_total = j.at("shard").at("total").get<int>();
  for (const auto& h : j.value("hosts", nlohmann::json::array())) {
    HostReport host;
    host.name = h.at("name").get<std::string>();
    host.uri = h.at("uri").get<std::string>();
    host.slots = h.at("slots").get<int>();
    host.labels = h.at("labels").get<std::map<std::string, std::string>>();
    host.cases = h.at("cases").get<int>();
    host.lost = h.at("lost").get<bool>();
    if (host.lost) {
      host.lost_reason = h.at("lost_reason").get<std::string>();
      host.lost_at_s = h.at("lost_at_s").get<double>();
    }
    s.hosts.push_back(std::move(host));
  }
  const fs::path was = j.at("dir").get<std::string>();
  for (const auto& c : j.at("cases")) {
    CaseReport out;
    out.id = c.at("id").get<std::string>();
    out.row = c.at("row").get<std::string>();
    out.where = c.at("where").get<std::string>();
    out.kernel = c.at("kernel").get<std::string>();
    out.retried = c.at("retried").get<int>();
    if (c.contains("host") && c.at("host").is_string()) // absent before pools of hosts
      out.host = c.at("host").get<std::string>();
    out.lost_on = c.value("lost_on", std::vector<std::string>{});
    const auto kind = verdict::verdict_from_name(c.at("verdict").get<std::string>());
    if (!kind)
      return core::usage_error("case {}: unknown verdict {}", out.id, c.at("verdict").dump());
    out.verdict = *kind;
    out.reason = c.at("reason").get<std::string>();
    out.ran = c.at("ran").get<bool>();
    out.dir = relocate(c.at("dir").get<std::string>(), was, dir);
    for (const auto& r : c.at("runs")) {
      const auto run_dir = relocate(r.at("dir").get<std::string>(), was, dir);
      auto run = read_result(run_dir / "result.json");
      if (!run)
        return std::unexpected(core::with_context(run.error(), "case " + out.id));
      out.runs.push_back(std::move(*run));
    }
    s.cases.push_back(std::move(out));
  }
  return s;
}

} // namespace

core::Result<Session> read_session(const fs::path& dir) {
  const auto file = dir / "summary.json";
  auto text = core::read_file(file);
  if (!text)
    return core::usage_error("{} is not a finished session: {}", dir.string(),
                             text.error().message);
  try {
    auto s = session_from_json(nlohmann::json::parse(*text), dir);
    if (!s)
      return std::unexpected(core::with_context(s.error(), file.string()));
    return s;
  } catch (const nlohmann::json::exception& e) {
    return core::usage_error("{}: not a readable summary.json: {}", file.string(), e.what());
  }
}

core::Result<Session> merge_sessions(const std::vector<Session>& shards, const fs::path& out) {
  if (shards.empty())
    return core::usage_error("merge needs at least one session directory");
  const Session& first = shards.front();
  auto differs = [&](const Session& s, std::string_view what, const auto& mine,
                     const auto& theirs) -> core::Status {
    if (mine == theirs)
      return {};
    return core::usage_error(
        "{} and {} are not shards of one run: their {} differ ({} and {}); merge the shards of "
        "one suite, one --filter and one --repeat",
        first.dir.string(), s.dir.string(), what, fmt::format("{}", theirs),
        fmt::format("{}", mine));
  };
  std::map<int, fs::path> shard_dirs;
  std::map<std::string, fs::path> case_dirs;
  Session merged;
  merged.suite = first.suite;
  merged.dir = out;
  merged.suite_sha256 = first.suite_sha256;
  merged.filter = first.filter;
  merged.suite_cases = first.suite_cases;
  merged.repeat = first.repeat;
  merged.jobs = 0;
  merged.complete = true;
  std::map<std::string, const CaseReport*> by_id;
  for (const auto& s : shards) {
    for (auto ok : {differs(s, "suites", s.suite, first.suite),
                    differs(s, "suite files (sha256)", s.suite_sha256, first.suite_sha256),
                    differs(s, "--filter", s.filter, first.filter),
                    differs(s, "--repeat", s.repeat, first.repeat),
                    differs(s, "shard counts", s.shard_total, first.shard_total)})
      if (!ok)
        return std::unexpected(ok.error());
    if (const auto [it, fresh] = shard_dirs.emplace(s.shard_index, s.dir); !fresh)
      return core::usage_error("shard {}/{} is given twice: {} and {}", s.shard_index,
                               s.shard_total, it->second.string(), s.dir.string());
    for (const auto& c : s.cases) {
      if (const auto [it, fresh] = case_dirs.emplace(c.id, s.dir); !fresh)
        return core::usage_error("case {} appears twice: in {} and in {}", c.id,
                                 it->second.string(), s.dir.string());
      if (std::ranges::find(first.suite_cases, c.id) == first.suite_cases.end())
        return core::usage_error("{}: case {} is not in the suite the other shards ran",
                                 s.dir.string(), c.id);
      by_id[c.id] = &c;
    }
    merged.complete = merged.complete && s.complete;
    merged.interrupted = merged.interrupted || s.interrupted;
    merged.wall_s = std::max(merged.wall_s, s.wall_s);
    merged.jobs += s.jobs;
    merged.merged_from.push_back(s.dir);
    // Shards that shared a pool: one entry per host, its cases added up.
    for (const auto& h : s.hosts) {
      auto same = std::ranges::find(merged.hosts, h.name, &HostReport::name);
      if (same == merged.hosts.end()) {
        merged.hosts.push_back(h);
        continue;
      }
      same->cases += h.cases;
      if (h.lost && !same->lost) {
        same->lost = true;
        same->lost_reason = h.lost_reason;
        same->lost_at_s = h.lost_at_s;
      }
    }
  }
  for (int i = 1; i <= first.shard_total; ++i)
    if (!shard_dirs.contains(i))
      merged.missing_shards.push_back(i);
  merged.complete = merged.complete && merged.missing_shards.empty();
  for (const auto& id : first.suite_cases)
    if (const auto it = by_id.find(id); it != by_id.end())
      merged.cases.push_back(*it->second);
  merged.shard_index = 1;
  merged.shard_total = 1;
  return merged;
}

} // namespace probegate::report
