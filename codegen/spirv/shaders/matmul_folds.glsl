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

// gRs[r] = rsqrt(mean(A[i0 + r, :]^2) + eps) for r < rows (a power of two, at most WG_X): WG_X / rows
// invocations per row, a shared-memory tree over them. Called in uniform control flow (barriers); the first
// barrier keeps sm's previous readers (the GEMV's reduction, the cooperative tiles' staging) before its writes.
void rowScales(uint A0, uint i0, uint rows) {
  const uint M = MM_M, K = MM_K;
  uint t = gl_LocalInvocationID.x, per = WG_X / rows, r = t / per, p = t % per, i = i0 + r;
  float s = 0.0;
  if (i < M)
    for (uint k = p; k < K; k += per) {
      float x = LOAD_A(A0 + i * K + k);
      s += x * x;
    }
  barrier();
#ifdef SUBGROUPS
  // A row's invocations are whole subgroups (the GEMV's 1 .. 4 rows): each subgroup's sum, then its row's
  // subgroups' sums (two barriers instead of the tree's log2(per)).
  if (per % gl_SubgroupSize == 0u) {
    uint sgs = gl_SubgroupSize, perSg = per / sgs;
    s = subgroupAdd(s);
    if (subgroupElect()) sm[t / sgs] = s;
    barrier();
    if (p == 0u) {
      float total = 0.0;
      for (uint g = 0u; g < perSg; ++g) total += sm[r * perSg + g];
      gRs[r] = inversesqrt(total / float(K) + NORM_EPS);
    }
    barrier();
    gRsRow0 = i0;
    return;
  }
#endif
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
