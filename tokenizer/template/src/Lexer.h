// Template text -> tokens, as jinja2's lexer does it with trim_blocks=True and lstrip_blocks=True:
// {{ }} / {% %} / {# #} with - and + whitespace control, {% raw %}, \r\n and \r read as \n, one trailing
// newline dropped, Python string escapes, and }} / %} read as operators inside unbalanced brackets.
#pragma once

#include "kiln/support/Status.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::jinja {

enum class TokenType { Data, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, Eof };

struct Token {
  TokenType type;
  std::string text; // Data / Name / Operator text; a String's decoded value
  int line = 1;
  int64_t integer = 0;
  double number = 0;
};

// `name` starts every error message ("chat_template line 3: ...").
StatusOr<std::vector<Token>> tokenize(std::string_view source, const std::string &name);

} // namespace kiln::jinja
