//===- DispatchGroups.h - independent device dispatches as one kiln.group -*- C++ -*-===//
//
// After the partition, the device folds and the KV-cache placement, a decode step still runs small
// elementwise kernels back to back that do not read each other's results: per attention layer the rope of
// q, the rope of k (writing the key cache rows) and the value copy (writing the value cache rows). Each is
// a dispatch with a barrier before the next. kiln-group-dispatches makes each maximal run of such
// dispatches one kiln.group (ir/KilnOps.td): one dispatch whose kernel gives each member a range of the
// workgroups (codegen/spirv GroupKernel.cpp).
//
// A run: dispatches adjacent in the plan's order (but for transfers independent of them), all on vulkan, each a kiln.rope or kiln.transpose (grid
// kernels, one invocation per element), none reading or writing a buffer another of them writes (a KV-cache
// view counts as its whole cache entry), at most kMaxGroupMembers. The IR: the members move into the group's
// body (cloned, reading its arguments), the group stands where the last member stood and replaces their
// results; the plan: one dispatch at the last member's place, buffers the group's inputs then results
// (each keeping its storage order and KV view), the partition renumbered, the arenas laid out again.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_DISPATCHGROUPS_H
#define KILN_PASSES_DISPATCHGROUPS_H

#include "kiln/passes/MemoryPlan.h"
#include "kiln/passes/Partition.h"

#include <functional>
#include <string>
#include <vector>

namespace kiln::passes {

constexpr size_t kMaxGroupMembers = 8;

/// Why the device backend cannot run a candidate kiln.group as one kernel ("" when it can).
using DispatchGroupFilter = std::function<std::string(mlir::Operation *group)>;

struct DispatchGroups {
  /// "group at model.layers.0.self_attn (kiln.rope + kiln.rope + kiln.transpose)", one per group made.
  std::vector<std::string> groups;
  /// Runs left as they were, with the backend's reason.
  std::vector<std::string> rejected;
  int dispatchesRemoved = 0;
};

/// Forms the groups in `plan` (partitioned for Vulkan: `partition` is renumbered) and its step function's IR.
/// `accept` may be null (every run is grouped).
DispatchGroups groupDispatches(MemoryPlan &plan, PartitionResult &partition, const DispatchGroupFilter &accept);

} // namespace kiln::passes

#endif // KILN_PASSES_DISPATCHGROUPS_H
