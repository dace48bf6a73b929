//===- Interpreter.cpp - reference interpreter of the kiln dialect -------===//
//
// One function per op family, found through one op table (Evaluator::table(): op -> its evaluation; a unary
// or binary op is a row with its scalar function). Every element is a double; every sum (matmul, reductions,
// norms, attention) accumulates in double. Broadcasting goes through one strided-index helper (forEachIndex):
// each operand is read through strides that are 0 along the dims it stretches over.
//
//===----------------------------------------------------------------------===//
#include "kiln/ir/Interpreter.h"
#include "kiln/support/Quantize.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/OpTable.h"
#include "kiln/ir/ShapeInference.h"
#include "kiln/ir/SymShape.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <limits>

using namespace mlir;

namespace kiln::ir {

int64_t HostTensor::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

namespace {

using Shape = std::vector<int64_t>;
using Bindings = std::map<std::string, int64_t>;
using TensorRef = std::shared_ptr<const HostTensor>;

//===----------------------------------------------------------------------===//
// Shapes, strides and the strided-index helper
//===----------------------------------------------------------------------===//

int64_t product(llvm::ArrayRef<int64_t> dims) {
  int64_t n = 1;
  for (int64_t d : dims)
    n *= d;
  return n;
}

std::string formatDims(llvm::ArrayRef<int64_t> dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + "]";
}

/// Row-major strides.
Shape stridesOf(llvm::ArrayRef<int64_t> shape) {
  Shape strides(shape.size(), 1);
  for (int64_t i = (int64_t)shape.size() - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

/// Strides that read `in` as if broadcast (numpy, right-aligned) to `out`: 0 along stretched or missing dims.
Shape broadcastStrides(llvm::ArrayRef<int64_t> in, llvm::ArrayRef<int64_t> out) {
  Shape inStrides = stridesOf(in);
  Shape strides(out.size(), 0);
  size_t offset = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i)
    strides[offset + i] = (in[i] == 1 && out[offset + i] != 1) ? 0 : inStrides[i];
  return strides;
}

/// numpy broadcasting of concrete shapes; false when they do not broadcast.
bool broadcastShapes(llvm::ArrayRef<Shape> shapes, Shape &out) {
  size_t rank = 0;
  for (const Shape &s : shapes)
    rank = std::max(rank, s.size());
  out.assign(rank, 1);
  for (const Shape &s : shapes) {
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t &o = out[rank - s.size() + i];
      int64_t d = s[i];
      if (d == 1)
        continue;
      if (o != 1 && o != d)
        return false;
      o = d;
    }
  }
  return true;
}

/// Visits every index of `shape` in row-major order and calls fn(linearIndex, offsets), where offsets[k] is
/// the element offset of that index through strides[k]. strides[k] has one entry per dim of `shape`.
template <typename Fn>
void forEachIndex(llvm::ArrayRef<int64_t> shape, llvm::ArrayRef<Shape> strides, Fn fn) {
  int64_t total = product(shape);
  if (total == 0)
    return;
  size_t rank = shape.size(), n = strides.size();
  Shape index(rank, 0);
  llvm::SmallVector<int64_t, 4> offsets(n, 0);
  for (int64_t e = 0; e < total; ++e) {
    fn(e, llvm::ArrayRef<int64_t>(offsets));
    for (int64_t d = (int64_t)rank - 1; d >= 0; --d) {
      ++index[d];
      for (size_t k = 0; k < n; ++k)
        offsets[k] += strides[k][d];
      if (index[d] < shape[d])
        break;
      for (size_t k = 0; k < n; ++k)
        offsets[k] -= strides[k][d] * shape[d];
      index[d] = 0;
    }
  }
}

/// outer x axis x inner decomposition of `shape` around `axis`.
struct AxisSplit {
  int64_t outer, size, inner;
};
AxisSplit splitAt(llvm::ArrayRef<int64_t> shape, int64_t axis) {
  return {product(shape.take_front(axis)), shape[axis], product(shape.drop_front(axis + 1))};
}

bool isIntegerType(Type t) { return isa<IntegerType, IndexType>(t); }
Type elementType(Value v) { return cast<ShapedType>(v.getType()).getElementType(); }

//===----------------------------------------------------------------------===//
// Rounding to a float format (kiln.convert)
//===----------------------------------------------------------------------===//

/// Round-to-nearest-even of `x` to a binary format with `precision` significand bits (implicit bit
/// included), smallest normal exponent `minExp` and largest exponent `maxExp`; overflow gives +-inf.
double roundToFormat(double x, int precision, int minExp, int maxExp) {
  if (std::isnan(x) || std::isinf(x) || x == 0)
    return x;
  double a = std::fabs(x);
  int e;
  std::frexp(a, &e); // a = m * 2^e, m in [0.5, 1): the leading bit has exponent e - 1
  int exponent = std::max(e - 1, minExp);
  double quantum = std::ldexp(1.0, exponent - (precision - 1));
  double r = std::nearbyint(a / quantum) * quantum; // default rounding mode: ties to even
  if (r >= std::ldexp(1.0, maxExp + 1))
    r = std::numeric_limits<double>::infinity();
  return std::copysign(r, x);
}

double roundToFloatType(double x, FloatType type) {
  if (type.isF64())
    return x;
  if (type.isF32())
    return (double)(float)x;
  if (type.isF16())
    return roundToFormat(x, 11, -14, 15);
  if (type.isBF16())
    return roundToFormat(x, 8, -126, 127);
  llvm::APFloat v(x);
  bool losesInfo;
  v.convert(type.getFloatSemantics(), llvm::APFloat::rmNearestTiesToEven, &losesInfo);
  v.convert(llvm::APFloat::IEEEdouble(), llvm::APFloat::rmNearestTiesToEven, &losesInfo);
  return v.convertToDouble();
}

//===----------------------------------------------------------------------===//
// Elementwise functions
//===----------------------------------------------------------------------===//

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double geluErf(double x) { return x * 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); }
double geluTanh(double x) {
  const double c = std::sqrt(2.0 / 3.14159265358979323846);
  return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
}

double relu(double x) { return x > 0 ? x : (std::isnan(x) ? x : 0.0); }
/// max / min that propagate NaN (std::max / std::min return either side).
double maxNaN(double x, double y) { return std::isnan(x) || std::isnan(y) ? std::nan("") : std::max(x, y); }
double minNaN(double x, double y) { return std::isnan(x) || std::isnan(y) ? std::nan("") : std::min(x, y); }

std::string describeLocation(Location loc) {
  if (auto file = dyn_cast<FileLineColLoc>(loc))
    return (file.getFilename().getValue() + ":" + llvm::Twine(file.getLine()) + ":" +
            llvm::Twine(file.getColumn()))
        .str();
  if (auto name = dyn_cast<NameLoc>(loc)) {
    std::string child = describeLocation(name.getChildLoc());
    std::string out = "'" + name.getName().str() + "'";
    return child == "unknown location" ? out : out + " (" + child + ")";
  }
  if (auto call = dyn_cast<CallSiteLoc>(loc))
    return describeLocation(call.getCallee());
  if (auto fused = dyn_cast<FusedLoc>(loc)) {
    for (Location part : fused.getLocations()) {
      std::string s = describeLocation(part);
      if (s != "unknown location")
        return s;
    }
  }
  if (isa<UnknownLoc>(loc))
    return "unknown location";
  std::string out;
  llvm::raw_string_ostream os(out);
  loc.print(os);
  return out;
}

//===----------------------------------------------------------------------===//
// The evaluator of one run
//===----------------------------------------------------------------------===//

class Evaluator;
/// The results of one op: usually fresh tensors, for kiln.weight the cached (shared) one.
using Results = llvm::SmallVector<TensorRef, 2>;

/// How the interpreter evaluates one op (its row of the op table). `eval` computes the op's results;
/// elementwise families take their scalar function from the row (so a new unary op is one row).
struct OpRule {
  bool (Evaluator::*eval)(Operation *op, const OpRule &rule, Results &results) = nullptr;
  double (*unary)(double) = nullptr;
  double (*binary)(double, double) = nullptr;
  double (*binaryInteger)(double, double) = nullptr; ///< integer element types, where it differs
};

class Evaluator {
public:
  Evaluator(const WeightLoader &loader, llvm::StringMap<TensorRef> &weights, std::string &error,
            int64_t quantizedActivationRows)
      : loader_(loader), weights_(weights), error_(error), quantizedActivationRows_(quantizedActivationRows) {}

