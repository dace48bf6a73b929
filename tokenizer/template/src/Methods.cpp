// The methods of Python's str that chat templates call (strip, split, startswith, ...), on code points.
#include "Builtins.h"

#include "Unicode.h"

#include <algorithm>

namespace kiln::jinja {
namespace {

bool isLineBreak(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
         c == 0x85 || c == 0x2028 || c == 0x2029;
}

// Python slice bounds [start:end] of a length-n sequence (None = open end).
void clampRange(const std::optional<Value> &start, const std::optional<Value> &end, int64_t n, int64_t &lo,
                int64_t &hi) {
  auto adjust = [n](const std::optional<Value> &v, int64_t dflt) {
    if (!v || v->type == Type::None)
      return dflt;
    int64_t i = v->type == Type::Bool ? v->boolean : v->integer;
    if (i < 0)
      i = std::max<int64_t>(i + n, 0);
    return std::min(i, n);
  };
  lo = adjust(start, 0);
  hi = adjust(end, n);
}

Status checkIndexArgs(const Bound &a, size_t from, const std::string &fn) {
  for (size_t i = from; i < a.size(); ++i)
    if (a[i] && a[i]->type != Type::None && a[i]->type != Type::Int && a[i]->type != Type::Bool)
      return Status::error(fn + "(): slice indices must be integers or None");
  return Status::ok();
}

// find / rfind / index / rindex / count / startswith / endswith over self[start:end].
StatusOr<Value> searchMethod(const std::string &name, const Value &self, CallArgs &args) {
  std::string fn = "str." + name;
  bool affix = name == "startswith" || name == "endswith";
  Bound a;
  KILN_ASSIGN(a, bindArgs(fn, args, {affix ? "prefix" : "sub", "start", "end"}, 1));
  KILN_TRY(checkIndexArgs(a, 1, fn));
  std::u32string s = decodeUtf8(self.s());
  int64_t n = int64_t(s.size()), lo, hi;
  clampRange(a[1], a[2], n, lo, hi);
  std::vector<std::string> needles;
  if (affix && a[0]->type == Type::List && a[0]->listKind == ListKind::Tuple) {
    for (const Value &v : a[0]->items()) {
      if (!v.isString())
        return Status::error(fn + "(): tuple for " + name + " must only contain str, not " + typeName(v));
      needles.push_back(v.s());
    }
  } else {
    std::string needle;
    KILN_ASSIGN(needle, stringArg(a[0], (fn + "() argument").c_str()));
    needles.push_back(needle);
  }
  bool startBeyond = a[1] && a[1]->type != Type::None && lo > n;
  std::u32string window = lo <= hi ? s.substr(size_t(lo), size_t(hi - lo)) : std::u32string();
  if (affix) {
    for (const std::string &needle : needles) {
      std::u32string nd = decodeUtf8(needle);
      if (lo > hi || startBeyond)
        continue;
      bool match = nd.size() <= window.size() &&
                   (name == "startswith" ? window.compare(0, nd.size(), nd) == 0
                                         : window.compare(window.size() - nd.size(), nd.size(), nd) == 0);
      if (match)
        return Value::boolean_(true);
    }
    return Value::boolean_(false);
  }
  std::u32string nd = decodeUtf8(needles[0]);
  if (name == "count") {
    if (lo > hi || startBeyond)
      return Value::int_(0);
    if (nd.empty())
      return Value::int_(int64_t(window.size()) + 1);
    int64_t count = 0;
    for (size_t p = window.find(nd); p != std::u32string::npos; p = window.find(nd, p + nd.size()))
      ++count;
    return Value::int_(count);
  }
  bool reverse = name[0] == 'r';
  size_t p = lo > hi || startBeyond ? std::u32string::npos : reverse ? window.rfind(nd) : window.find(nd);
  if (p == std::u32string::npos) {
    if (name == "index" || name == "rindex")
      return Status::error("substring not found");
    return Value::int_(-1);
  }
  return Value::int_(lo + int64_t(p));
}

StatusOr<Value> stripMethod(const std::string &name, const Value &self, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("str." + name, args, {"chars"}));
  std::optional<std::string> chars;
  if (a[0] && a[0]->type != Type::None)
    KILN_ASSIGN(chars, stringArg(a[0], "strip arg"));
  return Value::string(pyStrip(self.s(), chars, name != "rstrip", name != "lstrip"));
}

StatusOr<Value> splitMethod(const std::string &name, const Value &self, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("str." + name, args, {"sep", "maxsplit"}));
  std::optional<std::string> sep;
  if (a[0] && a[0]->type != Type::None)
    KILN_ASSIGN(sep, stringArg(a[0], "separator"));
  int64_t maxsplit = -1;
  if (a[1])
    KILN_ASSIGN(maxsplit, intArg(a[1], "maxsplit"));
  ValueList parts;
  KILN_ASSIGN(parts, pySplit(self.s(), sep, maxsplit, name == "rsplit"));
  return Value::listOf(std::move(parts));
}

