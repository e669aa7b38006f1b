// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace probegate::pool {

// One libvirt host of a pool (`run --hosts FILE`):
// docs/CONTRACTS.md "A pool of hosts". A daemon probegate reaches by URI,
// with `slots` cases at once.
struct Host {
  std::string name; // unique in the file; summary.json and lost/<name>/ use it
  std::string uri;
  int slots = 1;
  // Free-form labels; `kvm: true` is read: cases that ask for KVM (accel:
  // kvm) go only to such hosts, and accel auto uses KVM there.
  std::map<std::string, std::string> labels;
  // The storage pool kernels, initrds and firmware are uploaded to, made
  // (transient, a directory pool at pool_dir) when the host lacks it.
  std::string storage_pool = "probegate";
  std::string pool_dir = "/var/lib/libvirt/probegate";
  std::string where; // file:line:column of its entry
  bool kvm() const;
};

// A hosts file: `hosts:` and a list of entries with `uri` and optionally
// `name`, `slots`, `labels`, `pool`, `pool_dir`. Anything else, a missing or
// malformed URI, a name or URI given twice, is a usage error with
// file:line:column.
core::Result<std::vector<Host>> parse_hosts(std::string_view text, std::string_view file);
core::Result<std::vector<Host>> load_hosts(const std::filesystem::path& file);

// Whether `host` can run a case that asks for accelerator `accel`
// (auto, tcg or kvm).
bool can_run(const Host& host, std::string_view accel);

} // namespace probegate::pool
