// SPDX-License-Identifier: GPL-2.0-only
// End to end: the kernel cache under faults (issue 7), each in a cache of
// its own (PROBEGATE_CACHE) with Debian's real packages. A download that
// fails or arrives truncated is an infrastructure error that leaves nothing
// behind; two runs at once share one download; an entry damaged after it
// was published is found and fetched again; two data directories sharing
// a cache do not make each other ask apt.
#include "core/files.h"
#include "core/hash_memo.h"
#include "core/manifest.h"
#include "e2e/e2e_support.h"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <gtest/gtest.h>
#include <iostream>
#include <netdb.h>
#include <netinet/in.h>
#include <optional>
#include <regex>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <tuple>
#include <unistd.h>

namespace probegate {
namespace {

namespace fs = std::filesystem;

// An HTTP proxy for apt (http_proxy) that passes everything through but
// either cuts every .deb off after half its body, as a dropped connection
// would, or passes each .deb at most at a given rate, as a slow mirror would.
class DebProxy {
public:
  struct Options {
    bool truncate = true;
    long long bytes_per_second = 0; // 0: as fast as the mirror
  };
  explicit DebProxy(Options options) : m_options(options) {
    m_listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    auto* any = reinterpret_cast<sockaddr*>(&addr);
    if (::bind(m_listener, any, len) != 0 || ::listen(m_listener, 16) != 0 ||
        ::getsockname(m_listener, any, &len) != 0)
      return;
    m_port = ntohs(addr.sin_port);
    m_thread = std::thread([this] { serve(); });
  }
  ~DebProxy() {
    ::shutdown(m_listener, SHUT_RDWR);
    ::close(m_listener);
    if (m_thread.joinable())
      m_thread.join();
  }
  DebProxy(const DebProxy&) = delete;
  DebProxy& operator=(const DebProxy&) = delete;

  int port() const { return m_port; }
  int truncated() const { return m_truncated; }

private:
  void serve() {
    for (;;) {
      const int client = ::accept(m_listener, nullptr, nullptr);
      if (client < 0)
        return;
      std::thread([this, client] {
        relay(client);
        ::close(client);
      }).detach();
    }
  }

  static bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
      const auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // One request per connection: apt reconnects for the next one.
  void relay(int client) {
    std::string request;
    std::array<char, 65536> buf{};
    while (request.find("\r\n\r\n") == std::string::npos) {
      const auto n = ::recv(client, buf.data(), buf.size(), 0);
      if (n <= 0)
        return;
      request.append(buf.data(), static_cast<size_t>(n));
    }
    // "GET http://host/path HTTP/1.1"
    const auto url = request.find("http://");
    const auto host_end = request.find('/', url + 7);
    const auto path_end = request.find(' ', host_end);
    if (url == std::string::npos || host_end == std::string::npos)
      return;
    const std::string host = request.substr(url + 7, host_end - url - 7);
    const std::string path = request.substr(host_end, path_end - host_end);
    const int upstream = connect_to(host);
    if (upstream < 0)
      return;
    const std::string forward =
        "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
    const bool deb = path.ends_with(".deb");
    const bool cut = deb && m_options.truncate;
    const bool slow = deb && m_options.bytes_per_second > 0;
    const auto started = std::chrono::steady_clock::now();
    long long passed = 0; // body bytes sent on, for the rate
    std::string head;
    std::string rest;
    bool in_body = !cut; // anything but a .deb to cut passes whole
    long long left = -1; // body bytes still to pass on; -1: all
    if (send_all(upstream, forward)) {
      for (;;) {
        const auto n = ::recv(upstream, buf.data(), buf.size(), 0);
        if (n <= 0)
          break;
        std::string_view chunk(buf.data(), static_cast<size_t>(n));
        if (!in_body) {
          head.append(chunk);
          const auto end = head.find("\r\n\r\n");
          if (end == std::string::npos)
            continue;
          const auto cl = head.find("Content-Length: ");
          left = (cl == std::string::npos ? 0 : std::stoll(head.substr(cl + 16))) / 2;
          ++m_truncated;
          in_body = true;
          if (!send_all(client, std::string_view(head).substr(0, end + 4)))
            break;
          rest = head.substr(end + 4);
          chunk = rest;
        }
        if (left >= 0) {
          chunk = chunk.substr(0, static_cast<size_t>(std::min<long long>(
                                      left, static_cast<long long>(chunk.size()))));
          left -= static_cast<long long>(chunk.size());
        }
        if (!send_all(client, chunk) || left == 0)
          break;
        if (slow) { // a slow mirror: never ahead of the rate
          passed += static_cast<long long>(chunk.size());
          std::this_thread::sleep_until(
              started + std::chrono::microseconds(passed * 1'000'000 / m_options.bytes_per_second));
        }
      }
    }
    ::close(upstream);
  }

