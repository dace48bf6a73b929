// The decode GEMV against a block-quantized B [N, K] (matmul.comp with QUANT_B; quant.glsl) for at most QMS
// rows of A, batch dims folded in (kQuantGemvMaxRows, support/Quantize.h): as the CPU's decode GEMV, each row
// of A is quantized per block of 32 to integers (quantizeActivationBlock: d = max|x| / 127, q = x (1 / d)
// rounded to nearest even), so a block's product is the integer sum qa . qb (exact in f32: |sum| <= 32 x 127
// x 255 < 2^24) times the two scales, and `kiln eval --weights` (which emulates the same rounding) is
// matched to f32 round-off.
//
// A team is one subgroup computing QGR rows of B; its lanes stride over the K blocks, a lane one whole block
// per row at a time (q8_0: two uvec4 loads, q4_0: one; its f16 scale once per 32 weights), dequantized in
// registers; the block's activations are loaded and quantized once for the QGR rows. subgroupAdd reduces.
// In a kiln.matmul_group (GROUP) the weight is segment gSeg's (bindings 1 .. GROUP_SEGMENTS, quant.glsl).
// INTEGER_DOT_PRODUCT (SpirvTarget::integerDotProduct): the activations of a block are kept as 8 words of 4
// signed bytes and its product is 8 packed dot products (dotSU4x8: signed activations . unsigned stored
// quants), summed in int: the same exact integer as the float path's sum, so the same results bit for bit.
const uint QMS = 8u;
const uint QGR = QUANT_GEMV_ROWS;

#ifdef GROUP
#define quantVector(v) viewBSeg(v) // segment gSeg's uvec4 view (matmul_group_views.glsl)
#else
layout(std430, set = 0, binding = 1) readonly buffer VQB { uvec4 d[]; } vqb;
#define quantVector(v) vqb.d[v]
#endif
#ifdef A_IS_F32
layout(std430, set = 0, binding = 0) readonly buffer VQA { vec4 d[]; } vqa;
#define LOAD4_QA(v) vqa.d[v]
#else
#define LOAD4_QA(v) vec4(LOAD_A(4u * (v)), LOAD_A(4u * (v) + 1u), LOAD_A(4u * (v) + 2u), LOAD_A(4u * (v) + 3u))
#endif

// The 32 activations from vector index av, quantized (qa: integers as floats); returns the scale d, qsum the
// sum of the 32 integers.
float quantizeActivations(uint av, out vec4 qa[8], out float qsum) {
  vec4 amax = vec4(0.0);
  [[unroll]] for (uint t = 0u; t < 8u; ++t) {
    qa[t] = LOAD4_QA(av + t);
    amax = max(amax, abs(qa[t]));
  }
  float d = max(max(amax.x, amax.y), max(amax.z, amax.w)) / 127.0, id = d != 0.0 ? 1.0 / d : 0.0;
  vec4 s = vec4(0.0);
  [[unroll]] for (uint t = 0u; t < 8u; ++t) {
    qa[t] = roundEven(qa[t] * id);
    s += qa[t];
  }
  qsum = s.x + s.y + s.z + s.w;
  return d;
}

vec4 bytes4(uint w) { return vec4(uvec4(w, w >> 8, w >> 16, w >> 24) & 0xffu); }

// Four of quantizeActivations' integers (in [-127, 127]) as the signed bytes of one word, the first lowest.
uint packBytes4(vec4 q) {
  uvec4 b = uvec4(ivec4(q)) & 0xffu;
  return b.x | (b.y << 8) | (b.z << 16) | (b.w << 24);
}

#ifdef INTEGER_DOT_PRODUCT
#define QA_WORD uint // a block's activations: 8 words of 4 signed bytes (packBytes4)
#else
#define QA_WORD vec4 // a block's activations: 8 vec4 of integers
#endif

#ifdef QUANT_SHARED_A
// The small-rows variant (GEMV_ONLY: M <= MS rows per batch) with K static: the workgroup quantizes its rows of A
// once into shared memory (quantizeActivations' integers, four signed bytes a word, two uvec4 a block, and each
// block's scale and integer sum), instead of every subgroup for every block it reads; the same values, so the
// same results.
shared uvec4 qaWords[MS * MM_K / 16u];
shared vec2 qaBlocks[MS * (MM_K / 32u)]; // (d, qsum)

