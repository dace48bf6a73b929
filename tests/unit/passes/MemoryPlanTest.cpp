// The memory plan on the real test models (llama-tiny, bert-tiny, gemma3-tiny) and on small hand-written
// step functions: buffer roles, dispatch order, KV pairing, the max_bytes bound (checked exhaustively over
// every legal (b, s, p) of a small context) and the arena layout (no two simultaneously live buffers
// overlap, checked over every pair).
#include "PlanTestUtil.h"
#include "kiln/passes/MemoryPlan.h"

#include "kiln/ir/KilnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

using namespace kiln;
using namespace kiln::passes;
using namespace kiln::passes::test;

namespace {

// The structural invariants every plan must satisfy.
void checkPlan(mlir::func::FuncOp step, const MemoryPlan &plan) {
  // ids, dispatch list = every op except weight / constant / return, in order.
  for (size_t i = 0; i < plan.buffers.size(); ++i)
    EXPECT_EQ(plan.buffers[i].id, int(i));
  std::vector<mlir::Operation *> expected;
  for (mlir::Operation &op : step.getBody().front())
    if (!mlir::isa<ir::WeightOp, ir::ConstantOp, mlir::func::ReturnOp>(op))
      expected.push_back(&op);
  EXPECT_EQ(plan.dispatchOps(), expected);
  for (size_t i = 0; i < plan.dispatches.size(); ++i) {
    const PlanDispatch &d = plan.dispatches[i];
    ASSERT_EQ(d.buffers.size(), d.op->getNumOperands() + d.op->getNumResults());
    for (size_t k = 0; k < d.buffers.size(); ++k) {
      const PlanBuffer &b = plan.buffers[size_t(d.buffers[k])];
      mlir::Value v = k < d.op->getNumOperands() ? d.op->getOperand(unsigned(k))
                                                 : d.op->getResult(unsigned(k - d.op->getNumOperands()));
      EXPECT_EQ(b.value.getType(), v.getType());
      if (b.kind == BufferKind::Arena) {
        EXPECT_LE(b.firstUse, int(i)) << "dispatch " << i << " uses buffer " << b.id << " before it is live";
        EXPECT_GE(b.lastUse, int(i)) << "dispatch " << i << " uses buffer " << b.id << " after it died";
      }
    }
  }
  // Arena: aligned, inside, and no two simultaneously live buffers overlap (every pair).
  uint64_t sum = 0;
  size_t arenaCount = 0;
  for (const PlanBuffer &a : plan.buffers) {
    if (a.kind != BufferKind::Arena)
      continue;
    ++arenaCount;
    sum += a.maxBytes;
    EXPECT_EQ(a.offset % 64, 0u);
    EXPECT_LE(a.offset + a.maxBytes, plan.arenaBytes);
    for (const PlanBuffer &b : plan.buffers) {
      if (b.kind != BufferKind::Arena || b.id <= a.id)
        continue;
      bool liveTogether = a.firstUse <= b.lastUse && b.firstUse <= a.lastUse;
      bool overlap = a.offset < b.offset + b.maxBytes && b.offset < a.offset + a.maxBytes;
      EXPECT_FALSE(liveTogether && overlap)
          << "buffers " << a.id << " [" << a.firstUse << ", " << a.lastUse << "] @" << a.offset << "+"
          << a.maxBytes << " and " << b.id << " [" << b.firstUse << ", " << b.lastUse << "] @" << b.offset << "+"
          << b.maxBytes << " overlap while both live";
    }
  }
  EXPECT_EQ(sum, plan.intermediateBytes);
  if (arenaCount > 2)
    EXPECT_LT(plan.arenaBytes, plan.intermediateBytes) << "no reuse at all";
  // Weights: aligned, disjoint, in the section.
  std::vector<std::pair<uint64_t, uint64_t>> w;
  for (const PlanBuffer &b : plan.buffers)
    if (b.kind == BufferKind::Weight) {
      EXPECT_EQ(b.offset % 64, 0u);
      EXPECT_TRUE(b.isConstant ? b.weightName.empty() && b.constantData.size() == b.maxBytes
                               : !b.weightName.empty());
      w.push_back({b.offset, b.offset + b.maxBytes});
    }
  std::sort(w.begin(), w.end());
  for (size_t i = 1; i < w.size(); ++i)
    EXPECT_LE(w[i - 1].second, w[i].first);
  if (!w.empty())
    EXPECT_EQ(plan.weightsBytes, align64(w.back().second));
  // Outputs live to the end.
  for (const PlanPort &p : plan.outputs) {
    const PlanBuffer &b = plan.buffers[size_t(p.buffer)];
    if (b.kind == BufferKind::Arena)
      EXPECT_EQ(b.lastUse, int(plan.dispatches.size()) - 1);
  }
}

int64_t evalBytes(const PlanBuffer &b, int64_t bv, int64_t sv, int64_t pv) {
  // r (the logits rows) at its largest legal value, s.
  std::map<std::string, int64_t> bind{{"b", bv}, {"s", sv}, {"p", pv}, {"r", sv}};
  int64_t n = int64_t(elementBytes(b.elementType));
  for (const ir::SymExpr &d : b.shape)
    n *= *d.evaluate(bind);
  return n;
}

} // namespace

