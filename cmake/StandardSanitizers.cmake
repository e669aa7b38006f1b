# SPDX-License-Identifier: GPL-2.0-only
# AddressSanitizer + UndefinedBehaviorSanitizer as an INTERFACE target.
add_library(probegate_sanitizers INTERFACE)
if(PROBEGATE_SANITIZE)
  target_compile_options(probegate_sanitizers INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(probegate_sanitizers INTERFACE -fsanitize=address,undefined)
endif()
