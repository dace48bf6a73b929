#include "Unicode.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/uset.h>
#include <unicode/ustring.h>

#include <array>
#include <vector>

namespace kiln::tokenizer::detail {

// ---------------------------------------------------------------------------------------------------------
// UTF-8
// ---------------------------------------------------------------------------------------------------------

size_t utf8Length(unsigned char lead) {
  if (lead < 0x80)
    return 1;
  if (lead >= 0xf0)
    return 4;
  if (lead >= 0xe0)
    return 3;
  return 2;
}

char32_t decodeUtf8(std::string_view s, size_t &i) {
  auto byte = [&](size_t k) -> char32_t { return i + k < s.size() ? (static_cast<unsigned char>(s[i + k]) & 0x3f) : 0; };
  unsigned char lead = static_cast<unsigned char>(s[i]);
  size_t len = utf8Length(lead);
  char32_t c;
  if (len == 1)
    c = lead;
  else if (len == 2)
    c = (char32_t(lead & 0x1f) << 6) | byte(1);
  else if (len == 3)
    c = (char32_t(lead & 0x0f) << 12) | (byte(1) << 6) | byte(2);
  else
    c = (char32_t(lead & 0x07) << 18) | (byte(1) << 12) | (byte(2) << 6) | byte(3);
  i += len;
  if (i > s.size())
    i = s.size();
  return c;
}

void appendUtf8(std::string &out, char32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xc0 | (c >> 6));
    out += char(0x80 | (c & 0x3f));
  } else if (c < 0x10000) {
    out += char(0xe0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3f));
    out += char(0x80 | (c & 0x3f));
  } else {
    out += char(0xf0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3f));
    out += char(0x80 | ((c >> 6) & 0x3f));
    out += char(0x80 | (c & 0x3f));
  }
}

namespace {
// The number of bytes, starting at p[0], that form the longest prefix of a well-formed UTF-8 sequence
// (Unicode table 3-7); `complete` tells whether that prefix is a whole character.
size_t wellFormedPrefix(const unsigned char *p, size_t n, bool &complete) {
  complete = false;
  unsigned char b = p[0];
  if (b < 0x80) {
    complete = true;
    return 1;
  }
  size_t len;
  unsigned char lo = 0x80, hi = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) {
    len = 2;
  } else if (b >= 0xe0 && b <= 0xef) {
    len = 3;
    if (b == 0xe0)
      lo = 0xa0;
    else if (b == 0xed)
      hi = 0x9f;
  } else if (b >= 0xf0 && b <= 0xf4) {
    len = 4;
    if (b == 0xf0)
      lo = 0x90;
    else if (b == 0xf4)
      hi = 0x8f;
  } else {
    return 0;
  }
  size_t k = 1;
  for (; k < len && k < n; ++k) {
    unsigned char c = p[k];
    if (c < lo || c > hi)
      return k;
    lo = 0x80;
    hi = 0xbf;
  }
  complete = k == len;
  return k;
}
} // namespace

size_t invalidUtf8Offset(std::string_view s) {
  const auto *p = reinterpret_cast<const unsigned char *>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    bool complete;
    size_t k = wellFormedPrefix(p + i, s.size() - i, complete);
    if (!complete)
      return i;
    i += k;
  }
  return std::string_view::npos;
}

std::string utf8Lossy(std::string_view bytes) {
  const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    bool complete;
    size_t k = wellFormedPrefix(p + i, bytes.size() - i, complete);
    if (complete) {
      out.append(bytes.data() + i, k);
      i += k;
    } else {
      out += "\xef\xbf\xbd";
      i += k == 0 ? 1 : k;
    }
  }
  return out;
}

size_t charCount(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xc0) != 0x80;
  return n;
}

size_t lastCharStart(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xc0) == 0x80)
    --i;
  return i == 0 ? 0 : i - 1;
}

// ---------------------------------------------------------------------------------------------------------
// Character classes
// ---------------------------------------------------------------------------------------------------------

