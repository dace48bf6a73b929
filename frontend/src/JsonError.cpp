//===- JsonError.cpp ---------------------------------------------------------===//
#include "JsonError.h"

#include <nlohmann/json.hpp>

namespace kiln {
namespace {

using json = nlohmann::json;

/// Accepts every event; keeps the parse error's message (which names the line and column).
class ErrorOnly : public nlohmann::json_sax<json> {
public:
  std::string message;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t &) override { return true; }
  bool string(string_t &) override { return true; }
  bool binary(binary_t &) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t &) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string &, const nlohmann::detail::exception &ex) override {
    message = ex.what();
    return false;
  }
};

} // namespace

std::string jsonSyntaxError(std::string_view text) {
  ErrorOnly sax;
  json::sax_parse(text.begin(), text.end(), &sax);
  std::string what = sax.message;
  // "[json.exception.parse_error.101] parse error at line 3, column 2: syntax error while parsing value - ..."
  const std::string at = "parse error at ";
  if (size_t p = what.find(at); p != std::string::npos)
    what = what.substr(p + at.size());
  for (char &c : what) // the parser quotes the offending text, which may hold control characters
    if (static_cast<unsigned char>(c) < 0x20)
      c = ' ';
  return what.empty() ? "not valid JSON" : "not valid JSON: " + what;
}

} // namespace kiln