  bool bindArguments(func::FuncOp func, llvm::ArrayRef<HostTensor> args);
  bool bindSymbols(const std::map<std::string, int64_t> &symbols);
  bool evaluate(func::FuncOp func, std::vector<HostTensor> &results);
  /// The op table (built once).
  static const OpTable<OpRule> &table();

private:
  bool fail(Operation *op, const llvm::Twine &message) {
    error_ = ("'" + op->getName().getStringRef() + "' at " + describeLocation(op->getLoc()) + ": " + message)
                 .str();
    return false;
  }
  const HostTensor &get(Value v) { return *values_.find(v)->second; }
  bool expectedShape(Operation *op, Value result, Shape &shape);
  bool evalOp(Operation *op);
  bool checkAndStore(Operation *op, Results &results);
  /// A fresh tensor for result `i` of `op`, appended to `results`.
  static HostTensor &addResult(Operation *op, unsigned i, Results &results) {
    auto t = std::make_shared<HostTensor>();
    t->isInteger = isIntegerType(elementType(op->getResult(i)));
    HostTensor &ref = *t;
    results.push_back(std::move(t));
    return ref;
  }
  /// The row of a single-result op computed by Fn(op, out).
  template <typename OpT, bool (Evaluator::*Fn)(OpT, HostTensor &)>
  bool single(Operation *op, const OpRule &, Results &results) {
    return (this->*Fn)(cast<OpT>(op), addResult(op, 0, results));
  }
  template <typename OpT> bool evalReduce(OpT op, HostTensor &out) {
    return evalReduceAxis(op, op.getAxis(), op.getKeepdim(), out);
  }

  bool evalWeight(Operation *op, const OpRule &rule, Results &results);
  bool evalConstant(ConstantOp op, HostTensor &out);
  bool evalSym(SymOp op, HostTensor &out);
  bool evalIota(IotaOp op, HostTensor &out);
  bool evalUnary(Operation *op, const OpRule &rule, Results &results);
  bool evalBinary(Operation *op, const OpRule &rule, Results &results);
  bool evalCompare(CompareOp op, HostTensor &out);
  bool evalSelect(SelectOp op, HostTensor &out);
  bool evalConvert(ConvertOp op, HostTensor &out);
  bool evalReduceAxis(Operation *op, int64_t axis, bool keepdim, HostTensor &out);
  bool evalSoftmax(SoftmaxOp op, HostTensor &out);
  bool evalMatmul(MatmulOp op, HostTensor &out);
  bool evalMatmulGroup(Operation *op, const OpRule &rule, Results &results);
  bool evalGather(GatherOp op, HostTensor &out);
  bool evalReshape(ReshapeOp op, HostTensor &out);
  bool evalTranspose(TransposeOp op, HostTensor &out);
  bool evalBroadcastTo(BroadcastToOp op, HostTensor &out);
  bool evalSlice(SliceOp op, HostTensor &out);
  bool evalTail(TailOp op, HostTensor &out);
  bool evalConcat(ConcatOp op, HostTensor &out);
  bool evalRmsNorm(RmsNormOp op, HostTensor &out);
  bool evalLayerNorm(LayerNormOp op, HostTensor &out);
  bool evalRope(RopeOp op, HostTensor &out);
  bool evalAddNorm(Operation *op, const OpRule &rule, Results &results);
  bool evalAttention(AttentionOp op, HostTensor &out);
  bool evalGroup(Operation *op, const OpRule &rule, Results &results);
  bool evalYield(Operation *op, const OpRule &rule, Results &results);

  const WeightLoader &loader_;
  llvm::StringMap<TensorRef> &weights_;
  std::string &error_;
  int64_t quantizedActivationRows_;
  Bindings bindings_;
  llvm::DenseMap<Value, TensorRef> values_;
};

std::string argumentName(func::FuncOp func, unsigned i) {
  if (auto name = func.getArgAttrOfType<StringAttr>(i, "kiln.name"))
    return "argument '" + name.getValue().str() + "'";
  return "argument " + std::to_string(i);
}

/// "[b, s] = [2, ?]": the symbolic shape and its value under the bindings known so far.
std::string describeExpected(const SymShape &shape, const Bindings &bindings) {
  std::string values = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    std::optional<int64_t> v = shape[i].evaluate(bindings);
    values += (i ? ", " : "") + (v ? std::to_string(*v) : std::string("?"));
  }
  return formatShape(shape) + " = " + values + "]";
}

bool Evaluator::bindArguments(func::FuncOp func, llvm::ArrayRef<HostTensor> args) {
  if (args.size() != func.getNumArguments()) {
    error_ = "@" + func.getSymName().str() + " takes " + std::to_string(func.getNumArguments()) +
             " arguments, got " + std::to_string(args.size());
    return false;
  }
  std::vector<SymShape> types;
  for (unsigned i = 0; i < args.size(); ++i) {
    std::string reason;
    FailureOr<SymShape> type = getSymShape(func.getArgument(i).getType(), &reason);
    if (failed(type)) {
      error_ = argumentName(func, i) + " of @" + func.getSymName().str() + ": " + reason;
      return false;
    }
    const HostTensor &arg = args[i];
    if (arg.shape.size() != type->size()) {
      error_ = argumentName(func, i) + " has shape " + formatDims(arg.shape) + ", expected " +
               formatShape(*type) + " (rank " + std::to_string(type->size()) + ")";
      return false;
    }
    if (llvm::any_of(arg.shape, [](int64_t d) { return d < 0; }) ||
        (int64_t)arg.data.size() != arg.numElements()) {
      error_ = argumentName(func, i) + " has shape " + formatDims(arg.shape) + " but " +
               std::to_string(arg.data.size()) + " elements";
      return false;
    }
    types.push_back(*type);
  }

  // Solve dim by dim: a dim with exactly one unbound symbol binds it; a dim with none is checked. Dims with
  // several unbound symbols (`p + s`) wait for a later pass.
  std::vector<std::pair<unsigned, unsigned>> pending;
  for (unsigned i = 0; i < args.size(); ++i)
    for (unsigned d = 0; d < types[i].size(); ++d)
      pending.push_back({i, d});
  bool progress = true;
  while (!pending.empty() && progress) {
    progress = false;
    std::vector<std::pair<unsigned, unsigned>> later;
    for (auto [i, d] : pending) {
      const SymExpr &expr = types[i][d];
      int64_t actual = args[i].shape[d];
      int64_t known = expr.getConstant();
      std::string unbound;
      int64_t coeff = 0, numUnbound = 0;
      for (const auto &[name, c] : expr.terms()) {
        auto it = bindings_.find(name);
        if (it != bindings_.end()) {
          known += c * it->second;
        } else {
          ++numUnbound;
          unbound = name;
          coeff = c;
        }
      }
      if (numUnbound > 1) {
        later.push_back({i, d});
        continue;
      }
      progress = true;
      if (numUnbound == 1) {
        int64_t rest = actual - known;
        if (rest >= 0 && rest % coeff == 0) {
          bindings_[unbound] = rest / coeff;
          continue;
        }
      } else if (known == actual) {
        continue;
      }
      error_ = argumentName(func, i) + " has shape " + formatDims(args[i].shape) + ", expected " +
               describeExpected(types[i], bindings_) + " (dim " + std::to_string(d) + ")";
      return false;
    }
    pending = std::move(later);
  }
  if (!pending.empty()) {
    auto [i, d] = pending.front();
    error_ = argumentName(func, i) + ": cannot bind the symbols of dim " + std::to_string(d) + " (" +
             types[i][d].str() + ") from the argument shapes";
    return false;
  }

  for (unsigned i = 0; i < args.size(); ++i) {
    auto value = std::make_shared<HostTensor>(args[i]);
    value->isInteger = isIntegerType(elementType(func.getArgument(i)));
    values_[func.getArgument(i)] = std::move(value);
  }
  return true;
}

