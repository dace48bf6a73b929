#include "Parser.h"

#include "Try.h"

#include <algorithm>
#include <initializer_list>

namespace kiln::jinja {
namespace {


constexpr int kMaxNesting = 100;

ExprPtr makeExpr(ExprKind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

ExprPtr makeExpr(ExprKind kind, int line, ExprPtr a, ExprPtr b = nullptr) {
  ExprPtr e = makeExpr(kind, line);
  e->operands.push_back(std::move(a));
  if (b)
    e->operands.push_back(std::move(b));
  return e;
}

// Whether `name` is read anywhere in a body (jinja2 decides a macro's varargs / kwargs / caller this way).
bool mentions(const Expr *e, const std::string &name) {
  if (!e)
    return false;
  if (e->kind == ExprKind::Name && e->name == name)
    return true;
  for (const auto *list : {&e->operands, &e->args})
    for (const ExprPtr &x : *list)
      if (mentions(x.get(), name))
        return true;
  for (const auto &kw : e->kwargs)
    if (mentions(kw.second.get(), name))
      return true;
  return false;
}

bool mentions(const Body &body, const std::string &name) {
  for (const StmtPtr &s : body) {
    for (const ExprPtr &e : s->exprs)
      if (mentions(e.get(), name))
        return true;
    for (const ExprPtr &e : s->defaults)
      if (mentions(e.get(), name))
        return true;
    if (mentions(s->filter.get(), name))
      return true;
    for (const Body &b : s->bodies)
      if (mentions(b, name))
        return true;
  }
  return false;
}

class Parser {
public:
  Parser(const std::vector<Token> &tokens, const std::string &name) : t_(tokens), name_(name) {}
  StatusOr<Body> parseAll();

private:
  struct DepthGuard {
    int &depth;
    explicit DepthGuard(int &d) : depth(++d) {}
    ~DepthGuard() { --depth; }
  };

  const Token &cur() const { return t_[i_]; }
  const Token &peek() const { return t_[std::min(i_ + 1, t_.size() - 1)]; }
  void next() {
    if (i_ + 1 < t_.size())
      ++i_;
  }
  bool isOp(const char *op) const { return cur().type == TokenType::Operator && cur().text == op; }
  bool isName(const char *n) const { return cur().type == TokenType::Name && cur().text == n; }
  bool isAnyName(const std::vector<std::string> &names) const {
    return cur().type == TokenType::Name &&
           std::find(names.begin(), names.end(), cur().text) != names.end();
  }
  bool skipOp(const char *op) {
    if (!isOp(op))
      return false;
    next();
    return true;
  }
  bool skipName(const char *n) {
    if (!isName(n))
      return false;
    next();
    return true;
  }
  Status fail(const std::string &message, int line = 0) const {
    return Status::error(name_ + " line " + std::to_string(line ? line : cur().line) + ": " + message);
  }
  std::string describe(const Token &t) const;
  Status expect(TokenType type, const char *what);
  Status expectOp(const char *op);
  Status expectName(const char *n);
  Status checkDepth() const {
    return depth_ > kMaxNesting ? fail("the template nests deeper than " + std::to_string(kMaxNesting) +
                                       " levels")
                                : Status::ok();
  }

  // Statements.
  StatusOr<Body> subparse(const std::vector<std::string> &endTokens);
  Status parseStatements(const std::vector<std::string> &endTokens, bool dropNeedle, Body &out);
  StatusOr<StmtPtr> parseStatement();
  StatusOr<StmtPtr> parseIf();
  StatusOr<StmtPtr> parseFor();
  StatusOr<StmtPtr> parseSet();
  StatusOr<StmtPtr> parseMacro();
  StatusOr<StmtPtr> parseWith();
  StatusOr<StmtPtr> parseFilterBlock();
  StatusOr<StmtPtr> parseScopeBlock(const char *endTag);
  StatusOr<Target> parseAssignTarget(bool withNamespace, bool nameOnly,
                                     const std::vector<std::string> &extraEnd);

  // Expressions, from the loosest binding to the tightest (jinja2's parser.py).
  bool isTupleEnd(const std::vector<std::string> &extraEnd) const;
  StatusOr<ExprPtr> parseTuple(bool withCondexpr, const std::vector<std::string> &extraEnd,
                               bool explicitParens);
  StatusOr<ExprPtr> parseExpression(bool withCondexpr = true);
  StatusOr<ExprPtr> parseCondexpr();
  StatusOr<ExprPtr> parseOr();
  StatusOr<ExprPtr> parseAnd();
  StatusOr<ExprPtr> parseNot();
  StatusOr<ExprPtr> parseCompare();
  StatusOr<ExprPtr> parseMath1();
  StatusOr<ExprPtr> parseConcat();
  StatusOr<ExprPtr> parseMath2();
  StatusOr<ExprPtr> parsePow();
  StatusOr<ExprPtr> parseFilteredUnary();
  StatusOr<ExprPtr> parseUnary(bool withFilter);
  // operand (op operand)*, left-associative; ops are operators for Binary, keywords for And / Or.
  StatusOr<ExprPtr> parseLeftAssoc(StatusOr<ExprPtr> (Parser::*operand)(), std::initializer_list<const char *> ops,
                                   ExprKind kind);
  StatusOr<ExprPtr> parsePrimary();
  StatusOr<ExprPtr> parseList();
  StatusOr<ExprPtr> parseDict();
  StatusOr<ExprPtr> parsePostfix(ExprPtr node);
  StatusOr<ExprPtr> parseFilterExpr(ExprPtr node);
  StatusOr<ExprPtr> parseCall(ExprPtr node);
  StatusOr<ExprPtr> parseSubscript(ExprPtr node);
  StatusOr<ExprPtr> parseSubscribed();
  Status parseCallArgs(Expr &call);
  StatusOr<ExprPtr> parseFilter(ExprPtr node, bool startInline);
  StatusOr<ExprPtr> parseTest(ExprPtr node);

  const std::vector<Token> &t_;
  size_t i_ = 0;
  const std::string &name_;
  int depth_ = 0;
  int loopDepth_ = 0; // for loops enclosing the current position (break / continue need one)
};

std::string Parser::describe(const Token &t) const {
  switch (t.type) {
  case TokenType::Name:
  case TokenType::Operator: return "'" + t.text + "'";
  case TokenType::String: return "a string";
  case TokenType::Integer:
  case TokenType::Float: return "a number";
  case TokenType::Data: return "template text";
  case TokenType::VariableBegin: return "'{{'";
  case TokenType::VariableEnd: return "'}}'";
  case TokenType::BlockBegin: return "'{%'";
  case TokenType::BlockEnd: return "'%}'";
  case TokenType::Eof: return "the end of the template";
  }
  return "a token";
}

Status Parser::expect(TokenType type, const char *what) {
  if (cur().type != type)
    return fail(std::string("expected ") + what + ", got " + describe(cur()));
  next();
  return Status::ok();
}

Status Parser::expectOp(const char *op) {
  if (!skipOp(op))
    return fail(std::string("expected '") + op + "', got " + describe(cur()));
  return Status::ok();
}

Status Parser::expectName(const char *n) {
  if (!skipName(n))
    return fail(std::string("expected '") + n + "', got " + describe(cur()));
  return Status::ok();
}

StatusOr<Body> Parser::parseAll() {
  Body body;
  KILN_ASSIGN(body, subparse({}));
  if (cur().type != TokenType::Eof)
    return fail("unexpected " + describe(cur()));
  return body;
}

StatusOr<Body> Parser::subparse(const std::vector<std::string> &endTokens) {
  Body body;
  while (cur().type != TokenType::Eof) {
    const Token &t = cur();
    if (t.type == TokenType::Data) {
      auto s = std::make_unique<Stmt>();
      s->kind = StmtKind::Data;
      s->line = t.line;
      s->text = t.text;
      body.push_back(std::move(s));
      next();
    } else if (t.type == TokenType::VariableBegin) {
      next();
      auto s = std::make_unique<Stmt>();
      s->kind = StmtKind::Output;
      s->line = t.line;
      ExprPtr e;
      KILN_ASSIGN(e, parseTuple(true, {}, false));
      s->exprs.push_back(std::move(e));
      KILN_TRY(expect(TokenType::VariableEnd, "'}}'"));
      body.push_back(std::move(s));
    } else if (t.type == TokenType::BlockBegin) {
      next();
      if (!endTokens.empty() && isAnyName(endTokens))
        return body;
      StmtPtr s;
      KILN_ASSIGN(s, parseStatement());
      if (s)
        body.push_back(std::move(s));
      KILN_TRY(expect(TokenType::BlockEnd, "'%}'"));
    } else {
      return fail("unexpected " + describe(t));
    }
  }
  return body;
}

Status Parser::parseStatements(const std::vector<std::string> &endTokens, bool dropNeedle, Body &out) {
  skipOp(":");
  KILN_TRY(expect(TokenType::BlockEnd, "'%}'"));
  KILN_ASSIGN(out, subparse(endTokens));
  if (cur().type == TokenType::Eof) {
    std::string wanted;
    for (const std::string &e : endTokens)
      wanted += (wanted.empty() ? "'" : " or '") + e + "'";
    return fail("unexpected end of template; expected " + wanted);
  }
  if (dropNeedle)
    next();
  return Status::ok();
}

StatusOr<StmtPtr> Parser::parseStatement() {
  DepthGuard guard(depth_);
  KILN_TRY(checkDepth());
  if (cur().type != TokenType::Name)
    return fail("tag name expected, got " + describe(cur()));
  const std::string tag = cur().text;
  if (tag == "if")
    return parseIf();
  if (tag == "for")
    return parseFor();
  if (tag == "set")
    return parseSet();
  if (tag == "macro")
    return parseMacro();
  if (tag == "with")
    return parseWith();
  if (tag == "filter")
    return parseFilterBlock();
  if (tag == "generation")
    return parseScopeBlock("endgeneration");
  if (tag == "print") { // {% print a, b %} outputs each expression
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::Output;
    s->line = cur().line;
    next();
    while (cur().type != TokenType::BlockEnd) {
      if (!s->exprs.empty())
        KILN_TRY(expectOp(","));
      ExprPtr e;
      KILN_ASSIGN(e, parseExpression());
      s->exprs.push_back(std::move(e));
    }
    return s;
  }
  if (tag == "break" || tag == "continue") {
    if (loopDepth_ == 0)
      return fail("'" + tag + "' outside of a for loop");
    auto s = std::make_unique<Stmt>();
    s->kind = tag == "break" ? StmtKind::Break : StmtKind::Continue;
    s->line = cur().line;
    next();
    return s;
  }
  static const char *kUnsupported[] = {"block", "extends", "include", "import", "from", "call",
                                       "autoescape", "do", "trans", "raw"};
  for (const char *u : kUnsupported)
    if (tag == u)
      return fail("the '" + tag + "' tag is not supported in chat templates");
  return fail("unknown tag '" + tag + "'");
}

StatusOr<StmtPtr> Parser::parseIf() {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::If;
  s->line = cur().line;
  next();
  while (true) {
    ExprPtr cond;
    KILN_ASSIGN(cond, parseTuple(false, {}, false));
    s->exprs.push_back(std::move(cond));
    s->bodies.emplace_back();
    KILN_TRY(parseStatements({"elif", "else", "endif"}, false, s->bodies.back()));
    std::string which = cur().text;
    next();
    if (which == "elif")
      continue;
    if (which == "else") {
      s->bodies.emplace_back();
      KILN_TRY(parseStatements({"endif"}, true, s->bodies.back()));
    }
    return s;
  }
}

StatusOr<StmtPtr> Parser::parseFor() {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::For;
  s->line = cur().line;
  next();
  KILN_ASSIGN(s->target, parseAssignTarget(false, false, {"in"}));
  KILN_TRY(expectName("in"));
  ExprPtr iter;
  KILN_ASSIGN(iter, parseTuple(false, {"recursive"}, false));
  s->exprs.push_back(std::move(iter));
  if (skipName("if")) {
    ExprPtr test;
    KILN_ASSIGN(test, parseExpression());
    s->exprs.push_back(std::move(test));
  }
  if (isName("recursive"))
    return fail("recursive for loops are not supported");
  s->bodies.resize(2);
  ++loopDepth_;
  Status body = parseStatements({"endfor", "else"}, false, s->bodies[0]);
  --loopDepth_;
  KILN_TRY(body);
  std::string which = cur().text;
  next();
  if (which == "else")
    KILN_TRY(parseStatements({"endfor"}, true, s->bodies[1]));
  return s;
}

StatusOr<StmtPtr> Parser::parseSet() {
  auto s = std::make_unique<Stmt>();
  s->line = cur().line;
  next();
  KILN_ASSIGN(s->target, parseAssignTarget(true, false, {}));
  if (skipOp("=")) {
    s->kind = StmtKind::Set;
    ExprPtr value;
    KILN_ASSIGN(value, parseTuple(true, {}, false));
    s->exprs.push_back(std::move(value));
    return s;
  }
  s->kind = StmtKind::SetBlock;
  if (isOp("|"))
    KILN_ASSIGN(s->filter, parseFilter(nullptr, false));
  s->bodies.emplace_back();
  KILN_TRY(parseStatements({"endset"}, true, s->bodies[0]));
  return s;
}

StatusOr<StmtPtr> Parser::parseMacro() {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::Macro;
  s->line = cur().line;
  next();
  Target name;
  KILN_ASSIGN(name, parseAssignTarget(false, true, {}));
  s->text = name.name;
  KILN_TRY(expectOp("("));
  while (!isOp(")")) {
    if (!s->params.empty())
      KILN_TRY(expectOp(","));
    Target param;
    KILN_ASSIGN(param, parseAssignTarget(false, true, {}));
    if (skipOp("=")) {
      ExprPtr d;
      KILN_ASSIGN(d, parseExpression());
      s->defaults.push_back(std::move(d));
    } else if (!s->defaults.empty()) {
      return fail("non-default argument follows default argument");
    }
    s->params.push_back(param.name);
  }
  KILN_TRY(expectOp(")"));
  int outerLoops = loopDepth_;
  loopDepth_ = 0; // a loop around a macro definition does not make break valid inside it
  s->bodies.emplace_back();
  Status body = parseStatements({"endmacro"}, true, s->bodies[0]);
  loopDepth_ = outerLoops;
  KILN_TRY(body);
  if (mentions(s->bodies[0], "caller"))
    return fail("macros that use caller() ({% call %} blocks) are not supported", s->line);
  s->catchVarargs = mentions(s->bodies[0], "varargs");
  s->catchKwargs = mentions(s->bodies[0], "kwargs");
  return s;
}

StatusOr<StmtPtr> Parser::parseWith() {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::With;
  s->line = cur().line;
  next();
  while (cur().type != TokenType::BlockEnd) {
    if (!s->targets.empty())
      KILN_TRY(expectOp(","));
    Target t;
    KILN_ASSIGN(t, parseAssignTarget(false, false, {}));
    KILN_TRY(expectOp("="));
    ExprPtr value;
    KILN_ASSIGN(value, parseExpression());
    s->targets.push_back(std::move(t));
    s->exprs.push_back(std::move(value));
  }
  s->bodies.emplace_back();
  KILN_TRY(parseStatements({"endwith"}, true, s->bodies[0]));
  return s;
}

StatusOr<StmtPtr> Parser::parseFilterBlock() {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::FilterBlock;
  s->line = cur().line;
  next();
  KILN_ASSIGN(s->filter, parseFilter(nullptr, true));
  s->bodies.emplace_back();
  KILN_TRY(parseStatements({"endfilter"}, true, s->bodies[0]));
  return s;
}

StatusOr<StmtPtr> Parser::parseScopeBlock(const char *endTag) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::Scope;
  s->line = cur().line;
  next();
  s->bodies.emplace_back();
  KILN_TRY(parseStatements({endTag}, true, s->bodies[0]));
  return s;
}

StatusOr<Target> Parser::parseAssignTarget(bool withNamespace, bool nameOnly,
                                           const std::vector<std::string> &extraEnd) {
  auto nameTarget = [&]() -> StatusOr<Target> {
    static const char *kConstants[] = {"true", "false", "none", "True", "False", "None"};
    if (cur().type != TokenType::Name)
      return fail("can't assign to " + describe(cur()));
    for (const char *c : kConstants)
      if (cur().text == c)
        return fail("can't assign to the constant '" + cur().text + "'");
    Target t;
    t.name = cur().text;
    next();
    return t;
  };
  if (withNamespace && cur().type == TokenType::Name && peek().type == TokenType::Operator &&
      peek().text == ".") {
    Target t;
    t.kind = Target::Kind::NamespaceAttr;
    t.name = cur().text;
    next();
    next();
    if (cur().type != TokenType::Name)
      return fail("expected an attribute name, got " + describe(cur()));
    t.attr = cur().text;
    next();
    return t;
  }
  if (nameOnly)
    return nameTarget();
  Target tuple;
  tuple.kind = Target::Kind::Tuple;
  bool isTuple = false;
  while (true) {
    if (!tuple.items.empty())
      KILN_TRY(expectOp(","));
    if (isTupleEnd(extraEnd))
      break;
    Target item;
    KILN_ASSIGN(item, nameTarget());
    tuple.items.push_back(std::move(item));
    if (!isOp(","))
      break;
    isTuple = true;
  }
  if (tuple.items.empty())
    return fail("expected an assignment target, got " + describe(cur()));
  if (!isTuple)
    return std::move(tuple.items[0]);
  return tuple;
}

bool Parser::isTupleEnd(const std::vector<std::string> &extraEnd) const {
  if (cur().type == TokenType::VariableEnd || cur().type == TokenType::BlockEnd || isOp(")"))
    return true;
  return isAnyName(extraEnd);
}

StatusOr<ExprPtr> Parser::parseTuple(bool withCondexpr, const std::vector<std::string> &extraEnd,
                                     bool explicitParens) {
  int line = cur().line;
  std::vector<ExprPtr> items;
  bool isTuple = false;
  while (true) {
    if (!items.empty())
      KILN_TRY(expectOp(","));
    if (isTupleEnd(extraEnd))
      break;
    ExprPtr e;
    KILN_ASSIGN(e, parseExpression(withCondexpr));
    items.push_back(std::move(e));
    if (!isOp(","))
      break;
    isTuple = true;
  }
  if (!isTuple) {
    if (!items.empty())
      return std::move(items[0]);
    if (!explicitParens)
      return fail("expected an expression, got " + describe(cur()));
  }
  ExprPtr t = makeExpr(ExprKind::Tuple, line);
  t->operands = std::move(items);
  return t;
}

StatusOr<ExprPtr> Parser::parseExpression(bool withCondexpr) {
  return withCondexpr ? parseCondexpr() : parseOr();
}

StatusOr<ExprPtr> Parser::parseCondexpr() {
  DepthGuard guard(depth_);
  KILN_TRY(checkDepth());
  int line = cur().line;
  ExprPtr then;
  KILN_ASSIGN(then, parseOr());
  while (skipName("if")) {
    ExprPtr cond, otherwise;
    KILN_ASSIGN(cond, parseOr());
    if (skipName("else"))
      KILN_ASSIGN(otherwise, parseCondexpr());
    ExprPtr e = makeExpr(ExprKind::CondExpr, line, std::move(then), std::move(cond));
    e->operands.push_back(std::move(otherwise));
    then = std::move(e);
    line = cur().line;
  }
  return then;
}

StatusOr<ExprPtr> Parser::parseOr() { return parseLeftAssoc(&Parser::parseAnd, {"or"}, ExprKind::Or); }

StatusOr<ExprPtr> Parser::parseAnd() { return parseLeftAssoc(&Parser::parseNot, {"and"}, ExprKind::And); }

StatusOr<ExprPtr> Parser::parseLeftAssoc(StatusOr<ExprPtr> (Parser::*operand)(),
                                         std::initializer_list<const char *> ops, ExprKind kind) {
  ExprPtr left;
  KILN_ASSIGN(left, (this->*operand)());
  while (true) {
    const char *op = nullptr;
    for (const char *o : ops)
      if (kind == ExprKind::Binary ? isOp(o) : isName(o))
        op = o;
    if (!op)
      return left;
    ExprPtr e = makeExpr(kind, cur().line);
    e->name = op;
    next();
    ExprPtr right;
    KILN_ASSIGN(right, (this->*operand)());
    e->operands.push_back(std::move(left));
    e->operands.push_back(std::move(right));
    left = std::move(e);
  }
}

StatusOr<ExprPtr> Parser::parseNot() {
  DepthGuard guard(depth_);
  KILN_TRY(checkDepth());
  if (isName("not")) {
    int line = cur().line;
    next();
    ExprPtr operand;
    KILN_ASSIGN(operand, parseNot());
    return makeExpr(ExprKind::Not, line, std::move(operand));
  }
  return parseCompare();
}

StatusOr<ExprPtr> Parser::parseCompare() {
  int line = cur().line;
  ExprPtr first;
  KILN_ASSIGN(first, parseMath1());
  ExprPtr cmp;
  static const char *kOps[] = {"==", "!=", "<", "<=", ">", ">="};
  while (true) {
    std::string op;
    for (const char *o : kOps)
      if (isOp(o))
        op = o;
    if (!op.empty()) {
      next();
    } else if (isName("in")) {
      op = "in";
      next();
    } else if (isName("not") && peek().type == TokenType::Name && peek().text == "in") {
      op = "notin";
      next();
      next();
    } else {
      break;
    }
    if (!cmp) {
      cmp = makeExpr(ExprKind::Compare, line, std::move(first));
    }
    ExprPtr operand;
    KILN_ASSIGN(operand, parseMath1());
    cmp->ops.push_back(op);
    cmp->operands.push_back(std::move(operand));
  }
  return cmp ? std::move(cmp) : std::move(first);
}

StatusOr<ExprPtr> Parser::parseMath1() {
  return parseLeftAssoc(&Parser::parseConcat, {"+", "-"}, ExprKind::Binary);
}

StatusOr<ExprPtr> Parser::parseConcat() {
  int line = cur().line;
  ExprPtr first;
  KILN_ASSIGN(first, parseMath2());
  if (!isOp("~"))
    return first;
  ExprPtr cat = makeExpr(ExprKind::Concat, line, std::move(first));
  while (skipOp("~")) {
    ExprPtr next;
    KILN_ASSIGN(next, parseMath2());
    cat->operands.push_back(std::move(next));
  }
  return cat;
}

StatusOr<ExprPtr> Parser::parseMath2() {
  return parseLeftAssoc(&Parser::parsePow, {"*", "/", "//", "%"}, ExprKind::Binary);
}

StatusOr<ExprPtr> Parser::parsePow() { return parseLeftAssoc(&Parser::parseFilteredUnary, {"**"}, ExprKind::Binary); }

StatusOr<ExprPtr> Parser::parseFilteredUnary() { return parseUnary(true); }

StatusOr<ExprPtr> Parser::parseUnary(bool withFilter) {
  DepthGuard guard(depth_);
  KILN_TRY(checkDepth());
  int line = cur().line;
  ExprPtr node;
  if (isOp("-") || isOp("+")) {
    ExprKind kind = isOp("-") ? ExprKind::Neg : ExprKind::Pos;
    next();
    ExprPtr operand;
    KILN_ASSIGN(operand, parseUnary(false));
    node = makeExpr(kind, line, std::move(operand));
  } else {
    KILN_ASSIGN(node, parsePrimary());
  }
  KILN_ASSIGN(node, parsePostfix(std::move(node)));
  if (withFilter)
    KILN_ASSIGN(node, parseFilterExpr(std::move(node)));
  return node;
}

StatusOr<ExprPtr> Parser::parsePrimary() {
  const Token &t = cur();
  ExprPtr node;
  if (t.type == TokenType::Name) {
    if (t.text == "true" || t.text == "True" || t.text == "false" || t.text == "False") {
      node = makeExpr(ExprKind::Const, t.line);
      node->constant = Value::boolean_(t.text == "true" || t.text == "True");
    } else if (t.text == "none" || t.text == "None") {
      node = makeExpr(ExprKind::Const, t.line);
      node->constant = Value::none();
    } else {
      node = makeExpr(ExprKind::Name, t.line);
      node->name = t.text;
    }
    next();
  } else if (t.type == TokenType::String) {
    node = makeExpr(ExprKind::Const, t.line);
    std::string text;
    while (cur().type == TokenType::String) { // adjacent literals concatenate
      text += cur().text;
      next();
    }
    node->constant = Value::string(std::move(text));
  } else if (t.type == TokenType::Integer || t.type == TokenType::Float) {
    node = makeExpr(ExprKind::Const, t.line);
    node->constant = t.type == TokenType::Integer ? Value::int_(t.integer) : Value::float_(t.number);
    next();
  } else if (isOp("(")) {
    next();
    KILN_ASSIGN(node, parseTuple(true, {}, true));
    KILN_TRY(expectOp(")"));
  } else if (isOp("[")) {
    KILN_ASSIGN(node, parseList());
  } else if (isOp("{")) {
    KILN_ASSIGN(node, parseDict());
  } else {
    return fail("unexpected " + describe(t));
  }
  return node;
}

StatusOr<ExprPtr> Parser::parseList() {
  ExprPtr list = makeExpr(ExprKind::List, cur().line);
  KILN_TRY(expectOp("["));
  while (!isOp("]")) {
    if (!list->operands.empty())
      KILN_TRY(expectOp(","));
    if (isOp("]"))
      break;
    ExprPtr item;
    KILN_ASSIGN(item, parseExpression());
    list->operands.push_back(std::move(item));
  }
  KILN_TRY(expectOp("]"));
  return list;
}

StatusOr<ExprPtr> Parser::parseDict() {
  ExprPtr dict = makeExpr(ExprKind::Dict, cur().line);
  KILN_TRY(expectOp("{"));
  while (!isOp("}")) {
    if (!dict->operands.empty())
      KILN_TRY(expectOp(","));
    if (isOp("}"))
      break;
    ExprPtr key, value;
    KILN_ASSIGN(key, parseExpression());
    KILN_TRY(expectOp(":"));
    KILN_ASSIGN(value, parseExpression());
    dict->operands.push_back(std::move(key));
    dict->operands.push_back(std::move(value));
  }
  KILN_TRY(expectOp("}"));
  return dict;
}

StatusOr<ExprPtr> Parser::parsePostfix(ExprPtr node) {
  while (true) {
    if (isOp(".") || isOp("[")) {
      KILN_ASSIGN(node, parseSubscript(std::move(node)));
    } else if (isOp("(")) {
      KILN_ASSIGN(node, parseCall(std::move(node)));
    } else {
      return node;
    }
  }
}

StatusOr<ExprPtr> Parser::parseFilterExpr(ExprPtr node) {
  while (true) {
    if (isOp("|")) {
      KILN_ASSIGN(node, parseFilter(std::move(node), false));
    } else if (isName("is")) {
      KILN_ASSIGN(node, parseTest(std::move(node)));
    } else if (isOp("(")) {
      KILN_ASSIGN(node, parseCall(std::move(node)));
    } else {
      return node;
    }
  }
}

StatusOr<ExprPtr> Parser::parseCall(ExprPtr node) {
  ExprPtr call = makeExpr(ExprKind::Call, cur().line, std::move(node));
  KILN_TRY(parseCallArgs(*call));
  return call;
}

StatusOr<ExprPtr> Parser::parseSubscript(ExprPtr node) {
  int line = cur().line;
  if (skipOp(".")) {
    if (cur().type == TokenType::Name) {
      ExprPtr e = makeExpr(ExprKind::Getattr, line, std::move(node));
      e->name = cur().text;
      next();
      return e;
    }
    if (cur().type != TokenType::Integer)
      return fail("expected name or number after '.'");
    ExprPtr index = makeExpr(ExprKind::Const, cur().line);
    index->constant = Value::int_(cur().integer);
    next();
    return makeExpr(ExprKind::Getitem, line, std::move(node), std::move(index));
  }
  KILN_TRY(expectOp("["));
  std::vector<ExprPtr> args;
  while (!isOp("]")) {
    if (!args.empty())
      KILN_TRY(expectOp(","));
    ExprPtr a;
    KILN_ASSIGN(a, parseSubscribed());
    args.push_back(std::move(a));
  }
  KILN_TRY(expectOp("]"));
  if (args.empty())
    return fail("expected a subscript expression");
  ExprPtr index;
  if (args.size() == 1) {
    index = std::move(args[0]);
  } else {
    index = makeExpr(ExprKind::Tuple, line);
    index->operands = std::move(args);
  }
  return makeExpr(ExprKind::Getitem, line, std::move(node), std::move(index));
}

StatusOr<ExprPtr> Parser::parseSubscribed() {
  int line = cur().line;
  ExprPtr start;
  if (!isOp(":")) {
    KILN_ASSIGN(start, parseExpression());
    if (!isOp(":"))
      return start;
  }
  next(); // ':'
  ExprPtr slice = makeExpr(ExprKind::Slice, line);
  slice->operands.push_back(std::move(start));
  ExprPtr stop, step;
  if (!isOp(":") && !isOp("]") && !isOp(","))
    KILN_ASSIGN(stop, parseExpression());
  if (skipOp(":") && !isOp("]") && !isOp(","))
    KILN_ASSIGN(step, parseExpression());
  slice->operands.push_back(std::move(stop));
  slice->operands.push_back(std::move(step));
  return slice;
}

Status Parser::parseCallArgs(Expr &call) {
  int line = cur().line;
  KILN_TRY(expectOp("("));
  bool requireComma = false;
  while (!isOp(")")) {
    if (requireComma) {
      KILN_TRY(expectOp(","));
      if (isOp(")"))
        break;
    }
    if (isOp("*") || isOp("**"))
      return fail("*args and **kwargs in calls are not supported");
    if (cur().type == TokenType::Name && peek().type == TokenType::Operator && peek().text == "=") {
      std::string key = cur().text;
      next();
      next();
      ExprPtr value;
      KILN_ASSIGN(value, parseExpression());
      call.kwargs.emplace_back(std::move(key), std::move(value));
    } else {
      if (!call.kwargs.empty())
        return fail("invalid syntax for function call expression", line);
      ExprPtr value;
      KILN_ASSIGN(value, parseExpression());
      call.args.push_back(std::move(value));
    }
    requireComma = true;
  }
  KILN_TRY(expectOp(")"));
  return Status::ok();
}

StatusOr<ExprPtr> Parser::parseFilter(ExprPtr node, bool startInline) {
  while (isOp("|") || startInline) {
    if (!startInline)
      next();
    startInline = false;
    if (cur().type != TokenType::Name)
      return fail("expected a filter name, got " + describe(cur()));
    ExprPtr f = makeExpr(ExprKind::Filter, cur().line);
    f->name = cur().text;
    next();
    while (skipOp(".")) {
      if (cur().type != TokenType::Name)
        return fail("expected a filter name, got " + describe(cur()));
      f->name += "." + cur().text;
      next();
    }
    if (!isKnownFilter(f->name))
      return fail("no filter named '" + f->name + "' (or it is not supported)", f->line);
    if (isOp("("))
      KILN_TRY(parseCallArgs(*f));
    f->operands.push_back(std::move(node));
    node = std::move(f);
  }
  return node;
}

StatusOr<ExprPtr> Parser::parseTest(ExprPtr node) {
  int line = cur().line;
  next(); // 'is'
  bool negated = skipName("not");
  if (cur().type != TokenType::Name)
    return fail("expected a test name, got " + describe(cur()));
  ExprPtr test = makeExpr(ExprKind::Test, line, std::move(node));
  test->name = cur().text;
  next();
  while (skipOp(".")) {
    if (cur().type != TokenType::Name)
      return fail("expected a test name, got " + describe(cur()));
    test->name += "." + cur().text;
    next();
  }
  if (!isKnownTest(test->name))
    return fail("no test named '" + test->name + "' (or it is not supported)", line);
  if (isOp("(")) {
    KILN_TRY(parseCallArgs(*test));
  } else if ((cur().type == TokenType::Name || cur().type == TokenType::String ||
              cur().type == TokenType::Integer || cur().type == TokenType::Float || isOp("(") ||
              isOp("[") || isOp("{")) &&
             !isName("else") && !isName("or") && !isName("and")) {
    if (isName("is"))
      return fail("you cannot chain multiple tests with is");
    ExprPtr arg;
    KILN_ASSIGN(arg, parsePrimary());
    KILN_ASSIGN(arg, parsePostfix(std::move(arg)));
    test->args.push_back(std::move(arg));
  }
  if (negated)
    return makeExpr(ExprKind::Not, line, std::move(test));
  return test;
}

} // namespace

StatusOr<std::unique_ptr<Program>> parseTemplate(std::string_view source, const std::string &name) {
  auto tokens = tokenize(source, name);
  if (!tokens.ok())
    return tokens.status();
  Parser parser(*tokens, name);
  auto body = parser.parseAll();
  if (!body.ok())
    return body.status();
  auto program = std::make_unique<Program>();
  program->name = name;
  program->body = std::move(*body);
  return program;
}

} // namespace kiln::jinja