StatusOr<Value> justifyMethod(const std::string &name, const Value &self, CallArgs &args) {
  bool zfill = name == "zfill";
  Bound a;
  KILN_ASSIGN(a, zfill ? bindArgs("str.zfill", args, {"width"}, 1)
                       : bindArgs("str." + name, args, {"width", "fillchar"}, 1));
  int64_t width;
  KILN_ASSIGN(width, intArg(a[0], "width"));
  std::u32string s = decodeUtf8(self.s()), fill = U" ";
  if (!zfill && a[1]) {
    std::string f;
    KILN_ASSIGN(f, stringArg(a[1], "fillchar"));
    fill = decodeUtf8(f);
    if (fill.size() != 1)
      return Status::error("The fill character must be exactly one character long");
  }
  int64_t margin = width - int64_t(s.size());
  if (margin <= 0)
    return Value::string(self.s());
  if (margin > (64 << 20))
    return Status::error("str." + name + "(): width too large");
  int64_t left = name == "rjust" ? margin : name == "ljust" ? 0 : margin / 2 + (margin & width & 1);
  if (zfill) {
    std::u32string out(size_t(margin), U'0');
    if (!s.empty() && (s[0] == '+' || s[0] == '-'))
      return Value::string(encodeUtf8(s.substr(0, 1) + out + s.substr(1)));
    return Value::string(encodeUtf8(out + s));
  }
  return Value::string(encodeUtf8(std::u32string(size_t(left), fill[0]) + s +
                                  std::u32string(size_t(margin - left), fill[0])));
}

StatusOr<Value> partitionMethod(const std::string &name, const Value &self, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("str." + name, args, {"sep"}, 1));
  std::string sep;
  KILN_ASSIGN(sep, stringArg(a[0], "separator"));
  if (sep.empty())
    return Status::error("empty separator");
  const std::string &s = self.s();
  size_t p = name == "partition" ? s.find(sep) : s.rfind(sep);
  if (p == std::string::npos)
    return name == "partition"
               ? Value::listOf({self, Value::string(""), Value::string("")}, ListKind::Tuple)
               : Value::listOf({Value::string(""), Value::string(""), self}, ListKind::Tuple);
  return Value::listOf({Value::string(s.substr(0, p)), Value::string(sep), Value::string(s.substr(p + sep.size()))},
                       ListKind::Tuple);
}

StatusOr<Value> joinMethod(Interpreter &, const Value &self, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("str.join", args, {"iterable"}, 1));
  ValueList items;
  KILN_ASSIGN(items, iterate(*a[0]));
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].isString())
      return Status::error("sequence item " + std::to_string(i) + ": expected str instance, " +
                           typeName(items[i]) + " found");
    if (i)
      out += self.s();
    out += items[i].s();
  }
  return Value::string(std::move(out));
}

StatusOr<Value> replaceMethod(Interpreter &, const Value &self, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("str.replace", args, {"old", "new", "count"}, 2));
  std::string old, replacement;
  KILN_ASSIGN(old, stringArg(a[0], "replace() argument 1"));
  KILN_ASSIGN(replacement, stringArg(a[1], "replace() argument 2"));
  int64_t count = -1;
  if (a[2])
    KILN_ASSIGN(count, intArg(a[2], "count"));
  return Value::string(pyReplace(self.s(), old, replacement, count));
}

using Transform = std::string (*)(std::string_view);

StatusOr<Value> transformMethod(const std::string &name, Transform fn, const Value &self, CallArgs &args) {
  KILN_TRY(bindArgs("str." + name, args, {}).status());
  return Value::string(fn(self.s()), self.markup); // Markup's own methods return Markup
}

