// SPDX-License-Identifier: GPL-2.0-only
// The real ProcessRunner against real processes (so: label e2e, not unit).
#include "core/files.h"
#include "proc/process_runner.h"

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <gtest/gtest.h>
#include <poll.h>
#include <string>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

namespace probegate::proc {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

core::Command sh(std::string script) {
  core::Command c;
  c.argv = {"/bin/sh", "-c", std::move(script)};
  c.timeout = 30s;
  return c;
}

// Waits (bounded) for a process that is not our child to exit: a pidfd
// becomes readable when it does, zombie or reaped.
bool exits_within(pid_t pid, int timeout_ms) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0)
    return errno == ESRCH; // already gone
  pollfd p{fd, POLLIN, 0};
  const int ready = ::poll(&p, 1, timeout_ms);
  ::close(fd);
  return ready == 1;
}

TEST(ProcessRunner, ReportsExitCodeAndStreamsLines) {
  auto runner = make_process_runner();
  std::vector<std::string> lines;
  auto r =
      runner->run(sh("echo one; echo two >&2; printf 'three'; exit 7"), [&](std::string_view l) {
        lines.emplace_back(l);
        return LineAction::keep_going;
      });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->exit_code, 7);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "two", "three"}));
}

TEST(ProcessRunner, DeadlineKillsTheWholeGroup) {
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "runner-");
  ASSERT_TRUE(tmp);
  const auto pidfile = tmp->path() / "grandchild";
  auto command = sh("sleep 300 & echo $! > " + pidfile.string() + "; wait");
  command.timeout = 1s;
  auto runner = make_process_runner();
  auto r = runner->run(command);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->timed_out);
  const pid_t grandchild = std::stoi(*core::read_file(pidfile));
  EXPECT_TRUE(exits_within(grandchild, 5000))
      << "the background child of the timed-out command survived";
}

TEST(ProcessRunner, SinkCanStopTheProgram) {
  auto runner = make_process_runner();
  int seen = 0;
  auto r = runner->run(sh("while :; do echo tick; done"), [&](std::string_view) {
    return ++seen >= 5 ? LineAction::stop : LineAction::keep_going;
  });
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->stopped);
  EXPECT_GE(seen, 5);
}

TEST(ProcessRunner, SignalDeathIsReported) {
  auto runner = make_process_runner();
  auto r = runner->run(sh("kill -KILL $$"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->signal, SIGKILL);
  EXPECT_FALSE(r->ok());
}

TEST(ProcessRunner, MissingProgramIsAnInfraError) {
  auto runner = make_process_runner();
  core::Command c;
  c.argv = {"probegate-no-such-program"};
  auto r = runner->run(c);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, core::ErrorKind::infra);
  EXPECT_NE(r.error().message.find("probegate-no-such-program"), std::string::npos);
}

TEST(ProcessRunner, LogIsCompleteOrAbsent) {
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "runner-");
  ASSERT_TRUE(tmp);
  auto command = sh("echo saved");
  command.log_path = tmp->path() / "out.log";
  auto runner = make_process_runner();
  ASSERT_TRUE(runner->run(command));
  EXPECT_EQ(*core::read_file(command.log_path), "saved\n");
  EXPECT_FALSE(fs::exists(command.log_path.string() + ".partial"));
}

TEST(ProcessRunner, SavedLogIsCappedWithAMarker) {
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "runner-");
  ASSERT_TRUE(tmp);
  auto command = sh("yes 0123456789abcdef | head -c 100000000");
  command.log_path = tmp->path() / "flood.log";
  auto runner = make_process_runner();
  size_t lines = 0;
  auto r = runner->run(command, [&](std::string_view) {
    ++lines;
    return LineAction::keep_going;
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(lines, 100000000u / 17 + 1) << "every line still reaches the parser";
  const auto size = fs::file_size(command.log_path);
  EXPECT_LT(size, 65u * 1024 * 1024);
  const auto text = *core::read_file(command.log_path);
  EXPECT_NE(text.find("[probegate: log capped at 64 MiB"), std::string::npos);
}

TEST(ProcessRunner, RunCheckedQuotesTheCommand) {
  auto runner = make_process_runner();
  auto r = run_checked(*runner, sh("echo why; exit 3"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("exited with 3"), std::string::npos);
  EXPECT_NE(r.error().message.find("why"), std::string::npos);
}

// A daemon the child starts in a session of its own (libvirtd, by
// tools/libvirt-hosts.sh) outlives the child and the kill of its group. It
// inherits no fd of ours (its stdio is /dev/null, so no pipe at all): with
// our pipe's other ends it would hold our output open for its life. (The
// child returns once the daemon wrote its fd list, so the daemon left our
// group before the group is killed.)
TEST(ProcessRunner, ADaemonOfTheChildInheritsNoOtherFd) {
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "runner-");
  ASSERT_TRUE(tmp);
  const std::string fds = (tmp->path() / "fds").string();
  auto runner = make_process_runner();
  auto r = runner->run(sh("setsid sh -c 'readlink /proc/$$/fd/* > " + fds + ".tmp; mv " + fds +
                          ".tmp " + fds +
                          "; exec sleep 60' </dev/null >/dev/null 2>&1 &\n"
                          "while [ ! -e " +
                          fds + " ]; do sleep 0.05; done; echo $!"));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->ok());
  const pid_t daemon = std::stoi(r->tail);
  ASSERT_GT(daemon, 1) << r->tail;
  ::kill(daemon, SIGKILL);
  const auto listed = core::read_file(fds);
  ASSERT_TRUE(listed);
  EXPECT_NE(listed->find("/dev/null"), std::string::npos) << *listed;
  EXPECT_EQ(listed->find("pipe:"), std::string::npos) << *listed;
}

// A daemon that does keep the child's stdout: the run still ends once the
// child exited, with what the child printed, instead of waiting for EOF
// until the deadline.
TEST(ProcessRunner, AnEscapedHolderOfStdoutDoesNotHoldTheRun) {
  auto tmp = core::TempDir::create(fs::temp_directory_path(), "runner-");
  ASSERT_TRUE(tmp);
  const std::string up = (tmp->path() / "up").string();
  auto command = sh("setsid sh -c 'touch " + up + "; exec sleep 60' &\n" + "while [ ! -e " + up +
                    " ]; do sleep 0.05; done; echo started $!");
  command.timeout = 40s;
  auto runner = make_process_runner();
  std::vector<std::string> lines;
  auto r = runner->run(command, [&](std::string_view l) {
    lines.emplace_back(l);
    return LineAction::keep_going;
  });
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->exit_code, 0);
  ASSERT_EQ(lines.size(), 1U);
  ASSERT_TRUE(lines[0].starts_with("started "));
  const pid_t daemon = std::stoi(lines[0].substr(8));
  ASSERT_GT(daemon, 1) << lines[0];
  // It was still there when the run ended: the run did not wait for it.
  EXPECT_EQ(::kill(daemon, SIGKILL), 0);
}

} // namespace
} // namespace probegate::proc
