// attention(q [b, ATT_HQ, S, ATT_D], k [b, ATT_HKV, T, ATT_D], v [b, ATT_HKV, T, ATT_DV]) -> [b, ATT_HQ, S, ATT_DV]:
// one workgroup per (batch, query row, ATT_HPW query heads of one KV head) with an online softmax over blocks
// of ATT_NB keys, the mask computed here: query i sits at position T - S + i; CAUSAL hides later keys,
// WINDOW (causal only) keys at WINDOW or more positions back, PAD the keys whose key_padding_mask is 0; BIAS
// adds bias[BIAS_INDEX] (broadcast; over bq, hq, i, j) to the scaled score, SOFTCAP caps it as
// SOFTCAP * tanh(score / SOFTCAP). GQA: query head hq reads kv head hq / ATT_GROUP, and the ATT_HPW heads of a
// workgroup share it, so each K / V row is read once for all of them.
//
// The grid: x the query rows (with ATT_SPLIT_KV and at most ATT_SPLIT_ROWS of them: ATT_NCMAX chunks of the
// keys x rows, chunk-major, attention_range.glsl; the generator launches T / ATT_NB + S workgroups in x, so a
// decode step has one per chunk of its keys), y the (kv head, head group) pairs, z the batch; every query row
// (chunk) is its own workgroup, whatever the batch (in flight: S x HQ / HPW x b, times the chunks).
//
// Per block of NB keys: L = WG / NB invocations per key each take a strided share of d and accumulate the
// HPW partial dots (the K element read once, the HPW query rows from shared memory); the HPW x NB scores are
// summed from those partials in shared memory. Then the HPW x DV outputs are spread as ATT_OP slots (d of
// head g) over the invocations, with P = WG / OP parts each taking every P-th key of the block: each
// (part, slot) keeps its own running max, sum and accumulator (no shared max, no rescale barrier), and at
// the end the parts are merged by their maxima in shared memory (ATT_SPLIT_PARTS: P > 1).
// ATT_VSTAGE (when shared memory has room): the block's NB x DV values are loaded into registers before the
// dots (every load of the block in flight at once, beside the keys') and staged in shared memory with the
// scores; the value loop then reads shared memory instead of one dependent global load per key and slot,
// which left a decode workgroup waiting ~NB x DPT memory latencies per block (the same arithmetic either way).
// ATT_COMBINE_LAST (with ATT_SPLIT_KV): no second pass; the chunks of a row count themselves done on an atomic
// counter per (batch, head group, row) in COUNT, and the last to finish merges the row's partials (the
// "last block" pattern: partials stored, memoryBarrierBuffer, then the count; the buffers are coherent). That
// workgroup sets the counter back to 0, so a recorded dispatch replays with every counter at 0 (the runtime
// zeroes them once, with the arena).
#include "math.glsl"
#include "attention_range.glsl"

const uint HPW = ATT_HPW;
// One shared array for both paths (visit: the query rows, the block's scores, the partials; attention_tile.glsl:
// its tiles; attention_tile_cm.glsl: its f32 scores / P V and row partials), so a kernel with both needs only
// the larger.
shared float smem[ATT_SMEM];
#define QS_AT(x) smem[(x)]
#define SC_AT(x) smem[HPW * ATT_D + (x)]
#define RED_AT(x) smem[HPW * ATT_D + HPW * ATT_NB + (x)]
#ifdef ATT_VSTAGE
#define VS_AT(x) smem[ATT_VSTAGE + (x)]
#define VALUE(key, d) VS_AT((key) * ATT_DV + (d))
#else
#define VALUE(key, d) LOAD_V(V0 + (j0 + (key)) * ATT_DV + (d))
#endif

float negInf() { return uintBitsToFloat(0xff800000u); }

