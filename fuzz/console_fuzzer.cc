// SPDX-License-Identifier: GPL-2.0-only
// libFuzzer target: untrusted console text -> ConsoleParser -> Outcome ->
// result.json, the path every boot's console takes (drivers::judge_console).
#include "console/boot_log.h"
#include "fuzz/fuzz_support.h"
#include "report/run_result.h"
#include "verdict/outcome.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <string_view>

using namespace probegate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto log = console::parse_console(text);

  // Every line is fed once: a line count that disagrees means lost or split lines.
  const size_t newlines = static_cast<size_t>(std::ranges::count(text, '\n'));
  const size_t expected_lines = newlines + (!text.empty() && text.back() != '\n' ? 1 : 0);
  fuzz::invariant(log.lines == expected_lines, "console-line-count", text);

  report::RunResult result;
  result.outcome = verdict::derive_outcome(log, result.spec.devices, false);
  result.kernel_release = result.outcome.guest_kernel;
  // result.json is written like this (report::write_result): it must not throw,
  // and the counts must reach it (parsing it back costs more than the parser
  // under test: the parse fuzzer does that).
  const std::string dumped =
      report::to_json(result).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  fuzz::invariant(dumped.find(fmt::format("\"devices_bound\": {},",
                                          result.outcome.devices_bound)) != std::string::npos,
                  "result-json-has-counts", dumped);
  return 0;
}
