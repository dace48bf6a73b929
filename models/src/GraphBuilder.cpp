//===- GraphBuilder.cpp ---------------------------------------------------===//
#include "kiln/models/GraphBuilder.h"
#include "kiln/ir/ShapeInference.h"

#include "mlir/IR/BuiltinAttributes.h"

#include <optional>

using namespace mlir;

namespace kiln::models {

namespace {
/// The result shape an ir:: shape rule gives, rule(error); none, the rule's error recorded in `g`, when the
/// operands do not fit it.
template <typename Rule> std::optional<SymShape> inferOrFail(GraphBuilder &g, Rule rule) {
  std::string error;
  FailureOr<SymShape> out = rule(error);
  if (failed(out)) {
    g.fail(error);
    return std::nullopt;
  }
  return *out;
}

/// Whether an ir:: shape check, check(error), accepts the operands; its error recorded in `g` when not.
template <typename Check> bool checkOrFail(GraphBuilder &g, Check check) {
  std::string error;
  if (succeeded(check(error)))
    return true;
  g.fail(error);
  return false;
}
} // namespace

void GraphBuilder::fail(const std::string &message) {
  if (error_.empty())
    error_ = message.empty() ? "model builder failed" : message;
}

void GraphBuilder::setLocation(llvm::StringRef name) {
  loc_ = NameLoc::get(b_.getStringAttr(name));
}

bool GraphBuilder::ready(std::initializer_list<Value> values) {
  if (!ok())
    return false;
  for (Value v : values)
    if (!v) {
      fail("internal: null value in model builder");
      return false;
    }
  return true;
}

SymShape GraphBuilder::shape(Value v) {
  FailureOr<SymShape> s = ir::getSymShape(v.getType());
  return succeeded(s) ? *s : SymShape{};
}

Type GraphBuilder::elementType(Value v) { return cast<ShapedType>(v.getType()).getElementType(); }

RankedTensorType GraphBuilder::type(llvm::ArrayRef<SymExpr> shape, Type elementType) {
  return ir::makeTensorType(b_.getContext(), shape, elementType);
}

Value GraphBuilder::weight(llvm::StringRef name, llvm::ArrayRef<int64_t> shape, Type storedType) {
  if (!ok())
    return {};
  auto t = RankedTensorType::get(shape, storedType);
  Value w = ir::WeightOp::create(b_, loc_, t, b_.getStringAttr(name)).getResult();
  return storedType == f32() ? w : convert(w, f32());
}

Value GraphBuilder::scalar(double value) {
  if (!ok())
    return {};
  auto t = RankedTensorType::get({}, f32());
  return ir::ConstantOp::create(b_, loc_, t, DenseElementsAttr::get(t, static_cast<float>(value))).getResult();
}

Value GraphBuilder::scalarI64(int64_t value) {
  if (!ok())
    return {};
  auto t = RankedTensorType::get({}, i64());
  return ir::ConstantOp::create(b_, loc_, t, DenseElementsAttr::get(t, value)).getResult();
}

Value GraphBuilder::constant(llvm::ArrayRef<float> data, llvm::ArrayRef<int64_t> shape) {
  if (!ok())
    return {};
  auto t = RankedTensorType::get(shape, f32());
  return ir::ConstantOp::create(b_, loc_, t, DenseElementsAttr::get(t, data)).getResult();
}

Value GraphBuilder::sym(llvm::StringRef symbol) {
  if (!ok())
    return {};
  return ir::SymOp::create(b_, loc_, RankedTensorType::get({}, i64()), b_.getStringAttr(symbol)).getResult();
}

Value GraphBuilder::iota(llvm::ArrayRef<SymExpr> shape, int64_t dim, Type elementType) {
  if (!ok())
    return {};
  return ir::IotaOp::create(b_, loc_, type(shape, elementType), b_.getI64IntegerAttr(dim)).getResult();
}

std::optional<SymShape> GraphBuilder::broadcastShape(std::initializer_list<Value> operands) {
  if (!ready(operands))
    return std::nullopt;
  llvm::SmallVector<SymShape> shapes;
  for (Value v : operands)
    shapes.push_back(shape(v));
  return inferOrFail(*this, [&](std::string &e) { return ir::inferBroadcast(shapes, e); });
}

template <typename Op> Value GraphBuilder::broadcasting(Value a, Value b) {
  std::optional<SymShape> out = broadcastShape({a, b});
  if (!out)
    return {};
  return Op::create(b_, loc_, type(*out, elementType(a)), a, b).getResult();
}

Value GraphBuilder::add(Value a, Value b) { return broadcasting<ir::AddOp>(a, b); }
Value GraphBuilder::sub(Value a, Value b) { return broadcasting<ir::SubOp>(a, b); }
Value GraphBuilder::mul(Value a, Value b) { return broadcasting<ir::MulOp>(a, b); }
Value GraphBuilder::div(Value a, Value b) { return broadcasting<ir::DivOp>(a, b); }
Value GraphBuilder::max(Value a, Value b) { return broadcasting<ir::MaxOp>(a, b); }
Value GraphBuilder::min(Value a, Value b) { return broadcasting<ir::MinOp>(a, b); }
Value GraphBuilder::pow(Value a, Value b) { return broadcasting<ir::PowOp>(a, b); }

Value GraphBuilder::compare(ir::ComparePredicate predicate, Value a, Value b) {
  std::optional<SymShape> out = broadcastShape({a, b});
  if (!out)
    return {};
  return ir::CompareOp::create(b_, loc_, type(*out, i1()), predicate, a, b).getResult();
}

Value GraphBuilder::select(Value cond, Value onTrue, Value onFalse) {
  std::optional<SymShape> out = broadcastShape({cond, onTrue, onFalse});
  if (!out)
    return {};
  return ir::SelectOp::create(b_, loc_, type(*out, elementType(onTrue)), cond, onTrue, onFalse).getResult();
}

Value GraphBuilder::convert(Value x, Type elementType) {
  if (!ready({x}))
    return {};
  return ir::ConvertOp::create(b_, loc_, type(shape(x), elementType), x).getResult();
}

template <typename Op> Value GraphBuilder::reduce(Value x, int64_t axis, bool keepdim) {
  if (!ready({x}))
    return {};
  std::optional<SymShape> out = inferOrFail(*this, [&](std::string &e) {
    return ir::inferReduce(shape(x), axis, keepdim, e);
  });
  if (!out)
    return {};
  int64_t rank = shape(x).size();
  return Op::create(b_, loc_, type(*out, elementType(x)), x, b_.getI64IntegerAttr(axis < 0 ? axis + rank : axis),
                       b_.getBoolAttr(keepdim))
      .getResult();
}

Value GraphBuilder::reduceSum(Value x, int64_t axis, bool keepdim) { return reduce<ir::ReduceSumOp>(x, axis, keepdim); }
Value GraphBuilder::reduceMean(Value x, int64_t axis, bool keepdim) { return reduce<ir::ReduceMeanOp>(x, axis, keepdim); }
Value GraphBuilder::reduceMax(Value x, int64_t axis, bool keepdim) { return reduce<ir::ReduceMaxOp>(x, axis, keepdim); }

Value GraphBuilder::softmax(Value x, int64_t axis) {
  if (!ready({x}))
    return {};
  int64_t rank = shape(x).size();
  return ir::SoftmaxOp::create(b_, loc_, x.getType(), x, b_.getI64IntegerAttr(axis < 0 ? axis + rank : axis))
      .getResult();
}

Value GraphBuilder::matmul(Value a, Value b, bool transposeB) {
  if (!ready({a, b}))
    return {};
  std::optional<SymShape> out = inferOrFail(*this, [&](std::string &e) {
    return ir::inferMatmul(shape(a), shape(b), transposeB, e);
  });
  if (!out)
    return {};
  return ir::MatmulOp::create(b_, loc_, type(*out, elementType(a)), a, b, b_.getBoolAttr(transposeB)).getResult();
}

Value GraphBuilder::gather(Value table, Value indices) {
  if (!ready({table, indices}))
    return {};
  std::optional<SymShape> out = inferOrFail(*this, [&](std::string &e) {
    return ir::inferGather(shape(table), shape(indices), e);
  });
  if (!out)
    return {};
  return ir::GatherOp::create(b_, loc_, type(*out, elementType(table)), table, indices).getResult();
}

template <typename Op> Value GraphBuilder::toShape(Value x, llvm::ArrayRef<SymExpr> newShape, ShapeCheck check) {
  if (!ready({x}))
    return {};
  const SymShape to(newShape.begin(), newShape.end());
  if (!checkOrFail(*this, [&](std::string &e) { return check(shape(x), to, e); }))
    return {};
  return Op::create(b_, loc_, type(newShape, elementType(x)), x).getResult();
}

Value GraphBuilder::reshape(Value x, llvm::ArrayRef<SymExpr> newShape) {
  return toShape<ir::ReshapeOp>(x, newShape, ir::checkReshape);
}

Value GraphBuilder::transpose(Value x, llvm::ArrayRef<int64_t> permutation) {
  if (!ready({x}))
    return {};
  std::optional<SymShape> out = inferOrFail(*this, [&](std::string &e) {
    return ir::inferTranspose(shape(x), permutation, e);
  });
  if (!out)
    return {};
  return ir::TransposeOp::create(b_, loc_, type(*out, elementType(x)), x, b_.getDenseI64ArrayAttr(permutation))
      .getResult();
}

Value GraphBuilder::broadcastTo(Value x, llvm::ArrayRef<SymExpr> newShape) {
  return toShape<ir::BroadcastToOp>(x, newShape, ir::checkBroadcastTo);
}

Value GraphBuilder::slice(Value x, int64_t axis, int64_t start, int64_t end) {
  if (!ready({x}))
    return {};
  std::optional<SymShape> out = inferOrFail(*this, [&](std::string &e) {
    return ir::inferSlice(shape(x), axis, start, end, e);
  });
  if (!out)
    return {};
  int64_t rank = shape(x).size();
  return ir::SliceOp::create(b_, loc_, type(*out, elementType(x)), x,
                                b_.getI64IntegerAttr(axis < 0 ? axis + rank : axis), b_.getI64IntegerAttr(start),
                                b_.getI64IntegerAttr(end))
      .getResult();
}

Value GraphBuilder::tail(Value x, int64_t axis, const SymExpr &n) {
  if (!ready({x}))
    return {};
  SymShape out = shape(x);
  const int64_t rank = int64_t(out.size());
  if (axis < -rank || axis >= rank) {
    fail("tail axis " + std::to_string(axis) + " is outside rank " + std::to_string(rank));
    return {};
  }
  axis = axis < 0 ? axis + rank : axis;
  out[size_t(axis)] = n;
  return ir::TailOp::create(b_, loc_, type(out, elementType(x)), x, b_.getI64IntegerAttr(axis)).getResult();
}

Value GraphBuilder::concat(llvm::ArrayRef<Value> inputs, int64_t axis) {
  if (!ok())
    return {};
  llvm::SmallVector<SymShape> shapes;
  for (Value v : inputs) {
    if (!ready({v}))
      return {};
    shapes.push_back(shape(v));
  }
  std::optional<SymShape> out = inferOrFail(*this, [&](std::string &e) { return ir::inferConcat(shapes, axis, e); });
  if (!out)
    return {};
  int64_t rank = shapes.front().size();
  return ir::ConcatOp::create(b_, loc_, type(*out, elementType(inputs.front())), inputs,
                                 b_.getI64IntegerAttr(axis < 0 ? axis + rank : axis))
      .getResult();
}

} // namespace kiln::models