// Whether key j (of [0, jEnd)) is visible to the query row at `position` of batch row bq.
bool keyVisible(uint j, uint jEnd, int position, uint bq) {
  return j < jEnd
#ifdef CAUSAL
         && int(j) <= position
#endif
#ifdef WINDOW
         && position - int(j) < WINDOW
#endif
#if defined(PAD) && defined(PAD_IS_FLOAT)
         && LOAD_PAD(bq * ATT_T + j) != 0.0
#elif defined(PAD)
         && LOAD_PAD(bq * ATT_T + j) != 0
#endif
      ;
}

// The score of a visible key j for query head hq, row i: scaled, soft-capped, biased.
float scaledScore(float dot, uint bq, uint hq, uint i, uint j) {
  float score = ATT_SCALE * dot;
#ifdef SOFTCAP
  score = SOFTCAP * tanhAccurate(score / SOFTCAP);
#endif
#ifdef BIAS
  score += LOAD_BIAS(BIAS_INDEX);
#endif
  return score;
}

// Output d of query head hq, row i: the normalized result, or (one chunk of several) the chunk's partial
// (max and sum stored once per head, by its d = 0).
void finish(uint bq, uint hq, uint i, uint d, uint c, uint nc, float m, float l, float acc) {
#ifdef ATT_SPLIT_KV
  if (nc > 1u) {
    uint base = partialBase(bq, hq, i, c);
    if (d == 0u) {
      STORE_PART(base, m);
      STORE_PART(base + 1u, l);
    }
    STORE_PART(base + 2u + d, acc);
    return;
  }
#endif
  STORE_OUT(((bq * ATT_HQ + hq) * ATT_S + i) * ATT_DV + d, l > 0.0 ? acc / l : 0.0);
}

#ifdef ATT_COMBINE_LAST
shared int lastChunk; // whether this workgroup finished its row's chunks last

// After chunk c's partials of the HPW heads of query row i (head-group pair hkg, batch row bq): when it is
// the last of the row's nc chunks to finish, the merged row.
void combineIfLast(uint bq, uint hkg, uint hq0, uint i, uint nc) {
  memoryBarrierBuffer(); // this invocation's partials before the count (every invocation, then the barrier)
  barrier();
  if (gl_LocalInvocationID.x == 0u) {
    uint counter = (bq * ATT_HKV * (ATT_GROUP / HPW) + hkg) * ATT_SPLIT_ROWS + i;
    lastChunk = atomicAdd(BUF_COUNT[counter], 1) + 1 == int(nc) ? 1 : 0;
    if (lastChunk != 0) atomicExchange(BUF_COUNT[counter], 0); // every chunk of the row has counted
  }
  barrier();
  if (lastChunk == 0) return;
  memoryBarrierBuffer(); // the other chunks' partials, which they made visible before counting
  for (uint e = gl_LocalInvocationID.x; e < HPW * ATT_DV; e += WG_X)
    mergeChunks(bq, hq0 + e / ATT_DV, i, e % ATT_DV, nc);
}
#endif