namespace {
int8_t category(char32_t c) { return u_charType(UChar32(c)); }
uint32_t categoryMask(char32_t c) { return U_MASK(category(c)); }

// Whether `c` was assigned in Unicode `major`.`minor` or earlier (the crates with old tables know only
// those; later characters are unassigned there).
bool assignedBy(char32_t c, uint8_t major, uint8_t minor) {
  UVersionInfo age;
  u_charAge(UChar32(c), age);
  if (age[0] == 0 && age[1] == 0)
    return false; // unassigned today
  return age[0] < major || (age[0] == major && age[1] <= minor);
}
} // namespace

bool isWhitespace(char32_t c) {
  if (c < 0x80)
    return c == ' ' || (c >= 0x09 && c <= 0x0d);
  return u_hasBinaryProperty(UChar32(c), UCHAR_WHITE_SPACE);
}

bool isNumeric(char32_t c) {
  if (c < 0x80)
    return c >= '0' && c <= '9';
  return (categoryMask(c) & U_GC_N_MASK) != 0;
}

bool isRegexWord(char32_t c) {
  if (c < 0x80)
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  uint32_t m = categoryMask(c);
  return (m & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0 ||
         u_hasBinaryProperty(UChar32(c), UCHAR_ALPHABETIC) || u_hasBinaryProperty(UChar32(c), UCHAR_JOIN_CONTROL);
}

bool isPunctuation(char32_t c) {
  if (c < 0x80)
    return (categoryMask(c) & U_GC_P_MASK) != 0;
  return (categoryMask(c) & U_GC_P_MASK) != 0 && assignedBy(c, 8, 0);
}

bool isOtherCategory(char32_t c) {
  uint32_t m = categoryMask(c);
  if ((m & U_GC_CC_MASK) != 0)
    return true;
  return (m & (U_GC_CF_MASK | U_GC_CO_MASK | U_GC_CS_MASK)) != 0 && assignedBy(c, 8, 0);
}

bool isMarkNonspacing(char32_t c) { return category(c) == U_NON_SPACING_MARK && assignedBy(c, 8, 0); }

bool isCombiningMark(char32_t c) { return (categoryMask(c) & U_GC_M_MASK) != 0 && assignedBy(c, 9, 0); }

void appendLowercase(std::string &out, char32_t c) {
  if (c < 0x80) {
    out += char(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return;
  }
  UChar src[2], dst[8];
  int32_t srcLen = 0;
  U16_APPEND_UNSAFE(src, srcLen, UChar32(c));
  UErrorCode err = U_ZERO_ERROR;
  int32_t n = u_strToLower(dst, 8, src, srcLen, "", &err);
  if (U_FAILURE(err) || n > 8) {
    appendUtf8(out, c);
    return;
  }
  for (int32_t i = 0; i < n;) {
    UChar32 cp;
    U16_NEXT(dst, i, n, cp);
    appendUtf8(out, char32_t(cp));
  }
}

bool isChineseChar(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// ---------------------------------------------------------------------------------------------------------
// Normalization: ICU's normalizers restricted to the characters of Unicode 9.0 (a filtered normalizer leaves
// later characters alone and never lets them interact with their neighbours, which is what the 9.0 tables
// of unicode-normalization-alignments do with characters they do not know).
// ---------------------------------------------------------------------------------------------------------

namespace {
struct Normalizers {
  std::array<const UNormalizer2 *, 4> forms{};
  Normalizers() {
    UErrorCode err = U_ZERO_ERROR;
    static const UChar pattern[] = u"[:age=9.0:]";
    USet *set = uset_openPattern(pattern, -1, &err);
    if (U_FAILURE(err))
      return;
    uset_freeze(set);
    const UNormalizer2 *base[4] = {unorm2_getNFCInstance(&err), unorm2_getNFDInstance(&err),
                                   unorm2_getNFKCInstance(&err), unorm2_getNFKDInstance(&err)};
    if (U_FAILURE(err))
      return;
    for (int i = 0; i < 4; ++i) {
      forms[i] = unorm2_openFiltered(base[i], set, &err); // lives for the whole process, as does `set`
      if (U_FAILURE(err))
        forms[i] = nullptr;
    }
  }
};

const UNormalizer2 *normalizerFor(NormalForm form) {
  static const Normalizers normalizers;
  return normalizers.forms[int(form)];
}

std::vector<UChar> toUtf16(std::string_view s) {
  std::vector<UChar> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t c = decodeUtf8(s, i);
    if (c < 0x10000) {
      out.push_back(UChar(c));
    } else {
      out.push_back(U16_LEAD(c));
      out.push_back(U16_TRAIL(c));
    }
  }
  return out;
}

std::string fromUtf16(const UChar *s, int32_t n) {
  std::string out;
  for (int32_t i = 0; i < n;) {
    UChar32 c;
    U16_NEXT(s, i, n, c);
    appendUtf8(out, char32_t(c));
  }
  return out;
}
} // namespace

bool hasNormalizationBoundaryBefore(NormalForm form, char32_t c) {
  const UNormalizer2 *n = normalizerFor(form);
  return n == nullptr || unorm2_hasBoundaryBefore(n, UChar32(c));
}

size_t normalizedPrefixLength(NormalForm form, std::string_view s) {
  // ASCII is normalized in every form; only the rest needs ICU.
  size_t ascii = 0;
  while (ascii < s.size() && static_cast<unsigned char>(s[ascii]) < 0x80)
    ++ascii;
  if (ascii == s.size())
    return ascii;
  const UNormalizer2 *n = normalizerFor(form);
  if (n == nullptr)
    return s.size();
  // Back up one character: the last ASCII character may compose with what follows.
  size_t start = ascii == 0 ? 0 : ascii - 1;
  std::vector<UChar> u = toUtf16(s.substr(start));
  UErrorCode err = U_ZERO_ERROR;
  int32_t span = unorm2_spanQuickCheckYes(n, u.data(), int32_t(u.size()), &err);
  if (U_FAILURE(err))
    return start;
  // Convert the UTF-16 span back to a UTF-8 length.
  size_t bytes = start;
  for (int32_t k = 0; k < span;) {
    size_t before = bytes;
    decodeUtf8(s, bytes);
    k += (bytes - before) == 4 ? 2 : 1;
  }
  return bytes;
}

std::string normalizeUtf8(NormalForm form, std::string_view s) {
  const UNormalizer2 *n = normalizerFor(form);
  if (n == nullptr)
    return std::string(s);
  std::vector<UChar> u = toUtf16(s);
  std::vector<UChar> out(u.size() * 4 + 16);
  UErrorCode err = U_ZERO_ERROR;
  int32_t len = unorm2_normalize(n, u.data(), int32_t(u.size()), out.data(), int32_t(out.size()), &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) {
    out.resize(size_t(len));
    err = U_ZERO_ERROR;
    len = unorm2_normalize(n, u.data(), int32_t(u.size()), out.data(), int32_t(out.size()), &err);
  }
  if (U_FAILURE(err))
    return std::string(s);
  return fromUtf16(out.data(), len);
}

// ---------------------------------------------------------------------------------------------------------
// Byte-level alphabet (GPT-2): printable bytes map to themselves, the others to U+0100 onwards, in order.
// ---------------------------------------------------------------------------------------------------------

namespace {
struct ByteAlphabet {
  std::array<char32_t, 256> toChar{};
  std::array<int16_t, 512> toByte{};
  ByteAlphabet() {
    toByte.fill(-1);
    auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff); };
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      char32_t c = printable(b) ? char32_t(b) : char32_t(256 + extra++);
      toChar[b] = c;
      toByte[c] = int16_t(b);
    }
  }
};
const ByteAlphabet &byteAlphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}
} // namespace

char32_t byteToChar(uint8_t b) { return byteAlphabet().toChar[b]; }

int charToByte(char32_t c) { return c < 512 ? byteAlphabet().toByte[c] : -1; }

} // namespace kiln::tokenizer::detail
