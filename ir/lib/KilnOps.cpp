//===- KilnOps.cpp - op verifiers -----------------------------------------===//
//
// Every verifier recomputes the result shape with ShapeInference.h and compares it with the declared type
// symbolically, so a well-typed module is well-shaped for every value of its symbols.
//
//===----------------------------------------------------------------------===//
#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/ShapeInference.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;

namespace kiln::ir {

static Type elementTypeOf(Value v) { return cast<ShapedType>(v.getType()).getElementType(); }

/// The symbolic shape of `v`, or an error on `op` naming the operand.
static FailureOr<SymShape> shapeOf(Operation *op, Value v, llvm::StringRef what) {
  std::string error;
  FailureOr<SymShape> s = getSymShape(v.getType(), &error);
  if (failed(s))
    return op->emitOpError() << what << ": " << error;
  return s;
}

static LogicalResult expectResultShape(Operation *op, const SymShape &expected) {
  FailureOr<SymShape> actual = shapeOf(op, op->getResult(0), "result");
  if (failed(actual))
    return failure();
  if (*actual != expected)
    return op->emitOpError() << "result shape " << formatShape(*actual) << " should be "
                             << formatShape(expected);
  return success();
}

static LogicalResult expectSameElementType(Operation *op, Value a, Value b, llvm::StringRef what) {
  if (elementTypeOf(a) != elementTypeOf(b))
    return op->emitOpError() << what << " element types differ: " << elementTypeOf(a) << " vs "
                             << elementTypeOf(b);
  return success();
}

LogicalResult verifyBroadcastingOp(Operation *op, unsigned firstData) {
  llvm::SmallVector<SymShape> shapes;
  for (Value v : op->getOperands()) {
    FailureOr<SymShape> s = shapeOf(op, v, "operand");
    if (failed(s))
      return failure();
    shapes.push_back(*s);
  }
  for (unsigned i = firstData; i < op->getNumOperands(); ++i)
    if (failed(expectSameElementType(op, op->getOperand(i), op->getResult(0), "operand and result")))
      return failure();
  std::string error;
  FailureOr<SymShape> out = inferBroadcast(shapes, error);
  if (failed(out))
    return op->emitOpError() << error;
  return expectResultShape(op, *out);
}

LogicalResult verifySameTypeUnaryOp(Operation *op) {
  if (failed(shapeOf(op, op->getOperand(0), "operand")))
    return failure();
  if (op->getOperand(0).getType() != op->getResult(0).getType())
    return op->emitOpError() << "result type " << op->getResult(0).getType()
                             << " must equal the operand type " << op->getOperand(0).getType();
  if (!isa<FloatType>(elementTypeOf(op->getOperand(0))) && !isa<NegOp, AbsOp, ReluOp>(op))
    return op->emitOpError() << "needs a floating-point operand";
  return success();
}

LogicalResult verifyReduceOp(Operation *op, int64_t axis, bool keepdim) {
  FailureOr<SymShape> in = shapeOf(op, op->getOperand(0), "operand");
  if (failed(in) || failed(expectSameElementType(op, op->getOperand(0), op->getResult(0), "operand and result")))
    return failure();
  std::string error;
  FailureOr<SymShape> out = inferReduce(*in, axis, keepdim, error);
  if (failed(out))
    return op->emitOpError() << error;
  return expectResultShape(op, *out);
}

LogicalResult WeightOp::verify() {
  if (getName().empty())
    return emitOpError() << "needs a weight name";
  auto type = cast<RankedTensorType>(getType());
  if (!type.hasStaticShape())
    return emitOpError() << "weights have static shapes";
  if (std::optional<llvm::ArrayRef<int64_t>> rows = getRows()) {
    if (rows->size() != 2 || (*rows)[0] < 0 || (*rows)[1] <= (*rows)[0])
      return emitOpError() << "rows must be [begin, end) with 0 <= begin < end";
    if (type.getRank() < 1 || type.getDimSize(0) != (*rows)[1] - (*rows)[0])
      return emitOpError() << "rows [" << (*rows)[0] << ", " << (*rows)[1] << ") is " << (*rows)[1] - (*rows)[0]
                           << " rows, the type " << type << " has " << (type.getRank() ? type.getDimSize(0) : 0);
  }
  if (std::optional<llvm::StringRef> quant = getQuant()) {
    if (*quant != "q8_0" && *quant != "q4_0")
      return emitOpError() << "quant must be \"q8_0\" or \"q4_0\", got \"" << *quant << "\"";
    if (!type.getElementType().isF32() || type.getRank() != 2 || type.getDimSize(1) % 32 != 0)
      return emitOpError() << "a " << *quant << " weight is an f32 matrix whose last dim is a multiple of 32, got "
                           << type;
  }
  return success();
}

LogicalResult ConstantOp::verify() {
  auto valueType = cast<ShapedType>(getValue().getType());
  auto resultType = cast<RankedTensorType>(getType());
  if (valueType.getShape() != resultType.getShape() ||
      valueType.getElementType() != resultType.getElementType())
    return emitOpError() << "value type " << valueType << " differs from result type " << resultType;
  return success();
}

LogicalResult IotaOp::verify() {
  FailureOr<SymShape> out = shapeOf(*this, getResult(), "result");
  if (failed(out))
    return failure();
  std::string error;
  if (failed(normalizeAxis(getDim(), out->size(), error)) || getDim() < 0)
    return emitOpError() << "dim " << getDim() << " is out of range for rank " << out->size();
  return success();
}

LogicalResult CompareOp::verify() {
  if (failed(expectSameElementType(*this, getLhs(), getRhs(), "operand")))
    return failure();
  return verifyBroadcastingOp(*this, /*firstData=*/2);
}

LogicalResult ConvertOp::verify() {
  FailureOr<SymShape> in = shapeOf(*this, getInput(), "operand");
  if (failed(in))
    return failure();
  return expectResultShape(*this, *in);
}

LogicalResult SoftmaxOp::verify() {
  std::string error;
  if (failed(normalizeAxis(getAxis(), cast<RankedTensorType>(getInput().getType()).getRank(), error)))
    return emitOpError() << error;
  if (!isa<FloatType>(elementTypeOf(getInput())))
    return emitOpError() << "needs a floating-point operand";
  return verifySameTypeUnaryOp(*this);
}

LogicalResult MatmulOp::verify() {
  FailureOr<SymShape> a = shapeOf(*this, getLhs(), "lhs"), b = shapeOf(*this, getRhs(), "rhs");
  if (failed(a) || failed(b) || failed(expectSameElementType(*this, getLhs(), getRhs(), "lhs and rhs")) ||
      failed(expectSameElementType(*this, getLhs(), getResult(), "operand and result")))
    return failure();
  std::string error;
  FailureOr<SymShape> out = inferMatmul(*a, *b, getTransposeB(), error);
  if (failed(out))
    return emitOpError() << error;
  return expectResultShape(*this, *out);
}

/// norm(w) [K] with norm_eps >= 0; residual(r) of the one result's type (one weight, no silu_mul); normed(y)
/// of lhs's type, with norm(w).
static LogicalResult verifyGroupFolds(MatmulGroupOp op, const SymShape &lhs) {
  if (Value w = op.getNormWeight()) {
    FailureOr<SymShape> ws = shapeOf(op, w, "norm weight");
    if (failed(ws) || failed(expectSameElementType(op, op.getLhs(), w, "lhs and norm weight")))
      return failure();
    if (ws->size() != 1 || lhs.empty() || (*ws)[0] != lhs.back())
      return op.emitOpError() << "norm weight " << formatShape(*ws) << " should be [K] over lhs " << formatShape(lhs);
    if (!op.getNormEps() || !(op.getNormEps()->convertToDouble() >= 0))
      return op.emitOpError() << "norm(w) needs norm_eps >= 0";
  } else if (op.getNormEps() || op.getNormUnitOffset()) {
    return op.emitOpError() << "norm_eps / norm_unit_offset without norm(w)";
  }
  if (Value r = op.getResidual()) {
    if (op.getSiluMul() || op.getWeights().size() != 1)
      return op.emitOpError() << "residual(r) takes one weight and no silu_mul";
    if (r.getType() != op.getResults()[0].getType())
      return op.emitOpError() << "residual " << r.getType() << " should be of the result's type "
                           << op.getResults()[0].getType();
  }
  if (Value y = op.getNormed()) {
    if (!op.getNormWeight())
      return op.emitOpError() << "normed(y) without norm(w)";
    if (y.getType() != op.getLhs().getType())
      return op.emitOpError() << "normed " << y.getType() << " should be of the lhs's type " << op.getLhs().getType();
  }
  return success();
}

LogicalResult MatmulGroupOp::verify() {
  FailureOr<SymShape> a = shapeOf(*this, getLhs(), "lhs");
  if (failed(a))
    return failure();
  if (getWeights().empty())
    return emitOpError() << "needs at least one weight";
  const size_t expected = getSiluMul() ? 1 : getWeights().size();
  if (getSiluMul() && getWeights().size() != 2)
    return emitOpError() << "silu_mul takes two weights (gate, up), got " << getWeights().size();
  if (getResults().size() != expected)
    return emitOpError() << "expected " << expected << " results, got " << getResults().size();
  for (auto [i, w] : llvm::enumerate(getWeights())) {
    std::string name = "weight " + std::to_string(i);
    FailureOr<SymShape> b = shapeOf(*this, w, name.c_str());
    if (failed(b) || failed(expectSameElementType(*this, getLhs(), w, "lhs and weight")))
      return failure();
    if (b->size() != 2)
      return emitOpError() << name << " must be 2-d [N, K]";
    std::string error;
    FailureOr<SymShape> out = inferMatmul(*a, *b, /*transposeB=*/true, error);
    if (failed(out))
      return emitOpError() << name << ": " << error;
    Value result = getResults()[getSiluMul() ? 0 : i];
    if (failed(expectSameElementType(*this, getLhs(), result, "lhs and result")))
      return failure();
    FailureOr<SymShape> r = shapeOf(*this, result, "result");
    if (failed(r))
      return failure();
    if (*r != *out)
      return emitOpError() << "result " << (getSiluMul() ? 0 : i) << " should be " << formatShape(*out);
  }
  return verifyGroupFolds(*this, *a);
}


LogicalResult GatherOp::verify() {
  FailureOr<SymShape> t = shapeOf(*this, getTable(), "table"), i = shapeOf(*this, getIndices(), "indices");
  if (failed(t) || failed(i) || failed(expectSameElementType(*this, getTable(), getResult(), "table and result")))
    return failure();
  if (!isa<IntegerType>(elementTypeOf(getIndices())))
    return emitOpError() << "indices must be integers";
  std::string error;
  FailureOr<SymShape> out = inferGather(*t, *i, error);
  if (failed(out))
    return emitOpError() << error;
  return expectResultShape(*this, *out);
}

LogicalResult ReshapeOp::verify() {
  FailureOr<SymShape> in = shapeOf(*this, getInput(), "operand"), out = shapeOf(*this, getResult(), "result");
  if (failed(in) || failed(out) || failed(expectSameElementType(*this, getInput(), getResult(), "operand and result")))
    return failure();
  std::string error;
  if (failed(checkReshape(*in, *out, error)))
    return emitOpError() << error;
  return success();
}

LogicalResult TransposeOp::verify() {
  FailureOr<SymShape> in = shapeOf(*this, getInput(), "operand");
  if (failed(in) || failed(expectSameElementType(*this, getInput(), getResult(), "operand and result")))
    return failure();
  std::string error;
  FailureOr<SymShape> out = inferTranspose(*in, getPermutation(), error);
  if (failed(out))
    return emitOpError() << error;
  return expectResultShape(*this, *out);
}

LogicalResult BroadcastToOp::verify() {
  FailureOr<SymShape> in = shapeOf(*this, getInput(), "operand"), out = shapeOf(*this, getResult(), "result");
  if (failed(in) || failed(out) || failed(expectSameElementType(*this, getInput(), getResult(), "operand and result")))
    return failure();
  std::string error;
  if (failed(checkBroadcastTo(*in, *out, error)))
    return emitOpError() << error;
  return success();
}

LogicalResult SliceOp::verify() {
  FailureOr<SymShape> in = shapeOf(*this, getInput(), "operand");
  if (failed(in) || failed(expectSameElementType(*this, getInput(), getResult(), "operand and result")))
    return failure();
  std::string error;
  FailureOr<SymShape> out = inferSlice(*in, getAxis(), getStart(), getEnd(), error);
  if (failed(out))
    return emitOpError() << error;
  return expectResultShape(*this, *out);
}

LogicalResult TailOp::verify() {
  FailureOr<SymShape> in = shapeOf(*this, getInput(), "operand"), out = shapeOf(*this, getResult(), "result");
  if (failed(in) || failed(out) || failed(expectSameElementType(*this, getInput(), getResult(), "operand and result")))
    return failure();
  std::string error;
  FailureOr<int64_t> axis = normalizeAxis(getAxis(), int64_t(in->size()), error);
  if (failed(axis))
    return emitOpError() << error;
  if (out->size() != in->size())
    return emitOpError() << "result rank " << out->size() << " differs from the operand's " << in->size();
  const SymExpr &n = (*out)[size_t(*axis)], &total = (*in)[size_t(*axis)];
  if (n.isConstant() && total.isConstant() && n.getConstant() > total.getConstant())
    return emitOpError() << "takes " << n.str() << " of the " << total.str() << " elements of dim " << *axis;
  SymShape expected = *in;
  expected[size_t(*axis)] = n;
  return expectResultShape(*this, expected);
}

LogicalResult ConcatOp::verify() {
  llvm::SmallVector<SymShape> shapes;
  for (Value v : getInputs()) {
    FailureOr<SymShape> s = shapeOf(*this, v, "operand");
    if (failed(s) || failed(expectSameElementType(*this, v, getResult(), "operand and result")))
      return failure();
    shapes.push_back(*s);
  }
  std::string error;
  FailureOr<SymShape> out = inferConcat(shapes, getAxis(), error);
  if (failed(out))
    return emitOpError() << error;
  return expectResultShape(*this, *out);
}

/// A per-channel vector [n] that must match the last dim of `input`.
static LogicalResult verifyChannelVector(Operation *op, Value input, Value vec, llvm::StringRef what) {
  FailureOr<SymShape> in = shapeOf(op, input, "input"), w = shapeOf(op, vec, what);
  if (failed(in) || failed(w))
    return failure();
  if (in->empty() || w->size() != 1 || (*w)[0] != in->back())
    return op->emitOpError() << what << " " << formatShape(*w) << " must be [" << (in->empty() ? "?" : in->back().str())
                             << "], the last dim of the input " << formatShape(*in);
  return expectSameElementType(op, input, vec, "input and " + what.str());
}

LogicalResult RmsNormOp::verify() {
  if (failed(verifyChannelVector(*this, getInput(), getWeight(), "weight")))
    return failure();
  if (getEps().isNegative())
    return emitOpError() << "eps must be >= 0";
  return verifySameTypeUnaryOp(*this);
}

LogicalResult LayerNormOp::verify() {
  if (failed(verifyChannelVector(*this, getInput(), getWeight(), "weight")) ||
      failed(verifyChannelVector(*this, getInput(), getBias(), "bias")))
    return failure();
  if (getEps().isNegative())
    return emitOpError() << "eps must be >= 0";
  return verifySameTypeUnaryOp(*this);
}

/// add_rms_norm / add_layer_norm: x, r, h and y of one float type (no broadcast).
static LogicalResult verifyAddNorm(Operation *op, double eps) {
  if (!(eps >= 0))
    return op->emitOpError() << "eps must be >= 0";
  if (failed(shapeOf(op, op->getOperand(0), "input")))
    return failure();
  Type t = op->getOperand(0).getType();
  if (op->getOperand(1).getType() != t)
    return op->emitOpError() << "residual type " << op->getOperand(1).getType() << " must equal the input type "
                             << t << " (no broadcast)";
  for (Value r : op->getResults())
    if (r.getType() != t)
      return op->emitOpError() << "result type " << r.getType() << " must equal the input type " << t;
  if (!isa<FloatType>(elementTypeOf(op->getOperand(0))))
    return op->emitOpError() << "needs a floating-point input";
  return success();
}

LogicalResult AddRmsNormOp::verify() {
  if (failed(verifyChannelVector(*this, getInput(), getWeight(), "weight")))
    return failure();
  return verifyAddNorm(*this, getEps().convertToDouble());
}

LogicalResult AddLayerNormOp::verify() {
  if (failed(verifyChannelVector(*this, getInput(), getWeight(), "weight")) ||
      failed(verifyChannelVector(*this, getInput(), getBias(), "bias")))
    return failure();
  return verifyAddNorm(*this, getEps().convertToDouble());
}

LogicalResult RopeOp::verify() {
  FailureOr<SymShape> x = shapeOf(*this, getInput(), "input"), pos = shapeOf(*this, getPositions(), "positions"),
                      freq = shapeOf(*this, getInvFreq(), "inv_freq");
  if (failed(x) || failed(pos) || failed(freq))
    return failure();
  if (x->size() != 4)
    return emitOpError() << "input must be [b, h, s, d], got " << formatShape(*x);
  if (pos->size() != 2 || (*pos)[0] != (*x)[0] || (*pos)[1] != (*x)[2])
    return emitOpError() << "positions " << formatShape(*pos) << " must be [" << (*x)[0].str() << ", "
                         << (*x)[2].str() << "] for input " << formatShape(*x);
  if (!isa<IntegerType>(elementTypeOf(getPositions())))
    return emitOpError() << "positions must be integers";
  const SymExpr &d = (*x)[3];
  if (freq->size() != 1 || !(*freq)[0].isConstant() || !d.isConstant() ||
      2 * (*freq)[0].getConstant() > d.getConstant() || (*freq)[0].getConstant() == 0)
    return emitOpError() << "inv_freq " << formatShape(*freq) << " must be [r/2] with 0 < r <= head dim "
                         << d.str();
  return verifySameTypeUnaryOp(*this);
}

LogicalResult AttentionOp::verify() {
  FailureOr<SymShape> q = shapeOf(*this, getQuery(), "query"), k = shapeOf(*this, getKey(), "key"),
                      v = shapeOf(*this, getValue(), "value");
  if (failed(q) || failed(k) || failed(v))
    return failure();
  if (q->size() != 4 || k->size() != 4 || v->size() != 4)
    return emitOpError() << "query, key and value must be rank 4 ([b, h, s, d])";
  const SymExpr &b = (*q)[0], &hq = (*q)[1], &s = (*q)[2], &d = (*q)[3];
  const SymExpr &hkv = (*k)[1], &t = (*k)[2];
  if ((*k)[0] != b || (*v)[0] != b || (*v)[1] != hkv || (*v)[2] != t || (*k)[3] != d)
    return emitOpError() << "query " << formatShape(*q) << ", key " << formatShape(*k) << " and value "
                         << formatShape(*v) << " do not agree on batch, heads, kv length or head dim";
  if (!hq.isConstant() || !hkv.isConstant() || hkv.getConstant() == 0 ||
      hq.getConstant() % hkv.getConstant() != 0)
    return emitOpError() << "query heads " << hq.str() << " must be a constant multiple of kv heads "
                         << hkv.str();
  if (getWindow() && (getMask() != AttentionMask::causal || *getWindow() <= 0))
    return emitOpError() << "window needs a causal mask and a positive size";
  if (getSoftcap() && getSoftcap()->convertToDouble() <= 0)
    return emitOpError() << "softcap must be positive";
  if (Value m = getKeyPaddingMask()) {
    FailureOr<SymShape> ms = shapeOf(*this, m, "key_padding_mask");
    if (failed(ms))
      return failure();
    if (ms->size() != 2 || (*ms)[0] != b || (*ms)[1] != t)
      return emitOpError() << "key_padding_mask " << formatShape(*ms) << " must be [" << b.str() << ", "
                           << t.str() << "]";
  }
  if (Value bias = getBias()) {
    FailureOr<SymShape> bs = shapeOf(*this, bias, "bias");
    if (failed(bs))
      return failure();
    std::string error;
    SymShape scores = {b, hq, s, t};
    if (failed(checkBroadcastTo(*bs, scores, error)))
      return emitOpError() << "bias: " << error;
  }
  if (failed(expectSameElementType(*this, getQuery(), getKey(), "query and key")) ||
      failed(expectSameElementType(*this, getQuery(), getValue(), "query and value")) ||
      failed(expectSameElementType(*this, getQuery(), getResult(), "query and result")))
    return failure();
  return expectResultShape(*this, {b, hq, s, (*v)[3]});
}

} // namespace kiln::ir

#define GET_OP_CLASSES
#include "kiln/ir/KilnOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Dispatch groups
//===----------------------------------------------------------------------===//

namespace kiln::ir {

LogicalResult GroupOp::verify() {
  Block &body = getBody().front();
  if (body.getNumArguments() != getInputs().size())
    return emitOpError() << "body has " << body.getNumArguments() << " arguments for " << getInputs().size()
                         << " inputs";
  for (auto [i, arg] : llvm::enumerate(body.getArguments()))
    if (arg.getType() != getInputs()[i].getType())
      return emitOpError() << "body argument " << i << " has type " << arg.getType() << ", input " << i
                           << " has " << getInputs()[i].getType();
  auto yield = cast<YieldOp>(body.getTerminator());
  if (yield.getValues().getTypes() != getResultTypes())
    return emitOpError() << "yields " << yield.getValues().size() << " values whose types differ from its "
                         << getNumResults() << " results";
  if (getNumResults() == 0)
    return emitOpError() << "has no results";
  for (Operation &op : body.without_terminator())
    if (op.getDialect() != getOperation()->getDialect() || op.getNumRegions() != 0)
      return emitOpError() << "body holds '" << op.getName() << "': only kiln ops without regions";
  return success();
}

} // namespace kiln::ir
