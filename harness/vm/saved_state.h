// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"
#include "proc/process_runner.h"
#include "vm/qmp.h"
#include "vm/vm_spec.h"

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace probegate::vm {

// A guest booted up to the agent's pause point and saved there
// (docs/CONTRACTS.md "Boot once, restore per case"): one directory in the
// cache, published whole or not at all.
struct SavedState {
  std::filesystem::path dir;
  std::filesystem::path state;     // QEMU's migration stream: the devices' state
  std::filesystem::path initramfs; // what it booted; every restore names it again
  std::string console;             // the console up to the pause, ends with a newline
  std::uintmax_t bytes = 0;        // of `state`
  std::string sha256;              // of `state`, checked before the first use per process
  // The guest's memory at the pause, a file with holes where it is zeros;
  // every restore maps it privately (VmSpec::ram_file).
  std::filesystem::path ram;
  std::uintmax_t ram_bytes = 0;  // of `ram`, the guest's memory size
  std::string ram_sha256;        // of `ram`, checked with `state`
  std::uintmax_t disk_bytes = 0; // what `state` and `ram` take on disk (load_saved_state)
  double paused_at_s = 0;        // guest uptime of the agent's snapshot-pause fact
  double save_wall_s = 0;        // the boot and the save, when it was made
  // How far QEMU moved the guest's virtual clock at the stop (pgagent's
  // line, read by resuming the saving boot once saved). k_unmoved_step_ns
  // or less: not at all, so restores go on exactly as a fresh boot.
  long long pause_step_ns = -1;
};

// The instructions around pgagent's port write: a step up to this means the
// clock did not move (docs/FACTS.md "Saving and restoring a guest").
constexpr long long k_unmoved_step_ns = 1000;

// k_unmoved_step_ns, unless PROBEGATE_UNMOVED_STEP_NS says otherwise: a test
// hook (0 makes every save count as moved, since a step is never 0), for the
// e2e test of a group whose saves move; whether a real save moves is a race
// (docs/FACTS.md "Saving and restoring a guest").
long long unmoved_step_ns();

// pgagent's "pause point: the clock moved N ns at the stop" -> N.
std::optional<long long> pause_step_of(std::string_view console_line);

// The QEMU binary that would run (proc::find_executable), its size and time:
// part of a saved state's key, since a state restores only into its QEMU.
std::string qemu_identity(const QemuProfile& profile = {});

// Reads dir/state.json and checks the sizes of the state and RAM files
// (cheap) and, once per process and directory, their SHA-256. nullopt: absent or damaged
// (then the caller rebuilds it; a damaged state is never restored).
std::optional<SavedState> load_saved_state(const std::filesystem::path& dir);

// Boots `spec` (guest_can_pause is set here) with its memory in a shared
// file and saves the guest when it stops itself, into `dir` (state, ram,
// initramfs.img copied from spec.initrd, console.log, state.json), then resumes it until pgagent
// says how far the stop moved its clock (pause_step_ns). `scratch`: where the QMP socket lives.
core::Result<SavedState> save_guest(proc::ProcessRunner& runner, VmSpec spec,
                                    const std::filesystem::path& dir,
                                    const std::filesystem::path& scratch);

// Moves a state save_guest made into its place in the cache (one rename)
// and reads it back from there.
core::Result<SavedState> publish_saved_state(const SavedState& made,
                                             const std::filesystem::path& dir);

// A saved state last restored (or made) longer ago than this is deleted
// when a run makes another state; a group booted once and not again within
// it is forgotten (docs/CONTRACTS.md "Boot once, restore per case").
constexpr std::chrono::hours k_state_unused_for{24 * 14};

// In a state's directory: the file whose modification time says when the
// state was last restored or made, touched under the state's lock.
inline constexpr std::string_view k_state_used_file = "used";

// Beside the states, states/<key>.seen: a group that booted fresh once
// because it had no state, so that its next boot saves one.
inline constexpr std::string_view k_seen_suffix = ".seen";

// The lock a state's makers and users take: <locks>/state-<key>.lock.
std::filesystem::path state_lock_path(const std::filesystem::path& locks, std::string_view key);

struct Pruned {
  int states = 0;
  std::uintmax_t bytes = 0; // what the deleted states took on disk
};

// Deletes every state under `states` last used before `now - unused_for`,
// each under its lock (state_lock_path), skipped while anyone holds that;
// and every <key>.seen older than that. Last used: the latest of its `used`
// file's modification time, the access times of `state` and `ram` (an older
// probegate restores without touching `used`, but reads both; relatime
// updates an access time once a day), and the modification times of
// state.json and of the directory (a hash memo written into it).
Pruned prune_unused_states(const std::filesystem::path& states, const std::filesystem::path& locks,
                           std::filesystem::file_time_type now, std::chrono::hours unused_for);

// The argv of a restore of `saved`: that of the boot that saved it, with the
// case's fw_cfg file, a QMP socket, -incoming and the saved memory mapped
// privately. `spec` must be the boot's.
VmSpec restore_spec(VmSpec spec, const SavedState& saved, const std::filesystem::path& config,
                    const std::filesystem::path& qmp_socket);

// Drives one restore over QMP beside the console reader: takes QEMU's
// connection, loads the saved state and resumes the guest. Its error (if
// any) is read after QEMU ended; on failure it ends QEMU with `quit`.
class Restore {
public:
  static core::Result<Restore> listen(const std::filesystem::path& socket,
                                      const std::filesystem::path& state);
  Restore(Restore&&) = default;
  Restore& operator=(Restore&&) = delete;
  ~Restore();
  // Starts the QMP side; call right before QEMU starts.
  void start();
  // Joins; the first error of the QMP side.
  core::Status finish();
  // Wall time from start() to the guest running again.
  double resume_wall_s() const { return m_resume_wall_s; }

private:
  Restore(Qmp qmp, std::filesystem::path state)
      : m_qmp(std::make_unique<Qmp>(std::move(qmp))), m_state(std::move(state)) {}
  std::unique_ptr<Qmp> m_qmp;
  std::filesystem::path m_state;
  std::unique_ptr<std::thread> m_thread;
  core::Status m_status;
  double m_resume_wall_s = 0;
};

} // namespace probegate::vm
