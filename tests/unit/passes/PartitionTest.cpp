// The device profile's op names against the dialect, legality reasons (unavailable op and dtype, a buffer
// larger than maxStorageBufferRange) and the partition of real models with a stub kernel catalog:
// transfers only at boundaries, at most one per (buffer, destination), no consumer before its transfer,
// every dispatch reads buffers in its own location, both arenas overlap-free.
#include "PlanTestUtil.h"
#include "kiln/passes/Fusion.h"
#include "kiln/passes/Legality.h"
#include "kiln/passes/MemoryPlan.h"
#include "kiln/passes/Partition.h"
#include "kiln/passes/DeviceWeights.h"
#include "kiln/passes/DispatchGroups.h"
#include "kiln/passes/PlanAnnotations.h"
#include "kiln/target/DeviceProfile.h"

#include "kiln/ir/KilnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

using namespace kiln;
using namespace kiln::passes;
using namespace kiln::passes::test;

namespace {

// --- profiles ---------------------------------------------------------------------------------------

// target/ keeps the names of the kiln ops (unavailable_ops must name one) without seeing the dialect: the list
// must equal the ops the dialect registers, so a new op cannot be missing from it.
TEST(DeviceProfile, OpNamesAreTheDialectsOps) {
  mlir::MLIRContext ctx;
  ctx.loadDialect<kiln::ir::KilnDialect>();
  std::set<std::string> registered;
  for (mlir::RegisteredOperationName op : ctx.getRegisteredOperations())
    if (op.getDialectNamespace() == "kiln")
      registered.insert(op.getStringRef().str());
  ASSERT_FALSE(registered.empty());
  std::set<std::string> listed(target::kilnOpNames().begin(), target::kilnOpNames().end());
  EXPECT_EQ(listed.size(), target::kilnOpNames().size()) << "a name listed twice in target::kilnOpNames";
  for (const std::string &op : registered)
    EXPECT_TRUE(listed.count(op)) << op << " is registered but missing from target::kilnOpNames (target/src)";
  for (const std::string &op : listed)
    EXPECT_TRUE(registered.count(op)) << op << " is in target::kilnOpNames but not a registered op";
}

// --- legality ---------------------------------------------------------------------------------------

class StubCatalog : public DeviceKernelCatalog {
public:
  explicit StubCatalog(std::set<std::string> lacking = {}) : lacking_(std::move(lacking)) {}
  std::string unsupportedReason(mlir::Operation *op, const target::DeviceProfile &) const override {
    std::string name = op->getName().getStringRef().str();
    return lacking_.count(name) ? "stub backend has no " + name + " variant" : "";
  }

private:
  std::set<std::string> lacking_;
};

class LegalityHand : public test::HandPlanTest {
protected:
  LegalityHand() : HandPlanTest(PlanOptions{16, 1}) {}
};

const char *kEmbedding = R"(
  func.func @step(%ids: tensor<1x?xi64, #kiln.dims<[s]>> {kiln.name = "input_ids"}) -> (tensor<1x?x2048xf32, #kiln.dims<[s]>> {kiln.name = "y"}) {
    %t = kiln.weight "model.embed_tokens.weight" : tensor<32000x2048xf32> loc("model.embed_tokens")
    %e = kiln.gather %t, %ids : (tensor<32000x2048xf32>, tensor<1x?xi64, #kiln.dims<[s]>>) -> tensor<1x?x2048xf32, #kiln.dims<[s]>> loc("model.embed_tokens")
    %n = kiln.neg %e : tensor<1x?x2048xf32, #kiln.dims<[s]>> -> tensor<1x?x2048xf32, #kiln.dims<[s]>> loc("model.norm")
    return %n : tensor<1x?x2048xf32, #kiln.dims<[s]>>
  })";

TEST_F(LegalityHand, BufferLargerThanStorageRange) {
  StatusOr<MemoryPlan> p = plan(kEmbedding);
  ASSERT_TRUE(p.ok()) << p.status().message();
  target::DeviceProfile lvp = *target::builtinDeviceProfile("lavapipe");
  std::string r = vulkanUnsupportedReason(*p, 0, lvp, nullptr);
  EXPECT_EQ(r, "weight model.embed_tokens.weight f32 [32000, 2048] is 250.00 MiB > maxStorageBufferRange 128.00 MiB");
  EXPECT_EQ(vulkanUnsupportedReason(*p, 1, lvp, nullptr), "");
  // The H200 binds 4 GiB.
  EXPECT_EQ(vulkanUnsupportedReason(*p, 0, *target::builtinDeviceProfile("nvidia-h200"), nullptr), "");
  // The allocation limit too.
  target::DeviceProfile small = lvp;
  small.maxStorageBufferRange = 1ull << 30;
  small.maxAllocationSize = 200ull << 20;
  EXPECT_NE(vulkanUnsupportedReason(*p, 0, small, nullptr).find("> maxMemoryAllocationSize 200.00 MiB"), std::string::npos);

  // Partition: the gather falls back; its result is transferred once to the device, the neg's result
  // comes back as the output port.
  PartitionResult part = partitionPlan(*p, lvp, nullptr);
  EXPECT_EQ(part.cpuOps, 1);
  EXPECT_EQ(part.fallbacks, 1);
  EXPECT_EQ(part.vulkanOps, 1);
  EXPECT_EQ(part.transfers, 2);
  std::vector<std::string> report = partitionReport(part, "lavapipe");
  ASSERT_EQ(report.size(), 2u);
  EXPECT_EQ(report[1], "kiln.gather x 1 -> cpu: weight model.embed_tokens.weight f32 [32000, 2048] is 250.00 MiB > "
                       "maxStorageBufferRange 128.00 MiB (model.embed_tokens)");
  ASSERT_EQ(p->dispatches.size(), 4u);
  EXPECT_FALSE(p->dispatches[0].transfer);
  EXPECT_TRUE(p->dispatches[1].transfer);
  EXPECT_EQ(p->dispatches[2].device, DispatchDevice::Vulkan);
  EXPECT_TRUE(p->dispatches[3].transfer);
  EXPECT_EQ(p->buffers[size_t(p->outputs[0].buffer)].location, BufferLocation::Host);
  EXPECT_EQ(p->buffers[size_t(p->outputs[0].buffer)].name, "y");
  EXPECT_GT(p->deviceArenaBytes, 0u);
  EXPECT_GT(p->arenaBytes, 0u);
}

TEST_F(LegalityHand, UnavailableOpAndDtype) {
  StatusOr<MemoryPlan> p = plan(kEmbedding);
  ASSERT_TRUE(p.ok()) << p.status().message();
  target::DeviceProfile prof = *target::builtinDeviceProfile("nvidia-h200");
  prof.unavailableOps = {"kiln.neg"};
  EXPECT_EQ(vulkanUnsupportedReason(*p, 1, prof, nullptr), "profile lacks kiln.neg");
  prof.unavailableOps.clear();
  prof.unavailableDtypes = {"i64"};
  EXPECT_EQ(vulkanUnsupportedReason(*p, 0, prof, nullptr), "profile lacks dtype i64");
  EXPECT_EQ(vulkanUnsupportedReason(*p, 1, prof, nullptr), "");
  prof.unavailableDtypes.clear();
  StubCatalog stub({"kiln.neg"});
  EXPECT_EQ(vulkanUnsupportedReason(*p, 1, prof, &stub), "stub backend has no kiln.neg variant");
  EXPECT_EQ(vulkanUnsupportedReason(*p, 0, prof, &stub), "");
}

TEST_F(LegalityHand, F16NeedsStorage16) {
  StatusOr<MemoryPlan> p = plan(R"(
    func.func @step(%x: tensor<?x4xf16, #kiln.dims<[s]>> {kiln.name = "x"}) -> (tensor<?x4xf16, #kiln.dims<[s]>> {kiln.name = "y"}) {
      %a = kiln.neg %x : tensor<?x4xf16, #kiln.dims<[s]>> -> tensor<?x4xf16, #kiln.dims<[s]>>
      return %a : tensor<?x4xf16, #kiln.dims<[s]>>
    })");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(vulkanUnsupportedReason(*p, 0, *target::builtinDeviceProfile("lavapipe"), nullptr), "");
  EXPECT_EQ(vulkanUnsupportedReason(*p, 0, *target::builtinDeviceProfile("generic"), nullptr),
            "f16 buffers need 16-bit storage, which the profile lacks");
}

// --- partition of real models -------------------------------------------------------------------------

// The invariants of a partitioned plan.
void checkPartition(const MemoryPlan &plan, const PartitionResult &part) {
  std::map<int, int> writer; // buffer -> dispatch
  std::set<std::pair<int, int>> transferKeys;
  int transfers = 0;
  for (size_t i = 0; i < plan.dispatches.size(); ++i) {
    const PlanDispatch &d = plan.dispatches[i];
    const BufferLocation here = d.device == DispatchDevice::Vulkan ? BufferLocation::Device : BufferLocation::Host;
    if (d.transfer) {
      ++transfers;
      ASSERT_EQ(d.buffers.size(), 2u);
      const PlanBuffer &from = plan.buffers[size_t(d.buffers[0])], &to = plan.buffers[size_t(d.buffers[1])];
      EXPECT_NE(from.location, to.location) << "transfer " << i << " within one location";
      EXPECT_EQ(to.copyOf, from.id);
      EXPECT_EQ(from.maxBytes, to.maxBytes);
      EXPECT_EQ(from.elementType, to.elementType);
      EXPECT_TRUE(transferKeys.insert({from.id, int(to.location)}).second)
          << "two transfers of buffer " << from.id << " to one location";
      // The source exists before: an argument or written earlier.
      if (from.kind == BufferKind::Arena)
        EXPECT_TRUE(writer.count(from.id)) << "transfer " << i << " of a buffer not yet written";
      // A transfer sits right before a consumer on the other side.
      ASSERT_LT(i + 1, plan.dispatches.size() + 1);
      bool consumed = false;
      for (size_t j = i + 1; j < plan.dispatches.size(); ++j) {
        const PlanDispatch &c = plan.dispatches[j];
        if (c.transfer)
          continue;
        for (int id : c.buffers)
          consumed = consumed || id == to.id;
        break;
      }
      bool isPort = false;
      for (const PlanPort &p : plan.outputs)
        isPort = isPort || p.buffer == to.id;
      EXPECT_TRUE(consumed || isPort) << "transfer " << i << " is not right before its first consumer";
      writer[to.id] = int(i);
      continue;
    }
    std::vector<int> written = d.written();
    for (size_t k = 0; k < d.buffers.size(); ++k) {
      const PlanBuffer &b = plan.buffers[size_t(d.buffers[k])];
      EXPECT_EQ(b.location, here) << "dispatch " << i << " (" << d.location << ", " << deviceName(d.device)
                                  << ") uses buffer " << b.id << " " << b.name << " in the other location";
      bool isWrite = std::find(written.begin(), written.end(), b.id) != written.end();
      if (!isWrite && b.kind == BufferKind::Arena)
        EXPECT_TRUE(writer.count(b.id)) << "dispatch " << i << " reads buffer " << b.id << " before it is written";
    }
    for (int id : written)
      writer[id] = int(i);
  }
  EXPECT_EQ(transfers, part.transfers);
  for (const PlanPort &p : plan.inputs)
    if (plan.buffers[size_t(p.buffer)].kind == BufferKind::Input)
      EXPECT_EQ(plan.buffers[size_t(p.buffer)].location, BufferLocation::Host);
  for (const PlanPort &p : plan.outputs)
    if (plan.buffers[size_t(p.buffer)].kind == BufferKind::Arena)
      EXPECT_EQ(plan.buffers[size_t(p.buffer)].location, BufferLocation::Host) << p.name;
  for (const PlanKvEntry &e : plan.kvCache)
    EXPECT_EQ(plan.buffers[size_t(e.pastBuffer)].location, plan.buffers[size_t(e.presentBuffer)].location);
  // Both arenas: inside, aligned, no two simultaneously live buffers overlap.
  for (const PlanBuffer &a : plan.buffers) {
    if (a.kind != BufferKind::Arena)
      continue;
    uint64_t size = a.location == BufferLocation::Host ? plan.arenaBytes : plan.deviceArenaBytes;
    EXPECT_EQ(a.offset % 64, 0u);
    EXPECT_LE(a.offset + a.maxBytes, size);
    for (const PlanBuffer &b : plan.buffers) {
      if (b.kind != BufferKind::Arena || b.id <= a.id || b.location != a.location)
        continue;
      bool live = a.firstUse <= b.lastUse && b.firstUse <= a.lastUse;
      bool overlap = a.offset < b.offset + align64(b.maxBytes) && b.offset < a.offset + align64(a.maxBytes);
      EXPECT_FALSE(live && overlap && a.maxBytes && b.maxBytes) << "buffers " << a.id << " and " << b.id;
    }
  }
}

namespace {
/// `plan` partitioned for lavapipe with the ops `unavailable` in its profile and the kernels of `catalog` (by
/// default every one), then checked.
PartitionResult partitionForLavapipe(MemoryPlan &plan, std::vector<std::string> unavailable = {},
                                     const DeviceKernelCatalog &catalog = StubCatalog()) {
  target::DeviceProfile profile = *target::builtinDeviceProfile("lavapipe");
  profile.unavailableOps = std::move(unavailable);
  PartitionResult part = partitionPlan(plan, profile, &catalog);
  checkPartition(plan, part);
  return part;
}
} // namespace

TEST(Partition, LlamaTinyEverythingOnDevice) {
  Model m = loadModel("llama-tiny", /*fused=*/true);
  StatusOr<MemoryPlan> plan = planModel(m, PlanOptions{64, 1});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const size_t kernels = plan->dispatches.size();
  PartitionResult part = partitionForLavapipe(*plan);
  EXPECT_EQ(part.cpuOps, 0);
  EXPECT_EQ(part.vulkanOps, int(kernels));
  // Only input_ids (and an attention mask, if any) go in and logits come out.
  int inputs = 0;
  for (const PlanPort &p : plan->inputs)
    inputs += plan->buffers[size_t(p.buffer)].kind == BufferKind::Input ? 1 : 0;
  EXPECT_EQ(part.transfers, inputs + 1);
  EXPECT_EQ(plan->arenaBytes, align64(plan->buffers[size_t(plan->outputs[0].buffer)].maxBytes));
  for (const PlanKvEntry &e : plan->kvCache)
    EXPECT_EQ(plan->buffers[size_t(e.presentBuffer)].location, BufferLocation::Device);
  EXPECT_EQ(partitionReport(part, "lavapipe").size(), 1u);
}

TEST(Partition, LlamaTinyWithoutRope) {
  Model m = loadModel("llama-tiny", /*fused=*/true);
  StatusOr<MemoryPlan> plan = planModel(m, PlanOptions{64, 1});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  PartitionResult part = partitionForLavapipe(*plan, {"kiln.rope"});
  int ropes = 0;
  for (const PartitionEntry &e : part.entries)
    if (e.op == "kiln.rope") {
      ++ropes;
      EXPECT_EQ(e.device, DispatchDevice::Cpu);
      EXPECT_EQ(e.reason, "profile lacks kiln.rope");
      EXPECT_TRUE(e.fallback);
    }
  EXPECT_GT(ropes, 0);
  EXPECT_EQ(part.fallbacks, ropes);
  std::vector<std::string> report = partitionReport(part, "lavapipe");
  bool named = false;
  for (const std::string &l : report)
    named = named || l.rfind("kiln.rope x " + std::to_string(ropes) + " -> cpu: profile lacks kiln.rope (model.layers.0", 0) == 0;
  EXPECT_TRUE(named) << report.back();
  // Each rope needs its operand(s) from the device and its result back: transfers are bounded by the
  // rope's boundary buffers, not by the graph.
  EXPECT_GE(part.transfers, 2 * ropes);
  std::string dot = partitionDot(*plan, "llama-tiny");
  EXPECT_NE(dot.find("digraph"), std::string::npos);
  EXPECT_NE(dot.find("color=red"), std::string::npos);
  EXPECT_NE(dot.find("#fdae6b"), std::string::npos);
}

TEST(Partition, EncoderWithoutLayerNormAndStubGaps) {
  Model m = loadModel("bert-tiny", /*fused=*/true);
  StatusOr<MemoryPlan> plan = planModel(m, PlanOptions{32, 4});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  PartitionResult part = partitionForLavapipe(*plan, {"layer_norm"}, StubCatalog({"kiln.softmax"}));
  int norms = 0;
  for (const PartitionEntry &e : part.entries)
    if (e.op == "kiln.layer_norm") {
      ++norms;
      EXPECT_EQ(e.device, DispatchDevice::Cpu);
    }
  EXPECT_GT(norms, 0);
}

TEST(Partition, Gemma3AllFallbackKeepsEverythingOnHost) {
  Model m = loadModel("gemma3-tiny", /*fused=*/true);
  StatusOr<MemoryPlan> plan = planModel(m, PlanOptions{64, 1});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const uint64_t hostArena = plan->arenaBytes;
  class Nothing : public DeviceKernelCatalog {
    std::string unsupportedReason(mlir::Operation *, const target::DeviceProfile &) const override { return "no kernels"; }
  } nothing;
  PartitionResult part = partitionForLavapipe(*plan, {}, nothing);
  EXPECT_EQ(part.vulkanOps, 0);
  EXPECT_EQ(part.transfers, 0);
  EXPECT_EQ(plan->deviceArenaBytes, 0u);
  EXPECT_EQ(plan->arenaBytes, hostArena);
}

TEST(Partition, Gemma3WithoutRope) {
  Model m = loadModel("gemma3-tiny", /*fused=*/true);
  StatusOr<MemoryPlan> plan = planModel(m, PlanOptions{64, 1});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  PartitionResult part = partitionForLavapipe(*plan, {"kiln.rope"});
  for (const std::string &l : partitionReport(part, "lavapipe-no-rope"))
    std::printf("  %s\n", l.c_str());
}

// The partition's entries follow the dispatches they describe through the later rewrites of the plan: a second
// pass after each attention (addSecondPass), then kiln-group-dispatches (gemma3 without rope on the device: the
// q / k / v head transposes of a layer grouped, the ropes' transfers around them).
TEST(Partition, EntriesFollowSecondPassesAndGroups) {
  Model m = loadModel("gemma3-tiny", /*fused=*/true);
  ASSERT_TRUE(m.module);
  fuseMatmulGroups(*m.module, nullptr); // as for Vulkan: q / k / v in one dispatch, their transposes adjacent
  StatusOr<MemoryPlan> plan = planMemory(m.step(), PlanOptions{64, 1});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  target::DeviceProfile prof = *target::builtinDeviceProfile("lavapipe");
  prof.unavailableOps = {"kiln.rope"};
  StubCatalog stub;
  PartitionResult part = partitionPlan(*plan, prof, &stub);
  foldDeviceWeights(*plan, part); // the reshapes between the head transposes become views
  for (int i = int(plan->dispatches.size()) - 1; i >= 0; --i)
    if (!plan->dispatches[size_t(i)].transfer && mlir::isa<ir::AttentionOp>(plan->dispatches[size_t(i)].op) &&
        plan->dispatches[size_t(i)].device == DispatchDevice::Vulkan)
      addSecondPass(*plan, i, 1024, mlir::Float32Type::get(m.context.get()), &part);
  layoutArenas(*plan);
  auto entriesMatch = [&] {
    for (const PartitionEntry &e : part.entries) {
      ASSERT_GE(e.dispatch, 0);
      mlir::Operation *op = plan->dispatches[size_t(e.dispatch)].op;
      ASSERT_TRUE(op) << "entry " << e.op << " names transfer " << e.dispatch;
      EXPECT_EQ(op->getName().getStringRef().str(), e.op) << "dispatch " << e.dispatch;
    }
  };
  entriesMatch();
  DispatchGroups groups = groupDispatches(*plan, part, nullptr);
  EXPECT_EQ(groups.groups.size(), 3u);
  for (const std::string &g : groups.groups)
    EXPECT_NE(g.find("(kiln.transpose + kiln.transpose + kiln.transpose)"), std::string::npos) << g;
  EXPECT_EQ(groups.dispatchesRemoved, 6);
  entriesMatch();
  checkPartition(*plan, part);
}

// The decisions recorded as IR attributes (PlanAnnotations.h, what kiln-opt's plan passes read back) give
// the same plan as the decisions themselves: placement, transfers, folds, arenas.
TEST(Partition, RecordedDecisionsRebuildThePlan) {
  Model m = loadModel("gemma3-tiny", /*fused=*/true);
  ASSERT_TRUE(m.module);
  target::DeviceProfile prof = *target::builtinDeviceProfile("lavapipe");
  prof.unavailableOps = {"kiln.rope"};
  StubCatalog stub;
  StatusOr<MemoryPlan> decided = planMemory(m.step(), PlanOptions{64, 1});
  ASSERT_TRUE(decided.ok()) << decided.status().message();
  PartitionResult part = partitionPlan(*decided, prof, &stub);
  annotatePartition(m.step(), *decided, part);
  DeviceFolds folds = foldDeviceWeights(*decided, part);
  EXPECT_FALSE(folds.reshapes.empty());
  annotateFolded(folds.converts, "weight-convert");
  annotateFolded(folds.reshapes, "reshape-view");
  annotateFolded(folds.transposes, "transpose-view");

  StatusOr<MemoryPlan> rebuilt = planMemory(m.step(), PlanOptions{64, 1});
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().message();
  StatusOr<std::optional<Placement>> placement = readPlacement(*rebuilt);
  ASSERT_TRUE(placement.ok()) << placement.status().message();
  ASSERT_TRUE(placement->has_value());
  PartitionResult again = applyPlacement(*rebuilt, **placement);
  StatusOr<int> folded = applyRecordedFolds(*rebuilt, again);
  ASSERT_TRUE(folded.ok()) << folded.status().message();
  EXPECT_EQ(*folded, int(folds.converts.size() + folds.reshapes.size() + folds.transposes.size()));

  EXPECT_EQ(again.vulkanOps, part.vulkanOps);
  EXPECT_EQ(again.cpuOps, part.cpuOps);
  EXPECT_EQ(again.fallbacks, part.fallbacks);
  EXPECT_EQ(again.transfers, part.transfers);
  ASSERT_EQ(again.entries.size(), part.entries.size());
  for (size_t i = 0; i < part.entries.size(); ++i) {
    EXPECT_EQ(again.entries[i].dispatch, part.entries[i].dispatch);
    EXPECT_EQ(again.entries[i].device, part.entries[i].device);
    EXPECT_EQ(again.entries[i].reason, part.entries[i].reason);
    EXPECT_EQ(again.entries[i].fallback, part.entries[i].fallback);
  }
  ASSERT_EQ(rebuilt->dispatches.size(), decided->dispatches.size());
  for (size_t i = 0; i < decided->dispatches.size(); ++i) {
    EXPECT_EQ(rebuilt->dispatches[i].op, decided->dispatches[i].op) << i;
    EXPECT_EQ(rebuilt->dispatches[i].buffers, decided->dispatches[i].buffers) << i;
    EXPECT_EQ(rebuilt->dispatches[i].device, decided->dispatches[i].device) << i;
    EXPECT_EQ(rebuilt->dispatches[i].storageOrder, decided->dispatches[i].storageOrder) << i;
  }
  ASSERT_EQ(rebuilt->buffers.size(), decided->buffers.size());
  for (size_t i = 0; i < decided->buffers.size(); ++i) {
    EXPECT_EQ(rebuilt->buffers[i].location, decided->buffers[i].location) << i;
    EXPECT_EQ(rebuilt->buffers[i].offset, decided->buffers[i].offset) << i;
  }
  EXPECT_EQ(rebuilt->arenaBytes, decided->arenaBytes);
  EXPECT_EQ(rebuilt->deviceArenaBytes, decided->deviceArenaBytes);

  // Cleared, nothing is recorded: a fresh plan is all on the cpu again.
  clearPlanAnnotations(m.step());
  StatusOr<MemoryPlan> fresh = planMemory(m.step(), PlanOptions{64, 1});
  ASSERT_TRUE(fresh.ok());
  StatusOr<std::optional<Placement>> none = readPlacement(*fresh);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  bool annotated = false;
  m.step().walk([&](mlir::Operation *op) { annotated = annotated || op->hasAttr("kiln.device") || op->hasAttr("kiln.folded"); });
  EXPECT_FALSE(annotated);
}

} // namespace
