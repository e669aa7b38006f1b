// SPDX-License-Identifier: GPL-2.0-only
// The one adapter to libvirt's C API (libvirt-dev).
#include "vm/libvirt.h"

#include "core/files.h"
#include "core/interrupt.h"
#include "core/text.h"
#include "proc/output_collector.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fmt/core.h>
#include <functional>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <poll.h>
#include <regex>
#include <set>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <tuple>
#include <unistd.h>

namespace probegate::vm {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr std::string_view k_domain_prefix = "probegate-";
// How long the console reader waits for data before it looks at the
// deadline and at SIGINT/SIGTERM again.
constexpr auto k_poll = 100ms;
// After the console ends by itself, how long libvirt may take to report why.
constexpr auto k_end_report = 10s;
// How often a console file is read for what QEMU added.
constexpr auto k_file_poll = 20ms;

std::string last_libvirt_error() {
  const char* message = virGetLastErrorMessage();
  return message != nullptr ? message : "unknown libvirt error";
}

// libvirt's default error handler prints every error on stderr, also the
// ones probegate expects and handles; they reach the user through Errors.
void quiet(void*, virErrorPtr) {}

bool is_embedded(std::string_view uri) {
  return uri.starts_with("qemu:///embed");
}

std::string this_host() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0)
    return "host";
  std::string host(name.data());
  host = host.substr(0, host.find('.'));
  std::ranges::replace_if(
      host, [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
  return host.empty() ? "host" : host;
}

// A path as a URI query value: unreserved characters and '/' as they are.
std::string uri_escape(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

struct ConnectionCloser {
  void operator()(virConnectPtr c) const { virConnectClose(c); }
};
using Connection = std::unique_ptr<virConnect, ConnectionCloser>;

core::Result<Connection> open_connection(const std::string& uri) {
  virConnectPtr conn = virConnectOpen(uri.c_str());
  if (conn == nullptr)
    return core::infra_error("cannot connect to libvirt at {}: {}", redact_uri(uri),
                             last_libvirt_error());
  if (!is_embedded(uri))
    (void)virConnectSetKeepAlive(conn, 5, 3); // a dead host ends the connection
  return Connection(conn);
}

// Destroys the active domains of `conn` that `is_ours` picks.
void destroy_domains(virConnectPtr conn, const std::function<bool(std::string_view)>& is_ours) {
  virDomainPtr* domains = nullptr;
  const int count = virConnectListAllDomains(conn, &domains, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
  for (int i = 0; i < count; ++i) {
    const char* name = virDomainGetName(domains[i]);
    if (name != nullptr && is_ours(name))
      (void)virDomainDestroy(domains[i]);
    virDomainFree(domains[i]);
  }
  std::free(domains);
}

// The process's libvirt: the event loop the embedded driver, streams and
// keepalive need (registered once, run on a thread of its own), and one
// connection per URI, shared by the jobs of a run.
class Hub {
public:
  static Hub& get(const fs::path& cache) {
    static Hub hub(cache);
    return hub;
  }

  // The embedded root, once made (QEMU's pid files are under run/qemu).
  std::optional<fs::path> root_path() {
    std::lock_guard lock(m_mutex);
    return m_root ? std::optional(m_root->path()) : std::nullopt;
  }

  // The connection for `target`, opened once and shared (each caller holds
  // a reference of its own); the first also reaps what dead runs left there.
  core::Result<Connection> connect(const LibvirtTarget& target, std::string* uri_out) {
    std::lock_guard lock(m_mutex);
    if (!m_ready)
      return core::infra_error("libvirt cannot start its event loop: {}", last_libvirt_error());
    std::string uri = target.uri;
    if (uri.empty()) {
      reap_embedded(core::runtime_root() / "libvirt");
      auto root = embedded_root(target.cache);
      if (!root)
        return std::unexpected(root.error());
      uri = "qemu:///embed?root=" + uri_escape(root->string());
    }
    if (uri_out != nullptr)
      *uri_out = uri;
    if (auto found = m_connections.find(uri); found != m_connections.end()) {
      if (virConnectIsAlive(found->second.get()) == 1)
        return shared(found->second.get());
      m_connections.erase(found); // its host went away: connect anew
    }
    auto conn = open_connection(uri);
    if (!conn) {
      if (target.pool_host)
        return std::unexpected(core::Error{core::ErrorKind::host_lost, conn.error().message});
      if (conn.error().message.find("Failed to parse user") != std::string::npos)
        return core::infra_error("{}: the embedded driver wants the libvirt-qemu user; run "
                                 "tools/setup.sh deps",
                                 conn.error().message);
      return std::unexpected(conn.error());
    }
    if (!is_embedded(uri))
      reap_remote(conn->get());
    else
      probe_qemu(conn->get());
    return shared(m_connections.emplace(uri, std::move(*conn)).first->second.get());
  }

  // The files of `upload_s` on a pool host: one mutex per host, so that a
  // file goes there once however many slots need it.
  std::mutex& host_mutex(const std::string& uri) {
    std::lock_guard lock(m_mutex);
    return m_host_mutexes[uri];
  }

private:
  explicit Hub(const fs::path& cache) {
    // libvirt's own log: errors only, into the cache, not onto the
    // terminal (they reach the user as probegate's errors).
    std::error_code ec;
    fs::create_directories(cache / "libvirt", ec);
    ::setenv("LIBVIRT_LOG_OUTPUTS",
             fmt::format("4:file:{}", (cache / "libvirt" / "libvirt.log").string()).c_str(), 0);
    virSetErrorFunc(nullptr, quiet);
    if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0)
      return;
    m_ready = true;
    std::thread([] {
      for (;;)
        if (virEventRunDefaultImpl() < 0)
          std::this_thread::sleep_for(k_poll); // never seen; keeps the loop from spinning
    }).detach();
  }
  ~Hub() {
    m_connections.clear(); // before the embedded root goes
  }

  // This process's embedded root: run-<pid>-XXXXXX (core::TempDir, so that
  // its owner's pid is in its name) in the runtime directory, since QEMU's
  // monitor socket lives 52 characters below it and a socket path has at
  // most 107; with libvirt's capabilities cache in probegate's cache,
  // shared by every run (probing QEMU costs 4 s on an empty one).
  core::Result<fs::path> embedded_root(const fs::path& cache) {
    if (m_root)
      return m_root->path();
    auto root = core::TempDir::create(core::runtime_root() / "libvirt", "run-");
    if (!root)
      return std::unexpected(root.error());
    if (constexpr size_t k_below = 52, k_socket_max = 107;
        root->path().string().size() + k_below > k_socket_max)
      return core::infra_error("the libvirt root {} is too long for QEMU's monitor socket below "
                               "it: set PROBEGATE_RUNTIME_DIR to a shorter directory",
                               root->path().string());
    std::error_code ec;
    const fs::path capabilities = cache / "libvirt" / "capabilities";
    fs::create_directories(capabilities, ec);
    fs::create_symlink(capabilities, root->path() / "cache", ec);
    if (ec)
      return core::infra_error("cannot link {}: {}", (root->path() / "cache").string(),
                               ec.message());
    // As root, libvirt would run QEMU as a user of its own, confined;
    // probegate runs QEMU as itself, as the qemu backend does.
    // Nor does it relabel the kernel and image it boots (dynamic_ownership,
    // remember_owner: a chown and an xattr per file, each way).
    // No cgroups either: on a cgroup v1 host two domains started at once
    // failed in one run with "Unable to write to .../cpuset/machine/
    // qemu-embed-.../emulator/tasks: No space left on device", and probegate
    // needs none (it ends its domains through libvirt, and QEMU's
    // deadline is its own).
    std::string conf = "stdio_handler = \"file\"\n";
    if (::geteuid() == 0)
      conf += "user = \"root\"\ngroup = \"root\"\nsecurity_driver = \"none\"\n"
              "dynamic_ownership = 0\nremember_owner = 0\ncgroup_controllers = [ ]\n";
    if (auto written = core::write_file_atomic(root->path() / "etc" / "qemu.conf", conf); !written)
      return std::unexpected(written.error());
    m_root.emplace(std::move(*root));
    return m_root->path();
  }

  // The embedded roots of dead runs, with the domains still running there.
  // libvirt lets a process open one embedded root in its life, so these are
  // not opened: their QEMUs are found through the pid files libvirt keeps
  // there and killed (what destroying a transient domain does), each after
  // its command line proved it a probegate domain of that root (a pid may
  // have been reused).
  void reap_embedded(const fs::path& roots) {
    if (m_reaped_embedded)
      return;
    m_reaped_embedded = true;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(roots, ec)) {
      if (!entry.is_directory() || !entry.path().filename().string().starts_with("run-") ||
          !core::dead_owner(entry.path()))
        continue;
      std::error_code none;
      for (const auto& file : fs::directory_iterator(entry.path() / "run" / "qemu", none)) {
        if (file.path().extension() != ".pid" || file.path().filename() == "driver.pid")
          continue;
        const auto text = core::read_file(file.path());
        const long pid = text ? std::strtol(text->c_str(), nullptr, 10) : 0;
        auto cmdline = core::read_file(fmt::format("/proc/{}/cmdline", pid));
        if (pid <= 0 || !cmdline)
          continue;
        std::ranges::replace(*cmdline, '\0', ' ');
        if (cmdline->find(fmt::format("guest={}", k_domain_prefix)) != std::string::npos &&
            cmdline->find(entry.path().string()) != std::string::npos)
          (void)::kill(static_cast<pid_t>(pid), SIGKILL);
      }
      std::error_code gone;
      fs::remove_all(entry.path(), gone);
    }
  }

  // A daemon's domains named after this host and a pid that no longer runs.
  static void reap_remote(virConnectPtr conn) {
    const std::string mine = fmt::format("{}{}-", k_domain_prefix, this_host());
    destroy_domains(conn, [&](std::string_view name) {
      if (!name.starts_with(mine))
        return false;
      const std::string rest(name.substr(mine.size()));
      const long pid = std::strtol(rest.c_str(), nullptr, 10);
      return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
    });
  }

  std::mutex m_mutex;
  bool m_ready = false;
  bool m_reaped_embedded = false;
  std::optional<core::TempDir> m_root;
  std::map<std::string, Connection> m_connections;
  std::map<std::string, std::mutex> m_host_mutexes;

  // libvirt probes QEMU (4 s, once per cache) when a domain first needs
  // it; on the embedded driver that is done here, while the QEMUs of the
  // probe are still init's to reap: once probegate is their subreaper
  // (run_domain), libvirt waited 40 s for each to go.
  static void probe_qemu(virConnectPtr conn) {
    char* caps = virConnectGetDomainCapabilities(conn, nullptr, "x86_64", "pc", "qemu", 0);
    std::free(caps); // an error shows again, and better, when the domain is created
  }

  static Connection shared(virConnectPtr conn) {
    (void)virConnectRef(conn);
    return Connection(conn);
  }
};

// Reaps one embedded domain's QEMU: finds its pid in the pid file libvirt
// writes (while the domain is being created), then waits for it, so that it
// is gone, not a zombie, when libvirt checks (every 200 ms) whether it
// ended. libvirt's destroy took 1.75 s, 1.4 s of it waiting for init to
// reap QEMU (docs/FACTS.md "libvirt"). Only a pid of this
// root's QEMUs is ever waited for, never a child the process runner waits
// for.
class QemuReaper {
public:
  explicit QemuReaper(fs::path pid_file)
      : m_thread([this, file = std::move(pid_file)] {
          for (;;) {
            const auto text = core::read_file(file);
            const long pid = text ? std::strtol(text->c_str(), nullptr, 10) : 0;
            if (pid > 0) {
              // A pidfd names this QEMU and no later process with its pid,
              // and turns readable when it ends, whoever its parent is then
              // (libvirt's intermediate fork may not have exited yet).
              m_pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
              if (m_killing) // kill() came first and saw no pidfd (both seq_cst)
                signal();
              if (pollfd ended{.fd = m_pidfd, .events = POLLIN, .revents = 0}; ended.fd >= 0)
                while (::poll(&ended, 1, -1) < 0 && errno == EINTR) {
                }
              // Ended: a zombie, reaped here when it is this process's.
              if (parent_of(static_cast<pid_t>(pid)) == ::getpid())
                (void)::waitpid(static_cast<pid_t>(pid), nullptr, 0);
              return;
            }
            if (m_created)
              return; // no QEMU came to be
            std::this_thread::sleep_for(k_pid_poll);
          }
        }) {}
  QemuReaper(const QemuReaper&) = delete;
  QemuReaper& operator=(const QemuReaper&) = delete;
  ~QemuReaper() {
    kill();
    if (const int fd = m_pidfd; fd >= 0)
      ::close(fd);
  }

  // virDomainCreateXML returned: the pid file is there, or never will be.
  void created() { m_created = true; }

  // Ends QEMU if it still runs (a destroy that failed) and waits until it
  // is reaped.
  void kill() {
    m_created = true;
    m_killing = true;
    signal();
    if (m_thread.joinable())
      m_thread.join();
  }

private:
  static pid_t parent_of(pid_t pid) {
    const auto stat = core::read_file(fmt::format("/proc/{}/stat", pid));
    const auto close = stat ? stat->rfind(')') : std::string::npos;
    if (close == std::string::npos || close + 4 >= stat->size())
      return 0;
    return static_cast<pid_t>(
        std::strtol(stat->c_str() + close + 4, nullptr, 10)); // "(comm) S ppid"
  }
  void signal() {
    if (const int fd = m_pidfd; fd >= 0)
      (void)::syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0);
  }

  static constexpr auto k_pid_poll = std::chrono::milliseconds(5);
  std::atomic<int> m_pidfd{-1};
  std::atomic<bool> m_created{false};
  std::atomic<bool> m_killing{false};
  std::thread m_thread;
};

