//===- AttentionKernel.cpp - attention: online softmax, split keys --------===//
//
// shaders/attention.comp: one workgroup per query row, the keys of each block split across its invocations,
// the mask computed in the kernel. This file picks the workgroup (as large as the target's shared memory
// allows for the head dim) and the split, and turns the op's attributes into the kernel's defines.
//
//===----------------------------------------------------------------------===//
#include "KernelBuilder.h"

#include "kiln/ir/KilnDialect.h"

using namespace mlir;

namespace kiln::codegen::spirv {
namespace {

/// Shared memory of the variant with workgroup `wg` for head dim `d`: q, the block's scores and maxima, one
/// partial per invocation.
uint32_t attentionShared(int64_t d, uint32_t wg) { return 4 * (uint32_t)(d + 2 * std::min<uint32_t>(64, wg) + wg); }

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

} // namespace

bool emitAttention(KernelBuilder &b, const SpirvOpEntry &) {
  auto att = cast<ir::AttentionOp>(b.op());
  const Tensor &q = b.in(0), &k = b.in(1), &v = b.in(2);
  if (q.shape.size() != 4 || k.shape.size() != 4 || v.shape.size() != 4)
    return b.fail("query, key and value must be rank 4");
  if (!q.shape[3].isConstant() || !v.shape[3].isConstant() || !q.shape[1].isConstant() || !k.shape[1].isConstant())
    return b.fail("attention needs static head counts and head dims");
  if (!q.isFloat() || !k.isFloat() || !v.isFloat())
    return b.fail("only float attention has a SPIR-V kernel");
  int64_t d = q.shape[3].getConstant(), dv = v.shape[3].getConstant();
  int64_t hq = q.shape[1].getConstant(), hkv = k.shape[1].getConstant();
  if (hkv == 0 || hq % hkv)
    return b.fail("query heads are not a multiple of key heads");
  // The largest power-of-two workgroup (8 .. 256) whose shared memory fits.
  uint32_t wg = 8;
  while (wg * 2 <= std::min<uint32_t>(256, b.target().maxWorkgroupInvocations))
    wg *= 2;
  while (wg > 8 && attentionShared(d, wg) > b.target().maxSharedMemory)
    wg /= 2;
  if (attentionShared(d, wg) > b.target().maxSharedMemory)
    return b.fail("attention with head_dim " + std::to_string(d) + " needs " + std::to_string(attentionShared(d, wg)) +
                  " bytes of shared memory (split-key variant: q, the block's scores and maxima, one partial per "
                  "invocation), the target has " +
                  std::to_string(b.target().maxSharedMemory));
  // Blocks of nb keys, `lanes` invocations per score; `parts` groups of g invocations over the value dims.
  uint32_t nb = std::min<uint32_t>(64, wg), lanes = wg / nb, g = 8;
  while (g < dv && g < wg)
    g *= 2;
  uint32_t parts = wg / g;
  b.setWorkgroup(wg);
  b.setSharedBytes(attentionShared(d, wg));
  b.kernel.name = "attention_online_d" + std::to_string(d);
  auto u = [](int64_t x) { return std::to_string(x) + "u"; };
  b.define("ATT_D", u(d));
  b.define("ATT_DV", u(dv));
  b.define("ATT_HQ", u(hq));
  b.define("ATT_HKV", u(hkv));
  b.define("ATT_GROUP", u(hq / hkv));
  b.define("ATT_NB", u(nb));
  b.define("ATT_LANES", u(lanes));
  b.define("ATT_G", u(g));
  b.define("ATT_P", u(parts));
  b.define("ATT_DPT", std::to_string((dv + g - 1) / g));
  if (parts > 1)
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
  ir::SymShape rowSym(q.shape.begin(), q.shape.begin() + 3);
  std::vector<UintExpr> rowDims(q.dims.begin(), q.dims.begin() + 3);
  b.useGrid(b.planGrid(rowSym, rowDims, wg, true));
  b.useShader("attention.comp");
  return true;
}

} // namespace kiln::codegen::spirv