TEST(MemoryPlan, MaxDimValue) {
  PlanOptions o{100, 4};
  auto v = [&](const char *text) { return *maxDimValue(*ir::SymExpr::parse(text), o); };
  EXPECT_EQ(v("64"), 64);
  EXPECT_EQ(v("b"), 4);
  EXPECT_EQ(v("s"), 100);
  EXPECT_EQ(v("p"), 99) << "s >= 1, so p <= max-context - 1";
  EXPECT_EQ(v("p + s"), 100) << "p + s <= max-context, not 2 * max-context";
  EXPECT_EQ(v("2*s + 1"), 201);
  EXPECT_EQ(v("p + 2*s"), 200);
  EXPECT_EQ(v("2*p + s"), 1 + 2 * 99);
  EXPECT_EQ(v("b + s + 3"), 107);
  EXPECT_FALSE(maxDimValue(*ir::SymExpr::parse("q"), o).ok());
}

TEST(MemoryPlan, LlamaTiny) {
  Model m = loadModel("llama-tiny");
  StatusOr<MemoryPlan> plan = planModel(m, PlanOptions{64, 2});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  checkPlan(m.step(), *plan);

  EXPECT_EQ(plan->symbolNames(), (std::vector<std::string>{"b", "p", "r", "s"}));
  ASSERT_EQ(plan->inputs.size(), 5u);
  EXPECT_EQ(plan->inputs[0].name, "input_ids");
  EXPECT_EQ(plan->buffers[size_t(plan->inputs[0].buffer)].kind, BufferKind::Input);
  for (size_t i = 1; i < 5; ++i)
    EXPECT_EQ(plan->buffers[size_t(plan->inputs[i].buffer)].kind, BufferKind::KvCache);
  ASSERT_EQ(plan->outputs.size(), 5u);
  EXPECT_EQ(plan->outputs[0].name, "logits");
  const PlanBuffer &logits = plan->buffers[size_t(plan->outputs[0].buffer)];
  EXPECT_EQ(logits.kind, BufferKind::Arena);
  EXPECT_EQ(logits.maxBytes, 2u * 64 * 512 * 4);
  ASSERT_EQ(plan->kvCache.size(), 4u);
  std::set<std::string> kvNames;
  for (const PlanKvEntry &e : plan->kvCache) {
    kvNames.insert(e.name);
    EXPECT_EQ(plan->buffers[size_t(e.pastBuffer)].name, "past_" + e.name);
    EXPECT_EQ(plan->buffers[size_t(e.presentBuffer)].name, "present_" + e.name);
    EXPECT_EQ(plan->buffers[size_t(e.presentBuffer)].kind, BufferKind::KvCache);
    EXPECT_EQ(e.seqAxis, 2);
    // [b, 2, p + s, 16] f32: p + s <= 64.
    EXPECT_EQ(plan->buffers[size_t(e.presentBuffer)].maxBytes, 2u * 2 * 64 * 16 * 4);
  }
  EXPECT_EQ(kvNames, (std::set<std::string>{"key.0", "key.1", "value.0", "value.1"}));
  // Every weight of the module has one buffer; the safetensors names survive.
  std::set<std::string> weightNames;
  m.step().walk([&](ir::WeightOp w) { weightNames.insert(w.getName().str()); });
  std::set<std::string> planned;
  for (const PlanBuffer &b : plan->buffers)
    if (b.kind == BufferKind::Weight && !b.isConstant)
      planned.insert(b.weightName);
  EXPECT_EQ(planned, weightNames);
  EXPECT_LT(plan->arenaBytes, plan->intermediateBytes);
}

