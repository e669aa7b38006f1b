// SPDX-License-Identifier: GPL-2.0-only
#include "drivers/commands.h"

#include "console/boot_log.h"
#include "core/text.h"
#include "kernel/kernel_list.h"
#include "kernel/kernel_ref.h"
#include "kernel/kernel_store.h"
#include "report/html.h"
#include "report/merge.h"
#include "report/run_result.h"

#include <cstdio>
#include <cstdlib>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

namespace probegate::drivers {

core::Result<int> boot_command(const spec::CliRunOptions& options, bool console, Environment& env) {
  auto spec = spec::to_spec(options);
  if (!spec)
    return std::unexpected(spec.error());
  env.explicit_request = true;
  if (console) // guest text is untrusted: printable only
    env.console = [](std::string_view line) { fmt::print(stderr, "{}\n", core::printable(line)); };
  auto result = boot(*spec, env);
  if (!result)
    return std::unexpected(result.error());
  fmt::print("{}", report::render_text(*result));
  if (result->verdict.kind == verdict::VerdictKind::error)
    return 3;
  return verdict::exit_code(result->verdict.kind);
}

core::Result<int> parse_command(const spec::CliRunOptions& options, const std::string& log_path,
                                bool json) {
  auto spec = spec::to_spec(options);
  if (!spec)
    return std::unexpected(spec.error());
  auto parsed = console::parse_console_file(log_path);
  if (!parsed)
    return std::unexpected(parsed.error());
  const auto& log = *parsed;
  if (!options.has("devices")) { // the agent said how many edu devices it saw
    if (const auto* pci = log.fact("pci"); pci && pci->fields.contains("edu")) {
      // Guest text is untrusted: parse without throwing, keep sane counts only.
      const int edu = std::atoi(pci->fields.at("edu").c_str());
      if (edu >= 0 && edu <= spec::k_max_devices)
        spec->devices = edu;
    }
  }
  // expect_bound: capacity follows the udev the log says ran (an unknown
  // one counts as older than 256: no extra time).
  if (auto resolved =
          spec::resolve_capacity(*spec, spec::udev_extra_s(*spec, log.udev_version.value_or(0)));
      !resolved)
    return std::unexpected(resolved.error());
  const bool timed_out = false;
  auto result = judge_console(*spec, log, timed_out);
  if (json)
    fmt::print("{}\n", report::to_json(result).dump(
                           2, ' ', /*ensure_ascii: no C1 control reaches a terminal*/ true,
                           nlohmann::json::error_handler_t::replace));
  else
    fmt::print("{}", report::render_text(result));
  return verdict::exit_code(result.verdict.kind);
}

core::Result<int> fetch_command(const std::vector<std::string>& refs, Environment& env) {
  kernel::KernelStore store(env.runner, env.cache, env.progress);
  for (const auto& text : refs) {
    auto ref = kernel::parse_kernel_ref(text);
    if (!ref)
      return std::unexpected(ref.error());
    auto artifact = store.fetch(*ref);
    if (!artifact)
      return std::unexpected(artifact.error());
    fmt::print("{} {} {}\n", text, artifact->release, artifact->dir.string());
  }
  return 0;
}

core::Result<int> build_command(const kernel::SourceBuildRequest& request, Environment& env) {
  kernel::SourceBuilder builder(env.runner, env.cache, env.data, env.progress);
  auto built = builder.build(request);
  if (!built)
    return std::unexpected(built.error());
  // Register it as a tree: kernel now, so the first boot finds it ready.
  const std::string ref = "tree:" + built->string();
  kernel::KernelStore store(env.runner, env.cache, env.progress);
  auto artifact = store.fetch(*kernel::parse_kernel_ref(ref));
  if (!artifact)
    return std::unexpected(artifact.error());
  fmt::print("{}\n", ref);
  return 0;
}

core::Result<int> merge_command(const std::vector<std::string>& dirs, const std::string& out,
                                const Exports& exports) {
  namespace fs = std::filesystem;
  if (auto ok = check_exports(exports); !ok)
    return std::unexpected(ok.error());
  std::vector<report::Session> shards;
  std::error_code ec;
  for (const auto& d : dirs) {
    if (fs::equivalent(d, out, ec))
      return core::usage_error("--out {} is one of the merged directories: give a new one", out);
    auto session = report::read_session(d);
    if (!session)
      return std::unexpected(session.error());
    shards.push_back(std::move(*session));
  }
  auto merged = report::merge_sessions(shards, out);
  if (!merged)
    return std::unexpected(merged.error());
  fs::create_directories(out, ec);
  if (ec)
    return core::infra_error("cannot create {}: {}", out, ec.message());
  if (auto written = report::write_session(*merged); !written)
    return std::unexpected(written.error());
  fmt::print(exports.ktap ? stderr : stdout, "{}", report::render_session(*merged));
  if (auto exported = export_session(*merged, exports); !exported)
    return std::unexpected(exported.error());
  if (!merged->missing_shards.empty())
    return 3;
  if (merged->interrupted)
    return 130;
  return verdict::exit_code(merged->worst());
}

core::Result<int> report_command(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::exists(fs::path(dir) / "summary.json") && fs::exists(fs::path(dir) / "bisect.json")) {
    if (auto written = report::write_bisect_report(dir); !written)
      return std::unexpected(written.error());
    fmt::print("{}\n", (fs::path(dir) / "report.html").string());
    return 0;
  }
  auto session = report::read_session(dir);
  if (!session)
    return std::unexpected(session.error());
  if (auto written = report::write_report(*session); !written)
    return std::unexpected(written.error());
  fmt::print("{}\n", (session->dir / "report.html").string());
  return 0;
}

core::Result<int> list_command(bool offline, Environment& env) {
  kernel::KernelStore store(env.runner, env.cache, env.progress);
  fmt::print("{}", kernel::cached_kernels(store, env.cache));
  auto fetchable = kernel::fetchable_kernels(store, offline);
  if (!fetchable)
    return std::unexpected(fetchable.error());
  fmt::print("{}", *fetchable);
  return 0;
}

} // namespace probegate::drivers
