// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/kernel_list.h"

#include "kernel/debian_index.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <map>

namespace probegate::kernel {

std::string cached_kernels(const KernelStore& store, const std::filesystem::path& cache) {
  std::string out;
  out += fmt::format("cached kernels ({}):\n", (cache / "kernels").string());
  for (const auto& k : store.cached()) {
    std::vector<std::string> knobs;
    for (const auto& [name, present] : k.knobs)
      knobs.push_back(fmt::format("{}{}", present ? "+" : "-", name));
    out += fmt::format("  {:<26} line {:<5} {:<9} knobs {}  {}\n", k.release, k.line,
                       k.suite.empty() ? "local" : k.suite, fmt::join(knobs, " "), k.dir.string());
  }
  return out;
}

core::Result<std::string> fetchable_kernels(KernelStore& store, bool offline) {
  std::string out;
  std::vector<std::string> unreachable;
  auto offers = store.available(false, offline, &unreachable);
  if (!offers) {
    if (offline) {
      out +=
          fmt::format("fetchable Debian kernels: no saved index (run `probegate kernels list` once "
                      "with network)\n");
      return out;
    }
    return std::unexpected(offers.error());
  }
  std::vector<std::string> releases;
  std::map<std::string, std::string> suite_of;
  std::map<std::string, std::string> newest_of_suite;
  for (const auto& o : *offers) {
    releases.push_back(o.release);
    suite_of[o.release] = o.suite;
    auto& newest = newest_of_suite[o.suite];
    if (newest.empty() || release_less(newest, o.release))
      newest = o.release;
  }
  out += fmt::format(
      "fetchable Debian kernels{} (debian:<line> = newest ABI of the line in any suite):\n",
      offline ? ", from the saved indexes" : "");
  for (const auto& line : lines(releases)) {
    const auto newest = *newest_in_line(releases, line);
    out += fmt::format("  debian:{:<9} -> {:<26} {}\n", line, newest, suite_of[newest]);
  }
  for (const auto& [suite, newest] : newest_of_suite)
    out += fmt::format("  debian:{:<9} -> {:<26} {}\n", suite, newest, suite);
  if (!unreachable.empty())
    out += fmt::format("not reachable: {}\n", fmt::join(unreachable, ", "));
  return out;
}

} // namespace probegate::kernel
