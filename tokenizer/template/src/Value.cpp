#include "Value.h"

#include "Unicode.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kiln::jinja {

Value Value::undefined(std::string hint) {
  Value v;
  v.str = std::make_shared<const std::string>(std::move(hint));
  return v;
}
Value Value::none() {
  Value v;
  v.type = Type::None;
  return v;
}
Value Value::boolean_(bool b) {
  Value v;
  v.type = Type::Bool;
  v.boolean = b;
  return v;
}
Value Value::int_(int64_t i) {
  Value v;
  v.type = Type::Int;
  v.integer = i;
  return v;
}
Value Value::float_(double f) {
  Value v;
  v.type = Type::Float;
  v.number = f;
  return v;
}
Value Value::string(std::string s, bool markup) {
  Value v;
  valueWork() += s.size() / 64;
  v.type = Type::String;
  v.markup = markup;
  v.str = std::make_shared<const std::string>(std::move(s));
  return v;
}
uint64_t &valueWork() {
  thread_local uint64_t work = 0;
  return work;
}

namespace {
uint16_t nestedDepth(const ValueList &items) {
  uint16_t d = 0;
  for (const Value &e : items)
    d = std::max(d, e.depth);
  return d == UINT16_MAX ? d : uint16_t(d + 1);
}
} // namespace

Value Value::listOf(ValueList items, ListKind kind) {
  Value v;
  v.depth = nestedDepth(items);
  valueWork() += items.size();
  v.type = Type::List;
  v.listKind = kind;
  v.list = std::make_shared<const ValueList>(std::move(items));
  return v;
}
Value Value::dictOf(DictData d) {
  Value v;
  uint16_t inner = 0;
  for (const auto &e : d.entries)
    inner = std::max({inner, e.first.depth, e.second.depth});
  v.depth = inner == UINT16_MAX ? inner : uint16_t(inner + 1);
  valueWork() += d.entries.size();
  v.type = Type::Dict;
  v.dict = std::make_shared<const DictData>(std::move(d));
  return v;
}
Value Value::generator(ValueList items, Status deferred) {
  Value v;
  v.depth = nestedDepth(items);
  valueWork() += items.size();
  v.type = Type::Generator;
  auto g = std::make_shared<GeneratorData>();
  g->items = std::move(items);
  g->deferred = std::move(deferred);
  v.gen = std::move(g);
  return v;
}

const Value *DictData::find(const Value &key) const {
  for (const auto &e : entries)
    if (equals(e.first, key))
      return &e.second;
  return nullptr;
}

void DictData::set(Value key, Value value) {
  for (auto &e : entries)
    if (equals(e.first, key)) {
      e.second = std::move(value);
      return;
    }
  entries.emplace_back(std::move(key), std::move(value));
}

const Value *NamespaceData::find(const std::string &name) const {
  for (const auto &a : attrs)
    if (a.first == name)
      return &a.second;
  return nullptr;
}

void NamespaceData::set(const std::string &name, Value value) {
  for (auto &a : attrs)
    if (a.first == name) {
      a.second = std::move(value);
      return;
    }
  attrs.emplace_back(name, std::move(value));
}

std::string typeName(const Value &v) {
  switch (v.type) {
  case Type::Undefined: return "Undefined";
  case Type::None: return "NoneType";
  case Type::Bool: return "bool";
  case Type::Int: return "int";
  case Type::Float: return "float";
  case Type::String: return v.markup ? "Markup" : "str";
  case Type::List:
    switch (v.listKind) {
    case ListKind::List: return "list";
    case ListKind::Tuple: return "tuple";
    case ListKind::DictItems: return "dict_items";
    case ListKind::DictKeys: return "dict_keys";
    case ListKind::DictValues: return "dict_values";
    case ListKind::Range: return "range";
    }
    return "list";
  case Type::Dict: return "dict";
  case Type::Namespace: return "Namespace";
  case Type::Callable: return "function";
  case Type::Loop: return "LoopContext";
  case Type::Generator: return "generator";
  }
  return "object";
}

bool truthy(const Value &v) {
  switch (v.type) {
  case Type::Undefined:
  case Type::None: return false;
  case Type::Bool: return v.boolean;
  case Type::Int: return v.integer != 0;
  case Type::Float: return v.number != 0;
  case Type::String: return !v.s().empty();
  case Type::List: return !v.items().empty();
  case Type::Dict: return !v.dict->entries.empty();
  default: return true;
  }
}

