// Python's operators on template values, jinja2's globals (range, namespace, dict) and transformers' ones
// (raise_exception, strftime_now), and the `in` operator.
#include "Builtins.h"

#include "Unicode.h"

#include <cmath>
#include <ctime>

namespace kiln::jinja {
namespace {

constexpr int64_t kMaxRange = 100000; // jinja2's sandbox refuses larger ranges

Status unsupportedOperands(const std::string &op, const Value &a, const Value &b) {
  return Status::error("unsupported operand type(s) for " + op + ": '" + typeName(a) + "' and '" +
                       typeName(b) + "'");
}

Status overflow() {
  return Status::error("integer overflow (Python's unbounded integers are supported to 64 bits)");
}

int64_t asInt(const Value &v) { return v.type == Type::Bool ? int64_t(v.boolean) : v.integer; }
double asFloat(const Value &v) { return v.type == Type::Float ? v.number : double(asInt(v)); }

StatusOr<Value> repeat(Interpreter &in, const Value &seq, int64_t times) {
  if (times <= 0)
    return seq.isString() ? Value::string("") : Value::listOf({}, seq.listKind);
  size_t unit = seq.isString() ? seq.s().size() : seq.items().size();
  if (unit && uint64_t(times) > (uint64_t(64) << 20) / unit)
    return in.checkSize(SIZE_MAX);
  KILN_TRY(in.checkSize(unit * size_t(times)));
  KILN_TRY(in.charge(unit * uint64_t(times) / 64));
  if (seq.isString()) {
    std::string out;
    for (int64_t i = 0; i < times; ++i)
      out += seq.s();
    return Value::string(std::move(out));
  }
  ValueList out;
  for (int64_t i = 0; i < times; ++i)
    out.insert(out.end(), seq.items().begin(), seq.items().end());
  return Value::listOf(std::move(out), seq.listKind);
}

StatusOr<Value> add(Interpreter &in, const Value &a, const Value &b) {
  if (a.isNumber() && b.isNumber()) {
    if (a.type == Type::Float || b.type == Type::Float)
      return Value::float_(asFloat(a) + asFloat(b));
    int64_t r;
    if (__builtin_add_overflow(asInt(a), asInt(b), &r))
      return overflow();
    return Value::int_(r);
  }
  if (a.isString() && b.isString()) {
    KILN_TRY(in.checkSize(a.s().size() + b.s().size()));
    if (a.markup || b.markup) // Markup + str escapes the plain operand
      return Value::string((a.markup ? a.s() : htmlEscape(a.s())) + (b.markup ? b.s() : htmlEscape(b.s())), true);
    return Value::string(a.s() + b.s());
  }
  if (a.type == Type::List && b.type == Type::List && a.listKind == b.listKind &&
      (a.listKind == ListKind::List || a.listKind == ListKind::Tuple)) {
    KILN_TRY(in.checkSize(a.items().size() + b.items().size()));
    ValueList out = a.items();
    out.insert(out.end(), b.items().begin(), b.items().end());
    return Value::listOf(std::move(out), a.listKind);
  }
  return unsupportedOperands("+", a, b);
}

// Python's // and % on ints: the quotient rounds toward negative infinity, the remainder takes the
// divisor's sign.
StatusOr<Value> intDivMod(const std::string &op, int64_t x, int64_t y) {
  if (y == 0)
    return Status::error(op == "%" ? "integer modulo by zero" : "integer division or modulo by zero");
  if (x == INT64_MIN && y == -1)
    return overflow();
  int64_t q = x / y, r = x % y;
  if (r != 0 && ((r < 0) != (y < 0))) {
    --q;
    r += y;
  }
  return Value::int_(op == "%" ? r : q);
}

StatusOr<Value> floatDivMod(const std::string &op, double x, double y) {
  if (y == 0)
    return Status::error("float " + std::string(op == "%" ? "modulo" : "floor division") + " by zero");
  double mod = std::fmod(x, y);
  double div = (x - mod) / y;
  if (mod != 0) {
    if ((y < 0) != (mod < 0)) {
      mod += y;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, y);
  }
  double floordiv;
  if (div != 0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5)
      floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, x / y);
  }
  return Value::float_(op == "%" ? mod : floordiv);
}

StatusOr<Value> power(const Value &a, const Value &b) {
  if (a.type == Type::Float || b.type == Type::Float || asInt(b) < 0) {
    double x = asFloat(a), y = asFloat(b);
    if (x == 0 && y < 0)
      return Status::error("0.0 cannot be raised to a negative power");
    double r = std::pow(x, y);
    if (x < 0 && y != std::floor(y))
      return Status::error("a negative number raised to a fractional power (a complex number) is not supported");
    if (std::isinf(r) && !std::isinf(x))
      return Status::error("numerical result out of range");
    return Value::float_(r);
  }
  int64_t base = asInt(a), exp = asInt(b), result = 1;
  while (exp > 0) {
    if ((exp & 1) && __builtin_mul_overflow(result, base, &result))
      return overflow();
    exp >>= 1;
    if (exp > 0 && __builtin_mul_overflow(base, base, &base))
      return overflow();
  }
  return Value::int_(result);
}

