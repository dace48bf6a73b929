//===- QuantKernelTest.cpp - q8_0 / q4_0 weight kernels vs. the interpreter --------===//
//
// The CPU kernels of a kiln.matmul against a block-quantized weight (codegen::KernelLayout::quant) and of a
// kiln.gather from a quantized table, on awkward sizes, against kiln::ir::Interpreter with the dequantized
// weight (which, like the kernels, quantizes the activation rows of the matmul per block): N = 67 (odd: the
// GEMV's last group has 3 rows, the GEMM's last panel goes row by row) and 72 (the GEMM's last panel of 16
// rows holds one whole group), K = 32 (one block), 96 (three) and 2048, rows M = b * s = 1 .. 9 (the int8
// GEMV up to 8) and 13, 17, 64, 300 (the int8 GEMM: row blocks of 64, tiles of 8 or 4 rows and the rows
// left), every thread split of the kernel's range giving the same bytes; for each CPU object the machine can
// run: native (here AVX512-VNNI: 512-bit vpdpbusd), alderlake (AVX-VNNI, 256-bit), x86-64-v3 (AVX2
// vpmaddubsw / vpmaddwd) and x86-64-v2 (plain vector code).
// A quantized weight whose last dim is not a multiple of 32 does not verify (the
// compiler keeps such matrices in f32 instead of padding them).
//
//===----------------------------------------------------------------------===//
#include "KernelCases.h"

#include "kiln/codegen/CpuCodegen.h"
#include "kiln/ir/Interpreter.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/kernel_abi.h"
#include "kiln/support/Quantize.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/FileSystem.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <dlfcn.h>
#include <fstream>
#include <random>

using namespace kiln;

namespace {

/// Whether this machine runs code for `cpu` (one of the test's targets).
bool hostRuns(const std::string &cpu) {
  if (cpu == "alderlake")
    return __builtin_cpu_supports("avxvnni") && __builtin_cpu_supports("avx2");
  if (cpu == "x86-64-v3")
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
  return true; // native, x86-64-v2 (SSE4.2: every x86-64 CI machine)
}

class QuantKernelTest : public ::testing::TestWithParam<std::tuple<std::string, int64_t, std::string>> {
protected:
  QuantKernelTest() { context.loadDialect<ir::KilnDialect, mlir::func::FuncDialect>(); }
  ~QuantKernelTest() override {
    if (handle)
      dlclose(handle);
    if (!soPath.empty())
      llvm::sys::fs::remove(soPath);
  }

  /// Kernels of the matmul and the gather, the weight's operand read as `format`.
  void compile(const std::string &source, QuantFormat format, const std::string &cpu) {
    module = mlir::parseSourceString<mlir::ModuleOp>(source, &context, "quant.mlir");
    ASSERT_TRUE(module);
    func = *module->getOps<mlir::func::FuncOp>().begin();
    std::vector<mlir::Operation *> ops;
    std::vector<codegen::KernelLayout> layouts;
    for (mlir::Operation &op : func.getBody().front())
      if (mlir::isa<ir::MatmulOp, ir::GatherOp>(op)) {
        ops.push_back(&op);
        codegen::KernelLayout layout;
        layout.quant.assign(op.getNumOperands() + 1, std::nullopt);
        layout.quant[mlir::isa<ir::MatmulOp>(op) ? 1 : 0] = format;
        layouts.push_back(layout);
      }
    codegen::CpuCodegenOptions options;
    options.cpu = cpu;
    StatusOr<codegen::CpuCode> code = codegen::generateCpuKernels(func, ops, test::kSymbols, options, layouts);
    ASSERT_TRUE(code.ok()) << code.status().message();
    ASSERT_NE(code->kernels[0].signature.find(quantFormatName(format)), std::string::npos);
    kernels = code->kernels;
    llvm::SmallString<128> path;
    ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("kiln-quant-kernels", "so", path));
    soPath = path.str().str();
    std::ofstream(soPath, std::ios::binary)
        .write((const char *)code->sharedObject.data(), std::streamsize(code->sharedObject.size()));
    handle = dlopen(soPath.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle, nullptr) << dlerror();
  }

  /// kernel `index` over its whole range in parts of `part` items (0: one call).
  void call(size_t index, std::vector<void *> buffers, const std::vector<int64_t> &symbols, int64_t part) {
    auto fn = (kiln_kernel_fn)dlsym(handle, kernels[index].symbol.c_str());
    auto range = (kiln_kernel_range_fn)dlsym(handle, (kernels[index].symbol + "_range").c_str());
    ASSERT_TRUE(fn && range);
    kiln_kernel_range r{};
    range(symbols.data(), &r);
    if (part <= 0) {
      fn(buffers.data(), symbols.data(), 0, INT64_MAX);
      return;
    }
    for (int64_t begin = 0; begin < r.extent; begin += part)
      fn(buffers.data(), symbols.data(), begin, begin + part);
  }

  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  mlir::func::FuncOp func;
  std::vector<codegen::CpuKernelInfo> kernels;
  std::string soPath;
  void *handle = nullptr;
};