// Whether the connection to a daemon went away (its daemon died, the
// network dropped and keepalive gave up). The embedded driver's never does.
bool connection_lost(virConnectPtr conn) {
  return virConnectIsAlive(conn) == 0;
}

// `error`, or ErrorKind::host_lost when the connection it came over is gone.
std::unexpected<core::Error> lost_or(virConnectPtr conn, std::unexpected<core::Error> error) {
  if (connection_lost(conn))
    error.error().kind = core::ErrorKind::host_lost;
  return error;
}

// Storage pools and volumes: a pool host's copies of the files a domain
// boots (docs/CONTRACTS.md "A pool of hosts").
struct PoolCloser {
  void operator()(virStoragePoolPtr p) const { virStoragePoolFree(p); }
};
struct VolumeCloser {
  void operator()(virStorageVolPtr v) const { virStorageVolFree(v); }
};
using StoragePool = std::unique_ptr<virStoragePool, PoolCloser>;
using Volume = std::unique_ptr<virStorageVol, VolumeCloser>;

core::Result<StoragePool> open_pool(virConnectPtr conn, const LibvirtTarget& target,
                                    const std::string& uri) {
  const auto& name = target.storage_pool;
  StoragePool pool(virStoragePoolLookupByName(conn, name.c_str()));
  if (!pool) {
    const std::string xml =
        fmt::format("<pool type='dir'><name>{}</name><target><path>{}</path></target></pool>",
                    core::xml_escape(name), core::xml_escape(target.pool_dir));
    pool.reset(virStoragePoolCreateXML(conn, xml.c_str(), VIR_STORAGE_POOL_CREATE_WITH_BUILD));
    if (!pool) // another run made it meanwhile?
      pool.reset(virStoragePoolLookupByName(conn, name.c_str()));
    if (!pool)
      return lost_or(conn, core::infra_error("libvirt at {} has no storage pool {} and cannot make "
                                             "one at {}: {}",
                                             redact_uri(uri), name, target.pool_dir,
                                             last_libvirt_error()));
  } else if (virStoragePoolIsActive(pool.get()) == 0 && virStoragePoolCreate(pool.get(), 0) < 0) {
    return lost_or(conn, core::infra_error("libvirt at {}: cannot start storage pool {}: {}",
                                           redact_uri(uri), name, last_libvirt_error()));
  }
  return pool;
}

