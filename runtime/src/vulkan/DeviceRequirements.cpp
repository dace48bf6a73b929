//===- DeviceRequirements.cpp - which device an artifact needs ---------------===//
//
// The one place where the Vulkan executor reads device profiles (kiln/target/DeviceProfile.h): the
// artifact's profile (Manifest.device_profile_json) gives the features its kernels were generated for; the
// limits are what the plan actually reaches (a profile's limits describe the device it was read from, not a
// requirement: a device with a smaller limit the artifact never reaches still runs it).
//
//===----------------------------------------------------------------------===//
#include "VulkanProgram.h"

#include <algorithm>
#include <cstring>

namespace kiln::vulkan {
namespace {

/// Whether SPIR-V module `spirv` declares OpCapability `capability` (the capabilities come first, after the
/// 5-word header). A module too short or malformed to tell declares nothing (pipeline creation rejects it).
bool declaresCapability(const std::string &spirv, uint32_t capability) {
  constexpr uint32_t kOpCapability = 17;
  const size_t words = spirv.size() / 4;
  for (size_t at = 5; at + 1 < words;) {
    uint32_t inst[2];
    std::memcpy(inst, spirv.data() + 4 * at, sizeof inst);
    if ((inst[0] & 0xffffu) != kOpCapability)
      return false;
    if (inst[1] == capability)
      return true;
    at += std::max<uint32_t>(inst[0] >> 16, 1);
  }
  return false;
}

/// SPIR-V's DotProduct capability (SPV_KHR_integer_dot_product; codegen/spirv's quantized GEMV with
/// SpirvTarget::integerDotProduct): the device needs shaderIntegerDotProduct.
constexpr uint32_t kCapabilityDotProduct = 6019;

} // namespace

// The profile's features plus the limits the plan's Vulkan kernels and DEVICE buffers reach at the symbols'
// max values, and integer dot product where a kernel it runs declares it (the compiler uses it only where the
// profile has it accelerated: the profile's flag alone would make an f16 plan for the H200 refuse a device
// without it).
target::DeviceProfile deviceRequirements(const LoadedPlan &plan, const target::DeviceProfile *profile) {
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
  const int device = int(std::find(plan.executors.begin(), plan.executors.end(), plan.deviceExecutor()) -
                         plan.executors.begin());
  std::vector<bool> used(plan.kernels.size(), false);
  for (const runtime::PlanDispatch &d : plan.dispatches)
    if (d.executor == device && !d.transfer) {
      used[size_t(d.kernel)] = true;
      if (d.smallRowsKernel >= 0)
        used[size_t(d.smallRowsKernel)] = true;
    }
  for (size_t k = 0; k < plan.kernels.size(); ++k) {
    if (!used[k])
      continue;
    const runtime::PlanKernel &kn = plan.kernels[k];
    if (kn.spirv && declaresCapability(*kn.spirv, kCapabilityDotProduct))
      need.integerDotProduct = true;
    need.maxSharedMemory = std::max<uint64_t>(need.maxSharedMemory, kn.sharedMemoryBytes);
    uint64_t invocations = 1;
    for (int a = 0; a < 3; ++a) {
      const uint64_t wg = kn.workgroupSize[a];
      invocations *= wg;
      need.maxWorkgroupSize[a] = std::max(need.maxWorkgroupSize[a], wg);
      const int64_t v = kn.globalSize[a].eval(plan.symbolMax.data());
      if (v > 0)
        need.maxWorkgroupCount[a] = std::max(need.maxWorkgroupCount[a], (static_cast<uint64_t>(v) + wg - 1) / wg);
    }
    need.maxWorkgroupInvocations = std::max(need.maxWorkgroupInvocations, invocations);
  }
  for (const runtime::PlanBuffer &b : plan.buffers)
    if (b.device) {
      need.maxStorageBufferRange = std::max<uint64_t>(need.maxStorageBufferRange, b.maxBytes);
      need.maxAllocationSize = std::max<uint64_t>(need.maxAllocationSize, b.maxBytes + 256);
    }
  need.maxAllocationSize = std::max<uint64_t>(need.maxAllocationSize, plan.deviceArenaBytes + 256);
  need.maxPushConstantsSize = 4 * static_cast<uint64_t>(plan.symbols.size());
  return need;
}

bool openDevice(const LoadedPlan &plan, std::unique_ptr<VulkanDevice> &device, DeviceLimits &limits,
                std::string &error) {
  target::DeviceProfile profile;
  const bool haveProfile = !plan.deviceProfileJson.empty();
  if (haveProfile) {
    StatusOr<target::DeviceProfile> parsed =
        target::parseDeviceProfile(plan.deviceProfileJson, "the artifact's device_profile_json");
    if (!parsed.ok()) {
      error = parsed.status().message();
      return false;
    }
    profile = *parsed;
  }
  const target::DeviceProfile need = deviceRequirements(plan, haveProfile ? &profile : nullptr);
  device = VulkanDevice::open(&need, profile.name, error);
  if (!device)
    return false;
  limits.name = device->profile.name;
  limits.maxStorageBufferRange = device->profile.maxStorageBufferRange;
  limits.maxAllocationSize = device->profile.maxAllocationSize;
  return true;
}

} // namespace kiln::vulkan