// Symbols no argument shape holds (a tail op's row count): bound by the caller; one that the arguments bound
// must agree.
bool Evaluator::bindSymbols(const std::map<std::string, int64_t> &symbols) {
  for (const auto &[name, value] : symbols) {
    auto [it, inserted] = bindings_.insert({name, value});
    if (!inserted && it->second != value) {
      error_ = "symbol '" + name + "' = " + std::to_string(value) + " but the argument shapes bind it to " +
               std::to_string(it->second);
      return false;
    }
  }
  return true;
}

bool Evaluator::expectedShape(Operation *op, Value result, Shape &shape) {
  std::string reason;
  FailureOr<SymShape> sym = getSymShape(result.getType(), &reason);
  if (failed(sym))
    return fail(op, "result type: " + reason);
  FailureOr<llvm::SmallVector<int64_t>> dims = evaluateShape(*sym, bindings_, &reason);
  if (failed(dims))
    return fail(op, "result type " + formatShape(*sym) + ": " + reason);
  shape.assign(dims->begin(), dims->end());
  return true;
}

bool Evaluator::evaluate(func::FuncOp func, std::vector<HostTensor> &results) {
  if (!func.getBody().hasOneBlock()) {
    error_ = "@" + func.getSymName().str() + " must have exactly one block";
    return false;
  }
  Block &block = func.getBody().front();

  // The last op that reads each value, so intermediate tensors are freed as soon as they are dead.
  llvm::DenseMap<Operation *, llvm::SmallVector<Value, 2>> dying;
  {
    llvm::DenseMap<Value, Operation *> lastUse;
    for (Operation &op : block)
      for (Value v : op.getOperands())
        lastUse[v] = &op;
    for (auto &[v, op] : lastUse)
      dying[op].push_back(v);
  }

  for (Operation &op : block) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      results.clear();
      for (Value v : ret.getOperands())
        results.push_back(get(v));
      return true;
    }
    if (!evalOp(&op))
      return false;
    auto it = dying.find(&op);
    if (it != dying.end())
      for (Value v : it->second)
        values_.erase(v);
  }
  error_ = "@" + func.getSymName().str() + " has no func.return";
  return false;
}

/// Evaluates `op` by its row of the op table and stores its results.
bool Evaluator::evalOp(Operation *op) {
  for (Value v : op->getOperands())
    if (!values_.count(v))
      return fail(op, "operand defined outside the function body");
  const OpRule *rule = table().find(op);
  if (!rule || op->getNumResults() == 0)
    return fail(op, "no interpreter rule for '" + op->getName().getStringRef() + "'");
  Results results;
  if (!(this->*rule->eval)(op, *rule, results))
    return false;
  return checkAndStore(op, results);
}

/// Checks each computed result against its type (evaluated with the bindings) and keeps the ones read later.
bool Evaluator::checkAndStore(Operation *op, Results &results) {
  if (results.size() != op->getNumResults())
    return fail(op, "internal error: " + std::to_string(results.size()) + " results computed");
  for (auto [i, res] : llvm::enumerate(op->getResults())) {
    const HostTensor &t = *results[i];
    std::string which = op->getNumResults() > 1 ? " of result " + std::to_string(i) : std::string();
    Shape expected;
    if (!expectedShape(op, res, expected))
      return false;
    if (t.shape != expected)
      return fail(op, "computed shape " + formatDims(t.shape) + which + " differs from the result type " +
                          formatDims(expected));
    if ((int64_t)t.data.size() != t.numElements())
      return fail(op, "internal error: " + std::to_string(t.data.size()) + " elements for shape " +
                          formatDims(t.shape));
    if (!res.use_empty())
      values_[res] = std::move(results[i]);
  }
  return true;
}

const OpTable<OpRule> &Evaluator::table() {
  using E = Evaluator;
  auto unary = [](double (*fn)(double)) { return OpRule{&E::evalUnary, fn}; };
  auto binary = [](double (*fn)(double, double), double (*integer)(double, double) = nullptr) {
    return OpRule{&E::evalBinary, nullptr, fn, integer ? integer : fn};
  };
  static const OpTable<OpRule> table = [&] {
    OpTable<OpRule> t;
    t.add<WeightOp>({&E::evalWeight})
        .add<ConstantOp>({&E::single<ConstantOp, &E::evalConstant>})
        .add<SymOp>({&E::single<SymOp, &E::evalSym>})
        .add<IotaOp>({&E::single<IotaOp, &E::evalIota>});
    t.add<AddOp>(binary(+[](double x, double y) { return x + y; }))
        .add<SubOp>(binary(+[](double x, double y) { return x - y; }))
        .add<MulOp>(binary(+[](double x, double y) { return x * y; }))
        // Integer division truncates toward zero, like C.
        .add<DivOp>(binary(
            +[](double x, double y) { return x / y; }, +[](double x, double y) { return std::trunc(x / y); }))
        .add<MaxOp>(binary(maxNaN))
        .add<MinOp>(binary(minNaN))
        .add<PowOp>(binary(+[](double x, double y) { return std::pow(x, y); }));
    t.add<NegOp>(unary(+[](double x) { return -x; }))
        .add<ExpOp>(unary(+[](double x) { return std::exp(x); }))
        .add<LogOp>(unary(+[](double x) { return std::log(x); }))
        .add<TanhOp>(unary(+[](double x) { return std::tanh(x); }))
        .add<ErfOp>(unary(+[](double x) { return std::erf(x); }))
        .add<CosOp>(unary(+[](double x) { return std::cos(x); }))
        .add<SinOp>(unary(+[](double x) { return std::sin(x); }))
        .add<RsqrtOp>(unary(+[](double x) { return 1.0 / std::sqrt(x); }))
        .add<SqrtOp>(unary(+[](double x) { return std::sqrt(x); }))
        .add<AbsOp>(unary(+[](double x) { return std::fabs(x); }))
        .add<SigmoidOp>(unary(sigmoid))
        .add<SiluOp>(unary(+[](double x) { return x * sigmoid(x); }))
        .add<GeluOp>(unary(geluErf))
        .add<GeluTanhOp>(unary(geluTanh))
        .add<ReluOp>(unary(relu));
    t.add<CompareOp>({&E::single<CompareOp, &E::evalCompare>})
        .add<SelectOp>({&E::single<SelectOp, &E::evalSelect>})
        .add<ConvertOp>({&E::single<ConvertOp, &E::evalConvert>})
        .add<ReduceSumOp>({&E::single<ReduceSumOp, &E::evalReduce<ReduceSumOp>>})
        .add<ReduceMeanOp>({&E::single<ReduceMeanOp, &E::evalReduce<ReduceMeanOp>>})
        .add<ReduceMaxOp>({&E::single<ReduceMaxOp, &E::evalReduce<ReduceMaxOp>>})
        .add<SoftmaxOp>({&E::single<SoftmaxOp, &E::evalSoftmax>})
        .add<MatmulOp>({&E::single<MatmulOp, &E::evalMatmul>})
        .add<MatmulGroupOp>({&E::evalMatmulGroup})
        .add<GatherOp>({&E::single<GatherOp, &E::evalGather>})
        .add<ReshapeOp>({&E::single<ReshapeOp, &E::evalReshape>})
        .add<TransposeOp>({&E::single<TransposeOp, &E::evalTranspose>})
        .add<BroadcastToOp>({&E::single<BroadcastToOp, &E::evalBroadcastTo>})
        .add<SliceOp>({&E::single<SliceOp, &E::evalSlice>})
        .add<TailOp>({&E::single<TailOp, &E::evalTail>})
        .add<ConcatOp>({&E::single<ConcatOp, &E::evalConcat>})
        .add<RmsNormOp>({&E::single<RmsNormOp, &E::evalRmsNorm>})
        .add<LayerNormOp>({&E::single<LayerNormOp, &E::evalLayerNorm>})
        .add<AddRmsNormOp, AddLayerNormOp>({&E::evalAddNorm})
        .add<RopeOp>({&E::single<RopeOp, &E::evalRope>})
        .add<AttentionOp>({&E::single<AttentionOp, &E::evalAttention>})
        .add<GroupOp>({&E::evalGroup})
        .add<YieldOp>({&E::evalYield});
    return t;
  }();
  return table;
}

