//===- QuantKernels.cpp - kernels reading q8_0 / q4_0 weights (--weights q8_0|q4_0) ---------===//
//
// A block-quantized weight (support/Quantize.h: blocks of 32 along a row, an f16 scale each, every quant
// then every scale) is bound as uint words and read by shaders/quant.glsl: no 8- or 16-bit storage needed.
// Its readers: kiln.gather (the embedding table: the gathered rows dequantized, gather.comp), kiln.matmul with
// transpose_b and kiln.matmul_group of weights of one format (Q/K/V; gate / up with silu_mul: matmul.comp with
// QUANT_B and GROUP, each segment read through quant.glsl): for at most kQuantGemvMaxRows rows of A (batch dims
// folded in, the decode steps) the GEMV of gemv_quant.glsl, which quantizes the activations per block as the
// CPU's decode GEMV does; for more rows tiles with B dequantized as it is staged (what the CPU's prefill
// computes: f32 activations against the dequantized weight): the cooperative-matrix tiles (rounded to f16, as
// f16 weights are) where the target has them, else the scalar register-blocked tiles in f32. With a symbolic M
// the compiler also builds the small-rows variant (GEMV_ONLY: no tiles; the rows of A quantized once per
// workgroup into shared memory where they fit) for decode steps. With SpirvTarget::integerDotProduct the GEMV's
// block products are packed 4 x 8-bit integer dot products (INTEGER_DOT_PRODUCT, "_idot" in the kernel's name);
// the same integers, so the same results.
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

