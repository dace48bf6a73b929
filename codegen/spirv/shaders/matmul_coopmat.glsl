// Cooperative-matrix GEMM tiles (matmul.comp with COOPMAT and TRANSPOSE_B: A [M, K] and B [N, K], K contiguous
// in both; f16 x f16 -> f32 on the tensor cores). Parameters (defines from MatmulKernel.cpp, the tile chosen by
// coopmatTile() for the shape and the device profile):
//   CM_BM x CM_BN  the block of OUT one workgroup computes (grid-stride over the blocks);
//   CM_BK          the depth of one K slice staged in shared memory (a multiple of 16);
//   CM_STAGES      1: one shared buffer per operand, two barriers per slice; 2: two, alternating (one barrier);
//   CM_WGM         the 8 warps of 32 invocations as CM_WGM x (8 / CM_WGM): each warp owns a
//                  (CM_BM / CM_WGM) x (CM_BN / CM_WGN) piece of the block, CM_FM x CM_FN accumulators of 16 x 8.
//   CM_DIRECT      OUT is f32 and N % 4 == 0: accumulators wholly inside OUT are stored straight to it (the
//                  pointer and stride of a cooperative-matrix store must be 16-byte aligned); the others go
//                  through a per-warp 16 x 8 staging area of sm with bounds checks (M, N, K need not be
//                  multiples of anything). In a matmul_group (every segment's result f32, N % 4 == 0, no
//                  view, no residual) each segment stores to its own result; with SILU_MUL the up pass loads
//                  the gate pass's accumulator back and stores silu(gate) * up, element by element.
// A and B are read in their stored dtype (f32, f16 or bf16, or B q8_0 / q4_0 dequantized (QUANT_B); 8 consecutive
// k per 16-byte load when K % 8 == 0)
// one slice ahead into registers, so the next slice's global loads are in flight while this one is multiplied,
// and converted to f16 as they are written to shared memory ([row][k], rows padded by 16 bytes so that the
// 8 rows of a fragment load fall in different banks).
//
// The fragments use the native 16 x 8 x 16 shape (A 16 x 16, B 16 x 8, accumulator 16 x 8 f32): written with
// GL_NV_cooperative_matrix (what this glslang knows) and rewritten to SPV_KHR_cooperative_matrix after
// validation (CooperativeMatrixKhr.cpp), which needs the A, B and accumulator types to differ.
// CM_EMULATE: the same tiling, staging and indexing with the fragment operations in plain GLSL (a fragment of A
// or B is where it lies in shared memory; an accumulator is 4 floats per lane of a 32-invocation warp), so that
// lavapipe, which has no cooperative matrices, tests everything but the intrinsics against the interpreter.
#define CM_WARPS 8u
#define CM_WGN (CM_WARPS / CM_WGM)
#define CM_WTM (CM_BM / CM_WGM) // a warp's rows of the block
#define CM_WTN (CM_BN / CM_WGN) // a warp's columns of the block
#define CM_FM (CM_WTM / 16u)
#define CM_FN (CM_WTN / 8u)
#define CM_G (CM_BK / 8u)  // uvec4 (8 halfs) per tile row
#define CM_LDV (CM_G + 1u) // tile row stride in uvec4: + 16 bytes

shared uvec4 cmA[CM_STAGES * CM_BM * CM_LDV]; // [stage][row i][k]
shared uvec4 cmB[CM_STAGES * CM_BN * CM_LDV]; // [stage][column j][k]

