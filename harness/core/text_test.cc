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

TEST(Printable, RemovesC0AndC1Controls) {
  EXPECT_EQ(printable("a\x1b[31mb\x07"
                      "c\r"),
            "a [31mb c ");
  EXPECT_EQ(printable("csi\xc2\x9b"
                      "31m"),
            "csi 31m")
      << "U+009B is a CSI to many terminals";
  EXPECT_EQ(printable("caf\xc3\xa9 \xc2\xa0nbsp"), "caf\xc3\xa9 \xc2\xa0nbsp")
      << "printable non-ASCII stays";
}

TEST(FirstUnsafeByte, FindsControlsAndBrokenUtf8) {
  EXPECT_EQ(first_unsafe_byte("plain text\n\ttab \xe2\x9c\x93"), std::string_view::npos);
  EXPECT_EQ(first_unsafe_byte("ab\x1b[2J"), 2u); // ESC
  EXPECT_EQ(first_unsafe_byte("a\x7f"), 1u);     // DEL
  EXPECT_EQ(first_unsafe_byte("x\xc2\x9b"
                              "2J"),
            1u);                                    // C1 CSI as UTF-8
  EXPECT_EQ(first_unsafe_byte("x\xff"), 1u);        // never UTF-8
  EXPECT_EQ(first_unsafe_byte("x\xe2\x9c"), 1u);    // cut short
  EXPECT_EQ(first_unsafe_byte("\xc0\xaf"), 0u);     // overlong
  EXPECT_EQ(first_unsafe_byte("\xed\xa0\x80"), 0u); // a surrogate
}

TEST(Text, ParseIntTakesWholeNumbersOnly) {
  EXPECT_EQ(core::parse_int("252"), 252);
  EXPECT_EQ(core::parse_int("-4"), -4);
  EXPECT_EQ(core::parse_int(""), std::nullopt);
  EXPECT_EQ(core::parse_int("25x"), std::nullopt);
  EXPECT_EQ(core::parse_int(" 2"), std::nullopt);
  EXPECT_EQ(core::parse_int("99999999999"), std::nullopt);
}
} // namespace
} // namespace probegate::core
