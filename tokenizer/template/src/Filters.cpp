// jinja2's builtin filters and tests (the ones chat templates use), with transformers' tojson.
#include "Builtins.h"
#include "Parser.h"

#include "Unicode.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

namespace kiln::jinja {
namespace {

using FilterFn = StatusOr<Value> (*)(Interpreter &, const Value &, CallArgs &);
using TestFn = StatusOr<bool> (*)(Interpreter &, const Value &, CallArgs &);

// make_attrgetter: "a.b.0" looks up a, then b, then item 0, each as environment.getitem does.
StatusOr<Value> lookupPath(Interpreter &in, Value item, const Value &attribute,
                           const std::optional<Value> &dflt = std::nullopt) {
  std::vector<Value> parts;
  if (attribute.isString()) {
    ValueList split;
    KILN_ASSIGN(split, pySplit(attribute.s(), std::string("."), -1, false));
    for (Value &p : split) {
      bool digits = !p.s().empty() &&
                    std::all_of(p.s().begin(), p.s().end(), [](char c) { return c >= '0' && c <= '9'; });
      parts.push_back(digits && p.s().size() < 18 ? Value::int_(std::atoll(p.s().c_str())) : p);
    }
  } else if (attribute.type != Type::None) {
    parts.push_back(attribute);
  }
  for (const Value &part : parts) {
    KILN_ASSIGN(item, in.getItem(item, part));
    if (dflt && dflt->type != Type::None && item.isUndefined())
      item = *dflt;
  }
  return item;
}

StatusOr<Value> filterTrim(Interpreter &, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("trim", args, {"chars"}));
  Value s;
  KILN_ASSIGN(s, softStr(v));
  std::optional<std::string> chars;
  if (a[0] && a[0]->type != Type::None)
    KILN_ASSIGN(chars, stringArg(a[0], "trim chars"));
  return Value::string(pyStrip(s.s(), chars, true, true));
}

StatusOr<Value> filterLength(Interpreter &, const Value &v, CallArgs &args) {
  KILN_TRY(bindArgs("length", args, {}).status());
  int64_t n;
  KILN_ASSIGN(n, length(v));
  return Value::int_(n);
}

template <std::string (*Fn)(std::string_view)> StatusOr<Value> caseFilter(Interpreter &, const Value &v,
                                                                           CallArgs &args) {
  KILN_TRY(bindArgs("case filter", args, {}).status());
  Value s;
  KILN_ASSIGN(s, softStr(v));
  return Value::string(Fn(s.s()), s.markup);
}

// jinja2's title filter: each run split off by [-\s({[<]+ gets its first character upper-cased and the
// rest lower-cased.
StatusOr<Value> filterTitle(Interpreter &, const Value &v, CallArgs &args) {
  KILN_TRY(bindArgs("title", args, {}).status());
  Value s;
  KILN_ASSIGN(s, softStr(v));
  std::u32string cps = decodeUtf8(s.s());
  auto isSep = [](char32_t c) { return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || isPySpace(c); };
  std::string out;
  size_t i = 0;
  while (i < cps.size()) {
    size_t j = i;
    bool sep = isSep(cps[i]);
    while (j < cps.size() && isSep(cps[j]) == sep)
      ++j;
    std::string item = encodeUtf8(std::u32string_view(cps).substr(i, j - i));
    std::string first = encodeUtf8(std::u32string_view(cps).substr(i, 1));
    out += pyUpper(first) + pyLower(item.substr(first.size()));
    i = j;
  }
  return Value::string(std::move(out), s.markup);
}

StatusOr<Value> filterDefault(Interpreter &, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("default", args, {"default_value", "boolean"}));
  bool boolean = a[1] && truthy(*a[1]);
  if (v.isUndefined() || (boolean && !truthy(v)))
    return a[0] ? *a[0] : Value::string("");
  return v;
}

StatusOr<Value> filterString(Interpreter &, const Value &v, CallArgs &args) {
  KILN_TRY(bindArgs("string", args, {}).status());
  return softStr(v);
}

StatusOr<Value> filterSafe(Interpreter &, const Value &v, CallArgs &args) {
  KILN_TRY(bindArgs("safe", args, {}).status());
  std::string s;
  KILN_ASSIGN(s, toStr(v));
  return Value::string(std::move(s), true);
}

StatusOr<Value> filterEscape(Interpreter &, const Value &v, CallArgs &args) {
  KILN_TRY(bindArgs("escape", args, {}).status());
  if (v.isString() && v.markup)
    return v;
  std::string s;
  KILN_ASSIGN(s, toStr(v));
  return Value::string(htmlEscape(s), true);
}

