// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/knobs.h"

#include <gtest/gtest.h>

namespace probegate::kernel {
namespace {

std::string image(std::initializer_list<std::string_view> strings) {
  std::string out("\x7f"
                  "ELF junk",
                  8);
  for (auto s : strings) {
    out.push_back('\0');
    out += s;
    out.push_back('\0');
  }
  return out;
}

TEST(Knobs, ReadFromTheImageStrings) {
  // 6.0+: all three.
  auto k = detect_knobs(image({"module.async_probe", "driver_async_probe=", "async_probe"}));
  EXPECT_TRUE(k.at("module.async_probe"));
  EXPECT_TRUE(k.at("driver_async_probe="));
  EXPECT_TRUE(k.at("async_probe"));
  // 5.10: the loader's per-module parameter and the boot option, no default.
  k = detect_knobs(image({"module.sig_enforce", "driver_async_probe=", "async_probe"}));
  EXPECT_FALSE(k.at("module.async_probe"));
  EXPECT_TRUE(k.at("driver_async_probe="));
  // The linker may keep "async_probe" only as the tail of a longer string.
  k = detect_knobs(image({"module.async_probe"}));
  EXPECT_TRUE(k.at("async_probe"));
  // A name that only starts a longer string is not the knob.
  k = detect_knobs(image({"module.async_probe_x", "driver_async_probe=x"}));
  EXPECT_FALSE(k.at("module.async_probe"));
  EXPECT_FALSE(k.at("driver_async_probe="));
}

} // namespace
} // namespace probegate::kernel
