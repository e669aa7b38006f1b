// SPDX-License-Identifier: GPL-2.0-only
#include "drivers/bisect_run.h"

#include "core/files.h"
#include "report/run_result.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace probegate::drivers {

namespace fs = std::filesystem;
using bisect::Answer;
using bisect::Class;
using bisect::Step;

namespace {

struct Interrupted {
  core::Error error;
};

std::string dir_name(size_t index, const std::string& label) {
  std::string out = fmt::format("{:02}-", index);
  for (char c : label)
    out +=
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ? c : '-';
  return out;
}

nlohmann::json step_json(const Step& s) {
  return {{"index", s.index},
          {"label", s.label},
          {"class", class_name(s.cls)},
          {"verdict", s.verdict},
          {"why", s.why},
          {"runs", s.runs},
          {"differing", s.differing},
          {"disagreed", s.disagreed},
          {"dirs", s.dirs}};
}

std::string_view kind_name(Answer::Kind kind) {
  switch (kind) {
  case Answer::Kind::found:
    return "found";
  case Answer::Kind::no_change:
    return "no_change";
  case Answer::Kind::first_untestable:
    return "first_untestable";
  case Answer::Kind::ambiguous:
    return "ambiguous";
  }
  return "?";
}

// Why a run came out as it did, in one line.
std::string why_of(const report::RunResult& r) {
  if (!r.error.empty())
    return r.error;
  std::vector<std::string> failed;
  for (const auto& c : r.verdict.checks)
    if (!c.pass)
      failed.push_back(fmt::format("{} expected {}, actual {}", c.name, c.expected, c.actual));
  if (!failed.empty())
    return fmt::format("{}", fmt::join(failed, "; "));
  if (!r.verdict.reason.empty())
    return r.verdict.reason;
  return fmt::format("{}/{} bound, loader {}", r.outcome.devices_bound, r.spec.devices,
                     r.outcome.udev_worker_killed ? "killed" : "not killed");
}

} // namespace

std::string bisect_log_json(const std::vector<std::string>& labels, const std::vector<Step>& steps,
                            const Answer* answer) {
  nlohmann::json j = {{"format", "probegate-bisect/1"}, {"items", labels}};
  j["steps"] = nlohmann::json::array();
  for (const auto& s : steps)
    j["steps"].push_back(step_json(s));
  if (answer)
    j["answer"] = {
        {"kind", kind_name(answer->kind)},
        {"last_same", labels.at(answer->last_same)},
        {"first", answer->kind == Answer::Kind::found || answer->kind == Answer::Kind::ambiguous
                      ? nlohmann::json(labels.at(answer->first))
                      : nlohmann::json()},
        {"certain", answer->certain},
        {"steps", answer->steps.size()}};
  return j.dump(2, ' ', true, nlohmann::json::error_handler_t::replace) + "\n";
}

core::Result<std::map<size_t, Step>> load_bisect_log(const fs::path& file,
                                                     const std::vector<std::string>& labels) {
  auto text = core::read_file(file);
  if (!text)
    return core::usage_error("cannot resume: {} is not readable ({})", file.string(),
                             text.error().message);
  std::map<size_t, Step> out;
  try {
    const auto j = nlohmann::json::parse(*text);
    if (j.value("format", "") != "probegate-bisect/1")
      return core::usage_error("cannot resume: {} is not a probegate bisect log", file.string());
    if (j.at("items").get<std::vector<std::string>>() != labels)
      return core::usage_error("cannot resume from {}: it bisected other items ({}); give the "
                               "same --kernels/--line/--param",
                               file.string(), j.at("items").dump());
    for (const auto& s : j.at("steps")) {
      Step step;
      step.index = s.at("index").get<size_t>();
      step.label = s.at("label").get<std::string>();
      const auto cls = s.at("class").get<std::string>();
      step.cls = cls == "untestable" ? Class::untestable : Class::same;
      step.verdict = s.at("verdict").get<std::string>();
      step.why = s.value("why", "");
      step.runs = s.value("runs", 0);
      step.differing = s.value("differing", 0);
      step.disagreed = s.value("disagreed", false);
      step.dirs = s.value("dirs", std::vector<std::string>{});
      if (step.index >= labels.size() || labels[step.index] != step.label)
        return core::usage_error("cannot resume from {}: step {} does not match the items",
                                 file.string(), step.index);
      out[step.index] = std::move(step);
    }
  } catch (const std::exception& e) {
    return core::usage_error("cannot resume from {}: {}", file.string(), e.what());
  }
  return out;
}

