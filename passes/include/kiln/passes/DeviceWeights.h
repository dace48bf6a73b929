//===- DeviceWeights.h - f16 / bf16 weights read in place by Vulkan kernels -*- C++ -*-===//
//
// Model builders read a weight stored as f16 or bf16 through `kiln.convert` to f32 (the IR computes in
// f32). On the device that convert is a kernel that writes an f32 copy of the weight every step, which the
// matmul then reads: twice the weight's bytes written and three times read. foldDeviceWeightConverts
// removes such converts from a partitioned plan: a Vulkan `kiln.convert` dispatch whose input is a 16-bit
// float WEIGHT buffer on the device, whose f32 result feeds only Vulkan matmul / gather dispatches or the
// weight / bias of rms_norm / layer_norm / add_rms_norm / add_layer_norm (never a CPU dispatch, a transfer or an output port), is deleted and its consumers read the weight buffer itself.
// The SPIR-V kernels of those consumers are then generated with the buffer's storage type (codegen/spirv
// generateSpirvKernel's operandStorage: 16-bit loads, widened to f32 as the convert did, so the numbers
// are bit-identical). The f32 buffers disappear and the arenas are laid out again.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_DEVICEWEIGHTS_H
#define KILN_PASSES_DEVICEWEIGHTS_H

#include "kiln/passes/MemoryPlan.h"
#include "kiln/passes/Partition.h"

#include "llvm/ADT/STLFunctionalExtras.h"

namespace kiln::passes {

/// Folds the converts as above; returns how many were removed. `partition` (partitionPlan's result for
/// `plan`) has its entries, counts and dispatch indices updated (the folded converts leave the report).
int foldDeviceWeightConverts(MemoryPlan &plan, PartitionResult &partition);

/// The same on the CPU: a CPU `kiln.convert` of a 16-bit float WEIGHT buffer whose f32 result (no output
/// port) is read only by CPU dispatches that widen 16-bit loads themselves (codegen/cpu: the weight of a
/// matmul, 2-d; the table of a gather; the weight / bias of a norm; an operand of add / sub / mul / div; the
/// input of a slice) is
/// deleted and they read the weight. Their kernels learn the buffer's element type from the plan
/// (KernelLayout::elementType), so no per-step convert and no f32 copy of a weight remain. The plan has no IR
/// record of it (kiln-opt's plan passes do not run it). Returns how many were removed.
int foldCpuWeightConverts(MemoryPlan &plan, PartitionResult &partition);

/// Device reshapes are views: a Vulkan `kiln.reshape` (a row-major copy of the same bytes) whose input is a
/// plain row-major DEVICE buffer (not a strided KV view) and whose ARENA result is read only by Vulkan
/// kernels (no transfer, no output port, no KV entry) is deleted and its readers read the input buffer
/// (their kernels take their shapes from the IR, not from the buffer). Returns how many were removed;
/// `partition` is updated as for foldDeviceWeightConverts.
int foldDeviceReshapes(MemoryPlan &plan, PartitionResult &partition);

/// The folds as kiln compile runs them after partitionPlan (converts, reshapes, then transposes), with the ops each
/// removed (kiln-fold-device-weights records them as kiln.folded: PlanAnnotations.h).
struct DeviceFolds {
  std::vector<mlir::Operation *> converts, reshapes, transposes;
};

/// Head transposes folded into the strides of their Vulkan neighbours (no transpose dispatch): a
/// kiln.transpose whose result is read only by kiln.rope (its input) or kiln.attention (query, key or value)
/// is removed and those read its input in the permuted order (PlanDispatch::storageOrder); one whose input
/// is written by kiln.attention and read by nothing else is removed and the attention writes its result in
/// the transposed layout. Results that are outputs, KV-cache views or read on the CPU are left alone.
/// `foldable` (optional) restricts which transposes (applyRecordedFolds). Returns how many were folded.
int foldDeviceTransposes(MemoryPlan &plan, PartitionResult &partition,
                         llvm::function_ref<bool(const PlanDispatch &)> foldable = nullptr);
DeviceFolds foldDeviceWeights(MemoryPlan &plan, PartitionResult &partition);

/// The one mechanism of both folds: every Vulkan dispatch with one input and one result that `foldable`
/// accepts, whose result is no output port and is read only by Vulkan kernels, is removed and its readers
/// read its input. Returns how many. (applyRecordedFolds, PlanAnnotations.h: the folds kiln.folded records.)
int foldDispatchesIntoReaders(MemoryPlan &plan, PartitionResult &partition,
                              llvm::function_ref<bool(const PlanDispatch &)> foldable);

} // namespace kiln::passes

#endif // KILN_PASSES_DEVICEWEIGHTS_H
