//===- ArtifactSource.cpp - the artifact reader, seen by the runtime -------===//
#include "ArtifactSource.h"
#include "Environment.h"

#include "kiln/artifact/ArtifactReader.h"
#include "kiln/artifact/SyntheticWeights.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::runtime {
namespace {

/// The CPU reads every weight each decode step: in 2 MiB pages (transparent huge pages, in the kernel's
/// "madvise" or "always" mode) instead of the file mapping's 4 KiB ones, unless KILN_HUGE_PAGES=0 (a file
/// mapping's pages are shared by the processes that map the same artifact; a copy is not).
bool hugePagesWanted() {
  if (envIs("KILN_HUGE_PAGES", "0"))
    return false;
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(f, mode);
  return !mode.empty() && mode.find("[never]") == std::string::npos;
}

/// Every weight is read on the host (a Vulkan artifact's DEVICE weights are uploaded once, then never read
/// here again).
bool hostWeightsOnly(const kiln::artifact::Manifest &m) {
  bool any = false;
  for (const kiln::artifact::Buffer &b : m.buffers())
    if (b.kind() == kiln::artifact::Buffer::WEIGHT && b.max_bytes() != 0) {
      if (b.location() == kiln::artifact::Buffer::DEVICE)
        return false;
      any = true;
    }
  return any;
}

/// The WEIGHTS section copied into huge-page memory, 64 MiB at a time, each piece's file pages given back
/// once copied (so that the weights are not resident twice).
StatusOr<std::unique_ptr<kiln::artifact::WeightsRegion>> copyWeights(const kiln::artifact::MappedArtifact &a) {
  StatusOr<std::unique_ptr<kiln::artifact::WeightsRegion>> region =
      kiln::artifact::allocateWeightsRegion(a.weightsSize(), /*hugePages=*/true, a.path());
  if (!region.ok())
    return region;
  constexpr uint64_t kPiece = 64ull << 20;
  for (uint64_t at = 0; at < a.weightsSize(); at += kPiece) {
    const uint64_t n = std::min(kPiece, a.weightsSize() - at);
    std::memcpy((*region)->data() + at, a.weightsBase() + at, n);
    a.releaseWeightPages(at, at + n);
  }
  (*region)->seal();
  return region;
}

} // namespace

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
  // The mapping, and the weights region when the weights are not read from the mapping: for an artifact
  // compiled with --synthetic-weights, generated now (every WEIGHT buffer at its offset, as if it were the
  // WEIGHTS section; both executors read it there); for one whose weights the CPU reads, a copy in huge pages.
  struct Holder {
    kiln::artifact::MappedArtifact mapped;
    std::unique_ptr<kiln::artifact::WeightsRegion> weights;
  };
  auto holder = std::make_shared<Holder>(Holder{std::move(*opened), nullptr});
  const kiln::artifact::MappedArtifact &a = holder->mapped;
  out.manifest = &a.manifest();
  out.code = a.cpuCode();
  out.codeSize = a.cpuCodeSize();
  out.weights = a.weightsBase();
  out.weightsSize = a.weightsSize();
  out.text = a.text();
  const bool hugePages = hostWeightsOnly(a.manifest()) && hugePagesWanted();
  if (a.manifest().synthetic_weights() || hugePages) {
    StatusOr<std::unique_ptr<kiln::artifact::WeightsRegion>> region =
        a.manifest().synthetic_weights()
            ? kiln::artifact::materializeSyntheticWeights(a.manifest(), a.weightsBase(), a.weightsSize(), path,
                                                          hugePages)
            : copyWeights(a);
    if (!region.ok() && !a.manifest().synthetic_weights()) { // no memory for the copy: the mapping serves
      out.holder = std::move(holder);
      return KILN_OK;
    }
    if (!region.ok()) {
      error = region.status().message();
      return KILN_BAD_ARTIFACT;
    }
    holder->weights = std::move(*region);
    out.weights = holder->weights->data();
    out.weightsSize = holder->weights->size();
    if (envFlag("KILN_VERBOSE") && hugePages)
      std::fprintf(stderr, "kiln: %s: %.1f MiB of weights in transparent huge pages (KILN_HUGE_PAGES=0: %s)\n",
                   path.c_str(), double(out.weightsSize) / (1 << 20),
                   a.manifest().synthetic_weights() ? "4 KiB pages" : "the file mapping");
  }
  out.holder = std::move(holder);
  return KILN_OK;
}

} // namespace kiln::runtime
