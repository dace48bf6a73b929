// What attention.comp and attention_combine.comp agree on: the keys a query row can see, and with
// ATT_SPLIT_KV (flash-decoding) how they are cut into chunks and where each chunk's partial result lives.
//
// Query row i sits at position T - S + i; the keys [jBeg, jEnd) are those the mask can let through (causal
// stops at the position, a window starts after it; key padding is per key, inside the range).
void keyRange(uint i, out int position, out uint jBeg, out uint jEnd) {
  position = int(ATT_T) - int(ATT_S) + int(i);
#ifdef CAUSAL
  jEnd = uint(clamp(position + 1, 0, int(ATT_T)));
#else
  jEnd = ATT_T;
#endif
#ifdef WINDOW
  jBeg = uint(clamp(position - WINDOW + 1, 0, int(jEnd)));
#else
  jBeg = 0u;
#endif
}

#ifdef ATT_SPLIT_KV
// Split over the KV length when the step has at most ATT_SPLIT_ROWS query rows (decode, small chunks): a row's
// n keys in at most ATT_NCMAX chunks of a whole number of ATT_NB-key blocks each (at least one block), one
// workgroup per chunk. A row of one chunk is finished by its workgroup; otherwise each chunk leaves, per
// query head, (max, sum, acc[ATT_DV]) at partialBase and mergeChunks combines them: in the last workgroup of
// the row to finish (attention.comp ATT_COMBINE_LAST), or in a second pass (attention_combine.comp).
bool splitKv() { return ATT_S <= ATT_SPLIT_ROWS; }
uint chunkLength(uint n) {
  uint perChunk = (n + ATT_NCMAX - 1u) / ATT_NCMAX;
  return max(ATT_NB, (perChunk + ATT_NB - 1u) / ATT_NB * ATT_NB);
}
uint chunkCount(uint n) { return max(1u, (n + chunkLength(n) - 1u) / chunkLength(n)); }
// The most chunks a row of at most n keys has (chunkCount is not monotonic past ATT_NCMAX blocks).
uint maxChunkCount(uint n) { return n > ATT_NCMAX * ATT_NB ? ATT_NCMAX : max(1u, (n + ATT_NB - 1u) / ATT_NB); }
uint partialBase(uint bq, uint hq, uint i, uint c) {
  return (((bq * ATT_HQ + hq) * ATT_SPLIT_ROWS + i) * ATT_NCMAX + c) * (ATT_DV + 2u);
}

// Output d of query head hq, row i, from the row's nc chunks' partials merged by their maxima:
// out = sum_c e^(m_c - M) acc_c / sum_c e^(m_c - M) l_c, M = max_c m_c.
void mergeChunks(uint bq, uint hq, uint i, uint d, uint nc) {
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
  STORE_OUT(((bq * ATT_HQ + hq) * ATT_S + i) * ATT_DV + d, lt > 0.0 ? a / lt : 0.0);
}
#endif
