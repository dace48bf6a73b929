//===- QuantKernels.cpp - kernels reading q8_0 / q4_0 weights (--weights q8_0|q4_0) ---------===//
//
// A block-quantized weight (support/Quantize.h: blocks of 32 along a row, an f16 scale each, every quant
// then every scale) is bound as uint words and read by shaders/quant.glsl: no 8- or 16-bit storage needed.
// Its readers: kiln.gather (the embedding table: the gathered rows dequantized, gather.comp) and kiln.matmul
// with transpose_b (matmul.comp with QUANT_B): for at most kQuantGemvMaxRows rows of A (batch dims folded in,
// the decode steps) the GEMV of gemv_quant.glsl, which quantizes the activations per block as the CPU's
// decode GEMV does; for more rows tiles with B dequantized as it is staged (what the CPU's prefill computes:
// f32 activations against the dequantized weight): the cooperative-matrix tiles (rounded to f16, as f16
// weights are) where the target has them, else the scalar register-blocked tiles in f32.
//
//===----------------------------------------------------------------------===//
#include "CoopmatTiles.h"
#include "KernelBuilder.h"

#include "kiln/ir/KilnDialect.h"

using namespace mlir;

namespace kiln::codegen::spirv {

namespace {
/// matmul.comp's workgroup and tile (BM = BN = 64, BK = 16: sm holds 2 x 16 x 65 floats).
constexpr uint32_t kWorkgroup = 256, kTile = 64, kTileBytes = 2 * 16 * (kTile + 1) * 4;
/// Rows of B per subgroup in the GEMV (QUANT_GEMV_ROWS): each block of activations is loaded and quantized
/// once for them, so more rows cost less arithmetic per weight; two keep the grid of a 2048-row matrix at 128
/// workgroups of 8 subgroups of 32 (about one per multiprocessor of a large GPU), four from 4096 rows on
/// (TinyLlama's gate / up projections and LM head).
uint32_t quantGemvRows(int64_t n) { return n >= 4096 ? 4 : 2; }
} // namespace

void defineQuantReader(KernelBuilder &kb, const Tensor &t) {
  const uint64_t cols = uint64_t(t.shape.back().getConstant()), rows = uint64_t(t.shape[0].getConstant());
  kb.define("QUANT_WORDS", t.buf());
  kb.define(*t.quant == QuantFormat::Q8_0 ? "QUANT_Q8" : "QUANT_Q4");
  kb.define("QUANT_SCALE_WORD", std::to_string(quantBytes(*t.quant, rows * cols) / 4) + "u");
  kb.define("QUANT_ROWS", std::to_string(rows) + "u");
  kb.define("QUANT_KB", std::to_string(cols / 32) + "u");
}

bool emitQuantMatmul(KernelBuilder &kb) {
  const Tensor &a = kb.in(0), &w = kb.in(1), &o = kb.out();
  if (a.quant || !w.quant)
    return kb.fail("a block-quantized matmul operand must be the weight (the rhs)");
  if (!cast<ir::MatmulOp>(kb.op()).getTransposeB() || w.shape.size() != 2)
    return kb.fail("a block-quantized weight is read as a [N, K] matrix with transpose_b only");
  if (!a.isFloat() || !o.isFloat() || o.kind == Kind::BF16)
    return kb.fail("a matmul against a block-quantized weight takes f32 / f16 activations and results");
  if (!a.viewMacro.empty() || !o.viewMacro.empty() || a.permuted || o.permuted)
    return kb.fail("a matmul against a block-quantized weight reads and writes contiguous rows only");
  const SpirvTarget &target = kb.target();
  if (!target.subgroupArithmetic || target.subgroupSize < 4)
    return kb.fail("the GEMV against a block-quantized weight needs subgroup arithmetic");
  if (target.maxWorkgroupInvocations < kWorkgroup)
    return kb.fail("the matmul kernel needs a workgroup of " + std::to_string(kWorkgroup) + " invocations");
  const size_t ra = a.dims.size(), ro = o.dims.size();
  const int64_t n = w.shape[0].getConstant(), k = w.shape[1].getConstant();
  // Tensor cores for prefill: B staged as f16, like an f16 weight's (CoopmatTiles.h picks the block by N).
  const CoopmatTile cm = coopmatTileFor(target, a.kind, Kind::F16, n, k, kTileBytes);
  const bool coopmat = cm.bm != 0;
  kb.setWorkgroup(kWorkgroup);
  kb.setSharedBytes(kTileBytes + cm.sharedBytes() * coopmat);
  if (coopmat)
    defineCoopmat(kb, cm, o.kind == Kind::F32 && n % 4 == 0);
  kb.useSubgroupArithmetic();
  UintExpr batch = UintExpr::k(1);
  for (size_t d = 0; d + 2 < ro; ++d)
    batch = batch * o.dims[d];
  kb.define("MM_M", a.dims[ra - 2].str());
  kb.define("MM_K", a.dims[ra - 1].str());
  kb.define("MM_N", o.dims[ro - 1].str());
  kb.define("MM_BATCH", batch.str());
  kb.define("VEC_WIDTH", "0"); // the tiles' scalar loads (LOAD_B dequantizes); the GEMV has its own vectors
  kb.define("TRANSPOSE_B");
  kb.define("QUANT_B");
  const uint32_t gemvRows = quantGemvRows(n);
  kb.define("QUANT_GEMV_ROWS", std::to_string(gemvRows) + "u");
  defineQuantReader(kb, w);
  kb.define("LOAD_B(i)", "quantAt(i)");
  kb.bindRole("A", a);
  kb.bindRole("OUT", o);
  // The weight has no batch dims: batch bz's rows of A follow the previous batch's.
  kb.addGenerated("void batchOffsets(uint bz, out uint A0, out uint B0) {\n  A0 = bz * MM_M * MM_K;\n  B0 = 0u;\n}\n");
  kb.kernel.name = std::string("matmul_tb_") + quantFormatName(*w.quant) + "_gemv" + std::to_string(gemvRows) +
                   "_tile64" + (coopmat ? (target.emulateCooperativeMatrix ? "_coopmatemu" : "_coopmat") + cm.tag() : "") +
                   (a.kind != o.kind ? std::string("_a") + kindName(a.kind) : "") + "_n" +
                   std::to_string(n) + "k" + std::to_string(k);
  // x: the GEMV's row blocks (rows per workgroup: its subgroups x QUANT_GEMV_ROWS) plus the tiles (ceil(M / 64)
  // x ceil(N / 64), M / 64 + 1 of them per column of tiles when M is symbolic); the path not taken exits at
  // once, and both loop grid-stride, so any count is correct. z: one (matmul.comp loops over the batch).
  const int64_t rowsPerGroup = int64_t(kWorkgroup / target.subgroupSize) * gemvRows;
  const int64_t gemvGroups = std::min<int64_t>((n + rowsPerGroup - 1) / rowsPerGroup, 65535);
  const int64_t tileM = coopmat ? cm.bm : kTile, tilesN = (n + (coopmat ? cm.bn : kTile) - 1) / (coopmat ? cm.bn : kTile);
  const ir::SymExpr &m = a.shape[ra - 2];
  ir::SymExpr x = m.isConstant()
                      ? ir::SymExpr::constant(std::min<int64_t>(gemvGroups + tilesN * ((m.getConstant() + tileM - 1) / tileM),
                                                                65535) * kWorkgroup)
                      : ir::SymExpr::constant((gemvGroups + tilesN) * kWorkgroup) + scaleSym(m, tilesN * (kWorkgroup / tileM));
  kb.kernel.globalSize = {x, ir::SymExpr::constant(1), ir::SymExpr::constant(1)};
  kb.useShader("matmul.comp");
  return true;
}

} // namespace kiln::codegen::spirv
