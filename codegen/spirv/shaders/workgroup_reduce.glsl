// Tree reductions over the WG_X invocations of a workgroup through shared memory. Every invocation must
// call them (they hold barriers); each gets the result.
shared float red[WG_X];
#ifdef ROW_SUBGROUPS
// Subgroup sums, then every invocation adds the subgroups' partials in subgroup order: two barriers instead of
// log2(WG_X) + 2 (a decode's norms are one workgroup each, on the critical path).
float wgSum(float v) {
  float s = subgroupAdd(v);
  if (subgroupElect()) red[gl_SubgroupID] = s;
  barrier();
  float r = 0.0;
  for (uint g = 0u; g < gl_NumSubgroups; ++g) r += red[g];
  barrier();
  return r;
}
#else
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
#endif
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
