// SPDX-License-Identifier: GPL-2.0-only
#include "vm/qmp.h"

#include <cerrno>
#include <cstring>
#include <fmt/core.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace probegate::vm {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Waits until `fd` is readable; false at the deadline.
core::Result<bool> wait_readable(int fd, SteadyClock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0)
      return false;
    pollfd p{fd, POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0)
      return true;
    if (n < 0 && errno != EINTR)
      return core::infra_error("poll on the QMP socket: {}", std::strerror(errno));
  }
}

} // namespace

core::Result<Qmp> Qmp::listen(const std::filesystem::path& socket) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = socket.string();
  if (path.size() >= sizeof(addr.sun_path))
    return core::infra_error("QMP socket path {} is longer than {} bytes", path,
                             sizeof(addr.sun_path) - 1);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return core::infra_error("socket(): {}", std::strerror(errno));
  ::unlink(path.c_str());
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, 1) != 0) {
    const int err = errno;
    ::close(fd);
    return core::infra_error("cannot listen on {}: {}", path, std::strerror(err));
  }
  return Qmp(fd, socket);
}

Qmp::Qmp(Qmp&& other) noexcept
    : m_listen_fd(std::exchange(other.m_listen_fd, -1)), m_fd(std::exchange(other.m_fd, -1)),
      m_socket(std::move(other.m_socket)), m_buffer(std::move(other.m_buffer)),
      m_events(std::move(other.m_events)) {}

Qmp::~Qmp() {
  if (m_fd >= 0)
    ::close(m_fd);
  if (m_listen_fd >= 0) {
    ::close(m_listen_fd);
    ::unlink(m_socket.c_str());
  }
}

void Qmp::cancel() {
  if (m_listen_fd >= 0)
    ::shutdown(m_listen_fd, SHUT_RDWR);
}

core::Status Qmp::accept(std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  auto ready = wait_readable(m_listen_fd, deadline);
  if (!ready)
    return std::unexpected(ready.error());
  if (!*ready)
    return core::infra_error("QEMU did not connect to {} within {} ms", m_socket.string(),
                             timeout.count());
  m_fd = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (m_fd < 0)
    return core::infra_error("QEMU ended before it connected to {} ({})", m_socket.string(),
                             std::strerror(errno));
  auto greeting = read_message(deadline);
  if (!greeting)
    return std::unexpected(greeting.error());
  if (!greeting->contains("QMP"))
    return core::infra_error("QEMU's QMP greeting is not one: {}", greeting->dump());
  auto done = execute("qmp_capabilities", nullptr, timeout);
  if (!done)
    return std::unexpected(done.error());
  return {};
}

core::Status Qmp::send(const nlohmann::json& message) {
  const std::string text = message.dump() + "\n";
  size_t sent = 0;
  while (sent < text.size()) {
    const ssize_t n = ::send(m_fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return core::infra_error("QMP: QEMU closed {} ({})", m_socket.string(), std::strerror(errno));
    sent += static_cast<size_t>(n);
  }
  return {};
}

core::Result<nlohmann::json> Qmp::read_message(SteadyClock::time_point deadline) {
  for (;;) {
    if (const auto end = m_buffer.find('\n'); end != std::string::npos) {
      const std::string line = m_buffer.substr(0, end);
      m_buffer.erase(0, end + 1);
      if (line.find_first_not_of(" \r\t") == std::string::npos)
        continue;
      auto message = nlohmann::json::parse(line, nullptr, false);
      if (message.is_discarded() || !message.is_object())
        return core::infra_error("QMP: QEMU sent something that is not a JSON object: {}", line);
      return message;
    }
    auto ready = wait_readable(m_fd, deadline);
    if (!ready)
      return std::unexpected(ready.error());
    if (!*ready)
      return core::infra_error("QMP: no answer from QEMU on {} in time", m_socket.string());
    char chunk[4096];
    const ssize_t n = ::recv(m_fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return core::infra_error("QMP: QEMU closed {}", m_socket.string());
    m_buffer.append(chunk, static_cast<size_t>(n));
  }
}

core::Result<nlohmann::json> Qmp::execute(std::string_view command, const nlohmann::json& arguments,
                                          std::chrono::milliseconds timeout) {
  nlohmann::json message{{"execute", command}};
  if (!arguments.is_null())
    message["arguments"] = arguments;
  if (auto sent = send(message); !sent)
    return std::unexpected(sent.error());
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    auto reply = read_message(deadline);
    if (!reply)
      return std::unexpected(core::with_context(reply.error(), fmt::format("QMP {}", command)));
    if (reply->contains("event")) {
      m_events.push_back(std::move(*reply));
      continue;
    }
    if (reply->contains("error"))
      return core::infra_error("QMP {} failed: {}", command,
                               (*reply)["error"].value("desc", reply->dump()));
    return reply->value("return", nlohmann::json::object());
  }
}

core::Result<nlohmann::json> Qmp::wait_event(std::string_view name,
                                             std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    while (!m_events.empty()) {
      auto event = std::move(m_events.front());
      m_events.pop_front();
      if (event.value("event", "") == name)
        return event;
    }
    auto message = read_message(deadline);
    if (!message)
      return std::unexpected(
          core::with_context(message.error(), fmt::format("waiting for QMP event {}", name)));
    if (message->contains("event"))
      m_events.push_back(std::move(*message));
  }
}

core::Status Qmp::wait_migration(std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    auto event = wait_event("MIGRATION", std::max(left, std::chrono::milliseconds(1)));
    if (!event)
      return std::unexpected(event.error());
    const std::string status = (*event)["data"].value("status", "");
    if (status == "completed")
      return {};
    if (status == "failed" || status == "cancelled")
      return core::infra_error("QEMU's migration {}: {}", status, event->dump());
  }
}

} // namespace probegate::vm
