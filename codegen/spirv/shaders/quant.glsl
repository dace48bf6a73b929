// Reading a block-quantized weight matrix (kiln compile --weights q8_0|q4_0; support/Quantize.h, layout
// "rows8-blocks32-quants-then-scales") through a uint array, so no 8- or 16-bit storage is needed:
//   QUANT_WORDS       the matrix's words (a buffer declared with STORAGE_QUANT, uint)
//   QUANT_Q8 | QUANT_Q4
//   QUANT_SCALE_WORD  the word of the first f16 scale (after every quant; 16-byte aligned)
//   QUANT_ROWS, QUANT_KB  the matrix's rows and blocks per row
// In a kiln.matmul_group (GROUP) every weight is such a matrix of one format and one K: QUANT_WORDS<s>,
// QUANT_SCALE_WORDS and QUANT_ROWS_OF (one entry per segment) describe segment s, and the readers below address
// segment gSeg (matmul_group.glsl).
// Blocks are stored as the CPU reads them best: rows in groups of 8, a group's blocks block by block (its
// rows side by side), the scales in the same order.
// Q8_0: one byte per element, q + 128; Q4_0: 16 bytes per block of 32, byte j = q[j] | q[j + 16] << 4 (value
// q - 8). Element x' = (q - zero point) * scale, as dequantizeMatrix computes it.
#ifdef QUANT_Q8
const float QUANT_ZERO = 128.0;
#else
const float QUANT_ZERO = 8.0;
#endif

#ifdef GROUP
const uint quantScaleWords[GROUP_SEGMENTS] = QUANT_SCALE_WORDS;
const uint quantRowsOf[GROUP_SEGMENTS] = QUANT_ROWS_OF;
#define QUANT_SCALE_WORD quantScaleWords[gSeg]
#define QUANT_ROWS quantRowsOf[gSeg]
// Word i of segment gSeg's matrix.
uint quantWord(uint i) {
#if GROUP_SEGMENTS > 3
  if (gSeg == 3u) return QUANT_WORDS3[i];
#endif
#if GROUP_SEGMENTS > 2
  if (gSeg == 2u) return QUANT_WORDS2[i];
#endif
#if GROUP_SEGMENTS > 1
  if (gSeg == 1u) return QUANT_WORDS1[i];
#endif
  return QUANT_WORDS0[i];
}
#else
#define quantWord(i) QUANT_WORDS[i]
#endif

// Where row `row`'s block `blk` is stored (quantBlockIndex in support/Quantize.cpp).
uint quantBlockAt(uint row, uint blk) {
  uint group = row & ~7u, groupRows = min(8u, QUANT_ROWS - group);
  return group * QUANT_KB + blk * groupRows + (row - group);
}

// Where the block of element i (row-major [rows, cols]) is stored.
uint quantBlockOf(uint i) {
  uint b = i >> 5;
  return quantBlockAt(b / QUANT_KB, b % QUANT_KB);
}

// The f16 scale of stored block `block`.
float quantScale(uint block) {
  uint w = quantWord(QUANT_SCALE_WORD + (block >> 1));
  return unpackHalf2x16(w >> (16u * (block & 1u))).x;
}

// Element i (row-major) of the matrix, dequantized.
float quantAt(uint i) {
  uint block = quantBlockOf(i), j = i & 31u;
#ifdef QUANT_Q8
  uint byteIndex = block * 32u + j;
  uint q = (quantWord(byteIndex >> 2) >> (8u * (byteIndex & 3u))) & 0xffu;
#else
  uint byteIndex = block * 16u + (j & 15u);
  uint q = ((quantWord(byteIndex >> 2) >> (8u * (byteIndex & 3u))) >> (j >= 16u ? 4u : 0u)) & 15u;
#endif
  return (float(q) - QUANT_ZERO) * quantScale(block);
}

// Elements i .. i + 7 (i a multiple of 8, so inside one block) dequantized: two words and one scale.
void quant8(uint i, out vec4 lo, out vec4 hi) {
  uint block = quantBlockOf(i), j = i & 31u;
  float d = quantScale(block);
#ifdef QUANT_Q8
  uint word = (block * 32u + j) >> 2;
  uint w0 = quantWord(word), w1 = quantWord(word + 1u);
  const uint mask = 0xffu;
#else
  // Elements 0 .. 15 of a block are the low nibbles of its 16 bytes, 16 .. 31 the high ones.
  uint word = (block * 16u + (j & 15u)) >> 2, shift = j >= 16u ? 4u : 0u;
  uint w0 = quantWord(word) >> shift, w1 = quantWord(word + 1u) >> shift;
  const uint mask = 15u;
#endif
  lo = (vec4(uvec4(w0, w0 >> 8, w0 >> 16, w0 >> 24) & mask) - QUANT_ZERO) * d;
  hi = (vec4(uvec4(w1, w1 >> 8, w1 >> 16, w1 >> 24) & mask) - QUANT_ZERO) * d;
}
