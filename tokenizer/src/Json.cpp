#include "Json.h"

#include "Unicode.h"

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
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < message.size() && out.size() < kMaxBytes; ++i) {
    unsigned char c = static_cast<unsigned char>(message[i]);
    bool control = c < 0x20 || c == 0x7f;
    out += control ? std::string{'\\', 'x', kHex[c >> 4], kHex[c & 15]} : std::string(1, char(c));
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

Status JsonNode::asBool(bool &out) const {
  if (!node_->is_boolean())
    return error(std::string("expected a boolean, got ") + typeName(*node_));
  out = node_->get<bool>();
  return Status::ok();
}

Status JsonNode::asDouble(double &out) const {
  if (!node_->is_number())
    return error(std::string("expected a number, got ") + typeName(*node_));
  out = node_->get<double>();
  return Status::ok();
}

namespace {
// The member `key` read by `read` (one of the as* methods); nullopt when absent or null.
template <class T> Status optionalMember(const JsonNode &node, const std::string &key, std::optional<T> &out,
                                         Status (JsonNode::*read)(T &) const) {
  out.reset();
  auto m = node.member(key);
  if (!m.ok())
    return m.status();
  if (!m->has_value())
    return Status::ok();
  T v{};
  if (Status s = ((**m).*read)(v); !s)
    return s;
  out = std::move(v);
  return Status::ok();
}

template <class T> Status memberOr(const JsonNode &node, const std::string &key, T &out, T def,
                                   Status (JsonNode::*read)(T &) const) {
  std::optional<T> v;
  if (Status s = optionalMember(node, key, v, read); !s)
    return s;
  out = v.value_or(def);
  return Status::ok();
}
} // namespace

Status JsonNode::getString(const std::string &key, std::string &out) const {
  auto m = required(key);
  if (!m.ok())
    return m.status();
  return m->asString(out);
}

Status JsonNode::getOptionalString(const std::string &key, std::optional<std::string> &out) const {
  return optionalMember(*this, key, out, &JsonNode::asString);
}

Status JsonNode::getOptionalBool(const std::string &key, std::optional<bool> &out) const {
  return optionalMember(*this, key, out, &JsonNode::asBool);
}

Status JsonNode::getBool(const std::string &key, bool &out, bool def) const {
  return memberOr(*this, key, out, def, &JsonNode::asBool);
}

Status JsonNode::getOptionalUint(const std::string &key, std::optional<uint64_t> &out) const {
  return optionalMember(*this, key, out, &JsonNode::asUint);
}

Status JsonNode::getUint(const std::string &key, uint64_t &out, uint64_t def) const {
  return memberOr(*this, key, out, def, &JsonNode::asUint);
}

Status JsonNode::getOptionalDouble(const std::string &key, std::optional<double> &out) const {
  return optionalMember(*this, key, out, &JsonNode::asDouble);
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
