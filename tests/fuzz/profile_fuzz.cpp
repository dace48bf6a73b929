// libFuzzer target: device profile JSON (kiln compile --device-profile FILE, Manifest.device_profile_json).
// It must parse or fail with one line naming the source; what parses must write back to text that parses to
// the same profile and is written the same (the writer is canonical).
#include "kiln/target/DeviceProfile.h"

#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  kiln::StatusOr<kiln::target::DeviceProfile> p = kiln::target::parseDeviceProfile(text, "profile.json");
  if (!p.ok()) {
    const std::string &m = p.status().message();
    if (m.find('\n') != std::string::npos || m.rfind("profile.json: ", 0) != 0)
      std::abort();
    return 0;
  }
  if (p->name.empty() || p->subgroupSize == 0 || p->maxWorkgroupInvocations == 0)
    std::abort();
  std::string written = kiln::target::writeDeviceProfile(*p);
  kiln::StatusOr<kiln::target::DeviceProfile> again = kiln::target::parseDeviceProfile(written, "again.json");
  if (!again.ok() || !(*again == *p) || kiln::target::writeDeviceProfile(*again) != written)
    std::abort();
  // The device satisfies itself.
  if (!kiln::target::missingCapabilities(*p, *p).empty())
    std::abort();
  return 0;
}
