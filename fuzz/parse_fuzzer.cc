// SPDX-License-Identifier: GPL-2.0-only
// libFuzzer target: `probegate parse LOG [--json]`, offline: the console log
// and the expectations are the input; the terminal text and the JSON the
// command prints must be safe whatever the guest wrote.
#include "console/boot_log.h"
#include "drivers/boot.h"
#include "fuzz/fuzz_support.h"
#include "report/run_result.h"
#include "spec/run_spec.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

using namespace probegate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2)
    return 0;
  // Two bytes choose the options `probegate parse` was given.
  spec::RunSpec spec;
  spec.expect.boot = true; // --expect-boot yes, the command's default
  const bool devices_given = (data[0] & 0x01) != 0;
  if (devices_given)
    spec.devices = (data[0] >> 1) % (spec::k_max_devices + 1);
  if ((data[1] & 0x03) == 1)
    spec.expect.boot = std::nullopt;
  if ((data[1] & 0x0c) != 0)
    spec.expect.udev_kill = (data[1] & 0x0c) == 0x04 ? verdict::Tri::yes : verdict::Tri::no;
  if ((data[1] & 0x10) != 0)
    spec.expect.bound = (data[1] >> 5) % (spec.devices + 1);
  if (!spec::validate(spec))
    return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);

  // What cmd_parse in cli/main.cc does, step by step.
  const auto log = console::parse_console(text);
  if (!devices_given) {
    if (const auto* pci = log.fact("pci"); pci && pci->fields.contains("edu")) {
      const int edu = std::atoi(pci->fields.at("edu").c_str());
      if (edu >= 0 && edu <= spec::k_max_devices)
        spec.devices = edu;
    }
  }
  const auto result = drivers::judge_console(spec, log, false);
  const std::string text_out = report::render_text(result);
  fuzz::terminal_safe(text_out, "parse-text-terminal-safe");
  const std::string json_out =
      report::to_json(result).dump(2, ' ', true, nlohmann::json::error_handler_t::replace);
  fuzz::terminal_safe(json_out, "parse-json-terminal-safe");
  const auto back = nlohmann::json::parse(json_out, nullptr, false);
  fuzz::invariant(!back.is_discarded() &&
                      back.at("verdict") == verdict::verdict_name(result.verdict.kind),
                  "parse-json-round-trip", json_out);
  return 0;
}
