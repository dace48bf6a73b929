// Reading a block-quantized weight matrix (kiln compile --weights q8_0|q4_0; support/Quantize.h, layout
// "blocks32-quants-then-scales") through a uint array, so no 8- or 16-bit storage is needed:
//   QUANT_WORDS       the matrix's words (a buffer declared with STORAGE_QUANT, uint)
//   QUANT_Q8 | QUANT_Q4
//   QUANT_SCALE_WORD  the word of the first f16 scale (after every quant; 16-byte aligned)
// Q8_0: one byte per element, q + 128; Q4_0: 16 bytes per block of 32, byte j = q[j] | q[j + 16] << 4 (value
// q - 8). Element x' = (q - zero point) * scale, as dequantizeMatrix computes it.
#ifdef QUANT_Q8
const float QUANT_ZERO = 128.0;
#else
const float QUANT_ZERO = 8.0;
#endif

// The f16 scale of block `block` (row-major over [rows, cols / 32]).
float quantScale(uint block) {
  uint w = QUANT_WORDS[QUANT_SCALE_WORD + (block >> 1)];
  return unpackHalf2x16(w >> (16u * (block & 1u))).x;
}

// Element i (row-major) of the matrix, dequantized.
float quantAt(uint i) {
#ifdef QUANT_Q8
  uint q = (QUANT_WORDS[i >> 2] >> (8u * (i & 3u))) & 0xffu;
#else
  uint j = i & 31u, byteIndex = (i >> 5) * 16u + (j & 15u);
  uint q = ((QUANT_WORDS[byteIndex >> 2] >> (8u * (byteIndex & 3u))) >> (j >= 16u ? 4u : 0u)) & 15u;
#endif
  return (float(q) - QUANT_ZERO) * quantScale(i >> 5);
}

// Elements i .. i + 7 (i a multiple of 8, so inside one block) dequantized: two words and one scale.
void quant8(uint i, out vec4 lo, out vec4 hi) {
  float d = quantScale(i >> 5);
#ifdef QUANT_Q8
  uint w0 = QUANT_WORDS[i >> 2], w1 = QUANT_WORDS[(i >> 2) + 1u];
  const uint mask = 0xffu;
#else
  // Elements 0 .. 15 of a block are the low nibbles of its 16 bytes, 16 .. 31 the high ones.
  uint j = i & 31u, word = ((i >> 5) * 16u + (j & 15u)) >> 2, shift = j >= 16u ? 4u : 0u;
  uint w0 = QUANT_WORDS[word] >> shift, w1 = QUANT_WORDS[word + 1u] >> shift;
  const uint mask = 15u;
#endif
  lo = (vec4(uvec4(w0, w0 >> 8, w0 >> 16, w0 >> 24) & mask) - QUANT_ZERO) * d;
  hi = (vec4(uvec4(w1, w1 >> 8, w1 >> 16, w1 >> 24) & mask) - QUANT_ZERO) * d;
}
