//===- VulkanProgram.h - what the Vulkan executor builds at load -----*- C++ -*-===//
//
// Internal to runtime/src/vulkan: the executor's load-time state (device, pipelines, weight blocks,
// transfers, submissions, the steps that interleave with the host's dispatches) and the functions that
// build it, shared by VulkanProgram.cpp (the plan), VulkanPipeline.cpp (pipelines), VulkanSession.cpp
// (sessions, recording, running) and DeviceRequirements.cpp (the device).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_VULKAN_VULKANPROGRAM_H
#define KILN_RUNTIME_VULKAN_VULKANPROGRAM_H

#include "Executor.h"
#include "VulkanDevice.h"

#include <memory>
#include <string>
#include <vector>

namespace kiln::vulkan {

using runtime::LoadedPlan;

/// What the executor needs of the device's profile (read once, in DeviceRequirements.cpp).
struct DeviceLimits {
  std::string name;
  uint64_t maxStorageBufferRange = 0;
  uint64_t maxAllocationSize = 0;
};

/// What `plan` needs of a device (a requirement for target::missingCapabilities): the features of `profile` (the
/// artifact's, may be null), integer dot product where a kernel it runs declares it, and the limits it reaches.
target::DeviceProfile deviceRequirements(const LoadedPlan &plan, const target::DeviceProfile *profile);

/// Opens the device that satisfies `plan`'s profile and what the plan reaches of its limits.
bool openDevice(const LoadedPlan &plan, std::unique_ptr<VulkanDevice> &device, DeviceLimits &limits,
                std::string &error);

struct KernelPipeline {
  VkShaderModule module = VK_NULL_HANDLE;
  VkDescriptorSetLayout setLayout = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkPipeline pipeline = VK_NULL_HANDLE;
  int bindings = -1;      // -1: not built (no Vulkan dispatch uses the kernel)
  std::string statistics; // KILN_PROFILE: the driver's statistics of its code ("Register Count 64, ..."), if any
};

/// A TRANSFER (or the read-back of a DEVICE output) through its region of the session's staging buffer.
struct Transfer {
  bool toDevice = false;
  int host = -1;       // the HOST buffer (-1: a DEVICE output's host copy, `outputSlot`)
  int device = -1;     // the DEVICE buffer
  int outputSlot = -1;
  int dispatch = -1;   // its dispatch (-1: an output read-back)
  uint64_t stagingOffset = 0, stagingBytes = 0;
};

/// One command in a submission: a kernel dispatch or a transfer's copy.
struct Item {
  bool kernel = true;
  int dispatch = -1; // kernel items
  int transfer = -1; // transfer items
};

/// One command buffer: submitted and waited for at its end.
struct Submission {
  std::vector<Item> items;
  std::vector<int> readbacks; // device->host transfers, copied out of staging after the wait
};

/// What the host side does, in dispatch order: copy a transfer into staging, or submit a submission (and
/// wait, and copy its read-backs out). `dispatch` places it: it runs in the segment holding that dispatch,
/// or in finishStep when it is the number of dispatches.
struct Step {
  enum Kind { Stage, Submit } kind = Stage;
  int index = 0; // Stage: transfer; Submit: submission
  int dispatch = 0;
};

class VulkanExecutor : public runtime::Executor {
public:
  explicit VulkanExecutor(const LoadedPlan &plan) : plan(plan) {}
  ~VulkanExecutor() override;
  std::string deviceName() const override { return limits.name; }
  runtime::Error createSession(std::unique_ptr<runtime::ExecutorSession> &out) override;

  /// Checks the plan against the device, uploads the weights, builds pipelines, submissions and steps.
  bool build(const uint8_t *weights, std::string &error);

  const LoadedPlan &plan;
  std::unique_ptr<VulkanDevice> dev;
  DeviceLimits limits;
  std::vector<Buffer> weightBlocks;
  std::vector<int> weightBlock;          // per buffer: DEVICE WEIGHT's upload block, else -1
  std::vector<uint64_t> weightOffset;    // ... and where in it
  std::vector<KernelPipeline> pipelines; // per kernel
  std::vector<int> dispatchSet;          // per dispatch: descriptor-set slot, -1 if not a Vulkan kernel
  int numSets = 0, numBindings = 0;
  // Replay (every Vulkan kernel reads the symbols from the uniform, Kernel.symbols_in_uniform): a step's
  // command buffers depend only on the KV parity and the transfers' sizes; the symbols and each dispatch's
  // workgroup counts (vkCmdDispatchIndirect, at slot dispatchSet[d]) are written to the session's params
  // buffer per step. Otherwise (older artifacts: push constants) they are recorded per value of the symbols.
  bool replay = true;
  // Dispatches with a small-rows kernel (a matmul's GEMV-only variant) take it at small steps;
  // KILN_VULKAN_SMALL_ROWS=0 keeps every dispatch on its main kernel (for A/B timings).
  bool smallRowsKernels = true;
  int kernelAt(const runtime::PlanDispatch &d, const int64_t *symbols) const {
    return smallRowsKernels ? d.kernelAt(symbols) : d.kernel;
  }
  VkDescriptorSetLayout symbolsLayout = VK_NULL_HANDLE; // set 1: binding 0, the symbols uniform
  std::vector<Transfer> transfers;
  std::vector<Submission> submissions;
  std::vector<Step> steps; // sorted by dispatch
  std::vector<int> deviceOutputs; // DEVICE output buffers (host copies per session)
  uint64_t stagingBytes = 0;

private:
  bool checkBuffers(std::string &error);
  bool uploadWeights(const uint8_t *weights, std::string &error);
  bool planDispatches(std::string &error);
  bool planKernel(int d, std::string &error);
  int addTransfer(Transfer t, int &open);
};

/// Builds the pipeline of kernel `k` for `bindings` storage buffers (VulkanPipeline.cpp).
bool buildPipeline(VulkanExecutor &ex, int k, int bindings, std::string &error);
/// The layout of descriptor set 1 (the symbols uniform) every replayable kernel's pipeline layout names.
bool createSymbolsLayout(VulkanExecutor &ex, std::string &error);

} // namespace kiln::vulkan

#endif // KILN_RUNTIME_VULKAN_VULKANPROGRAM_H
