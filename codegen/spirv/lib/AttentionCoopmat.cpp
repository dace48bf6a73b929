//===- AttentionCoopmat.cpp - prefill attention tiles on cooperative matrices -===//
#include "AttentionCoopmat.h"

#include <algorithm>

namespace kiln::codegen::spirv {

bool attentionOnCooperativeMatrices(const SpirvTarget &target) {
  const bool device = (target.cooperativeMatrix && target.subgroupSize == 32) || target.emulateCooperativeMatrix;
  return device && target.cooperativeMatrixAttention;
}

std::optional<AttentionCmTiles> chooseCmTiles(int64_t d, int64_t dv, uint32_t hpw, uint32_t wg, uint32_t maxShared,
                                              uint32_t otherFloats) {
  const uint32_t warps = wg / 32;
  if (wg % 32 || warps < 2 || hpw == 0 || hpw > 8)
    return std::nullopt;
  // Tile rows first (64: TinyLlama's 8 rows x 8 heads, a few hundred workgroups for a 512-token prefill), then
  // the longest key block that fits.
  for (uint32_t m : {64u, 32u, 16u})
    for (uint32_t bc : {64u, 32u, 16u}) {
      AttentionCmTiles t;
      t.m = m;
      t.br = m / hpw;
      t.bc = bc;
      t.dp = uint32_t((d + 15) / 16 * 16);
      t.dvp = uint32_t((dv + 7) / 8 * 8);
      t.sw = std::max(bc, t.dvp) + 4; // 16-byte aligned rows for the fragment stores
      const uint32_t rowBlocks = m / 16;
      if (m > wg || rowBlocks > warps || warps % rowBlocks || t.br < 2)
        continue;
      t.wpr = warps / rowBlocks;
      t.tpr = wg / m;
      t.tps = std::min(t.tpr, bc / 2);
      t.ppt = bc / (2 * t.tps);
      t.odpt = (t.dvp + t.tpr - 1) / t.tpr;
      t.scpw = (bc / 8 + t.wpr - 1) / t.wpr;
      t.vcpw = (t.dvp / 8 + t.wpr - 1) / t.wpr;
      const uint64_t bytes = 16ull * t.halfVectors() + 4ull * std::max(otherFloats, t.sharedFloats());
      if (bytes <= maxShared && t.odpt <= 64 && t.ppt <= 32 && t.vcpw <= 16)
        return t;
    }
  return std::nullopt;
}

void cmTileDefines(KernelBuilder &b, const AttentionCmTiles &t) {
  auto u = [](int64_t x) { return std::to_string(x) + "u"; };
  b.define("ATT_TILED_CM");
  b.define("ACM_M", u(t.m));
  b.define("ACM_BR", u(t.br));
  b.define("ACM_BC", u(t.bc));
  b.define("ACM_DP", u(t.dp));
  b.define("ACM_DVP", u(t.dvp));
  b.define("ACM_SW", u(t.sw));
  b.define("ACM_WPR", u(t.wpr));
  b.define("ACM_TPR", u(t.tpr));
  b.define("ACM_TPS", u(t.tps));
  b.define("ACM_PPT", u(t.ppt));
  b.define("ACM_ODPT", u(t.odpt));
  b.define("ACM_SCPW", u(t.scpw));
  b.define("ACM_VCPW", u(t.vcpw));
  if (b.target().emulateCooperativeMatrix)
    b.define("CM_EMULATE");
  else
    b.useCooperativeMatrix();
}

} // namespace kiln::codegen::spirv
