//===- QuantSpirvTest.cpp - Vulkan kernels reading q8_0 / q4_0 weights vs. the interpreter ===//
//
// kiln.matmul (transpose_b) against a block-quantized weight and kiln.gather from a quantized table
// (codegen/spirv QuantKernels.cpp, shaders/quant.glsl, gemv_quant.glsl) on the first Vulkan device (lavapipe
// in CI), against kiln::ir::Interpreter with the dequantized weight (which, like the decode GEMV, quantizes
// the activation rows of a matmul of at most 8 rows, batch dims folded in): N = 77 (not a multiple of the
// GEMV's rows per workgroup nor of the 64-wide tiles), K = 32, 96, 1024 and 5632, rows M = b x s = 1 .. 5, 8
// (the GEMV), 9 and 77 (the dequantizing tiles). The gathered rows are the dequantized ones exactly. Without a
// device the tests skip (generation and validation still run). N = 4100 takes the GEMV's four-row variant.
// kiln.matmul_group of quantized weights (Q/K/V-like segments of N = 77, 45, 19; gate / up with silu_mul) on
// the same paths, K = 32, 96 and 2048, rows 1 .. 4, 8 and 70; the small-rows variants (GEMV only) of both.
// The GEMV cases run with and without SpirvTarget::integerDotProduct (QuantGemvTest/Float, /IntegerDot: the block
// products as packed 4 x 8-bit dot products, which lavapipe has), and IntegerDotProductIsBitIdentical runs both
// kernels on the same inputs: the same bytes out. KILN_SPIRV_EXPORT=DIR: QuantExportGpuCases
// writes the same kernels compiled for 32-wide subgroups for kiln_spirv_replay on the GPU machine.
//
//===----------------------------------------------------------------------===//
#include "KernelCases.h"
#include "ReplayCase.h"
#include "VulkanHarness.h"

#include "kiln/codegen/SpirvCodegen.h"
#include "kiln/ir/Interpreter.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/support/Quantize.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

using namespace kiln;

namespace {

test::VulkanHarness *quantHarness() {
  static std::string why;
  static std::unique_ptr<test::VulkanHarness> h = test::VulkanHarness::create(why);
  return h.get();
}

/// x [b, s, K] against block-quantized weights "w0", ... [N_i, K] of `format` as one kiln.matmul_group.
std::string quantGroupSource(const std::string &format, const std::vector<int64_t> &ns, int64_t k, bool siluMul) {
  const std::string x = "tensor<?x?x" + std::to_string(k) + "xf32, #kiln.dims<[b, s]>>";
  std::string body, ws, wTypes, results, names;
  for (size_t i = 0; i < ns.size(); ++i) {
    const std::string id = std::to_string(i), w = "tensor<" + std::to_string(ns[i]) + "x" + std::to_string(k) + "xf32>";
    body += "  %w" + id + " = kiln.weight \"w" + id + "\" {quant = \"" + format + "\"} : " + w + "\n";
    ws += ", %w" + id;
    wTypes += ", " + w;
    if (siluMul && i > 0)
      continue;
    results += (i ? ", " : "") + std::string("tensor<?x?x") + std::to_string(ns[i]) + "xf32, #kiln.dims<[b, s]>>";
    names += (i ? ", %y" : "%y") + id;
  }
  body += "  " + names + " = kiln.matmul_group %x" + ws + " {silu_mul = " + (siluMul ? "true" : "false") + "} : (" +
          x + wTypes + ") -> (" + results + ")\n";
  return "func.func @group(%x: " + x + ") -> (" + results + ") {\n" + body + "  return " + names + " : " + results +
         "\n}\n";
}

/// Whether a SPIR-V module declares OpCapability DotProduct (6019: SPV_KHR_integer_dot_product).
bool declaresDotProduct(const std::vector<uint32_t> &spirv) {
  for (size_t at = 5; at + 1 < spirv.size() && (spirv[at] & 0xffffu) == 17u; at += spirv[at] >> 16)
    if (spirv[at + 1] == 6019u)
      return true;
  return false;
}

/// The kernel takes the integer dot product exactly when the target asks for it: "_idot" and the capability.
void expectIntegerDotProduct(const codegen::SpirvKernel &k, bool wanted) {
  EXPECT_EQ(k.name.find("_idot") != std::string::npos, wanted) << k.name;
  EXPECT_EQ(declaresDotProduct(k.spirv), wanted) << k.name;
}

std::vector<uint8_t> bytesOf(const void *p, size_t n) {
  const uint8_t *b = static_cast<const uint8_t *>(p);
  return std::vector<uint8_t>(b, b + n);
}

double relErr(const std::vector<uint8_t> &got, const std::vector<double> &want) {
  double peak = 0, err = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    float v;
    std::memcpy(&v, got.data() + 4 * i, 4);
    if (std::isnan(v))
      return INFINITY;
    peak = std::max(peak, std::fabs(want[i]));
    err = std::max(err, std::fabs(double(v) - want[i]));
  }
  return peak > 0 ? err / peak : err;
}

