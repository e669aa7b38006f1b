// SPDX-License-Identifier: GPL-2.0-only
// Shards: one suite split over N CI jobs, each case in exactly one shard,
// whatever machine computes the split (docs/CONTRACTS.md "Shards and merge").
#pragma once

#include "core/error.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace probegate::suite {

struct Shard {
  int index = 1; // 1-based, as GitLab's CI_NODE_INDEX
  int total = 1;
};

// "I/N" (1 <= I <= N <= 1000), or "auto": GitLab's parallel: variables
// CI_NODE_INDEX and CI_NODE_TOTAL, read through `env`. Errors name --shard.
core::Result<Shard> parse_shard(std::string_view text,
                                const std::function<const char*(const char*)>& env);

// Seconds per case id, from an earlier session's summary.json (a merged one
// too): the sum of each case's runs. An error names the file.
core::Result<std::map<std::string, double>> read_durations(const std::filesystem::path& summary);

// The stable hash a case without a recorded duration is placed by (FNV-1a,
// 64 bits, of its id): the same on every machine and every build.
uint64_t case_hash(std::string_view id);

// Which shard (1-based) each id goes to, in the order of `ids`. Cases with a
// duration go longest first to the least loaded shard (ties: the lower
// shard, then the id); the others by case_hash(id) % N, each counted at the
// mean recorded duration. Pure: the same inputs give the same split.
std::vector<int> assign_shards(const std::vector<std::string>& ids,
                               const std::map<std::string, double>& durations, int total);

} // namespace probegate::suite
