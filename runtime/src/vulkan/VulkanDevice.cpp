//===- VulkanDevice.cpp - instance, device selection, memory, buffers -------===//
#include "VulkanDevice.h"

#include "Environment.h"

// Vulkan create-info structs are initialized as {sType} with the rest zeroed.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace kiln::vulkan {

namespace {
constexpr const char *kCoopMatrixExt = "VK_KHR_cooperative_matrix";
constexpr const char *kIntegerDotProductExt = "VK_KHR_shader_integer_dot_product"; // core in Vulkan 1.3
constexpr const char *kExecutablePropertiesExt = "VK_KHR_pipeline_executable_properties";
constexpr VkStructureType kCoopMatrixFeaturesType = static_cast<VkStructureType>(1000506000);
struct CoopMatrixFeatures { // VkPhysicalDeviceCooperativeMatrixFeaturesKHR (headers older than 1.3.255 lack it)
  VkStructureType sType;
  void *pNext;
  VkBool32 cooperativeMatrix;
  VkBool32 cooperativeMatrixRobustBufferAccess;
};

std::string versionString(uint32_t v) {
  return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v)) + "." +
         std::to_string(VK_API_VERSION_PATCH(v));
}

bool hasExtension(VkPhysicalDevice dev, const char *name) {
  uint32_t n = 0;
  vkEnumerateDeviceExtensionProperties(dev, nullptr, &n, nullptr);
  std::vector<VkExtensionProperties> exts(n);
  vkEnumerateDeviceExtensionProperties(dev, nullptr, &n, exts.data());
  for (const auto &e : exts)
    if (std::strcmp(e.extensionName, name) == 0)
      return true;
  return false;
}

