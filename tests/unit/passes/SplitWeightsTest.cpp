// kiln-split-weights on the real test models: with a 64 KiB buffer limit their embeddings and LM heads
// ([512, 64] f32 = 128 KiB; tied in gemma3-tiny and gpt2-tiny) become row chunks, the interpreter computes
// the same logits as on the unsplit module, and the partition then has no op on the cpu for a buffer size
// (it had some before).
#include "PlanTestUtil.h"
#include "kiln/target/DeviceProfile.h"
#include "kiln/passes/Legality.h"
#include "kiln/passes/MemoryPlan.h"
#include "kiln/passes/Partition.h"
#include "kiln/passes/SplitWeights.h"

#include "kiln/frontend/SafeTensors.h"
#include "kiln/ir/Interpreter.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/SymShape.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace kiln;
using namespace kiln::passes;
using namespace kiln::passes::test;

namespace {

/// The step's first result (logits) for the reference prompt in one chunk, through the interpreter.
std::vector<double> logits(Model &m, const std::string &name) {
  StatusOr<std::unique_ptr<SafeTensorsFile>> ref = SafeTensorsFile::open(dataDir(name) + "/reference.safetensors");
  EXPECT_TRUE(ref.ok());
  const TensorInfo *ids = (*ref)->find("input_ids");
  EXPECT_TRUE(ids);
  std::vector<ir::HostTensor> args(1);
  args[0].shape = ids->shape;
  args[0].data.resize(size_t(ids->numElements()));
  args[0].isInteger = true;
  convertToF64(*ids, args[0].data.data());
  mlir::func::FuncOp step = m.step();
  std::string error;
  for (unsigned i = 1; i < step.getNumArguments(); ++i) { // empty KV caches (p = 0)
    mlir::FailureOr<ir::SymShape> shape = ir::getSymShape(step.getArgument(i).getType());
    mlir::FailureOr<llvm::SmallVector<int64_t>> dims = ir::evaluateShape(*shape, {{"b", ids->shape[0]}, {"p", 0}}, &error);
    EXPECT_TRUE(mlir::succeeded(dims)) << error;
    ir::HostTensor c;
    c.shape.assign(dims->begin(), dims->end());
    args.push_back(c);
  }
  const WeightTable *table = m.weights.get();
  ir::Interpreter interpreter([table](llvm::StringRef w, ir::HostTensor &out, std::string &err) {
    const TensorInfo *t = table->find(w.str());
    if (!t) {
      err = "no weight " + w.str();
      return false;
    }
    out.shape = t->shape;
    out.data.resize(size_t(t->numElements()));
    convertToF64(*t, out.data.data());
    return true;
  });
  std::vector<ir::HostTensor> results;
  EXPECT_TRUE(interpreter.run(step, args, results, error, {{"r", ids->shape[1]}})) << error; // every row's logits
  return results.empty() ? std::vector<double>() : results[0].data;
}

target::DeviceProfile tinyProfile() {
  target::DeviceProfile p = *target::builtinDeviceProfile("lavapipe");
  p.name = "lavapipe-64k";
  p.maxStorageBufferRange = 64 * 1024;
  return p;
}

int sizeFallbacks(mlir::func::FuncOp step, const PlanOptions &bounds, const target::DeviceProfile &profile) {
  StatusOr<MemoryPlan> plan = planMemory(step, bounds);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  if (!plan.ok())
    return -1;
  PartitionResult r = partitionPlan(*plan, profile, nullptr);
  int n = 0;
  for (const PartitionEntry &e : r.entries)
    n += e.fallback && e.reason.find("maxStorageBufferRange") != std::string::npos;
  return n;
}

struct Case {
  const char *name;
  int weights; // weights split
  int uses;    // ops rewritten
};

class SplitRealModel : public ::testing::TestWithParam<Case> {};

TEST_P(SplitRealModel, SameLogitsAndNoSizeFallback) {
  const Case c = GetParam();
  Model m = loadModel(c.name, /*fused=*/true);
  ASSERT_TRUE(m.module);
  const PlanOptions bounds{16, 1};
  const target::DeviceProfile profile = tinyProfile();
  std::vector<double> before = logits(m, c.name);
  ASSERT_FALSE(before.empty());
  EXPECT_GT(sizeFallbacks(m.step(), bounds, profile), 0) << "the unsplit model should not fit 64 KiB buffers";

  SplitWeightsReport report;
  splitLargeWeights(*m.module, splitWeightsOptions(profile, bounds), &report);
  ASSERT_TRUE(mlir::succeeded(mlir::verify(*m.module)));
  EXPECT_EQ(report.weightsSplit, c.weights);
  EXPECT_EQ(report.usesSplit, c.uses);
  EXPECT_TRUE(report.notSplit.empty()) << report.notSplit.front();
  ASSERT_EQ(report.split.size(), size_t(c.weights));
  EXPECT_NE(report.split[0].find("[512, 64] f32 (128.0 KiB) into 2 chunks of <= 256 rows (64.0 KiB) for "
                                 "maxStorageBufferRange 64.0 KiB"),
            std::string::npos)
      << report.split[0];
  // Every weight op now fits one buffer; chunks name their tensor and cover its rows.
  std::map<std::string, int64_t> covered;
  m.step().walk([&](ir::WeightOp w) {
    auto t = mlir::cast<mlir::RankedTensorType>(w.getType());
    EXPECT_LE(uint64_t(t.getNumElements()) * elementBytes(t.getElementType()), profile.maxStorageBufferRange)
        << w.getName().str();
    if (w.getRows())
      covered[w.getName().str()] += (*w.getRows())[1] - (*w.getRows())[0];
  });
  for (const auto &[name, rows] : covered)
    EXPECT_EQ(rows, 512) << name;

  std::vector<double> after = logits(m, c.name);
  ASSERT_EQ(after.size(), before.size());
  double maxRef = 0, maxDiff = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    maxRef = std::max(maxRef, std::fabs(before[i]));
    maxDiff = std::max(maxDiff, std::fabs(after[i] - before[i]));
  }
  EXPECT_GT(maxRef, 0.1) << c.name << ": logits of a random-weight model are not all near 0";
  EXPECT_EQ(before.size(), size_t(512 * 12 + (c.name == std::string("gemma3-tiny") ? 512 * 4 : 0)));
  EXPECT_LE(maxDiff, 1e-12 * maxRef) << c.name << ": the split module computes different logits";
  EXPECT_EQ(sizeFallbacks(m.step(), bounds, profile), 0);

