//===- CpuCodegenTest.cpp - every kiln op: generated CPU kernel vs. the interpreter ===//
//
// The per-op backend test (like llama.cpp's test-backend-ops), over the shared kernel cases
// (tests/unit/common/KernelCases.h) and a few CPU-only ones. Each case is one step function holding many ops
// with symbolic dims; one generateCpuKernels call compiles all of them into one shared object, which the
// test dlopens and runs as a tiny runtime would (a buffer per value, each kernel called with its operands
// and result per kernel_abi.h) for several symbol bindings (s = 1, 3, 7, 13; p = 0 and p > 0).
// Every returned value is compared with kiln::ir::Interpreter on the same inputs: floats by
// max |out - ref| / max |ref| (<= 1e-5 for f32), integers and booleans exactly.
//
//===----------------------------------------------------------------------===//
#include "KernelCases.h"
#include "KernelTestUtil.h"

#include "kiln/codegen/CpuCodegen.h"
#include "kiln/kernel_abi.h"
#include "kiln/ir/Interpreter.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/SymShape.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/Support/FileSystem.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <dlfcn.h>
#include <fstream>
#include <functional>
#include <random>

using namespace kiln;
using kiln::ir::HostTensor;

namespace {

// Bindings, kSymbols, Buffer, Filler, element storage, inputs, the interpreter comparison.
using namespace kiln::test;

class CpuCodegenTest : public KernelTest {
protected:
  ~CpuCodegenTest() override {
    if (handle)
      dlclose(handle);
    if (!soPath.empty())
      llvm::sys::fs::remove(soPath);
  }

  /// A kiln.convert of a 16-bit function argument (a weight) to f32 that compile(source, true) folds into its
  /// readers, as the plan's foldCpuWeightConverts does: no dispatch, its readers get the argument's bytes.
  static bool foldableConvert(mlir::Operation &op) {
    auto c = mlir::dyn_cast<ir::ConvertOp>(op);
    if (!c || !mlir::isa<mlir::BlockArgument>(c->getOperand(0)))
      return false;
    mlir::Type from = mlir::getElementTypeOrSelf(c->getOperand(0).getType());
    return (from.isF16() || from.isBF16()) && mlir::getElementTypeOrSelf(c->getResult(0).getType()).isF32();
  }

  /// Parses `source`, generates the kernels of every dispatch op of its function and dlopens them.
  /// foldWeightConverts: foldableConvert ops get no kernel; their readers read the 16-bit argument in place.
  void compile(const std::string &source, bool foldWeightConverts = false) {
    ASSERT_TRUE(parse(source));
    dispatch.clear();
    std::vector<codegen::KernelLayout> layouts;
    for (mlir::Operation &op : func.getBody().front()) {
      if (mlir::isa<ir::WeightOp, ir::ConstantOp, mlir::func::ReturnOp>(op) ||
          (foldWeightConverts && foldableConvert(op)))
        continue;
      dispatch.push_back(&op);
      codegen::KernelLayout layout;
      for (mlir::Value v : op.getOperands()) {
        mlir::Operation *def = v.getDefiningOp();
        layout.elementType.push_back(foldWeightConverts && def && foldableConvert(*def)
                                         ? mlir::getElementTypeOrSelf(def->getOperand(0).getType())
                                         : mlir::Type());
      }
      layouts.push_back(layout);
    }
    folded = foldWeightConverts;
    auto start = std::chrono::steady_clock::now();
    StatusOr<codegen::CpuCode> code = codegen::generateCpuKernels(func, dispatch, kSymbols, options, layouts);
    compileSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(code.ok()) << code.status().message();
    ASSERT_EQ(code->kernels.size(), dispatch.size());
    kernels = code->kernels;
    llvm::SmallString<128> path;
    ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("kiln-test-kernels", "so", path));
    soPath = path.str().str();
    {
      std::ofstream os(soPath, std::ios::binary);
      os.write((const char *)code->sharedObject.data(), code->sharedObject.size());
    }
    handle = dlopen(soPath.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle, nullptr) << dlerror();
    std::printf("[ compile  ] %zu ops, %s: %.2f s\n", dispatch.size(), func.getSymName().str().c_str(),
                compileSeconds);
  }

