// Attribute and item access as jinja2's ImmutableSandboxedEnvironment does it: obj.name tries the Python
// attribute, then obj['name']; obj[key] tries the item, then (for a string key) the attribute. Missing ones
// are undefined; methods that would mutate a list or dict are unsafe (undefined); private names too.
#include "Builtins.h"

#include "Unicode.h"

#include <algorithm>
#include <cstring>

namespace kiln::jinja {
namespace {

bool oneOf(const std::string &name, std::initializer_list<const char *> names) {
  for (const char *n : names)
    if (name == n)
      return true;
  return false;
}

Value unsafe(const Value &object, const std::string &name) {
  return Value::undefined("access to attribute '" + name + "' of '" + typeName(object) +
                          "' object is unsafe");
}

Value unsupportedMethod(const Value &object, const std::string &name) {
  std::string full = typeName(object) + "." + name;
  return makeFunction(full, [full](Interpreter &, const Value &, CallArgs &) -> StatusOr<Value> {
    return Status::error(full + "() is not supported in chat templates");
  });
}

StatusOr<Value> dictGet(Interpreter &, const Value &self, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs("dict.get", args, {"key", "default"}, 1));
  KILN_TRY(checkHashable(*a[0]));
  const Value *found = self.dict->find(*a[0]);
  if (found)
    return *found;
  return a[1] ? *a[1] : Value::none();
}

Value dictView(const Value &self, ListKind kind) {
  ValueList items;
  for (const auto &e : self.dict->entries) {
    if (kind == ListKind::DictItems)
      items.push_back(Value::listOf({e.first, e.second}, ListKind::Tuple));
    else
      items.push_back(kind == ListKind::DictKeys ? e.first : e.second);
  }
  return Value::listOf(std::move(items), kind);
}

std::optional<Value> dictMethod(const Value &self, const std::string &name) {
  if (name == "get")
    return makeFunction("dict.get", dictGet, self);
  if (name == "items" || name == "keys" || name == "values") {
    ListKind kind = name == "items" ? ListKind::DictItems : name == "keys" ? ListKind::DictKeys
                                                                           : ListKind::DictValues;
    return makeFunction("dict." + name, [kind, name](Interpreter &, const Value &self, CallArgs &args)
                                            -> StatusOr<Value> {
      KILN_TRY(bindArgs("dict." + name, args, {}).status());
      return dictView(self, kind);
    }, self);
  }
  if (name == "copy")
    return makeFunction("dict.copy", [](Interpreter &, const Value &self, CallArgs &args) -> StatusOr<Value> {
      KILN_TRY(bindArgs("dict.copy", args, {}).status());
      return Value::dictOf(*self.dict);
    }, self);
  if (oneOf(name, {"clear", "pop", "popitem", "setdefault", "update"}))
    return unsafe(self, name);
  if (name == "fromkeys")
    return unsupportedMethod(self, name);
  return std::nullopt;
}

StatusOr<Value> sequenceIndexOrCount(const std::string &name, const Value &self, CallArgs &args) {
  Bound a;
  KILN_ASSIGN(a, bindArgs(typeName(self) + "." + name, args, {"value"}, 1));
  int64_t count = 0;
  for (size_t i = 0; i < self.items().size(); ++i) {
    if (!equals(self.items()[i], *a[0]))
      continue;
    if (name == "index")
      return Value::int_(int64_t(i));
    ++count;
  }
  if (name == "index")
    return Status::error(typeName(self) + ".index(x): x not in " + typeName(self));
  return Value::int_(count);
}

std::optional<Value> listMethod(const Value &self, const std::string &name) {
  bool isList = self.listKind == ListKind::List, isTuple = self.listKind == ListKind::Tuple;
  if ((isList || isTuple) && (name == "index" || name == "count"))
    return makeFunction(typeName(self) + "." + name,
                        [name](Interpreter &, const Value &self, CallArgs &args) {
                          return sequenceIndexOrCount(name, self, args);
                        },
                        self);
  if (isList && name == "copy")
    return makeFunction("list.copy", [](Interpreter &, const Value &self, CallArgs &args) -> StatusOr<Value> {
      KILN_TRY(bindArgs("list.copy", args, {}).status());
      return Value::listOf(self.items());
    }, self);
  if (isList && oneOf(name, {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"}))
    return unsafe(self, name);
  if (self.listKind == ListKind::DictItems || self.listKind == ListKind::DictKeys) {
    if (oneOf(name, {"isdisjoint", "mapping"}))
      return unsupportedMethod(self, name);
  }
  if (self.listKind == ListKind::Range && oneOf(name, {"start", "stop", "step", "count", "index"}))
    return unsupportedMethod(self, name);
  return std::nullopt;
}

std::optional<Value> numberAttribute(const Value &self, const std::string &name) {
  if (name == "real" || (self.type != Type::Float && name == "numerator"))
    return self.type == Type::Bool ? Value::int_(self.boolean) : self;
  if (name == "imag")
    return self.type == Type::Float ? Value::float_(0) : Value::int_(0);
  if (self.type != Type::Float && name == "denominator")
    return Value::int_(1);
  static const char *kIntMethods[] = {"as_integer_ratio", "bit_count", "bit_length", "conjugate",
                                      "from_bytes", "to_bytes"};
  static const char *kFloatMethods[] = {"as_integer_ratio", "conjugate", "fromhex", "hex", "is_integer"};
  if (self.type == Type::Float) {
    for (const char *m : kFloatMethods)
      if (name == m)
        return unsupportedMethod(self, name);
  } else {
    for (const char *m : kIntMethods)
      if (name == m)
        return unsupportedMethod(self, name);
  }
  return std::nullopt;
}

StatusOr<Value> loopCycle(Interpreter &, const Value &self, CallArgs &args) {
  if (!args.keyword.empty() || args.positional.empty())
    return Status::error("loop.cycle() needs at least one positional argument");
  return args.positional[self.loop->index % args.positional.size()];
}

StatusOr<Value> loopChanged(Interpreter &, const Value &self, CallArgs &args) {
  Value current = Value::listOf(args.positional, ListKind::Tuple);
  for (const Value &v : args.positional)
    KILN_TRY(checkStorable(v));
  LoopData &loop = *self.loop;
  bool changed = !loop.changedSeen || !equals(current, loop.changedLast);
  loop.changedSeen = true;
  loop.changedLast = current;
  return Value::boolean_(changed);
}

std::optional<Value> loopAttribute(const Value &self, const std::string &name) {
  const LoopData &loop = *self.loop;
  int64_t i = int64_t(loop.index), n = int64_t(loop.items.size());
  if (name == "index")
    return Value::int_(i + 1);
  if (name == "index0")
    return Value::int_(i);
  if (name == "revindex")
    return Value::int_(n - i);
  if (name == "revindex0")
    return Value::int_(n - i - 1);
  if (name == "first")
    return Value::boolean_(i == 0);
  if (name == "last")
    return Value::boolean_(i == n - 1);
  if (name == "length")
    return Value::int_(n);
  if (name == "depth")
    return Value::int_(loop.depth);
  if (name == "depth0")
    return Value::int_(loop.depth - 1);
  if (name == "previtem")
    return i > 0 ? loop.items[size_t(i - 1)] : Value::undefined("there is no previous item");
  if (name == "nextitem")
    return i + 1 < n ? loop.items[size_t(i + 1)] : Value::undefined("there is no next item");
  if (name == "cycle")
    return makeFunction("loop.cycle", loopCycle, self);
  if (name == "changed")
    return makeFunction("loop.changed", loopChanged, self);
  return std::nullopt;
}

} // namespace

// The Python attribute `name` of object, or nullopt when its type has none.
std::optional<Value> pythonAttribute(const Value &object, const std::string &name) {
  if (!name.empty() && name[0] == '_')
    return unsafe(object, name);
  switch (object.type) {
  case Type::String: return stringMethod(object, name);
  case Type::Dict: return dictMethod(object, name);
  case Type::List: return listMethod(object, name);
  case Type::Bool:
  case Type::Int:
  case Type::Float: return numberAttribute(object, name);
  case Type::Namespace:
    if (const Value *v = object.ns->find(name))
      return *v;
    return std::nullopt;
  case Type::Loop: return loopAttribute(object, name);
  case Type::Generator:
    if (oneOf(name, {"send", "throw", "close", "gi_code", "gi_frame", "gi_running", "gi_yieldfrom"}))
      return unsupportedMethod(object, name);
    return std::nullopt;
  default: return std::nullopt;
  }
}

StatusOr<Value> Interpreter::getAttr(const Value &object, const std::string &name) {
  if (object.isUndefined())
    return Status::error(object.s().empty() ? "'" + name + "' of an undefined value" : object.s());
  if (std::optional<Value> attr = pythonAttribute(object, name))
    return *attr;
  if (object.type == Type::Dict) {
    if (const Value *v = object.dict->find(Value::string(name)))
      return *v;
  }
  return Value::undefined("'" + typeName(object) + " object' has no attribute '" + name + "'");
}

namespace {

// Python's sequence indexing: negative from the end; nullopt when out of range.
std::optional<size_t> sequenceIndex(int64_t i, size_t size) {
  if (i < 0)
    i += int64_t(size);
  if (i < 0 || i >= int64_t(size))
    return std::nullopt;
  return size_t(i);
}

} // namespace

StatusOr<Value> Interpreter::getItem(const Value &object, const Value &key) {
  if (object.isUndefined())
    return Status::error(object.s().empty() ? "subscript of an undefined value" : object.s());
  bool intKey = key.type == Type::Int || key.type == Type::Bool;
  int64_t index = key.type == Type::Bool ? key.boolean : key.integer;
  switch (object.type) {
  case Type::Dict: {
    KILN_TRY(checkHashable(key));
    if (const Value *v = object.dict->find(key))
      return *v;
    break;
  }
  case Type::List: {
    if (!intKey || object.listKind == ListKind::DictItems || object.listKind == ListKind::DictKeys ||
        object.listKind == ListKind::DictValues)
      break;
    if (auto i = sequenceIndex(index, object.items().size()))
      return object.items()[*i];
    break;
  }
  case Type::String: {
    if (!intKey)
      break;
    std::u32string chars = decodeUtf8(object.s());
    if (auto i = sequenceIndex(index, chars.size()))
      return Value::string(encodeUtf8(chars.substr(*i, 1)), object.markup);
    break;
  }
  default: break;
  }
  if (key.isString())
    if (std::optional<Value> attr = pythonAttribute(object, key.s()))
      return *attr;
  std::string shown = key.isString() ? stringRepr(key.s()) : toStr(key).ok() ? *toStr(key) : typeName(key);
  return Value::undefined("'" + typeName(object) + " object' has no attribute or item " + shown);
}

Value makeFunction(std::string name, NativeFunction fn, Value self) {
  auto data = std::make_shared<CallableData>();
  data->name = std::move(name);
  data->call = std::move(fn);
  data->self = std::move(self);
  Value v;
  v.type = Type::Callable;
  v.fn = std::move(data);
  return v;
}

StatusOr<Bound> bindArgs(const std::string &function, const CallArgs &args,
                         std::initializer_list<const char *> names, size_t required) {
  std::vector<const char *> list(names);
  if (args.positional.size() > list.size())
    return Status::error(function + "() takes at most " + std::to_string(list.size()) + " argument(s) (" +
                         std::to_string(args.positional.size()) + " given)");
  Bound bound(list.size());
  for (size_t i = 0; i < args.positional.size(); ++i)
    bound[i] = args.positional[i];
  for (const auto &kw : args.keyword) {
    auto it = std::find_if(list.begin(), list.end(), [&](const char *n) { return kw.first == n; });
    if (it == list.end())
      return Status::error(function + "() got an unexpected keyword argument '" + kw.first + "'");
    size_t i = size_t(it - list.begin());
    if (bound[i])
      return Status::error(function + "() got multiple values for argument '" + kw.first + "'");
    bound[i] = kw.second;
  }
  for (size_t i = 0; i < required; ++i)
    if (!bound[i])
      return Status::error(function + "() missing required argument '" + list[i] + "'");
  return bound;
}

StatusOr<Value> softStr(const Value &v) {
  if (v.isString())
    return v;
  std::string s;
  KILN_ASSIGN(s, toStr(v));
  return Value::string(std::move(s));
}

StatusOr<std::string> stringArg(const std::optional<Value> &v, const char *what) {
  if (!v || !v->isString())
    return Status::error(std::string(what) + " must be a string, not " + (v ? typeName(*v) : "nothing"));
  return v->s();
}

StatusOr<int64_t> intArg(const std::optional<Value> &v, const char *what) {
  if (v && v->type == Type::Int)
    return v->integer;
  if (v && v->type == Type::Bool)
    return int64_t(v->boolean);
  return Status::error(std::string(what) + " must be an integer, not " + (v ? typeName(*v) : "nothing"));
}

} // namespace kiln::jinja
