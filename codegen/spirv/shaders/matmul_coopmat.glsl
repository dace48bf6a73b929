// Cooperative-matrix tiles (matmul.comp with COOPMAT: TRANSPOSE_B, B stored f16, the target has cooperative
// matrices with 16x8x16 f16 x f16 -> f32 and 32-wide subgroups): CM_BM x CM_BN of OUT per workgroup, K in
// steps of CM_BK through shared memory as f16 (A's f32 values rounded to f16 as they are stored), the 8
// subgroups as 2 x 4, each 32 x 32 of OUT as 2 x 4 accumulators of 16 x 8 (f32). The fragments are written
// with GL_NV_cooperative_matrix (what this glslang knows) and the module is rewritten to
// SPV_KHR_cooperative_matrix after validation (CooperativeMatrixKhr.cpp), so the A type (16 x 16) and the B type
// (16 x 8) must differ. Results go through a per-subgroup staging area of sm to OUT with bounds checks, so M,
// N and K need not be multiples of anything.
#define CM_BM 64u
#define CM_BN 128u
#define CM_BK 32u
#define CM_LDV 5u // a tile row: CM_BK + 8 halfs = 5 uvec4 (80 bytes: 16-byte aligned, rows spread over banks)
#define CM_SUBGROUPS 8u
#define CM_FRAG_A fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define CM_FRAG_B fcoopmatNV<16, gl_ScopeSubgroup, 16, 8>
#define CM_ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 8>

shared uvec4 cmA[CM_BM * CM_LDV]; // [row i][k], 8 halfs per uvec4
shared uvec4 cmB[CM_BN * CM_LDV]; // [column j][k]

uvec4 packHalf8(vec4 lo, vec4 hi) {
  return uvec4(packHalf2x16(lo.xy), packHalf2x16(lo.zw), packHalf2x16(hi.xy), packHalf2x16(hi.zw));
}

// 8 consecutive k of A's row i (f32 or f16) and B's row j (f16) from k = kk, zeros past M, N or K.
uvec4 cmLoadA(uint A0, uint i, uint kk) {
  const uint M = MM_M, K = MM_K;
  if (i >= M || kk >= K) return uvec4(0u);
#if VEC_WIDTH == 8
  vec4 lo, hi;
  LOAD8_A((A0 + i * K + kk) / 8u, lo, hi);
  return packHalf8(lo, hi);
#else
  float v[8];
  [[unroll]] for (uint c = 0u; c < 8u; ++c) v[c] = kk + c < K ? LOAD_A(A0 + i * K + kk + c) : 0.0;
  return packHalf8(vec4(v[0], v[1], v[2], v[3]), vec4(v[4], v[5], v[6], v[7]));
#endif
}
uvec4 cmLoadB(uint B0, uint j, uint kk) {
  const uint N = MM_N, K = MM_K;
  if (j >= N || kk >= K) return uvec4(0u);
#if VEC_WIDTH == 8
  return VIEW_B((B0 + j * K + kk) / 8u);
#else
  float v[8];
  [[unroll]] for (uint c = 0u; c < 8u; ++c) v[c] = kk + c < K ? LOAD_B(B0 + j * K + kk + c) : 0.0;
  return packHalf8(vec4(v[0], v[1], v[2], v[3]), vec4(v[4], v[5], v[6], v[7]));
#endif
}

