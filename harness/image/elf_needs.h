// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace probegate::image {

// What the dynamic loader needs to run one ELF file: its interpreter, the
// sonames it links and where it says to look for them, plus the libraries it
// declares it may dlopen() (systemd's ".note.dlopen" ELF notes: since udev
// 256, libkmod is dlopen()ed, not linked). Pure data from read_elf_needs().
struct ElfNeeds {
  bool shared_object = false;       // e_type ET_DYN (a PIE executable or a library)
  std::string interp;               // PT_INTERP: "/lib64/ld-linux-x86-64.so.2"; "" when static
  std::vector<std::string> needed;  // DT_NEEDED, in order
  std::vector<std::string> runpath; // DT_RUNPATH (or DT_RPATH without it), split on ':'
  // One entry per dlopen note: alternative sonames, the first preferred.
  std::vector<std::vector<std::string>> dlopen;
};

// Pure: reads an ELF64 little-endian x86-64 (or any machine) file image.
// nullopt: not an ELF file (a script, data); an error: an ELF file too
// malformed or of a class this reader does not handle (32-bit, big-endian).
core::Result<std::optional<ElfNeeds>> read_elf_needs(std::string_view bytes);

} // namespace probegate::image
