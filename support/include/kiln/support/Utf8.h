// The one UTF-8 codec of kiln: the tokenizer, the chat-template engine and the file parsers all decode and check
// text here, so "valid UTF-8" and the replacement of ill-formed bytes mean the same thing everywhere.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kiln::support {

// The number of bytes, from p[0] (n >= 1 available), of the longest prefix of a well-formed sequence (Unicode
// table 3-7): 0 when p[0] cannot start one; `complete` tells whether that prefix is a whole character.
size_t utf8WellFormedPrefix(const unsigned char *p, size_t n, bool &complete);
// Byte offset of the first ill-formed sequence, or npos.
size_t invalidUtf8Offset(std::string_view s);
inline bool isValidUtf8(std::string_view s) { return invalidUtf8Offset(s) == std::string_view::npos; }
// The code point at s[i] (i < s.size()), advancing i past it; a maximal ill-formed subpart yields U+FFFD
// (as Rust's from_utf8_lossy and Python's errors="replace").
char32_t decodeUtf8(std::string_view s, size_t &i);
void appendUtf8(std::string &out, char32_t c);
// Each maximal ill-formed subpart replaced by one U+FFFD.
std::string utf8Lossy(std::string_view bytes);
// Byte length of the character whose first byte is `lead` (valid text).
size_t utf8Length(unsigned char lead);
// Characters of valid text.
size_t utf8CharCount(std::string_view s);
// Byte offset where the last character of a non-empty valid string starts.
size_t utf8LastCharStart(std::string_view s);

} // namespace kiln::support