namespace {

double asDouble(const Value &v) {
  return v.type == Type::Float ? v.number : double(v.type == Type::Bool ? v.boolean : v.integer);
}

// -1, 0, 1 for numbers, comparing an int with an integral float exactly.
int compareNumbers(const Value &a, const Value &b) {
  if (a.type != Type::Float && b.type != Type::Float) {
    int64_t x = a.type == Type::Bool ? a.boolean : a.integer;
    int64_t y = b.type == Type::Bool ? b.boolean : b.integer;
    return x < y ? -1 : x > y;
  }
  double x = asDouble(a), y = asDouble(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

bool equalLists(const Value &a, const Value &b) {
  if (a.listKind != b.listKind)
    return false;
  const ValueList &x = a.items(), &y = b.items();
  if (x.size() != y.size())
    return false;
  if (a.listKind == ListKind::DictKeys || a.listKind == ListKind::DictItems) {
    for (const Value &e : x) { // set semantics
      bool found = false;
      for (const Value &f : y)
        found = found || equals(e, f);
      if (!found)
        return false;
    }
    return true;
  }
  if (a.listKind == ListKind::DictValues)
    return a.list == b.list;
  for (size_t i = 0; i < x.size(); ++i)
    if (!equals(x[i], y[i]))
      return false;
  return true;
}

} // namespace

bool equals(const Value &a, const Value &b) {
  if (a.isNumber() && b.isNumber())
    return compareNumbers(a, b) == 0;
  if (a.type != b.type)
    return false;
  switch (a.type) {
  case Type::Undefined:
  case Type::None: return true;
  case Type::String: return a.s() == b.s();
  case Type::List: return equalLists(a, b);
  case Type::Dict: {
    if (a.dict->entries.size() != b.dict->entries.size())
      return false;
    for (const auto &e : a.dict->entries) {
      const Value *other = b.dict->find(e.first);
      if (!other || !equals(e.second, *other))
        return false;
    }
    return true;
  }
  case Type::Namespace: return a.ns == b.ns;
  case Type::Callable: return a.fn == b.fn;
  case Type::Loop: return a.loop == b.loop;
  case Type::Generator: return a.gen == b.gen;
  default: return false;
  }
}

StatusOr<bool> lessThan(const Value &a, const Value &b) {
  if (a.isNumber() && b.isNumber())
    return compareNumbers(a, b) < 0;
  if (a.isString() && b.isString())
    return a.s() < b.s(); // UTF-8 byte order is code point order
  if (a.type == Type::List && b.type == Type::List && a.listKind == b.listKind &&
      (a.listKind == ListKind::List || a.listKind == ListKind::Tuple)) {
    const ValueList &x = a.items(), &y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equals(x[i], y[i]))
        continue;
      return lessThan(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  return Status::error("'<' not supported between instances of '" + typeName(a) + "' and '" +
                       typeName(b) + "'");
}

std::string floatRepr(double d) {
  if (std::isnan(d))
    return "nan";
  if (std::isinf(d))
    return d < 0 ? "-inf" : "inf";
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*e", precision - 1, d);
    if (std::strtod(buf, nullptr) == d)
      break;
  }
  // buf is [-]d[.ddd]e[+-]XX: split into sign, digits and exponent.
  std::string text(buf);
  bool negative = text[0] == '-';
  if (negative)
    text.erase(0, 1);
  size_t e = text.find('e');
  int exponent = std::atoi(text.c_str() + e + 1);
  std::string digits;
  for (size_t i = 0; i < e; ++i)
    if (text[i] != '.')
      digits.push_back(text[i]);
  while (digits.size() > 1 && digits.back() == '0')
    digits.pop_back();
  std::string out = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1)
      out += "." + digits.substr(1);
    char exp[8];
    std::snprintf(exp, sizeof exp, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    return out + exp;
  }
  if (exponent < 0)
    return out + "0." + std::string(size_t(-exponent - 1), '0') + digits;
  if (digits.size() <= size_t(exponent) + 1)
    return out + digits + std::string(size_t(exponent) + 1 - digits.size(), '0') + ".0";
  return out + digits.substr(0, size_t(exponent) + 1) + "." + digits.substr(size_t(exponent) + 1);
}

std::string stringRepr(const std::string &s) {
  bool hasSingle = s.find('\'') != std::string::npos, hasDouble = s.find('"') != std::string::npos;
  char quote = hasSingle && !hasDouble ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t cp : decodeUtf8(s)) {
    char buf[16];
    if (cp == char32_t(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(char(cp));
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp < 0x20 || cp == 0x7F) {
      std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(cp));
      out += buf;
    } else if (cp < 0x80 || isPyPrintable(cp)) {
      appendUtf8(out, cp);
    } else {
      if (cp < 0x100)
        std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(cp));
      else if (cp < 0x10000)
        std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(cp));
      else
        std::snprintf(buf, sizeof buf, "\\U%08x", unsigned(cp));
      out += buf;
    }
  }
  out.push_back(quote);
  return out;
}

