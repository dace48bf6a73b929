//===- DeviceProfile.h - Vulkan devices and their capability profiles ---*- C++ -*-===//
//
// What a Vulkan device can do (the fields of ../shared/devices.md), as `kiln devices` lists it and as an
// artifact's Manifest.device_profile_json records the target it was compiled for. The JSON schema is in
// runtime/src/vulkan/DeviceProfileJson.h. Part of kiln_runtime (links only the Vulkan loader).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_VULKAN_DEVICEPROFILE_H
#define KILN_VULKAN_DEVICEPROFILE_H

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::vulkan {

struct DeviceProfile {
  std::string name;
  std::string apiVersion;             // "1.3.230"
  bool float16 = false;               // shaderFloat16
  bool int8 = false;                  // shaderInt8
  bool storage16 = false;             // storageBuffer16BitAccess
  bool storage8 = false;              // storageBuffer8BitAccess
  uint32_t subgroupSize = 0;          // 0: no requirement (in a target profile)
  std::vector<std::string> subgroupOps; // "basic","vote","arithmetic","ballot","shuffle","shuffle_relative","clustered","quad"
  uint64_t maxSharedMemory = 0;
  uint64_t maxWorkgroupInvocations = 0;
  uint64_t maxWorkgroupSize[3] = {0, 0, 0};
  uint64_t maxWorkgroupCount[3] = {0, 0, 0};
  uint64_t maxStorageBufferRange = 0;
  uint64_t maxAllocationSize = 0;
  uint64_t maxPushConstantsSize = 0;
  bool cooperativeMatrix = false;     // VK_KHR_cooperative_matrix
  std::vector<std::string> unavailableOps;    // ops to treat as missing on this target (partitioner input)
  std::vector<std::string> unavailableDtypes; // dtypes to treat as missing

  // Not in the JSON: what `kiln devices` prints beside the profile.
  uint32_t index = 0;
  std::string deviceType; // "discrete-gpu", "integrated-gpu", "virtual-gpu", "cpu", "other"
  std::string driver;     // driverName + driverInfo, or the driver version
  uint32_t subgroupSizeMin = 0, subgroupSizeMax = 0; // with subgroup size control, else both = subgroupSize
};

/// Every Vulkan device the loader sees (instance API 1.1+, no layers). False with a one-line `error`
/// ("no Vulkan device: vkCreateInstance failed (-9); set VK_DRIVER_FILES") when there is none.
bool listDevices(std::vector<DeviceProfile> &devices, std::string &error);

/// The profile as a JSON object with exactly the keys of DeviceProfileJson.h (indent 0: one line).
std::string profileToJson(const DeviceProfile &profile, int indent = 2);
/// Parses an object (or the first element of an array) of that schema; unknown keys are ignored, absent
/// keys keep their defaults (no requirement). False with a message on malformed JSON.
bool parseProfileJson(const std::string &json, DeviceProfile &profile, std::string &error);

/// What `device` lacks to satisfy `need` (a target profile): "" when it satisfies it, else a list such as
/// "no shaderFloat16, max_shared_memory 32768 < 49152, no subgroup op clustered".
std::string missingCapabilities(const DeviceProfile &device, const DeviceProfile &need);

} // namespace kiln::vulkan

#endif // KILN_VULKAN_DEVICEPROFILE_H