TEST(MemoryPlan, FusedModels) {
  for (const char *name : {"llama-tiny", "gemma3-tiny", "bert-tiny", "gpt2-tiny", "mistral-tiny"}) {
    SCOPED_TRACE(name);
    Model m = loadModel(name, /*fused=*/true);
    StatusOr<MemoryPlan> plan = planModel(m, PlanOptions{64, 2});
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    checkPlan(m.step(), *plan);
  }
}

TEST(MemoryPlan, MaxBytesBoundsEveryLegalShape) {
  const int64_t C = 6, B = 2;
  Model m = loadModel("llama-tiny");
  StatusOr<MemoryPlan> plan = planModel(m, PlanOptions{C, B});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  for (const PlanBuffer &b : plan->buffers) {
    int64_t largest = 0;
    for (int64_t bv = 1; bv <= B; ++bv)
      for (int64_t sv = 1; sv <= C; ++sv)
        for (int64_t pv = 0; pv + sv <= C; ++pv) {
          int64_t bytes = evalBytes(b, bv, sv, pv);
          EXPECT_LE(bytes, int64_t(b.maxBytes)) << b.name << " at b=" << bv << " s=" << sv << " p=" << pv;
          largest = std::max(largest, bytes);
        }
    // Every step-function shape is linear in one of s, p, p + s: the bound is attained.
    EXPECT_EQ(largest, int64_t(b.maxBytes)) << b.name << " " << ir::formatShape(b.shape);
  }
}

TEST(MemoryPlan, Encoder) {
  Model m = loadModel("bert-tiny");
  StatusOr<MemoryPlan> plan = planModel(m, PlanOptions{32, 4});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  checkPlan(m.step(), *plan);
  EXPECT_TRUE(plan->kvCache.empty());
  ASSERT_EQ(plan->inputs.size(), 2u);
  EXPECT_EQ(plan->inputs[1].name, "attention_mask");
  EXPECT_EQ(plan->buffers[size_t(plan->inputs[1].buffer)].kind, BufferKind::Input);
  ASSERT_EQ(plan->outputs.size(), 1u);
  EXPECT_EQ(plan->outputs[0].name, "last_hidden_state");
  EXPECT_EQ(plan->buffers[size_t(plan->outputs[0].buffer)].kind, BufferKind::Arena);
  for (const PlanSymbol &s : plan->symbols)
    EXPECT_NE(s.name, "p");
}

TEST(MemoryPlan, Gemma3TiedWeightsDeduplicated) {
  Model m = loadModel("gemma3-tiny");
  StatusOr<MemoryPlan> plan = planModel(m, PlanOptions{64, 1});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  checkPlan(m.step(), *plan);
  std::set<std::string> names;
  for (const PlanBuffer &b : plan->buffers)
    if (b.kind == BufferKind::Weight && !b.isConstant)
      EXPECT_TRUE(names.insert(b.weightName).second) << b.weightName << " placed twice";
}

namespace {
class HandWritten : public test::HandPlanTest {
protected:
  HandWritten() : HandPlanTest(PlanOptions{16, 2}) {}
};
} // namespace