StatusOr<Value> predicateMethod(const std::string &name, const Value &self, CallArgs &args) {
  KILN_TRY(bindArgs("str." + name, args, {}).status());
  const std::string &s = self.s();
  if (name == "islower")
    return Value::boolean_(pyIsLower(s));
  if (name == "isupper")
    return Value::boolean_(pyIsUpper(s));
  std::u32string cps = decodeUtf8(s);
  if (name == "isspace")
    return Value::boolean_(!cps.empty() && std::all_of(cps.begin(), cps.end(), isPySpace));
  return Value::boolean_(std::all_of(cps.begin(), cps.end(), [](char32_t c) { return c < 0x80; }));
}

StatusOr<Value> affixRemoveMethod(const std::string &name, const Value &self, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("str." + name, args, {"affix"}, 1));
  std::string affix;
  KILN_ASSIGN(affix, stringArg(a[0], (name + "() argument").c_str()));
  const std::string &s = self.s();
  if (name == "removeprefix" && s.compare(0, affix.size(), affix) == 0)
    return Value::string(s.substr(affix.size()));
  if (name == "removesuffix" && !affix.empty() && s.size() >= affix.size() &&
      s.compare(s.size() - affix.size(), affix.size(), affix) == 0)
    return Value::string(s.substr(0, s.size() - affix.size()));
  return Value::string(s);
}

StatusOr<Value> splitlinesMethod(Interpreter &, const Value &self, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("str.splitlines", args, {"keepends"}));
  ValueList out;
  for (std::string &line : pySplitLines(self.s(), a[0] && truthy(*a[0])))
    out.push_back(Value::string(std::move(line)));
  return Value::listOf(std::move(out));
}

NativeFunction namedMethod(const std::string &name) {
  static const char *kSearch[] = {"find", "rfind", "index", "rindex", "count", "startswith", "endswith"};
  for (const char *m : kSearch)
    if (name == m)
      return [name](Interpreter &, const Value &self, CallArgs &args) { return searchMethod(name, self, args); };
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return [name](Interpreter &, const Value &self, CallArgs &args) { return stripMethod(name, self, args); };
  if (name == "split" || name == "rsplit")
    return [name](Interpreter &, const Value &self, CallArgs &args) { return splitMethod(name, self, args); };
  if (name == "center" || name == "ljust" || name == "rjust" || name == "zfill")
    return [name](Interpreter &, const Value &self, CallArgs &args) { return justifyMethod(name, self, args); };
  if (name == "partition" || name == "rpartition")
    return [name](Interpreter &, const Value &self, CallArgs &args) { return partitionMethod(name, self, args); };
  if (name == "removeprefix" || name == "removesuffix")
    return [name](Interpreter &, const Value &self, CallArgs &args) { return affixRemoveMethod(name, self, args); };
  if (name == "islower" || name == "isupper" || name == "isspace" || name == "isascii")
    return [name](Interpreter &, const Value &self, CallArgs &args) { return predicateMethod(name, self, args); };
  static const std::pair<const char *, Transform> kTransforms[] = {
      {"upper", pyUpper}, {"lower", pyLower}, {"title", pyTitle}, {"capitalize", pyCapitalize},
      {"swapcase", pySwapcase}, {"casefold", pyCasefold}};
  for (const auto &t : kTransforms)
    if (name == t.first) {
      Transform fn = t.second;
      return [name, fn](Interpreter &, const Value &self, CallArgs &args) {
        return transformMethod(name, fn, self, args);
      };
    }
  if (name == "join")
    return joinMethod;
  if (name == "replace")
    return replaceMethod;
  if (name == "splitlines")
    return splitlinesMethod;
  return nullptr;
}

} // namespace

std::optional<Value> stringMethod(const Value &self, const std::string &name) {
  static const char *kPythonNames[] = {
      "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format",
      "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier",
      "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower",
      "lstrip", "maketrans", "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex",
      "rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase",
      "title", "translate", "upper", "zfill"};
  if (std::none_of(std::begin(kPythonNames), std::end(kPythonNames), [&](const char *n) { return name == n; }))
    return std::nullopt;
  std::string full = "str." + name;
  NativeFunction fn = namedMethod(name);
  // Markup's methods that take strings escape them first; only its argument-free case mappings are here.
  static const char *kMarkupSafe[] = {"upper", "lower", "title", "capitalize", "swapcase", "casefold"};
  bool markupSafe = std::any_of(std::begin(kMarkupSafe), std::end(kMarkupSafe), [&](const char *n) { return name == n; });
  if (!fn || (self.markup && !markupSafe))
    return makeFunction(full, [full, markup = self.markup](Interpreter &, const Value &, CallArgs &)
                                  -> StatusOr<Value> {
      return Status::error(full + "() is not supported in chat templates" +
                           (markup ? std::string(" on a safe (Markup) string") : std::string()));
    });
  return makeFunction(full, std::move(fn), self);
}

