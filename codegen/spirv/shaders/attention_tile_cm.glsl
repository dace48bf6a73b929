// attention.comp's path for many query rows on cooperative matrices (ATT_TILED_CM; f16 x f16 -> f32 on the
// tensor cores): one workgroup per block of ACM_BR query rows of one batch row and (kv head, head group) pair,
// as attention_tile.glsl: ACM_M tile rows (row r, head g at tile row m = r * HPW + g; the rows from
// ACM_BR * HPW up to ACM_M, a multiple of 16, are padding) that all read the same K / V blocks.
//
// Per block of ACM_BC keys: K and V are staged in shared memory as f16; S = Q K^T with cooperative matrices
// (Q staged once per tile as f16) into shared memory as f32; each tile row's online softmax (the mask, scale,
// softcap and bias as in visit(); running max and sum in registers) writes P = exp(S - max) as f16; P V with
// cooperative matrices into shared memory (f32); each invocation rescales its outputs and adds P V. Causal blocks
// past the tile's last row are never read (the keys visited are those some row of the tile can see).
//
// Work split: the WG_X / 32 warps (subgroups of 32) as ACM_M / 16 row blocks x ACM_WPR warps each; a warp owns
// the 16 x 8 fragments of its row block at columns wc, wc + WPR, ... (S: keys, P V: value dims). The softmax and
// the outputs: ACM_TPR = WG_X / ACM_M invocations per tile row (the row fixed per invocation, so its statistics
// live in registers): ACM_TPS of them take pairs of keys q, q + TPS, ... (ACM_PPT each), and all of them output
// dims q, q + TPR, ... (ACM_ODPT each).
//
// Shared memory: acmH (f16, uvec4 = 8 halfs; rows padded by 16 bytes so the rows of a fragment load fall in
// different banks): Q [M][DP], K [BC][DP], V [BC][DVP], P [M][BC]; smem (attention.comp's floats): S, then
// P V, [M][ACM_SW], and [M][TPS] partial maxima / sums.
//
// CM_EMULATE: the same tiling, staging and indexing with the fragment operations in plain GLSL (a fragment of
// A or B is where it lies in acmH, an accumulator 4 floats per lane of a 32-invocation warp), so lavapipe, which
// has no cooperative matrices, tests everything but the intrinsics against the interpreter.
const uint ACM_NW = WG_X / 32u;
const uint AM = ACM_M, ABC = ACM_BC, ARB = ACM_M / 16u, AWPR = ACM_WPR;
const uint AQS = ACM_DP / 8u + 1u, AVS = ACM_DVP / 8u + 1u, APS = ACM_BC / 8u + 1u; // row strides in uvec4
const uint AH_Q = 0u, AH_K = AM * AQS, AH_V = AH_K + ABC * AQS, AH_P = AH_V + ABC * AVS, AH_END = AH_P + AM * APS;
const uint AS_RED = AM * ACM_SW; // smem: S / P V at 0, the partial maxima / sums after them
shared uvec4 acmH[AH_END];

#ifndef CM_EMULATE
#define ACM_A fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define ACM_B fcoopmatNV<16, gl_ScopeSubgroup, 16, 8>
#define ACM_C fcoopmatNV<32, gl_ScopeSubgroup, 16, 8>
#define ACM_READY (gl_NumSubgroups == ACM_NW) // else (subgroups of another width) the one-row path
#define ACM_WARP gl_SubgroupID
#define ACM_ZERO(c) c = ACM_C(0.0)
#define ACM_LOAD_A(f, off, stride) coopMatLoadNV(f, acmH, off, stride, false)
#define ACM_LOAD_B(f, off, stride) coopMatLoadNV(f, acmH, off, stride, false)  // B [k][n] rows (V)
#define ACM_LOAD_BT(f, off, stride) coopMatLoadNV(f, acmH, off, stride, true)  // B^T [n][k] rows (K)
#define ACM_MULADD(a, b, c) c = coopMatMulAddNV(a, b, c)
#define ACM_STORE(c, off, stride) coopMatStoreNV(c, smem, off, stride, false)
#else
struct AcmFrag { uint base, stride; bool colMajor; }; // the fragment's first uvec4 in acmH, its row stride
struct AcmAcc { float v[4]; };                          // lane l: elements l, l + 32, l + 64, l + 96 of 16 x 8
#define ACM_A AcmFrag
#define ACM_B AcmFrag
#define ACM_C AcmAcc
#define ACM_READY true
#define ACM_WARP (gl_LocalInvocationIndex / 32u)
#define ACM_ZERO(c) c.v = float[4](0.0, 0.0, 0.0, 0.0)
#define ACM_LOAD_A(f, off, stride) f = AcmFrag(off, stride, false)
#define ACM_LOAD_B(f, off, stride) f = AcmFrag(off, stride, false)
#define ACM_LOAD_BT(f, off, stride) f = AcmFrag(off, stride, true)
#define ACM_MULADD(a, b, c) acmEmulatedMulAdd(a, b, c)
#define ACM_STORE(c, off, stride) [[unroll]] for (uint s_ = 0u; s_ < 4u; ++s_) { \
    uint e_ = gl_LocalInvocationIndex % 32u + 32u * s_; smem[(off) + (e_ / 8u) * (stride) + e_ % 8u] = c.v[s_]; }