// Query row lin (over batch, head-group pairs, rows), keys of chunk c of nc (nc 1: all of them).
void visit(uint lin, uint c, uint nc) {
  const uint WG = WG_X, NB = ATT_NB, L = ATT_LANES, OP = ATT_OP, P = ATT_P, S = ATT_S;
  const uint NHG = ATT_GROUP / HPW, SLOTS = HPW * ATT_DV;
  uint t = gl_LocalInvocationID.x, lane = t % L, kk = t / L, slot0 = t % OP, part = t / OP;
  uint i = lin % S, hkg = (lin / S) % (ATT_HKV * NHG), bq = lin / (S * ATT_HKV * NHG);
  uint hk = hkg / NHG, hq0 = hk * ATT_GROUP + (hkg % NHG) * HPW;
  // Each head's keys / values start ATT_K_ROWS / ATT_V_ROWS rows apart (T, or an in-place cache's capacity).
  uint K0 = (bq * ATT_HKV + hk) * ATT_K_ROWS * ATT_D, V0 = (bq * ATT_HKV + hk) * ATT_V_ROWS * ATT_DV;
  int position;
  uint jBeg, jEnd;
  keyRange(i, position, jBeg, jEnd);
#ifdef ATT_SPLIT_KV
  if (nc > 1u) { // this workgroup's chunk; one beyond the row's chunks has nothing to do (uniform: no barrier yet)
    uint n = jEnd - jBeg, len = chunkLength(n);
    nc = chunkCount(n);
    if (c >= nc) return;
    jBeg += c * len;
    jEnd = min(jEnd, jBeg + len);
  }
#endif
  for (uint x = t; x < HPW * ATT_D; x += WG)
    QS_AT(x) = LOAD_Q(((bq * ATT_HQ + hq0 + x / ATT_D) * S + i) * ATT_D + x % ATT_D);
  barrier();
  float m[ATT_DPT], l[ATT_DPT], acc[ATT_DPT];
  [[unroll]] for (uint r = 0u; r < ATT_DPT; ++r) {
    m[r] = negInf();
    l[r] = 0.0;
    acc[r] = 0.0;
  }
  for (uint j0 = jBeg; j0 < jEnd; j0 += NB) {
#ifdef ATT_VSTAGE
    const uint VPT = (NB * ATT_DV + WG - 1u) / WG;
    float vreg[VPT];
    [[unroll]] for (uint r = 0u; r < VPT; ++r) {
      uint x = t + r * WG, key = x / ATT_DV;
      vreg[r] = x < NB * ATT_DV && j0 + key < jEnd ? LOAD_V(V0 + (j0 + key) * ATT_DV + x % ATT_DV) : 0.0;
    }
#endif
    // Partial dots: key j0 + kk, dims lane, lane + L, ..., every head of the workgroup.
    uint jk = j0 + kk;
    float dots[HPW];
    [[unroll]] for (uint g = 0u; g < HPW; ++g) dots[g] = 0.0;
    if (keyVisible(jk, jEnd, position, bq))
      for (uint d = lane; d < ATT_D; d += L) {
        float kv = LOAD_K(K0 + jk * ATT_D + d);
        [[unroll]] for (uint g = 0u; g < HPW; ++g) dots[g] += QS_AT(g * ATT_D + d) * kv;
      }
    [[unroll]] for (uint g = 0u; g < HPW; ++g) RED_AT(g * WG + t) = dots[g];
    barrier();
    // Scores [g][key]: -inf for a hidden key.
    for (uint x = t; x < HPW * NB; x += WG) {
      uint g = x / NB, key = x % NB;
      float score = negInf();
      if (keyVisible(j0 + key, jEnd, position, bq)) {
        float dot = 0.0;
        for (uint y = 0u; y < L; ++y) dot += RED_AT(g * WG + key * L + y);
        score = scaledScore(dot, bq, hq0 + g, i, j0 + key);
      }
      SC_AT(x) = score;
    }
#ifdef ATT_VSTAGE
    [[unroll]] for (uint r = 0u; r < VPT; ++r)
      if (t + r * WG < NB * ATT_DV) VS_AT(t + r * WG) = vreg[r];
#endif
    barrier();
    // Values: each (part, slot) over keys part, part + P, ... of the block, its own running max.
    uint nk = min(NB, jEnd - j0);
    [[unroll]] for (uint r = 0u; r < ATT_DPT; ++r) {
      uint slot = slot0 + r * OP;
      if (slot >= SLOTS) continue;
      uint g = slot / ATT_DV, d = slot % ATT_DV;
      float mb = m[r];
      for (uint x = part; x < nk; x += P) mb = max(mb, SC_AT(g * NB + x));
      if (isinf(mb) && mb < 0.0) continue;
      float alpha = exp(m[r] - mb);
      l[r] *= alpha;
      acc[r] *= alpha;
      for (uint x = part; x < nk; x += P) {
        float s = SC_AT(g * NB + x);
        if (isinf(s) && s < 0.0) continue;
        float p = exp(s - mb);
        l[r] += p;
        acc[r] += p * VALUE(x, d);
      }
      m[r] = mb;
    }
    barrier();
  }
#ifdef ATT_SPLIT_PARTS
  // P > 1 parts only when OP >= SLOTS, so each invocation holds one slot (ATT_DPT == 1): merge by the maxima.
  RED_AT(t) = m[0];
  RED_AT(WG + t) = l[0];
  RED_AT(2u * WG + t) = acc[0];
  barrier();
  if (part == 0u && slot0 < SLOTS) {
    float mt = negInf();
    for (uint x = 0u; x < P; ++x) mt = max(mt, RED_AT(x * OP + slot0));
    float a = 0.0, lt = 0.0;
    if (!(isinf(mt) && mt < 0.0))
      for (uint x = 0u; x < P; ++x) {
        uint u = x * OP + slot0;
        float w = exp(RED_AT(u) - mt);
        lt += w * RED_AT(WG + u);
        a += w * RED_AT(2u * WG + u);
      }
    finish(bq, hq0 + slot0 / ATT_DV, i, slot0 % ATT_DV, c, nc, mt, lt, a);
  }
#else
  [[unroll]] for (uint r = 0u; r < ATT_DPT; ++r) {
    uint slot = slot0 + r * OP;
    if (slot < SLOTS) finish(bq, hq0 + slot / ATT_DV, i, slot % ATT_DV, c, nc, m[r], l[r], acc[r]);
  }
#endif
#ifdef ATT_COMBINE_LAST
  if (nc > 1u) combineIfLast(bq, hkg, hq0, i, nc);
#endif
  barrier();
}

