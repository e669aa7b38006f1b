// SPDX-License-Identifier: GPL-2.0-only
#include "core/error.h"

namespace probegate::core {

int exit_code(ErrorKind kind) {
  switch (kind) {
  case ErrorKind::usage:
    return 2;
  case ErrorKind::infra:
    return 3;
  case ErrorKind::interrupted:
    return 130;
  case ErrorKind::host_lost:
    return 3;
  }
  return 3;
}

std::string_view kind_name(ErrorKind kind) {
  switch (kind) {
  case ErrorKind::usage:
    return "usage";
  case ErrorKind::infra:
    return "infrastructure";
  case ErrorKind::interrupted:
    return "interrupted";
  case ErrorKind::host_lost:
    return "host lost";
  }
  return "infrastructure";
}

Error with_context(Error error, std::string_view context) {
  error.message = fmt::format("{}: {}", context, error.message);
  return error;
}

} // namespace probegate::core
