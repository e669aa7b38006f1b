// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/command.h"
#include "core/error.h"
#include "proc/process_runner.h"
#include "vm/vm_spec.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace probegate::vm {

// The libvirt backend (docs/CONTRACTS.md "Backends"): the same boots as
// probegate's own QEMU, run as transient libvirt domains through the C API.
// This file is the one adapter to libvirt.

// Where its domains run: `uri` as given (--connect), or empty for the
// embedded driver with a root of this process's own under
// core::runtime_root()/libvirt (libvirt lets one process use an embedded
// root at a time), its capabilities cache under cache/libvirt.
struct LibvirtTarget {
  std::string uri;
  std::filesystem::path cache;
  // A pool host (`run --hosts`): its files are not this machine's. The
  // kernel, initrd and firmware go to its storage pool `storage_pool`
  // (a transient directory pool at `pool_dir` is made when it has none)
  // through virStorageVolUpload, named after their content and kept there
  // for later runs; the case's fw_cfg file goes as a volume of the domain's
  // name, deleted after it. A connection that cannot be made or that drops
  // is then ErrorKind::host_lost.
  bool pool_host = false;
  std::string storage_pool;
  std::string pool_dir;
};

// A --connect URI checked before anything boots: a QEMU driver URI
// (qemu[+transport]://[user@host[:port]]/system|session, or qemu:///embed
// with root=). Usage error naming `name` otherwise.
core::Status check_libvirt_uri(std::string_view uri, std::string_view name);

// The URI as result.json records it: without the user:password@ part.
std::string redact_uri(std::string_view uri);

// The domain for `spec`: libvirt's own elements where it has them (machine,
// firmware, kernel, memory, the serial console, the pinned RTC), the rest
// (icount, the test devices, pvpanic, fw_cfg) through <qemu:commandline>,
// so that its guest is the one qemu_argv() boots (docs/FACTS.md "libvirt").
// The serial console goes to `console_file` when one is given (the embedded
// driver: a file probegate reads as it grows), else to a pty that libvirt's
// console stream reads (a daemon's, which may be on another machine).
std::string domain_xml(const VmSpec& spec, std::string_view name, const QemuProfile& profile = {},
                       const std::filesystem::path& console_file = {});

// A domain name: probegate-<host>-<pid>-<n>-<case>, <case> cut to what
// libvirt and a person read comfortably.
std::string domain_name(std::string_view case_name);

// Boots `spec` as a transient domain and reads its serial console as the
// process runner reads QEMU's output: lines to `sink`, console to
// `console.log_path` (after its preamble, capped, renamed into place),
// `console.timeout` as the deadline. The domain is destroyed on `stop`, at
// the deadline, on SIGINT/SIGTERM (then ErrorKind::interrupted) and on any
// error. A domain that ends other than by the guest's power-off is an
// abnormal end (exit_code 1, the reason in `tail`). Unreachable URIs and
// refused XML are infrastructure errors.
struct DomainRun {
  proc::ProcessResult ended;
  std::string uri; // the URI used, redacted (the embedded root's path included)
  std::string xml; // what libvirt was given
  // Wall seconds: connecting (the first time in a process, with the reaping
  // of dead runs), creating the domain (QEMU started and probed, still
  // stopped), and destroying it at the end.
  double connect_s = 0;
  double create_s = 0;
  double destroy_s = 0;
  // A pool host: seconds and bytes of uploads (0 when its pool had them).
  double upload_s = 0;
  std::uintmax_t uploaded_bytes = 0;
};
core::Result<DomainRun> run_domain(const LibvirtTarget& target, const VmSpec& spec,
                                   std::string_view case_name, const core::Command& console,
                                   const proc::LineSink& sink);

} // namespace probegate::vm
