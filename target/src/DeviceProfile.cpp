//===- DeviceProfile.cpp - device profiles: names, built-ins, files, requirements ===//
#include "kiln/target/DeviceProfile.h"

#include "kiln/support/Util.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <sys/stat.h>

namespace kiln::target {

const char *const kSubgroupOpNames[8] = {"basic",   "vote",           "arithmetic", "ballot",
                                         "shuffle", "shuffle_relative", "clustered", "quad"};

const char *const kProfileDtypeNames[7] = {"f32", "f16", "bf16", "i64", "i32", "i8", "i1"};

const std::vector<std::string> &kilnOpNames() {
  // The ops of ir/include/kiln/ir/KilnOps.td (checked against the dialect by tests/unit/passes).
  static const std::vector<std::string> names = {
      "kiln.weight",     "kiln.constant",   "kiln.sym",         "kiln.iota",         "kiln.add",
      "kiln.sub",        "kiln.mul",        "kiln.div",         "kiln.max",          "kiln.min",
      "kiln.pow",        "kiln.compare",    "kiln.select",      "kiln.neg",          "kiln.exp",
      "kiln.log",        "kiln.tanh",       "kiln.erf",         "kiln.cos",          "kiln.sin",
      "kiln.rsqrt",      "kiln.sqrt",       "kiln.abs",         "kiln.sigmoid",      "kiln.silu",
      "kiln.gelu",       "kiln.gelu_tanh",  "kiln.relu",        "kiln.convert",      "kiln.reduce_sum",
      "kiln.reduce_mean", "kiln.reduce_max", "kiln.softmax",    "kiln.matmul",       "kiln.matmul_group",
      "kiln.gather",
      "kiln.reshape",    "kiln.transpose",  "kiln.broadcast_to", "kiln.slice",       "kiln.tail",         "kiln.concat",
      "kiln.rms_norm",   "kiln.layer_norm", "kiln.add_rms_norm", "kiln.add_layer_norm", "kiln.rope",
      "kiln.attention",  "kiln.group",      "kiln.yield"};
  return names;
}

std::string canonicalOpName(const std::string &name) {
  return name.find('.') == std::string::npos ? "kiln." + name : name;
}

bool DeviceProfile::hasCooperativeMatrixShape(const std::string &shape) const {
  const std::vector<std::string> &shapes = cooperativeMatrixShapes;
  return cooperativeMatrix && std::find(shapes.begin(), shapes.end(), shape) != shapes.end();
}

bool DeviceProfile::hasSubgroupOp(const std::string &op) const {
  return std::find(subgroupOps.begin(), subgroupOps.end(), op) != subgroupOps.end();
}

bool DeviceProfile::opUnavailable(const std::string &opName) const {
  return std::any_of(unavailableOps.begin(), unavailableOps.end(), [&](const std::string &u) {
    return canonicalOpName(u) == opName;
  });
}

bool DeviceProfile::dtypeUnavailable(const std::string &dtype) const {
  return std::find(unavailableDtypes.begin(), unavailableDtypes.end(), dtype) != unavailableDtypes.end();
}

bool operator==(const DeviceProfile &a, const DeviceProfile &b) {
  return a.name == b.name && a.apiVersion == b.apiVersion && a.float16 == b.float16 && a.int8 == b.int8 &&
         a.storage16 == b.storage16 && a.storage8 == b.storage8 && a.subgroupSize == b.subgroupSize &&
         a.subgroupOps == b.subgroupOps && a.maxSharedMemory == b.maxSharedMemory &&
         a.maxWorkgroupInvocations == b.maxWorkgroupInvocations && a.maxWorkgroupSize == b.maxWorkgroupSize &&
         a.maxWorkgroupCount == b.maxWorkgroupCount && a.maxStorageBufferRange == b.maxStorageBufferRange &&
         a.maxAllocationSize == b.maxAllocationSize && a.maxPushConstantsSize == b.maxPushConstantsSize &&
         a.cooperativeMatrix == b.cooperativeMatrix && a.cooperativeMatrixShapes == b.cooperativeMatrixShapes &&
         a.cooperativeMatrixTile == b.cooperativeMatrixTile && a.integerDotProduct == b.integerDotProduct &&
         a.integerDotProductAccelerated == b.integerDotProductAccelerated &&
         a.unavailableOps == b.unavailableOps &&
         a.unavailableDtypes == b.unavailableDtypes;
}

namespace {

/// A built-in profile's values, in the order of DeviceProfile's fields.
struct BuiltinProfile {
  const char *name;
  const char *apiVersion;
  bool smallTypes; // float16, int8, storage16 and storage8 alike
  uint32_t subgroupSize;
  std::vector<std::string> subgroupOps;
  uint64_t maxSharedMemory, maxWorkgroupInvocations;
  std::array<uint64_t, 3> maxWorkgroupSize, maxWorkgroupCount;
  uint64_t maxStorageBufferRange, maxAllocationSize, maxPushConstantsSize;
  bool cooperativeMatrix;
  std::vector<std::string> cooperativeMatrixShapes;
  bool integerDotProduct, integerDotProductAccelerated;
};

/// The subgroup-scope shapes VK_KHR_cooperative_matrix reports on NVIDIA Hopper, in its order (an H100 80GB
/// HBM3, driver 580.159.04, listed by tests/unit/spirv's kiln_spirv_replay; bench/RESULTS.md, 2026-12-07).
std::vector<std::string> nvidiaHopperShapes() {
  return {"16x16x16 f16 f16 f16 f16", "16x8x16 f16 f16 f16 f16",   "16x8x8 f16 f16 f16 f16",
          "16x16x16 f16 f16 f32 f32", "16x8x16 f16 f16 f32 f32",   "16x8x8 f16 f16 f32 f32",
          "16x16x32 u8 u8 u32 u32",   "16x16x32 s8 s8 s32 s32",    "16x8x32 u8 u8 u32 u32",
          "16x8x32 s8 s8 s32 s32",    "16x16x16 bf16 bf16 f32 f32"};
}

const std::vector<BuiltinProfile> &builtinProfiles() {
  static const std::vector<BuiltinProfile> profiles = {
      // devices.md: llvmpipe (LLVM 15.0.6, 256 bits), Mesa 22.3.6.
      {"lavapipe", "1.3.230", true, 8, {"basic", "vote", "arithmetic", "ballot", "shuffle", "shuffle_relative", "quad"},
       32768, 1024, {1024, 1024, 1024}, {65535, 65535, 65535}, 128ull << 20, 2ull << 30, 128, false, {},
       // shaderIntegerDotProduct yes, but no form accelerated (emulated on the CPU's SIMD).
       true, false},
      // devices.md: driver 580.159.04. maxStorageBufferRange "4 GiB" is a uint32 limit (2^32 - 1);
      // maxMemoryAllocationSize is not in devices.md: taken as the same 4 GiB - 1. Integer dot product: Hopper's
      // dp4a, reported accelerated (llama.cpp's quantized GEMV relies on it there).
      {"nvidia-h200", "1.4.312", true, 32,
       {"basic", "vote", "arithmetic", "ballot", "shuffle", "shuffle_relative", "clustered", "quad"}, 49152, 1024,
       {1024, 1024, 64}, {2147483647u, 65535, 65535}, 0xffffffffull, 0xffffffffull, 256, true,
       nvidiaHopperShapes(), true, true},
      // Conservative: what any Vulkan 1.1 compute device offers (the spec's minimum limits, rounded up where
      // every real device is larger): no fp16 / int8 arithmetic, no 8/16-bit storage, basic subgroup ops only.
      {"generic", "1.1.0", false, 32, {"basic"}, 16384, 256, {256, 256, 64}, {65535, 65535, 65535}, 128ull << 20,
       256ull << 20, 128, false, {}, false, false},
  };
  return profiles;
}

} // namespace

std::vector<std::string> builtinDeviceProfileNames() {
  std::vector<std::string> names;
  for (const BuiltinProfile &b : builtinProfiles())
    names.push_back(b.name);
  return names;
}

std::optional<DeviceProfile> builtinDeviceProfile(const std::string &name) {
  for (const BuiltinProfile &b : builtinProfiles()) {
    if (name != b.name)
      continue;
    DeviceProfile p;
    p.name = b.name;
    p.apiVersion = b.apiVersion;
    p.float16 = p.int8 = p.storage16 = p.storage8 = b.smallTypes;
    p.subgroupSize = b.subgroupSize;
    p.subgroupOps = b.subgroupOps;
    p.maxSharedMemory = b.maxSharedMemory;
    p.maxWorkgroupInvocations = b.maxWorkgroupInvocations;
    p.maxWorkgroupSize = b.maxWorkgroupSize;
    p.maxWorkgroupCount = b.maxWorkgroupCount;
    p.maxStorageBufferRange = b.maxStorageBufferRange;
    p.maxAllocationSize = b.maxAllocationSize;
    p.maxPushConstantsSize = b.maxPushConstantsSize;
    p.cooperativeMatrix = b.cooperativeMatrix;
    p.cooperativeMatrixShapes = b.cooperativeMatrixShapes;
    p.integerDotProduct = b.integerDotProduct;
    p.integerDotProductAccelerated = b.integerDotProductAccelerated;
    return p;
  }
  return std::nullopt;
}

StatusOr<DeviceProfile> loadDeviceProfile(const std::string &nameOrFile) {
  if (std::optional<DeviceProfile> p = builtinDeviceProfile(nameOrFile))
    return *p;
  // stat before opening: opening a FIFO blocks, and /dev/zero or a directory never ends as JSON.
  struct stat st;
  if (::stat(nameOrFile.c_str(), &st) != 0) {
    if (errno != ENOENT)
      return Status::error(nameOrFile + ": " + std::strerror(errno));
    std::string names;
    for (const std::string &n : builtinDeviceProfileNames())
      names += (names.empty() ? "" : ", ") + n;
    return Status::error(nameOrFile + ": no such device profile file (built-in profiles: " + names + ")");
  }
  if (!S_ISREG(st.st_mode))
    return Status::error(nameOrFile + ": not a regular file (a device profile is a JSON file)");
  std::string text;
  if (Status s = support::readFile(nameOrFile, text, kMaxProfileFileBytes); !s)
    return s;
  return parseDeviceProfile(text, nameOrFile);
}

std::string missingCapabilities(const DeviceProfile &d, const DeviceProfile &need) {
  std::vector<std::string> miss;
  auto flag = [&](bool want, bool have, const char *what) {
    if (want && !have)
      miss.push_back(what);
  };
  flag(need.float16, d.float16, "no shaderFloat16 (float16)");
  flag(need.int8, d.int8, "no shaderInt8 (int8)");
  flag(need.storage16, d.storage16, "no 16-bit storage (storage16)");
  flag(need.storage8, d.storage8, "no 8-bit storage (storage8)");
  flag(need.cooperativeMatrix, d.cooperativeMatrix, "no VK_KHR_cooperative_matrix (cooperative_matrix)");
  flag(need.integerDotProduct, d.integerDotProduct, "no shaderIntegerDotProduct (integer_dot_product)");
  // No shape check: the runtime does not read the device's shapes yet (`kiln devices` writes none), so a
  // profile's shapes are what the compiler was told, not something the device can be held to here.
  // No subgroup-size check: the generated kernels are written for any subgroup size (a profile's size
  // describes the device it was read from, not a requirement of the kernels compiled for it).
  for (const std::string &op : need.subgroupOps)
    if (!d.hasSubgroupOp(op))
      miss.push_back("no subgroup op " + op);
  auto limit = [&](const std::string &key, uint64_t have, uint64_t want) {
    if (want > have)
      miss.push_back(key + " " + std::to_string(have) + " < " + std::to_string(want));
  };
  limit("max_shared_memory", d.maxSharedMemory, need.maxSharedMemory);
  limit("max_workgroup_invocations", d.maxWorkgroupInvocations, need.maxWorkgroupInvocations);
  static const char *axis[3] = {"x", "y", "z"};
  for (int k = 0; k < 3; ++k) {
    limit(std::string("max_workgroup_size.") + axis[k], d.maxWorkgroupSize[k], need.maxWorkgroupSize[k]);
    limit(std::string("max_workgroup_count.") + axis[k], d.maxWorkgroupCount[k], need.maxWorkgroupCount[k]);
  }
  limit("max_storage_buffer_range", d.maxStorageBufferRange, need.maxStorageBufferRange);
  limit("max_allocation_size", d.maxAllocationSize, need.maxAllocationSize);
  limit("max_push_constants_size", d.maxPushConstantsSize, need.maxPushConstantsSize);
  std::string out;
  for (const std::string &m : miss)
    out += (out.empty() ? "" : ", ") + m;
  return out;
}

} // namespace kiln::target
