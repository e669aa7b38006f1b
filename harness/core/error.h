// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <expected>
#include <fmt/core.h>
#include <string>
#include <utility>

namespace probegate::core {

// What went wrong around the kernel (never what the kernel did: that is a
// Verdict). Each kind maps to one exit code of the CLI contract.
enum class ErrorKind {
  usage,       // bad input or usage: exit 2
  infra,       // a tool missing, a download failed, QEMU could not start: exit 3
  interrupted, // SIGINT/SIGTERM: exit 130
  // A pool host went away (its daemon died, its connection dropped): the
  // case is run again on another host; alone, it is infra (exit 3).
  host_lost,
};

// An error a user can act on: the message names the file, option or tool and
// what to do about it.
struct Error {
  ErrorKind kind;
  std::string message;
};

template <typename T> using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

int exit_code(ErrorKind kind);
std::string_view kind_name(ErrorKind kind);

template <typename... Args>
std::unexpected<Error> usage_error(fmt::format_string<Args...> f, Args&&... args) {
  return std::unexpected(Error{ErrorKind::usage, fmt::format(f, std::forward<Args>(args)...)});
}

template <typename... Args>
std::unexpected<Error> infra_error(fmt::format_string<Args...> f, Args&&... args) {
  return std::unexpected(Error{ErrorKind::infra, fmt::format(f, std::forward<Args>(args)...)});
}

// Prefixes context ("fetching debian:6.1: ") to an error travelling upwards.
Error with_context(Error error, std::string_view context);

} // namespace probegate::core