  /// Runs the compiled kernels and the interpreter for `bindings` and compares every result.
  void check(const Bindings &bindings, std::map<unsigned, Filler> fillers = {}, double tolerance = 1e-5) {
    SCOPED_TRACE(describeBindings(bindings));
    // Inputs, rounded to their element types.
    std::vector<HostTensor> args;
    llvm::DenseMap<mlir::Value, Buffer> values;
    makeInputs(func, bindings, fillers, rng, args, values);

    // The kernels, in order, as the runtime would call them.
    std::vector<int64_t> symbols;
    for (const std::string &name : kSymbols)
      symbols.push_back(bindings.count(name) ? bindings.at(name) : 1);
    for (mlir::Operation &op : func.getBody().front()) {
      if (runsNoKernel(op, bindings, values))
        continue;
      if (folded && foldableConvert(op)) { // its readers take the 16-bit bytes
        values[op.getResult(0)] = values[op.getOperand(0)];
        continue;
      }
      size_t index = std::find(dispatch.begin(), dispatch.end(), &op) - dispatch.begin();
      ASSERT_LT(index, dispatch.size());
      auto fn = (kiln_kernel_fn)dlsym(handle, kernels[index].symbol.c_str());
      ASSERT_NE(fn, nullptr) << kernels[index].symbol;
      // Operands, then every result (add_rms_norm / add_layer_norm have two).
      std::vector<Buffer> outs = resultBuffers(op, bindings);
      std::vector<void *> buffers;
      for (mlir::Value v : op.getOperands())
        buffers.push_back(values[v].bytes.data());
      for (Buffer &out : outs)
        buffers.push_back(out.bytes.data());
      fn(buffers.data(), symbols.data(), 0, INT64_MAX);
      checkSplit(index, fn, buffers, op.getNumOperands(), outs, bindings);
      for (auto [i, result] : llvm::enumerate(op.getResults()))
        values[result] = std::move(outs[i]);
    }

    // The oracle.
    compareWithInterpreter(
        func, args, values, tolerance,
        [](mlir::Operation *def) { return def->getName().getStringRef().str(); }, worst,
        {{"r", bindings.count("r") ? bindings.at("r") : 1}});
  }

  /// The kernel's range split in three, the parts run last to first, must write the same bytes as one call
  /// (what the runtime's threads rely on, kernel_abi.h).
  void checkSplit(size_t index, kiln_kernel_fn fn, std::vector<void *> buffers, unsigned numOperands,
                  const std::vector<Buffer> &whole, const Bindings &bindings) {
    auto rangeFn = (kiln_kernel_range_fn)dlsym(handle, (kernels[index].symbol + "_range").c_str());
    ASSERT_NE(rangeFn, nullptr) << kernels[index].symbol;
    std::vector<int64_t> symbols;
    for (const std::string &name : kSymbols)
      symbols.push_back(bindings.count(name) ? bindings.at(name) : 1);
    kiln_kernel_range range{-1, -1, -1};
    rangeFn(symbols.data(), &range);
    ASSERT_GE(range.extent, 0);
    ASSERT_GE(range.grain, 1);
    if ((range.flags & KILN_KERNEL_CALLS_BLAS) || range.extent < 2)
      return;
    std::vector<Buffer> outs;
    for (size_t i = 0; i < whole.size(); ++i) {
      outs.push_back(whole[i]);
      std::fill(outs.back().bytes.begin(), outs.back().bytes.end(), uint8_t(0xAB));
      buffers[numOperands + i] = outs.back().bytes.data();
    }
    for (int64_t part = 2; part >= 0; --part)
      fn(buffers.data(), symbols.data(), range.extent * part / 3, range.extent * (part + 1) / 3);
    for (size_t i = 0; i < whole.size(); ++i)
      EXPECT_TRUE(outs[i].bytes == whole[i].bytes) << kernels[index].signature << ": result " << i
                                                   << " differs when its range is split in three";
    ++splitChecks;
  }

  void TearDown() override {
    KernelTest::TearDown();
    std::printf("[ split    ] %d kernel runs split in three, same bytes\n", splitChecks);
  }
  int splitChecks = 0;

  std::vector<mlir::Operation *> dispatch;
  std::vector<codegen::CpuKernelInfo> kernels;
  std::string soPath;
  void *handle = nullptr;
  double compileSeconds = 0;
  bool folded = false;
  codegen::CpuCodegenOptions options;
};

//===----------------------------------------------------------------------===//
// The shared kernel cases (tests/unit/common/KernelCases.h), the same on every backend
//===----------------------------------------------------------------------===//

