// matmul: OUT[batch, M, N] = A[batch, M, K] x B[batch, K, N] (TRANSPOSE_B: B is [batch, N, K]), f32 accumulators.
// Batch dims broadcast: batchOffsets(bz, A0, B0) (generated for the op's ranks and strides) gives each
// operand's matrix for batch index bz. MM_M, MM_N, MM_K, MM_BATCH are the dims (static ones specialization
// constants, so matmuls of one shape class share a module).
//
// One kernel, paths chosen by the (uniform) M: with TRANSPOSE_B and M <= 4 (decode, tiny chunks) a GEMV
// (gemv.glsl: teams of subgroups, several output columns each, vector loads, subgroupAdd). Otherwise, with
// COOPMAT (f16 B on a device with cooperative matrices), tensor-core tiles (matmul_coopmat.glsl), else a
// register-blocked tile: 64x64 of OUT per workgroup, K in steps of 16 through
// shared memory, each invocation a 4x4 micro-tile (rows ty + 16 r, columns tx + 16 c: conflict-free shared
// reads, coalesced stores). Both paths grid-stride, so any grid is correct. GEMV_ONLY: the GEMV path alone, a
// kernel the runtime dispatches instead for steps of M <= MS (no tile registers; QUANT_B: no tiles shared memory).
// QUANT_B (a q8_0 / q4_0 weight, QuantKernels.cpp): gemv_quant.glsl's GEMV for at most QMS rows, batch folded in.
#define MS 4u   // GEMV: rows of A (M <= MS)
#define BM 64u  // tile rows
#define BN 64u  // tile columns
#define BK 16u  // tile depth
#define LD 65u  // shared-memory row length of a tile (BM + 1: no bank conflicts)
#ifndef A_BINDING
#define A_BINDING 0 // A's binding for its vector views (MatmulKernel.cpp: a group's normed(y) is another)
#endif

#if !defined(GEMV_ONLY) || !defined(QUANT_B)
shared float sm[2u * BK * LD]; // the A and B tiles, reused by gemv.glsl's reduction
#endif
const uint VW = VEC_WIDTH;

#ifdef GROUP
// kiln.matmul_group: the weights are bindings 1 .. GROUP_SEGMENTS; B's loads and OUT's stores go to the
// segment gSeg (matmul_group.glsl).
#include "matmul_group.glsl"
#endif
#if VEC_WIDTH == 4
layout(std430, set = 0, binding = A_BINDING) readonly buffer VA { vec4 d[]; } va;
#define LOAD4_A(v) va.d[v]
#ifndef GROUP
layout(std430, set = 0, binding = 1) readonly buffer VB { vec4 d[]; } vb;
#define LOAD4_B(v) vb.d[v]
#define VIEW_B(v) vb.d[v]
#endif
#elif VEC_WIDTH == 8
// Vector views of A and B (same bindings): two vec4 per 8 f32, one uvec4 per 8 f16 / bf16.
#if defined(A_IS_F16) || defined(A_IS_BF16)
layout(std430, set = 0, binding = A_BINDING) readonly buffer VA { uvec4 d[]; } va;
#else
layout(std430, set = 0, binding = A_BINDING) readonly buffer VA { vec4 d[]; } va;
#endif
vec2 bf16x2(uint u) { return vec2(uintBitsToFloat(u << 16), uintBitsToFloat(u & 0xffff0000u)); }
// Elements 8 v .. 8 v + 7 of a view as lo (the first 4) and hi.
#define LOAD8_F32(view, v, lo, hi) { lo = view.d[2u * (v)]; hi = view.d[2u * (v) + 1u]; }
void unpack8F16(uvec4 u, out vec4 lo, out vec4 hi) {
  lo = vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
  hi = vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w));
}
void unpack8BF16(uvec4 u, out vec4 lo, out vec4 hi) {
  lo = vec4(bf16x2(u.x), bf16x2(u.y));
  hi = vec4(bf16x2(u.z), bf16x2(u.w));
}
#define LOAD8_F16(view, v, lo, hi) unpack8F16(view.d[v], lo, hi)
#define LOAD8_BF16(view, v, lo, hi) unpack8BF16(view.d[v], lo, hi)
#if defined(A_IS_F16)
#define LOAD8_A(v, lo, hi) LOAD8_F16(va, v, lo, hi)
#elif defined(A_IS_BF16)
#define LOAD8_A(v, lo, hi) LOAD8_BF16(va, v, lo, hi)
#else
#define LOAD8_A(v, lo, hi) LOAD8_F32(va, v, lo, hi)
#endif
// B's kind: the view type and its 8-element load.
#if defined(B_IS_F16)
#define B_VIEW_TYPE uvec4
#define UNPACK8_B(u, lo, hi) unpack8F16(u, lo, hi) // 8 packed weights (gemv.glsl keeps them packed)
#define LOAD8_VIEW_B(view, v, lo, hi) UNPACK8_B(view.d[v], lo, hi)
#elif defined(B_IS_BF16)
#define B_VIEW_TYPE uvec4
#define UNPACK8_B(u, lo, hi) unpack8BF16(u, lo, hi)
#define LOAD8_VIEW_B(view, v, lo, hi) UNPACK8_B(view.d[v], lo, hi)
#else
#define B_VIEW_TYPE vec4
#define LOAD8_VIEW_B(view, v, lo, hi) LOAD8_F32(view, v, lo, hi)
#endif
#ifndef GROUP
layout(std430, set = 0, binding = 1) readonly buffer VB { B_VIEW_TYPE d[]; } vb;
#define LOAD8_B(v, lo, hi) LOAD8_VIEW_B(vb, v, lo, hi)
#define VIEW_B(v) vb.d[v]
#endif
#endif
#ifdef GROUP
#include "matmul_group_views.glsl"
#endif
#if defined(NORM) || defined(RESIDUAL)
#include "matmul_folds.glsl"
#endif

