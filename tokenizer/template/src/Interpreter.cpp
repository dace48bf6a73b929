#include "Interpreter.h"

#include "Try.h"
#include "Unicode.h"

#include <algorithm>

namespace kiln::jinja {


namespace {
constexpr int kTemplateFrame = 1; // frames_[0]: builtins; frames_[1]: the context and top-level sets
constexpr int kMaxMacroDepth = 64;
constexpr int kMaxValueDepth = 256;

} // namespace

struct Interpreter::MacroData {
  const Stmt *stmt;
  std::vector<std::pair<std::string, Value>> captured; // variables of the scopes it was defined in
};

Interpreter::Interpreter(const Program &program, const Limits &limits, std::time_t now)
    : program_(program), limits_(limits), now_(now) {}

Status Interpreter::error(int line, const std::string &message) const {
  return Status::error(program_.name + " line " + std::to_string(line) + ": " + message);
}

Status Interpreter::located(int line, Status s) const {
  if (s || s.message().rfind(program_.name + " line ", 0) == 0)
    return s;
  return error(line, s.message());
}

Status Interpreter::charge(uint64_t steps) {
  uint64_t work = valueWork();
  steps_ += steps + (work - workSeen_);
  workSeen_ = work;
  if (steps_ > limits_.maxSteps)
    return Status::error("the template exceeded its budget of " + std::to_string(limits_.maxSteps) +
                         " steps (an endless or very long loop?)");
  return Status::ok();
}

Status Interpreter::checkSize(size_t bytes) const {
  if (bytes > limits_.maxBytes)
    return Status::error("the template produced more than " + std::to_string(limits_.maxBytes) +
                         " bytes in one string or list");
  return Status::ok();
}

Value Interpreter::lookup(const std::string &name) const {
  for (int f = int(frames_.size()) - 1; f >= 0; f = frames_[size_t(f)].parent)
    for (const auto &v : frames_[size_t(f)].vars)
      if (v.first == name)
        return v.second;
  return Value::undefined("'" + name + "' is undefined");
}

void Interpreter::setIn(Frame &frame, const std::string &name, Value v) {
  for (auto &e : frame.vars)
    if (e.first == name) {
      e.second = std::move(v);
      return;
    }
  frame.vars.emplace_back(name, std::move(v));
}

int Interpreter::pushFrame(int parent) {
  frames_.push_back(Frame{{}, parent});
  return int(frames_.size()) - 1;
}

StatusOr<std::string> Interpreter::render(const std::vector<std::pair<std::string, Value>> &context) {
  frames_.clear();
  workSeen_ = valueWork();
  frames_.push_back(Frame{builtinGlobals(), -1});
  frames_.push_back(Frame{context, 0});
  std::string out;
  KILN_TRY(exec(program_.body, out));
  return out;
}

Status Interpreter::assign(const Target &target, const Value &v, int line) {
  switch (target.kind) {
  case Target::Kind::Name:
    define(target.name, v);
    return Status::ok();
  case Target::Kind::NamespaceAttr: {
    Value ns = lookup(target.name);
    if (ns.type != Type::Namespace)
      return error(line, "cannot assign attribute on non-namespace object ('" + target.name + "' is a " +
                             typeName(ns) + ")");
    KILN_TRY(located(line, checkStorable(v)));
    ns.ns->set(target.attr, v);
    return Status::ok();
  }
  case Target::Kind::Tuple: {
    if (v.isUndefined())
      return error(line, "cannot unpack an undefined value");
    ValueList items;
    KILN_ASSIGN(items, iterate(v));
    if (items.size() != target.items.size())
      return error(line, items.size() > target.items.size()
                             ? "too many values to unpack (expected " + std::to_string(target.items.size()) + ")"
                             : "not enough values to unpack (expected " +
                                   std::to_string(target.items.size()) + ", got " +
                                   std::to_string(items.size()) + ")");
    for (size_t i = 0; i < items.size(); ++i)
      KILN_TRY(assign(target.items[i], items[i], line));
    return Status::ok();
  }
  }
  return Status::ok();
}

Status Interpreter::exec(const Body &body, std::string &out) {
  for (const StmtPtr &s : body) {
    KILN_TRY(execStmt(*s, out));
    if (flow_ != Flow::Normal)
      return Status::ok();
  }
  return Status::ok();
}

Status Interpreter::execStmt(const Stmt &s, std::string &out) {
  KILN_TRY(located(s.line, charge(1)));
  if (++depth_ > limits_.maxDepth) {
    --depth_;
    return error(s.line, "the template nests deeper than " + std::to_string(limits_.maxDepth) + " levels");
  }
  struct DepthRelease {
    int &d;
    ~DepthRelease() { --d; }
  } release{depth_};
  switch (s.kind) {
  case StmtKind::Data:
    out += s.text;
    return located(s.line, checkSize(out.size()));
  case StmtKind::Output:
    for (const ExprPtr &e : s.exprs) {
      Value v;
      KILN_ASSIGN(v, eval(*e));
      auto text = toStr(v);
      if (!text.ok())
        return located(s.line, text.status());
      out += *text;
      KILN_TRY(located(s.line, checkSize(out.size())));
    }
    return Status::ok();
  case StmtKind::If: return execIf(s, out);
  case StmtKind::For: return execFor(s, out);
  case StmtKind::Set: {
    Value v;
    KILN_ASSIGN(v, eval(*s.exprs[0]));
    return assign(s.target, v, s.line);
  }
  case StmtKind::SetBlock: return execSetBlock(s, out);
  case StmtKind::Macro: return execMacro(s);
  case StmtKind::FilterBlock:
  case StmtKind::With:
  case StmtKind::Scope: return execScoped(s, out);
  case StmtKind::Break: flow_ = Flow::Break; return Status::ok();
  case StmtKind::Continue: flow_ = Flow::Continue; return Status::ok();
  }
  return Status::ok();
}

Status Interpreter::execIf(const Stmt &s, std::string &out) {
  for (size_t i = 0; i < s.bodies.size(); ++i) {
    if (i < s.exprs.size()) {
      Value cond;
      KILN_ASSIGN(cond, eval(*s.exprs[i]));
      if (!truthy(cond))
        continue;
    }
    return exec(s.bodies[i], out);
  }
  return Status::ok();
}

Status Interpreter::execFor(const Stmt &s, std::string &out) {
  Value iterable;
  KILN_ASSIGN(iterable, eval(*s.exprs[0]));
  auto iterated = iterate(iterable);
  if (!iterated.ok())
    return located(s.line, iterated.status());
  ValueList all = std::move(*iterated);
  auto loop = std::make_shared<LoopData>();
  int parent = int(frames_.size()) - 1;
  if (s.exprs.size() > 1) { // {% for x in xs if cond %}: the loop runs over the items that pass
    for (Value &item : all) {
      KILN_TRY(located(s.line, charge(1)));
      pushFrame(parent);
      Status st = assign(s.target, item, s.line);
      StatusOr<Value> keep = st ? eval(*s.exprs[1]) : StatusOr<Value>(st);
      popFrame();
      if (!keep.ok())
        return keep.status();
      if (truthy(*keep))
        loop->items.push_back(std::move(item));
    }
  } else {
    loop->items = std::move(all);
  }
  if (loop->items.empty()) {
    pushFrame(parent);
    Status st = exec(s.bodies[1], out);
    popFrame();
    return st;
  }
  Value loopValue;
  loopValue.type = Type::Loop;
  loopValue.loop = loop;
  for (size_t i = 0; i < loop->items.size(); ++i) {
    KILN_TRY(located(s.line, charge(1)));
    loop->index = i;
    pushFrame(parent);
    define("loop", loopValue);
    Status st = assign(s.target, loop->items[i], s.line);
    if (st)
      st = exec(s.bodies[0], out);
    popFrame();
    KILN_TRY(st);
    Flow flow = flow_;
    flow_ = Flow::Normal;
    if (flow == Flow::Break)
      break;
  }
  return Status::ok();
}

Status Interpreter::execSetBlock(const Stmt &s, std::string &out) {
  (void)out;
  std::string captured;
  pushFrame(int(frames_.size()) - 1);
  Status st = exec(s.bodies[0], captured);
  popFrame();
  KILN_TRY(st);
  Value v = Value::string(std::move(captured));
  if (s.filter)
    KILN_ASSIGN(v, applyFilterChain(*s.filter, std::move(v)));
  return assign(s.target, v, s.line);
}

Status Interpreter::execScoped(const Stmt &s, std::string &out) {
  std::vector<Value> values;
  for (const ExprPtr &e : s.exprs) { // {% with %}: evaluated in the enclosing scope
    Value v;
    KILN_ASSIGN(v, eval(*e));
    values.push_back(std::move(v));
  }
  pushFrame(int(frames_.size()) - 1);
  Status st;
  for (size_t i = 0; st && i < values.size(); ++i)
    st = assign(s.targets[i], values[i], s.line);
  std::string captured;
  if (st)
    st = exec(s.bodies[0], s.kind == StmtKind::FilterBlock ? captured : out);
  popFrame();
  KILN_TRY(st);
  if (s.kind != StmtKind::FilterBlock)
    return Status::ok();
  Value filtered;
  KILN_ASSIGN(filtered, applyFilterChain(*s.filter, Value::string(std::move(captured))));
  auto str = toStr(filtered);
  if (!str.ok())
    return located(s.line, str.status());
  out += *str;
  return located(s.line, checkSize(out.size()));
}

Status Interpreter::execMacro(const Stmt &s) {
  auto macro = std::make_shared<MacroData>();
  macro->stmt = &s;
  // A macro sees the template's top-level variables when it is called; one defined inside a loop or
  // block also keeps that scope's variables as they were when it was defined.
  for (int f = int(frames_.size()) - 1; f > kTemplateFrame; f = frames_[size_t(f)].parent)
    for (const auto &v : frames_[size_t(f)].vars)
      if (std::none_of(macro->captured.begin(), macro->captured.end(),
                       [&](const auto &c) { return c.first == v.first; }))
        macro->captured.push_back(v);
  auto fn = std::make_shared<CallableData>();
  fn->name = "macro '" + s.text + "'";
  fn->call = [macro](Interpreter &in, const Value &, CallArgs &args) { return in.callMacro(*macro, args); };
  Value v;
  v.type = Type::Callable;
  v.fn = std::move(fn);
  define(s.text, std::move(v));
  return Status::ok();
}

StatusOr<Value> Interpreter::callMacro(const MacroData &macro, CallArgs &args) {
  const Stmt &s = *macro.stmt;
  if (macroDepth_ >= kMaxMacroDepth)
    return error(s.line, "macro calls nest deeper than " + std::to_string(kMaxMacroDepth) + " levels");
  if (args.positional.size() > s.params.size() && !s.catchVarargs)
    return error(s.line, "macro '" + s.text + "' takes not more than " + std::to_string(s.params.size()) +
                             " argument(s)");
  DictData extraKeywords;
  for (const auto &kw : args.keyword)
    if (std::find(s.params.begin(), s.params.end(), kw.first) == s.params.end()) {
      if (!s.catchKwargs)
        return error(s.line, "macro '" + s.text + "' takes no keyword argument '" + kw.first + "'");
      extraKeywords.set(Value::string(kw.first), kw.second);
    }
  int frame = pushFrame(kTemplateFrame);
  for (const auto &c : macro.captured)
    define(c.first, c.second);
  if (s.catchVarargs) {
    size_t n = std::min(args.positional.size(), s.params.size());
    define("varargs", Value::listOf(ValueList(args.positional.begin() + long(n), args.positional.end()),
                                    ListKind::Tuple));
  }
  if (s.catchKwargs)
    define("kwargs", Value::dictOf(std::move(extraKeywords)));
  ++macroDepth_;
  Status st;
  size_t firstDefault = s.params.size() - s.defaults.size();
  for (size_t i = 0; st && i < s.params.size(); ++i) {
    Value v = Value::undefined("parameter '" + s.params[i] + "' was not provided");
    bool given = i < args.positional.size();
    if (given)
      v = args.positional[i];
    for (const auto &kw : args.keyword)
      if (kw.first == s.params[i]) {
        if (given)
          st = error(s.line, "macro '" + s.text + "' got multiple values for argument '" + kw.first + "'");
        v = kw.second;
        given = true;
      }
    if (!given && i >= firstDefault) {
      auto d = eval(*s.defaults[i - firstDefault]);
      if (d.ok())
        v = std::move(*d);
      else
        st = d.status();
    }
    if (st)
      setIn(frames_[size_t(frame)], s.params[i], std::move(v));
  }
  std::string out;
  if (st)
    st = exec(s.bodies[0], out);
  flow_ = Flow::Normal;
  --macroDepth_;
  popFrame();
  KILN_TRY(st);
  return Value::string(std::move(out));
}

StatusOr<Value> Interpreter::applyFilterChain(const Expr &filter, Value input) {
  if (filter.operands[0])
    KILN_ASSIGN(input, applyFilterChain(*filter.operands[0], std::move(input)));
  CallArgs args;
  KILN_TRY(evalArgs(filter, args));
  auto r = applyFilter(filter.name, input, args);
  if (!r.ok())
    return located(filter.line, r.status());
  return r;
}

StatusOr<Value> Interpreter::eval(const Expr &e) {
  if (++depth_ > limits_.maxDepth) {
    --depth_;
    return error(e.line, "the template nests deeper than " + std::to_string(limits_.maxDepth) + " levels");
  }
  StatusOr<Value> r = evalInner(e);
  --depth_;
  if (!r.ok())
    return located(e.line, r.status());
  if (r->depth > kMaxValueDepth)
    return error(e.line, "a value nests deeper than " + std::to_string(kMaxValueDepth) + " levels");
  return r;
}

StatusOr<Value> Interpreter::evalInner(const Expr &e) {
  switch (e.kind) {
  case ExprKind::Const: return e.constant;
  case ExprKind::Name: return lookup(e.name);
  case ExprKind::List:
  case ExprKind::Tuple: return evalSequence(e);
  case ExprKind::Dict: return evalDict(e);
  case ExprKind::Getattr: {
    Value object;
    KILN_ASSIGN(object, eval(*e.operands[0]));
    return getAttr(object, e.name);
  }
  case ExprKind::Getitem: return evalGetitem(e);
  case ExprKind::Slice: return error(e.line, "a slice outside of a subscript");
  case ExprKind::Call: return evalCall(e);
  case ExprKind::Filter: {
    Value input;
    KILN_ASSIGN(input, eval(*e.operands[0]));
    CallArgs args;
    KILN_TRY(evalArgs(e, args));
    return applyFilter(e.name, input, args);
  }
  case ExprKind::Test: {
    Value input;
    KILN_ASSIGN(input, eval(*e.operands[0]));
    CallArgs args;
    KILN_TRY(evalArgs(e, args));
    bool result;
    KILN_ASSIGN(result, applyTest(e.name, input, args));
    return Value::boolean_(result);
  }
  case ExprKind::Neg:
  case ExprKind::Pos: {
    Value v;
    KILN_ASSIGN(v, eval(*e.operands[0]));
    return binaryOp(*this, e.kind == ExprKind::Neg ? "neg" : "pos", v, Value());
  }
  case ExprKind::Not: {
    Value v;
    KILN_ASSIGN(v, eval(*e.operands[0]));
    return Value::boolean_(!truthy(v));
  }
  case ExprKind::Binary: return evalBinary(e);
  case ExprKind::And:
  case ExprKind::Or: {
    Value left;
    KILN_ASSIGN(left, eval(*e.operands[0]));
    if (truthy(left) == (e.kind == ExprKind::Or))
      return left;
    return eval(*e.operands[1]);
  }
  case ExprKind::Compare: return evalCompare(e);
  case ExprKind::CondExpr: {
    Value cond;
    KILN_ASSIGN(cond, eval(*e.operands[1]));
    if (truthy(cond))
      return eval(*e.operands[0]);
    if (e.operands[2])
      return eval(*e.operands[2]);
    return Value::undefined("the conditional expression has no else branch");
  }
  case ExprKind::Concat: {
    std::string out;
    for (const ExprPtr &part : e.operands) {
      Value v;
      KILN_ASSIGN(v, eval(*part));
      std::string text;
      KILN_ASSIGN(text, toStr(v));
      out += text;
      KILN_TRY(checkSize(out.size()));
    }
    return Value::string(std::move(out));
  }
  }
  return error(e.line, "unknown expression");
}

StatusOr<Value> Interpreter::evalSequence(const Expr &e) {
  ValueList items;
  for (const ExprPtr &item : e.operands) {
    Value v;
    KILN_ASSIGN(v, eval(*item));
    items.push_back(std::move(v));
  }
  return Value::listOf(std::move(items), e.kind == ExprKind::Tuple ? ListKind::Tuple : ListKind::List);
}

StatusOr<Value> Interpreter::evalDict(const Expr &e) {
  DictData d;
  for (size_t i = 0; i + 1 < e.operands.size(); i += 2) {
    Value key, value;
    KILN_ASSIGN(key, eval(*e.operands[i]));
    KILN_ASSIGN(value, eval(*e.operands[i + 1]));
    KILN_TRY(checkHashable(key));
    d.set(std::move(key), std::move(value));
  }
  return Value::dictOf(std::move(d));
}

StatusOr<Value> Interpreter::evalGetitem(const Expr &e) {
  Value object;
  KILN_ASSIGN(object, eval(*e.operands[0]));
  if (e.operands[1]->kind == ExprKind::Slice)
    return evalSlice(object, *e.operands[1]);
  Value key;
  KILN_ASSIGN(key, eval(*e.operands[1]));
  return getItem(object, key);
}

StatusOr<Value> Interpreter::evalSlice(const Value &object, const Expr &slice) {
  Value bounds[3];
  for (int i = 0; i < 3; ++i)
    if (slice.operands[size_t(i)])
      KILN_ASSIGN(bounds[i], eval(*slice.operands[size_t(i)]));
    else
      bounds[i] = Value::none();
  // jinja2 slices with Python's own subscript (not the sandbox's getitem): failures are errors.
  if (object.isUndefined())
    return Status::error(object.s().empty() ? "cannot slice an undefined value" : object.s());
  if (!object.isString() && !(object.type == Type::List && (object.listKind == ListKind::List ||
                                                             object.listKind == ListKind::Tuple)))
    return Status::error("cannot slice a '" + typeName(object) + "' object");
  for (const Value &b : bounds)
    if (b.type != Type::None && b.type != Type::Int && b.type != Type::Bool)
      return Status::error("slice indices must be integers or None or have an __index__ method");
  auto asInt = [](const Value &v) { return v.type == Type::Bool ? int64_t(v.boolean) : v.integer; };
  int64_t step = bounds[2].type == Type::None ? 1 : asInt(bounds[2]);
  if (step == 0)
    return Status::error("slice step cannot be zero");
  std::u32string chars;
  if (object.isString())
    chars = decodeUtf8(object.s());
  int64_t len = object.isString() ? int64_t(chars.size()) : int64_t(object.items().size());
  auto adjust = [&](const Value &b, bool isStart) {
    int64_t lower = step > 0 ? 0 : -1, upper = step > 0 ? len : len - 1;
    if (b.type == Type::None)
      return (step < 0) == isStart ? upper : lower;
    int64_t i = asInt(b);
    if (i < 0)
      i = std::max(i + len, lower);
    return std::min(std::max(i, lower), upper);
  };
  int64_t start = adjust(bounds[0], true), stop = adjust(bounds[1], false);
  std::u32string outChars;
  ValueList outItems;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (object.isString())
      outChars.push_back(chars[size_t(i)]);
    else
      outItems.push_back(object.items()[size_t(i)]);
  }
  KILN_TRY(charge(uint64_t(outChars.size() + outItems.size()) / 16));
  if (object.isString())
    return Value::string(encodeUtf8(outChars), object.markup);
  return Value::listOf(std::move(outItems), object.listKind);
}

