//===- DeviceProfileJson.cpp - profile <-> JSON, and profile checks --------===//
#include "DeviceProfileJson.h"

#include <cctype>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>

namespace kiln::vulkan {
namespace {

std::string quote(const std::string &s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\t': out += "\\t"; break;
    default:
      if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += c;
      }
    }
  }
  return out + "\"";
}

std::string strList(const std::vector<std::string> &v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i)
    out += (i ? "," : "") + quote(v[i]);
  return out + "]";
}

std::string triple(const uint64_t *v) {
  return "[" + std::to_string(v[0]) + "," + std::to_string(v[1]) + "," + std::to_string(v[2]) + "]";
}

// A minimal JSON value and recursive-descent parser (objects, arrays, strings, numbers, bools, null).
struct Value {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Value> items;
  std::vector<std::pair<std::string, Value>> members;
};

struct Parser {
  const std::string &s;
  size_t i = 0;
  std::string error;
  int depth = 0;
  explicit Parser(const std::string &text) : s(text) {}
  void ws() {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])))
      ++i;
  }
  bool fail(const std::string &m) {
    if (error.empty())
      error = m + " at offset " + std::to_string(i);
    return false;
  }
  bool parseString(std::string &out) {
    if (i >= s.size() || s[i] != '"')
      return fail("expected a string");
    ++i;
    while (i < s.size() && s[i] != '"') {
      char c = s[i++];
      if (c == '\\') {
        if (i >= s.size())
          return fail("unterminated escape");
        char e = s[i++];
        switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u':
          if (i + 4 > s.size())
            return fail("bad \\u escape");
          out += static_cast<char>(std::strtol(s.substr(i, 4).c_str(), nullptr, 16) & 0x7f);
          i += 4;
          break;
        default: out += e;
        }
      } else {
        out += c;
      }
    }
    if (i >= s.size())
      return fail("unterminated string");
    ++i;
    return true;
  }
  bool parse(Value &v) {
    if (++depth > 64)
      return fail("nesting too deep");
    ws();
    if (i >= s.size())
      return fail("unexpected end");
    char c = s[i];
    bool ok = true;
    if (c == '{') {
      v.kind = Value::Object;
      ++i;
      ws();
      if (i < s.size() && s[i] == '}') {
        ++i;
      } else {
        while (ok) {
          ws();
          std::string key;
          if (!parseString(key))
            return false;
          ws();
          if (i >= s.size() || s[i] != ':')
            return fail("expected ':'");
          ++i;
          Value member;
          if (!parse(member))
            return false;
          v.members.emplace_back(std::move(key), std::move(member));
          ws();
          if (i < s.size() && s[i] == ',') {
            ++i;
            continue;
          }
          if (i < s.size() && s[i] == '}') {
            ++i;
            break;
          }
          return fail("expected ',' or '}'");
        }
      }
    } else if (c == '[') {
      v.kind = Value::Array;
      ++i;
      ws();
      if (i < s.size() && s[i] == ']') {
        ++i;
      } else {
        while (true) {
          Value item;
          if (!parse(item))
            return false;
          v.items.push_back(std::move(item));
          ws();
          if (i < s.size() && s[i] == ',') {
            ++i;
            continue;
          }
          if (i < s.size() && s[i] == ']') {
            ++i;
            break;
          }
          return fail("expected ',' or ']'");
        }
      }
    } else if (c == '"') {
      v.kind = Value::String;
      ok = parseString(v.str);
    } else if (s.compare(i, 4, "true") == 0) {
      v.kind = Value::Bool;
      v.b = true;
      i += 4;
    } else if (s.compare(i, 5, "false") == 0) {
      v.kind = Value::Bool;
      i += 5;
    } else if (s.compare(i, 4, "null") == 0) {
      i += 4;
    } else if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) {
      const char *begin = s.c_str() + i;
      char *end = nullptr;
      v.kind = Value::Number;
      v.num = std::strtod(begin, &end);
      if (end == begin)
        return fail("bad number");
      i += static_cast<size_t>(end - begin);
    } else {
      return fail(std::string("unexpected '") + c + "'");
    }
    --depth;
    return ok;
  }
};

} // namespace

std::string profileToJson(const DeviceProfile &p, int indent) {
  std::string nl = indent > 0 ? "\n" : "", pad(indent > 0 ? indent : 0, ' ');
  std::string sep = indent > 0 ? ": " : ":";
  std::vector<std::pair<std::string, std::string>> kv = {
      {"name", quote(p.name)},
      {"api_version", quote(p.apiVersion)},
      {"float16", p.float16 ? "true" : "false"},
      {"int8", p.int8 ? "true" : "false"},
      {"storage16", p.storage16 ? "true" : "false"},
      {"storage8", p.storage8 ? "true" : "false"},
      {"subgroup_size", std::to_string(p.subgroupSize)},
      {"subgroup_ops", strList(p.subgroupOps)},
      {"max_shared_memory", std::to_string(p.maxSharedMemory)},
      {"max_workgroup_invocations", std::to_string(p.maxWorkgroupInvocations)},
      {"max_workgroup_size", triple(p.maxWorkgroupSize)},
      {"max_workgroup_count", triple(p.maxWorkgroupCount)},
      {"max_storage_buffer_range", std::to_string(p.maxStorageBufferRange)},
      {"max_allocation_size", std::to_string(p.maxAllocationSize)},
      {"max_push_constants_size", std::to_string(p.maxPushConstantsSize)},
      {"cooperative_matrix", p.cooperativeMatrix ? "true" : "false"},
      {"unavailable_ops", strList(p.unavailableOps)},
      {"unavailable_dtypes", strList(p.unavailableDtypes)},
  };
  std::string out = "{" + nl;
  for (size_t i = 0; i < kv.size(); ++i)
    out += pad + quote(kv[i].first) + sep + kv[i].second + (i + 1 < kv.size() ? "," : "") + nl;
  return out + "}";
}