// The first GEMV block of this workgroup when the blocks before `blockBase` went to the workgroups from 0 on.
uint gemvFirstBlock(uint blockBase) {
  uint groups = gl_NumWorkGroups.x;
  return (gl_WorkGroupID.x + groups - blockBase % groups) % groups;
}

#if defined(QUANT_B)
// A block-quantized weight: its own GEMV (activations quantized per block, as the CPU's) and, for the tiles,
// LOAD_B(i) = quantAt(i) (dequantized to f32 as it is staged).
#include "quant.glsl"
#include "gemv_quant.glsl"
#elif defined(TRANSPOSE_B)
#include "gemv.glsl"
#endif
#ifdef COOPMAT
#include "matmul_coopmat.glsl"
#endif

#if defined(QUANT_B)
bool gemvPath() { return MM_M * MM_BATCH <= QMS; } // the rows gemv_quant.glsl quantizes, as the CPU's GEMV
#elif defined(TRANSPOSE_B)
bool gemvPath() { return MM_M <= MS; }
#endif

#ifndef GEMV_ONLY // the tiles
// Loads the BK-deep slices at k0 of A's rows i0.. and B's columns j0.. into sm (A at 0, B at BK LD).
void loadTiles(uint A0, uint B0, uint i0, uint j0, uint k0) {
  const uint M = MM_M, N = MM_N, K = MM_K;
  uint t = gl_LocalInvocationID.x;
#if VEC_WIDTH > 0
  // Vector loads (K % VEC_WIDTH == 0, so a row's group never crosses K): VEC_WIDTH 4, every invocation one
  // vec4 of A and of B; 8, the first 128 invocations 8 elements of each.
  const uint GROUPS = BK / VW;
  if (t < BM * GROUPS) {
    uint row = t / GROUPS, kq = (t % GROUPS) * VW, kk = k0 + kq;
    uint i = min(i0 + row, M - 1u), jj = min(j0 + row, N - 1u);
    bool kin = kk < K, ain = kin && i0 + row < M, bin = kin && j0 + row < N;
    uint kc = min(kk, K - VW);
#if VEC_WIDTH == 4
    vec4 xa = ain ? LOAD4_A((A0 + i * K + kc) / 4u) : vec4(0.0);
#ifdef NORM
    if (ain) xa *= gRs[row] * normW4(kc);
#endif
    vec4 xb = bin ? LOAD4_B((B0 + jj * K + kc) / 4u) : vec4(0.0);
    [[unroll]] for (uint c = 0u; c < 4u; ++c) {
      sm[(kq + c) * LD + row] = xa[c];
      sm[BK * LD + (kq + c) * LD + row] = xb[c];
    }
#else
    vec4 al = vec4(0.0), ah = vec4(0.0), bl = vec4(0.0), bh = vec4(0.0);
    if (ain) LOAD8_A((A0 + i * K + kc) / 8u, al, ah);
#ifdef NORM
    if (ain) {
      al *= gRs[row] * normW4(kc);
      ah *= gRs[row] * normW4(kc + 4u);
    }
#endif
    if (bin) LOAD8_B((B0 + jj * K + kc) / 8u, bl, bh);
    [[unroll]] for (uint c = 0u; c < 4u; ++c) {
      sm[(kq + c) * LD + row] = al[c];
      sm[BK * LD + (kq + c) * LD + row] = bl[c];
      sm[(kq + 4u + c) * LD + row] = ah[c];
      sm[BK * LD + (kq + 4u + c) * LD + row] = bh[c];
    }
#endif
  }
#else
  // Scalar loads, BM BK / WG_X = 4 elements of each tile per invocation.
  for (uint e = 0u; e < 4u; ++e) {
    uint q = t + WG_X * e, row = q / BK, kq = q % BK;
    uint i = i0 + row, kk = k0 + kq;
#ifdef NORM
    sm[kq * LD + row] = (i < M && kk < K) ? LOAD_A(A0 + i * K + kk) * gRs[row] * normW(kk) : 0.0;
#else
    sm[kq * LD + row] = (i < M && kk < K) ? LOAD_A(A0 + i * K + kk) : 0.0;
#endif
#ifdef TRANSPOSE_B
    uint jj = j0 + row;
    sm[BK * LD + kq * LD + row] = (jj < N && kk < K) ? LOAD_B(B0 + jj * K + kk) : 0.0;
#else
    uint kb = k0 + q / BN, jj = j0 + q % BN;
    sm[BK * LD + (q / BN) * LD + q % BN] = (jj < N && kb < K) ? LOAD_B(B0 + kb * N + jj) : 0.0;
#endif
  }
#endif
}

