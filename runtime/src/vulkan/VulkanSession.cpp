//===- VulkanSession.cpp - device memory, command buffers, running a step ----===//
#include "Environment.h"
#include "VulkanProgram.h"

// Vulkan create-info structs are initialized as {sType} with the rest zeroed.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

namespace kiln::vulkan {

namespace art = kiln::artifact;
using runtime::Error;
using runtime::PlanBuffer;
using runtime::PlanDispatch;
using runtime::PlanSegment;
using runtime::StepState;

namespace {

struct Region {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceSize offset = 0, range = 0;
};

// Tracks what the recorded commands touched since the last barrier.
struct Hazards {
  struct Range {
    VkBuffer buffer;
    VkDeviceSize begin, end;
  };
  std::vector<Range> reads, writes;
  static bool overlaps(const std::vector<Range> &set, const Range &r) {
    for (const Range &x : set)
      if (x.buffer == r.buffer && x.begin < r.end && r.begin < x.end)
        return true;
    return false;
  }
  // True when a barrier is needed before an access reading `rd` and writing `wr`.
  bool conflict(const std::vector<Range> &rd, const std::vector<Range> &wr) const {
    for (const Range &r : rd)
      if (overlaps(writes, r))
        return true;
    for (const Range &w : wr)
      if (overlaps(writes, w) || overlaps(reads, w))
        return true;
    return false;
  }
  // Records a barrier first when the access conflicts with what came since the last one.
  void access(VkCommandBuffer cmd, const std::vector<Range> &rd, const std::vector<Range> &wr) {
    if (conflict(rd, wr)) {
      VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
      mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
      mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                         VK_ACCESS_TRANSFER_WRITE_BIT;
      const VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
      vkCmdPipelineBarrier(cmd, stages, stages, 0, 1, &mb, 0, nullptr, 0, nullptr);
      reads.clear();
      writes.clear();
    }
    reads.insert(reads.end(), rd.begin(), rd.end());
    writes.insert(writes.end(), wr.begin(), wr.end());
  }
};

class VulkanSession : public runtime::ExecutorSession {
public:
  explicit VulkanSession(VulkanExecutor &ex) : ex_(ex), plan_(ex.plan), dev_(*ex.dev) {}
  ~VulkanSession() override;
  bool create(std::string &error);

  Error beginStep(StepState &step) override;
  Error prepareCommands(StepState &step);
  Error runSegment(const PlanSegment &segment, StepState &step) override;
  Error finishStep(StepState &step) override;
  const void *outputData(int id) const override;
  uint64_t deviceTimeNs() const override { return gpuNs_; }

private:
  bool fail(const std::string &what, std::string &error) const {
    error = "Vulkan session on '" + ex_.limits.name + "': " + what;
    return false;
  }
  Region region(int id, int parity) const;
  bool createDescriptorSets(std::string &error);
  bool createParams(std::string &error);
  bool zeroArena(std::string &error);
  bool workgroups(int d, const int64_t *sym, uint32_t groups[3], std::string &error) const;
  bool writeParams(const int64_t *sym, std::string &error);
  void recordParamsCopy(VkCommandBuffer cmd);
  void createQueryPools();
  bool record(int submission, const int64_t *sym, int parity, VkCommandBuffer cmd, std::string &error);
  bool recordKernel(const Item &item, const int64_t *sym, int parity, VkCommandBuffer cmd, Hazards &hz,
                    std::string &error);
  void recordTransfer(const Item &item, const int64_t *sym, int parity, VkCommandBuffer cmd, Hazards &hz);
  bool runSteps(int begin, int end, const StepState &step, std::string &error);
  bool stage(const Transfer &t, const StepState &step, std::string &error);
  bool submit(int submission, const StepState &step, std::string &error);
  void readProfile(int submission);
  void printProfile() const;
  void printPipelineStatistics(const std::map<std::string, std::pair<uint64_t, int>> &ran) const;

