//===- AttentionKernel.cpp - attention: online softmax, split keys --------===//
//
// shaders/attention.comp: one workgroup per query row and group of query heads sharing a KV head (GQA), the
// keys of each block split across its invocations, the mask computed in the kernel. This file picks the
// heads per workgroup, the workgroup (as large as the target's shared memory allows for the head dim) and
// the split, and turns the op's attributes into the kernel's defines.
//
//===----------------------------------------------------------------------===//
#include "AttentionCoopmat.h"
#include "KernelBuilder.h"

#include "kiln/ir/KilnDialect.h"

#include <cstdlib>
#include <optional>

using namespace mlir;

namespace kiln::codegen::spirv {
namespace {

/// The split of one workgroup (attention.comp): `hpw` query heads of one KV head, `wg` invocations, blocks of
/// `nb` keys with `lanes` invocations per key, the hpw x dv outputs as `op` slots per part, `parts` parts.
struct AttentionSplit {
  uint32_t hpw = 1, wg = 8, nb = 8, lanes = 1, op = 8, parts = 1, dpt = 1;
  uint32_t redFloats() const { return std::max<uint32_t>(hpw, parts > 1 ? 3 : 1) * wg; }
  /// Shared memory: the hpw query rows, the block's scores, the partial dots (then the parts' merge).
  uint32_t sharedBytes(int64_t d) const { return 4 * uint32_t(hpw * d + hpw * nb + redFloats()); }
  /// attention.comp ATT_VSTAGE: a block's nb x dv values staged in shared memory after those arrays, when they
  /// fit beside them and take at most 32 registers per invocation to load (else 0: read from the buffer).
  uint32_t valueStageFloats(int64_t d, int64_t dv, uint32_t maxShared) const {
    const uint32_t floats = uint32_t(nb * dv);
    return sharedBytes(d) + 4 * floats <= maxShared && floats <= 32 * wg ? floats : 0;
  }
};

/// Keys per block: 64, or kDecodeBlockKeys in the decode steps' kernel (SpirvTarget::smallRowsVariant), whose
/// one query row per head leaves each (head, value dim) slot a serial pass over the block's keys (max, exp,
/// FMA per key) and whose split over the KV length makes a workgroup per block: blocks of 16 cut that pass 4x
/// and put 4x the workgroups on a short context (at 64 keys, 4 instead of 1 per KV head of TinyLlama).
/// KILN_SPIRV_ATT_KEYS=N (8, 16, 32 or 64) at compile time overrides it, for bench/gemv-sweep-prepare.sh.
constexpr uint32_t kBlockKeys = 64;
uint32_t decodeBlockKeys() {
  static const uint32_t keys = [] {
    const char *env = std::getenv("KILN_SPIRV_ATT_KEYS");
    const unsigned n = env ? unsigned(std::strtoul(env, nullptr, 10)) : 0;
    return n == 8 || n == 16 || n == 32 || n == 64 ? uint32_t(n) : 16u;
  }();
  return keys;
}

AttentionSplit attentionSplit(int64_t dv, uint32_t hpw, uint32_t wg, uint32_t maxBlockKeys = kBlockKeys) {
  AttentionSplit s;
  s.hpw = hpw;
  s.wg = wg;
  s.nb = std::min<uint32_t>(maxBlockKeys, wg);
  s.lanes = wg / s.nb;
  const uint32_t slots = uint32_t(hpw * dv);
  s.op = 8;
  while (s.op < slots && s.op < wg)
    s.op *= 2;
  s.parts = wg / s.op;
  s.dpt = (slots + s.op - 1) / s.op;
  return s;
}

/// The query heads per workgroup: as many of the group's heads (a divisor of `group`, at most 8) as fit, so
/// each K / V row is read once for them; then the largest power-of-two workgroup (8 .. 256) whose shared
/// memory fits. hpw 1 is the fallback whatever its registers per invocation (dpt); nullopt: nothing fits.
std::optional<AttentionSplit> chooseSplit(int64_t d, int64_t dv, int64_t group, const SpirvTarget &target) {
  uint32_t wgMax = 8;
  while (wgMax * 2 <= std::min<uint32_t>(256, target.maxWorkgroupInvocations))
    wgMax *= 2;
  for (uint32_t hpw = uint32_t(std::min<int64_t>(group, 8)); hpw >= 1; --hpw) {
    if (group % hpw)
      continue;
    for (uint32_t wg = wgMax; wg >= 8; wg /= 2) {
      AttentionSplit s = attentionSplit(dv, hpw, wg, target.smallRowsVariant ? decodeBlockKeys() : kBlockKeys);
      if (s.sharedBytes(d) <= target.maxSharedMemory && (hpw == 1 || s.dpt <= 16))
        return s;
    }
  }
  return std::nullopt;
}

/// The tiled path for many query rows (attention_tile.glsl): `br` query rows x hpw heads = `m` tile rows, in
/// `nrg` groups of `tr` rows x `ncg` column groups (the workgroup), blocks of `bc` keys (`kpt` per invocation),
/// `tdpt` value dims per invocation.
struct AttentionTiles {
  uint32_t br = 0, m = 0, bc = 0, tr = 1, nrg = 1, ncg = 1, kpt = 1, tdpt = 1;
  /// Shared floats: Q, the K / V block, the probabilities (rows padded), 3 per-row values.
  uint32_t sharedFloats(int64_t d, int64_t dv) const {
    return uint32_t(m * (d + 1) + bc * kvStride(d, dv) + m * (bc + 1) + 3 * m);
  }
  static uint32_t kvStride(int64_t d, int64_t dv) { return uint32_t(std::max(d, dv) + 1); }
};

/// Steps of at least this many query rows take the tiles (more than a split over the KV length takes).
constexpr uint32_t kTileMinRows = 8;
static_assert(kSpirvGemvRows < kTileMinRows, "the small-rows variant of attention has no tiles");

uint32_t pow2Ceil(uint32_t x) {
  uint32_t p = 1;
  while (p < x)
    p *= 2;
  return p;
}

/// The largest tile (about 64 tile rows, at least 2 query rows, 32 .. 8 keys a block) whose shared memory fits
/// beside nothing else (the one-row path's arrays share the same memory) with bounded registers; nullopt: none.
std::optional<AttentionTiles> chooseTiles(int64_t d, int64_t dv, const AttentionSplit &sp, uint32_t maxShared) {
  for (uint32_t rowsTarget = 64; rowsTarget >= 2 * sp.hpw; rowsTarget /= 2)
    for (uint32_t bc : {32u, 16u, 8u}) {
      AttentionTiles t;
      t.br = rowsTarget / sp.hpw;
      t.m = t.br * sp.hpw;
      t.nrg = std::min(sp.wg, pow2Ceil((t.m + 3) / 4));
      t.tr = (t.m + t.nrg - 1) / t.nrg;
      t.ncg = sp.wg / t.nrg;
      t.bc = bc;
      t.kpt = (bc + t.ncg - 1) / t.ncg;
      t.tdpt = uint32_t((dv + t.ncg - 1) / t.ncg);
      if (t.br >= 2 && 4 * t.sharedFloats(d, dv) <= maxShared && t.tr * t.tdpt <= 64 && t.tr * t.kpt <= 32)
        return t;
    }
  return std::nullopt;
}

void tileDefines(KernelBuilder &b, const AttentionTiles &t, int64_t d, int64_t dv) {
  auto u = [](int64_t x) { return std::to_string(x) + "u"; };
  b.define("ATT_TILED");
  b.define("ATT_TILE_MIN", u(kTileMinRows));
  b.define("ATT_BR", u(t.br));
  b.define("ATT_TM", u(t.m));
  b.define("ATT_BC", u(t.bc));
  b.define("ATT_TR", u(t.tr));
  b.define("ATT_NCG", u(t.ncg));
  b.define("ATT_KPT", u(t.kpt));
  b.define("ATT_TDPT", u(t.tdpt));
  b.define("ATT_KVS", u(AttentionTiles::kvStride(d, dv)));
}

/// The mask and score defines: causal / window, key padding, bias (broadcast to [b, hq, s, t]), softcap.
void maskDefines(KernelBuilder &b, ir::AttentionOp att) {
  const Tensor &q = b.in(0), &k = b.in(1);
  bool causal = att.getMask() == ir::AttentionMask::causal;
  if (causal)
    b.define("CAUSAL");
  if (std::optional<uint64_t> window = att.getWindow(); causal && window)
    b.define("WINDOW", std::to_string(*window));
  if (auto softcap = att.getSoftcap())
    b.define("SOFTCAP", glslFloat(softcap->convertToDouble()));
  unsigned next = 3;
  if (att.getKeyPaddingMask()) {
    b.define("PAD");
    b.bindRole("PAD", b.in(next++));
  }
  if (att.getBias()) {
    const Tensor &bias = b.in(next++);
    ir::SymShape scoreShape = {q.shape[0], q.shape[1], q.shape[2], k.shape[2]};
    std::vector<UintExpr> s = KernelBuilder::broadcastStrides(bias, scoreShape);
    UintExpr index = UintExpr::t("bq") * s[0] + UintExpr::t("hq") * s[1] + UintExpr::t("i") * s[2] +
                     UintExpr::t("j") * s[3];
    b.define("BIAS");
    b.bindRole("BIAS", bias);
    b.define("BIAS_INDEX", index.str());
  }
}

/// The static facts of an attention op the variants depend on (what emitAttention checks first).
struct AttentionDims {
  int64_t d = 0, dv = 0, hq = 0, hkv = 0;
  ir::SymExpr s, t; // query rows, keys
};

std::optional<AttentionDims> attentionDims(Operation *op, std::string &why) {
  auto att = cast<ir::AttentionOp>(op);
  FailureOr<ir::SymShape> q = ir::getSymShape(att.getQuery().getType()), k = ir::getSymShape(att.getKey().getType()),
                          v = ir::getSymShape(att.getValue().getType());
  if (failed(q) || failed(k) || failed(v) || q->size() != 4 || k->size() != 4 || v->size() != 4) {
    why = "query, key and value must be rank 4";
    return std::nullopt;
  }
  if (!(*q)[3].isConstant() || !(*v)[3].isConstant() || !(*q)[1].isConstant() || !(*k)[1].isConstant()) {
    why = "attention needs static head counts and head dims";
    return std::nullopt;
  }
  AttentionDims a{(*q)[3].getConstant(), (*v)[3].getConstant(), (*q)[1].getConstant(), (*k)[1].getConstant(),
                  (*q)[2], (*k)[2]};
  if (a.hkv == 0 || a.hq % a.hkv) {
    why = "query heads are not a multiple of key heads";
    return std::nullopt;
  }
  return a;
}

/// Flash-decoding (attention_range.glsl ATT_SPLIT_KV): steps of at most kSplitRows query rows cut each row's
/// keys into at most kSplitChunks chunks, one workgroup each; the last chunk of a row to finish combines them
/// (kSpirvCombinedPass), or a second pass does (SpirvTarget::attentionCombinePass). Only over a KV cache (keys
/// p + s, not the queries' s), where decode has one query row and many keys.
constexpr uint32_t kSplitRows = 4, kSplitChunks = 32;

bool splitsKv(const AttentionDims &a) {
  return !a.t.isConstant() && a.t != a.s && (!a.s.isConstant() || a.s.getConstant() <= int64_t(kSplitRows));
}

/// The defines both passes of the split read: the chunking and the mask's key range (and for the split in one
/// dispatch its counters).
void splitDefines(KernelBuilder &b, const AttentionDims &a, const AttentionSplit &sp) {
  auto u = [](int64_t x) { return std::to_string(x) + "u"; };
  b.define("ATT_SPLIT_KV");
  b.define("ATT_SPLIT_ROWS", u(kSplitRows));
  b.define("ATT_NCMAX", u(kSplitChunks));
  b.define("ATT_NB", u(sp.nb));
  b.define("ATT_DV", u(a.dv));
  b.define("ATT_HQ", u(a.hq));
  b.bindRole("PART", b.scratch());
  if (b.pass() == kSpirvCombinedPass) {
    b.define("ATT_COMBINE_LAST");
    b.bindRole("COUNT", b.counters());
  }
}

/// Pass 2 of the split (attention_combine.comp): one invocation per (batch, row, head, d), none at all when
/// every row's keys fit one chunk (T <= nb: the x count T - nb is not positive, whatever the recorded step).
bool emitAttentionCombine(KernelBuilder &b, ir::AttentionOp att, const AttentionDims &a, const AttentionSplit &sp) {
  splitDefines(b, a, sp);
  b.define("ATT_S", b.in(0).dims[2].str());
  b.define("ATT_T", b.in(1).dims[2].str());
  bool causal = att.getMask() == ir::AttentionMask::causal;
  if (causal)
    b.define("CAUSAL");
  if (std::optional<uint64_t> window = att.getWindow(); causal && window)
    b.define("WINDOW", std::to_string(*window));
  b.bindRole("OUT", b.out());
  const uint32_t wg = b.workgroupUpTo(256);
  b.setWorkgroup(wg);
  b.kernel.name = "attention_combine_d" + std::to_string(a.dv);
  b.define("GRID_Z", b.in(0).dims[0].str());
  const ir::SymExpr batch = b.in(0).shape[0];
  // y: one row's elements (a decode step's all) in workgroups of wg; x: more of them as the keys grow.
  const uint64_t perRow = uint64_t(a.hq) * uint64_t(a.dv);
  b.kernel.globalSize = {a.t + ir::SymExpr::constant(-int64_t(sp.nb)),
                         ir::SymExpr::constant(int64_t(std::min<uint64_t>((perRow + wg - 1) / wg, 65535))),
                         batch.isConstant() ? ir::SymExpr::constant(std::min<int64_t>(batch.getConstant(), 65535))
                                            : batch};
  b.useShader("attention_combine.comp");
  return true;
}

} // namespace

uint64_t attentionScratchBytes(Operation *op, const SpirvTarget &target, int64_t maxBatch) {
  std::string why;
  std::optional<AttentionDims> a = attentionDims(op, why);
  if (!a || !splitsKv(*a) || !chooseSplit(a->d, a->dv, a->hq / a->hkv, target))
    return 0;
  return uint64_t(std::max<int64_t>(1, maxBatch)) * uint64_t(a->hq) * kSplitRows * kSplitChunks *
         uint64_t(a->dv + 2) * 4;
}

uint64_t attentionCounterBytes(Operation *op, const SpirvTarget &target, int64_t maxBatch) {
  std::string why;
  std::optional<AttentionDims> a = attentionDims(op, why);
  std::optional<AttentionSplit> sp = a ? chooseSplit(a->d, a->dv, a->hq / a->hkv, target) : std::nullopt;
  if (!a || !splitsKv(*a) || !sp)
    return 0;
  // One per (batch row, KV head, head group of hpw query heads, query row of a split step).
  return uint64_t(std::max<int64_t>(1, maxBatch)) * uint64_t(a->hq / sp->hpw) * kSplitRows * 4;
}

bool emitAttention(KernelBuilder &b, const SpirvOpEntry &) {
  auto att = cast<ir::AttentionOp>(b.op());
  std::string why;
  std::optional<AttentionDims> dims = attentionDims(b.op(), why);
  if (!dims)
    return b.fail(why);
  const AttentionDims &a = *dims;
  const Tensor &q = b.in(0), &k = b.in(1), &v = b.in(2);
  if (!q.isFloat() || !k.isFloat() || !v.isFloat())
    return b.fail("only float attention has a SPIR-V kernel");
  const int64_t d = a.d, dv = a.dv, hq = a.hq, hkv = a.hkv;
  const std::optional<AttentionSplit> split = chooseSplit(d, dv, hq / hkv, b.target());
  if (!split)
    return b.fail("attention with head_dim " + std::to_string(d) + " needs " +
                  std::to_string(attentionSplit(dv, 1, 8).sharedBytes(d)) +
                  " bytes of shared memory (q, the block's scores, one partial per invocation), the target has " +
                  std::to_string(b.target().maxSharedMemory));
  const AttentionSplit &sp = *split;
  if (b.pass() == 2)
    return emitAttentionCombine(b, att, a, sp);
  // The tiles when the step can have kTileMinRows query rows or more (a symbolic s: chosen in the kernel): on
  // cooperative matrices where the plan wants them and one fits, else the f32 tiles.
  std::optional<AttentionTiles> tiles;
  std::optional<AttentionCmTiles> cmTiles;
  // The small-rows variant (decode steps, at most kSpirvGemvRows < kTileMinRows rows) has no tile path.
  const bool manyRows = !b.target().smallRowsVariant && (!a.s.isConstant() || a.s.getConstant() >= int64_t(kTileMinRows));
  if (manyRows && attentionOnCooperativeMatrices(b.target()))
    cmTiles = chooseCmTiles(d, dv, sp.hpw, sp.wg, b.target().maxSharedMemory, sp.sharedBytes(d) / 4);
  if (manyRows && !cmTiles)
    tiles = chooseTiles(d, dv, sp, b.target().maxSharedMemory);
  // The staged values share the memory with the cooperative-matrix tiles' f16 vectors (after the floats).
  const uint32_t cmBytes = cmTiles ? 16 * cmTiles->halfVectors() : 0;
  const uint32_t valueStage = sp.valueStageFloats(d, dv, b.target().maxSharedMemory - cmBytes);
  uint32_t sharedFloats = std::max(sp.sharedBytes(d) / 4 + valueStage, tiles ? tiles->sharedFloats(d, dv) : 0u);
  if (cmTiles)
    sharedFloats = std::max(sharedFloats, cmTiles->sharedFloats());
  b.setWorkgroup(sp.wg);
  b.setSharedBytes(4 * sharedFloats + cmBytes);
  b.define("ATT_SMEM", std::to_string(sharedFloats) + "u");
  if (tiles)
    tileDefines(b, *tiles, d, dv);
  if (valueStage)
    b.define("ATT_VSTAGE", std::to_string(sp.sharedBytes(d) / 4) + "u");
  if (cmTiles) {
    b.define("ATT_TILE_MIN", std::to_string(kTileMinRows) + "u");
    cmTileDefines(b, *cmTiles);
  }
  if ((tiles || cmTiles) && !a.s.isConstant())
    b.kernel.smallRows = a.s; // decode steps may take the variant without the tiles' shared memory
  const std::string tileTag =
      tiles     ? "_tile" + std::to_string(tiles->br) + "x" + std::to_string(tiles->bc)
      : cmTiles ? (b.target().emulateCooperativeMatrix ? "_tilecmemu" : "_tilecm") + cmTiles->tag()
                : "";
  const bool splitKv = b.pass() == 1 || b.pass() == kSpirvCombinedPass;
  b.kernel.name = "attention_online_d" + std::to_string(d) + (sp.hpw > 1 ? "_gqa" + std::to_string(sp.hpw) : "") +
                  (b.pass() == 1 ? "_splitkv" : splitKv ? "_splitkvlast" : "") + tileTag;
  auto u = [](int64_t x) { return std::to_string(x) + "u"; };
  if (splitKv)
    splitDefines(b, a, sp);
  else {
    b.define("ATT_NB", u(sp.nb));
    b.define("ATT_DV", u(dv));
    b.define("ATT_HQ", u(hq));
  }
  b.define("ATT_D", u(d));
  b.define("ATT_HKV", u(hkv));
  b.define("ATT_GROUP", u(hq / hkv));
  b.define("ATT_HPW", u(sp.hpw));
  b.define("ATT_LANES", u(sp.lanes));
  b.define("ATT_OP", u(sp.op));
  b.define("ATT_P", u(sp.parts));
  b.define("ATT_DPT", u(sp.dpt));
  if (sp.parts > 1)
    b.define("ATT_SPLIT_PARTS");
  b.define("ATT_S", q.dims[2].str());
  b.define("ATT_T", k.dims[2].str());
  b.define("ATT_SCALE", glslFloat(att.getScale().convertToDouble()));
  maskDefines(b, att);
  b.bindRole("Q", q);
  // K and V rows (ATT_K_ROWS / ATT_V_ROWS apart per head): T, or for a KV-cache view from row 0 (the
  // present cache in place) the storage's capacity, read directly rather than through the view's divisions.
  for (const auto &[role, t] : {std::pair<std::string, const Tensor *>{"K", &k}, {"V", &v}}) {
    const bool fromRow0 = t->rowCapacity > 0 && t->rowOffset.isConst && t->rowOffset.value == 0;
    Tensor direct = *t;
    if (fromRow0)
      direct.viewMacro.clear();
    b.define("ATT_" + role + "_ROWS", fromRow0 ? std::to_string(t->rowCapacity) + "u" : t->dims[2].str());
    b.bindRole(role, direct);
  }
  b.bindRole("OUT", b.out());
  // x: the query rows (split: up to kSplitChunks chunks x kSplitRows rows, or the rows of a longer step),
  // y: the (kv head, head group) pairs, z: the batch; one workgroup each.
  const uint32_t pairs = uint32_t(hkv * (hq / hkv / sp.hpw));
  auto capped = [](const ir::SymExpr &e) {
    return e.isConstant() ? ir::SymExpr::constant(std::min<int64_t>(e.getConstant(), 65535)) : e;
  };
  // A static step of tiles: one workgroup per block of br rows (a symbolic one launches one per row, the
  // extra ones of a tiled step find no tile in the grid-stride loop).
  ir::SymExpr rows = capped(a.s);
  const uint32_t tileRows = tiles ? tiles->br : cmTiles ? cmTiles->br : 0;
  if (tileRows && a.s.isConstant())
    rows = capped(ir::SymExpr::constant((a.s.getConstant() + tileRows - 1) / tileRows));
  if (splitKv) // T / nb + S workgroups (the runtime's ceil): one per chunk of a decode row's keys
    rows = a.s.isConstant() ? ir::SymExpr::constant(a.s.getConstant() * kSplitChunks) : a.s;
  ir::SymExpr invocations = scaleSym(rows, sp.wg);
  if (splitKv && !a.s.isConstant())
    invocations = invocations + scaleSym(a.t, sp.lanes);
  b.define("GRID_Y", u(pairs));
  b.define("GRID_Z", q.dims[0].str());
  b.kernel.globalSize = {invocations, ir::SymExpr::constant(pairs), capped(q.shape[0])};
  b.useShader("attention.comp");
  return true;
}

} // namespace kiln::codegen::spirv
