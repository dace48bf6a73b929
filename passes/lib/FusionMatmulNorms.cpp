//===- FusionMatmulNorms.cpp - RMSNorm into the GEMV's prologue, the residual add into its epilogue ===//
//
// After kiln-fuse-matmul-groups, on the Vulkan partition only (kiln compile --target vulkan): a decode layer
// is QKV group / rope / attention / o / add_rms_norm / gate-up group / down / add_rms_norm, and each norm is a
// dispatch of one workgroup per row between two GEMVs. Two folds remove it:
// 1. Residual epilogue: h = x W^T + r (a transpose_b matmul over a whole Linear weight, read only by the add,
//    and r of the add's type: no broadcast) -> matmul_group (x, W) residual(r). Where the add is the h of an
//    add_rms_norm (h, y = rms_norm(h)), that op splits into the group (h) and a plain rms_norm of h (y).
// 2. Norm prologue: y = rms_norm(x, w) read only as the lhs of one matmul_group (or of one Linear matmul)
//    without a norm, over a symbolic number of rows -> that group with norm(w) normed(y): a decode step's
//    GEMV (the small-rows kernel) recomputes 1/rms of its few rows from x and stages them normed in shared
//    memory, and the norm's dispatch is left out of that step; a step of many rows (prefill) runs the norm and its tiles
//    read y, as without the fold (tiles that norm their own rows recompute them per block: 1.7x slower
//    prefill on an H100). A norm read twice (y needed elsewhere) or over a static row count (no decode
//    step) is not folded.
// Per Llama decode layer, 2 + 2 dispatches (o, add_rms_norm, down, add_rms_norm) become 2 (o + r, down + r).
//
//===----------------------------------------------------------------------===//
#include "kiln/passes/Fusion.h"
#include "kiln/passes/FusionMatch.h"

#include "kiln/ir/KilnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

using namespace mlir;