  VulkanExecutor &ex_;
  const LoadedPlan &plan_;
  VulkanDevice &dev_;
  Buffer arena_, staging_;
  // Replay: this step's symbols (std140 uvec4s, the kernels' set 1) then, from argsOffset_, one
  // VkDispatchIndirectCommand per descriptor-set slot; written by the host (params_) and copied to the device
  // (paramsDevice_) by the step's first command buffer.
  Buffer params_, paramsDevice_;
  VkDeviceSize argsOffset_ = 0, paramsBytes_ = 0;
  VkDescriptorSet symbolsSet_ = VK_NULL_HANDLE;
  std::vector<Buffer> kv_[2];                      // per KV entry (DEVICE ones), per half
  // Per ex_.deviceOutputs: where the caller reads it. Cached staging memory is read in place (a copy of a
  // [b, s, vocab] logits read-back costs milliseconds); uncached memory is copied out once, after the wait.
  std::vector<std::vector<uint8_t>> outputCopies_;
  std::vector<const uint8_t *> outputs_;
  VkDescriptorPool pool_ = VK_NULL_HANDLE;
  std::vector<VkDescriptorSet> sets_[2]; // per parity, per set slot
  VkCommandPool cmdPool_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  VkQueryPool queries_ = VK_NULL_HANDLE;
  // Recorded command buffers, one per submission, keyed by (parity, the transfers' sizes) when replaying, else
  // by (parity, symbols); this step's.
  std::map<std::pair<int, std::vector<int64_t>>, std::vector<VkCommandBuffer>> recorded_;
  const std::vector<VkCommandBuffer> *cmds_ = nullptr;
  uint64_t gpuNs_ = 0;
  // KILN_PROFILE: a timestamp after every item (one pool slot per item, per submission from profBase_[k]; slot
  // profBase_[k] is its start); per dispatch, the GPU time from the previous timestamp to its own (its
  // execution plus the barrier before it), summed over the session's runs.
  VkQueryPool profQueries_ = VK_NULL_HANDLE;
  std::vector<uint32_t> profBase_;
  std::vector<uint64_t> profNs_; // per dispatch, then per dispatch for its small-rows kernel
  std::vector<int> kernelNow_;   // per dispatch: the kernel the current command buffers run
  uint64_t profRuns_ = 0;
  // Host time spent preparing steps' commands (params, recording), for the KILN_PROFILE report.
  uint64_t hostPrepareNs_ = 0, steps_ = 0, recordings_ = 0;
};

VulkanSession::~VulkanSession() {
  vkDeviceWaitIdle(dev_.device);
  if (profQueries_) {
    printProfile();
    vkDestroyQueryPool(dev_.device, profQueries_, nullptr);
  }
  if (queries_) vkDestroyQueryPool(dev_.device, queries_, nullptr);
  if (fence_) vkDestroyFence(dev_.device, fence_, nullptr);
  if (cmdPool_) vkDestroyCommandPool(dev_.device, cmdPool_, nullptr); // frees the command buffers
  if (pool_) vkDestroyDescriptorPool(dev_.device, pool_, nullptr);
  dev_.destroyBuffer(arena_);
  dev_.destroyBuffer(staging_);
  dev_.destroyBuffer(params_);
  dev_.destroyBuffer(paramsDevice_);
  for (auto &half : kv_)
    for (Buffer &b : half)
      dev_.destroyBuffer(b);
}

// Where DEVICE buffer `id` lives in this session for KV parity `parity`.
Region VulkanSession::region(int id, int parity) const {
  const PlanBuffer &b = plan_.buffers[size_t(id)];
  Region r;
  switch (b.kind) {
  case art::Buffer::ARENA:
    r = {arena_.buffer, b.offset, b.maxBytes};
    break;
  case art::Buffer::WEIGHT:
    r = {ex_.weightBlocks[size_t(ex_.weightBlock[size_t(id)])].buffer, ex_.weightOffset[size_t(id)], b.maxBytes};
    break;
  case art::Buffer::KV_CACHE: {
    // In place: every view (past, present, the appended rows) binds the one storage from offset 0; the
    // kernels add the row offset (codegen/spirv KV_VIEW), so nothing here depends on p.
    const runtime::PlanKvEntry &e = plan_.kv[size_t(b.kvEntry)];
    const int half = e.inPlace ? 0 : b.kvPresent ? 1 - parity : parity;
    r = {kv_[half][size_t(b.kvEntry)].buffer, 0, e.bytes};
    break;
  }
  default:
    break;
  }
  r.range = std::max<VkDeviceSize>(r.range, 4);
  return r;
}

// One descriptor set per Vulkan kernel dispatch and KV parity.
bool VulkanSession::createDescriptorSets(std::string &error) {
  const VkDescriptorPoolSize ps[2] = {{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, static_cast<uint32_t>(2 * ex_.numBindings)},
                                      {VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER, 1}};
  VkDescriptorPoolCreateInfo dpci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
  dpci.maxSets = static_cast<uint32_t>(2 * ex_.numSets + 1); // + the symbols' set
  dpci.poolSizeCount = 2;
  dpci.pPoolSizes = ps;
  if (vkCreateDescriptorPool(dev_.device, &dpci, nullptr, &pool_) != VK_SUCCESS) {
    pool_ = VK_NULL_HANDLE;
    return fail("vkCreateDescriptorPool failed", error);
  }
  for (int h = 0; h < 2; ++h) {
    sets_[h].assign(size_t(ex_.numSets), VK_NULL_HANDLE);
    for (size_t d = 0; d < plan_.dispatches.size(); ++d) {
      const int slot = ex_.dispatchSet[d];
      if (slot < 0)
        continue;
      const PlanDispatch &disp = plan_.dispatches[d];
      VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
      ai.descriptorPool = pool_;
      ai.descriptorSetCount = 1;
      ai.pSetLayouts = &ex_.pipelines[size_t(disp.kernel)].setLayout;
      if (vkAllocateDescriptorSets(dev_.device, &ai, &sets_[h][size_t(slot)]) != VK_SUCCESS)
        return fail("vkAllocateDescriptorSets failed", error);
      std::vector<VkDescriptorBufferInfo> infos(disp.numBuffers);
      std::vector<VkWriteDescriptorSet> writes(disp.numBuffers);
      for (uint32_t j = 0; j < disp.numBuffers; ++j) {
        Region r = region(plan_.buffersOf(disp)[j], h);
        infos[j] = {r.buffer, r.offset, r.range};
        writes[j] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
        writes[j].dstSet = sets_[h][size_t(slot)];
        writes[j].dstBinding = j;
        writes[j].descriptorCount = 1;
        writes[j].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        writes[j].pBufferInfo = &infos[j];
      }
      vkUpdateDescriptorSets(dev_.device, static_cast<uint32_t>(writes.size()), writes.data(), 0, nullptr);
    }
  }
  return true;
}

// Replay: the params buffers (host and device) and the symbols' descriptor set (set 1 of every kernel).
bool VulkanSession::createParams(std::string &error) {
  const VkDeviceSize symbolBytes = 16 * ((plan_.symbols.size() + 3) / 4);
  argsOffset_ = std::max<VkDeviceSize>(256, (symbolBytes + 255) / 256 * 256);
  paramsBytes_ = argsOffset_ + sizeof(VkDispatchIndirectCommand) * static_cast<VkDeviceSize>(ex_.numSets);
  if (!dev_.createBuffer(paramsBytes_, true, params_, error) ||
      !dev_.createBuffer(paramsBytes_, false, paramsDevice_, error))
    return fail("step parameters: " + error, error);
  std::memset(params_.mapped, 0, paramsBytes_);
  VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
  ai.descriptorPool = pool_;
  ai.descriptorSetCount = 1;
  ai.pSetLayouts = &ex_.symbolsLayout;
  if (vkAllocateDescriptorSets(dev_.device, &ai, &symbolsSet_) != VK_SUCCESS)
    return fail("vkAllocateDescriptorSets failed (symbols)", error);
  VkDescriptorBufferInfo info{paramsDevice_.buffer, 0, std::max<VkDeviceSize>(symbolBytes, 16)};
  VkWriteDescriptorSet write{VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
  write.dstSet = symbolsSet_;
  write.dstBinding = 0;
  write.descriptorCount = 1;
  write.descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER;
  write.pBufferInfo = &info;
  vkUpdateDescriptorSets(dev_.device, 1, &write, 0, nullptr);
  return true;
}

// The device arena starts at 0: what a step leaves in a whole-step buffer is there for the next, and a split
// attention's counters (the compiler's PlanBuffer::wholeStep) must be 0 before its first dispatch.
bool VulkanSession::zeroArena(std::string &error) {
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = cmdPool_;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  VkCommandBuffer cmd = VK_NULL_HANDLE;
  if (vkAllocateCommandBuffers(dev_.device, &ai, &cmd) != VK_SUCCESS)
    return fail("vkAllocateCommandBuffers failed (arena zeroing)", error);
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  vkBeginCommandBuffer(cmd, &bi);
  vkCmdFillBuffer(cmd, arena_.buffer, 0, VK_WHOLE_SIZE, 0);
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
  vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0,
                       nullptr, 0, nullptr);
  const bool ok = vkEndCommandBuffer(cmd) == VK_SUCCESS && dev_.submitAndWait(cmd, fence_, error);
  vkFreeCommandBuffers(dev_.device, cmdPool_, 1, &cmd);
  return ok || fail("zeroing the device arena: " + (error.empty() ? std::string("vkEndCommandBuffer failed") : error),
                    error);
}

// Timestamps around every submission, and with KILN_PROFILE after every item (a failure: no timestamps).
void VulkanSession::createQueryPools() {
  if (!dev_.timestamps || ex_.submissions.empty())
    return;
  VkQueryPoolCreateInfo qci{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
  qci.queryType = VK_QUERY_TYPE_TIMESTAMP;
  qci.queryCount = static_cast<uint32_t>(2 * ex_.submissions.size());
  if (vkCreateQueryPool(dev_.device, &qci, nullptr, &queries_) != VK_SUCCESS)
    queries_ = VK_NULL_HANDLE;
  if (!runtime::envFlag("KILN_PROFILE"))
    return;
  uint32_t n = 0;
  for (const Submission &sub : ex_.submissions) {
    profBase_.push_back(n);
    n += 1 + static_cast<uint32_t>(sub.items.size());
  }
  qci.queryCount = n;
  if (vkCreateQueryPool(dev_.device, &qci, nullptr, &profQueries_) != VK_SUCCESS)
    profQueries_ = VK_NULL_HANDLE;
  profNs_.assign(2 * plan_.dispatches.size(), 0);
}

bool VulkanSession::create(std::string &error) {
  if (!dev_.createBuffer(plan_.deviceArenaBytes + 256, false, arena_, error))
    return fail("device arena: " + error, error);
  for (int h = 0; h < 2; ++h) {
    kv_[h].resize(plan_.kv.size());
    for (size_t e = 0; e < plan_.kv.size(); ++e)
      if (plan_.kv[e].device && !(h == 1 && plan_.kv[e].inPlace) &&
          !dev_.createBuffer(plan_.kv[e].bytes + 256, false, kv_[h][e], error))
        return fail("KV cache '" + plan_.kv[e].name + "': " + error, error);
  }
  if (!dev_.createBuffer(ex_.stagingBytes + 256, true, staging_, error))
    return fail("staging: " + error, error);
  outputs_.assign(ex_.deviceOutputs.size(), nullptr);
  outputCopies_.resize(ex_.deviceOutputs.size());
  for (const Transfer &t : ex_.transfers) {
    if (t.outputSlot < 0)
      continue;
    if (staging_.hostCached) {
      outputs_[size_t(t.outputSlot)] = static_cast<const uint8_t *>(staging_.mapped) + t.stagingOffset;
    } else {
      outputCopies_[size_t(t.outputSlot)].resize(t.stagingBytes + 64);
      outputs_[size_t(t.outputSlot)] = outputCopies_[size_t(t.outputSlot)].data();
    }
  }
  if (ex_.numSets > 0 && !createDescriptorSets(error))
    return false;
  if (ex_.numSets > 0 && ex_.replay && !createParams(error))
    return false;
  VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pci.queueFamilyIndex = dev_.queueFamily;
  if (vkCreateCommandPool(dev_.device, &pci, nullptr, &cmdPool_) != VK_SUCCESS) {
    cmdPool_ = VK_NULL_HANDLE;
    return fail("vkCreateCommandPool failed", error);
  }
  VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  if (vkCreateFence(dev_.device, &fci, nullptr, &fence_) != VK_SUCCESS) {
    fence_ = VK_NULL_HANDLE;
    return fail("vkCreateFence failed", error);
  }
  if (!zeroArena(error))
    return false;
  kernelNow_.assign(plan_.dispatches.size(), -1);
  createQueryPools();
  return true;
}

// The workgroups of Vulkan dispatch `d` at `sym`: ceil(global / workgroup size) per axis, all 0 when the
// grid is empty at this shape.
bool VulkanSession::workgroups(int d, const int64_t *sym, uint32_t groups[3], std::string &error) const {
  const PlanDispatch &disp = plan_.dispatches[size_t(d)];
  const runtime::PlanKernel &kernel = plan_.kernels[size_t(ex_.kernelAt(disp, sym))];
  for (int a = 0; a < 3; ++a) {
    const int64_t g = kernel.globalSize[a].eval(sym);
    if (g <= 0) {
      groups[0] = groups[1] = groups[2] = 0;
      return true;
    }
    const uint64_t n = (static_cast<uint64_t>(g) + kernel.workgroupSize[a] - 1) / kernel.workgroupSize[a];
    if (n > dev_.limits.maxComputeWorkGroupCount[a]) {
      error = "dispatch " + std::to_string(d) + " (" + disp.location + "): " + std::to_string(n) +
              " workgroups on axis " + std::to_string(a) + " exceed maxComputeWorkGroupCount " +
              std::to_string(dev_.limits.maxComputeWorkGroupCount[a]);
      return false;
    }
    groups[a] = static_cast<uint32_t>(n);
  }
  return true;
}

// Replay: the step's symbols and every dispatch's workgroup counts, into params_ (the previous step's
// command buffers have completed: every submission is waited for).
bool VulkanSession::writeParams(const int64_t *sym, std::string &error) {
  auto *words = static_cast<uint32_t *>(params_.mapped);
  for (size_t i = 0; i < plan_.symbols.size(); ++i)
    words[i] = static_cast<uint32_t>(sym[i]);
  auto *args = reinterpret_cast<VkDispatchIndirectCommand *>(static_cast<uint8_t *>(params_.mapped) + argsOffset_);
  for (size_t d = 0; d < plan_.dispatches.size(); ++d) {
    const int slot = ex_.dispatchSet[d];
    uint32_t groups[3];
    if (slot >= 0 && !workgroups(static_cast<int>(d), sym, groups, error))
      return false;
    if (slot >= 0)
      args[slot] = {groups[0], groups[1], groups[2]};
  }
  return true;
}

// Replay: the first command buffer of a step copies params_ to the device before any kernel reads it.
void VulkanSession::recordParamsCopy(VkCommandBuffer cmd) {
  VkBufferCopy copy{0, 0, paramsBytes_};
  vkCmdCopyBuffer(cmd, params_.buffer, paramsDevice_.buffer, 1, &copy);
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_UNIFORM_READ_BIT | VK_ACCESS_INDIRECT_COMMAND_READ_BIT;
  vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_DRAW_INDIRECT_BIT, 0, 1, &mb, 0,
                       nullptr, 0, nullptr);
}

bool VulkanSession::recordKernel(const Item &item, const int64_t *sym, int parity, VkCommandBuffer cmd, Hazards &hz,
                                 std::string &error) {
  const PlanDispatch &disp = plan_.dispatches[size_t(item.dispatch)];
  const size_t k = size_t(ex_.kernelAt(disp, sym));
  const KernelPipeline &p = ex_.pipelines[k];
  const int slot = ex_.dispatchSet[size_t(item.dispatch)];
  uint32_t groups[3] = {0, 0, 0};
  if (!ex_.replay) { // recorded for these symbols: an empty grid is no command
    if (!workgroups(item.dispatch, sym, groups, error))
      return false;
    if (!groups[0])
      return true;
  }
  // A grid empty whatever the symbols (a norm's small-rows variant whose reader's GEMV norms its rows itself)
  // is no command in a replayed buffer either: no dispatch, no barrier.
  const runtime::PlanKernel &kernel = plan_.kernels[k];
  if (std::any_of(kernel.globalSize, kernel.globalSize + 3,
                  [](const auto &g) { return g.isConstant() && g.constant <= 0; }))
    return true;
  // The last numResults buffers are written.
  std::vector<Hazards::Range> rd, wr;
  const uint32_t firstWritten = disp.numBuffers - uint32_t(disp.numResults);
  for (uint32_t j = 0; j < disp.numBuffers; ++j) {
    Region r = region(plan_.buffersOf(disp)[j], parity);
    (j >= firstWritten ? wr : rd).push_back({r.buffer, r.offset, r.offset + r.range});
  }
  hz.access(cmd, rd, wr);
  vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipeline);
  const VkDescriptorSet sets[2] = {sets_[parity][size_t(slot)], symbolsSet_};
  vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, ex_.replay ? 2 : 1, sets, 0, nullptr);
  if (ex_.replay) {
    vkCmdDispatchIndirect(cmd, paramsDevice_.buffer,
                          argsOffset_ + sizeof(VkDispatchIndirectCommand) * static_cast<VkDeviceSize>(slot));
    return true;
  }
  const size_t numSymbols = plan_.symbols.size();
  if (numSymbols) {
    std::vector<uint32_t> push(numSymbols);
    for (size_t i = 0; i < numSymbols; ++i)
      push[i] = static_cast<uint32_t>(sym[i]);
    vkCmdPushConstants(cmd, p.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, static_cast<uint32_t>(4 * numSymbols),
                       push.data());
  }
  vkCmdDispatch(cmd, groups[0], groups[1], groups[2]);
  return true;
}

