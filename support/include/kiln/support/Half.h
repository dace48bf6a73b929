// IEEE binary16 (fp16) and bfloat16 <-> binary32 conversions.
// Float -> half conversions round to nearest, ties to even; overflow gives +-Inf; NaN stays NaN
// (quiet, sign and the top payload bits kept); subnormals are produced and read exactly.
#pragma once

#include <cstdint>
#include <cstring>

namespace kiln {

inline uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float bitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// binary16 -> binary32 (exact).
inline float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) // Inf / NaN (payload kept)
    return bitsToFloat(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    if (mant == 0)
      return bitsToFloat(sign);
    // Subnormal: normalize.
    int e = 1;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      --e;
    }
    mant &= 0x3ffu;
    return bitsToFloat(sign | (uint32_t(e + 112) << 23) | (mant << 13));
  }
  return bitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
}

// binary32 -> binary16, round to nearest even.
inline uint16_t floatToHalf(float f) {
  uint32_t x = floatBits(f);
  uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) {
    if (x > 0x7f800000u) // NaN: quiet, keep the top payload bits
      return uint16_t(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
    return uint16_t(sign | 0x7c00u);
  }
  uint32_t e = x >> 23; // biased float exponent
  if (e >= 143)         // >= 2^16: Inf
    return uint16_t(sign | 0x7c00u);
  if (e >= 113) { // normal half (carry of the rounding may reach Inf, which is right)
    uint32_t h = ((e - 112) << 10) | ((x >> 13) & 0x3ffu);
    uint32_t rem = x & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
      ++h;
    return uint16_t(sign | h);
  }
  if (e < 102) // < 2^-25: rounds to zero
    return sign;
  // Subnormal half: value in units of 2^-24 is mant * 2^(e - 126).
  uint32_t mant = (x & 0x7fffffu) | 0x800000u;
  uint32_t shift = 126 - e; // 14 .. 24
  uint32_t q = mant >> shift;
  uint32_t rem = mant & ((1u << shift) - 1u);
  uint32_t halfway = 1u << (shift - 1);
  if (rem > halfway || (rem == halfway && (q & 1u)))
    ++q; // may become 0x400, the smallest normal: the right encoding
  return uint16_t(sign | q);
}

// bfloat16 -> binary32 (exact).
inline float bf16ToFloat(uint16_t b) { return bitsToFloat(uint32_t(b) << 16); }

// binary32 -> bfloat16, round to nearest even.
inline uint16_t floatToBf16(float f) {
  uint32_t x = floatBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) // NaN: quiet, keep sign and top payload bits
    return uint16_t((x >> 16) | 0x0040u);
  uint32_t lsb = (x >> 16) & 1u;
  x += 0x7fffu + lsb; // overflow of the largest finite values gives Inf, which is right
  return uint16_t(x >> 16);
}

} // namespace kiln