// Register-blocked tile `tile` (row-major over the BM x BN blocks of OUT) of batch bz.
void tile64(uint bz, uint A0, uint B0, uint tile) {
  const uint M = MM_M, N = MM_N, K = MM_K;
  uint t = gl_LocalInvocationID.x, tx = t % 16u, ty = t / 16u;
  uint tilesN = (N + BN - 1u) / BN;
  uint i0 = (tile / tilesN) * BM, j0 = (tile % tilesN) * BN;
#ifdef NORM
  rowScales(A0, i0, BM);
#endif
  float c[4][4];
  [[unroll]] for (uint r = 0u; r < 4u; ++r)
    [[unroll]] for (uint q = 0u; q < 4u; ++q) c[r][q] = 0.0;
  for (uint k0 = 0u; k0 < K; k0 += BK) {
    loadTiles(A0, B0, i0, j0, k0);
    barrier();
    for (uint q = 0u; q < BK; ++q) {
      uint ao = q * LD + ty, bo = BK * LD + q * LD + tx;
      float a[4], b[4];
      [[unroll]] for (uint r = 0u; r < 4u; ++r) {
        a[r] = sm[ao + 16u * r];
        b[r] = sm[bo + 16u * r];
      }
      [[unroll]] for (uint r = 0u; r < 4u; ++r)
        [[unroll]] for (uint s = 0u; s < 4u; ++s) c[r][s] += a[r] * b[s];
    }
    barrier();
  }
  [[unroll]] for (uint r = 0u; r < 4u; ++r)
    [[unroll]] for (uint s = 0u; s < 4u; ++s) {
      uint i = i0 + ty + 16u * r, j = j0 + tx + 16u * s;
      if (i < M && j < N) STORE_OUT((bz * M + i) * N + j, c[r][s]);
    }
}

// The register-blocked tiles of batch bz.
void tiles(uint bz, uint A0, uint B0) {
  uint tileCount = ((MM_M + BM - 1u) / BM) * ((MM_N + BN - 1u) / BN);
  for (uint tile = gl_WorkGroupID.x; tile < tileCount; tile += gl_NumWorkGroups.x)
    tile64(bz, A0, B0, tile);
}

