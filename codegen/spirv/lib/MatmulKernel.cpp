//===- MatmulKernel.cpp - matmul: GEMV for M <= 4, register-blocked tiles -===//
//
// shaders/matmul.comp. Every static dim of the operands and the result is a specialization constant (one
// per dim, in order), so matmuls of one shape class (dtypes, transpose, ranks and broadcasts, K's vector
// width) share one module; only K's static value picks the code (the vector loads).
//
//===----------------------------------------------------------------------===//
#include "CoopmatTiles.h"
#include "KernelBuilder.h"

#include "kiln/ir/KilnDialect.h"

using namespace mlir;

namespace kiln::codegen::spirv {
namespace {

using ir::SymExpr;

constexpr uint32_t kWorkgroup = 256, kGemvColumns = 4, kGemvRows = 4, kTile = 64, kTileDepth = 16;
/// Subgroups the GEMV grid should keep in flight (about 64 K invocations: enough loads outstanding to reach a
/// large GPU's memory bandwidth); smaller grids split K over more subgroups per team.
constexpr int64_t kGemvTargetSubgroups = 2048;
/// Shared memory: sm, the scalar tiles (2 x 16 x 65 floats, also the GEMV's reduction and the cooperative
/// tiles' staging), and cmA / cmB of matmul_coopmat.glsl (CoopmatTile::sharedBytes).
constexpr uint32_t kTileBytes = 2 * kTileDepth * (kTile + 1) * 4;

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

/// The GEMV's split (gemv.glsl): `rows` output columns per team, `teams` teams per workgroup.
struct GemvSplit {
  uint32_t rows = kGemvColumns, teams = 1;
};

/// Teams of whole subgroups: K is split over more subgroups of the workgroup (fewer teams, each more
/// invocations) while the grid would have fewer than kGemvTargetSubgroups subgroups in flight and every
/// invocation still loads at least two vectors of each row; `kVectors` = K / the vector width, 0 when N or K
/// is symbolic (one subgroup per team).
GemvSplit gemvSplit(int64_t n, int64_t kVectors, const SpirvTarget &target, bool subgroups) {
  GemvSplit split;
  if (!subgroups)
    return split; // one team: the whole workgroup
  const uint32_t subgroupsPerGroup = std::max<uint32_t>(1, kWorkgroup / target.subgroupSize);
  uint32_t perTeam = 1;
  if (n > 0 && kVectors > 0) {
    const int64_t teamsTotal = (n + split.rows - 1) / split.rows;
    while (perTeam < subgroupsPerGroup && teamsTotal * perTeam < kGemvTargetSubgroups &&
           kVectors >= int64_t(2) * target.subgroupSize * perTeam * 2)
      perTeam *= 2;
  }
  split.teams = subgroupsPerGroup / perTeam;
  return split;
}

/// x: enough workgroups for the GEMV's row blocks (M <= 4 with transpose_b) and for the tiles (tileM x tileN of
/// OUT each), whichever path M takes (a symbolic M: both, added; the path not taken exits at once). Any count
/// is correct (grid-stride).
SymExpr workgroupsX(const SymExpr &mSym, const SymExpr &nSym, bool tb, const GemvSplit &split, int64_t tileM,
                    int64_t tileN) {
  auto ceilDiv = [](int64_t x, int64_t y) { return (x + y - 1) / y; };
  const int64_t rowsPerGroup = int64_t(split.rows) * split.teams;
  const bool gemvOnly = tb && mSym.isConstant() && mSym.getConstant() <= kGemvRows;
  const bool tilesOnly = !tb || (mSym.isConstant() && mSym.getConstant() > kGemvRows);
  if (!nSym.isConstant()) {
    // N / rowsPerGroup workgroups for the GEMV; the tiles' count (M / 64 x N / 64) is not linear in the
    // symbols, so a symbolic N over 64 x 64 tiles is covered by the grid-stride loop.
    return scaleSym(nSym, kWorkgroup / rowsPerGroup);
  }
  const int64_t n = nSym.getConstant(), tilesN = ceilDiv(n, tileN);
  const int64_t gemvGroups = std::min<int64_t>(ceilDiv(n, rowsPerGroup), 65535);
  if (gemvOnly)
    return SymExpr::constant(gemvGroups * kWorkgroup);
  if (mSym.isConstant())
    return SymExpr::constant(std::min<int64_t>(ceilDiv(mSym.getConstant(), tileM) * tilesN, 65535) * kWorkgroup);
  // Symbolic M: tilesN + M tilesN / tileM workgroups cover every tile (+ the GEMV's, for transpose_b).
  SymExpr tiles = SymExpr::constant(tilesN * kWorkgroup) + scaleSym(mSym, tilesN * (kWorkgroup / tileM));
  return tilesOnly ? tiles : tiles + SymExpr::constant(gemvGroups * kWorkgroup);
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
  const uint32_t vw = (a.is16() || b.is16()) ? 8 : 4;
  const bool vec = tb && kStatic > 0 && kStatic % vw == 0;
  const bool subgroups = tb && kb.target().subgroupArithmetic && kb.target().subgroupSize >= 4;
  const int64_t nStatic = o.shape[ro - 1].isConstant() ? o.shape[ro - 1].getConstant() : 0;
  // Tensor cores (matmul_coopmat.glsl): 8 subgroups of 32, the block chosen for N (CoopmatTiles.h).
  const CoopmatTile cm = tb ? coopmatTileFor(kb.target(), a.kind, b.kind, nStatic, kStatic, kTileBytes) : CoopmatTile{};
  const bool coopmat = cm.bm != 0;
  kb.setSharedBytes(kTileBytes + cm.sharedBytes() * coopmat); // sm (tiles, GEMV reduction) | cmA, cmB
  const GemvSplit split = gemvSplit(nStatic, vec ? kStatic / vw : 0, kb.target(), subgroups);
  std::string name = tb ? "matmul_tb_gemv" + std::to_string(split.rows) + "_tile64" : "matmul_tile64";
  name += (vec ? "_v" + std::to_string(vw) : "") + (subgroups ? "_sg" : "") +
          (coopmat ? (kb.target().emulateCooperativeMatrix ? "_coopmatemu" : "_coopmat") + cm.tag() : "");
  name += (b.kind != o.kind ? std::string("_b") + kindName(b.kind) : "") +
          (a.kind != o.kind ? std::string("_a") + kindName(a.kind) : "");
  // Static N x K in the name (the module is the same; a profile then splits the time by shape).
  if (nStatic > 0 && kStatic > 0)
    name += "_n" + std::to_string(nStatic) + "k" + std::to_string(kStatic);
  kb.kernel.name = name;
  kb.kernel.globalSize = {workgroupsX(a.shape[ra - 2], o.shape[ro - 1], tb, split, coopmat ? cm.bm : kTile,
                                      coopmat ? cm.bn : kTile),
                          SymExpr::constant(1),
                          batchCount(o.shape)};
  UintExpr batch = UintExpr::k(1);
  for (size_t d = 0; d + 2 < ro; ++d)
    batch = batch * o.dims[d];
  kb.define("MM_M", a.dims[ra - 2].str());
  kb.define("MM_N", o.dims[ro - 1].str());
  kb.define("MM_K", a.dims[ra - 1].str());
  kb.define("MM_BATCH", batch.str());
  kb.define("VEC_WIDTH", std::to_string(vec ? vw : 0));
  if (tb) {
    kb.define("TRANSPOSE_B");
    kb.define("GEMV_ROWS", std::to_string(split.rows) + "u");
    kb.define("GEMV_TEAMS", kb.specConst(split.teams).str()); // a constant: the split shares the module
  }
  if (subgroups) {
    kb.define("SUBGROUPS");
    kb.useSubgroupArithmetic();
  }
  if (coopmat)
    defineCoopmat(kb, cm, o.kind == Kind::F32 && nStatic > 0 && nStatic % 4 == 0 && o.viewMacro.empty());
  kb.bindRole("A", a);
  kb.bindRole("B", b);
  kb.bindRole("OUT", o);
  kb.addGenerated(batchOffsets(a, b, o));
  kb.useShader("matmul.comp");
  return true;
}

} // namespace kiln::codegen::spirv
