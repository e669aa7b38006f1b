// SPDX-License-Identifier: GPL-2.0-only
#include "drivers/cli_app.h"

#include <cstdio>
#include <gtest/gtest.h>
#include <regex>
#include <set>

namespace probegate::drivers {
namespace {

// `probegate ARGS`' standard output, run in this process.
std::string run(std::vector<std::string> args) {
  args.insert(args.begin(), "probegate");
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  ::testing::internal::CaptureStdout();
  (void)run_cli(static_cast<int>(argv.size()), argv.data());
  std::fflush(stdout);
  return ::testing::internal::GetCapturedStdout();
}

std::set<std::string> long_flags(const std::string& text) {
  std::set<std::string> out;
  const std::regex flag(R"(--[a-z][a-z0-9-]+)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), flag); it != std::sregex_iterator();
       ++it)
    out.insert(it->str());
  return out;
}

// The man page is made from the app `--help` prints: every flag of every
// command's help is in it.
TEST(CliDocs, TheManPageHasEveryOptionOfEveryCommandsHelp) {
  std::string man = run({"man"});
  ASSERT_NE(man.find(".TH PROBEGATE 1"), std::string::npos) << man;
  // roff writes "-" as "\-".
  man = std::regex_replace(man, std::regex(R"(\\-)"), "-");
  int seen = 0;
  for (const auto& command : {std::vector<std::string>{"boot"},
                              {"run"},
                              {"parse"},
                              {"merge"},
                              {"report"},
                              {"bisect"},
                              {"bisect-run"},
                              {"kernels", "build"},
                              {"kernels", "list"}}) {
    auto args = command;
    args.push_back("--help");
    const auto help = run(args);
    for (const auto& f : long_flags(help)) {
      if (f == "--help")
        continue;
      ++seen;
      EXPECT_NE(man.find(f), std::string::npos) << command.front() << ": " << f;
    }
  }
  EXPECT_GT(seen, 60) << "the help of every command was read";
  EXPECT_NE(man.find(".SS \"probegate run suite\""), std::string::npos);
  EXPECT_NE(man.find(".SH EXIT STATUS"), std::string::npos);
}

TEST(CliDocs, TheBashCompletionKnowsCommandsOptionsAndChoices) {
  const auto bash = run({"completion", "bash"});
  EXPECT_NE(bash.find("complete -F _probegate probegate"), std::string::npos);
  EXPECT_NE(bash.find("'kernels fetch') path='kernels fetch' ;;"), std::string::npos) << bash;
  // --init's choices, from the run option table.
  EXPECT_NE(bash.find("--init) COMPREPLY=($(compgen -W 'agent systemd' -- \"$cur\")); return ;;"),
            std::string::npos)
      << bash;
  const auto zsh = run({"completion", "zsh"});
  EXPECT_TRUE(zsh.starts_with("#compdef probegate\n")) << zsh;
}

} // namespace
} // namespace probegate::drivers
