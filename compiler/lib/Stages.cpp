//===- Stages.cpp - import, verify, fuse, limits, split weights, plan, partition, folds, KV cache ===//
#include "kiln/compiler/Stages.h"
#include "kiln/compiler/DeviceCatalog.h"

#include "kiln/ir/KilnDialect.h"
#include "kiln/passes/Fusion.h"
#include "kiln/passes/SplitWeights.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"

#include <set>

namespace kiln::compiler {

namespace {
size_t countOps(mlir::func::FuncOp step) {
  size_t n = 0;
  step.walk([&](mlir::Operation *) { ++n; });
  return n;
}
} // namespace

/// "--weights q8_0: 155 matrices quantized, 1 kept f16 (lm_head.weight), 2 stay f32 (NAME (why), ...)".
static std::string weightsLine(const WeightsFormat &weights, const WeightsImport &done) {
  std::string line = "--weights " + weights.name() + ": ";
  if (!weights.quant)
    return line + std::to_string(done.converted) + " float tensors converted";
  auto listed = [](const std::vector<std::string> &names) {
    std::string s;
    for (size_t i = 0; i < names.size() && i < 4; ++i)
      s += (i ? ", " : "") + names[i];
    return names.size() > 4 ? s + " and " + std::to_string(names.size() - 4) + " more" : s;
  };
  line += std::to_string(done.quantized.size()) + " matrices quantized";
  if (!done.keptF16.empty())
    line += ", " + std::to_string(done.keptF16.size()) + " kept f16 (" + listed(done.keptF16) + ")";
  if (!done.notQuantized.empty())
    line += ", " + std::to_string(done.notQuantized.size()) + " stay f32 (" + listed(done.notQuantized) + ")";
  return line + "; norm weights and biases f32";
}

StatusOr<Imported> importStage(mlir::MLIRContext &context, const std::string &modelDir,
                               const WeightsFormat &weights) {
  WeightsImport done;
  StatusOr<ImportedModel> model = importModel(context, modelDir, weights, &done);
  if (!model.ok())
    return model.status();
  Imported imported{std::move(*model), {}};
  if (weights.any())
    imported.summary.weights = weightsLine(weights, done);
  ImportedModel &m = imported.model;
  if (!m.step())
    return Status::error(modelDir + ": the imported module has no step function");
  auto architecture = (*m.module)->getAttrOfType<mlir::StringAttr>("kiln.architecture");
  imported.summary.architecture = architecture ? architecture.getValue().str() : m.config.architecture;
  imported.summary.task = m.task();
  imported.summary.ops = countOps(m.step());
  // A checkpoint with more than the config builds (fewer layers, buffers that are not parameters): said, not
  // silently dropped.
  std::set<std::string> used;
  m.step().walk([&](ir::WeightOp w) { used.insert(w.getNameAttr().getValue().str()); });
  for (const std::string &name : m.weights.names())
    if (!used.count(name))
      imported.summary.unusedWeights.push_back(name);
  return imported;
}

Status verifyStage(mlir::ModuleOp module, const std::string &modelDir) {
  std::string first;
  mlir::ScopedDiagnosticHandler handler(module.getContext(), [&](mlir::Diagnostic &diag) {
    if (first.empty()) {
      std::string loc = passes::locationText(diag.getLocation());
      first = (loc.empty() ? "" : loc + ": ") + diag.str();
    }
    return mlir::success();
  });
  if (mlir::failed(mlir::verify(module)))
    return Status::error(modelDir + ": the imported module does not verify: " + (first.empty() ? "?" : first));
  return Status::ok();
}

StatusOr<FusionSummary> fuseStage(mlir::ModuleOp module, const std::string &modelDir) {
  passes::FusionReport fusion;
  if (mlir::failed(passes::runFusionPasses(module, &fusion)))
    return Status::error(modelDir + ": the fused module does not verify");
  FusionSummary s;
  s.enabled = true;
  // An add_rms_norm / add_layer_norm line follows its norm's "rms_norm at" line: one fused op, not two.
  s.addNorms = int(fusion.count("add_rms_norm") + fusion.count("add_layer_norm"));
  s.fusedOps = int(fusion.fused.size()) - s.addNorms;
  s.rmsNorm = int(fusion.count("rms_norm"));
  s.layerNorm = int(fusion.count("layer_norm"));
  s.rope = int(fusion.count("rope"));
  s.attention = int(fusion.count("attention"));
  s.fused = std::move(fusion.fused);
  s.unfused = std::move(fusion.unfused);
  if (auto step = module.lookupSymbol<mlir::func::FuncOp>("step"))
    s.opsAfter = countOps(step);
  return s;
}

StatusOr<passes::PlanOptions> boundsStage(const ModelConfig &config, const std::string &task,
                                          std::optional<int64_t> maxContext, std::optional<int64_t> maxBatch) {
  const bool encoder = task == "encoder";
  const int64_t maxPositions = config.maxPositions;
  if (maxPositions <= 0 && !maxContext)
    return Status::error(config.path + ": no max_position_embeddings; pass --max-context N");
  passes::PlanOptions bounds;
  bounds.maxContext = maxContext.value_or(encoder ? maxPositions : std::min<int64_t>(maxPositions, 2048));
  if (maxPositions > 0 && bounds.maxContext > maxPositions)
    return Status::error("compile: --max-context " + std::to_string(bounds.maxContext) +
                         " exceeds max_position_embeddings " + std::to_string(maxPositions) + " of " +
                         config.path);
  bounds.maxBatch = maxBatch.value_or(encoder ? 32 : 1);
  return bounds;
}

StatusOr<SplitSummary> splitWeightsStage(mlir::ModuleOp module, const DeviceProfile &profile,
                                         const passes::PlanOptions &bounds, const std::string &modelDir) {
  passes::SplitWeightsReport split;
  passes::splitLargeWeights(module, passes::splitWeightsOptions(profile, bounds), &split);
  if (mlir::failed(mlir::verify(module)))
    return Status::error(modelDir + ": internal error: the module does not verify after kiln-split-weights");
  SplitSummary s;
  s.profile = profile.name;
  s.weights = split.weightsSplit;
  s.chunks = split.chunks;
  s.uses = split.usesSplit;
  s.split = std::move(split.split);
  s.notSplit = std::move(split.notSplit);
  return s;
}

/// Accepts a kiln.matmul_group the device runs: the profile allows it and codegen/spirv has its kernel.
static passes::MatmulGroupFilter deviceGroupFilter(const DeviceProfile &profile) {
  const passes::DeviceKernelCatalog *catalog = deviceKernelCatalog();
  return [&profile, catalog](mlir::Operation *op) -> std::string {
    for (const char *name : {"kiln.matmul_group", "kiln.matmul"})
      if (profile.opUnavailable(name))
        return "profile " + profile.name + " lists " + name + " as unavailable";
    return catalog ? catalog->unsupportedReason(op, profile) : "this build has no SPIR-V backend";
  };
}

StatusOr<passes::FusionReport> matmulGroupStage(mlir::ModuleOp module, const DeviceProfile &profile,
                                                const std::string &modelDir) {
  passes::FusionReport report;
  passes::fuseMatmulGroups(module, &report, deviceGroupFilter(profile));
  if (mlir::failed(mlir::verify(module)))
    return Status::error(modelDir + ": internal error: the module does not verify after kiln-fuse-matmul-groups");
  return report;
}

StatusOr<passes::FusionReport> matmulNormStage(mlir::ModuleOp module, const DeviceProfile &profile,
                                               const std::string &modelDir) {
  passes::FusionReport report;
  passes::fuseMatmulNorms(module, &report, deviceGroupFilter(profile));
  if (mlir::failed(mlir::verify(module)))
    return Status::error(modelDir + ": internal error: the module does not verify after kiln-fuse-matmul-norms");
  return report;
}

StatusOr<passes::DispatchGroups> dispatchGroupStage(mlir::func::FuncOp step, passes::MemoryPlan &plan,
                                                    const DeviceProfile &profile, passes::PartitionResult &partition) {
  const passes::DeviceKernelCatalog *catalog = deviceKernelCatalog();
  passes::DispatchGroupFilter accept = [&profile, catalog](mlir::Operation *group) -> std::string {
    return catalog ? catalog->unsupportedReason(group, profile) : "this build has no SPIR-V backend";
  };
  passes::DispatchGroups groups = passes::groupDispatches(plan, partition, accept);
  if (mlir::failed(mlir::verify(step)))
    return Status::error("internal error: the step function does not verify after kiln-group-dispatches");
  return groups;
}

StatusOr<Planned> planStage(mlir::func::FuncOp step, const passes::PlanOptions &bounds, const std::string &modelDir) {
  StatusOr<passes::MemoryPlan> plan = passes::planMemory(step, bounds);
  if (!plan.ok())
    return Status::error(modelDir + ": memory plan: " + plan.status().message());
  Planned p{std::move(*plan), {}};
  PlanSummary &s = p.summary;
  s.buffers = p.plan.buffers.size();
  s.dispatches = p.plan.dispatches.size();
  s.arenaBytes = p.plan.arenaBytes;
  s.intermediateBytes = p.plan.intermediateBytes;
  s.weightsBytes = p.plan.weightsBytes;
  for (const passes::PlanKvEntry &e : p.plan.kvCache)
    s.kvCacheBytes += p.plan.buffers[size_t(e.presentBuffer)].maxBytes;
  s.maxContext = bounds.maxContext;
  s.maxBatch = bounds.maxBatch;
  return p;
}

passes::PartitionResult partitionStage(passes::MemoryPlan &plan, const DeviceProfile &profile) {
  return passes::partitionPlan(plan, profile, deviceKernelCatalog());
}

passes::DeviceFolds foldDeviceWeightsStage(passes::MemoryPlan &plan, passes::PartitionResult &partition) {
  // f16 / bf16 weights read in place by the device's matmuls and gathers (no convert kernel, no f32 copy).
  return passes::foldDeviceWeights(plan, partition);
}

int foldCpuWeightsStage(passes::MemoryPlan &plan, passes::PartitionResult &partition) {
  return passes::foldCpuWeightConverts(plan, partition);
}

PartitionSummary summarizePartition(const passes::MemoryPlan &plan, const passes::PartitionResult &partition,
                                    const passes::DeviceFolds &folds, const std::string &profileName) {
  PartitionSummary s;
  s.profile = profileName;
  s.vulkanOps = partition.vulkanOps;
  s.cpuOps = partition.cpuOps;
  s.fallbacks = partition.fallbacks;
  s.transfers = partition.transfers;
  s.transferBytes = partition.transferBytes;
  s.foldedConverts = int(folds.converts.size());
  s.foldedReshapes = int(folds.reshapes.size());
  s.foldedTransposes = int(folds.transposes.size());
  for (const passes::PartitionEntry &e : partition.entries)
    if (e.device == passes::DispatchDevice::Cpu)
      s.cpuPlaced.push_back({e.op, e.location, e.reason, e.fallback});
  s.groups = passes::partitionReport(partition, profileName);
  s.hostArenaBytes = plan.arenaBytes;
  s.deviceArenaBytes = plan.deviceArenaBytes;
  return s;
}

KvCacheSummary kvCacheStage(passes::MemoryPlan &plan, passes::PartitionResult *partition, bool inPlace,
                            std::vector<mlir::Operation *> *droppedAppends) {
  // In place where every use takes the strided cache view (MemoryPlan.h placeKvCacheInPlace); otherwise the
  // two-buffer cache copied forward each step (the differential baseline).
  std::vector<mlir::Operation *> before = passes::kernelOps(plan);
  if (inPlace) {
    // Vulkan too: its kernels take the strided views (codegen/spirv SpirvKvView) and its executor binds the
    // one storage.
    passes::placeKvCacheInPlace(plan, passes::KvInPlaceOptions{/*vulkan=*/true}, partition);
  } else {
    for (passes::PlanKvEntry &e : plan.kvCache)
      e.reason = "--no-kv-in-place";
  }
  if (droppedAppends)
    *droppedAppends = passes::removedOps(before, plan);
  KvCacheSummary s;
  s.entries = int(plan.kvCache.size());
  for (const passes::PlanKvEntry &e : plan.kvCache)
    s.inPlace += e.inPlace;
  if (!plan.kvCache.empty())
    s.line = passes::kvCacheSummary(plan);
  return s;
}

} // namespace kiln::compiler
