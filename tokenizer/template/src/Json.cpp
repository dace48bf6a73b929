// Python's json.dumps, as transformers' tojson filter calls it (ensure_ascii=False by default, so non-ASCII
// text stays as it is; separators ", " / ": ", or "," with an indent).
#include "Interpreter.h"

#include "Unicode.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace kiln::jinja {
namespace {

void appendJsonString(std::string &out, const std::string &s, bool ensureAscii) {
  out.push_back('"');
  for (char32_t cp : decodeUtf8(s)) {
    char buf[16];
    switch (cp) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    case '\b': out += "\\b"; break;
    case '\f': out += "\\f"; break;
    default:
      if (cp < 0x20 || (ensureAscii && cp > 0x7F)) {
        if (cp >= 0x10000) {
          char32_t v = cp - 0x10000;
          std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", unsigned(0xD800 | (v >> 10)),
                        unsigned(0xDC00 | (v & 0x3FF)));
        } else {
          std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(cp));
        }
        out += buf;
      } else {
        appendUtf8(out, cp);
      }
    }
  }
  out.push_back('"');
}

std::string jsonFloat(double d) {
  if (std::isnan(d))
    return "NaN";
  if (std::isinf(d))
    return d < 0 ? "-Infinity" : "Infinity";
  return floatRepr(d);
}

// A dict key as json.dumps converts it.
StatusOr<std::string> jsonKey(const Value &k) {
  switch (k.type) {
  case Type::String: return k.s();
  case Type::Bool: return std::string(k.boolean ? "true" : "false");
  case Type::None: return std::string("null");
  case Type::Int: return std::to_string(k.integer);
  case Type::Float: return jsonFloat(k.number);
  default:
    return Status::error("keys must be str, int, float, bool or None, not " + typeName(k));
  }
}

class JsonWriter {
public:
  explicit JsonWriter(const JsonDumpOptions &o) : o_(o) {}
  Status write(const Value &v, int level);
  std::string out;

private:
  void open(char bracket, int &level, std::string &separator) {
    out.push_back(bracket);
    separator = o_.itemSeparator;
    if (o_.hasIndent) {
      ++level;
      std::string newline = "\n";
      for (int i = 0; i < level; ++i)
        newline += o_.indent;
      separator += newline;
      out += newline;
    }
  }
  void close(char bracket, int level) {
    if (o_.hasIndent) {
      out.push_back('\n');
      for (int i = 0; i < level - 1; ++i)
        out += o_.indent;
    }
    out.push_back(bracket);
  }
  Status writeDict(const Value &v, int level);

  const JsonDumpOptions &o_;
};

Status JsonWriter::writeDict(const Value &v, int level) {
  std::vector<const std::pair<Value, Value> *> entries;
  for (const auto &e : v.dict->entries)
    entries.push_back(&e);
  if (o_.sortKeys) {
    Status failure;
    std::vector<size_t> order(entries.size());
    for (size_t i = 0; i < order.size(); ++i)
      order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t x, size_t y) {
      auto lt = lessThan(entries[x]->first, entries[y]->first);
      auto gt = lessThan(entries[y]->first, entries[x]->first);
      if ((!lt.ok() || !gt.ok()) && failure)
        failure = lt.ok() ? gt.status() : lt.status();
      if (!lt.ok() || !gt.ok())
        return x < y;
      return *lt || (!*gt && x < y);
    });
    std::vector<const std::pair<Value, Value> *> sorted;
    for (size_t i : order)
      sorted.push_back(entries[i]);
    entries = std::move(sorted);
    if (!failure)
      return failure;
  }
  if (entries.empty()) {
    out += "{}";
    return Status::ok();
  }
  std::string separator;
  open('{', level, separator);
  for (size_t i = 0; i < entries.size(); ++i) {
    auto key = jsonKey(entries[i]->first);
    if (!key.ok())
      return key.status();
    if (i)
      out += separator;
    appendJsonString(out, *key, o_.ensureAscii);
    out += o_.keySeparator;
    if (Status s = write(entries[i]->second, level); !s)
      return s;
  }
  close('}', level);
  return Status::ok();
}

Status JsonWriter::write(const Value &v, int level) {
  switch (v.type) {
  case Type::None: out += "null"; return Status::ok();
  case Type::Bool: out += v.boolean ? "true" : "false"; return Status::ok();
  case Type::Int: out += std::to_string(v.integer); return Status::ok();
  case Type::Float: out += jsonFloat(v.number); return Status::ok();
  case Type::String: appendJsonString(out, v.s(), o_.ensureAscii); return Status::ok();
  case Type::Dict: return writeDict(v, level);
  case Type::List:
    if (v.listKind == ListKind::List || v.listKind == ListKind::Tuple) {
      if (v.items().empty()) {
        out += "[]";
        return Status::ok();
      }
      std::string separator;
      open('[', level, separator);
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i)
          out += separator;
        if (Status s = write(v.items()[i], level); !s)
          return s;
      }
      close(']', level);
      return Status::ok();
    }
    break;
  default: break;
  }
  return Status::error("Object of type " + typeName(v) + " is not JSON serializable");
}

} // namespace

StatusOr<std::string> jsonDumps(const Value &v, const JsonDumpOptions &options) {
  JsonWriter w(options);
  if (Status s = w.write(v, 0); !s)
    return s;
  return std::move(w.out);
}

} // namespace kiln::jinja
