// SPDX-License-Identifier: GPL-2.0-only
#include "proc/process_runner.h"

#include <csignal>
#include <cstring>

namespace probegate::proc {

std::string ProcessResult::how_it_ended() const {
  return signal ? fmt::format("signal {}", signal) : fmt::format("exit {}", exit_code);
}

core::Result<ProcessResult> run_checked(ProcessRunner& runner, const core::Command& command,
                                        const LineSink& sink) {
  auto result = runner.run(command, sink);
  if (!result)
    return result;
  if (result->ok())
    return result;
  std::string how;
  if (result->timed_out)
    how = fmt::format("timed out after {} s", command.timeout.count() / 1000);
  else if (result->signal != 0)
    how = fmt::format("killed by signal {} ({})", result->signal, strsignal(result->signal));
  else
    how = fmt::format("exited with {}", result->exit_code);
  return core::infra_error("`{}` {}{}{}", core::to_shell(command), how,
                           result->tail.empty() ? "" : "; its last output:\n", result->tail);
}

core::Result<std::optional<std::string>> output_if_ok(ProcessRunner& runner,
                                                      const core::Command& command) {
  std::string out;
  auto ran = runner.run(command, [&](std::string_view line) {
    out.append(line).push_back('\n');
    return LineAction::keep_going;
  });
  if (!ran && ran.error().kind == core::ErrorKind::interrupted)
    return std::unexpected(ran.error());
  if (!ran || !ran->ok())
    return std::nullopt;
  return out;
}

} // namespace probegate::proc
