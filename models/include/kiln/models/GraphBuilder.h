//===- GraphBuilder.h - building primitive kiln ops -------------*- C++ -*-===//
//
// Model builders read as the reference math: `add(x, mul(a, b))`. Result types come from the same shape
// rules the verifiers use (ShapeInference.h). The first failure is kept with its message; every later call
// returns a null Value, so a builder runs straight through and checks `ok()` once at the end.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_MODELS_GRAPHBUILDER_H
#define KILN_MODELS_GRAPHBUILDER_H

#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/SymShape.h"

#include "mlir/IR/Builders.h"

#include <optional>
#include <string>

namespace kiln::models {

using ir::SymExpr;
using ir::SymShape;
using mlir::Value;

class GraphBuilder {
public:
  GraphBuilder(mlir::OpBuilder &builder, mlir::Location loc) : b_(builder), loc_(loc) {}

  bool ok() const { return error_.empty(); }
  const std::string &error() const { return error_; }
  /// Records the first failure; later ones are dropped (they are usually consequences).
  void fail(const std::string &message);

  /// Ops built from now on get this location (a name like `model.layers.3.self_attn`).
  void setLocation(llvm::StringRef name);
  mlir::Location location() const { return loc_; }
  mlir::OpBuilder &builder() { return b_; }

  mlir::Type f32() { return b_.getF32Type(); }
  mlir::Type i64() { return b_.getI64Type(); }
  mlir::Type i1() { return b_.getI1Type(); }
  SymShape shape(Value v);
  mlir::Type elementType(Value v);

  // Sources.
  Value weight(llvm::StringRef name, llvm::ArrayRef<int64_t> shape, mlir::Type storedType);
  Value scalar(double value);                 // tensor<f32>
  Value scalarI64(int64_t value);             // tensor<i64>
  Value constant(llvm::ArrayRef<float> data, llvm::ArrayRef<int64_t> shape);
  Value sym(llvm::StringRef symbol);          // tensor<i64>, the run-time value of a symbolic dim
  Value iota(llvm::ArrayRef<SymExpr> shape, int64_t dim, mlir::Type elementType);

  // Elementwise (numpy broadcasting).
  Value add(Value a, Value b);
  Value sub(Value a, Value b);
  Value mul(Value a, Value b);
  Value div(Value a, Value b);
  Value max(Value a, Value b);
  Value min(Value a, Value b);
  Value pow(Value a, Value b);
  Value compare(ir::ComparePredicate predicate, Value a, Value b);
  Value select(Value cond, Value onTrue, Value onFalse);
  Value convert(Value x, mlir::Type elementType);
  template <typename UnaryOp> Value unary(Value x) {
    if (!ok() || !x)
      return {};
    return UnaryOp::create(b_, loc_, x.getType(), x).getResult();
  }
  Value neg(Value x) { return unary<ir::NegOp>(x); }
  Value exp(Value x) { return unary<ir::ExpOp>(x); }
  Value tanh(Value x) { return unary<ir::TanhOp>(x); }
  Value rsqrt(Value x) { return unary<ir::RsqrtOp>(x); }
  Value sqrt(Value x) { return unary<ir::SqrtOp>(x); }

  // Reductions.
  Value reduceSum(Value x, int64_t axis, bool keepdim = true);
  Value reduceMean(Value x, int64_t axis, bool keepdim = true);
  Value reduceMax(Value x, int64_t axis, bool keepdim = true);
  Value softmax(Value x, int64_t axis);

  // Contractions and data movement.
  Value matmul(Value a, Value b, bool transposeB = false);
  Value gather(Value table, Value indices);
  Value reshape(Value x, llvm::ArrayRef<SymExpr> shape);
  Value transpose(Value x, llvm::ArrayRef<int64_t> permutation);
  Value broadcastTo(Value x, llvm::ArrayRef<SymExpr> shape);
  Value slice(Value x, int64_t axis, int64_t start, int64_t end);
  /// The last `n` elements of x along `axis` (n symbolic: bound at run time to at most x's dim).
  Value tail(Value x, int64_t axis, const SymExpr &n);
  Value concat(llvm::ArrayRef<Value> inputs, int64_t axis);

private:
  bool ready(std::initializer_list<Value> values);
  mlir::RankedTensorType type(llvm::ArrayRef<SymExpr> shape, mlir::Type elementType);
  /// The shape the operands broadcast to; none (the failure recorded) when they do not.
  std::optional<SymShape> broadcastShape(std::initializer_list<Value> operands);
  template <typename Op> Value broadcasting(Value a, Value b);
  template <typename Op> Value reduce(Value x, int64_t axis, bool keepdim);
  /// x as `newShape` (reshape, broadcast_to), which `check` accepts or rejects with a reason.
  using ShapeCheck = mlir::LogicalResult (*)(const SymShape &from, const SymShape &to, std::string &error);
  template <typename Op> Value toShape(Value x, llvm::ArrayRef<SymExpr> newShape, ShapeCheck check);

  mlir::OpBuilder &b_;
  mlir::Location loc_;
  std::string error_;
};

/// Shorthand for shapes: dims({sym("b"), sym("s"), 64}).
inline SymExpr dim(int64_t value) { return SymExpr::constant(value); }
inline SymExpr dim(llvm::StringRef symbol) { return SymExpr::symbol(symbol); }

} // namespace kiln::models

#endif // KILN_MODELS_GRAPHBUILDER_H
