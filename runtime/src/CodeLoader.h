//===- CodeLoader.h - dlopen a shared object held in memory ----*- C++ -*-===//
#ifndef KILN_RUNTIME_CODELOADER_H
#define KILN_RUNTIME_CODELOADER_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace kiln::runtime {

/// Loads the shared object in `bytes`: written to a memfd and dlopen'ed through /proc/self/fd/N, or (when
/// memfd_create or /proc is unavailable) through a temporary file that is unlinked right after. Returns the
/// dlopen handle, or nullptr with `error` set.
void *loadSharedObject(const uint8_t *bytes, size_t size, std::string &error);

/// dlclose.
void unloadSharedObject(void *handle);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_CODELOADER_H
