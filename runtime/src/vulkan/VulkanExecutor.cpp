//===- VulkanExecutor.cpp - pipelines, device buffers, segments, command buffers --===//
#include "VulkanExecutor.h"

#include "VulkanDevice.h"

// Vulkan create-info structs are initialized as {sType} with the rest zeroed.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <tuple>

namespace art = kiln::artifact;

namespace kiln::vulkan {
namespace {

size_t elemSize(art::DType t) {
  switch (t) {
  case art::F32: case art::I32: return 4;
  case art::F16: case art::BF16: return 2;
  case art::I64: return 8;
  case art::I8: case art::U8: case art::I1: return 1;
  default: return 0;
  }
}

// constant + sum(coeff[i] * symbols[i]) over Manifest.symbols.
struct Expr {
  int64_t constant = 0;
  std::vector<int64_t> coeff;
  int64_t eval(const int64_t *sym) const {
    int64_t v = constant;
    for (size_t i = 0; i < coeff.size(); ++i)
      v += coeff[i] * sym[i];
    return v;
  }
  bool operator==(const Expr &o) const { return constant == o.constant && coeff == o.coeff; }
};

bool toExpr(const art::Dim &d, const art::Manifest &mf, Expr &e) {
  e.constant = d.constant();
  e.coeff.assign(mf.symbols_size(), 0);
  for (const auto &t : d.terms()) {
    int k = -1;
    for (int i = 0; i < mf.symbols_size(); ++i)
      if (mf.symbols(i).name() == t.symbol())
        k = i;
    if (k < 0)
      return false;
    e.coeff[k] += t.coeff();
  }
  return true;
}

struct BufInfo {
  bool device = false;
  art::Buffer::Kind kind = art::Buffer::KIND_UNSPECIFIED;
  art::DType dtype = art::DTYPE_UNSPECIFIED;
  size_t elem = 0;
  std::vector<Expr> dims;
  uint64_t offset = 0, maxBytes = 0;
  std::string name;
  int kvEntry = -1;
  bool kvPresent = false;
  int weightBlock = -1;      // DEVICE WEIGHT: which upload block
  uint64_t weightOffset = 0; // and where in it
  uint64_t bytesAt(const int64_t *sym) const {
    uint64_t n = elem;
    for (const Expr &e : dims) {
      int64_t d = e.eval(sym);
      n *= d > 0 ? static_cast<uint64_t>(d) : 0;
    }
    return n;
  }
};

struct KernelInfo {
  VkShaderModule module = VK_NULL_HANDLE;
  VkDescriptorSetLayout setLayout = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkPipeline pipeline = VK_NULL_HANDLE;
  int bindings = -1;
  uint32_t wg[3] = {1, 1, 1};
  Expr global[3];
};

struct Xfer {
  bool toDevice = false;
  int host = -1;       // host buffer id (-1: a DEVICE output's host copy, `outputSlot`)
  int dev = -1;        // device buffer id
  int outputSlot = -1;
  uint64_t stagingOffset = 0, stagingBytes = 0;
};

struct Item {
  bool kernel = true;
  int dispatch = -1; // kernel items
  int xfer = -1;     // transfer items
};

struct Segment {
  std::vector<Item> items;
  std::vector<int> readbacks; // device->host transfers, copied out of staging after the wait
};

struct Step {
  enum Kind { Cpu, Stage, Submit } kind;
  int index; // Cpu: dispatch; Stage: transfer; Submit: segment
};

} // namespace

struct VulkanModel {
  const art::Manifest *mf = nullptr;
  std::unique_ptr<VulkanDevice> dev;
  size_t numSymbols = 0;
  std::vector<BufInfo> buffers;
  std::vector<uint64_t> kvBytes;  // per kv entry (each half)
  std::vector<bool> kvDevice;     // per kv entry
  std::vector<Buffer> weightBlocks;
  std::vector<KernelInfo> kernels;
  std::vector<int> dispatchSet;   // per dispatch: descriptor-set slot, -1 if not a Vulkan kernel
  int numSets = 0, numBindings = 0;
  std::vector<Xfer> xfers;
  std::vector<int> dispatchXfer;  // per dispatch: transfer index or -1
  std::vector<Segment> segments;
  std::vector<Step> steps;
  std::vector<int> deviceOutputs; // buffer ids of DEVICE outputs (host copies per session)
  uint64_t stagingBytes = 0;
  uint64_t deviceArenaBytes = 0;

  ~VulkanModel() {
    if (!dev)
      return;
    VkDevice d = dev->device;
    vkDeviceWaitIdle(d);
    for (KernelInfo &k : kernels) {
      if (k.pipeline) vkDestroyPipeline(d, k.pipeline, nullptr);
      if (k.layout) vkDestroyPipelineLayout(d, k.layout, nullptr);
      if (k.setLayout) vkDestroyDescriptorSetLayout(d, k.setLayout, nullptr);
      if (k.module) vkDestroyShaderModule(d, k.module, nullptr);
    }
    for (Buffer &b : weightBlocks)
      dev->destroyBuffer(b);
  }
};

struct VulkanSession {
  VulkanModel *model = nullptr;
  Buffer arena, staging;
  std::vector<Buffer> kv[2];
  std::vector<std::vector<uint8_t>> outputCopies; // per model.deviceOutputs
  VkDescriptorPool pool = VK_NULL_HANDLE;
  std::vector<VkDescriptorSet> sets[2]; // per parity, per set slot
  VkCommandPool cmdPool = VK_NULL_HANDLE;
  VkFence fence = VK_NULL_HANDLE;
  VkQueryPool queries = VK_NULL_HANDLE;
  // Recorded command buffers, one per segment, keyed by (parity, symbols).
  std::map<std::pair<int, std::vector<int64_t>>, std::vector<VkCommandBuffer>> recorded;
  uint64_t recordedCount = 0;
  uint64_t gpuNs = 0;
  // KILN_PROFILE: a timestamp after every kernel item (one pool slot per item, per segment from
  // profBase[seg]; slot profBase[seg] is the segment's start); per dispatch, the GPU time from the previous
  // timestamp to its own (its execution plus the barrier before it), summed over the session's runs.
  VkQueryPool profQueries = VK_NULL_HANDLE;
  std::vector<uint32_t> profBase;
  std::vector<uint64_t> profNs;
  uint64_t profRuns = 0;

