// Renders a Program: jinja2's scoping (for / macro / with bodies are scopes, if is not; namespace() carries
// values out of loops), Python operator semantics, sandboxed attribute access, filters, tests and globals.
// Bounded: a step budget, an output / value size cap and a nesting limit turn runaway templates into errors.
#pragma once

#include "Ast.h"

#include <ctime>
#include <string>
#include <utility>
#include <vector>

namespace kiln::jinja {

struct Limits {
  uint64_t maxSteps = 5'000'000;     // statements, loop iterations, calls and per-item work
  size_t maxBytes = 64u << 20;       // the output and any one string or list built while rendering
  int maxDepth = 400;                // nested evaluation (expressions, statements, macro calls)
};

class Interpreter {
public:
  Interpreter(const Program &program, const Limits &limits, std::time_t now);
  // Globals: the render context (messages, add_generation_prompt, special tokens, ...).
  StatusOr<std::string> render(const std::vector<std::pair<std::string, Value>> &context);

  // For builtins.
  StatusOr<Value> call(const Value &callee, CallArgs &args);
  StatusOr<Value> applyFilter(const std::string &name, const Value &input, CallArgs &args);
  StatusOr<bool> applyTest(const std::string &name, const Value &input, CallArgs &args);
  StatusOr<Value> getAttr(const Value &object, const std::string &name);
  StatusOr<Value> getItem(const Value &object, const Value &key);
  Status charge(uint64_t steps);
  Status checkSize(size_t bytes) const;
  std::time_t now() const { return now_; }

private:
  struct Frame {
    std::vector<std::pair<std::string, Value>> vars;
    int parent; // the enclosing frame for lookups; -1 at the globals
  };
  enum class Flow { Normal, Break, Continue };
  struct MacroData;

  Status error(int line, const std::string &message) const;
  Status located(int line, Status s) const;
  Value lookup(const std::string &name) const;
  void define(const std::string &name, Value v) { setIn(frames_.back(), name, std::move(v)); }
  static void setIn(Frame &frame, const std::string &name, Value v);
  int pushFrame(int parent);
  void popFrame() { frames_.pop_back(); }
  Status assign(const Target &target, const Value &v, int line);

  Status exec(const Body &body, std::string &out);
  Status execStmt(const Stmt &s, std::string &out);
  Status execIf(const Stmt &s, std::string &out);
  Status execFor(const Stmt &s, std::string &out);
  Status execSetBlock(const Stmt &s, std::string &out);
  Status execMacro(const Stmt &s);
  Status execScoped(const Stmt &s, std::string &out);
  StatusOr<Value> callMacro(const MacroData &macro, CallArgs &args);
  StatusOr<Value> applyFilterChain(const Expr &filter, Value input);

  StatusOr<Value> eval(const Expr &e);
  StatusOr<Value> evalInner(const Expr &e);
  StatusOr<Value> evalSequence(const Expr &e);
  StatusOr<Value> evalDict(const Expr &e);
  StatusOr<Value> evalGetitem(const Expr &e);
  StatusOr<Value> evalSlice(const Value &object, const Expr &slice);
  StatusOr<Value> evalCall(const Expr &e);
  Status evalArgs(const Expr &e, CallArgs &args);
  StatusOr<Value> evalCompare(const Expr &e);
  StatusOr<Value> evalBinary(const Expr &e);

  const Program &program_;
  Limits limits_;
  std::time_t now_;
  std::vector<Frame> frames_;
  Flow flow_ = Flow::Normal;
  uint64_t steps_ = 0;
  uint64_t workSeen_ = 0; // valueWork() already charged
  int depth_ = 0;
  int macroDepth_ = 0;
};

// Builtins.cpp: Python operators, the filters, tests, globals and the methods of str / dict / list.
StatusOr<Value> binaryOp(Interpreter &in, const std::string &op, const Value &a, const Value &b);
StatusOr<bool> contains(const Value &container, const Value &item);
std::vector<std::pair<std::string, Value>> builtinGlobals();
// Values that may be stored in a namespace attribute (no reference cycles through namespaces).
Status checkStorable(const Value &v);
// HTML escaping as markupsafe.escape does it.
std::string htmlEscape(const std::string &s);

// Json.cpp: Python's json.dumps (as transformers' tojson filter calls it).
struct JsonDumpOptions {
  std::string indent;    // used when hasIndent
  bool hasIndent = false;
  std::string itemSeparator = ", ";
  std::string keySeparator = ": ";
  bool sortKeys = false;
  bool ensureAscii = false;
};
StatusOr<std::string> jsonDumps(const Value &v, const JsonDumpOptions &options);

} // namespace kiln::jinja
