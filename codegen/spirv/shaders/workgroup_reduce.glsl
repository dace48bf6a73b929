// Tree reductions over the WG_X invocations of a workgroup through shared memory. Every invocation must
// call them (they hold barriers); each gets the result.
shared float red[WG_X];
float wgSum(float v) {
  red[gl_LocalInvocationID.x] = v;
  barrier();
  for (uint h = WG_X / 2u; h > 0u; h >>= 1u) {
    if (gl_LocalInvocationID.x < h) red[gl_LocalInvocationID.x] += red[gl_LocalInvocationID.x + h];
    barrier();
  }
  float r = red[0];
  barrier();
  return r;
}
// NaN-propagating, like the interpreter's max.
float wgMax(float v) {
  red[gl_LocalInvocationID.x] = v;
  barrier();
  for (uint h = WG_X / 2u; h > 0u; h >>= 1u) {
    if (gl_LocalInvocationID.x < h) {
      float a = red[gl_LocalInvocationID.x], b = red[gl_LocalInvocationID.x + h];
      red[gl_LocalInvocationID.x] = (isnan(a) || isnan(b)) ? uintBitsToFloat(0x7fc00000u) : max(a, b);
    }
    barrier();
  }
  float r = red[0];
  barrier();
  return r;
}
