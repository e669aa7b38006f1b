// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "proc/process_runner.h"

#include <deque>
#include <vector>

namespace probegate::proc {

// Replays scripted outcomes instead of starting programs (ninja's
// FakeCommandRunner): each run() takes the next Reply, feeds its lines to the
// sink, honours `stop`, and records the Command for the test to inspect.
class FakeProcessRunner final : public ProcessRunner {
public:
  struct Reply {
    std::vector<std::string> lines;
    int exit_code = 0;
    int signal = 0;
    bool start_fails = false;
    bool times_out = false; // the program outlives Command::timeout
  };

  void push(Reply reply) { m_replies.push_back(std::move(reply)); }
  const std::vector<core::Command>& commands() const { return m_commands; }

  core::Result<ProcessResult> run(const core::Command& command, const LineSink& sink) override {
    m_commands.push_back(command);
    if (m_replies.empty())
      return core::infra_error("FakeProcessRunner: no reply scripted for `{}`",
                               core::to_shell(command));
    Reply reply = std::move(m_replies.front());
    m_replies.pop_front();
    if (reply.start_fails)
      return core::infra_error("`{}` was not found on PATH", command.argv.front());
    ProcessResult result;
    for (const auto& line : reply.lines) {
      result.tail += line + "\n";
      if (sink && sink(line) == LineAction::stop) {
        result.stopped = true;
        result.signal = 15;
        return result;
      }
    }
    result.exit_code = reply.exit_code;
    result.signal = reply.signal;
    if (reply.times_out) {
      result.timed_out = true;
      result.signal = 9;
    }
    return result;
  }

private:
  std::deque<Reply> m_replies;
  std::vector<core::Command> m_commands;
};

} // namespace probegate::proc
