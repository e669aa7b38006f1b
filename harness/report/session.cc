// SPDX-License-Identifier: GPL-2.0-only
#include "report/session.h"

#include "core/files.h"
#include "core/text.h"
#include "report/html.h"

#include <algorithm>
#include <deque>
#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>

namespace probegate::report {

namespace fs = std::filesystem;
using verdict::VerdictKind;

namespace {

constexpr size_t k_console_tail_lines = 40;

} // namespace

std::string console_tail(const fs::path& log, const TailLimits& limits) {
  std::ifstream in(log);
  std::deque<std::string> lines;
  size_t size = 0; // of the lines kept, newlines included
  std::string line;
  while (std::getline(in, line)) {
    line.resize(std::min(line.size(), limits.line_bytes));
    if (limits.printable)
      line = core::printable(line);
    size += line.size() + 1;
    lines.push_back(std::move(line));
    while (!lines.empty() && (lines.size() > limits.max_lines || size > limits.max_bytes)) {
      size -= lines.front().size() + 1;
      lines.pop_front();
    }
  }
  std::string out;
  for (const auto& l : lines)
    out += l + "\n";
  return out;
}

namespace {

std::string failed_checks(const RunResult& run) {
  std::string out;
  for (const auto& c : run.verdict.checks)
    if (!c.pass)
      out += fmt::format("{}: expected {}, actual {}; ", c.name, c.expected, c.actual);
  if (!out.empty())
    out.resize(out.size() - 2);
  return out;
}

} // namespace

VerdictKind worse(VerdictKind a, VerdictKind b) {
  return static_cast<int>(a) >= static_cast<int>(b) ? a : b;
}

VerdictKind combine_repeats(const std::vector<VerdictKind>& verdicts) {
  if (verdicts.empty())
    return VerdictKind::pass;
  if (std::ranges::find(verdicts, VerdictKind::error) != verdicts.end())
    return VerdictKind::error;
  if (std::ranges::all_of(verdicts, [&](VerdictKind v) { return v == verdicts.front(); }))
    return verdicts.front();
  return VerdictKind::flaky;
}

VerdictKind Session::worst() const {
  VerdictKind out = VerdictKind::pass;
  for (const auto& c : cases)
    out = worse(out, c.verdict);
  return out;
}

KnobTable knob_table(const Session& s) {
  KnobTable t;
  for (size_t i = 0; i < s.cases.size(); ++i) {
    const auto& c = s.cases[i];
    if (std::ranges::find(t.kernels, c.kernel) == t.kernels.end())
      t.kernels.push_back(c.kernel);
    // Rows without the suite's name in front: every row has it.
    const std::string row =
        c.row.starts_with(s.suite + "/") ? c.row.substr(s.suite.size() + 1) : c.row;
    if (std::ranges::find(t.rows, row) == t.rows.end())
      t.rows.push_back(row);
    KnobTable::Cell cell;
    cell.verdict = c.verdict;
    cell.case_index = i;
    const RunResult* run = c.runs.empty() ? nullptr : &c.runs.back();
    if (run && !run->kernel_release.empty())
      t.releases[c.kernel] = run->kernel_release;
    const bool booted = run && run->stage_s.contains("boot");
    if (booted) {
      cell.bound = run->outcome.devices_bound;
      cell.udev_killed = run->outcome.udev_worker_killed;
      cell.text = fmt::format("{}/{} bound, {}{}", run->outcome.devices_bound, run->spec.devices,
                              run->outcome.udev_worker_killed ? "loader killed" : "no kill",
                              run->outcome.emergency ? ", emergency mode" : "");
      if (c.verdict != verdict::VerdictKind::pass)
        cell.text += fmt::format(" ({})", verdict::verdict_name(c.verdict));
    } else {
      cell.text = fmt::format("{}: {}", verdict::verdict_name(c.verdict), c.reason);
    }
    t.cells[row][c.kernel] = std::move(cell);
  }
  if (t.kernels.size() < 2)
    return {};
  return t;
}

std::string knob_table_markdown(const KnobTable& t) {
  if (t.kernels.empty())
    return {};
  auto cell_text = [](std::string_view text) {
    std::string out;
    for (char c : core::sanitize_utf8(text))
      out += c == '|' ? std::string("\\|") : std::string(1, c == '\n' ? ' ' : c);
    return out;
  };
  std::string out = "| case |";
  std::string rule = "|---|";
  for (const auto& k : t.kernels) {
    const auto release = t.releases.find(k);
    out += fmt::format(" {}{} |", cell_text(k),
                       release == t.releases.end() ? std::string()
                                                   : fmt::format(" ({})", release->second));
    rule += "---|";
  }
  out += "\n" + rule + "\n";
  for (const auto& row : t.rows) {
    out += "| " + cell_text(row) + " |";
    const auto& cells = t.cells.at(row);
    for (const auto& k : t.kernels) {
      const auto it = cells.find(k);
      out += " " + (it == cells.end() ? std::string("-") : cell_text(it->second.text)) + " |";
    }
    out += "\n";
  }
  return out;
}

nlohmann::json knob_table_json(const KnobTable& t) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : t.rows) {
    nlohmann::json cells = nlohmann::json::object();
    for (const auto& [kernel, cell] : t.cells.at(row))
      cells[kernel] = {
          {"verdict", verdict::verdict_name(cell.verdict)},
          {"text", cell.text},
          {"devices_bound", cell.bound ? nlohmann::json(*cell.bound) : nullptr},
          {"udev_worker_killed", cell.udev_killed ? nlohmann::json(*cell.udev_killed) : nullptr}};
    rows.push_back({{"case", row}, {"cells", cells}});
  }
  return {{"kernels", t.kernels}, {"releases", t.releases}, {"rows", rows}};
}