#ifndef CM_EMULATE
#define CM_FRAG_A fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define CM_FRAG_B fcoopmatNV<16, gl_ScopeSubgroup, 16, 8>
#define CM_ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 8>
#define CM_READY (gl_NumSubgroups == CM_WARPS) // else (subgroups of another width) the scalar tiles
#define CM_WARP gl_SubgroupID
#define CM_LANE gl_SubgroupInvocationID
#define CM_ZERO(c) c = CM_ACC(0.0)
#define CM_LOAD_A(f, off) coopMatLoadNV(f, cmA, off, CM_LDV, false)
#define CM_LOAD_B(f, off) coopMatLoadNV(f, cmB, off, CM_LDV, true)
#define CM_MULADD(a, b, c) c = coopMatMulAddNV(a, b, c)
#define CM_STORE_SM(c, off) coopMatStoreNV(c, sm, off, 8u, false)
#if defined(GROUP) && defined(CM_DIRECT)
#define CM_STORE_OUT(c, off, stride) cmStoreGroup(c, off, stride)
#else
#define CM_STORE_OUT(c, off, stride) coopMatStoreNV(c, BUF_OUT, off, stride, false)
#endif
#define CM_WARP_BARRIER() { subgroupMemoryBarrierShared(); subgroupBarrier(); }
#else
struct CmFrag { uint base; }; // the fragment's first uvec4 in cmA / cmB
struct CmAcc { float v[4]; }; // lane l: elements l, l + 32, l + 64, l + 96 of the row-major 16 x 8
#define CM_FRAG_A CmFrag
#define CM_FRAG_B CmFrag
#define CM_ACC CmAcc
#define CM_READY true
#define CM_WARP (gl_LocalInvocationIndex / 32u)
#define CM_LANE (gl_LocalInvocationIndex % 32u)
#define CM_ZERO(c) c.v = float[4](0.0, 0.0, 0.0, 0.0)
#define CM_LOAD_A(f, off) f.base = off
#define CM_LOAD_B(f, off) f.base = off
#define CM_MULADD(a, b, c) cmEmulatedMulAdd(a, b, c)
#define CM_STORE_SM(c, off) [[unroll]] for (uint s_ = 0u; s_ < 4u; ++s_) sm[(off) + CM_LANE + 32u * s_] = c.v[s_]
#define CM_STORE_OUT(c, off, stride) [[unroll]] for (uint s_ = 0u; s_ < 4u; ++s_) { \
    uint e_ = CM_LANE + 32u * s_; STORE_OUT((off) + (e_ / 8u) * (stride) + e_ % 8u, c.v[s_]); }
#define CM_WARP_BARRIER() barrier() // a warp is not a subgroup here; every call is in uniform control flow

float cmHalf(uvec4 q, uint h) { return unpackHalf2x16(q[h >> 1u])[h & 1u]; }
// c += a (16 x 16, rows of cmA) x b (16 x 8, columns of cmB), f16 products summed in f32.
void cmEmulatedMulAdd(CmFrag a, CmFrag b, inout CmAcc c) {
  [[unroll]] for (uint s = 0u; s < 4u; ++s) {
    uint e = CM_LANE + 32u * s, r = e / 8u, col = e % 8u;
    float sum = c.v[s];
    for (uint k = 0u; k < 16u; ++k)
      sum += cmHalf(cmA[a.base + r * CM_LDV + k / 8u], k % 8u) * cmHalf(cmB[b.base + col * CM_LDV + k / 8u], k % 8u);
    c.v[s] = sum;
  }
}
#endif

#if defined(GROUP) && defined(CM_DIRECT) && !defined(CM_EMULATE)
// Segment gSeg's accumulator c at element `off` of its result (row stride `stride`). The emulated path needs
// none of this: its CM_STORE_OUT stores element by element through STORE_OUT (matmul_group.glsl's storeOutSeg).
void cmStoreGroup(CM_ACC c, uint off, uint stride) {
#ifdef SILU_MUL
  if (gSeg == 1u) { // the gate pass's accumulator, as it stored it (the same type, so the same element order)
    CM_ACC g;
    coopMatLoadNV(g, BUF_Y, off, stride, false);
    for (int e = 0; e < c.length(); ++e) {
      float gv = g[e];
      c[e] = gv * sigmoidF(gv) * c[e];
    }
  }
  coopMatStoreNV(c, BUF_Y, off, stride, false);
#else
#if GROUP_SEGMENTS > 3
  if (gSeg == 3u) { coopMatStoreNV(c, BUF_Y3, off, stride, false); return; }
#endif
#if GROUP_SEGMENTS > 2
  if (gSeg == 2u) { coopMatStoreNV(c, BUF_Y2, off, stride, false); return; }
#endif
#if GROUP_SEGMENTS > 1
  if (gSeg == 1u) { coopMatStoreNV(c, BUF_Y1, off, stride, false); return; }
#endif
  coopMatStoreNV(c, BUF_Y0, off, stride, false);
#endif
}
#endif

