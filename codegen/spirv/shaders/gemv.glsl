// GEMV (matmul.comp with TRANSPOSE_B, M <= MS rows of A: decode and tiny chunks): OUT[m, j] = A[m, :] . B[j, :]
// for the MM_M rows of A, the rows j of B ([N, K], each contiguous) read once, with vector loads (VEC_WIDTH 4:
// a vec4 of f32; 8: 8 f16 / bf16 in one uvec4, or two vec4 of f32; 0: scalar loads when K is not a multiple of
// the width) and f32 accumulators.
//
// A workgroup is GEMV_TEAMS teams; each team computes GEMV_ROWS output columns (rows of B) at a time, its
// invocations striding over K (split-K inside the workgroup: a short row is split over one subgroup, a long
// one over several). With SUBGROUPS a team is whole subgroups, reduced with subgroupAdd; a team of one
// subgroup (the usual case) needs no shared memory and no barrier; a team of several sums its subgroups'
// partials through shared memory. A device with fewer subgroups per workgroup than GEMV_TEAMS (e.g. 64-wide
// ones) gets fewer teams of one subgroup; the block loop covers every row whatever the grid. Without
// SUBGROUPS the whole workgroup is one team, reduced by a shared-memory tree.
const uint GR = GEMV_ROWS;

// The weight vectors of the GR rows at vector index kv from the vector view VIEW of B (each vector GV vec4:
// 4 f32, or 8 f32 / f16 / bf16 as lo, hi). A macro over the view, so that a matmul_group's segments each get
// their own loop with plain loads (no per-load branch on the segment).
#if VEC_WIDTH > 0
const uint GV = VW / 4u;
#if VEC_WIDTH == 8 && (defined(B_IS_F16) || defined(B_IS_BF16))
// 16-bit weights stay packed (a uvec4 of 8) until their dots: the loads in flight take half the registers they
// would as floats (on an H100 / H200: 64 instead of about 100 per invocation, twice the workgroups per SM).
#define GEMV_PACKED_B
#define GEMV_W(name) uvec4 name[GR]
#define GEMV_WS(name) uvec4 name[GEMV_STEPS][GR]
#define GEMV_LOAD_B(VIEW, br, kv, w) [[unroll]] for (uint r = 0u; r < GR; ++r) w[r] = VIEW.d[br[r] + (kv)];
#else
#define GEMV_W(name) vec4 name[GR][GV]
#define GEMV_WS(name) vec4 name[GEMV_STEPS][GR][GV]
#if VEC_WIDTH == 4
#define GEMV_LOAD_B(VIEW, br, kv, w) [[unroll]] for (uint r = 0u; r < GR; ++r) w[r][0] = VIEW.d[br[r] + (kv)];
#else
#define GEMV_LOAD_B(VIEW, br, kv, w) [[unroll]] for (uint r = 0u; r < GR; ++r) { LOAD8_VIEW_B(VIEW, br[r] + (kv), w[r][0], w[r][1]); }
#endif
#endif

#ifdef GEMV_NORM_SHARED
// NORM in the GEMV-only kernel (MatmulKernel.cpp, where MS x K floats fit): the rows m < M of A normed once
// per workgroup (after rowScales), A[m, k] x 1/rms x the norm weight, which the loop then reads as plain
// vectors: scaling each vector as it was loaded took 20 more registers per invocation (77: 3 instead of 4
// workgroups per H100 multiprocessor) and made the norm-fused GEMV slower than a norm dispatch plus the GEMV.
shared vec4 gNormA[MS * MM_K / 4u];

void gemvNormRows(uint A0) {
  const uint M = MM_M, K = MM_K, KV4 = MM_K / 4u;
  for (uint e = gl_LocalInvocationID.x; e < min(M, MS) * KV4; e += WG_X) {
    uint m = e / KV4, k = (e % KV4) * 4u, at = A0 + m * K + k;
    vec4 x = vec4(LOAD_A(at), LOAD_A(at + 1u), LOAD_A(at + 2u), LOAD_A(at + 3u));
    gNormA[e] = x * gRs[m] * normW4(k);
  }
  barrier();
}
#endif

