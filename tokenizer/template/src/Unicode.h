// UTF-8 and the parts of Python's str semantics that depend on Unicode data: whitespace (str.strip/split),
// case mappings (upper/lower/title/capitalize, full mappings and the final-sigma rule) and str.isprintable
// (repr). Tables are generated from Python itself (tools/gen_unicode_tables.py).
#pragma once

#include "kiln/support/Utf8.h"

#include <string>
#include <string_view>

namespace kiln::jinja {

// Code points of UTF-8 text (support's codec); an ill-formed subpart decodes to U+FFFD (templates and values are
// validated first).
std::u32string decodeUtf8(std::string_view text);
using support::appendUtf8;
using support::isValidUtf8;
std::string encodeUtf8(std::u32string_view cps);
// Python's len(): the number of code points.
size_t codePointCount(std::string_view text);

bool isPySpace(char32_t cp);       // str.isspace() of one character
bool isPyPrintable(char32_t cp);   // str.isprintable() of one character

std::string pyUpper(std::string_view text);
std::string pyLower(std::string_view text);
std::string pyTitle(std::string_view text);
std::string pyCapitalize(std::string_view text);
std::string pySwapcase(std::string_view text);
std::string pyCasefold(std::string_view text);
bool pyIsLower(std::string_view text);
bool pyIsUpper(std::string_view text);

} // namespace kiln::jinja
