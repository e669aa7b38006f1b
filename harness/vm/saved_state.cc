// SPDX-License-Identifier: GPL-2.0-only
#include "vm/saved_state.h"

#include "core/command.h"
#include "core/files.h"
#include "core/hash_memo.h"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fmt/core.h>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sys/stat.h>
#include <vector>

namespace probegate::vm {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr std::string_view k_pause_fact = "probegate: event=pause-point";
constexpr std::string_view k_pause_step = "pgagent: pause point: the clock moved ";

// "[    2.071234] probegate: ..." -> 2.071234
std::optional<double> console_time(std::string_view line) {
  const auto open = line.find('[');
  const auto close = line.find(']');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return std::nullopt;
  auto number = line.substr(open + 1, close - open - 1);
  number.remove_prefix(std::min(number.find_first_not_of(' '), number.size()));
  double value = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size())
    return std::nullopt;
  return value;
}

double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// A state verified in this process is not hashed again (one per group and run).
std::mutex g_verified_mutex;
std::set<fs::path> g_verified;

// QMP, on either side of a migration: MIGRATION events on, and the guest's
// memory left out of the stream, since it is in its own file (a RAM block
// mapped shared is "ignored"; docs/FACTS.md "Saving and restoring a guest").
const nlohmann::json k_migration_capabilities = {
    {"capabilities",
     {{{"capability", "events"}, {"state", true}},
      {{"capability", "x-ignore-shared"}, {"state", true}}}}};

// What a file takes on disk: its allocated blocks (the RAM file has holes).
std::uintmax_t disk_usage(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0)
    return 0;
  return static_cast<std::uintmax_t>(st.st_blocks) * 512;
}

// QMP on a thread beside the console reader; on failure it ends QEMU.
core::Status run_qmp_side(Qmp& qmp, const std::function<core::Status(Qmp&)>& steps) {
  if (auto done = qmp.accept(30s); !done)
    return done;
  auto done = steps(qmp);
  if (!done)
    (void)qmp.execute("quit", nullptr, 5s);
  return done;
}

// `cont` once the saved guest's migration is finalized: QEMU 7.2 refuses it
// ("Migration is not finalized yet") until the migration's cleanup has run
// on its main loop, a moment after the completed event.
core::Status resume_after_save(Qmp& q) {
  const auto deadline = SteadyClock::now() + 30s;
  while (true) {
    auto status = q.execute("query-status");
    if (!status)
      return std::unexpected(status.error());
    if (status->value("status", "") != "finish-migrate")
      break;
    if (SteadyClock::now() > deadline)
      return core::infra_error("QEMU's migration of the saved guest did not finalize in 30 s");
    std::this_thread::sleep_for(10ms); // a poll of QEMU's state, bounded above
  }
  if (auto done = q.execute("cont"); !done)
    return std::unexpected(done.error());
  return {};
}

} // namespace

std::optional<long long> pause_step_of(std::string_view console_line) {
  const auto at = console_line.find(k_pause_step);
  if (at == std::string_view::npos)
    return std::nullopt;
  const auto number = console_line.substr(at + k_pause_step.size());
  long long ns = 0;
  if (std::from_chars(number.data(), number.data() + number.size(), ns).ec != std::errc())
    return std::nullopt;
  return ns;
}

long long unmoved_step_ns() {
  const char* value = std::getenv("PROBEGATE_UNMOVED_STEP_NS");
  long long ns = 0;
  if (value == nullptr ||
      std::from_chars(value, value + std::strlen(value), ns).ec != std::errc() || ns < 0)
    return k_unmoved_step_ns;
  return ns;
}

std::string qemu_identity(const QemuProfile& profile) {
  const auto binary = proc::find_executable(profile.binary);
  std::error_code ec;
  const auto size = fs::file_size(binary, ec);
  if (ec)
    return profile.binary;
  const auto time = fs::last_write_time(binary, ec).time_since_epoch().count();
  return fmt::format("{} {} {}", binary.string(), size, time);
}