namespace {

Status appendItemsRepr(const ValueList &items, std::string &out) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (i)
      out += ", ";
    auto r = repr(items[i]);
    if (!r.ok())
      return r.status();
    out += *r;
  }
  return Status::ok();
}

StatusOr<std::string> listRepr(const Value &v) {
  const char *prefix = "", *open = "[", *close = "]";
  switch (v.listKind) {
  case ListKind::Range: return v.s();
  case ListKind::Tuple: open = "(", close = v.items().size() == 1 ? ",)" : ")"; break;
  case ListKind::DictItems: prefix = "dict_items(", close = "])"; break;
  case ListKind::DictKeys: prefix = "dict_keys(", close = "])"; break;
  case ListKind::DictValues: prefix = "dict_values(", close = "])"; break;
  default: break;
  }
  std::string out = std::string(prefix) + open;
  Status s = appendItemsRepr(v.items(), out);
  if (!s)
    return s;
  return out + close;
}

} // namespace

StatusOr<std::string> repr(const Value &v) {
  switch (v.type) {
  case Type::String: return v.markup ? "Markup(" + stringRepr(v.s()) + ")" : stringRepr(v.s());
  case Type::Undefined: return std::string("Undefined");
  case Type::List: return listRepr(v);
  case Type::Dict: {
    std::string out = "{";
    for (size_t i = 0; i < v.dict->entries.size(); ++i) {
      auto k = repr(v.dict->entries[i].first);
      if (!k.ok())
        return k;
      auto x = repr(v.dict->entries[i].second);
      if (!x.ok())
        return x;
      out += (i ? ", " : "") + *k + ": " + *x;
    }
    return out + "}";
  }
  case Type::Namespace: {
    std::string out = "<Namespace {";
    for (size_t i = 0; i < v.ns->attrs.size(); ++i) {
      auto x = repr(v.ns->attrs[i].second);
      if (!x.ok())
        return x;
      out += (i ? ", " : "") + stringRepr(v.ns->attrs[i].first) + ": " + *x;
    }
    return out + "}>";
  }
  default: return toStr(v);
  }
}

StatusOr<std::string> toStr(const Value &v) {
  switch (v.type) {
  case Type::Undefined: return std::string();
  case Type::None: return std::string("None");
  case Type::Bool: return std::string(v.boolean ? "True" : "False");
  case Type::Int: return std::to_string(v.integer);
  case Type::Float: return floatRepr(v.number);
  case Type::String: return v.s();
  case Type::List:
  case Type::Dict:
  case Type::Namespace: return repr(v);
  case Type::Loop:
    return "<LoopContext " + std::to_string(v.loop->index + 1) + "/" + std::to_string(v.loop->items.size()) + ">";
  default:
    return Status::error("cannot convert a " + typeName(v) +
                         " to text (Python would print its memory address)");
  }
}

StatusOr<ValueList> iterate(const Value &v) {
  if (v.type == Type::List)
    valueWork() += v.items().size();
  switch (v.type) {
  case Type::Undefined: return ValueList();
  case Type::List: return v.items();
  case Type::Dict: {
    ValueList keys;
    for (const auto &e : v.dict->entries)
      keys.push_back(e.first);
    return keys;
  }
  case Type::String: {
    ValueList chars;
    for (char32_t cp : decodeUtf8(v.s())) {
      std::string c;
      appendUtf8(c, cp);
      chars.push_back(Value::string(std::move(c), v.markup));
    }
    return chars;
  }
  case Type::Generator: {
    if (v.gen->consumed)
      return ValueList();
    v.gen->consumed = true;
    if (!v.gen->deferred)
      return v.gen->deferred;
    return v.gen->items;
  }
  case Type::Loop: return v.loop->items;
  default: return Status::error("'" + typeName(v) + "' object is not iterable");
  }
}

StatusOr<int64_t> length(const Value &v) {
  switch (v.type) {
  case Type::Undefined: return int64_t(0);
  case Type::String: return int64_t(codePointCount(v.s()));
  case Type::List: return int64_t(v.items().size());
  case Type::Dict: return int64_t(v.dict->entries.size());
  case Type::Loop: return int64_t(v.loop->items.size());
  default: return Status::error("object of type '" + typeName(v) + "' has no len()");
  }
}

Status checkHashable(const Value &v) {
  switch (v.type) {
  case Type::List:
    if (v.listKind == ListKind::Tuple || v.listKind == ListKind::Range) {
      for (const Value &e : v.items())
        if (Status s = checkHashable(e); !s)
          return s;
      return Status::ok();
    }
    break;
  case Type::Dict:
  case Type::Namespace:
  case Type::Generator:
  case Type::Loop: break;
  default: return Status::ok();
  }
  return Status::error("unhashable type: '" + typeName(v) + "'");
}

} // namespace kiln::jinja
