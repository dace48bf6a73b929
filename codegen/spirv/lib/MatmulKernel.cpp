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

#include <cstdio>
#include <cstdlib>

using namespace mlir;

namespace kiln::codegen::spirv {
namespace {

using ir::SymExpr;

constexpr uint32_t kWorkgroup = 256, kGemvRows = uint32_t(kSpirvGemvRows), kTile = 64, kTileDepth = 16;

/// The GEMV's tuning: output columns per team (each activation vector load shared by them), the subgroups its
/// grid should keep in flight (about 256 K invocations: enough loads outstanding to reach a large GPU's memory
/// bandwidth; smaller grids split K over more subgroups per team), and vector steps per loop iteration (all
/// their weight loads issued before their FMAs). Measured by bench/gemv-sweep-gpu.sh on an H100 (TinyLlama f16
/// decode, bench/results-2026-12-07-h100-session10.txt): 4,8192,4 550 tokens/s, 4,2048,2 445, 4,4096,2 475.
/// KILN_SPIRV_GEMV="COLUMNS,SUBGROUPS,STEPS" overrides them at compile time, for tuning runs
/// (bench/gemv-sweep-*.sh) only: the sums are the same in every setting but COLUMNS (which changes no
/// per-column order either), so the outputs are too.
struct GemvTuning {
  uint32_t columns = 4;
  int64_t targetSubgroups = 8192;
  uint32_t steps = 4;
};

const GemvTuning &gemvTuning() {
  static const GemvTuning tuning = [] {
    GemvTuning t;
    if (const char *env = std::getenv("KILN_SPIRV_GEMV")) {
      unsigned c = 0, st = 0;
      long long sg = 0;
      if (std::sscanf(env, "%u,%lld,%u", &c, &sg, &st) == 3 && (c == 1 || c == 2 || c == 4 || c == 8) && sg > 0 &&
          st >= 1 && st <= 8) {
        t.columns = c;
        t.targetSubgroups = sg;
        t.steps = st;
      }
    }
    return t;
  }();
  return tuning;
}
/// Workgroups a GEMV's grid should have at least (about one per multiprocessor of a large GPU: an H100 has 132).
constexpr int64_t kGemvMinGroups = 128;
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
  uint32_t rows = gemvTuning().columns, teams = 1;
  int64_t subgroups = 0; // subgroups of the whole grid (0: N or K symbolic)
};

/// Teams of whole subgroups with `rows` output columns each: K is split over more subgroups of the workgroup
/// (fewer teams, each more invocations) while the grid would have fewer than gemvTuning().targetSubgroups subgroups in
/// flight and every invocation still loads at least two vectors of each row; `kVectors` = K / the vector
/// width, 0 when N or K is symbolic (one subgroup per team).
GemvSplit teamSplit(uint32_t rows, int64_t n, int64_t kVectors, const SpirvTarget &target) {
  GemvSplit split;
  split.rows = rows;
  const uint32_t subgroupsPerGroup = std::max<uint32_t>(1, kWorkgroup / target.subgroupSize);
  uint32_t perTeam = 1;
  if (n > 0 && kVectors > 0) {
    const int64_t teamsTotal = (n + rows - 1) / rows;
    while (perTeam < subgroupsPerGroup && teamsTotal * perTeam < gemvTuning().targetSubgroups &&
           kVectors >= int64_t(2) * target.subgroupSize * perTeam * 2)
      perTeam *= 2;
    split.subgroups = teamsTotal * perTeam;
  }
  split.teams = subgroupsPerGroup / perTeam;
  return split;
}

/// The split of an N x K GEMV: gemvTuning().columns output columns per team (each activation vector load
/// shared by them) unless that leaves both fewer than gemvTuning().targetSubgroups subgroups and fewer than kGemvMinGroups
/// workgroups (few rows, e.g. 256-row K / V projections: most of a large GPU would idle), then 2 or 1 columns
/// per team (more teams, so more workgroups).
GemvSplit gemvSplit(int64_t n, int64_t kVectors, const SpirvTarget &target, bool subgroups) {
  if (!subgroups)
    return GemvSplit{}; // one team: the whole workgroup
  GemvSplit split;
  for (uint32_t rows = gemvTuning().columns; rows >= 1; rows /= 2) {
    split = teamSplit(rows, n, kVectors, target);
    if (n <= 0 || split.subgroups >= gemvTuning().targetSubgroups ||
        (n + rows * split.teams - 1) / (rows * split.teams) >= kGemvMinGroups)
      break;
  }
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

/// Shared memory of the folds: gRs, 1/rms of up to 256 rows (matmul_folds.glsl).
constexpr uint32_t kRowScaleBytes = 256 * 4;

/// The defines of a group's folds (matmul_folds.glsl): NORM with its eps, unit offset and weight NW for up to
/// `rsRows` rows of A per block; RESIDUAL with R.
void defineFolds(KernelBuilder &kb, const MatmulParts &p, uint32_t rsRows) {
  if (p.norm) {
    kb.define("NORM");
    kb.define("NORM_EPS", glslFloat(p.normEps));
    kb.define("RS_ROWS", std::to_string(rsRows) + "u");
    if (p.normUnitOffset)
      kb.define("NORM_UNIT_OFFSET");
    kb.bindRole("NW", *p.norm);
  }
  if (p.residual) {
    kb.define("RESIDUAL");
    kb.bindRole("R", *p.residual);
  }
}

/// The kernel's name: the paths it has (pathTag: "_only" for the GEMV-only variant, or the cooperative-matrix
/// block), the storage kinds, and the static N (each weight's) x K.
std::string matmulName(const MatmulParts &p, const Tensor &a, const GemvSplit &split, uint32_t vecWidth,
                       bool subgroups, const std::string &pathTag, int64_t kStatic) {
  const Tensor &b = *p.weights[0], &o = *p.results[0];
  std::string name = p.group ? "matmul_group" + std::to_string(p.weights.size()) + (p.siluMul ? "_silu_mul" : "") + "_"
                             : std::string("matmul_");
  const bool gemvOnly = pathTag == "_only";
  name += p.tb ? "tb_gemv" + std::to_string(split.rows) + (gemvOnly ? "_only" : "_tile64") : "tile64";
  name += (vecWidth ? "_v" + std::to_string(vecWidth) : "") + (subgroups ? "_sg" : "") + (gemvOnly ? "" : pathTag);
  // "_w" + the weights' storage kind ("_wf16"; "_b" read as "_bf16" was taken for bf16 weights), "_a" + A's.
  name += (b.kind != o.kind ? std::string("_w") + kindName(b.kind) : "") +
          (a.kind != o.kind ? std::string("_a") + kindName(a.kind) : "");
  name += std::string(p.norm ? "_norm" : "") + (p.residual ? "_res" : "");
  // Static N x K in the name (the module is the same; a profile then splits the time by shape).
  std::string ns;
  for (const Tensor *w : p.weights) {
    if (!w->shape[w->shape.size() - 2].isConstant() || kStatic <= 0)
      return name;
    ns += (ns.empty() ? "" : "+") + std::to_string(w->shape[w->shape.size() - 2].getConstant());
  }
  return name + "_n" + ns + "k" + std::to_string(kStatic);
}

/// Rows of the GEMV's grid: N, or each weight's N added (a group without silu_mul: its segments' blocks go to
/// different workgroups); symbolic when N is.
SymExpr gemvRows(const MatmulParts &p) {
  if (!p.group || p.siluMul) {
    const Tensor &o = *p.results[0];
    return o.shape[o.shape.size() - 1];
  }
  int64_t rows = 0;
  for (const Tensor *w : p.weights)
    rows += w->shape[0].getConstant();
  return SymExpr::constant(rows);
}

/// The N the cooperative-matrix block is chosen for: the result's (static) N, for a group its widest weight's.
int64_t blockN(const MatmulParts &p) {
  int64_t n = 0;
  if (!p.group) {
    const Tensor &o = *p.results[0];
    const SymExpr &d = o.shape[o.shape.size() - 1];
    return d.isConstant() ? d.getConstant() : 0;
  }
  for (const Tensor *w : p.weights) {
    const SymExpr &d = w->shape[w->shape.size() - 2];
    n = std::max<int64_t>(n, d.isConstant() ? d.getConstant() : 0);
  }
  return n;
}

} // namespace

void defineGroup(KernelBuilder &kb, const MatmulParts &p) {
  kb.define("GROUP");
  kb.define("GROUP_SEGMENTS", std::to_string(p.weights.size())); // a number for #if
  if (p.siluMul)
    kb.define("SILU_MUL");
  for (size_t s = 0; s < p.weights.size(); ++s) {
    const Tensor &w = *p.weights[s];
    kb.define("SEG_N" + std::to_string(s), w.dims[0].str());
    if (!w.quant)
      kb.bindRole("B" + std::to_string(s), w);
  }
  for (size_t s = 0; s < p.results.size(); ++s)
    kb.bindRole(p.siluMul ? "Y" : "Y" + std::to_string(s), *p.results[s]);
  kb.define("MM_N", "gN");
}

namespace {

/// The cooperative-matrix tiles store their accumulators straight to the results (CM_DIRECT): every result f32,
/// row-major (no view), with a static N % 4 == 0 (16-byte aligned rows), and no residual read in the epilogue.
bool directStores(const MatmulParts &p) {
  if (p.residual)
    return false;
  for (const Tensor *o : p.results) {
    const SymExpr &n = o->shape[o->shape.size() - 1];
    if (o->kind != Kind::F32 || !o->viewMacro.empty() || !n.isConstant() || n.getConstant() % 4 != 0)
      return false;
  }
  return true;
}

bool emitMatmulKernel(KernelBuilder &kb, const MatmulParts &p) {
  const Tensor &a = p.lhs ? *p.lhs : kb.in(0), &b = *p.weights[0], &o = *p.results[0];
  if (!a.isFloat() || !b.isFloat() || !o.isFloat())
    return kb.fail("only float matmuls have a SPIR-V kernel");
  if (o.kind == Kind::BF16)
    return kb.fail("bf16 results have no SPIR-V matmul kernel");
  for (const Tensor *w : p.weights)
    if (w->kind != b.kind)
      return kb.fail("the weights of a matmul_group must share one storage type");
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
  const bool vec = p.tb && kStatic > 0 && kStatic % vw == 0;
  const bool subgroups = p.tb && kb.target().subgroupArithmetic && kb.target().subgroupSize >= 4;
  const int64_t nStatic = blockN(p);
  const bool gemvOnly = kb.target().smallRowsVariant;
  if (gemvOnly && !p.tb)
    return kb.fail("internal: a GEMV-only variant of a matmul without transpose_b");
  const SymExpr &m = a.shape[ra - 2];
  if (p.tb && !gemvOnly && !m.isConstant())
    kb.kernel.smallRows = m; // decode steps may take the GEMV-only variant
  // Tensor cores (matmul_coopmat.glsl): 8 subgroups of 32, the block chosen for N (CoopmatTiles.h).
  const uint32_t foldBytes = p.norm ? kRowScaleBytes : 0;
  const CoopmatTile cm = p.tb && !gemvOnly
                             ? coopmatTileFor(kb.target(), a.kind, b.kind, nStatic, kStatic, kTileBytes + foldBytes)
                             : CoopmatTile{};
  const bool coopmat = cm.bm != 0;
  // The GEMV-only kernel's normed rows of A, staged once per workgroup (gemv.glsl GEMV_NORM_SHARED) where they
  // fit: scaling A as the loop loads it took 20 more registers per invocation.
  const uint32_t normRowsBytes = gemvOnly && p.norm && vec ? uint32_t(kGemvRows * kStatic * 4) : 0;
  const bool normShared =
      normRowsBytes > 0 && uint64_t(kTileBytes) + foldBytes + normRowsBytes <= kb.target().maxSharedMemory;
  if (normShared)
    kb.define("GEMV_NORM_SHARED");
  // sm (tiles, GEMV reduction) | gRs | cmA, cmB | the normed rows
  kb.setSharedBytes(kTileBytes + foldBytes + cm.sharedBytes() * coopmat + (normShared ? normRowsBytes : 0));
  const SymExpr rows = gemvRows(p);
  const GemvSplit split =
      gemvSplit(rows.isConstant() ? rows.getConstant() : 0, vec ? kStatic / vw : 0, kb.target(), subgroups);
  const std::string pathTag =
      gemvOnly ? "_only" : coopmat ? (kb.target().emulateCooperativeMatrix ? "_coopmatemu" : "_coopmat") + cm.tag() : "";
  kb.kernel.name = matmulName(p, a, split, vec ? vw : 0, subgroups, pathTag, kStatic);
  kb.kernel.globalSize = {workgroupsX(gemvOnly ? SymExpr::constant(kGemvRows) : m, rows, p.tb, split,
                                      coopmat ? cm.bm : kTile, coopmat ? cm.bn : kTile),
                          SymExpr::constant(1),
                          batchCount(o.shape)};
  UintExpr batch = UintExpr::k(1);
  for (size_t d = 0; d + 2 < ro; ++d)
    batch = batch * o.dims[d];
  kb.define("MM_M", a.dims[ra - 2].str());
  kb.define("MM_K", a.dims[ra - 1].str());
  kb.define("MM_BATCH", batch.str());
  kb.define("VEC_WIDTH", std::to_string(vec ? vw : 0));
  if (p.tb) {
    kb.define("TRANSPOSE_B");
    kb.define("GEMV_ROWS", std::to_string(split.rows) + "u");
    kb.define("GEMV_STEPS", std::to_string(gemvTuning().steps) + "u");
    kb.define("GEMV_TEAMS", kb.specConst(split.teams).str()); // a constant: the split shares the module
  }
  if (gemvOnly)
    kb.define("GEMV_ONLY");
  if (subgroups) {
    kb.define("SUBGROUPS");
    kb.useSubgroupArithmetic();
  }
  if (coopmat)
    defineCoopmat(kb, cm, directStores(p));
  kb.bindRole("A", a);
  kb.define("A_BINDING", std::to_string(a.binding)); // the vector views' (a group's normed(y) is not operand 0)
  if (p.group) {
    defineGroup(kb, p);
    defineFolds(kb, p, std::max<uint32_t>(kTile, coopmat ? cm.bm : 0));
  } else {
    kb.define("MM_N", o.dims[ro - 1].str());
    kb.bindRole("B", b);
    kb.bindRole("OUT", o);
  }
  kb.addGenerated(batchOffsets(a, b, o));
  kb.useShader("matmul.comp");
  return true;
}

} // namespace

bool emitMatmul(KernelBuilder &kb, const SpirvOpEntry &) {
  MatmulParts p;
  p.tb = cast<ir::MatmulOp>(kb.op()).getTransposeB();
  p.weights = {&kb.in(1)};
  p.results = {&kb.out()};
  if (kb.in(0).quant || kb.in(1).quant)
    return emitQuantMatmul(kb, p);
  return emitMatmulKernel(kb, p);
}

/// kiln.matmul_group: matmul.comp once per weight (GROUP, matmul_group.glsl).
bool emitMatmulGroup(KernelBuilder &kb, const SpirvOpEntry &) {
  auto op = cast<ir::MatmulGroupOp>(kb.op());
  MatmulParts p;
  p.group = true;
  p.siluMul = op.getSiluMul();
  const unsigned weights = unsigned(op.getWeights().size());
  if (weights > 4)
    return kb.fail("a matmul_group kernel takes at most 4 weights");
  bool quantized = false;
  for (unsigned i = 1; i <= weights; ++i) {
    quantized |= kb.in(i).quant.has_value();
    p.weights.push_back(&kb.in(i));
  }
  unsigned next = weights + 1; // then norm(w), residual(r), normed(y), the results
  if (op.getNormWeight()) {
    p.norm = &kb.in(next++);
    p.normEps = op.getNormEps()->convertToDouble();
    p.normUnitOffset = op.getNormUnitOffset();
  }
  if (op.getResidual())
    p.residual = &kb.in(next++);
  // normed(y): the kernel of many rows reads the norm's stored rows (its tiles would recompute 1/rms per
  // block); the small-rows one (decode) norms the lhs itself and the norm's dispatch is left out.
  if (op.getNormed()) {
    const Tensor &y = kb.in(next++);
    if (!kb.target().smallRowsVariant) {
      p.lhs = &y;
      p.norm = nullptr;
    }
  }
  for (unsigned i = next; i < kb.numTensors(); ++i)
    p.results.push_back(&kb.in(i));
  return quantized ? emitQuantMatmul(kb, p) : emitMatmulKernel(kb, p);
}

} // namespace kiln::codegen::spirv
