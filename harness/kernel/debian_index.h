// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace probegate::kernel {

// Pure functions over Debian's package index (the output of
// `apt-cache pkgnames linux-image-` and `apt-cache show`): which kernel
// releases exist, which line each belongs to, which is newest, and which
// packages a module build needs. Unit-tested on recorded indexes.

// "6.1.0-56-amd64" from "linux-image-6.1.0-56-amd64"; generic amd64 flavour only.
std::vector<std::string> image_releases(std::string_view pkgnames_output);
// "6.1" for "6.1.0-56-amd64", "6.12" for "6.12.57+deb12-amd64".
std::string line_of(std::string_view release);
// Natural order: 6.1.0-9 < 6.1.0-10, 6.12.9 < 6.12.10.
bool release_less(std::string_view a, std::string_view b);
std::optional<std::string> newest_in_line(const std::vector<std::string>& releases,
                                          std::string_view line);
std::vector<std::string> lines(const std::vector<std::string>& releases);
// Package names in the Depends: field of `apt-cache show` output.
std::vector<std::string> depends(std::string_view show_output);
// The packages to download for a release: image, arch headers, and the
// linux-headers-*-common / linux-kbuild-* packages the headers depend on.
std::vector<std::string> packages_for(std::string_view release,
                                      std::string_view headers_show_output);
// Packages named after the release that the image package depends on: newer
// suites split the image into linux-binary-<abi> (vmlinuz) and
// linux-base-<abi> (modules.builtin, config). linux-modules-<abi> (100 MB of
// modules the guest never loads) is left out.
std::vector<std::string> image_parts(std::string_view release, std::string_view image_show_output);

// A file `apt-get download --print-uris` names: written under this name in
// the current directory, of this many bytes.
struct AptFile {
  std::string name;
  std::uint64_t size = 0;
};
// Its lines: 'URI' name size hash. Lines of another shape are skipped.
std::vector<AptFile> parse_print_uris(std::string_view output);

// A Debian suite probegate can fetch kernels from. The host's own suite goes
// through the host's apt; the others through a private apt configuration
// under the cache (own sources and state, Debian's archive keyring, nothing
// installed). Oldest first.
struct DebianSuite {
  std::string name;                      // bullseye
  std::vector<std::string> source_lines; // sources.list lines
};
std::vector<DebianSuite> debian_suites(std::string_view mirror, std::string_view security_mirror);

// The newest GLIBC_2.N symbol version an ELF file asks for (its minor N), or
// nullopt where it names none. Kbuild helpers of a newer suite need a newer
// glibc than the host's.
std::optional<int> glibc_minor_needed(std::string_view elf);
// `make` variables that let the host's gcc-12 build a module for a kernel
// configured with a newer gcc (docs/FACTS.md "Per-line build notes": sid needs both
// emptied): options
// gcc-12 lacks (-fmin-function-alignment) and BTF for modules (a newer pahole).
std::vector<std::string> module_make_vars(std::string_view kernel_config);

} // namespace probegate::kernel