class CpuKernelCase : public CpuCodegenTest, public ::testing::WithParamInterface<KernelCase> {};

TEST_P(CpuKernelCase, MatchesInterpreter) {
  const KernelCase &c = GetParam();
  compile(c.source);
  for (const Bindings &b : c.shapes)
    check(b, c.fillers, c.tolerance);
}

INSTANTIATE_TEST_SUITE_P(Shared, CpuKernelCase, ::testing::ValuesIn(kernelCases()), KernelCaseName());

// f16 / bf16 weights read in place (their converts folded, codegen::KernelLayout::elementType), against the
// interpreter converting them first: matmuls with N not a multiple of the GEMV's 4 rows or 16 columns (67, 301),
// K = 1032 (a multiple of 8, not 16: the scalar tail) and 40, transposed or not, M = b * s from 1 to 39 (the
// GEMV up to 8 rows, the widened tiles + sgemm above); a gather from a 16-bit table; a norm's 16-bit weight;
// an add of a 16-bit bias; a slice of a 16-bit weight. Only f32 arithmetic differs in order: f32 round-off.
TEST_F(CpuCodegenTest, HalfWeightsReadInPlace) {
  std::string src = R"(
func.func @half(%x: !A, %w: tensor<67x1032xf16>, %y: !C, %v: tensor<301x40xbf16>, %u: tensor<1032x67xbf16>,
                %t: tensor<10x40xf16>, %ids: tensor<?x?xi64, #kiln.dims<[b, s]>>, %g: tensor<40xbf16>,
                %c: tensor<40x67xf16>) -> (!N, !P, !N, !C, !C, !C, !C, !N) {
  %wf = kiln.convert %w : tensor<67x1032xf16> -> tensor<67x1032xf32>
  %vf = kiln.convert %v : tensor<301x40xbf16> -> tensor<301x40xf32>
  %uf = kiln.convert %u : tensor<1032x67xbf16> -> tensor<1032x67xf32>
  %tf = kiln.convert %t : tensor<10x40xf16> -> tensor<10x40xf32>
  %gf = kiln.convert %g : tensor<40xbf16> -> tensor<40xf32>
  %cf = kiln.convert %c : tensor<40x67xf16> -> tensor<40x67xf32>
  %0 = kiln.matmul %x, %wf {transpose_b = true} : (!A, tensor<67x1032xf32>) -> !N
  %1 = kiln.matmul %y, %vf {transpose_b = true} : (!C, tensor<301x40xf32>) -> !P
  %2 = kiln.matmul %x, %uf {transpose_b = false} : (!A, tensor<1032x67xf32>) -> !N
  %3 = kiln.gather %tf, %ids : (tensor<10x40xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> !C
  %4 = kiln.rms_norm %y, %gf {eps = 1.0e-5 : f64, unit_offset = false} : (!C, tensor<40xf32>) -> !C
  %5 = kiln.add %y, %gf : (!C, tensor<40xf32>) -> !C
  %s = kiln.slice %tf {axis = 0 : i64, start = 3 : i64, end = 4 : i64} : tensor<10x40xf32> -> tensor<1x40xf32>
  %6 = kiln.mul %y, %s : (!C, tensor<1x40xf32>) -> !C
  %7 = kiln.matmul %y, %cf {transpose_b = false} : (!C, tensor<40x67xf32>) -> !N
  return %0, %1, %2, %3, %4, %5, %6, %7 : !N, !P, !N, !C, !C, !C, !C, !N
})";
  src = replaceAll(replaceAll(replaceAll(replaceAll(src, "!A", "tensor<?x?x1032xf32, #kiln.dims<[b, s]>>"), "!C",
                                         "tensor<?x?x40xf32, #kiln.dims<[b, s]>>"),
                              "!N", "tensor<?x?x67xf32, #kiln.dims<[b, s]>>"),
                   "!P", "tensor<?x?x301xf32, #kiln.dims<[b, s]>>");
  compile(src, /*foldWeightConverts=*/true);
  ASSERT_EQ(dispatch.size(), 9u) << "the six converts are folded";
  EXPECT_NE(kernels[0].signature.find("read as f16"), std::string::npos) << kernels[0].signature;
  Filler ids = [](const std::vector<int64_t> &shape, const Bindings &, std::mt19937 &rng) {
    std::vector<double> v(size_t(numElements(shape)));
    for (double &x : v)
      x = double(rng() % 10);
    return v;
  };
  for (int64_t s : {1, 2, 3, 5, 8, 9, 13})
    check({{"b", s == 13 ? 3 : 1}, {"s", s}, {"p", 0}}, {{6, ids}}, 1e-5);
}

