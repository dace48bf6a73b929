//===- PlanAnnotations.cpp - the plan-level decisions as IR attributes ------===//
#include "kiln/passes/PlanAnnotations.h"
#include "kiln/passes/DeviceWeights.h"
#include "kiln/ir/KilnDialect.h"

#include "mlir/IR/Builders.h"

namespace kiln::passes {
namespace {

constexpr llvm::StringLiteral kDevice = "kiln.device", kReason = "kiln.reason", kFallback = "kiln.fallback",
                              kFolded = "kiln.folded", kKvRows = "kiln.kv_rows", kKvCache = "kiln.kv_cache",
                              kPartition = "kiln.partition", kTransfers = "kiln.transfers";

/// "model.layers.0.mlp: kiln.convert" for errors about an op.
std::string opText(mlir::Operation *op) {
  std::string loc = locationText(op->getLoc());
  return (loc.empty() ? std::string("step") : loc) + ": " + op->getName().getStringRef().str();
}

/// The index of the step argument named `name` (kiln.name), or -1.
int argumentNamed(mlir::func::FuncOp step, const std::string &name) {
  for (unsigned i = 0; i < step.getNumArguments(); ++i)
    if (auto n = step.getArgAttrOfType<mlir::StringAttr>(i, "kiln.name"); n && n.getValue() == name)
      return int(i);
  return -1;
}

} // namespace

void annotatePartitionCounts(mlir::func::FuncOp step, const PartitionResult &partition) {
  mlir::Builder b(step.getContext());
  step->setAttr(kPartition, b.getDictionaryAttr({
                                b.getNamedAttr("vulkan", b.getI64IntegerAttr(partition.vulkanOps)),
                                b.getNamedAttr("cpu", b.getI64IntegerAttr(partition.cpuOps)),
                                b.getNamedAttr("fallbacks", b.getI64IntegerAttr(partition.fallbacks)),
                                b.getNamedAttr("transfers", b.getI64IntegerAttr(partition.transfers)),
                            }));
}

void annotatePartition(mlir::func::FuncOp step, const MemoryPlan &plan, const PartitionResult &partition) {
  mlir::Builder b(step.getContext());
  for (const PartitionEntry &e : partition.entries) {
    mlir::Operation *op = plan.dispatches[size_t(e.dispatch)].op;
    op->setAttr(kDevice, b.getStringAttr(deviceName(e.device)));
    if (e.device == DispatchDevice::Cpu && !e.reason.empty())
      op->setAttr(kReason, b.getStringAttr(e.reason));
    if (e.fallback)
      op->setAttr(kFallback, b.getUnitAttr());
  }
  std::vector<mlir::Attribute> transfers;
  for (const PlanDispatch &d : plan.dispatches) {
    if (!d.transfer)
      continue;
    // "input_ids to device", "kiln.rope at model.layers.0.self_attn to host": the buffer, by its producer.
    const PlanBuffer &from = plan.buffers[size_t(d.buffers[0])], &to = plan.buffers[size_t(d.buffers[1])];
    mlir::Operation *producer = from.value ? from.value.getDefiningOp() : nullptr;
    std::string what = producer ? producer->getName().getStringRef().str() + " at " + from.name : from.name;
    transfers.push_back(b.getStringAttr(what + (to.location == BufferLocation::Device ? " to device" : " to host")));
  }
  step->setAttr(kTransfers, b.getArrayAttr(transfers));
  annotatePartitionCounts(step, partition);
}

void annotateFolded(const std::vector<mlir::Operation *> &ops, llvm::StringRef kind) {
  for (mlir::Operation *op : ops)
    op->setAttr(kFolded, mlir::StringAttr::get(op->getContext(), kind));
}

void annotateKvCache(mlir::func::FuncOp step, const MemoryPlan &plan,
                     const std::vector<mlir::Operation *> &droppedAppends) {
  mlir::Builder b(step.getContext());
  for (const PlanKvEntry &e : plan.kvCache) {
    if (int arg = argumentNamed(step, "past_" + e.name); arg >= 0)
      step.setArgAttr(unsigned(arg), kKvCache,
                      b.getStringAttr(e.inPlace ? "in place, capacity " + std::to_string(e.capacity)
                                                : "two buffers: " + e.reason));
    if (!e.inPlace)
      continue;
    // The rows [p, p + s) are written by the producer of the new rows, or else by the append (the concat).
    const int writes = e.appendBuffer >= 0 ? e.appendBuffer : e.presentBuffer;
    if (mlir::Operation *writer = plan.buffers[size_t(writes)].value.getDefiningOp())
      writer->setAttr(kKvRows, b.getStringAttr(e.name));
  }
  annotateFolded(droppedAppends, "kv-append");
  if (!plan.kvCache.empty())
    step->setAttr(kKvCache, b.getStringAttr(kvCacheSummary(plan)));
}

void annotateGroupDevices(mlir::func::FuncOp step) {
  step.walk([](ir::GroupOp group) {
    mlir::Block &body = group.getBody().front();
    if (!group->hasAttr(kDevice) && !body.without_terminator().empty())
      if (mlir::Attribute device = body.front().getAttr(kDevice))
        group->setAttr(kDevice, device);
  });
}

void clearKvCacheAnnotations(mlir::func::FuncOp step) {
  step->removeAttr(kKvCache);
  for (unsigned i = 0; i < step.getNumArguments(); ++i)
    step.removeArgAttr(i, kKvCache);
  step.walk([](mlir::Operation *op) {
    op->removeAttr(kKvRows);
    if (auto folded = op->getAttrOfType<mlir::StringAttr>(kFolded); folded && folded.getValue() == "kv-append")
      op->removeAttr(kFolded);
  });
}

void clearPlanAnnotations(mlir::func::FuncOp step) {
  clearKvCacheAnnotations(step);
  step->removeAttr(kPartition);
  step->removeAttr(kTransfers);
  step.walk([](mlir::Operation *op) {
    for (llvm::StringRef name : {kDevice, kReason, kFallback, kFolded})
      op->removeAttr(name);
  });
}

StatusOr<std::optional<Placement>> readPlacement(const MemoryPlan &plan) {
  Placement placement;
  bool any = false;
  mlir::Operation *missing = nullptr;
  for (const PlanDispatch &d : plan.dispatches) {
    auto device = d.op ? d.op->getAttrOfType<mlir::StringAttr>(kDevice) : nullptr;
    if (!device) {
      missing = missing ? missing : d.op;
      placement.device.push_back(DispatchDevice::Cpu);
      placement.reason.push_back("");
      placement.fallback.push_back(false);
      continue;
    }
    any = true;
    if (device.getValue() != "vulkan" && device.getValue() != "cpu")
      return Status::error(opText(d.op) + ": kiln.device is '" + device.getValue().str() +
                           "', not \"vulkan\" or \"cpu\"");
    const bool cpu = device.getValue() == "cpu";
    auto reason = d.op->getAttrOfType<mlir::StringAttr>(kReason);
    placement.device.push_back(cpu ? DispatchDevice::Cpu : DispatchDevice::Vulkan);
    placement.reason.push_back(cpu && reason ? reason.getValue().str() : "");
    placement.fallback.push_back(d.op->hasAttr(kFallback));
  }
  if (!any)
    return std::optional<Placement>();
  if (missing)
    return Status::error(opText(missing) + ": no kiln.device (kiln-partition places every dispatched op)");
  return std::optional<Placement>(std::move(placement));
}

StatusOr<int> applyRecordedFolds(MemoryPlan &plan, PartitionResult &partition) {
  struct Kind {
    llvm::StringRef name;
    bool (*opFits)(mlir::Operation *);
  };
  const Kind kinds[] = {{"weight-convert", [](mlir::Operation *op) { return mlir::isa<ir::ConvertOp>(op); }},
                        {"reshape-view", [](mlir::Operation *op) { return mlir::isa<ir::ReshapeOp>(op); }},
                        {"transpose-view", [](mlir::Operation *op) { return mlir::isa<ir::TransposeOp>(op); }}};
  int folded = 0;
  for (const Kind &kind : kinds) {
    auto recorded = [&](mlir::Operation *op) {
      auto attr = op ? op->getAttrOfType<mlir::StringAttr>(kFolded) : nullptr;
      return attr && attr.getValue() == kind.name;
    };
    for (mlir::Operation *op : kernelOps(plan))
      if (recorded(op) && !kind.opFits(op))
        return Status::error(opText(op) + ": kiln.folded = \"" + kind.name.str() + "\" does not apply to this op");
    auto isRecorded = [&](const PlanDispatch &d) { return recorded(d.op); };
    folded += kind.name == "transpose-view" ? foldDeviceTransposes(plan, partition, isRecorded)
                                            : foldDispatchesIntoReaders(plan, partition, isRecorded);
    for (mlir::Operation *op : kernelOps(plan))
      if (recorded(op))
        return Status::error(opText(op) + ": kiln.folded = \"" + kind.name.str() +
                             "\" but it cannot be folded (not on vulkan, or its result is read by a cpu "
                             "dispatch, a transfer or an output)");
  }
  return folded;
}

} // namespace kiln::passes