void quantizeRowsShared(uint A0) {
  const uint M = MM_M, KB = MM_K / 32u;
  barrier(); // the previous batch's or segment's readers are done
  for (uint e = gl_LocalInvocationID.x; e < M * KB; e += WG_X) {
    vec4 qa[8];
    float qsum, d = quantizeActivations((A0 + (e / KB) * MM_K) / 4u + 8u * (e % KB), qa, qsum);
    qaWords[2u * e] = uvec4(packBytes4(qa[0]), packBytes4(qa[1]), packBytes4(qa[2]), packBytes4(qa[3]));
    qaWords[2u * e + 1u] = uvec4(packBytes4(qa[4]), packBytes4(qa[5]), packBytes4(qa[6]), packBytes4(qa[7]));
    qaBlocks[e] = vec2(d, qsum);
  }
  barrier();
}

// Block b of row m as quantizeActivations gave it (quantizeRowsShared).
float sharedActivations(uint m, uint b, out QA_WORD qa[8], out float qsum) {
  uint e = m * (MM_K / 32u) + b;
  uvec4 words[2] = uvec4[](qaWords[2u * e], qaWords[2u * e + 1u]);
  [[unroll]] for (uint t = 0u; t < 8u; ++t) {
#ifdef INTEGER_DOT_PRODUCT
    qa[t] = words[t / 4u][t % 4u];
#else
    int w = int(words[t / 4u][t % 4u]);
    qa[t] = vec4(bitfieldExtract(w, 0, 8), bitfieldExtract(w, 8, 8), bitfieldExtract(w, 16, 8),
                 bitfieldExtract(w, 24, 8));
#endif
  }
  vec2 dq = qaBlocks[e];
  qsum = dq.y;
  return dq.x;
}
#endif

// Block b of row m (from A0) quantized: qa, its scale (returned) and integer sum qsum.
float blockActivations(uint A0, uint m, uint b, out QA_WORD qa[8], out float qsum) {
#ifdef QUANT_SHARED_A
  return sharedActivations(m, b, qa, qsum);
#elif defined(INTEGER_DOT_PRODUCT)
  vec4 q[8];
  float d = quantizeActivations((A0 + m * MM_K) / 4u + 8u * b, q, qsum);
  [[unroll]] for (uint t = 0u; t < 8u; ++t) qa[t] = packBytes4(q[t]);
  return d;
#else
  return quantizeActivations((A0 + m * MM_K) / 4u + 8u * b, qa, qsum);
#endif
}

#ifdef QUANT_Q8
#define QUANT_BLOCK_VECTORS 2u // uvec4 per block
// qa . (the stored quants of one block, q + 128).
float blockDot(QA_WORD qa[8], uvec4 w[2]) {
#ifdef INTEGER_DOT_PRODUCT
  int s = 0;
  [[unroll]] for (uint t = 0u; t < 4u; ++t) s += dotSU4x8(qa[t], w[0][t], 0) + dotSU4x8(qa[4u + t], w[1][t], 0);
  return float(s);
#else
  float s = 0.0;
  [[unroll]] for (uint t = 0u; t < 4u; ++t) s += dot(qa[t], bytes4(w[0][t])) + dot(qa[4u + t], bytes4(w[1][t]));
  return s;
#endif
}
#else
#define QUANT_BLOCK_VECTORS 1u
// qa . (the stored nibbles of one block, q): word t holds elements 4t .. 4t + 3 (low nibbles) and 16 + 4t ..
// (high nibbles).
float blockDot(QA_WORD qa[8], uvec4 w[1]) {
#ifdef INTEGER_DOT_PRODUCT
  int s = 0;
  [[unroll]] for (uint t = 0u; t < 4u; ++t) {
    uint v = w[0][t];
    s += dotSU4x8(qa[t], v & 0x0f0f0f0fu, 0) + dotSU4x8(qa[4u + t], (v >> 4) & 0x0f0f0f0fu, 0);
  }
  return float(s);
#else
  float s = 0.0;
  [[unroll]] for (uint t = 0u; t < 4u; ++t) {
    uint v = w[0][t];
    s += dot(qa[t], vec4(uvec4(v, v >> 8, v >> 16, v >> 24) & 15u)) +
         dot(qa[4u + t], vec4(uvec4(v >> 4, v >> 12, v >> 20, v >> 28) & 15u));
  }
  return s;
#endif
}
#endif