  void printProfile() const;

  ~VulkanSession() {
    VulkanDevice &d = *model->dev;
    vkDeviceWaitIdle(d.device);
    if (profQueries) {
      printProfile();
      vkDestroyQueryPool(d.device, profQueries, nullptr);
    }
    if (queries) vkDestroyQueryPool(d.device, queries, nullptr);
    if (fence) vkDestroyFence(d.device, fence, nullptr);
    if (cmdPool) vkDestroyCommandPool(d.device, cmdPool, nullptr); // frees the command buffers
    if (pool) vkDestroyDescriptorPool(d.device, pool, nullptr);
    d.destroyBuffer(arena);
    d.destroyBuffer(staging);
    for (auto &half : kv)
      for (Buffer &b : half)
        d.destroyBuffer(b);
  }
};

namespace {

struct Region {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceSize offset = 0, range = 0;
};

// Where device buffer `id` lives in `s` for KV parity `current`.
Region region(const VulkanModel &m, const VulkanSession &s, int id, int current) {
  const BufInfo &b = m.buffers[id];
  Region r;
  switch (b.kind) {
  case art::Buffer::ARENA:
    r = {s.arena.buffer, b.offset, b.maxBytes};
    break;
  case art::Buffer::WEIGHT:
    r = {m.weightBlocks[b.weightBlock].buffer, b.weightOffset, b.maxBytes};
    break;
  case art::Buffer::KV_CACHE:
    r = {s.kv[b.kvPresent ? 1 - current : current][b.kvEntry].buffer, 0, m.kvBytes[b.kvEntry]};
    break;
  default:
    break;
  }
  r.range = std::max<VkDeviceSize>(r.range, 4);
  return r;
}

// The message prefix.
std::string where(const art::Manifest &mf, int d) {
  return "dispatch " + std::to_string(d) + " (" + mf.dispatches(d).location() + ")";
}

bool buildKernel(VulkanModel &m, int k, int bindings, std::string &error) {
  const art::Kernel &src = m.mf->kernels(k);
  KernelInfo &ki = m.kernels[k];
  VulkanDevice &dev = *m.dev;
  const std::string name = "kernel " + std::to_string(k) + " '" + src.symbol() + "' (" + src.op() + ")";
  // The module: its own, or an earlier kernel's (Kernel.spirv_from, modules stored once).
  const std::string *code = &src.spirv();
  if (src.spirv_from() != 0) {
    int from = src.spirv_from() - 1;
    if (!src.spirv().empty() || from < 0 || from >= k || m.mf->kernels(from).spirv_from() != 0) {
      error = name + ": spirv_from " + std::to_string(src.spirv_from()) +
              " does not name an earlier kernel with its own module (and spirv must then be empty)";
      return false;
    }
    code = &m.mf->kernels(from).spirv();
  }
  if (code->empty() || code->size() % 4 != 0) {
    error = name + ": no SPIR-V module (a Vulkan dispatch needs Kernel.spirv or spirv_from)";
    return false;
  }
  uint64_t invocations = 1;
  for (int a = 0; a < 3; ++a) {
    ki.wg[a] = a < src.workgroup_size_size() && src.workgroup_size(a) > 0 ? src.workgroup_size(a) : 1;
    invocations *= ki.wg[a];
    if (ki.wg[a] > dev.limits.maxComputeWorkGroupSize[a]) {
      error = name + ": workgroup size " + std::to_string(ki.wg[a]) + " exceeds maxComputeWorkGroupSize[" +
              std::to_string(a) + "] " + std::to_string(dev.limits.maxComputeWorkGroupSize[a]) + " of '" +
              dev.profile.name + "'";
      return false;
    }
    if (a < src.global_size_size()) {
      if (!toExpr(src.global_size(a), *m.mf, ki.global[a])) {
        error = name + ": global_size uses an unknown symbol";
        return false;
      }
    } else {
      ki.global[a].constant = 1;
      ki.global[a].coeff.assign(m.numSymbols, 0);
    }
  }
  if (invocations > dev.limits.maxComputeWorkGroupInvocations) {
    error = name + ": " + std::to_string(invocations) + " invocations per workgroup exceed " +
            std::to_string(dev.limits.maxComputeWorkGroupInvocations) + " of '" + dev.profile.name + "'";
    return false;
  }
  if (src.shared_memory_bytes() > dev.limits.maxComputeSharedMemorySize) {
    error = name + ": needs " + std::to_string(src.shared_memory_bytes()) + " bytes of shared memory, '" +
            dev.profile.name + "' has " + std::to_string(dev.limits.maxComputeSharedMemorySize);
    return false;
  }
  if (bindings > static_cast<int>(dev.limits.maxPerStageDescriptorStorageBuffers)) {
    error = name + ": " + std::to_string(bindings) + " storage buffers exceed maxPerStageDescriptorStorageBuffers " +
            std::to_string(dev.limits.maxPerStageDescriptorStorageBuffers);
    return false;
  }
  ki.bindings = bindings;

  VkShaderModuleCreateInfo smci{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  smci.codeSize = code->size();
  std::vector<uint32_t> words(code->size() / 4);
  std::memcpy(words.data(), code->data(), code->size());
  smci.pCode = words.data();
  VkResult r = vkCreateShaderModule(dev.device, &smci, nullptr, &ki.module);
  if (r != VK_SUCCESS) {
    ki.module = VK_NULL_HANDLE;
    error = name + ": vkCreateShaderModule failed (" + std::to_string(r) + ")";
    return false;
  }
  std::vector<VkDescriptorSetLayoutBinding> lb(bindings);
  for (int i = 0; i < bindings; ++i) {
    lb[i] = {};
    lb[i].binding = static_cast<uint32_t>(i);
    lb[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    lb[i].descriptorCount = 1;
    lb[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  }
  VkDescriptorSetLayoutCreateInfo dlci{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  dlci.bindingCount = static_cast<uint32_t>(bindings);
  dlci.pBindings = lb.data();
  if (vkCreateDescriptorSetLayout(dev.device, &dlci, nullptr, &ki.setLayout) != VK_SUCCESS) {
    ki.setLayout = VK_NULL_HANDLE;
    error = name + ": vkCreateDescriptorSetLayout failed";
    return false;
  }
  VkPushConstantRange pcr{VK_SHADER_STAGE_COMPUTE_BIT, 0, static_cast<uint32_t>(4 * m.numSymbols)};
  VkPipelineLayoutCreateInfo plci{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  plci.setLayoutCount = 1;
  plci.pSetLayouts = &ki.setLayout;
  plci.pushConstantRangeCount = m.numSymbols ? 1 : 0;
  plci.pPushConstantRanges = &pcr;
  if (vkCreatePipelineLayout(dev.device, &plci, nullptr, &ki.layout) != VK_SUCCESS) {
    ki.layout = VK_NULL_HANDLE;
    error = name + ": vkCreatePipelineLayout failed";
    return false;
  }
  VkComputePipelineCreateInfo cpci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  cpci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
  cpci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  cpci.stage.module = ki.module;
  cpci.stage.pName = "main";
  cpci.layout = ki.layout;
  // Specialization constants: constant_id i = Kernel.specialization[i] (32-bit).
  std::vector<uint32_t> specData(src.specialization().begin(), src.specialization().end());
  std::vector<VkSpecializationMapEntry> specMap(specData.size());
  for (size_t i = 0; i < specMap.size(); ++i)
    specMap[i] = {static_cast<uint32_t>(i), static_cast<uint32_t>(4 * i), 4};
  VkSpecializationInfo spec{static_cast<uint32_t>(specMap.size()), specMap.data(), 4 * specData.size(),
                            specData.data()};
  if (!specData.empty())
    cpci.stage.pSpecializationInfo = &spec;
  r = vkCreateComputePipelines(dev.device, VK_NULL_HANDLE, 1, &cpci, nullptr, &ki.pipeline);
  if (r != VK_SUCCESS) {
    ki.pipeline = VK_NULL_HANDLE;
    error = name + ": vkCreateComputePipelines failed (" + std::to_string(r) + ") on '" + dev.profile.name + "'";
    return false;
  }
  return true;
}

bool planAndValidate(VulkanModel &m, const uint8_t *weights, uint64_t weightsSize, std::string &error) {
  const art::Manifest &mf = *m.mf;
  VulkanDevice &dev = *m.dev;
  m.numSymbols = static_cast<size_t>(mf.symbols_size());
  m.deviceArenaBytes = mf.device_arena_bytes();
  if (4 * m.numSymbols > dev.limits.maxPushConstantsSize) {
    error = std::to_string(m.numSymbols) + " symbols need " + std::to_string(4 * m.numSymbols) +
            " bytes of push constants, more than maxPushConstantsSize " +
            std::to_string(dev.limits.maxPushConstantsSize) + " of '" + dev.profile.name + "'";
    return false;
  }
  const uint64_t align = std::max<uint64_t>(64, dev.limits.minStorageBufferOffsetAlignment);

  // Buffers.
  m.buffers.resize(mf.buffers_size());
  for (int i = 0; i < mf.buffers_size(); ++i) {
    const art::Buffer &b = mf.buffers(i);
    BufInfo &bi = m.buffers[i];
    bi.device = b.location() == art::Buffer::DEVICE;
    bi.kind = b.kind();
    bi.dtype = b.dtype();
    bi.elem = elemSize(b.dtype());
    bi.offset = b.offset();
    bi.maxBytes = b.max_bytes();
    bi.name = b.name();
    for (const art::Dim &d : b.shape()) {
      Expr e;
      if (!toExpr(d, mf, e)) {
        error = "buffer '" + b.name() + "' uses an unknown symbol";
        return false;
      }
      bi.dims.push_back(e);
    }
    if (!bi.device)
      continue;
    if (bi.kind == art::Buffer::INPUT) {
      error = "input '" + b.name() + "' is DEVICE (inputs are HOST; a TRANSFER copies them)";
      return false;
    }
    if (bi.kind == art::Buffer::ARENA) {
      if (bi.offset > m.deviceArenaBytes || bi.maxBytes > m.deviceArenaBytes - bi.offset) {
        error = "device arena buffer '" + b.name() + "' [" + std::to_string(bi.offset) + ", +" +
                std::to_string(bi.maxBytes) + ") lies outside the device arena of " +
                std::to_string(m.deviceArenaBytes) + " bytes";
        return false;
      }
      if (bi.offset % dev.limits.minStorageBufferOffsetAlignment != 0) {
        error = "device arena buffer '" + b.name() + "' at offset " + std::to_string(bi.offset) +
                " is not aligned to minStorageBufferOffsetAlignment " +
                std::to_string(dev.limits.minStorageBufferOffsetAlignment);
        return false;
      }
    }
    if (bi.maxBytes > dev.profile.maxStorageBufferRange) {
      error = "buffer '" + b.name() + "' of " + std::to_string(bi.maxBytes) +
              " bytes exceeds maxStorageBufferRange " + std::to_string(dev.profile.maxStorageBufferRange) + " of '" +
              dev.profile.name + "'";
      return false;
    }
  }
  // KV entries: both halves on one side.
  for (int e = 0; e < mf.kv_cache_size(); ++e) {
    const art::KvCacheEntry &kv = mf.kv_cache(e);
    int past = kv.past_buffer(), present = kv.present_buffer();
    if (past < 0 || present < 0 || past >= mf.buffers_size() || present >= mf.buffers_size()) {
      error = "kv_cache entry '" + kv.name() + "' names a buffer out of range";
      return false;
    }
    if (m.buffers[past].device != m.buffers[present].device) {
      error = "kv_cache entry '" + kv.name() + "': past and present buffers on different devices";
      return false;
    }
    m.buffers[past].kvEntry = m.buffers[present].kvEntry = e;
    m.buffers[present].kvPresent = true;
    m.kvBytes.push_back(std::max(m.buffers[past].maxBytes, m.buffers[present].maxBytes));
    m.kvDevice.push_back(m.buffers[past].device);
  }

  // DEVICE weights: packed into blocks of at most maxMemoryAllocationSize, uploaded now.
  {
    const uint64_t blockLimit = std::min<uint64_t>(dev.profile.maxAllocationSize ? dev.profile.maxAllocationSize : (1ull << 30),
                                                   1ull << 31) - 256;
    std::vector<std::vector<int>> blocks;
    std::vector<uint64_t> blockSize;
    for (int i = 0; i < mf.buffers_size(); ++i) {
      BufInfo &b = m.buffers[i];
      if (!b.device || b.kind != art::Buffer::WEIGHT)
        continue;
      if (b.offset > weightsSize || b.maxBytes > weightsSize - b.offset) {
        error = "weight '" + b.name + "' lies outside the weights section";
        return false;
      }
      uint64_t need = (b.maxBytes + align - 1) / align * align;
      if (blocks.empty() || blockSize.back() + need > blockLimit) {
        blocks.emplace_back();
        blockSize.push_back(0);
      }
      b.weightBlock = static_cast<int>(blocks.size() - 1);
      b.weightOffset = blockSize.back();
      blockSize.back() += need;
      blocks.back().push_back(i);
    }
    for (size_t k = 0; k < blocks.size(); ++k) {
      Buffer buf;
      if (!dev.createBuffer(blockSize[k] + 256, false, buf, error)) {
        error = "uploading the weights: " + error;
        return false;
      }
      m.weightBlocks.push_back(buf);
      for (int id : blocks[k]) {
        const BufInfo &b = m.buffers[id];
        if (!dev.upload(weights + b.offset, b.maxBytes, buf, b.weightOffset, error)) {
          error = "uploading weight '" + b.name + "': " + error;
          return false;
        }
      }
    }
  }

  // Dispatches: kernels, transfers, segments.
  m.kernels.resize(mf.kernels_size());
  m.dispatchSet.assign(mf.dispatches_size(), -1);
  m.dispatchXfer.assign(mf.dispatches_size(), -1);
  int open = -1; // the segment being filled
  auto openSegment = [&]() {
    if (open < 0) {
      m.segments.emplace_back();
      open = static_cast<int>(m.segments.size() - 1);
    }
  };
  auto closeSegment = [&]() {
    if (open >= 0)
      m.steps.push_back({Step::Submit, open});
    open = -1;
  };
  auto addXfer = [&](Xfer x, int dispatch) {
    const BufInfo &dev = m.buffers[x.dev];
    uint64_t bytes = std::max<uint64_t>(dev.maxBytes, x.host >= 0 ? m.buffers[x.host].maxBytes : 0);
    if (x.host >= 0 && m.buffers[x.host].kind == art::Buffer::INPUT) // inputs at their max size
      bytes = std::max<uint64_t>(bytes, static_cast<uint64_t>(mf.max_batch()) * mf.max_context() * m.buffers[x.host].elem);
    x.stagingOffset = m.stagingBytes;
    x.stagingBytes = bytes;
    m.stagingBytes += (bytes + 255) / 256 * 256;
    m.xfers.push_back(x);
    int xi = static_cast<int>(m.xfers.size() - 1);
    if (dispatch >= 0)
      m.dispatchXfer[dispatch] = xi;
    openSegment();
    m.segments[open].items.push_back({false, dispatch, xi});
    if (x.toDevice) {
      m.steps.push_back({Step::Stage, xi});
    } else {
      m.segments[open].readbacks.push_back(xi);
    }
    return xi;
  };
  for (int d = 0; d < mf.dispatches_size(); ++d) {
    const art::Dispatch &disp = mf.dispatches(d);
    const bool vk = disp.device() == "vulkan";
    for (int id : disp.buffers())
      if (id < 0 || id >= mf.buffers_size()) {
        error = where(mf, d) + " names buffer " + std::to_string(id) + ", out of range";
        return false;
      }
    if (disp.kind() == art::Dispatch::TRANSFER) {
      if (disp.buffers_size() != 2) {
        error = where(mf, d) + ": a TRANSFER needs [source, destination]";
        return false;
      }
      int src = disp.buffers(0), dst = disp.buffers(1);
      const BufInfo &a = m.buffers[src], &b = m.buffers[dst];
      if (a.device == b.device) {
        error = where(mf, d) + ": a TRANSFER from '" + a.name + "' to '" + b.name + "' must go between HOST and DEVICE";
        return false;
      }
      if (a.dtype != b.dtype || !(a.dims == b.dims)) {
        error = where(mf, d) + ": TRANSFER '" + a.name + "' -> '" + b.name + "' changes dtype or shape";
        return false;
      }
      if (b.kind == art::Buffer::WEIGHT || b.kind == art::Buffer::INPUT) {
        error = where(mf, d) + ": a TRANSFER cannot write the " + std::string(b.kind == art::Buffer::WEIGHT ? "weight" : "input") + " '" + b.name + "'";
        return false;
      }
      Xfer x;
      x.toDevice = b.device;
      x.host = x.toDevice ? src : dst;
      x.dev = x.toDevice ? dst : src;
      addXfer(x, d);
      if (!x.toDevice)
        closeSegment();
      continue;
    }
    if (!vk) {
      for (int id : disp.buffers())
        if (m.buffers[id].device) {
          error = where(mf, d) + " runs on the CPU but uses the DEVICE buffer '" + m.buffers[id].name + "'";
          return false;
        }
      m.steps.push_back({Step::Cpu, d});
      continue;
    }
    if (disp.kernel() < 0 || disp.kernel() >= mf.kernels_size()) {
      error = where(mf, d) + " names kernel " + std::to_string(disp.kernel()) + ", out of range";
      return false;
    }
    for (int id : disp.buffers()) {
      const BufInfo &b = m.buffers[id];
      if (!b.device) {
        error = where(mf, d) + " runs on Vulkan but uses the HOST buffer '" + b.name + "' (a TRANSFER must copy it)";
        return false;
      }
      if (b.maxBytes > dev.profile.maxStorageBufferRange) {
        error = where(mf, d) + ": binding '" + b.name + "' of " + std::to_string(b.maxBytes) +
                " bytes exceeds maxStorageBufferRange " + std::to_string(dev.profile.maxStorageBufferRange);
        return false;
      }
    }
    KernelInfo &ki = m.kernels[disp.kernel()];
    if (ki.bindings < 0) {
      if (!buildKernel(m, disp.kernel(), disp.buffers_size(), error))
        return false;
    } else if (ki.bindings != disp.buffers_size()) {
      error = where(mf, d) + " binds " + std::to_string(disp.buffers_size()) + " buffers to kernel '" +
              mf.kernels(disp.kernel()).symbol() + "', which another dispatch binds with " + std::to_string(ki.bindings);
      return false;
    }
    m.dispatchSet[d] = m.numSets++;
    m.numBindings += disp.buffers_size();
    openSegment();
    m.segments[open].items.push_back({true, d, -1});
  }
  // DEVICE outputs come back to the host at the end of the step.
  for (const art::Port &p : mf.outputs()) {
    if (p.buffer() < 0 || p.buffer() >= mf.buffers_size())
      continue;
    const BufInfo &b = m.buffers[p.buffer()];
    if (!b.device || b.kind == art::Buffer::KV_CACHE)
      continue;
    Xfer x;
    x.toDevice = false;
    x.dev = p.buffer();
    x.outputSlot = static_cast<int>(m.deviceOutputs.size());
    m.deviceOutputs.push_back(p.buffer());
    addXfer(x, -1);
  }
  closeSegment();
  return true;
}

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
  void add(const std::vector<Range> &rd, const std::vector<Range> &wr) {
    reads.insert(reads.end(), rd.begin(), rd.end());
    writes.insert(writes.end(), wr.begin(), wr.end());
  }
  void clear() {
    reads.clear();
    writes.clear();
  }
};

void barrier(VkCommandBuffer cmd) {
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                     VK_ACCESS_TRANSFER_WRITE_BIT;
  const VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
  vkCmdPipelineBarrier(cmd, stages, stages, 0, 1, &mb, 0, nullptr, 0, nullptr);
}

bool record(VulkanModel &m, VulkanSession &s, int seg, const int64_t *sym, int current, VkCommandBuffer cmd,
            std::string &error) {
  const art::Manifest &mf = *m.mf;
  VulkanDevice &dev = *m.dev;
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  vkBeginCommandBuffer(cmd, &bi);
  if (s.queries) {
    vkCmdResetQueryPool(cmd, s.queries, 2 * seg, 2);
    vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, s.queries, 2 * seg);
  }
  uint32_t profSlot = 0;
  if (s.profQueries) {
    profSlot = s.profBase[seg];
    vkCmdResetQueryPool(cmd, s.profQueries, profSlot, 1 + static_cast<uint32_t>(m.segments[seg].items.size()));
    vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s.profQueries, profSlot++);
  }
  std::vector<uint32_t> push(m.numSymbols);
  for (size_t i = 0; i < m.numSymbols; ++i)
    push[i] = static_cast<uint32_t>(sym[i]);
  Hazards hz;
  bool anyReadback = false;
  for (const Item &it : m.segments[seg].items) {
    std::vector<Hazards::Range> rd, wr;
    // KILN_PROFILE: this item's timestamp, written once it has completed (also for an empty dispatch).
    struct ProfStamp {
      VkCommandBuffer cmd;
      VkQueryPool pool;
      uint32_t slot;
      ~ProfStamp() {
        if (pool)
          vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pool, slot);
      }
    } stamp{cmd, s.profQueries, profSlot++};
    if (it.kernel) {
      const art::Dispatch &disp = mf.dispatches(it.dispatch);
      const KernelInfo &ki = m.kernels[disp.kernel()];
      uint32_t groups[3];
      bool empty = false;
      for (int a = 0; a < 3; ++a) {
        int64_t g = ki.global[a].eval(sym);
        if (g <= 0) {
          empty = true;
          groups[a] = 0;
          continue;
        }
        uint64_t n = (static_cast<uint64_t>(g) + ki.wg[a] - 1) / ki.wg[a];
        if (n > dev.limits.maxComputeWorkGroupCount[a]) {
          error = where(mf, it.dispatch) + ": " + std::to_string(n) + " workgroups on axis " + std::to_string(a) +
                  " exceed maxComputeWorkGroupCount " + std::to_string(dev.limits.maxComputeWorkGroupCount[a]);
          vkEndCommandBuffer(cmd);
          return false;
        }
        groups[a] = static_cast<uint32_t>(n);
      }
      if (empty)
        continue;
      // The last num_results buffers are written (0 in an older artifact: one result).
      const int firstWritten = disp.buffers_size() - std::max(disp.num_results(), 1);
      for (int j = 0; j < disp.buffers_size(); ++j) {
        Region r = region(m, s, disp.buffers(j), current);
        (j >= firstWritten ? wr : rd).push_back({r.buffer, r.offset, r.offset + r.range});
      }
      if (hz.conflict(rd, wr)) {
        barrier(cmd);
        hz.clear();
      }
      hz.add(rd, wr);
      vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, ki.pipeline);
      VkDescriptorSet set = s.sets[current][m.dispatchSet[it.dispatch]];
      vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, ki.layout, 0, 1, &set, 0, nullptr);
      if (m.numSymbols)
        vkCmdPushConstants(cmd, ki.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, static_cast<uint32_t>(4 * m.numSymbols),
                           push.data());
      vkCmdDispatch(cmd, groups[0], groups[1], groups[2]);
    } else {
      const Xfer &x = m.xfers[it.xfer];
      uint64_t bytes = m.buffers[x.dev].bytesAt(sym);
      if (bytes == 0)
        continue;
      Region r = region(m, s, x.dev, current);
      Hazards::Range devRange{r.buffer, r.offset, r.offset + bytes};
      Hazards::Range stageRange{s.staging.buffer, x.stagingOffset, x.stagingOffset + bytes};
      if (x.toDevice) {
        rd.push_back(stageRange);
        wr.push_back(devRange);
      } else {
        rd.push_back(devRange);
        wr.push_back(stageRange);
        anyReadback = true;
      }
      if (hz.conflict(rd, wr)) {
        barrier(cmd);
        hz.clear();
      }
      hz.add(rd, wr);
      VkBufferCopy copy{};
      copy.size = bytes;
      if (x.toDevice) {
        copy.srcOffset = x.stagingOffset;
        copy.dstOffset = r.offset;
        vkCmdCopyBuffer(cmd, s.staging.buffer, r.buffer, 1, &copy);
      } else {
        copy.srcOffset = r.offset;
        copy.dstOffset = x.stagingOffset;
        vkCmdCopyBuffer(cmd, r.buffer, s.staging.buffer, 1, &copy);
      }
    }
  }
  // Everything finished and visible: to the next segment's commands and to the host.
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT | (anyReadback ? 0 : 0);
  vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                       VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr, 0, nullptr);
  if (s.queries)
    vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s.queries, 2 * seg + 1);
  if (vkEndCommandBuffer(cmd) != VK_SUCCESS) {
    error = "vkEndCommandBuffer failed";
    return false;
  }
  return true;
}

} // namespace