class QuantSpirvTest : public ::testing::Test {
protected:
  QuantSpirvTest() {
    context.loadDialect<ir::KilnDialect, mlir::func::FuncDialect>();
    target.subgroupSize = 8; // lavapipe's
  }

  /// The kernels of the matmul and the gather of quantMatmulGatherSource; a random weight, quantized (`packed`) and the
  /// interpreter's weight (dequantized).
  void setUp(const std::string &format, int64_t n, int64_t k) {
    module = mlir::parseSourceString<mlir::ModuleOp>(test::quantMatmulGatherSource(format, n, k), &context, "quant.mlir");
    ASSERT_TRUE(module);
    func = *module->getOps<mlir::func::FuncOp>().begin();
    ops.clear();
    kernels.clear();
    for (mlir::Operation &op : func.getBody().front())
      if (mlir::isa<ir::MatmulOp, ir::GatherOp>(op)) {
        EXPECT_EQ(codegen::spirvUnsupportedReason(&op, target), "");
        StatusOr<codegen::SpirvKernel> kernel = codegen::generateSpirvKernel(&op, test::kSymbols, target);
        ASSERT_TRUE(kernel.ok()) << kernel.status().message();
        ops.push_back(&op);
        kernels.push_back(std::move(*kernel));
      }
    ASSERT_EQ(kernels.size(), 2u);
    EXPECT_NE(kernels[0].name.find(format), std::string::npos) << kernels[0].name;
    expectIntegerDotProduct(kernels[0], target.integerDotProduct);
    expectIntegerDotProduct(kernels[1], false); // the gather dequantizes
    randomWeight(format, n, k, packed, dequantized);
  }

  /// A random [n, k] weight quantized to `format` (`bytes`) and its dequantized values.
  void randomWeight(const std::string &format, int64_t n, int64_t k, std::vector<uint8_t> &bytes, ir::HostTensor &values) {
    const QuantFormat f = *parseQuantFormat(format);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    std::vector<float> w(size_t(n * k));
    for (float &v : w)
      v = uniform(rng) * (rng() % 8 == 0 ? 4.0f : 1.0f);
    bytes.assign(quantizedMatrixBytes(f, uint64_t(n), uint64_t(k)), 0);
    quantizeMatrix(f, w.data(), uint64_t(n), uint64_t(k), bytes.data());
    std::vector<float> dequantizedValues(w.size());
    dequantizeMatrix(f, bytes.data(), uint64_t(n), uint64_t(k), dequantizedValues.data());
    values.shape = {n, k};
    values.data.assign(dequantizedValues.begin(), dequantizedValues.end());
  }

  /// `count` activations with a few large values, so blocks differ in scale.
  std::vector<float> randomActivations(size_t count) {
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    std::vector<float> xf(count);
    for (float &v : xf)
      v = uniform(rng) * (rng() % 4 == 0 ? 8.0f : 1.0f);
    return xf;
  }

  /// The kernel of quantGroupSource's matmul_group (its small-rows variant with `smallRows`) as kernels[0], and
  /// random weights of `format` (groupPacked, groupWeights: dequantized, for the interpreter).
  void setUpGroup(const std::string &format, const std::vector<int64_t> &ns, int64_t k, bool siluMul,
                  bool smallRows = false) {
    module = mlir::parseSourceString<mlir::ModuleOp>(quantGroupSource(format, ns, k, siluMul), &context, "group.mlir");
    ASSERT_TRUE(module);
    func = *module->getOps<mlir::func::FuncOp>().begin();
    mlir::Operation *group = nullptr;
    for (mlir::Operation &op : func.getBody().front())
      if (mlir::isa<ir::MatmulGroupOp>(op))
        group = &op;
    ASSERT_TRUE(group);
    groupOp = group;
    EXPECT_EQ(codegen::spirvUnsupportedReason(group, target), "");
    target.smallRowsVariant = smallRows;
    StatusOr<codegen::SpirvKernel> kernel = codegen::generateSpirvKernel(group, test::kSymbols, target);
    target.smallRowsVariant = false;
    ASSERT_TRUE(kernel.ok()) << kernel.status().message();
    expectIntegerDotProduct(*kernel, target.integerDotProduct);
    kernels = {std::move(*kernel)};
    groupPacked.assign(ns.size(), {});
    groupWeights.assign(ns.size(), {});
    for (size_t i = 0; i < ns.size(); ++i)
      randomWeight(format, ns[i], k, groupPacked[i], groupWeights[i]);
  }

