//===- RowKernels.cpp - reductions, softmax, rms_norm, layer_norm ---------===//
//
// One workgroup per row (shaders/rows.glsl), shared-memory tree reductions: reduce.comp, softmax.comp,
// rms_norm.comp and layer_norm.comp (with ADD_RESIDUAL for add_rms_norm / add_layer_norm).
//
//===----------------------------------------------------------------------===//
#include "KernelBuilder.h"

#include "kiln/ir/KilnDialect.h"

#include "mlir/IR/BuiltinAttributes.h"

using namespace mlir;

namespace kiln::codegen::spirv {
namespace {

/// The grid and row defines of a row kernel along `axis` of operand 0 (X), with `shader`.
bool rowKernel(KernelBuilder &b, int64_t axis, const std::string &shader) {
  const Tensor &x = b.in(0);
  if (axis < 0)
    axis += (int64_t)x.shape.size();
  if (axis < 0 || axis >= (int64_t)x.shape.size())
    return b.fail("axis out of range");
  // Rows: [outer..., inner...] without the axis.
  ir::SymShape rowSym;
  std::vector<UintExpr> rowDims;
  UintExpr inner = UintExpr::k(1), size = x.dims[axis];
  for (size_t d = 0; d < x.shape.size(); ++d)
    if ((int64_t)d != axis) {
      rowSym.push_back(x.shape[d]);
      rowDims.push_back(x.dims[d]);
    }
  for (size_t d = axis + 1; d < x.shape.size(); ++d)
    inner = inner * x.dims[d];
  uint32_t wg = b.workgroupUpTo(256);
  b.setWorkgroup(wg);
  b.setSharedBytes(wg * 4);
  const SpirvTarget &target = b.target();
  if (target.subgroupArithmetic && target.subgroupSize >= 4 && wg % target.subgroupSize == 0) {
    b.define("ROW_SUBGROUPS"); // workgroup_reduce.glsl: wgSum through subgroupAdd
    b.useSubgroupArithmetic();
  }
  b.useGrid(b.planGrid(rowSym, rowDims, wg, true));
  b.define("ROW_SIZE", size.str());
  b.define("ROW_STRIDE", inner.str());
  b.define("ROW_SPAN", (size * inner).str());
  b.bindRole("X", x);
  b.bindRole("OUT", b.out());
  b.useShader(shader);
  return true;
}

/// Rejects what the row kernels do not compute: non-float tensors, bf16 results.
bool checkFloatRows(KernelBuilder &b) {
  if (!b.in(0).isFloat() || !b.out().isFloat())
    return b.fail("only float tensors have a SPIR-V row kernel");
  if (b.out().kind == Kind::BF16)
    return b.fail("bf16 results have no SPIR-V row kernel");
  return true;
}

/// The norms' shared part: residual roles (R, H) for the add_ forms, the weight W, the epsilon.
bool normKernel(KernelBuilder &b, bool addResidual, double eps, const std::string &shader) {
  if (!checkFloatRows(b))
    return false;
  unsigned next = 1;
  if (addResidual) {
    const Tensor &r = b.in(1), &h = b.in(b.op()->getNumOperands());
    if (!r.isFloat() || !h.isFloat())
      return b.fail("only float tensors have a SPIR-V row kernel");
    if (h.kind == Kind::BF16)
      return b.fail("bf16 results have no SPIR-V row kernel");
    b.define("ADD_RESIDUAL");
    b.bindRole("R", r);
    b.bindRole("H", h);
    next = 2;
  }
  b.bindRole("W", b.in(next));
  if (isa<ir::LayerNormOp, ir::AddLayerNormOp>(b.op()))
    b.bindRole("B", b.in(next + 1));
  b.define("NORM_EPS", glslFloat(eps));
  if (!rowKernel(b, (int64_t)b.in(0).shape.size() - 1, shader))
    return false;
  // rms_norm.comp holds a static row of up to kMaxRowRegs elements per invocation in registers; H must be
  // f32 then (the other form normalizes H as stored, rounded to 16 bits).
  constexpr uint64_t kMaxRowRegs = 16;
  const UintExpr &size = b.in(0).dims.back();
  const uint64_t wg = b.workgroupX(), regs = size.isConst ? (size.value + wg - 1) / wg : 0;
  const bool hF32 = !addResidual || b.in(b.op()->getNumOperands()).kind == Kind::F32;
  if (shader == "rms_norm.comp" && regs >= 1 && regs <= kMaxRowRegs && hF32)
    b.define("ROW_REGS", std::to_string(regs) + "u");
  return true;
}

} // namespace

bool emitReduce(KernelBuilder &b, const SpirvOpEntry &) {
  const Tensor &x = b.in(0), &o = b.out();
  // Integer sums / maxima go through f32 (rows.glsl).
  bool intReduce = !x.isFloat() && isa<ir::ReduceSumOp, ir::ReduceMaxOp>(b.op()) && !o.isFloat();
  if (!intReduce && !checkFloatRows(b))
    return false;
  b.define(isa<ir::ReduceSumOp>(b.op()) ? "REDUCE_SUM" : isa<ir::ReduceMeanOp>(b.op()) ? "REDUCE_MEAN" : "REDUCE_MAX");
  return rowKernel(b, b.op()->getAttrOfType<IntegerAttr>("axis").getInt(), "reduce.comp");
}

bool emitSoftmax(KernelBuilder &b, const SpirvOpEntry &) {
  if (!checkFloatRows(b))
    return false;
  return rowKernel(b, cast<ir::SoftmaxOp>(b.op()).getAxis(), "softmax.comp");
}

bool emitRmsNorm(KernelBuilder &b, const SpirvOpEntry &) {
  auto rms = dyn_cast<ir::RmsNormOp>(b.op());
  auto addRms = dyn_cast<ir::AddRmsNormOp>(b.op());
  if (rms ? rms.getUnitOffset() : addRms.getUnitOffset())
    b.define("UNIT_OFFSET");
  double eps = (rms ? rms.getEps() : addRms.getEps()).convertToDouble();
  if (!normKernel(b, bool(addRms), eps, "rms_norm.comp"))
    return false;
  // Read only as a matmul_group's normed(y) (kiln-fuse-matmul-norms): steps of few rows take the group's
  // small-rows kernel, which norms its lhs itself, so this norm's small-rows variant is an empty grid (the
  // runtime records no command for it) under the group's condition (its rows, the same symbolic dim).
  const ir::SymShape &shape = b.in(0).shape;
  auto group = rms && rms->hasOneUse() ? dyn_cast<ir::MatmulGroupOp>(*rms->user_begin()) : ir::MatmulGroupOp();
  if (group && group.getNormed() == rms.getResult() && shape.size() >= 2 && !shape[shape.size() - 2].isConstant()) {
    b.kernel.smallRows = shape[shape.size() - 2];
    if (b.target().smallRowsVariant) {
      b.kernel.name = "rms_norm_in_gemv";
      b.kernel.globalSize = {ir::SymExpr::constant(0), ir::SymExpr::constant(1), ir::SymExpr::constant(1)};
    }
  }
  return true;
}

bool emitLayerNorm(KernelBuilder &b, const SpirvOpEntry &) {
  auto ln = dyn_cast<ir::LayerNormOp>(b.op());
  auto addLn = dyn_cast<ir::AddLayerNormOp>(b.op());
  double eps = (ln ? ln.getEps() : addLn.getEps()).convertToDouble();
  return normKernel(b, bool(addLn), eps, "layer_norm.comp");
}

} // namespace kiln::codegen::spirv
