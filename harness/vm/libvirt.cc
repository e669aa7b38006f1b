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
#include <cstdlib>
#include <deque>
#include <fmt/core.h>
#include <functional>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <thread>
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

  // The connection for `target`, opened once; the first also reaps what
  // dead runs left there.
  core::Result<virConnectPtr> connect(const LibvirtTarget& target, std::string* uri_out) {
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
    if (auto found = m_connections.find(uri); found != m_connections.end())
      return found->second.get();
    auto conn = open_connection(uri);
    if (!conn) {
      if (conn.error().message.find("Failed to parse user") != std::string::npos)
        return core::infra_error("{}: the embedded driver wants the libvirt-qemu user; run "
                                 "tools/setup.sh deps",
                                 conn.error().message);
      return std::unexpected(conn.error());
    }
    if (!is_embedded(uri))
      reap_remote(conn->get());
    return m_connections.emplace(uri, std::move(*conn)).first->second.get();
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
    std::string conf = "stdio_handler = \"file\"\n";
    if (::geteuid() == 0)
      conf += "user = \"root\"\ngroup = \"root\"\nsecurity_driver = \"none\"\n"
              "dynamic_ownership = 0\nremember_owner = 0\n";
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
};

// What the event loop learns about one domain: how it stopped.
struct DomainEnd {
  std::mutex mutex;
  std::condition_variable changed;
  std::optional<int> stopped_detail; // VIR_DOMAIN_EVENT_STOPPED_*
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

std::string domain_xml(const VmSpec& spec, std::string_view name, const QemuProfile& profile) {
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
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
  </devices>
  <qemu:commandline>
{args}  </qemu:commandline>
</domain>
)",
      fmt::arg("type", kvm ? "kvm" : "qemu"), fmt::arg("name", e(name)),
      fmt::arg("memory", spec.memory_mb), fmt::arg("cpus", spec.cpus),
      fmt::arg("machine", e(profile.machine)), fmt::arg("firmware", e(profile.firmware)),
      fmt::arg("kernel", e(spec.kernel.string())), fmt::arg("initrd", e(spec.initrd.string())),
      fmt::arg("cmdline", e(spec.cmdline)), fmt::arg("clock", clock), fmt::arg("args", qemu_args));
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
  auto conn = Hub::get(target.cache).connect(target, &uri);
  if (!conn)
    return std::unexpected(conn.error());
  run.connect_s = seconds_since(started);
  const std::string name = domain_name(case_name);
  const std::string xml = domain_xml(spec, name);
  // A transient domain, held stopped until its console is open. A daemon
  // destroys it when this connection closes (a SIGKILLed probegate too);
  // the embedded driver cannot, so the next run reaps it (Hub).
  const unsigned flags =
      VIR_DOMAIN_START_PAUSED | (is_embedded(uri) ? 0U : unsigned{VIR_DOMAIN_START_AUTODESTROY});
  const auto creating = SteadyClock::now();
  std::unique_ptr<virDomain, DomainCloser> domain(virDomainCreateXML(*conn, xml.c_str(), flags));
  run.create_s = seconds_since(creating);
  if (!domain)
    return core::infra_error("libvirt at {} refused the domain {}: {}", redact_uri(uri), name,
                             last_libvirt_error());
  bool destroyed = false;
  auto destroy = [&] {
    if (destroyed)
      return;
    const auto destroying = SteadyClock::now();
    (void)virDomainDestroy(domain.get());
    run.destroy_s = seconds_since(destroying);
    destroyed = true;
  };
  auto fail = [&](std::unexpected<core::Error> error) -> core::Result<DomainRun> {
    destroy();
    return error;
  };

  auto end = std::make_shared<DomainEnd>();
  const int callback = virConnectDomainEventRegisterAny(
      *conn, domain.get(), VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle_callback(),
      new std::shared_ptr<DomainEnd>(end),
      [](void* opaque) { delete static_cast<std::shared_ptr<DomainEnd>*>(opaque); });
  if (callback < 0)
    return fail(core::infra_error("libvirt at {}: cannot watch domain {}: {}", redact_uri(uri),
                                  name, last_libvirt_error()));
  struct Deregister {
    virConnectPtr conn;
    int id;
    ~Deregister() { virConnectDomainEventDeregisterAny(conn, id); }
  } deregister{*conn, callback};

  std::unique_ptr<virStream, StreamCloser> stream(virStreamNew(*conn, 0));
  if (!stream || virDomainOpenConsole(domain.get(), nullptr, stream.get(), 0) < 0)
    return fail(core::infra_error("libvirt at {}: cannot open the console of {}: {}",
                                  redact_uri(uri), name, last_libvirt_error()));
  auto queue = std::make_shared<ConsoleQueue>();
  std::thread reader([queue, s = stream.get()] {
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
  struct Joiner {
    std::thread& thread;
    std::function<void()> before;
    ~Joiner() {
      before();
      if (thread.joinable())
        thread.join();
    }
  } joiner{reader, [&] {
             destroy(); // ends the console, so the reader returns
             (void)virStreamAbort(stream.get());
           }};

  if (virDomainResume(domain.get()) < 0)
    return fail(core::infra_error("libvirt at {}: cannot start {}: {}", redact_uri(uri), name,
                                  last_libvirt_error()));

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
  if (!destroyed) { // the console ended by itself: libvirt says why
    std::unique_lock lock(end->mutex);
    end->changed.wait_for(lock, k_end_report, [&] { return end->stopped_detail.has_value(); });
    if (end->stopped_detail == VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN) {
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
  run.ended = std::move(result);
  run.uri = redact_uri(uri);
  run.xml = xml;
  return run;
}

} // namespace probegate::vm
