// SPDX-License-Identifier: GPL-2.0-only
#include "suite/shard.h"

#include "core/files.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

namespace probegate::suite {

namespace {

constexpr int k_max_shards = 1000;

std::optional<int> whole_number(std::string_view text) {
  int n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size())
    return std::nullopt;
  return n;
}

} // namespace

core::Result<Shard> parse_shard(std::string_view text,
                                const std::function<const char*(const char*)>& env) {
  std::string given(text);
  if (text == "auto") {
    const char* index = env("CI_NODE_INDEX");
    const char* total = env("CI_NODE_TOTAL");
    if (!index || !total)
      return core::usage_error(
          "--shard auto reads CI_NODE_INDEX and CI_NODE_TOTAL (GitLab's parallel:), and {} "
          "unset; elsewhere give --shard I/N, e.g. --shard ${{{{ matrix.shard }}}}/3 in a "
          "GitHub Actions matrix",
          !index && !total ? "both are"
          : !index         ? "CI_NODE_INDEX is"
                           : "CI_NODE_TOTAL is");
    given = fmt::format("{}/{}", index, total);
  }
  const auto slash = given.find('/');
  const auto index = slash == std::string::npos
                         ? std::nullopt
                         : whole_number(std::string_view(given).substr(0, slash));
  const auto total = slash == std::string::npos
                         ? std::nullopt
                         : whole_number(std::string_view(given).substr(slash + 1));
  if (!index || !total || *total < 1 || *total > k_max_shards || *index < 1 || *index > *total)
    return core::usage_error("--shard must be I/N with 1 <= I <= N <= {} (or auto), not '{}'{}",
                             k_max_shards, given,
                             text == "auto" ? " (from CI_NODE_INDEX/CI_NODE_TOTAL)" : "");
  return Shard{.index = *index, .total = *total};
}

core::Result<std::map<std::string, double>> read_durations(const std::filesystem::path& summary) {
  auto text = core::read_file(summary);
  if (!text)
    return std::unexpected(core::with_context(text.error(), "--durations"));
  std::map<std::string, double> out;
  try {
    const auto j = nlohmann::json::parse(*text);
    if (j.value("format", "") != "probegate-summary/1")
      return core::usage_error("--durations {}: not a probegate summary.json", summary.string());
    for (const auto& c : j.at("cases")) {
      double wall = 0;
      for (const auto& r : c.at("runs"))
        wall += r.at("wall_s").get<double>();
      if (!c.at("runs").empty())
        out[c.at("id").get<std::string>()] = wall;
    }
  } catch (const nlohmann::json::exception& e) {
    return core::usage_error("--durations {}: not a readable summary.json: {}", summary.string(),
                             e.what());
  }
  return out;
}

uint64_t case_hash(std::string_view id) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : id) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::vector<int> assign_shards(const std::vector<std::string>& ids,
                               const std::map<std::string, double>& durations, int total) {
  std::vector<int> out(ids.size(), 1);
  if (total <= 1)
    return out;
  std::vector<double> load(static_cast<size_t>(total), 0);
  std::vector<size_t> known;
  double sum = 0;
  for (size_t i = 0; i < ids.size(); ++i)
    if (const auto d = durations.find(ids[i]); d != durations.end()) {
      known.push_back(i);
      sum += d->second;
    }
  const double mean = known.empty() ? 1.0 : sum / static_cast<double>(known.size());
  for (size_t i = 0; i < ids.size(); ++i)
    if (!durations.contains(ids[i])) {
      const auto shard = static_cast<size_t>(case_hash(ids[i]) % static_cast<uint64_t>(total));
      out[i] = static_cast<int>(shard) + 1;
      load[shard] += mean;
    }
  std::ranges::sort(known, [&](size_t a, size_t b) {
    const double da = durations.at(ids[a]), db = durations.at(ids[b]);
    return da != db ? da > db : ids[a] < ids[b];
  });
  for (const size_t i : known) {
    const auto lightest = static_cast<size_t>(std::ranges::min_element(load) - load.begin());
    out[i] = static_cast<int>(lightest) + 1;
    load[lightest] += durations.at(ids[i]);
  }
  return out;
}

} // namespace probegate::suite
