//===- KilnDialect.h - the kiln dialect -------------------------*- C++ -*-===//
#ifndef KILN_IR_KILNDIALECT_H
#define KILN_IR_KILNDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TensorEncoding.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "kiln/ir/KilnDialect.h.inc"
#include "kiln/ir/KilnEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "kiln/ir/KilnAttrs.h.inc"

namespace kiln::ir {
// Shared verifiers of op families (KilnOps.cpp).
/// Elementwise ops whose operands broadcast; operands from `firstData` on share the result element type.
llvm::LogicalResult verifyBroadcastingOp(mlir::Operation *op, unsigned firstData);
llvm::LogicalResult verifySameTypeUnaryOp(mlir::Operation *op);
llvm::LogicalResult verifyReduceOp(mlir::Operation *op, int64_t axis, bool keepdim);

/// "'kiln.rope' at loc(...)": how every backend's error message names an op.
std::string describeOp(mlir::Operation *op);
} // namespace kiln::ir

#define GET_OP_CLASSES
#include "kiln/ir/KilnOps.h.inc"

#endif // KILN_IR_KILNDIALECT_H