// Block b of the rows j[r] of B: its quants and scales.
struct QuantBlocks {
  uvec4 w[QGR][QUANT_BLOCK_VECTORS];
  float dw[QGR];
};
QuantBlocks loadQuantBlocks(uint j[QGR], uint b) {
  QuantBlocks q;
  [[unroll]] for (uint r = 0u; r < QGR; ++r) {
    uint blk = quantBlockAt(j[r], b);
    [[unroll]] for (uint v = 0u; v < QUANT_BLOCK_VECTORS; ++v) q.w[r][v] = quantVector(blk * QUANT_BLOCK_VECTORS + v);
    q.dw[r] = quantScale(blk);
  }
  return q;
}

// acc[m][r] += row m of A . row j[r] of B over the blocks from `lane` in steps of `lanes`; `first`: block `lane`,
// already loaded (gemv loads it before the activations are quantized, so that its loads are in flight across
// that work and its barriers). Each step issues the next block's loads before this block's products: two
// blocks in flight per lane, so a lane waits for memory once per row rather than once per block (a 2048-wide
// row is two blocks a lane).
void gemvQuantPartials(inout float acc[QMS][QGR], uint A0, uint j[QGR], uint lane, uint lanes, QuantBlocks first) {
  const uint M = MM_M, K = MM_K, KB = K / 32u;
  QuantBlocks q = first;
  for (uint b = lane; b < KB; b += lanes) {
    QuantBlocks next;
    if (b + lanes < KB) next = loadQuantBlocks(j, b + lanes);
    [[unroll]] for (uint m = 0u; m < QMS; ++m)
      if (m < M) {
        QA_WORD qa[8];
        float qsum, da = blockActivations(A0, m, b, qa, qsum);
        [[unroll]] for (uint r = 0u; r < QGR; ++r)
          acc[m][r] += (blockDot(qa, q.w[r]) - QUANT_ZERO * qsum) * (da * q.dw[r]);
      }
    q = next;
  }
}

// Rows of B one workgroup covers per step of its loop.
uint gemvRowsPerGroup() { return gl_NumSubgroups * QGR; }

// Rows of A bz * M .. (batch bz; B has no batch dims, B0 is 0). blockBase: as gemv.glsl's.
void gemv(uint bz, uint A0, uint B0, uint blockBase) {
  const uint M = MM_M, N = MM_N, KB = MM_K / 32u;
  uint rowsPerGroup = gemvRowsPerGroup(), lane = gl_SubgroupInvocationID;
  uint j0 = gemvFirstBlock(blockBase) * rowsPerGroup + gl_SubgroupID * QGR, j[QGR];
  [[unroll]] for (uint r = 0u; r < QGR; ++r) j[r] = min(j0 + r, N - 1u);
  QuantBlocks first; // this subgroup's first block, loaded before the activations are quantized
  if (j0 < N && lane < KB) first = loadQuantBlocks(j, lane);
#ifdef QUANT_SHARED_A
  if (gemvFirstBlock(blockBase) * rowsPerGroup >= N)
    return; // no rows here (uniform over the workgroup): nothing to quantize for
  quantizeRowsShared(A0);
#endif
  for (bool firstRows = true; j0 < N; j0 += gl_NumWorkGroups.x * rowsPerGroup, firstRows = false) {
    float acc[QMS][QGR];
    if (!firstRows) { // later rows of the grid-stride loop (rare: the grid usually covers N at once)
      [[unroll]] for (uint r = 0u; r < QGR; ++r) j[r] = min(j0 + r, N - 1u);
      if (lane < KB)
        first = loadQuantBlocks(j, lane);
    }
    [[unroll]] for (uint m = 0u; m < QMS; ++m)
      [[unroll]] for (uint r = 0u; r < QGR; ++r) acc[m][r] = 0.0;
    gemvQuantPartials(acc, A0, j, lane, gl_SubgroupSize, first);
    [[unroll]] for (uint m = 0u; m < QMS; ++m)
      if (m < M)
        [[unroll]] for (uint r = 0u; r < QGR; ++r) {
          float v = subgroupAdd(acc[m][r]);
          if (subgroupElect() && j0 + r < N) STORE_OUT((bz * M + m) * N + j0 + r, v);
        }
  }
}
