//===- DeviceProfile.cpp - Vulkan capability profiles ---------------------===//
#include "kiln/passes/DeviceProfile.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace kiln::passes {

const char *const kSubgroupOpNames[8] = {"basic",   "vote",           "arithmetic", "ballot",
                                         "shuffle", "shuffle_relative", "clustered", "quad"};

namespace {
std::string canonicalOp(const std::string &name) {
  return name.find('.') == std::string::npos ? "kiln." + name : name;
}
} // namespace

bool VulkanProfile::hasSubgroupOp(const std::string &op) const {
  return std::find(subgroupOps.begin(), subgroupOps.end(), op) != subgroupOps.end();
}

bool VulkanProfile::opUnavailable(const std::string &opName) const {
  for (const std::string &u : unavailableOps)
    if (canonicalOp(u) == opName)
      return true;
  return false;
}

bool VulkanProfile::dtypeUnavailable(const std::string &dtype) const {
  return std::find(unavailableDtypes.begin(), unavailableDtypes.end(), dtype) != unavailableDtypes.end();
}

bool operator==(const VulkanProfile &a, const VulkanProfile &b) {
  return a.name == b.name && a.apiVersion == b.apiVersion && a.float16 == b.float16 && a.int8 == b.int8 &&
         a.storage16 == b.storage16 && a.storage8 == b.storage8 && a.subgroupSize == b.subgroupSize &&
         a.subgroupOps == b.subgroupOps && a.maxSharedMemory == b.maxSharedMemory &&
         a.maxWorkgroupInvocations == b.maxWorkgroupInvocations && a.maxWorkgroupSize == b.maxWorkgroupSize &&
         a.maxWorkgroupCount == b.maxWorkgroupCount && a.maxStorageBufferRange == b.maxStorageBufferRange &&
         a.maxAllocationSize == b.maxAllocationSize && a.maxPushConstantsSize == b.maxPushConstantsSize &&
         a.cooperativeMatrix == b.cooperativeMatrix && a.unavailableOps == b.unavailableOps &&
         a.unavailableDtypes == b.unavailableDtypes;
}

