// SPDX-License-Identifier: GPL-2.0-only
// `probegate ARGS`: parses the command line, runs the subcommand and returns
// its exit code (docs/CONTRACTS.md "Exit codes"). Interrupts must be blocked
// first (core::block_interrupts()).
#pragma once

namespace probegate::drivers {

int run_cli(int argc, char** argv);

} // namespace probegate::drivers
