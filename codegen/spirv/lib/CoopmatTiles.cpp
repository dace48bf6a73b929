//===- CoopmatTiles.cpp - the cooperative-matrix matmul's block per shape and device -===//
#include "CoopmatTiles.h"

#include <cmath>
#include <cstdlib>

namespace kiln::codegen::spirv {

uint32_t coopmatWarpRows(uint32_t bm, uint32_t bn) {
  uint32_t best = 0;
  double bestScore = 1e9;
  for (uint32_t wgm : {1u, 2u, 4u, 8u}) {
    uint32_t rows = bm / wgm, cols = bn / (8 / wgm);
    if (rows == 0 || cols == 0 || rows % 16 || cols % 8)
      continue;
    // log2(rows / cols) nearest 0.5: A fragments are 16 rows, B fragments 8 columns.
    double score = std::fabs(std::log2(double(rows) / cols) - 0.5);
    if (score < bestScore)
      best = wgm, bestScore = score;
  }
  return best;
}

bool parseCoopmatTile(const std::string &text, CoopmatTile &tile) {
  uint32_t v[4] = {0, 0, 0, 1};
  size_t start = 0;
  int parts = 0;
  while (parts < 4 && start <= text.size()) {
    size_t end = text.find('x', start);
    end = end == std::string::npos ? text.size() : end;
    std::string digits = text.substr(start, end - start);
    if (digits.empty() || digits.size() > 3 || digits.find_first_not_of("0123456789") != std::string::npos)
      return false;
    v[parts++] = uint32_t(std::strtoul(digits.c_str(), nullptr, 10));
    start = end + 1;
  }
  if (parts < 3 || start <= text.size())
    return false; // fewer than 3 or more than 4 numbers
  auto pow2 = [](uint32_t x, uint32_t lo, uint32_t hi) { return x >= lo && x <= hi && (x & (x - 1)) == 0; };
  if (!pow2(v[0], 32, 256) || !pow2(v[1], 32, 256) || !pow2(v[2], 16, 64) || v[3] < 1 || v[3] > 2)
    return false;
  tile = {v[0], v[1], v[2], v[3], coopmatWarpRows(v[0], v[1])};
  return tile.wgm != 0;
}

CoopmatTile coopmatTile(const SpirvTarget &target, int64_t n, int64_t k, uint32_t sharedBudget) {
  CoopmatTile tile;
  if (!target.cooperativeMatrixTile.empty()) {
    if (!parseCoopmatTile(target.cooperativeMatrixTile, tile) || tile.sharedBytes() > sharedBudget)
      return {};
    return tile;
  }
  (void)k;
  // Measured on an H100 at M = 512 (bench/coopmat-gpu.sh, bench/results-2026-12-07-h100-coopmat.txt; K 2048 and
  // 5632 chose alike): the widest block for a very wide weight (lm_head 32000: 205 TFLOP/s), 64 x 128 with
  // 64-deep slices for 5632 (149), 64 x 64 double-buffered for 2048 (115-123: enough workgroups), 32 x 32 for
  // the narrow k / v projections (256: too few blocks for anything larger).
  // A symbolic N: the middle choice. Where the shared memory is short, smaller blocks.
  const char *choice = n >= 16384 ? "128x256x32"
                       : n >= 4096 ? "64x128x64"
                       : n >= 1024 || n == 0 ? "64x64x64x2"
                                             : "32x32x64";
  for (const char *candidate : {choice, "64x64x64", "64x64x32", "64x64x16"})
    if (parseCoopmatTile(candidate, tile) && tile.sharedBytes() <= sharedBudget)
      return tile;
  return {};
}

CoopmatTile coopmatTileFor(const SpirvTarget &target, Kind a, Kind b, int64_t n, int64_t k, uint32_t otherShared) {
  const bool device = (target.cooperativeMatrix && target.subgroupSize == 32) || target.emulateCooperativeMatrix;
  const bool weights = b == Kind::F16 || b == Kind::BF16 || (b == Kind::F32 && target.cooperativeMatrixF32Weights);
  const bool activations = a == Kind::F32 || a == Kind::F16 || a == Kind::BF16;
  if (!device || !weights || !activations || target.maxWorkgroupInvocations < 256 ||
      otherShared >= target.maxSharedMemory)
    return {};
  return coopmatTile(target, n, k, target.maxSharedMemory - otherShared);
}

void defineCoopmat(KernelBuilder &kb, const CoopmatTile &tile, bool direct) {
  kb.define("COOPMAT");
  kb.define("CM_BM", std::to_string(tile.bm) + "u");
  kb.define("CM_BN", std::to_string(tile.bn) + "u");
  kb.define("CM_BK", std::to_string(tile.bk) + "u");
  kb.define("CM_WGM", std::to_string(tile.wgm) + "u");
  kb.define("CM_STAGES", std::to_string(tile.stages) + "u");
  if (direct)
    kb.define("CM_DIRECT");
  if (kb.target().emulateCooperativeMatrix)
    kb.define("CM_EMULATE");
  else
    kb.useCooperativeMatrix();
}

} // namespace kiln::codegen::spirv
