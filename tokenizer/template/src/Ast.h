// The parsed template: expressions and statements of the jinja2 subset that chat templates use.
#pragma once

#include "Value.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kiln::jinja {

enum class ExprKind {
  Const,    // constant
  Name,     // name
  List,     // operands: items
  Tuple,    // operands: items
  Dict,     // operands: key0, value0, key1, value1, ...
  Getattr,  // operands[0].name
  Getitem,  // operands[0][operands[1]]
  Slice,    // operands: start, stop, step (null where omitted)
  Call,     // operands[0](args, kwargs)
  Filter,   // operands[0] | name(args, kwargs); operands[0] is null in {% filter %} / {% set %} blocks
  Test,     // operands[0] is name(args, kwargs)
  Neg,      // -operands[0]
  Pos,      // +operands[0]
  Not,      // not operands[0]
  Binary,   // operands[0] name operands[1] for + - * / // % **
  And,      // operands[0] and operands[1]
  Or,       // operands[0] or operands[1]
  Compare,  // operands[0] ops[0] operands[1] ops[1] operands[2] ...
  CondExpr, // operands[0] if operands[1] else operands[2] (null: undefined)
  Concat,   // operands joined with ~
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind;
  int line = 0;
  std::string name;
  Value constant;
  std::vector<ExprPtr> operands;
  std::vector<std::string> ops;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

// What {% set %} / {% for %} assign to: a name, a tuple of targets, or a namespace attribute (ns.attr).
struct Target {
  enum class Kind { Name, Tuple, NamespaceAttr } kind = Kind::Name;
  std::string name;
  std::string attr;
  std::vector<Target> items;
};

enum class StmtKind {
  Data,        // text
  Output,      // {{ exprs[0] }}
  If,          // exprs[i] guards bodies[i]; bodies may have one more (the else branch)
  For,         // for target in exprs[0] [if exprs[1]]: bodies[0], else bodies[1]
  Set,         // {% set target = exprs[0] %}
  SetBlock,    // {% set target | filter %}bodies[0]{% endset %}
  Macro,       // {% macro text(params = defaults) %}bodies[0]{% endmacro %}
  FilterBlock, // {% filter filter %}bodies[0]{% endfilter %}
  With,        // {% with targets = exprs %}bodies[0]{% endwith %}
  Scope,       // bodies[0] in its own scope (transformers' {% generation %} block)
  Break,
  Continue,
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;
  std::vector<ExprPtr> exprs;
  std::vector<Body> bodies;
  Target target;
  std::vector<Target> targets;
  ExprPtr filter; // a Filter chain whose innermost operand is null
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults; // for the last defaults.size() params
  // A macro whose body names `varargs` / `kwargs` takes extra positional / keyword arguments (jinja2).
  bool catchVarargs = false;
  bool catchKwargs = false;
};

struct Program {
  std::string name;
  Body body;
};

} // namespace kiln::jinja