bool parseProfileJson(const std::string &json, DeviceProfile &p, std::string &error) {
  Parser parser(json);
  Value root;
  if (!parser.parse(root)) {
    error = "device profile JSON: " + parser.error;
    return false;
  }
  const Value *obj = &root;
  if (root.kind == Value::Array) {
    if (root.items.empty()) {
      error = "device profile JSON: an empty array";
      return false;
    }
    obj = &root.items[0];
  }
  if (obj->kind != Value::Object) {
    error = "device profile JSON: not an object";
    return false;
  }
  for (const auto &member : obj->members) {
    const std::string &key = member.first;
    const Value &v = member.second;
    auto num = [&](uint64_t &out) {
      if (v.kind == Value::Number && v.num >= 0)
        out = static_cast<uint64_t>(v.num);
    };
    auto flag = [&](bool &out) {
      if (v.kind == Value::Bool)
        out = v.b;
    };
    auto strs = [&](std::vector<std::string> &out) {
      out.clear();
      for (const Value &item : v.items)
        if (item.kind == Value::String)
          out.push_back(item.str);
    };
    auto three = [&](uint64_t *out) {
      for (size_t k = 0; k < 3 && k < v.items.size(); ++k)
        if (v.items[k].kind == Value::Number && v.items[k].num >= 0)
          out[k] = static_cast<uint64_t>(v.items[k].num);
    };
    if (key == "name" && v.kind == Value::String)
      p.name = v.str;
    else if (key == "api_version" && v.kind == Value::String)
      p.apiVersion = v.str;
    else if (key == "float16")
      flag(p.float16);
    else if (key == "int8")
      flag(p.int8);
    else if (key == "storage16")
      flag(p.storage16);
    else if (key == "storage8")
      flag(p.storage8);
    else if (key == "subgroup_size") {
      uint64_t x = 0;
      num(x);
      p.subgroupSize = static_cast<uint32_t>(x);
    } else if (key == "subgroup_ops")
      strs(p.subgroupOps);
    else if (key == "max_shared_memory")
      num(p.maxSharedMemory);
    else if (key == "max_workgroup_invocations")
      num(p.maxWorkgroupInvocations);
    else if (key == "max_workgroup_size")
      three(p.maxWorkgroupSize);
    else if (key == "max_workgroup_count")
      three(p.maxWorkgroupCount);
    else if (key == "max_storage_buffer_range")
      num(p.maxStorageBufferRange);
    else if (key == "max_allocation_size")
      num(p.maxAllocationSize);
    else if (key == "max_push_constants_size")
      num(p.maxPushConstantsSize);
    else if (key == "cooperative_matrix")
      flag(p.cooperativeMatrix);
    else if (key == "unavailable_ops")
      strs(p.unavailableOps);
    else if (key == "unavailable_dtypes")
      strs(p.unavailableDtypes);
  }
  return true;
}

std::string missingCapabilities(const DeviceProfile &d, const DeviceProfile &need) {
  std::vector<std::string> miss;
  if (need.float16 && !d.float16)
    miss.push_back("no shaderFloat16 (float16)");
  if (need.int8 && !d.int8)
    miss.push_back("no shaderInt8 (int8)");
  if (need.storage16 && !d.storage16)
    miss.push_back("no 16-bit storage (storage16)");
  if (need.storage8 && !d.storage8)
    miss.push_back("no 8-bit storage (storage8)");
  if (need.cooperativeMatrix && !d.cooperativeMatrix)
    miss.push_back("no VK_KHR_cooperative_matrix (cooperative_matrix)");
  // No subgroup-size check: the generated kernels are written for any subgroup size (a profile's size
  // describes the device it was read from, not a requirement of the kernels compiled for it).
  for (const std::string &op : need.subgroupOps) {
    bool found = false;
    for (const std::string &have : d.subgroupOps)
      found = found || have == op;
    if (!found)
      miss.push_back("no subgroup op " + op);
  }
  auto limit = [&](const char *key, uint64_t have, uint64_t want) {
    if (want > have)
      miss.push_back(std::string(key) + " " + std::to_string(have) + " < " + std::to_string(want));
  };
  limit("max_shared_memory", d.maxSharedMemory, need.maxSharedMemory);
  limit("max_workgroup_invocations", d.maxWorkgroupInvocations, need.maxWorkgroupInvocations);
  static const char *axis[3] = {"x", "y", "z"};
  for (int k = 0; k < 3; ++k) {
    limit((std::string("max_workgroup_size.") + axis[k]).c_str(), d.maxWorkgroupSize[k], need.maxWorkgroupSize[k]);
    limit((std::string("max_workgroup_count.") + axis[k]).c_str(), d.maxWorkgroupCount[k], need.maxWorkgroupCount[k]);
  }
  limit("max_storage_buffer_range", d.maxStorageBufferRange, need.maxStorageBufferRange);
  limit("max_allocation_size", d.maxAllocationSize, need.maxAllocationSize);
  limit("max_push_constants_size", d.maxPushConstantsSize, need.maxPushConstantsSize);
  std::string out;
  for (const std::string &m : miss)
    out += (out.empty() ? "" : ", ") + m;
  return out;
}

} // namespace kiln::vulkan
