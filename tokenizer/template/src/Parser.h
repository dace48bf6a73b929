// Tokens -> Program, following jinja2's grammar (operator precedence, filters and tests binding tighter than
// arithmetic, `is not`, `not in`, slices, tuples, adjacent string literals). Unknown tags, filters and tests
// are errors naming the line, as jinja2 reports them when it compiles a template.
#pragma once

#include "Ast.h"
#include "Lexer.h"

namespace kiln::jinja {

StatusOr<std::unique_ptr<Program>> parseTemplate(std::string_view source, const std::string &name);

// Whether the engine implements a filter / test of this name (Builtins.cpp).
bool isKnownFilter(const std::string &name);
bool isKnownTest(const std::string &name);

} // namespace kiln::jinja
