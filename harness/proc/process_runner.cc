// SPDX-License-Identifier: GPL-2.0-only
#include "proc/process_runner.h"

#include <csignal>
#include <cstring>

namespace probegate::proc {

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

} // namespace probegate::proc
