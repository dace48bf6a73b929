//===- Devices.h - the Vulkan devices the loader sees ----------------------*- C++ -*-===//
//
// What `kiln devices` lists: per device its capability profile (kiln::target::DeviceProfile, the JSON of
// `kiln devices --json` and of `kiln compile --device-profile FILE`) and what is printed beside it. Part of
// kiln_runtime (needs the Vulkan loader); the profile type, its JSON and the device-vs-artifact check
// (missingCapabilities) are in target/.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_VULKAN_DEVICES_H
#define KILN_VULKAN_DEVICES_H

#include "kiln/target/DeviceProfile.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::vulkan {

struct DeviceInfo {
  target::DeviceProfile profile;
  // Not in the profile: what `kiln devices` prints beside it.
  uint32_t index = 0;     // the position in vkEnumeratePhysicalDevices
  std::string deviceType; // "discrete-gpu", "integrated-gpu", "virtual-gpu", "cpu", "other"
  std::string driver;     // driverName + driverInfo, or the driver version
  uint32_t subgroupSizeMin = 0, subgroupSizeMax = 0; // with subgroup size control, else both = subgroupSize
};

/// Every Vulkan device the loader sees (instance API 1.1+, no layers). False with a one-line `error`
/// ("no Vulkan device: vkCreateInstance failed (-9); set VK_DRIVER_FILES") when there is none.
bool listDevices(std::vector<DeviceInfo> &devices, std::string &error);

} // namespace kiln::vulkan

#endif // KILN_VULKAN_DEVICES_H
