//===- CoopmatTiles.h - the cooperative-matrix matmul's block per shape and device -*- C++ -*-===//
//
// matmul_coopmat.glsl computes a BM x BN block of OUT per workgroup of 8 warps, K in BK-deep slices through
// shared memory; this picks the block (and the warps' layout inside it) for one matmul.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_SPIRV_COOPMATTILES_H
#define KILN_CODEGEN_SPIRV_COOPMATTILES_H

#include "KernelBuilder.h"
#include "kiln/codegen/SpirvCodegen.h"

#include <cstdint>
#include <string>

namespace kiln::codegen::spirv {

struct CoopmatTile {
  uint32_t bm = 0, bn = 0, bk = 0; ///< the block of OUT and the K slice
  uint32_t stages = 1;             ///< shared buffers per operand (2: alternating, one barrier per slice)
  uint32_t wgm = 0;                ///< warps along M (8 / wgm along N)
  /// Shared memory of the staged A and B slices (f16 rows of BK + 8).
  uint32_t sharedBytes() const { return stages * (bm + bn) * (bk + 8) * 2; }
  /// "BMxBNxBK", with "x2" for two stages (the profile's cooperative_matrix_tile form).
  std::string tag() const {
    return std::to_string(bm) + "x" + std::to_string(bn) + "x" + std::to_string(bk) + (stages == 2 ? "x2" : "");
  }
};

/// The warps' layout for a bm x bn block (the most nearly square warp piece, rows >= columns), or 0 when 8
/// warps cannot tile it with 16 x 8 accumulators.
uint32_t coopmatWarpRows(uint32_t bm, uint32_t bn);

/// Parses "BMxBNxBK[xS]" (a profile's cooperative_matrix_tile; S stages, 1 or 2); false when it is not a block
/// the kernel can tile.
bool parseCoopmatTile(const std::string &text, CoopmatTile &tile);

/// The block for a matmul with N output columns (0: symbolic) and depth K, in `sharedBudget` bytes of shared
/// memory: the target's cooperativeMatrixTile when set, else by N (prompt rows M are unknown at compile time;
/// the choice assumes a few hundred: enough blocks for a large GPU). bm == 0 when none fits.
CoopmatTile coopmatTile(const SpirvTarget &target, int64_t n, int64_t k, uint32_t sharedBudget);

/// The block of a transpose_b matmul with A and B of kinds `a` and `b`, or bm == 0 when it takes no
/// cooperative-matrix tiles: the target has none (nor emulates them), B is f32 without
/// cooperativeMatrixF32Weights, or the block does not fit beside `otherShared` bytes of other shared memory.
CoopmatTile coopmatTileFor(const SpirvTarget &target, Kind a, Kind b, int64_t n, int64_t k, uint32_t otherShared);

/// The defines of matmul_coopmat.glsl for `tile` (COOPMAT, CM_*), and the cooperative-matrix extension unless
/// the target emulates it; `direct`: OUT is f32 with N % 4 == 0 and no KV-cache view (accumulators stored
/// straight to it).
void defineCoopmat(KernelBuilder &kb, const CoopmatTile &tile, bool direct);

} // namespace kiln::codegen::spirv

#endif
