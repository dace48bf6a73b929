//===- JsonError.h - where a JSON text stops being JSON -*- C++ -*-===//
#ifndef KILN_SUPPORT_JSONERROR_H
#define KILN_SUPPORT_JSONERROR_H

#include <string>
#include <string_view>

namespace kiln::support {

/// "not valid JSON: line L, column C: <what the parser expected>" for a text nlohmann::json rejects
/// (exception-free: a SAX pass that records the parser's error).
std::string jsonSyntaxError(std::string_view text);

} // namespace kiln::support

#endif // KILN_SUPPORT_JSONERROR_H