#ifdef ATT_TILED
#include "attention_tile.glsl"
#endif
#ifdef ATT_TILED_CM
#include "attention_tile_cm.glsl"
#endif

void main() {
  const uint NY = GRID_Y, NZ = GRID_Z, S = ATT_S;
#ifdef ATT_TILED
  if (useTiles()) { // many query rows (prefill): blocks of ATT_BR rows (uniform over the dispatch)
    const uint NT = (S + ATT_BR - 1u) / ATT_BR;
    for (uint gz = gl_WorkGroupID.z; gz < NZ; gz += gl_NumWorkGroups.z)
    for (uint gy = gl_WorkGroupID.y; gy < NY; gy += gl_NumWorkGroups.y)
    for (uint gx = gl_WorkGroupID.x; gx < NT; gx += gl_NumWorkGroups.x)
      visitTile(gz, gy, gx);
    return;
  }
#endif
#ifdef ATT_TILED_CM
  if (useCmTiles()) { // the same blocks of rows on cooperative matrices (16-bit models' prefill)
    const uint NT = (S + ACM_BR - 1u) / ACM_BR;
    for (uint gz = gl_WorkGroupID.z; gz < NZ; gz += gl_NumWorkGroups.z)
    for (uint gy = gl_WorkGroupID.y; gy < NY; gy += gl_NumWorkGroups.y)
    for (uint gx = gl_WorkGroupID.x; gx < NT; gx += gl_NumWorkGroups.x)
      visitTileCm(gz, gy, gx);
    return;
  }
#endif
#ifdef ATT_SPLIT_KV
  const uint chunks = splitKv() ? maxChunkCount(ATT_T) : 1u;
#else
  const uint chunks = 1u;
#endif
  const uint NX = S * chunks;
  for (uint gz = gl_WorkGroupID.z; gz < NZ; gz += gl_NumWorkGroups.z)
  for (uint gy = gl_WorkGroupID.y; gy < NY; gy += gl_NumWorkGroups.y)
  for (uint gx = gl_WorkGroupID.x; gx < NX; gx += gl_NumWorkGroups.x)
    visit((gz * NY + gy) * S + gx % S, gx / S, chunks); // chunk-major: chunk 0 of every row first
}