void VulkanSession::recordTransfer(const Item &item, const int64_t *sym, int parity, VkCommandBuffer cmd,
                                   Hazards &hz) {
  const Transfer &t = ex_.transfers[size_t(item.transfer)];
  const uint64_t bytes = plan_.buffers[size_t(t.device)].bytesAt(sym);
  if (bytes == 0)
    return;
  Region r = region(t.device, parity);
  Hazards::Range devRange{r.buffer, r.offset, r.offset + bytes};
  Hazards::Range stageRange{staging_.buffer, t.stagingOffset, t.stagingOffset + bytes};
  if (t.toDevice)
    hz.access(cmd, {stageRange}, {devRange});
  else
    hz.access(cmd, {devRange}, {stageRange});
  VkBufferCopy copy{};
  copy.size = bytes;
  if (t.toDevice) {
    copy.srcOffset = t.stagingOffset;
    copy.dstOffset = r.offset;
    vkCmdCopyBuffer(cmd, staging_.buffer, r.buffer, 1, &copy);
  } else {
    copy.srcOffset = r.offset;
    copy.dstOffset = t.stagingOffset;
    vkCmdCopyBuffer(cmd, r.buffer, staging_.buffer, 1, &copy);
  }
}

bool VulkanSession::record(int k, const int64_t *sym, int parity, VkCommandBuffer cmd, std::string &error) {
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  vkBeginCommandBuffer(cmd, &bi);
  if (queries_) {
    vkCmdResetQueryPool(cmd, queries_, 2 * uint32_t(k), 2);
    vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, queries_, 2 * uint32_t(k));
  }
  const Submission &sub = ex_.submissions[size_t(k)];
  uint32_t profSlot = 0;
  if (profQueries_) {
    profSlot = profBase_[size_t(k)];
    vkCmdResetQueryPool(cmd, profQueries_, profSlot, 1 + static_cast<uint32_t>(sub.items.size()));
    vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, profQueries_, profSlot++);
  }
  if (params_.buffer && k == 0)
    recordParamsCopy(cmd);
  Hazards hz;
  for (const Item &item : sub.items) {
    if (item.kernel && !recordKernel(item, sym, parity, cmd, hz, error)) {
      vkEndCommandBuffer(cmd);
      return false;
    }
    if (!item.kernel)
      recordTransfer(item, sym, parity, cmd, hz);
    // KILN_PROFILE: this item's timestamp, written once it has completed (also for an empty dispatch).
    if (profQueries_)
      vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, profQueries_, profSlot++);
  }
  // Everything finished and visible: to the next submission's commands and to the host.
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
  vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                       VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr, 0, nullptr);
  if (queries_)
    vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, queries_, 2 * uint32_t(k) + 1);
  if (vkEndCommandBuffer(cmd) != VK_SUCCESS) {
    error = "vkEndCommandBuffer failed";
    return false;
  }
  return true;
}