std::optional<SavedState> load_saved_state(const fs::path& dir) {
  auto text = core::read_file(dir / "state.json");
  if (!text)
    return std::nullopt;
  const auto json = nlohmann::json::parse(*text, nullptr, false);
  if (json.is_discarded() || !json.is_object())
    return std::nullopt;
  SavedState saved;
  saved.dir = dir;
  saved.state = dir / "state";
  saved.initramfs = dir / "initramfs.img";
  saved.ram = dir / "ram";
  saved.bytes = json.value("bytes", std::uintmax_t{0});
  saved.sha256 = json.value("sha256", "");
  saved.ram_bytes = json.value("ram_bytes", std::uintmax_t{0});
  saved.ram_sha256 = json.value("ram_sha256", "");
  saved.paused_at_s = json.value("paused_at_s", 0.0);
  saved.save_wall_s = json.value("save_wall_s", 0.0);
  saved.pause_step_ns = json.value("pause_step_ns", -1LL);
  auto console = core::read_file(dir / "console.log");
  if (!console)
    return std::nullopt;
  saved.console = std::move(*console);
  std::error_code ec;
  if (fs::file_size(saved.state, ec) != saved.bytes || ec ||
      fs::file_size(saved.ram, ec) != saved.ram_bytes || ec || !fs::exists(saved.initramfs))
    return std::nullopt;
  saved.disk_bytes = disk_usage(saved.state) + disk_usage(saved.ram);
  std::lock_guard lock(g_verified_mutex);
  if (!g_verified.contains(dir)) {
    // Hashed again only when changed since the last check (the memo).
    auto memo = core::HashMemo::load(dir / core::k_hash_memo_file);
    for (const auto& [file, want] :
         {std::pair{saved.state, saved.sha256}, std::pair{saved.ram, saved.ram_sha256}}) {
      auto sum = memo.sha256(file);
      if (!sum || *sum != want)
        return std::nullopt;
    }
    memo.save();
    g_verified.insert(dir);
  }
  return saved;
}