// The profile's features plus the limits the manifest's Vulkan kernels and DEVICE buffers reach at the
// symbols' max values.
static target::DeviceProfile usedCapabilities(const art::Manifest &mf, const target::DeviceProfile *profile) {
  target::DeviceProfile need;
  if (profile) {
    need.name = profile->name;
    need.float16 = profile->float16;
    need.int8 = profile->int8;
    need.storage16 = profile->storage16;
    need.storage8 = profile->storage8;
    need.subgroupOps = profile->subgroupOps;
    need.cooperativeMatrix = profile->cooperativeMatrix;
  }
  std::vector<int64_t> maxSym;
  for (const art::Symbol &s : mf.symbols())
    maxSym.push_back(s.max_value());
  std::vector<bool> used(mf.kernels_size(), false);
  for (const art::Dispatch &d : mf.dispatches())
    if (d.device() == "vulkan" && d.kind() == art::Dispatch::KERNEL && d.kernel() >= 0 && d.kernel() < mf.kernels_size())
      used[d.kernel()] = true;
  for (int k = 0; k < mf.kernels_size(); ++k) {
    if (!used[k])
      continue;
    const art::Kernel &kn = mf.kernels(k);
    need.maxSharedMemory = std::max<uint64_t>(need.maxSharedMemory, kn.shared_memory_bytes());
    uint64_t inv = 1;
    for (int a = 0; a < 3; ++a) {
      uint64_t wg = a < kn.workgroup_size_size() && kn.workgroup_size(a) > 0 ? kn.workgroup_size(a) : 1;
      inv *= wg;
      need.maxWorkgroupSize[a] = std::max(need.maxWorkgroupSize[a], wg);
      Expr g;
      if (a < kn.global_size_size() && toExpr(kn.global_size(a), mf, g)) {
        int64_t v = g.eval(maxSym.data());
        if (v > 0)
          need.maxWorkgroupCount[a] = std::max(need.maxWorkgroupCount[a], (static_cast<uint64_t>(v) + wg - 1) / wg);
      }
    }
    need.maxWorkgroupInvocations = std::max(need.maxWorkgroupInvocations, inv);
  }
  for (const art::Buffer &b : mf.buffers())
    if (b.location() == art::Buffer::DEVICE) {
      need.maxStorageBufferRange = std::max<uint64_t>(need.maxStorageBufferRange, b.max_bytes());
      need.maxAllocationSize = std::max<uint64_t>(need.maxAllocationSize, b.max_bytes() + 256);
    }
  need.maxAllocationSize = std::max<uint64_t>(need.maxAllocationSize, mf.device_arena_bytes() + 256);
  need.maxPushConstantsSize = 4 * static_cast<uint64_t>(mf.symbols_size());
  return need;
}