  static int connect_to(const std::string& host) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(host.c_str(), "80", &hints, &found) != 0)
      return -1;
    int fd = -1;
    for (auto* a = found; a; a = a->ai_next) {
      fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
      if (fd >= 0 && ::connect(fd, a->ai_addr, a->ai_addrlen) == 0)
        break;
      if (fd >= 0)
        ::close(fd);
      fd = -1;
    }
    ::freeaddrinfo(found);
    return fd;
  }

  Options m_options;
  int m_listener = -1;
  int m_port = 0;
  std::atomic<int> m_truncated{0};
  std::thread m_thread;
};

int count(std::string_view text, std::string_view what) {
  int n = 0;
  for (auto at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

// The one kernel in a cache.
std::string only_release(const fs::path& cache) {
  std::string release;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(cache / "kernels", ec))
    release = e.path().filename().string();
  return release;
}

class CacheE2e : public ::testing::Test {
protected:
  void SetUp() override {
    if (!e2e::skip_reason().empty())
      PROBEGATE_E2E_SKIP() << e2e::skip_reason();
    auto dir = core::TempDir::create("/var/tmp", "probegate-cache-e2e-");
    ASSERT_TRUE(dir);
    m_dir.emplace(std::move(*dir));
  }
  fs::path cache() const { return m_dir->path() / "cache"; }
  std::map<std::string, std::string> env() const { return {{"PROBEGATE_CACHE", cache().string()}}; }
  std::optional<core::TempDir> m_dir;
};

TEST_F(CacheE2e, ADownloadThatFailsIsAnInfrastructureErrorAndLeavesNothing) {
  auto broken = env();
  broken["http_proxy"] = "http://127.0.0.1:9"; // discard: nobody listens
  const auto ran = e2e::run_probegate({"kernels", "fetch", "debian:6.1"}, broken);
  EXPECT_EQ(ran.exit_code, 3) << ran.output;
  EXPECT_NE(ran.output.find("downloading"), std::string::npos) << ran.output;
  EXPECT_EQ(e2e::leftovers(cache() / "kernels"), "") << "a half-fetched kernel was kept";
  EXPECT_EQ(e2e::leftovers(cache() / "tmp"), "") << "the download's scratch was left behind";
}

TEST_F(CacheE2e, ATruncatedDownloadIsAnInfrastructureErrorAndLeavesNothing) {
  DebProxy proxy({.truncate = true, .bytes_per_second = 0});
  ASSERT_NE(proxy.port(), 0);
  auto cut = env();
  cut["http_proxy"] = "http://127.0.0.1:" + std::to_string(proxy.port());
  const auto ran = e2e::run_probegate({"kernels", "fetch", "debian:6.1"}, cut);
  EXPECT_GT(proxy.truncated(), 0) << "apt never asked the proxy for a .deb:\n" << ran.output;
  EXPECT_EQ(ran.exit_code, 3) << ran.output;
  std::cout << ran.output.substr(ran.output.rfind("E: ")) << "\n";
  EXPECT_EQ(e2e::leftovers(cache() / "kernels"), "") << "a truncated kernel was kept";
  EXPECT_EQ(e2e::leftovers(cache() / "tmp"), "");
}

// Two boots at once into one empty cache: one download, one module build,
// both pass; then damage in the entry is found and it is fetched again.
TEST_F(CacheE2e, TwoRunsShareOneDownloadAndADamagedEntryIsFetchedAgain) {
  auto boot = [&](std::string name) {
    return std::async(std::launch::async, [this, name] {
      return e2e::run_probegate({"boot", "--kernel", "debian:6.1", "--devices", "1",
                                 "--expect-bound", "1", "--name", name, "--results",
                                 (m_dir->path() / "results").string()},
                                env());
    });
  };
  auto a = boot("a");
  auto b = boot("b");
  const auto ra = a.get();
  const auto rb = b.get();
  EXPECT_EQ(ra.exit_code, 0) << ra.output;
  EXPECT_EQ(rb.exit_code, 0) << rb.output;
  const std::string both = ra.output + rb.output;
  EXPECT_EQ(count(both, "downloading 6.1."), 1) << both;
  const std::string release = only_release(cache());
  ASSERT_FALSE(release.empty());
  const fs::path entry = cache() / "kernels" / release;
  ASSERT_TRUE(fs::exists(entry / core::k_manifest_file)) << both;
  EXPECT_TRUE(core::verify_manifest(entry, [](const std::string&) { return true; }));
  const auto original = core::sha256_file(entry / "vmlinux");
  ASSERT_TRUE(original);
  // A check that passed remembers what it hashed (the entry is settled by
  // now), so the damage below must be found in spite of the memo.
  const auto checked = e2e::run_probegate({"kernels", "fetch", "debian:6.1"}, env());
  EXPECT_EQ(checked.exit_code, 0) << checked.output;
  const auto memo = core::read_file(entry / core::k_hash_memo_file);
  ASSERT_TRUE(memo) << "a verified kernel entry has no hash memo";
  EXPECT_NE(memo->find("\"vmlinux\""), std::string::npos) << *memo;

  // One byte of vmlinux flipped, as a disk error would.
  {
    std::fstream f(entry / "vmlinux", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(4'000'000);
    const char c = static_cast<char>(f.get());
    f.seekp(4'000'000);
    f.put(static_cast<char>(c ^ 0x20));
  }
  const auto again = e2e::run_probegate({"kernels", "fetch", "debian:6.1"}, env());
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("is damaged (vmlinux has SHA-256"), std::string::npos)
      << again.output;
  EXPECT_EQ(count(again.output, "downloading 6.1."), 1) << again.output;
  EXPECT_EQ(core::sha256_file(entry / "vmlinux").value_or(""), *original);
  EXPECT_EQ(e2e::leftovers(cache() / "tmp"), "") << "the damaged entry was left behind";

  // A header cut short is found by its size.
  const fs::path kbuild_makefile =
      entry / "tree/usr/src" / ("linux-headers-" + release) / "Makefile";
  ASSERT_TRUE(fs::exists(kbuild_makefile));
  fs::resize_file(kbuild_makefile, 10);
  const auto third = e2e::run_probegate({"kernels", "fetch", "debian:6.1"}, env());
  EXPECT_EQ(third.exit_code, 0) << third.output;
  EXPECT_NE(third.output.find("is damaged (tree/usr/src/linux-headers-" + release +
                              "/Makefile has 10 bytes"),
            std::string::npos)
      << third.output;
  EXPECT_TRUE(core::verify_manifest(entry, [](const std::string&) { return true; }));
}

// A download into an empty cache shows a live line on a terminal (run under
// a pseudo-terminal by util-linux's script) with bytes against apt's sizes
// and an ETA, through a proxy slow enough for several redraws. Under CI=true,
// or without a terminal, it prints only its one-line messages: those
// downloads go through a proxy that cuts them short, so they end (exit 3)
// before the long unpacking, and a live line would have been drawn at once.
TEST_F(CacheE2e, ADownloadShowsProgressOnATerminalOnly) {
  if (!fs::exists("/usr/bin/script"))
    PROBEGATE_E2E_SKIP() << "script (util-linux) is not installed";
  DebProxy slow({.truncate = false, .bytes_per_second = 25'000'000});
  DebProxy cutting({.truncate = true, .bytes_per_second = 0});
  ASSERT_NE(slow.port(), 0);
  ASSERT_NE(cutting.port(), 0);
  // `extra` goes before probegate on `env`'s command line (env -u CI: this
  // test runs under CI=true in CI).
  auto fetch = [&](const std::string& cache, const DebProxy& proxy, const std::string& extra,
                   bool terminal) {
    // No kernel in it, but the usual cache's package indexes (read through
    // links): asking four suites' mirrors anew would take half a minute.
    fs::create_directories(m_dir->path() / cache);
    for (const char* shared : {"apt", "index"})
      if (fs::exists(core::cache_root() / shared))
        fs::create_directory_symlink(core::cache_root() / shared, m_dir->path() / cache / shared);
    const std::string line = "exec env -u CI " + extra + core::shell_quote(PROBEGATE_BINARY) +
                             " kernels fetch debian:6.1";
    core::Command command;
    command.argv = terminal
                       ? std::vector<std::string>{"script", "-q", "-e", "-c", line, "/dev/null"}
                       : std::vector<std::string>{"sh", "-c", line};
    command.env = {{"PROBEGATE_CACHE", (m_dir->path() / cache).string()},
                   {"http_proxy", "http://127.0.0.1:" + std::to_string(proxy.port())}};
    command.timeout = std::chrono::minutes(15);
    return e2e::run_captured(command);
  };

  const auto live = fetch("live", slow, "", true);
  ASSERT_EQ(live.exit_code, 0) << live.output;
  // "\r\x1b[Kprobegate: downloading 6.1.0-47-amd64: 45.2/89.6 MB (50%), 25.0 MB/s, eta 2s"
  const std::regex drawn(R"(\r\x1b\[Kprobegate: downloading [^:]+: ([0-9.]+)/([0-9.]+) MB )"
                         R"(\(\d+%\), [0-9.]+ [kM]?B/s, eta \d+s)");
  int partial = 0;
  for (auto it = std::sregex_iterator(live.output.begin(), live.output.end(), drawn);
       it != std::sregex_iterator(); ++it)
    partial += std::stod((*it)[1]) < std::stod((*it)[2]) ? 1 : 0;
  EXPECT_GE(partial, 2) << "redraws with part of the bytes and an ETA:\n" << live.output;
  EXPECT_NE(live.output.find("\r\x1b[Kprobegate: kernel 6.1."), std::string::npos)
      << "a one-line message replaces the live line:\n"
      << live.output;

  for (const auto& [name, extra, terminal] :
       {std::tuple{"ci", "CI=true ", true}, std::tuple{"pipe", "", false}}) {
    const auto quiet = fetch(name, cutting, extra, terminal);
    EXPECT_EQ(quiet.exit_code, 3) << name << ":\n" << quiet.output;
    EXPECT_NE(quiet.output.find("probegate: downloading 6.1."), std::string::npos) << name << ":\n"
                                                                                   << quiet.output;
    EXPECT_EQ(quiet.output.find("\x1b[K"), std::string::npos) << name << ":\n" << quiet.output;
    EXPECT_EQ(quiet.output.find(" eta "), std::string::npos) << name << ":\n" << quiet.output;
    // A terminal ends each line with \r\n (the reader drops the \r); no
    // other \r is printed.
    EXPECT_EQ(quiet.output.find('\r'), std::string::npos) << name << ":\n" << quiet.output;
  }
  EXPECT_GT(cutting.truncated(), 0);
}

// Two probegates with different images/ (a checkout and the installed
// .deb, two checkouts) sharing one cache: each keeps its own memo of the
// base layer it last used, so neither makes the other ask apt again (two
// commands, about 3 s) on its next boot.
class SharedCache : public e2e::PrivateCacheTest {
protected:
  SharedCache() : PrivateCacheTest("pg-shared-cache-") {}
};

TEST_F(SharedCache, TwoDataDirectoriesDoNotMakeEachOtherAskApt) {
  // The other tree: this one's guest sources, with a line more in /init.
  const fs::path other = dir() / "other";
  fs::create_directories(other);
  for (const char* part : {"images", "guest-modules"})
    fs::copy(fs::path(PROBEGATE_SOURCE_DIR) / part, other / part,
             fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  {
    std::ofstream init(other / "images/init", std::ios::app);
    init << "# another tree's agent\n";
  }
  const auto boot = [&](const std::string& name, const std::optional<fs::path>& data) {
    auto env = m_env;
    if (data)
      env["PROBEGATE_DATA_DIR"] = data->string();
    const auto ran = e2e::run_probegate({"-v", "boot", "--kernel", "debian:6.1", "--devices", "1",
                                         "--expect-bound", "1", "--fresh-boot", "--results",
                                         (dir() / name).string()},
                                        env);
    EXPECT_EQ(ran.exit_code, 0) << name << ":\n" << ran.output;
    return ran.output;
  };
  boot("this", std::nullopt);
  const auto theirs = boot("other", other);
  EXPECT_NE(theirs.find("apt-cache"), std::string::npos)
      << "new images/ ask apt for their base layer:\n"
      << theirs;
  const auto again = boot("this-again", std::nullopt);
  EXPECT_EQ(again.find("apt-cache"), std::string::npos) << again;
  EXPECT_EQ(again.find("apt-get"), std::string::npos) << again;
}

} // namespace
} // namespace probegate