core::Result<SavedState> save_guest(proc::ProcessRunner& runner, VmSpec spec, const fs::path& dir,
                                    const fs::path& scratch) {
  const auto started = SteadyClock::now();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return core::infra_error("cannot create {}: {}", dir.string(), ec.message());
  SavedState saved;
  saved.dir = dir;
  saved.state = dir / "state";
  saved.initramfs = dir / "initramfs.img";
  saved.ram = dir / "ram";
  fs::copy_file(spec.initrd, saved.initramfs, fs::copy_options::overwrite_existing, ec);
  if (ec)
    return core::infra_error("cannot copy {}: {}", spec.initrd.string(), ec.message());
  spec.initrd = saved.initramfs;
  spec.guest_can_pause = true;
  spec.qmp_socket = scratch / "save.qmp";
  // The guest's memory while it boots: copied out once it is saved, since
  // the guest then runs on in it to report its clock step.
  spec.ram_file = scratch / "ram.live";
  spec.ram_shared = true;
  auto qmp = Qmp::listen(spec.qmp_socket);
  if (!qmp)
    return std::unexpected(qmp.error());

  core::Status qmp_status;
  const fs::path partial = saved.state.string() + ".partial";
  std::promise<void> step_known;
  auto step = step_known.get_future();
  std::thread side([&] {
    qmp_status = run_qmp_side(*qmp, [&](Qmp& q) -> core::Status {
      // The agent stops the guest at its pause point (pvpanic, panic=pause).
      if (auto stopped = q.wait_event("STOP", 10min); !stopped)
        return std::unexpected(stopped.error());
      for (auto [command, arguments] :
           std::initializer_list<std::pair<const char*, nlohmann::json>>{
               {"migrate-set-capabilities", k_migration_capabilities},
               // The default bandwidth limit triples the save's time.
               {"migrate-set-parameters", {{"max-bandwidth", 53687091200LL}}},
               {"migrate", {{"uri", "exec:cat > " + core::shell_quote(partial.string())}}}})
        if (auto done = q.execute(command, arguments); !done)
          return std::unexpected(done.error());
      if (auto done = q.wait_migration(2min); !done)
        return done;
      auto ram_sum = core::copy_sparse(spec.ram_file, saved.ram);
      if (!ram_sum)
        return std::unexpected(ram_sum.error());
      saved.ram_sha256 = *ram_sum;
      // On, until pgagent says how far the stop moved the clock: what every
      // restore of this state will say too.
      if (auto done = resume_after_save(q); !done)
        return done;
      if (step.wait_for(2min) != std::future_status::ready)
        return core::infra_error("the saved guest, resumed, did not print pgagent's pause step");
      (void)q.execute("quit", nullptr, 5s); // QEMU may end before it answers
      return {};
    });
  });
  core::Command qemu;
  qemu.argv = qemu_argv(spec);
  qemu.timeout = 15min;
  std::string console;
  bool resumed = false;
  auto ran = runner.run(qemu, [&](std::string_view line) {
    if (resumed)
      return proc::LineAction::keep_going;
    if (const auto moved = pause_step_of(line)) {
      // The first line after the resume: the saved console ends before it.
      resumed = true;
      saved.pause_step_ns = *moved;
      step_known.set_value();
      return proc::LineAction::keep_going;
    }
    console.append(line).push_back('\n');
    if (line.find(k_pause_fact) != std::string_view::npos)
      saved.paused_at_s = console_time(line).value_or(0);
    return proc::LineAction::keep_going;
  });
  qmp->cancel(); // QEMU has ended: a wait for its connection is over
  if (!resumed)
    step_known.set_value(); // nor is a wait for the resumed guest's line
  side.join();
  fs::remove(spec.ram_file, ec);
  if (!ran)
    return std::unexpected(ran.error());
  if (!qmp_status)
    return std::unexpected(
        core::with_context(qmp_status.error(), fmt::format("saving the booted guest (QEMU {}): {}",
                                                           ran->how_it_ended(), ran->tail)));
  if (saved.pause_step_ns < 0)
    return core::infra_error(
        "the saved guest, resumed, did not print pgagent's pause step (QEMU {}): {}",
        ran->how_it_ended(), ran->tail);
  fs::rename(partial, saved.state, ec);
  if (ec)
    return core::infra_error("cannot rename {}: {}", partial.string(), ec.message());
  saved.bytes = fs::file_size(saved.state, ec);
  saved.ram_bytes = fs::file_size(saved.ram, ec);
  auto sum = core::sha256_file(saved.state);
  if (!sum)
    return std::unexpected(sum.error());
  saved.sha256 = *sum;
  saved.console = std::move(console);
  saved.save_wall_s = seconds_since(started);
  if (auto written = core::write_file_atomic(dir / "console.log", saved.console); !written)
    return std::unexpected(written.error());
  const nlohmann::json meta{{"bytes", saved.bytes},
                            {"sha256", saved.sha256},
                            {"ram_bytes", saved.ram_bytes},
                            {"ram_sha256", saved.ram_sha256},
                            {"paused_at_s", saved.paused_at_s},
                            {"save_wall_s", saved.save_wall_s},
                            {"pause_step_ns", saved.pause_step_ns},
                            {"qemu_argv", qemu.argv}};
  if (auto written = core::write_file_atomic(dir / "state.json", meta.dump(2) + "\n"); !written)
    return std::unexpected(written.error());
  return saved;
}

core::Result<SavedState> publish_saved_state(const SavedState& made, const fs::path& dir) {
  if (auto published = core::publish_dir(made.dir, dir); !published)
    return std::unexpected(published.error());
  // The bytes save_guest hashed a moment ago, moved by a rename: not hashed
  // again, unless another process published its own state there first.
  if (auto text = core::read_file(dir / "state.json")) {
    const auto json = nlohmann::json::parse(*text, nullptr, false);
    if (json.is_object() && json.value("sha256", "") == made.sha256) {
      std::lock_guard lock(g_verified_mutex);
      g_verified.insert(dir);
    }
  }
  auto saved = load_saved_state(dir);
  if (!saved)
    return core::infra_error("the saved state just made in {} does not read back", dir.string());
  return *saved;
}