  /// Inputs of the group for b x s rows, the interpreter's results (`want`, one per result) and the kernel's
  /// buffers (x, the weights, then garbage results).
  void makeGroupCase(int64_t b, int64_t s, const std::vector<int64_t> &ns, int64_t k, bool siluMul,
                     std::vector<ir::HostTensor> &want, std::vector<std::vector<uint8_t>> &buffers) {
    std::vector<float> xf = randomActivations(size_t(b * s * k));
    ir::HostTensor x{{b, s, k}, {}, false};
    x.data.assign(xf.begin(), xf.end());
    ir::Interpreter interpreter([&](llvm::StringRef name, ir::HostTensor &out, std::string &) {
      out = groupWeights[size_t(std::stoi(name.drop_front().str()))]; // "w<i>"
      return true;
    });
    interpreter.setQuantizedActivationRows(kQuantGemvMaxRows); // Vulkan's prefill tiles take f32 activations
    std::string error;
    ASSERT_TRUE(interpreter.run(func, {x}, want, error)) << error;
    buffers = {bytesOf(xf.data(), xf.size() * 4)};
    buffers.insert(buffers.end(), groupPacked.begin(), groupPacked.end());
    for (size_t r = 0; r < (siluMul ? 1 : ns.size()); ++r)
      buffers.push_back(std::vector<uint8_t>(size_t(b * s * ns[r]) * 4, 0xAB));
  }

  /// Runs the group kernel (kernels[0]) for each (b, s) of `rows` and compares every result with the
  /// interpreter's: within 1e-5 on the GEMV (rows <= 8), else `tileTolerance`.
  void checkGroupRows(const std::vector<std::pair<int64_t, int64_t>> &rows, const std::vector<int64_t> &ns, int64_t k,
                      bool siluMul, double tileTolerance) {
    test::VulkanHarness *h = quantHarness();
    if (!h)
      GTEST_SKIP() << "no Vulkan device (set VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json)";
    for (auto [b, s] : rows) {
      SCOPED_TRACE("b=" + std::to_string(b) + " s=" + std::to_string(s));
      std::vector<ir::HostTensor> want;
      std::vector<std::vector<uint8_t>> buffers;
      makeGroupCase(b, s, ns, k, siluMul, want, buffers);
      std::vector<std::vector<uint8_t> *> bound;
      for (std::vector<uint8_t> &buf : buffers)
        bound.push_back(&buf);
      uint32_t groups[3];
      groupsOf(kernels[0], b, s, groups);
      ASSERT_EQ(h->dispatch(kernels[0].spirv, bound, {uint32_t(b), 0u, uint32_t(s)}, groups, kernels[0].specialization), "")
          << kernels[0].name;
      for (size_t r = 0; r < want.size(); ++r)
        EXPECT_LE(relErr(buffers[1 + ns.size() + r], want[r].data), b * s <= 8 ? 1e-5 : tileTolerance)
            << kernels[0].name << " result " << r;
    }
  }

  /// Inputs for b x s rows (activations with a few large values, so blocks differ in scale), the interpreter's
  /// results, and each kernel's buffers (operands, then a garbage result).
  void makeCase(int64_t b, int64_t s, int64_t n, int64_t k, std::vector<std::vector<double>> &want,
                std::vector<std::vector<std::vector<uint8_t>>> &buffers) {
    std::vector<float> xf = randomActivations(size_t(b * s * k));
    std::vector<int64_t> ids;
    for (int64_t i = 0; i < b * s; ++i)
      ids.push_back(i == 0 ? n - 1 : int64_t(rng() % uint32_t(n)));
    ir::HostTensor x{{b, s, k}, {}, false}, idt{{b, s}, {}, true};
    x.data.assign(xf.begin(), xf.end());
    idt.data.assign(ids.begin(), ids.end());
    ir::Interpreter interpreter([&](llvm::StringRef, ir::HostTensor &out, std::string &) {
      out = dequantized;
      return true;
    });
    interpreter.setQuantizedActivationRows(kQuantGemvMaxRows); // Vulkan's prefill tiles take f32 activations
    std::vector<ir::HostTensor> results;
    std::string error;
    ASSERT_TRUE(interpreter.run(func, {x, idt}, results, error)) << error;
    want = {results[0].data, results[1].data};
    buffers = {{bytesOf(xf.data(), xf.size() * 4), packed, std::vector<uint8_t>(size_t(b * s * n) * 4, 0xAB)},
               {packed, bytesOf(ids.data(), ids.size() * 8), std::vector<uint8_t>(size_t(b * s * k) * 4, 0xAB)}};
  }