float acmHalf(uint vec, uint h) { return unpackHalf2x16(acmH[vec][h >> 1u])[h & 1u]; }
// c += a (16 x 16, row-major) x b (16 x 8: [k][n] rows, or colMajor [n][k] rows), f16 products summed in f32.
void acmEmulatedMulAdd(AcmFrag a, AcmFrag b, inout AcmAcc c) {
  [[unroll]] for (uint s = 0u; s < 4u; ++s) {
    uint e = gl_LocalInvocationIndex % 32u + 32u * s, r = e / 8u, n = e % 8u;
    float sum = c.v[s];
    for (uint k = 0u; k < 16u; ++k) {
      float bv = b.colMajor ? acmHalf(b.base + n * b.stride + k / 8u, k % 8u) : acmHalf(b.base + k * b.stride, n);
      sum += acmHalf(a.base + r * a.stride + k / 8u, k % 8u) * bv;
    }
    c.v[s] = sum;
  }
}
#endif

// Tiles when the step has enough query rows to share the K / V blocks (never with a split over the KV length).
bool useCmTiles() {
#ifdef ATT_SPLIT_KV
  if (splitKv()) return false;
#endif
  return ATT_S >= ATT_TILE_MIN && ACM_READY;
}

uvec4 acmPack8(float v[8]) {
  return uvec4(packHalf2x16(vec2(v[0], v[1])), packHalf2x16(vec2(v[2], v[3])), packHalf2x16(vec2(v[4], v[5])),
               packHalf2x16(vec2(v[6], v[7])));
}

// Keys [j0, j0 + BC) of K and V (the head's rows from K0 / V0) as 8-element groups, ACM_KVPT per invocation:
// loaded into registers a block ahead (the loads are in flight while the block before is computed), then stored
// to acmH as f16. Keys past jEnd and dims past D / DV read 0.
const uint ACM_GK = ACM_DP / 8u, ACM_GV = ACM_DVP / 8u, ACM_KVPT = (ABC * (ACM_GK + ACM_GV) + WG_X - 1u) / WG_X;
void acmFetchKv(uint K0, uint V0, uint j0, uint jEnd, out float raw[ACM_KVPT][8]) {
  [[unroll]] for (uint r = 0u; r < ACM_KVPT; ++r) {
    uint x = gl_LocalInvocationID.x + r * WG_X;
    bool isK = x < ABC * ACM_GK;
    uint y = isK ? x : x - ABC * ACM_GK, groups = isK ? ACM_GK : ACM_GV, key = y / groups, d0 = (y % groups) * 8u;
    uint j = j0 + key;
    bool inside = x < ABC * (ACM_GK + ACM_GV) && j < jEnd;
    [[unroll]] for (uint c = 0u; c < 8u; ++c) {
      uint d = d0 + c;
      raw[r][c] = 0.0;
      if (inside && isK && d < ATT_D) raw[r][c] = LOAD_K(K0 + j * ATT_D + d);
      if (inside && !isK && d < ATT_DV) raw[r][c] = LOAD_V(V0 + j * ATT_DV + d);
    }
  }
}
void acmStoreKv(float raw[ACM_KVPT][8]) {
  [[unroll]] for (uint r = 0u; r < ACM_KVPT; ++r) {
    uint x = gl_LocalInvocationID.x + r * WG_X;
    if (x >= ABC * (ACM_GK + ACM_GV)) continue;
    bool isK = x < ABC * ACM_GK;
    uint y = isK ? x : x - ABC * ACM_GK, groups = isK ? ACM_GK : ACM_GV, key = y / groups, g = y % groups;
    acmH[isK ? AH_K + key * AQS + g : AH_V + key * AVS + g] = acmPack8(raw[r]);
  }
}