std::string summary_json(const Session& s) {
  nlohmann::json cases = nlohmann::json::array();
  std::map<std::string, int> counts;
  for (const auto& c : s.cases) {
    ++counts[std::string(verdict::verdict_name(c.verdict))];
    nlohmann::json runs = nlohmann::json::array();
    for (const auto& r : c.runs)
      runs.push_back({{"dir", r.dir.string()},
                      {"verdict", verdict::verdict_name(r.verdict.kind)},
                      {"devices_bound", r.outcome.devices_bound},
                      {"udev_worker_killed", r.outcome.udev_worker_killed},
                      {"probe_failures", r.outcome.probe_failures},
                      {"userspace", userspace_json(r)},
                      {"wall_s", r.wall_s},
                      {"failed_checks", failed_checks(r)},
                      {"checks", checks_json(r.verdict)}});
    cases.push_back({{"id", c.id},
                     {"row", c.row},
                     {"where", c.where},
                     {"kernel", c.kernel},
                     {"retried", c.retried},
                     {"host", c.host.empty() ? nlohmann::json() : nlohmann::json(c.host)},
                     {"lost_on", c.lost_on},
                     {"verdict", verdict::verdict_name(c.verdict)},
                     {"reason", c.reason},
                     {"ran", c.ran},
                     {"dir", c.dir.string()},
                     {"runs", runs}});
  }
  const auto table = knob_table(s);
  nlohmann::json j = {{"format", "probegate-summary/1"},
                      {"suite", s.suite},
                      {"complete", s.complete},
                      {"interrupted", s.interrupted},
                      {"storage_error", s.storage_error.empty() ? nlohmann::json()
                                                                : nlohmann::json(s.storage_error)},
                      {"verdict", verdict::verdict_name(s.worst())},
                      {"counts", counts},
                      {"jobs", s.jobs},
                      {"repeat", s.repeat},
                      {"wall_s", s.wall_s},
                      {"dir", s.dir.string()},
                      {"suite_sha256", s.suite_sha256},
                      {"filter", s.filter},
                      {"suite_cases", s.suite_cases},
                      {"shard", {{"index", s.shard_index}, {"total", s.shard_total}}},
                      {"cases", cases}};
  if (!s.hosts.empty()) {
    nlohmann::json hosts = nlohmann::json::array();
    for (const auto& h : s.hosts)
      hosts.push_back({{"name", h.name},
                       {"uri", h.uri},
                       {"slots", h.slots},
                       {"labels", h.labels},
                       {"cases", h.cases},
                       {"lost", h.lost},
                       {"lost_reason", h.lost ? nlohmann::json(h.lost_reason) : nlohmann::json()},
                       {"lost_at_s", h.lost ? nlohmann::json(h.lost_at_s) : nlohmann::json()}});
    j["hosts"] = hosts;
  }
  if (!s.merged_from.empty()) {
    nlohmann::json from = nlohmann::json::array();
    for (const auto& d : s.merged_from)
      from.push_back(d.string());
    j["merged_from"] = from;
    j["missing_shards"] = s.missing_shards;
  }
  if (!table.kernels.empty())
    j["knob_table"] = knob_table_json(table);
  return j.dump(2, ' ', true, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string junit_xml(const Session& s) {
  int failures = 0, errors = 0, skipped = 0;
  std::string body;
  for (const auto& c : s.cases) {
    double time = 0;
    for (const auto& r : c.runs)
      time += r.wall_s;
    body += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3f}\">\n",
                        xml_escape(s.suite), xml_escape(c.id), time);
    const RunResult* last = c.runs.empty() ? nullptr : &c.runs.back();
    const std::string detail =
        last ? fmt::format(
                   "{}\n--- console tail ({}) ---\n{}", report::render_text(*last),
                   (last->dir / "console.log").string(),
                   console_tail(last->dir / "console.log", {.line_bytes = 500,
                                                            .max_lines = k_console_tail_lines,
                                                            .max_bytes = SIZE_MAX,
                                                            .printable = false}))
             : c.reason;
    switch (c.verdict) {
    case VerdictKind::pass:
      break;
    case VerdictKind::skip:
      ++skipped;
      body += fmt::format("      <skipped message=\"{}\"/>\n", xml_escape(c.reason));
      break;
    case VerdictKind::fail:
    case VerdictKind::flaky: {
      ++failures;
      const std::string message = c.verdict == VerdictKind::flaky
                                      ? "flaky: " + c.reason
                                      : (last ? failed_checks(*last) : c.reason);
      body +=
          fmt::format("      <failure type=\"{}\" message=\"{}\">{}</failure>\n",
                      verdict::verdict_name(c.verdict), xml_escape(message), xml_escape(detail));
      break;
    }
    case VerdictKind::crash:
    case VerdictKind::error:
      ++errors;
      body +=
          fmt::format("      <error type=\"{}\" message=\"{}\">{}</error>\n",
                      verdict::verdict_name(c.verdict), xml_escape(c.reason), xml_escape(detail));
      break;
    }
    if (!c.dir.empty())
      body += fmt::format("      <system-out>{}</system-out>\n", xml_escape(c.dir.string()));
    body += "    </testcase>\n";
  }
  return fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<testsuites name=\"probegate\" tests=\"{0}\" failures=\"{1}\" "
                     "errors=\"{2}\" skipped=\"{3}\" time=\"{4:.3f}\">\n"
                     "  <testsuite name=\"{5}\" tests=\"{0}\" failures=\"{1}\" errors=\"{2}\" "
                     "skipped=\"{3}\" time=\"{4:.3f}\">\n{6}  </testsuite>\n</testsuites>\n",
                     s.cases.size(), failures, errors, skipped, s.wall_s, xml_escape(s.suite),
                     body);
}