// kernel_abi.h's range: a norm splits over its rows (grain from the row length), an f32 matmul calls
// OpenBLAS (KILN_KERNEL_CALLS_BLAS: the codegen's flag value agrees with the runtime's header) and has no
// range of its own, an f16 matmul splits over its output elements.
TEST_F(CpuCodegenTest, KernelRanges) {
  compile(R"(
func.func @ranges(%x: tensor<?x?x64xf32, #kiln.dims<[b, s]>>, %w: tensor<64xf32>, %m: tensor<32x64xf32>,
                  %xh: tensor<?x?x64xf16, #kiln.dims<[b, s]>>, %h: tensor<32x64xf16>) -> (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<?x?x32xf32, #kiln.dims<[b, s]>>, tensor<?x?x32xf16, #kiln.dims<[b, s]>>) {
  %0 = kiln.rms_norm %x, %w {eps = 1.0e-6 : f64, unit_offset = false} : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<64xf32>) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
  %1 = kiln.matmul %x, %m {transpose_b = true} : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<32x64xf32>) -> tensor<?x?x32xf32, #kiln.dims<[b, s]>>
  %2 = kiln.matmul %xh, %h {transpose_b = true} : (tensor<?x?x64xf16, #kiln.dims<[b, s]>>, tensor<32x64xf16>) -> tensor<?x?x32xf16, #kiln.dims<[b, s]>>
  return %0, %1, %2 : tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<?x?x32xf32, #kiln.dims<[b, s]>>, tensor<?x?x32xf16, #kiln.dims<[b, s]>>
})");
  auto rangeOf = [&](size_t i, std::vector<int64_t> symbols) {
    auto fn = (kiln_kernel_range_fn)dlsym(handle, (kernels[i].symbol + "_range").c_str());
    kiln_kernel_range r{-1, -1, -1};
    if (fn)
      fn(symbols.data(), &r);
    return r;
  };
  kiln_kernel_range norm = rangeOf(0, {2, 0, 5}); // b, p, s
  EXPECT_EQ(norm.extent, 10);
  EXPECT_EQ(norm.grain, 16384 / (64 * 3));
  EXPECT_EQ(norm.flags, 0);
  kiln_kernel_range blas = rangeOf(1, {2, 0, 5});
  EXPECT_EQ(blas.extent, 1);
  EXPECT_EQ(blas.flags, KILN_KERNEL_CALLS_BLAS);
  kiln_kernel_range half = rangeOf(2, {1, 0, 3});
  EXPECT_EQ(half.extent, 3 * 32);
  EXPECT_EQ(half.flags, 0);
}

