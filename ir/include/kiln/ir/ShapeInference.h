//===- ShapeInference.h - symbolic shape rules of kiln ops ------*- C++ -*-===//
//
// One function per shape rule. Op verifiers call them to check the types they were given, and the model
// builders call them to compute the types they create, so the two can never disagree. Each returns the
// result shape, or fails and sets `error` to a one-line reason naming both shapes.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_IR_SHAPEINFERENCE_H
#define KILN_IR_SHAPEINFERENCE_H

#include "kiln/ir/SymShape.h"

namespace kiln::ir {

/// numpy broadcasting of any number of shapes: right-aligned; a dim of 1 stretches; other dims must be
/// equal for every value of the symbols.
mlir::FailureOr<SymShape> inferBroadcast(llvm::ArrayRef<SymShape> shapes, std::string &error);
/// Checks that `from` broadcasts to exactly `to`.
mlir::LogicalResult checkBroadcastTo(const SymShape &from, const SymShape &to, std::string &error);
mlir::FailureOr<SymShape> inferMatmul(const SymShape &lhs, const SymShape &rhs, bool transposeB,
                                      std::string &error);
mlir::FailureOr<SymShape> inferReduce(const SymShape &input, int64_t axis, bool keepdim, std::string &error);
mlir::FailureOr<SymShape> inferGather(const SymShape &table, const SymShape &indices, std::string &error);
mlir::FailureOr<SymShape> inferTranspose(const SymShape &input, llvm::ArrayRef<int64_t> permutation,
                                         std::string &error);
mlir::FailureOr<SymShape> inferSlice(const SymShape &input, int64_t axis, int64_t start, int64_t end,
                                     std::string &error);
mlir::FailureOr<SymShape> inferConcat(llvm::ArrayRef<SymShape> inputs, int64_t axis, std::string &error);
/// Same symbolic dims (as a multiset) and the same product of constant dims on both sides.
mlir::LogicalResult checkReshape(const SymShape &from, const SymShape &to, std::string &error);
/// Normalizes a possibly negative axis against `rank`; fails when out of range.
mlir::FailureOr<int64_t> normalizeAxis(int64_t axis, int64_t rank, std::string &error);

} // namespace kiln::ir

#endif // KILN_IR_SHAPEINFERENCE_H
