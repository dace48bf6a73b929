//===- MatmulKernel.cpp - matmul: GEMV for M <= 4, register-blocked tiles -===//
//
// shaders/matmul.comp. Every static dim of the operands and the result is a specialization constant (one
// per dim, in order), so matmuls of one shape class (dtypes, transpose, ranks and broadcasts, K's vector
// width) share one module; only K's static value picks the code (the vector loads).
//
//===----------------------------------------------------------------------===//
#include "KernelBuilder.h"

#include "kiln/ir/KilnDialect.h"

using namespace mlir;

namespace kiln::codegen::spirv {
namespace {

using ir::SymExpr;

constexpr uint32_t kWorkgroup = 256, kColumnsPerGemv = 4, kGemvRows = 4, kTile = 64, kTileDepth = 16;

/// The batch coordinates of bz and each operand's matrix offset (broadcast batch dims read at 0).
std::string batchOffsets(const Tensor &a, const Tensor &b, const Tensor &o) {
  ir::SymShape batchSym(o.shape.begin(), o.shape.end() - 2);
  std::vector<UintExpr> batchDims(o.dims.begin(), o.dims.end() - 2);
  auto strides = [&](const Tensor &t) {
    std::vector<UintExpr> s(batchSym.size(), UintExpr::k(0));
    size_t tbatch = t.dims.size() - 2, off = batchSym.size() - tbatch;
    UintExpr st = t.dims[t.dims.size() - 1] * t.dims[t.dims.size() - 2];
    for (int i = (int)tbatch - 1; i >= 0; --i) {
      s[off + i] = (t.shape[i].isOne() && !batchSym[off + i].isOne()) ? UintExpr::k(0) : st;
      st = st * t.dims[i];
    }
    return s;
  };
  return "void batchOffsets(uint bz, out uint A0, out uint B0) {\n" +
         KernelBuilder::coords(batchDims, "bz", "c", "  ") + "  A0 = " + KernelBuilder::offset(strides(a)) +
         ";\n  B0 = " + KernelBuilder::offset(strides(b)) + ";\n}\n";
}

/// z: the batch, with a symbolic global size when it has a symbolic dim.
SymExpr batchCount(const ir::SymShape &out) {
  SymExpr count = SymExpr::constant(1);
  int64_t constant = 1;
  for (size_t d = 0; d + 2 < out.size(); ++d) {
    if (!out[d].isConstant()) {
      if (count.isConstant())
        count = out[d];
    } else
      constant *= out[d].getConstant();
  }
  return count.isConstant() ? SymExpr::constant(std::min<int64_t>(constant, 65535)) : count;
}

/// x: enough workgroups for the GEMV's column groups or the tiles, whichever path M takes.
SymExpr workgroupsX(const SymExpr &mSym, const SymExpr &nSym, bool tb) {
  auto ceilDiv = [](int64_t x, int64_t y) { return (x + y - 1) / y; };
  if (!nSym.isConstant())
    return scaleSym(nSym, kWorkgroup / kColumnsPerGemv); // N / 4 workgroups
  int64_t n = nSym.getConstant(), tilesN = ceilDiv(n, kTile);
  int64_t groups = 0;
  if (tb && mSym.isConstant())
    groups = mSym.getConstant() <= kGemvRows ? ceilDiv(n, kColumnsPerGemv) : ceilDiv(mSym.getConstant(), kTile) * tilesN;
  else if (tb)
    groups = ceilDiv(n, kColumnsPerGemv); // >= the tiles for M <= 16 N / ... (M <= 1024 when N >= 64); more loop
  else if (mSym.isConstant())
    groups = ceilDiv(mSym.getConstant(), kTile) * tilesN;
  if (groups)
    return SymExpr::constant(std::min<int64_t>(groups, 65535) * kWorkgroup);
  // Symbolic M, no transpose: tilesN + M tilesN / 64 workgroups cover every tile.
  return SymExpr::constant(tilesN * kWorkgroup) + scaleSym(mSym, tilesN * (kWorkgroup / kTile));
}

} // namespace

bool emitMatmul(KernelBuilder &kb, const SpirvOpEntry &) {
  bool tb = cast<ir::MatmulOp>(kb.op()).getTransposeB();
  const Tensor &a = kb.in(0), &b = kb.in(1), &o = kb.out();
  if (!a.isFloat() || !b.isFloat() || !o.isFloat())
    return kb.fail("only float matmuls have a SPIR-V kernel");
  if (o.kind == Kind::BF16)
    return kb.fail("bf16 results have no SPIR-V matmul kernel");
  size_t ra = a.dims.size(), ro = o.dims.size();
  if (ra < 2 || b.dims.size() < 2)
    return kb.fail("operands need rank >= 2");
  const int64_t kStatic = a.shape[ra - 1].isConstant() ? a.shape[ra - 1].getConstant() : 0;
  for (unsigned i = 0; i < kb.numTensors(); ++i)
    for (UintExpr &d : kb.tensor(i).dims)
      if (d.isConst)
        d = kb.specConst(d.value);
  if (kb.target().maxWorkgroupInvocations < kWorkgroup)
    return kb.fail("the matmul kernel needs a workgroup of " + std::to_string(kWorkgroup) + " invocations");
  kb.setWorkgroup(kWorkgroup);
  kb.setSharedBytes(2 * kTileDepth * (kTile + 1) * 4); // the A | B tiles, reused by the GEMV reduction
  const uint32_t vw = (a.is16() || b.is16()) ? 8 : 4;
  const bool vec = tb && kStatic > 0 && kStatic % vw == 0;
  const bool subgroups = tb && kb.target().subgroupArithmetic && kb.target().subgroupSize >= 4;
  kb.kernel.name = std::string(tb ? "matmul_tb_gemv4_tile64" : "matmul_tile64") + (vec ? "_v" + std::to_string(vw) : "") +
                   (subgroups ? "_sg" : "") + (b.kind != o.kind ? std::string("_b") + kindName(b.kind) : "") +
                   (a.kind != o.kind ? std::string("_a") + kindName(a.kind) : "");
  kb.kernel.globalSize = {workgroupsX(a.shape[ra - 2], o.shape[ro - 1], tb), SymExpr::constant(1), batchCount(o.shape)};
  UintExpr batch = UintExpr::k(1);
  for (size_t d = 0; d + 2 < ro; ++d)
    batch = batch * o.dims[d];
  kb.define("MM_M", a.dims[ra - 2].str());
  kb.define("MM_N", o.dims[ro - 1].str());
  kb.define("MM_K", a.dims[ra - 1].str());
  kb.define("MM_BATCH", batch.str());
  kb.define("VEC_WIDTH", std::to_string(vec ? vw : 0));
  if (tb)
    kb.define("TRANSPOSE_B");
  if (subgroups) {
    kb.define("SUBGROUPS");
    kb.useSubgroupArithmetic();
  }
  kb.bindRole("A", a);
  kb.bindRole("B", b);
  kb.bindRole("OUT", o);
  kb.addGenerated(batchOffsets(a, b, o));
  kb.useShader("matmul.comp");
  return true;
}

} // namespace kiln::codegen::spirv
