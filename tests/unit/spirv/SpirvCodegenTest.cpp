//===- SpirvCodegenTest.cpp - every kiln op: SPIR-V kernel on a Vulkan device vs. the interpreter ===//
//
// The per-op kernel test of the Vulkan backend, over the shared kernel cases (tests/unit/common/KernelCases.h,
// the same as the CPU backend's test) and a few SPIR-V-only ones. Each case is one step function with many
// ops over symbolic dims; every dispatch op gets its own SPIR-V kernel from
// generateSpirvKernel, which the test runs on the first Vulkan device (lavapipe in CI: the ENVIRONMENT of
// the CTest entry sets VK_DRIVER_FILES) through the small harness of VulkanHarness.h, following the
// Kernel contract of kiln_artifact.proto: binding i = buffer i, push constants = the symbols, grid =
// ceil(global_size / workgroup_size). Buffers start as garbage (0xAB) so missed writes show. Every result is
// compared with kiln::ir::Interpreter: floats by max |out - ref| / max |ref| (<= 1e-5 for f32), integers
// and booleans exactly. Without a Vulkan device the tests skip (code generation and validation still run).
//
//===----------------------------------------------------------------------===//
#include "KernelCases.h"
#include "KernelTestUtil.h"
#include "ReplayCase.h"
#include "VulkanHarness.h"

#include "kiln/codegen/SpirvCodegen.h"
#include "kiln/ir/Interpreter.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/SymShape.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <sstream>

using namespace kiln;
using kiln::ir::HostTensor;

namespace {

// Bindings, kSymbols, Buffer, Filler, element storage, inputs, the interpreter comparison.
using namespace kiln::test;

test::VulkanHarness *harness() {
  static std::string why;
  static std::unique_ptr<test::VulkanHarness> h = test::VulkanHarness::create(why);
  static bool printed = false;
  if (!printed) {
    printed = true;
    std::printf("[ device   ] %s\n", h ? h->deviceName().c_str() : ("none: " + why).c_str());
  }
  return h.get();
}

class SpirvCodegenTest : public KernelTest {
protected:
  SpirvCodegenTest() {
    target.float16 = true; // lavapipe and the H200 have 16-bit storage
    target.subgroupSize = 8;
  }

