//===- FusionMatch.h - matching helpers shared by the fusion passes -*- C++ -*-===//
//
// Internal to passes/lib/Fusion*.cpp. Small structural matchers over kiln ops: splat constants, commutative
// binary ops with a constant side, symbolic shapes, and the report's location names.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_FUSIONMATCH_H
#define KILN_PASSES_FUSIONMATCH_H

#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/SymShape.h"
#include "kiln/passes/Fusion.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/Value.h"

#include <optional>
#include <string>

namespace kiln::passes::detail {

/// The value of a splat kiln.constant (float or integer), as a double; nullopt otherwise.
std::optional<double> splatValue(mlir::Value v);

/// `v` defined by OpTy.
template <typename OpTy> OpTy def(mlir::Value v) { return v ? v.getDefiningOp<OpTy>() : OpTy(); }

/// v = OpTy(a, constant) or OpTy(constant, a) (commutative ops only for the second form): sets `other`
/// and `constant`.
template <typename OpTy>
bool matchWithSplat(mlir::Value v, mlir::Value &other, double &constant, bool commutative = true) {
  auto op = def<OpTy>(v);
  if (!op)
    return false;
  if (auto c = splatValue(op.getRhs())) {
    other = op.getLhs();
    constant = *c;
    return true;
  }
  if (commutative) {
    if (auto c = splatValue(op.getLhs())) {
      other = op.getRhs();
      constant = *c;
      return true;
    }
  }
  return false;
}

/// The other operand of binary op `op` when one operand is `v`; null if neither is.
template <typename OpTy> mlir::Value otherOperand(OpTy op, mlir::Value v) {
  if (op.getLhs() == v)
    return op.getRhs();
  if (op.getRhs() == v)
    return op.getLhs();
  return {};
}

/// The symbolic shape of `v`'s type; empty optional if it has none.
std::optional<ir::SymShape> shapeOf(mlir::Value v);
bool isF32(mlir::Value v);

/// The name of a NameLoc (through fused / callsite locations), or the printed location.
std::string locationName(mlir::Location loc);

/// The last dim of a rank >= 1 tensor as a constant; nullopt when symbolic.
std::optional<int64_t> lastDimConstant(mlir::Value v);

/// The weight of a Linear layer: a whole 2-d static kiln.weight [N, K] (not a row chunk of kiln-split-weights,
/// block-quantized only when `quantized`), or a kiln.convert of one (16-bit weights widened for the IR; the
/// device reads them in place); null otherwise (FusionMatmulGroups.cpp).
ir::WeightOp linearWeight(mlir::Value w, bool quantized = false);

/// Report helpers.
void noteFused(FusionReport *report, llvm::StringRef kind, mlir::Operation *at, llvm::StringRef detail = "");
void noteUnfused(FusionReport *report, mlir::Operation *anchor, llvm::StringRef why);

} // namespace kiln::passes::detail

#endif // KILN_PASSES_FUSIONMATCH_H