bool manifestUsesVulkan(const art::Manifest &mf) {
  for (const art::Dispatch &d : mf.dispatches())
    if (d.device() == "vulkan" || d.kind() == art::Dispatch::TRANSFER)
      return true;
  for (const art::Buffer &b : mf.buffers())
    if (b.location() == art::Buffer::DEVICE)
      return true;
  return false;
}

VulkanModel *createModel(const art::Manifest &mf, const uint8_t *weights, uint64_t weightsSize, std::string &error) {
  std::unique_ptr<VulkanModel> m(new VulkanModel());
  m->mf = &mf;
  target::DeviceProfile need;
  bool haveNeed = false;
  if (!mf.device_profile_json().empty()) {
    StatusOr<target::DeviceProfile> parsed = target::parseDeviceProfile(mf.device_profile_json(),
                                                                        "the artifact's device_profile_json");
    if (!parsed.ok()) {
      error = parsed.status().message();
      return nullptr;
    }
    need = *parsed;
    haveNeed = true;
  }
  // What the device must have: the profile's features (the kernels were generated for them), and for the
  // limits what this artifact actually uses (the profile's limits describe the device it was read from: a
  // device with a smaller limit the artifact never reaches still runs it).
  const std::string profileName = need.name;
  need = usedCapabilities(mf, haveNeed ? &need : nullptr);
  m->dev = VulkanDevice::open(&need, profileName, error);
  if (!m->dev)
    return nullptr;
  if (!planAndValidate(*m, weights, weightsSize, error)) {
    error = "Vulkan ('" + m->dev->profile.name + "'): " + error;
    return nullptr;
  }
  return m.release();
}

