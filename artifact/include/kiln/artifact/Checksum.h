//===- Checksum.h - streaming xxHash64 --------------------------*- C++ -*-===//
#ifndef KILN_ARTIFACT_CHECKSUM_H
#define KILN_ARTIFACT_CHECKSUM_H

#include <cstddef>
#include <cstdint>

namespace kiln::artifact {

/// Streaming xxHash64: update() any number of times, digest() equals checksum64 of the concatenation.
class Xxh64 {
public:
  explicit Xxh64(uint64_t seed = 0);
  void update(const void *data, size_t size);
  uint64_t digest() const;

private:
  uint64_t seed_;
  uint64_t v_[4];
  uint8_t buffer_[32];
  size_t bufferedSize_ = 0;
  uint64_t total_ = 0;
};

} // namespace kiln::artifact

#endif // KILN_ARTIFACT_CHECKSUM_H
