//===- KernelTestUtil.cpp - shared by the CPU and SPIR-V per-op kernel tests ===//
#include "KernelTestUtil.h"

#include "kiln/ir/SymShape.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace kiln::test {

// r (a causal LM's logits rows, bound by no argument) last: tests that push b, p, s by position stay valid.
const std::vector<std::string> kSymbols = {"b", "p", "s", "r"};

size_t elementSize(mlir::Type t) {
  if (t.isF32() || t.isInteger(32))
    return 4;
  if (t.isF16() || t.isBF16())
    return 2;
  if (t.isInteger(64))
    return 8;
  return 1; // i1
}

void storeElement(mlir::Type t, double v, uint8_t *p) {
  if (t.isF32()) {
    float f = (float)v;
    std::memcpy(p, &f, 4);
  } else if (t.isF16() || t.isBF16()) {
    llvm::APFloat a(v);
    bool loses;
    a.convert(t.isF16() ? llvm::APFloat::IEEEhalf() : llvm::APFloat::BFloat(), llvm::APFloat::rmNearestTiesToEven,
              &loses);
    uint16_t bits = (uint16_t)a.bitcastToAPInt().getZExtValue();
    std::memcpy(p, &bits, 2);
  } else if (t.isInteger(64)) {
    int64_t i = (int64_t)v;
    std::memcpy(p, &i, 8);
  } else if (t.isInteger(32)) {
    int32_t i = (int32_t)v;
    std::memcpy(p, &i, 4);
  } else {
    *p = v != 0;
  }
}

double loadElement(mlir::Type t, const uint8_t *p) {
  if (t.isF32()) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  if (t.isF16() || t.isBF16()) {
    uint16_t bits;
    std::memcpy(&bits, p, 2);
    llvm::APFloat a(t.isF16() ? llvm::APFloat::IEEEhalf() : llvm::APFloat::BFloat(), llvm::APInt(16, bits));
    bool loses;
    a.convert(llvm::APFloat::IEEEdouble(), llvm::APFloat::rmNearestTiesToEven, &loses);
    return a.convertToDouble();
  }
  if (t.isInteger(64)) {
    int64_t i;
    std::memcpy(&i, p, 8);
    return (double)i;
  }
  if (t.isInteger(32)) {
    int32_t i;
    std::memcpy(&i, p, 4);
    return (double)i;
  }
  return *p ? 1.0 : 0.0;
}

double roundTo(mlir::Type t, double v) {
  uint8_t tmp[8];
  storeElement(t, v, tmp);
  return loadElement(t, tmp);
}

Buffer toBuffer(const ir::HostTensor &t, mlir::Type elem) {
  Buffer b{std::vector<uint8_t>(std::max<size_t>(1, t.data.size() * elementSize(elem))), t.shape, elem};
  for (size_t i = 0; i < t.data.size(); ++i)
    storeElement(elem, t.data[i], b.bytes.data() + i * elementSize(elem));
  return b;
}

std::vector<double> fromBuffer(const Buffer &b, size_t n) {
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i)
    out[i] = loadElement(b.type, b.bytes.data() + i * elementSize(b.type));
  return out;
}

Buffer garbageBuffer(mlir::Type type, const Bindings &bindings) {
  Buffer out;
  out.type = mlir::cast<mlir::ShapedType>(type).getElementType();
  out.shape = evalShape(type, bindings);
  out.bytes.assign(std::max<size_t>(1, numElements(out.shape) * elementSize(out.type)), 0xAB);
  return out;
}

std::vector<int64_t> evalShape(mlir::Type type, const Bindings &bindings) {
  auto sym = ir::getSymShape(type);
  EXPECT_TRUE(succeeded(sym));
  auto dims = ir::evaluateShape(*sym, bindings);
  EXPECT_TRUE(succeeded(dims));
  return std::vector<int64_t>(dims->begin(), dims->end());
}

