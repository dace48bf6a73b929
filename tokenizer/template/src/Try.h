// Early returns on errors for functions returning Status or StatusOr (the engine has no exceptions).
#pragma once

#include "kiln/support/Status.h"

#include <utility>

// KILN_TRY(status): return it when it is an error. KILN_ASSIGN(lhs, statusOr): return its error, or move its
// value into lhs.
#define KILN_TRY(expr)                                                                                       \
  do {                                                                                                       \
    Status status_ = (expr);                                                                                 \
    if (!status_)                                                                                            \
      return status_;                                                                                        \
  } while (0)
#define KILN_ASSIGN(lhs, expr)                                                                               \
  do {                                                                                                       \
    auto result_ = (expr);                                                                                   \
    if (!result_.ok())                                                                                       \
      return result_.status();                                                                               \
    lhs = std::move(*result_);                                                                               \
  } while (0)