std::string pyStrip(const std::string &s, const std::optional<std::string> &chars, bool left, bool right) {
  std::u32string cps = decodeUtf8(s), set;
  if (chars)
    set = decodeUtf8(*chars);
  auto strip = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : isPySpace(c); };
  size_t b = 0, e = cps.size();
  while (left && b < e && strip(cps[b]))
    ++b;
  while (right && e > b && strip(cps[e - 1]))
    --e;
  return encodeUtf8(std::u32string_view(cps).substr(b, e - b));
}

StatusOr<ValueList> pySplit(const std::string &s, const std::optional<std::string> &sep, int64_t maxsplit,
                            bool fromRight) {
  ValueList out;
  if (sep) {
    if (sep->empty())
      return Status::error("empty separator");
    std::vector<std::string> parts;
    std::string rest = s;
    while (maxsplit < 0 || int64_t(parts.size()) < maxsplit) {
      size_t p = fromRight ? rest.rfind(*sep) : rest.find(*sep);
      if (p == std::string::npos)
        break;
      parts.push_back(fromRight ? rest.substr(p + sep->size()) : rest.substr(0, p));
      rest = fromRight ? rest.substr(0, p) : rest.substr(p + sep->size());
    }
    parts.push_back(rest);
    if (fromRight)
      std::reverse(parts.begin(), parts.end());
    for (std::string &p : parts)
      out.push_back(Value::string(std::move(p)));
    return out;
  }
  std::u32string cps = decodeUtf8(s);
  if (fromRight)
    std::reverse(cps.begin(), cps.end());
  std::vector<std::u32string> parts;
  size_t i = 0, n = cps.size();
  while (true) {
    while (i < n && isPySpace(cps[i]))
      ++i;
    if (i == n)
      break;
    if (maxsplit >= 0 && int64_t(parts.size()) == maxsplit) {
      size_t e = n;
      if (!fromRight) // the rest keeps its trailing whitespace (and rsplit its leading whitespace)
        parts.push_back(cps.substr(i, e - i));
      else
        parts.push_back(cps.substr(i));
      break;
    }
    size_t start = i;
    while (i < n && !isPySpace(cps[i]))
      ++i;
    parts.push_back(cps.substr(start, i - start));
  }
  if (fromRight) {
    std::reverse(parts.begin(), parts.end());
    for (auto &p : parts)
      std::reverse(p.begin(), p.end());
  }
  for (const auto &p : parts)
    out.push_back(Value::string(encodeUtf8(p)));
  return out;
}

std::vector<std::string> pySplitLines(const std::string &s, bool keepEnds) {
  std::u32string cps = decodeUtf8(s);
  std::vector<std::string> out;
  size_t start = 0, i = 0;
  while (i < cps.size()) {
    if (!isLineBreak(cps[i])) {
      ++i;
      continue;
    }
    size_t eol = i;
    i += (cps[i] == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ? 2 : 1;
    out.push_back(encodeUtf8(std::u32string_view(cps).substr(start, (keepEnds ? i : eol) - start)));
    start = i;
  }
  if (start < cps.size())
    out.push_back(encodeUtf8(std::u32string_view(cps).substr(start)));
  return out;
}

std::string pyReplace(const std::string &s, const std::string &old, const std::string &replacement,
                      int64_t count) {
  std::string out;
  if (old.empty()) { // Python inserts the replacement around every character
    std::u32string cps = decodeUtf8(s);
    int64_t done = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += replacement;
        ++done;
      }
      if (i < cps.size())
        appendUtf8(out, cps[i]);
    }
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t p = s.find(old, pos);
    if (p == std::string::npos)
      break;
    out.append(s, pos, p - pos);
    out += replacement;
    pos = p + old.size();
    ++done;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

} // namespace kiln::jinja
