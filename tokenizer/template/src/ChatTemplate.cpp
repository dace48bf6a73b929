#include "kiln/template/ChatTemplate.h"

#include "Interpreter.h"
#include "Parser.h"

#include <nlohmann/json.hpp>

namespace kiln {
namespace {

using OrderedJson = nlohmann::ordered_json;
constexpr int kMaxJsonDepth = 200;

StatusOr<TemplateValue> fromJsonValue(const OrderedJson &j, std::string_view what, int depth) {
  if (depth > kMaxJsonDepth)
    return Status::error(std::string(what) + ": nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  switch (j.type()) {
  case OrderedJson::value_t::null: return TemplateValue();
  case OrderedJson::value_t::boolean: return TemplateValue(j.get<bool>());
  case OrderedJson::value_t::number_integer: return TemplateValue(j.get<int64_t>());
  case OrderedJson::value_t::number_unsigned:
    if (j.get<uint64_t>() > uint64_t(INT64_MAX))
      return Status::error(std::string(what) + ": integer " + j.dump() + " is larger than 64 bits");
    return TemplateValue(int64_t(j.get<uint64_t>()));
  case OrderedJson::value_t::number_float: return TemplateValue(j.get<double>());
  case OrderedJson::value_t::string: return TemplateValue(j.get<std::string>());
  case OrderedJson::value_t::array: {
    std::vector<TemplateValue> items;
    for (const auto &e : j) {
      auto v = fromJsonValue(e, what, depth + 1);
      if (!v.ok())
        return v;
      items.push_back(std::move(*v));
    }
    return TemplateValue::list(std::move(items));
  }
  case OrderedJson::value_t::object: {
    TemplateValue::Members members;
    for (const auto &e : j.items()) {
      auto v = fromJsonValue(e.value(), what, depth + 1);
      if (!v.ok())
        return v;
      members.emplace_back(e.key(), std::move(*v));
    }
    return TemplateValue::object(std::move(members));
  }
  default: return Status::error(std::string(what) + ": unsupported JSON value");
  }
}

StatusOr<jinja::Value> toEngineValue(const TemplateValue &v, int depth) {
  using jinja::Value;
  if (depth > kMaxJsonDepth)
    return Status::error("a template variable nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  switch (v.kind()) {
  case TemplateValue::Kind::Null: return Value::none();
  case TemplateValue::Kind::Bool: return Value::boolean_(v.asBool());
  case TemplateValue::Kind::Int: return Value::int_(v.asInt());
  case TemplateValue::Kind::Float: return Value::float_(v.asFloat());
  case TemplateValue::Kind::String: return Value::string(v.asString());
  case TemplateValue::Kind::List: {
    jinja::ValueList items;
    for (const TemplateValue &e : v.items()) {
      auto x = toEngineValue(e, depth + 1);
      if (!x.ok())
        return x;
      items.push_back(std::move(*x));
    }
    return Value::listOf(std::move(items));
  }
  case TemplateValue::Kind::Object: {
    jinja::DictData d;
    for (const auto &m : v.members()) {
      auto x = toEngineValue(m.second, depth + 1);
      if (!x.ok())
        return x;
      d.set(Value::string(m.first), std::move(*x));
    }
    return Value::dictOf(std::move(d));
  }
  }
  return Value::none();
}

// A special token in tokenizer_config.json: a string, or an AddedToken object with "content".
std::optional<std::string> tokenText(const OrderedJson &j) {
  if (j.is_string())
    return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string())
    return j["content"].get<std::string>();
  return std::nullopt;
}

} // namespace

TemplateValue TemplateValue::list(std::vector<TemplateValue> items) {
  TemplateValue v;
  v.kind_ = Kind::List;
  v.items_ = std::move(items);
  return v;
}

TemplateValue TemplateValue::object(Members members) {
  TemplateValue v;
  v.kind_ = Kind::Object;
  v.members_ = std::move(members);
  return v;
}

const TemplateValue *TemplateValue::find(std::string_view key) const {
  const TemplateValue *found = nullptr;
  for (const auto &m : members_)
    if (m.first == key)
      found = &m.second;
  return found;
}

StatusOr<TemplateValue> TemplateValue::fromJson(std::string_view json, std::string_view what) {
  OrderedJson j = OrderedJson::parse(json.begin(), json.end(), nullptr, false);
  if (j.is_discarded())
    return Status::error(std::string(what) + ": not valid JSON");
  return fromJsonValue(j, what, 0);
}

