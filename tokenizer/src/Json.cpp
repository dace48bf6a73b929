#include "Json.h"

#include "Unicode.h"

#include <cstdio>

namespace kiln::tokenizer::detail {

namespace {
// tokenizer.json nests a few levels (Sequence of Sequence...); anything far deeper is hostile input.
constexpr size_t kMaxDepth = 512;

// The deepest nesting of [ and { outside strings: checked before parsing, so neither the parser nor the
// destructor of a parsed value can run out of stack.
size_t nestingDepth(const std::string &text) {
  size_t depth = 0, deepest = 0;
  bool inString = false, escaped = false;
  for (char c : text) {
    if (inString) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        inString = false;
      continue;
    }
    if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest)
        deepest = depth;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

const char *typeName(const Json &j) {
  if (j.is_null())
    return "null";
  if (j.is_boolean())
    return "a boolean";
  if (j.is_number())
    return "a number";
  if (j.is_string())
    return "a string";
  if (j.is_array())
    return "an array";
  return "an object";
}
} // namespace

std::string childPath(const std::string &where, const std::string &key) {
  if (where.find(": ") == std::string::npos)
    return where + ": " + key;
  return where + "." + key;
}

StatusOr<Json> parseJson(const std::string &text, const std::string &file) {
  if (nestingDepth(text) > kMaxDepth)
    return Status::error(file + ": JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return Status::error(file + ": not valid JSON");
  return j;
}

std::string oneLine(const std::string &message) {
  constexpr size_t kMaxBytes = 1000;
  std::string out;
  for (size_t i = 0; i < message.size() && out.size() < kMaxBytes; ++i) {
    unsigned char c = static_cast<unsigned char>(message[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  if (out.size() >= kMaxBytes) {
    out.resize(lastCharStart(out)); // never cut a character in two
    out += "...";
  }
  return out;
}

Status JsonNode::error(const std::string &message) const { return Status::error(oneLine(where_ + ": " + message)); }

StatusOr<std::optional<JsonNode>> JsonNode::member(const std::string &key) const {
  if (!node_->is_object())
    return error(std::string("expected an object, got ") + typeName(*node_));
  auto it = node_->find(key);
  if (it == node_->end() || it->is_null())
    return std::optional<JsonNode>();
  return std::optional<JsonNode>(JsonNode(*it, childPath(where_, key)));
}

StatusOr<JsonNode> JsonNode::required(const std::string &key) const {
  auto m = member(key);
  if (!m.ok())
    return m.status();
  if (!m->has_value())
    return error("missing '" + key + "'");
  return **m;
}

JsonNode JsonNode::element(size_t i) const { return JsonNode((*node_)[i], where_ + "[" + std::to_string(i) + "]"); }

Status JsonNode::asString(std::string &out) const {
  if (!node_->is_string())
    return error(std::string("expected a string, got ") + typeName(*node_));
  out = node_->get_ref<const std::string &>();
  if (!isValidUtf8(out))
    return error("string is not valid UTF-8");
  return Status::ok();
}

Status JsonNode::asUint(uint64_t &out) const {
  if (node_->is_number_unsigned()) {
    out = node_->get<uint64_t>();
    return Status::ok();
  }
  if (node_->is_number_integer() && node_->get<int64_t>() >= 0) {
    out = uint64_t(node_->get<int64_t>());
    return Status::ok();
  }
  return error(std::string("expected a non-negative integer, got ") + typeName(*node_));
}

Status JsonNode::getString(const std::string &key, std::string &out) const {
  auto m = required(key);
  if (!m.ok())
    return m.status();
  return m->asString(out);
}

Status JsonNode::getOptionalString(const std::string &key, std::optional<std::string> &out) const {
  out.reset();
  auto m = member(key);
  if (!m.ok())
    return m.status();
  if (!m->has_value())
    return Status::ok();
  std::string s;
  if (Status st = (*m)->asString(s); !st)
    return st;
  out = std::move(s);
  return Status::ok();
}

Status JsonNode::getOptionalBool(const std::string &key, std::optional<bool> &out) const {
  out.reset();
  auto m = member(key);
  if (!m.ok())
    return m.status();
  if (!m->has_value())
    return Status::ok();
  if (!(*m)->json().is_boolean())
    return (*m)->error(std::string("expected a boolean, got ") + typeName((*m)->json()));
  out = (*m)->json().get<bool>();
  return Status::ok();
}

Status JsonNode::getBool(const std::string &key, bool &out, bool def) const {
  std::optional<bool> v;
  if (Status s = getOptionalBool(key, v); !s)
    return s;
  out = v.value_or(def);
  return Status::ok();
}

Status JsonNode::getOptionalUint(const std::string &key, std::optional<uint64_t> &out) const {
  out.reset();
  auto m = member(key);
  if (!m.ok())
    return m.status();
  if (!m->has_value())
    return Status::ok();
  uint64_t v = 0;
  if (Status s = (*m)->asUint(v); !s)
    return s;
  out = v;
  return Status::ok();
}

Status JsonNode::getUint(const std::string &key, uint64_t &out, uint64_t def) const {
  std::optional<uint64_t> v;
  if (Status s = getOptionalUint(key, v); !s)
    return s;
  out = v.value_or(def);
  return Status::ok();
}

Status JsonNode::getOptionalDouble(const std::string &key, std::optional<double> &out) const {
  out.reset();
  auto m = member(key);
  if (!m.ok())
    return m.status();
  if (!m->has_value())
    return Status::ok();
  if (!(*m)->json().is_number())
    return (*m)->error(std::string("expected a number, got ") + typeName((*m)->json()));
  out = (*m)->json().get<double>();
  return Status::ok();
}

Status JsonNode::getChar(const std::string &key, char32_t &out) const {
  std::string s;
  if (Status st = getString(key, s); !st)
    return st;
  size_t i = 0;
  if (s.empty() || (out = decodeUtf8(s, i), i != s.size()))
    return error("'" + key + "' must be exactly one character");
  return Status::ok();
}

Status JsonNode::type(std::string &out) const { return getString("type", out); }

} // namespace kiln::tokenizer::detail