StatusOr<Value> filterTojson(Interpreter &in, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"}));
  JsonDumpOptions o;
  o.ensureAscii = a[0] && truthy(*a[0]);
  if (a[1] && a[1]->type != Type::None) {
    o.hasIndent = true;
    o.itemSeparator = ",";
    if (a[1]->isString()) {
      o.indent = a[1]->s();
    } else {
      int64_t n;
      KILN_ASSIGN(n, intArg(a[1], "tojson indent"));
      o.indent = std::string(size_t(std::clamp<int64_t>(n, 0, 1024)), ' ');
    }
  }
  if (a[2] && a[2]->type != Type::None) {
    ValueList seps;
    KILN_ASSIGN(seps, iterate(*a[2]));
    if (seps.size() != 2 || !seps[0].isString() || !seps[1].isString())
      return Status::error("tojson separators must be two strings");
    o.itemSeparator = seps[0].s();
    o.keySeparator = seps[1].s();
  }
  o.sortKeys = a[3] && truthy(*a[3]);
  std::string text;
  KILN_ASSIGN(text, jsonDumps(v, o));
  KILN_TRY(in.checkSize(text.size()));
  return Value::string(std::move(text));
}

StatusOr<Value> filterFirst(Interpreter &, const Value &v, CallArgs &args) {
  KILN_TRY(bindArgs("first", args, {}).status());
  ValueList items;
  KILN_ASSIGN(items, iterate(v));
  if (items.empty())
    return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

StatusOr<Value> filterLast(Interpreter &, const Value &v, CallArgs &args) {
  KILN_TRY(bindArgs("last", args, {}).status());
  if (v.type == Type::Generator || v.type == Type::Loop)
    return Status::error("'" + typeName(v) + "' object is not reversible");
  ValueList items;
  KILN_ASSIGN(items, iterate(v));
  if (items.empty())
    return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

StatusOr<Value> filterJoin(Interpreter &in, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("join", args, {"d", "attribute"}));
  ValueList items;
  KILN_ASSIGN(items, iterate(v));
  std::string sep, out; // autoescape is off: jinja2 joins str() of everything, Markup or not
  if (a[0])
    KILN_ASSIGN(sep, toStr(*a[0]));
  for (size_t i = 0; i < items.size(); ++i) {
    Value item = items[i];
    if (a[1] && a[1]->type != Type::None)
      KILN_ASSIGN(item, lookupPath(in, item, *a[1]));
    std::string text;
    KILN_ASSIGN(text, toStr(item));
    if (i)
      out += sep;
    out += text;
    KILN_TRY(in.checkSize(out.size()));
  }
  return Value::string(std::move(out));
}

StatusOr<Value> filterReplace(Interpreter &, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("replace", args, {"old", "new", "count"}, 2));
  std::string s, old, replacement;
  KILN_ASSIGN(s, toStr(v));
  KILN_ASSIGN(old, toStr(*a[0]));
  KILN_ASSIGN(replacement, toStr(*a[1]));
  int64_t count = -1;
  if (a[2] && a[2]->type != Type::None)
    KILN_ASSIGN(count, intArg(a[2], "replace count"));
  return Value::string(pyReplace(s, old, replacement, count));
}

StatusOr<Value> filterItems(Interpreter &, const Value &v, CallArgs &args) {
  KILN_TRY(bindArgs("items", args, {}).status());
  if (v.isUndefined())
    return Value::generator({});
  if (v.type != Type::Dict) // raised when the generator runs, as jinja2's do_items does
    return Value::generator({}, Status::error("Can only get item pairs from a mapping."));
  ValueList pairs;
  for (const auto &e : v.dict->entries)
    pairs.push_back(Value::listOf({e.first, e.second}, ListKind::Tuple));
  return Value::generator(std::move(pairs));
}

StatusOr<Value> filterList(Interpreter &, const Value &v, CallArgs &args) {
  KILN_TRY(bindArgs("list", args, {}).status());
  ValueList items;
  KILN_ASSIGN(items, iterate(v));
  return Value::listOf(std::move(items));
}

