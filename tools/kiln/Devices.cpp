//===- Devices.cpp - `kiln devices`: the Vulkan devices and their profiles ----===//
//
//   kiln devices [--json] [--device N|NAME]
// Text: per device its index, name, type, API version, driver and capability profile. --json: the profile
// object (the schema of runtime/src/vulkan/DeviceProfileJson.h, what `kiln compile --device-profile FILE`
// reads) of the one device (or of --device N|NAME); a JSON array of them when several devices are present.
// Exit 1 with a one-line message when there is no device.
//
//===----------------------------------------------------------------------===//
#include "Cli.h"
#include "Subcommands.h"

#include "kiln/vulkan/DeviceProfile.h"

#include <algorithm>
#include <cctype>

namespace kiln::cli {

int runDevices(int argc, char **argv) {
  Args args(argc, argv, 2, {"--device"}, {"--json", "--help", "-h"});
  if (!args.ok())
    return fail(kExitUsage, args.error() + " (usage: kiln devices [--json] [--device N|NAME])");
  if (args.has("--help") || args.has("-h")) {
    std::printf("usage: kiln devices [--json] [--device N|NAME]\n"
                "  the Vulkan devices and their capability profiles (--json: the profiles as JSON,\n"
                "  readable by kiln compile --device-profile FILE)\n");
    return kExitOk;
  }
  if (!args.positional().empty())
    return fail(kExitUsage, "devices takes no positional arguments (usage: kiln devices [--json] [--device N|NAME])");
  std::vector<vulkan::DeviceProfile> devices;
  std::string error;
  if (!vulkan::listDevices(devices, error))
    return fail(kExitBadInput, error);
  if (auto sel = args.get("--device")) {
    bool digits = !sel->empty() && std::all_of(sel->begin(), sel->end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    std::vector<vulkan::DeviceProfile> chosen;
    for (const auto &d : devices) {
      std::string a = d.name, b = *sel;
      std::transform(a.begin(), a.end(), a.begin(), ::tolower);
      std::transform(b.begin(), b.end(), b.begin(), ::tolower);
      if (digits ? std::to_string(d.index) == *sel : a.find(b) != std::string::npos)
        chosen.push_back(d);
    }
    if (chosen.empty())
      return fail(kExitBadInput, "--device " + *sel + " matches no Vulkan device");
    if (args.has("--json")) {
      std::printf("%s\n", vulkan::profileToJson(chosen.front()).c_str());
      return kExitOk;
    }
    devices = chosen;
  }
  if (args.has("--json") && devices.size() == 1) { // the usual case: directly a --device-profile FILE
    std::printf("%s\n", vulkan::profileToJson(devices.front()).c_str());
    return kExitOk;
  }
  if (args.has("--json")) {
    std::printf("[\n");
    for (size_t i = 0; i < devices.size(); ++i)
      std::printf("%s%s\n", vulkan::profileToJson(devices[i]).c_str(), i + 1 < devices.size() ? "," : "");
    std::printf("]\n");
    return kExitOk;
  }
  for (const auto &d : devices) {
    std::string ops;
    for (const auto &o : d.subgroupOps)
      ops += (ops.empty() ? "" : ", ") + o;
    std::printf("device %u: %s\n", d.index, d.name.c_str());
    std::printf("  type %s, Vulkan %s, %s\n", d.deviceType.c_str(), d.apiVersion.c_str(), d.driver.c_str());
    std::printf("  shaderFloat16 %s, shaderInt8 %s, 16-bit storage %s, 8-bit storage %s\n", d.float16 ? "yes" : "no",
                d.int8 ? "yes" : "no", d.storage16 ? "yes" : "no", d.storage8 ? "yes" : "no");
    std::printf("  subgroupSize %u (%u..%u), operations: %s\n", d.subgroupSize, d.subgroupSizeMin, d.subgroupSizeMax,
                ops.c_str());
    std::printf("  maxComputeSharedMemorySize %llu, maxComputeWorkGroupInvocations %llu\n",
                (unsigned long long)d.maxSharedMemory, (unsigned long long)d.maxWorkgroupInvocations);
    std::printf("  maxComputeWorkGroupSize %llu,%llu,%llu, maxComputeWorkGroupCount %llu,%llu,%llu\n",
                (unsigned long long)d.maxWorkgroupSize[0], (unsigned long long)d.maxWorkgroupSize[1],
                (unsigned long long)d.maxWorkgroupSize[2], (unsigned long long)d.maxWorkgroupCount[0],
                (unsigned long long)d.maxWorkgroupCount[1], (unsigned long long)d.maxWorkgroupCount[2]);
    std::printf("  maxStorageBufferRange %llu, maxMemoryAllocationSize %llu, maxPushConstantsSize %llu\n",
                (unsigned long long)d.maxStorageBufferRange, (unsigned long long)d.maxAllocationSize,
                (unsigned long long)d.maxPushConstantsSize);
    std::printf("  VK_KHR_cooperative_matrix: %s\n", d.cooperativeMatrix ? "yes" : "no");
  }
  return kExitOk;
}

} // namespace kiln::cli
