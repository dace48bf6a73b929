// kiln.matmul_group: the vector views of the weights (bindings 1 .. GROUP_SEGMENTS) and B's vector loads from
// segment gSeg (matmul_group.glsl), for matmul.comp's vector paths and the quantized GEMV's.
#if VEC_WIDTH == 4
#define B_VIEW_TYPE vec4
#endif
#ifdef QUANT_B // block-quantized weights: their words, 16 bytes at a time (gemv_quant.glsl)
#define B_VIEW_TYPE uvec4
#endif
#if VEC_WIDTH > 0 || defined(QUANT_B)
layout(std430, set = 0, binding = 1) readonly buffer VB0 { B_VIEW_TYPE d[]; } vb0;
#if GROUP_SEGMENTS > 1
layout(std430, set = 0, binding = 2) readonly buffer VB1 { B_VIEW_TYPE d[]; } vb1;
#endif
#if GROUP_SEGMENTS > 2
layout(std430, set = 0, binding = 3) readonly buffer VB2 { B_VIEW_TYPE d[]; } vb2;
#endif
#if GROUP_SEGMENTS > 3
layout(std430, set = 0, binding = 4) readonly buffer VB3 { B_VIEW_TYPE d[]; } vb3;
#endif

B_VIEW_TYPE viewBSeg(uint v) {
#if GROUP_SEGMENTS > 3
  if (gSeg == 3u) return vb3.d[v];
#endif
#if GROUP_SEGMENTS > 2
  if (gSeg == 2u) return vb2.d[v];
#endif
#if GROUP_SEGMENTS > 1
  if (gSeg == 1u) return vb1.d[v];
#endif
  return vb0.d[v];
}
#define VIEW_B(v) viewBSeg(v)
#endif

#if VEC_WIDTH == 4
#define LOAD4_B(v) viewBSeg(v)
#elif VEC_WIDTH == 8
void load8BSeg(uint v, out vec4 lo, out vec4 hi) {
#if defined(B_IS_F16)
  unpack8F16(viewBSeg(v), lo, hi);
#elif defined(B_IS_BF16)
  unpack8BF16(viewBSeg(v), lo, hi);
#else
  lo = viewBSeg(2u * v);
  hi = viewBSeg(2u * v + 1u);
#endif
}
#define LOAD8_B(v, lo, hi) load8BSeg(v, lo, hi)
#endif
