// libFuzzer target: config.json text. It must parse or fail with a one-line message.
#include "kiln/frontend/ModelConfig.h"

#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view text(reinterpret_cast<const char *>(data), size);
  auto c = kiln::parseModelConfigText(text, "config.json");
  if (!c.ok()) {
    const std::string &m = c.status().message();
    if (m.empty() || m.find('\n') != std::string::npos || m.rfind("config.json: ", 0) != 0)
      std::abort();
    return 0;
  }
  if (c->architecture.empty() || c->layerTypes.size() != size_t(c->numLayers) ||
      c->numHeads % c->numKvHeads != 0 || c->headDim <= 0)
    std::abort();
  bool sliding = false;
  for (const std::string &t : c->layerTypes)
    sliding |= t == "sliding_attention";
  if (sliding != c->slidingWindow.has_value())
    std::abort();
  return 0;
}