//===----------------------------------------------------------------------===//
// Dispatch groups
//===----------------------------------------------------------------------===//

// The body's ops in order, its arguments bound to the inputs' tensors; the results are what it yields.
bool Evaluator::evalGroup(Operation *groupOp, const OpRule &, Results &results) {
  auto group = cast<GroupOp>(groupOp);
  Block &body = group.getBody().front();
  for (auto [arg, input] : llvm::zip(body.getArguments(), group.getInputs()))
    values_[arg] = values_.find(input)->second;
  for (Operation &op : body.without_terminator())
    if (!evalOp(&op))
      return false;
  for (Value v : body.getTerminator()->getOperands()) {
    auto it = values_.find(v);
    if (it == values_.end())
      return fail(group, "yields a value its body does not compute");
    results.push_back(it->second);
  }
  for (Operation &op : body.without_terminator())
    for (Value r : op.getResults())
      values_.erase(r);
  for (BlockArgument arg : body.getArguments())
    values_.erase(arg);
  return true;
}

bool Evaluator::evalYield(Operation *op, const OpRule &, Results &) {
  return fail(op, "is evaluated by its kiln.group, not on its own");
}

//===----------------------------------------------------------------------===//
// Sources
//===----------------------------------------------------------------------===//

bool Evaluator::evalWeight(Operation *weightOp, const OpRule &, Results &results) {
  auto op = cast<WeightOp>(weightOp);
  llvm::StringRef name = op.getName();
  auto cached = weights_.find(name);
  if (cached == weights_.end()) {
    auto loaded = std::make_shared<HostTensor>();
    std::string reason;
    if (!loader_)
      return fail(op, "weight '" + name + "': no weight loader");
    if (!loader_(name, *loaded, reason))
      return fail(op, "weight '" + name + "': " + (reason.empty() ? std::string("cannot be loaded") : reason));
    auto type = cast<RankedTensorType>(op.getType());
    Shape expected(type.getShape().begin(), type.getShape().end());
    std::optional<llvm::ArrayRef<int64_t>> rows = op.getRows();
    // A row chunk (rows = [begin, end)) needs the whole tensor to hold rows [0, end) and the same other dims.
    bool fits = loaded->shape == expected;
    if (rows && !expected.empty() && loaded->shape.size() == expected.size() && loaded->shape[0] >= (*rows)[1]) {
      Shape rest(loaded->shape);
      rest[0] = expected[0];
      fits = rest == expected;
    }
    if (!fits)
      return fail(op, "weight '" + name + "' has shape " + formatDims(loaded->shape) + ", the op's type says " +
                          formatDims(expected) +
                          (rows ? " (rows " + std::to_string((*rows)[0]) + ".." + std::to_string((*rows)[1]) + ")"
                                : std::string()));
    if ((int64_t)loaded->data.size() != loaded->numElements())
      return fail(op, "weight '" + name + "': the loader gave " + std::to_string(loaded->data.size()) +
                          " elements for shape " + formatDims(loaded->shape));
    loaded->isInteger = isIntegerType(type.getElementType());
    cached = weights_.insert({name, std::move(loaded)}).first;
  }
  if (std::optional<llvm::ArrayRef<int64_t>> rows = op.getRows()) {
    const HostTensor &whole = *cached->second;
    int64_t rowElements = whole.shape.empty() || whole.shape[0] == 0 ? 0 : whole.numElements() / whole.shape[0];
    if ((*rows)[1] > (whole.shape.empty() ? 0 : whole.shape[0]))
      return fail(op, "weight '" + name + "': rows " + std::to_string((*rows)[0]) + ".." + std::to_string((*rows)[1]) +
                          " lie outside its " + formatDims(whole.shape));
    auto chunk = std::make_shared<HostTensor>();
    chunk->shape = whole.shape;
    chunk->shape[0] = (*rows)[1] - (*rows)[0];
    chunk->isInteger = whole.isInteger;
    chunk->data.assign(whole.data.begin() + (*rows)[0] * rowElements, whole.data.begin() + (*rows)[1] * rowElements);
    results.push_back(std::move(chunk));
    return true;
  }
  results.push_back(cached->second);
  return true;
}

bool Evaluator::evalConstant(ConstantOp op, HostTensor &out) {
  auto dense = dyn_cast<DenseElementsAttr>(op.getValue());
  if (!dense)
    return fail(op, "only dense constants are supported");
  auto type = cast<ShapedType>(dense.getType());
  out.shape.assign(type.getShape().begin(), type.getShape().end());
  out.data.reserve(out.numElements());
  Type element = type.getElementType();
  if (isa<FloatType>(element)) {
    for (const llvm::APFloat &v : dense.getValues<llvm::APFloat>()) {
      llvm::APFloat d = v;
      bool losesInfo;
      d.convert(llvm::APFloat::IEEEdouble(), llvm::APFloat::rmNearestTiesToEven, &losesInfo);
      out.data.push_back(d.convertToDouble());
    }
  } else if (isIntegerType(element)) {
    bool isUnsigned = element.isUnsignedInteger() || element.isInteger(1);
    for (const llvm::APInt &v : dense.getValues<llvm::APInt>())
      out.data.push_back(isUnsigned ? (double)v.getZExtValue() : (double)v.getSExtValue());
  } else {
    std::string s;
    llvm::raw_string_ostream os(s);
    os << element;
    return fail(op, "constants of element type " + s + " are not supported");
  }
  out.data.resize(out.numElements(), out.data.empty() ? 0.0 : out.data.back());
  return true;
}

bool Evaluator::evalSym(SymOp op, HostTensor &out) {
  auto it = bindings_.find(op.getSymbol().str());
  if (it == bindings_.end())
    return fail(op, "symbol '" + op.getSymbol() + "' is not bound by the argument shapes");
  out.shape = {};
  out.data = {(double)it->second};
  return true;
}

bool Evaluator::evalIota(IotaOp op, HostTensor &out) {
  if (!expectedShape(op, op.getResult(), out.shape))
    return false;
  int64_t dim = op.getDim();
  Shape strides = stridesOf(out.shape);
  out.data.resize(out.numElements());
  for (int64_t e = 0; e < (int64_t)out.data.size(); ++e)
    out.data[e] = (double)((e / strides[dim]) % out.shape[dim]);
  return true;
}

//===----------------------------------------------------------------------===//
// Broadcasting elementwise ops
//===----------------------------------------------------------------------===//

/// Broadcasts the operands of `op` together; fills out.shape and sizes out.data.
bool broadcastOperands(llvm::ArrayRef<const HostTensor *> inputs, HostTensor &out, std::vector<Shape> &strides) {
  std::vector<Shape> shapes;
  for (const HostTensor *t : inputs)
    shapes.push_back(t->shape);
  if (!broadcastShapes(shapes, out.shape))
    return false;
  for (const Shape &s : shapes)
    strides.push_back(broadcastStrides(s, out.shape));
  out.data.resize(out.numElements());
  return true;
}

std::string describeShapes(llvm::ArrayRef<const HostTensor *> inputs) {
  std::string list;
  for (const HostTensor *t : inputs)
    list += (list.empty() ? "" : " and ") + formatDims(t->shape);
  return list;
}

template <typename Fn>
bool binaryMap(const HostTensor &a, const HostTensor &b, HostTensor &out, Fn fn) {
  std::vector<Shape> strides;
  if (!broadcastOperands({&a, &b}, out, strides))
    return false;
  forEachIndex(out.shape, strides, [&](int64_t e, llvm::ArrayRef<int64_t> off) {
    out.data[e] = fn(a.data[off[0]], b.data[off[1]]);
  });
  return true;
}

bool Evaluator::evalUnary(Operation *op, const OpRule &rule, Results &results) {
  const HostTensor &in = get(op->getOperand(0));
  HostTensor &out = addResult(op, 0, results);
  out.shape = in.shape;
  out.data.resize(in.data.size());
  for (size_t i = 0; i < in.data.size(); ++i)
    out.data[i] = rule.unary(in.data[i]);
  return true;
}

