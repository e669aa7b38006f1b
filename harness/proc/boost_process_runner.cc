// SPDX-License-Identifier: GPL-2.0-only
// The only file that starts processes (Boost.Process v2, pidfd based).
// Boost.Process v2 is compiled into this one translation unit (src.hpp).
#define BOOST_PROCESS_V2_SEPARATE_COMPILATION 1
#include "proc/output_collector.h"
#include "proc/process_runner.h"

#include <algorithm>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/process/v2.hpp>
#include <boost/process/v2/src.hpp>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <deque>
#include <fmt/ostream.h>
#include <fstream>
#include <linux/close_range.h>
#include <optional>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace probegate::proc {

namespace {

namespace asio = boost::asio;
namespace bp = boost::process::v2;
using namespace std::chrono_literals;

constexpr auto k_kill_grace = 3s;
// How long output may still come after the child exited and its group was
// killed: only from a process that left the group (setsid) and kept our pipe.
constexpr auto k_drain_after_exit = 2s;
// Where the fallback for kernels without close_range (before 5.11) stops.
constexpr int k_fd_scan_limit = 4096;

// Runs in the child between fork and exec: own process group (so we can kill
// everything it starts), death with the harness, default signal mask, and
// nothing but stdin, stdout and stderr across the exec.
struct ChildSetup {
  pid_t parent = ::getpid();
  template <typename Launcher>
  bp::error_code on_exec_setup(Launcher&, const bp::filesystem::path&, const char* const*&) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Boost 1.81's own close_all() leaves open every fd below its exec-error
    // pipe: our output pipe's original ends, and any fd another thread (a
    // second job) had open. A daemon started by the child would inherit them
    // and hold our pipe open for its life. Close-on-exec for all of them
    // (the error pipe already is).
    if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
      for (int fd = 3; fd < k_fd_scan_limit; ++fd)
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    return {};
  }
};

std::vector<std::string> environment_for(const core::Command& command) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    const auto key = entry.substr(0, entry.find('='));
    if (!command.env.contains(std::string(key)))
      env.emplace_back(entry);
  }
  for (const auto& [key, value] : command.env)
    env.push_back(key + "=" + value);
  return env;
}

class BoostProcessRunner final : public ProcessRunner {
public:
  explicit BoostProcessRunner(bool verbose) : m_verbose(verbose) {}
  core::Result<ProcessResult> run(const core::Command& command, const LineSink& sink) override;

private:
  bool m_verbose;
};

// Unblocks SIGINT/SIGTERM for the life of the event loop (see
// core/interrupt.h); a pending one is delivered at once, to our signal_set.
class InterruptWindow {
public:
  InterruptWindow() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    ::pthread_sigmask(SIG_UNBLOCK, &set, &m_old);
  }
  ~InterruptWindow() { ::pthread_sigmask(SIG_SETMASK, &m_old, nullptr); }
  InterruptWindow(const InterruptWindow&) = delete;
  InterruptWindow& operator=(const InterruptWindow&) = delete;

private:
  sigset_t m_old{};
};

core::Result<ProcessResult> BoostProcessRunner::run(const core::Command& command,
                                                    const LineSink& sink) {
  if (command.argv.empty())
    return core::infra_error("empty command");
  const auto started = std::chrono::steady_clock::now();
  asio::io_context ctx;
  asio::readable_pipe out_read(ctx);
  asio::writable_pipe out_write(ctx);
  asio::connect_pipe(out_read, out_write);

  const bp::filesystem::path exe = find_executable(command.argv.front()).string();
  if (exe.empty())
    return core::infra_error("`{}` was not found on PATH: install it (see README.md)",
                             command.argv.front());

  OutputCollector output(command, sink);
  std::vector<std::string> args(command.argv.begin() + 1, command.argv.end());
  const auto env = environment_for(command);
  std::optional<bp::process> child;
  try {
    child.emplace(
        ctx.get_executor(), exe, args, bp::process_stdio{nullptr, out_write, out_write},
        bp::process_environment(env),
        bp::process_start_dir(command.cwd.empty() ? std::filesystem::current_path() : command.cwd),
        ChildSetup{});
  } catch (const std::exception& e) {
    return core::infra_error("cannot start `{}`: {}", core::to_shell(command), e.what());
  }
  out_write.close();
  const pid_t pgid = child->id();
  if (m_verbose)
    fmt::print(stderr, "probegate: $ {}  [pid {}]\n", core::to_shell(command), pgid);

  ProcessResult result;
  bool interrupted = false;
  bool exited = false;
  bool eof = false;
  asio::steady_timer deadline(ctx, command.timeout);
  asio::steady_timer grace(ctx);
  asio::steady_timer drain(ctx);
  asio::signal_set signals(ctx, SIGINT, SIGTERM);

  auto kill_group = [&] {
    if (exited)
      return;
    ::killpg(pgid, SIGTERM);
    grace.expires_after(k_kill_grace);
    grace.async_wait([&](bp::error_code ec) {
      if (!ec && !exited)
        ::killpg(pgid, SIGKILL);
    });
  };
  auto finish_if_done = [&] {
    if (exited && eof) {
      deadline.cancel();
      grace.cancel();
      drain.cancel();
      signals.cancel();
    }
  };

  deadline.async_wait([&](bp::error_code ec) {
    if (ec)
      return;
    result.timed_out = true;
    kill_group();
  });
  signals.async_wait([&](bp::error_code ec, int) {
    if (ec)
      return;
    interrupted = true;
    kill_group();
  });

  std::array<char, 1 << 16> buffer{};
  std::function<void(bp::error_code, size_t)> on_read = [&](bp::error_code ec, size_t n) {
    if (n > 0 && !output.feed(std::string_view(buffer.data(), n)) && !result.stopped) {
      result.stopped = true;
      kill_group();
    }
    if (ec) {
      eof = true;
      finish_if_done();
      return;
    }
    out_read.async_read_some(asio::buffer(buffer), on_read);
  };
  out_read.async_read_some(asio::buffer(buffer), on_read);

  child->async_wait([&](bp::error_code, int) {
    const int status = child->native_exit_code();
    exited = true;
    if (WIFSIGNALED(status))
      result.signal = WTERMSIG(status);
    else
      result.exit_code = WEXITSTATUS(status);
    // Anything the child left in its group goes too.
    ::killpg(pgid, SIGKILL);
    finish_if_done();
    if (!eof) {
      drain.expires_after(k_drain_after_exit);
      drain.async_wait([&](bp::error_code ec) {
        if (!ec && !eof)
          out_read.close();
      });
    }
  });

  {
    InterruptWindow window;
    ctx.run();
  }
  output.flush();
  result.wall = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  result.tail = output.tail();
  if (auto closed = output.close_log(); !closed)
    return std::unexpected(closed.error());
  if (interrupted)
    return std::unexpected(
        core::Error{core::ErrorKind::interrupted,
                    fmt::format("interrupted while running `{}`", core::to_shell(command))});
  return result;
}

} // namespace

std::filesystem::path find_executable(const std::string& name) {
  const std::filesystem::path exe = name;
  if (exe.filename() != exe)
    return exe;
  return bp::environment::find_executable(name).string();
}

std::unique_ptr<ProcessRunner> make_process_runner(bool verbose) {
  return std::make_unique<BoostProcessRunner>(verbose);
}

} // namespace probegate::proc