// acc[m][r] += A[m, vector kv] . w[r] for the rows m < M of A.
// NORM: A's vector kv scaled by the norm weight (once for all rows) and its row's 1/rms (GEMV_NORM_SHARED:
// as staged by gemvNormRows).
void gemvFma(inout float acc[MS][GR], uint ar[MS], uint kv, GEMV_W(w)) {
  const uint M = MM_M;
#if defined(NORM) && !defined(GEMV_NORM_SHARED)
  vec4 nl = normW4(kv * VW);
#if VEC_WIDTH == 8
  vec4 nh = normW4(kv * VW + 4u);
#endif
#endif
  [[unroll]] for (uint m = 0u; m < MS; ++m)
    if (m < M) {
#if VEC_WIDTH == 4
#ifdef GEMV_NORM_SHARED
      vec4 x = gNormA[m * (MM_K / 4u) + kv];
#else
      vec4 x = LOAD4_A(ar[m] + kv);
#ifdef NORM
      x *= gRs[m] * nl;
#endif
#endif
      [[unroll]] for (uint r = 0u; r < GR; ++r) acc[m][r] += dot(x, w[r][0]);
#else
      vec4 xl, xh;
#ifdef GEMV_NORM_SHARED
      xl = gNormA[m * (MM_K / 4u) + 2u * kv];
      xh = gNormA[m * (MM_K / 4u) + 2u * kv + 1u];
#else
      LOAD8_A(ar[m] + kv, xl, xh);
#ifdef NORM
      xl *= gRs[m] * nl;
      xh *= gRs[m] * nh;
#endif
#endif
#ifdef GEMV_PACKED_B
      [[unroll]] for (uint r = 0u; r < GR; ++r) {
        vec4 lo, hi;
        UNPACK8_B(w[r], lo, hi);
        acc[m][r] += dot(xl, lo) + dot(xh, hi);
      }
#else
      [[unroll]] for (uint r = 0u; r < GR; ++r) acc[m][r] += dot(xl, w[r][0]) + dot(xh, w[r][1]);
#endif
#endif
    }
}
#endif

#if VEC_WIDTH > 0
// The vector K loop of gemvPartials over the vector view VIEW of B: GEMV_STEPS steps per iteration, all their
// weight loads issued before their FMAs (the bytes in flight per invocation: a GEMV is bound by memory latency
// x loads outstanding), then the remaining steps one at a time; the sums in the order of one step at a time.
#define GEMV_VECTOR_LOOP(VIEW) \
  for (; kv + (GEMV_STEPS - 1u) * tsize < KV; kv += GEMV_STEPS * tsize) { \
    GEMV_WS(ws); \
    [[unroll]] for (uint st = 0u; st < GEMV_STEPS; ++st) { GEMV_LOAD_B(VIEW, br, kv + st * tsize, ws[st]) } \
    [[unroll]] for (uint st = 0u; st < GEMV_STEPS; ++st) gemvFma(acc, ar, kv + st * tsize, ws[st]); \
  } \
  for (; kv < KV; kv += tsize) { \
    GEMV_W(w0); \
    GEMV_LOAD_B(VIEW, br, kv, w0) \
    gemvFma(acc, ar, kv, w0); \
  }
#endif

// Partial dots of this invocation: rows i of A (clamped, m < M only) with the team's rows j0 .. j0 + GR - 1
// of B (clamped to N - 1: their results are not stored), over K in steps of tsize vectors from `lane`.
void gemvPartials(inout float acc[MS][GR], uint A0, uint B0, uint j0, uint lane, uint tsize) {
  const uint M = MM_M, N = MM_N, K = MM_K;
  uint j[GR], i[MS];
  [[unroll]] for (uint r = 0u; r < GR; ++r) j[r] = min(j0 + r, N - 1u);
  [[unroll]] for (uint m = 0u; m < MS; ++m) i[m] = min(m, M - 1u);
#if VEC_WIDTH > 0
  const uint KV = K / VW;
  uint ar[MS], br[GR];
  [[unroll]] for (uint m = 0u; m < MS; ++m) ar[m] = (A0 + i[m] * K) / VW;
  [[unroll]] for (uint r = 0u; r < GR; ++r) br[r] = (B0 + j[r] * K) / VW;
  uint kv = lane;
#ifdef GROUP
  if (gSeg == 0u) {
    GEMV_VECTOR_LOOP(vb0)
  }
#if GROUP_SEGMENTS > 1
  else if (gSeg == 1u) {
    GEMV_VECTOR_LOOP(vb1)
  }
#endif
#if GROUP_SEGMENTS > 2
  else if (gSeg == 2u) {
    GEMV_VECTOR_LOOP(vb2)
  }
#endif
#if GROUP_SEGMENTS > 3
  else {
    GEMV_VECTOR_LOOP(vb3)
  }
#endif
#else
  GEMV_VECTOR_LOOP(vb)
#endif
#else
  for (uint kk = lane; kk < K; kk += tsize) {
    float w[GR];
    [[unroll]] for (uint r = 0u; r < GR; ++r) w[r] = LOAD_B(B0 + j[r] * K + kk);
    [[unroll]] for (uint m = 0u; m < MS; ++m)
      if (m < M) {
        float x = LOAD_A(A0 + i[m] * K + kk);
#ifdef NORM
        x *= gRs[m] * normW(kk);
#endif
        [[unroll]] for (uint r = 0u; r < GR; ++r) acc[m][r] += x * w[r];
      }
  }
#endif
}

