//===- JsonError.h - where a JSON text stops being JSON (frontend-internal) -*- C++ -*-===//
#ifndef KILN_FRONTEND_JSONERROR_H
#define KILN_FRONTEND_JSONERROR_H

#include <string>
#include <string_view>

namespace kiln {

/// "not valid JSON: line L, column C: <what the parser expected>" for a text nlohmann::json rejects
/// (exception-free: a SAX pass that records the parser's error).
std::string jsonSyntaxError(std::string_view text);

} // namespace kiln

#endif // KILN_FRONTEND_JSONERROR_H
