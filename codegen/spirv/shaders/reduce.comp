// reduce_sum, reduce_mean, reduce_max along one axis (REDUCE_SUM, REDUCE_MEAN or REDUCE_MAX). An integer
// result (OUT_IS_INT: an integer input) is the f32 accumulator converted back.
#include "rows.glsl"

#ifdef OUT_IS_INT
#define RESULT(acc) int(acc)
#else
#define RESULT(acc) acc
#endif

void visit(uint lin) {
  uint base = rowBase(lin), t = gl_LocalInvocationID.x;
#ifdef REDUCE_MAX
  float acc = uintBitsToFloat(0xff800000u);
  for (uint k = t; k < ROW_SIZE; k += WG_X) {
    float v = ROW_X(k);
    acc = (isnan(v) || isnan(acc)) ? uintBitsToFloat(0x7fc00000u) : max(acc, v);
  }
  acc = wgMax(acc);
#else
  float acc = 0.0;
  for (uint k = t; k < ROW_SIZE; k += WG_X) acc += ROW_X(k);
  acc = wgSum(acc);
#ifdef REDUCE_MEAN
  acc /= float(ROW_SIZE);
#endif
#endif
  if (t == 0u) STORE_OUT(lin, RESULT(acc));
}

#include "grid.glsl"
