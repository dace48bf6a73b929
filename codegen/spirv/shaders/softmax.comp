// softmax along one axis: the row's max (NaN-propagating), sum of exp(x - max), then exp(x - max) / sum.
// A row whose every element is -inf (fully masked) gives zeros, not NaN.
#include "rows.glsl"

void visit(uint lin) {
  uint base = rowBase(lin), t = gl_LocalInvocationID.x;
  float m = uintBitsToFloat(0xff800000u);
  for (uint k = t; k < ROW_SIZE; k += WG_X) {
    float v = ROW_X(k);
    m = (isnan(v) || isnan(m)) ? uintBitsToFloat(0x7fc00000u) : max(m, v);
  }
  m = wgMax(m);
  bool none = isinf(m) && m < 0.0;
  float s = 0.0;
  if (!none)
    for (uint k = t; k < ROW_SIZE; k += WG_X) s += exp(ROW_X(k) - m);
  s = wgSum(s);
  for (uint k = t; k < ROW_SIZE; k += WG_X) STORE_OUT(base + k * ROW_STRIDE, none ? 0.0 : exp(ROW_X(k) - m) / s);
}

#include "grid.glsl"
