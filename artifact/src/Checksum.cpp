//===- Checksum.cpp - xxHash64 (seed 0), streaming and one-shot -----------===//
//
// A from-scratch implementation of the xxHash64 specification
// (https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md), little-endian input.
//
//===----------------------------------------------------------------------===//
#include "kiln/artifact/ArtifactFormat.h"
#include "kiln/artifact/Checksum.h"

#include <cstring>

namespace kiln::artifact {
namespace {
constexpr uint64_t P1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t P2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t P3 = 0x165667B19E3779F9ULL;
constexpr uint64_t P4 = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t P5 = 0x27D4EB2F165667C5ULL;

inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t read64(const uint8_t *p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v; // the project targets little-endian hosts only
}
inline uint32_t read32(const uint8_t *p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t round(uint64_t acc, uint64_t lane) {
  acc += lane * P2;
  acc = rotl(acc, 31);
  return acc * P1;
}
inline uint64_t mergeRound(uint64_t acc, uint64_t v) {
  acc ^= round(0, v);
  return acc * P1 + P4;
}
} // namespace

Xxh64::Xxh64(uint64_t seed) : seed_(seed) {
  v_[0] = seed + P1 + P2;
  v_[1] = seed + P2;
  v_[2] = seed;
  v_[3] = seed - P1;
}

void Xxh64::update(const void *data, size_t size) {
  const uint8_t *p = static_cast<const uint8_t *>(data);
  total_ += size;
  if (bufferedSize_ + size < 32) {
    std::memcpy(buffer_ + bufferedSize_, p, size);
    bufferedSize_ += size;
    return;
  }
  if (bufferedSize_ > 0) {
    size_t fill = 32 - bufferedSize_;
    std::memcpy(buffer_ + bufferedSize_, p, fill);
    for (int i = 0; i < 4; ++i)
      v_[i] = round(v_[i], read64(buffer_ + 8 * i));
    p += fill;
    size -= fill;
    bufferedSize_ = 0;
  }
  while (size >= 32) {
    for (int i = 0; i < 4; ++i)
      v_[i] = round(v_[i], read64(p + 8 * i));
    p += 32;
    size -= 32;
  }
  std::memcpy(buffer_, p, size);
  bufferedSize_ = size;
}

uint64_t Xxh64::digest() const {
  uint64_t acc;
  if (total_ >= 32) {
    acc = rotl(v_[0], 1) + rotl(v_[1], 7) + rotl(v_[2], 12) + rotl(v_[3], 18);
    for (int i = 0; i < 4; ++i)
      acc = mergeRound(acc, v_[i]);
  } else {
    acc = seed_ + P5;
  }
  acc += total_;
  const uint8_t *p = buffer_;
  size_t left = bufferedSize_;
  while (left >= 8) {
    acc ^= round(0, read64(p));
    acc = rotl(acc, 27) * P1 + P4;
    p += 8;
    left -= 8;
  }
  if (left >= 4) {
    acc ^= uint64_t(read32(p)) * P1;
    acc = rotl(acc, 23) * P2 + P3;
    p += 4;
    left -= 4;
  }
  while (left > 0) {
    acc ^= uint64_t(*p) * P5;
    acc = rotl(acc, 11) * P1;
    ++p;
    --left;
  }
  acc ^= acc >> 33;
  acc *= P2;
  acc ^= acc >> 29;
  acc *= P3;
  acc ^= acc >> 32;
  return acc;
}

uint64_t checksum64(const void *data, size_t size) {
  Xxh64 h;
  h.update(data, size);
  return h.digest();
}

} // namespace kiln::artifact
