// The second pass of attention split over the KV length (attention.comp with ATT_SPLIT_KV, flash-decoding):
// one invocation per output element (batch, query head, row i < ATT_SPLIT_ROWS, dim d) merges the chunks'
// partial results by their maxima: out = sum_c e^(m_c - M) acc_c / sum_c e^(m_c - M) l_c, M = max_c m_c.
// Rows the first pass finished itself (one chunk), and every row of a step with more than ATT_SPLIT_ROWS
// query rows, are left alone. Grid (grid.glsl): x the ATT_SPLIT_ROWS x ATT_HQ x ATT_DV elements, z the batch.
#include "math.glsl"
#include "attention_range.glsl"

void visit(uint lin) {
  const uint S = ATT_S, DV = ATT_DV, HQ = ATT_HQ, R = ATT_SPLIT_ROWS;
  if (!splitKv()) return;
  uint d = lin % DV, hq = (lin / DV) % HQ, i = (lin / (DV * HQ)) % R, bq = lin / (DV * HQ * R);
  if (i >= S) return;
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

#include "grid.glsl"