Status Interpreter::evalArgs(const Expr &e, CallArgs &args) {
  for (const ExprPtr &a : e.args) {
    Value v;
    KILN_ASSIGN(v, eval(*a));
    args.positional.push_back(std::move(v));
  }
  for (const auto &kw : e.kwargs) {
    Value v;
    KILN_ASSIGN(v, eval(*kw.second));
    args.keyword.emplace_back(kw.first, std::move(v));
  }
  return Status::ok();
}

StatusOr<Value> Interpreter::evalCall(const Expr &e) {
  Value callee;
  KILN_ASSIGN(callee, eval(*e.operands[0]));
  CallArgs args;
  KILN_TRY(evalArgs(e, args));
  return call(callee, args);
}

StatusOr<Value> Interpreter::call(const Value &callee, CallArgs &args) {
  KILN_TRY(charge(1));
  if (callee.type == Type::Callable)
    return callee.fn->call(*this, callee.fn->self, args);
  if (callee.isUndefined())
    return Status::error(callee.s().empty() ? "an undefined value is not callable" : callee.s());
  return Status::error("'" + typeName(callee) + "' object is not callable");
}

StatusOr<Value> Interpreter::evalCompare(const Expr &e) {
  Value left;
  KILN_ASSIGN(left, eval(*e.operands[0]));
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right;
    KILN_ASSIGN(right, eval(*e.operands[i + 1]));
    const std::string &op = e.ops[i];
    bool result;
    if (op == "==" || op == "!=") {
      result = equals(left, right) == (op == "==");
    } else if (op == "in" || op == "notin") {
      KILN_ASSIGN(result, contains(right, left));
      result = result == (op == "in");
    } else {
      for (const Value *v : {&left, &right})
        if (v->isUndefined())
          return Status::error(v->s().empty() ? "an undefined value cannot be compared" : v->s());
      bool swap = op == ">" || op == ">=";
      KILN_ASSIGN(result, swap ? lessThan(right, left) : lessThan(left, right));
      if (op.size() == 2)
        result = result || equals(left, right);
    }
    if (!result)
      return Value::boolean_(false);
    left = std::move(right);
  }
  return Value::boolean_(true);
}

StatusOr<Value> Interpreter::evalBinary(const Expr &e) {
  Value a, b;
  KILN_ASSIGN(a, eval(*e.operands[0]));
  KILN_ASSIGN(b, eval(*e.operands[1]));
  return binaryOp(*this, e.name, a, b);
}

} // namespace kiln::jinja
