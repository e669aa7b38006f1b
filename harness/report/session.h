// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "core/text.h"
#include "report/run_result.h"
#include "verdict/verdict.h"

#include <cstdint>
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
  // run --hosts: the host that ran it, and the hosts lost while it ran
  // there (each such attempt is under <session>/lost-hosts/<host>/<id>).
  std::string host{};
  std::vector<std::string> lost_on{};
};

// A host of a pool (`run --hosts`) as the session used it.
struct HostReport {
  std::string name;
  std::string uri; // without credentials
  int slots = 1;
  std::map<std::string, std::string> labels;
  int cases = 0;           // cases it finished
  bool lost = false;       // it went away during the session
  std::string lost_reason; // what probegate saw
  double lost_at_s = 0;    // seconds into the session
};

// Where the attempts of cases on a lost host are kept, in the session.
inline constexpr std::string_view k_lost_dir = "lost-hosts";

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

  // What `probegate merge` checks before it joins sessions: the suite file's
  // hash, the --filter, and every case id of the filtered suite in order.
  std::string suite_sha256;
  std::string filter;
  std::vector<std::string> suite_cases;
  std::vector<HostReport> hosts; // run --hosts: the pool, in the file's order
  int shard_index = 1;           // --shard I/N; 1/1 when not sharded
  int shard_total = 1;
  // A merged session: the directories it was made from, and the shards
  // (1-based) none of them held.
  std::vector<std::filesystem::path> merged_from;
  std::vector<int> missing_shards;

  verdict::VerdictKind worst() const;
};

// Worse of two verdicts (error > crash > fail > flaky > skip > pass).
verdict::VerdictKind worse(verdict::VerdictKind a, verdict::VerdictKind b);
// The verdict of a case run several times: all alike -> that verdict;
// any error -> error; otherwise the repeats disagree -> flaky.
verdict::VerdictKind combine_repeats(const std::vector<verdict::VerdictKind>& verdicts);

// The end of a console log: each line cut to `line_bytes` (and made
// printable if asked), then at most `max_lines` lines and `max_bytes` bytes
// of them, newlines counted (JUnit's failure text, KCIDB's log_excerpt).
struct TailLimits {
  size_t line_bytes = 500;
  size_t max_lines = SIZE_MAX;
  size_t max_bytes = SIZE_MAX;
  bool printable = false;
};
std::string console_tail(const std::filesystem::path& log, const TailLimits& limits);

std::string summary_json(const Session& session);
// JUnit XML as CI systems read it: one testcase per case; failures carry
// the failed checks and the console's last lines. Every string is escaped
// and stripped of control characters.
std::string junit_xml(const Session& session);
using core::xml_escape;
// KTAP version 1 (the kernel's Documentation/dev-tools/ktap.rst), one
// result line per case: `ok`, `ok … # SKIP reason`, `not ok` after the failed
// checks as diagnostic lines, `not ok … # ERROR reason` for an
// infrastructure error. Names and diagnostics are printable, one line, no '#'.
std::string ktap(const Session& session);
// The final table for a terminal: case, verdict, bound, loader killed, wall.
std::string render_table(const Session& session);

// What `run` and `merge` print at the end: render_table(), the knob table,
// the verdict line and where the results are.
std::string render_session(const Session& session);

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
    size_t case_index = 0; // its case in Session::cases
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

// summary.json, junit.xml, report.html (report/html.h) and the knob table
// into session.dir, each atomically.
core::Status write_session(const Session& session);

} // namespace probegate::report
