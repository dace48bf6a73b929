//===- VulkanProgram.cpp - the Vulkan executor at load ----------------------===//
#include "VulkanExecutor.h"
#include "VulkanProgram.h"

#include "Environment.h"

#include <algorithm>
#include <cstdlib>

namespace kiln::vulkan {

namespace art = kiln::artifact;
using runtime::PlanBuffer;
using runtime::PlanDispatch;

namespace {

std::string where(const LoadedPlan &plan, int d) {
  return "dispatch " + std::to_string(d) + " (" + plan.dispatches[size_t(d)].location + ")";
}

} // namespace

VulkanExecutor::~VulkanExecutor() {
  if (!dev)
    return;
  VkDevice d = dev->device;
  vkDeviceWaitIdle(d);
  for (KernelPipeline &k : pipelines) {
    if (k.pipeline) vkDestroyPipeline(d, k.pipeline, nullptr);
    if (k.layout) vkDestroyPipelineLayout(d, k.layout, nullptr);
    if (k.setLayout) vkDestroyDescriptorSetLayout(d, k.setLayout, nullptr);
    if (k.module) vkDestroyShaderModule(d, k.module, nullptr);
  }
  if (symbolsLayout) vkDestroyDescriptorSetLayout(d, symbolsLayout, nullptr);
  for (Buffer &b : weightBlocks)
    dev->destroyBuffer(b);
}

// The device's limits against what the plan's DEVICE buffers need (push constants: buildPipeline).
bool VulkanExecutor::checkBuffers(std::string &error) {
  for (const PlanBuffer &b : plan.buffers) {
    if (!b.device)
      continue;
    if (b.kind == art::Buffer::ARENA && b.offset % dev->limits.minStorageBufferOffsetAlignment != 0) {
      error = "device arena buffer '" + b.name + "' at offset " + std::to_string(b.offset) +
              " is not aligned to minStorageBufferOffsetAlignment " +
              std::to_string(dev->limits.minStorageBufferOffsetAlignment);
      return false;
    }
    if (b.maxBytes > limits.maxStorageBufferRange) {
      error = "buffer '" + b.name + "' of " + std::to_string(b.maxBytes) + " bytes exceeds maxStorageBufferRange " +
              std::to_string(limits.maxStorageBufferRange) + " of '" + limits.name + "'";
      return false;
    }
  }
  // An in-place KV entry is bound whole (its views index it with the row capacity and offset themselves).
  for (const runtime::PlanKvEntry &e : plan.kv)
    if (e.device && e.inPlace && e.bytes > limits.maxStorageBufferRange) {
      error = "kv_cache entry '" + e.name + "' of " + std::to_string(e.bytes) +
              " bytes (in place) exceeds maxStorageBufferRange " + std::to_string(limits.maxStorageBufferRange) +
              " of '" + limits.name + "'";
      return false;
    }
  return true;
}

// DEVICE weights: packed into blocks of at most maxMemoryAllocationSize, uploaded now.
bool VulkanExecutor::uploadWeights(const uint8_t *weights, std::string &error) {
  const uint64_t align = std::max<uint64_t>(64, dev->limits.minStorageBufferOffsetAlignment);
  const uint64_t blockLimit =
      std::min<uint64_t>(limits.maxAllocationSize ? limits.maxAllocationSize : (1ull << 30), 1ull << 31) - 256;
  std::vector<std::vector<int>> blocks;
  std::vector<uint64_t> blockSize;
  weightBlock.assign(plan.buffers.size(), -1);
  weightOffset.assign(plan.buffers.size(), 0);
  for (const PlanBuffer &b : plan.buffers) {
    if (!b.device || b.kind != art::Buffer::WEIGHT)
      continue;
    const uint64_t need = (b.maxBytes + align - 1) / align * align;
    if (blocks.empty() || blockSize.back() + need > blockLimit) {
      blocks.emplace_back();
      blockSize.push_back(0);
    }
    weightBlock[size_t(b.id)] = static_cast<int>(blocks.size() - 1);
    weightOffset[size_t(b.id)] = blockSize.back();
    blockSize.back() += need;
    blocks.back().push_back(b.id);
  }
  for (size_t k = 0; k < blocks.size(); ++k) {
    Buffer buf;
    if (!dev->createBuffer(blockSize[k] + 256, false, buf, error)) {
      error = "uploading the weights: " + error;
      return false;
    }
    weightBlocks.push_back(buf);
    for (int id : blocks[k]) {
      const PlanBuffer &b = plan.buffers[size_t(id)];
      if (!dev->upload(weights + b.offset, b.maxBytes, buf, weightOffset[size_t(id)], error)) {
        error = "uploading weight '" + b.name + "': " + error;
        return false;
      }
    }
  }
  return true;
}

// Adds transfer `t` to the open submission (opening one) and returns its index; a host->device transfer is
// staged when its dispatch runs, a device->host one read back after the submission's wait.
int VulkanExecutor::addTransfer(Transfer t, int &open) {
  const PlanBuffer &devBuffer = plan.buffers[size_t(t.device)];
  uint64_t bytes = std::max<uint64_t>(devBuffer.maxBytes, t.host >= 0 ? plan.buffers[size_t(t.host)].maxBytes : 0);
  if (t.host >= 0 && plan.buffers[size_t(t.host)].kind == art::Buffer::INPUT) // inputs at their max size
    bytes = std::max<uint64_t>(bytes, static_cast<uint64_t>(plan.maxBatch) * uint64_t(plan.maxContext) *
                                          plan.buffers[size_t(t.host)].elemBytes);
  t.stagingOffset = stagingBytes;
  t.stagingBytes = bytes;
  stagingBytes += (bytes + 255) / 256 * 256;
  transfers.push_back(t);
  const int index = static_cast<int>(transfers.size() - 1);
  if (open < 0) {
    submissions.emplace_back();
    open = static_cast<int>(submissions.size() - 1);
  }
  submissions[size_t(open)].items.push_back({false, t.dispatch, index});
  if (t.toDevice)
    steps.push_back({Step::Stage, index, t.dispatch});
  else
    submissions[size_t(open)].readbacks.push_back(index);
  return index;
}

// A Vulkan kernel dispatch: its pipelines (each built for the first dispatch of the kernel: its kernel and its
// small-rows kernel, bound to the same descriptor set) and descriptor set.
bool VulkanExecutor::planKernel(int d, std::string &error) {
  const PlanDispatch &disp = plan.dispatches[size_t(d)];
  for (int kernel : {disp.kernel, disp.smallRowsKernel}) {
    if (kernel < 0)
      continue;
    KernelPipeline &pipeline = pipelines[size_t(kernel)];
    if (pipeline.bindings < 0) {
      if (!buildPipeline(*this, kernel, int(disp.numBuffers), error))
        return false;
    } else if (pipeline.bindings != int(disp.numBuffers)) {
      error = where(plan, d) + " binds " + std::to_string(disp.numBuffers) + " buffers to kernel '" +
              plan.kernels[size_t(kernel)].symbol + "', which another dispatch binds with " +
              std::to_string(pipeline.bindings);
      return false;
    }
  }
  dispatchSet[size_t(d)] = numSets++;
  numBindings += int(disp.numBuffers);
  return true;
}

// Dispatches: pipelines, transfers, submissions and the steps that place them among the host's dispatches.
bool VulkanExecutor::planDispatches(std::string &error) {
  pipelines.resize(plan.kernels.size());
  dispatchSet.assign(plan.dispatches.size(), -1);
  smallRowsKernels = !runtime::envIs("KILN_VULKAN_SMALL_ROWS", "0");
  const int numDispatches = int(plan.dispatches.size());
  const std::string device = plan.deviceExecutor();
  for (const PlanDispatch &disp : plan.dispatches)
    if (!disp.transfer && plan.executors[size_t(disp.executor)] == device &&
        (!plan.kernels[size_t(disp.kernel)].symbolsInUniform ||
         (disp.smallRowsKernel >= 0 && !plan.kernels[size_t(disp.smallRowsKernel)].symbolsInUniform)))
      replay = false;
  if (!createSymbolsLayout(*this, error))
    return false;
  int open = -1; // the submission being filled
  auto close = [&](int dispatch) {
    if (open >= 0)
      steps.push_back({Step::Submit, open, dispatch});
    open = -1;
  };
  for (int d = 0; d < numDispatches; ++d) {
    const PlanDispatch &disp = plan.dispatches[size_t(d)];
    if (plan.executors[size_t(disp.executor)] != device)
      continue;
    if (disp.transfer) {
      const int32_t *ids = plan.buffersOf(disp);
      Transfer t;
      t.toDevice = plan.buffers[size_t(ids[1])].device;
      t.host = t.toDevice ? ids[0] : ids[1];
      t.device = t.toDevice ? ids[1] : ids[0];
      t.dispatch = d;
      addTransfer(t, open);
      if (!t.toDevice)
        close(d);
      continue;
    }
    if (!planKernel(d, error))
      return false;
    if (open < 0) {
      submissions.emplace_back();
      open = static_cast<int>(submissions.size() - 1);
    }
    submissions[size_t(open)].items.push_back({true, d, -1});
  }
  // DEVICE outputs come back to the host at the end of the step.
  for (int id : plan.outputBuffers) {
    if (!plan.buffers[size_t(id)].device)
      continue;
    Transfer t;
    t.device = id;
    t.outputSlot = static_cast<int>(deviceOutputs.size());
    deviceOutputs.push_back(id);
    addTransfer(t, open);
  }
  close(numDispatches);
  return true;
}

bool VulkanExecutor::build(const uint8_t *weights, std::string &error) {
  return checkBuffers(error) && uploadWeights(weights, error) && planDispatches(error);
}

runtime::Error createExecutor(const runtime::ExecutorContext &context, std::unique_ptr<runtime::Executor> &out) {
  auto ex = std::make_unique<VulkanExecutor>(context.plan);
  std::string error;
  if (!openDevice(context.plan, ex->dev, ex->limits, error))
    return runtime::Error(KILN_IO_ERROR, context.plan.path + ": " + error);
  if (!ex->build(context.source.weights, error))
    return runtime::Error(KILN_IO_ERROR, context.plan.path + ": Vulkan ('" + ex->limits.name + "'): " + error);
  out = std::move(ex);
  return {};
}

} // namespace kiln::vulkan
