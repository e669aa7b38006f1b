// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace probegate::core {

// One external program to run: argv (never a shell string), extra
// environment, working directory, a wall-clock deadline and where to keep its
// output. ProcessRunner executes it; tests compare Commands as data.
struct Command {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env; // added to the inherited environment
  std::filesystem::path cwd;              // empty: inherit
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  std::filesystem::path log_path; // empty: output is not saved
  // Written to the log before the program's output: a restored guest's
  // console up to the saved state, so that the log reads as one boot.
  std::string log_preamble;
};

// A copy-pasteable shell rendering of argv (with env assignments in front),
// for logs and result.json; never executed by us.
std::string to_shell(const Command& command);
std::string shell_quote(std::string_view word);

} // namespace probegate::core
