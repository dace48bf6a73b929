#include "Unicode.h"


#include <algorithm>
#include <cstdint>
#include <iterator>

namespace kiln::jinja {
namespace {

struct CodeRange {
  uint32_t first, last;
};
struct CaseMapping {
  uint32_t cp;
  uint32_t to[3]; // up to three code points; unused slots are 0
};

#include "UnicodeTables.inc"

template <size_t N> bool inRanges(const CodeRange (&table)[N], char32_t cp) {
  auto it = std::upper_bound(std::begin(table), std::end(table), uint32_t(cp),
                             [](uint32_t v, const CodeRange &r) { return v < r.first; });
  return it != std::begin(table) && cp <= std::prev(it)->last;
}

template <size_t N> void appendMapped(const CaseMapping (&table)[N], char32_t cp, std::u32string &out) {
  auto it = std::lower_bound(std::begin(table), std::end(table), uint32_t(cp),
                             [](const CaseMapping &m, uint32_t v) { return m.cp < v; });
  if (it == std::end(table) || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  for (uint32_t c : it->to)
    if (c)
      out.push_back(c);
}

bool isCased(char32_t cp) {
  return inRanges(kLowercase, cp) || inRanges(kUppercase, cp) || inRanges(kTitlecase, cp);
}

// CPython's handle_capital_sigma: U+03A3 lowers to final sigma after a cased letter (case-ignorable
// characters skipped) unless a cased letter follows.
char32_t lowerSigma(const std::u32string &s, size_t i) {
  size_t j = i;
  char32_t c = 0;
  bool found = false;
  while (j > 0) {
    c = s[--j];
    if (!inRanges(kCaseIgnorable, c)) {
      found = true;
      break;
    }
  }
  bool finalSigma = found && isCased(c);
  if (finalSigma && i + 1 < s.size()) {
    size_t k = i + 1;
    for (; k < s.size(); ++k)
      if (!inRanges(kCaseIgnorable, s[k]))
        break;
    finalSigma = k == s.size() || !isCased(s[k]);
  }
  return finalSigma ? 0x3C2 : 0x3C3;
}

void appendLower(const std::u32string &s, size_t i, std::u32string &out) {
  if (s[i] == 0x3A3)
    out.push_back(lowerSigma(s, i));
  else
    appendMapped(kLower, s[i], out);
}

} // namespace

std::u32string decodeUtf8(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();)
    out.push_back(support::decodeUtf8(text, i));
  return out;
}

std::string encodeUtf8(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t cp : cps)
    appendUtf8(out, cp);
  return out;
}

size_t codePointCount(std::string_view text) { return support::utf8CharCount(text); }

bool isPySpace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool isPyPrintable(char32_t cp) { return inRanges(kPrintable, cp); }

std::string pyUpper(std::string_view text) {
  std::u32string out;
  for (char32_t cp : decodeUtf8(text))
    appendMapped(kUpper, cp, out);
  return encodeUtf8(out);
}

std::string pyLower(std::string_view text) {
  std::u32string s = decodeUtf8(text), out;
  for (size_t i = 0; i < s.size(); ++i)
    appendLower(s, i, out);
  return encodeUtf8(out);
}

std::string pyTitle(std::string_view text) {
  std::u32string s = decodeUtf8(text), out;
  bool previousCased = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (previousCased)
      appendLower(s, i, out);
    else
      appendMapped(kTitle, s[i], out);
    previousCased = isCased(s[i]);
  }
  return encodeUtf8(out);
}

std::string pyCapitalize(std::string_view text) {
  std::u32string s = decodeUtf8(text), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 0)
      appendMapped(kTitle, s[i], out);
    else
      appendLower(s, i, out);
  }
  return encodeUtf8(out);
}

std::string pySwapcase(std::string_view text) {
  std::u32string s = decodeUtf8(text), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (inRanges(kUppercase, s[i]))
      appendLower(s, i, out);
    else if (inRanges(kLowercase, s[i]))
      appendMapped(kUpper, s[i], out);
    else
      out.push_back(s[i]);
  }
  return encodeUtf8(out);
}

std::string pyCasefold(std::string_view text) {
  std::u32string out;
  for (char32_t cp : decodeUtf8(text))
    appendMapped(kFold, cp, out);
  return encodeUtf8(out);
}

bool pyIsLower(std::string_view text) {
  bool cased = false;
  for (char32_t cp : decodeUtf8(text)) {
    if (inRanges(kUppercase, cp) || inRanges(kTitlecase, cp))
      return false;
    cased = cased || inRanges(kLowercase, cp);
  }
  return cased;
}

bool pyIsUpper(std::string_view text) {
  bool cased = false;
  for (char32_t cp : decodeUtf8(text)) {
    if (inRanges(kLowercase, cp) || inRanges(kTitlecase, cp))
      return false;
    cased = cased || inRanges(kUppercase, cp);
  }
  return cased;
}

} // namespace kiln::jinja
