//===- PlanPasses.cpp - the plan-level transforms as passes (PlanPasses.td) ===//
#include "kiln/passes/PlanPasses.h"
#include "kiln/passes/DeviceWeights.h"
#include "kiln/passes/DispatchGroups.h"
#include "kiln/passes/PlanAnnotations.h"
#include "kiln/target/DeviceProfile.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassRegistry.h"

#include <algorithm>
#include <functional>
#include <optional>

namespace kiln::passes {

#define GEN_PASS_DECL
#include "kiln/passes/PlanPasses.h.inc"
#define GEN_PASS_DEF_KILNPARTITION
#define GEN_PASS_DEF_KILNFOLDDEVICEWEIGHTS
#define GEN_PASS_DEF_KILNPLACEKVCACHE
#define GEN_PASS_DEF_KILNGROUPDISPATCHES
#include "kiln/passes/PlanPasses.h.inc"

namespace {

/// Runs `fn` on every func.func with a body; an error becomes a diagnostic at the function.
mlir::LogicalResult forEachFunction(mlir::ModuleOp module, const std::function<Status(mlir::func::FuncOp)> &fn) {
  bool failed = false;
  module.walk([&](mlir::func::FuncOp f) {
    if (f.isDeclaration())
      return;
    if (Status s = fn(f); !s) {
      f.emitError(s.message());
      failed = true;
    }
  });
  return mlir::failure(failed);
}

/// A function's plan with the decisions its attributes record applied: the placement (none: everything
/// on the cpu, no partition) and the device folds.
struct RecordedPlan {
  MemoryPlan plan;
  std::optional<PartitionResult> partition;
};

StatusOr<RecordedPlan> recordedPlan(mlir::func::FuncOp f, const PlanOptions &bounds) {
  StatusOr<MemoryPlan> plan = planMemory(f, bounds);
  if (!plan.ok())
    return plan.status();
  StatusOr<std::optional<Placement>> placement = readPlacement(*plan);
  if (!placement.ok())
    return placement.status();
  RecordedPlan r{std::move(*plan), std::nullopt};
  PartitionResult none;
  if (*placement)
    r.partition = applyPlacement(r.plan, **placement);
  if (StatusOr<int> folded = applyRecordedFolds(r.plan, r.partition ? *r.partition : none); !folded.ok())
    return folded.status();
  return r;
}

/// recordedPlan of a function that must have a placement: an error naming `pass` when it has none.
StatusOr<RecordedPlan> partitionedPlan(mlir::func::FuncOp f, const PlanOptions &bounds, llvm::StringRef pass) {
  StatusOr<RecordedPlan> r = recordedPlan(f, bounds);
  if (r.ok() && !r->partition)
    return Status::error(pass.str() + ": no kiln.device attributes (run kiln-partition first)");
  return r;
}

/// A pass's `profile` option loaded (a built-in name or a file); nullopt after an error at the module.
std::optional<target::DeviceProfile> passProfile(mlir::ModuleOp module, llvm::StringRef pass,
                                                 const std::string &profile) {
  StatusOr<target::DeviceProfile> device = target::loadDeviceProfile(profile);
  if (device.ok())
    return std::move(*device);
  module.emitError(pass + ": " + device.status().message());
  return std::nullopt;
}

struct PartitionPass : impl::KilnPartitionBase<PartitionPass> {
  using Base::Base;
  explicit PartitionPass(const DeviceKernelCatalog *catalog) : catalog(catalog) {}

  void runOnOperation() override {
    std::optional<target::DeviceProfile> device = passProfile(getOperation(), "kiln-partition", profile);
    if (!device)
      return signalPassFailure();
    // As in a profile file, an op name no kiln op has is an error rather than a silent no-op.
    const std::vector<std::string> &known = target::kilnOpNames();
    for (const std::string &op : unavailableOps) {
      if (std::find(known.begin(), known.end(), target::canonicalOpName(op)) == known.end()) {
        getOperation().emitError("kiln-partition: unavailable-ops: '" + op + "' is not a kiln op");
        return signalPassFailure();
      }
      device->unavailableOps.push_back(op);
    }
    const PlanOptions bounds{maxContext, maxBatch};
    if (failed(forEachFunction(getOperation(), [&](mlir::func::FuncOp f) -> Status {
          clearPlanAnnotations(f);
          StatusOr<MemoryPlan> plan = planMemory(f, bounds);
          if (!plan.ok())
            return plan.status();
          annotatePartition(f, *plan, partitionPlan(*plan, *device, catalog));
          return Status::ok();
        })))
      signalPassFailure();
  }

