// SPDX-License-Identifier: GPL-2.0-only
#include "drivers/bisect.h"

#include "core/files.h"
#include "core/text.h"
#include "kernel/debian_index.h"
#include "kernel/kernel_ref.h"
#include "kernel/kernel_store.h"
#include "report/html.h"
#include "report/run_result.h"
#include "spec/options.h"
#include "suite/suite.h"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <regex>
#include <unistd.h>

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

core::Result<ParamRange> parse_param(std::string_view text) {
  // At most 9 digits: the numbers must fit.
  static const std::regex form(R"(([a-z_-]+)=(\d{1,9})\.\.(\d{1,9}))");
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_match(text.begin(), text.end(), m, form))
    return core::usage_error("--param '{}' must be NAME=LO..HI, e.g. udev-timeout=1..60", text);
  ParamRange range{m[1].str(), std::stoi(m[2].str()), std::stoi(m[3].str())};
  std::ranges::replace(range.key, '-', '_');
  if (const auto* option = spec::find_option(range.key); !option || !option->bisect_param)
    return core::usage_error("--param {}: bisect searches {}", m[1].str(),
                             spec::bisect_param_names());
  if (range.lo >= range.hi || range.hi - range.lo > 100000)
    return core::usage_error(
        "--param {}: the range {}..{} must go up and hold at most 100000 values", range.key,
        range.lo, range.hi);
  return range;
}

