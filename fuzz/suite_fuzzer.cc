// SPDX-License-Identifier: GPL-2.0-only
// libFuzzer target: suite YAML -> suite::parse_suite. Bad input must become a
// usage error that names file:line:column and is safe on a terminal; good
// input must give valid cases whose ids are safe relative directories.
#include "core/text.h"
#include "fuzz/fuzz_support.h"
#include "spec/run_spec.h"
#include "suite/suite.h"

#include <cstddef>
#include <cstdint>
#include <regex>
#include <set>
#include <string>
#include <string_view>

using namespace probegate;

namespace {

constexpr std::string_view k_file = "fuzz.yaml";

// "fuzz.yaml:LINE:COLUMN: ..." with LINE and COLUMN at least 1.
bool names_position(const std::string& message) {
  static const std::regex position(R"(^fuzz\.yaml:([1-9][0-9]*):([1-9][0-9]*): )");
  return std::regex_search(message, position);
}

// A case id becomes session_dir / id: no absolute path, no empty, "." or ".."
// component.
bool safe_relative(const std::string& id) {
  if (id.empty() || id.front() == '/')
    return false;
  size_t start = 0;
  while (start <= id.size()) {
    const size_t slash = std::min(id.find('/', start), id.size());
    const std::string_view part(id.data() + start, slash - start);
    if (part.empty() || part == "." || part == "..")
      return false;
    start = slash + 1;
  }
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = suite::parse_suite(text, k_file);
  if (!parsed) {
    const auto& message = parsed.error().message;
    fuzz::invariant(parsed.error().kind == core::ErrorKind::usage, "suite-error-is-usage", message);
    fuzz::invariant(message.starts_with(k_file), "suite-error-names-file", message);
    fuzz::invariant(names_position(message), "suite-error-names-line", message);
    // The message may quote the suite's bytes; report_error (cli/main.cc)
    // prints it through core::printable, so that is what must be safe.
    fuzz::terminal_safe(core::printable(message), "suite-error-terminal-safe");
    return 0;
  }
  fuzz::invariant(!parsed->cases.empty() && parsed->cases.size() <= suite::k_max_cases,
                  "suite-case-count", std::to_string(parsed->cases.size()));
  std::set<std::string> ids;
  for (const auto& c : parsed->cases) {
    fuzz::invariant(safe_relative(c.id), "suite-case-id-safe-path", c.id);
    fuzz::invariant(ids.insert(c.id).second, "suite-case-id-unique", c.id);
    fuzz::invariant(spec::validate(c.spec).has_value(), "suite-case-valid", c.id);
    fuzz::terminal_safe(c.id, "suite-case-id-terminal-safe");
  }
  fuzz::invariant(suite::filter_cases(parsed->cases, "*").size() == parsed->cases.size(),
                  "suite-filter-star", parsed->name);
  return 0;
}