  /// Workgroups of `kernel` for b x s rows.
  void groupsOf(const codegen::SpirvKernel &kernel, int64_t b, int64_t s, uint32_t groups[3]) {
    const std::map<std::string, int64_t> symbols = {{"b", b}, {"p", 0}, {"s", s}};
    for (int a = 0; a < 3; ++a) {
      std::optional<int64_t> g = kernel.globalSize[size_t(a)].evaluate(symbols);
      ASSERT_TRUE(g.has_value());
      groups[a] = uint32_t((*g + kernel.workgroupSize[a] - 1) / kernel.workgroupSize[a]);
      ASSERT_LE(groups[a], 65535u);
    }
  }

  /// Runs both kernels for each (b, s) of `rows` and compares with the interpreter: the matmul within 1e-5 (the
  /// GEMV, rows <= 8) or `tileTolerance` (the tiles), the gather exactly.
  void checkRows(const std::vector<std::pair<int64_t, int64_t>> &rows, int64_t n, int64_t k, double tileTolerance) {
    test::VulkanHarness *h = quantHarness();
    if (!h)
      GTEST_SKIP() << "no Vulkan device (set VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json)";
    for (auto [b, s] : rows) {
      SCOPED_TRACE("b=" + std::to_string(b) + " s=" + std::to_string(s));
      std::vector<std::vector<double>> want;
      std::vector<std::vector<std::vector<uint8_t>>> buffers;
      makeCase(b, s, n, k, want, buffers);
      for (size_t i = 0; i < 2; ++i) {
        uint32_t groups[3];
        groupsOf(kernels[i], b, s, groups);
        std::vector<std::vector<uint8_t> *> bound;
        for (std::vector<uint8_t> &buf : buffers[i])
          bound.push_back(&buf);
        ASSERT_EQ(h->dispatch(kernels[i].spirv, bound, {uint32_t(b), 0u, uint32_t(s)}, groups, kernels[i].specialization),
                  "")
            << kernels[i].name;
      }
      EXPECT_LE(relErr(buffers[0].back(), want[0]), b * s <= 8 ? 1e-5 : tileTolerance) << kernels[0].name;
      EXPECT_EQ(relErr(buffers[1].back(), want[1]), 0.0) << "the gathered rows are the dequantized ones, exactly";
    }
  }

  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  mlir::func::FuncOp func;
  codegen::SpirvTarget target;
  std::vector<mlir::Operation *> ops;
  mlir::Operation *groupOp = nullptr; // setUpGroup's
  std::vector<codegen::SpirvKernel> kernels;
  std::vector<uint8_t> packed;
  ir::HostTensor dequantized;
  std::vector<std::vector<uint8_t>> groupPacked;
  std::vector<ir::HostTensor> groupWeights;
  std::mt19937 rng{11};
};

