// SPDX-License-Identifier: GPL-2.0-only
// report.html: one self-contained page per session (no network, no script):
// the verdicts, the knob x kernel matrix in colour, devices bound against
// the prediction, and each run's timeline (docs/CONTRACTS.md "report.html").
#pragma once

#include "console/boot_log.h"
#include "report/session.h"

#include <filesystem>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

namespace probegate::report {

// The console of a run, parsed; nullopt when it cannot be read.
using ConsoleOf = std::function<std::optional<console::BootLog>(const RunResult&)>;

// Pure given `console_of`. Every string from the guest or the suite is
// escaped; a Content-Security-Policy forbids scripts besides.
std::string session_html(const Session& session, const ConsoleOf& console_of);
// Escapes text for HTML (xml_escape: invalid UTF-8 and control characters
// never reach the page).
std::string html_escape(std::string_view text);

// report.html into session.dir, atomically, from each run's console.log.
core::Status write_report(const Session& session);

// A bisection's page from its bisect.json (format probegate-bisect/1): the
// answer, then every step with its verdict, why, and links to its runs,
// relative to `dir` (where bisect.json and the page live). Pure.
std::string bisect_html(const nlohmann::json& log, const std::filesystem::path& dir);
// report.html beside DIR/bisect.json, atomically; an error names the file.
core::Status write_bisect_report(const std::filesystem::path& dir);

} // namespace probegate::report
