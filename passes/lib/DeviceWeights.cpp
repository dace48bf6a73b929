//===- DeviceWeights.cpp - f16 / bf16 weights read in place by Vulkan kernels ------===//
#include "kiln/passes/DeviceWeights.h"
#include "kiln/ir/KilnDialect.h"

#include "llvm/ADT/STLFunctionalExtras.h"

#include <algorithm>
#include <map>
#include <set>

namespace kiln::passes {

namespace {
bool isFloat16Storage(mlir::Type t) { return t && (t.isF16() || t.isBF16()); }
/// Readers of every buffer: (dispatch, operand index).
std::vector<std::vector<std::pair<int, int>>> readersOf(const MemoryPlan &plan) {
  std::vector<std::vector<std::pair<int, int>>> readers(plan.buffers.size());
  for (size_t i = 0; i < plan.dispatches.size(); ++i) {
    const PlanDispatch &d = plan.dispatches[i];
    std::vector<int> written = d.written();
    for (size_t k = 0; k < d.buffers.size(); ++k)
      if (std::find(written.begin(), written.end(), d.buffers[k]) == written.end())
        readers[size_t(d.buffers[k])].push_back({int(i), int(k)});
  }
  return readers;
}

/// Removes the dispatches and buffers marked for dropping (no remaining dispatch may use a dropped buffer),
/// renumbers buffers and dispatches everywhere (ports, KV entries, copies, the partition) and lays the
/// arenas out again.
void removeFromPlan(MemoryPlan &plan, PartitionResult &partition, const std::vector<bool> &dropDispatch,
                    const std::vector<bool> &dropBuffer) {
  const size_t nb = plan.buffers.size();
  // Renumber the buffers without the dropped ones.
  std::vector<int> newId(nb, -1);
  std::vector<PlanBuffer> buffers;
  for (size_t id = 0; id < nb; ++id) {
    if (dropBuffer[id])
      continue;
    newId[id] = int(buffers.size());
    buffers.push_back(std::move(plan.buffers[id]));
    buffers.back().id = newId[id];
  }
  for (PlanBuffer &b : buffers)
    if (b.copyOf >= 0)
      b.copyOf = newId[size_t(b.copyOf)];
  plan.buffers = std::move(buffers);
  std::vector<int> newIndex(plan.dispatches.size(), -1);
  std::vector<PlanDispatch> dispatches;
  for (size_t i = 0; i < plan.dispatches.size(); ++i) {
    if (dropDispatch[i])
      continue;
    newIndex[i] = int(dispatches.size());
    for (int &id : plan.dispatches[i].buffers)
      id = newId[size_t(id)];
    dispatches.push_back(std::move(plan.dispatches[i]));
  }
  plan.dispatches = std::move(dispatches);
  for (PlanPort &p : plan.inputs)
    p.buffer = newId[size_t(p.buffer)];
  for (PlanPort &p : plan.outputs)
    p.buffer = newId[size_t(p.buffer)];
  for (PlanKvEntry &e : plan.kvCache) {
    e.pastBuffer = newId[size_t(e.pastBuffer)];
    e.presentBuffer = newId[size_t(e.presentBuffer)];
    if (e.appendBuffer >= 0)
      e.appendBuffer = newId[size_t(e.appendBuffer)];
  }
  layoutArenas(plan);

  std::vector<PartitionEntry> entries;
  for (PartitionEntry &e : partition.entries) {
    if (e.dispatch >= 0 && dropDispatch[size_t(e.dispatch)]) {
      --partition.vulkanOps;
      continue;
    }
    e.dispatch = newIndex[size_t(e.dispatch)];
    entries.push_back(std::move(e));
  }
  partition.entries = std::move(entries);
  for (int &t : partition.transferDispatches)
    t = newIndex[size_t(t)];
}

/// The one mechanism of every fold: a dispatch on `device` with one input `src` and one result `dst` that
/// `foldable` accepts, whose result is not a port (`ports`) and whose readers are all dispatches on `device`
/// that `readerOk(reader, operand index)` accepts, is removed; its readers read `src` instead.
int foldIntoReaders(MemoryPlan &plan, PartitionResult &partition, const std::set<int> &ports,
                    llvm::function_ref<bool(const PlanDispatch &, const PlanBuffer &, const PlanBuffer &)> foldable,
                    llvm::function_ref<bool(const PlanDispatch &, int)> readerOk,
                    DispatchDevice device = DispatchDevice::Vulkan,
                    llvm::function_ref<void(PlanDispatch &, int, const PlanDispatch &)> rewire = nullptr) {
  std::vector<std::vector<std::pair<int, int>>> readers = readersOf(plan);
  std::vector<bool> dropDispatch(plan.dispatches.size(), false), dropBuffer(plan.buffers.size(), false);
  int folded = 0;
  for (size_t i = 0; i < plan.dispatches.size(); ++i) {
    PlanDispatch &d = plan.dispatches[i];
    if (d.transfer || d.device != device || !d.op || d.buffers.size() != 2)
      continue;
    const PlanBuffer &src = plan.buffers[size_t(d.buffers[0])], &dst = plan.buffers[size_t(d.buffers[1])];
    if (!foldable(d, src, dst) || ports.count(dst.id) || readers[size_t(dst.id)].empty())
      continue;
    bool ok = true;
    for (auto [r, k] : readers[size_t(dst.id)]) {
      const PlanDispatch &c = plan.dispatches[size_t(r)];
      ok = ok && !c.transfer && c.device == device && c.op && readerOk(c, k);
    }
    if (!ok)
      continue;
    // A later fold of this reader's result keeps a valid readers list (keyed by that result).
    for (auto [r, k] : readers[size_t(dst.id)]) {
      plan.dispatches[size_t(r)].buffers[size_t(k)] = src.id;
      if (rewire)
        rewire(plan.dispatches[size_t(r)], k, d);
    }
    dropDispatch[i] = true;
    dropBuffer[size_t(dst.id)] = true;
    ++folded;
  }
  if (folded)
    removeFromPlan(plan, partition, dropDispatch, dropBuffer);
  return folded;
}

std::set<int> outputPorts(const MemoryPlan &plan) {
  std::set<int> ports;
  for (const PlanPort &p : plan.outputs)
    ports.insert(p.buffer);
  return ports;
}

} // namespace

int foldDeviceWeightConverts(MemoryPlan &plan, PartitionResult &partition) {
  std::set<int> ports = outputPorts(plan);
  return foldIntoReaders(
      plan, partition, ports,
      [](const PlanDispatch &d, const PlanBuffer &src, const PlanBuffer &dst) {
        return mlir::isa<ir::ConvertOp>(d.op) && src.kind == BufferKind::Weight &&
               src.location == BufferLocation::Device && isFloat16Storage(src.elementType) &&
               dst.elementType.isF32() && dst.kind == BufferKind::Arena;
      },
      [](const PlanDispatch &c, int k) {
        return mlir::isa<ir::MatmulOp>(c.op) || (mlir::isa<ir::MatmulGroupOp>(c.op) && k >= 1) ||
               (mlir::isa<ir::GatherOp>(c.op) && k == 0) ||
               (mlir::isa<ir::RmsNormOp, ir::LayerNormOp>(c.op) && k >= 1) ||
               (mlir::isa<ir::AddRmsNormOp, ir::AddLayerNormOp>(c.op) && k >= 2);
      });
}

int foldCpuWeightConverts(MemoryPlan &plan, PartitionResult &partition) {
  std::set<int> ports = outputPorts(plan);
  return foldIntoReaders(
      plan, partition, ports,
      [](const PlanDispatch &d, const PlanBuffer &src, const PlanBuffer &dst) {
        return mlir::isa<ir::ConvertOp>(d.op) && src.kind == BufferKind::Weight && isFloat16Storage(src.elementType) &&
               dst.elementType.isF32() && dst.kind == BufferKind::Arena && dst.location == BufferLocation::Host;
      },
      [&plan](const PlanDispatch &c, int k) {
        // The matmul's weight (operand 1) must be 2-d: the 16-bit kernel is the one for Linear weights.
        if (mlir::isa<ir::MatmulOp>(c.op))
          return k == 1 && plan.buffers[size_t(c.buffers[1])].shape.size() == 2;
        return (mlir::isa<ir::GatherOp>(c.op) && k == 0) ||
               (mlir::isa<ir::RmsNormOp, ir::LayerNormOp>(c.op) && k >= 1) ||
               (mlir::isa<ir::AddRmsNormOp, ir::AddLayerNormOp>(c.op) && k >= 2) ||
               mlir::isa<ir::AddOp, ir::SubOp, ir::MulOp, ir::DivOp>(c.op) || (mlir::isa<ir::SliceOp>(c.op) && k == 0);
      },
      DispatchDevice::Cpu);
}

int foldDeviceReshapes(MemoryPlan &plan, PartitionResult &partition) {
  std::set<int> ports = outputPorts(plan);
  for (const PlanKvEntry &e : plan.kvCache)
    for (int id : {e.pastBuffer, e.presentBuffer, e.appendBuffer})
      if (id >= 0)
        ports.insert(id);
  return foldIntoReaders(
      plan, partition, ports,
      [](const PlanDispatch &d, const PlanBuffer &src, const PlanBuffer &dst) {
        return mlir::isa<ir::ReshapeOp>(d.op) && src.location == BufferLocation::Device &&
               dst.location == BufferLocation::Device && dst.kind == BufferKind::Arena && src.rowCapacity == 0 &&
               dst.rowCapacity == 0 && src.elementType == dst.elementType;
      },
      [](const PlanDispatch &, int) { return true; });
}

namespace {

/// The permutation of a kiln.transpose dispatch.
std::vector<int64_t> permutationOf(const PlanDispatch &d) {
  llvm::ArrayRef<int64_t> p = mlir::cast<ir::TransposeOp>(d.op).getPermutation();
  return std::vector<int64_t>(p.begin(), p.end());
}

/// A row-major device ARENA buffer (no KV view; `copy`: it may be a transfer's copy of a host buffer).
bool plainDeviceArena(const PlanBuffer &b, bool copy = false) {
  return b.kind == BufferKind::Arena && b.location == BufferLocation::Device && b.rowCapacity == 0 &&
         (copy || b.copyOf < 0);
}

/// The producer side: transposes of a Vulkan attention's result read by nothing else.
int foldTransposesIntoProducers(MemoryPlan &plan, PartitionResult &partition,
                                llvm::function_ref<bool(const PlanDispatch &)> foldable) {
  const std::set<int> ports = outputPorts(plan);
  std::vector<std::vector<std::pair<int, int>>> readers = readersOf(plan);
  std::vector<int> writer(plan.buffers.size(), -1);
  for (size_t i = 0; i < plan.dispatches.size(); ++i)
    for (int id : plan.dispatches[i].written())
      writer[size_t(id)] = int(i);
  std::vector<bool> dropDispatch(plan.dispatches.size(), false), dropBuffer(plan.buffers.size(), false);
  int folded = 0;
  for (size_t i = 0; i < plan.dispatches.size(); ++i) {
    const PlanDispatch &t = plan.dispatches[i];
    if (t.transfer || t.device != DispatchDevice::Vulkan || !mlir::isa_and_nonnull<ir::TransposeOp>(t.op) ||
        t.buffers.size() != 2 || (foldable && !foldable(t)))
      continue;
    const PlanBuffer &src = plan.buffers[size_t(t.buffers[0])], &dst = plan.buffers[size_t(t.buffers[1])];
    const int w = writer[size_t(src.id)];
    if (w < 0 || !plainDeviceArena(src) || !plainDeviceArena(dst) || ports.count(src.id) ||
        readers[size_t(src.id)].size() != 1 || src.elementType != dst.elementType)
      continue;
    PlanDispatch &producer = plan.dispatches[size_t(w)];
    if (producer.transfer || producer.device != DispatchDevice::Vulkan ||
        !mlir::isa_and_nonnull<ir::AttentionOp>(producer.op) || producer.pass != 0 ||
        producer.buffers.back() != src.id ||
        (!producer.storageOrder.empty() && !producer.storageOrder.back().empty()))
      continue;
    producer.storageOrder.resize(producer.buffers.size());
    producer.storageOrder.back() = permutationOf(t); // storage axis k of dst is the result's axis perm[k]
    producer.buffers.back() = dst.id;
    dropDispatch[i] = true;
    dropBuffer[size_t(src.id)] = true;
    ++folded;
  }
  if (folded)
    removeFromPlan(plan, partition, dropDispatch, dropBuffer);
  return folded;
}

/// Whether operand `k` of `op` may be read in a permuted storage order: rope's input, attention's q / k / v, and
/// a kiln.group's input that only such operands of its members read.
bool readsPermuted(mlir::Operation *op, unsigned k) {
  if (auto group = mlir::dyn_cast<ir::GroupOp>(op)) {
    if (k >= group->getNumOperands())
      return false;
    mlir::BlockArgument arg = group.getBody().front().getArgument(k);
    return !arg.use_empty() && llvm::all_of(arg.getUses(), [](mlir::OpOperand &use) {
      return readsPermuted(use.getOwner(), use.getOperandNumber());
    });
  }
  return (mlir::isa<ir::RopeOp>(op) && k == 0) || (mlir::isa<ir::AttentionOp>(op) && k <= 2);
}

} // namespace

int foldDeviceTransposes(MemoryPlan &plan, PartitionResult &partition,
                         llvm::function_ref<bool(const PlanDispatch &)> foldable) {
  std::set<int> ports = outputPorts(plan);
  // The reader side: the reader's tensor axis P[k] is storage axis k of the input, so it reads the input
  // with storage order P^-1.
  int folded = foldIntoReaders(
      plan, partition, ports,
      [&](const PlanDispatch &d, const PlanBuffer &src, const PlanBuffer &dst) {
        return mlir::isa<ir::TransposeOp>(d.op) && (!foldable || foldable(d)) && plainDeviceArena(src, true) &&
               plainDeviceArena(dst) && src.elementType == dst.elementType;
      },
      [](const PlanDispatch &c, int k) {
        return readsPermuted(c.op, unsigned(k)) && c.pass == 0 && (c.storageOrder.empty() || c.storageOrder[size_t(k)].empty());
      },
      DispatchDevice::Vulkan,
      [](PlanDispatch &reader, int k, const PlanDispatch &t) {
        std::vector<int64_t> perm = permutationOf(t), inverse(perm.size());
        for (size_t i = 0; i < perm.size(); ++i)
          inverse[size_t(perm[i])] = int64_t(i);
        reader.storageOrder.resize(reader.buffers.size());
        reader.storageOrder[size_t(k)] = inverse;
      });
  return folded + foldTransposesIntoProducers(plan, partition, foldable);
}

DeviceFolds foldDeviceWeights(MemoryPlan &plan, PartitionResult &partition) {
  DeviceFolds folds;
  std::vector<mlir::Operation *> before = kernelOps(plan);
  if (foldDeviceWeightConverts(plan, partition))
    folds.converts = removedOps(before, plan);
  before = kernelOps(plan);
  if (foldDeviceReshapes(plan, partition))
    folds.reshapes = removedOps(before, plan);
  before = kernelOps(plan);
  if (foldDeviceTransposes(plan, partition))
    folds.transposes = removedOps(before, plan);
  return folds;
}

int foldDispatchesIntoReaders(MemoryPlan &plan, PartitionResult &partition,
                              llvm::function_ref<bool(const PlanDispatch &)> foldable) {
  std::set<int> ports = outputPorts(plan);
  return foldIntoReaders(
      plan, partition, ports, [&](const PlanDispatch &d, const PlanBuffer &, const PlanBuffer &) { return foldable(d); },
      [](const PlanDispatch &, int) { return true; });
}

} // namespace kiln::passes