std::string volume_path(virStorageVolPtr volume) {
  char* path = virStorageVolGetPath(volume);
  std::string out = path != nullptr ? path : "";
  std::free(path);
  return out;
}

// Sends `file` into a new volume `name` of `pool` (replacing one of that
// name); `size` bytes.
core::Status send_file(virConnectPtr conn, virStoragePoolPtr pool, const fs::path& file,
                       const std::string& name, std::uintmax_t size, const std::string& uri) {
  if (Volume old{virStorageVolLookupByName(pool, name.c_str())})
    (void)virStorageVolDelete(old.get(), 0);
  const std::string xml = fmt::format("<volume><name>{}</name><capacity unit='bytes'>{}</capacity>"
                                      "<target><format type='raw'/></target></volume>",
                                      core::xml_escape(name), size);
  auto failed = [&](std::string_view what) {
    return lost_or(conn,
                   core::infra_error("libvirt at {}: cannot {} volume {} ({}): {}", redact_uri(uri),
                                     what, name, file.string(), last_libvirt_error()));
  };
  Volume volume(virStorageVolCreateXML(pool, xml.c_str(), 0));
  if (!volume)
    return failed("create");
  std::unique_ptr<virStream, void (*)(virStreamPtr)> stream(
      virStreamNew(conn, 0), [](virStreamPtr s) { virStreamFree(s); });
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(file.c_str(), "rbe"), std::fclose);
  if (!in)
    return core::infra_error("cannot read {}: {}", file.string(), std::strerror(errno));
  if (!stream || virStorageVolUpload(volume.get(), stream.get(), 0, size, 0) < 0)
    return failed("upload to");
  const int sent = virStreamSendAll(
      stream.get(),
      [](virStreamPtr, char* data, size_t n, void* opaque) -> int {
        auto* from = static_cast<std::FILE*>(opaque);
        const size_t got = std::fread(data, 1, n, from);
        return got == 0 && std::ferror(from) != 0 ? -1 : static_cast<int>(got);
      },
      in.get());
  if (sent < 0 || virStreamFinish(stream.get()) < 0) {
    (void)virStreamAbort(stream.get());
    return failed("upload to");
  }
  return {};
}

