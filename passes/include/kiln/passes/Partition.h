//===- Partition.h - device partition, CPU fallback and transfers ---------*- C++ -*-===//
//
// partitionPlan rewrites a memory plan (planMemory's, every dispatch on the host) for a Vulkan target:
//  1. Placement. A dispatch runs on "vulkan" when vulkanUnsupportedReason (Legality.h) is empty, else on
//     "cpu" with that reason: the generated CPU fallback partition.
//  2. Transfer minimization (one rule): a cheap op (anything but matmul, attention, softmax, the norms, rope
//     and gather) that is legal on the device but whose every consumer runs on the cpu and whose every
//     operand is already on the host (an INPUT, a weight or constant, or a cpu result) also runs on the
//     cpu: on the device it would cost a transfer back and save nothing. Applied consumers first, so whole
//     index chains (kiln.sym -> iota -> compare -> select feeding a cpu rope) follow their consumer.
//  3. Locations. INPUT buffers are HOST. A result lives where its producer runs; a KV-cache pair lives where
//     its present_* producer (the concat or attention) runs. A weight lives where its consumers run; used on
//     both sides it gets a second WEIGHT buffer on the device sharing its bytes (copyOf, same offset,
//     uploaded at load): no transfer.
//  4. Transfers. A dispatch reading a buffer that lives on the other side reads a copy instead; the copy
//     (an ARENA buffer in the other location) is filled by one TRANSFER dispatch inserted right before the
//     first such consumer: at most one per (buffer, destination). Output ports are HOST: a result produced
//     on the device is copied back by a final TRANSFER and the port names the host copy.
//  5. layoutArenas: HOST and DEVICE arenas, each by liveness first-fit.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_PARTITION_H
#define KILN_PASSES_PARTITION_H

#include "kiln/passes/Legality.h"

#include <string>
#include <vector>

namespace kiln::passes {

struct PartitionEntry {
  int dispatch = -1;    // index into the rewritten plan's dispatches
  std::string op;       // "kiln.rope"
  std::string location; // the op's location
  DispatchDevice device = DispatchDevice::Cpu;
  std::string reason;   // why it is on the cpu ("" on vulkan)
  bool fallback = false; // on the cpu because the device cannot run it (what --strict rejects)
  bool readsQuantized = false; // reads a block-quantized (q8_0 / q4_0) weight
};

struct PartitionResult {
  std::vector<PartitionEntry> entries; // one per kernel dispatch, in order
  int vulkanOps = 0, cpuOps = 0, fallbacks = 0, transfers = 0;
  uint64_t transferBytes = 0; // at the symbols' bounds
  std::vector<int> transferDispatches;
};

/// Where each dispatch runs: steps 1 and 2 above, per dispatch of `plan` (planMemory's, not yet partitioned).
/// The decision alone; kiln-partition records it as IR attributes (PlanAnnotations.h).
struct Placement {
  std::vector<DispatchDevice> device;
  std::vector<std::string> reason; // why it is on the cpu ("" on vulkan)
  std::vector<bool> fallback;      // on the cpu because the device cannot run it
};
Placement placeDispatches(const MemoryPlan &plan, const target::DeviceProfile &profile,
                          const DeviceKernelCatalog *catalog);

/// Rewrites `plan` for a placement (one entry per dispatch of `plan`): steps 3 to 5 above.
PartitionResult applyPlacement(MemoryPlan &plan, const Placement &placement);

/// Rewrites `plan` as described above: applyPlacement(plan, placeDispatches(...)). `catalog` may be null
/// (then only (a) and (b) of Legality.h decide).
PartitionResult partitionPlan(MemoryPlan &plan, const target::DeviceProfile &profile,
                              const DeviceKernelCatalog *catalog);

/// The report, grouped by (op, device, reason): "kiln.rope x 6 -> cpu: profile lacks kiln.rope
/// (model.layers.0.self_attn, model.layers.1.self_attn, ...)". First line: the counts per device.
std::vector<std::string> partitionReport(const PartitionResult &result, const std::string &profileName);

/// Graphviz DOT of the partitioned dispatch graph: kernels coloured by device, INPUT / output ports as
/// boxes, data edges between dispatches, transfers as red dashed edges labelled with the buffer and size.
std::string partitionDot(const MemoryPlan &plan, const std::string &title);

} // namespace kiln::passes

#endif // KILN_PASSES_PARTITION_H