TemplateValue messagesValue(const std::vector<ChatMessage> &messages) {
  std::vector<TemplateValue> items;
  for (const ChatMessage &m : messages)
    items.push_back(TemplateValue::object({{"role", m.role}, {"content", m.content}}));
  return TemplateValue::list(std::move(items));
}

StatusOr<ChatTemplate> ChatTemplate::parse(std::string_view text, std::string name) {
  auto program = jinja::parseTemplate(text, name);
  if (!program.ok())
    return program.status();
  ChatTemplate t;
  t.program_ = std::shared_ptr<const jinja::Program>(std::move(*program));
  return t;
}

StatusOr<std::string> ChatTemplate::render(const TemplateValue &messages,
                                           const ChatTemplateOptions &options) const {
  std::vector<std::pair<std::string, jinja::Value>> context;
  auto set = [&](const std::string &name, jinja::Value v) {
    for (auto &c : context)
      if (c.first == name) {
        c.second = std::move(v);
        return;
      }
    context.emplace_back(name, std::move(v));
  };
  // As transformers' render: messages, tools=None, documents=None, add_generation_prompt, then the
  // special tokens and keyword arguments.
  auto msgs = toEngineValue(messages, 0);
  if (!msgs.ok())
    return Status::error(program_->name + ": messages: " + msgs.status().message());
  set("messages", std::move(*msgs));
  set("tools", jinja::Value::none());
  set("documents", jinja::Value::none());
  set("add_generation_prompt", jinja::Value::boolean_(options.addGenerationPrompt));
  for (const auto &v : options.variables) {
    auto x = toEngineValue(v.second, 0);
    if (!x.ok())
      return Status::error(program_->name + ": " + v.first + ": " + x.status().message());
    if (v.first != "messages" && v.first != "add_generation_prompt")
      set(v.first, std::move(*x));
  }
  jinja::Limits limits;
  limits.maxSteps = options.limits.maxSteps;
  limits.maxBytes = options.limits.maxOutputBytes;
  jinja::Interpreter interpreter(*program_, limits, options.now ? *options.now : std::time(nullptr));
  auto out = interpreter.render(context);
  if (!out.ok() && out.status().message().rfind(program_->name, 0) != 0)
    return Status::error(program_->name + ": " + out.status().message());
  return out;
}

StatusOr<ChatTemplateConfig> ChatTemplateConfig::fromTokenizerConfig(std::string_view json,
                                                                     std::string_view fileName) {
  std::string file(fileName);
  OrderedJson j = OrderedJson::parse(json.begin(), json.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status::error(file + ": not a JSON object");
  ChatTemplateConfig config;
  if (j.contains("chat_template")) {
    const OrderedJson &t = j["chat_template"];
    if (t.is_string()) {
      config.defaultTemplate = t.get<std::string>();
    } else if (t.is_array()) {
      for (const OrderedJson &e : t) {
        if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("template") ||
            !e["template"].is_string())
          return Status::error(file + ": chat_template must be a list of {name, template} objects");
        config.namedTemplates.emplace_back(e["name"].get<std::string>(), e["template"].get<std::string>());
        if (config.namedTemplates.back().first == "default")
          config.defaultTemplate = config.namedTemplates.back().second;
      }
    } else if (!t.is_null()) {
      return Status::error(file + ": chat_template must be a string or a list of named templates");
    }
  }
  static const char *kTokens[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                  "pad_token", "cls_token", "mask_token"};
  for (const char *name : kTokens)
    if (j.contains(name))
      if (std::optional<std::string> text = tokenText(j[name]); text && !text->empty())
        config.specialTokens.emplace_back(name, *text);
  if (j.contains("additional_special_tokens") && j["additional_special_tokens"].is_array()) {
    std::vector<TemplateValue> extra;
    for (const OrderedJson &e : j["additional_special_tokens"])
      if (std::optional<std::string> text = tokenText(e))
        extra.emplace_back(*text);
    if (!extra.empty())
      config.specialTokens.emplace_back("additional_special_tokens", TemplateValue::list(std::move(extra)));
  }
  if (j.contains("extra_special_tokens") && j["extra_special_tokens"].is_object())
    for (const auto &e : j["extra_special_tokens"].items())
      if (std::optional<std::string> text = tokenText(e.value()))
        config.specialTokens.emplace_back(e.key(), *text);
  return config;
}

const std::string *ChatTemplateConfig::find(std::string_view name) const {
  if (name == "default" && !defaultTemplate.empty())
    return &defaultTemplate;
  for (const auto &t : namedTemplates)
    if (t.first == name)
      return &t.second;
  return nullptr;
}

} // namespace kiln