// What a file's content is called on a pool host: pg-<sha256, 32 hex>-<its
// name>. Hashes are remembered per path, size and mtime for the process.
core::Result<std::string> content_name(const fs::path& file) {
  static std::mutex mutex;
  static std::map<std::tuple<std::string, std::uintmax_t, fs::file_time_type>, std::string> known;
  std::error_code ec;
  const auto key =
      std::tuple{file.string(), fs::file_size(file, ec), fs::last_write_time(file, ec)};
  if (ec)
    return core::infra_error("cannot read {}: {}", file.string(), ec.message());
  {
    std::lock_guard lock(mutex);
    if (auto found = known.find(key); found != known.end())
      return found->second;
  }
  auto sha = core::sha256_file(file);
  if (!sha)
    return std::unexpected(sha.error());
  std::string leaf = file.filename().string();
  std::ranges::replace_if(
      leaf, [](char c) { return !std::isalnum(static_cast<unsigned char>(c)) && c != '.'; }, '_');
  const std::string name = fmt::format("pg-{}-{}", sha->substr(0, 32), leaf.substr(0, 40));
  std::lock_guard lock(mutex);
  known.emplace(key, name);
  return name;
}

// The path on the host of `file`'s content, uploaded unless the host's pool
// already has it complete: a volume is trusted only beside its empty
// `<name>.ok` volume, made after the upload finished, so an upload cut off
// (a killed run, a lost host) is made again.
core::Result<std::string> uploaded(virConnectPtr conn, virStoragePoolPtr pool, const fs::path& file,
                                   const std::string& uri, std::uintmax_t& sent) {
  auto name = content_name(file);
  if (!name)
    return std::unexpected(name.error());
  const std::string done = *name + ".ok";
  if (Volume ok{virStorageVolLookupByName(pool, done.c_str())})
    if (Volume volume{virStorageVolLookupByName(pool, name->c_str())})
      return volume_path(volume.get());
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (auto put = send_file(conn, pool, file, *name, size, uri); !put)
    return std::unexpected(put.error());
  const std::string marker = fmt::format("<volume><name>{}</name><capacity unit='bytes'>0"
                                         "</capacity></volume>",
                                         core::xml_escape(done));
  if (Volume ok{virStorageVolCreateXML(pool, marker.c_str(), 0)}; !ok)
    return lost_or(conn, core::infra_error("libvirt at {}: cannot create volume {}: {}",
                                           redact_uri(uri), done, last_libvirt_error()));
  sent += size;
  Volume volume(virStorageVolLookupByName(pool, name->c_str()));
  if (!volume)
    return lost_or(conn, core::infra_error("libvirt at {}: volume {} went away after its upload",
                                           redact_uri(uri), *name));
  return volume_path(volume.get());
}