// select / reject / selectattr / rejectattr: keep the items whose test (or truthiness) is `keep`.
StatusOr<Value> selectOrReject(Interpreter &in, const Value &v, CallArgs &args, bool byAttribute, bool keep) {
  if (!truthy(v) && v.type != Type::Generator)
    return Value::generator({});
  std::vector<Value> rest = args.positional;
  Value attribute;
  if (byAttribute) {
    if (rest.empty())
      return Status::error("Missing parameter for attribute name");
    attribute = rest.front();
    rest.erase(rest.begin());
  }
  std::string test;
  if (!rest.empty()) {
    KILN_ASSIGN(test, stringArg(rest.front(), "test name"));
    rest.erase(rest.begin());
  }
  ValueList items, out;
  KILN_ASSIGN(items, iterate(v));
  for (const Value &item : items) {
    KILN_TRY(in.charge(1));
    Value probe = item;
    if (byAttribute) {
      auto p = lookupPath(in, item, attribute);
      if (!p.ok())
        return Value::generator(std::move(out), p.status());
      probe = *p;
    }
    bool pass;
    if (test.empty()) {
      pass = truthy(probe);
    } else {
      CallArgs testArgs{rest, args.keyword};
      auto r = in.applyTest(test, probe, testArgs);
      if (!r.ok())
        return Value::generator(std::move(out), r.status());
      pass = *r;
    }
    if (pass == keep)
      out.push_back(item);
  }
  return Value::generator(std::move(out));
}

StatusOr<Value> filterSelect(Interpreter &in, const Value &v, CallArgs &a) { return selectOrReject(in, v, a, false, true); }
StatusOr<Value> filterReject(Interpreter &in, const Value &v, CallArgs &a) { return selectOrReject(in, v, a, false, false); }
StatusOr<Value> filterSelectattr(Interpreter &in, const Value &v, CallArgs &a) { return selectOrReject(in, v, a, true, true); }
StatusOr<Value> filterRejectattr(Interpreter &in, const Value &v, CallArgs &a) { return selectOrReject(in, v, a, true, false); }

StatusOr<Value> filterMap(Interpreter &in, const Value &v, CallArgs &args) {
  if (!truthy(v) && v.type != Type::Generator)
    return Value::generator({});
  std::optional<Value> attribute, dflt;
  CallArgs rest = args;
  std::string filter;
  if (args.positional.empty() && !args.keyword.empty()) {
    Bound a;
    KILN_ASSIGN(a, bindArgs("map", args, {"attribute", "default"}));
    attribute = a[0];
    dflt = a[1];
    if (!attribute)
      return Status::error("map requires a filter argument");
  } else {
    if (args.positional.empty())
      return Status::error("map requires a filter argument");
    KILN_ASSIGN(filter, stringArg(args.positional[0], "map filter name"));
    rest.positional.erase(rest.positional.begin());
  }
  ValueList items, out;
  KILN_ASSIGN(items, iterate(v));
  for (const Value &item : items) {
    KILN_TRY(in.charge(1));
    CallArgs callArgs = rest;
    auto r = attribute ? lookupPath(in, item, *attribute, dflt) : in.applyFilter(filter, item, callArgs);
    if (!r.ok())
      return Value::generator(std::move(out), r.status());
    out.push_back(std::move(*r));
  }
  return Value::generator(std::move(out));
}

StatusOr<Value> filterReverse(Interpreter &, const Value &v, CallArgs &args) {
  KILN_TRY(bindArgs("reverse", args, {}).status());
  if (v.isString()) {
    std::u32string cps = decodeUtf8(v.s());
    std::reverse(cps.begin(), cps.end());
    return Value::string(encodeUtf8(cps), v.markup);
  }
  ValueList items;
  KILN_ASSIGN(items, iterate(v));
  std::reverse(items.begin(), items.end());
  if (v.type == Type::Generator || v.type == Type::Loop)
    return Value::listOf(std::move(items)); // jinja2 materializes a non-reversible iterable as a list
  return Value::generator(std::move(items));
}

// The key used by sort / unique / dictsort / min / max: the item (or its attribute), lower-cased
// when case-insensitive.
StatusOr<Value> sortKey(Interpreter &in, const Value &item, const std::optional<Value> &attribute,
                        bool caseSensitive) {
  Value key = item;
  if (attribute && attribute->type != Type::None)
    KILN_ASSIGN(key, lookupPath(in, item, *attribute));
  if (!caseSensitive && key.isString())
    return Value::string(pyLower(key.s()));
  return key;
}

StatusOr<ValueList> sortedBy(ValueList items, const ValueList &keys, bool reverse) {
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  Status failure;
  // Stable: equal keys keep their order (ties broken by position).
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    if (!failure)
      return x < y;
    auto lt = reverse ? lessThan(keys[y], keys[x]) : lessThan(keys[x], keys[y]);
    auto gt = reverse ? lessThan(keys[x], keys[y]) : lessThan(keys[y], keys[x]);
    if (!lt.ok() || !gt.ok()) {
      failure = lt.ok() ? gt.status() : lt.status();
      return x < y;
    }
    return *lt || (!*gt && x < y);
  });
  KILN_TRY(failure);
  ValueList out;
  for (size_t i : order)
    out.push_back(std::move(items[i]));
  return out;
}