void gemvStore(uint bz, uint q, uint j0, float v) {
  const uint M = MM_M, N = MM_N;
  uint m = q / GR, jo = j0 + q % GR;
  if (m < M && jo < N) STORE_OUT((bz * M + m) * N + jo, v);
}

#ifdef SUBGROUPS
// Teams of whole subgroups (uniform over the workgroup, so the barriers below are too).
uint gemvTeams() { return min(GEMV_TEAMS, gl_NumSubgroups); }
uint gemvRowsPerGroup() { return gemvTeams() * GR; }

void gemv(uint bz, uint A0, uint B0, uint blockBase) {
  const uint M = MM_M, N = MM_N, Q = MS * GR;
  uint teams = gemvTeams(), spt = gl_NumSubgroups / teams;
  uint team = gl_SubgroupID / spt, sub = gl_SubgroupID % spt;
  uint lane = sub * gl_SubgroupSize + gl_SubgroupInvocationID, tsize = spt * gl_SubgroupSize;
  uint rowsPerGroup = teams * GR;
  for (uint blk = gemvFirstBlock(blockBase); blk * rowsPerGroup < N; blk += gl_NumWorkGroups.x) {
    uint j0 = blk * rowsPerGroup + team * GR;
    float acc[MS][GR];
    [[unroll]] for (uint m = 0u; m < MS; ++m)
      [[unroll]] for (uint r = 0u; r < GR; ++r) acc[m][r] = 0.0;
    if (team < teams && j0 < N) gemvPartials(acc, A0, B0, j0, lane, tsize);
    float sums[Q];
    [[unroll]] for (uint q = 0u; q < Q; ++q) sums[q] = q / GR < M ? subgroupAdd(acc[q / GR][q % GR]) : 0.0;
    if (spt == 1u) {
      if (team < teams && subgroupElect())
        [[unroll]] for (uint q = 0u; q < Q; ++q) gemvStore(bz, q, j0, sums[q]);
      continue;
    }
    // Several subgroups per team: their partials through shared memory, [team][q][sub].
    if (team < teams && subgroupElect())
      [[unroll]] for (uint q = 0u; q < Q; ++q) sm[(team * Q + q) * spt + sub] = sums[q];
    barrier();
    if (team < teams && sub == 0u)
      for (uint q = gl_SubgroupInvocationID; q < Q; q += gl_SubgroupSize) {
        float v = 0.0;
        for (uint g = 0u; g < spt; ++g) v += sm[(team * Q + q) * spt + g];
        gemvStore(bz, q, j0, v);
      }
    barrier();
  }
}
#else
// Without subgroup arithmetic: one team of WG_X invocations; a shared-memory tree, 8 accumulators at a time
// (8 x WG_X floats of sm).
uint gemvRowsPerGroup() { return GR; }

void gemv(uint bz, uint A0, uint B0, uint blockBase) {
  const uint N = MM_N, Q = MS * GR;
  uint t = gl_LocalInvocationID.x;
  for (uint j0 = gemvFirstBlock(blockBase) * GR; j0 < N; j0 += gl_NumWorkGroups.x * GR) {
    float acc[MS][GR];
    [[unroll]] for (uint m = 0u; m < MS; ++m)
      [[unroll]] for (uint r = 0u; r < GR; ++r) acc[m][r] = 0.0;
    gemvPartials(acc, A0, B0, j0, t, WG_X);
    float mine = 0.0;
    for (uint h0 = 0u; h0 < Q; h0 += 8u) {
      for (uint q = 0u; q < 8u; ++q) sm[q * WG_X + t] = h0 + q < Q ? acc[(h0 + q) / GR][(h0 + q) % GR] : 0.0;
      barrier();
      for (uint h = WG_X / 2u; h > 0u; h >>= 1u) {
        if (t < h)
          for (uint q = 0u; q < 8u; ++q) sm[q * WG_X + t] += sm[q * WG_X + t + h];
        barrier();
      }
      if (t >= h0 && t < h0 + 8u) mine = sm[(t - h0) * WG_X];
      barrier();
    }
    if (t < Q) gemvStore(bz, t, j0, mine);
  }
}
#endif
