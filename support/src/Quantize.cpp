//===- Quantize.cpp - q8_0 / q4_0 block quantization ------------------------===//
#include "kiln/support/Quantize.h"

#include "kiln/support/Half.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace kiln {

const char *quantFormatName(QuantFormat f) { return f == QuantFormat::Q8_0 ? "q8_0" : "q4_0"; }

std::optional<QuantFormat> parseQuantFormat(const std::string &name) {
  if (name == "q8_0")
    return QuantFormat::Q8_0;
  if (name == "q4_0")
    return QuantFormat::Q4_0;
  return std::nullopt;
}

uint64_t quantBytes(QuantFormat f, uint64_t elements) { return f == QuantFormat::Q8_0 ? elements : elements / 2; }

uint64_t quantizedMatrixBytes(QuantFormat f, uint64_t rows, uint64_t cols) {
  uint64_t elements;
  if (cols == 0 || cols % kQuantBlock != 0 || __builtin_mul_overflow(rows, cols, &elements) ||
      elements > (uint64_t(1) << 60))
    return 0;
  return quantBytes(f, elements) + elements / kQuantBlock * 2;
}

namespace {
/// One block of 32: the quants (as the layout stores them) and the f16 scale.
uint16_t quantizeBlock(QuantFormat f, const float *x, uint8_t *q) {
  if (f == QuantFormat::Q8_0) {
    float amax = 0;
    for (int64_t j = 0; j < kQuantBlock; ++j)
      amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    for (int64_t j = 0; j < kQuantBlock; ++j)
      q[j] = uint8_t(int(std::roundf(x[j] * id)) + 128);
    return floatToHalf(d);
  }
  float amax = 0, max = 0;
  for (int64_t j = 0; j < kQuantBlock; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  const float d = max / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
  for (int64_t j = 0; j < kQuantBlock / 2; ++j) {
    const uint8_t lo = uint8_t(std::min(15, int(int8_t(x[j] * id + 8.5f))));
    const uint8_t hi = uint8_t(std::min(15, int(int8_t(x[j + kQuantBlock / 2] * id + 8.5f))));
    q[j] = uint8_t(lo | hi << 4);
  }
  return floatToHalf(d);
}
} // namespace

uint64_t quantBlockIndex(uint64_t rows, uint64_t cols, uint64_t row, uint64_t block) {
  const uint64_t group = row / kQuantGroupRows * kQuantGroupRows;
  const uint64_t groupRows = std::min<uint64_t>(kQuantGroupRows, rows - group);
  return group * (cols / kQuantBlock) + block * groupRows + (row - group);
}

void quantizeMatrix(QuantFormat f, const float *src, uint64_t rows, uint64_t cols, uint8_t *out) {
  const uint64_t nb = cols / kQuantBlock, blockBytes = quantBytes(f, kQuantBlock);
  uint8_t *scales = out + quantBytes(f, rows * cols);
  for (uint64_t r = 0; r < rows; ++r)
    for (uint64_t b = 0; b < nb; ++b) {
      const uint64_t at = quantBlockIndex(rows, cols, r, b);
      uint16_t d = quantizeBlock(f, src + r * cols + b * kQuantBlock, out + at * blockBytes);
      std::memcpy(scales + 2 * at, &d, 2);
    }
}

void dequantizeMatrix(QuantFormat f, const uint8_t *in, uint64_t rows, uint64_t cols, float *out) {
  const uint64_t nb = cols / kQuantBlock, blockBytes = quantBytes(f, kQuantBlock);
  const uint8_t *scales = in + quantBytes(f, rows * cols);
  for (uint64_t r = 0; r < rows; ++r)
    for (uint64_t b = 0; b < nb; ++b) {
      const uint64_t at = quantBlockIndex(rows, cols, r, b);
      uint16_t h;
      std::memcpy(&h, scales + 2 * at, 2);
      const float d = halfToFloat(h);
      const uint8_t *q = in + at * blockBytes;
      float *y = out + r * cols + b * kQuantBlock;
      if (f == QuantFormat::Q8_0) {
        for (int64_t j = 0; j < kQuantBlock; ++j)
          y[j] = float(int(q[j]) - 128) * d;
      } else {
        for (int64_t j = 0; j < kQuantBlock / 2; ++j) {
          y[j] = float(int(q[j] & 15) - 8) * d;
          y[j + kQuantBlock / 2] = float(int(q[j] >> 4) - 8) * d;
        }
      }
    }
}

float quantizeActivationBlock(const float *x, int8_t *q, int32_t *sum) {
  float amax = 0;
  for (int64_t j = 0; j < kQuantBlock; ++j)
    amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
  int32_t s = 0;
  for (int64_t j = 0; j < kQuantBlock; ++j) {
    q[j] = int8_t(std::nearbyint(x[j] * id)); // the default rounding mode: to nearest even
    s += q[j];
  }
  *sum = s;
  return d;
}

} // namespace kiln