StatusOr<VulkanProfile> parseVulkanProfile(const std::string &jsonText, const std::string &source) {
  nlohmann::json j = nlohmann::json::parse(jsonText, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return Status::error(source + ": not valid JSON");
  if (!j.is_object())
    return Status::error(source + ": a device profile is a JSON object");
  static const std::set<std::string> known = {
      "name", "api_version", "float16", "int8", "storage16", "storage8", "subgroup_size", "subgroup_ops",
      "max_shared_memory", "max_workgroup_invocations", "max_workgroup_size", "max_workgroup_count",
      "max_storage_buffer_range", "max_allocation_size", "max_push_constants_size", "cooperative_matrix",
      "unavailable_ops", "unavailable_dtypes"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key()))
      return Status::error(source + ": unknown key '" + it.key() + "' in the device profile");
  VulkanProfile p;
  std::string error;
  auto bad = [&](const std::string &key, const std::string &what) {
    if (error.empty())
      error = source + ": key '" + key + "': " + what;
  };
  auto need = [&](const std::string &key) -> const nlohmann::json * {
    auto it = j.find(key);
    if (it == j.end()) {
      bad(key, "missing");
      return nullptr;
    }
    return &*it;
  };
  auto getBool = [&](const std::string &key, bool *out) {
    if (const nlohmann::json *v = need(key)) {
      if (!v->is_boolean())
        return bad(key, "expected true or false");
      *out = v->get<bool>();
    }
  };
  auto getUint = [&](const std::string &key, uint64_t max, uint64_t *out) {
    if (const nlohmann::json *v = need(key)) {
      if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<int64_t>() >= 0))
        return bad(key, "expected a non-negative integer");
      uint64_t x = v->get<uint64_t>();
      if (x > max)
        return bad(key, std::to_string(x) + " is out of range");
      *out = x;
    }
  };
  auto getU32 = [&](const std::string &key, uint32_t *out) {
    uint64_t x = *out;
    getUint(key, 0xffffffffull, &x);
    *out = uint32_t(x);
  };
  auto getTriple = [&](const std::string &key, std::array<uint32_t, 3> *out) {
    if (const nlohmann::json *v = need(key)) {
      if (!v->is_array() || v->size() != 3)
        return bad(key, "expected [x, y, z]");
      for (size_t i = 0; i < 3; ++i) {
        const nlohmann::json &e = (*v)[i];
        if (!e.is_number_unsigned() || e.get<uint64_t>() > 0xffffffffull)
          return bad(key, "expected [x, y, z] of non-negative 32-bit integers");
        (*out)[i] = uint32_t(e.get<uint64_t>());
      }
    }
  };
  auto getStrings = [&](const std::string &key, bool required, std::vector<std::string> *out) {
    auto it = j.find(key);
    if (it == j.end()) {
      if (required)
        bad(key, "missing");
      return;
    }
    if (!it->is_array())
      return bad(key, "expected an array of strings");
    for (const nlohmann::json &e : *it) {
      if (!e.is_string())
        return bad(key, "expected an array of strings");
      out->push_back(e.get<std::string>());
    }
  };
  if (const nlohmann::json *v = need("name")) {
    if (!v->is_string() || v->get<std::string>().empty())
      bad("name", "expected a non-empty string");
    else
      p.name = v->get<std::string>();
  }
  if (const nlohmann::json *v = need("api_version")) {
    if (v->is_string()) {
      p.apiVersion = v->get<std::string>();
      unsigned a, b, c;
      char tail;
      if (std::sscanf(p.apiVersion.c_str(), "%u.%u.%u%c", &a, &b, &c, &tail) != 3)
        bad("api_version", "expected \"major.minor.patch\", got '" + p.apiVersion + "'");
    } else if (v->is_number_unsigned()) { // VK_MAKE_API_VERSION packed
      uint64_t x = v->get<uint64_t>();
      p.apiVersion = std::to_string((x >> 22) & 0x7f) + "." + std::to_string((x >> 12) & 0x3ff) + "." +
                     std::to_string(x & 0xfff);
    } else {
      bad("api_version", "expected \"major.minor.patch\"");
    }
  }
  getBool("float16", &p.float16);
  getBool("int8", &p.int8);
  getBool("storage16", &p.storage16);
  getBool("storage8", &p.storage8);
  getU32("subgroup_size", &p.subgroupSize);
  getStrings("subgroup_ops", true, &p.subgroupOps);
  for (const std::string &op : p.subgroupOps)
    if (std::find_if(std::begin(kSubgroupOpNames), std::end(kSubgroupOpNames),
                     [&](const char *n) { return op == n; }) == std::end(kSubgroupOpNames))
      bad("subgroup_ops", "unknown subgroup operation '" + op +
                              "' (basic vote arithmetic ballot shuffle shuffle_relative clustered quad)");
  getU32("max_shared_memory", &p.maxSharedMemory);
  getU32("max_workgroup_invocations", &p.maxWorkgroupInvocations);
  getTriple("max_workgroup_size", &p.maxWorkgroupSize);
  getTriple("max_workgroup_count", &p.maxWorkgroupCount);
  getUint("max_storage_buffer_range", ~0ull, &p.maxStorageBufferRange);
  getUint("max_allocation_size", ~0ull, &p.maxAllocationSize);
  getU32("max_push_constants_size", &p.maxPushConstantsSize);
  getBool("cooperative_matrix", &p.cooperativeMatrix);
  getStrings("unavailable_ops", false, &p.unavailableOps);
  getStrings("unavailable_dtypes", false, &p.unavailableDtypes);
  static const std::set<std::string> dtypes = {"f32", "f16", "bf16", "i64", "i32", "i8", "i1"};
  for (const std::string &d : p.unavailableDtypes)
    if (!dtypes.count(d))
      bad("unavailable_dtypes", "unknown dtype '" + d + "' (f32 f16 bf16 i64 i32 i8 i1)");
  for (const std::string &o : p.unavailableOps)
    if (o.empty())
      bad("unavailable_ops", "an empty op name");
  if (error.empty() && p.subgroupSize == 0)
    bad("subgroup_size", "must be positive");
  if (error.empty() && p.maxWorkgroupInvocations == 0)
    bad("max_workgroup_invocations", "must be positive");
  if (!error.empty())
    return Status::error(error);
  return p;
}