/// The GEMV cases, with (IntegerDot) and without (Float) the packed integer dot product.
class QuantGemvTest : public QuantSpirvTest, public ::testing::WithParamInterface<bool> {
protected:
  QuantGemvTest() { target.integerDotProduct = GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(, QuantGemvTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool> &info) { return info.param ? "IntegerDot" : "Float"; });

constexpr int64_t kN = 77;
/// (b, s): rows 1 .. 5 and 8 take the GEMV (8 as b = 2, s = 4: batch dims folded in), 9 and 77 the tiles.
const std::vector<std::pair<int64_t, int64_t>> kRows = {{1, 1}, {1, 2}, {1, 3}, {2, 2}, {1, 5}, {2, 4}, {1, 9}, {1, 77}};

TEST_P(QuantGemvTest, MatchesInterpreter) {
  for (const char *format : {"q8_0", "q4_0"})
    for (int64_t k : {32, 96, 1024, 5632}) {
      SCOPED_TRACE(std::string(format) + " K=" + std::to_string(k));
      setUp(format, kN, k);
      EXPECT_EQ(kernels[0].name.find("coopmat"), std::string::npos) << kernels[0].name;
      checkRows(kRows, kN, k, 1e-5);
    }
}

// 4096 rows and more: the GEMV's subgroups take four rows each (QUANT_GEMV_ROWS 4); 4100 leaves a partial group.
TEST_P(QuantGemvTest, FourRowsPerSubgroup) {
  for (const char *format : {"q8_0", "q4_0"}) {
    SCOPED_TRACE(format);
    setUp(format, 4100, 64);
    EXPECT_NE(kernels[0].name.find("_gemv4_"), std::string::npos) << kernels[0].name;
    checkRows({{1, 1}, {2, 4}}, 4100, 64, 1e-5);
  }
}

/// Q/K/V-like segments (N = 77, 45, 19: none a multiple of the GEMV's rows per workgroup or the tiles' 64) and
/// a gate / up pair for silu_mul.
const std::vector<int64_t> kQkv = {77, 45, 19}, kGateUp = {77, 77};
/// (b, s): rows 1 .. 4 and 8 (b = 2, s = 4) take the GEMV, 70 the tiles.
const std::vector<std::pair<int64_t, int64_t>> kGroupRows = {{1, 1}, {1, 2}, {1, 3}, {1, 4}, {2, 2}, {2, 4}, {1, 70}};
/// (b, s) the small-rows variants are dispatched for (b + s <= 4).
const std::vector<std::pair<int64_t, int64_t>> kSmallRows = {{1, 1}, {1, 2}, {1, 3}, {2, 2}};

// kiln.matmul_group of quantized weights: each segment's GEMV (activations quantized per block, as the
// interpreter's matmul_group does for at most 8 rows) and dequantizing tiles; silu_mul's up pass reads back the
// gate each invocation stored.
TEST_P(QuantGemvTest, GroupMatchesInterpreter) {
  for (const char *format : {"q8_0", "q4_0"})
    for (int64_t k : {32, 96, 2048})
      for (bool siluMul : {false, true}) {
        SCOPED_TRACE(std::string(format) + " K=" + std::to_string(k) + (siluMul ? " silu_mul" : ""));
        const std::vector<int64_t> &ns = siluMul ? kGateUp : kQkv;
        setUpGroup(format, ns, k, siluMul);
        EXPECT_EQ(kernels[0].name.rfind(siluMul ? "matmul_group2_silu_mul_tb_" : "matmul_group3_tb_", 0), 0u)
            << kernels[0].name;
        EXPECT_NE(kernels[0].name.find(format), std::string::npos) << kernels[0].name;
        ASSERT_TRUE(kernels[0].smallRows.has_value());
        EXPECT_EQ(kernels[0].smallRows->str(), "b + s"); // the variant's rows: b s <= b + s <= 4
        checkGroupRows(kGroupRows, ns, k, siluMul, 1e-5);
      }
}

// Prefill rows of a group on the cooperative-matrix tiles (emulated), B staged as f16: 5e-3 as the matmul's.
TEST_F(QuantSpirvTest, GroupCooperativeMatrixEmulated) {
  target.emulateCooperativeMatrix = true;
  for (const char *format : {"q8_0", "q4_0"})
    for (bool siluMul : {false, true}) {
      SCOPED_TRACE(std::string(format) + (siluMul ? " silu_mul" : ""));
      const std::vector<int64_t> &ns = siluMul ? kGateUp : kQkv;
      setUpGroup(format, ns, 96, siluMul);
      EXPECT_NE(kernels[0].name.find("_coopmatemu"), std::string::npos) << kernels[0].name;
      checkGroupRows({{1, 9}, {1, 70}}, ns, 96, siluMul, 5e-3);
    }
}

// The small-rows variants the runtime dispatches for decode steps (b + s <= 4): the GEMV path only, no tiles,
// for the matmul and for groups, the rows of A quantized once per workgroup into shared memory (4 rows of K
// bytes and 8 bytes per block) where that fits; the same results as the full kernels' GEMV.
TEST_P(QuantGemvTest, SmallRowsVariant) {
  const std::vector<std::pair<int64_t, int64_t>> &rows = kSmallRows;
  for (const char *format : {"q8_0", "q4_0"})
    for (int64_t k : {32, 2048}) {
      SCOPED_TRACE(std::string(format) + " K=" + std::to_string(k));
      setUp(format, kN, k);
      ASSERT_TRUE(kernels[0].smallRows.has_value());
      EXPECT_EQ(kernels[0].smallRows->str(), "b + s");
      target.smallRowsVariant = true;
      StatusOr<codegen::SpirvKernel> only = codegen::generateSpirvKernel(ops[0], test::kSymbols, target);
      target.smallRowsVariant = false;
      ASSERT_TRUE(only.ok()) << only.status().message();
      kernels[0] = std::move(*only);
      EXPECT_NE(kernels[0].name.find("_gemv2_only_"), std::string::npos) << kernels[0].name;
      EXPECT_EQ(kernels[0].sharedMemoryBytes, uint32_t(4 * (k + k / 4)));
      EXPECT_FALSE(kernels[0].smallRows.has_value());
      checkRows(rows, kN, k, 1e-5);
      for (bool siluMul : {false, true}) {
        SCOPED_TRACE(siluMul ? "group silu_mul" : "group");
        const std::vector<int64_t> &ns = siluMul ? kGateUp : kQkv;
        setUpGroup(format, ns, k, siluMul, /*smallRows=*/true);
        EXPECT_NE(kernels[0].name.find("_only_"), std::string::npos) << kernels[0].name;
        EXPECT_EQ(kernels[0].sharedMemoryBytes, uint32_t(4 * (k + k / 4)));
        checkGroupRows(rows, ns, k, siluMul, 1e-5);
      }
    }
  // K = 8192 needs 40 KiB, more than the target's 32: each subgroup quantizes its blocks itself (no shared memory).
  setUpGroup("q8_0", kGateUp, 8192, true, /*smallRows=*/true);
  EXPECT_EQ(kernels[0].sharedMemoryBytes, 0u);
  checkGroupRows({{1, 1}}, kGateUp, 8192, true, 1e-5);
}

/// `op`'s kernel for the fixture's target with integerDotProduct and smallRowsVariant as given.
codegen::SpirvKernel kernelFor(mlir::Operation *op, codegen::SpirvTarget target, bool integerDot, bool smallRows) {
  target.integerDotProduct = integerDot;
  target.smallRowsVariant = smallRows;
  StatusOr<codegen::SpirvKernel> k = codegen::generateSpirvKernel(op, test::kSymbols, target);
  EXPECT_TRUE(k.ok()) << k.status().message();
  return k.ok() ? std::move(*k) : codegen::SpirvKernel();
}

// The integer dot product changes how the GEMV sums a block, not what (the same exact integers): the float and
// the integer-dot kernels write the same bytes from the same inputs. The matmul's full kernel (rows 1 .. 8, batch
// folded in) and small-rows variant (rows quantized into shared memory), the groups' (Q/K/V, gate / up), and a
// small-rows variant too large for shared memory (K = 8192: each subgroup quantizes its blocks).
TEST_F(QuantSpirvTest, IntegerDotProductIsBitIdentical) {
  test::VulkanHarness *h = quantHarness();
  if (!h)
    GTEST_SKIP() << "no Vulkan device (set VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json)";
  // Runs both kernels on copies of `buffers` and compares those from `firstResult` on (the results).
  auto expectSameBytes = [&](const codegen::SpirvKernel &floatKernel, const codegen::SpirvKernel &dotKernel,
                             int64_t b, int64_t s, const std::vector<std::vector<uint8_t>> &buffers,
                             size_t firstResult) {
    SCOPED_TRACE(dotKernel.name + " b=" + std::to_string(b) + " s=" + std::to_string(s));
    expectIntegerDotProduct(floatKernel, false);
    expectIntegerDotProduct(dotKernel, true);
    std::vector<std::vector<uint8_t>> out[2] = {buffers, buffers};
    const codegen::SpirvKernel *k[2] = {&floatKernel, &dotKernel};
    for (int i = 0; i < 2; ++i) {
      uint32_t groups[3];
      groupsOf(*k[i], b, s, groups);
      std::vector<std::vector<uint8_t> *> bound;
      for (std::vector<uint8_t> &buf : out[i])
        bound.push_back(&buf);
      ASSERT_EQ(h->dispatch(k[i]->spirv, bound, {uint32_t(b), 0u, uint32_t(s)}, groups, k[i]->specialization), "");
    }
    for (size_t r = firstResult; r < buffers.size(); ++r) {
      EXPECT_NE(out[0][r], buffers[r]) << "result " << r << " was not written";
      EXPECT_TRUE(out[0][r] == out[1][r]) << "result " << r << " differs";
    }
  };
  const std::vector<std::pair<int64_t, int64_t>> rows = {{1, 1}, {1, 3}, {1, 5}, {2, 4}};
  for (const char *format : {"q8_0", "q4_0"})
    for (int64_t k : {32, 1024}) {
      SCOPED_TRACE(std::string(format) + " K=" + std::to_string(k));
      setUp(format, kN, k);
      for (bool smallRows : {false, true}) {
        const codegen::SpirvKernel floatKernel = kernelFor(ops[0], target, false, smallRows);
        const codegen::SpirvKernel dotKernel = kernelFor(ops[0], target, true, smallRows);
        for (auto [b, s] : smallRows ? kSmallRows : rows) {
          std::vector<std::vector<double>> want;
          std::vector<std::vector<std::vector<uint8_t>>> buffers;
          makeCase(b, s, kN, k, want, buffers);
          expectSameBytes(floatKernel, dotKernel, b, s, buffers[0], 2);
        }
      }
      for (bool siluMul : {false, true}) {
        const std::vector<int64_t> &ns = siluMul ? kGateUp : kQkv;
        setUpGroup(format, ns, k, siluMul);
        for (bool smallRows : {false, true}) {
          const codegen::SpirvKernel floatKernel = kernelFor(groupOp, target, false, smallRows);
          const codegen::SpirvKernel dotKernel = kernelFor(groupOp, target, true, smallRows);
          for (auto [b, s] : smallRows ? kSmallRows : rows) {
            std::vector<ir::HostTensor> want;
            std::vector<std::vector<uint8_t>> buffers;
            makeGroupCase(b, s, ns, k, siluMul, want, buffers);
            expectSameBytes(floatKernel, dotKernel, b, s, buffers, 1 + ns.size());
          }
        }
      }
    }
  setUpGroup("q4_0", kGateUp, 8192, true, /*smallRows=*/true);
  const codegen::SpirvKernel floatKernel = kernelFor(groupOp, target, false, true);
  const codegen::SpirvKernel dotKernel = kernelFor(groupOp, target, true, true);
  EXPECT_EQ(dotKernel.sharedMemoryBytes, 0u);
  std::vector<ir::HostTensor> want;
  std::vector<std::vector<uint8_t>> buffers;
  makeGroupCase(1, 2, kGateUp, 8192, true, want, buffers);
  expectSameBytes(floatKernel, dotKernel, 1, 2, buffers, 3);
}

// Prefill on the cooperative-matrix tiles (emulated: lavapipe has none), B dequantized 8 elements at a time
// (quant8) and staged as f16: bound 5e-3, as for f16 weights (A is rounded to f16 too).
TEST_F(QuantSpirvTest, CooperativeMatrixEmulated) {
  target.emulateCooperativeMatrix = true;
  for (const char *format : {"q8_0", "q4_0"})
    for (int64_t k : {96, 1024}) {
      SCOPED_TRACE(std::string(format) + " K=" + std::to_string(k));
      setUp(format, kN, k);
      EXPECT_NE(kernels[0].name.find("_coopmatemu"), std::string::npos) << kernels[0].name;
      checkRows({{1, 9}, {1, 77}}, kN, k, 5e-3);
    }
}

// Other readers of a quantized weight have no Vulkan kernel: legality places them on the CPU with this reason.
TEST_F(QuantSpirvTest, OtherReadersAreRefused) {
  const char *src = "func.func @t() -> tensor<64x4xf32> {\n"
                    "  %w = kiln.weight \"w\" {quant = \"q8_0\"} : tensor<4x64xf32>\n"
                    "  %0 = kiln.transpose %w {permutation = array<i64: 1, 0>} : tensor<4x64xf32> -> tensor<64x4xf32>\n"
                    "  return %0 : tensor<64x4xf32>\n}\n";
  module = mlir::parseSourceString<mlir::ModuleOp>(src, &context, "t.mlir");
  ASSERT_TRUE(module);
  func = *module->getOps<mlir::func::FuncOp>().begin();
  for (mlir::Operation &op : func.getBody().front())
    if (mlir::isa<ir::TransposeOp>(op))
      EXPECT_NE(codegen::spirvUnsupportedReason(&op, target).find("kiln.matmul_group and kiln.gather read"),
                std::string::npos);
}

// KILN_SPIRV_EXPORT=DIR: the matmul and matmul_group kernels (and their small-rows variants) for 32-wide
// subgroups and cooperative matrices (the GPU's), then their GEMV rows again with the integer dot product, for
// kiln_spirv_replay (ReplayCase.h) on the GPU machine; files q000.rpl, ... Without it: skipped.
TEST_F(QuantSpirvTest, QuantExportGpuCases) {
  const char *dir = std::getenv("KILN_SPIRV_EXPORT");
  if (!dir)
    GTEST_SKIP() << "set KILN_SPIRV_EXPORT=DIR to write the GPU cases for kiln_spirv_replay";
  target.subgroupSize = 32;
  target.maxSharedMemory = 49152;
  target.cooperativeMatrix = true; // rows > 8: the cooperative-matrix tiles (f16 staging: 5e-3)
  // (N, K, rows): the awkward sizes, and two larger ones (the four-row GEMV; K = 5632 as TinyLlama's down
  // projection) at a few row counts only: every file carries its weight.
  struct Size {
    int64_t n, k;
    std::vector<std::pair<int64_t, int64_t>> rows;
  };
  const std::vector<Size> sizes = {
      {kN, 96, kRows}, {kN, 1024, kRows}, {4100, 1024, {{1, 1}}}, {256, 5632, {{1, 77}}}};
  int index = 0;
  // kernels[0] for b x s rows with its buffers (the result last) and the interpreter's result, as the next file.
  auto write = [&](int64_t b, int64_t s, std::vector<std::vector<uint8_t>> buffers, const std::vector<double> &want) {
    test::ReplayCase rc;
    rc.name = kernels[0].name + " b=" + std::to_string(b) + " s=" + std::to_string(s);
    rc.tolerance = b * s <= 8 ? 1e-5 : 5e-3;
    rc.spirv = kernels[0].spirv;
    rc.specialization = kernels[0].specialization;
    rc.push = {uint32_t(b), 0u, uint32_t(s)};
    groupsOf(kernels[0], b, s, rc.groups);
    rc.buffers = std::move(buffers);
    rc.expected.assign(want.begin(), want.end());
    char file[32];
    std::snprintf(file, sizeof file, "/q%03d.rpl", index++);
    ASSERT_TRUE(test::writeReplayCase(dir + std::string(file), rc)) << dir << file;
  };
  // With the integer dot product (integer_dot_product_accelerated, as the H100 / H200 profiles): the GEMV rows
  // only (the tiles do not use it).
  auto gemvRowsOnly = [](std::vector<std::pair<int64_t, int64_t>> rows, bool integerDot) {
    if (integerDot)
      rows.erase(std::remove_if(rows.begin(), rows.end(), [](auto bs) { return bs.first * bs.second > 8; }),
                 rows.end());
    return rows;
  };
  for (bool integerDot : {false, true})
    for (const char *format : {"q8_0", "q4_0"})
      for (const Size &size : sizes)
        for (bool smallRows : {false, true}) {
          target.integerDotProduct = integerDot;
          setUp(format, size.n, size.k);
          if (smallRows) { // the small-rows variant of the awkward sizes, for decode steps only
            if (size.n != kN)
              continue;
            kernels[0] = kernelFor(ops[0], target, integerDot, true);
          }
          for (auto [b, s] : gemvRowsOnly(smallRows ? kSmallRows : size.rows, integerDot)) {
            std::vector<std::vector<double>> want;
            std::vector<std::vector<std::vector<uint8_t>>> buffers;
            makeCase(b, s, size.n, size.k, want, buffers);
            write(b, s, std::move(buffers[0]), want[0]);
          }
        }
  // The groups (their last result: V's, or silu(gate) * up) and their small-rows variants.
  for (bool integerDot : {false, true})
    for (const char *format : {"q8_0", "q4_0"})
      for (bool siluMul : {false, true})
        for (bool smallRows : {false, true}) {
          target.integerDotProduct = integerDot;
          const std::vector<int64_t> &ns = siluMul ? kGateUp : kQkv;
          setUpGroup(format, ns, 1024, siluMul, smallRows);
          const std::vector<std::pair<int64_t, int64_t>> groupRows = {{1, 1}, {2, 4}, {1, 70}};
          for (auto [b, s] : gemvRowsOnly(smallRows ? kSmallRows : groupRows, integerDot)) {
            std::vector<ir::HostTensor> want;
            std::vector<std::vector<uint8_t>> buffers;
            makeGroupCase(b, s, ns, 1024, siluMul, want, buffers);
            write(b, s, std::move(buffers), want.back().data);
          }
        }
  std::printf("[ export   ] %d quantized-weight cases in %s\n", index, dir);
}

} // namespace
