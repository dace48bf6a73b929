//===- Error.h - a kiln_status with its one-line message ----------*- C++ -*-===//
#ifndef KILN_RUNTIME_ERROR_H
#define KILN_RUNTIME_ERROR_H

#include "kiln/kiln.h"

#include <string>
#include <utility>

namespace kiln::runtime {

/// The outcome of a runtime call: KILN_OK, or a status code and the one-line message the C API reports.
class [[nodiscard]] Error {
public:
  Error() = default; // KILN_OK
  Error(kiln_status code, std::string message) : code_(code), message_(std::move(message)) {}
  /// True on failure (`if (Error e = f()) return e;`).
  explicit operator bool() const { return code_ != KILN_OK; }
  kiln_status code() const { return code_; }
  const std::string &message() const { return message_; }

private:
  kiln_status code_ = KILN_OK;
  std::string message_;
};

} // namespace kiln::runtime

#endif // KILN_RUNTIME_ERROR_H
