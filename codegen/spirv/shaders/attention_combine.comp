// The second pass of attention split over the KV length (attention.comp with ATT_SPLIT_KV, flash-decoding):
// one invocation per output element (batch, query row i < S, query head, dim d) merges the chunks' partial
// results (mergeChunks). The fallback of attention.comp's ATT_COMBINE_LAST (the same merge, no second pass).
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
  uint d = e % ATT_DV, hq = (e / ATT_DV) % ATT_HQ, i = e / (ATT_DV * ATT_HQ);
  int position;
  uint jBeg, jEnd;
  keyRange(i, position, jBeg, jEnd);
  uint nc = chunkCount(jEnd - jBeg);
  if (nc > 1u) mergeChunks(bq, hq, i, d, nc);
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
