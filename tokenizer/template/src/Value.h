// The template engine's runtime values, with Python's semantics where jinja2 inherits them: str() / repr()
// text, truthiness, ==, ordering, iteration and len(). Lists and dicts are immutable once built (transformers
// renders in jinja2's ImmutableSandboxedEnvironment), so they are shared; a namespace() is the one mutable
// object.
#pragma once

#include "kiln/support/Status.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kiln::jinja {

struct Value;
class Interpreter;
using ValueList = std::vector<Value>;

enum class Type : uint8_t {
  Undefined, // a missing variable, key or attribute: prints as '', iterates as empty, fails in arithmetic
  None,
  Bool,
  Int,
  Float,
  String,
  List,      // list, tuple, dict views and range(): see ListKind
  Dict,      // insertion-ordered
  Namespace, // namespace(): attributes assignable with {% set ns.x = ... %}
  Callable,  // a builtin function, a bound method, a macro
  Loop,      // the `loop` variable of a for loop
  Generator, // what select/map/items/reverse... return: consumed by the first iteration, no len()
};

// How a List prints and compares: Python's list, tuple, dict_items/keys/values views and range.
enum class ListKind : uint8_t { List, Tuple, DictItems, DictKeys, DictValues, Range };

struct DictData;
struct NamespaceData;
struct CallableData;
struct LoopData;
struct GeneratorData;

struct Value {
  Type type = Type::Undefined;
  bool boolean = false;
  bool markup = false; // a string marked safe (|safe, |escape): `+` escapes its other operand
  ListKind listKind = ListKind::List;
  uint16_t depth = 0; // nesting of lists / dicts / generators inside (saturates): bounds recursion
  int64_t integer = 0;
  double number = 0;
  std::shared_ptr<const std::string> str; // String; the hint of an Undefined; the repr of a Range
  std::shared_ptr<const ValueList> list;
  std::shared_ptr<const DictData> dict;
  std::shared_ptr<NamespaceData> ns;
  std::shared_ptr<const CallableData> fn;
  std::shared_ptr<LoopData> loop;
  std::shared_ptr<GeneratorData> gen;

  static Value undefined(std::string hint = {});
  static Value none();
  static Value boolean_(bool b);
  static Value int_(int64_t i);
  static Value float_(double f);
  static Value string(std::string s, bool markup = false);
  static Value listOf(ValueList items, ListKind kind = ListKind::List);
  static Value dictOf(DictData d);
  static Value generator(ValueList items, Status deferred = Status::ok());

  bool isUndefined() const { return type == Type::Undefined; }
  bool isString() const { return type == Type::String; }
  bool isNumber() const { return type == Type::Int || type == Type::Float || type == Type::Bool; }
  const std::string &s() const { return *str; }
  const ValueList &items() const { return *list; }
};

struct DictData {
  std::vector<std::pair<Value, Value>> entries;
  const Value *find(const Value &key) const;
  // Sets key (replacing an equal key in place, as a Python dict does).
  void set(Value key, Value value);
};

struct NamespaceData {
  std::vector<std::pair<std::string, Value>> attrs;
  const Value *find(const std::string &name) const;
  void set(const std::string &name, Value value);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

using NativeFunction = std::function<StatusOr<Value>(Interpreter &, const Value &self, CallArgs &)>;

struct CallableData {
  std::string name;   // for messages: "raise_exception", "str.split", "macro foo"
  Value self;         // the bound object of a method (Undefined otherwise)
  NativeFunction call;
};

struct LoopData {
  ValueList items;
  size_t index = 0;
  int depth = 1; // loop.depth: always 1, recursive loops are not supported
  Value changedLast; // loop.changed(): the previous arguments
  bool changedSeen = false;
};

struct GeneratorData {
  ValueList items;
  Status deferred; // an error Python would raise when the generator reaches it
  bool consumed = false;
};

// Work done building values on this thread (list items, dict entries, string bytes / 64, items iterated):
// the interpreter charges it to its step budget, so quadratic copying in a loop cannot run for long.
uint64_t &valueWork();

// Python's type names, for error messages ("str", "int", "list", "NoneType", ...).
std::string typeName(const Value &v);
bool truthy(const Value &v);
bool equals(const Value &a, const Value &b);
// a < b as Python orders them; an error for types Python cannot order.
StatusOr<bool> lessThan(const Value &a, const Value &b);
// str(v) and repr(v); an error for values whose Python text depends on memory addresses.
StatusOr<std::string> toStr(const Value &v);
StatusOr<std::string> repr(const Value &v);
// float.__repr__: the shortest text that reads back to the same double.
std::string floatRepr(double d);
// Python's repr of a str ('...' with escapes).
std::string stringRepr(const std::string &s);
// iter(v) as a list; consumes a generator. Undefined iterates as empty.
StatusOr<ValueList> iterate(const Value &v);
// len(v).
StatusOr<int64_t> length(const Value &v);
// Only hashable values can be dict keys.
Status checkHashable(const Value &v);

} // namespace kiln::jinja