  // A second run finds nothing left to split.
  SplitWeightsReport again;
  splitLargeWeights(*m.module, splitWeightsOptions(profile, bounds), &again);
  EXPECT_EQ(again.weightsSplit, 0);
}

INSTANTIATE_TEST_SUITE_P(Models, SplitRealModel,
                         ::testing::Values(Case{"llama-tiny", 2, 2}, Case{"gemma3-tiny", 1, 2},
                                           Case{"gpt2-tiny", 1, 2}),
                         [](const ::testing::TestParamInfo<Case> &i) {
                           std::string n = i.param.name;
                           for (char &ch : n)
                             if (ch == '-')
                               ch = '_';
                           return n;
                         });

// The limit is the smaller of maxStorageBufferRange and maxMemoryAllocationSize, and named after it.
TEST(SplitWeights, OptionsTakeTheSmallerLimit) {
  target::DeviceProfile p = *target::builtinDeviceProfile("generic");
  p.maxStorageBufferRange = 128ull << 20;
  p.maxAllocationSize = 64ull << 20;
  SplitWeightsOptions o = splitWeightsOptions(p, PlanOptions{});
  EXPECT_EQ(o.maxBufferBytes, 64ull << 20);
  EXPECT_EQ(o.limitName, "maxMemoryAllocationSize 64.00 MiB");
  p.maxAllocationSize = 2ull << 30;
  o = splitWeightsOptions(p, PlanOptions{});
  EXPECT_EQ(o.maxBufferBytes, 128ull << 20);
  EXPECT_EQ(o.limitName, "maxStorageBufferRange 128.00 MiB");
}

} // namespace
