// SPDX-License-Identifier: GPL-2.0-only
// The commands that are a few calls each: boot one configuration, judge a
// saved console log, fetch, build and list kernels. They print their answer
// to stdout and return the exit code; errors go back to cli/ to print.
#pragma once

#include "drivers/boot.h"
#include "drivers/suite_run.h"
#include "kernel/source_build.h"
#include "spec/option_cli.h"

#include <string>
#include <vector>

namespace probegate::drivers {

// `probegate boot`: the verdict's exit code, 3 for an infrastructure error
// recorded in result.json. `console` prints the guest's lines as they come.
core::Result<int> boot_command(const spec::CliRunOptions& options, bool console, Environment& env);
// `probegate parse LOG`: judges a saved console log exactly as a live boot
// (judge_console). Without --devices, the count the agent reported is used.
core::Result<int> parse_command(const spec::CliRunOptions& options, const std::string& log_path,
                                bool json);
// `probegate merge DIR... --out DIR`: the shards of one suite run as one
// session (summary.json, junit.xml, the knob table). Exit code: the merged
// verdict's, or 3 when a shard is missing (the merge keeps INCOMPLETE).
core::Result<int> merge_command(const std::vector<std::string>& dirs, const std::string& out,
                                const Exports& exports);
// `probegate report DIR`: report.html of a session directory, made again
// from its summary.json, result.json files and consoles.
core::Result<int> report_command(const std::string& dir);
// `probegate kernels fetch REF...`: prints "<ref> <release> <dir>" per ref.
core::Result<int> fetch_command(const std::vector<std::string>& refs, Environment& env);
// `probegate kernels build`: prints the tree: ref that boots the build.
core::Result<int> build_command(const kernel::SourceBuildRequest& request, Environment& env);
// `probegate kernels list`: cached kernels, then what can be fetched.
core::Result<int> list_command(bool offline, Environment& env);

} // namespace probegate::drivers
