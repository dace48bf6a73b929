// Shared helpers of the builtin filters, tests, globals and methods (Builtins.cpp, Methods.cpp, Access.cpp).
#pragma once

#include "Interpreter.h"
#include "Try.h"

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace kiln::jinja {


using Bound = std::vector<std::optional<Value>>;

// Python-style binding of positional and keyword arguments to `names`; the first `required` must be given.
StatusOr<Bound> bindArgs(const std::string &function, const CallArgs &args,
                         std::initializer_list<const char *> names, size_t required = 0);

Value makeFunction(std::string name, NativeFunction fn, Value self = Value());

// jinja2's soft_str: str(value), keeping a safe (Markup) string as it is.
StatusOr<Value> softStr(const Value &v);
// A string argument (TypeError otherwise).
StatusOr<std::string> stringArg(const std::optional<Value> &v, const char *what);
StatusOr<int64_t> intArg(const std::optional<Value> &v, const char *what);

// Python's str.strip / split / splitlines (whitespace as str.isspace).
std::string pyStrip(const std::string &s, const std::optional<std::string> &chars, bool left, bool right);
StatusOr<ValueList> pySplit(const std::string &s, const std::optional<std::string> &sep, int64_t maxsplit,
                            bool fromRight);
std::vector<std::string> pySplitLines(const std::string &s, bool keepEnds);
std::string pyReplace(const std::string &s, const std::string &old, const std::string &replacement,
                      int64_t count);

// The Python attribute `name` of object (a bound method, a namespace attribute, loop.index...), or nullopt
// when its type has no such attribute (jinja2 then tries object[name]).
std::optional<Value> pythonAttribute(const Value &object, const std::string &name);
// A string method bound to `self`, or nullopt when str has no such attribute.
std::optional<Value> stringMethod(const Value &self, const std::string &name);

} // namespace kiln::jinja