Error VulkanSession::beginStep(StepState &step) {
  const auto start = std::chrono::steady_clock::now();
  Error e = prepareCommands(step);
  hostPrepareNs_ += static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
  ++steps_;
  return e;
}

// The command buffers of this step's class: recorded once, then replayed (replay: what varies with the
// symbols is in params_; else one recording per value of the symbols).
Error VulkanSession::prepareCommands(StepState &step) {
  // The parity matters only where a device KV entry keeps two buffers.
  const bool twoBuffers = std::any_of(plan_.kv.begin(), plan_.kv.end(),
                                      [](const runtime::PlanKvEntry &e) { return e.device && !e.inPlace; });
  std::pair<int, std::vector<int64_t>> key{twoBuffers ? step.parity : 0, {}};
  if (ex_.replay) {
    std::string error;
    if (params_.mapped && !writeParams(step.symbols, error))
      return Error(KILN_INTERNAL, error);
    for (const Transfer &t : ex_.transfers)
      key.second.push_back(static_cast<int64_t>(plan_.buffers[size_t(t.device)].bytesAt(step.symbols)));
  } else {
    key.second.assign(step.symbols, step.symbols + plan_.symbols.size());
  }
  // Which kernel each dispatch with a small-rows variant runs (recorded in the command buffers; the profile's).
  for (size_t d = 0; d < plan_.dispatches.size(); ++d)
    if (plan_.dispatches[d].smallRowsKernel >= 0) {
      kernelNow_[d] = ex_.kernelAt(plan_.dispatches[d], step.symbols);
      if (ex_.replay)
        key.second.push_back(kernelNow_[d]);
    }
  auto it = recorded_.find(key);
  gpuNs_ = 0;
  if (it != recorded_.end()) {
    cmds_ = &it->second;
    return {};
  }
  if (recorded_.size() >= 64) { // bound the cache (without replay, decode steps all differ in p)
    for (auto &[k, cmds] : recorded_)
      vkFreeCommandBuffers(dev_.device, cmdPool_, static_cast<uint32_t>(cmds.size()), cmds.data());
    recorded_.clear();
  }
  std::vector<VkCommandBuffer> cmds(ex_.submissions.size(), VK_NULL_HANDLE);
  if (!cmds.empty()) {
    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = cmdPool_;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = static_cast<uint32_t>(cmds.size());
    if (vkAllocateCommandBuffers(dev_.device, &ai, cmds.data()) != VK_SUCCESS)
      return Error(KILN_INTERNAL, "vkAllocateCommandBuffers failed");
  }
  std::string error;
  for (size_t k = 0; k < cmds.size(); ++k)
    if (!record(static_cast<int>(k), step.symbols, step.parity, cmds[k], error)) {
      vkFreeCommandBuffers(dev_.device, cmdPool_, static_cast<uint32_t>(cmds.size()), cmds.data());
      return Error(KILN_INTERNAL, error);
    }
  cmds_ = &recorded_.emplace(std::move(key), std::move(cmds)).first->second;
  ++recordings_;
  return {};
}

