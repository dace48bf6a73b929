// attention(q [b, ATT_HQ, S, ATT_D], k [b, ATT_HKV, T, ATT_D], v [b, ATT_HKV, T, ATT_DV]) -> [b, ATT_HQ, S, ATT_DV]:
// one workgroup per query row with an online softmax over blocks of ATT_NB keys, the mask computed here:
// query i sits at position T - S + i; CAUSAL hides later keys, WINDOW (causal only) keys at WINDOW or more
// positions back, PAD the keys whose key_padding_mask is 0; BIAS adds bias[BIAS_INDEX] (broadcast) to the
// scaled score, SOFTCAP caps it as SOFTCAP * tanh(score / SOFTCAP). GQA: query head hq reads kv head
// hq / ATT_GROUP.
//
// Keys split across the invocations: each block of NB keys takes L = WG / NB invocations per score (strided
// partial dots over d, summed in shared memory), one shared max per block (a tree), then P = WG / G parts of
// G invocations each accumulate p * v over their share of the block's keys for their dims (the same block
// max for every part, so no rescale between parts); at the end the parts' (l, acc) are summed in shared
// memory (ATT_SPLIT_PARTS: P > 1). Each invocation holds ATT_DPT dims of the output (gd, gd + G, ...).
#define PER_WORKGROUP
#include "math.glsl"

shared float qs[ATT_D];
shared float sc[ATT_NB];
shared float mx[ATT_NB];
shared float dp[WG_X];

void visit(uint lin) {
  const uint WG = WG_X, NB = ATT_NB, L = ATT_LANES, G = ATT_G, P = ATT_P, S = ATT_S, T = ATT_T;
  uint t = gl_LocalInvocationID.x, lane = t % L, kk = t / L, gd = t % G, part = t / G;
  uint bq = lin / (ATT_HQ * S), hq = (lin / S) % ATT_HQ, i = lin % S;
  uint hk = hq / ATT_GROUP;
  // Each head's keys / values start ATT_K_ROWS / ATT_V_ROWS rows apart (T, or an in-place cache's capacity).
  uint K0 = (bq * ATT_HKV + hk) * ATT_K_ROWS * ATT_D, V0 = (bq * ATT_HKV + hk) * ATT_V_ROWS * ATT_DV;
  int position = int(T) - int(S) + int(i);
  // The keys the mask can let through: causal stops at the position, a window starts after it.
#ifdef CAUSAL
  uint jEnd = uint(clamp(position + 1, 0, int(T)));
#else
  uint jEnd = T;
#endif
#ifdef WINDOW
  uint jBeg = uint(clamp(position - WINDOW + 1, 0, int(jEnd)));
#else
  uint jBeg = 0u;
#endif
  for (uint d = t; d < ATT_D; d += WG) qs[d] = LOAD_Q(lin * ATT_D + d);
  barrier();
  float m = uintBitsToFloat(0xff800000u), l = 0.0;
  float acc[ATT_DPT];
  for (int r = 0; r < ATT_DPT; ++r) acc[r] = 0.0;
  for (uint j0 = jBeg; j0 < jEnd; j0 += NB) {
    uint j = j0 + kk;
    bool visible = j < jEnd
#ifdef CAUSAL
        && int(j) <= position
#endif
#ifdef WINDOW
        && position - int(j) < WINDOW
#endif
#if defined(PAD) && defined(PAD_IS_FLOAT)
        && LOAD_PAD(bq * T + j) != 0.0
#elif defined(PAD)
        && LOAD_PAD(bq * T + j) != 0
#endif
        ;
    float part_ = 0.0;
    if (visible)
      for (uint d = lane; d < ATT_D; d += L) part_ += qs[d] * LOAD_K(K0 + j * ATT_D + d);
    dp[t] = part_;
    barrier();
    if (lane == 0u) {
      float score = uintBitsToFloat(0xff800000u);
      if (visible) {
        float dot = 0.0;
        for (uint x = 0u; x < L; ++x) dot += dp[t + x];
        score = ATT_SCALE * dot;
#ifdef SOFTCAP
        score = SOFTCAP * tanhAccurate(score / SOFTCAP);
#endif
#ifdef BIAS
        score += LOAD_BIAS(BIAS_INDEX);
#endif
      }
      sc[kk] = score;
      mx[kk] = score;
    }
    barrier();
    for (uint h = NB / 2u; h > 0u; h >>= 1u) {
      if (t < h) mx[t] = max(mx[t], mx[t + h]);
      barrier();
    }
    float mb = max(m, mx[0]);
    if (!(isinf(mb) && mb < 0.0)) {
      float alpha = exp(m - mb);
      l *= alpha;
      for (int r = 0; r < ATT_DPT; ++r) acc[r] *= alpha;
      uint nk = min(NB, jEnd - j0);
      for (uint x = part; x < nk; x += P) {
        float s = sc[x];
        if (isinf(s) && s < 0.0) continue;
        float p = exp(s - mb);
        l += p;
        for (int r = 0; r < ATT_DPT; ++r) {
          uint d = gd + uint(r) * G;
          if (d < ATT_DV) acc[r] += p * LOAD_V(V0 + (j0 + x) * ATT_DV + d);
        }
      }
      m = mb;
    }
    barrier();
  }
#ifdef ATT_SPLIT_PARTS
  // P > 1 parts only when G >= ATT_DV, so each invocation holds one dim (ATT_DPT == 1).
  dp[t] = acc[0];
  if (gd == 0u) sc[part] = l;
  barrier();
  if (part == 0u && gd < ATT_DV) {
    float a = 0.0, lt = 0.0;
    for (uint x = 0u; x < P; ++x) {
      a += dp[x * G + gd];
      lt += sc[x];
    }
    STORE_OUT(lin * ATT_DV + gd, lt > 0.0 ? a / lt : 0.0);
  }
#else
  for (int r = 0; r < ATT_DPT; ++r) {
    uint d = gd + uint(r) * G;
    if (d < ATT_DV) STORE_OUT(lin * ATT_DV + d, l > 0.0 ? acc[r] / l : 0.0);
  }
#endif
  barrier();
}

#include "grid.glsl"
