//===- VulkanExecutor.h - the Vulkan half of a kiln session -------*- C++ -*-===//
//
// Model (at load): open the device that satisfies Manifest.device_profile_json, build one VkPipeline per
// Vulkan kernel, upload the DEVICE weights, cut the dispatch list into segments: runs of consecutive Vulkan
// work (kernels, host->device and device->host transfers) that end at a device->host transfer or at the end
// of the step.
// Session: a device arena (device_arena_bytes), both halves of every DEVICE KV-cache buffer, a host staging
// buffer with one region per transfer, descriptor sets for both KV parities, command buffers recorded once
// per step shape (b, s, p, parity) and reused, a timestamp query pool.
// Run: walk the steps in order: CPU dispatches call back into the CPU executor; a host->device transfer
// copies into its staging region now (its GPU copy is in the segment's command buffer); a segment is
// submitted and waited for at its end, then its device->host transfers copy out of staging.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_VULKAN_VULKANEXECUTOR_H
#define KILN_RUNTIME_VULKAN_VULKANEXECUTOR_H

#include "kiln_artifact.pb.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kiln::vulkan {

struct VulkanModel;
struct VulkanSession;

/// Whether the artifact has any Vulkan dispatch or DEVICE buffer.
bool manifestUsesVulkan(const kiln::artifact::Manifest &manifest);

/// Null with a one-line error (no device, device lacks what the profile needs, a kernel / buffer beyond the
/// device's limits, an inconsistent Vulkan plan).
VulkanModel *createModel(const kiln::artifact::Manifest &manifest, const uint8_t *weights, uint64_t weightsSize,
                         std::string &error);
void destroyModel(VulkanModel *model);
const std::string &deviceName(const VulkanModel &model);

VulkanSession *createSession(VulkanModel &model, std::string &error);
void destroySession(VulkanSession *session);

/// One step. `symbols`: the values of Manifest.symbols in order; `current`: which KV half holds the past;
/// `bufferPtr`: host pointers of HOST buffers (DEVICE outputs are set to host copies on return); `cpu(d)`
/// runs CPU dispatch d.
bool runStep(VulkanModel &model, VulkanSession &session, const int64_t *symbols, int current,
             std::vector<void *> &bufferPtr, const std::function<void(int)> &cpu, std::string &error);

/// GPU time of the last run's segments in nanoseconds (timestamps; 0 when the queue has none).
uint64_t lastGpuTimeNs(const VulkanSession &session);
/// Command buffers recorded so far by the session (tests: a repeated shape records nothing new).
uint64_t recordedCommandBuffers(const VulkanSession &session);

} // namespace kiln::vulkan

#endif
