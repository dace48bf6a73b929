//===- AttentionCoopmat.h - prefill attention tiles on cooperative matrices -*- C++ -*-===//
//
// attention_tile_cm.glsl: blocks of query rows x GQA heads with S = Q K^T and P V on cooperative matrices
// (f16 x f16 -> f32). This picks its tile for a head dim, heads per workgroup and workgroup, and writes its
// defines; AttentionKernel.cpp decides whether a kernel takes it.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_SPIRV_ATTENTIONCOOPMAT_H
#define KILN_CODEGEN_SPIRV_ATTENTIONCOOPMAT_H

#include "KernelBuilder.h"

#include <cstdint>
#include <optional>

namespace kiln::codegen::spirv {

/// `m` tile rows (`br` query rows x hpw heads, padded to a multiple of 16), blocks of `bc` keys; d and dv padded
/// to `dp` (16) and `dvp` (8); f32 rows of `sw` floats; `wpr` warps per 16-row block; `tpr` invocations per tile
/// row, `tps` of them with `ppt` pairs of keys each in the softmax, `odpt` output dims each; `scpw` / `vcpw` the
/// accumulator fragments per warp of S and of P V.
struct AttentionCmTiles {
  uint32_t m = 0, br = 0, bc = 0, dp = 0, dvp = 0, sw = 0, wpr = 0, tpr = 0, tps = 0, ppt = 0, odpt = 0, scpw = 0,
           vcpw = 0;
  /// f16 staging (uvec4 of 8 halfs, rows padded by one): Q, K, V, P.
  uint32_t halfVectors() const { return m * (dp / 8 + 1) + bc * (dp / 8 + 1) + bc * (dvp / 8 + 1) + m * (bc / 8 + 1); }
  /// Floats of attention.comp's smem: S / P V rows, the rows' partial maxima / sums.
  uint32_t sharedFloats() const { return m * sw + m * tps; }
  /// "MxBC" (the kernel name's tag).
  std::string tag() const { return std::to_string(m) + "x" + std::to_string(bc); }
};

/// Whether `target` runs prefill attention on cooperative matrices: it has them (32-wide subgroups) or
/// emulates them, and the plan asked for them (SpirvTarget::cooperativeMatrixAttention).
bool attentionOnCooperativeMatrices(const SpirvTarget &target);

/// The largest tile (64, 32, 16 tile rows; 64, 32, 16 keys a block) for a workgroup of `wg` invocations whose
/// shared memory (its own, the f32 floats at least `otherFloats`: the one-row path shares them) fits
/// `maxShared` bytes with bounded registers; nullopt: none.
std::optional<AttentionCmTiles> chooseCmTiles(int64_t d, int64_t dv, uint32_t hpw, uint32_t wg, uint32_t maxShared,
                                              uint32_t otherFloats);

/// ATT_TILED_CM and the ACM_* defines of `t` (with CM_EMULATE, or the cooperative-matrix extension).
void cmTileDefines(KernelBuilder &b, const AttentionCmTiles &t);

} // namespace kiln::codegen::spirv

#endif