void destroyModel(VulkanModel *m) { delete m; }

const std::string &deviceName(const VulkanModel &m) { return m.dev->profile.name; }

VulkanSession *createSession(VulkanModel &m, std::string &error) {
  std::unique_ptr<VulkanSession> s(new VulkanSession());
  s->model = &m;
  VulkanDevice &dev = *m.dev;
  const art::Manifest &mf = *m.mf;
  auto fail = [&](const std::string &what) -> VulkanSession * {
    error = "Vulkan session on '" + dev.profile.name + "': " + what;
    return nullptr;
  };
  if (!dev.createBuffer(m.deviceArenaBytes + 256, false, s->arena, error))
    return fail("device arena: " + error);
  for (int h = 0; h < 2; ++h) {
    s->kv[h].resize(m.kvBytes.size());
    for (size_t e = 0; e < m.kvBytes.size(); ++e)
      if (m.kvDevice[e] && !dev.createBuffer(m.kvBytes[e] + 256, false, s->kv[h][e], error))
        return fail("KV cache '" + mf.kv_cache(static_cast<int>(e)).name() + "': " + error);
  }
  if (!dev.createBuffer(m.stagingBytes + 256, true, s->staging, error))
    return fail("staging: " + error);
  for (int id : m.deviceOutputs)
    s->outputCopies.emplace_back(m.buffers[id].maxBytes + 64);

  // Descriptor sets for both KV parities.
  if (m.numSets > 0) {
    VkDescriptorPoolSize ps{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, static_cast<uint32_t>(2 * m.numBindings)};
    VkDescriptorPoolCreateInfo dpci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    dpci.maxSets = static_cast<uint32_t>(2 * m.numSets);
    dpci.poolSizeCount = 1;
    dpci.pPoolSizes = &ps;
    if (vkCreateDescriptorPool(dev.device, &dpci, nullptr, &s->pool) != VK_SUCCESS) {
      s->pool = VK_NULL_HANDLE;
      return fail("vkCreateDescriptorPool failed");
    }
    for (int h = 0; h < 2; ++h) {
      s->sets[h].assign(m.numSets, VK_NULL_HANDLE);
      for (int d = 0; d < mf.dispatches_size(); ++d) {
        int slot = m.dispatchSet[d];
        if (slot < 0)
          continue;
        const art::Dispatch &disp = mf.dispatches(d);
        const KernelInfo &ki = m.kernels[disp.kernel()];
        VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
        ai.descriptorPool = s->pool;
        ai.descriptorSetCount = 1;
        ai.pSetLayouts = &ki.setLayout;
        if (vkAllocateDescriptorSets(dev.device, &ai, &s->sets[h][slot]) != VK_SUCCESS)
          return fail("vkAllocateDescriptorSets failed");
        std::vector<VkDescriptorBufferInfo> infos(disp.buffers_size());
        std::vector<VkWriteDescriptorSet> writes(disp.buffers_size());
        for (int j = 0; j < disp.buffers_size(); ++j) {
          Region r = region(m, *s, disp.buffers(j), h);
          infos[j] = {r.buffer, r.offset, r.range};
          writes[j] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
          writes[j].dstSet = s->sets[h][slot];
          writes[j].dstBinding = static_cast<uint32_t>(j);
          writes[j].descriptorCount = 1;
          writes[j].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
          writes[j].pBufferInfo = &infos[j];
        }
        vkUpdateDescriptorSets(dev.device, static_cast<uint32_t>(writes.size()), writes.data(), 0, nullptr);
      }
    }
  }
  VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pci.queueFamilyIndex = dev.queueFamily;
  if (vkCreateCommandPool(dev.device, &pci, nullptr, &s->cmdPool) != VK_SUCCESS) {
    s->cmdPool = VK_NULL_HANDLE;
    return fail("vkCreateCommandPool failed");
  }
  VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  if (vkCreateFence(dev.device, &fci, nullptr, &s->fence) != VK_SUCCESS) {
    s->fence = VK_NULL_HANDLE;
    return fail("vkCreateFence failed");
  }
  if (dev.timestamps && !m.segments.empty()) {
    VkQueryPoolCreateInfo qci{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    qci.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qci.queryCount = static_cast<uint32_t>(2 * m.segments.size());
    if (vkCreateQueryPool(dev.device, &qci, nullptr, &s->queries) != VK_SUCCESS)
      s->queries = VK_NULL_HANDLE; // no timestamps, still runs
    const char *prof = std::getenv("KILN_PROFILE");
    if (prof && *prof && std::string(prof) != "0") {
      uint32_t n = 0;
      for (const Segment &seg : m.segments) {
        s->profBase.push_back(n);
        n += 1 + static_cast<uint32_t>(seg.items.size());
      }
      qci.queryCount = n;
      if (vkCreateQueryPool(dev.device, &qci, nullptr, &s->profQueries) != VK_SUCCESS)
        s->profQueries = VK_NULL_HANDLE;
      s->profNs.assign(static_cast<size_t>(m.mf->dispatches_size()), 0);
    }
  }
  return s.release();
}

void destroySession(VulkanSession *s) { delete s; }

bool runStep(VulkanModel &m, VulkanSession &s, const int64_t *sym, int current, std::vector<void *> &bufferPtr,
             const std::function<void(int)> &cpu, std::string &error) {
  VulkanDevice &dev = *m.dev;
  // The command buffers of this step shape: recorded once, then reused.
  std::pair<int, std::vector<int64_t>> key{current, std::vector<int64_t>(sym, sym + m.numSymbols)};
  auto it = s.recorded.find(key);
  if (it == s.recorded.end()) {
    if (s.recorded.size() >= 64) { // bound the cache (decode steps all differ in p)
      for (auto &[k, cmds] : s.recorded)
        vkFreeCommandBuffers(dev.device, s.cmdPool, static_cast<uint32_t>(cmds.size()), cmds.data());
      s.recorded.clear();
    }
    std::vector<VkCommandBuffer> cmds(m.segments.size(), VK_NULL_HANDLE);
    if (!cmds.empty()) {
      VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
      ai.commandPool = s.cmdPool;
      ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
      ai.commandBufferCount = static_cast<uint32_t>(cmds.size());
      if (vkAllocateCommandBuffers(dev.device, &ai, cmds.data()) != VK_SUCCESS) {
        error = "vkAllocateCommandBuffers failed";
        return false;
      }
    }
    for (size_t k = 0; k < cmds.size(); ++k)
      if (!record(m, s, static_cast<int>(k), sym, current, cmds[k], error)) {
        vkFreeCommandBuffers(dev.device, s.cmdPool, static_cast<uint32_t>(cmds.size()), cmds.data());
        return false;
      }
    s.recordedCount += cmds.size();
    it = s.recorded.emplace(std::move(key), std::move(cmds)).first;
  }
  const std::vector<VkCommandBuffer> &cmds = it->second;
  uint8_t *staging = static_cast<uint8_t *>(s.staging.mapped);
  s.gpuNs = 0;
  for (const Step &step : m.steps) {
    switch (step.kind) {
    case Step::Cpu:
      cpu(step.index);
      break;
    case Step::Stage: {
      const Xfer &x = m.xfers[step.index];
      uint64_t bytes = m.buffers[x.dev].bytesAt(sym);
      if (bytes > x.stagingBytes) {
        error = "transfer to '" + m.buffers[x.dev].name + "' of " + std::to_string(bytes) +
                " bytes exceeds its planned " + std::to_string(x.stagingBytes);
        return false;
      }
      if (bytes)
        std::memcpy(staging + x.stagingOffset, bufferPtr[x.host], bytes);
      break;
    }
    case Step::Submit: {
      if (!dev.submitAndWait(cmds[step.index], s.fence, error))
        return false;
      if (s.profQueries) {
        const Segment &sg = m.segments[step.index];
        std::vector<uint64_t> ts(1 + sg.items.size());
        if (vkGetQueryPoolResults(dev.device, s.profQueries, s.profBase[step.index], static_cast<uint32_t>(ts.size()),
                                  ts.size() * sizeof(uint64_t), ts.data(), sizeof(uint64_t),
                                  VK_QUERY_RESULT_64_BIT) == VK_SUCCESS)
          for (size_t i = 0; i < sg.items.size(); ++i) {
            int d = sg.items[i].kernel ? sg.items[i].dispatch : -1;
            if (d < 0) // a transfer: its dispatch index
              for (size_t j = 0; j < m.dispatchXfer.size(); ++j)
                if (m.dispatchXfer[j] == sg.items[i].xfer)
                  d = static_cast<int>(j);
            if (d >= 0)
              s.profNs[static_cast<size_t>(d)] += static_cast<uint64_t>(
                  static_cast<double>((ts[i + 1] - ts[i]) & dev.timestampMask) * dev.timestampPeriodNs);
          }
        if (step.index == 0)
          ++s.profRuns;
      }
      if (s.queries) {
        uint64_t ts[2] = {0, 0};
        if (vkGetQueryPoolResults(dev.device, s.queries, 2 * step.index, 2, sizeof ts, ts, sizeof(uint64_t),
                                  VK_QUERY_RESULT_64_BIT) == VK_SUCCESS)
          s.gpuNs += static_cast<uint64_t>(static_cast<double>((ts[1] - ts[0]) & dev.timestampMask) *
                                           dev.timestampPeriodNs);
      }
      for (int xi : m.segments[step.index].readbacks) {
        const Xfer &x = m.xfers[xi];
        uint64_t bytes = m.buffers[x.dev].bytesAt(sym);
        if (bytes > x.stagingBytes) {
          error = "transfer from '" + m.buffers[x.dev].name + "' exceeds its planned size";
          return false;
        }
        void *dst = x.host >= 0 ? bufferPtr[x.host] : s.outputCopies[x.outputSlot].data();
        if (bytes)
          std::memcpy(dst, staging + x.stagingOffset, bytes);
      }
      break;
    }
    }
  }
  for (size_t o = 0; o < m.deviceOutputs.size(); ++o)
    bufferPtr[m.deviceOutputs[o]] = s.outputCopies[o].data();
  return true;
}

// The KILN_PROFILE report on stderr: GPU time per kernel variant, then the top dispatches.
void VulkanSession::printProfile() const {
  const art::Manifest &mf = *model->mf;
  uint64_t total = 0;
  std::map<std::string, std::pair<uint64_t, int>> byKernel;
  std::vector<std::pair<uint64_t, int>> top;
  for (size_t d = 0; d < profNs.size(); ++d) {
    if (!profNs[d])
      continue;
    total += profNs[d];
    const art::Dispatch &disp = mf.dispatches(static_cast<int>(d));
    std::string key = disp.kind() == art::Dispatch::TRANSFER ? std::string("transfer")
                                                              : mf.kernels(disp.kernel()).symbol();
    byKernel[key].first += profNs[d];
    byKernel[key].second++;
    top.push_back({profNs[d], static_cast<int>(d)});
  }
  if (!total || !profRuns)
    return;
  std::fprintf(stderr, "kiln profile (vulkan): %llu runs, GPU %.3f ms per run (per-dispatch timestamps: the time "
                       "since the previous one, barrier included)\n",
               static_cast<unsigned long long>(profRuns), double(total) * 1e-6 / double(profRuns));
  std::vector<std::pair<uint64_t, std::string>> kinds;
  for (auto &[k, v] : byKernel)
    kinds.push_back({v.first, k + " x" + std::to_string(v.second)});
  std::sort(kinds.rbegin(), kinds.rend());
  for (auto &[ns, k] : kinds)
    std::fprintf(stderr, "  %6.2f%% %9.3f ms/run  %s\n", 100.0 * double(ns) / double(total),
                 double(ns) * 1e-6 / double(profRuns), k.c_str());
  std::sort(top.rbegin(), top.rend());
  for (size_t i = 0; i < top.size() && i < 12; ++i) {
    const art::Dispatch &disp = mf.dispatches(top[i].second);
    std::fprintf(stderr, "  top %2zu: %8.3f ms/run  #%d %s %s\n", i + 1, double(top[i].first) * 1e-6 / double(profRuns),
                 top[i].second, disp.kind() == art::Dispatch::TRANSFER ? "transfer" : mf.kernels(disp.kernel()).symbol().c_str(),
                 disp.location().c_str());
  }
}

uint64_t lastGpuTimeNs(const VulkanSession &s) { return s.gpuNs; }
uint64_t recordedCommandBuffers(const VulkanSession &s) { return s.recordedCount; }

} // namespace kiln::vulkan
