// The second pass of attention split over the KV length (attention.comp with ATT_SPLIT_KV, flash-decoding):
// one invocation per output element (batch, query row i < S, query head, dim d) merges the chunks' partial
// results by their maxima: out = sum_c e^(m_c - M) acc_c / sum_c e^(m_c - M) l_c, M = max_c m_c.
// Rows the first pass finished itself (one chunk), and every row of a step with more than ATT_SPLIT_ROWS
// query rows, are left alone.
//
// The grid: x counts the keys past one block (the generator's global size T - ATT_NB), so a step whose rows
// all fit one chunk launches no workgroup at all (the recorded dispatch replays with a zero count), y the
// workgroups one row's ATT_HQ x ATT_DV elements take, z the batch. The elements are visited grid-stride
// over the x and y workgroups actually launched (more x workgroups on long KV lengths, idle past the last
// element).
#include "math.glsl"
#include "attention_range.glsl"

void visit(uint bq, uint e) {
  const uint S = ATT_S, DV = ATT_DV, HQ = ATT_HQ;
  uint d = e % DV, hq = (e / DV) % HQ, i = e / (DV * HQ);
  int position;
  uint jBeg, jEnd;
  keyRange(i, position, jBeg, jEnd);
  uint nc = chunkCount(jEnd - jBeg);
  if (nc == 1u) return;
  float mt = uintBitsToFloat(0xff800000u);
  for (uint c = 0u; c < nc; ++c) mt = max(mt, LOAD_PART(partialBase(bq, hq, i, c)));
  float a = 0.0, lt = 0.0;
  if (!(isinf(mt) && mt < 0.0))
    for (uint c = 0u; c < nc; ++c) {
      uint base = partialBase(bq, hq, i, c);
      float w = exp(LOAD_PART(base) - mt);
      lt += w * LOAD_PART(base + 1u);
      a += w * LOAD_PART(base + 2u + d);
    }
  STORE_OUT(((bq * HQ + hq) * S + i) * DV + d, lt > 0.0 ? a / lt : 0.0);
}

void main() {
  if (!splitKv()) return;
  const uint elements = ATT_S * ATT_HQ * ATT_DV, NZ = GRID_Z;
  const uint stride = gl_NumWorkGroups.x * gl_NumWorkGroups.y * WG_X;
  const uint first = (gl_WorkGroupID.x * gl_NumWorkGroups.y + gl_WorkGroupID.y) * WG_X + gl_LocalInvocationID.x;
  for (uint gz = gl_WorkGroupID.z; gz < NZ; gz += gl_NumWorkGroups.z)
    for (uint e = first; e < elements; e += stride)
      visit(gz, e);
}