std::string ktap(const Session& s) {
  auto clean = [](std::string_view text) {
    std::string out = core::printable(text);
    std::ranges::replace(out, '#', ' ');
    std::ranges::replace(out, '\n', ' ');
    return out;
  };
  std::string out =
      fmt::format("KTAP version 1\n# probegate suite {}\n1..{}\n", clean(s.suite), s.cases.size());
  for (size_t i = 0; i < s.cases.size(); ++i) {
    const auto& c = s.cases[i];
    const RunResult* last = c.runs.empty() ? nullptr : &c.runs.back();
    if (last)
      for (const auto& check : last->verdict.checks)
        if (!check.pass)
          out += fmt::format("# {}: {}: expected {}, actual {}\n", clean(c.id), clean(check.name),
                             clean(check.expected), clean(check.actual));
    switch (c.verdict) {
    case VerdictKind::pass:
      out += fmt::format("ok {} {}\n", i + 1, clean(c.id));
      break;
    case VerdictKind::skip:
      out += fmt::format("ok {} {} # SKIP {}\n", i + 1, clean(c.id), clean(c.reason));
      break;
    case VerdictKind::error:
      out += fmt::format("not ok {} {} # ERROR {}\n", i + 1, clean(c.id), clean(c.reason));
      break;
    case VerdictKind::fail:
    case VerdictKind::flaky:
    case VerdictKind::crash:
      if (!c.reason.empty())
        out += fmt::format("# {}: {}: {}\n", clean(c.id), verdict::verdict_name(c.verdict),
                           clean(c.reason));
      out += fmt::format("not ok {} {}\n", i + 1, clean(c.id));
      break;
    }
  }
  return out;
}

