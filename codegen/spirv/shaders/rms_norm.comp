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

#include "grid.glsl"
