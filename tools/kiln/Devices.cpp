//===- Devices.cpp - `kiln devices`: the Vulkan devices and their profiles ----===//
//
//   kiln devices [--json] [--device N|NAME]
// Text: per device its index, name, type, API version, driver and capability profile. --json: the profile
// object (target::writeDeviceProfile, the schema in target/include/kiln/target/DeviceProfile.h, what
// `kiln compile --device-profile FILE` reads) of the one device (or of --device N|NAME); a JSON array of them
// when several devices are present.
// Exit 1 with a one-line message when there is no device.
//
//===----------------------------------------------------------------------===//
#include "Cli.h"
#include "Subcommands.h"

#include "kiln/vulkan/Devices.h"

#include <algorithm>
#include <cctype>

namespace kiln::cli {
namespace {

/// The profile's JSON object without the trailing newline (an element of the array, or the whole output).
std::string profileJson(const vulkan::DeviceInfo &d) {
  std::string text = target::writeDeviceProfile(d.profile);
  if (!text.empty() && text.back() == '\n')
    text.pop_back();
  return text;
}

void printDevice(const vulkan::DeviceInfo &d) {
  const target::DeviceProfile &p = d.profile;
  std::string ops;
  for (const auto &o : p.subgroupOps)
    ops += (ops.empty() ? "" : ", ") + o;
  std::printf("device %u: %s\n", d.index, p.name.c_str());
  std::printf("  type %s, Vulkan %s, %s\n", d.deviceType.c_str(), p.apiVersion.c_str(), d.driver.c_str());
  std::printf("  shaderFloat16 %s, shaderInt8 %s, 16-bit storage %s, 8-bit storage %s\n", p.float16 ? "yes" : "no",
              p.int8 ? "yes" : "no", p.storage16 ? "yes" : "no", p.storage8 ? "yes" : "no");
  std::printf("  subgroupSize %u (%u..%u), operations: %s\n", p.subgroupSize, d.subgroupSizeMin, d.subgroupSizeMax,
              ops.c_str());
  std::printf("  maxComputeSharedMemorySize %llu, maxComputeWorkGroupInvocations %llu\n",
              (unsigned long long)p.maxSharedMemory, (unsigned long long)p.maxWorkgroupInvocations);
  std::printf("  maxComputeWorkGroupSize %llu,%llu,%llu, maxComputeWorkGroupCount %llu,%llu,%llu\n",
              (unsigned long long)p.maxWorkgroupSize[0], (unsigned long long)p.maxWorkgroupSize[1],
              (unsigned long long)p.maxWorkgroupSize[2], (unsigned long long)p.maxWorkgroupCount[0],
              (unsigned long long)p.maxWorkgroupCount[1], (unsigned long long)p.maxWorkgroupCount[2]);
  std::printf("  maxStorageBufferRange %llu, maxMemoryAllocationSize %llu, maxPushConstantsSize %llu\n",
              (unsigned long long)p.maxStorageBufferRange, (unsigned long long)p.maxAllocationSize,
              (unsigned long long)p.maxPushConstantsSize);
  std::printf("  VK_KHR_cooperative_matrix: %s\n", p.cooperativeMatrix ? "yes" : "no");
  std::printf("  integer dot product: %s\n", !p.integerDotProduct            ? "no"
                                             : p.integerDotProductAccelerated ? "yes, 4x8-bit packed accelerated"
                                                                              : "yes, not accelerated");
}

} // namespace

int runDevices(int argc, char **argv) {
  std::optional<Args> parsed;
  if (std::optional<int> done = parseArgs(argc, argv, "devices", parsed))
    return *done;
  const Args &args = *parsed;
  if (!args.positional().empty())
    return fail(kExitUsage, "devices takes no positional arguments (usage: kiln devices [--json] [--device N|NAME])");
  std::vector<vulkan::DeviceInfo> devices;
  std::string error;
  if (!vulkan::listDevices(devices, error))
    return fail(kExitBadInput, error);
  if (auto sel = args.get("--device")) {
    bool digits = !sel->empty() && std::all_of(sel->begin(), sel->end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    std::vector<vulkan::DeviceInfo> chosen;
    for (const auto &d : devices) {
      std::string a = d.profile.name, b = *sel;
      std::transform(a.begin(), a.end(), a.begin(), ::tolower);
      std::transform(b.begin(), b.end(), b.begin(), ::tolower);
      if (digits ? std::to_string(d.index) == *sel : a.find(b) != std::string::npos)
        chosen.push_back(d);
    }
    if (chosen.empty())
      return fail(kExitBadInput, "--device " + *sel + " matches no Vulkan device");
    if (args.has("--json")) {
      std::printf("%s\n", profileJson(chosen.front()).c_str());
      return kExitOk;
    }
    devices = chosen;
  }
  if (args.has("--json") && devices.size() == 1) { // the usual case: directly a --device-profile FILE
    std::printf("%s\n", profileJson(devices.front()).c_str());
    return kExitOk;
  }
  if (args.has("--json")) {
    std::printf("[\n");
    for (size_t i = 0; i < devices.size(); ++i)
      std::printf("%s%s\n", profileJson(devices[i]).c_str(), i + 1 < devices.size() ? "," : "");
    std::printf("]\n");
    return kExitOk;
  }
  for (const auto &d : devices)
    printDevice(d);
  return kExitOk;
}

} // namespace kiln::cli
