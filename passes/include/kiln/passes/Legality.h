//===- Legality.h - can a dispatch run on the Vulkan device? --------------*- C++ -*-===//
//
// Per dispatch (op x dtype x shape), in this order, the first reason it cannot run on the device:
//   (a) the profile lists the op (unavailable_ops) or one of its operand / result dtypes
//       (unavailable_dtypes) as unavailable; an f16 buffer without 16-bit storage;
//   (b) an operand or result buffer is larger (max_bytes, the plan's bound) than maxStorageBufferRange or
//       maxMemoryAllocationSize: one binding cannot address it (e.g. an embedding table of 250 MiB against
//       lavapipe's 128 MiB);
//   (c) the SPIR-V backend has no kernel variant that fits the profile (shared memory, workgroup size,
//       subgroup operations, fp16, ...): asked through DeviceKernelCatalog, so passes/ does not depend on
//       codegen/ (kiln compile implements it with codegen/spirv).
// An empty reason means the op may run on the device.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_LEGALITY_H
#define KILN_PASSES_LEGALITY_H

#include "kiln/target/DeviceProfile.h"
#include "kiln/passes/MemoryPlan.h"

#include "mlir/IR/Operation.h"

#include <string>

namespace kiln::passes {

/// What the device backend can generate. unsupportedReason: "" when some kernel variant of the op (with
/// its operand / result types) fits the profile, else a one-line reason ("attention head_dim 256 needs
/// 40 KiB shared memory > 16 KiB").
class DeviceKernelCatalog {
public:
  virtual ~DeviceKernelCatalog() = default;
  virtual std::string unsupportedReason(mlir::Operation *op, const target::DeviceProfile &profile) const = 0;
};

/// The dtype name used in profiles and reasons: "f32", "f16", "bf16", "i64", "i32", "i8", "i1" (MLIR's
/// spelling).
std::string dtypeName(mlir::Type elementType);

/// "" when dispatch `index` of `plan` may run on the device, else why not (checks (a), (b), (c) above;
/// `catalog` may be null: then (c) is skipped).
std::string vulkanUnsupportedReason(const MemoryPlan &plan, int index, const target::DeviceProfile &profile,
                                    const DeviceKernelCatalog *catalog);

/// "250.00 MiB", "16.0 KiB", "128 B".
std::string formatBytes(uint64_t bytes);

} // namespace kiln::passes

#endif // KILN_PASSES_LEGALITY_H