StatusOr<Value> filterSort(Interpreter &in, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("sort", args, {"reverse", "case_sensitive", "attribute"}));
  ValueList items, keys;
  KILN_ASSIGN(items, iterate(v));
  KILN_TRY(in.charge(items.size()));
  // jinja2's make_multi_attrgetter: "a,b" sorts by a then b; each key is a list of those values, compared as
// Python compares lists (== first, so undefined values are equal and never reach <).
  ValueList attributes;
  if (a[2] && a[2]->isString())
    KILN_ASSIGN(attributes, pySplit(a[2]->s(), std::string(","), -1, false));
  else
    attributes.push_back(a[2] ? *a[2] : Value::none());
  for (const Value &item : items) {
    ValueList parts;
    for (const Value &attribute : attributes) {
      Value k;
      KILN_ASSIGN(k, sortKey(in, item, attribute, a[1] && truthy(*a[1])));
      parts.push_back(std::move(k));
    }
    keys.push_back(Value::listOf(std::move(parts)));
  }
  ValueList sorted;
  KILN_ASSIGN(sorted, sortedBy(std::move(items), keys, a[0] && truthy(*a[0])));
  return Value::listOf(std::move(sorted));
}

StatusOr<Value> filterDictsort(Interpreter &in, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("dictsort", args, {"case_sensitive", "by", "reverse"}));
  if (v.type != Type::Dict)
    return Status::error("dictsort requires a mapping, not " + typeName(v));
  std::string by = "key";
  if (a[1])
    KILN_ASSIGN(by, stringArg(a[1], "dictsort by"));
  if (by != "key" && by != "value")
    return Status::error("You can only sort by either 'key' or 'value'");
  ValueList items, keys;
  for (const auto &e : v.dict->entries) {
    items.push_back(Value::listOf({e.first, e.second}, ListKind::Tuple));
    Value k;
    KILN_ASSIGN(k, sortKey(in, by == "key" ? e.first : e.second, std::nullopt, a[0] && truthy(*a[0])));
    keys.push_back(std::move(k));
  }
  ValueList sorted;
  KILN_ASSIGN(sorted, sortedBy(std::move(items), keys, a[2] && truthy(*a[2])));
  return Value::listOf(std::move(sorted));
}

StatusOr<Value> filterUnique(Interpreter &in, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("unique", args, {"case_sensitive", "attribute"}));
  ValueList items, seen, out;
  KILN_ASSIGN(items, iterate(v));
  for (const Value &item : items) {
    KILN_TRY(in.charge(1 + seen.size() / 64));
    Value k;
    KILN_ASSIGN(k, sortKey(in, item, a[1], a[0] && truthy(*a[0])));
    KILN_TRY(checkHashable(k));
    if (std::any_of(seen.begin(), seen.end(), [&](const Value &s) { return equals(s, k); }))
      continue;
    seen.push_back(k);
    out.push_back(item);
  }
  return Value::generator(std::move(out));
}

StatusOr<Value> minOrMax(Interpreter &in, const Value &v, CallArgs &args, bool max) {
  Bound a;
  KILN_ASSIGN(a, bindArgs(max ? "max" : "min", args, {"case_sensitive", "attribute"}));
  ValueList items;
  KILN_ASSIGN(items, iterate(v));
  if (items.empty())
    return Value::undefined(std::string("No aggregated item, sequence was empty."));
  size_t best = 0;
  Value bestKey;
  for (size_t i = 0; i < items.size(); ++i) {
    Value k;
    KILN_ASSIGN(k, sortKey(in, items[i], a[1], a[0] && truthy(*a[0])));
    if (i == 0) {
      bestKey = k;
      continue;
    }
    bool better;
    KILN_ASSIGN(better, max ? lessThan(bestKey, k) : lessThan(k, bestKey));
    if (better) {
      best = i;
      bestKey = k;
    }
  }
  return items[best];
}

StatusOr<Value> filterMax(Interpreter &in, const Value &v, CallArgs &a) { return minOrMax(in, v, a, true); }
StatusOr<Value> filterMin(Interpreter &in, const Value &v, CallArgs &a) { return minOrMax(in, v, a, false); }

