//===- ArtifactSource.cpp - the artifact reader, seen by the runtime -------===//
#include "ArtifactSource.h"

#include "ArtifactReader.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::runtime {

kiln_status openArtifactSource(const std::string &path, bool verifyChecksums, ArtifactSource &out,
                               std::string &error) {
  // Tell IO errors (cannot open / read) from bad contents before the reader does.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = path + ": cannot open: " + std::strerror(errno);
    return KILN_IO_ERROR;
  }
  struct stat st;
  int statResult = ::fstat(fd, &st);
  int savedErrno = errno;
  ::close(fd);
  if (statResult != 0) {
    error = path + ": cannot stat: " + std::strerror(savedErrno);
    return KILN_IO_ERROR;
  }
  if (!S_ISREG(st.st_mode)) {
    error = path + ": not a regular file";
    return KILN_IO_ERROR;
  }

  StatusOr<kiln::artifact::MappedArtifact> opened = kiln::artifact::openArtifact(path, verifyChecksums);
  if (!opened.ok()) {
    error = opened.status().message();
    return KILN_BAD_ARTIFACT;
  }
  auto holder = std::make_shared<kiln::artifact::MappedArtifact>(std::move(*opened));
  out.manifest = &holder->manifest();
  out.code = holder->cpuCode();
  out.codeSize = holder->cpuCodeSize();
  out.weights = holder->weightsBase();
  out.weightsSize = holder->weightsSize();
  out.holder = std::move(holder);
  return KILN_OK;
}

} // namespace kiln::runtime