TEST_F(HandWritten, ConstantsBecomeWeightsWithBytes) {
  StatusOr<MemoryPlan> p = plan(R"(
    func.func @step(%x: tensor<?x4xf32, #kiln.dims<[s]>> {kiln.name = "x"}) -> (tensor<?x4xf32, #kiln.dims<[s]>> {kiln.name = "y"}) {
      %c = kiln.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32> : tensor<4xf32>
      %d = kiln.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32> : tensor<4xf32>
      %m = kiln.constant dense<true> : tensor<2xi1> : tensor<2xi1>
      %a = kiln.add %x, %c : (tensor<?x4xf32, #kiln.dims<[s]>>, tensor<4xf32>) -> tensor<?x4xf32, #kiln.dims<[s]>>
      %b = kiln.mul %a, %d : (tensor<?x4xf32, #kiln.dims<[s]>>, tensor<4xf32>) -> tensor<?x4xf32, #kiln.dims<[s]>>
      return %b : tensor<?x4xf32, #kiln.dims<[s]>>
    })");
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_EQ(p->dispatches.size(), 2u);
  // Identical constants share one buffer.
  EXPECT_EQ(p->dispatches[0].buffers[1], p->dispatches[1].buffers[1]);
  const PlanBuffer &c = p->buffers[size_t(p->dispatches[0].buffers[1])];
  ASSERT_TRUE(c.isConstant);
  float expect[4] = {1, 2, 3, 4};
  ASSERT_EQ(c.constantData.size(), 16u);
  EXPECT_EQ(std::memcmp(c.constantData.data(), expect, 16), 0);
  int masks = 0;
  for (const PlanBuffer &b : p->buffers)
    if (b.isConstant && b.maxBytes == 2) {
      ++masks;
      EXPECT_EQ(b.constantData, (std::vector<uint8_t>{1, 1}));
    }
  EXPECT_EQ(masks, 1);
  EXPECT_EQ(p->symbolNames(), std::vector<std::string>{"s"});
  EXPECT_EQ(p->buffers[size_t(p->outputs[0].buffer)].name, "y");
}

TEST_F(HandWritten, Errors) {
  auto expectError = [&](const std::string &src, const std::string &what) {
    StatusOr<MemoryPlan> p = plan(src);
    ASSERT_FALSE(p.ok()) << "accepted; expected: " << what;
    EXPECT_NE(p.status().message().find(what), std::string::npos) << p.status().message();
    EXPECT_EQ(p.status().message().find('\n'), std::string::npos);
  };
  expectError(R"(
    func.func @step(%x: tensor<?x4xf32, #kiln.dims<[s]>> {kiln.name = "x"}) -> (tensor<?x4xf32, #kiln.dims<[s]>> {kiln.name = "y"}) {
      return %x : tensor<?x4xf32, #kiln.dims<[s]>>
    })", "returned directly");
  expectError(R"(
    func.func @step(%x: tensor<?x4xf32, #kiln.dims<[s]>> {kiln.name = "x"}) -> (tensor<?x4xf32, #kiln.dims<[s]>> {kiln.name = "y"}, tensor<?x4xf32, #kiln.dims<[s]>> {kiln.name = "z"}) {
      %a = kiln.neg %x : tensor<?x4xf32, #kiln.dims<[s]>> -> tensor<?x4xf32, #kiln.dims<[s]>>
      return %a, %a : tensor<?x4xf32, #kiln.dims<[s]>>, tensor<?x4xf32, #kiln.dims<[s]>>
    })", "same value as another result");
  expectError(R"(
    func.func @step(%x: tensor<?x4xf32, #kiln.dims<[s]>>) -> (tensor<?x4xf32, #kiln.dims<[s]>> {kiln.name = "y"}) {
      %a = kiln.neg %x : tensor<?x4xf32, #kiln.dims<[s]>> -> tensor<?x4xf32, #kiln.dims<[s]>>
      return %a : tensor<?x4xf32, #kiln.dims<[s]>>
    })", "argument 0 has no kiln.name");
  expectError(R"(
    func.func @step(%x: tensor<1x2x?x4xf32, #kiln.dims<[p]>> {kiln.name = "past_key.0"}) -> (tensor<1x2x?x4xf32, #kiln.dims<[p]>> {kiln.name = "y"}) {
      %a = kiln.neg %x : tensor<1x2x?x4xf32, #kiln.dims<[p]>> -> tensor<1x2x?x4xf32, #kiln.dims<[p]>>
      return %a : tensor<1x2x?x4xf32, #kiln.dims<[p]>>
    })", "has no result 'present_key.0'");
  expectError(R"(
    func.func @step(%x: tensor<?x4xf32, #kiln.dims<[q]>> {kiln.name = "x"}) -> (tensor<?x4xf32, #kiln.dims<[q]>> {kiln.name = "y"}) {
      %a = kiln.neg %x : tensor<?x4xf32, #kiln.dims<[q]>> -> tensor<?x4xf32, #kiln.dims<[q]>>
      return %a : tensor<?x4xf32, #kiln.dims<[q]>>
    })", "symbol 'q' has no bound");
}

// ---- KV cache in place (placeKvCacheInPlace) ----

namespace {
// Every strided view points at an in-place entry, every in-place entry's views share its capacity, and no
// dispatch reads or writes a view except the kernels that take one.
void checkKvViews(const MemoryPlan &plan) {
  for (const PlanBuffer &b : plan.buffers) {
    if (b.rowCapacity == 0)
      continue;
    EXPECT_EQ(b.kind, BufferKind::KvCache) << b.name;
    ASSERT_GE(b.kvEntry, 0) << b.name;
    ASSERT_LT(size_t(b.kvEntry), plan.kvCache.size());
    EXPECT_TRUE(plan.kvCache[size_t(b.kvEntry)].inPlace) << b.name;
    EXPECT_EQ(b.rowCapacity, plan.kvCache[size_t(b.kvEntry)].capacity) << b.name;
  }
  for (size_t i = 0; i < plan.dispatches.size(); ++i) {
    const PlanDispatch &d = plan.dispatches[i];
    DispatchLayout l = dispatchLayout(plan, int(i));
    for (size_t k = 0; k < d.buffers.size(); ++k) {
      if (l.rowCapacity[k] == 0)
        continue;
      ASSERT_FALSE(d.transfer);
      bool result = k + 1 == d.buffers.size();
      bool ok = (mlir::isa<ir::AttentionOp>(d.op) && (k == 1 || k == 2)) ||
                (mlir::isa<ir::RopeOp, ir::TransposeOp>(d.op) && result) ||
                (mlir::isa<ir::ConcatOp>(d.op) && l.appendInPlace && (result || k == 0));
      EXPECT_TRUE(ok) << d.op->getName().getStringRef().str() << " buffer " << k << " is a strided view";
    }
  }
}
} // namespace

TEST(KvInPlace, FusedLlamaProducersWriteIntoTheCache) {
  Model m = loadModel("llama-tiny", /*fused=*/true);
  StatusOr<MemoryPlan> plan = planModel(m, PlanOptions{64, 2});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const size_t dispatchesBefore = plan->dispatches.size();
  const uint64_t arenaBefore = plan->arenaBytes;
  EXPECT_EQ(placeKvCacheInPlace(*plan, KvInPlaceOptions{}), 4);
  checkKvViews(*plan);
  for (const PlanKvEntry &e : plan->kvCache) {
    SCOPED_TRACE(e.name);
    EXPECT_TRUE(e.inPlace) << e.reason;
    EXPECT_EQ(e.capacity, 64);
    const PlanBuffer &past = plan->buffers[size_t(e.pastBuffer)], &present = plan->buffers[size_t(e.presentBuffer)];
    EXPECT_EQ(past.rowCapacity, 64);
    EXPECT_EQ(present.rowCapacity, 64);
    EXPECT_EQ(past.kvEntry, present.kvEntry);
    EXPECT_EQ(past.rowOffset, ir::SymExpr::constant(0));
    // The storage [b, 2, capacity, 16] f32 at b = 2.
    EXPECT_EQ(present.maxBytes, 2u * 2 * 64 * 16 * 4);
    // Keys come out of kiln.rope, values out of the head transpose: both write the cache slot at row p.
    ASSERT_GE(e.appendBuffer, 0);
    EXPECT_EQ(e.producer, e.name.rfind("key", 0) == 0 ? "kiln.rope" : "kiln.transpose");
    const PlanBuffer &fresh = plan->buffers[size_t(e.appendBuffer)];
    EXPECT_EQ(fresh.kind, BufferKind::KvCache);
    EXPECT_EQ(fresh.rowOffset, ir::SymExpr::symbol("p"));
  }
  // The four appends have no dispatch left; the attentions read the views with the capacity stride.
  EXPECT_EQ(plan->dispatches.size(), dispatchesBefore - 4);
  int attentions = 0;
  for (size_t i = 0; i < plan->dispatches.size(); ++i) {
    const PlanDispatch &d = plan->dispatches[i];
    EXPECT_FALSE(mlir::isa<ir::ConcatOp>(d.op) && plan->buffers[size_t(d.buffers.back())].kind == BufferKind::KvCache);
    if (!mlir::isa<ir::AttentionOp>(d.op))
      continue;
    ++attentions;
    DispatchLayout l = dispatchLayout(*plan, int(i));
    EXPECT_EQ(l.rowCapacity[1], 64);
    EXPECT_EQ(l.rowCapacity[2], 64);
    EXPECT_EQ(l.rowCapacity[0], 0);
  }
  EXPECT_EQ(attentions, 2);
  // The key / value temporaries left the arena.
  EXPECT_LE(plan->arenaBytes, arenaBefore);
  EXPECT_NE(kvCacheSummary(*plan).find("kv cache: 2 x 2 buffers in place, capacity 64"), std::string::npos)
      << kvCacheSummary(*plan);
}

// A split attention combined in its one dispatch (addCombinedSplit): the dispatch keeps its place and gains a
// scratch and a counters buffer before its result, all three written; the scratch lives at its dispatch only,
// the counters the whole step, so no other arena buffer ever shares their bytes (what one step leaves in them
// is there for the next).
TEST(MemoryPlan, CombinedSplitCountersLiveTheWholeStep) {
  Model m = loadModel("llama-tiny", /*fused=*/true);
  StatusOr<MemoryPlan> plan = planModel(m, PlanOptions{64, 2});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const size_t dispatches = plan->dispatches.size();
  std::vector<int> split;
  for (size_t i = 0; i < dispatches; ++i)
    if (mlir::isa<ir::AttentionOp>(plan->dispatches[i].op)) {
      addCombinedSplit(*plan, int(i), 1000, mlir::Float32Type::get(m.context.get()), 24,
                       mlir::IntegerType::get(m.context.get(), 32));
      split.push_back(int(i));
    }
  ASSERT_EQ(split.size(), 2u);
  layoutArenas(*plan);
  EXPECT_EQ(plan->dispatches.size(), dispatches);
  std::set<int> counters;
  for (int i : split) {
    const PlanDispatch &d = plan->dispatches[size_t(i)];
    EXPECT_EQ(d.pass, PlanDispatch::kCombinedPass);
    ASSERT_EQ(d.buffers.size(), d.op->getNumOperands() + 3);
    const PlanBuffer &scratch = plan->buffers[size_t(d.buffers[d.op->getNumOperands()])],
                     &count = plan->buffers[size_t(d.buffers[d.op->getNumOperands() + 1])];
    EXPECT_EQ(d.written(), std::vector<int>(d.buffers.end() - 3, d.buffers.end()));
    EXPECT_EQ(scratch.maxBytes, 1000u);
    EXPECT_EQ(std::make_pair(scratch.firstUse, scratch.lastUse), std::make_pair(i, i));
    EXPECT_TRUE(count.wholeStep);
    EXPECT_EQ(count.maxBytes, 24u);
    EXPECT_EQ(std::make_pair(count.firstUse, count.lastUse), std::make_pair(0, int(dispatches) - 1));
    counters.insert(count.id);
  }
  for (int c : counters) {
    const PlanBuffer &a = plan->buffers[size_t(c)];
    for (const PlanBuffer &b : plan->buffers)
      if (b.id != c && b.kind == BufferKind::Arena && b.location == a.location)
        EXPECT_FALSE(a.offset < b.offset + b.maxBytes && b.offset < a.offset + a.maxBytes)
            << "counters " << a.id << " @" << a.offset << " share bytes with buffer " << b.id << " @" << b.offset;
  }
}

TEST(KvInPlace, FusedModelsAllInPlace) {
  for (const char *name : {"gemma3-tiny", "gpt2-tiny", "mistral-tiny", "phi3-tiny", "qwen2-tiny"}) {
    SCOPED_TRACE(name);
    Model m = loadModel(name, /*fused=*/true);
    StatusOr<MemoryPlan> plan = planModel(m, PlanOptions{32, 1});
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    EXPECT_EQ(placeKvCacheInPlace(*plan, KvInPlaceOptions{}), int(plan->kvCache.size()));
    checkKvViews(*plan);
    for (const PlanKvEntry &e : plan->kvCache)
      EXPECT_GE(e.appendBuffer, 0) << e.name << " (" << e.producer << ")";
  }
}

TEST(KvInPlace, UnfusedGraphKeepsTheTwoBufferPath) {
  // --no-fuse: present_X feeds a reshape / matmul (GQA repeat, Q.K^T), which take no strided view.
  Model m = loadModel("llama-tiny");
  StatusOr<MemoryPlan> plan = planModel(m, PlanOptions{64, 1});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const size_t dispatches = plan->dispatches.size();
  EXPECT_EQ(placeKvCacheInPlace(*plan, KvInPlaceOptions{}), 0);
  EXPECT_EQ(plan->dispatches.size(), dispatches);
  checkPlan(m.step(), *plan);
  for (const PlanKvEntry &e : plan->kvCache) {
    EXPECT_FALSE(e.inPlace);
    EXPECT_NE(e.reason.find("whose kernel takes no strided cache view"), std::string::npos) << e.reason;
    EXPECT_EQ(plan->buffers[size_t(e.presentBuffer)].rowCapacity, 0);
  }
  EXPECT_NE(kvCacheSummary(*plan).find("kv cache: 0 x 2 buffers in place; 2 x 2 buffers copied forward"),
            std::string::npos)
      << kvCacheSummary(*plan);
}

namespace {
// One layer's cache by hand: k_in [b, s, 2, 16] -> transpose -> concat(past_key.0, .) -> attention.
// `extra` goes before the return; with `result` (a value of type `type`) it is returned as "extra".
std::string kvStep(const std::string &extra, const std::string &result = "", const std::string &type = "") {
  const std::string results = result.empty() ? "" : ", " + result, types = type.empty() ? "" : ", " + type;
  const std::string named = type.empty() ? "" : ", " + type + " {kiln.name = \"extra\"}";
  const std::string kv = "tensor<?x2x?x16xf32, #kiln.dims<[b, p + s]>>";
  return R"(
    func.func @step(%q: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {kiln.name = "q"},
                    %kin: tensor<?x?x2x16xf32, #kiln.dims<[b, s]>> {kiln.name = "k"},
                    %pk: tensor<?x2x?x16xf32, #kiln.dims<[b, p]>> {kiln.name = "past_key.0"})
        -> (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {kiln.name = "out"}, )" + kv + R"( {kiln.name = "present_key.0"})" +
         named + R"() {
      %t = kiln.transpose %kin {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x16xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x16xf32, #kiln.dims<[b, s]>>
      %c = kiln.concat %pk, %t {axis = 2 : i64} : (tensor<?x2x?x16xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x16xf32, #kiln.dims<[b, s]>>) -> )" + kv + R"(
      %a = kiln.attention %q, %c, %c {mask = #kiln.mask<causal>, scale = 2.500000e-01 : f64} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, )" + kv + ", " + kv + R"() -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
      )" + extra + R"(
      return %a, %c)" + results + " : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, " + kv + types + R"(
    })";
}
} // namespace

TEST_F(HandWritten, KvInPlaceFoldsTheTranspose) {
  StatusOr<MemoryPlan> p = plan(kvStep(""));
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_EQ(p->dispatches.size(), 3u);
  EXPECT_EQ(placeKvCacheInPlace(*p, KvInPlaceOptions{}), 1);
  checkKvViews(*p);
  const PlanKvEntry &e = p->kvCache[0];
  EXPECT_TRUE(e.inPlace);
  EXPECT_EQ(e.capacity, 16);
  EXPECT_EQ(e.producer, "kiln.transpose");
  // transpose (writes the cache slot at row p), attention; the concat is gone.
  ASSERT_EQ(p->dispatches.size(), 2u);
  EXPECT_TRUE(mlir::isa<ir::TransposeOp>(p->dispatches[0].op));
  EXPECT_EQ(p->dispatches[0].buffers[1], e.appendBuffer);
  EXPECT_EQ(dispatchLayout(*p, 0).rowCapacity, (std::vector<int64_t>{0, 16}));
  EXPECT_TRUE(mlir::isa<ir::AttentionOp>(p->dispatches[1].op));
  EXPECT_EQ(dispatchLayout(*p, 1).rowCapacity, (std::vector<int64_t>{0, 16, 16, 0}));
}

TEST_F(HandWritten, KvInPlaceAppendCopiesAProducerWithTwoUses) {
  // The transpose's result is also read by a neg: it keeps its temporary and the concat appends it.
  StatusOr<MemoryPlan> p = plan(kvStep(
      "%n = kiln.neg %t : tensor<?x2x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x16xf32, #kiln.dims<[b, s]>>", "%n",
      "tensor<?x2x?x16xf32, #kiln.dims<[b, s]>>"));
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(placeKvCacheInPlace(*p, KvInPlaceOptions{}), 1);
  checkKvViews(*p);
  const PlanKvEntry &e = p->kvCache[0];
  EXPECT_TRUE(e.inPlace);
  EXPECT_EQ(e.appendBuffer, -1);
  ASSERT_EQ(p->dispatches.size(), 4u);
  ASSERT_TRUE(mlir::isa<ir::ConcatOp>(p->dispatches[1].op));
  DispatchLayout l = dispatchLayout(*p, 1);
  EXPECT_TRUE(l.appendInPlace);
  EXPECT_EQ(l.rowCapacity, (std::vector<int64_t>{16, 0, 16}));
  EXPECT_EQ(dispatchLayout(*p, 0).rowCapacity, (std::vector<int64_t>{0, 0})) << "the transpose keeps its buffer";
  EXPECT_NE(kvCacheSummary(*p).find("1 appends copy the new rows"), std::string::npos) << kvCacheSummary(*p);
}

TEST_F(HandWritten, KvNotInPlaceWhenPresentHasAnotherReader) {
  // present_key.0 is also read by a reduce: that kernel walks a row-major buffer, so no aliasing at all.
  StatusOr<MemoryPlan> p = plan(kvStep(
      "%r = kiln.reduce_sum %c {axis = 3 : i64, keepdim = true} : tensor<?x2x?x16xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x?x1xf32, #kiln.dims<[b, p + s]>>",
      "%r", "tensor<?x2x?x1xf32, #kiln.dims<[b, p + s]>>"));
  ASSERT_TRUE(p.ok()) << p.status().message();
  const size_t dispatches = p->dispatches.size();
  EXPECT_EQ(placeKvCacheInPlace(*p, KvInPlaceOptions{}), 0);
  const PlanKvEntry &e = p->kvCache[0];
  EXPECT_FALSE(e.inPlace);
  EXPECT_NE(e.reason.find("present_key.0 is read by kiln.reduce_sum (operand 0)"), std::string::npos) << e.reason;
  EXPECT_EQ(p->dispatches.size(), dispatches);
  for (const PlanBuffer &b : p->buffers)
    EXPECT_EQ(b.rowCapacity, 0) << b.name;
  EXPECT_EQ(p->buffers[size_t(e.pastBuffer)].kvEntry, -1);
}

TEST_F(HandWritten, KvNotInPlaceWhenPastHasAnotherReader) {
  StatusOr<MemoryPlan> p = plan(kvStep(
      "%n = kiln.neg %pk : tensor<?x2x?x16xf32, #kiln.dims<[b, p]>> -> tensor<?x2x?x16xf32, #kiln.dims<[b, p]>>", "%n",
      "tensor<?x2x?x16xf32, #kiln.dims<[b, p]>>"));
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(placeKvCacheInPlace(*p, KvInPlaceOptions{}), 0);
  EXPECT_NE(p->kvCache[0].reason.find("past_key.0 is read by 2 dispatches"), std::string::npos) << p->kvCache[0].reason;
}

TEST_F(HandWritten, KvNotInPlaceOnVulkanYet) {
  StatusOr<MemoryPlan> p = plan(kvStep(""));
  ASSERT_TRUE(p.ok()) << p.status().message();
  for (PlanDispatch &d : p->dispatches)
    d.device = DispatchDevice::Vulkan;
  EXPECT_EQ(placeKvCacheInPlace(*p, KvInPlaceOptions{}), 0);
  EXPECT_NE(p->kvCache[0].reason.find("vulkan"), std::string::npos) << p->kvCache[0].reason;
}
