//===- Environment.h - the runtime's environment variables, read one way -*- C++ -*-===//
//
// Every KILN_* variable the runtime reads (tools/kiln/Commands.cpp documents them in --help).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_ENVIRONMENT_H
#define KILN_RUNTIME_ENVIRONMENT_H

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace kiln::runtime {

/// A switch: set, non-empty and not "0" (KILN_PROFILE=1, KILN_VERBOSE=1).
inline bool envFlag(const char *name) {
  const char *v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

/// Set to exactly `value` (KILN_HUGE_PAGES=0: an opt-out whose absence means on).
inline bool envIs(const char *name, const char *value) {
  const char *v = std::getenv(name);
  return v && std::strcmp(v, value) == 0;
}

/// A count (KILN_PROFILE_TOP=N), `fallback` when unset; negative values read as 0.
inline int envCount(const char *name, int fallback) {
  const char *v = std::getenv(name);
  return v ? std::max(0, std::atoi(v)) : fallback;
}

} // namespace kiln::runtime

#endif // KILN_RUNTIME_ENVIRONMENT_H