bool VulkanSession::stage(const Transfer &t, const StepState &step, std::string &error) {
  const PlanBuffer &b = plan_.buffers[size_t(t.device)];
  const uint64_t bytes = b.bytesAt(step.symbols);
  if (bytes > t.stagingBytes) {
    error = "transfer to '" + b.name + "' of " + std::to_string(bytes) + " bytes exceeds its planned " +
            std::to_string(t.stagingBytes);
    return false;
  }
  if (bytes)
    std::memcpy(static_cast<uint8_t *>(staging_.mapped) + t.stagingOffset, (*step.host)[size_t(t.host)], bytes);
  return true;
}

void VulkanSession::readProfile(int k) {
  const Submission &sub = ex_.submissions[size_t(k)];
  std::vector<uint64_t> ts(1 + sub.items.size());
  if (vkGetQueryPoolResults(dev_.device, profQueries_, profBase_[size_t(k)], static_cast<uint32_t>(ts.size()),
                            ts.size() * sizeof(uint64_t), ts.data(), sizeof(uint64_t),
                            VK_QUERY_RESULT_64_BIT) == VK_SUCCESS)
    for (size_t i = 0; i < sub.items.size(); ++i) {
      const Item &item = sub.items[i];
      const int d = item.kernel ? item.dispatch : ex_.transfers[size_t(item.transfer)].dispatch;
      const bool small = d >= 0 && item.kernel && plan_.dispatches[size_t(d)].smallRowsKernel >= 0 &&
                         kernelNow_[size_t(d)] == plan_.dispatches[size_t(d)].smallRowsKernel;
      if (d >= 0)
        profNs_[size_t(d) + small * plan_.dispatches.size()] += static_cast<uint64_t>(static_cast<double>((ts[i + 1] - ts[i]) & dev_.timestampMask) *
                                                    dev_.timestampPeriodNs);
    }
  if (k == 0)
    ++profRuns_;
}