bool Evaluator::evalBinary(Operation *op, const OpRule &rule, Results &results) {
  const HostTensor &a = get(op->getOperand(0)), &b = get(op->getOperand(1));
  bool integer = isIntegerType(elementType(op->getResult(0)));
  if (isa<DivOp>(op) && integer) {
    for (double d : b.data)
      if (d == 0)
        return fail(op, "integer division by zero");
  }
  double (*fn)(double, double) = integer ? rule.binaryInteger : rule.binary;
  if (!binaryMap(a, b, addResult(op, 0, results), fn))
    return fail(op, "cannot broadcast " + describeShapes({&a, &b}));
  return true;
}

bool Evaluator::evalCompare(CompareOp op, HostTensor &out) {
  const HostTensor &a = get(op.getLhs()), &b = get(op.getRhs());
  bool (*pred)(double, double) = nullptr;
  switch (op.getPredicate()) {
  case ComparePredicate::eq:
    pred = [](double x, double y) { return x == y; };
    break;
  case ComparePredicate::ne:
    pred = [](double x, double y) { return x != y; };
    break;
  case ComparePredicate::lt:
    pred = [](double x, double y) { return x < y; };
    break;
  case ComparePredicate::le:
    pred = [](double x, double y) { return x <= y; };
    break;
  case ComparePredicate::gt:
    pred = [](double x, double y) { return x > y; };
    break;
  case ComparePredicate::ge:
    pred = [](double x, double y) { return x >= y; };
    break;
  }
  if (!binaryMap(a, b, out, [&](double x, double y) { return pred(x, y) ? 1.0 : 0.0; }))
    return fail(op, "cannot broadcast " + describeShapes({&a, &b}));
  return true;
}

bool Evaluator::evalSelect(SelectOp op, HostTensor &out) {
  const HostTensor &c = get(op.getCond()), &t = get(op.getOnTrue()), &f = get(op.getOnFalse());
  std::vector<Shape> strides;
  if (!broadcastOperands({&c, &t, &f}, out, strides))
    return fail(op, "cannot broadcast " + describeShapes({&c, &t, &f}));
  forEachIndex(out.shape, strides, [&](int64_t e, llvm::ArrayRef<int64_t> off) {
    out.data[e] = c.data[off[0]] != 0 ? t.data[off[1]] : f.data[off[2]];
  });
  return true;
}

bool Evaluator::evalConvert(ConvertOp op, HostTensor &out) {
  const HostTensor &in = get(op.getInput());
  Type to = elementType(op.getResult());
  out.shape = in.shape;
  out.data.resize(in.data.size());
  if (auto f = dyn_cast<FloatType>(to)) {
    for (size_t i = 0; i < in.data.size(); ++i)
      out.data[i] = roundToFloatType(in.data[i], f);
    return true;
  }
  if (to.isInteger(1)) {
    for (size_t i = 0; i < in.data.size(); ++i)
      out.data[i] = in.data[i] != 0 ? 1.0 : 0.0;
    return true;
  }
  if (!isIntegerType(to))
    return fail(op, "cannot convert to this element type");
  unsigned width = isa<IndexType>(to) ? 64 : cast<IntegerType>(to).getWidth();
  bool isUnsigned = to.isUnsignedInteger();
  // The representable range [lo, hi) of the target type (exact powers of two in a double).
  double lo = isUnsigned ? 0.0 : -std::ldexp(1.0, width - 1);
  double hi = std::ldexp(1.0, isUnsigned ? width : width - 1);
  for (size_t i = 0; i < in.data.size(); ++i) {
    double v = std::trunc(in.data[i]); // toward zero, like a C cast
    if (!(v >= lo && v < hi))
      return fail(op, "value " + std::to_string(in.data[i]) + " at element " + std::to_string(i) +
                          " does not fit the integer result type");
    out.data[i] = v == 0 ? 0.0 : v; // no -0
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Reductions and softmax
//===----------------------------------------------------------------------===//

bool Evaluator::evalReduceAxis(Operation *op, int64_t axisAttr, bool keepdim, HostTensor &out) {
  const HostTensor &in = get(op->getOperand(0));
  std::string reason;
  FailureOr<int64_t> axis = normalizeAxis(axisAttr, in.shape.size(), reason);
  if (failed(axis))
    return fail(op, reason);
  AxisSplit sp = splitAt(in.shape, *axis);
  out.shape = in.shape;
  if (keepdim)
    out.shape[*axis] = 1;
  else
    out.shape.erase(out.shape.begin() + *axis);
  bool isMax = isa<ReduceMaxOp>(op), isMean = isa<ReduceMeanOp>(op);
  out.data.assign(sp.outer * sp.inner, isMax ? -std::numeric_limits<double>::infinity() : 0.0);
  for (int64_t o = 0; o < sp.outer; ++o) {
    for (int64_t i = 0; i < sp.inner; ++i) {
      double acc = isMax ? -std::numeric_limits<double>::infinity() : 0.0;
      const double *x = in.data.data() + o * sp.size * sp.inner + i;
      for (int64_t k = 0; k < sp.size; ++k) {
        double v = x[k * sp.inner];
        if (isMax)
          acc = (std::isnan(v) || std::isnan(acc)) ? std::nan("") : std::max(acc, v);
        else
          acc += v;
      }
      if (isMean)
        acc /= (double)sp.size;
      out.data[o * sp.inner + i] = acc;
    }
  }
  return true;
}

/// Softmax of n values read with `stride`, written likewise. -inf entries give 0; a row of only -inf gives
/// zeros (like a fully masked attention row).
void softmaxRow(const double *x, double *y, int64_t n, int64_t stride) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t k = 0; k < n; ++k)
    m = std::isnan(x[k * stride]) ? x[k * stride] : std::max(m, x[k * stride]);
  if (m == -std::numeric_limits<double>::infinity()) {
    for (int64_t k = 0; k < n; ++k)
      y[k * stride] = 0.0;
    return;
  }
  double sum = 0;
  for (int64_t k = 0; k < n; ++k) {
    y[k * stride] = std::exp(x[k * stride] - m);
    sum += y[k * stride];
  }
  for (int64_t k = 0; k < n; ++k)
    y[k * stride] /= sum;
}

bool Evaluator::evalSoftmax(SoftmaxOp op, HostTensor &out) {
  const HostTensor &in = get(op.getInput());
  std::string reason;
  FailureOr<int64_t> axis = normalizeAxis(op.getAxis(), in.shape.size(), reason);
  if (failed(axis))
    return fail(op, reason);
  AxisSplit sp = splitAt(in.shape, *axis);
  out.shape = in.shape;
  out.data.resize(in.data.size());
  for (int64_t o = 0; o < sp.outer; ++o)
    for (int64_t i = 0; i < sp.inner; ++i) {
      int64_t base = o * sp.size * sp.inner + i;
      softmaxRow(in.data.data() + base, out.data.data() + base, sp.size, sp.inner);
    }
  return true;
}

//===----------------------------------------------------------------------===//
// Contractions and data movement
//===----------------------------------------------------------------------===//

namespace {
/// A matmul's lhs as the int8 kernels see it against a block-quantized weight `rhs` (kiln.weight `quant`, read
/// transposed): each row (at most maxRows of them) quantized per block of 32 (as f32, quantizeActivationBlock)
/// and dequantized. nullopt when the weight is not quantized or there are more rows (f32 activations then).
std::optional<HostTensor> quantizedActivations(Value rhs, bool transposeB, const HostTensor &a, int64_t maxRows) {
  auto w = rhs.getDefiningOp<WeightOp>();
  if (!w || !w.getQuant() || !transposeB || a.shape.empty())
    return std::nullopt;
  const int64_t k = a.shape.back();
  if (k <= 0 || k % kQuantBlock != 0 || a.numElements() / k > maxRows)
    return std::nullopt;
  HostTensor q = a;
  float x[kQuantBlock];
  int8_t quants[kQuantBlock];
  for (size_t b = 0; b + kQuantBlock <= q.data.size(); b += kQuantBlock) {
    for (int64_t j = 0; j < kQuantBlock; ++j)
      x[j] = float(q.data[b + size_t(j)]);
    int32_t sum;
    const float d = quantizeActivationBlock(x, quants, &sum);
    for (int64_t j = 0; j < kQuantBlock; ++j)
      q.data[b + size_t(j)] = double(quants[j]) * double(d);
  }
  return q;
}
} // namespace