// S = Q K^T of this warp's fragments (row block rb, key columns wc, wc + WPR, ...) into smem [M][SW].
void acmScores(uint rb, uint wc) {
  const uint CB = ABC / 8u;
  ACM_C acc[ACM_SCPW];
  [[unroll]] for (uint x = 0u; x < ACM_SCPW; ++x) ACM_ZERO(acc[x]);
  [[unroll]] for (uint kd = 0u; kd < ACM_DP / 16u; ++kd) {
    ACM_A a;
    ACM_LOAD_A(a, AH_Q + rb * 16u * AQS + 2u * kd, AQS);
    [[unroll]] for (uint x = 0u; x < ACM_SCPW; ++x) {
      uint cb = wc + AWPR * x;
      if (cb < CB) {
        ACM_B b;
        ACM_LOAD_BT(b, AH_K + cb * 8u * AQS + 2u * kd, AQS);
        ACM_MULADD(a, b, acc[x]);
      }
    }
  }
  [[unroll]] for (uint x = 0u; x < ACM_SCPW; ++x)
    if (wc + AWPR * x < CB) ACM_STORE(acc[x], rb * 16u * ACM_SW + (wc + AWPR * x) * 8u, ACM_SW);
}

// P V of this warp's fragments (row block rb, value columns wc, wc + WPR, ...) into smem [M][SW].
void acmValues(uint rb, uint wc) {
  const uint CB = ACM_DVP / 8u;
  ACM_C acc[ACM_VCPW];
  [[unroll]] for (uint x = 0u; x < ACM_VCPW; ++x) ACM_ZERO(acc[x]);
  [[unroll]] for (uint kk = 0u; kk < ABC / 16u; ++kk) {
    ACM_A a;
    ACM_LOAD_A(a, AH_P + rb * 16u * APS + 2u * kk, APS);
    [[unroll]] for (uint x = 0u; x < ACM_VCPW; ++x) {
      uint cb = wc + AWPR * x;
      if (cb < CB) {
        ACM_B b;
        ACM_LOAD_B(b, AH_V + kk * 16u * AVS + cb, AVS);
        ACM_MULADD(a, b, acc[x]);
      }
    }
  }
  [[unroll]] for (uint x = 0u; x < ACM_VCPW; ++x)
    if (wc + AWPR * x < CB) ACM_STORE(acc[x], rb * 16u * ACM_SW + (wc + AWPR * x) * 8u, ACM_SW);
}

