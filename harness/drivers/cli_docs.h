// SPDX-License-Identifier: GPL-2.0-only
// The manual page and the shell completions, made from the CLI11 app that
// parses the command line (drivers/cli_app.cc), so that they cannot drift
// from `--help`.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace probegate::drivers {

// probegate(1) in roff (man(7)): every visible subcommand, its arguments
// and options with their help, the exit codes and the environment.
std::string man_page(const CLI::App& app);

// A bash completion script: subcommands, their options, the choices of
// choice options, suite files for `run`, directories for `merge` and
// `report`, and `debian:` kernel refs from the saved index (`probegate
// kernels list --offline`).
std::string bash_completion(const CLI::App& app);
// zsh: the bash completion through bashcompinit.
std::string zsh_completion(const CLI::App& app);

} // namespace probegate::drivers
