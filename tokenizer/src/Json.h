// Type-checked access to nlohmann::json without exceptions (this library builds with -fno-exceptions, where a
// wrong-typed get<>() would abort). Every error names the file and the JSON path: "tokenizer.json:
// normalizer.normalizers[1]: 'pattern' must be an object".
#pragma once

#include "kiln/support/Status.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace kiln::tokenizer::detail {

using Json = nlohmann::json;

// Parses JSON text; an error names `file`. Depth-limited so hostile input cannot exhaust the stack.
StatusOr<Json> parseJson(const std::string &text, const std::string &file);

// A JSON node and where it is. Accessors of optional fields treat an absent key and null alike.
class JsonNode {
public:
  JsonNode(const Json &node, std::string where) : node_(&node), where_(std::move(where)) {}

  const Json &json() const { return *node_; }
  const std::string &where() const { return where_; }
  Status error(const std::string &message) const;

  bool isObject() const { return node_->is_object(); }
  bool isArray() const { return node_->is_array(); }
  bool isNull() const { return node_->is_null(); }
  // The member `key` (nullopt when absent or null; an error when this node is not an object).
  StatusOr<std::optional<JsonNode>> member(const std::string &key) const;
  StatusOr<JsonNode> required(const std::string &key) const;
  JsonNode element(size_t i) const;
  size_t size() const { return node_->size(); }

  // Typed members. `def` when absent or null.
  Status getString(const std::string &key, std::string &out) const; // required
  Status getOptionalString(const std::string &key, std::optional<std::string> &out) const;
  Status getBool(const std::string &key, bool &out, bool def) const;
  Status getOptionalBool(const std::string &key, std::optional<bool> &out) const;
  Status getUint(const std::string &key, uint64_t &out, uint64_t def) const;
  Status getOptionalUint(const std::string &key, std::optional<uint64_t> &out) const;
  Status getOptionalDouble(const std::string &key, std::optional<double> &out) const;
  // A one-character string (Rust `char` fields such as Metaspace's replacement).
  Status getChar(const std::string &key, char32_t &out) const;
  // This node's own value.
  Status asString(std::string &out) const;
  Status asUint(uint64_t &out) const;
  Status asBool(bool &out) const;
  Status asDouble(double &out) const;

  // The "type" member, required.
  Status type(std::string &out) const;

private:
  const Json *node_;
  std::string where_;
};

// Reads several members of an object and keeps the first error:
//   if (Status s = JsonFields(node).string("prefix", p).boolean("cleanup", c, true).status(); !s) return s;
class JsonFields {
public:
  explicit JsonFields(const JsonNode &node) : node_(node) {}
  JsonFields &string(const std::string &key, std::string &out) {
    return read([&] { return node_.getString(key, out); });
  }
  JsonFields &optionalString(const std::string &key, std::optional<std::string> &out) {
    return read([&] { return node_.getOptionalString(key, out); });
  }
  JsonFields &boolean(const std::string &key, bool &out, bool def) {
    return read([&] { return node_.getBool(key, out, def); });
  }
  JsonFields &optionalBool(const std::string &key, std::optional<bool> &out) {
    return read([&] { return node_.getOptionalBool(key, out); });
  }
  JsonFields &uint(const std::string &key, uint64_t &out, uint64_t def) {
    return read([&] { return node_.getUint(key, out, def); });
  }
  JsonFields &optionalUint(const std::string &key, std::optional<uint64_t> &out) {
    return read([&] { return node_.getOptionalUint(key, out); });
  }
  JsonFields &character(const std::string &key, char32_t &out) {
    return read([&] { return node_.getChar(key, out); });
  }
  const Status &status() const { return status_; }

private:
  template <class F> JsonFields &read(F f) {
    if (status_.isOk())
      status_ = f();
    return *this;
  }
  const JsonNode &node_;
  Status status_;
};

std::string childPath(const std::string &where, const std::string &key);
// A message on one line: control characters escaped (tokens and patterns can hold newlines), at most 1000
// bytes.
std::string oneLine(const std::string &message);

} // namespace kiln::tokenizer::detail
