// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include "core/error.h"

#include <chrono>
#include <deque>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace probegate::vm {

// The QEMU Machine Protocol, client side
// (docs/FACTS.md "Saving and restoring a guest"). probegate listens on a unix socket and QEMU
// connects to it when it starts (`-chardev socket,server=off`), so there is
// no socket file to wait for. Every read has a deadline: a QEMU that hangs or
// dies is an infrastructure error, never a wait forever.
class Qmp {
public:
  // Listens on `socket` (replacing a stale one), before QEMU starts.
  static core::Result<Qmp> listen(const std::filesystem::path& socket);
  Qmp(Qmp&& other) noexcept;
  Qmp& operator=(Qmp&&) = delete;
  Qmp(const Qmp&) = delete;
  ~Qmp();

  // Takes QEMU's connection and leaves capability negotiation mode.
  core::Status accept(std::chrono::milliseconds timeout);
  // Runs one command; its "return" value, or QEMU's error as an infra Error.
  core::Result<nlohmann::json>
  execute(std::string_view command, const nlohmann::json& arguments = nullptr,
          std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // The next event named `name` (events seen while waiting for a reply are
  // kept in order, so none is lost between calls).
  core::Result<nlohmann::json> wait_event(std::string_view name, std::chrono::milliseconds timeout);
  // wait_event("MIGRATION") until status is "completed"; "failed" is an Error.
  core::Status wait_migration(std::chrono::milliseconds timeout);

  // From another thread, once QEMU has ended: a wait for its connection
  // returns at once instead of at its deadline.
  void cancel();

private:
  Qmp(int listen_fd, std::filesystem::path socket)
      : m_listen_fd(listen_fd), m_socket(std::move(socket)) {}
  core::Result<nlohmann::json> read_message(std::chrono::steady_clock::time_point deadline);
  core::Status send(const nlohmann::json& message);

  int m_listen_fd = -1;
  int m_fd = -1;
  std::filesystem::path m_socket;
  std::string m_buffer;
  std::deque<nlohmann::json> m_events;
};

} // namespace probegate::vm