std::string writeVulkanProfile(const VulkanProfile &p) {
  nlohmann::ordered_json j;
  j["name"] = p.name;
  j["api_version"] = p.apiVersion;
  j["float16"] = p.float16;
  j["int8"] = p.int8;
  j["storage16"] = p.storage16;
  j["storage8"] = p.storage8;
  j["subgroup_size"] = p.subgroupSize;
  j["subgroup_ops"] = p.subgroupOps;
  j["max_shared_memory"] = p.maxSharedMemory;
  j["max_workgroup_invocations"] = p.maxWorkgroupInvocations;
  j["max_workgroup_size"] = p.maxWorkgroupSize;
  j["max_workgroup_count"] = p.maxWorkgroupCount;
  j["max_storage_buffer_range"] = p.maxStorageBufferRange;
  j["max_allocation_size"] = p.maxAllocationSize;
  j["max_push_constants_size"] = p.maxPushConstantsSize;
  j["cooperative_matrix"] = p.cooperativeMatrix;
  j["unavailable_ops"] = p.unavailableOps;
  j["unavailable_dtypes"] = p.unavailableDtypes;
  return j.dump(2) + "\n";
}

std::vector<std::string> builtinVulkanProfileNames() { return {"lavapipe", "nvidia-h200", "generic"}; }

std::optional<VulkanProfile> builtinVulkanProfile(const std::string &name) {
  VulkanProfile p;
  p.name = name;
  if (name == "lavapipe") {
    // devices.md: llvmpipe (LLVM 15.0.6, 256 bits), Mesa 22.3.6.
    p.apiVersion = "1.3.230";
    p.float16 = p.int8 = p.storage16 = p.storage8 = true;
    p.subgroupSize = 8;
    p.subgroupOps = {"basic", "vote", "arithmetic", "ballot", "shuffle", "shuffle_relative", "quad"};
    p.maxSharedMemory = 32768;
    p.maxWorkgroupInvocations = 1024;
    p.maxWorkgroupSize = {1024, 1024, 1024};
    p.maxWorkgroupCount = {65535, 65535, 65535};
    p.maxStorageBufferRange = 128ull << 20;
    p.maxAllocationSize = 2ull << 30;
    p.maxPushConstantsSize = 128;
    p.cooperativeMatrix = false;
    return p;
  }
  if (name == "nvidia-h200") {
    // devices.md: driver 580.159.04. maxStorageBufferRange "4 GiB" is a uint32 limit (2^32 - 1);
    // maxMemoryAllocationSize is not in devices.md: taken as the same 4 GiB - 1.
    p.apiVersion = "1.4.312";
    p.float16 = p.int8 = p.storage16 = p.storage8 = true;
    p.subgroupSize = 32;
    p.subgroupOps = {"basic", "vote", "arithmetic", "ballot", "shuffle", "shuffle_relative", "clustered", "quad"};
    p.maxSharedMemory = 49152;
    p.maxWorkgroupInvocations = 1024;
    p.maxWorkgroupSize = {1024, 1024, 64};
    p.maxWorkgroupCount = {2147483647u, 65535, 65535};
    p.maxStorageBufferRange = 0xffffffffull;
    p.maxAllocationSize = 0xffffffffull;
    p.maxPushConstantsSize = 256;
    p.cooperativeMatrix = true;
    return p;
  }
  if (name == "generic") {
    // Conservative: what any Vulkan 1.1 compute device offers (the spec's minimum limits, rounded up where
    // every real device is larger): no fp16 / int8 arithmetic, no 8/16-bit storage, basic subgroup ops only.
    p.apiVersion = "1.1.0";
    p.subgroupSize = 32;
    p.subgroupOps = {"basic"};
    p.maxSharedMemory = 16384;
    p.maxWorkgroupInvocations = 256;
    p.maxWorkgroupSize = {256, 256, 64};
    p.maxWorkgroupCount = {65535, 65535, 65535};
    p.maxStorageBufferRange = 128ull << 20;
    p.maxAllocationSize = 256ull << 20;
    p.maxPushConstantsSize = 128;
    return p;
  }
  return std::nullopt;
}

StatusOr<VulkanProfile> loadVulkanProfile(const std::string &nameOrFile) {
  if (std::optional<VulkanProfile> p = builtinVulkanProfile(nameOrFile))
    return *p;
  std::ifstream in(nameOrFile, std::ios::binary);
  if (!in) {
    std::string names;
    for (const std::string &n : builtinVulkanProfileNames())
      names += (names.empty() ? "" : ", ") + n;
    return Status::error(nameOrFile + ": no such device profile file (built-in profiles: " + names + ")");
  }
  std::stringstream text;
  text << in.rdbuf();
  return parseVulkanProfile(text.str(), nameOrFile);
}

} // namespace kiln::passes
