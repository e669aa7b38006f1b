// SPDX-License-Identifier: GPL-2.0-only
#include "spec/option_cli.h"

#include "core/text.h"
#include "spec/options.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace probegate::spec {

std::vector<std::string> CliRunOptions::flags_given() const {
  std::vector<std::string> out;
  for (const auto& o : run_options())
    if (o.key != "kernel" && has(o.key))
      out.emplace_back(o.flag);
  return out;
}

namespace {

template <typename Pick> void add_options(CLI::App& app, CliRunOptions& options, Pick pick) {
  const RunSpec defaults;
  for (const auto& o : run_options()) {
    if (!pick(o))
      continue;
    const std::string key(o.key);
    std::string help(o.help);
    if (o.type == OptionType::choice)
      help += fmt::format(": {}", fmt::join(o.words, "|"));
    CLI::Option* added = nullptr;
    if (o.cli_switch) {
      const std::string names =
          o.negation.empty() ? std::string(o.flag) : fmt::format("{},!{}", o.flag, o.negation);
      added = app.add_flag_function(
          names,
          [&options, key](std::int64_t count) { options.given[key] = count > 0 ? "yes" : "no"; },
          help);
    } else {
      added = app.add_option_function<std::string>(
          std::string(o.flag),
          [&options, key](const std::string& text) { options.given[key] = text; }, help);
      added->type_name(o.type == OptionType::integer ? "INT" : "TEXT");
      if (const auto shown = o.get(defaults); shown && !shown->empty())
        added->default_str(*shown);
      // CLI11 takes the next argument as the value even when it is an
      // option (`--devices --results x`); the value itself is to_spec()'s.
      added->check(CLI::Validator(
          [](std::string& text) {
            return text.starts_with("--")
                       ? fmt::format("a value is missing: '{}' is an option", core::printable(text))
                       : std::string();
          },
          "", ""));
    }
    if (!o.cli_group.empty())
      added->group(std::string(o.cli_group));
  }
}

} // namespace

void add_run_options(CLI::App& app, CliRunOptions& options, bool with_kernel) {
  add_options(app, options, [&](const OptionDef& o) { return o.key != "kernel" || with_kernel; });
}

void add_session_options(CLI::App& app, CliRunOptions& options) {
  add_options(app, options, [](const OptionDef& o) { return o.session_wide; });
}

core::Status apply_options(RunSpec& spec, const CliRunOptions& options) {
  for (const auto& o : run_options())
    if (auto it = options.given.find(o.key); it != options.given.end())
      if (auto set = set_option(spec, o, it->second, o.flag); !set)
        return set;
  return {};
}

core::Result<RunSpec> to_spec(const CliRunOptions& options) {
  RunSpec spec;
  if (auto set = apply_options(spec, options); !set)
    return std::unexpected(set.error());
  if (auto resolved = check_capacity(spec); !resolved)
    return std::unexpected(resolved.error());
  if (auto valid = validate(spec); !valid)
    return std::unexpected(valid.error());
  return spec;
}

} // namespace probegate::spec