namespace kiln::passes {

using namespace detail;

namespace {

/// The transpose_b matmul over a whole Linear weight defining `v`, when `v` is read only once (by the add).
ir::MatmulOp soleLinearProduct(Value v) {
  auto m = def<ir::MatmulOp>(v);
  if (!m || !m.getTransposeB() || !linearWeight(m.getRhs()) || !m->hasOneUse())
    return {};
  return m;
}

/// "o_proj": the last component of the weight's name, ".weight" dropped.
std::string weightName(Value w) {
  llvm::StringRef name = linearWeight(w).getName();
  name.consume_back(".weight");
  size_t dot = name.rfind('.');
  return (dot == llvm::StringRef::npos ? name : name.substr(dot + 1)).str();
}

/// A new matmul_group before `at` from `like`'s weights, silu_mul and results (or those of a plain matmul
/// when `like` is null), with the lhs / norm / residual given; null (and nothing changed) when `accept`
/// rejects it.
ir::MatmulGroupOp buildFused(Operation *at, Value lhs, ValueRange weights, bool siluMul, TypeRange results,
                             Value normWeight, FloatAttr eps, bool unitOffset, Value residual, Value normed,
                             const MatmulGroupFilter &accept, std::string &why) {
  OpBuilder b(at);
  auto group = ir::MatmulGroupOp::create(b, at->getLoc(), results, lhs, weights, normWeight, residual, normed,
                                         b.getBoolAttr(siluMul), eps, unitOffset ? b.getUnitAttr() : UnitAttr());
  if (accept) {
    why = accept(group.getOperation());
    if (!why.empty()) {
      group->erase();
      return {};
    }
  }
  return group;
}

/// The operand of the binary `add` (a kiln.add, or an add_rms_norm's x + r) that is a sole Linear product,
/// with the other one (the residual) of the add's type; sets `residual`.
ir::MatmulOp residualProduct(Operation *add, Value &residual) {
  for (int order = 0; order < 2; ++order) {
    ir::MatmulOp m = soleLinearProduct(add->getOperand(order));
    Value r = add->getOperand(1 - order);
    if (m && m.getType() == add->getResult(0).getType() && r.getType() == m.getType()) {
      residual = r;
      return m;
    }
  }
  return {};
}

/// Fold 1 over every kiln.add and kiln.add_rms_norm of `func`.
void foldResiduals(func::FuncOp func, const MatmulGroupFilter &accept, FusionReport *report) {
  llvm::SmallVector<Operation *> adds;
  func.walk([&](Operation *op) {
    if (isa<ir::AddOp, ir::AddRmsNormOp>(op))
      adds.push_back(op);
  });
  for (Operation *add : adds) {
    Value residual;
    ir::MatmulOp m = residualProduct(add, residual);
    if (!m)
      continue;
    std::string why;
    ir::MatmulGroupOp group = buildFused(add, m.getLhs(), m.getRhs(), false, m.getType(), Value(), FloatAttr(),
                                         false, residual, Value(), accept, why);
    if (!group) {
      noteUnfused(report, m, "no residual epilogue (" + weightName(m.getRhs()) + "): " + why);
      continue;
    }
    group->setLoc(m->getLoc());
    Value h = group.getResults()[0];
    if (auto addNorm = dyn_cast<ir::AddRmsNormOp>(add)) {
      // y = rms_norm(h): a plain norm (kiln-fuse-matmul-norms' second fold may take it into its reader).
      OpBuilder b(add);
      auto norm = ir::RmsNormOp::create(b, add->getLoc(), h.getType(), h, addNorm.getWeight(), addNorm.getEpsAttr(),
                                        addNorm.getUnitOffsetAttr());
      addNorm.getResult().replaceAllUsesWith(norm.getResult());
      addNorm.getSum().replaceAllUsesWith(h);
    } else {
      add->getResult(0).replaceAllUsesWith(h);
    }
    noteFused(report, "matmul_residual", m, weightName(m.getRhs()) + " + residual");
    add->erase();
    m->erase();
  }
}

/// The reader of y = rms_norm's result when it is its only use and the lhs of a matmul_group without a norm
/// (or of a transpose_b matmul over a whole Linear weight); why not otherwise (empty: no candidate).
Operation *normReader(ir::RmsNormOp norm, std::string &why) {
  Value y = norm.getResult();
  if (y.use_empty())
    return nullptr;
  if (!y.hasOneUse()) {
    why = "its output has other readers (kept: it is materialized anyway)";
    return nullptr;
  }
  OpOperand &use = *y.getUses().begin();
  Operation *user = use.getOwner();
  if (use.getOperandNumber() != 0) {
    why = "its output is not a matmul's lhs";
    return nullptr;
  }
  auto type = cast<RankedTensorType>(y.getType());
  if (type.getRank() < 2 || !ShapedType::isDynamic(type.getShape()[type.getRank() - 2])) {
    why = "its rows are static (no decode step whose norm dispatch the GEMV would replace)";
    return nullptr;
  }
  if (auto group = dyn_cast<ir::MatmulGroupOp>(user)) {
    if (!linearWeight(group.getWeights().front())) {
      why = "its reader's weights are block-quantized (their GEMV quantizes the lhs as stored)";
      return nullptr;
    }
    return group.getNormWeight() ? nullptr : user;
  }
  if (auto m = dyn_cast<ir::MatmulOp>(user)) {
    if (m.getTransposeB() && linearWeight(m.getRhs()))
      return user;
    why = "its reader is not a Linear matmul over a whole float weight";
  }
  return nullptr;
}

/// tail(rms_norm(x)) -> rms_norm(tail(x)): the norm is per row (its last axis), so the rows a tail keeps (the
/// logits rows before the LM head) are normed alone, and that norm can go into the LM head's prologue.
void sinkTailsBelowNorms(func::FuncOp func) {
  llvm::SmallVector<ir::TailOp> tails;
  func.walk([&](ir::TailOp t) { tails.push_back(t); });
  for (ir::TailOp tail : tails) {
    auto norm = tail.getInput().getDefiningOp<ir::RmsNormOp>();
    auto type = dyn_cast<RankedTensorType>(tail.getType());
    auto inputType = norm ? dyn_cast<RankedTensorType>(norm.getInput().getType()) : RankedTensorType();
    if (!norm || !norm->hasOneUse() || !type || !inputType || int64_t(tail.getAxis()) == type.getRank() - 1)
      continue;
    OpBuilder b(tail);
    auto rows = ir::TailOp::create(b, tail.getLoc(), type.clone(inputType.getElementType()), norm.getInput(),
                                   tail.getAxisAttr());
    auto normed = ir::RmsNormOp::create(b, norm.getLoc(), type, rows, norm.getWeight(), norm.getEpsAttr(),
                                        norm.getUnitOffsetAttr());
    tail.getResult().replaceAllUsesWith(normed.getResult());
    tail->erase();
    norm->erase();
  }
}

/// Fold 2 over every kiln.rms_norm of `func`.
void foldNorms(func::FuncOp func, const MatmulGroupFilter &accept, FusionReport *report) {
  sinkTailsBelowNorms(func);
  llvm::SmallVector<ir::RmsNormOp> norms;
  func.walk([&](ir::RmsNormOp n) { norms.push_back(n); });
  for (ir::RmsNormOp norm : norms) {
    std::string why;
    Operation *reader = normReader(norm, why);
    if (!reader) {
      if (!why.empty())
        noteUnfused(report, norm, "no matmul prologue: " + why);
      continue;
    }
    auto group = dyn_cast<ir::MatmulGroupOp>(reader);
    ValueRange weights = group ? group.getWeights() : reader->getOperands().slice(1, 1);
    ir::MatmulGroupOp fused = buildFused(reader, norm.getInput(), weights, group && group.getSiluMul(),
                                         reader->getResultTypes(), norm.getWeight(), norm.getEpsAttr(),
                                         norm.getUnitOffset(), group ? group.getResidual() : Value(),
                                         norm.getResult(), accept, why);
    if (!fused) {
      noteUnfused(report, norm, "no matmul prologue: " + why);
      continue;
    }
    fused->setLoc(reader->getLoc());
    std::string names;
    for (Value w : weights)
      names += (names.empty() ? "" : " + ") + weightName(w);
    noteFused(report, "matmul_norm", norm, "into " + names);
    reader->replaceAllUsesWith(fused->getResults());
    reader->erase();
  }
}

} // namespace

void fuseMatmulNorms(ModuleOp module, FusionReport *report, const MatmulGroupFilter &accept) {
  module.walk([&](func::FuncOp func) {
    foldResiduals(func, accept, report);
    foldNorms(func, accept, report);
  });
}

void fuseMatmulNorms(ModuleOp module, FusionReport *report) { fuseMatmulNorms(module, report, nullptr); }

} // namespace kiln::passes
