//===- VulkanDevice.h - one Vulkan device: instance, queue, memory, buffers -*- C++ -*-===//
//
// The runtime's device layer: an instance (API 1.1+, no layers), a physical device chosen by
// KILN_VULKAN_DEVICE (an index or a name substring; else the first device, GPUs before CPUs, that satisfies
// the artifact's profile), one compute queue, device-local and host-visible coherent memory, buffers within
// the device's limits, one-shot submissions with fences.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_VULKAN_VULKANDEVICE_H
#define KILN_RUNTIME_VULKAN_VULKANDEVICE_H

#include "kiln/vulkan/Devices.h"

#include <vulkan/vulkan.h>

#include <memory>
#include <mutex>
#include <string>

namespace kiln::vulkan {

const char *resultName(VkResult r);

struct Buffer {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceMemory memory = VK_NULL_HANDLE;
  VkDeviceSize size = 0;
  void *mapped = nullptr; // host-visible buffers only
  bool hostCached = false; // mapped memory the CPU caches (reads at memory speed, not uncached)
};

class VulkanDevice {
public:
  /// Opens the device chosen as above. `need` (may be null) is the artifact's profile and `profileName`
  /// its name for messages. Null with a one-line `error` when no device fits.
  static std::unique_ptr<VulkanDevice> open(const target::DeviceProfile *need, const std::string &profileName,
                                            std::string &error);
  ~VulkanDevice();
  VulkanDevice(const VulkanDevice &) = delete;
  VulkanDevice &operator=(const VulkanDevice &) = delete;

  /// A storage (+ uniform, indirect) + transfer buffer of `size` bytes: device-local, or host-visible coherent
  /// (mapped).
  bool createBuffer(VkDeviceSize size, bool hostVisible, Buffer &out, std::string &error);
  void destroyBuffer(Buffer &b);

  /// Submits `cmd` on the queue (serialized between sessions) and waits for `fence`, which is reset first.
  bool submitAndWait(VkCommandBuffer cmd, VkFence fence, std::string &error);
  /// Waits for `fence`: polled for up to KILN_VULKAN_SPIN_US on a GPU, then a blocking wait.
  VkResult waitForFence(VkFence fence);
  static constexpr int kSpinUs = 3000;

  /// Copies `bytes` from `data` into `dst` at `offset` through a temporary staging buffer (load time).
  bool upload(const void *data, VkDeviceSize bytes, const Buffer &dst, VkDeviceSize offset, std::string &error);

  VkInstance instance = VK_NULL_HANDLE;
  VkPhysicalDevice physical = VK_NULL_HANDLE;
  VkDevice device = VK_NULL_HANDLE;
  VkQueue queue = VK_NULL_HANDLE;
  uint32_t queueFamily = 0;
  target::DeviceProfile profile;
  VkPhysicalDeviceLimits limits{};
  bool timestamps = false;   // the queue writes timestamps
  double timestampPeriodNs = 1.0;
  uint64_t timestampMask = ~uint64_t(0); // timestampValidBits
  /// KILN_PROFILE with VK_KHR_pipeline_executable_properties: pipelines are created capturing the driver's
  /// statistics of their code (registers, shared memory, spills), which these read (null otherwise).
  PFN_vkGetPipelineExecutablePropertiesKHR getExecutables = nullptr;
  PFN_vkGetPipelineExecutableStatisticsKHR getStatistics = nullptr;

private:
  VulkanDevice() = default;
  /// The queue family, the limits, the logical device with every feature kernels may use, the upload pool.
  bool createLogicalDevice(uint32_t instanceApi, std::string &error);
  std::mutex queueMutex_;
  VkPhysicalDeviceMemoryProperties memory_{};
  VkCommandPool uploadPool_ = VK_NULL_HANDLE;
  VkFence uploadFence_ = VK_NULL_HANDLE;
  uint64_t spinNs_ = 0; // waitForFence's polling before it blocks
};

/// Creates an instance of API 1.1+ (the loader's version, at most 1.3); false with
/// "no Vulkan device: vkCreateInstance failed (-9); set VK_DRIVER_FILES" style errors.
bool createInstance(VkInstance &instance, uint32_t &apiVersion, std::string &error);
/// The profile of `device` and what is listed beside it (index = its position in vkEnumeratePhysicalDevices).
DeviceInfo queryDevice(VkPhysicalDevice device, uint32_t index, uint32_t instanceApi);

} // namespace kiln::vulkan

#endif