// Submits submission `k`, waits, and copies its device->host transfers out of staging.
bool VulkanSession::submit(int k, const StepState &step, std::string &error) {
  if (!dev_.submitAndWait((*cmds_)[size_t(k)], fence_, error))
    return false;
  if (profQueries_)
    readProfile(k);
  if (queries_) {
    uint64_t ts[2] = {0, 0};
    if (vkGetQueryPoolResults(dev_.device, queries_, 2 * uint32_t(k), 2, sizeof ts, ts, sizeof(uint64_t),
                              VK_QUERY_RESULT_64_BIT) == VK_SUCCESS)
      gpuNs_ += static_cast<uint64_t>(static_cast<double>((ts[1] - ts[0]) & dev_.timestampMask) *
                                      dev_.timestampPeriodNs);
  }
  for (int xi : ex_.submissions[size_t(k)].readbacks) {
    const Transfer &t = ex_.transfers[size_t(xi)];
    const PlanBuffer &b = plan_.buffers[size_t(t.device)];
    const uint64_t bytes = b.bytesAt(step.symbols);
    if (bytes > t.stagingBytes) {
      error = "transfer from '" + b.name + "' exceeds its planned size";
      return false;
    }
    if (t.host < 0 && staging_.hostCached)
      continue; // read in place (outputData)
    void *dst = t.host >= 0 ? (*step.host)[size_t(t.host)] : outputCopies_[size_t(t.outputSlot)].data();
    if (bytes)
      std::memcpy(dst, static_cast<const uint8_t *>(staging_.mapped) + t.stagingOffset, bytes);
  }
  return true;
}