StatusOr<Value> filterSum(Interpreter &in, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("sum", args, {"attribute", "start"}));
  ValueList items;
  KILN_ASSIGN(items, iterate(v));
  Value total = a[1] ? *a[1] : Value::int_(0);
  for (const Value &item : items) {
    Value x = item;
    if (a[0] && a[0]->type != Type::None)
      KILN_ASSIGN(x, lookupPath(in, item, *a[0]));
    KILN_ASSIGN(total, binaryOp(in, "+", total, x));
  }
  return total;
}

StatusOr<Value> filterAbs(Interpreter &in, const Value &v, CallArgs &args) {
  KILN_TRY(bindArgs("abs", args, {}).status());
  if (!v.isNumber())
    return Status::error("bad operand type for abs(): '" + typeName(v) + "'");
  if (v.type == Type::Float)
    return Value::float_(std::fabs(v.number));
  Value i = v.type == Type::Bool ? Value::int_(v.boolean) : v;
  return i.integer < 0 ? binaryOp(in, "neg", i, Value()) : StatusOr<Value>(i);
}

// Python's float(str): optional whitespace, sign, digits with _ separators, inf / nan.
std::optional<double> parsePyFloat(const std::string &text) {
  std::string s = pyStrip(text, std::nullopt, true, true), clean;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && std::isdigit((unsigned char)s[i - 1]) &&
        std::isdigit((unsigned char)s[i + 1]))
      continue;
    clean.push_back(s[i]);
  }
  if (clean.empty() || clean.find_first_of("xXpP") != std::string::npos)
    return std::nullopt;
  std::string lower = pyLower(clean);
  std::string body = lower[0] == '+' || lower[0] == '-' ? lower.substr(1) : lower;
  if (body == "inf" || body == "infinity" || body == "nan") {
    double x = body == "nan" ? NAN : INFINITY;
    return lower[0] == '-' ? -x : x;
  }
  if (body.find_first_not_of("0123456789.e+-") != std::string::npos)
    return std::nullopt;
  char *end = nullptr;
  double d = std::strtod(clean.c_str(), &end);
  if (!end || *end != '\0')
    return std::nullopt;
  return d;
}

StatusOr<Value> filterFloat(Interpreter &, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("float", args, {"default"}));
  Value dflt = a[0] ? *a[0] : Value::float_(0.0);
  if (v.isNumber())
    return Value::float_(v.type == Type::Float ? v.number : double(v.type == Type::Bool ? v.boolean : v.integer));
  if (v.isString())
    if (std::optional<double> d = parsePyFloat(v.s()))
      return Value::float_(*d);
  return dflt;
}

StatusOr<Value> filterInt(Interpreter &, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("int", args, {"default", "base"}));
  Value dflt = a[0] ? *a[0] : Value::int_(0);
  if (a[1] && !(a[1]->type == Type::Int && a[1]->integer == 10))
    return Status::error("int(): a base other than 10 is not supported");
  auto fromDouble = [&](double d) -> StatusOr<Value> {
    if (std::isnan(d) || std::isinf(d))
      return Status::error(std::isnan(d) ? "cannot convert float NaN to integer"
                                         : "cannot convert float infinity to integer");
    if (std::fabs(d) >= 9.2e18)
      return Status::error("integer overflow (Python's unbounded integers are supported to 64 bits)");
    return Value::int_(int64_t(d));
  };
  if (v.type == Type::Int || v.type == Type::Bool)
    return Value::int_(v.type == Type::Bool ? v.boolean : v.integer);
  if (v.type == Type::Float)
    return fromDouble(v.number);
  if (v.isString()) {
    std::string s = pyStrip(v.s(), std::nullopt, true, true), clean;
    for (char c : s)
      if (c != '_')
        clean.push_back(c);
    size_t start = !clean.empty() && (clean[0] == '+' || clean[0] == '-') ? 1 : 0;
    bool digits = clean.size() > start && clean.size() - start < 19 &&
                  clean.find_first_not_of("0123456789", start) == std::string::npos &&
                  s.find("__") == std::string::npos && s.front() != '_' && s.back() != '_';
    if (digits)
      return Value::int_(std::atoll(clean.c_str()));
    if (std::optional<double> d = parsePyFloat(v.s()))
      return fromDouble(*d);
  }
  return dflt;
}

