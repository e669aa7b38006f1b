// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace probegate::image {

// Pure helpers for the base layer of one Debian suite (ImageBuilder::base_layer):
// which packages to download, what the download will be, which files are
// shared libraries. Unit-tested on recorded apt output.

// From `apt-cache depends --recurse` output for `roots`: the roots plus the
// library packages of their Depends/Pre-Depends closure, in first-seen
// order. An alternative group takes its first real package (a virtual one:
// its first provider); only library packages (lib*, and zlib1g, which
// carries libz) are followed, so the closure never wanders through adduser
// or systemd-sysv.
std::vector<std::string> userspace_packages(std::string_view depends_output,
                                            const std::vector<std::string>& roots);

// The .deb file names `apt-get download --print-uris` would write
// ("'http://…/udev_252.39-1~deb12u2_amd64.deb' udev_252.39-1~deb12u2_amd64.deb 1802212 SHA256:…"),
// sorted: they name the exact versions, so they key the cached layer.
std::vector<std::string> deb_file_names(std::string_view print_uris_output);

// "udev" from "udev_252.39-1~deb12u2_amd64.deb".
std::string deb_package(std::string_view file_name);

// The major version of `package` among .deb file names: 252 for
// "udev_252.39-1~deb12u2_amd64.deb", 257 for "udev_257.9-1_amd64.deb"; 0 when
// the package is not there or its version does not start with a number.
int deb_major_version(const std::vector<std::string>& debs, std::string_view package);

// images/systemd-roots.txt: "package: glob glob ..." per line (comments and
// blank lines skipped); the globs say which of the package's files count as
// roots. A usage error names the line without a colon or globs.
core::Result<std::map<std::string, std::vector<std::string>>>
root_keep_globs(std::string_view text);

// A path whose file name looks like a shared library: "x.so" or "x.so.N…".
bool library_name(std::string_view path);

} // namespace probegate::image