  const DeviceKernelCatalog *catalog = nullptr;
};

struct FoldDeviceWeightsPass : impl::KilnFoldDeviceWeightsBase<FoldDeviceWeightsPass> {
  using Base::Base;
  void runOnOperation() override {
    const PlanOptions bounds{maxContext, maxBatch};
    if (failed(forEachFunction(getOperation(), [&](mlir::func::FuncOp f) -> Status {
          StatusOr<RecordedPlan> r = partitionedPlan(f, bounds, "kiln-fold-device-weights");
          if (!r.ok())
            return r.status();
          DeviceFolds folds = foldDeviceWeights(r->plan, *r->partition);
          annotateFolded(folds.converts, "weight-convert");
          annotateFolded(folds.reshapes, "reshape-view");
          annotateFolded(folds.transposes, "transpose-view");
          annotatePartitionCounts(f, *r->partition);
          return Status::ok();
        })))
      signalPassFailure();
  }
};

struct PlaceKvCachePass : impl::KilnPlaceKvCacheBase<PlaceKvCachePass> {
  using Base::Base;
  void runOnOperation() override {
    const PlanOptions bounds{maxContext, maxBatch};
    if (failed(forEachFunction(getOperation(), [&](mlir::func::FuncOp f) -> Status {
          clearKvCacheAnnotations(f);
          StatusOr<RecordedPlan> r = recordedPlan(f, bounds);
          if (!r.ok())
            return r.status();
          std::vector<mlir::Operation *> before = kernelOps(r->plan);
          PartitionResult *partition = r->partition ? &*r->partition : nullptr;
          placeKvCacheInPlace(r->plan, KvInPlaceOptions{vulkan}, partition);
          annotateKvCache(f, r->plan, removedOps(before, r->plan));
          if (partition)
            annotatePartitionCounts(f, *partition);
          return Status::ok();
        })))
      signalPassFailure();
  }
};

struct GroupDispatchesPass : impl::KilnGroupDispatchesBase<GroupDispatchesPass> {
  using Base::Base;
  explicit GroupDispatchesPass(const DeviceKernelCatalog *catalog) : catalog(catalog) {}

  void runOnOperation() override {
    std::optional<target::DeviceProfile> device = passProfile(getOperation(), "kiln-group-dispatches", profile);
    if (!device)
      return signalPassFailure();
    DispatchGroupFilter accept;
    if (catalog)
      accept = [&](mlir::Operation *group) { return catalog->unsupportedReason(group, *device); };
    const PlanOptions bounds{maxContext, maxBatch};
    if (failed(forEachFunction(getOperation(), [&](mlir::func::FuncOp f) -> Status {
          StatusOr<RecordedPlan> r = partitionedPlan(f, bounds, "kiln-group-dispatches");
          if (!r.ok())
            return r.status();
          if (kvInPlace)
            placeKvCacheInPlace(r->plan, KvInPlaceOptions{true}, &*r->partition);
          // The runs left as they were, as remarks (kiln compile --report prints them as "not grouped: ...").
          for (const std::string &why : groupDispatches(r->plan, *r->partition, accept).rejected)
            f.emitRemark("not grouped: " + why);
          annotateGroupDevices(f);
          return Status::ok();
        })))
      signalPassFailure();
  }

  const DeviceKernelCatalog *catalog = nullptr;
};

} // namespace

void registerPlanPasses(const DeviceKernelCatalog *catalog) {
  mlir::registerPass([catalog] { return std::make_unique<PartitionPass>(catalog); });
  mlir::registerPass([] { return std::make_unique<FoldDeviceWeightsPass>(); });
  mlir::registerPass([] { return std::make_unique<PlaceKvCachePass>(); });
  mlir::registerPass([catalog] { return std::make_unique<GroupDispatchesPass>(catalog); });
}

} // namespace kiln::passes
