// attention.comp's path for many query rows (prefill): one workgroup per block of ATT_BR query rows of one
// batch row and (kv head, head group) pair, i.e. M = ATT_BR x HPW query vectors (row r, head g at tile row
// m = r * HPW + g) that all read the same K / V rows. Blocks of ATT_BC keys are staged in shared memory once
// for all M rows; each row keeps its own online softmax (max, sum in shared memory, the accumulators in
// registers). The keys visited are those the tile's rows can see together: from the first row's jBeg to the
// last row's jEnd, so causal blocks past the diagonal are never read; the mask itself is per (row, key), as in
// visit().
//
// The invocations are ATT_NRG row groups of ATT_TR consecutive tile rows x ATT_NCG column groups (the WG
// invocations, row group major, so a row group's invocations read the same query / probability values). Scores:
// column group c takes keys c, c + NCG, ... (ATT_KPT of them); values: dims c, c + NCG, ... (ATT_TDPT of them).
// Shared memory (floats): Q [M][D + 1], the block's K then V rows [BC][ATT_KVS], the probabilities
// [M][BC + 1] (rows padded to odd strides: the row groups of a subgroup, and the keys, hit different banks),
// and per row its max, sum and rescale factor.
const uint TM = ATT_TM, BR = ATT_BR, BC = ATT_BC, TR = ATT_TR, NCG = ATT_NCG, KVS = ATT_KVS, PS = ATT_BC + 1u;
const uint QS = ATT_D + 1u;
const uint T_Q = 0u, T_KV = TM * QS, T_P = T_KV + BC * KVS, T_MAX = T_P + TM * PS, T_SUM = T_MAX + TM,
           T_ALPHA = T_SUM + TM;

// Tiles when the step has enough query rows to share the K / V blocks (never with a split over the KV length).
bool useTiles() {
#ifdef ATT_SPLIT_KV
  if (splitKv()) return false;
#endif
  return ATT_S >= ATT_TILE_MIN;
}

// Stages rows [j0, j0 + BC) of K (or V: dims n, the head's rows from row0) at T_KV; keys past jEnd read 0.
void stageKeys(bool values, uint row0, uint j0, uint jEnd) {
  const uint n = values ? ATT_DV : ATT_D;
  for (uint x = gl_LocalInvocationID.x; x < BC * n; x += WG_X) {
    uint key = x / n, d = x % n, j = j0 + key;
    float val = 0.0;
    if (j < jEnd) val = values ? LOAD_V(row0 + j * ATT_DV + d) : LOAD_K(row0 + j * ATT_D + d);
    smem[T_KV + key * KVS + d] = val;
  }
}

// Scores of the block at j0 (nk keys) for this invocation's rows and keys into T_P; -inf for a hidden key.
void tileScores(uint bq, uint hq0, uint i0, uint j0, uint nk, uint rg, uint cg) {
  float dots[TR][ATT_KPT];
  [[unroll]] for (uint r = 0u; r < TR; ++r)
    [[unroll]] for (uint x = 0u; x < ATT_KPT; ++x) dots[r][x] = 0.0;
  for (uint d = 0u; d < ATT_D; ++d) {
    float kv[ATT_KPT];
    [[unroll]] for (uint x = 0u; x < ATT_KPT; ++x) kv[x] = smem[T_KV + min(cg + x * NCG, BC - 1u) * KVS + d];
    [[unroll]] for (uint r = 0u; r < TR; ++r) {
      float q = smem[T_Q + min(rg * TR + r, TM - 1u) * QS + d];
      [[unroll]] for (uint x = 0u; x < ATT_KPT; ++x) dots[r][x] += q * kv[x];
    }
  }
  [[unroll]] for (uint r = 0u; r < TR; ++r) {
    uint m = rg * TR + r, i = i0 + m / HPW;
    if (m >= TM) continue;
    int position;
    uint jBeg, jEnd;
    keyRange(i, position, jBeg, jEnd);
    [[unroll]] for (uint x = 0u; x < ATT_KPT; ++x) {
      uint key = cg + x * NCG, j = j0 + key;
      if (key >= BC) continue;
      bool visible = key < nk && i < ATT_S && keyVisible(j, jEnd, position, bq);
      smem[T_P + m * PS + key] = visible ? scaledScore(dots[r][x], bq, hq0 + m % HPW, i, j) : negInf();
    }
  }
}

