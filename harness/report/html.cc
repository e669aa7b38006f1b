// SPDX-License-Identifier: GPL-2.0-only
#include "report/html.h"

#include "core/files.h"
#include "report/timeline.h"

#include <algorithm>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace probegate::report {

namespace fs = std::filesystem;
using verdict::VerdictKind;

namespace {

constexpr std::string_view k_style = R"(
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ccc; padding: .25em .5em; text-align: left; vertical-align: top; }
.pass { background: #d9f2d9; } .fail { background: #f8d0d0; } .error { background: #f9e0b8; }
.crash { background: #f0b0b0; } .flaky { background: #fff3b0; } .skip { background: #e8e8e8; }
.verdict { font-weight: bold; text-transform: uppercase; }
a { color: #1a4f9c; }
pre { background: #f6f6f6; padding: .5em; overflow-x: auto; white-space: pre-wrap; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg .row { text-anchor: end; }
svg .tick { text-anchor: middle; fill: #777; }
svg .deadline { text-anchor: end; fill: #777; }
svg .axis { stroke: #999; }
svg .udev-window { fill: #fbe3a6; fill-opacity: .45; stroke: #d9a400; stroke-dasharray: 4 3; }
svg .udev-slack { fill: #fbe3a6; fill-opacity: .2; }
svg .probe { fill: #8fb3e0; } svg .probe.bound { fill: #6cbf6c; } svg .probe.failed { fill: #e06c6c; }
svg .mark { stroke: #555; stroke-width: 1.5; }
svg .mark.udev-kill { stroke: #c00000; stroke-width: 2.5; }
svg .mark.udev-warning { stroke: #e08a00; stroke-dasharray: 3 2; }
svg .mark.ready { stroke: #2a8a2a; stroke-width: 2; }
svg .mark.emergency, svg .mark.device-timeout, svg .mark.deadline { stroke: #800080; }
svg .mark.module-returned { stroke: #1a4f9c; stroke-dasharray: 5 2; }
svg .capacity-predicted { fill: #bbb; } svg .capacity-bound { fill: #6cbf6c; }
)";

std::string_view css(VerdictKind kind) {
  return verdict::verdict_name(kind);
}

std::string case_anchor(size_t index) {
  return fmt::format("case-{}", index + 1);
}

// A path as a link from the session directory (the page's own place).
std::string link(const fs::path& from, const fs::path& to) {
  if (to.empty())
    return {};
  const auto rel = to.lexically_relative(from);
  return html_escape((rel.empty() ? to : rel).generic_string());
}

std::string matrix(const Session& s) {
  const auto table = knob_table(s);
  if (table.kernels.empty())
    return {};
  std::string out = "<h2>Knob × kernel</h2>\n<table class=\"matrix\">\n<tr><th>case</th>";
  for (const auto& k : table.kernels) {
    const auto release = table.releases.find(k);
    out += fmt::format("<th>{}{}</th>", html_escape(k),
                       release == table.releases.end()
                           ? std::string()
                           : fmt::format("<br><small>{}</small>", html_escape(release->second)));
  }
  out += "</tr>\n";
  for (const auto& row : table.rows) {
    out += fmt::format("<tr><th>{}</th>", html_escape(row));
    const auto& cells = table.cells.at(row);
    for (const auto& k : table.kernels) {
      const auto it = cells.find(k);
      if (it == cells.end()) {
        out += "<td>-</td>";
        continue;
      }
      out += fmt::format("<td class=\"{}\"><a href=\"#{}\">{}</a></td>", css(it->second.verdict),
                         case_anchor(it->second.case_index), html_escape(it->second.text));
    }
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

// Devices bound against the count expected (for `expect_bound: capacity`,
// the prediction from the udev timeout and the probe time).
std::string capacity_plot(const Session& s) {
  struct Bar {
    size_t index;
    int expected, bound, devices;
    bool predicted;
  };
  std::vector<Bar> bars;
  for (size_t i = 0; i < s.cases.size(); ++i) {
    if (s.cases[i].runs.empty())
      continue;
    const auto& r = s.cases[i].runs.back();
    if (r.spec.expect.bound && r.stage_s.contains("boot"))
      bars.push_back({i, *r.spec.expect.bound, r.outcome.devices_bound, r.spec.devices,
                      r.spec.expect_capacity});
  }
  if (bars.empty())
    return {};
  int most = 1;
  for (const auto& b : bars)
    most = std::max({most, b.expected, b.bound, b.devices});
  const double row = 20, left = 380, width = 520;
  std::string out = fmt::format(
      "<h2>Devices bound against the expectation</h2>\n<p>Grey: expected (for "
      "<code>expect_bound: capacity</code>, predicted from the udev timeout and the probe time); "
      "green: bound.</p>\n<svg class=\"capacity\" xmlns=\"http://www.w3.org/2000/svg\" "
      "width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\">\n",
      left + width + 60, row * static_cast<double>(bars.size()) + 10);
  for (size_t i = 0; i < bars.size(); ++i) {
    const auto& b = bars[i];
    const double y = row * static_cast<double>(i) + 4;
    const auto w = [&](int n) { return width * n / most; };
    out += fmt::format(
        "<a href=\"#{}\"><text class=\"row\" x=\"{}\" y=\"{:.1f}\">{}</text></a>\n"
        "<rect class=\"capacity-predicted\" x=\"{}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"7\"/>\n"
        "<rect class=\"capacity-bound\" data-bound=\"{}\" data-expected=\"{}\" x=\"{}\" "
        "y=\"{:.1f}\" width=\"{:.1f}\" height=\"7\"/>\n"
        "<text x=\"{:.1f}\" y=\"{:.1f}\">{}/{}{}</text>\n",
        case_anchor(b.index), left - 6, y + 10, html_escape(s.cases[b.index].id), left, y,
        w(b.expected), b.bound, b.expected, left, y + 8, w(b.bound),
        left + w(std::max(b.expected, b.bound)) + 4, y + 11, b.bound, b.expected,
        b.predicted ? " predicted" : "");
  }
  return out + "</svg>\n";
}

std::string run_section(const Session& s, const RunResult& r, const ConsoleOf& console_of) {
  std::string out;
  out += "<table class=\"checks\"><tr><th>check</th><th>expected</th><th>actual</th></tr>\n";
  for (const auto& c : r.verdict.checks)
    out += fmt::format("<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                       c.pass ? "pass" : "fail", html_escape(c.name), html_escape(c.expected),
                       html_escape(c.actual));
  out += "</table>\n";
  if (!r.verdict.reason.empty())
    out += fmt::format("<p>reason: {}</p>\n", html_escape(r.verdict.reason));
  if (!r.error.empty())
    out += fmt::format("<p>error: {}</p>\n", html_escape(r.error));
  out += fmt::format("<p>kernel {} ({}), user space {}{}, init {}; guest kernel banner: "
                     "<code>{}</code></p>\n",
                     html_escape(r.spec.kernel), html_escape(r.kernel_release),
                     html_escape(r.userspace_suite.empty() ? r.spec.userspace : r.userspace_suite),
                     r.outcome.udev_version ? fmt::format(" (udev {})", *r.outcome.udev_version)
                                            : std::string(),
                     html_escape(r.outcome.init), html_escape(r.outcome.guest_kernel));
  if (const auto log = console_of(r)) {
    const auto timeline = make_timeline(r, *log);
    out += timeline_svg(timeline);
    out += "<table class=\"marks\"><tr><th>#</th><th>guest s</th><th>what</th></tr>\n";
    for (size_t i = 0; i < timeline.marks.size(); ++i)
      out += fmt::format("<tr><td>{}</td><td>{:.6f}</td><td>{}</td></tr>\n", i + 1,
                         timeline.marks[i].t_s, html_escape(timeline.marks[i].label));
    out += "</table>\n";
  }
  if (!r.dir.empty())
    out += fmt::format("<p><a href=\"{0}/console.log\">console.log</a> · <a "
                       "href=\"{0}/result.json\">result.json</a></p>\n",
                       link(s.dir, r.dir));
  return out;
}

// The page's head and its first heading.
std::string page_head(std::string_view title, VerdictKind verdict, std::string_view verdict_text) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src "
      "'unsafe-inline'\">\n<title>probegate: {0}</title>\n<style>{1}</style>\n</head>\n<body>\n"
      "<h1>probegate: {0} <span class=\"verdict {2}\">{3}</span></h1>\n",
      html_escape(title), k_style, css(verdict), html_escape(verdict_text));
}

} // namespace

std::string bisect_html(const nlohmann::json& log, const fs::path& dir) {
  auto text = [](const nlohmann::json& j, const char* key) {
    const auto it = j.find(key);
    return it == j.end() || it->is_null() ? std::string()
           : it->is_string()              ? it->get<std::string>()
                                          : it->dump();
  };
  const auto items = log.value("items", std::vector<std::string>{});
  const auto answer = log.find("answer");
  const bool done = answer != log.end();
  const std::string kind = done ? text(*answer, "kind") : "unfinished";
  const bool certain = done && answer->value("certain", false);
  std::string out = page_head(fmt::format("bisection of {} items", items.size()),
                              !done                        ? VerdictKind::error
                              : kind == "found" && certain ? VerdictKind::pass
                                                           : VerdictKind::flaky,
                              kind);
  if (done) {
    out += "<table class=\"answer\">\n";
    out += fmt::format("<tr><th>answer</th><td>{}</td></tr>\n", html_escape(kind));
    out += fmt::format("<tr><th>last like the first</th><td>{}</td></tr>\n",
                       html_escape(text(*answer, "last_same")));
    out += fmt::format("<tr><th>first that differs</th><td><strong>{}</strong></td></tr>\n",
                       html_escape(text(*answer, "first")));
    out += fmt::format("<tr><th>certain</th><td>{}</td></tr>\n", certain ? "yes" : "no");
    out += "</table>\n";
  } else {
    out += "<p>The bisection has not finished: <code>probegate bisect --resume</code> goes on "
           "from here.</p>\n";
  }
  out += "<h2>Steps</h2>\n<table class=\"steps\"><tr><th>#</th><th>item</th><th>class</th>"
         "<th>verdict</th><th>runs</th><th>why</th><th>results</th></tr>\n";
  const auto steps = log.value("steps", nlohmann::json::array());
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto& st = steps[i];
    const std::string cls = text(st, "class");
    std::string links;
    for (const auto& d : st.value("dirs", std::vector<std::string>{}))
      links += fmt::format("<a href=\"{}/result.json\">{}</a> ", link(dir, d),
                           html_escape(fs::path(d).filename().string()));
    out += fmt::format("<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                       "<td>{}</td><td>{}</td></tr>\n",
                       cls == "differs" ? "fail"
                       : cls == "same"  ? "pass"
                                        : "skip",
                       i + 1, html_escape(text(st, "label")), html_escape(cls),
                       html_escape(text(st, "verdict")), html_escape(text(st, "runs")),
                       html_escape(text(st, "why")), links);
  }
  out += "</table>\n<h2>Items, in order</h2>\n<ol>\n";
  for (const auto& item : items)
    out += fmt::format("<li>{}</li>\n", html_escape(item));
  return out + "</ol>\n</body>\n</html>\n";
}

core::Status write_bisect_report(const fs::path& dir) {
  auto text = core::read_file(dir / "bisect.json");
  if (!text)
    return std::unexpected(text.error());
  try {
    return core::write_file_atomic(dir / "report.html",
                                   bisect_html(nlohmann::json::parse(*text), dir));
  } catch (const nlohmann::json::exception& e) {
    return core::usage_error("{}: not a readable bisect.json: {}", (dir / "bisect.json").string(),
                             e.what());
  }
}

std::string html_escape(std::string_view text) {
  return xml_escape(text);
}

std::string session_html(const Session& s, const ConsoleOf& console_of) {
  std::map<std::string, int> counts;
  for (const auto& c : s.cases)
    ++counts[std::string(verdict::verdict_name(c.verdict))];
  std::string summary;
  for (const auto& [name, n] : counts)
    summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", n, name);
  std::string out = page_head(s.suite, s.worst(), verdict::verdict_name(s.worst()));
  out += fmt::format("<p>{} cases ({}), {:.1f} s on {} jobs{}{}</p>\n", s.cases.size(), summary,
                     s.wall_s, s.jobs,
                     s.repeat > 1 ? fmt::format(", {} repeats each", s.repeat) : std::string(),
                     s.complete ? std::string() : ", <strong>INCOMPLETE</strong>");
  out += matrix(s);
  out += capacity_plot(s);
  out += "<h2>Cases</h2>\n<table class=\"cases\"><tr><th>case</th><th>verdict</th><th>bound</th>"
         "<th>loader killed</th><th>wall</th></tr>\n";
  for (size_t i = 0; i < s.cases.size(); ++i) {
    const auto& c = s.cases[i];
    const RunResult* r = c.runs.empty() ? nullptr : &c.runs.back();
    out += fmt::format(
        "<tr class=\"{}\"><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td></tr>\n",
        css(c.verdict), case_anchor(i), html_escape(c.id), verdict::verdict_name(c.verdict),
        r ? fmt::format("{}/{}", r->outcome.devices_bound, r->outcome.devices_expected) : "",
        r ? (r->outcome.udev_worker_killed ? "yes" : "no") : "",
        r ? fmt::format("{:.1f} s", r->wall_s) : "");
  }
  out += "</table>\n";
  for (size_t i = 0; i < s.cases.size(); ++i) {
    const auto& c = s.cases[i];
    out += fmt::format("<section id=\"{}\">\n<h2>{} <span class=\"verdict {}\">{}</span></h2>\n",
                       case_anchor(i), html_escape(c.id), css(c.verdict),
                       verdict::verdict_name(c.verdict));
    if (!c.where.empty())
      out += fmt::format("<p>{}</p>\n", html_escape(c.where));
    if (!c.reason.empty())
      out += fmt::format("<p>{}</p>\n", html_escape(c.reason));
    for (size_t k = 0; k < c.runs.size(); ++k) {
      if (c.runs.size() > 1)
        out += fmt::format("<h3>run {} of {}</h3>\n", k + 1, c.runs.size());
      out += run_section(s, c.runs[k], console_of);
    }
    out += "</section>\n";
  }
  return out + "</body>\n</html>\n";
}

core::Status write_report(const Session& session) {
  const auto html =
      session_html(session, [](const RunResult& r) -> std::optional<console::BootLog> {
        if (r.dir.empty())
          return std::nullopt;
        auto log = console::parse_console_file(r.dir / "console.log");
        if (!log)
          return std::nullopt;
        return std::move(*log);
      });
  return core::write_file_atomic(session.dir / "report.html", html);
}

} // namespace probegate::report
