// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "spec/run_spec.h"

#include <climits>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace probegate::spec {

// How an option's text is read.
enum class OptionType {
  integer, // a whole number in [min, max]; `words` lists other values allowed ("capacity")
  yes_no,  // yes|no (true|false in suites)
  choice,  // one of `words`
  text,    // anything (kernel refs are checked where they are resolved)
};

// A value read from text by set_option(), for OptionDef::set.
struct OptionValue {
  int number = 0;
  bool yes = false;
  std::string_view word; // the text as given
};

// One run option, declared once: the CLI flags and help, the suite key and
// result.json name, how its text is read and checked, and where it may be
// used. The CLI (option_cli.h), suites, validate(), options_json() and
// `bisect --param` are all made from run_options().
struct OptionDef {
  std::string_view key = {};      // suite key and result.json name
  std::string_view flag = {};     // the command line's: "--udev-timeout"
  std::string_view negation = {}; // a switch's "no" flag: "--no-probe-kthread"
  std::string_view help = {};
  OptionType type = OptionType::text;
  int min = INT_MIN;
  int max = INT_MAX;
  std::string_view unit = {}; // "second": "must be 1 to 86400 seconds"
  std::vector<std::string_view> words =
      {}; // choice: the words allowed; integer: words besides numbers
  std::string_view id_prefix =
      {};                    // a listed value's case-id segment: "dev" -> "dev2" ("": the value)
  bool in_suite = true;      // a suite key and a result.json field
  bool cli_switch = false;   // given without a value on the command line
  bool bisect_param = false; // `bisect --param KEY=LO..HI` may vary it
  bool by_kernel = true;     // `by_kernel:` may set it
  bool session_wide = false; // `probegate run` takes it too, for every case of the suite
  std::string_view cli_group = {}; // help section ("" = Options)
  void (*set)(RunSpec&, const OptionValue&) = nullptr;
  // A text option's own check of its value; errors name `name`.
  core::Status (*check)(std::string_view text, std::string_view name) = nullptr;
  // The value as a suite would write it; nullopt when unset.
  std::optional<std::string> (*get)(const RunSpec&) = nullptr;
  // result.json's value, when not get()'s text (a number for integers).
  nlohmann::json (*json)(const RunSpec&) = nullptr;
};

// Every run option, in suite-key order (the order of case-id segments).
const std::vector<OptionDef>& run_options();
const OptionDef* find_option(std::string_view key);

// Reads `text` into `spec`. Errors say "<name> must be ...": `name` is the
// flag on a command line, the key in a suite. Ranges are validate()'s.
core::Status set_option(RunSpec& spec, const OptionDef& option, std::string_view text,
                        std::string_view name);
// An integer option's range as a rule: "must be 1 to 86400 seconds, not 0".
core::Status check_range(const OptionDef& option, const RunSpec& spec);

// The options `bisect --param` may vary, for messages: "devices, ... or udev-timeout".
std::string bisect_param_names();

} // namespace probegate::spec