// Online softmax over the block for each tile row: scores -> probabilities, the row's max and sum updated and
// its rescale factor for the accumulators.
void tileSoftmax(uint nk) {
  for (uint m = gl_LocalInvocationID.x; m < TM; m += WG_X) {
    // Over all BC keys (those past nk as hidden), so the loops unroll.
    float s[BC];
    [[unroll]] for (uint key = 0u; key < BC; ++key) s[key] = key < nk ? smem[T_P + m * PS + key] : negInf();
    float mOld = smem[T_MAX + m], mb = mOld;
    [[unroll]] for (uint key = 0u; key < BC; ++key) mb = max(mb, s[key]);
    bool none = isinf(mb) && mb < 0.0;
    float sum = 0.0;
    [[unroll]] for (uint key = 0u; key < BC; ++key) {
      float p = (none || (isinf(s[key]) && s[key] < 0.0)) ? 0.0 : exp(s[key] - mb);
      smem[T_P + m * PS + key] = p;
      sum += p;
    }
    float alpha = none ? 1.0 : exp(mOld - mb); // mOld -inf: 0 (nothing accumulated yet)
    smem[T_ALPHA + m] = alpha;
    smem[T_SUM + m] = smem[T_SUM + m] * alpha + sum;
    smem[T_MAX + m] = mb;
  }
}

// Tile gx of batch row gz, (kv head, head group) pair gy.
void visitTile(uint gz, uint gy, uint gx) {
  const uint NHG = ATT_GROUP / HPW, S = ATT_S;
  uint t = gl_LocalInvocationID.x, rg = t / NCG, cg = t % NCG;
  uint bq = gz, hk = gy / NHG, hq0 = hk * ATT_GROUP + (gy % NHG) * HPW, i0 = gx * BR;
  uint K0 = (bq * ATT_HKV + hk) * ATT_K_ROWS * ATT_D, V0 = (bq * ATT_HKV + hk) * ATT_V_ROWS * ATT_DV;
  // The keys any row of the tile can see: the first row's start (windows move forward) to the last row's end.
  int position;
  uint jBeg, jEnd, unusedBeg, unusedEnd;
  keyRange(i0, position, jBeg, unusedEnd);
  keyRange(min(i0 + BR, S) - 1u, position, unusedBeg, jEnd);
  for (uint x = t; x < TM * ATT_D; x += WG_X) {
    uint m = x / ATT_D, d = x % ATT_D, i = i0 + m / HPW;
    smem[T_Q + m * QS + d] = i < S ? LOAD_Q(((bq * ATT_HQ + hq0 + m % HPW) * S + i) * ATT_D + d) : 0.0;
  }
  for (uint m = t; m < TM; m += WG_X) {
    smem[T_MAX + m] = negInf();
    smem[T_SUM + m] = 0.0;
  }
  barrier(); // a tile without keys reads the sums below
  float acc[TR][ATT_TDPT];
  [[unroll]] for (uint r = 0u; r < TR; ++r)
    [[unroll]] for (uint x = 0u; x < ATT_TDPT; ++x) acc[r][x] = 0.0;
  for (uint j0 = jBeg; j0 < jEnd; j0 += BC) {
    uint nk = min(BC, jEnd - j0);
    stageKeys(false, K0, j0, jEnd);
    barrier();
    tileScores(bq, hq0, i0, j0, nk, rg, cg);
    barrier();
    stageKeys(true, V0, j0, jEnd); // K is no longer read
    tileSoftmax(nk);
    barrier();
    [[unroll]] for (uint r = 0u; r < TR; ++r) {
      float alpha = smem[T_ALPHA + min(rg * TR + r, TM - 1u)];
      [[unroll]] for (uint x = 0u; x < ATT_TDPT; ++x) acc[r][x] *= alpha;
    }
    for (uint key = 0u; key < nk; ++key) {
      float vv[ATT_TDPT];
      [[unroll]] for (uint x = 0u; x < ATT_TDPT; ++x) vv[x] = smem[T_KV + key * KVS + min(cg + x * NCG, ATT_DV - 1u)];
      [[unroll]] for (uint r = 0u; r < TR; ++r) {
        float p = smem[T_P + min(rg * TR + r, TM - 1u) * PS + key];
        [[unroll]] for (uint x = 0u; x < ATT_TDPT; ++x) acc[r][x] += p * vv[x];
      }
    }
    barrier(); // the next block overwrites K / V and the probabilities
  }
  [[unroll]] for (uint r = 0u; r < TR; ++r) {
    uint m = rg * TR + r, i = i0 + m / HPW;
    if (m >= TM || i >= S) continue;
    float l = smem[T_SUM + m];
    uint o = ((bq * ATT_HQ + hq0 + m % HPW) * S + i) * ATT_DV;
    [[unroll]] for (uint x = 0u; x < ATT_TDPT; ++x) {
      uint d = cg + x * NCG;
      if (d < ATT_DV) STORE_OUT(o + d, l > 0.0 ? acc[r][x] / l : 0.0);
    }
  }
  barrier(); // the next tile overwrites the query rows and the row statistics
}