// Out-of-range indices are a contract violation, but the gather kernel clamps instead of reading outside.
TEST_F(CpuCodegenTest, GatherClampsOutOfRangeIndices) {
  compile(R"(
func.func @gather(%t: tensor<10x4xf32>, %ids: tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x4xf32, #kiln.dims<[b, s]>> {
  %0 = kiln.gather %t, %ids : (tensor<10x4xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x4xf32, #kiln.dims<[b, s]>>
  return %0 : tensor<?x?x4xf32, #kiln.dims<[b, s]>>
})");
  std::vector<float> table(40);
  for (int k = 0; k < 40; ++k)
    table[k] = (float)k;
  std::vector<int64_t> ids = {99, -5, 3};
  std::vector<float> out(12, -1);
  void *buffers[] = {table.data(), ids.data(), out.data()};
  int64_t symbols[] = {1, 0, 3}; // b, p, s
  auto fn = (kiln_kernel_fn)dlsym(handle, kernels[0].symbol.c_str());
  ASSERT_NE(fn, nullptr);
  fn(buffers, symbols, 0, INT64_MAX);
  for (int k = 0; k < 4; ++k) {
    EXPECT_EQ(out[k], table[36 + k]);
    EXPECT_EQ(out[4 + k], table[k]);
    EXPECT_EQ(out[8 + k], table[12 + k]);
  }
}

//===----------------------------------------------------------------------===//
// Options: a named CPU, the dump directory, identical ops sharing a kernel, errors
//===----------------------------------------------------------------------===//

TEST_F(CpuCodegenTest, NamedCpuDumpsAndSharedKernels) {
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("kiln-cpu-dump", dir));
  options.cpu = "x86-64-v3";
  options.dumpDir = dir.str().str();
  std::string src = R"(
func.func @shared(%a: !X, %c: !B, %i: !I) -> (!X, !X, !I) {
  %0 = kiln.add %a, %c : (!X, !B) -> !X
  %1 = kiln.add %0, %c : (!X, !B) -> !X
  %2 = kiln.mul %1, %a : (!X, !X) -> !X
  %z = kiln.sub %i, %i : (!I, !I) -> !I
  %3 = kiln.div %i, %z : (!I, !I) -> !I
  return %1, %2, %3 : !X, !X, !I
})";
  compile(expand(src));
  EXPECT_EQ(kernels[0].symbol, kernels[1].symbol);
  EXPECT_NE(kernels[0].symbol, kernels[2].symbol);
  EXPECT_EQ(kernels[2].op, "kiln.mul");
  for (const char *name : {"cpu-00-kernels.mlir", "cpu-01-cf.mlir", "cpu-02-llvm.mlir", "kernels.ll", "kernels.o"})
    EXPECT_TRUE(llvm::sys::fs::exists(dir + "/" + name)) << name;
  llvm::sys::fs::remove_directories(dir);
  // Integer division by zero is an error in the interpreter; the kernel must not trap (it gives 0).
  int64_t in[8] = {7, -3, 1, 2, 3, 4, 5, INT64_MIN}, zeros[8] = {}, result[8];
  void *buffers[] = {in, zeros, result};
  int64_t symbols[] = {1, 0, 1}; // b, p, s: one row of 8
  auto fn = (kiln_kernel_fn)dlsym(handle, kernels[4].symbol.c_str());
  ASSERT_NE(fn, nullptr);
  fn(buffers, symbols, 0, INT64_MAX);
  for (int64_t r : result)
    EXPECT_EQ(r, 0);
}

TEST_F(CpuCodegenTest, Errors) {
  module = mlir::parseSourceString<mlir::ModuleOp>(expand(R"(
func.func @f(%a: !X, %c: !B) -> !X {
  %0 = kiln.add %a, %c : (!X, !B) -> !X
  return %0 : !X
})"), &context, "test.mlir");
  ASSERT_TRUE(module);
  func = *module->getOps<mlir::func::FuncOp>().begin();
  std::vector<mlir::Operation *> ops = {&func.getBody().front().front()};
  codegen::CpuCodegenOptions bad;
  bad.cpu = "no-such-cpu";
  StatusOr<codegen::CpuCode> code = codegen::generateCpuKernels(func, ops, kSymbols, bad);
  ASSERT_FALSE(code.ok());
  EXPECT_NE(code.status().message().find("no-such-cpu"), std::string::npos) << code.status().message();
  // A symbol the step function does not bind names the op.
  code = codegen::generateCpuKernels(func, ops, {"p", "s"}, {});
  ASSERT_FALSE(code.ok());
  EXPECT_NE(code.status().message().find("'b'"), std::string::npos) << code.status().message();
  EXPECT_NE(code.status().message().find("kiln.add"), std::string::npos) << code.status().message();
}

} // namespace