bool Evaluator::evalMatmul(MatmulOp op, HostTensor &out) {
  std::optional<HostTensor> quantized =
      quantizedActivations(op.getRhs(), op.getTransposeB(), get(op.getLhs()), quantizedActivationRows_);
  const HostTensor &a = quantized ? *quantized : get(op.getLhs()), &b = get(op.getRhs());
  bool tb = op.getTransposeB();
  if (a.shape.size() < 2 || b.shape.size() < 2)
    return fail(op, "operands need rank >= 2");
  int64_t m = a.shape[a.shape.size() - 2], k = a.shape.back();
  int64_t kb = tb ? b.shape.back() : b.shape[b.shape.size() - 2];
  int64_t n = tb ? b.shape[b.shape.size() - 2] : b.shape.back();
  if (k != kb)
    return fail(op, "contraction dims differ: " + formatDims(a.shape) + " x " + formatDims(b.shape) +
                        (tb ? "^T" : ""));
  Shape aBatch(a.shape.begin(), a.shape.end() - 2), bBatch(b.shape.begin(), b.shape.end() - 2), batch;
  if (!broadcastShapes({aBatch, bBatch}, batch))
    return fail(op, "batch dims do not broadcast: " + formatDims(a.shape) + " x " + formatDims(b.shape));
  out.shape = batch;
  out.shape.push_back(m);
  out.shape.push_back(n);
  out.data.assign(out.numElements(), 0.0);
  // Batch strides, in elements.
  Shape as = broadcastStrides(aBatch, batch), bs = broadcastStrides(bBatch, batch);
  for (int64_t &s : as)
    s *= m * k;
  for (int64_t &s : bs)
    s *= k * n;
  forEachIndex(batch, {as, bs}, [&](int64_t e, llvm::ArrayRef<int64_t> off) {
    const double *A = a.data.data() + off[0], *B = b.data.data() + off[1];
    double *C = out.data.data() + e * m * n;
    for (int64_t i = 0; i < m; ++i) {
      double *c = C + i * n;
      if (tb) {
        for (int64_t j = 0; j < n; ++j) {
          double acc = 0;
          for (int64_t p = 0; p < k; ++p)
            acc += A[i * k + p] * B[j * k + p];
          c[j] = acc;
        }
      } else {
        for (int64_t p = 0; p < k; ++p) {
          double x = A[i * k + p];
          const double *row = B + p * n;
          for (int64_t j = 0; j < n; ++j)
            c[j] += x * row[j];
        }
      }
    }
  });
  return true;
}

bool Evaluator::evalGather(GatherOp op, HostTensor &out) {
  const HostTensor &table = get(op.getTable()), &indices = get(op.getIndices());
  if (table.shape.empty())
    return fail(op, "table must have rank >= 1");
  int64_t rows = table.shape[0];
  int64_t row = product(llvm::ArrayRef<int64_t>(table.shape).drop_front());
  out.shape = indices.shape;
  out.shape.insert(out.shape.end(), table.shape.begin() + 1, table.shape.end());
  out.data.resize(indices.data.size() * row);
  for (size_t j = 0; j < indices.data.size(); ++j) {
    double v = indices.data[j];
    if (!(v >= 0 && v < (double)rows) || v != std::floor(v)) {
      std::string text = v == std::floor(v) && std::isfinite(v) ? std::to_string((int64_t)v) : std::to_string(v);
      return fail(op, "index " + text + " (element " + std::to_string(j) + " of the indices) is out of range [0, " +
                          std::to_string(rows) + ")");
    }
    std::copy_n(table.data.begin() + (int64_t)v * row, row, out.data.begin() + j * row);
  }
  return true;
}

bool Evaluator::evalReshape(ReshapeOp op, HostTensor &out) {
  const HostTensor &in = get(op.getInput());
  if (!expectedShape(op, op.getResult(), out.shape))
    return false;
  if (out.numElements() != in.numElements())
    return fail(op, "cannot reshape " + formatDims(in.shape) + " to " + formatDims(out.shape));
  out.data = in.data;
  return true;
}

bool Evaluator::evalTranspose(TransposeOp op, HostTensor &out) {
  const HostTensor &in = get(op.getInput());
  llvm::ArrayRef<int64_t> perm = op.getPermutation();
  if (perm.size() != in.shape.size())
    return fail(op, "permutation does not match the rank");
  Shape inStrides = stridesOf(in.shape), strides;
  for (int64_t p : perm) {
    out.shape.push_back(in.shape[p]);
    strides.push_back(inStrides[p]);
  }
  out.data.resize(in.data.size());
  forEachIndex(out.shape, {strides},
               [&](int64_t e, llvm::ArrayRef<int64_t> off) { out.data[e] = in.data[off[0]]; });
  return true;
}

bool Evaluator::evalBroadcastTo(BroadcastToOp op, HostTensor &out) {
  const HostTensor &in = get(op.getInput());
  if (!expectedShape(op, op.getResult(), out.shape))
    return false;
  Shape joined;
  if (in.shape.size() > out.shape.size() || !broadcastShapes({in.shape, out.shape}, joined) ||
      joined != out.shape)
    return fail(op, "cannot broadcast " + formatDims(in.shape) + " to " + formatDims(out.shape));
  out.data.resize(out.numElements());
  forEachIndex(out.shape, {broadcastStrides(in.shape, out.shape)},
               [&](int64_t e, llvm::ArrayRef<int64_t> off) { out.data[e] = in.data[off[0]]; });
  return true;
}

bool Evaluator::evalSlice(SliceOp op, HostTensor &out) {
  const HostTensor &in = get(op.getInput());
  std::string reason;
  FailureOr<int64_t> axis = normalizeAxis(op.getAxis(), in.shape.size(), reason);
  if (failed(axis))
    return fail(op, reason);
  int64_t start = op.getStart(), end = op.getEnd();
  AxisSplit sp = splitAt(in.shape, *axis);
  if (start < 0 || start > end || end > sp.size)
    return fail(op, "slice [" + std::to_string(start) + ", " + std::to_string(end) + ") is outside dim of size " +
                        std::to_string(sp.size));
  out.shape = in.shape;
  out.shape[*axis] = end - start;
  out.data.resize(out.numElements());
  int64_t chunk = (end - start) * sp.inner;
  for (int64_t o = 0; o < sp.outer; ++o)
    std::copy_n(in.data.begin() + (o * sp.size + start) * sp.inner, chunk, out.data.begin() + o * chunk);
  return true;
}

bool Evaluator::evalTail(TailOp op, HostTensor &out) {
  const HostTensor &in = get(op.getInput());
  std::string reason;
  FailureOr<int64_t> axis = normalizeAxis(op.getAxis(), in.shape.size(), reason);
  if (failed(axis) || !expectedShape(op, op.getResult(), out.shape))
    return failed(axis) ? fail(op, reason) : false;
  AxisSplit sp = splitAt(in.shape, *axis);
  const int64_t n = out.shape[*axis];
  if (n > sp.size)
    return fail(op, "takes the last " + std::to_string(n) + " of " + std::to_string(sp.size) + " elements of dim " +
                        std::to_string(*axis));
  out.data.resize(out.numElements());
  for (int64_t o = 0; o < sp.outer; ++o)
    std::copy_n(in.data.begin() + (o * sp.size + sp.size - n) * sp.inner, n * sp.inner,
                out.data.begin() + o * n * sp.inner);
  return true;
}

