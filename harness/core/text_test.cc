// SPDX-License-Identifier: GPL-2.0-only
#include "core/text.h"

#include <gtest/gtest.h>

namespace probegate::core {
namespace {

TEST(SanitizeUtf8, KeepsValidTextAndReplacesTheRest) {
  EXPECT_EQ(sanitize_utf8("plain ascii"), "plain ascii");
  EXPECT_EQ(sanitize_utf8("em\xE2\x80\x94"
                          "dash"),
            "em\xE2\x80\x94"
            "dash");
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x90\xA7"), "\xF0\x9F\x90\xA7");
  EXPECT_EQ(sanitize_utf8("bad\xFF"
                          "byte"),
            "bad\xEF\xBF\xBD"
            "byte");
  EXPECT_EQ(sanitize_utf8("cut\xE2\x80"), "cut\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD") << "overlong";
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD") << "surrogate";
}

} // namespace
} // namespace probegate::core
