//===- VulkanExecutor.h - the Vulkan executor -----------------------*- C++ -*-===//
//
// Runs the "vulkan" dispatches and every TRANSFER of a LoadedPlan.
// Executor (at load): open the device that satisfies the artifact's profile (DeviceRequirements.cpp), check
// every DEVICE buffer and kernel against its limits, upload the DEVICE weights, build one VkPipeline per
// Vulkan kernel, and cut its work into submissions: runs of consecutive device work (kernels, host->device
// and device->host transfers) that end at a device->host transfer or at the end of the step.
// Session: a device arena (device_arena_bytes), every DEVICE KV-cache entry (its one storage when in place,
// which every view binds whole: the kernels index it; else both halves), a host staging buffer with one
// region per transfer, descriptor sets for both KV parities, a params buffer (the symbols, a uniform at set
// 1, and one VkDispatchIndirectCommand per dispatch), command buffers recorded once per step class and
// replayed (replay: keyed by the parity of two-buffer entries and the transfers' sizes; artifacts whose
// kernels take push constants: per (symbols, parity)), a timestamp query pool.
// Step: beginStep writes the params (replay) and finds (or records) the command buffers; the first one
// copies the params to the device; each segment copies its
// host->device transfers into staging (their GPU copies are in the command buffer) and submits a
// submission at the device->host transfer that ends it, waits, and copies that transfer out of staging;
// finishStep submits the last one and reads the DEVICE outputs back.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_VULKAN_VULKANEXECUTOR_H
#define KILN_RUNTIME_VULKAN_VULKANEXECUTOR_H

#include "Executor.h"

namespace kiln::vulkan {

/// Errors are IO_ERROR ("FILE: Vulkan ('device'): ..."): no device satisfies the profile, a kernel or buffer
/// beyond the device's limits, a Vulkan call failed.
runtime::Error createExecutor(const runtime::ExecutorContext &context, std::unique_ptr<runtime::Executor> &out);

} // namespace kiln::vulkan

#endif // KILN_RUNTIME_VULKAN_VULKANEXECUTOR_H