bool Evaluator::evalConcat(ConcatOp op, HostTensor &out) {
  llvm::SmallVector<const HostTensor *> inputs;
  for (Value v : op.getInputs())
    inputs.push_back(&get(v));
  if (inputs.empty())
    return fail(op, "concat of no tensors");
  std::string reason;
  FailureOr<int64_t> axis = normalizeAxis(op.getAxis(), inputs[0]->shape.size(), reason);
  if (failed(axis))
    return fail(op, reason);
  out.shape = inputs[0]->shape;
  out.shape[*axis] = 0;
  for (const HostTensor *t : inputs) {
    Shape a = t->shape, b = inputs[0]->shape;
    if (a.size() != b.size())
      return fail(op, "ranks differ: " + describeShapes(inputs));
    a[*axis] = b[*axis] = 0;
    if (a != b)
      return fail(op, "shapes differ off the concat axis: " + describeShapes(inputs));
    out.shape[*axis] += t->shape[*axis];
  }
  out.data.clear();
  out.data.reserve(out.numElements());
  int64_t outer = product(llvm::ArrayRef<int64_t>(out.shape).take_front(*axis));
  for (int64_t o = 0; o < outer; ++o)
    for (const HostTensor *t : inputs) {
      int64_t chunk = product(llvm::ArrayRef<int64_t>(t->shape).drop_front(*axis));
      out.data.insert(out.data.end(), t->data.begin() + o * chunk, t->data.begin() + (o + 1) * chunk);
    }
  return true;
}

//===----------------------------------------------------------------------===//
// Fused ops
//===----------------------------------------------------------------------===//

/// rms_norm(x, w) over the last axis (x * rsqrt(mean(x^2) + eps) * w, or * (1 + w) with unitOffset).
static void rmsNormRows(const HostTensor &x, const HostTensor &w, double eps, bool unitOffset, HostTensor &out) {
  const int64_t n = x.shape.empty() ? 0 : x.shape.back();
  out.shape = x.shape;
  out.data.resize(x.data.size());
  for (int64_t r = 0; n > 0 && r < (int64_t)x.data.size() / n; ++r) {
    const double *xr = x.data.data() + r * n;
    double ss = 0;
    for (int64_t i = 0; i < n; ++i)
      ss += xr[i] * xr[i];
    double inv = 1.0 / std::sqrt(ss / (double)n + eps);
    for (int64_t i = 0; i < n; ++i)
      out.data[r * n + i] = xr[i] * inv * (unitOffset ? 1.0 + w.data[i] : w.data[i]);
  }
}

bool Evaluator::evalRmsNorm(RmsNormOp op, HostTensor &out) {
  const HostTensor &x = get(op.getInput()), &w = get(op.getWeight());
  int64_t n = x.shape.empty() ? 0 : x.shape.back();
  if (x.shape.empty() || (int64_t)w.data.size() != n)
    return fail(op, "weight " + formatDims(w.shape) + " does not match input " + formatDims(x.shape));
  rmsNormRows(x, w, op.getEps().convertToDouble(), op.getUnitOffset(), out);
  return true;
}

bool Evaluator::evalLayerNorm(LayerNormOp op, HostTensor &out) {
  const HostTensor &x = get(op.getInput()), &w = get(op.getWeight()), &b = get(op.getBias());
  int64_t n = x.shape.empty() ? 0 : x.shape.back();
  if (x.shape.empty() || (int64_t)w.data.size() != n || (int64_t)b.data.size() != n)
    return fail(op, "weight " + formatDims(w.shape) + " or bias " + formatDims(b.shape) +
                        " does not match input " + formatDims(x.shape));
  double eps = op.getEps().convertToDouble();
  out.shape = x.shape;
  out.data.resize(x.data.size());
  for (int64_t r = 0; n > 0 && r < (int64_t)x.data.size() / n; ++r) {
    const double *xr = x.data.data() + r * n;
    double mean = 0;
    for (int64_t i = 0; i < n; ++i)
      mean += xr[i];
    mean /= (double)n;
    double var = 0;
    for (int64_t i = 0; i < n; ++i)
      var += (xr[i] - mean) * (xr[i] - mean);
    var /= (double)n;
    double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < n; ++i)
      out.data[r * n + i] = (xr[i] - mean) * inv * w.data[i] + b.data[i];
  }
  return true;
}

/// matmul_group (x, W_0, ..., W_n-1): x W_i^T per weight, or silu(x W_0^T) * (x W_1^T) with silu_mul; with
/// norm(w) x is rms_norm(x, w) first, with residual(r) the one result is r + x W_0^T.
bool Evaluator::evalMatmulGroup(Operation *groupOp, const OpRule &, Results &results) {
  auto op = cast<MatmulGroupOp>(groupOp);
  HostTensor normed;
  if (Value w = op.getNormWeight()) {
    const HostTensor &x = get(op.getLhs()), &nw = get(w);
    if (x.shape.empty() || (int64_t)nw.data.size() != x.shape.back())
      return fail(op, "norm weight " + formatDims(nw.shape) + " does not match lhs " + formatDims(x.shape));
    rmsNormRows(x, nw, op.getNormEps()->convertToDouble(), op.getNormUnitOffset(), normed);
  }
  const HostTensor &lhs = op.getNormWeight() ? normed : get(op.getLhs());
  // Block-quantized weights (one format for all: kiln-fuse-matmul-groups) quantize the lhs as a matmul does.
  std::optional<HostTensor> quantized =
      quantizedActivations(op.getWeights().front(), true, lhs, quantizedActivationRows_);
  const HostTensor &a = quantized ? *quantized : lhs;
  if (a.shape.size() < 2)
    return fail(op, "lhs needs rank >= 2");
  const int64_t k = a.shape.back(), rows = a.numElements() / std::max<int64_t>(k, 1);
  std::vector<HostTensor> products;
  for (Value w : op.getWeights()) {
    const HostTensor &b = get(w);
    if (b.shape.size() != 2 || b.shape[1] != k)
      return fail(op, "weight " + formatDims(b.shape) + " does not match lhs " + formatDims(a.shape));
    HostTensor y;
    y.shape.assign(a.shape.begin(), a.shape.end() - 1);
    y.shape.push_back(b.shape[0]);
    y.data.assign(y.numElements(), 0.0);
    const int64_t n = b.shape[0];
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p)
          acc += a.data[size_t(i * k + p)] * b.data[size_t(j * k + p)];
        y.data[size_t(i * n + j)] = acc;
      }
    products.push_back(std::move(y));
  }
  if (op.getSiluMul()) {
    if (products.size() != 2 || products[0].shape != products[1].shape)
      return fail(op, "silu_mul needs two weights of one shape");
    HostTensor &out = addResult(op, 0, results);
    out.shape = products[0].shape;
    out.data.resize(products[0].data.size());
    for (size_t i = 0; i < out.data.size(); ++i) {
      double g = products[0].data[i];
      out.data[i] = g * sigmoid(g) * products[1].data[i];
    }
    return true;
  }
  if (Value r = op.getResidual()) {
    const HostTensor &res = get(r);
    if (products.size() != 1 || res.shape != products[0].shape)
      return fail(op, "residual " + formatDims(res.shape) + " does not match the result");
    for (size_t i = 0; i < res.data.size(); ++i)
      products[0].data[i] += res.data[i];
  }
  for (unsigned i = 0; i < products.size(); ++i)
    addResult(op, i, results) = std::move(products[i]);
  return true;
}

/// add_rms_norm (x, r, w) / add_layer_norm (x, r, w, b): outs = {h = x + r, y = norm(h)}.
bool Evaluator::evalAddNorm(Operation *op, const OpRule &, Results &results) {
  auto rms = dyn_cast<AddRmsNormOp>(op);
  const HostTensor &x = get(op->getOperand(0)), &res = get(op->getOperand(1)), &w = get(op->getOperand(2));
  const HostTensor *b = rms ? nullptr : &get(op->getOperand(3));
  int64_t n = x.shape.empty() ? 0 : x.shape.back();
  if (x.shape.empty() || res.shape != x.shape || (int64_t)w.data.size() != n || (b && (int64_t)b->data.size() != n))
    return fail(op, "input " + formatDims(x.shape) + ", residual " + formatDims(res.shape) + ", weight " +
                        formatDims(w.shape) + (b ? ", bias " + formatDims(b->shape) : std::string()) +
                        " do not agree");
  double eps = rms ? rms.getEps().convertToDouble() : cast<AddLayerNormOp>(op).getEps().convertToDouble();
  bool unit = rms && rms.getUnitOffset();
  HostTensor &h = addResult(op, 0, results), &y = addResult(op, 1, results);
  h.shape = y.shape = x.shape;
  h.data.resize(x.data.size());
  y.data.resize(x.data.size());
  for (size_t i = 0; i < x.data.size(); ++i)
    h.data[i] = x.data[i] + res.data[i];
  for (int64_t r = 0; n > 0 && r < (int64_t)x.data.size() / n; ++r) {
    const double *hr = h.data.data() + r * n;
    double mean = 0;
    if (!rms) {
      for (int64_t i = 0; i < n; ++i)
        mean += hr[i];
      mean /= (double)n;
    }
    double ss = 0;
    for (int64_t i = 0; i < n; ++i)
      ss += (hr[i] - mean) * (hr[i] - mean);
    double inv = 1.0 / std::sqrt(ss / (double)n + eps);
    for (int64_t i = 0; i < n; ++i)
      y.data[r * n + i] = rms ? hr[i] * inv * (unit ? 1.0 + w.data[i] : w.data[i])
                              : (hr[i] - mean) * inv * w.data[i] + b->data[i];
  }
  return true;
}

