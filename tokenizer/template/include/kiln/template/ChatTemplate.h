// Chat templates: tokenizer_config.json's `chat_template` rendered exactly as Hugging Face transformers
// renders it (jinja2 with trim_blocks and lstrip_blocks, `messages`, `add_generation_prompt`, the special
// tokens, `raise_exception`, `tojson` without HTML escaping, `strftime_now`), by a small jinja2 engine that
// implements the subset chat templates use. What it does not implement is an error naming the template
// line, never a different rendering. Plain C++17, no exceptions, no LLVM.
#pragma once

#include "kiln/support/Status.h"

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln {

namespace jinja {
struct Program;
}

// A JSON-like value: the messages and any extra variables a template receives.
class TemplateValue {
public:
  enum class Kind { Null, Bool, Int, Float, String, List, Object };
  using Members = std::vector<std::pair<std::string, TemplateValue>>;

  TemplateValue() = default; // null
  TemplateValue(bool b) : kind_(Kind::Bool), bool_(b) {}
  TemplateValue(int i) : kind_(Kind::Int), int_(i) {}
  TemplateValue(int64_t i) : kind_(Kind::Int), int_(i) {}
  TemplateValue(double d) : kind_(Kind::Float), float_(d) {}
  TemplateValue(std::string s) : kind_(Kind::String), string_(std::move(s)) {}
  TemplateValue(const char *s) : kind_(Kind::String), string_(s) {}
  static TemplateValue list(std::vector<TemplateValue> items);
  static TemplateValue object(Members members);
  // Python's json.loads: objects keep their key order (a repeated key keeps the last value). `what`
  // names the input in errors.
  static StatusOr<TemplateValue> fromJson(std::string_view json, std::string_view what);

  Kind kind() const { return kind_; }
  bool asBool() const { return bool_; }
  int64_t asInt() const { return int_; }
  double asFloat() const { return float_; }
  const std::string &asString() const { return string_; }
  const std::vector<TemplateValue> &items() const { return items_; }
  const Members &members() const { return members_; }
  // The member `key` of an object, or null.
  const TemplateValue *find(std::string_view key) const;

private:
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  int64_t int_ = 0;
  double float_ = 0;
  std::string string_;
  std::vector<TemplateValue> items_;
  Members members_;
};

// One chat turn with plain-text content; `messagesValue` makes the `messages` list of such turns.
struct ChatMessage {
  std::string role;
  std::string content;
};
TemplateValue messagesValue(const std::vector<ChatMessage> &messages);

// What bounds one rendering (a template that loops forever or builds huge strings fails instead).
struct ChatTemplateLimits {
  uint64_t maxSteps = 5'000'000;
  size_t maxOutputBytes = 64u << 20;
};

struct ChatTemplateOptions {
  bool addGenerationPrompt = false;
  // Variables as transformers passes them: the special tokens (bos_token, eos_token, ...) and any extra
  // keyword arguments of apply_chat_template (tools, documents, enable_thinking, ...). `messages` and
  // `add_generation_prompt` are set from the render arguments.
  std::vector<std::pair<std::string, TemplateValue>> variables;
  // strftime_now's clock (seconds since the epoch, formatted in local time); default: the current time.
  std::optional<std::time_t> now;
  ChatTemplateLimits limits;
};

class ChatTemplate {
public:
  // Parses a template; syntax errors, unknown tags / filters / tests name the line. `name` prefixes every
  // error message ("chat_template line 3: ...").
  static StatusOr<ChatTemplate> parse(std::string_view text, std::string name = "chat_template");
  // Renders with `messages` (a list of {role, content, ...} objects; content may be a string or a list of
  // {type: "text", text} parts). A raise_exception(msg) in the template is an error ending in
  // "raise_exception: msg".
  StatusOr<std::string> render(const TemplateValue &messages, const ChatTemplateOptions &options) const;

private:
  ChatTemplate() = default; // only parse() makes one
  std::shared_ptr<const jinja::Program> program_;
};

// The chat side of a tokenizer_config.json: its template(s) and the special-token variables transformers
// gives them (bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token,
// additional_special_tokens, and the config's extra_special_tokens).
struct ChatTemplateConfig {
  std::string defaultTemplate;                                  // empty when the config has none
  std::vector<std::pair<std::string, std::string>> namedTemplates; // a list-form chat_template
  std::vector<std::pair<std::string, TemplateValue>> specialTokens;

  static StatusOr<ChatTemplateConfig> fromTokenizerConfig(std::string_view json, std::string_view fileName);
  // The template called `name` ("default" is the plain one), or nullptr.
  const std::string *find(std::string_view name) const;
};

} // namespace kiln
