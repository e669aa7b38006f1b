// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/command.h"
#include "core/error.h"

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace probegate::proc {

// What a line consumer wants after seeing a line of output.
enum class LineAction { keep_going, stop };
using LineSink = std::function<LineAction(std::string_view line)>;

// How a finished program ended. A program that ran and failed is data here;
// only "could not run at all" and "interrupted" are Errors.
struct ProcessResult {
  int exit_code = -1;     // valid when signal == 0
  int signal = 0;         // the signal that ended it, if any
  bool timed_out = false; // we killed it at Command::timeout
  bool stopped = false;   // we killed it because the LineSink said stop
  std::chrono::milliseconds wall{};
  std::string tail; // last lines of output, for error messages

  bool ok() const { return signal == 0 && exit_code == 0 && !timed_out && !stopped; }
  // "signal N" or "exit N", for error messages.
  std::string how_it_ended() const;
};

// Runs external programs. The one real implementation uses Boost.Process;
// tests substitute FakeProcessRunner, which replays recorded output.
// Contract: the child gets its own process group and dies with us (even on
// SIGKILL of the harness); at the deadline, on `stop` and on SIGINT/SIGTERM
// the whole group gets SIGTERM, then SIGKILL after a grace period; the child
// is always reaped. SIGINT/SIGTERM return ErrorKind::interrupted.
class ProcessRunner {
public:
  virtual ~ProcessRunner() = default;
  virtual core::Result<ProcessResult> run(const core::Command& command,
                                          const LineSink& sink = {}) = 0;
};

// Where `name` would run from: itself when it has a directory part, else its
// place on $PATH (the lookup every command goes through); empty when absent.
std::filesystem::path find_executable(const std::string& name);

// verbose: print each command line and its pid to stderr as it starts.
std::unique_ptr<ProcessRunner> make_process_runner(bool verbose = false);

// Runs `command` and turns anything but a clean exit 0 into an infra Error
// that quotes the command line and the tail of its output.
core::Result<ProcessResult> run_checked(ProcessRunner& runner, const core::Command& command,
                                        const LineSink& sink = {});

// What `command` prints (stdout and stderr, a line each), or nullopt where
// it could not run or did not exit 0: for questions whose "cannot say" is
// an answer (git outside a checkout). Only an interrupt is an error.
core::Result<std::optional<std::string>> output_if_ok(ProcessRunner& runner,
                                                      const core::Command& command);

} // namespace probegate::proc
