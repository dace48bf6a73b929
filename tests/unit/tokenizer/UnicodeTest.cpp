// The internals that must agree with the Rust crates Hugging Face tokenizers uses: UTF-8 repair, the character
// classes at each crate's Unicode version, and the regex iteration of the `onig` crate.
#include "Regex.h"
#include "Unicode.h"

#include <gtest/gtest.h>

using namespace kiln::tokenizer::detail;

namespace {
std::string lower(char32_t c) {
  std::string s;
  appendLowercase(s, c);
  return s;
}
const std::string kFffd = "\xef\xbf\xbd";
} // namespace

TEST(Unicode, LossyUtf8ReplacesMaximalSubparts) {
  // Rust String::from_utf8_lossy.
  EXPECT_EQ(utf8Lossy("a\xf0\x9f\x98"), "a" + kFffd);
  EXPECT_EQ(utf8Lossy("\xe2\x82" "a"), kFffd + "a");
  EXPECT_EQ(utf8Lossy("\xc0\x80"), kFffd + kFffd);
  EXPECT_EQ(utf8Lossy("\xed\xa0\x80"), kFffd + kFffd + kFffd);
  EXPECT_EQ(utf8Lossy("\xf4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);
  EXPECT_EQ(utf8Lossy("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");
  EXPECT_EQ(invalidUtf8Offset("ok\xe2\x82"), 2u);
  EXPECT_EQ(invalidUtf8Offset("\xc3\xa9"), std::string_view::npos);
}

TEST(Unicode, DecodeReplacesMaximalSubpartsAsPython) {
  // The one codec of the tokenizer and the chat templates: Python's bytes.decode("utf-8", "replace") gives
  // these code points (checked with CPython 3.11).
  auto decodeAll = [](std::string_view s) {
    std::u32string out;
    for (size_t i = 0; i < s.size();)
      out.push_back(decodeUtf8(s, i));
    return out;
  };
  EXPECT_EQ(decodeAll("\xe2\x82" "A"), U"\uFFFDA");
  EXPECT_EQ(decodeAll("\xf0\x80"), U"\uFFFD\uFFFD");
  EXPECT_EQ(decodeAll("\xed\xa0\x80z"), U"\uFFFD\uFFFD\uFFFDz");
  EXPECT_EQ(decodeAll("\xc3\xa9\xf0\x9f\x98\x80"), U"\u00E9\U0001F600");
  EXPECT_EQ(decodeAll("\xef\xbf\xbd"), U"\uFFFD");
  EXPECT_EQ(decodeAll("\xff"), U"\uFFFD");
}

TEST(Unicode, ClassesFollowEachCratesUnicodeVersion) {
  // unicode_categories (Unicode 8.0).
  EXPECT_TRUE(isPunctuation(0x166D));   // Po in 8.0, So since 12.0
  EXPECT_FALSE(isPunctuation(0x2E43));  // added in 9.0
  EXPECT_TRUE(isPunctuation(0x111C9));  // Po in 8.0, Mn later
  EXPECT_TRUE(isOtherCategory(0x200B)); // Cf
  EXPECT_FALSE(isOtherCategory(0x08E2)); // Cf added in 9.0
  EXPECT_FALSE(isOtherCategory(0x0378)); // unassigned: the crate's Cn table is empty
  EXPECT_TRUE(isMarkNonspacing(0x1734)); // Mn in 8.0, Mc since 14.0
  EXPECT_FALSE(isMarkNonspacing(0x1885)); // Lo in 8.0
  // unicode-normalization-alignments (Unicode 9.0).
  EXPECT_TRUE(isCombiningMark(0x1DF5));
  EXPECT_FALSE(isCombiningMark(0x1DF6)); // added in 10.0
  // Rust's std (Unicode 17.0) and the regex crate (16.0), beyond ICU's 15.0.
  EXPECT_EQ(lower(0xA7CE), "\xea\x9f\x8f");       // U+A7CF, a 17.0 pair
  EXPECT_EQ(lower(0x10D50), "\xf0\x90\xb5\xb0");  // Garay (16.0)
  EXPECT_EQ(lower(0x0130), "i\xcc\x87");          // the one unconditional multi-character mapping
  EXPECT_EQ(lower(0x03A3), "\xcf\x83");           // sigma, never final sigma
  EXPECT_TRUE(isNumeric(0x11DE0));                // Tolong Siki digit (17.0)
  EXPECT_TRUE(isRegexWord(0x10D50));
  EXPECT_FALSE(isRegexWord(0xA7CE)); // 17.0: not in the regex crate's tables yet
  EXPECT_TRUE(isRegexWord(0x24B6));  // Alphabetic symbol
}

TEST(Regex, IteratesAsTheOnigCrate) {
  auto re = Regex::compile("a*");
  ASSERT_TRUE(re.ok());
  auto found = (*re)->findAll("baaac");
  ASSERT_TRUE(found.ok());
  // An empty match right after a match is skipped.
  EXPECT_EQ(*found, (std::vector<std::pair<size_t, size_t>>{{0, 0}, {1, 4}, {5, 5}}));
  auto lit = Regex::literal("a.b");
  ASSERT_TRUE(lit.ok());
  EXPECT_EQ((*lit)->findAll("axb a.b")->size(), 1u);
}

TEST(Regex, ClassesHaveUnicode16Characters) {
  auto re = Regex::compile("\\p{L}+|\\d+|[^\\s\\p{L}\\p{N}]+");
  ASSERT_TRUE(re.ok());
  // Garay letters and digits (Unicode 16.0) are one letter run and one digit run, as in Hugging Face.
  auto found = (*re)->findAll("\xf0\x90\xb5\x90\xf0\x90\xb5\x91\xf0\x90\xb5\x80");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, (std::vector<std::pair<size_t, size_t>>{{0, 8}, {8, 12}}));
  EXPECT_FALSE(Regex::compile("(a").ok());
}
