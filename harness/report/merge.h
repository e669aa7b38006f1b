// SPDX-License-Identifier: GPL-2.0-only
// Sessions read back from their directories, and shards merged into one
// session (docs/CONTRACTS.md "Shards and merge").
#pragma once

#include "core/error.h"
#include "report/session.h"

#include <filesystem>
#include <vector>

namespace probegate::report {

// A session directory read back: summary.json, and each run's result.json.
// The paths a summary recorded are taken relative to where the directory is
// now (a CI artifact is seldom unpacked where it was made). An error names
// the file.
core::Result<Session> read_session(const std::filesystem::path& dir);

// Pure: shards of one suite -> one session, in the suite's case order,
// written to `out`. Refuses sessions of different suites (name, file hash,
// --filter, --repeat, shard count), a shard given twice and a case that
// appears twice. Shards that none of them holds are listed in
// missing_shards, and the result is not complete.
core::Result<Session> merge_sessions(const std::vector<Session>& shards,
                                     const std::filesystem::path& out);

} // namespace probegate::report