core::Result<BisectItems> param_items(const spec::RunSpec& base, const ParamRange& range,
                                      bool bound_given) {
  BisectItems items;
  items.param = range.key;
  items.rule = bound_given ? "each step is judged by the expectations given"
                           : "no --expect-bound: each step expects every device to bind and the "
                             "guest to boot";
  for (int v = range.lo; v <= range.hi; ++v) {
    const std::string label = fmt::format("{}={}", range.key, v);
    spec::RunSpec s = base;
    if (auto set = spec::apply_option(s, range.key, std::to_string(v)); !set)
      return std::unexpected(core::with_context(set.error(), label));
    if (!bound_given) {
      s.expect_capacity = false;
      s.expect.bound = s.devices;
    }
    if (auto resolved = spec::check_capacity(s); !resolved)
      return std::unexpected(core::with_context(resolved.error(), label));
    s.name = label;
    if (auto valid = spec::validate(s); !valid)
      return std::unexpected(core::with_context(valid.error(), label));
    items.labels.push_back(label);
    items.specs.push_back(std::move(s));
  }
  return items;
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
    const auto attempts = run_attempts(spec, o.dir / dir_name(i, step.label), o.policy, runner,
                                       [](const Attempt& a) { return a.testable(); });
    for (const auto& a : attempts) {
      const auto& result = a.result;
      if (a.interrupted())
        throw Interrupted{result.error()};
      if (!a.testable()) {
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
        const bool differs = decides(o.policy, step.differing, step.runs);
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
    if (core::write_file_atomic(log, bisect_log_json(o.labels, decided, nullptr)))
      (void)report::write_bisect_report(o.dir);
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
    if (auto page = report::write_bisect_report(o.dir); !page)
      return std::unexpected(page.error());
    return answer;
  } catch (const Interrupted& interrupted) {
    return std::unexpected(interrupted.error);
  }
}

namespace {

// The base run of a bisection: a suite's case, or the run options.
core::Result<spec::RunSpec> bisect_base(const BisectRequest& b) {
  if (b.case_ref.empty())
    return spec::to_spec(b.run);
  if (const auto given = b.run.flags_given(); !given.empty())
    return core::usage_error("--case takes the run from its suite; drop {}",
                             fmt::join(given, ", "));
  const auto colon = b.case_ref.rfind(':');
  if (colon == std::string::npos)
    return core::usage_error("--case '{}' must be SUITE.yaml:ID, e.g. suites/knobs.yaml:knobs/sync",
                             b.case_ref);
  auto loaded = suite::load_suite(b.case_ref.substr(0, colon));
  if (!loaded)
    return std::unexpected(loaded.error());
  const std::string id = b.case_ref.substr(colon + 1);
  std::vector<std::string> ids;
  for (const auto& c : loaded->cases) {
    if (c.id == id)
      return c.spec;
    ids.push_back(c.id);
  }
  return core::usage_error("--case: {} has no case '{}'; its cases: {}",
                           b.case_ref.substr(0, colon), id, fmt::join(ids, ", "));
}

// The Debian ABIs of a line (debian:6.1), oldest first.
core::Result<std::vector<std::string>> line_kernels(const std::string& line, Environment& env) {
  auto ref = kernel::parse_kernel_ref(line);
  if (!ref)
    return std::unexpected(ref.error());
  if (ref->kind != kernel::KernelRef::Kind::debian_line)
    return core::usage_error("--line takes debian:<line>, not '{}'", line);
  kernel::KernelStore store(env.runner, env.cache, env.progress);
  auto offers = store.available();
  if (!offers)
    return std::unexpected(offers.error());
  std::vector<std::string> releases;
  for (const auto& o : *offers)
    if (kernel::line_of(o.release) == ref->value)
      releases.push_back(o.release);
  std::ranges::sort(releases, kernel::release_less);
  std::vector<std::string> refs;
  for (const auto& r : releases)
    refs.push_back("debian:" + r);
  return refs;
}

// The items of --kernels or --line: the base run on each kernel.
core::Result<BisectItems> kernel_items(const spec::RunSpec& base, std::vector<std::string> refs) {
  if (refs.size() < 2)
    return core::usage_error("bisect needs at least two items, got {}", fmt::join(refs, ", "));
  BisectItems items;
  items.rule = "each step is judged by the expectations given";
  for (const auto& ref : refs) {
    if (auto parsed = kernel::parse_kernel_ref(ref); !parsed)
      return std::unexpected(parsed.error());
    spec::RunSpec s = base;
    s.kernel = ref;
    s.name = ref;
    if (auto valid = spec::validate(s); !valid)
      return std::unexpected(core::with_context(valid.error(), ref));
    items.specs.push_back(std::move(s));
  }
  items.labels = std::move(refs);
  return items;
}

core::Result<BisectItems> bisect_items(const BisectRequest& b, const spec::RunSpec& base,
                                       Environment& env) {
  if (!b.kernels.empty()) {
    std::vector<std::string> refs;
    std::string rest = b.kernels;
    for (size_t at; (at = rest.find(',')) != std::string::npos; rest.erase(0, at + 1))
      refs.push_back(rest.substr(0, at));
    refs.push_back(rest);
    return kernel_items(base, std::move(refs));
  }
  if (!b.line.empty()) {
    auto refs = line_kernels(b.line, env);
    if (!refs)
      return std::unexpected(refs.error());
    return kernel_items(base, std::move(*refs));
  }
  auto range = parse_param(b.param);
  if (!range)
    return std::unexpected(range.error());
  // With --case, the case's expectations judge each step.
  return param_items(base, *range, b.run.has("expect_bound") || !b.case_ref.empty());
}

// One line per decided step, as it is decided.
std::function<void(const bisect::Step&)> print_steps(int resumed) {
  return [step_number = resumed](const bisect::Step& s) mutable {
    fmt::print("step {}: {:<28} {:<5} {:<10} {}\n", ++step_number, s.label, s.verdict,
               bisect::class_name(s.cls),
               s.disagreed
                   ? fmt::format("repeats disagree ({}/{} differ); {}", s.differing, s.runs, s.why)
                   : s.why);
    std::fflush(stdout);
  };
}

// The extra seconds udevd waited in the bisection's boots, as their
// result.json files recorded it (the user space decides it; 0 if none says).
int recorded_udev_extra_s(const bisect::Answer& answer) {
  for (const auto& step : answer.steps)
    for (const auto& dir : step.dirs)
      if (auto text = core::read_file(std::filesystem::path(dir) / "result.json")) {
        const auto json = nlohmann::json::parse(*text, nullptr, false);
        const nlohmann::json::json_pointer extra("/userspace/udev_extra_timeout_s");
        if (json.is_object() && json.contains(extra) && json.at(extra).is_number_integer())
          return json.at(extra).get<int>();
      }
  return 0;
}

// `--param devices=...` answers the capacity question: the measurement
// beside the prediction of init + N x probe <= timeout (+ udev's extra).
void print_capacity(const spec::RunSpec& measured_last_same, const spec::RunSpec& widest,
                    int extra_s) {
  if (widest.async != spec::AsyncKnob::none)
    return;
  const auto c = spec::predicted_capacity(widest, extra_s);
  fmt::print("  most devices that bind: {} measured, {}{} predicted (udev timeout {} s{}, "
             "{} ms probes)\n",
             measured_last_same.devices, c.at_least,
             c.at_most != c.at_least ? fmt::format("..{}", c.at_most) : std::string(),
             widest.udev_timeout_s.value_or(spec::k_udev_default_timeout_s),
             extra_s ? fmt::format(" + {} s udev waits on top", extra_s) : std::string(),
             widest.probe_delay_ms);
}

} // namespace

core::Result<int> bisect_command(const BisectRequest& b, Environment& env) {
  const int modes = !b.kernels.empty() + !b.line.empty() + !b.param.empty();
  if (modes != 1)
    return core::usage_error("bisect needs exactly one of --kernels A,B,..., --line "
                             "debian:<line> or --param NAME=LO..HI");
  auto policy = attempt_policy(b.repeat, b.bad_if);
  if (!policy)
    return std::unexpected(policy.error());
  // A step's repeats, and a --param bisection's steps (one kernel), restore
  // one group: save it at once. Kernel steps each boot a group once.
  env.save_at_first_sight = b.repeat > 1 || !b.param.empty();
  auto base = bisect_base(b);
  if (!base)
    return std::unexpected(base.error());
  // Every item's run, checked before anything boots.
  auto items = bisect_items(b, *base, env);
  if (!items)
    return std::unexpected(items.error());
  const auto& labels = items->labels;

  BisectOptions options;
  options.labels = labels;
  options.policy = *policy;
  options.spec_for = [&](size_t i) { return items->specs[i]; };
  options.dir = b.resume.empty()
                    ? env.results / fmt::format("bisect-{}-{}", core::time_stamp(), ::getpid())
                    : std::filesystem::path(b.resume);
  if (!b.resume.empty()) {
    auto known = load_bisect_log(options.dir / "bisect.json", labels);
    if (!known)
      return std::unexpected(known.error());
    options.known = std::move(*known);
  }
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec)
    return core::infra_error("cannot create {}: {}", options.dir.string(), ec.message());
  fmt::print(stderr, "probegate: bisecting {} items, {} .. {}{} -> {}\n", labels.size(),
             labels.front(), labels.back(),
             options.known.empty() ? "" : fmt::format(" ({} steps resumed)", options.known.size()),
             options.dir.string());
  fmt::print(stderr, "probegate: {}\n", items->rule);
  options.on_step = print_steps(static_cast<int>(options.known.size()));

  auto answer = run_bisect(options, [&](const spec::RunSpec& s, const std::filesystem::path& dir) {
    return boot(s, env, dir);
  });
  if (!answer) {
    fmt::print(stderr, "probegate: resume with --resume {}\n", options.dir.string());
    return std::unexpected(answer.error());
  }
  fmt::print("{}", render_answer(labels, *answer));
  if (items->param == "devices" && answer->kind == bisect::Answer::Kind::found)
    print_capacity(items->specs[answer->last_same], items->specs.back(),
                   recorded_udev_extra_s(*answer));
  fmt::print("results: {}\n", options.dir.string());
  return exit_code(*answer);
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