// 8 consecutive k of a row as loaded: raw.x (8 f16 / bf16 of 16-bit storage with vector loads) or the bits of
// 8 f32 in raw.x, raw.y; zeros past M, N or K.
struct CmRaw { uvec4 x, y; };
uvec4 packHalf8(vec4 lo, vec4 hi) {
  return uvec4(packHalf2x16(lo.xy), packHalf2x16(lo.zw), packHalf2x16(hi.xy), packHalf2x16(hi.zw));
}
#if VEC_WIDTH == 8
uvec4 cmBf16ToHalf8(uvec4 u) {
  return packHalf8(vec4(bf16x2(u.x), bf16x2(u.y)), vec4(bf16x2(u.z), bf16x2(u.w)));
}
#endif
#if VEC_WIDTH == 8 && defined(A_IS_F16) && !defined(NORM)
#define CM_PACK_A(r) r.x
#elif VEC_WIDTH == 8 && defined(A_IS_BF16) && !defined(NORM)
#define CM_PACK_A(r) cmBf16ToHalf8(r.x)
#else
#define CM_PACK_A(r) packHalf8(uintBitsToFloat(r.x), uintBitsToFloat(r.y))
#endif
#if VEC_WIDTH == 8 && defined(B_IS_F16)
#define CM_PACK_B(r) r.x
#elif VEC_WIDTH == 8 && defined(B_IS_BF16)
#define CM_PACK_B(r) cmBf16ToHalf8(r.x)
#else
#define CM_PACK_B(r) packHalf8(uintBitsToFloat(r.x), uintBitsToFloat(r.y))
#endif

// Row `row` of A (B == false) or B (B == true), k = kk .. kk + 7, from element `at` (= row start + kk).
#if VEC_WIDTH == 8
#if defined(A_IS_F16) || defined(A_IS_BF16)
#define CM_VEC_A(at) CmRaw(va.d[(at) / 8u], uvec4(0u))
#else
#define CM_VEC_A(at) CmRaw(floatBitsToUint(va.d[(at) / 4u]), floatBitsToUint(va.d[(at) / 4u + 1u]))
#endif
#if defined(B_IS_F16) || defined(B_IS_BF16)
#define CM_VEC_B(at) CmRaw(VIEW_B((at) / 8u), uvec4(0u))
#else
#define CM_VEC_B(at) CmRaw(floatBitsToUint(VIEW_B((at) / 4u)), floatBitsToUint(VIEW_B((at) / 4u + 1u)))
#endif
#elif VEC_WIDTH == 4 // both f32, K % 4 == 0: the second vec4 is past K when kk + 4 == K
#define CM_VEC_A(at) CmRaw(floatBitsToUint(va.d[(at) / 4u]), kk + 4u < K ? floatBitsToUint(va.d[(at) / 4u + 1u]) : uvec4(0u))
#define CM_VEC_B(at) CmRaw(floatBitsToUint(VIEW_B((at) / 4u)), kk + 4u < K ? floatBitsToUint(VIEW_B((at) / 4u + 1u)) : uvec4(0u))
#endif
CmRaw cmLoadA(uint A0, uint i, uint kk) {
  const uint M = MM_M, K = MM_K;
  if (i >= M || kk >= K) return CmRaw(uvec4(0u), uvec4(0u));
#ifdef NORM
  // The normed row, as the bits of 8 f32 (CM_PACK_A converts them): A x its row's 1/rms x the norm weight.
  vec4 lo, hi;
#if VEC_WIDTH > 0 && !defined(A_IS_F16) && !defined(A_IS_BF16)
  CmRaw raw = CM_VEC_A(A0 + i * K + kk);
  lo = uintBitsToFloat(raw.x);
  hi = uintBitsToFloat(raw.y);
#else
  [[unroll]] for (uint c = 0u; c < 4u; ++c) {
    lo[c] = kk + c < K ? LOAD_A(A0 + i * K + kk + c) : 0.0;
    hi[c] = kk + 4u + c < K ? LOAD_A(A0 + i * K + kk + 4u + c) : 0.0;
  }
#endif
  float scale = gRs[i - gRsRow0];
  return CmRaw(floatBitsToUint(lo * scale * normW4(kk)), floatBitsToUint(hi * scale * normW4(kk + 4u)));
#elif VEC_WIDTH > 0
  return CM_VEC_A(A0 + i * K + kk);
#else
  float v[8];
  [[unroll]] for (uint c = 0u; c < 8u; ++c) v[c] = kk + c < K ? LOAD_A(A0 + i * K + kk + c) : 0.0;
  return CmRaw(floatBitsToUint(vec4(v[0], v[1], v[2], v[3])), floatBitsToUint(vec4(v[4], v[5], v[6], v[7])));
#endif
}
CmRaw cmLoadB(uint B0, uint j, uint kk) {
  const uint N = MM_N, K = MM_K;
  if (j >= N || kk >= K) return CmRaw(uvec4(0u), uvec4(0u));
#if defined(QUANT_B) // a q8_0 / q4_0 weight (quant.glsl; K % 32 == 0): dequantized, 8 from two words
  vec4 lo, hi;
  quant8(B0 + j * K + kk, lo, hi);
  return CmRaw(floatBitsToUint(lo), floatBitsToUint(hi));
#elif VEC_WIDTH > 0
  return CM_VEC_B(B0 + j * K + kk);
#else
  float v[8];
  [[unroll]] for (uint c = 0u; c < 8u; ++c) v[c] = kk + c < K ? LOAD_B(B0 + j * K + kk + c) : 0.0;
  return CmRaw(floatBitsToUint(vec4(v[0], v[1], v[2], v[3])), floatBitsToUint(vec4(v[4], v[5], v[6], v[7])));
#endif
}

