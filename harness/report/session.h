// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "report/run_result.h"
#include "verdict/verdict.h"

#include <filesystem>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace probegate::report {

// One suite case after all its repeats.
struct CaseReport {
  std::string id;
  std::string where; // suite file:line:column
  verdict::VerdictKind verdict = verdict::VerdictKind::pass;
  std::string reason;          // skip reason, error, or why flaky
  std::vector<RunResult> runs; // one per repeat; empty when skipped or not run
  std::filesystem::path dir;
  bool ran = false;   // false: skipped, filtered out late, or interrupted first
  std::string row;    // the id without its kernel segment (suite::Case::row)
  std::string kernel; // the kernel ref, as the suite wrote it
  int retried = 0;    // infrastructure errors run again (--retries)
};

// A whole `probegate run`: the model summary.json, junit.xml and the final
// table are written from.
// In a session directory until summary.json is written for a session that
// ran every case: its presence means "do not trust this as a whole".
inline constexpr std::string_view k_incomplete_marker = "INCOMPLETE";

struct Session {
  std::string suite;
  std::filesystem::path dir;
  std::vector<CaseReport> cases;
  bool complete = false;
  bool interrupted = false;
  std::string storage_error; // the results directory could not be written: stopped

  double wall_s = 0;
  int jobs = 1;
  int repeat = 1;

  verdict::VerdictKind worst() const;
};

// Worse of two verdicts (error > crash > fail > flaky > skip > pass).
verdict::VerdictKind worse(verdict::VerdictKind a, verdict::VerdictKind b);
// The verdict of a case run several times: all alike -> that verdict;
// any error -> error; otherwise the repeats disagree -> flaky.
verdict::VerdictKind combine_repeats(const std::vector<verdict::VerdictKind>& verdicts);

std::string summary_json(const Session& session);
// JUnit XML as CI systems read it: one testcase per case; failures carry
// the failed checks and the console's last lines. Every string is escaped
// and stripped of control characters.
std::string junit_xml(const Session& session);
std::string xml_escape(std::string_view text);
// The final table for a terminal: case, verdict, bound, loader killed, wall.
std::string render_table(const Session& session);

// The knob x kernel table: one row per case id without its kernel segment,
// one column per kernel ref, in the suite's order. Each cell says what the
// kernel did: devices bound and whether udev killed the loader, or why the
// case skipped, plus the verdict where it is not a pass.
struct KnobTable {
  struct Cell {
    verdict::VerdictKind verdict = verdict::VerdictKind::pass;
    std::string text; // "2/2 bound, loader killed" or "skip: the kernel lacks ..."
    std::optional<int> bound;
    std::optional<bool> udev_killed;
  };
  std::vector<std::string> kernels;                         // column order
  std::map<std::string, std::string> releases;              // kernel ref -> release that ran
  std::vector<std::string> rows;                            // row order
  std::map<std::string, std::map<std::string, Cell>> cells; // row -> kernel -> cell
};
// Empty (no kernels) when the session ran fewer than two kernels.
KnobTable knob_table(const Session& session);
std::string knob_table_markdown(const KnobTable& table);
nlohmann::json knob_table_json(const KnobTable& table);

// summary.json and junit.xml into session.dir, atomically.
core::Status write_session(const Session& session);

} // namespace probegate::report