// What the event loop learns about one domain: how it stopped.
struct DomainEnd {
  std::mutex mutex;
  std::condition_variable changed;
  std::optional<int> stopped_detail; // VIR_DOMAIN_EVENT_STOPPED_*
  bool stopped() {
    std::lock_guard lock(mutex);
    return stopped_detail.has_value();
  }
};

int on_lifecycle(virConnectPtr, virDomainPtr, int event, int detail, void* opaque) {
  auto& end = **static_cast<std::shared_ptr<DomainEnd>*>(opaque);
  if (event == VIR_DOMAIN_EVENT_STOPPED) {
    std::lock_guard lock(end.mutex);
    end.stopped_detail = detail;
    end.changed.notify_all();
  }
  return 0;
}

// libvirt takes every event callback as one generic type and calls it with
// the event's own signature; the cast goes through void(*)(), as GCC asks.
virConnectDomainEventGenericCallback lifecycle_callback() {
  return reinterpret_cast<virConnectDomainEventGenericCallback>(
      reinterpret_cast<void (*)()>(on_lifecycle));
}

std::string stopped_reason(int detail) {
  switch (detail) {
  case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN:
    return "the guest powered off";
  case VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
    return "the domain was destroyed from outside probegate";
  case VIR_DOMAIN_EVENT_STOPPED_CRASHED:
    return "QEMU crashed";
  case VIR_DOMAIN_EVENT_STOPPED_FAILED:
    return "QEMU failed (killed, or its monitor closed)";
  default:
    return fmt::format("the domain stopped (libvirt reason {})", detail);
  }
}

// The console bytes the reader thread got, for the calling thread.
struct ConsoleQueue {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::string> chunks;
  bool ended = false;
  std::string error; // why virStreamRecv failed, if it did
};

struct DomainCloser {
  void operator()(virDomainPtr d) const { virDomainFree(d); }
};
struct StreamCloser {
  void operator()(virStreamPtr s) const { virStreamFree(s); }
};

std::string sanitized_case(std::string_view case_name) {
  std::string out;
  for (char c : case_name.substr(0, 48))
    out +=
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ? c : '_';
  return out.empty() ? "boot" : out;
}

} // namespace

core::Status check_libvirt_uri(std::string_view uri, std::string_view name) {
  static const std::regex form(R"(^qemu(\+([a-z0-9]+))?://([^/?#]*)/([a-z]+)(\?([^#]*))?$)");
  static const std::set<std::string, std::less<>> transports{"tcp",     "tls",  "ssh", "libssh",
                                                             "libssh2", "unix", "ext"};
  const std::string text(uri);
  const auto hint = "e.g. qemu:///system, qemu+tcp://HOST/system, qemu+ssh://USER@HOST/system or "
                    "qemu:///embed?root=DIR";
  std::smatch m;
  if (!std::regex_match(text, m, form))
    return core::usage_error("{} must be a libvirt QEMU URI ({}), not '{}'", name, hint,
                             core::printable(uri));
  if (m[2].matched && !transports.contains(m[2].str()))
    return core::usage_error("{} must be a URI with a transport libvirt knows (tcp, tls, ssh, "
                             "libssh, libssh2, unix, ext), not '{}': unknown transport '{}'",
                             name, core::printable(uri), m[2].str());
  const std::string path = m[4].str();
  if (path != "system" && path != "session" && path != "embed")
    return core::usage_error("{} must be a URI whose path is /system, /session or /embed, not "
                             "/{} ('{}')",
                             name, path, core::printable(uri));
  if (path == "embed" &&
      (m[1].matched || !m[3].str().empty() || m[6].str().find("root=") == std::string::npos))
    return core::usage_error("{} must be qemu:///embed?root=DIR for the embedded driver (local, "
                             "with a root), not '{}'",
                             name, core::printable(uri));
  return {};
}