  /// Parses `source` and generates (and validates) the kernel of every dispatch op of its function.
  void compile(const std::string &source) {
    ASSERT_TRUE(parse(source));
    kernels.clear();
    splits.clear();
    target.attentionCombinePass = split == Split::TwoPasses;
    auto start = std::chrono::steady_clock::now();
    for (mlir::Operation &op : func.getBody().front()) {
      if (mlir::isa<ir::WeightOp, ir::ConstantOp, mlir::func::ReturnOp>(op))
        continue;
      EXPECT_EQ(codegen::spirvUnsupportedReason(&op, target), "");
      // split: an op that splits over the KV length (attention) gets its split kernel (and, in two passes, the
      // second), its scratch and counters sized for kMaxBatch.
      const uint64_t scratch = split != Split::Off ? codegen::spirvTwoPassScratchBytes(&op, target, kMaxBatch) : 0;
      const int pass = !scratch ? 0 : split == Split::TwoPasses ? 1 : codegen::kSpirvCombinedPass;
      StatusOr<codegen::SpirvKernel> k = codegen::generateSpirvKernel(&op, kSymbols, target, storageOf(&op), {}, pass);
      ASSERT_TRUE(k.ok()) << k.status().message();
      if (scratch) {
        SplitKernels &sk = splits[&op];
        sk.scratch = scratch;
        sk.counters = codegen::spirvSplitCounterBytes(&op, target, kMaxBatch);
        EXPECT_EQ(sk.counters > 0, split == Split::OneDispatch);
        if (split == Split::TwoPasses) {
          StatusOr<codegen::SpirvKernel> k2 = codegen::generateSpirvKernel(&op, kSymbols, target, storageOf(&op), {}, 2);
          ASSERT_TRUE(k2.ok()) << k2.status().message();
          sk.second = std::move(*k2);
        }
      }
      ASSERT_EQ(k->globalSize.size(), 3u);
      ASSERT_LE(k->sharedMemoryBytes, target.maxSharedMemory);
      if (const char *dump = std::getenv("KILN_SPIRV_DUMP"); dump && k->name.find(dump) != std::string::npos)
        std::printf("%s\n", k->glsl.c_str());
      kernels[&op] = std::move(*k);
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("[ compile  ] %zu kernels, %s: %.2f s\n", kernels.size(), func.getSymName().str().c_str(), seconds);
  }

  /// Runs the kernels on the device and the interpreter for `bindings` and compares every result.
  void check(const Bindings &bindings, std::map<unsigned, Filler> fillers = {}, double tolerance = 1e-5) {
    test::VulkanHarness *h = harness();
    if (!h)
      GTEST_SKIP() << "no Vulkan device (set VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json)";
    SCOPED_TRACE(describeBindings(bindings));
    std::vector<HostTensor> args;
    llvm::DenseMap<mlir::Value, Buffer> values;
    makeInputs(func, bindings, fillers, rng, args, values);

    std::vector<uint32_t> push;
    std::map<std::string, int64_t> symbolValues;
    for (const std::string &name : kSymbols) {
      int64_t v = bindings.count(name) ? bindings.at(name) : 1;
      push.push_back((uint32_t)v);
      symbolValues[name] = v;
    }
    for (mlir::Operation &op : func.getBody().front()) {
      if (runsNoKernel(op, bindings, values))
        continue;
      const codegen::SpirvKernel &k = kernels.at(&op);
      // Operands, (a split kernel's scratch, and in one dispatch its counters,) then every result
      // (add_rms_norm / add_layer_norm have two).
      std::vector<Buffer> outs = resultBuffers(op, bindings);
      std::vector<Buffer> operands;
      std::vector<std::vector<uint8_t> *> buffers;
      for (mlir::Value v : op.getOperands())
        operands.push_back(values[foldedSource(&op, v)]);
      for (Buffer &b : operands)
        buffers.push_back(&b.bytes);
      auto sk = splits.find(&op);
      const bool isSplit = sk != splits.end();
      std::vector<uint8_t> scratch(isSplit ? size_t(sk->second.scratch) : 0, 0xAB),
          counters(isSplit ? size_t(sk->second.counters) : 0, 0); // the runtime zeroes them once
      if (isSplit)
        buffers.push_back(&scratch);
      if (!counters.empty())
        buffers.push_back(&counters);
      for (Buffer &out : outs)
        buffers.push_back(&out.bytes);
      const codegen::SpirvKernel *second = isSplit && sk->second.second ? &*sk->second.second : nullptr;
      dispatchAll({&k, second}, buffers, push, symbolValues);
      if (HasFatalFailure())
        return;
      if (!counters.empty()) {
        // One dispatch: it leaves every counter 0, so a replay over fresh garbage computes the same result.
        EXPECT_EQ(counters, std::vector<uint8_t>(counters.size(), 0)) << k.name << ": counters not reset";
        const std::vector<uint8_t> first = outs.back().bytes;
        std::fill(outs.back().bytes.begin(), outs.back().bytes.end(), 0xAB);
        std::fill(scratch.begin(), scratch.end(), 0xCD);
        dispatchAll({&k}, buffers, push, symbolValues);
        if (HasFatalFailure())
          return;
        EXPECT_EQ(counters, std::vector<uint8_t>(counters.size(), 0)) << k.name << ": counters not reset (replay)";
        EXPECT_TRUE(outs.back().bytes == first) << k.name << ": the replay computed another result";
      }
      for (auto [i, result] : llvm::enumerate(op.getResults()))
        values[result] = std::move(outs[i]);
    }

    compareWithInterpreter(
        func, args, values, tolerance,
        [this](mlir::Operation *def) { return def->getName().getStringRef().str() + ", " + kernels.at(def).name; },
        worst, {{"r", symbolValues["r"]}});
  }

  /// Dispatches `kernels` (null: skipped) in order over `buffers` at the symbols' values.
  void dispatchAll(const std::vector<const codegen::SpirvKernel *> &kernels, std::vector<std::vector<uint8_t> *> &buffers,
                   const std::vector<uint32_t> &push, const std::map<std::string, int64_t> &symbolValues) {
    for (const codegen::SpirvKernel *kernel : kernels) {
      if (!kernel)
        continue;
      uint32_t groups[3];
      for (int a = 0; a < 3; ++a) {
        std::optional<int64_t> g = kernel->globalSize[a].evaluate(symbolValues);
        ASSERT_TRUE(g.has_value());
        groups[a] = (uint32_t)((*g + kernel->workgroupSize[a] - 1) / kernel->workgroupSize[a]);
        ASSERT_LE(groups[a], 65535u) << kernel->name;
      }
      std::string error = harness()->dispatch(kernel->spirv, buffers, push, groups, kernel->specialization);
      ASSERT_EQ(error, "") << kernel->name;
    }
  }

  /// The replay case (ReplayCase.h) of compiled `op`, whose result is the function's result `resultIndex`, at
  /// `bindings`: its kernel(s) and grid(s), its inputs (random), garbage result / scratch buffers, and the
  /// interpreter's result. The caller sets the name, tolerance and result kind.
  void replayCase(mlir::Operation *op, size_t resultIndex, const Bindings &bindings, ReplayCase &rc) {
    std::vector<HostTensor> args, expected;
    llvm::DenseMap<mlir::Value, Buffer> values;
    makeInputs(func, bindings, {}, rng, args, values);
    ir::Interpreter interpreter(nullptr);
    std::string error;
    ASSERT_TRUE(interpreter.run(func, args, expected, error)) << error;
    std::map<std::string, int64_t> symbolValues(bindings.begin(), bindings.end());
    for (const std::string &name : kSymbols) { // a symbol the case does not bind is 1, as in check()
      symbolValues.emplace(name, 1);
      rc.push.push_back(uint32_t(symbolValues.at(name)));
    }
    auto grid = [&](const codegen::SpirvKernel &k, uint32_t *groups) {
      for (int a = 0; a < 3; ++a)
        groups[a] = uint32_t((*k.globalSize[a].evaluate(symbolValues) + k.workgroupSize[a] - 1) / k.workgroupSize[a]);
    };
    const codegen::SpirvKernel &k = kernels.at(op);
    rc.spirv = k.spirv;
    rc.specialization = k.specialization;
    grid(k, rc.groups);
    for (mlir::Value v : op->getOperands())
      rc.buffers.push_back(values[foldedSource(op, v)].bytes);
    if (auto sk = splits.find(op); sk != splits.end()) {
      const int64_t batch = bindings.at("b");
      rc.buffers.emplace_back(size_t(codegen::spirvTwoPassScratchBytes(op, target, batch)), 0xAB);
      if (sk->second.counters) // zeroed, as the runtime does
        rc.buffers.emplace_back(size_t(codegen::spirvSplitCounterBytes(op, target, batch)), 0);
      if (sk->second.second) {
        rc.spirv2 = sk->second.second->spirv;
        rc.specialization2 = sk->second.second->specialization;
        grid(*sk->second.second, rc.groups2);
      }
    }
    rc.buffers.push_back(garbageBuffer(op->getResult(0).getType(), bindings).bytes);
    rc.expected.assign(expected[resultIndex].data.begin(), expected[resultIndex].data.end());
  }

  /// With foldWeightConverts, a matmul / gather-table / norm-weight operand that is kiln.convert of an f16 / bf16 value to f32
  /// is read from the convert's input in place (passes/DeviceWeights.h): the kernel gets that storage type
  /// and the 16-bit buffer.
  mlir::Value foldedSource(mlir::Operation *op, mlir::Value v) const {
    bool foldable = mlir::isa<ir::MatmulOp>(op) || (mlir::isa<ir::MatmulGroupOp>(op) && v != op->getOperand(0)) ||
                    (mlir::isa<ir::GatherOp>(op) && v == op->getOperand(0)) ||
                    (mlir::isa<ir::RmsNormOp, ir::LayerNormOp>(op) && v != op->getOperand(0));
    if (!foldWeightConverts || !foldable)
      return v;
    if (auto c = v.getDefiningOp<ir::ConvertOp>()) {
      mlir::Type in = mlir::cast<mlir::ShapedType>(c->getOperand(0).getType()).getElementType();
      mlir::Type outT = mlir::cast<mlir::ShapedType>(v.getType()).getElementType();
      if ((in.isF16() || in.isBF16()) && outT.isF32())
        return c->getOperand(0);
    }
    return v;
  }
  std::vector<mlir::Type> storageOf(mlir::Operation *op) const {
    std::vector<mlir::Type> types;
    for (mlir::Value v : op->getOperands())
      types.push_back(mlir::cast<mlir::ShapedType>(foldedSource(op, v).getType()).getElementType());
    return types;
  }

  /// KILN_SPIRV_EXPORT: writes DIR/NNN.rpl (NNN = index++), the kernel of `op` (result 0) on fresh inputs for
  /// s = `rows`, with the interpreter's result, for kiln_spirv_replay on the GPU machine (ReplayCase.h).
  void exportReplay(mlir::Operation *op, const std::string &label, int64_t rows, double tolerance, uint32_t resultKind,
                    const std::string &dir, int &index) {
    ReplayCase rc;
    replayCase(op, 0, {{"b", 1}, {"s", rows}, {"p", 0}}, rc);
    rc.name = kernels.at(op).name + " M=" + std::to_string(rows) + " " + label;
    rc.tolerance = tolerance;
    rc.resultKind = resultKind;
    char file[32];
    std::snprintf(file, sizeof file, "/%03d.rpl", index++);
    ASSERT_TRUE(writeReplayCase(dir + std::string(file), rc)) << dir << file;
  }

  /// The export tests' device: like the nvidia-h200 profile (cooperative matrices, 32-wide subgroups, 48 KiB of
  /// shared memory), 16-bit weights read in place.
  void useGpuExportTarget() {
    target.cooperativeMatrix = true;
    target.subgroupSize = 32;
    target.maxSharedMemory = 49152;
    foldWeightConverts = true;
  }

  bool foldWeightConverts = false;
  /// How ops that can split over the KV length (attention) run: not split, split in two passes (the fallback,
  /// SpirvTarget::attentionCombinePass), or split in one dispatch (what the compiler picks).
  enum class Split { Off, TwoPasses, OneDispatch };
  Split split = Split::Off;
  static constexpr int64_t kMaxBatch = 3; ///< the largest b of the cases' bindings
  /// A split op's buffers (for kMaxBatch) and, in two passes, its second kernel.
  struct SplitKernels {
    uint64_t scratch = 0, counters = 0;
    std::optional<codegen::SpirvKernel> second;
  };
  std::map<mlir::Operation *, SplitKernels> splits;
  std::map<mlir::Operation *, codegen::SpirvKernel> kernels;
  codegen::SpirvTarget target;
};

//===----------------------------------------------------------------------===//
// The shared kernel cases (tests/unit/common/KernelCases.h), the same on every backend
//===----------------------------------------------------------------------===//

class SpirvKernelCase : public SpirvCodegenTest, public ::testing::WithParamInterface<KernelCase> {};

TEST_P(SpirvKernelCase, MatchesInterpreter) {
  const KernelCase &c = GetParam();
  // Small workgroups take other variants (attention: 64 invocations is one per score, no partial dots).
  std::vector<uint32_t> invocations = {target.maxWorkgroupInvocations};
  if (c.smallWorkgroups)
    invocations.insert(invocations.end(), {128u, 64u});
  // The row kernels reduce through subgroups where the device has subgroup arithmetic (lavapipe: 8 lanes).
  const bool rows = c.name == "ReductionsSoftmaxNorms" || c.name.rfind("AddNormsRow", 0) == 0;
  for (bool subgroups : rows ? std::vector<bool>{false, true} : std::vector<bool>{false})
    for (uint32_t n : invocations) {
      SCOPED_TRACE("maxWorkgroupInvocations " + std::to_string(n) + (subgroups ? ", subgroup arithmetic" : ""));
      target.maxWorkgroupInvocations = n;
      target.subgroupArithmetic = subgroups;
      compile(c.source);
      for (const Bindings &b : c.shapes)
        check(b, c.fillers, c.tolerance);
    }
}

INSTANTIATE_TEST_SUITE_P(Shared, SpirvKernelCase, ::testing::ValuesIn(kernelCases()), KernelCaseName());

//===----------------------------------------------------------------------===//
// Limits: what does not fit is reported, not generated
//===----------------------------------------------------------------------===//

/// `n` f32 values uniform in [-1, 1), as the bytes of a buffer.
std::vector<uint8_t> randomFloatBytes(std::mt19937 &gen, int64_t n) {
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::vector<uint8_t> bytes(size_t(n) * 4);
  for (int64_t i = 0; i < n; ++i) {
    float x = uni(gen);
    std::memcpy(bytes.data() + 4 * i, &x, 4);
  }
  return bytes;
}

/// Positions [b, s] as i64 bytes: token i of batch row r at p + i + 100 r.
std::vector<uint8_t> positionBytes(int64_t b, int64_t s, int64_t p) {
  std::vector<uint8_t> pos(size_t(b * s) * 8);
  for (int64_t i = 0; i < b * s; ++i) {
    int64_t v = p + i % s + 100 * (i / s);
    std::memcpy(pos.data() + 8 * i, &v, 8);
  }
  return pos;
}

/// A [rows, capacity, d] f32 storage holds `plain` [rows, s, d] at rows [p, p + s) of each, garbage (0xAB) elsewhere.
void expectRowsAt(const std::vector<uint8_t> &storage, const std::vector<uint8_t> &plain, int64_t rows,
                  int64_t capacity, int64_t p, int64_t s, int64_t d, const std::string &what) {
  for (int64_t bh = 0; bh < rows; ++bh)
    for (int64_t r = 0; r < capacity; ++r) {
      const uint8_t *got = storage.data() + 4 * (bh * capacity + r) * d;
      if (r >= p && r < p + s)
        EXPECT_EQ(std::memcmp(got, plain.data() + 4 * (bh * s + r - p) * d, 4 * d), 0) << what << " row " << r;
      else
        EXPECT_TRUE(std::all_of(got, got + 4 * d, [](uint8_t c) { return c == 0xAB; })) << what << " row " << r << " written";
    }
}

// KV-cache views (codegen::SpirvKvView, an in-place cache): rope and the value head transpose write their s
// rows into a [b, h, C, d] storage at row p, and attention reads keys and values from such storages (capacity
// stride) - bit for bit what the contiguous kernels compute, with every other row of the storage untouched.
// Awkward sizes: 3 KV heads, head dim 10, capacity 11, b 2, p 5, s 3.
TEST_F(SpirvCodegenTest, KvCacheViews) {
  const char *src = R"(
func.func @views(%x: tensor<?x3x?x10xf32, #kiln.dims<[b, s]>>, %pos: tensor<?x?xi64, #kiln.dims<[b, s]>>,
                 %f: tensor<5xf32>, %h: tensor<?x?x3x10xf32, #kiln.dims<[b, s]>>,
                 %q: tensor<?x6x?x10xf32, #kiln.dims<[b, s]>>, %k: tensor<?x3x?x10xf32, #kiln.dims<[b, p + s]>>,
                 %v: tensor<?x3x?x10xf32, #kiln.dims<[b, p + s]>>) -> (tensor<?x3x?x10xf32, #kiln.dims<[b, s]>>, tensor<?x3x?x10xf32, #kiln.dims<[b, s]>>, tensor<?x6x?x10xf32, #kiln.dims<[b, s]>>) {
  %0 = kiln.rope %x, %pos, %f {interleaved = false} : (tensor<?x3x?x10xf32, #kiln.dims<[b, s]>>, tensor<?x?xi64, #kiln.dims<[b, s]>>, tensor<5xf32>) -> tensor<?x3x?x10xf32, #kiln.dims<[b, s]>>
  %1 = kiln.transpose %h {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x?x3x10xf32, #kiln.dims<[b, s]>> -> tensor<?x3x?x10xf32, #kiln.dims<[b, s]>>
  %2 = kiln.attention %q, %k, %v {scale = 0.3 : f64, mask = #kiln.mask<causal>} : (tensor<?x6x?x10xf32, #kiln.dims<[b, s]>>, tensor<?x3x?x10xf32, #kiln.dims<[b, p + s]>>, tensor<?x3x?x10xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x6x?x10xf32, #kiln.dims<[b, s]>>
  return %0, %1, %2 : tensor<?x3x?x10xf32, #kiln.dims<[b, s]>>, tensor<?x3x?x10xf32, #kiln.dims<[b, s]>>, tensor<?x6x?x10xf32, #kiln.dims<[b, s]>>
})";
  auto mod = mlir::parseSourceString<mlir::ModuleOp>(src, &context, "views.mlir");
  ASSERT_TRUE(mod);
  auto f = *mod->getOps<mlir::func::FuncOp>().begin();
  std::vector<mlir::Operation *> ops;
  for (mlir::Operation &op : f.getBody().front())
    ops.push_back(&op);
  test::VulkanHarness *h = harness();
  if (!h)
    GTEST_SKIP() << "no Vulkan device";
  const int64_t B = 2, P = 5, S = 3, T = P + S, C = 11, D = 10;
  const std::vector<uint32_t> symbols = {uint32_t(B), uint32_t(P), uint32_t(S)}; // kSymbols: b, p, s
  std::mt19937 gen(7);
  auto floats = [&](int64_t n) { return randomFloatBytes(gen, n); };
  std::vector<uint8_t> x = floats(B * 3 * S * D), freq = floats(5), heads = floats(B * S * 3 * D),
                       q = floats(B * 6 * S * D), k = floats(B * 3 * T * D), v = floats(B * 3 * T * D);
  std::vector<uint8_t> pos = positionBytes(B, S, P);
  // Runs `op`'s kernel (with `views`) over `buffers` (operands, then the result).
  auto run = [&](mlir::Operation *op, std::vector<std::vector<uint8_t> *> buffers,
                 std::vector<codegen::SpirvKvView> views) {
    StatusOr<codegen::SpirvKernel> kernel = codegen::generateSpirvKernel(op, kSymbols, target, {}, views);
    ASSERT_TRUE(kernel.ok()) << kernel.status().message();
    EXPECT_EQ(kernel->name.find("_kvview") != std::string::npos, !views.empty()) << kernel->name;
    uint32_t groups[3];
    for (int a = 0; a < 3; ++a)
      groups[a] = uint32_t((*kernel->globalSize[a].evaluate({{"b", B}, {"p", P}, {"s", S}}) +
                            kernel->workgroupSize[a] - 1) / kernel->workgroupSize[a]);
    ASSERT_EQ(h->dispatch(kernel->spirv, buffers, symbols, groups, kernel->specialization), "");
  };
  const ir::SymExpr rowP = ir::SymExpr::symbol("p"), row0 = ir::SymExpr::constant(0);
  // The new rows: contiguous, then into a garbage storage at row p; rows [p, p + s) of each (batch, head)
  // are the contiguous result, the rest still garbage.
  for (auto [index, operands] : {std::pair<int, std::vector<std::vector<uint8_t> *>>{0, {&x, &pos, &freq}},
                                 {1, {&heads}}}) {
    mlir::Operation *op = ops[size_t(index)];
    std::vector<uint8_t> plain(size_t(B * 3 * S * D) * 4, 0xAB), storage(size_t(B * 3 * C * D) * 4, 0xAB);
    std::vector<std::vector<uint8_t> *> buffers = operands;
    buffers.push_back(&plain);
    run(op, buffers, {});
    buffers.back() = &storage;
    std::vector<codegen::SpirvKvView> views(operands.size() + 1);
    views.back() = {C, rowP};
    run(op, buffers, views);
    expectRowsAt(storage, plain, B * 3, C, P, S, D, op->getName().getStringRef().str());
  }
  // Attention over keys / values in storages of capacity C (rows past T garbage).
  std::vector<uint8_t> kStore(size_t(B * 3 * C * D) * 4, 0xAB), vStore = kStore;
  for (int64_t bh = 0; bh < B * 3; ++bh) {
    std::memcpy(kStore.data() + 4 * bh * C * D, k.data() + 4 * bh * T * D, 4 * T * D);
    std::memcpy(vStore.data() + 4 * bh * C * D, v.data() + 4 * bh * T * D, 4 * T * D);
  }
  std::vector<uint8_t> plainOut(size_t(B * 6 * S * D) * 4, 0xAB), viewOut = plainOut;
  run(ops[2], {&q, &k, &v, &plainOut}, {});
  run(ops[2], {&q, &kStore, &vStore, &viewOut}, {{}, {C, row0}, {C, row0}, {}});
  EXPECT_EQ(plainOut, viewOut);
}

/// A layer's kiln.group (kiln-group-dispatches, passes/DispatchGroups.h): the rope of q [b, 6, s, d], the rope
/// of k [b, 2, s, d] (GQA 3:1) and the value transpose [b, s, 2, d] -> [b, 2, s, d] as one kernel, `rotary`
/// of the d channels rotated (halves or interleaved pairs) with frequency table `freq`.
std::string ropeGroupSource(int64_t d, int64_t rotary, bool interleaved) {
  std::string src = R"(
func.func @group(%xq: Q, %pos: tensor<?x?xi64, #kiln.dims<[b, s]>>, %f: F, %xk: K, %v: V) -> (Q, K, K) {
  %g:3 = kiln.group %xq, %pos, %f, %xk, %v : (Q, tensor<?x?xi64, #kiln.dims<[b, s]>>, F, K, V) -> (Q, K, K) {
  ^bb0(%a: Q, %p: tensor<?x?xi64, #kiln.dims<[b, s]>>, %ff: F, %c: K, %w: V):
    %q = kiln.rope %a, %p, %ff {interleaved = IL} : (Q, tensor<?x?xi64, #kiln.dims<[b, s]>>, F) -> Q
    %k = kiln.rope %c, %p, %ff {interleaved = IL} : (K, tensor<?x?xi64, #kiln.dims<[b, s]>>, F) -> K
    %t = kiln.transpose %w {permutation = array<i64: 0, 2, 1, 3>} : V -> K
    kiln.yield %q, %k, %t : Q, K, K
  }
  return %g#0, %g#1, %g#2 : Q, K, K
})";
  const std::string ds = std::to_string(d);
  for (const auto &[from, to] : std::vector<std::pair<std::string, std::string>>{
           {"Q", "tensor<?x6x?x" + ds + "xf32, #kiln.dims<[b, s]>>"},
           {"K", "tensor<?x2x?x" + ds + "xf32, #kiln.dims<[b, s]>>"},
           {"V", "tensor<?x?x2x" + ds + "xf32, #kiln.dims<[b, s]>>"},
           {"F", "tensor<" + std::to_string(rotary / 2) + "xf32>"},
           {"IL", interleaved ? "true" : "false"}})
    src = replaceAll(src, from, to);
  return src;
}

/// Llama 3's scaled inv_freq (factor 8, low / high frequency factors 1 / 4, original context 8192).
std::vector<double> llama3InvFreq(int64_t half, int64_t dim, double base) {
  std::vector<double> f = invFreq(half, dim, base);
  const double lowWavelen = 8192 / 1.0, highWavelen = 8192 / 4.0;
  for (double &x : f) {
    const double wavelen = 2 * M_PI / x;
    if (wavelen > lowWavelen) {
      x /= 8;
    } else if (wavelen >= highWavelen) {
      const double smooth = (8192 / wavelen - 1.0) / (4.0 - 1.0);
      x = (1 - smooth) * x / 8 + smooth * x;
    }
  }
  return f;
}

// kiln.group's kernel (codegen/spirv GroupKernel.cpp) against the interpreter (which evaluates its body):
// head dims 64 and 80, rope halves (Llama), interleaved pairs (GPT-J), partial rotary (phi3's 3/4 in halves,
// GPT-J's 1/2 in pairs), Llama 3's scaled frequencies; one token, a few, a 70-token prefill, at p 0, 5, 300,
// and two batch rows.
TEST_F(SpirvCodegenTest, DispatchGroup) {
  struct RopeCase {
    int64_t d, rotary;
    bool interleaved, llama3;
  };
  const std::vector<RopeCase> cases = {{64, 64, false, false}, {80, 80, false, false}, {64, 64, false, true},
                                       {64, 32, true, false},  {80, 60, false, false}, {80, 80, true, false}};
  for (const RopeCase &c : cases) {
    SCOPED_TRACE("d " + std::to_string(c.d) + ", rotary " + std::to_string(c.rotary) +
                 (c.interleaved ? ", interleaved" : ", halves") + (c.llama3 ? ", llama3 scaling" : ""));
    compile(ropeGroupSource(c.d, c.rotary, c.interleaved));
    for (auto &[op, k] : kernels) {
      EXPECT_EQ(k.name, "group_rope_rope_transpose_f32");
      EXPECT_NE(k.glsl.find("kiln_seg2("), std::string::npos) << "three segments";
    }
    const std::vector<double> freq = c.llama3 ? llama3InvFreq(c.rotary / 2, c.rotary, 500000)
                                              : invFreq(c.rotary / 2, c.rotary, 10000);
    for (int64_t p : {0, 5, 300})
      for (int64_t s : {1, 3, 70})
        check({{"b", 1}, {"s", s}, {"p", p}}, {{1, positions(1000)}, {2, constant(freq)}});
    check({{"b", 2}, {"s", 3}, {"p", 5}}, {{1, positions(1000)}, {2, constant(freq)}});
  }
}

// A group whose k and v results are KV-cache views (an in-place cache: the rows [p, p + s) of [b, 2, C, d]
// storages), as kiln compile binds them: the same rows as the plain group's results, every other row untouched.
TEST_F(SpirvCodegenTest, DispatchGroupKvViews) {
  auto mod = mlir::parseSourceString<mlir::ModuleOp>(ropeGroupSource(80, 80, false), &context, "group.mlir");
  ASSERT_TRUE(mod);
  mlir::Operation *group = &*(*mod->getOps<mlir::func::FuncOp>().begin()).getBody().front().begin();
  test::VulkanHarness *h = harness();
  if (!h)
    GTEST_SKIP() << "no Vulkan device";
  const int64_t B = 2, P = 5, S = 3, C = 11, D = 80;
  std::mt19937 gen(11);
  auto floats = [&](int64_t n) { return randomFloatBytes(gen, n); };
  std::vector<uint8_t> xq = floats(B * 6 * S * D), freq = floats(D / 2), xk = floats(B * 2 * S * D),
                       v = floats(B * S * 2 * D), pos = positionBytes(B, S, P);
  auto run = [&](std::vector<std::vector<uint8_t> *> buffers, std::vector<codegen::SpirvKvView> views) {
    StatusOr<codegen::SpirvKernel> kernel = codegen::generateSpirvKernel(group, kSymbols, target, {}, views);
    ASSERT_TRUE(kernel.ok()) << kernel.status().message();
    uint32_t groups[3];
    for (int a = 0; a < 3; ++a)
      groups[a] = uint32_t((*kernel->globalSize[a].evaluate({{"b", B}, {"p", P}, {"s", S}}) +
                            kernel->workgroupSize[a] - 1) / kernel->workgroupSize[a]);
    ASSERT_EQ(h->dispatch(kernel->spirv, buffers, {uint32_t(B), uint32_t(P), uint32_t(S)}, groups,
                          kernel->specialization), "");
  };
  std::vector<uint8_t> q(size_t(B * 6 * S * D) * 4, 0xAB), k(size_t(B * 2 * S * D) * 4, 0xAB), t = k;
  run({&xq, &pos, &freq, &xk, &v, &q, &k, &t}, {});
  std::vector<uint8_t> q2 = q, kStore(size_t(B * 2 * C * D) * 4, 0xAB), vStore = kStore;
  const ir::SymExpr rowP = ir::SymExpr::symbol("p");
  std::vector<codegen::SpirvKvView> views(8);
  views[6] = {C, rowP};
  views[7] = {C, rowP};
  run({&xq, &pos, &freq, &xk, &v, &q2, &kStore, &vStore}, views);
  EXPECT_EQ(q, q2);
  expectRowsAt(kStore, k, B * 2, C, P, S, D, "key");
  expectRowsAt(vStore, t, B * 2, C, P, S, D, "value");
}

/// Attention on awkward sizes: GQA 8:1 (head dim 80), 1:1 (head dim 256, 3 heads, bias + softcap), 6:2 (an odd
/// group of 3, head dim 48, value dim 40); causal, windows (37, 100), key padding (the first 70 keys of batch
/// row 1 hidden and random holes), bidirectional. One query row over 1000 keys (t not a multiple of a block),
/// decode at b 2, small chunks, a 33-row prefill, two rows over 2048 and 2049 keys (split over the KV
/// length: 32 chunks of 64 keys, and 17 of 128), and prefills of 77 and 200 rows over 1000 keys (the tiles of
/// attention_tile.glsl; rows not a multiple of the tile's).
std::string attentionAwkwardSource() {
  std::string src = R"(
func.func @att(%q8: Q8, %k1: K1, %v1: K1, %pad: PAD, %q3: Q3, %k3: K3, %v3: K3, %bias: BIAS, %q4: Q4, %k4: K4, %v4: V4) -> (Q8, Q8, Q8, Q3, Q3, O4) {
  %0 = kiln.attention %q8, %k1, %v1 {scale = 0.11 : f64, mask = #kiln.mask<causal>} : (Q8, K1, K1) -> Q8
  %1 = kiln.attention %q8, %k1, %v1 {scale = 0.11 : f64, mask = #kiln.mask<causal>, window = 37 : i64} : (Q8, K1, K1) -> Q8
  %2 = kiln.attention %q8, %k1, %v1 key_padding_mask(%pad) {scale = 0.11 : f64, mask = #kiln.mask<bidirectional>} : (Q8, K1, K1, PAD) -> Q8
  %3 = kiln.attention %q3, %k3, %v3 bias(%bias) {scale = 0.0625 : f64, mask = #kiln.mask<causal>, softcap = 2.5 : f64} : (Q3, K3, K3, BIAS) -> Q3
  %4 = kiln.attention %q3, %k3, %v3 key_padding_mask(%pad) {scale = 0.0625 : f64, mask = #kiln.mask<causal>, window = 100 : i64} : (Q3, K3, K3, PAD) -> Q3
  %5 = kiln.attention %q4, %k4, %v4 {scale = 0.14 : f64, mask = #kiln.mask<causal>} : (Q4, K4, V4) -> O4
  return %0, %1, %2, %3, %4, %5 : Q8, Q8, Q8, Q3, Q3, O4
})";
  const std::vector<std::pair<std::string, std::string>> types = {{"Q8", "tensor<?x8x?x80xf32, #kiln.dims<[b, s]>>"},
                          {"K1", "tensor<?x1x?x80xf32, #kiln.dims<[b, p + s]>>"},
                          {"Q3", "tensor<?x3x?x256xf32, #kiln.dims<[b, s]>>"},
                          {"K3", "tensor<?x3x?x256xf32, #kiln.dims<[b, p + s]>>"},
                          {"BIAS", "tensor<1x3x?x?xf32, #kiln.dims<[s, p + s]>>"},
                          {"Q4", "tensor<?x6x?x48xf32, #kiln.dims<[b, s]>>"},
                          {"K4", "tensor<?x2x?x48xf32, #kiln.dims<[b, p + s]>>"},
                          {"V4", "tensor<?x2x?x40xf32, #kiln.dims<[b, p + s]>>"},
                          {"O4", "tensor<?x6x?x40xf32, #kiln.dims<[b, s]>>"},
                          {"PAD", "tensor<?x?xi64, #kiln.dims<[b, p + s]>>"}};
  for (const auto &[from, to] : types)
    src = replaceAll(src, from, to);
  return src;
}

const std::vector<Bindings> kAttentionAwkwardShapes = {{{"b", 1}, {"s", 1}, {"p", 999}},
                                                       {{"b", 2}, {"s", 1}, {"p", 130}},
                                                       {{"b", 1}, {"s", 5}, {"p", 60}},
                                                       {{"b", 2}, {"s", 3}, {"p", 0}},
                                                       {{"b", 1}, {"s", 33}, {"p", 0}},
                                                       {{"b", 1}, {"s", 2}, {"p", 2047}},
                                                       {{"b", 2}, {"s", 77}, {"p", 923}},
                                                       {{"b", 1}, {"s", 200}, {"p", 800}}};
/// The first of kAttentionAwkwardShapes over 1000 keys or more (the exported GPU cases stop before it), and the
/// first of the long prefills (checked on fewer devices: the interpreter takes long over them).
constexpr size_t kAttentionAwkwardLongShapes = 5, kAttentionAwkwardPrefills = 6;

/// Key padding: batch row 1 hides its first 70 keys, every row about one key in five.
std::vector<double> attentionPadding(const std::vector<int64_t> &shape, const Bindings &, std::mt19937 &rng) {
  std::vector<double> v(size_t(numElements(shape)));
  for (int64_t r = 0; r < shape[0]; ++r)
    for (int64_t j = 0; j < shape[1]; ++j)
      v[size_t(r * shape[1] + j)] = (r == 1 && j < 70) ? 0 : (rng() % 5 != 0);
  return v;
}

// The small-rows variant of attention (SpirvKernel::smallRows): an attention with a symbolic s and tile paths
// (f32 tiles, or cooperative-matrix tiles, emulated here) names its rows; its variant has no tiles and equals
// the interpreter on the decode steps (s <= kSpirvGemvRows: 1, 2 and 3 rows, split over the KV length in one
// dispatch, 1000 keys and a ragged chunk).
TEST_F(SpirvCodegenTest, AttentionSmallRowsVariant) {
  split = Split::OneDispatch;
  for (bool cm : {false, true}) {
    SCOPED_TRACE(cm ? "cooperative-matrix tiles" : "f32 tiles");
    target.subgroupSize = cm ? 32 : 8;
    target.cooperativeMatrix = target.cooperativeMatrixAttention = target.emulateCooperativeMatrix = cm;
    target.smallRowsVariant = false;
    compile(attentionAwkwardSource());
    for (auto &[op, k] : kernels) {
      EXPECT_NE(k.name.find("_tile"), std::string::npos) << k.name;
      ASSERT_TRUE(k.smallRows.has_value()) << k.name;
    }
    target.smallRowsVariant = true;
    compile(attentionAwkwardSource());
    for (auto &[op, k] : kernels) {
      EXPECT_EQ(k.name.find("_tile"), std::string::npos) << k.name;
      EXPECT_FALSE(k.smallRows.has_value()) << k.name;
    }
    for (size_t x : {0, 1, 3, 5}) // s = 1 (p 999, b 2 / p 130), 3 (b 2), 2 (p 2047)
      check(kAttentionAwkwardShapes[x], {{3, attentionPadding}}, 2e-5);
  }
  target.cooperativeMatrix = target.cooperativeMatrixAttention = target.emulateCooperativeMatrix = false;
  target.smallRowsVariant = false;
  target.subgroupSize = 8;
  split = Split::Off;
}

TEST_F(SpirvCodegenTest, AttentionAwkward) {
  struct Limits {
    uint32_t invocations, shared;
  };
  // Lavapipe's limits, a 64-invocation device, and a 16 KiB one (fewer heads per workgroup); not split, and
  // split over the KV length (flash-decoding: 16 chunks of the 1000 keys, 3 of 131, 2 under the 100-key
  // window, a ragged last one, 32 and 17 in one step) in one dispatch (the last chunk of a row combines it;
  // check() replays it), and with the fallback's combine pass at lavapipe's limits. The long prefills (tiles,
  // the same code in every kernel) on the one-dispatch kernel of lavapipe's limits and of the 16 KiB device.
  for (Split mode : {Split::Off, Split::TwoPasses, Split::OneDispatch})
    for (Limits lim : {Limits{1024, 32768}, Limits{64, 32768}, Limits{256, 16384}}) {
      if (mode == Split::TwoPasses && lim.invocations != 1024)
        continue;
      SCOPED_TRACE(std::string(mode == Split::Off ? "not split" : mode == Split::TwoPasses ? "two passes" : "one dispatch") +
                   ", invocations " + std::to_string(lim.invocations) + ", shared " + std::to_string(lim.shared));
      split = mode;
      target.maxWorkgroupInvocations = lim.invocations;
      target.maxSharedMemory = lim.shared;
      compile(attentionAwkwardSource());
      EXPECT_EQ(splits.size(), mode != Split::Off ? kernels.size() : 0u);
      const bool prefills = mode == Split::OneDispatch && lim.invocations > 64;
      for (size_t x = 0; x < kAttentionAwkwardShapes.size(); ++x)
        if (x < kAttentionAwkwardPrefills || prefills)
          check(kAttentionAwkwardShapes[x], {{3, attentionPadding}}, 2e-5);
    }
  split = Split::Off;
  // GQA: the 8 heads sharing a KV head are one workgroup when they fit.
  target.maxWorkgroupInvocations = 1024;
  target.maxSharedMemory = 32768;
  compile(attentionAwkwardSource());
  std::set<std::string> names;
  for (auto &[op, k] : kernels)
    names.insert(k.name);
  // Steps of 8 rows or more take tiles of query rows (attention_tile.glsl): 8 rows x 8 heads with blocks of 16
  // keys in lavapipe's 32 KiB for head dim 80, 21 x 3 heads with 32 keys for 48, 16 rows with 8 keys for 256.
  std::string all;
  for (const std::string &n : names)
    all += n + " ";
  EXPECT_TRUE(names.count("attention_online_d80_gqa8_tile8x16_f32")) << all;
  EXPECT_TRUE(names.count("attention_online_d48_gqa3_tile21x32_f32")) << all;
  EXPECT_TRUE(names.count("attention_online_d256_tile16x8_f32")) << all;
}

/// TinyLlama's attention (8 query heads on 1 KV head, head dim 64) and head dim 128 (4 heads on 2, key
/// padding), for the cooperative-matrix tiles beside attentionAwkwardSource's head dims 80, 256 and 48 / 40.
std::string attentionCmSource() {
  std::string src = R"(
func.func @attcm(%q: Q64, %k: K64, %v: K64, %q2: Q128, %k2: K128, %v2: K128, %pad: PAD) -> (Q64, Q128) {
  %0 = kiln.attention %q, %k, %v {scale = 0.125 : f64, mask = #kiln.mask<causal>} : (Q64, K64, K64) -> Q64
  %1 = kiln.attention %q2, %k2, %v2 key_padding_mask(%pad) {scale = 0.088 : f64, mask = #kiln.mask<causal>} : (Q128, K128, K128, PAD) -> Q128
  return %0, %1 : Q64, Q128
})";
  const std::vector<std::pair<std::string, std::string>> types = {{"Q64", "tensor<?x8x?x64xf32, #kiln.dims<[b, s]>>"},
                          {"K64", "tensor<?x1x?x64xf32, #kiln.dims<[b, p + s]>>"},
                          {"Q128", "tensor<?x4x?x128xf32, #kiln.dims<[b, s]>>"},
                          {"K128", "tensor<?x2x?x128xf32, #kiln.dims<[b, p + s]>>"},
                          {"PAD", "tensor<?x?xi64, #kiln.dims<[b, p + s]>>"}};
  for (const auto &[from, to] : types)
    src = replaceAll(src, from, to);
  return src;
}

/// One causal attention of TinyLlama's head dim 64 (scale 1/8): `hq` query heads on `hkv` KV heads.
std::string attentionTinyLlamaSource(int64_t hq, int64_t hkv) {
  const std::string q = "tensor<?x" + std::to_string(hq) + "x?x64xf32, #kiln.dims<[b, s]>>",
                    kv = "tensor<?x" + std::to_string(hkv) + "x?x64xf32, #kiln.dims<[b, p + s]>>";
  return "func.func @tl(%q: " + q + ", %k: " + kv + ", %v: " + kv + ") -> " + q + " {\n" +
         "  %0 = kiln.attention %q, %k, %v {scale = 0.125 : f64, mask = #kiln.mask<causal>} : (" + q + ", " + kv +
         ", " + kv + ") -> " + q + "\n  return %0 : " + q + "\n}";
}

/// Queries in [-4, 4]: scores up to about 10, so a block's maximum moves and the running sums rescale.
std::vector<double> peakyQueries(const std::vector<int64_t> &shape, const Bindings &, std::mt19937 &rng) {
  std::vector<double> v(size_t(numElements(shape)));
  std::uniform_real_distribution<double> real(-4, 4);
  for (double &x : v)
    x = real(rng);
  return v;
}

/// Prefill steps for the cooperative-matrix tiles: 8, 77 (two batch rows), 200 and 513 query rows over 1000
/// keys (chunks after p cached rows: rows not a multiple of a tile's, keys not of a block), a 33-row prefill.
const std::vector<Bindings> kAttentionCmShapes = {{{"b", 1}, {"s", 8}, {"p", 992}},
                                                  {{"b", 2}, {"s", 77}, {"p", 923}},
                                                  {{"b", 1}, {"s", 33}, {"p", 0}},
                                                  {{"b", 1}, {"s", 200}, {"p", 800}},
                                                  {{"b", 1}, {"s", 513}, {"p", 487}}};

// Prefill attention on cooperative-matrix tiles (attention_tile_cm.glsl) with the fragment operations emulated
// in plain GLSL (CM_EMULATE), on lavapipe against the interpreter: head dims 64 and 128 (GQA 8 and 2) at every
// shape of kAttentionCmShapes; 80 (GQA 8), 48 / 40 (GQA 3) and 256 (GQA 1) with causal, windows, key padding,
// bias + softcap at the shorter ones (lavapipe runs the emulated fragments slowly). Head dim 256 takes the f32
// tiles in lavapipe's 32 KiB of shared memory (its smallest tile, 16 rows x 16 keys, needs about 42 KiB; the
// 48 KiB of an NVIDIA GPU hold it: AttentionExportGpuCases). Only the intrinsics are left to the GPU. Bound 5e-3:
// Q, K, P and V are rounded to f16.
TEST_F(SpirvCodegenTest, AttentionCooperativeMatrixEmulated) {
  target.emulateCooperativeMatrix = true;
  target.cooperativeMatrixAttention = true;
  compile(attentionCmSource());
  for (auto &[op, k] : kernels)
    EXPECT_NE(k.name.find("_tilecmemu"), std::string::npos) << k.name;
  for (const Bindings &b : kAttentionCmShapes) {
    if (b.at("s") == 513) // head dim 64 alone: one emulated dispatch of both would take lavapipe long
      compile(attentionTinyLlamaSource(8, 1));
    check(b, {{0, peakyQueries}, {6, attentionPadding}}, 5e-3);
  }
  compile(attentionAwkwardSource());
  for (auto &[op, k] : kernels)
    EXPECT_NE(k.name.find(k.name.find("_d256") != std::string::npos ? "_tile16x8" : "_tilecmemu"), std::string::npos)
        << k.name;
  for (size_t x = 0; x < 3; ++x)
    check(kAttentionCmShapes[x], {{3, attentionPadding}}, 5e-3);
  // Without the plan's request (f32 weights), the f32 tiles.
  target.cooperativeMatrixAttention = false;
  compile(attentionCmSource());
  for (auto &[op, k] : kernels)
    EXPECT_EQ(k.name.find("_tilecm"), std::string::npos) << k.name;
}

TEST_F(SpirvCodegenTest, LimitsAndReasons) {
  std::string src = R"(
func.func @limits(%q: tensor<1x8x?x256xf32, #kiln.dims<[s]>>, %k: tensor<1x4x?x256xf32, #kiln.dims<[p + s]>>,
                  %x: tensor<?x3xf32, #kiln.dims<[s]>>, %y: tensor<?x40000xf32, #kiln.dims<[s]>>) -> (tensor<1x8x?x256xf32, #kiln.dims<[s]>>, tensor<?x3xf32, #kiln.dims<[s]>>, tensor<?x3xf32, #kiln.dims<[s]>>) {
  %t = kiln.weight "embed" : tensor<40000x1024xf32>
  %0 = kiln.attention %q, %k, %k {scale = 0.0625 : f64, mask = #kiln.mask<causal>} : (tensor<1x8x?x256xf32, #kiln.dims<[s]>>, tensor<1x4x?x256xf32, #kiln.dims<[p + s]>>, tensor<1x4x?x256xf32, #kiln.dims<[p + s]>>) -> tensor<1x8x?x256xf32, #kiln.dims<[s]>>
  %1 = kiln.matmul %y, %t {transpose_b = false} : (tensor<?x40000xf32, #kiln.dims<[s]>>, tensor<40000x1024xf32>) -> tensor<?x1024xf32, #kiln.dims<[s]>>
  %2 = kiln.neg %x : tensor<?x3xf32, #kiln.dims<[s]>> -> tensor<?x3xf32, #kiln.dims<[s]>>
  %h = kiln.convert %x : tensor<?x3xf32, #kiln.dims<[s]>> -> tensor<?x3xf16, #kiln.dims<[s]>>
  %3 = kiln.convert %h : tensor<?x3xf16, #kiln.dims<[s]>> -> tensor<?x3xf32, #kiln.dims<[s]>>
  return %0, %2, %3 : tensor<1x8x?x256xf32, #kiln.dims<[s]>>, tensor<?x3xf32, #kiln.dims<[s]>>, tensor<?x3xf32, #kiln.dims<[s]>>
})";
  auto mod = mlir::parseSourceString<mlir::ModuleOp>(src, &context, "limits.mlir");
  ASSERT_TRUE(mod);
  auto f = *mod->getOps<mlir::func::FuncOp>().begin();
  std::vector<mlir::Operation *> ops;
  for (mlir::Operation &op : f.getBody().front())
    ops.push_back(&op);
  mlir::Operation *attention = ops[1], *matmul = ops[2], *neg = ops[3], *toF16 = ops[4];
  // head_dim 256 on a 16 KiB profile: the online-softmax variant needs ~1.3 KiB and fits.
  codegen::SpirvTarget generic;
  generic.maxSharedMemory = 16384;
  generic.maxWorkgroupInvocations = 128;
  EXPECT_EQ(codegen::spirvUnsupportedReason(attention, generic), "");
  StatusOr<codegen::SpirvKernel> k = codegen::generateSpirvKernel(attention, kSymbols, generic);
  ASSERT_TRUE(k.ok()) << k.status().message();
  EXPECT_LE(k->sharedMemoryBytes, 16384u);
  // A tiny shared memory: reported with the numbers.
  codegen::SpirvTarget tiny;
  tiny.maxSharedMemory = 512;
  EXPECT_NE(codegen::spirvUnsupportedReason(attention, tiny).find("shared memory"), std::string::npos)
      << codegen::spirvUnsupportedReason(attention, tiny);
  // A 164 MB weight is over lavapipe's 128 MiB maxStorageBufferRange.
  EXPECT_NE(codegen::spirvUnsupportedReason(matmul, target).find("maxStorageBufferRange"), std::string::npos);
  StatusOr<codegen::SpirvKernel> big = codegen::generateSpirvKernel(matmul, kSymbols, target);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("kiln.matmul"), std::string::npos) << big.status().message();
  // f16 needs 16-bit storage.
  EXPECT_EQ(codegen::spirvUnsupportedReason(neg, generic), "");
  codegen::SpirvTarget no16;
  EXPECT_NE(codegen::spirvUnsupportedReason(toF16, no16).find("16-bit"), std::string::npos);
  // An unknown symbol is an error naming it.
  StatusOr<codegen::SpirvKernel> bad = codegen::generateSpirvKernel(neg, {"b", "p"}, target);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'s'"), std::string::npos) << bad.status().message();
}

// GEMV (M <= 4, transpose_b): odd K and N, broadcast batch; K a multiple of 8 takes the vector loads.
TEST_F(SpirvCodegenTest, Gemv) {
  std::string src = R"(
func.func @gemv(%x: tensor<1x1001xf32>, %w: tensor<37x1001xf32>, %y: tensor<?x1x1x48xf32, #kiln.dims<[b]>>, %v: tensor<3x5x48xf32>,
                %a: tensor<?x264xf32, #kiln.dims<[s]>>, %c: tensor<37x264xf32>) -> (
    tensor<1x37xf32>, tensor<?x3x1x5xf32, #kiln.dims<[b]>>, tensor<?x37xf32, #kiln.dims<[s]>>) {
  %0 = kiln.matmul %x, %w {transpose_b = true} : (tensor<1x1001xf32>, tensor<37x1001xf32>) -> tensor<1x37xf32>
  %1 = kiln.matmul %y, %v {transpose_b = true} : (tensor<?x1x1x48xf32, #kiln.dims<[b]>>, tensor<3x5x48xf32>) -> tensor<?x3x1x5xf32, #kiln.dims<[b]>>
  %2 = kiln.matmul %a, %c {transpose_b = true} : (tensor<?x264xf32, #kiln.dims<[s]>>, tensor<37x264xf32>) -> tensor<?x37xf32, #kiln.dims<[s]>>
  return %0, %1, %2 : tensor<1x37xf32>, tensor<?x3x1x5xf32, #kiln.dims<[b]>>, tensor<?x37xf32, #kiln.dims<[s]>>
})";
  for (bool subgroups : {true, false}) {
    SCOPED_TRACE(subgroups ? "subgroupAdd" : "shared-memory tree");
    target.subgroupArithmetic = subgroups;
    compile(src);
    for (auto &[op, k] : kernels) {
      EXPECT_EQ(k.name.rfind("matmul_tb_gemv", 0), 0u) << k.name;
      EXPECT_EQ(k.name.find("_sg") != std::string::npos, subgroups) << k.name;
    }
    for (const Bindings &b : kShapes)
      check(b);
  }
}

/// transpose_b matmuls x [s, K] . w [N, K]^T, one per (N, K) of `shapes`, with weights of `weightType`
/// (f32, or f16 / bf16 read through a kiln.convert the tests fold: read in place, as compiled plans do).
std::string gemvSource(const std::vector<std::pair<int64_t, int64_t>> &shapes, const std::string &weightType) {
  std::string args, results, body, ret, types;
  for (size_t i = 0; i < shapes.size(); ++i) {
    std::string n = std::to_string(shapes[i].first), k = std::to_string(shapes[i].second), id = std::to_string(i);
    std::string x = "tensor<?x" + k + "xf32, #kiln.dims<[s]>>", y = "tensor<?x" + n + "xf32, #kiln.dims<[s]>>";
    std::string w = "tensor<" + n + "x" + k + "x";
    args += (i ? ", " : "") + std::string("%x") + id + ": " + x + ", %w" + id + ": " + w + weightType + ">";
    std::string b = "%w" + id;
    if (weightType != "f32") {
      body += "  %c" + id + " = kiln.convert %w" + id + " : " + w + weightType + "> -> " + w + "f32>\n";
      b = "%c" + id;
    }
    body += "  %y" + id + " = kiln.matmul %x" + id + ", " + b + " {transpose_b = true} : (" + x + ", " + w +
            "f32>) -> " + y + "\n";
    ret += (i ? ", " : "") + std::string("%y") + id;
    types += (i ? ", " : "") + y;
  }
  return "func.func @gemvs(" + args + ") -> (" + types + ") {\n" + body + "  return " + ret + " : " + types + "\n}";
}

// The GEMV's variants on awkward sizes: 1, 2 or 4 output columns per team (gemvSplit: few rows get narrower
// teams), K not a multiple of 8 (scalar loads) or of the team's stride (the two-step loop's single last step),
// N not a multiple of the columns per workgroup, M = 1..5 (5: the tiles), f32 / f16 / bf16 weights, for
// lavapipe's 8-wide subgroups and for a 32-wide profile (the kernel adapts to the device's subgroups).
TEST_F(SpirvCodegenTest, GemvVariants) {
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 8},    {3, 24},     {5, 1001},  {37, 2056},
                                                           {130, 40}, {256, 2048}, {600, 1032}, {67, 1544},
                                                           {2048, 64}, {4100, 16}};
  foldWeightConverts = true;
  for (uint32_t subgroupSize : {8u, 32u})
    for (const char *weights : {"f32", "f16", "bf16"}) {
      SCOPED_TRACE(std::string(weights) + " weights, subgroups of " + std::to_string(subgroupSize));
      target.subgroupSize = subgroupSize;
      compile(gemvSource(shapes, weights));
      std::set<char> columns;
      for (auto &[op, k] : kernels)
        if (mlir::isa<ir::MatmulOp>(op)) {
          ASSERT_EQ(k.name.rfind("matmul_tb_gemv", 0), 0u) << k.name;
          columns.insert(k.name[14]);
        }
      if (subgroupSize == 32) // few rows: narrower teams; many: 4 columns
        EXPECT_EQ(columns, (std::set<char>{'1', '2', '4'}));
      for (int64_t s : subgroupSize == 8 ? std::vector<int64_t>{1, 2, 3, 4, 5} : std::vector<int64_t>{1, 4, 5})
        check({{"b", 1}, {"s", s}, {"p", 0}});
    }
}

std::string matmulGroupSource(const std::vector<int64_t> &ns, int64_t k, const std::string &weightType, bool siluMul);

// The GEMV-only variant the runtime dispatches for steps of at most kSpirvGemvRows rows (SpirvKernel::smallRows):
// matmuls and groups (with and without silu_mul) whose rows are symbolic name their rows and get a variant without
// tiles (no cooperative-matrix block even where the target has them), equal to the interpreter at s = 1..4.
TEST_F(SpirvCodegenTest, GemvOnlyVariant) {
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{5, 1001}, {37, 2056}, {130, 40}, {600, 1032}};
  foldWeightConverts = true;
  target.cooperativeMatrix = true; // ignored by the variant; 32-wide subgroups also get tensor-core tiles
  target.emulateCooperativeMatrix = true;
  for (uint32_t subgroupSize : {8u, 32u})
    for (const std::string &src : {gemvSource(shapes, "f16"), matmulGroupSource({200, 40, 40}, 264, "f32", false),
                                   matmulGroupSource({67, 67}, 1001, "bf16", true)}) {
      SCOPED_TRACE("subgroups of " + std::to_string(subgroupSize));
      target.subgroupSize = subgroupSize;
      target.smallRowsVariant = false;
      compile(src);
      auto isMatmul = [](mlir::Operation *op) { return mlir::isa<ir::MatmulOp, ir::MatmulGroupOp>(op); };
      for (auto &[op, k] : kernels) {
        if (!isMatmul(op))
          continue;
        ASSERT_TRUE(k.smallRows.has_value()) << k.name;
        EXPECT_EQ(k.name.find("_only"), std::string::npos) << k.name;
      }
      target.smallRowsVariant = true;
      compile(src);
      for (auto &[op, k] : kernels) {
        if (!isMatmul(op))
          continue;
        EXPECT_NE(k.name.find("_gemv"), std::string::npos) << k.name;
        EXPECT_NE(k.name.find("_only"), std::string::npos) << k.name;
        EXPECT_EQ(k.name.find("coopmat"), std::string::npos) << k.name;
        EXPECT_FALSE(k.smallRows.has_value()) << k.name;
      }
      for (int64_t s : {1, 2, 3, 4})
        check({{"b", 1}, {"s", s}, {"p", 0}});
    }
  target.smallRowsVariant = false;
}

/// x [s, K] with weights W_s [N_s, K] of `weightType` (converted to f32, folded by the test: read in place) as
/// one kiln.matmul_group, with silu_mul or not.
std::string matmulGroupSource(const std::vector<int64_t> &ns, int64_t k, const std::string &weightType, bool siluMul) {
  std::string x = "tensor<?x" + std::to_string(k) + "xf32, #kiln.dims<[s]>>", args = "%x: " + x, body, ws, wTypes;
  for (size_t i = 0; i < ns.size(); ++i) {
    std::string id = std::to_string(i), w = "tensor<" + std::to_string(ns[i]) + "x" + std::to_string(k) + "x";
    args += ", %w" + id + ": " + w + weightType + ">";
    std::string v = "%w" + id;
    if (weightType != "f32") {
      body += "  %c" + id + " = kiln.convert %w" + id + " : " + w + weightType + "> -> " + w + "f32>\n";
      v = "%c" + id;
    }
    ws += ", " + v;
    wTypes += ", " + w + "f32>";
  }
  std::string results;
  for (size_t i = 0; i < (siluMul ? 1 : ns.size()); ++i)
    results += (i ? ", " : "") + std::string("tensor<?x") + std::to_string(ns[i]) + "xf32, #kiln.dims<[s]>>";
  std::string names;
  for (size_t i = 0; i < (siluMul ? 1 : ns.size()); ++i)
    names += (i ? ", %y" : "%y") + std::to_string(i);
  body += "  " + names + " = kiln.matmul_group %x" + ws + " {silu_mul = " + (siluMul ? "true" : "false") +
          "} : (" + x + wTypes + ") -> (" + results + ")\n";
  return "func.func @group(" + args + ") -> (" + results + ") {\n" + body + "  return " + names + " : " + results +
         "\n}";
}

// kiln.matmul_group against the interpreter: Q/K/V-like segments of different N (not multiples of the
// columns per workgroup) and SwiGLU's gate/up with silu_mul, K a multiple of 8 or not, M = 1..5 (GEMV) and
// 70 (tiles), f32 / f16 / bf16 weights, lavapipe's subgroups and a 32-wide profile, and without subgroup
// arithmetic.
TEST_F(SpirvCodegenTest, MatmulGroup) {
  struct GroupCase {
    std::vector<int64_t> ns;
    int64_t k;
    bool siluMul;
  };
  const std::vector<GroupCase> cases = {{{200, 40, 40}, 264, false}, {{37, 5}, 203, false},
                                        {{150, 150}, 264, true},     {{67, 67}, 1001, true},
                                        {{256, 64, 64, 8}, 72, false}};
  foldWeightConverts = true;
  for (uint32_t subgroupSize : {8u, 32u})
    for (const char *weights : {"f32", "f16", "bf16"})
      for (const GroupCase &c : cases) {
        SCOPED_TRACE(std::string(weights) + " weights, subgroups of " + std::to_string(subgroupSize) +
                     (c.siluMul ? ", silu_mul" : ""));
        target.subgroupSize = subgroupSize;
        compile(matmulGroupSource(c.ns, c.k, weights, c.siluMul));
        for (auto &[op, k] : kernels)
          if (mlir::isa<ir::MatmulGroupOp>(op)) {
            EXPECT_EQ(k.name.rfind("matmul_group" + std::to_string(c.ns.size()) + (c.siluMul ? "_silu_mul" : ""), 0),
                      0u) << k.name;
            // 16-bit weights read in place (the folded converts): B's storage in the name.
            EXPECT_EQ(k.name.find(std::string("_w") + weights + "_") != std::string::npos, std::string(weights) != "f32")
                << k.name;
          }
        for (int64_t s : subgroupSize == 8 ? std::vector<int64_t>{1, 2, 3, 4, 5, 70} : std::vector<int64_t>{1, 70})
          check({{"b", 1}, {"s", s}, {"p", 0}});
      }
  // Without subgroup arithmetic: the GEMV's shared-memory tree (one team per workgroup), f16 weights.
  target.subgroupSize = 8;
  target.subgroupArithmetic = false;
  for (const GroupCase &c : cases) {
    SCOPED_TRACE(std::string("shared-memory tree") + (c.siluMul ? ", silu_mul" : ""));
    compile(matmulGroupSource(c.ns, c.k, "f16", c.siluMul));
    for (auto &[op, k] : kernels)
      if (mlir::isa<ir::MatmulGroupOp>(op))
        EXPECT_EQ(k.name.find("_sg"), std::string::npos) << k.name;
    for (int64_t s : {1, 3, 70})
      check({{"b", 1}, {"s", s}, {"p", 0}});
  }
}

/// The folds of kiln-fuse-matmul-norms on one group: the lhs's RMSNorm (norm(w), w through a convert from
/// `weightType` too: read in place) and / or the residual (one weight).
struct GroupFolds {
  bool norm = false, unitOffset = false, residual = false;
};

/// matmulGroupSource's group with `folds`: x [s, K] and, with a residual, r of the one result's type.
std::string foldedGroupSource(const std::vector<int64_t> &ns, int64_t k, const std::string &weightType, bool siluMul,
                              const GroupFolds &folds) {
  std::string src = matmulGroupSource(ns, k, weightType, siluMul);
  const std::string ks = std::to_string(k), y = "tensor<?x" + std::to_string(ns[0]) + "xf32, #kiln.dims<[s]>>";
  std::string args, converts, operands, types, attrs;
  if (folds.norm) {
    args += ", %nw: tensor<" + ks + "x" + weightType + ">";
    std::string v = "%nw";
    if (weightType != "f32") {
      converts += "  %nwc = kiln.convert %nw : tensor<" + ks + "x" + weightType + "> -> tensor<" + ks + "xf32>\n";
      v = "%nwc";
    }
    operands += " norm(" + v + ")";
    types += ", tensor<" + ks + "xf32>";
    attrs += ", norm_eps = 1.0e-5 : f64" + std::string(folds.unitOffset ? ", norm_unit_offset" : "");
  }
  if (folds.residual) {
    args += ", %r: " + y;
    operands += " residual(%r)";
    types += ", " + y;
  }
  // The op's pieces after its "kiln.matmul_group", the arguments before the signature's ") -> (".
  auto insertBefore = [&](const std::string &at, const std::string &text, size_t from) {
    src.insert(src.find(at, from), text);
  };
  insertBefore(") -> (", args, 0);
  insertBefore("  %y0", converts, 0);
  const std::string silu = std::string(" {silu_mul = ") + (siluMul ? "true" : "false");
  insertBefore(silu, operands, src.find("kiln.matmul_group"));
  insertBefore("} : (tensor", attrs, src.find("kiln.matmul_group"));
  insertBefore(") -> (tensor", types, src.find("kiln.matmul_group"));
  return src;
}

// The folds of kiln-fuse-matmul-norms against the interpreter: the RMSNorm prologue (plain and (1 + w)) on
// Q/K/V-like segments and on silu_mul's gate/up, the residual epilogue on one weight (o / down), both on one
// weight (an lm_head), K a multiple of 8 or not, M = 1..5 (GEMV), 77 (tiles, several blocks), f32 / f16 /
// bf16 weights (the norm weight too), lavapipe's subgroups, a 32-wide profile and no subgroup arithmetic.
TEST_F(SpirvCodegenTest, MatmulGroupFolds) {
  struct FoldCase {
    std::vector<int64_t> ns;
    int64_t k;
    bool siluMul;
    GroupFolds folds;
  };
  const std::vector<FoldCase> cases = {{{200, 40, 40}, 264, false, {true, false, false}},
                                       {{67, 67}, 1001, true, {true, false, false}},
                                       {{37}, 203, false, {false, false, true}},
                                       {{150}, 2056, false, {true, true, true}},
                                       {{130, 5, 5}, 77, false, {true, true, false}}};
  foldWeightConverts = true;
  // The kernel, and with f16 weights also the GEMV-only variant decode steps take (at s <= 4).
  auto run = [&](const FoldCase &c, const char *weights, const std::vector<int64_t> &rows) {
    const std::vector<bool> variants =
        std::string(weights) == "f16" ? std::vector<bool>{false, true} : std::vector<bool>{false};
    for (bool gemvOnly : variants) {
      target.smallRowsVariant = gemvOnly;
      compile(foldedGroupSource(c.ns, c.k, weights, c.siluMul, c.folds));
      for (auto &[op, k] : kernels)
        if (mlir::isa<ir::MatmulGroupOp>(op)) {
          EXPECT_EQ(k.name.find("_norm") != std::string::npos, c.folds.norm) << k.name;
          EXPECT_EQ(k.name.find("_res") != std::string::npos, c.folds.residual) << k.name;
          EXPECT_EQ(k.name.find("_only") != std::string::npos, gemvOnly) << k.name;
        }
      for (int64_t s : rows)
        if (!gemvOnly || s <= 4)
          check({{"b", 1}, {"s", s}, {"p", 0}});
    }
    target.smallRowsVariant = false;
  };
  for (uint32_t subgroupSize : {8u, 32u})
    for (const char *weights : {"f32", "f16", "bf16"})
      for (const FoldCase &c : cases) {
        SCOPED_TRACE(std::string(weights) + " weights, subgroups of " + std::to_string(subgroupSize) + ", N " +
                     std::to_string(c.ns[0]) + ", K " + std::to_string(c.k));
        target.subgroupSize = subgroupSize;
        run(c, weights, subgroupSize == 8 ? std::vector<int64_t>{1, 2, 3, 4, 5, 77} : std::vector<int64_t>{1, 77});
      }
  target.subgroupSize = 8;
  target.subgroupArithmetic = false;
  for (const FoldCase &c : cases) {
    SCOPED_TRACE("shared-memory tree, N " + std::to_string(c.ns[0]));
    run(c, "f16", {1, 3, 77});
  }
}

// f16 / bf16 weights read in place by the matmul (a folded kiln.convert, passes/DeviceWeights.h): the GEMV's
// vector loads (K = 264, f16 and bf16) and scalar loads (K = 203), the tile path (M = s up to 130, N = 150 not a multiple
// of 64), gathers from f16 and bf16 tables, rms_norm / layer_norm weights and biases; the result must equal
// convert-then-f32.
TEST_F(SpirvCodegenTest, Float16WeightsInPlace) {
  std::string src = R"(
func.func @w16(%x: tensor<?x264xf32, #kiln.dims<[s]>>, %w: tensor<150x264xf16>, %y: tensor<?x203xf32, #kiln.dims<[s]>>,
               %v: tensor<150x203xbf16>, %t: tensor<50x16xf16>, %i: tensor<?xi64, #kiln.dims<[s]>>,
               %u: tensor<150x264xbf16>, %tb: tensor<50x16xbf16>, %g: tensor<264xf16>, %bb: tensor<264xbf16>) -> (
    tensor<?x150xf32, #kiln.dims<[s]>>, tensor<?x150xf32, #kiln.dims<[s]>>, tensor<?x16xf32, #kiln.dims<[s]>>,
    tensor<?x150xf32, #kiln.dims<[s]>>, tensor<?x16xf32, #kiln.dims<[s]>>, tensor<?x264xf32, #kiln.dims<[s]>>,
    tensor<?x264xf32, #kiln.dims<[s]>>) {
  %wf = kiln.convert %w : tensor<150x264xf16> -> tensor<150x264xf32>
  %0 = kiln.matmul %x, %wf {transpose_b = true} : (tensor<?x264xf32, #kiln.dims<[s]>>, tensor<150x264xf32>) -> tensor<?x150xf32, #kiln.dims<[s]>>
  %vf = kiln.convert %v : tensor<150x203xbf16> -> tensor<150x203xf32>
  %1 = kiln.matmul %y, %vf {transpose_b = true} : (tensor<?x203xf32, #kiln.dims<[s]>>, tensor<150x203xf32>) -> tensor<?x150xf32, #kiln.dims<[s]>>
  %tf = kiln.convert %t : tensor<50x16xf16> -> tensor<50x16xf32>
  %2 = kiln.gather %tf, %i : (tensor<50x16xf32>, tensor<?xi64, #kiln.dims<[s]>>) -> tensor<?x16xf32, #kiln.dims<[s]>>
  %uf = kiln.convert %u : tensor<150x264xbf16> -> tensor<150x264xf32>
  %3 = kiln.matmul %x, %uf {transpose_b = true} : (tensor<?x264xf32, #kiln.dims<[s]>>, tensor<150x264xf32>) -> tensor<?x150xf32, #kiln.dims<[s]>>
  %tbf = kiln.convert %tb : tensor<50x16xbf16> -> tensor<50x16xf32>
  %4 = kiln.gather %tbf, %i : (tensor<50x16xf32>, tensor<?xi64, #kiln.dims<[s]>>) -> tensor<?x16xf32, #kiln.dims<[s]>>
  %gf = kiln.convert %g : tensor<264xf16> -> tensor<264xf32>
  %bf = kiln.convert %bb : tensor<264xbf16> -> tensor<264xf32>
  %5 = kiln.rms_norm %x, %gf {eps = 1.0e-6 : f64, unit_offset = false} : (tensor<?x264xf32, #kiln.dims<[s]>>, tensor<264xf32>) -> tensor<?x264xf32, #kiln.dims<[s]>>
  %6 = kiln.layer_norm %x, %gf, %bf {eps = 1.0e-12 : f64} : (tensor<?x264xf32, #kiln.dims<[s]>>, tensor<264xf32>, tensor<264xf32>) -> tensor<?x264xf32, #kiln.dims<[s]>>
  return %0, %1, %2, %3, %4, %5, %6 : tensor<?x150xf32, #kiln.dims<[s]>>, tensor<?x150xf32, #kiln.dims<[s]>>, tensor<?x16xf32, #kiln.dims<[s]>>,
    tensor<?x150xf32, #kiln.dims<[s]>>, tensor<?x16xf32, #kiln.dims<[s]>>, tensor<?x264xf32, #kiln.dims<[s]>>,
    tensor<?x264xf32, #kiln.dims<[s]>>
})";
  foldWeightConverts = true;
  compile(src);
  int folded = 0;
  for (auto &[op, k] : kernels)
    if (mlir::isa<ir::MatmulOp>(op)) {
      EXPECT_TRUE(k.name.find("_wf16_") != std::string::npos || k.name.find("_wbf16_") != std::string::npos)
          << k.name; // B stored as f16 / bf16
      ++folded;
    }
  EXPECT_EQ(folded, 3);
  for (int64_t s : {1, 3, 4, 5, 70, 130})
    check({{"b", 1}, {"s", s}, {"p", 0}}, {{5, [](const std::vector<int64_t> &shape, const Bindings &, std::mt19937 &rng) {
      std::vector<double> ids(static_cast<size_t>(shape[0]));
      for (double &d : ids)
        d = double(rng() % 50);
      return ids;
    }}});
}

// A device with VK_KHR_cooperative_matrix (the nvidia-h200 profile): matmuls with f16 weights take the
// cooperative-matrix tiles for M > 4, written with GL_NV_cooperative_matrix, validated, and rewritten to
// SPV_KHR_cooperative_matrix (what the runtime enables); f32 weights keep the scalar tiles. Lavapipe has no
// cooperative matrices, so these kernels run on the GPU only (bench/h200-bench.sh, RESULTS.md); here the
// module's encoding is checked word by word.
TEST_F(SpirvCodegenTest, CooperativeMatrixKernelIsKhr) {
  foldWeightConverts = true;
  compile(replaceAll(replaceAll(R"(
func.func @cm(%x: tensor<?x264xf32, #kiln.dims<[s]>>, %w: tensor<150x264xf16>, %v: tensor<150x264xf32>) -> (
    tensor<?x150xf32, #kiln.dims<[s]>>, tensor<?x150xf32, #kiln.dims<[s]>>) {
  %wf = kiln.convert %w : tensor<150x264xf16> -> tensor<150x264xf32>
  %0 = kiln.matmul %x, %wf {transpose_b = true} : (!X, tensor<150x264xf32>) -> !Y
  %1 = kiln.matmul %x, %v {transpose_b = true} : (!X, tensor<150x264xf32>) -> !Y
  return %0, %1 : !Y, !Y
})", "!X", "tensor<?x264xf32, #kiln.dims<[s]>>"), "!Y", "tensor<?x150xf32, #kiln.dims<[s]>>"));
  mlir::Operation *f16Matmul = nullptr, *f32Matmul = nullptr;
  for (mlir::Operation &op : func.getBody().front())
    if (mlir::isa<ir::MatmulOp>(op))
      (f16Matmul ? f32Matmul : f16Matmul) = &op;
  codegen::SpirvTarget gpu = target;
  gpu.cooperativeMatrix = true;
  gpu.subgroupSize = 32;
  gpu.maxSharedMemory = 49152;
  StatusOr<codegen::SpirvKernel> k = codegen::generateSpirvKernel(f16Matmul, kSymbols, gpu, storageOf(f16Matmul));
  ASSERT_TRUE(k.ok()) << k.status().message();
  EXPECT_NE(k->name.find("_coopmat"), std::string::npos) << k->name;
  std::map<uint32_t, int> opcodes;
  bool khrCapability = false, vulkanMemoryModel = false;
  for (size_t pos = 5; pos < k->spirv.size(); pos += k->spirv[pos] >> 16) {
    uint32_t op = k->spirv[pos] & 0xffff;
    ++opcodes[op];
    khrCapability |= op == 17 && k->spirv[pos + 1] == 6022;  // OpCapability CooperativeMatrixKHR
    vulkanMemoryModel |= op == 14 && k->spirv[pos + 2] == 3; // OpMemoryModel Logical Vulkan
    if (op == 4456)                                          // OpTypeCooperativeMatrixKHR, with its Use operand
      EXPECT_EQ(k->spirv[pos] >> 16, 7u);
  }
  EXPECT_TRUE(khrCapability);
  EXPECT_TRUE(vulkanMemoryModel);
  EXPECT_EQ(opcodes[4456], 3); // A 16x16, B 16x8, accumulator 16x8
  EXPECT_GT(opcodes[4457], 0); // loads
  EXPECT_GT(opcodes[4458], 0); // stores
  EXPECT_GT(opcodes[4459], 0); // multiply-adds
  for (uint32_t nv = 5358; nv <= 5362; ++nv)
    EXPECT_EQ(opcodes[nv], 0) << "NV opcode " << nv << " left";
  if (const char *dump = std::getenv("KILN_COOPMAT_SPV")) {
    std::ofstream out(dump, std::ios::binary);
    out.write(reinterpret_cast<const char *>(k->spirv.data()), std::streamsize(k->spirv.size() * 4));
  }
  StatusOr<codegen::SpirvKernel> scalar = codegen::generateSpirvKernel(f32Matmul, kSymbols, gpu, storageOf(f32Matmul));
  ASSERT_TRUE(scalar.ok()) << scalar.status().message();
  EXPECT_EQ(scalar->name.find("_coopmat"), std::string::npos) << scalar->name;
  // Without the extension (lavapipe): the scalar tiles, and the kernel runs here.
  EXPECT_EQ(kernels.at(f16Matmul).name.find("_coopmat"), std::string::npos);
}

/// One transpose_b matmul x [s, K] . w [N, K]^T: x and the result of dtype `acts` (f32 or f16), w stored as
/// `weights` (f32, f16 or bf16; a 16-bit w under f32 activations is read in place through a folded convert).
std::string matmulSource(int64_t n, int64_t k, const std::string &weights, const std::string &acts) {
  std::string x = "tensor<?x" + std::to_string(k) + "x" + acts + ", #kiln.dims<[s]>>";
  std::string out = "tensor<?x" + std::to_string(n) + "x" + acts + ", #kiln.dims<[s]>>";
  std::string w = "tensor<" + std::to_string(n) + "x" + std::to_string(k);
  std::string body = "func.func @m(%x: " + x + ", %w: " + w + "x" + weights + ">) -> " + out + " {\n";
  std::string b = "%w";
  if (weights != acts) {
    body += "  %wf = kiln.convert %w : " + w + "x" + weights + "> -> " + w + "x" + acts + ">\n";
    b = "%wf";
  }
  body += "  %0 = kiln.matmul %x, " + b + " {transpose_b = true} : (" + x + ", " + w + "x" + acts + ">) -> " + out + "\n";
  return body + "  return %0 : " + out + "\n}";
}

/// The cooperative-matrix matmul cases both CooperativeMatrixEmulated (lavapipe) and ExportGpuCases (the GPU)
/// run: M, N, K not multiples of any block (M = 5, K = 80; K = 203: scalar loads), f16 / bf16 / f32 weights,
/// f16 activations and result (no direct stores), N % 4 == 0 (direct stores) and not.
struct CoopmatCase {
  int64_t n, k;
  const char *weights, *acts;
  std::vector<int64_t> rows;
};
const std::vector<CoopmatCase> kCoopmatCases = {
    {150, 264, "f16", "f32", {5, 70, 130}}, {301, 80, "bf16", "f32", {5, 64}}, {77, 203, "f32", "f32", {5, 70}},
    {150, 264, "f16", "f16", {7, 70}},      {264, 96, "bf16", "f32", {130}}};
/// The blocks they run with ("" = the compiler's choice for N): the warp layouts 2 x 4, 4 x 2 and 1 x 8, K
/// slices of 16, 32 and 64, one and two shared-memory stages (within lavapipe's 32 KiB of shared memory).
const std::vector<std::string> kCoopmatTiles = {"", "128x128x32", "128x64x16", "32x256x32", "64x64x64", "64x128x16x2"};

// The cooperative-matrix tiles with their fragment operations emulated in plain GLSL (CM_EMULATE), on lavapipe,
// against the interpreter: the tiling, staging, conversions and stores of every block on awkward sizes. Only
// the intrinsics themselves are left to the GPU (ExportGpuCases + kiln_spirv_replay). Bound 5e-3: A and B are
// rounded to f16 as they are staged.
TEST_F(SpirvCodegenTest, CooperativeMatrixEmulated) {
  target.emulateCooperativeMatrix = true;
  target.cooperativeMatrixF32Weights = true;
  foldWeightConverts = true;
  // Each block with two of the cases (lavapipe compiles every kernel anew: all pairs would take minutes).
  for (size_t t = 0; t < kCoopmatTiles.size(); ++t) {
    const std::string &tile = kCoopmatTiles[t];
    target.cooperativeMatrixTile = tile;
    for (size_t i : {t % kCoopmatCases.size(), (t + 2) % kCoopmatCases.size()}) {
      const CoopmatCase &c = kCoopmatCases[i];
      compile(matmulSource(c.n, c.k, c.weights, c.acts));
      for (auto &[op, k] : kernels)
        if (mlir::isa<ir::MatmulOp>(op))
          EXPECT_NE(k.name.find("_coopmatemu" + tile), std::string::npos) << k.name;
      for (int64_t rows : c.rows)
        check({{"b", 1}, {"s", rows}, {"p", 0}}, {}, 5e-3);
    }
  }
  // matmul_group on the blocks: Q/K/V-like segments (N % 4 == 0: each segment's blocks stored straight to its
  // result), and silu_mul, whose up pass reads back the gate pass's stores: staged (N = 150) and straight
  // (N = 152; the edge blocks staged).
  target.cooperativeMatrixTile = "";
  for (int64_t siluN : {int64_t(0), int64_t(150), int64_t(152)}) {
    SCOPED_TRACE(siluN ? "matmul_group silu_mul, N = " + std::to_string(siluN) : std::string("matmul_group"));
    compile(siluN ? matmulGroupSource({siluN, siluN}, 264, "f16", true)
                  : matmulGroupSource({200, 40, 40}, 264, "bf16", false));
    for (auto &[op, k] : kernels)
      if (mlir::isa<ir::MatmulGroupOp>(op))
        EXPECT_NE(k.name.find("_coopmatemu"), std::string::npos) << k.name;
    for (int64_t rows : {5, 70, 130})
      check({{"b", 1}, {"s", rows}, {"p", 0}}, {}, 5e-3);
  }
  // A block that does not fit the shared memory: the scalar tiles.
  target.cooperativeMatrixTile = "256x256x64";
  compile(matmulSource(150, 264, "f16", "f32"));
  for (auto &[op, k] : kernels)
    EXPECT_EQ(k.name.find("_coopmat"), std::string::npos) << k.name;
}

// The folds of kiln-fuse-matmul-norms on the emulated cooperative tiles (lavapipe): 1/rms per block (several
// blocks of rows, M not a multiple of the block) and the residual through the staged stores; blocks of 32, 64
// and 128 rows.
TEST_F(SpirvCodegenTest, MatmulGroupFoldsCoopmatEmulated) {
  target.emulateCooperativeMatrix = true;
  foldWeightConverts = true;
  for (const char *tile : {"", "32x64x32", "128x64x16"}) {
    target.cooperativeMatrixTile = tile;
    for (bool siluMul : {false, true}) {
      SCOPED_TRACE(std::string("block ") + tile + (siluMul ? ", silu_mul + norm" : ", norm + residual"));
      compile(siluMul ? foldedGroupSource({150, 150}, 264, "f16", true, {true, false, false})
                      : foldedGroupSource({77}, 203, "bf16", false, {true, true, true}));
      for (auto &[op, k] : kernels)
        if (mlir::isa<ir::MatmulGroupOp>(op))
          EXPECT_NE(k.name.find("_coopmatemu"), std::string::npos) << k.name;
      for (int64_t rows : {5, 70, 130})
        check({{"b", 1}, {"s", rows}, {"p", 0}}, {}, 5e-3);
    }
  }
}

// KILN_SPIRV_EXPORT=DIR: the folds of kiln-fuse-matmul-norms for a device like the nvidia-h200 profile, for
// kiln_spirv_replay on the GPU: a QKV group with its norm (512 + 64 + 64 rows, K 2048: TinyLlama's K), gate/up
// with silu_mul and the norm (704, K 2048), down with the residual (2048, K 704), and awkward sizes (K not a
// multiple of 8, N not of the rows per workgroup, (1 + w)), at decode (GEMV, M = 1..4) and on the cooperative
// tiles (M = 5, 70, 130). Without it: skipped.
TEST_F(SpirvCodegenTest, MatmulFoldsExportGpuCases) {
  const char *dir = std::getenv("KILN_SPIRV_EXPORT");
  if (!dir)
    GTEST_SKIP() << "set KILN_SPIRV_EXPORT=DIR to write the GPU cases for kiln_spirv_replay";
  useGpuExportTarget();
  struct GpuFoldCase {
    std::vector<int64_t> ns;
    int64_t k;
    bool siluMul;
    GroupFolds folds;
    std::vector<int64_t> rows;
  };
  // (N at a quarter or an eighth of TinyLlama's: the files stay near 15 MiB, beside ExportGpuCases' in one carry.)
  const std::vector<GpuFoldCase> cases = {{{512, 64, 64}, 2048, false, {true, false, false}, {1, 70}},
                                          {{704, 704}, 2048, true, {true, false, false}, {1}},
                                          {{2048}, 704, false, {false, false, true}, {3}},
                                          {{150, 37}, 203, false, {true, true, false}, {1, 2, 5, 70}},
                                          {{301}, 264, false, {true, false, true}, {1, 4, 130}}};
  int index = 1000; // after ExportGpuCases' files
  for (const GpuFoldCase &c : cases) {
    compile(foldedGroupSource(c.ns, c.k, "f16", c.siluMul, c.folds));
    for (mlir::Operation &op : func.getBody().front())
      if (mlir::isa<ir::MatmulGroupOp>(op))
        for (int64_t rows : c.rows)
          exportReplay(&op, "folds N=" + std::to_string(c.ns[0]) + " K=" + std::to_string(c.k), rows,
                       rows <= 4 ? 1e-5 : 5e-3, 0, dir, index);
  }
  std::printf("[ export   ] %d fold cases in %s\n", index - 1000, dir);
}

/// The GPU blocks ExportGpuCases writes cases for and bench/coopmat-gpu.sh times (all within 48 KiB of
/// shared memory beside the scalar tiles' 8 KiB).
const std::vector<std::string> kGpuCoopmatTiles = {"128x128x64", "128x256x32", "128x256x16x2", "64x128x32x2",
                                                   "64x128x64",  "128x64x64",  "64x64x64",     "64x64x64x2",
                                                   "32x64x64",   "32x64x64x2", "32x32x64",     "32x32x64x2"};

// KILN_SPIRV_EXPORT=DIR: kernels for a device like the nvidia-h200 profile (cooperative matrices, 32-wide
// subgroups) on awkward sizes, with their inputs and the interpreter's results, for kiln_spirv_replay on the GPU
// machine (ReplayCase.h): the cooperative-matrix tiles of the compiler's choice (M, N, K not multiples of the
// block, K not a multiple of 8: scalar loads; f16 activations), kCoopmatCases with the blocks of
// kGpuCoopmatTiles (f16 / bf16 / f32 weights), and the GEMV (f32 and f16 weights, M = 1..4). Without it: skipped.
TEST_F(SpirvCodegenTest, ExportGpuCases) {
  const char *dir = std::getenv("KILN_SPIRV_EXPORT");
  if (!dir)
    GTEST_SKIP() << "set KILN_SPIRV_EXPORT=DIR to write the GPU cases for kiln_spirv_replay";
  useGpuExportTarget();
  struct GpuCase {
    int64_t n, k;
    std::string weights, acts, tile;
    std::vector<int64_t> rows;
    double tolerance; // f16 rounding of A and B (cooperative matrices) or f32 sums (GEMV)
  };
  std::vector<GpuCase> cases = {
      {150, 264, "f16", "f32", "", {5, 64, 70, 130}, 5e-3}, {301, 203, "f16", "f32", "", {5, 70}, 5e-3},
      {520, 2056, "f16", "f32", "", {77}, 5e-3},           {1024, 2048, "f16", "f32", "", {256}, 5e-3},
      {64, 64, "f16", "f32", "", {64}, 5e-3},              {150, 264, "f16", "f16", "", {7, 70}, 5e-3},
      {1408, 2048, "f16", "f32", "", {1, 4}, 1e-5},        {67, 1032, "f32", "f32", "", {1, 2, 3, 4}, 1e-5},
      {37, 1001, "f16", "f32", "", {1, 3}, 1e-5},          {300, 40, "f32", "f32", "", {2}, 1e-5},
      // GEMV variants (gemvSplit): 1 / 2 / 4 columns per team, the two-step loop's last single step.
      {256, 2048, "f16", "f32", "", {1, 3}, 1e-5},         {600, 1032, "f32", "f32", "", {3}, 1e-5},
      {2048, 64, "f16", "f32", "", {1, 4}, 1e-5},          {4100, 16, "f32", "f32", "", {2}, 1e-5},
      {67, 1544, "f16", "f32", "", {4}, 1e-5}};
  // Each block with two of kCoopmatCases (all pairs would pass the 64 MiB a device call may carry).
  for (size_t t = 0; t < kGpuCoopmatTiles.size(); ++t)
    for (size_t i : {t % kCoopmatCases.size(), (t + 2) % kCoopmatCases.size()}) {
      const CoopmatCase &c = kCoopmatCases[i];
      cases.push_back({c.n, c.k, c.weights, c.acts, kGpuCoopmatTiles[t], c.rows, 5e-3});
    }
  int index = 0;
  for (const GpuCase &c : cases) {
    target.cooperativeMatrixTile = c.tile;
    target.cooperativeMatrixF32Weights = !c.tile.empty(); // the block cases cover f32 weights too
    compile(matmulSource(c.n, c.k, c.weights, c.acts));
    mlir::Operation *matmul = nullptr;
    for (mlir::Operation &op : func.getBody().front())
      if (mlir::isa<ir::MatmulOp>(op))
        matmul = &op;
    const codegen::SpirvKernel &k = kernels.at(matmul);
    // The path is M's, at run time; every 16-bit weight (and, in the block cases, f32 too) has the tiles.
    EXPECT_EQ(k.name.find("_coopmat" + c.tile) != std::string::npos, c.weights != "f32" || !c.tile.empty()) << k.name;
    for (int64_t rows : c.rows)
      exportReplay(matmul, "N=" + std::to_string(c.n) + " K=" + std::to_string(c.k), rows, c.tolerance,
                   c.acts == "f16" ? 1 : 0, dir, index);
  }
  // matmul_group with silu_mul (f16 weights): the GEMV and the cooperative tiles (the block chosen for N), whose
  // second segment reads the first's stores back.
  target.cooperativeMatrixTile = "";
  target.cooperativeMatrixF32Weights = false;
  for (int64_t n : {150, 600}) {
    const int64_t kdim = n == 150 ? 264 : 1032;
    compile(matmulGroupSource({n, n}, kdim, "f16", true));
    for (mlir::Operation &op : func.getBody().front())
      if (mlir::isa<ir::MatmulGroupOp>(op)) {
        EXPECT_NE(kernels.at(&op).name.find("_coopmat"), std::string::npos) << kernels.at(&op).name;
        for (int64_t rows : n == 150 ? std::vector<int64_t>{1, 3, 70, 130} : std::vector<int64_t>{1, 40})
          exportReplay(&op, "silu_mul N=" + std::to_string(n) + " K=" + std::to_string(kdim), rows,
                       rows <= 4 ? 1e-5 : 5e-3, 0, dir, index);
      }
  }
  std::printf("[ export   ] %d cases in %s\n", index, dir);
}

// KILN_SPIRV_EXPORT=DIR: attention for a device like the nvidia-h200 profile (32-wide subgroups, 48 KiB of
// shared memory) split over the KV length in one dispatch (the last chunk of a row combines it; steps of 5 to
// 7 rows take the one-row path unsplit, of 8 or more the tiles), for kiln_spirv_replay on the GPU: TinyLlama's heads (32 query heads on 4 KV heads,
// d 64) at decode over 1, 77, 600 and 2049 keys, 4 rows, a 70-row chunk (tiles, as the awkward 33-row step),
// and the awkward cases (AttentionAwkward) at their shapes but those over 1000 keys or more (the files stay
// small: TinyLlama's have those). Without it: skipped.
TEST_F(SpirvCodegenTest, AttentionExportGpuCases) {
  const char *dir = std::getenv("KILN_SPIRV_EXPORT");
  if (!dir)
    GTEST_SKIP() << "set KILN_SPIRV_EXPORT=DIR to write the GPU cases for kiln_spirv_replay";
  target.subgroupSize = 32;
  target.maxSharedMemory = 49152;
  const std::string tinyLlama = attentionTinyLlamaSource(32, 4);
  const std::vector<Bindings> tinyShapes = {{{"b", 1}, {"s", 1}, {"p", 0}},   {{"b", 1}, {"s", 1}, {"p", 76}},
                                            {{"b", 1}, {"s", 1}, {"p", 599}}, {{"b", 1}, {"s", 1}, {"p", 2048}},
                                            {{"b", 1}, {"s", 4}, {"p", 300}}, {{"b", 1}, {"s", 70}, {"p", 30}}};
  const std::vector<Bindings> awkwardShapes(kAttentionAwkwardShapes.begin() + 1,
                                            kAttentionAwkwardShapes.begin() + kAttentionAwkwardLongShapes);
  int index = 0;
  split = Split::OneDispatch;
  for (const auto &[source, shapes] : {std::pair<std::string, std::vector<Bindings>>{tinyLlama, tinyShapes},
                                       {attentionAwkwardSource(), awkwardShapes}}) {
      compile(source);
      size_t resultIndex = 0;
      for (mlir::Operation &op : func.getBody().front()) {
        if (!mlir::isa<ir::AttentionOp>(op))
          continue;
        for (const Bindings &b : shapes) {
          ReplayCase rc;
          replayCase(&op, resultIndex, b, rc);
          rc.name = kernels.at(&op).name + " " + describeBindings(b);
          rc.tolerance = 2e-5;
          char file[32];
          std::snprintf(file, sizeof file, "/attention%03d.rpl", index++);
          ASSERT_TRUE(writeReplayCase(dir + std::string(file), rc)) << dir << file;
        }
        ++resultIndex;
      }
  }
  // The prefill tiles on cooperative matrices (attention_tile_cm.glsl, what 16-bit models' plans take), bound
  // 5e-3 (f16 Q, K, P, V): TinyLlama's heads at 70 rows over 100 keys and its 512-token prefill;
  // attentionCmSource (head dims 64 and 128) at kAttentionCmShapes; the awkward ops (80, 256, 48 / 40; windows,
  // padding, bias + softcap) at 33 rows and at 8 rows over 1000 keys. Left out so that the files stay under
  // about 45 MB: the 77-row steps of head dim 128 and 256, the 200-row step of 128, head dim 256 over 1000 keys.
  target.cooperativeMatrix = true;
  target.cooperativeMatrixAttention = true;
  auto exported = [](const std::string &kernel, const Bindings &b) {
    const bool wide = kernel.find("_d128") != std::string::npos || kernel.find("_d256") != std::string::npos;
    return !(wide && (b.at("s") == 77 || b.at("s") == 200)) &&
           !(kernel.find("_d256") != std::string::npos && b.at("p") > 0);
  };
  for (const auto &[source, shapes] : {std::pair<std::string, std::vector<Bindings>>{
                                           tinyLlama, {{{"b", 1}, {"s", 70}, {"p", 30}}, {{"b", 1}, {"s", 512}, {"p", 0}}}},
                                       {attentionCmSource(), kAttentionCmShapes},
                                       {attentionAwkwardSource(), {kAttentionCmShapes[0], kAttentionCmShapes[2]}}}) {
    compile(source);
    size_t resultIndex = 0;
    for (mlir::Operation &op : func.getBody().front()) {
      if (!mlir::isa<ir::AttentionOp>(op))
        continue;
      const std::string &name = kernels.at(&op).name;
      EXPECT_NE(name.find("_tilecm"), std::string::npos) << name;
      for (const Bindings &b : shapes) {
        if (!exported(name, b))
          continue;
        ReplayCase rc;
        replayCase(&op, resultIndex, b, rc);
        rc.name = name + " " + describeBindings(b);
        rc.tolerance = 5e-3;
        char file[32];
        std::snprintf(file, sizeof file, "/attention%03d.rpl", index++);
        ASSERT_TRUE(writeReplayCase(dir + std::string(file), rc)) << dir << file;
      }
      ++resultIndex;
    }
  }
  target.cooperativeMatrix = false;
  target.cooperativeMatrixAttention = false;
  split = Split::Off;
  std::printf("[ export   ] %d attention cases in %s\n", index, dir);
}

// The register-blocked tile path at sizes that cross tiles: M = s up to 130, N = 150 and 77 (not multiples
// of 64), K = 203 (not a multiple of 16: scalar loads) and 264 (vec4 loads, K % 16 = 8), with and without
// transpose_b, batched with a broadcast operand.
TEST_F(SpirvCodegenTest, MatmulTiles) {
  std::string src = R"(
func.func @tiles(%x: tensor<?x203xf32, #kiln.dims<[s]>>, %w: tensor<150x203xf32>, %u: tensor<203x77xf32>,
                 %q: tensor<2x?x40xf32, #kiln.dims<[s]>>, %k: tensor<1x70x40xf32>, %x4: tensor<?x264xf32, #kiln.dims<[s]>>,
                 %w4: tensor<150x264xf32>) -> (
    tensor<?x150xf32, #kiln.dims<[s]>>, tensor<?x77xf32, #kiln.dims<[s]>>, tensor<2x?x70xf32, #kiln.dims<[s]>>,
    tensor<?x150xf32, #kiln.dims<[s]>>) {
  %0 = kiln.matmul %x, %w {transpose_b = true} : (tensor<?x203xf32, #kiln.dims<[s]>>, tensor<150x203xf32>) -> tensor<?x150xf32, #kiln.dims<[s]>>
  %1 = kiln.matmul %x, %u {transpose_b = false} : (tensor<?x203xf32, #kiln.dims<[s]>>, tensor<203x77xf32>) -> tensor<?x77xf32, #kiln.dims<[s]>>
  %2 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x?x40xf32, #kiln.dims<[s]>>, tensor<1x70x40xf32>) -> tensor<2x?x70xf32, #kiln.dims<[s]>>
  %3 = kiln.matmul %x4, %w4 {transpose_b = true} : (tensor<?x264xf32, #kiln.dims<[s]>>, tensor<150x264xf32>) -> tensor<?x150xf32, #kiln.dims<[s]>>
  return %0, %1, %2, %3 : tensor<?x150xf32, #kiln.dims<[s]>>, tensor<?x77xf32, #kiln.dims<[s]>>, tensor<2x?x70xf32, #kiln.dims<[s]>>,
    tensor<?x150xf32, #kiln.dims<[s]>>
})";
  compile(src);
  for (int64_t s : {1, 2, 5, 64, 65, 130})
    check({{"b", 1}, {"s", s}, {"p", 0}});
}

// Static dims are specialization constants: matmuls of one shape class (here K = 264 and 512, N = 150 and 40)
// have identical modules and differ only in their constants, and both compute their own shapes.
TEST_F(SpirvCodegenTest, MatmulShapeClassSharesModule) {
  std::string src = R"(
func.func @cls(%x: tensor<?x264xf32, #kiln.dims<[s]>>, %w: tensor<150x264xf32>, %y: tensor<?x512xf32, #kiln.dims<[s]>>,
               %v: tensor<40x512xf32>) -> (tensor<?x150xf32, #kiln.dims<[s]>>, tensor<?x40xf32, #kiln.dims<[s]>>) {
  %0 = kiln.matmul %x, %w {transpose_b = true} : (tensor<?x264xf32, #kiln.dims<[s]>>, tensor<150x264xf32>) -> tensor<?x150xf32, #kiln.dims<[s]>>
  %1 = kiln.matmul %y, %v {transpose_b = true} : (tensor<?x512xf32, #kiln.dims<[s]>>, tensor<40x512xf32>) -> tensor<?x40xf32, #kiln.dims<[s]>>
  return %0, %1 : tensor<?x150xf32, #kiln.dims<[s]>>, tensor<?x40xf32, #kiln.dims<[s]>>
})";
  compile(src);
  ASSERT_EQ(kernels.size(), 2u);
  const codegen::SpirvKernel &k0 = kernels.begin()->second, &k1 = std::next(kernels.begin())->second;
  EXPECT_EQ(k0.spirv, k1.spirv);
  EXPECT_NE(k0.specialization, k1.specialization);
  for (int64_t s : {1, 3, 70})
    check({{"b", 1}, {"s", s}, {"p", 0}});
}

// Large element counts: more elements than 65535 workgroups of 256 cover in one pass (grid-stride loops).
TEST_F(SpirvCodegenTest, LargeGrid) {
  std::string src = R"(
func.func @large(%a: tensor<?x17000000xf32, #kiln.dims<[b]>>) -> tensor<?x17000000xf32, #kiln.dims<[b]>> {
  %0 = kiln.neg %a : tensor<?x17000000xf32, #kiln.dims<[b]>> -> tensor<?x17000000xf32, #kiln.dims<[b]>>
  return %0 : tensor<?x17000000xf32, #kiln.dims<[b]>>
})";
  compile(src);
  check({{"b", 1}, {"s", 1}, {"p", 0}});
}

// Decode-sized maps spread their heads over workgroups: rope of TinyLlama's q ([b, 32, s, 64] from a
// [b, s, 2048] projection) at b = 1, s = 1 launches one workgroup per head (a symbolic batch beside the heads
// in one grid axis used to give the 2048 elements a single workgroup), and a softmax over [b, 32, s, t] rows
// one workgroup per head and row; both still match the interpreter at decode and at b 2, s 3 and 130.
// Decode attention at TinyLlama's shapes (split in one dispatch, and in two passes) stages each block's values
// in shared memory (ATT_VSTAGE) and matches the interpreter; a 16 KiB device has no room for it and reads them
// from the buffer. The two passes' combine pass has no workgroups at all while the keys fit one chunk.
TEST_F(SpirvCodegenTest, DecodeGrids) {
  std::string src = R"(
func.func @decode(%x: tensor<?x32x?x64xf32, #kiln.dims<[b, s]>>, %pos: tensor<?x?xi64, #kiln.dims<[b, s]>>,
                  %f: tensor<32xf32>, %r: tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>>) -> (tensor<?x32x?x64xf32, #kiln.dims<[b, s]>>, tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>>) {
  %0 = kiln.rope %x, %pos, %f {interleaved = false} : (tensor<?x32x?x64xf32, #kiln.dims<[b, s]>>, tensor<?x?xi64, #kiln.dims<[b, s]>>, tensor<32xf32>) -> tensor<?x32x?x64xf32, #kiln.dims<[b, s]>>
  %1 = kiln.softmax %r {axis = 3 : i64} : tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>> -> tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>>
  return %0, %1 : tensor<?x32x?x64xf32, #kiln.dims<[b, s]>>, tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>>
})";
  compile(src);
  for (auto &[op, k] : kernels) {
    int64_t groups = 1;
    for (int a = 0; a < 3; ++a)
      groups *= (*k.globalSize[a].evaluate({{"b", 1}, {"s", 1}, {"p", 127}}) + k.workgroupSize[a] - 1) /
                k.workgroupSize[a];
    EXPECT_GE(groups, 32) << k.name << ": the 32 heads of a decode step in " << groups << " workgroups";
  }
  for (const Bindings &b : std::vector<Bindings>{{{"b", 1}, {"s", 1}, {"p", 127}},
                                                 {{"b", 2}, {"s", 3}, {"p", 5}},
                                                 {{"b", 1}, {"s", 130}, {"p", 0}}})
    check(b);
  const std::string q = "tensor<?x32x?x64xf32, #kiln.dims<[b, s]>>", kv = "tensor<?x4x?x64xf32, #kiln.dims<[b, p + s]>>";
  const std::string attention = "func.func @tl(%q: " + q + ", %k: " + kv + ", %v: " + kv + ") -> " + q + " {\n" +
                                "  %0 = kiln.attention %q, %k, %v {scale = 0.125 : f64, mask = #kiln.mask<causal>} : (" +
                                q + ", " + kv + ", " + kv + ") -> " + q + "\n  return %0 : " + q + "\n}";
  for (uint32_t shared : {32768u, 16384u})
    for (Split mode : {Split::TwoPasses, Split::OneDispatch}) {
      target.maxSharedMemory = shared;
      split = mode;
      compile(attention);
      split = Split::Off;
      ASSERT_EQ(kernels.size(), 1u);
      const codegen::SpirvKernel &k = kernels.begin()->second;
      EXPECT_EQ(k.glsl.find("#define ATT_VSTAGE") != std::string::npos, shared == 32768u)
          << k.name << " with " << shared << " bytes of shared memory";
      const std::string stem = mode == Split::TwoPasses ? "attention_online_d64_gqa8_splitkv_" : "attention_online_d64_gqa8_splitkvlast_";
      EXPECT_EQ(k.name.rfind(stem, 0), 0u) << k.name;
      // The combine pass launches nothing while one chunk (64 keys) holds every row's keys.
      if (mode == Split::TwoPasses) {
        const codegen::SpirvKernel &combine = *splits.begin()->second.second;
        for (int64_t p : {0, 63, 64, 1000}) {
          int64_t x = *combine.globalSize[0].evaluate({{"b", 1}, {"s", 1}, {"p", p}});
          EXPECT_EQ(x > 0, p >= 64) << combine.name << " at p " << p << ": global size x " << x;
        }
      }
      // Decode over 1, 2, 128 and 1001 keys (one chunk, a partial block, two chunks, 16 with a ragged last
      // one), and 3 rows at b 2.
      for (const Bindings &b : std::vector<Bindings>{{{"b", 1}, {"s", 1}, {"p", 0}},
                                                     {{"b", 1}, {"s", 1}, {"p", 1}},
                                                     {{"b", 1}, {"s", 1}, {"p", 127}},
                                                     {{"b", 1}, {"s", 1}, {"p", 1000}},
                                                     {{"b", 2}, {"s", 3}, {"p", 70}}})
        check(b, {}, 2e-5);
    }
  target.maxSharedMemory = 32768;
}

// The backend's op table: ops without a kernel carry the reason legality reports; kernels come from the
// fixed .comp files with their variant defines.
TEST_F(SpirvCodegenTest, OpEntries) {
  std::map<std::string, std::string> entries = codegen::spirvOpEntries();
  for (const char *op : {"kiln.matmul", "kiln.attention", "kiln.rms_norm", "kiln.add", "kiln.concat"})
    EXPECT_EQ(entries.at(op), "") << op;
  auto mod = mlir::parseSourceString<mlir::ModuleOp>(R"(
func.func @w() -> tensor<4xf32> {
  %w = kiln.weight "w" : tensor<4xf32>
  return %w : tensor<4xf32>
})", &context, "weight.mlir");
  ASSERT_TRUE(mod);
  mlir::func::FuncOp f = *mod->getOps<mlir::func::FuncOp>().begin();
  mlir::Operation *weight = &f.getBody().front().front();
  ASSERT_NE(entries.at("kiln.weight"), "");
  EXPECT_EQ(codegen::spirvUnsupportedReason(weight, target), entries.at("kiln.weight"));
  StatusOr<codegen::SpirvKernel> k = codegen::generateSpirvKernel(weight, kSymbols, target);
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.status().message().find(entries.at("kiln.weight")), std::string::npos) << k.status().message();
}

std::string readText(const std::string &path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// --dump-dir: the GLSL as glslang compiled it (header, variant defines, the .comp with its includes
// expanded) and the module's disassembly, named by the kernel's index.
TEST_F(SpirvCodegenTest, DumpWritesSourceAndDisassembly) {
  compile(R"(
func.func @dump(%x: tensor<?x264xf32, #kiln.dims<[s]>>, %w: tensor<150x264xf32>) -> tensor<?x150xf32, #kiln.dims<[s]>> {
  %0 = kiln.matmul %x, %w {transpose_b = true} : (tensor<?x264xf32, #kiln.dims<[s]>>, tensor<150x264xf32>) -> tensor<?x150xf32, #kiln.dims<[s]>>
  return %0 : tensor<?x150xf32, #kiln.dims<[s]>>
})");
  ASSERT_EQ(kernels.size(), 1u);
  const codegen::SpirvKernel &k = kernels.begin()->second;
  EXPECT_EQ(k.glsl.rfind("#version 450\n", 0), 0u);
  EXPECT_NE(k.glsl.find("#define TRANSPOSE_B\n"), std::string::npos);
  EXPECT_NE(k.glsl.find("#define VEC_WIDTH 4\n"), std::string::npos);
  EXPECT_NE(k.glsl.find("void gemv("), std::string::npos); // shaders/matmul.comp
  EXPECT_EQ(k.glsl.find("\n#include \""), std::string::npos); // every include expanded

  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("kiln-spirv-dump", dir));
  Status s = codegen::dumpSpirvKernel(k, dir.str().str(), 7);
  ASSERT_TRUE(s) << s.message();
  std::string base = dir.str().str() + "/spirv/007-" + k.name;
  std::string glsl = readText(base + ".comp"), spvasm = readText(base + ".spvasm");
  llvm::sys::fs::remove_directories(dir);
  // The source with one comment line after #version: the kernel, and the specialization constants' values.
  // SC4: the GEMV's teams per workgroup (8 with 8-wide subgroups: each row of K = 264 split over 4 of the 32 subgroups).
  std::string comment = "// kernel 7: " + k.name + "; SC0 = 264, SC1 = 150, SC2 = 264, SC3 = 150, SC4 = 8\n";
  EXPECT_EQ(glsl, "#version 450\n" + comment + k.glsl.substr(std::strlen("#version 450\n")));
  EXPECT_NE(spvasm.find("OpEntryPoint GLCompute %main \"main\""), std::string::npos) << spvasm.substr(0, 400);
  EXPECT_NE(spvasm.find("OpSpecConstant"), std::string::npos);
}

} // namespace