int64_t numElements(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

void makeInputs(mlir::func::FuncOp func, const Bindings &bindings, const std::map<unsigned, Filler> &fillers,
                std::mt19937 &rng, std::vector<ir::HostTensor> &args, llvm::DenseMap<mlir::Value, Buffer> &values) {
  for (unsigned i = 0; i < func.getNumArguments(); ++i) {
    mlir::Value arg = func.getArgument(i);
    mlir::Type elem = mlir::cast<mlir::ShapedType>(arg.getType()).getElementType();
    ir::HostTensor t;
    t.shape = evalShape(arg.getType(), bindings);
    t.isInteger = mlir::isa<mlir::IntegerType>(elem);
    auto it = fillers.find(i);
    if (it != fillers.end()) {
      t.data = it->second(t.shape, bindings, rng);
    } else {
      t.data.resize(numElements(t.shape));
      std::uniform_real_distribution<double> real(-1, 1);
      std::uniform_int_distribution<int> integer(0, 9), bit(0, 1);
      for (double &x : t.data)
        x = elem.isInteger(1) ? bit(rng) : t.isInteger ? integer(rng) : real(rng);
    }
    for (double &x : t.data)
      x = roundTo(elem, x);
    values[arg] = toBuffer(t, elem);
    args.push_back(std::move(t));
  }
}

Buffer constantBuffer(ir::ConstantOp c, const Bindings &bindings) {
  auto dense = mlir::cast<mlir::DenseElementsAttr>(c.getValue());
  mlir::Type elem = dense.getElementType();
  ir::HostTensor t;
  t.shape = evalShape(c.getType(), bindings);
  for (int64_t k = 0; k < numElements(t.shape); ++k) {
    if (mlir::isa<mlir::FloatType>(elem))
      t.data.push_back(dense.isSplat() ? dense.getSplatValue<llvm::APFloat>().convertToDouble()
                                        : dense.getValues<llvm::APFloat>()[k].convertToDouble());
    else
      t.data.push_back((double)(dense.isSplat() ? dense.getSplatValue<llvm::APInt>().getSExtValue()
                                                  : dense.getValues<llvm::APInt>()[k].getSExtValue()));
  }
  return toBuffer(t, elem);
}

bool runsNoKernel(mlir::Operation &op, const Bindings &bindings, llvm::DenseMap<mlir::Value, Buffer> &values) {
  if (auto c = mlir::dyn_cast<ir::ConstantOp>(op)) {
    values[c.getResult()] = constantBuffer(c, bindings);
    return true;
  }
  return mlir::isa<mlir::func::ReturnOp>(op);
}

std::vector<Buffer> resultBuffers(mlir::Operation &op, const Bindings &bindings) {
  std::vector<Buffer> outs;
  for (mlir::Value result : op.getResults())
    outs.push_back(garbageBuffer(result.getType(), bindings));
  return outs;
}

void compareWithInterpreter(mlir::func::FuncOp func, const std::vector<ir::HostTensor> &args,
                            llvm::DenseMap<mlir::Value, Buffer> &values, double tolerance,
                            const std::function<std::string(mlir::Operation *)> &describe,
                            std::map<std::string, double> &worst, const Bindings &symbols) {
  ir::Interpreter interpreter(nullptr);
  std::vector<ir::HostTensor> expected;
  std::string error;
  ASSERT_TRUE(interpreter.run(func, args, expected, error, symbols)) << error;
  auto ret = mlir::cast<mlir::func::ReturnOp>(func.getBody().front().getTerminator());
  ASSERT_EQ(expected.size(), ret.getNumOperands());
  for (unsigned r = 0; r < ret.getNumOperands(); ++r) {
    mlir::Operation *def = ret.getOperand(r).getDefiningOp();
    std::string what = "result " + std::to_string(r) + " (" + describe(def) + ")";
    const Buffer &got = values[ret.getOperand(r)];
    ASSERT_EQ(got.shape, expected[r].shape) << what;
    std::vector<double> actual = fromBuffer(got, expected[r].data.size());
    bool exact = mlir::isa<mlir::IntegerType>(got.type);
    double maxRef = 0, maxErr = 0;
    int reported = 0;
    for (size_t k = 0; k < actual.size(); ++k) {
      double e = expected[r].data[k], a = actual[k];
      if (std::isnan(e) || std::isnan(a)) {
        EXPECT_EQ(std::isnan(e), std::isnan(a)) << what << " element " << k << ": " << a << " vs " << e;
        continue;
      }
      if (std::isinf(e) || std::isinf(a)) {
        EXPECT_EQ(a, e) << what << " element " << k;
        continue;
      }
      // Kernels compute in f32; an f16 / bf16 result is compared after rounding the reference too.
      e = roundTo(got.type, e);
      if (exact && a != e && reported++ < 5) // integers and booleans exactly (the first few mismatches)
        ADD_FAILURE() << what << " element " << k << ": " << a << " vs " << e;
      maxRef = std::max(maxRef, std::fabs(e));
      maxErr = std::max(maxErr, std::fabs(a - e));
    }
    double rel = maxRef > 0 ? maxErr / maxRef : maxErr;
    double tol = got.type.isF16() ? 1e-3 : got.type.isBF16() ? 8e-3 : tolerance;
    EXPECT_LE(rel, tol) << what << ": max |out - ref| / max |ref| = " << rel;
    std::string key = def->getName().getStringRef().str() + " -> " + printedType(got.type);
    worst[key] = std::max(worst[key], rel);
  }
}

std::string printedType(mlir::Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << t;
  return s;
}

std::string describeBindings(const Bindings &bindings) {
  std::string s;
  for (auto &[k, v] : bindings)
    s += k + "=" + std::to_string(v) + " ";
  return s;
}

void printWorst(const std::map<std::string, double> &worst) {
  for (auto &[key, rel] : worst)
    std::printf("[ error    ] %-40s max rel error %.3g\n", key.c_str(), rel);
}

/// The same values at every binding (a frequency table).
Filler constant(std::vector<double> values) {
  return [values](const std::vector<int64_t> &, const Bindings &, std::mt19937 &) { return values; };
}

/// RoPE's inv_freq: 1 / base^(2i / dim) for i < half.
std::vector<double> invFreq(int64_t half, int64_t dim, double base) {
  std::vector<double> f(half);
  for (int64_t i = 0; i < half; ++i)
    f[i] = 1.0 / std::pow(base, 2.0 * i / dim);
  return f;
}

/// Positions [b, s]: token i of a chunk sits at p + i, batch row r `rowOffset` further on.
Filler positions(int64_t rowOffset) {
  return [rowOffset](const std::vector<int64_t> &shape, const Bindings &b, std::mt19937 &) {
    std::vector<double> v(numElements(shape));
    for (int64_t r = 0; r < shape[0]; ++r)
      for (int64_t i = 0; i < shape[1]; ++i)
        v[r * shape[1] + i] = (double)(b.at("p") + i + rowOffset * r);
    return v;
  };
}

KernelTest::KernelTest() { context.loadDialect<ir::KilnDialect, mlir::func::FuncDialect>(); }

bool KernelTest::parse(const std::string &source) {
  module = mlir::parseSourceString<mlir::ModuleOp>(source, &context, "test.mlir");
  if (!module) {
    ADD_FAILURE() << "cannot parse:\n" << source;
    return false;
  }
  func = *module->getOps<mlir::func::FuncOp>().begin();
  return true;
}

void KernelTest::TearDown() { printWorst(worst); }

} // namespace kiln::test