// The CM_BK-deep slices at k0 of A's rows i0.. and B's rows j0.. (CM_BK / 8 uvec4 per row), in registers:
// invocation t holds elements t, t + WG_X, ... of each (CM_PER_A of A, CM_PER_B of B). They are fetched one
// slice ahead, so the next slice's global loads are in flight while the current one is multiplied.
#define CM_G (CM_BK / 8u)
#define CM_PER_A ((CM_BM * CM_G + WG_X - 1u) / WG_X)
#define CM_PER_B ((CM_BN * CM_G + WG_X - 1u) / WG_X)
void cmFetch(uint A0, uint B0, uint i0, uint j0, uint k0, out uvec4 ra[CM_PER_A], out uvec4 rb[CM_PER_B]) {
  [[unroll]] for (uint q = 0u; q < CM_PER_A; ++q) {
    uint e = gl_LocalInvocationID.x + q * WG_X;
    ra[q] = e < CM_BM * CM_G ? cmLoadA(A0, i0 + e / CM_G, k0 + (e % CM_G) * 8u) : uvec4(0u);
  }
  [[unroll]] for (uint q = 0u; q < CM_PER_B; ++q) {
    uint e = gl_LocalInvocationID.x + q * WG_X;
    rb[q] = e < CM_BN * CM_G ? cmLoadB(B0, j0 + e / CM_G, k0 + (e % CM_G) * 8u) : uvec4(0u);
  }
}
void cmStoreTiles(uvec4 ra[CM_PER_A], uvec4 rb[CM_PER_B]) {
  [[unroll]] for (uint q = 0u; q < CM_PER_A; ++q) {
    uint e = gl_LocalInvocationID.x + q * WG_X;
    if (e < CM_BM * CM_G) cmA[(e / CM_G) * CM_LDV + e % CM_G] = ra[q];
  }
  [[unroll]] for (uint q = 0u; q < CM_PER_B; ++q) {
    uint e = gl_LocalInvocationID.x + q * WG_X;
    if (e < CM_BN * CM_G) cmB[(e / CM_G) * CM_LDV + e % CM_G] = rb[q];
  }
}

void coopTiles(uint bz, uint A0, uint B0) {
  const uint M = MM_M, N = MM_N, K = MM_K;
  const uint sg = gl_SubgroupID, wm = sg / 4u, wn = sg % 4u, lane = gl_SubgroupInvocationID;
  uint tilesN = (N + CM_BN - 1u) / CM_BN, tileCount = ((M + CM_BM - 1u) / CM_BM) * tilesN;
  for (uint tile = gl_WorkGroupID.x; tile < tileCount; tile += gl_NumWorkGroups.x) {
    uint i0 = (tile / tilesN) * CM_BM, j0 = (tile % tilesN) * CM_BN;
    CM_ACC acc[2][4];
    [[unroll]] for (uint r = 0u; r < 2u; ++r)
      [[unroll]] for (uint c = 0u; c < 4u; ++c) acc[r][c] = CM_ACC(0.0);
    uvec4 ra[CM_PER_A], rb[CM_PER_B];
    cmFetch(A0, B0, i0, j0, 0u, ra, rb);
    for (uint k0 = 0u; k0 < K; k0 += CM_BK) {
      cmStoreTiles(ra, rb);
      barrier();
      if (k0 + CM_BK < K) cmFetch(A0, B0, i0, j0, k0 + CM_BK, ra, rb);
      [[unroll]] for (uint kq = 0u; kq < CM_BK / 8u; kq += 2u) {
        CM_FRAG_A a[2];
        CM_FRAG_B b[4];
        [[unroll]] for (uint r = 0u; r < 2u; ++r)
          coopMatLoadNV(a[r], cmA, (wm * 32u + r * 16u) * CM_LDV + kq, CM_LDV, false);
        [[unroll]] for (uint c = 0u; c < 4u; ++c)
          coopMatLoadNV(b[c], cmB, (wn * 32u + c * 8u) * CM_LDV + kq, CM_LDV, true);
        [[unroll]] for (uint r = 0u; r < 2u; ++r)
          [[unroll]] for (uint c = 0u; c < 4u; ++c) acc[r][c] = coopMatMulAddNV(a[r], b[c], acc[r][c]);
      }
      barrier();
    }
    // Each accumulator through this subgroup's 16 x 8 staging area of sm, then to OUT where in bounds.
    [[unroll]] for (uint r = 0u; r < 2u; ++r)
      [[unroll]] for (uint c = 0u; c < 4u; ++c) {
        coopMatStoreNV(acc[r][c], sm, sg * 128u, 8u, false);
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        for (uint e = lane; e < 128u; e += gl_SubgroupSize) {
          uint i = i0 + wm * 32u + r * 16u + e / 8u, j = j0 + wn * 32u + c * 8u + e % 8u;
          if (i < M && j < N) STORE_OUT((bz * M + i) * N + j, sm[sg * 128u + e]);
        }
        subgroupMemoryBarrierShared();
        subgroupBarrier();
      }
  }
}