std::string render_table(const Session& s) {
  size_t width = 4;
  for (const auto& c : s.cases)
    width = std::max(width, c.id.size());
  std::string out = fmt::format("{:<{}}  {:<7} {:>5} {:>7} {:>7}\n", "case", width, "verdict",
                                "bound", "killed", "wall");
  for (const auto& c : s.cases) {
    if (c.runs.empty()) {
      out += fmt::format("{:<{}}  {:<7} {}\n", c.id, width, verdict::verdict_name(c.verdict),
                         c.reason);
      continue;
    }
    const auto& r = c.runs.back();
    out += fmt::format("{:<{}}  {:<7} {:>2}/{:<2} {:>7} {:>6.1f}s\n", c.id, width,
                       verdict::verdict_name(c.verdict), r.outcome.devices_bound,
                       r.outcome.devices_expected, r.outcome.udev_worker_killed ? "yes" : "no",
                       r.wall_s);
  }
  return out;
}

std::string render_session(const Session& s) {
  std::string out = render_table(s);
  if (const auto table = knob_table(s); !table.kernels.empty())
    out += fmt::format("\nknob x kernel ({}):\n{}", (s.dir / "knob-table.md").string(),
                       knob_table_markdown(table));
  out += fmt::format("{}: {} ({} cases, {:.1f} s){}\n", s.suite, verdict::verdict_name(s.worst()),
                     s.cases.size(), s.wall_s, s.complete ? "" : " INCOMPLETE");
  if (!s.missing_shards.empty())
    out += fmt::format("missing shards: {} ({} of the suite's {} cases not run)\n",
                       fmt::join(s.missing_shards, ", "), s.suite_cases.size() - s.cases.size(),
                       s.suite_cases.size());
  out += fmt::format("results: {}\n", s.dir.string());
  return out;
}

core::Status write_session(const Session& session) {
  if (auto ok = core::write_file_atomic(session.dir / "summary.json", summary_json(session)); !ok)
    return ok;
  if (auto ok = core::write_file_atomic(session.dir / "junit.xml", junit_xml(session)); !ok)
    return ok;
  if (auto ok = write_report(session); !ok)
    return ok;
  if (const auto table = knob_table(session); !table.kernels.empty())
    if (auto ok = core::write_file_atomic(
            session.dir / "knob-table.md",
            fmt::format("# {}: knob x kernel\n\n{}", session.suite, knob_table_markdown(table)));
        !ok)
      return ok;
  // Last: only a session whose every file is written loses its marker.
  if (session.complete) {
    std::error_code ec;
    std::filesystem::remove(session.dir / k_incomplete_marker, ec);
  } else if (!session.merged_from.empty()) {
    // A merge that lacks a shard says so as a run directory would.
    if (auto ok = core::write_file_atomic(session.dir / k_incomplete_marker,
                                          "shards missing from this merge\n");
        !ok)
      return ok;
  }
  return {};
}

} // namespace probegate::report
