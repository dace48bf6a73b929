//===- ArtifactSource.cpp - the artifact reader, seen by the runtime -------===//
#include "ArtifactSource.h"

#include "kiln/artifact/ArtifactReader.h"
#include "kiln/artifact/SyntheticWeights.h"

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
  // The mapping, and for an artifact compiled with --synthetic-weights the weights region generated now
  // (every WEIGHT buffer at its offset, as if it were the WEIGHTS section; both executors read it there).
  struct Holder {
    kiln::artifact::MappedArtifact mapped;
    std::unique_ptr<kiln::artifact::WeightsRegion> synthetic;
  };
  auto holder = std::make_shared<Holder>(Holder{std::move(*opened), nullptr});
  const kiln::artifact::MappedArtifact &a = holder->mapped;
  out.manifest = &a.manifest();
  out.code = a.cpuCode();
  out.codeSize = a.cpuCodeSize();
  out.weights = a.weightsBase();
  out.weightsSize = a.weightsSize();
  out.text = a.text();
  if (a.manifest().synthetic_weights()) {
    StatusOr<std::unique_ptr<kiln::artifact::WeightsRegion>> region =
        kiln::artifact::materializeSyntheticWeights(a.manifest(), a.weightsBase(), a.weightsSize(), path);
    if (!region.ok()) {
      error = region.status().message();
      return KILN_BAD_ARTIFACT;
    }
    holder->synthetic = std::move(*region);
    out.weights = holder->synthetic->data();
    out.weightsSize = holder->synthetic->size();
  }
  out.holder = std::move(holder);
  return KILN_OK;
}

} // namespace kiln::runtime
