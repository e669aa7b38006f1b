// SPDX-License-Identifier: GPL-2.0-only
// The `probegate` binary: signals first, then the command line (drivers/cli_app.h).
#include "core/interrupt.h"
#include "drivers/cli_app.h"

#include <fmt/core.h>

int main(int argc, char** argv) {
  // Ctrl-C and SIGTERM are handled where children can be cleaned up first.
  probegate::core::block_interrupts();
  const int code = probegate::drivers::run_cli(argc, argv);
  if (code != 130 && probegate::core::interrupt_pending()) {
    fmt::print(stderr, "probegate: interrupted\n");
    return 130;
  }
  return code;
}
