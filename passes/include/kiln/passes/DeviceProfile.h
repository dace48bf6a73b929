//===- DeviceProfile.h - what a Vulkan target can do ----------------------*- C++ -*-===//
//
// A device profile is the record the legality pass checks every op against. Its JSON form (the keys of
// `kiln devices --json`, Manifest.device_profile_json) is, exactly:
//   {"name", "api_version", "float16", "int8", "storage16", "storage8", "subgroup_size",
//    "subgroup_ops": [basic vote arithmetic ballot shuffle shuffle_relative clustered quad],
//    "max_shared_memory", "max_workgroup_invocations", "max_workgroup_size": [x, y, z],
//    "max_workgroup_count": [x, y, z], "max_storage_buffer_range", "max_allocation_size",
//    "max_push_constants_size", "cooperative_matrix", "unavailable_ops": ["kiln.rope", ...],
//    "unavailable_dtypes": ["f16", ...]}
// unavailable_ops / unavailable_dtypes may be omitted (empty); every other key is required, an unknown key
// is an error. Built in: lavapipe and nvidia-h200 (values measured in devices.md) and generic (conservative).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_DEVICEPROFILE_H
#define KILN_PASSES_DEVICEPROFILE_H

#include "kiln/support/Status.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::passes {

struct VulkanProfile {
  std::string name;
  std::string apiVersion = "1.2.0"; // "major.minor.patch"
  bool float16 = false;             // shaderFloat16 arithmetic
  bool int8 = false;                // shaderInt8 arithmetic
  bool storage16 = false;           // 16-bit storage buffer access
  bool storage8 = false;            // 8-bit storage buffer access
  uint32_t subgroupSize = 32;
  std::vector<std::string> subgroupOps; // subset of kSubgroupOpNames
  uint32_t maxSharedMemory = 16384;
  uint32_t maxWorkgroupInvocations = 256;
  std::array<uint32_t, 3> maxWorkgroupSize = {256, 256, 64};
  std::array<uint32_t, 3> maxWorkgroupCount = {65535, 65535, 65535};
  uint64_t maxStorageBufferRange = 1ull << 27;
  uint64_t maxAllocationSize = 1ull << 28;
  uint32_t maxPushConstantsSize = 128;
  bool cooperativeMatrix = false;
  std::vector<std::string> unavailableOps;    // full op names ("kiln.rope"); "rope" is read as "kiln.rope"
  std::vector<std::string> unavailableDtypes; // "f32", "f16", "bf16", "i64", "i32", "i8", "i1"

  bool hasSubgroupOp(const std::string &op) const;
  bool opUnavailable(const std::string &opName) const;
  bool dtypeUnavailable(const std::string &dtype) const;
};

/// The subgroup operation names, in the order of VkSubgroupFeatureFlagBits.
extern const char *const kSubgroupOpNames[8];

/// Parses a profile. Errors name `source` (a file path or "profile") and the key.
StatusOr<VulkanProfile> parseVulkanProfile(const std::string &jsonText, const std::string &source);
/// The JSON form (pretty-printed, keys in the order above). parseVulkanProfile(writeVulkanProfile(p)) == p.
std::string writeVulkanProfile(const VulkanProfile &profile);
/// "lavapipe", "nvidia-h200", "generic"; nullopt for another name.
std::optional<VulkanProfile> builtinVulkanProfile(const std::string &name);
std::vector<std::string> builtinVulkanProfileNames();
/// `--device-profile NAME|FILE`: a built-in name, else a JSON file.
StatusOr<VulkanProfile> loadVulkanProfile(const std::string &nameOrFile);

bool operator==(const VulkanProfile &a, const VulkanProfile &b);

} // namespace kiln::passes

#endif // KILN_PASSES_DEVICEPROFILE_H
