// layer_norm: y = (x - mean) / sqrt(var + NORM_EPS) * w + b over the last axis (two passes: mean, then the
// variance of x - mean). ADD_RESIDUAL (add_layer_norm): h = x + r is stored first (result H) and normalized
// into OUT; each invocation reads back only the elements it stored itself.
#include "rows.glsl"

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
  float sm = 0.0;
  for (uint k = t; k < ROW_SIZE; k += WG_X) sm += NORM_IN(k);
  float mean = wgSum(sm) / float(ROW_SIZE);
  float sv = 0.0;
  for (uint k = t; k < ROW_SIZE; k += WG_X) {
    float v = NORM_IN(k) - mean;
    sv += v * v;
  }
  float inv = 1.0 / sqrt(wgSum(sv) / float(ROW_SIZE) + NORM_EPS);
  for (uint k = t; k < ROW_SIZE; k += WG_X) STORE_OUT(base + k, (NORM_IN(k) - mean) * inv * LOAD_W(k) + LOAD_B(k));
}

#include "grid.glsl"