std::string redact_uri(std::string_view uri) {
  const auto scheme_end = uri.find("://");
  if (scheme_end == std::string_view::npos)
    return std::string(uri);
  const auto authority = scheme_end + 3;
  const auto path = uri.find('/', authority);
  const auto at = uri.rfind('@', path);
  if (at == std::string_view::npos || at < authority)
    return std::string(uri);
  return fmt::format("{}{}", uri.substr(0, authority), uri.substr(at + 1));
}

std::string domain_xml(const VmSpec& spec, std::string_view name, const QemuProfile& profile,
                       const std::filesystem::path& console_file) {
  const bool kvm = spec.accel == Accel::kvm;
  const bool virtual_clock = !kvm && spec.clock == Clock::virtual_time;
  auto e = [](std::string_view text) { return core::xml_escape(text); };
  std::vector<std::string> args{// SMBIOS and fw_cfg carry the UUID, and the kernel feeds them to
                                // its random pool: a fixed one, which QEMU's own default equals.
                                "-uuid", "00000000-0000-0000-0000-000000000000", "-no-reboot"};
  if (virtual_clock)
    args.insert(args.end(), {"-icount", k_icount});
  const auto devices = device_args(spec, profile);
  args.insert(args.end(), devices.begin(), devices.end());
  std::string qemu_args;
  for (const auto& arg : args)
    qemu_args += fmt::format("    <qemu:arg value='{}'/>\n", e(arg));
  // The serial console: a file on this machine (the embedded driver), or
  // a pty read through libvirt's console stream (a daemon's).
  const std::string serial =
      console_file.empty()
          ? std::string("<serial type='pty'><target port='0'/></serial>\n    <console "
                        "type='pty'><target type='serial' port='0'/></console>")
          : fmt::format("<serial type='file'><source path='{}'/><target port='0'/></serial>\n    "
                        "<console type='file'><source path='{}'/><target type='serial' "
                        "port='0'/></console>",
                        e(console_file.string()), e(console_file.string()));
  const std::string clock =
      virtual_clock ? fmt::format("<clock offset='absolute' start='{}'><timer name='rtc' "
                                  "track='guest'/></clock>",
                                  k_rtc_base_epoch)
                    : "<clock offset='utc'/>";
  return fmt::format(
      R"(<domain type='{type}' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{name}</name>
  <memory unit='MiB'>{memory}</memory>
  <vcpu>{cpus}</vcpu>
  <os>
    <type arch='x86_64' machine='{machine}'>hvm</type>
    <loader type='rom'>{firmware}</loader>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  {clock}
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>preserve</on_crash>
  <devices>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    {serial}
  </devices>
  <qemu:commandline>
{args}  </qemu:commandline>
</domain>
)",
      fmt::arg("type", kvm ? "kvm" : "qemu"), fmt::arg("name", e(name)),
      fmt::arg("memory", spec.memory_mb), fmt::arg("cpus", spec.cpus),
      fmt::arg("machine", e(profile.machine)), fmt::arg("firmware", e(profile.firmware)),
      fmt::arg("kernel", e(spec.kernel.string())), fmt::arg("initrd", e(spec.initrd.string())),
      fmt::arg("cmdline", e(spec.cmdline)), fmt::arg("clock", clock), fmt::arg("args", qemu_args),
      fmt::arg("serial", serial));
}

std::string domain_name(std::string_view case_name) {
  static std::atomic<int> next{0};
  return fmt::format("{}{}-{}-{}-{}", k_domain_prefix, this_host(), ::getpid(), ++next,
                     sanitized_case(case_name));
}