#if defined(GROUP) && !defined(SILU_MUL)
// A group's tiles (M above the GEMV's): the blocks of every segment in one grid-stride space, segment after
// segment, so that a narrow segment's blocks (the k / v projections) go to workgroups of their own instead of
// queueing behind the wide one's on the first workgroups (which made the group cost one block latency per
// segment). The grid covers the sum of the segments' N (workgroupsX).
void groupTiles(uint bz, uint A0, uint B0) {
#ifdef COOPMAT
  const bool cm = CM_READY;
  const uint bm = cm ? CM_BM : BM, bn = cm ? CM_BN : BN;
#else
  const bool cm = false;
  const uint bm = BM, bn = BN;
#endif
  const uint tilesM = (MM_M + bm - 1u) / bm;
  uint tileCount = 0u;
  for (uint s = 0u; s < uint(GROUP_SEGMENTS); ++s)
    tileCount += tilesM * ((segN(s) + bn - 1u) / bn);
  uint stage = 0u;
  for (uint tile = gl_WorkGroupID.x; tile < tileCount; tile += gl_NumWorkGroups.x) {
    uint local = tile, s = 0u;
    for (; s + 1u < uint(GROUP_SEGMENTS); ++s) {
      uint count = tilesM * ((segN(s) + bn - 1u) / bn);
      if (local < count)
        break;
      local -= count;
    }
    gSeg = s;
    gN = segN(s);
#ifdef COOPMAT
    if (cm) {
      coopTile(bz, A0, B0, local, stage);
      continue;
    }
#endif
    tile64(bz, A0, B0, local);
  }
}
#endif

#endif // the tiles

// The product with one weight: the matmul's, or segment gSeg's of a matmul_group. blockBase: the GEMV blocks of
// the group's earlier segments (this segment's first block goes to the workgroup after theirs).
void product(uint bz, uint A0, uint B0, uint blockBase) {
#ifdef GEMV_ONLY // the small-rows variant: dispatched only for M <= MS (QUANT_B: M MM_BATCH <= QMS too)
  gemv(bz, A0, B0, blockBase);
#else
#if defined(TRANSPOSE_B)
  if (gemvPath()) {
    gemv(bz, A0, B0, blockBase);
    return;
  }
#endif
#ifdef COOPMAT
  if (CM_READY) { // else (subgroups of another width) the scalar tiles
    coopTiles(bz, A0, B0);
    return;
  }
#endif
  tiles(bz, A0, B0);
#endif
}

void main() {
  for (uint bz = gl_WorkGroupID.z; bz < MM_BATCH; bz += gl_NumWorkGroups.z) {
    uint A0, B0;
    batchOffsets(bz, A0, B0);
#ifdef NORM
    // The GEMV's rows of A (all M <= MS of them: 1, 2 or 4 rows of the reduction); the tiles scale per block.
    if (MM_M <= MS) rowScales(A0, 0u, MM_M >= 3u ? 4u : max(MM_M, 1u));
#endif
#ifdef GEMV_NORM_SHARED
    if (MM_M <= MS) gemvNormRows(A0);
#endif
#if defined(GROUP) && !defined(SILU_MUL) && !defined(GEMV_ONLY)
#ifdef TRANSPOSE_B
    if (!gemvPath())
#endif
    {
      groupTiles(bz, A0, B0);
      continue;
    }
#endif
#ifdef GROUP
    uint blockBase = 0u;
    for (uint s = 0u; s < uint(GROUP_SEGMENTS); ++s) {
      gSeg = s;
      gN = segN(s);
      product(bz, A0, B0, blockBase);
#ifndef SILU_MUL
      blockBase += (gN + gemvRowsPerGroup() - 1u) / gemvRowsPerGroup();
#elif defined(COOPMAT) && defined(CM_DIRECT)
      // The up pass reads the gate pass's stores: a tile's cooperative-matrix load need not give a lane the
      // elements it stored itself, so the workgroup's stores are made visible first.
      memoryBarrierBuffer();
      barrier();
#endif
    }
#else
    product(bz, A0, B0, 0u);
#endif
  }
}