core::Result<Answer> run_bisect(const BisectOptions& o, const CaseRunner& runner) {
  std::vector<Step> decided;
  const fs::path log = o.dir / "bisect.json";
  auto oracle = [&](size_t i, const std::string& reference) -> Step {
    Step step;
    step.index = i;
    step.label = o.labels.at(i);
    step.cls = Class::same; // until a run says it cannot be tested
    const spec::RunSpec spec = o.spec_for(i);
    std::map<std::string, int> seen;
    for (int k = 1; k <= o.repeat; ++k) {
      const fs::path dir = o.dir / dir_name(i, step.label) /
                           (o.repeat == 1 ? fs::path() : fs::path(fmt::format("repeat-{}", k)));
      core::Result<report::RunResult> result;
      for (int attempt = 0; attempt < 2; ++attempt) { // an infrastructure error is retried once
        result = runner(spec, attempt == 0 ? dir : dir / "retry");
        if (!result && result.error().kind == core::ErrorKind::interrupted)
          throw Interrupted{result.error()};
        if (result && result->verdict.kind != verdict::VerdictKind::error)
          break;
      }
      if (!result || result->verdict.kind == verdict::VerdictKind::error ||
          result->verdict.kind == verdict::VerdictKind::skip) {
        step.cls = Class::untestable;
        step.verdict = result ? std::string(verdict::verdict_name(result->verdict.kind)) : "error";
        step.why = result ? why_of(*result) : result.error().message;
        if (result)
          step.dirs.push_back(result->dir.string());
        break;
      }
      step.dirs.push_back(result->dir.string());
      const std::string v(verdict::verdict_name(result->verdict.kind));
      ++seen[v];
      ++step.runs;
      if (!reference.empty() && v != reference) {
        ++step.differing;
        step.why = why_of(*result);
      } else if (step.why.empty()) {
        step.why = why_of(*result);
      }
    }
    if (step.cls != Class::untestable) {
      step.cls = Class::same; // search() decides same/differs from the verdict
      step.disagreed = seen.size() > 1;
      if (reference.empty()) { // item 0: its most common verdict is the reference
        step.verdict =
            std::ranges::max_element(seen, {}, [](const auto& kv) { return kv.second; })->first;
      } else {
        const bool differs = o.differs_if_any ? step.differing > 0 : 2 * step.differing > step.runs;
        std::string other;
        for (const auto& [v, count] : seen)
          if (v != reference)
            other = v;
        step.verdict = differs ? other : reference;
      }
    }
    Step recorded = step;
    if (recorded.cls != Class::untestable)
      recorded.cls = i == 0 || recorded.verdict == reference ? Class::same : Class::differs;
    decided.push_back(recorded);
    (void)core::write_file_atomic(log, bisect_log_json(o.labels, decided, nullptr));
    if (o.on_step)
      o.on_step(recorded);
    return step;
  };
  for (const auto& [i, step] : o.known)
    decided.push_back(step);
  try {
    auto answer = bisect::search(o.labels.size(), oracle, o.known);
    if (auto saved = core::write_file_atomic(log, bisect_log_json(o.labels, answer.steps, &answer));
        !saved)
      return std::unexpected(saved.error());
    return answer;
  } catch (const Interrupted& interrupted) {
    return std::unexpected(interrupted.error);
  }
}

int git_bisect_exit_code(const std::vector<verdict::VerdictKind>& verdicts, bool bad_if_any) {
  if (verdicts.empty())
    return k_git_skip;
  int bad = 0;
  for (auto v : verdicts) {
    if (v == verdict::VerdictKind::error || v == verdict::VerdictKind::skip)
      return k_git_skip;
    bad += v != verdict::VerdictKind::pass;
  }
  const bool is_bad = bad_if_any ? bad > 0 : 2 * bad > static_cast<int>(verdicts.size());
  return is_bad ? k_git_bad : k_git_good;
}

int exit_code(const Answer& answer) {
  switch (answer.kind) {
  case Answer::Kind::found:
  case Answer::Kind::ambiguous:
    return 0;
  case Answer::Kind::no_change:
    return 1;
  case Answer::Kind::first_untestable:
    return 3;
  }
  return 3;
}

std::string render_answer(const std::vector<std::string>& labels, const Answer& a) {
  std::string out;
  auto dirs_of = [&](size_t index) {
    for (const auto& s : a.steps)
      if (s.index == index && !s.dirs.empty())
        return fmt::format(" ({})", fmt::join(s.dirs, ", "));
    return std::string();
  };
  switch (a.kind) {
  case Answer::Kind::found:
    out = fmt::format("first different: {}{}\n  last like the first: {}{}\n", labels[a.first],
                      dirs_of(a.first), labels[a.last_same], dirs_of(a.last_same));
    break;
  case Answer::Kind::ambiguous:
    out = fmt::format("the change is between {} and {}: every item between could not be tested\n",
                      labels[a.last_same], labels[a.first]);
    break;
  case Answer::Kind::no_change:
    out = fmt::format("no change: {} behaves like {}\n", labels[a.last_same], labels[0]);
    break;
  case Answer::Kind::first_untestable:
    out = fmt::format("{} cannot be tested, so there is nothing to compare with\n", labels[0]);
    break;
  }
  std::vector<std::string> skipped;
  for (size_t i : a.skipped)
    skipped.push_back(labels[i]);
  out += fmt::format("  {} steps; {}{}\n", a.steps.size(), a.certain ? "certain" : "NOT certain",
                     skipped.empty() ? std::string()
                                     : fmt::format("; untestable: {}", fmt::join(skipped, ", ")));
  bool disagreed = false;
  for (const auto& s : a.steps)
    disagreed = disagreed || s.disagreed;
  if (disagreed)
    out += "  some steps' repeats disagreed (see bisect.json): the kernel is flaky here\n";
  return out;
}

} // namespace probegate::drivers