core::Result<DomainRun> run_domain(const LibvirtTarget& target, const VmSpec& spec,
                                   std::string_view case_name, const core::Command& console,
                                   const proc::LineSink& sink) {
  const auto started = SteadyClock::now();
  auto seconds_since = [](SteadyClock::time_point t) {
    return std::chrono::duration<double>(SteadyClock::now() - t).count();
  };
  DomainRun run;
  std::string uri;
  auto connected = Hub::get(target.cache).connect(target, &uri);
  if (!connected)
    return std::unexpected(connected.error());
  const Connection conn = std::move(*connected);
  run.connect_s = seconds_since(started);
  const std::string name = domain_name(case_name);
  VmSpec placed = spec;
  QemuProfile profile;
  // The case's own fw_cfg file on a pool host, removed after the domain.
  std::optional<std::string> case_volume;
  StoragePool pool;
  if (target.pool_host) {
    const auto uploading = SteadyClock::now();
    std::lock_guard lock(Hub::get(target.cache).host_mutex(uri));
    auto opened = open_pool(conn.get(), target, uri);
    if (!opened)
      return std::unexpected(opened.error());
    pool = std::move(*opened);
    for (auto* file : {&placed.kernel, &placed.initrd}) {
      auto path = uploaded(conn.get(), pool.get(), *file, uri, run.uploaded_bytes);
      if (!path)
        return std::unexpected(path.error());
      *file = *path;
    }
    auto firmware = uploaded(conn.get(), pool.get(), profile.firmware, uri, run.uploaded_bytes);
    if (!firmware)
      return std::unexpected(firmware.error());
    profile.firmware = *firmware;
    if (!spec.config_file.empty()) {
      std::error_code ec;
      const std::string volume = name + ".cpio";
      if (auto put = send_file(conn.get(), pool.get(), spec.config_file, volume,
                               fs::file_size(spec.config_file, ec), uri);
          !put)
        return std::unexpected(put.error());
      case_volume = volume;
      Volume made(virStorageVolLookupByName(pool.get(), volume.c_str()));
      placed.config_file = made ? volume_path(made.get()) : "";
    }
    run.upload_s = seconds_since(uploading);
  }
  struct DropVolume {
    virStoragePoolPtr pool;
    const std::optional<std::string>& name;
    ~DropVolume() {
      if (name)
        if (Volume v{virStorageVolLookupByName(pool, name->c_str())})
          (void)virStorageVolDelete(v.get(), 0);
    }
  } drop_volume{pool.get(), case_volume};
  // The embedded driver's console is a file here, read as it grows: no
  // console stream (see close_console below).
  const auto root = is_embedded(uri) ? Hub::get(target.cache).root_path() : std::nullopt;
  std::optional<fs::path> console_file;
  if (root) {
    console_file = *root / "console" / (name + ".log");
    std::error_code ec;
    fs::create_directories(console_file->parent_path(), ec);
  }
  struct DropFile {
    const std::optional<fs::path>& file;
    ~DropFile() {
      std::error_code ec;
      if (file)
        fs::remove(*file, ec);
    }
  } drop_file{console_file};
  const std::string xml = domain_xml(placed, name, profile, console_file.value_or(fs::path()));
  // A transient domain, held stopped until its console is open. A daemon
  // destroys it when this connection closes (a SIGKILLed probegate too);
  // the embedded driver cannot, so the next run reaps it (Hub).
  const unsigned flags =
      VIR_DOMAIN_START_PAUSED | (is_embedded(uri) ? 0U : unsigned{VIR_DOMAIN_START_AUTODESTROY});
  std::optional<QemuReaper> reaper;
  if (root) {
    // The embedded driver's QEMUs are this process's grandchildren, which
    // libvirt daemonizes: as a subreaper, probegate becomes their parent and
    // reaps each one the moment it ends (QemuReaper), where init may take a
    // second or more, all of it inside libvirt's destroy. Set only now,
    // after the connection probed QEMU (Hub::probe_qemu): the QEMUs of
    // that probe are left to init (libvirt waits until they are gone, and
    // only domains' QEMUs are reaped here).
    (void)::prctl(PR_SET_CHILD_SUBREAPER, 1);
    reaper.emplace(*root / "run" / "qemu" / (name + ".pid"));
  }
  const auto creating = SteadyClock::now();
  std::unique_ptr<virDomain, DomainCloser> domain(
      virDomainCreateXML(conn.get(), xml.c_str(), flags));
  run.create_s = seconds_since(creating);
  if (reaper)
    reaper->created();
  if (!domain)
    return lost_or(conn.get(), core::infra_error("libvirt at {} refused the domain {}: {}",
                                                 redact_uri(uri), name, last_libvirt_error()));
  // A console stream (a daemon's) is closed before the domain is
  // destroyed, and at once when it ends by itself: libvirt 9.0 can
  // deadlock when a console stream is aborted while it frees the domain's
  // console devices (the stream's lock and the devices' lock, taken in
  // opposite orders; docs/FACTS.md "libvirt"). The embedded driver's
  // console is a file, with no stream.
  std::unique_ptr<virStream, StreamCloser> stream;
  bool console_closed = false;
  auto close_console = [&] {
    if (stream && !console_closed)
      (void)virStreamAbort(stream.get());
    console_closed = true;
  };
  bool destroyed = false;
  auto destroy = [&] {
    if (destroyed)
      return;
    close_console();
    const auto destroying = SteadyClock::now();
    destroyed = true; // before QEMU ends: how it ended is then ours, not the case's
    if (reaper)
      reaper->kill(); // so that libvirt finds QEMU gone at its first look
    (void)virDomainDestroy(domain.get());
    run.destroy_s = seconds_since(destroying);
  };
  auto fail = [&](std::unexpected<core::Error> error) -> core::Result<DomainRun> {
    destroy();
    return error;
  };

  auto end = std::make_shared<DomainEnd>();
  const int callback = virConnectDomainEventRegisterAny(
      conn.get(), domain.get(), VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle_callback(),
      new std::shared_ptr<DomainEnd>(end),
      [](void* opaque) { delete static_cast<std::shared_ptr<DomainEnd>*>(opaque); });
  if (callback < 0)
    return fail(
        lost_or(conn.get(), core::infra_error("libvirt at {}: cannot watch domain {}: {}",
                                              redact_uri(uri), name, last_libvirt_error())));
  struct Deregister {
    virConnectPtr conn;
    int id;
    ~Deregister() { virConnectDomainEventDeregisterAny(conn, id); }
  } deregister{conn.get(), callback};

  auto queue = std::make_shared<ConsoleQueue>();
  std::atomic<bool> console_complete{false}; // the file's writer is gone
  std::thread reader;
  if (console_file) {
    reader = std::thread([queue, end, file = *console_file, &console_complete] {
      std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(nullptr, std::fclose);
      std::array<char, 1 << 16> buffer{};
      for (;;) {
        if (!in)
          in.reset(std::fopen(file.c_str(), "rbe"));
        const bool last = console_complete || end->stopped();
        size_t n = 0;
        while (in && (n = std::fread(buffer.data(), 1, buffer.size(), in.get())) > 0) {
          std::lock_guard lock(queue->mutex);
          queue->chunks.emplace_back(buffer.data(), n);
          queue->changed.notify_all();
        }
        if (in)
          std::clearerr(in.get());
        if (last) { // QEMU is gone: what the file holds is all there is
          std::lock_guard lock(queue->mutex);
          queue->ended = true;
          queue->changed.notify_all();
          return;
        }
        std::this_thread::sleep_for(k_file_poll);
      }
    });
  } else {
    stream.reset(virStreamNew(conn.get(), 0));
    if (!stream || virDomainOpenConsole(domain.get(), nullptr, stream.get(), 0) < 0)
      return fail(
          lost_or(conn.get(), core::infra_error("libvirt at {}: cannot open the console of {}: {}",
                                                redact_uri(uri), name, last_libvirt_error())));
    reader = std::thread([queue, s = stream.get()] {
      std::array<char, 1 << 16> buffer{};
      for (;;) {
        const int n = virStreamRecv(s, buffer.data(), buffer.size());
        std::lock_guard lock(queue->mutex);
        if (n > 0) {
          queue->chunks.emplace_back(buffer.data(), static_cast<size_t>(n));
        } else {
          if (n < 0)
            queue->error = last_libvirt_error();
          queue->ended = true;
        }
        queue->changed.notify_all();
        if (n <= 0)
          return;
      }
    });
  }
  struct Joiner {
    std::thread& thread;
    std::function<void()> before;
    ~Joiner() {
      before();
      if (thread.joinable())
        thread.join();
    }
  } joiner{reader, [&] {
             destroy(); // ends a console stream, so its reader returns
             console_complete = true;
           }};

  if (virDomainResume(domain.get()) < 0)
    return fail(
        lost_or(conn.get(), core::infra_error("libvirt at {}: cannot start {}: {}", redact_uri(uri),
                                              name, last_libvirt_error())));

  proc::OutputCollector output(console, sink);
  proc::ProcessResult result;
  bool interrupted = false;
  const auto deadline = started + console.timeout;
  for (;;) {
    std::deque<std::string> chunks;
    bool ended = false;
    {
      std::unique_lock lock(queue->mutex);
      queue->changed.wait_for(lock, k_poll, [&] { return !queue->chunks.empty() || queue->ended; });
      chunks.swap(queue->chunks);
      ended = queue->ended;
    }
    for (const auto& chunk : chunks)
      if (!output.feed(chunk) && !result.stopped) {
        result.stopped = true;
        destroy();
      }
    if (destroyed)
      console_complete = true; // QEMU is gone
    if (ended)
      break;

    if (!destroyed && SteadyClock::now() >= deadline) {
      result.timed_out = true;
      destroy();
    }
    if (!destroyed && core::interrupt_pending()) {
      interrupted = true;
      destroy();
    }
  }
  output.flush();
  result.wall = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started);
  std::string reason;
  bool lost = false;
  if (!destroyed) {  // the console ended by itself: libvirt says why, or its host is gone
    close_console(); // at once: libvirt is tearing the domain down
    std::unique_lock lock(end->mutex);
    const auto asked = SteadyClock::now();
    while (!end->stopped_detail && !(lost = connection_lost(conn.get())) &&
           SteadyClock::now() - asked < k_end_report)
      end->changed.wait_for(lock, k_poll);
    if (lost) {
      reason = "the connection to its host closed";
      result.exit_code = 1;
    } else if (end->stopped_detail == VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN) {
      result.exit_code = 0;
    } else {
      reason = end->stopped_detail
                   ? stopped_reason(*end->stopped_detail)
                   : fmt::format("the console of {} ended ({})", name,
                                 queue->error.empty() ? "end of stream" : queue->error);
      result.exit_code = 1;
    }
  } else {
    result.exit_code = 0;
  }
  result.tail = output.tail();
  if (!reason.empty())
    result.tail += fmt::format("[libvirt at {}: {}]\n", redact_uri(uri), reason);
  if (auto closed = output.close_log(); !closed)
    return std::unexpected(closed.error());
  if (interrupted)
    return std::unexpected(core::Error{core::ErrorKind::interrupted,
                                       fmt::format("interrupted while running domain {}", name)});
  if (lost)
    return std::unexpected(core::Error{
        core::ErrorKind::host_lost,
        fmt::format("lost libvirt host {} while domain {} ran: its connection closed (the daemon "
                    "died or the network dropped)",
                    redact_uri(uri), name)});
  run.ended = std::move(result);
  run.uri = redact_uri(uri);
  run.xml = xml;
  return run;
}

} // namespace probegate::vm