namespace {

/// Why a matmul / matmul_group of block-quantized weights has no kernel ("" when it has one).
std::string quantMatmulRefusal(KernelBuilder &kb, const MatmulParts &p) {
  const Tensor &a = kb.in(0), &w = *p.weights[0];
  if (a.quant || !w.quant)
    return "a block-quantized matmul operand must be the weight (the rhs)";
  if (!p.tb)
    return "a block-quantized weight is read as a [N, K] matrix with transpose_b only";
  for (const Tensor *t : p.weights) {
    if (t->shape.size() != 2)
      return "a block-quantized weight is read as a [N, K] matrix with transpose_b only";
    if (t->quant != w.quant)
      return "the weights of a matmul_group must share one storage type (one quantized format)";
  }
  if (p.norm || p.residual)
    return "a matmul_group of block-quantized weights folds no norm or residual (its GEMV quantizes the stored lhs)";
  if (!a.isFloat() || !a.viewMacro.empty() || a.permuted)
    return "a matmul against a block-quantized weight takes f32 / f16 activations in contiguous rows";
  for (const Tensor *o : p.results)
    if (!o->isFloat() || o->kind == Kind::BF16 || !o->viewMacro.empty() || o->permuted)
      return "a matmul against a block-quantized weight writes f32 / f16 results in contiguous rows";
  const SpirvTarget &target = kb.target();
  if (!target.subgroupArithmetic || target.subgroupSize < 4)
    return "the GEMV against a block-quantized weight needs subgroup arithmetic";
  if (target.maxWorkgroupInvocations < kWorkgroup)
    return "the matmul kernel needs a workgroup of " + std::to_string(kWorkgroup) + " invocations";
  return "";
}

/// The static N of weight `w`.
int64_t rowsOf(const Tensor *w) { return w->shape[0].getConstant(); }

/// The weights' defines: quant.glsl's reader of the one weight, or of each segment of a group (QUANT_WORDS<s>,
/// QUANT_SCALE_WORDS, QUANT_ROWS_OF; the format and K are shared), and LOAD_B dequantizing (segment gSeg's).
void defineQuantWeights(KernelBuilder &kb, const MatmulParts &p) {
  const Tensor &w = *p.weights[0];
  kb.define("LOAD_B(i)", "quantAt(i)");
  if (!p.group) {
    defineQuantReader(kb, w);
    return;
  }
  const uint64_t cols = uint64_t(w.shape.back().getConstant());
  kb.define(*w.quant == QuantFormat::Q8_0 ? "QUANT_Q8" : "QUANT_Q4");
  kb.define("QUANT_KB", std::to_string(cols / 32) + "u");
  std::string scaleWords, rows;
  for (size_t s = 0; s < p.weights.size(); ++s) {
    const uint64_t n = uint64_t(rowsOf(p.weights[s]));
    kb.define("QUANT_WORDS" + std::to_string(s), p.weights[s]->buf());
    scaleWords += (s ? ", " : "") + std::to_string(quantBytes(*w.quant, n * cols) / 4) + "u";
    rows += (s ? ", " : "") + std::to_string(n) + "u";
  }
  kb.define("QUANT_SCALE_WORDS", "uint[](" + scaleWords + ")");
  kb.define("QUANT_ROWS_OF", "uint[](" + rows + ")");
}

/// The kernel's name: group / silu_mul, format, GEMV rows, its paths ("_only": the small-rows variant), kinds and
/// static N (each weight's) x K.
std::string quantMatmulName(KernelBuilder &kb, const MatmulParts &p, uint32_t gemvRows, const CoopmatTile &cm) {
  const Tensor &a = kb.in(0), &w = *p.weights[0], &o = *p.results[0];
  const SpirvTarget &target = kb.target();
  std::string name = p.group ? "matmul_group" + std::to_string(p.weights.size()) + (p.siluMul ? "_silu_mul" : "")
                             : std::string("matmul");
  name += "_tb_";
  name += std::string(quantFormatName(*w.quant)) + "_gemv" + std::to_string(gemvRows);
  name += target.smallRowsVariant ? "_only" : "_tile64";
  name += target.integerDotProduct ? "_idot" : "";
  if (cm.bm)
    name += (target.emulateCooperativeMatrix ? "_coopmatemu" : "_coopmat") + cm.tag();
  name += a.kind != o.kind ? std::string("_a") + kindName(a.kind) : "";
  std::string ns;
  for (const Tensor *t : p.weights)
    ns += (ns.empty() ? "" : "+") + std::to_string(rowsOf(t));
  return name + "_n" + ns + "k" + std::to_string(w.shape[1].getConstant());
}

/// x: the GEMV's row blocks (rows per workgroup: its subgroups x QUANT_GEMV_ROWS; a group's segments' blocks
/// after one another unless silu_mul) plus, but in the small-rows variant, the tiles (ceil(M / tileM) x the
/// tile columns of every segment, M / tileM + 1 of them per column when M is symbolic); the path not taken exits
/// at once, and both loop grid-stride, so any count is correct.
ir::SymExpr quantWorkgroupsX(KernelBuilder &kb, const MatmulParts &p, uint32_t gemvRows, const CoopmatTile &cm) {
  const SpirvTarget &target = kb.target();
  const bool coopmat = cm.bm != 0;
  const int64_t tileM = coopmat ? cm.bm : kTile, tileN = coopmat ? cm.bn : kTile;
  int64_t n = 0, tilesN = 0;
  for (const Tensor *w : p.weights) {
    if (p.siluMul && n) // one result: the gate's columns
      break;
    n += rowsOf(w);
    tilesN += (rowsOf(w) + tileN - 1) / tileN;
  }
  const int64_t rowsPerGroup = int64_t(kWorkgroup / target.subgroupSize) * gemvRows;
  const int64_t gemvGroups = std::min<int64_t>((n + rowsPerGroup - 1) / rowsPerGroup, 65535);
  if (target.smallRowsVariant)
    return ir::SymExpr::constant(gemvGroups * kWorkgroup);
  const Tensor &a = kb.in(0);
  const ir::SymExpr &m = a.shape[a.shape.size() - 2];
  if (m.isConstant())
    return ir::SymExpr::constant(
        std::min<int64_t>(gemvGroups + tilesN * ((m.getConstant() + tileM - 1) / tileM), 65535) * kWorkgroup);
  return ir::SymExpr::constant((gemvGroups + tilesN) * kWorkgroup) + scaleSym(m, tilesN * (kWorkgroup / tileM));
}

/// The rows the small-rows variant is dispatched for (at most kSpirvGemvRows): M times a constant batch, or M
/// plus the batch dims (their product is then at most 4 too): rows, batch folded in, the full kernel also takes
/// its GEMV for (at most kQuantGemvMaxRows). nullopt when M is static.
std::optional<ir::SymExpr> quantSmallRows(const Tensor &o, const ir::SymExpr &m) {
  static_assert(kSpirvGemvRows <= kQuantGemvMaxRows, "the small-rows variant's rows take the quantized GEMV");
  if (m.isConstant())
    return std::nullopt;
  int64_t batch = 1;
  ir::SymExpr sum = m;
  bool symbolicBatch = false;
  for (size_t d = 0; d + 2 < o.shape.size(); ++d) {
    symbolicBatch |= !o.shape[d].isConstant();
    sum = sum + o.shape[d];
    batch *= o.shape[d].isConstant() ? o.shape[d].getConstant() : 1;
  }
  if (symbolicBatch)
    return sum;
  return batch >= 1 ? std::optional<ir::SymExpr>(scaleSym(m, batch)) : std::nullopt;
}

} // namespace

