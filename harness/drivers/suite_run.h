// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "report/run_result.h"
#include "report/session.h"
#include "suite/suite.h"

#include <filesystem>
#include <functional>
#include <string>

namespace probegate::drivers {

struct SuiteOptions {
  int jobs = 1;
  int repeat = 1;
  bool fail_fast = false;
  int retries = 0; // runs again a case whose verdict is error, up to this many times
  std::filesystem::path session_dir; // results/<session>
};

// Runs one case once into `run_dir` (the real one calls boot(); tests pass a
// fake). An interrupted Error stops the suite; other Errors are the case's.
using CaseRunner = std::function<core::Result<report::RunResult>(
    const spec::RunSpec& spec, const std::filesystem::path& run_dir)>;

// Hears about progress, from the worker threads (calls are serialised).
class SuiteObserver {
public:
  virtual ~SuiteObserver() = default;
  virtual void started(const suite::Case& c, int running) = 0;
  virtual void finished(const report::CaseReport& c, int done, int total, int running) = 0;
};

// Runs the cases on `jobs` workers in suite order; --repeat N runs each N
// times (repeats that disagree make it flaky); --fail-fast stops handing out
// cases after the first fail, crash or error. The session directory holds an
// INCOMPLETE marker from the start until every case has finished; an
// interrupt leaves it there and returns the finished cases intact.
report::Session run_suite(const std::string& suite_name, const std::vector<suite::Case>& cases,
                          const SuiteOptions& options, const CaseRunner& runner,
                          SuiteObserver& observer);

// The directory of a case inside the session (ids nest: knobs/sync/dev2).
std::filesystem::path case_dir(const std::filesystem::path& session, const std::string& id);

} // namespace probegate::drivers