/// shaderIntegerDotProduct (Vulkan 1.3 core or VK_KHR_shader_integer_dot_product) and whether the packed
/// 4 x 8-bit signed . unsigned form (OpSUDot, codegen/spirv's quantized GEMV) is accelerated.
void queryIntegerDotProduct(VkPhysicalDevice dev, uint32_t api, target::DeviceProfile &p) {
  if (api < VK_API_VERSION_1_3 && !hasExtension(dev, kIntegerDotProductExt))
    return;
  VkPhysicalDeviceShaderIntegerDotProductFeatures features{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
  VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  feats.pNext = &features;
  vkGetPhysicalDeviceFeatures2(dev, &feats);
  VkPhysicalDeviceShaderIntegerDotProductProperties properties{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES};
  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  props.pNext = &properties;
  vkGetPhysicalDeviceProperties2(dev, &props);
  p.integerDotProduct = features.shaderIntegerDotProduct;
  p.integerDotProductAccelerated =
      features.shaderIntegerDotProduct && properties.integerDotProduct4x8BitPackedMixedSignednessAccelerated;
}

int typeRank(const std::string &t) {
  if (t == "discrete-gpu") return 0;
  if (t == "integrated-gpu") return 1;
  if (t == "virtual-gpu") return 2;
  if (t == "cpu") return 3;
  return 4;
}

std::string lower(std::string s) {
  for (char &c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
} // namespace

const char *resultName(VkResult r) {
  switch (r) {
  case VK_SUCCESS: return "VK_SUCCESS";
  case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
  case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
  case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
  case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
  case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
  case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
  case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
  case VK_ERROR_INVALID_SHADER_NV: return "VK_ERROR_INVALID_SHADER_NV";
  case VK_TIMEOUT: return "VK_TIMEOUT";
  default: return "VkResult";
  }
}

bool createInstance(VkInstance &instance, uint32_t &apiVersion, std::string &error) {
  uint32_t loader = VK_API_VERSION_1_0;
  auto enumerateVersion = reinterpret_cast<PFN_vkEnumerateInstanceVersion>(
      vkGetInstanceProcAddr(nullptr, "vkEnumerateInstanceVersion"));
  if (enumerateVersion)
    enumerateVersion(&loader);
  if (loader < VK_API_VERSION_1_1) {
    error = "no Vulkan device: the Vulkan loader supports only API " + versionString(loader) + " (kiln needs 1.1)";
    return false;
  }
  apiVersion = std::min<uint32_t>(loader, VK_API_VERSION_1_3);
  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "kiln";
  app.pEngineName = "kiln";
  app.apiVersion = apiVersion;
  VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ci.pApplicationInfo = &app;
  VkResult r = vkCreateInstance(&ci, nullptr, &instance);
  if (r != VK_SUCCESS) {
    error = "no Vulkan device: vkCreateInstance failed (" + std::to_string(static_cast<int>(r)) +
            "); set VK_DRIVER_FILES to a driver's ICD JSON (e.g. /usr/share/vulkan/icd.d/lvp_icd.x86_64.json)";
    instance = VK_NULL_HANDLE;
    return false;
  }
  return true;
}

DeviceInfo queryDevice(VkPhysicalDevice dev, uint32_t index, uint32_t instanceApi) {
  DeviceInfo info;
  target::DeviceProfile &p = info.profile;
  info.index = index;
  VkPhysicalDeviceProperties base{};
  vkGetPhysicalDeviceProperties(dev, &base);
  const uint32_t api = std::min(base.apiVersion, instanceApi);

  VkPhysicalDeviceSubgroupProperties subgroup{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceMaintenance3Properties maint3{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
  VkPhysicalDeviceDriverProperties driver{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  VkPhysicalDeviceSubgroupSizeControlProperties sizeControl{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  props.pNext = &subgroup;
  subgroup.pNext = &maint3;
  if (api >= VK_API_VERSION_1_2) {
    maint3.pNext = &driver;
    if (api >= VK_API_VERSION_1_3)
      driver.pNext = &sizeControl;
  }
  vkGetPhysicalDeviceProperties2(dev, &props);

  VkPhysicalDevice16BitStorageFeatures s16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
  VkPhysicalDevice8BitStorageFeatures s8{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES};
  VkPhysicalDeviceShaderFloat16Int8Features f16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
  VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  feats.pNext = &s16;
  if (api >= VK_API_VERSION_1_2 || hasExtension(dev, "VK_KHR_8bit_storage"))
    s16.pNext = &s8;
  if (api >= VK_API_VERSION_1_2 || hasExtension(dev, "VK_KHR_shader_float16_int8"))
    (s16.pNext ? s8.pNext : s16.pNext) = &f16;
  vkGetPhysicalDeviceFeatures2(dev, &feats);

  p.name = base.deviceName;
  p.apiVersion = versionString(base.apiVersion);
  switch (base.deviceType) {
  case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: info.deviceType = "discrete-gpu"; break;
  case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: info.deviceType = "integrated-gpu"; break;
  case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: info.deviceType = "virtual-gpu"; break;
  case VK_PHYSICAL_DEVICE_TYPE_CPU: info.deviceType = "cpu"; break;
  default: info.deviceType = "other";
  }
  if (api >= VK_API_VERSION_1_2 && driver.driverName[0])
    info.driver = std::string(driver.driverName) + (driver.driverInfo[0] ? std::string(" ") + driver.driverInfo : "");
  else
    info.driver = "driver version " + std::to_string(base.driverVersion);
  p.float16 = f16.shaderFloat16;
  p.int8 = f16.shaderInt8;
  p.storage16 = s16.storageBuffer16BitAccess;
  p.storage8 = s8.storageBuffer8BitAccess;
  p.subgroupSize = subgroup.subgroupSize;
  info.subgroupSizeMin = info.subgroupSizeMax = subgroup.subgroupSize;
  if (api >= VK_API_VERSION_1_3 && sizeControl.minSubgroupSize > 0) {
    info.subgroupSizeMin = sizeControl.minSubgroupSize;
    info.subgroupSizeMax = sizeControl.maxSubgroupSize;
  }
  if (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) {
    static const std::pair<VkSubgroupFeatureFlagBits, const char *> ops[] = {
        {VK_SUBGROUP_FEATURE_BASIC_BIT, "basic"},         {VK_SUBGROUP_FEATURE_VOTE_BIT, "vote"},
        {VK_SUBGROUP_FEATURE_ARITHMETIC_BIT, "arithmetic"}, {VK_SUBGROUP_FEATURE_BALLOT_BIT, "ballot"},
        {VK_SUBGROUP_FEATURE_SHUFFLE_BIT, "shuffle"},     {VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT, "shuffle_relative"},
        {VK_SUBGROUP_FEATURE_CLUSTERED_BIT, "clustered"}, {VK_SUBGROUP_FEATURE_QUAD_BIT, "quad"}};
    for (const auto &[bit, name] : ops)
      if (subgroup.supportedOperations & bit)
        p.subgroupOps.push_back(name);
  }
  const VkPhysicalDeviceLimits &l = base.limits;
  p.maxSharedMemory = l.maxComputeSharedMemorySize;
  p.maxWorkgroupInvocations = l.maxComputeWorkGroupInvocations;
  for (int k = 0; k < 3; ++k) {
    p.maxWorkgroupSize[k] = l.maxComputeWorkGroupSize[k];
    p.maxWorkgroupCount[k] = l.maxComputeWorkGroupCount[k];
  }
  p.maxStorageBufferRange = l.maxStorageBufferRange;
  p.maxAllocationSize = maint3.maxMemoryAllocationSize;
  p.maxPushConstantsSize = l.maxPushConstantsSize;
  p.cooperativeMatrix = hasExtension(dev, kCoopMatrixExt);
  queryIntegerDotProduct(dev, api, p);
  return info;
}

bool listDevices(std::vector<DeviceInfo> &devices, std::string &error) {
  devices.clear();
  VkInstance instance;
  uint32_t api;
  if (!createInstance(instance, api, error))
    return false;
  uint32_t n = 0;
  vkEnumeratePhysicalDevices(instance, &n, nullptr);
  std::vector<VkPhysicalDevice> phys(n);
  if (n)
    vkEnumeratePhysicalDevices(instance, &n, phys.data());
  for (uint32_t i = 0; i < n; ++i)
    devices.push_back(queryDevice(phys[i], i, api));
  vkDestroyInstance(instance, nullptr);
  if (devices.empty()) {
    error = "no Vulkan device: the loader found no physical device; set VK_DRIVER_FILES";
    return false;
  }
  return true;
}

namespace {

// The devices to try, in order: those KILN_VULKAN_DEVICE names (an index or a name substring), else all, GPUs
// first. Empty with `error` when the variable matches none.
std::vector<uint32_t> candidateOrder(const std::vector<DeviceInfo> &devices, std::string &error) {
  std::vector<uint32_t> order;
  const uint32_t n = static_cast<uint32_t>(devices.size());
  const char *sel = std::getenv("KILN_VULKAN_DEVICE");
  std::string selection = sel ? sel : "";
  if (selection.empty()) {
    for (uint32_t i = 0; i < n; ++i)
      order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return typeRank(devices[a].deviceType) < typeRank(devices[b].deviceType);
    });
    return order;
  }
  bool digits = std::all_of(selection.begin(), selection.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  for (uint32_t i = 0; i < n; ++i)
    if (digits ? std::to_string(i) == selection : lower(devices[i].profile.name).find(lower(selection)) != std::string::npos)
      order.push_back(i);
  if (order.empty()) {
    std::string names;
    for (const auto &p : devices)
      names += (names.empty() ? "" : ", ") + std::to_string(p.index) + " '" + p.profile.name + "'";
    error = "KILN_VULKAN_DEVICE=" + selection + " matches no Vulkan device (devices: " + names + ")";
  }
  return order;
}

// The first candidate with what `need` asks and API 1.1+, or -1 with `error` listing what each lacks.
int chooseDevice(const std::vector<VkPhysicalDevice> &phys, const std::vector<DeviceInfo> &devices,
                 const std::vector<uint32_t> &order, const target::DeviceProfile *need, const std::string &profileName,
                 std::string &error) {
  std::string why;
  for (uint32_t i : order) {
    std::string missing = need ? target::missingCapabilities(devices[i].profile, *need) : "";
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(phys[i], &props);
    if (VK_API_VERSION_MINOR(props.apiVersion) < 1 && VK_API_VERSION_MAJOR(props.apiVersion) == 1)
      missing += std::string(missing.empty() ? "" : ", ") + "API " + devices[i].profile.apiVersion + " < 1.1";
    if (missing.empty())
      return static_cast<int>(i);
    why += (why.empty() ? "" : "; ") + devices[i].profile.name + ": " + missing;
  }
  error = "no Vulkan device satisfies the artifact's profile" +
          (profileName.empty() ? std::string() : " '" + profileName + "'") + ": " + why;
  return -1;
}

// A compute queue family, one without graphics preferred; -1 if there is none.
int computeQueueFamily(const std::vector<VkQueueFamilyProperties> &families) {
  for (size_t i = 0; i < families.size(); ++i)
    if ((families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && !(families[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
      return static_cast<int>(i);
  for (size_t i = 0; i < families.size(); ++i)
    if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
      return static_cast<int>(i);
  return -1;
}

} // namespace

std::unique_ptr<VulkanDevice> VulkanDevice::open(const target::DeviceProfile *need, const std::string &profileName,
                                                 std::string &error) {
  std::unique_ptr<VulkanDevice> d(new VulkanDevice());
  uint32_t api = 0;
  if (!createInstance(d->instance, api, error))
    return nullptr;
  uint32_t n = 0;
  vkEnumeratePhysicalDevices(d->instance, &n, nullptr);
  std::vector<VkPhysicalDevice> phys(n);
  if (n)
    vkEnumeratePhysicalDevices(d->instance, &n, phys.data());
  if (n == 0) {
    error = "no Vulkan device: the loader found no physical device; set VK_DRIVER_FILES";
    return nullptr;
  }
  std::vector<DeviceInfo> devices;
  for (uint32_t i = 0; i < n; ++i)
    devices.push_back(queryDevice(phys[i], i, api));
  const std::vector<uint32_t> order = candidateOrder(devices, error);
  const int chosen = order.empty() ? -1 : chooseDevice(phys, devices, order, need, profileName, error);
  if (chosen < 0)
    return nullptr;
  d->physical = phys[size_t(chosen)];
  d->profile = devices[size_t(chosen)].profile;
  // A GPU's fence is polled first (KILN_VULKAN_SPIN_US, default kSpinUs): a decode step is ~2 ms of GPU work, and
  // a thread asleep in vkWaitForFences wakes tens to hundreds of microseconds after it signals. Not on a CPU
  // device (lavapipe): its worker threads need the cores a spinning thread would take.
  if (devices[size_t(chosen)].deviceType != "cpu")
    d->spinNs_ = uint64_t(runtime::envCount("KILN_VULKAN_SPIN_US", kSpinUs)) * 1000;
  if (!d->createLogicalDevice(api, error))
    return nullptr;
  return d;
}

bool VulkanDevice::createLogicalDevice(uint32_t instanceApi, std::string &error) {
  uint32_t qn = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(physical, &qn, nullptr);
  std::vector<VkQueueFamilyProperties> families(qn);
  vkGetPhysicalDeviceQueueFamilyProperties(physical, &qn, families.data());
  const int family = computeQueueFamily(families);
  if (family < 0) {
    error = "Vulkan device '" + profile.name + "' has no compute queue";
    return false;
  }
  queueFamily = static_cast<uint32_t>(family);
  timestamps = families[size_t(family)].timestampValidBits > 0;
  timestampMask = families[size_t(family)].timestampValidBits >= 64
                      ? ~uint64_t(0)
                      : (uint64_t(1) << families[size_t(family)].timestampValidBits) - 1;

  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties(physical, &props);
  limits = props.limits;
  timestampPeriodNs = props.limits.timestampPeriod;
  const uint32_t devApi = std::min(props.apiVersion, instanceApi);

  // Features: everything the device supports that kernels may use (no robustBufferAccess).
  std::vector<const char *> exts;
  VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan13Features f13{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
  VkPhysicalDevice16BitStorageFeatures s16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
  CoopMatrixFeatures coop{kCoopMatrixFeaturesType, nullptr, VK_FALSE, VK_FALSE};
  VkPhysicalDeviceShaderIntegerDotProductFeatures idot{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
  void **tail = &feats.pNext;
  if (devApi >= VK_API_VERSION_1_2) {
    *tail = &f11;
    f11.pNext = &f12;
    tail = &f12.pNext;
    if (devApi >= VK_API_VERSION_1_3) {
      *tail = &f13;
      tail = &f13.pNext;
    }
  } else {
    *tail = &s16;
    tail = &s16.pNext;
  }
  if (profile.cooperativeMatrix) {
    *tail = &coop;
    tail = &coop.pNext;
    exts.push_back(kCoopMatrixExt);
  }
  // Integer dot product (the quantized GEMV's OpSUDot): in f13 from 1.3 on, else the extension's own struct.
  if (profile.integerDotProduct && devApi < VK_API_VERSION_1_3) {
    *tail = &idot;
    tail = &idot.pNext;
    exts.push_back(kIntegerDotProductExt);
  }
  // KILN_PROFILE: the driver's statistics of each pipeline (VulkanPipeline.cpp), where it reports them.
  VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR exec{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
  const bool statistics = runtime::envFlag("KILN_PROFILE") && hasExtension(physical, kExecutablePropertiesExt);
  if (statistics) {
    *tail = &exec;
    tail = &exec.pNext;
    exts.push_back(kExecutablePropertiesExt);
  }
  vkGetPhysicalDeviceFeatures2(physical, &feats);
  feats.features.robustBufferAccess = VK_FALSE;
  f13.robustImageAccess = VK_FALSE;
  coop.cooperativeMatrixRobustBufferAccess = VK_FALSE;

  float priority = 1.0f;
  VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qci.queueFamilyIndex = queueFamily;
  qci.queueCount = 1;
  qci.pQueuePriorities = &priority;
  VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  dci.pNext = &feats;
  dci.queueCreateInfoCount = 1;
  dci.pQueueCreateInfos = &qci;
  dci.enabledExtensionCount = static_cast<uint32_t>(exts.size());
  dci.ppEnabledExtensionNames = exts.data();
  VkResult r = vkCreateDevice(physical, &dci, nullptr, &device);
  if (r != VK_SUCCESS) {
    device = VK_NULL_HANDLE;
    error = "Vulkan device '" + profile.name + "': vkCreateDevice failed (" + std::to_string(static_cast<int>(r)) +
            " " + resultName(r) + ")";
    return false;
  }
  if (statistics && exec.pipelineExecutableInfo) {
    getExecutables = reinterpret_cast<PFN_vkGetPipelineExecutablePropertiesKHR>(
        vkGetDeviceProcAddr(device, "vkGetPipelineExecutablePropertiesKHR"));
    getStatistics = reinterpret_cast<PFN_vkGetPipelineExecutableStatisticsKHR>(
        vkGetDeviceProcAddr(device, "vkGetPipelineExecutableStatisticsKHR"));
    if (!getExecutables || !getStatistics)
      getExecutables = nullptr, getStatistics = nullptr;
  }
  vkGetDeviceQueue(device, queueFamily, 0, &queue);
  vkGetPhysicalDeviceMemoryProperties(physical, &memory_);

  VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pci.queueFamilyIndex = queueFamily;
  VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  if (vkCreateCommandPool(device, &pci, nullptr, &uploadPool_) != VK_SUCCESS ||
      vkCreateFence(device, &fci, nullptr, &uploadFence_) != VK_SUCCESS) {
    error = "Vulkan device '" + profile.name + "': cannot create a command pool / fence";
    return false;
  }
  return true;
}

VulkanDevice::~VulkanDevice() {
  if (device) {
    vkDeviceWaitIdle(device);
    if (uploadFence_)
      vkDestroyFence(device, uploadFence_, nullptr);
    if (uploadPool_)
      vkDestroyCommandPool(device, uploadPool_, nullptr);
    vkDestroyDevice(device, nullptr);
  }
  if (instance)
    vkDestroyInstance(instance, nullptr);
}

bool VulkanDevice::createBuffer(VkDeviceSize size, bool hostVisible, Buffer &out, std::string &error) {
  out = Buffer();
  size = std::max<VkDeviceSize>((size + 255) & ~VkDeviceSize(255), 256);
  if (profile.maxAllocationSize && size > profile.maxAllocationSize) {
    error = "a Vulkan buffer of " + std::to_string(size) + " bytes exceeds maxMemoryAllocationSize " +
            std::to_string(profile.maxAllocationSize) + " of '" + profile.name + "'";
    return false;
  }
  VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bci.size = size;
  // Uniform and indirect: the session's step parameters (symbols, workgroup counts) are such a buffer.
  bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT |
              VK_BUFFER_USAGE_UNIFORM_BUFFER_BIT | VK_BUFFER_USAGE_INDIRECT_BUFFER_BIT;
  bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  VkResult r = vkCreateBuffer(device, &bci, nullptr, &out.buffer);
  if (r != VK_SUCCESS) {
    out.buffer = VK_NULL_HANDLE;
    error = "vkCreateBuffer(" + std::to_string(size) + " bytes) failed (" + resultName(r) + ")";
    return false;
  }
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(device, out.buffer, &req);
  // Device-local for the arena / weights / KV; host-visible + coherent (preferably cached) for staging.
  auto pick = [&](VkMemoryPropertyFlags want, VkMemoryPropertyFlags avoid) -> int {
    for (uint32_t i = 0; i < memory_.memoryTypeCount; ++i)
      if ((req.memoryTypeBits & (1u << i)) && (memory_.memoryTypes[i].propertyFlags & want) == want &&
          !(memory_.memoryTypes[i].propertyFlags & avoid))
        return static_cast<int>(i);
    return -1;
  };
  int type;
  if (hostVisible) {
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    type = pick(hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, 0);
    if (type < 0)
      type = pick(hv, 0);
  } else {
    type = pick(VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT);
    if (type < 0)
      type = pick(VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    if (type < 0)
      type = pick(0, 0);
  }
  if (type < 0) {
    destroyBuffer(out);
    error = std::string("no ") + (hostVisible ? "host-visible coherent" : "device") + " memory type for a buffer";
    return false;
  }
  VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  mai.allocationSize = req.size;
  mai.memoryTypeIndex = static_cast<uint32_t>(type);
  r = vkAllocateMemory(device, &mai, nullptr, &out.memory);
  if (r != VK_SUCCESS) {
    out.memory = VK_NULL_HANDLE;
    destroyBuffer(out);
    error = "vkAllocateMemory(" + std::to_string(req.size) + " bytes) failed on '" + profile.name + "' (" +
            resultName(r) + ")";
    return false;
  }
  vkBindBufferMemory(device, out.buffer, out.memory, 0);
  if (hostVisible && vkMapMemory(device, out.memory, 0, VK_WHOLE_SIZE, 0, &out.mapped) != VK_SUCCESS) {
    destroyBuffer(out);
    error = "vkMapMemory failed";
    return false;
  }
  out.size = size;
  out.hostCached = hostVisible && (memory_.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
  return true;
}

void VulkanDevice::destroyBuffer(Buffer &b) {
  if (b.mapped)
    vkUnmapMemory(device, b.memory);
  if (b.buffer)
    vkDestroyBuffer(device, b.buffer, nullptr);
  if (b.memory)
    vkFreeMemory(device, b.memory, nullptr);
  b = Buffer();
}

bool VulkanDevice::submitAndWait(VkCommandBuffer cmd, VkFence fence, std::string &error) {
  vkResetFences(device, 1, &fence);
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cmd;
  VkResult r;
  {
    std::lock_guard<std::mutex> lock(queueMutex_);
    r = vkQueueSubmit(queue, 1, &si, fence);
  }
  if (r == VK_SUCCESS)
    r = waitForFence(fence);
  if (r != VK_SUCCESS) {
    error = std::string("Vulkan submission failed (") + resultName(r) + ")";
    return false;
  }
  return true;
}

VkResult VulkanDevice::waitForFence(VkFence fence) {
  if (spinNs_ > 0) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::nanoseconds(spinNs_);
    do {
      VkResult r = vkGetFenceStatus(device, fence);
      if (r != VK_NOT_READY)
        return r;
    } while (std::chrono::steady_clock::now() < end);
  }
  return vkWaitForFences(device, 1, &fence, VK_TRUE, UINT64_MAX);
}

bool VulkanDevice::upload(const void *data, VkDeviceSize bytes, const Buffer &dst, VkDeviceSize offset,
                          std::string &error) {
  if (bytes == 0)
    return true;
  const VkDeviceSize chunk = std::min<VkDeviceSize>(bytes, 64ull << 20);
  Buffer staging;
  if (!createBuffer(chunk, true, staging, error))
    return false;
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = uploadPool_;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  VkCommandBuffer cmd = VK_NULL_HANDLE;
  bool ok = vkAllocateCommandBuffers(device, &ai, &cmd) == VK_SUCCESS;
  if (!ok)
    error = "vkAllocateCommandBuffers failed";
  for (VkDeviceSize done = 0; ok && done < bytes; done += chunk) {
    VkDeviceSize n = std::min(chunk, bytes - done);
    std::memcpy(staging.mapped, static_cast<const uint8_t *>(data) + done, n);
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    vkBeginCommandBuffer(cmd, &bi);
    VkBufferCopy copy{0, offset + done, n};
    vkCmdCopyBuffer(cmd, staging.buffer, dst.buffer, 1, &copy);
    vkEndCommandBuffer(cmd);
    ok = submitAndWait(cmd, uploadFence_, error);
  }
  if (cmd)
    vkFreeCommandBuffers(device, uploadPool_, 1, &cmd);
  destroyBuffer(staging);
  return ok;
}

} // namespace kiln::vulkan