// The steps placed at dispatches [begin, end).
bool VulkanSession::runSteps(int begin, int end, const StepState &step, std::string &error) {
  auto it = std::lower_bound(ex_.steps.begin(), ex_.steps.end(), begin,
                             [](const Step &s, int d) { return s.dispatch < d; });
  for (; it != ex_.steps.end() && it->dispatch < end; ++it) {
    const bool ok = it->kind == Step::Stage ? stage(ex_.transfers[size_t(it->index)], step, error)
                                            : submit(it->index, step, error);
    if (!ok)
      return false;
  }
  return true;
}

Error VulkanSession::runSegment(const PlanSegment &segment, StepState &step) {
  std::string error;
  if (!runSteps(segment.begin, segment.end, step, error))
    return Error(KILN_INTERNAL, error);
  return {};
}

Error VulkanSession::finishStep(StepState &step) {
  std::string error;
  const int end = static_cast<int>(plan_.dispatches.size());
  if (!runSteps(end, end + 1, step, error))
    return Error(KILN_INTERNAL, error);
  return {};
}

const void *VulkanSession::outputData(int id) const {
  for (size_t o = 0; o < ex_.deviceOutputs.size(); ++o)
    if (ex_.deviceOutputs[o] == id)
      return outputs_[o];
  return nullptr;
}

