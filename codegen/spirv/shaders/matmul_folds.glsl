// kiln.matmul_group's folds (kiln-fuse-matmul-norms; MatmulKernel.cpp defineFolds), for matmul.comp:
//   NORM      the lhs the products read is rms_norm(A, NW): every path (GEMV, scalar tiles, cooperative tiles)
//             first computes 1/rms of the rows of A its block reads (rowScales: gRs, the block's rows from
//             gRsRow0), then scales each element of A by gRs[its row] and NW[k] (or 1 + NW[k] with
//             NORM_UNIT_OFFSET) as it loads it. The normed rows are never stored; each workgroup recomputes the
//             sums of squares of its rows (K floats a row, from L2) instead of a norm dispatch writing them.
//   RESIDUAL  OUT = R + A W^T: the store adds R at the same index (matmul_group.glsl storeOutSeg).
#ifdef NORM
shared float gRs[RS_ROWS]; // 1/rms of rows gRsRow0 .. gRsRow0 + RS_ROWS - 1 of A (of batch bz)
uint gRsRow0 = 0u;

// The sum of squares of A's RS_VW elements from `at` (a multiple of RS_VW; K % VEC_WIDTH == 0): one vector load
// where A has vector views.
#if VEC_WIDTH == 8
const uint RS_VW = 8u;
float sumSqAt(uint at) {
  vec4 lo, hi;
  LOAD8_A(at / 8u, lo, hi);
  return dot(lo, lo) + dot(hi, hi);
}
#elif VEC_WIDTH == 4
const uint RS_VW = 4u;
float sumSqAt(uint at) {
  vec4 x = LOAD4_A(at / 4u);
  return dot(x, x);
}
#else
const uint RS_VW = 1u;
float sumSqAt(uint at) {
  float x = LOAD_A(at);
  return x * x;
}
#endif

// gRs[r] = rsqrt(mean(A[i0 + r, :]^2) + eps) for r < rows (a power of two, at most WG_X). Called in uniform
// control flow (barriers); the first barrier keeps sm's and gRs's previous readers (the GEMV's reduction, the
// tiles' staging and scaling) before the writes.
void rowScales(uint A0, uint i0, uint rows) {
  const uint M = MM_M, K = MM_K;
  uint t = gl_LocalInvocationID.x;
  barrier();
#ifdef SUBGROUPS
  // Teams of whole subgroups, `per` invocations a row (the GEMV's 1 .. 4 rows: a quarter of the workgroup or
  // more; a tile's 64 or 128 rows: one subgroup, each taking rows r, r + WG_X / per, ...): vector loads strided
  // over the team (coalesced; a tile's rows no longer read as 4 invocations x K / 4 scalar loads each), then
  // subgroupAdd, then the team's subgroups' sums.
  uint sgs = gl_SubgroupSize, team = max(WG_X / rows, sgs);
  if (team % sgs == 0u && WG_X % team == 0u) {
    uint per = team, perSg = per / sgs, p = t % per;
    for (uint r = t / per; r < rows; r += WG_X / per) { // uniform in a subgroup (its lanes share r)
      uint i = i0 + r;
      float s = 0.0;
      if (i < M)
        for (uint k = p * RS_VW; k < K; k += per * RS_VW) s += sumSqAt(A0 + i * K + k);
      s = subgroupAdd(s);
      if (perSg == 1u && subgroupElect()) gRs[r] = inversesqrt(s / float(K) + NORM_EPS);
      if (perSg > 1u && subgroupElect()) sm[t / sgs] = s; // one round: rows x per == WG_X
    }
    if (perSg > 1u) {
      barrier();
      uint r = t / per;
      if (p == 0u && r < rows) {
        float total = 0.0;
        for (uint g = 0u; g < perSg; ++g) total += sm[r * perSg + g];
        gRs[r] = inversesqrt(total / float(K) + NORM_EPS);
      }
    }
    barrier();
    gRsRow0 = i0;
    return;
  }
#endif
  // A shared-memory tree over WG_X / rows invocations a row.
  uint per = WG_X / rows, r = t / per, p = t % per, i = i0 + r;
  float s = 0.0;
  if (i < M)
    for (uint k = p; k < K; k += per) {
      float x = LOAD_A(A0 + i * K + k);
      s += x * x;
    }
  sm[t] = s;
  barrier();
  for (uint h = per / 2u; h > 0u; h >>= 1u) {
    if (p < h) sm[t] += sm[t + h];
    barrier();
  }
  if (p == 0u) gRs[r] = inversesqrt(sm[t] / float(K) + NORM_EPS);
  barrier();
  gRsRow0 = i0;
}

// The norm weight of channel k (0 past K: a vector load's tail).
float normW(uint k) {
  const uint K = MM_K;
  if (k >= K) return 0.0;
#ifdef NORM_UNIT_OFFSET
  return 1.0 + LOAD_NW(k);
#else
  return LOAD_NW(k);
#endif
}
vec4 normW4(uint k) { return vec4(normW(k), normW(k + 1u), normW(k + 2u), normW(k + 3u)); }
#endif
