// SPDX-License-Identifier: GPL-2.0-only
#pragma once

namespace probegate::core {

// SIGINT and SIGTERM are blocked from the start of main(): they stay pending
// until the ProcessRunner unblocks them inside its event loop (where it can
// kill its child group first) or until main() checks at the end. So an
// interrupt is never lost and never leaves a child behind.
void block_interrupts();
// True when SIGINT or SIGTERM arrived while blocked.
bool interrupt_pending();

} // namespace probegate::core
