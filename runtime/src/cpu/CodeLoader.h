//===- CodeLoader.h - dlopen a shared object held in memory ----*- C++ -*-===//
#ifndef KILN_RUNTIME_CODELOADER_H
#define KILN_RUNTIME_CODELOADER_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace kiln::runtime {

/// Loads the shared object in `bytes`: written to a memfd and dlopen'ed through /proc/self/fd/N, or (when
/// memfd_create or /proc is unavailable) through a temporary file that is unlinked right after. Returns the
/// dlopen handle, or nullptr with `error` set. `fd` receives the memfd (or -1), which must stay open until
/// unloadSharedObject: glibc's dlopen matches already-loaded objects by path name first, so a reused
/// /proc/self/fd/N would return another model's code.
void *loadSharedObject(const uint8_t *bytes, size_t size, int &fd, std::string &error);

/// dlclose, then close the memfd.
void unloadSharedObject(void *handle, int fd);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_CODELOADER_H
