// SPDX-License-Identifier: GPL-2.0-only
// A session as KCIDB v5.3 JSON (KernelCI's common database): one checkout
// per kernel, one build per kernel artifact, one test per case
// (docs/CONTRACTS.md "KTAP and KCIDB").
#pragma once

#include "core/error.h"
#include "report/session.h"

#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string_view>

namespace probegate::report {

// KCIDB's origin rule, [a-z0-9_]+: an error names --kcidb-origin.
core::Status check_kcidb_origin(std::string_view origin);
// Pure. Statuses: pass PASS, skip SKIP, fail/flaky/crash FAIL, an
// infrastructure error MISS (the kernel's status is unknown, never FAIL).
nlohmann::json kcidb_json(const Session& session, std::string_view origin);
// The JSON into `file`, atomically.
core::Status write_kcidb(const Session& session, const std::filesystem::path& file,
                         std::string_view origin);

} // namespace probegate::report
