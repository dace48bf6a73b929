// rms_norm: y = x / sqrt(mean(x^2) + NORM_EPS) * w (UNIT_OFFSET: * (1 + w), Gemma), over the last axis.
// ADD_RESIDUAL (add_rms_norm): h = x + r is stored first (result H) and normalized into OUT; each invocation
// reads back only the elements it stored itself (k = t, t + WG_X, ...), so no barrier is needed between.
#include "rows.glsl"

#ifdef UNIT_OFFSET
#define NORM_W(k) (1.0 + LOAD_W(k))
#else
#define NORM_W(k) LOAD_W(k)
#endif
#ifdef ADD_RESIDUAL
#define NORM_IN(k) LOAD_H(base + (k))
#else
#define NORM_IN(k) ROW_X(k)
#endif

#ifdef ROW_REGS
// The row held in registers (ROW_REGS = ceil(ROW_SIZE / WG_X) elements per invocation, a static row size):
// one read of X (and R), no read-back of H; the same per-invocation sums in the same order as below.
void visit(uint lin) {
  uint base = rowBase(lin), t = gl_LocalInvocationID.x;
  float v[ROW_REGS];
  float ss = 0.0;
  [[unroll]] for (uint r = 0u; r < ROW_REGS; ++r) {
    uint k = t + r * WG_X;
    v[r] = 0.0;
    if (k < ROW_SIZE) {
#ifdef ADD_RESIDUAL
      v[r] = ROW_X(k) + LOAD_R(base + k * ROW_STRIDE);
      STORE_H(base + k, v[r]);
#else
      v[r] = ROW_X(k);
#endif
      ss += v[r] * v[r];
    }
  }
  float inv = 1.0 / sqrt(wgSum(ss) / float(ROW_SIZE) + NORM_EPS);
  [[unroll]] for (uint r = 0u; r < ROW_REGS; ++r) {
    uint k = t + r * WG_X;
    if (k < ROW_SIZE) STORE_OUT(base + k, v[r] * inv * NORM_W(k));
  }
}
#else
void visit(uint lin) {
  uint base = rowBase(lin), t = gl_LocalInvocationID.x;
#ifdef ADD_RESIDUAL
  for (uint k = t; k < ROW_SIZE; k += WG_X) STORE_H(base + k, ROW_X(k) + LOAD_R(base + k * ROW_STRIDE));
#endif
  float ss = 0.0;
  for (uint k = t; k < ROW_SIZE; k += WG_X) {
    float v = NORM_IN(k);
    ss += v * v;
  }
  float inv = 1.0 / sqrt(wgSum(ss) / float(ROW_SIZE) + NORM_EPS);
  for (uint k = t; k < ROW_SIZE; k += WG_X) STORE_OUT(base + k, NORM_IN(k) * inv * NORM_W(k));
}
#endif

#include "grid.glsl"
