// libFuzzer target: chat templates. The input is a template, optionally followed by "\n@@\n" and a JSON
// messages list (a fixed multi-turn conversation otherwise). Parsing and rendering must succeed or fail with
// a message naming the template; never crash, hang or grow without bound (small limits keep runs fast).
#include "kiln/template/ChatTemplate.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

const char *kConversation = R"([
  {"role": "system", "content": "  Be brief. "},
  {"role": "user", "content": "Hi <|eot_id|> {{ x }} \u00e9\u3000"},
  {"role": "assistant", "content": "<think>\nplan\n</think>\n\nHello!",
   "tool_calls": [{"function": {"name": "f", "arguments": {"a": [1, 2.5, null]}}}]},
  {"role": "user", "content": [{"type": "text", "text": "part"}, {"type": "image"}]}
])";

void checkError(const kiln::Status &s) {
  if (s.message().rfind("chat_template", 0) != 0)
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view input(reinterpret_cast<const char *>(data), size);
  std::string_view text = input, messagesJson = kConversation;
  if (size_t sep = input.find("\n@@\n"); sep != std::string_view::npos) {
    text = input.substr(0, sep);
    messagesJson = input.substr(sep + 4);
  }
  auto tmpl = kiln::ChatTemplate::parse(text);
  if (!tmpl.ok()) {
    checkError(tmpl.status());
    return 0;
  }
  auto messages = kiln::TemplateValue::fromJson(messagesJson, "messages");
  if (!messages.ok())
    return 0;
  kiln::ChatTemplateOptions options;
  options.addGenerationPrompt = size % 2 == 0;
  options.variables = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};
  options.now = 1751371200;
  options.limits.maxSteps = 200000;
  options.limits.maxOutputBytes = 1 << 20;
  auto out = tmpl->render(*messages, options);
  if (!out.ok())
    checkError(out.status());
  else if (out->size() > options.limits.maxOutputBytes)
    std::abort();
  return 0;
}