double relErr(const std::vector<float> &got, const std::vector<double> &want) {
  double peak = 0, err = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    peak = std::max(peak, std::fabs(want[i]));
    err = std::max(err, std::fabs(double(got[i]) - want[i]));
  }
  return peak > 0 ? err / peak : err;
}

TEST_P(QuantKernelTest, MatchesInterpreter) {
  const auto [name, k, cpu] = GetParam();
  if (!hostRuns(cpu))
    GTEST_SKIP() << "this machine cannot run code for " << cpu;
  const QuantFormat format = *parseQuantFormat(name);
  for (const int64_t n : {67, 72}) {
    SCOPED_TRACE("N " + std::to_string(n));
    compile(test::quantMatmulGatherSource(name, n, k), format, cpu);
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    std::vector<float> w(size_t(n * k));
    for (float &v : w)
      v = uniform(rng);
    std::vector<uint8_t> packed(quantizedMatrixBytes(format, uint64_t(n), uint64_t(k)));
    quantizeMatrix(format, w.data(), uint64_t(n), uint64_t(k), packed.data());
    auto dequantized = std::make_shared<ir::HostTensor>();
    dequantized->shape = {n, k};
    std::vector<float> values(w.size());
    dequantizeMatrix(format, packed.data(), uint64_t(n), uint64_t(k), values.data());
    dequantized->data.assign(values.begin(), values.end());
    ir::Interpreter interpreter([&](llvm::StringRef, ir::HostTensor &out, std::string &) {
      out = *dequantized;
      return true;
    });
    for (int64_t rows : {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 17, 64, 300}) {
      SCOPED_TRACE("rows " + std::to_string(rows));
      const int64_t b = rows % 2 == 0 ? 2 : 1, s = rows / b;
      ir::HostTensor x{{b, s, k}, {}, false}, ids{{b, s}, {}, true};
      std::vector<float> xf(size_t(b * s * k));
      for (float &v : xf)
        v = uniform(rng) * (rng() % 4 == 0 ? 8.0f : 1.0f);
      x.data.assign(xf.begin(), xf.end());
      std::vector<int64_t> idv;
      for (int64_t i = 0; i < b * s; ++i)
        idv.push_back(int64_t(rng() % uint32_t(n)));
      ids.data.assign(idv.begin(), idv.end());
      std::vector<ir::HostTensor> want;
      std::string error;
      ASSERT_TRUE(interpreter.run(func, {x, ids}, want, error)) << error;
      // kSymbols order: b, p, s.
      const std::vector<int64_t> symbols = {b, 0, s};
      std::vector<float> y(size_t(b * s * n)), g(size_t(b * s * k));
      call(0, {xf.data(), packed.data(), y.data()}, symbols, 0);
      call(1, {packed.data(), idv.data(), g.data()}, symbols, 0);
      EXPECT_LE(relErr(y, want[0].data), 1e-5);
      EXPECT_EQ(relErr(g, want[1].data), 0.0) << "the gathered rows are the dequantized ones, exactly";
      for (int64_t part : {1, 3}) { // the GEMV's groups / the GEMM's items split over calls: the same bytes
        std::vector<float> split(y.size(), -1.0f);
        call(0, {xf.data(), packed.data(), split.data()}, symbols, part);
        EXPECT_EQ(std::memcmp(split.data(), y.data(), y.size() * 4), 0) << "parts of " << part;
      }
    }
    dlclose(handle); // the next N's kernels
    handle = nullptr;
    llvm::sys::fs::remove(soPath);
    soPath.clear();
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, QuantKernelTest,
                         ::testing::Combine(::testing::Values("q8_0", "q4_0"), ::testing::Values(32, 96, 2048),
                                            ::testing::Values("native", "alderlake", "x86-64-v3", "x86-64-v2")),
                         [](const auto &info) {
                           std::string cpu = std::get<2>(info.param);
                           std::replace(cpu.begin(), cpu.end(), '-', '_');
                           return std::get<0>(info.param) + "_K" + std::to_string(std::get<1>(info.param)) + "_" + cpu;
                         });

// A quantized weight must be an f32 matrix whose last dim is a multiple of 32 (no padding: the compiler keeps
// other matrices f32, its report says which and why).
TEST(QuantWeightOp, LastDimNotAMultipleOf32DoesNotVerify) {
  mlir::MLIRContext context;
  context.loadDialect<ir::KilnDialect, mlir::func::FuncDialect>();
  context.getDiagEngine().registerHandler([](mlir::Diagnostic &) { return mlir::success(); });
  for (const char *src : {"func.func @f() -> tensor<4x40xf32> {\n"
                          "  %w = kiln.weight \"w\" {quant = \"q4_0\"} : tensor<4x40xf32>\n"
                          "  return %w : tensor<4x40xf32>\n}\n",
                          "func.func @f() -> tensor<4x64xf16> {\n"
                          "  %w = kiln.weight \"w\" {quant = \"q8_0\"} : tensor<4x64xf16>\n"
                          "  return %w : tensor<4x64xf16>\n}\n",
                          "func.func @f() -> tensor<4x64xf32> {\n"
                          "  %w = kiln.weight \"w\" {quant = \"q5_1\"} : tensor<4x64xf32>\n"
                          "  return %w : tensor<4x64xf32>\n}\n"}) {
    mlir::OwningOpRef<mlir::ModuleOp> m = mlir::parseSourceString<mlir::ModuleOp>(src, &context, "bad.mlir");
    EXPECT_FALSE(m && mlir::succeeded(mlir::verify(*m))) << src;
  }
}

// llama.cpp's reference numerics (ggml-quants.c quantize_row_q8_0_ref / q4_0_ref) on hand-checked blocks.
TEST(Quantize, LlamaCppNumerics) {
  float x[32];
  for (int i = 0; i < 32; ++i)
    x[i] = float(i - 16) / 4.0f; // -4 .. 3.75: max |x| = 4 at i = 0 (signed -4)
  std::vector<uint8_t> q8(quantizedMatrixBytes(QuantFormat::Q8_0, 1, 32)), q4(quantizedMatrixBytes(QuantFormat::Q4_0, 1, 32));
  quantizeMatrix(QuantFormat::Q8_0, x, 1, 32, q8.data());
  quantizeMatrix(QuantFormat::Q4_0, x, 1, 32, q4.data());
  // q8_0: d = 4 / 127, q = round(x * 127 / 4): x = -4 -> -127 (stored + 128 = 1), x = 1 -> 32 (roundf(31.75)).
  EXPECT_EQ(q8[0], 1);
  EXPECT_EQ(q8[20], 128 + 32);
  // q4_0: d = -4 / -8 = 0.5, q = min(15, trunc(x / 0.5 + 8.5)): x = -4 -> 0, x = 3.75 -> min(15, 16) = 15,
  // x = 0.25 (i = 17) -> trunc(9) = 9 (the high nibble of byte 1).
  EXPECT_EQ(q4[0] & 15, 0);
  EXPECT_EQ(q4[15] >> 4, 15);
  EXPECT_EQ(q4[1] >> 4, 9);
  float back[32];
  dequantizeMatrix(QuantFormat::Q4_0, q4.data(), 1, 32, back);
  EXPECT_EQ(back[0], -4.0f);
  EXPECT_EQ(back[17], 0.5f);
  EXPECT_EQ(back[31], 3.5f);
}

// The layout interleaves groups of 8 rows block by block (the last group: the rows left); where a block sits
// changes nothing about its values: each row dequantizes as that row quantized alone.
TEST(Quantize, RowsInterleavedInGroupsOf8) {
  const uint64_t rows = 19, cols = 64, nb = cols / 32;
  EXPECT_EQ(quantBlockIndex(rows, cols, 0, 0), 0u);
  EXPECT_EQ(quantBlockIndex(rows, cols, 3, 1), 8u + 3u);       // group 0: block 1 of its 8 rows after block 0's
  EXPECT_EQ(quantBlockIndex(rows, cols, 17, 1), 16 * nb + 3 + 1); // the last group holds 3 rows
  std::vector<float> x(rows * cols);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = std::sin(float(i) * 0.37f) * float(1 + i % 7);
  for (QuantFormat f : {QuantFormat::Q8_0, QuantFormat::Q4_0}) {
    std::vector<uint8_t> all(quantizedMatrixBytes(f, rows, cols)), one(quantizedMatrixBytes(f, 1, cols));
    quantizeMatrix(f, x.data(), rows, cols, all.data());
    std::vector<float> back(x.size()), row(cols);
    dequantizeMatrix(f, all.data(), rows, cols, back.data());
    for (uint64_t r = 0; r < rows; ++r) {
      quantizeMatrix(f, x.data() + r * cols, 1, cols, one.data());
      dequantizeMatrix(f, one.data(), 1, cols, row.data());
      EXPECT_EQ(std::memcmp(row.data(), back.data() + r * cols, cols * 4), 0) << quantFormatName(f) << " row " << r;
    }
  }
}

} // namespace
