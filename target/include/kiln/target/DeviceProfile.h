//===- DeviceProfile.h - what a Vulkan target can do ------------------------*- C++ -*-===//
//
// One record of a Vulkan device's capabilities, shared by the compiler (the legality / partition passes
// check every op against it; Manifest.device_profile_json stores it) and the runtime (`kiln devices` fills
// it from the loader; at load, the device must satisfy the artifact's profile). Plain C++17, no LLVM/MLIR.
//
// Its JSON form (what `kiln devices --json` writes, `kiln compile --device-profile FILE` reads and
// Manifest.device_profile_json records) is one object with exactly these keys:
//   {
//     "name": "llvmpipe (LLVM 15.0.6, 256 bits)",  // VkPhysicalDeviceProperties::deviceName, non-empty
//     "api_version": "1.3.230",       // "major.minor.patch" (a packed VK_MAKE_API_VERSION number is read too)
//     "float16": true,                // shaderFloat16 (fp16 arithmetic)
//     "int8": true,                   // shaderInt8
//     "storage16": true,              // storageBuffer16BitAccess
//     "storage8": true,               // storageBuffer8BitAccess
//     "subgroup_size": 8,             // the (default) subgroup size, > 0
//     "subgroup_ops": ["basic", ...], // compute-stage subgroup operations, a subset of kSubgroupOpNames
//     "max_shared_memory": 32768,          // maxComputeSharedMemorySize (bytes)
//     "max_workgroup_invocations": 1024,   // maxComputeWorkGroupInvocations, > 0
//     "max_workgroup_size": [1024, 1024, 1024],
//     "max_workgroup_count": [65535, 65535, 65535],
//     "max_storage_buffer_range": 134217728, // maxStorageBufferRange (bytes one binding may span)
//     "max_allocation_size": 2147483648,     // maxMemoryAllocationSize
//     "max_push_constants_size": 128,
//     "cooperative_matrix": false,           // VK_KHR_cooperative_matrix present
//     "cooperative_matrix_shapes": ["16x8x16 f16 f16 f32 f32"], // its subgroup-scope MxNxK A B C Result types
//     "cooperative_matrix_tile": "128x128x32", // optional: the matmul's cooperative-matrix block BMxBNxBK (or
//                                            // BMxBNxBKx2: two shared-memory stages) for every shape (tuning;
//                                            // omitted: the compiler chooses per shape)
//     "integer_dot_product": true,           // shaderIntegerDotProduct (Vulkan 1.3 or VK_KHR_shader_integer_dot_product)
//     "integer_dot_product_accelerated": false, // integerDotProduct4x8BitPackedMixedSignednessAccelerated: the
//                                            // packed 4 x 8-bit signed . unsigned form (OpSUDot) is one instruction
//     "unavailable_ops": ["kiln.rope"],      // ops to treat as missing: registered kiln ops ("rope" = "kiln.rope")
//     "unavailable_dtypes": ["f16"]          // dtypes to treat as missing: one of kProfileDtypeNames
//   }
// unavailable_ops / unavailable_dtypes / cooperative_matrix_shapes / cooperative_matrix_tile may be omitted (empty; profiles written before
// the shapes were recorded have none, and kernels then use no cooperative matrix), and so may integer_dot_product
// and integer_dot_product_accelerated (false: profiles written before them); every other key is required.
// A shape is "MxNxK A B C R": positive sizes, then the component types of A, B, C and the result
// (VkCooperativeMatrixPropertiesKHR: f16 f32 f64 bf16 s8 u8 s16 u16 s32 u32 s64 u64 e4m3 e5m2). An unknown key,
// an unknown op, subgroup op or dtype name, a wrong type or an out-of-range number is an error naming the
// source (file) and the key. Integers are JSON integers (32-bit where Vulkan's limit is; the two sizes 64-bit).
// `kiln devices --json` with several devices writes an array of such objects; a profile is one of them.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TARGET_DEVICEPROFILE_H
#define KILN_TARGET_DEVICEPROFILE_H

#include "kiln/support/Status.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::target {

