#include "kiln/support/Utf8.h"

namespace kiln::support {

size_t utf8WellFormedPrefix(const unsigned char *p, size_t n, bool &complete) {
  complete = false;
  unsigned char b = p[0];
  if (b < 0x80) {
    complete = true;
    return 1;
  }
  size_t len;
  unsigned char lo = 0x80, hi = 0xbf; // the second byte's range narrows after E0, ED, F0, F4 (table 3-7)
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

size_t invalidUtf8Offset(std::string_view s) {
  const auto *p = reinterpret_cast<const unsigned char *>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    bool complete;
    size_t k = utf8WellFormedPrefix(p + i, s.size() - i, complete);
    if (!complete)
      return i;
    i += k;
  }
  return std::string_view::npos;
}

char32_t decodeUtf8(std::string_view s, size_t &i) {
  const auto *p = reinterpret_cast<const unsigned char *>(s.data()) + i;
  bool complete;
  size_t k = utf8WellFormedPrefix(p, s.size() - i, complete);
  if (!complete) {
    i += k == 0 ? 1 : k;
    return 0xfffd;
  }
  i += k;
  static const unsigned char kLeadMask[] = {0, 0x7f, 0x1f, 0x0f, 0x07};
  char32_t c = p[0] & kLeadMask[k];
  for (size_t j = 1; j < k; ++j)
    c = (c << 6) | (p[j] & 0x3f);
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

std::string utf8Lossy(std::string_view bytes) {
  const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    bool complete;
    size_t k = utf8WellFormedPrefix(p + i, bytes.size() - i, complete);
    if (complete)
      out.append(bytes.data() + i, k);
    else
      out += "\xef\xbf\xbd";
    i += k == 0 ? 1 : k;
  }
  return out;
}

size_t utf8Length(unsigned char lead) {
  if (lead < 0x80)
    return 1;
  if (lead >= 0xf0)
    return 4;
  if (lead >= 0xe0)
    return 3;
  return 2;
}

size_t utf8CharCount(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xc0) != 0x80;
  return n;
}

size_t utf8LastCharStart(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xc0) == 0x80)
    --i;
  return i == 0 ? 0 : i - 1;
}

} // namespace kiln::support
