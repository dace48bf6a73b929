// kiln.matmul_group (MatmulKernel.cpp emitMatmulGroup): GROUP_SEGMENTS (1..4) weights W_s [SEG_N<s>, K] at
// bindings 1 .., one kernel for all: main runs the matmul once per segment s with gSeg = s, and B's loads and
// OUT's stores below address that segment's weight and result. With SILU_MUL: two weights (gate, up) of one
// shape and one result Y: segment 0 stores x W_0^T, segment 1 reads it back and stores silu(gate) * up. Both
// segments assign every output element to the same invocation (the same grid, no block offset), so the read
// sees that invocation's own store.
#include "math.glsl"

uint gSeg = 0u;   // the segment the loads and stores address
uint gN = SEG_N0; // its N (MM_N)

// All weights have one storage kind (the generator checks): B's kind macros are W_0's.
#if defined(B0_IS_F16)
#define B_IS_F16
#elif defined(B0_IS_BF16)
#define B_IS_BF16
#else
#define B_IS_F32
#endif

uint segN(uint s) {
#if GROUP_SEGMENTS > 3
  if (s == 3u) return SEG_N3;
#endif
#if GROUP_SEGMENTS > 2
  if (s == 2u) return SEG_N2;
#endif
#if GROUP_SEGMENTS > 1
  if (s == 1u) return SEG_N1;
#endif
  return SEG_N0;
}

#ifndef QUANT_B // block-quantized weights: LOAD_B is quant.glsl's quantAt, which reads segment gSeg
float loadBSeg(uint i) {
#if GROUP_SEGMENTS > 3
  if (gSeg == 3u) return LOAD_B3(i);
#endif
#if GROUP_SEGMENTS > 2
  if (gSeg == 2u) return LOAD_B2(i);
#endif
#if GROUP_SEGMENTS > 1
  if (gSeg == 1u) return LOAD_B1(i);
#endif
  return LOAD_B0(i);
}
#define LOAD_B(i) loadBSeg(i)
#endif

#ifdef SILU_MUL
void storeOutSeg(uint i, float v) {
  if (gSeg == 0u) {
    STORE_Y(i, v);
  } else {
    float g = LOAD_Y(i);
    STORE_Y(i, g * sigmoidF(g) * v);
  }
}
#else
void storeOutSeg(uint i, float v) {
#ifdef RESIDUAL
  v += LOAD_R(i); // one segment (the verifier): R has the result's layout
#endif
#if GROUP_SEGMENTS > 3
  if (gSeg == 3u) { STORE_Y3(i, v); return; }
#endif
#if GROUP_SEGMENTS > 2
  if (gSeg == 2u) { STORE_Y2(i, v); return; }
#endif
#if GROUP_SEGMENTS > 1
  if (gSeg == 1u) { STORE_Y1(i, v); return; }
#endif
  STORE_Y0(i, v);
}
#endif
#define STORE_OUT(i, v) storeOutSeg(i, v)
