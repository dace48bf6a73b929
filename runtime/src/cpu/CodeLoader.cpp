//===- CodeLoader.cpp -----------------------------------------------------===//
#include "CodeLoader.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace kiln::runtime {

static bool writeAll(int fd, const uint8_t *bytes, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, bytes, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    bytes += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

static int makeMemfd() {
#if defined(SYS_memfd_create)
  // The syscall directly: glibc < 2.27 has no memfd_create wrapper.
  return static_cast<int>(::syscall(SYS_memfd_create, "kiln-code", 1u /* MFD_CLOEXEC */));
#else
  errno = ENOSYS;
  return -1;
#endif
}

void *loadSharedObject(const uint8_t *bytes, size_t size, int &keptFd, std::string &error) {
  keptFd = -1;
  if (!bytes || size == 0) {
    error = "the code section is empty";
    return nullptr;
  }
  std::string memfdError;
  int fd = makeMemfd();
  if (fd >= 0) {
    if (writeAll(fd, bytes, size)) {
      std::string path = "/proc/self/fd/" + std::to_string(fd);
      void *handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle) {
        keptFd = fd;
        return handle;
      }
      ::close(fd);
      const char *e = ::dlerror();
      memfdError = e ? e : "dlopen failed";
      // A code section dlopen rejects from a memfd is rejected from a file too, unless /proc is missing.
      if (::access("/proc/self/fd", F_OK) == 0) {
        error = "the code section is not a loadable shared object: " + memfdError;
        return nullptr;
      }
    } else {
      memfdError = std::strerror(errno);
      ::close(fd);
    }
  }

  // Fallback: a temporary file (mkstemp names are unique while the file exists; dlopen keeps its mapping).
  const char *tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/kiln-code-XXXXXX";
  std::string buffer = templ;
  int tfd = ::mkstemp(buffer.data());
  if (tfd < 0) {
    error = "cannot create a file for the code section (" + templ + "): " + std::strerror(errno);
    return nullptr;
  }
  bool written = writeAll(tfd, bytes, size);
  int savedErrno = errno;
  ::close(tfd);
  if (!written) {
    ::unlink(buffer.c_str());
    error = "cannot write the code section to " + buffer + ": " + std::strerror(savedErrno);
    return nullptr;
  }
  void *handle = ::dlopen(buffer.c_str(), RTLD_NOW | RTLD_LOCAL);
  const char *e = handle ? nullptr : ::dlerror();
  ::unlink(buffer.c_str());
  if (!handle) {
    error = std::string("the code section is not a loadable shared object: ") + (e ? e : "dlopen failed");
    return nullptr;
  }
  return handle;
}

void unloadSharedObject(void *handle, int fd) {
  if (handle)
    ::dlclose(handle);
  if (fd >= 0)
    ::close(fd);
}

} // namespace kiln::runtime
