//===- Quantize.h - q8_0 / q4_0 block quantization, llama.cpp's numerics ----*- C++ -*-===//
//
// `--weights q8_0|q4_0` stores a matrix [rows, cols] (cols a multiple of 32) in blocks of 32 consecutive
// elements of a row, one f16 scale per block, with llama.cpp's numerics (ggml-quants.c, the reference
// quantize_row_q8_0 / q4_0), so kiln's results compare with llama.cpp's:
//   Q8_0: d = max|x| / 127, q = round(x / d) in -127..127 (ties away from zero, roundf)
//   Q4_0: m = the element of largest magnitude (signed), d = m / -8, q = min(15, trunc(x / d + 8.5)) in 0..15
// and x' = q * f16(d) (q8_0), (q - 8) * f16(d) (q4_0).
//
// The layout ("rows8-blocks32-quants-then-scales", the manifest's Buffer.weight_layout) is the one the CPU
// kernels read: first every quant, then every scale (f16), both in the same block order: the rows in groups
// of 8 (kQuantGroupRows; the last group holds the rows left), and within a group block 0 of each of its rows,
// then block 1 of each, ... (llama.cpp's repack of 8 interleaved rows), so that the decode GEMV, which takes
// the 8 rows of a group together, streams one contiguous run of quants and one of scales, and loads the 8
// rows' scales of a block as one vector. quantBlockIndex gives the position of a row's block.
//   Q8_0 quants: 32 bytes per block, q + 128 (unsigned: vpdpbusd multiplies unsigned by signed bytes).
//   Q4_0 quants: 16 bytes per block, byte j = q[j] | q[j + 16] << 4 (llama.cpp's nibble order).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_SUPPORT_QUANTIZE_H
#define KILN_SUPPORT_QUANTIZE_H

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace kiln {

enum class QuantFormat { Q8_0, Q4_0 };

constexpr int64_t kQuantBlock = 32;
/// A matmul against a quantized weight with at most this many rows (batch dims folded in) is a decode GEMV:
/// its activation rows are quantized per block (quantizeActivationBlock) and the products are integer;
/// more rows compute with f32 activations against the dequantized weight.
constexpr int64_t kQuantGemvMaxRows = 8;
/// The manifest's Buffer.weight_layout of both formats.
constexpr const char *kQuantLayout = "rows8-blocks32-quants-then-scales";
/// Rows interleaved block by block in the layout (the decode GEMV's group).
constexpr int64_t kQuantGroupRows = 8;

/// "q8_0" / "q4_0".
const char *quantFormatName(QuantFormat f);
std::optional<QuantFormat> parseQuantFormat(const std::string &name);

/// Bytes of the quants of `elements` elements (a multiple of 32).
uint64_t quantBytes(QuantFormat f, uint64_t elements);
/// Bytes of a [rows, cols] matrix in the layout above (quants, then rows * cols / 32 f16 scales); 0 when cols
/// is not a positive multiple of 32 or the size overflows.
uint64_t quantizedMatrixBytes(QuantFormat f, uint64_t rows, uint64_t cols);

/// The position of row `row`'s block `block` (0 .. cols / 32) in a [rows, cols] matrix's layout: its quants
/// start at index * the block's bytes, its scale is scale number index.
uint64_t quantBlockIndex(uint64_t rows, uint64_t cols, uint64_t row, uint64_t block);

/// Quantizes src [rows, cols] (row-major f32) into out (quantizedMatrixBytes bytes).
void quantizeMatrix(QuantFormat f, const float *src, uint64_t rows, uint64_t cols, uint8_t *out);
/// The values a quantized matrix stands for, [rows, cols] row-major f32.
void dequantizeMatrix(QuantFormat f, const uint8_t *in, uint64_t rows, uint64_t cols, float *out);

/// The activation side of the decode GEMV (codegen/cpu, the interpreter's emulation of it): one block of
/// 32 f32 values to int8 with an f32 scale: d = max|x| / 127, q = x * (1 / d) rounded to nearest even
/// (what vcvtps2dq does), 0 when max|x| is 0. Returns d; *sum is the sum of the 32 q.
float quantizeActivationBlock(const float *x, int8_t *q, int32_t *sum);

} // namespace kiln

#endif // KILN_SUPPORT_QUANTIZE_H