/// Zero / empty by default: as a requirement (the runtime's "what this artifact needs"), nothing.
struct DeviceProfile {
  std::string name;
  std::string apiVersion;                 // "major.minor.patch"
  bool float16 = false;                   // shaderFloat16 arithmetic
  bool int8 = false;                      // shaderInt8 arithmetic
  bool storage16 = false;                 // 16-bit storage buffer access
  bool storage8 = false;                  // 8-bit storage buffer access
  uint32_t subgroupSize = 0;
  std::vector<std::string> subgroupOps;   // subset of kSubgroupOpNames
  uint64_t maxSharedMemory = 0;
  uint64_t maxWorkgroupInvocations = 0;
  std::array<uint64_t, 3> maxWorkgroupSize = {0, 0, 0};
  std::array<uint64_t, 3> maxWorkgroupCount = {0, 0, 0};
  uint64_t maxStorageBufferRange = 0;
  uint64_t maxAllocationSize = 0;
  uint64_t maxPushConstantsSize = 0;
  bool cooperativeMatrix = false;
  std::vector<std::string> cooperativeMatrixShapes; // "16x8x16 f16 f16 f32 f32", ...
  std::string cooperativeMatrixTile;                // "BMxBNxBK" or empty (the compiler's choice per shape)
  bool integerDotProduct = false;            // shaderIntegerDotProduct
  bool integerDotProductAccelerated = false; // the packed 4 x 8-bit mixed-signedness dot product is accelerated
  std::vector<std::string> unavailableOps;    // op names as written ("kiln.rope" or "rope")
  std::vector<std::string> unavailableDtypes; // names of kProfileDtypeNames

  bool hasSubgroupOp(const std::string &op) const;
  /// Whether the device has VK_KHR_cooperative_matrix and lists `shape` ("16x8x16 f16 f16 f32 f32").
  bool hasCooperativeMatrixShape(const std::string &shape) const;
  /// Whether `opName` ("kiln.rope") is listed in unavailableOps (a bare "rope" there means "kiln.rope").
  bool opUnavailable(const std::string &opName) const;
  bool dtypeUnavailable(const std::string &dtype) const;
};

bool operator==(const DeviceProfile &a, const DeviceProfile &b);
inline bool operator!=(const DeviceProfile &a, const DeviceProfile &b) { return !(a == b); }

/// The subgroup operation names, in the order of VkSubgroupFeatureFlagBits.
extern const char *const kSubgroupOpNames[8];
/// The dtype names unavailable_dtypes may list.
extern const char *const kProfileDtypeNames[7];
/// Every op the kiln dialect registers ("kiln.add", ...): what unavailable_ops may name. target/ cannot see
/// the dialect; tests/unit/passes checks this list against the registered ops so it cannot go stale.
const std::vector<std::string> &kilnOpNames();
/// An unavailable_ops entry as an op name: a bare "rope" means "kiln.rope".
std::string canonicalOpName(const std::string &name);

/// Reads a profile from JSON text. Errors are one line and start with `source` (a file path, or what the
/// text is, e.g. "the artifact's device_profile_json").
StatusOr<DeviceProfile> parseDeviceProfile(const std::string &jsonText, const std::string &source);
/// The canonical JSON form: pretty-printed (indent 2), keys in the order above, a trailing newline.
/// parseDeviceProfile(writeDeviceProfile(p)) == p for every profile parseDeviceProfile returns.
std::string writeDeviceProfile(const DeviceProfile &profile);

/// "lavapipe", "nvidia-h200", "generic"; nullopt for another name.
std::optional<DeviceProfile> builtinDeviceProfile(const std::string &name);
std::vector<std::string> builtinDeviceProfileNames();

/// The largest profile file read (a real one is under 1 KiB).
constexpr uint64_t kMaxProfileFileBytes = 1 << 20;
/// `--device-profile NAME|FILE`: a built-in name, else a JSON file. A path that is not a regular file (a
/// directory, /dev/zero, a FIFO) or is larger than kMaxProfileFileBytes is refused before it is read.
StatusOr<DeviceProfile> loadDeviceProfile(const std::string &nameOrFile);

/// What `device` lacks to satisfy `need` (a requirement): "" when it satisfies it, else a list such as
/// "no shaderFloat16 (float16), max_shared_memory 32768 < 49152, no subgroup op clustered". A true flag
/// needs the device's flag, every listed subgroup op must be supported, and every max_* must be <= the
/// device's. name, api_version, subgroup_size, the unavailable lists and integer_dot_product_accelerated (speed,
/// not a feature) are no requirement.
std::string missingCapabilities(const DeviceProfile &device, const DeviceProfile &need);

} // namespace kiln::target

#endif // KILN_TARGET_DEVICEPROFILE_H