StatusOr<Value> arithmetic(Interpreter &in, const std::string &op, const Value &a, const Value &b) {
  if (op == "+")
    return add(in, a, b);
  if (op == "*") {
    if ((a.isString() || (a.type == Type::List && a.listKind <= ListKind::Tuple)) &&
        (b.type == Type::Int || b.type == Type::Bool))
      return repeat(in, a, asInt(b));
    if ((b.isString() || (b.type == Type::List && b.listKind <= ListKind::Tuple)) &&
        (a.type == Type::Int || a.type == Type::Bool))
      return repeat(in, b, asInt(a));
  }
  if (!a.isNumber() || !b.isNumber())
    return unsupportedOperands(op, a, b);
  bool floats = a.type == Type::Float || b.type == Type::Float;
  if (op == "-" || op == "*") {
    if (floats)
      return Value::float_(op == "-" ? asFloat(a) - asFloat(b) : asFloat(a) * asFloat(b));
    int64_t r;
    bool over = op == "-" ? __builtin_sub_overflow(asInt(a), asInt(b), &r)
                          : __builtin_mul_overflow(asInt(a), asInt(b), &r);
    if (over)
      return overflow();
    return Value::int_(r);
  }
  if (op == "/") {
    if (asFloat(b) == 0)
      return Status::error("division by zero");
    return Value::float_(asFloat(a) / asFloat(b));
  }
  if (op == "//" || op == "%")
    return floats ? floatDivMod(op, asFloat(a), asFloat(b)) : intDivMod(op, asInt(a), asInt(b));
  return power(a, b);
}

} // namespace

StatusOr<Value> binaryOp(Interpreter &in, const std::string &op, const Value &a, const Value &b) {
  if (op == "%" && a.isString())
    return Status::error("printf-style string formatting ('...' % args) is not supported");
  for (const Value *v : {&a, &b})
    if (v->isUndefined() && !(v == &b && (op == "neg" || op == "pos")))
      return Status::error(v->s().empty() ? "an undefined value in arithmetic" : v->s());
  if (op == "neg" || op == "pos") {
    if (!a.isNumber())
      return Status::error("bad operand type for unary " + std::string(op == "neg" ? "-" : "+") + ": '" +
                           typeName(a) + "'");
    if (a.type == Type::Float)
      return Value::float_(op == "neg" ? -a.number : a.number);
    if (op == "neg" && asInt(a) == INT64_MIN)
      return overflow();
    return Value::int_(op == "neg" ? -asInt(a) : asInt(a));
  }
  return arithmetic(in, op, a, b);
}

StatusOr<bool> contains(const Value &container, const Value &item) {
  switch (container.type) {
  case Type::String:
    if (!item.isString())
      return Status::error("'in <string>' requires string as left operand, not " + typeName(item));
    return container.s().find(item.s()) != std::string::npos;
  case Type::Dict:
    KILN_TRY(checkHashable(item));
    return container.dict->find(item) != nullptr;
  case Type::Undefined:
  case Type::List:
  case Type::Generator:
  case Type::Loop: {
    ValueList items;
    KILN_ASSIGN(items, iterate(container));
    for (const Value &v : items)
      if (equals(v, item))
        return true;
    return false;
  }
  default: return Status::error("argument of type '" + typeName(container) + "' is not iterable");
  }
}

std::string htmlEscape(const std::string &s) {
  std::string out;
  for (char c : s) {
    switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '"': out += "&#34;"; break;
    case '\'': out += "&#39;"; break;
    default: out.push_back(c);
    }
  }
  return out;
}

Status checkStorable(const Value &v) {
  switch (v.type) {
  case Type::Namespace:
  case Type::Loop:
  case Type::Callable:
    return Status::error("storing a " + typeName(v) +
                         " inside a namespace is not supported (it could make a reference cycle)");
  case Type::List:
    for (const Value &e : v.items())
      KILN_TRY(checkStorable(e));
    return Status::ok();
  case Type::Dict:
    for (const auto &e : v.dict->entries)
      KILN_TRY(checkStorable(e.second));
    return Status::ok();
  case Type::Generator:
    for (const Value &e : v.gen->items)
      KILN_TRY(checkStorable(e));
    return Status::ok();
  default: return Status::ok();
  }
}