// The driver's statistics of each kernel that ran (its registers bound how many workgroups a multiprocessor
// holds at once), or why there are none.
void VulkanSession::printPipelineStatistics(const std::map<std::string, std::pair<uint64_t, int>> &ran) const {
  if (!dev_.getStatistics) {
    std::fprintf(stderr, "kiln profile (vulkan): no pipeline statistics ('%s' lacks "
                         "VK_KHR_pipeline_executable_properties)\n",
                 ex_.limits.name.c_str());
    return;
  }
  std::fprintf(stderr, "kiln profile (vulkan): pipeline statistics (the driver's, per kernel that ran)\n");
  std::set<std::string> printed;
  for (size_t k = 0; k < plan_.kernels.size() && k < ex_.pipelines.size(); ++k) {
    const std::string &symbol = plan_.kernels[k].symbol;
    if (ran.count(symbol) && printed.insert(symbol).second)
      std::fprintf(stderr, "  stats %s: %s\n", symbol.c_str(),
                   ex_.pipelines[k].statistics.empty() ? "(none reported)" : ex_.pipelines[k].statistics.c_str());
  }
}

// The KILN_PROFILE report on stderr: GPU time per kernel variant, then the top dispatches.
void VulkanSession::printProfile() const {
  uint64_t total = 0;
  std::map<std::string, std::pair<uint64_t, int>> byKernel;
  std::vector<std::pair<uint64_t, int>> top;
  const size_t numDispatches = plan_.dispatches.size();
  auto kernelName = [&](size_t i) { // i: a profNs_ index
    const PlanDispatch &disp = plan_.dispatches[i % numDispatches];
    return disp.transfer ? std::string("transfer")
                         : plan_.kernels[size_t(i < numDispatches ? disp.kernel : disp.smallRowsKernel)].symbol;
  };
  for (size_t i = 0; i < profNs_.size(); ++i) {
    if (!profNs_[i])
      continue;
    total += profNs_[i];
    auto &entry = byKernel[kernelName(i)];
    entry.first += profNs_[i];
    entry.second++;
    top.push_back({profNs_[i], static_cast<int>(i)});
  }
  if (steps_)
    std::fprintf(stderr, "kiln profile (vulkan): %llu steps, %llu command-buffer recordings (%s), host %.1f us per "
                         "step preparing commands\n",
                 static_cast<unsigned long long>(steps_), static_cast<unsigned long long>(recordings_),
                 ex_.replay ? "replayed: symbols and workgroup counts in a buffer" : "per shape: push constants",
                 double(hostPrepareNs_) * 1e-3 / double(steps_));
  if (!total || !profRuns_)
    return;
  std::fprintf(stderr, "kiln profile (vulkan): %llu runs, GPU %.3f ms per run (per-dispatch timestamps: the time "
                       "since the previous one, barrier included)\n",
               static_cast<unsigned long long>(profRuns_), double(total) * 1e-6 / double(profRuns_));
  std::vector<std::pair<uint64_t, std::string>> kinds;
  for (auto &[k, v] : byKernel)
    kinds.push_back({v.first, k + " x" + std::to_string(v.second)});
  std::sort(kinds.rbegin(), kinds.rend());
  for (auto &[ns, k] : kinds)
    std::fprintf(stderr, "  %6.2f%% %9.3f ms/run  %s\n", 100.0 * double(ns) / double(total),
                 double(ns) * 1e-6 / double(profRuns_), k.c_str());
  std::sort(top.rbegin(), top.rend());
  const size_t shown = size_t(runtime::envCount("KILN_PROFILE_TOP", 15));
  for (size_t i = 0; i < top.size() && i < shown; ++i) {
    const size_t at = size_t(top[i].second);
    std::fprintf(stderr, "  top %2zu: %8.3f ms/run  #%zu %s %s\n", i + 1, double(top[i].first) * 1e-6 / double(profRuns_),
                 at % numDispatches, kernelName(at).c_str(), plan_.dispatches[at % numDispatches].location.c_str());
  }
  printPipelineStatistics(byKernel);
}

} // namespace

Error VulkanExecutor::createSession(std::unique_ptr<runtime::ExecutorSession> &out) {
  auto session = std::make_unique<VulkanSession>(*this);
  std::string error;
  if (!session->create(error))
    return Error(KILN_INTERNAL, error);
  out = std::move(session);
  return {};
}

} // namespace kiln::vulkan
