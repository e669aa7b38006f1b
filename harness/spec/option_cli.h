// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "spec/run_spec.h"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}

namespace probegate::spec {

// The run options of one command line: add_run_options() adds every flag of
// the option table to a CLI11 (sub)command, which keeps the texts given here
// by suite key; to_spec() reads them as a suite's values are read. Tests
// parse argv with a CLI::App of their own.
struct CliRunOptions {
  std::map<std::string, std::string, std::less<>> given; // key -> text

  bool has(std::string_view key) const { return given.contains(key); }
  // The flags given, but --kernel: "--devices", ...
  std::vector<std::string> flags_given() const;
};

// `with_kernel`: whether the command takes --kernel (bisect-run builds its own).
void add_run_options(CLI::App& app, CliRunOptions& options, bool with_kernel);

// The options `probegate run` takes for every case of a suite
// (OptionDef::session_wide: --fresh-boot, --backend, --connect).
void add_session_options(CLI::App& app, CliRunOptions& options);

// Sets the options given into `spec`. Errors name the flag.
core::Status apply_options(RunSpec& spec, const CliRunOptions& options);

// The RunSpec of the options given (the rest at their defaults), capacity
// resolved and validated. Errors name the flag.
core::Result<RunSpec> to_spec(const CliRunOptions& options);

} // namespace probegate::spec
