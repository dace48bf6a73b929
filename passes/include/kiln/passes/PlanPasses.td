//===- PlanPasses.td - the plan-level transforms as passes -*- tablegen -*-===//
//
// kiln compile decides these over the memory plan of the step function; as passes they record the same
// decisions (the same functions: Partition.h, DeviceWeights.h, MemoryPlan.h) as attributes
// (PlanAnnotations.h), so they are tested IR in / IR out. Each plans every func.func with kiln.name ports;
// a later pass reads the earlier ones' attributes back. Registered by registerPlanPasses (PlanPasses.h),
// which takes the device backend's kernel catalog.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PLAN_PASSES_TD
#define KILN_PLAN_PASSES_TD

include "mlir/Pass/PassBase.td"

defvar kMaxContext = Option<"maxContext", "max-context", "int64_t", /*default=*/"2048",
                            "the bound of p + s (the memory plan's buffer sizes)">;
defvar kMaxBatch = Option<"maxBatch", "max-batch", "int64_t", /*default=*/"1", "the bound of b">;

def KilnPartition : Pass<"kiln-partition", "mlir::ModuleOp"> {
  let summary = "place every dispatched op on vulkan or cpu for a device profile (kiln.device, kiln.reason)";
  let description = [{
    kiln::passes::placeDispatches + applyPlacement (Partition.h): legality of every op against the profile
    (unavailable ops / dtypes, buffer limits, the SPIR-V backend's kernel variants), cheap ops beside their
    cpu consumers, then the transfers. Records kiln.device on every dispatched op, kiln.reason and
    kiln.fallback on cpu ops, and kiln.partition (counts) and kiln.transfers on the function. Replaces
    any earlier plan attributes. kiln compile --target vulkan runs the same with its profile and limits.
  }];
  let options = [
    Option<"profile", "profile", "std::string", /*default=*/"\"lavapipe\"",
           "a built-in device profile (lavapipe, nvidia-h200, generic) or a profile JSON file">,
    ListOption<"unavailableOps", "unavailable-ops", "std::string",
               "ops to treat as unavailable on the device, added to the profile's (kiln.rope or rope)">,
    kMaxContext, kMaxBatch];
}

def KilnFoldDeviceWeights : Pass<"kiln-fold-device-weights", "mlir::ModuleOp"> {
  let summary = "fold device f16/bf16 weight converts and reshapes into their readers (kiln.folded)";
  let description = [{
    After kiln-partition: kiln::passes::foldDeviceWeightConverts and foldDeviceReshapes (DeviceWeights.h)
    on the recorded partition. A folded op keeps kiln.device and gets kiln.folded = "weight-convert" (its
    readers read the 16-bit weight in place), "reshape-view" (its readers read the input's buffer) or
    "transpose-view" (foldDeviceTransposes: its rope / attention reader reads the input in the permuted
    order, or its attention producer writes the transposed layout).
  }];
  let options = [kMaxContext, kMaxBatch];
}

def KilnPlaceKvCache : Pass<"kiln-place-kv-cache", "mlir::ModuleOp"> {
  let summary = "decide which KV-cache entries are bufferized in place (kiln.kv_cache, kiln.kv_rows)";
  let description = [{
    kiln::passes::placeKvCacheInPlace (MemoryPlan.h) on the recorded partition and folds (none: all on
    the cpu). Records on each past_X argument kiln.kv_cache = "in place, capacity N" or "two buffers:
    <why>", kiln.kv_rows = "X" on the op that writes the new rows into the cache, kiln.folded = "kv-append"
    on an append whose dispatch is dropped, and the summary line kiln.kv_cache on the function.
  }];
  let options = [
    kMaxContext, kMaxBatch,
    Option<"vulkan", "vulkan", "bool", /*default=*/"false",
           "the Vulkan kernels take strided KV views (KvInPlaceOptions::vulkan; kiln compile: true)">];
}

def KilnGroupDispatches : Pass<"kiln-group-dispatches", "mlir::ModuleOp"> {
  let summary = "run adjacent independent device dispatches (rope, transpose) as one kiln.group";
  let description = [{
    kiln::passes::groupDispatches (DispatchGroups.h) on the recorded partition and folds, after the KV-cache
    placement (kv-in-place, as kiln compile --target vulkan decides it): each run of adjacent Vulkan
    kiln.rope / kiln.transpose dispatches that read nothing another of them writes becomes one kiln.group
    (its members moved into the body) when the SPIR-V backend can make its kernel. Changes the IR (unlike
    the passes above, which only record attributes); the other plan attributes stay as they were.
  }];
  let options = [
    kMaxContext, kMaxBatch,
    Option<"profile", "profile", "std::string", /*default=*/"\"lavapipe\"",
           "the device profile the group's kernel must fit (lavapipe, nvidia-h200, generic or a file)">,
    Option<"kvInPlace", "kv-in-place", "bool", /*default=*/"true",
           "place the KV cache in place first (the rope of k and the value copy then write the cache)">];
}

#endif // KILN_PLAN_PASSES_TD
