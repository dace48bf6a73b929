//===- PlanAnnotations.h - the plan-level decisions as IR attributes -------*- C++ -*-===//
//
// Partitioning (Partition.h), the device-weight folds (DeviceWeights.h) and the KV-cache placement
// (MemoryPlan.h placeKvCacheInPlace) decide over a memory plan, not over IR. These attributes write their
// decisions onto the step function, so they are tested IR in / IR out like the fusion passes (kiln-opt
// --kiln-partition, --kiln-fold-device-weights, --kiln-place-kv-cache: PlanPasses.td, tests/ir/plan-*.mlir)
// and so `kiln compile --dump-dir` shows what the compile decided (03-planned.mlir). They record decisions
// only: no value, type or op changes.
//   kiln.device = "vulkan" | "cpu"  on every op the plan dispatches (kiln-partition; absent: all on the cpu)
//   kiln.reason = "..."             why a cpu op of a partitioned function is on the cpu
//   kiln.fallback                   (unit) on the cpu because the device cannot run it (what --strict rejects)
//   kiln.folded = "weight-convert"  no dispatch: the device kernels reading its result read the f16 / bf16
//               | "reshape-view"    weight (or the reshape's input) in place (kiln-fold-device-weights)
//               | "transpose-view"  no dispatch: its reader (rope, attention) reads its input in the permuted
//                                   order, or its producer (attention) writes its result in the permuted layout
//               | "kv-append"       no dispatch: the producer of the new rows writes them into the cache
//   kiln.kv_rows = "key.0"          writes rows [p, p + s) of that in-place KV entry (the producer, or the
//                                   concat whose dispatch appends them)
//   kiln.kv_cache = "in place, capacity 64" | "two buffers: <why>"   on each past_X argument
//   on the function: kiln.partition = {cpu, fallbacks, transfers, vulkan} (the counts of the partition
//   report), kiln.transfers = ["input_ids to device", "<op> at <location> to host", ...] (in dispatch order) and
//   kiln.kv_cache = "kv cache: ..." (kvCacheSummary)
// A later pass reads the earlier ones' attributes back (readPlacement, applyRecordedFolds), so each pass is
// one decision applied to the recorded state of the others.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_PLANANNOTATIONS_H
#define KILN_PASSES_PLANANNOTATIONS_H

#include "kiln/passes/MemoryPlan.h"
#include "kiln/passes/Partition.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <optional>
#include <string>
#include <vector>

namespace kiln::passes {

/// kiln.device / kiln.reason / kiln.fallback on every kernel of a partitioned `plan`, kiln.partition and
/// kiln.transfers on `step`.
void annotatePartition(mlir::func::FuncOp step, const MemoryPlan &plan, const PartitionResult &partition);
/// kiln.partition alone (after a stage removed dispatches from the partition).
void annotatePartitionCounts(mlir::func::FuncOp step, const PartitionResult &partition);
/// kiln.folded = `kind` on each op.
void annotateFolded(const std::vector<mlir::Operation *> &ops, llvm::StringRef kind);
/// kiln.kv_cache on the past_X arguments, kiln.kv_rows on the writers of in-place rows and kiln.folded =
/// "kv-append" on `droppedAppends` (placeKvCacheInPlace's removed concats).
void annotateKvCache(mlir::func::FuncOp step, const MemoryPlan &plan,
                     const std::vector<mlir::Operation *> &droppedAppends);

/// kiln.device on each kiln.group that lacks it, its first member's (kiln-group-dispatches: the group is the
/// dispatch now, so a later plan pass reads its placement back).
void annotateGroupDevices(mlir::func::FuncOp step);

/// Removes every attribute above (kiln compile does before code generation: kernels are keyed by attributes).
void clearPlanAnnotations(mlir::func::FuncOp step);
/// Removes the KV-cache attributes only (kiln-place-kv-cache decides them again).
void clearKvCacheAnnotations(mlir::func::FuncOp step);

/// The placement kiln.device / kiln.reason / kiln.fallback record for the dispatches of `plan` (planMemory's,
/// not partitioned). nullopt when no op has kiln.device (nothing partitioned: all on the cpu); an error
/// naming the op when some kernel lacks it or has another value.
StatusOr<std::optional<Placement>> readPlacement(const MemoryPlan &plan);

/// Applies the recorded folds: every Vulkan dispatch with kiln.folded = "weight-convert" or "reshape-view"
/// is removed and its readers read its input; "transpose-view" as foldDeviceTransposes (DeviceWeights.h). Returns how many; an error naming the op
/// when one cannot be folded.
StatusOr<int> applyRecordedFolds(MemoryPlan &plan, PartitionResult &partition);

} // namespace kiln::passes

#endif // KILN_PASSES_PLANANNOTATIONS_H
