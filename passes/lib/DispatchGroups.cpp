//===- DispatchGroups.cpp - independent device dispatches as one kiln.group (DispatchGroups.h) ===//
#include "kiln/passes/DispatchGroups.h"

#include "kiln/ir/KilnDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

#include <algorithm>

namespace kiln::passes {
namespace {

/// A dispatch that may join a group: a grid kernel on the device, one pass.
bool groupable(const PlanDispatch &d) {
  return !d.transfer && d.device == DispatchDevice::Vulkan && d.pass == 0 && d.op &&
         mlir::isa<ir::RopeOp, ir::TransposeOp>(d.op);
}

/// The storage behind a buffer: a KV-cache view is its entry's one session buffer.
int64_t storageOf(const MemoryPlan &plan, int buffer) {
  const PlanBuffer &b = plan.buffers[size_t(buffer)];
  return b.kvEntry >= 0 ? -1 - int64_t(b.kvEntry) : int64_t(buffer);
}

/// True when dispatch `writer` writes a storage that dispatch `other` reads or writes.
bool conflicts(const MemoryPlan &plan, int writer, int other) {
  for (int w : plan.dispatches[size_t(writer)].written())
    for (int b : plan.dispatches[size_t(other)].buffers)
      if (storageOf(plan, w) == storageOf(plan, b))
        return true;
  return false;
}

bool independent(const MemoryPlan &plan, const std::vector<int> &run, int d) {
  return std::none_of(run.begin(), run.end(),
                      [&](int m) { return conflicts(plan, m, d) || conflicts(plan, d, m); });
}

/// The runs of at least two groupable, mutually independent dispatches, adjacent in the plan but for
/// transfers independent of them (an input uploaded between two members: the group runs after it).
std::vector<std::vector<int>> findRuns(const MemoryPlan &plan) {
  std::vector<std::vector<int>> runs;
  std::vector<int> run;
  auto close = [&] {
    if (run.size() >= 2)
      runs.push_back(run);
    run.clear();
  };
  for (int i = 0; i < int(plan.dispatches.size()); ++i) {
    if (plan.dispatches[size_t(i)].transfer && !run.empty() && independent(plan, run, i))
      continue;
    if (!groupable(plan.dispatches[size_t(i)])) {
      close();
      continue;
    }
    if (run.size() >= kMaxGroupMembers || !independent(plan, run, i))
      close();
    run.push_back(i);
  }
  close();
  return runs;
}

/// "group at model.layers.0.self_attn (kiln.rope + kiln.rope + kiln.transpose)".
std::string describeRun(const MemoryPlan &plan, const std::vector<int> &run) {
  std::string s;
  for (int d : run)
    s += (s.empty() ? "" : " + ") + plan.dispatches[size_t(d)].op->getName().getStringRef().str();
  return "group at " + plan.dispatches[size_t(run.front())].location + " (" + s + ")";
}

/// The group of a run as the plan will dispatch it.
struct Formed {
  ir::GroupOp op;
  std::vector<int> buffers;                      // inputs, then results
  std::vector<std::vector<int64_t>> storageOrder; // per buffer
};

/// Builds the kiln.group of `run` after its last member, the members cloned into its body (the originals
/// untouched). Null when a member's result is read before the last member (the group could not stand there).
Formed buildGroup(const MemoryPlan &plan, const std::vector<int> &run) {
  Formed f;
  mlir::Operation *last = plan.dispatches[size_t(run.back())].op;
  llvm::SmallVector<mlir::Value> inputs;
  llvm::SmallVector<mlir::Type> resultTypes;
  llvm::SmallVector<mlir::Location> locs;
  std::vector<int> resultBuffers;
  std::vector<std::vector<int64_t>> resultOrders;
  for (int di : run) {
    const PlanDispatch &d = plan.dispatches[size_t(di)];
    auto orderOf = [&](size_t k) { return k < d.storageOrder.size() ? d.storageOrder[k] : std::vector<int64_t>(); };
    for (auto [k, v] : llvm::enumerate(d.op->getOperands()))
      if (llvm::find(inputs, v) == inputs.end()) {
        inputs.push_back(v);
        f.buffers.push_back(d.buffers[k]);
        f.storageOrder.push_back(orderOf(k));
      }
    const size_t firstResult = d.buffers.size() - d.op->getNumResults();
    for (mlir::Value r : d.op->getResults()) {
      for (mlir::Operation *user : r.getUsers())
        if (user->getBlock() != last->getBlock() || !last->isBeforeInBlock(user))
          return {};
      resultTypes.push_back(r.getType());
      const size_t k = firstResult + mlir::cast<mlir::OpResult>(r).getResultNumber();
      resultBuffers.push_back(d.buffers[k]);
      resultOrders.push_back(orderOf(k));
    }
    locs.push_back(d.op->getLoc());
  }
  f.buffers.insert(f.buffers.end(), resultBuffers.begin(), resultBuffers.end());
  f.storageOrder.insert(f.storageOrder.end(), resultOrders.begin(), resultOrders.end());
  mlir::OpBuilder b(last->getContext());
  b.setInsertionPointAfter(last);
  f.op = ir::GroupOp::create(b, b.getFusedLoc(locs), resultTypes, inputs);
  mlir::Block *body = b.createBlock(&f.op.getBody());
  mlir::IRMapping map;
  for (mlir::Value v : inputs)
    map.map(v, body->addArgument(v.getType(), v.getLoc()));
  llvm::SmallVector<mlir::Value> yielded;
  for (int di : run)
    for (mlir::Value r : b.clone(*plan.dispatches[size_t(di)].op, map)->getResults())
      yielded.push_back(r);
  ir::YieldOp::create(b, last->getLoc(), yielded);
  return f;
}

/// The members' results read from the group, the members erased, the group's dispatch in the last's place.
void applyGroup(MemoryPlan &plan, const std::vector<int> &run, Formed &f) {
  unsigned result = 0;
  for (int di : run) {
    mlir::Operation *member = plan.dispatches[size_t(di)].op;
    for (mlir::Value r : member->getResults()) {
      mlir::Value replacement = f.op.getResult(result++);
      for (PlanBuffer &buffer : plan.buffers)
        if (buffer.value == r)
          buffer.value = replacement;
      r.replaceAllUsesWith(replacement);
    }
  }
  for (auto it = run.rbegin(); it != run.rend(); ++it)
    plan.dispatches[size_t(*it)].op->erase();
  PlanDispatch &d = plan.dispatches[size_t(run.back())];
  d.location = plan.dispatches[size_t(run.front())].location;
  d.op = f.op;
  d.buffers = f.buffers;
  const bool ordered = std::any_of(f.storageOrder.begin(), f.storageOrder.end(),
                                   [](const std::vector<int64_t> &o) { return !o.empty(); });
  d.storageOrder = ordered ? f.storageOrder : std::vector<std::vector<int64_t>>();
}

/// Drops the dispatches marked in `drop`, renumbering the partition's entries and transfers.
void dropDispatches(MemoryPlan &plan, PartitionResult &partition, const std::vector<bool> &drop) {
  std::vector<int> newIndex(plan.dispatches.size(), -1);
  std::vector<PlanDispatch> kept;
  for (size_t i = 0; i < plan.dispatches.size(); ++i) {
    if (drop[i])
      continue;
    newIndex[i] = int(kept.size());
    kept.push_back(std::move(plan.dispatches[i]));
  }
  plan.dispatches = std::move(kept);
  std::vector<PartitionEntry> entries;
  for (PartitionEntry &pe : partition.entries) {
    if (pe.dispatch >= 0 && drop[size_t(pe.dispatch)]) {
      --(pe.device == DispatchDevice::Vulkan ? partition.vulkanOps : partition.cpuOps);
      continue;
    }
    pe.dispatch = pe.dispatch >= 0 ? newIndex[size_t(pe.dispatch)] : -1;
    if (pe.dispatch >= 0 && mlir::isa_and_nonnull<ir::GroupOp>(plan.dispatches[size_t(pe.dispatch)].op))
      pe.op = ir::GroupOp::getOperationName().str();
    entries.push_back(std::move(pe));
  }
  partition.entries = std::move(entries);
  for (int &t : partition.transferDispatches)
    t = newIndex[size_t(t)];
}

} // namespace

DispatchGroups groupDispatches(MemoryPlan &plan, PartitionResult &partition, const DispatchGroupFilter &accept) {
  DispatchGroups out;
  std::vector<bool> drop(plan.dispatches.size(), false);
  for (const std::vector<int> &run : findRuns(plan)) {
    const std::string what = describeRun(plan, run);
    Formed f = buildGroup(plan, run);
    if (!f.op) {
      out.rejected.push_back(what + ": a member's result is read before the last member");
      continue;
    }
    if (std::string why = accept ? accept(f.op) : ""; !why.empty()) {
      f.op->erase();
      out.rejected.push_back(what + ": " + why);
      continue;
    }
    applyGroup(plan, run, f);
    for (size_t k = 0; k + 1 < run.size(); ++k)
      drop[size_t(run[k])] = true;
    out.dispatchesRemoved += int(run.size()) - 1;
    out.groups.push_back(what);
  }
  if (out.dispatchesRemoved > 0) {
    dropDispatches(plan, partition, drop);
    layoutArenas(plan);
  }
  return out;
}

} // namespace kiln::passes