StatusOr<Value> filterRound(Interpreter &, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("round", args, {"precision", "method"}));
  int64_t precision = 0;
  if (a[0])
    KILN_ASSIGN(precision, intArg(a[0], "round precision"));
  std::string method = "common";
  if (a[1])
    KILN_ASSIGN(method, stringArg(a[1], "round method"));
  if (!v.isNumber())
    return Status::error("round() needs a number, not " + typeName(v));
  double x = v.type == Type::Float ? v.number : double(v.type == Type::Bool ? v.boolean : v.integer);
  if (precision < 0 || precision > 20)
    return Status::error("round(): precision outside 0..20 is not supported");
  if (method == "common" && v.type != Type::Float) // round(int, n) is that int
    return Value::int_(v.type == Type::Bool ? v.boolean : v.integer);
  if (method == "common") { // Python's round(): correctly rounded, ties to even
    char buf[400];
    std::snprintf(buf, sizeof buf, "%.*f", int(precision), x);
    return Value::float_(std::strtod(buf, nullptr));
  }
  if (method != "ceil" && method != "floor")
    return Status::error("method must be common, ceil or floor");
  double scale = std::pow(10.0, double(precision));
  return Value::float_((method == "ceil" ? std::ceil(x * scale) : std::floor(x * scale)) / scale);
}

StatusOr<Value> filterCapitalize(Interpreter &in, const Value &v, CallArgs &a) { return caseFilter<pyCapitalize>(in, v, a); }
StatusOr<Value> filterLower(Interpreter &in, const Value &v, CallArgs &a) { return caseFilter<pyLower>(in, v, a); }
StatusOr<Value> filterUpper(Interpreter &in, const Value &v, CallArgs &a) { return caseFilter<pyUpper>(in, v, a); }

StatusOr<Value> filterCenter(Interpreter &in, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("center", args, {"width"}));
  Value s;
  KILN_ASSIGN(s, softStr(v));
  CallArgs widthArgs;
  widthArgs.positional.push_back(a[0] ? *a[0] : Value::int_(80));
  std::optional<Value> method = stringMethod(Value::string(s.s()), "center");
  return in.call(*method, widthArgs);
}

StatusOr<Value> filterIndent(Interpreter &, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("indent", args, {"width", "first", "blank"}));
  std::string indention = "    ";
  if (a[0] && a[0]->isString()) {
    indention = a[0]->s();
  } else if (a[0]) {
    int64_t w;
    KILN_ASSIGN(w, intArg(a[0], "indent width"));
    indention = std::string(size_t(std::clamp<int64_t>(w, 0, 1024)), ' ');
  }
  if (!v.isString()) // jinja2 appends "\n" to the value itself: only strings work
    return Status::error("indent needs a string, not " + typeName(v));
  const Value &sv = v;
  std::vector<std::string> lines = pySplitLines(sv.s() + "\n", false);
  std::string out;
  if (a[2] && truthy(*a[2])) {
    for (size_t i = 0; i < lines.size(); ++i)
      out += (i ? "\n" + indention : "") + lines[i];
  } else {
    for (size_t i = 0; i < lines.size(); ++i)
      out += i == 0 ? lines[i] : "\n" + (lines[i].empty() ? "" : indention) + lines[i];
  }
  if (a[1] && truthy(*a[1]))
    out = indention + out;
  return Value::string(std::move(out), sv.markup);
}

StatusOr<Value> filterBatch(Interpreter &, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("batch", args, {"linecount", "fill_with"}, 1));
  int64_t n;
  KILN_ASSIGN(n, intArg(a[0], "batch linecount"));
  if (n <= 0)
    return Status::error("batch linecount must be positive");
  ValueList items, out, current;
  KILN_ASSIGN(items, iterate(v));
  for (Value &item : items) {
    current.push_back(std::move(item));
    if (int64_t(current.size()) == n) {
      out.push_back(Value::listOf(std::move(current)));
      current.clear();
    }
  }
  if (!current.empty()) {
    if (a[1] && a[1]->type != Type::None)
      while (int64_t(current.size()) < n)
        current.push_back(*a[1]);
    out.push_back(Value::listOf(std::move(current)));
  }
  return Value::generator(std::move(out));
}

StatusOr<Value> filterAttr(Interpreter &, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("attr", args, {"name"}, 1));
  std::string name;
  KILN_ASSIGN(name, toStr(*a[0]));
  if (v.isUndefined())
    return Status::error(v.s().empty() ? "attr() of an undefined value" : v.s());
  if (std::optional<Value> attr = pythonAttribute(v, name))
    return *attr;
  return Value::undefined("'" + typeName(v) + " object' has no attribute '" + name + "'");
}