namespace {

StatusOr<Value> rangeFunction(Interpreter &in, const Value &, CallArgs &args) {
  if (!args.keyword.empty())
    return Status::error("range() takes no keyword arguments");
  if (args.positional.empty() || args.positional.size() > 3)
    return Status::error("range expected 1 to 3 arguments, got " + std::to_string(args.positional.size()));
  int64_t bounds[3] = {0, 0, 1};
  for (size_t i = 0; i < args.positional.size(); ++i)
    KILN_ASSIGN(bounds[args.positional.size() == 1 ? 1 : i], intArg(args.positional[i], "range() argument"));
  int64_t start = bounds[0], stop = bounds[1], step = bounds[2];
  if (step == 0)
    return Status::error("range() arg 3 must not be zero");
  long double count = step > 0 ? std::ceil((long double)(stop - (long double)start) / step)
                               : std::ceil((long double)(start - (long double)stop) / -step);
  if (count > kMaxRange)
    return Status::error("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  KILN_TRY(in.charge(uint64_t(std::max<long double>(count, 0)) / 16));
  ValueList items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
    items.push_back(Value::int_(i));
  Value r = Value::listOf(std::move(items), ListKind::Range);
  std::string text = "range(" + std::to_string(start) + ", " + std::to_string(stop) +
                     (step != 1 ? ", " + std::to_string(step) : "") + ")";
  r.str = std::make_shared<const std::string>(std::move(text));
  return r;
}

// dict(*args, **kwargs) entries: a mapping or an iterable of pairs, then keywords.
StatusOr<DictData> dictFromArgs(const char *fn, CallArgs &args) {
  DictData d;
  if (args.positional.size() > 1)
    return Status::error(std::string(fn) + " expected at most 1 positional argument");
  if (!args.positional.empty()) {
    const Value &src = args.positional[0];
    if (src.type == Type::Dict) {
      d = *src.dict;
    } else {
      ValueList pairs;
      KILN_ASSIGN(pairs, iterate(src));
      for (const Value &p : pairs) {
        ValueList kv;
        KILN_ASSIGN(kv, iterate(p));
        if (kv.size() != 2)
          return Status::error(std::string(fn) + ": a sequence element has length " +
                               std::to_string(kv.size()) + "; 2 is required");
        KILN_TRY(checkHashable(kv[0]));
        d.set(kv[0], kv[1]);
      }
    }
  }
  for (auto &kw : args.keyword)
    d.set(Value::string(kw.first), kw.second);
  return d;
}

StatusOr<Value> namespaceFunction(Interpreter &, const Value &, CallArgs &args) {
  DictData d;
  KILN_ASSIGN(d, dictFromArgs("namespace()", args));
  auto ns = std::make_shared<NamespaceData>();
  for (auto &e : d.entries) {
    if (!e.first.isString())
      return Status::error("namespace() keys must be strings");
    KILN_TRY(checkStorable(e.second));
    ns->set(e.first.s(), e.second);
  }
  Value v;
  v.type = Type::Namespace;
  v.ns = std::move(ns);
  return v;
}

StatusOr<Value> dictFunction(Interpreter &, const Value &, CallArgs &args) {
  DictData d;
  KILN_ASSIGN(d, dictFromArgs("dict()", args));
  return Value::dictOf(std::move(d));
}

StatusOr<Value> raiseException(Interpreter &, const Value &, CallArgs &args) {
  std::string message;
  if (!args.positional.empty())
    KILN_ASSIGN(message, toStr(args.positional[0]));
  return Status::error("raise_exception: " + message);
}

StatusOr<Value> strftimeNow(Interpreter &in, const Value &, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("strftime_now", args, {"format"}, 1));
  std::string format;
  KILN_ASSIGN(format, stringArg(a[0], "strftime_now() format"));
  // Python formats %f (microseconds) itself; the render clock has whole seconds.
  format = pyReplace(format, "%f", "000000", -1);
  std::time_t now = in.now();
  std::tm tm{};
  localtime_r(&now, &tm);
  std::string out(format.size() * 8 + 64, '\0');
  size_t n = format.empty() ? 0 : std::strftime(out.data(), out.size(), format.c_str(), &tm);
  if (n == 0 && !format.empty())
    return Status::error("strftime_now(): the format produced nothing or too much");
  out.resize(n);
  return Value::string(std::move(out));
}

} // namespace

std::vector<std::pair<std::string, Value>> builtinGlobals() {
  return {{"range", makeFunction("range", rangeFunction)},
          {"namespace", makeFunction("namespace", namespaceFunction)},
          {"dict", makeFunction("dict", dictFunction)},
          {"raise_exception", makeFunction("raise_exception", raiseException)},
          {"strftime_now", makeFunction("strftime_now", strftimeNow)}};
}

} // namespace kiln::jinja