// Tile gx of batch row gz, (kv head, head group) pair gy.
void visitTileCm(uint gz, uint gy, uint gx) {
  const uint NHG = ATT_GROUP / HPW, S = ATT_S, TPR = ACM_TPR, TPS = ACM_TPS, PPT = ACM_PPT, ODPT = ACM_ODPT;
  uint t = gl_LocalInvocationID.x, warp = ACM_WARP, rb = warp % ARB, wc = warp / ARB;
  uint bq = gz, hk = gy / NHG, hq0 = hk * ATT_GROUP + (gy % NHG) * HPW, i0 = gx * ACM_BR;
  uint K0 = (bq * ATT_HKV + hk) * ATT_K_ROWS * ATT_D, V0 = (bq * ATT_HKV + hk) * ATT_V_ROWS * ATT_DV;
  // The keys any row of the tile can see: the first row's start (windows move forward) to the last row's end.
  int position;
  uint jBeg, jEnd, unusedBeg, unusedEnd;
  keyRange(i0, position, jBeg, unusedEnd);
  keyRange(min(i0 + ACM_BR, S) - 1u, position, unusedBeg, jEnd);
  // This invocation's tile row (softmax, outputs) and its own key range.
  uint m = t / TPR, q = t % TPR, i = i0 + m / HPW, hq = hq0 + m % HPW;
  bool rowValid = m < ACM_BR * HPW && i < S;
  uint rowBeg, rowEnd;
  keyRange(min(i, S - 1u), position, rowBeg, rowEnd);
  for (uint x = t; x < AM * (ACM_DP / 8u); x += WG_X) {
    uint r = x / (ACM_DP / 8u), d0 = (x % (ACM_DP / 8u)) * 8u, ri = i0 + r / HPW;
    uint base = ((bq * ATT_HQ + hq0 + r % HPW) * S + ri) * ATT_D;
    float v[8];
    [[unroll]] for (uint c = 0u; c < 8u; ++c)
      v[c] = (r < ACM_BR * HPW && ri < S && d0 + c < ATT_D) ? LOAD_Q(base + d0 + c) : 0.0;
    acmH[AH_Q + r * AQS + d0 / 8u] = acmPack8(v);
  }
  float mRun = negInf(), lPart = 0.0, o[ODPT];
  [[unroll]] for (uint x = 0u; x < ODPT; ++x) o[x] = 0.0;
  float raw[ACM_KVPT][8];
  acmFetchKv(K0, V0, jBeg, jEnd, raw);
  for (uint j0 = jBeg; j0 < jEnd; j0 += ABC) {
    uint nk = min(ABC, jEnd - j0);
    acmStoreKv(raw);
    barrier(); // K, V (and the first time Q) staged
    if (j0 + ABC < jEnd) acmFetchKv(K0, V0, j0 + ABC, jEnd, raw); // the next block's, in flight meanwhile
    acmScores(rb, wc);
    barrier();
    // This row's scores (pairs of keys) and their maximum: -inf for a hidden key.
    float s[2u * PPT], mPart = negInf();
    [[unroll]] for (uint x = 0u; x < 2u * PPT; ++x) {
      uint key = 2u * (q + TPS * (x / 2u)) + x % 2u, j = j0 + key;
      bool visible = q < TPS && rowValid && key < nk && keyVisible(j, rowEnd, position, bq);
      s[x] = visible ? scaledScore(smem[m * ACM_SW + key], bq, hq, i, j) : negInf();
      mPart = max(mPart, s[x]);
    }
    if (q < TPS) smem[AS_RED + m * TPS + q] = mPart;
    barrier();
    float mb = mRun;
    [[unroll]] for (uint x = 0u; x < TPS; ++x) mb = max(mb, smem[AS_RED + m * TPS + x]);
    bool none = isinf(mb) && mb < 0.0;
    float alpha = none ? 1.0 : exp(mRun - mb); // mRun -inf: 0 (nothing accumulated yet)
    mRun = mb;
    float sum = 0.0;
    if (q < TPS)
      [[unroll]] for (uint x = 0u; x < PPT; ++x) {
        float p0 = (none || isinf(s[2u * x])) ? 0.0 : exp(s[2u * x] - mb);
        float p1 = (none || isinf(s[2u * x + 1u])) ? 0.0 : exp(s[2u * x + 1u] - mb);
        sum += p0 + p1;
        uint pair = q + TPS * x; // keys 2 pair, 2 pair + 1: half 2 pair % 8 of uvec4 pair / 4
        acmH[AH_P + m * APS + pair / 4u][pair % 4u] = packHalf2x16(vec2(p0, p1));
      }
    lPart = lPart * alpha + sum;
    barrier(); // P written (and the partial maxima read)
    acmValues(rb, wc);
    barrier();
    [[unroll]] for (uint x = 0u; x < ODPT; ++x) {
      uint d = q + TPR * x;
      o[x] = o[x] * alpha + (d < ACM_DVP ? smem[m * ACM_SW + d] : 0.0);
    }
  }
  if (q < TPS) smem[AS_RED + m * TPS + q] = lPart;
  barrier();
  float l = 0.0;
  [[unroll]] for (uint x = 0u; x < TPS; ++x) l += smem[AS_RED + m * TPS + x];
  if (rowValid) {
    uint out0 = ((bq * ATT_HQ + hq) * S + i) * ATT_DV;
    [[unroll]] for (uint x = 0u; x < ODPT; ++x) {
      uint d = q + TPR * x;
      if (d < ATT_DV) STORE_OUT(out0 + d, l > 0.0 ? o[x] / l : 0.0);
    }
  }
  barrier(); // the next tile overwrites Q and the partial sums
}