// KV cache in place (codegen::KernelLayout): the kernels that take a strided cache view, run on one
// storage buffer per cache [b, 2, C, 8] as the runtime does (views pointed at their first row), against the
// interpreter on the value-semantic graph. Keys: kiln.rope writes the s new rows straight into the cache at
// row p (its concat is never called); values: a transpose into a temporary, then the in-place append
// (concat copying only the new rows). Attention (causal and a window of 3) reads both with the capacity
// stride. Rows past p + s hold NaN, so a kernel reading past the view's rows fails the comparison.
TEST_F(CpuCodegenTest, KvCacheViews) {
  const int64_t C = 16;
  const std::string kv = "tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>>", nw = "tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>",
                    past = "tensor<?x2x?x8xf32, #kiln.dims<[b, p]>>", q = "tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>";
  std::string src = R"(
func.func @kv(%q: )" + q + R"(, %kin: tensor<?x?x2x8xf32, #kiln.dims<[b, s]>>, %x: )" + nw + R"(,
              %pos: tensor<?x?xi64, #kiln.dims<[b, s]>>, %pk: )" + past + ", %pv: " + past + R"() -> ()" + q + ", " + q +
                    ", " + kv + ", " + kv + R"() {
  %t = kiln.transpose %kin {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x8xf32, #kiln.dims<[b, s]>> -> )" + nw + R"(
  %f = kiln.constant dense<[1.0, 0.3, 0.1, 0.03]> : tensor<4xf32> : tensor<4xf32>
  %r = kiln.rope %x, %pos, %f {interleaved = false} : ()" + nw + R"(, tensor<?x?xi64, #kiln.dims<[b, s]>>, tensor<4xf32>) -> )" + nw + R"(
  %ck = kiln.concat %pk, %r {axis = 2 : i64} : ()" + past + ", " + nw + ") -> " + kv + R"(
  %cv = kiln.concat %pv, %t {axis = 2 : i64} : ()" + past + ", " + nw + ") -> " + kv + R"(
  %a = kiln.attention %q, %ck, %cv {mask = #kiln.mask<causal>, scale = 3.500000e-01 : f64} : ()" + q + ", " + kv + ", " + kv + ") -> " + q + R"(
  %w = kiln.attention %q, %ck, %cv {mask = #kiln.mask<causal>, scale = 3.500000e-01 : f64, window = 3 : i64} : ()" + q + ", " + kv + ", " + kv + ") -> " + q + R"(
  return %a, %w, %ck, %cv : )" + q + ", " + q + ", " + kv + ", " + kv + R"(
})";
  module = mlir::parseSourceString<mlir::ModuleOp>(src, &context, "kv.mlir");
  ASSERT_TRUE(module) << src;
  func = *module->getOps<mlir::func::FuncOp>().begin();
  dispatch.clear();
  for (mlir::Operation &op : func.getBody().front())
    if (!mlir::isa<ir::ConstantOp, mlir::func::ReturnOp>(op))
      dispatch.push_back(&op);
  ASSERT_EQ(dispatch.size(), 6u); // transpose, rope, concat k, concat v, attention x 2
  // transpose -> a temporary; rope -> the key cache at row p; the two appends; both attentions.
  std::vector<codegen::KernelLayout> layouts = {{{0, 0}, false},        {{0, 0, 0, C}, false}, {{C, 0, C}, true},
                                                {{C, 0, C}, true},      {{0, C, C, 0}, false}, {{0, C, C, 0}, false}};
  ASSERT_EQ(layouts.size(), 6u);
  StatusOr<codegen::CpuCode> code = codegen::generateCpuKernels(func, dispatch, kSymbols, options, layouts);
  ASSERT_TRUE(code.ok()) << code.status().message();
  EXPECT_NE(code->kernels[1].signature.find("rows 16 apart"), std::string::npos) << code->kernels[1].signature;
  EXPECT_NE(code->kernels[0].symbol, code->kernels[1].symbol);
  llvm::SmallString<128> path;
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("kiln-test-kv", "so", path));
  soPath = path.str().str();
  {
    std::ofstream os(soPath, std::ios::binary);
    os.write((const char *)code->sharedObject.data(), code->sharedObject.size());
  }
  handle = dlopen(soPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  auto kernel = [&](size_t i) {
    auto fn = (kiln_kernel_fn)dlsym(handle, code->kernels[i].symbol.c_str());
    EXPECT_NE(fn, nullptr);
    return fn;
  };

  for (int64_t B : {1, 2})
    for (int64_t P : {0, 5})
      for (int64_t S : {1, 3, 7}) {
        SCOPED_TRACE("b=" + std::to_string(B) + " p=" + std::to_string(P) + " s=" + std::to_string(S));
        std::uniform_real_distribution<double> real(-1, 1);
        auto random = [&](std::vector<int64_t> shape) {
          HostTensor t;
          t.shape = shape;
          for (int64_t k = 0; k < numElements(shape); ++k)
            t.data.push_back((double)(float)real(rng));
          return t;
        };
        std::vector<HostTensor> args = {random({B, 4, S, 8}), random({B, S, 2, 8}), random({B, 2, S, 8}), {},
                                        random({B, 2, P, 8}), random({B, 2, P, 8})};
        args[3].shape = {B, S};
        args[3].isInteger = true;
        for (int64_t k = 0; k < B * S; ++k)
          args[3].data.push_back(double(P + k % S));
        // One storage per cache: rows [0, p) hold the past, everything else NaN.
        auto storage = [&](const HostTensor &pastT) {
          std::vector<float> st(size_t(B * 2 * C * 8), std::nanf(""));
          for (int64_t i = 0; i < B * 2; ++i)
            for (int64_t r = 0; r < P; ++r)
              for (int64_t c = 0; c < 8; ++c)
                st[size_t((i * C + r) * 8 + c)] = float(pastT.data[size_t((i * P + r) * 8 + c)]);
          return st;
        };
        std::vector<float> K = storage(args[4]), V = storage(args[5]);
        auto f32 = [](const HostTensor &t) { return std::vector<float>(t.data.begin(), t.data.end()); };
        std::vector<float> qv = f32(args[0]), kin = f32(args[1]), xv = f32(args[2]);
        std::vector<int64_t> posv(args[3].data.begin(), args[3].data.end());
        float freq[4] = {1.0f, 0.3f, 0.1f, 0.03f};
        std::vector<float> t(size_t(B * 2 * S * 8)), a(size_t(B * 4 * S * 8)), w(a.size());
        const int64_t symbols[3] = {B, P, S}; // kSymbols order: b, p, s
        float *kAtP = K.data() + P * 8;       // the appended rows' view starts at row p
        {
          void *bufs[] = {kin.data(), t.data()};
          kernel(0)(bufs, symbols, 0, INT64_MAX);
        }
        {
          void *bufs[] = {xv.data(), posv.data(), freq, kAtP};
          kernel(1)(bufs, symbols, 0, INT64_MAX);
        }
        {
          void *bufs[] = {V.data(), t.data(), V.data()}; // the append: only the new rows are copied
          kernel(3)(bufs, symbols, 0, INT64_MAX);
        }
        {
          void *bufs[] = {qv.data(), K.data(), V.data(), a.data()};
          kernel(4)(bufs, symbols, 0, INT64_MAX);
          void *wbufs[] = {qv.data(), K.data(), V.data(), w.data()};
          kernel(5)(wbufs, symbols, 0, INT64_MAX);
        }
        ir::Interpreter interpreter(nullptr);
        std::vector<HostTensor> expected;
        std::string error;
        ASSERT_TRUE(interpreter.run(func, args, expected, error)) << error;
        ASSERT_EQ(expected.size(), 4u);
        auto compare = [&](const char *what, const std::vector<double> &ref, auto got) {
          double maxRef = 0, maxErr = 0;
          for (size_t k = 0; k < ref.size(); ++k) {
            maxRef = std::max(maxRef, std::fabs(ref[k]));
            double e = std::fabs(double(got(k)) - ref[k]);
            maxErr = std::isnan(e) ? INFINITY : std::max(maxErr, e);
          }
          EXPECT_LE(maxErr / std::max(maxRef, 1e-30), 1e-5) << what;
        };
        compare("attention (causal)", expected[0].data, [&](size_t k) { return a[k]; });
        compare("attention (window 3)", expected[1].data, [&](size_t k) { return w[k]; });
        // The caches: rows [0, p + s) of every (batch, head), capacity rows apart.
        auto cacheAt = [&](const std::vector<float> &st) {
          return [&st, P, S](size_t k) {
            int64_t T = P + S, bh = int64_t(k) / (T * 8), r = int64_t(k) / 8 % T, c = int64_t(k) % 8;
            return st[size_t((bh * C + r) * 8 + c)];
          };
        };
        compare("key cache (rope in place)", expected[2].data, cacheAt(K));
        compare("value cache (append)", expected[3].data, cacheAt(V));
        // Rows past p + s untouched.
        for (int64_t i = 0; i < B * 2; ++i)
          for (int64_t r = P + S; r < C; ++r)
            EXPECT_TRUE(std::isnan(K[size_t((i * C + r) * 8)]) && std::isnan(V[size_t((i * C + r) * 8)]))
                << "row " << r << " written";
      }
}

// The attention kernel's row blocks (kiln.attention takes four query rows of one batch and KV head at once,
// GQA: of the group's heads together; the rows left, one at a time): row counts g * s that are and are not
// multiples of four (g = 1, 3; s = 1, 2, 5, 130), keys in whole and ragged blocks of 8 or 16 up to t = 1000,
// head dims 20 and 36 (not multiples of eight: the scalar dot and value tails), 32 (16-lane vectors on an
// AVX-512 target), a value width other than the key's, bidirectional with a padding mask, causal with a window,
// decode (s = 1 at p = 999), and f16 inputs (the scalar path, row by row). Compiled for the host and for
// x86-64-v3 (no AVX-512: 8 lanes everywhere).
TEST_F(CpuCodegenTest, AttentionRowBlocks) {
  std::string src = R"(
func.func @rows(%q: !Q, %k: !K, %v: !V, %pad: !PAD, %q2: !Q2, %k2: !K2, %v2: !K2, %q3: !Q3, %k3: !K3, %v3: !K3, %q4: !Q4, %k4: !K4, %v4: !K4) -> (!O, !Q2, !Q2, !Q3, !Q4, !Q4) {
  %0 = kiln.attention %q, %k, %v key_padding_mask(%pad) {scale = 0.2 : f64, mask = #kiln.mask<bidirectional>} : (!Q, !K, !V, !PAD) -> !O
  %1 = kiln.attention %q2, %k2, %v2 {scale = 0.17 : f64, mask = #kiln.mask<causal>, window = 37 : i64} : (!Q2, !K2, !K2) -> !Q2
  %2 = kiln.attention %q2, %k2, %v2 key_padding_mask(%pad) {scale = 0.17 : f64, mask = #kiln.mask<causal>} : (!Q2, !K2, !K2, !PAD) -> !Q2
  %3 = kiln.attention %q3, %k3, %v3 {scale = 0.25 : f64, mask = #kiln.mask<causal>} : (!Q3, !K3, !K3) -> !Q3
  %4 = kiln.attention %q4, %k4, %v4 key_padding_mask(%pad) {scale = 0.18 : f64, mask = #kiln.mask<bidirectional>} : (!Q4, !K4, !K4, !PAD) -> !Q4
  %5 = kiln.attention %q4, %k4, %v4 {scale = 0.18 : f64, mask = #kiln.mask<causal>, window = 21 : i64} : (!Q4, !K4, !K4) -> !Q4
  return %0, %1, %2, %3, %4, %5 : !O, !Q2, !Q2, !Q3, !Q4, !Q4
})";
  for (auto [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"!Q4", "tensor<?x6x?x32xf32, #kiln.dims<[b, s]>>"},
           {"!K4", "tensor<?x2x?x32xf32, #kiln.dims<[b, p + s]>>"},
           {"!Q2", "tensor<?x6x?x36xf32, #kiln.dims<[b, s]>>"},
           {"!K2", "tensor<?x2x?x36xf32, #kiln.dims<[b, p + s]>>"},
           {"!Q3", "tensor<?x4x?x16xf16, #kiln.dims<[b, s]>>"},
           {"!K3", "tensor<?x2x?x16xf16, #kiln.dims<[b, p + s]>>"},
           {"!Q", "tensor<?x3x?x20xf32, #kiln.dims<[b, s]>>"},
           {"!K", "tensor<?x3x?x20xf32, #kiln.dims<[b, p + s]>>"},
           {"!V", "tensor<?x3x?x12xf32, #kiln.dims<[b, p + s]>>"},
           {"!O", "tensor<?x3x?x12xf32, #kiln.dims<[b, s]>>"},
           {"!PAD", "tensor<?x?xi64, #kiln.dims<[b, p + s]>>"}})
    src = replaceAll(src, from, to);
  // Padding: batch row 1 hides its first 9 keys (a whole block and one more), the rest at random 1 in 4.
  Filler padding = [](const std::vector<int64_t> &shape, const Bindings &, std::mt19937 &rng) {
    std::vector<double> v(size_t(numElements(shape)));
    for (int64_t r = 0; r < shape[0]; ++r)
      for (int64_t j = 0; j < shape[1]; ++j)
        v[size_t(r * shape[1] + j)] = (r == 1 && j < 9) ? 0 : rng() % 4 != 0;
    return v;
  };
  for (const char *cpu : {"native", "x86-64-v3"}) {
    SCOPED_TRACE(cpu);
    options.cpu = cpu;
    compile(src);
    for (const Bindings &b : std::vector<Bindings>{{{"b", 2}, {"s", 1}, {"p", 999}},
                                                   {{"b", 2}, {"s", 2}, {"p", 13}},
                                                   {{"b", 1}, {"s", 5}, {"p", 0}},
                                                   {{"b", 2}, {"s", 130}, {"p", 870}}})
      check(b, {{3, padding}}, 2e-5);
  }
}