// The CM_BK-deep slices at k0 of A's rows i0.. and B's rows j0.. (CM_G 8-element groups per row), in
// registers: invocation t holds groups t, t + WG_X, ... (CM_PER_A of A, CM_PER_B of B).
#define CM_PER_A ((CM_BM * CM_G + WG_X - 1u) / WG_X)
#define CM_PER_B ((CM_BN * CM_G + WG_X - 1u) / WG_X)
void cmFetch(uint A0, uint B0, uint i0, uint j0, uint k0, out CmRaw ra[CM_PER_A], out CmRaw rb[CM_PER_B]) {
  [[unroll]] for (uint q = 0u; q < CM_PER_A; ++q) {
    uint e = gl_LocalInvocationID.x + q * WG_X;
    ra[q] = e < CM_BM * CM_G ? cmLoadA(A0, i0 + e / CM_G, k0 + (e % CM_G) * 8u) : CmRaw(uvec4(0u), uvec4(0u));
  }
  [[unroll]] for (uint q = 0u; q < CM_PER_B; ++q) {
    uint e = gl_LocalInvocationID.x + q * WG_X;
    rb[q] = e < CM_BN * CM_G ? cmLoadB(B0, j0 + e / CM_G, k0 + (e % CM_G) * 8u) : CmRaw(uvec4(0u), uvec4(0u));
  }
}
void cmStoreTiles(CmRaw ra[CM_PER_A], CmRaw rb[CM_PER_B], uint stage) {
  [[unroll]] for (uint q = 0u; q < CM_PER_A; ++q) {
    uint e = gl_LocalInvocationID.x + q * WG_X;
    if (e < CM_BM * CM_G) cmA[(stage * CM_BM + e / CM_G) * CM_LDV + e % CM_G] = CM_PACK_A(ra[q]);
  }
  [[unroll]] for (uint q = 0u; q < CM_PER_B; ++q) {
    uint e = gl_LocalInvocationID.x + q * WG_X;
    if (e < CM_BN * CM_G) cmB[(stage * CM_BN + e / CM_G) * CM_LDV + e % CM_G] = CM_PACK_B(rb[q]);
  }
}