VmSpec restore_spec(VmSpec spec, const SavedState& saved, const fs::path& config,
                    const fs::path& qmp_socket) {
  spec.initrd = saved.initramfs;
  spec.config_file = config;
  spec.qmp_socket = qmp_socket;
  spec.incoming = true;
  spec.ram_file = saved.ram;
  spec.ram_shared = false;
  return spec;
}

core::Result<Restore> Restore::listen(const fs::path& socket, const fs::path& state) {
  auto qmp = Qmp::listen(socket);
  if (!qmp)
    return std::unexpected(qmp.error());
  return Restore(std::move(*qmp), state);
}

Restore::~Restore() {
  if (m_qmp)
    m_qmp->cancel();
  if (m_thread && m_thread->joinable())
    m_thread->join();
}

void Restore::start() {
  m_thread = std::make_unique<std::thread>([this] {
    const auto started = SteadyClock::now();
    m_status = run_qmp_side(*m_qmp, [&](Qmp& q) -> core::Status {
      for (auto [command, arguments] :
           std::initializer_list<std::pair<const char*, nlohmann::json>>{
               {"migrate-set-capabilities", k_migration_capabilities},
               {"migrate-incoming", {{"uri", "exec:cat " + core::shell_quote(m_state.string())}}}})
        if (auto done = q.execute(command, arguments); !done)
          return std::unexpected(done.error());
      if (auto done = q.wait_migration(2min); !done)
        return done;
      if (auto done = resume_after_save(q); !done)
        return done;
      m_resume_wall_s = seconds_since(started);
      return {};
    });
  });
}

core::Status Restore::finish() {
  m_qmp->cancel();
  if (m_thread && m_thread->joinable())
    m_thread->join();
  return m_status;
}

namespace {

// When a state directory was last restored or made: the latest of its
// witnesses' times (prune_unused_states).
std::optional<fs::file_time_type> last_used(const fs::path& dir) {
  std::optional<fs::file_time_type> latest;
  const auto note = [&](fs::file_time_type when) {
    if (!latest || when > *latest)
      latest = when;
  };
  std::error_code ec;
  for (const fs::path& written : {dir / k_state_used_file, dir / "state.json", dir})
    if (const auto when = fs::last_write_time(written, ec); !ec)
      note(when);
  for (const char* read : {"state", "ram"})
    if (const auto when = core::access_time(dir / read))
      note(*when);
  return latest;
}

std::uintmax_t tree_disk_usage(const fs::path& dir) {
  std::uintmax_t sum = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec))
    if (it->is_regular_file(ec))
      sum += disk_usage(it->path());
  return sum;
}

} // namespace

fs::path state_lock_path(const fs::path& locks, std::string_view key) {
  return locks / fmt::format("state-{}.lock", key);
}

Pruned prune_unused_states(const fs::path& states, const fs::path& locks, fs::file_time_type now,
                           std::chrono::hours unused_for) {
  Pruned pruned;
  const auto before = now - unused_for;
  std::error_code ec;
  std::vector<fs::path> entries;
  for (auto it = fs::directory_iterator(states, ec); !ec && it != fs::end(it); it.increment(ec))
    entries.push_back(it->path());
  for (const auto& entry : entries) {
    if (entry.extension() == k_seen_suffix) {
      if (fs::last_write_time(entry, ec) < before && !ec)
        fs::remove(entry, ec);
      continue;
    }
    if (!fs::is_directory(entry, ec))
      continue;
    auto lock = core::FileLock::try_acquire(state_lock_path(locks, entry.filename().string()));
    if (!lock || !*lock)
      continue; // in use (or being made) now
    // Read under the lock: a process that restores the state touches
    // `used` under it first.
    const auto used = last_used(entry);
    if (!used || *used >= before)
      continue;
    const auto bytes = tree_disk_usage(entry);
    if (fs::remove_all(entry, ec); !ec) {
      ++pruned.states;
      pruned.bytes += bytes;
    }
  }
  return pruned;
}

} // namespace probegate::vm