bool emitQuantMatmul(KernelBuilder &kb, const MatmulParts &p) {
  const std::string why = quantMatmulRefusal(kb, p);
  if (!why.empty())
    return kb.fail(why);
  const Tensor &a = kb.in(0), &w = *p.weights[0], &o = *p.results[0];
  const SpirvTarget &target = kb.target();
  const size_t ra = a.dims.size(), ro = o.dims.size();
  int64_t widest = 0;
  for (const Tensor *t : p.weights)
    widest = std::max(widest, rowsOf(t));
  const int64_t k = w.shape[1].getConstant();
  // Tensor cores for prefill: B staged as f16, like an f16 weight's (CoopmatTiles.h picks the block by N); the
  // small-rows variant has the GEMV only (no shared memory).
  const CoopmatTile cm =
      target.smallRowsVariant ? CoopmatTile{} : coopmatTileFor(target, a.kind, Kind::F16, widest, k, kTileBytes);
  const bool coopmat = cm.bm != 0;
  kb.setWorkgroup(kWorkgroup);
  // The small-rows variant quantizes its rows of A (at most kSpirvGemvRows) once per workgroup into shared memory
  // (QUANT_SHARED_A: a byte per element, 8 per block) where that fits.
  const uint64_t sharedA = uint64_t(kSpirvGemvRows) * (uint64_t(k) + uint64_t(k) / 32 * 8);
  const bool quantSharedA = target.smallRowsVariant && sharedA <= target.maxSharedMemory;
  kb.setSharedBytes(target.smallRowsVariant ? uint32_t(sharedA) * quantSharedA
                                            : kTileBytes + cm.sharedBytes() * coopmat);
  if (quantSharedA)
    kb.define("QUANT_SHARED_A");
  if (coopmat)
    defineCoopmat(kb, cm, !p.group && o.kind == Kind::F32 && widest % 4 == 0);
  kb.useSubgroupArithmetic();
  if (target.integerDotProduct)
    kb.useIntegerDotProduct(); // the GEMV's block products (gemv_quant.glsl); the tiles dequantize to f32 / f16
  UintExpr batch = UintExpr::k(1);
  for (size_t d = 0; d + 2 < ro; ++d)
    batch = batch * o.dims[d];
  const ir::SymExpr &m = a.shape[ra - 2];
  if (!target.smallRowsVariant)
    kb.kernel.smallRows = quantSmallRows(o, m); // decode steps may take the GEMV-only variant
  else
    kb.define("GEMV_ONLY");
  kb.define("MM_M", a.dims[ra - 2].str());
  kb.define("MM_K", a.dims[ra - 1].str());
  kb.define("MM_BATCH", batch.str());
  kb.define("VEC_WIDTH", "0"); // the tiles' scalar loads (LOAD_B dequantizes); the GEMV has its own vectors
  kb.define("TRANSPOSE_B");
  kb.define("QUANT_B");
  const uint32_t gemvRows = quantGemvRows(widest);
  kb.define("QUANT_GEMV_ROWS", std::to_string(gemvRows) + "u");
  kb.bindRole("A", a);
  if (p.group) {
    defineGroup(kb, p);
  } else {
    kb.define("MM_N", o.dims[ro - 1].str());
    kb.bindRole("OUT", o);
  }
  defineQuantWeights(kb, p);
  // The weight has no batch dims: batch bz's rows of A follow the previous batch's.
  kb.addGenerated("void batchOffsets(uint bz, out uint A0, out uint B0) {\n  A0 = bz * MM_M * MM_K;\n  B0 = 0u;\n}\n");
  kb.kernel.name = quantMatmulName(kb, p, gemvRows, cm);
  // z: one (matmul.comp loops over the batch).
  kb.kernel.globalSize = {quantWorkgroupsX(kb, p, gemvRows, cm), ir::SymExpr::constant(1), ir::SymExpr::constant(1)};
  kb.useShader("matmul.comp");
  return true;
}

} // namespace kiln::codegen::spirv