// This warp's accumulators of the block at (i0, j0): straight to OUT where wholly inside it (CM_DIRECT), else
// through the warp's staging area of sm. The loop and the barriers are uniform over the workgroup.
void cmStoreBlock(uint bz, uint i0, uint j0, uint wm, uint wn, CM_ACC acc[CM_FM][CM_FN]) {
  const uint M = MM_M, N = MM_N;
  const uint warp = CM_WARP, lane = CM_LANE;
  [[unroll]] for (uint r = 0u; r < CM_FM; ++r)
    [[unroll]] for (uint c = 0u; c < CM_FN; ++c) {
      uint i = i0 + wm * CM_WTM + r * 16u, j = j0 + wn * CM_WTN + c * 8u;
#ifdef CM_DIRECT
      bool direct = i + 16u <= M && j + 8u <= N;
      if (direct) {
        CM_STORE_OUT(acc[r][c], (bz * M + i) * N + j, N);
      } else {
        CM_STORE_SM(acc[r][c], warp * 128u);
      }
#else
      const bool direct = false;
      CM_STORE_SM(acc[r][c], warp * 128u);
#endif
      CM_WARP_BARRIER();
      if (!direct)
        for (uint e = lane; e < 128u; e += 32u)
          if (i + e / 8u < M && j + e % 8u < N) STORE_OUT((bz * M + i + e / 8u) * N + j + e % 8u, sm[warp * 128u + e]);
      CM_WARP_BARRIER();
    }
}

// The block of OUT at (i0, j0). `stage` is kept across blocks: a block's first slice goes where its
// predecessor's last one was not.
void coopBlock(uint bz, uint A0, uint B0, uint i0, uint j0, inout uint stage) {
  const uint K = MM_K;
  const uint warp = CM_WARP, wm = warp / CM_WGN, wn = warp % CM_WGN;
#ifdef NORM
  rowScales(A0, i0, CM_BM);
#endif
  CM_ACC acc[CM_FM][CM_FN];
  [[unroll]] for (uint r = 0u; r < CM_FM; ++r)
    [[unroll]] for (uint c = 0u; c < CM_FN; ++c) CM_ZERO(acc[r][c]);
  CmRaw ra[CM_PER_A], rb[CM_PER_B];
  cmFetch(A0, B0, i0, j0, 0u, ra, rb);
  for (uint k0 = 0u; k0 < K; k0 += CM_BK) {
    cmStoreTiles(ra, rb, stage);
    barrier();
    if (k0 + CM_BK < K) cmFetch(A0, B0, i0, j0, k0 + CM_BK, ra, rb);
    const uint rowA = stage * CM_BM + wm * CM_WTM, rowB = stage * CM_BN + wn * CM_WTN;
    [[unroll]] for (uint kq = 0u; kq < CM_G; kq += 2u) { // 16 k per step: 2 uvec4 of a row
      CM_FRAG_A a[CM_FM];
      CM_FRAG_B b[CM_FN];
      [[unroll]] for (uint r = 0u; r < CM_FM; ++r) CM_LOAD_A(a[r], (rowA + r * 16u) * CM_LDV + kq);
      [[unroll]] for (uint c = 0u; c < CM_FN; ++c) CM_LOAD_B(b[c], (rowB + c * 8u) * CM_LDV + kq);
      [[unroll]] for (uint r = 0u; r < CM_FM; ++r)
        [[unroll]] for (uint c = 0u; c < CM_FN; ++c) CM_MULADD(a[r], b[c], acc[r][c]);
    }
    // One stage: the slice must be read by every warp before the next is stored over it. Two: the next
    // slice goes to the other buffer, whose readers all passed this slice's barrier.
    if (CM_STAGES == 1u) barrier();
    stage = (stage + 1u) % CM_STAGES;
  }
  cmStoreBlock(bz, i0, j0, wm, wn, acc);
}

// Block `tile` of a column-major order: the workgroups in flight together share B's columns (the weight, read
// from memory about once) and walk A's rows (the activations, a few MiB that stay in L2).
void coopTile(uint bz, uint A0, uint B0, uint tile, inout uint stage) {
  const uint tilesM = (MM_M + CM_BM - 1u) / CM_BM;
  coopBlock(bz, A0, B0, (tile % tilesM) * CM_BM, (tile / tilesM) * CM_BN, stage);
}

void coopTiles(uint bz, uint A0, uint B0) {
  uint tileCount = ((MM_M + CM_BM - 1u) / CM_BM) * ((MM_N + CM_BN - 1u) / CM_BN), stage = 0u;
  for (uint tile = gl_WorkGroupID.x; tile < tileCount; tile += gl_NumWorkGroups.x)
    coopTile(bz, A0, B0, tile, stage);
}
