// UTF-8 helpers and the character classes of Hugging Face tokenizers. tokenizers takes each class from a
// different Rust crate, several of them with old Unicode tables; each predicate here says which definition it
// reproduces (the data comes from ICU, filtered by Unicode age where a crate is older than ICU).
#pragma once

#include "kiln/support/Utf8.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::tokenizer::detail {

// ---- UTF-8: support's codec (inputs are valid UTF-8 unless said otherwise) ----
using support::appendUtf8;
using support::decodeUtf8;
using support::invalidUtf8Offset;
using support::isValidUtf8;
using support::utf8Length;
using support::utf8Lossy;
inline size_t charCount(std::string_view s) { return support::utf8CharCount(s); }
inline size_t lastCharStart(std::string_view s) { return support::utf8LastCharStart(s); }

// ---- Character classes ----
// Rust char::is_whitespace (the White_Space property); also the regex crate's \s.
bool isWhitespace(char32_t c);
// Rust char::is_numeric (general categories Nd, Nl, No).
bool isNumeric(char32_t c);
// The regex crate's \w (Alphabetic, marks, Nd, Pc, Join_Control).
bool isRegexWord(char32_t c);
// unicode_categories 0.1 (Unicode 8.0 tables): is_punctuation (P*), is_other (Cc, Cf, Co; its Cn table is
// empty) and is_mark_nonspacing (Mn).
bool isPunctuation(char32_t c);
bool isOtherCategory(char32_t c);
bool isMarkNonspacing(char32_t c);
// unicode-normalization-alignments 0.1 (Unicode 9.0 tables): is_combining_mark (Mn, Mc, Me).
bool isCombiningMark(char32_t c);
// Rust char::to_lowercase (the full, context-free mapping), appended to `out`.
void appendLowercase(std::string &out, char32_t c);
// The Unicode 16.0 characters (Hugging Face's Oniguruma) that Oniguruma's property `name` (a general category
// such as "L" or "Nd", or "\\d" / "\\w") has beyond Debian's Oniguruma 6.9.8 (Unicode 14.0), as regex class
// items "\\x{...}-\\x{...}" ("" for none or an unknown name).
std::string regexClassAdditions(std::string_view name);
// BertNormalizer's CJK ideograph blocks.
bool isChineseChar(char32_t c);

// ---- Normalization (unicode-normalization-alignments: Unicode 9.0 data) ----
enum class NormalForm { NFC, NFD, NFKC, NFKD };
// Whether a normalization segment starts at `c` (text before and after `c` normalize independently).
bool hasNormalizationBoundaryBefore(NormalForm form, char32_t c);
// The length of the prefix of `s` that is already normalized (quick check "yes").
size_t normalizedPrefixLength(NormalForm form, std::string_view s);
std::string normalizeUtf8(NormalForm form, std::string_view s);

// ---- GPT-2's byte-level alphabet: each byte as a printable character ----
char32_t byteToChar(uint8_t b);
// The byte of a byte-level character, or -1.
int charToByte(char32_t c);

} // namespace kiln::tokenizer::detail
