# SPDX-License-Identifier: GPL-2.0-only
# Warnings every probegate target gets (linked as an INTERFACE target).
add_library(probegate_warnings INTERFACE)
target_compile_options(probegate_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual -Wimplicit-fallthrough)
if(PROBEGATE_WERROR)
  target_compile_options(probegate_warnings INTERFACE -Werror)
endif()