const std::map<std::string, FilterFn> &filters() {
  static const std::map<std::string, FilterFn> table = {
      {"abs", filterAbs},         {"attr", filterAttr},           {"batch", filterBatch},
      {"capitalize", filterCapitalize}, {"center", filterCenter}, {"count", filterLength},
      {"d", filterDefault},       {"default", filterDefault},     {"dictsort", filterDictsort},
      {"e", filterEscape},        {"escape", filterEscape},       {"first", filterFirst},
      {"float", filterFloat},     {"indent", filterIndent},       {"int", filterInt},
      {"items", filterItems},     {"join", filterJoin},           {"last", filterLast},
      {"length", filterLength},   {"list", filterList},           {"lower", filterLower},
      {"map", filterMap},         {"max", filterMax},             {"min", filterMin},
      {"reject", filterReject},   {"rejectattr", filterRejectattr}, {"replace", filterReplace},
      {"reverse", filterReverse}, {"round", filterRound},         {"safe", filterSafe},
      {"select", filterSelect},   {"selectattr", filterSelectattr}, {"sort", filterSort},
      {"string", filterString},   {"sum", filterSum},             {"title", filterTitle},
      {"tojson", filterTojson},   {"trim", filterTrim},           {"unique", filterUnique},
      {"upper", filterUpper}};
  return table;
}

// ---- tests ----

StatusOr<bool> noArgs(const char *name, CallArgs &args) {
  KILN_TRY(bindArgs(name, args, {}).status());
  return true;
}

#define KILN_SIMPLE_TEST(fn, name, expr)                                                                     \
  StatusOr<bool> fn(Interpreter &, const Value &v, CallArgs &args) {                                       \
    KILN_TRY(noArgs(name, args).status());                                                                   \
    return (expr);                                                                                           \
  }

KILN_SIMPLE_TEST(testDefined, "defined", !v.isUndefined())
KILN_SIMPLE_TEST(testUndefined, "undefined", v.isUndefined())
KILN_SIMPLE_TEST(testNone, "none", v.type == Type::None)
KILN_SIMPLE_TEST(testBoolean, "boolean", v.type == Type::Bool)
KILN_SIMPLE_TEST(testFalse, "false", v.type == Type::Bool && !v.boolean)
KILN_SIMPLE_TEST(testTrue, "true", v.type == Type::Bool && v.boolean)
KILN_SIMPLE_TEST(testInteger, "integer", v.type == Type::Int)
KILN_SIMPLE_TEST(testFloat, "float", v.type == Type::Float)
KILN_SIMPLE_TEST(testNumber, "number", v.isNumber())
KILN_SIMPLE_TEST(testString, "string", v.isString())
KILN_SIMPLE_TEST(testMapping, "mapping", v.type == Type::Dict)
KILN_SIMPLE_TEST(testIterable, "iterable",
                 v.type == Type::Undefined || v.type == Type::String || v.type == Type::List ||
                     v.type == Type::Dict || v.type == Type::Generator || v.type == Type::Loop)
KILN_SIMPLE_TEST(testSequence, "sequence",
                 v.type == Type::Undefined || v.type == Type::String || v.type == Type::List ||
                     v.type == Type::Dict)
KILN_SIMPLE_TEST(testCallable, "callable", v.type == Type::Callable)
KILN_SIMPLE_TEST(testEscaped, "escaped", v.isString() && v.markup)
KILN_SIMPLE_TEST(testLower, "lower", toStr(v).ok() && pyIsLower(*toStr(v)))
KILN_SIMPLE_TEST(testUpper, "upper", toStr(v).ok() && pyIsUpper(*toStr(v)))

StatusOr<bool> compareTest(const char *name, const Value &v, CallArgs &args, const std::string &op) {
  Bound a;
  KILN_ASSIGN(a, bindArgs(name, args, {"other"}, 1));
  const Value &other = *a[0];
  if (op == "==")
    return equals(v, other);
  if (op == "!=")
    return !equals(v, other);
  for (const Value *x : {&v, &other})
    if (x->isUndefined())
      return Status::error(x->s().empty() ? "an undefined value cannot be compared" : x->s());
  bool lt;
  KILN_ASSIGN(lt, op[0] == '<' ? lessThan(v, other) : lessThan(other, v));
  return lt || (op.size() == 2 && equals(v, other));
}

#define KILN_COMPARE_TEST(fn, name, op)                                                                      \
  StatusOr<bool> fn(Interpreter &, const Value &v, CallArgs &args) { return compareTest(name, v, args, op); }
KILN_COMPARE_TEST(testEq, "eq", "==")
KILN_COMPARE_TEST(testNe, "ne", "!=")
KILN_COMPARE_TEST(testLt, "lt", "<")
KILN_COMPARE_TEST(testLe, "le", "<=")
KILN_COMPARE_TEST(testGt, "gt", ">")
KILN_COMPARE_TEST(testGe, "ge", ">=")