bool Evaluator::evalRope(RopeOp op, HostTensor &out) {
  const HostTensor &x = get(op.getInput()), &pos = get(op.getPositions()), &freq = get(op.getInvFreq());
  if (x.shape.size() != 4 || pos.shape.size() != 2 || pos.shape[0] != x.shape[0] || pos.shape[1] != x.shape[2])
    return fail(op, "input " + formatDims(x.shape) + " and positions " + formatDims(pos.shape) + " do not agree");
  int64_t B = x.shape[0], H = x.shape[1], S = x.shape[2], D = x.shape[3];
  int64_t half = (int64_t)freq.data.size();
  if (2 * half > D)
    return fail(op, "inv_freq " + formatDims(freq.shape) + " rotates more than the head dim " + std::to_string(D));
  bool interleaved = op.getInterleaved();
  out.shape = x.shape;
  out.data = x.data; // channels >= r pass through
  std::vector<double> cosv(half), sinv(half);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s) {
      double p = pos.data[b * S + s];
      for (int64_t i = 0; i < half; ++i) {
        double angle = p * freq.data[i];
        cosv[i] = std::cos(angle);
        sinv[i] = std::sin(angle);
      }
      for (int64_t h = 0; h < H; ++h) {
        int64_t base = ((b * H + h) * S + s) * D;
        const double *xi = x.data.data() + base;
        double *yi = out.data.data() + base;
        for (int64_t i = 0; i < half; ++i) {
          int64_t i1 = interleaved ? 2 * i : i, i2 = interleaved ? 2 * i + 1 : i + half;
          double x1 = xi[i1], x2 = xi[i2];
          yi[i1] = x1 * cosv[i] - x2 * sinv[i];
          yi[i2] = x2 * cosv[i] + x1 * sinv[i];
        }
      }
    }
  return true;
}

bool Evaluator::evalAttention(AttentionOp op, HostTensor &out) {
  const HostTensor &q = get(op.getQuery()), &k = get(op.getKey()), &v = get(op.getValue());
  if (q.shape.size() != 4 || k.shape.size() != 4 || v.shape.size() != 4)
    return fail(op, "query, key and value must be rank 4");
  int64_t B = q.shape[0], Hq = q.shape[1], S = q.shape[2], D = q.shape[3];
  int64_t Hkv = k.shape[1], T = k.shape[2], Dv = v.shape[3];
  if (k.shape[0] != B || v.shape[0] != B || v.shape[1] != Hkv || v.shape[2] != T || k.shape[3] != D ||
      Hkv == 0 || Hq % Hkv != 0)
    return fail(op, "query " + formatDims(q.shape) + ", key " + formatDims(k.shape) + " and value " +
                        formatDims(v.shape) + " do not agree");
  int64_t group = Hq / Hkv;
  double scale = op.getScale().convertToDouble();
  bool causal = op.getMask() == AttentionMask::causal;
  std::optional<uint64_t> window = op.getWindow();
  std::optional<double> softcap;
  if (auto c = op.getSoftcap())
    softcap = c->convertToDouble();

  const HostTensor *padding = op.getKeyPaddingMask() ? &get(op.getKeyPaddingMask()) : nullptr;
  if (padding && padding->shape != Shape{B, T})
    return fail(op, "key_padding_mask " + formatDims(padding->shape) + " must be " + formatDims({B, T}));
  const HostTensor *bias = op.getBias() ? &get(op.getBias()) : nullptr;
  Shape scoreShape{B, Hq, S, T}, biasStrides;
  if (bias) {
    Shape joined;
    if (bias->shape.size() > 4 || !broadcastShapes({bias->shape, scoreShape}, joined) || joined != scoreShape)
      return fail(op, "bias " + formatDims(bias->shape) + " does not broadcast to " + formatDims(scoreShape));
    biasStrides = broadcastStrides(bias->shape, scoreShape);
  }

  out.shape = {B, Hq, S, Dv};
  out.data.assign(out.numElements(), 0.0);
  std::vector<double> scores(T);
  std::vector<char> visible(T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      int64_t hk = h / group;
      const double *K = k.data.data() + (b * Hkv + hk) * T * D;
      const double *V = v.data.data() + (b * Hkv + hk) * T * Dv;
      for (int64_t i = 0; i < S; ++i) {
        const double *Q = q.data.data() + ((b * Hq + h) * S + i) * D;
        int64_t position = T - S + i;
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < T; ++j) {
          bool see = true;
          if (causal)
            see = j <= position && (!window || position - j < (int64_t)*window);
          if (padding && padding->data[b * T + j] == 0)
            see = false;
          visible[j] = see;
          if (!see)
            continue;
          double acc = 0;
          for (int64_t d = 0; d < D; ++d)
            acc += Q[d] * K[j * D + d];
          double score = scale * acc;
          if (softcap)
            score = *softcap * std::tanh(score / *softcap);
          if (bias)
            score += bias->data[b * biasStrides[0] + h * biasStrides[1] + i * biasStrides[2] + j * biasStrides[3]];
          scores[j] = score;
          m = std::isnan(score) ? score : std::max(m, score);
        }
        double *O = out.data.data() + ((b * Hq + h) * S + i) * Dv;
        if (m == -std::numeric_limits<double>::infinity())
          continue; // no visible key: zeros
        double sum = 0;
        for (int64_t j = 0; j < T; ++j) {
          scores[j] = visible[j] ? std::exp(scores[j] - m) : 0.0;
          sum += scores[j];
        }
        for (int64_t j = 0; j < T; ++j) {
          if (scores[j] == 0.0)
            continue;
          double p = scores[j] / sum;
          for (int64_t d = 0; d < Dv; ++d)
            O[d] += p * V[j * Dv + d];
        }
      }
    }
  return true;
}

} // namespace

//===----------------------------------------------------------------------===//
// Interpreter
//===----------------------------------------------------------------------===//

std::map<std::string, std::string> interpreterOpEntries() { return Evaluator::table().entries(); }

Interpreter::Interpreter(WeightLoader loader) : loader_(std::move(loader)) {}

bool Interpreter::run(func::FuncOp func, llvm::ArrayRef<HostTensor> args, std::vector<HostTensor> &results,
                      std::string &error, const std::map<std::string, int64_t> &symbols) {
  error.clear();
  results.clear();
  if (!func) {
    error = "no function to run";
    return false;
  }
  {
    // The evaluator relies on the verifiers' guarantees (operand counts, attribute ranges); an unverified
    // function is rejected with the first diagnostic instead of being trusted.
    std::string diagnostic;
    ScopedDiagnosticHandler handler(func->getContext(), [&](Diagnostic &diag) {
      if (diagnostic.empty() && diag.getSeverity() == DiagnosticSeverity::Error)
        diagnostic = describeLocation(diag.getLocation()) + ": " + diag.str();
      return success();
    });
    if (failed(mlir::verify(func))) {
      error = "@" + func.getSymName().str() + " does not verify: " + diagnostic;
      return false;
    }
  }
  Evaluator evaluator(loader_, weights_, error, quantizedActivationRows_);
  if (!evaluator.bindArguments(func, args) || !evaluator.bindSymbols(symbols) || !evaluator.evaluate(func, results)) {
    results.clear();
    return false;
  }
  return true;
}

} // namespace kiln::ir
