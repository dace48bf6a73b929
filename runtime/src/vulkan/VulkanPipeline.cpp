//===- VulkanPipeline.cpp - one compute pipeline per Vulkan kernel -----------===//
#include "VulkanProgram.h"

// Vulkan create-info structs are initialized as {sType} with the rest zeroed.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <cstring>

namespace kiln::vulkan {
namespace {

// The kernel's workgroup, shared memory and bindings against the device's limits.
bool checkLimits(const VulkanExecutor &ex, const runtime::PlanKernel &kernel, int bindings, const std::string &name,
                 std::string &error) {
  const VkPhysicalDeviceLimits &lim = ex.dev->limits;
  const std::string &device = ex.limits.name;
  uint64_t invocations = 1;
  for (int a = 0; a < 3; ++a) {
    invocations *= kernel.workgroupSize[a];
    if (kernel.workgroupSize[a] > lim.maxComputeWorkGroupSize[a]) {
      error = name + ": workgroup size " + std::to_string(kernel.workgroupSize[a]) +
              " exceeds maxComputeWorkGroupSize[" + std::to_string(a) + "] " +
              std::to_string(lim.maxComputeWorkGroupSize[a]) + " of '" + device + "'";
      return false;
    }
  }
  if (invocations > lim.maxComputeWorkGroupInvocations) {
    error = name + ": " + std::to_string(invocations) + " invocations per workgroup exceed " +
            std::to_string(lim.maxComputeWorkGroupInvocations) + " of '" + device + "'";
    return false;
  }
  if (kernel.sharedMemoryBytes > lim.maxComputeSharedMemorySize) {
    error = name + ": needs " + std::to_string(kernel.sharedMemoryBytes) + " bytes of shared memory, '" + device +
            "' has " + std::to_string(lim.maxComputeSharedMemorySize);
    return false;
  }
  if (bindings > static_cast<int>(lim.maxPerStageDescriptorStorageBuffers)) {
    error = name + ": " + std::to_string(bindings) + " storage buffers exceed maxPerStageDescriptorStorageBuffers " +
            std::to_string(lim.maxPerStageDescriptorStorageBuffers);
    return false;
  }
  return true;
}

// The descriptor-set layout (binding i = storage buffer i) and the pipeline layout: set 1 the symbols uniform
// (`symbolsLayout`), or, without it, push constants of one uint per symbol.
bool createLayouts(VkDevice device, KernelPipeline &p, int bindings, size_t numSymbols,
                   VkDescriptorSetLayout symbolsLayout) {
  std::vector<VkDescriptorSetLayoutBinding> lb(static_cast<size_t>(bindings));
  for (int i = 0; i < bindings; ++i) {
    lb[size_t(i)] = {};
    lb[size_t(i)].binding = static_cast<uint32_t>(i);
    lb[size_t(i)].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    lb[size_t(i)].descriptorCount = 1;
    lb[size_t(i)].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  }
  VkDescriptorSetLayoutCreateInfo dlci{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  dlci.bindingCount = static_cast<uint32_t>(bindings);
  dlci.pBindings = lb.data();
  if (vkCreateDescriptorSetLayout(device, &dlci, nullptr, &p.setLayout) != VK_SUCCESS) {
    p.setLayout = VK_NULL_HANDLE;
    return false;
  }
  const VkDescriptorSetLayout sets[2] = {p.setLayout, symbolsLayout};
  VkPushConstantRange pcr{VK_SHADER_STAGE_COMPUTE_BIT, 0, static_cast<uint32_t>(4 * numSymbols)};
  VkPipelineLayoutCreateInfo plci{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  plci.setLayoutCount = symbolsLayout ? 2 : 1;
  plci.pSetLayouts = sets;
  plci.pushConstantRangeCount = !symbolsLayout && numSymbols ? 1 : 0;
  plci.pPushConstantRanges = &pcr;
  if (vkCreatePipelineLayout(device, &plci, nullptr, &p.layout) != VK_SUCCESS) {
    p.layout = VK_NULL_HANDLE;
    return false;
  }
  return true;
}

// The driver's statistics of a pipeline's code (VK_KHR_pipeline_executable_properties; NVIDIA reports its
// registers per invocation, which bound the workgroups a multiprocessor holds at once), "name value, ...".
std::string pipelineStatistics(const VulkanDevice &dev, VkPipeline pipeline) {
  VkPipelineInfoKHR info{VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR};
  info.pipeline = pipeline;
  uint32_t executables = 0;
  if (dev.getExecutables(dev.device, &info, &executables, nullptr) != VK_SUCCESS)
    return "";
  std::string text;
  for (uint32_t e = 0; e < executables; ++e) {
    VkPipelineExecutableInfoKHR exec{VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR};
    exec.pipeline = pipeline;
    exec.executableIndex = e;
    uint32_t n = 0;
    if (dev.getStatistics(dev.device, &exec, &n, nullptr) != VK_SUCCESS)
      continue;
    std::vector<VkPipelineExecutableStatisticKHR> stats(n, {VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR});
    if (dev.getStatistics(dev.device, &exec, &n, stats.data()) < VK_SUCCESS)
      continue;
    for (uint32_t i = 0; i < n && i < stats.size(); ++i) {
      const VkPipelineExecutableStatisticKHR &st = stats[i];
      std::string value;
      if (st.format == VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR)
        value = st.value.b32 ? "yes" : "no";
      else if (st.format == VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR)
        value = std::to_string(st.value.i64);
      else if (st.format == VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR)
        value = std::to_string(st.value.u64);
      else
        value = std::to_string(st.value.f64);
      text += (text.empty() ? "" : ", ") + std::string(st.name) + " " + value;
    }
  }
  return text;
}

} // namespace

bool buildPipeline(VulkanExecutor &ex, int k, int bindings, std::string &error) {
  const runtime::PlanKernel &src = ex.plan.kernels[size_t(k)];
  KernelPipeline &p = ex.pipelines[size_t(k)];
  VkDevice device = ex.dev->device;
  const std::string name = "kernel " + std::to_string(k) + " '" + src.symbol + "' (" + src.op + ")";
  // The module: its own, or an earlier kernel's (Kernel.spirv_from, modules stored once).
  const std::string &code = *src.spirv;
  if (code.empty() || code.size() % 4 != 0) {
    error = name + ": no SPIR-V module (a Vulkan dispatch needs Kernel.spirv or spirv_from)";
    return false;
  }
  if (!checkLimits(ex, src, bindings, name, error))
    return false;
  p.bindings = bindings;

  VkShaderModuleCreateInfo smci{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  smci.codeSize = code.size();
  std::vector<uint32_t> words(code.size() / 4);
  std::memcpy(words.data(), code.data(), code.size());
  smci.pCode = words.data();
  VkResult r = vkCreateShaderModule(device, &smci, nullptr, &p.module);
  if (r != VK_SUCCESS) {
    p.module = VK_NULL_HANDLE;
    error = name + ": vkCreateShaderModule failed (" + std::to_string(r) + ")";
    return false;
  }
  const size_t numSymbols = ex.plan.symbols.size();
  if (!src.symbolsInUniform && 4 * numSymbols > ex.dev->limits.maxPushConstantsSize) {
    error = name + ": " + std::to_string(numSymbols) + " symbols need " + std::to_string(4 * numSymbols) +
            " bytes of push constants, more than maxPushConstantsSize " +
            std::to_string(ex.dev->limits.maxPushConstantsSize) + " of '" + ex.limits.name + "'";
    return false;
  }
  if (!createLayouts(device, p, bindings, numSymbols, src.symbolsInUniform ? ex.symbolsLayout : VK_NULL_HANDLE)) {
    error = name + ": creating the descriptor-set or pipeline layout failed";
    return false;
  }
  VkComputePipelineCreateInfo cpci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  cpci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
  cpci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  cpci.stage.module = p.module;
  cpci.stage.pName = "main";
  cpci.layout = p.layout;
  if (ex.dev->getStatistics)
    cpci.flags |= VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR;
  // Specialization constants: constant_id i = Kernel.specialization[i] (32-bit).
  const std::vector<uint32_t> &specData = src.specialization;
  std::vector<VkSpecializationMapEntry> specMap(specData.size());
  for (size_t i = 0; i < specMap.size(); ++i)
    specMap[i] = {static_cast<uint32_t>(i), static_cast<uint32_t>(4 * i), 4};
  VkSpecializationInfo spec{static_cast<uint32_t>(specMap.size()), specMap.data(), 4 * specData.size(),
                            specData.data()};
  if (!specData.empty())
    cpci.stage.pSpecializationInfo = &spec;
  r = vkCreateComputePipelines(device, VK_NULL_HANDLE, 1, &cpci, nullptr, &p.pipeline);
  if (r != VK_SUCCESS) {
    p.pipeline = VK_NULL_HANDLE;
    error = name + ": vkCreateComputePipelines failed (" + std::to_string(r) + ") on '" + ex.limits.name + "'";
    return false;
  }
  if (ex.dev->getStatistics)
    p.statistics = pipelineStatistics(*ex.dev, p.pipeline);
  return true;
}

bool createSymbolsLayout(VulkanExecutor &ex, std::string &error) {
  VkDescriptorSetLayoutBinding binding{};
  binding.binding = 0;
  binding.descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER;
  binding.descriptorCount = 1;
  binding.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  VkDescriptorSetLayoutCreateInfo dlci{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  dlci.bindingCount = 1;
  dlci.pBindings = &binding;
  if (vkCreateDescriptorSetLayout(ex.dev->device, &dlci, nullptr, &ex.symbolsLayout) != VK_SUCCESS) {
    ex.symbolsLayout = VK_NULL_HANDLE;
    error = "creating the descriptor-set layout of the symbols failed";
    return false;
  }
  return true;
}

} // namespace kiln::vulkan