StatusOr<bool> testIn(Interpreter &, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("in", args, {"seq"}, 1));
  return contains(*a[0], v);
}

StatusOr<bool> testSameas(Interpreter &, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("sameas", args, {"other"}, 1));
  const Value &o = *a[0];
  if (v.type == Type::None || o.type == Type::None || v.type == Type::Bool || o.type == Type::Bool)
    return v.type == o.type && (v.type != Type::Bool || v.boolean == o.boolean);
  if (v.type == o.type && (v.type == Type::Namespace || v.type == Type::Callable))
    return equals(v, o);
  return Status::error("'sameas' on values other than none, booleans, namespaces and functions is not supported");
}

// odd / even / divisibleby compute value % n as Python does; on a string that is printf-style formatting.
StatusOr<Value> moduloForTest(Interpreter &in, const char *name, const Value &v, const Value &n) {
  if (v.isString())
    return Status::error(std::string("the '") + name +
                         "' test on a string (printf-style formatting in Python) is not supported");
  return binaryOp(in, "%", v, n);
}

StatusOr<bool> parity(Interpreter &in, const Value &v, CallArgs &args, const char *name, bool odd) {
  KILN_TRY(noArgs(name, args).status());
  Value mod;
  KILN_ASSIGN(mod, moduloForTest(in, name, v, Value::int_(2)));
  return equals(mod, Value::int_(odd ? 1 : 0));
}

StatusOr<bool> testOdd(Interpreter &in, const Value &v, CallArgs &a) { return parity(in, v, a, "odd", true); }
StatusOr<bool> testEven(Interpreter &in, const Value &v, CallArgs &a) { return parity(in, v, a, "even", false); }

StatusOr<bool> testDivisibleby(Interpreter &in, const Value &v, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("divisibleby", args, {"num"}, 1));
  Value mod;
  KILN_ASSIGN(mod, moduloForTest(in, "divisibleby", v, *a[0]));
  return equals(mod, Value::int_(0));
}

StatusOr<bool> testFilterName(Interpreter &, const Value &v, CallArgs &args) {
  KILN_TRY(noArgs("filter", args).status());
  return v.isString() && isKnownFilter(v.s());
}

StatusOr<bool> testTestName(Interpreter &, const Value &v, CallArgs &args) {
  KILN_TRY(noArgs("test", args).status());
  return v.isString() && isKnownTest(v.s());
}

const std::map<std::string, TestFn> &tests() {
  static const std::map<std::string, TestFn> table = {
      {"defined", testDefined},   {"undefined", testUndefined}, {"none", testNone},
      {"boolean", testBoolean},   {"false", testFalse},         {"true", testTrue},
      {"integer", testInteger},   {"float", testFloat},         {"number", testNumber},
      {"string", testString},     {"mapping", testMapping},     {"iterable", testIterable},
      {"sequence", testSequence}, {"callable", testCallable},   {"escaped", testEscaped},
      {"lower", testLower},       {"upper", testUpper},         {"eq", testEq},
      {"equalto", testEq},        {"==", testEq},               {"ne", testNe},
      {"!=", testNe},             {"lt", testLt},               {"lessthan", testLt},
      {"<", testLt},              {"le", testLe},               {"<=", testLe},
      {"gt", testGt},             {"greaterthan", testGt},      {">", testGt},
      {"ge", testGe},             {">=", testGe},               {"in", testIn},
      {"sameas", testSameas},     {"odd", testOdd},             {"even", testEven},
      {"divisibleby", testDivisibleby}, {"filter", testFilterName}, {"test", testTestName}};
  return table;
}

} // namespace

bool isKnownFilter(const std::string &name) { return filters().count(name) != 0; }
bool isKnownTest(const std::string &name) { return tests().count(name) != 0; }

StatusOr<Value> Interpreter::applyFilter(const std::string &name, const Value &input, CallArgs &args) {
  auto it = filters().find(name);
  if (it == filters().end())
    return Status::error("no filter named '" + name + "'");
  KILN_TRY(charge(1));
  return it->second(*this, input, args);
}

StatusOr<bool> Interpreter::applyTest(const std::string &name, const Value &input, CallArgs &args) {
  auto it = tests().find(name);
  if (it == tests().end())
    return Status::error("no test named '" + name + "'");
  KILN_TRY(charge(1));
  return it->second(*this, input, args);
}

} // namespace kiln::jinja
