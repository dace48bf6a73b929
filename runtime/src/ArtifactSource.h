//===- ArtifactSource.h - the runtime's view of an opened artifact -*- C++ -*-===//
//
// The one place that knows the artifact reader's API (artifact/include/kiln/artifact/ArtifactReader.h).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_ARTIFACTSOURCE_H
#define KILN_RUNTIME_ARTIFACTSOURCE_H

#include "kiln/kiln.h"
#include "kiln_artifact.pb.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace kiln::runtime {

struct ArtifactSource {
  std::shared_ptr<void> holder; // keeps the mapping alive
  const kiln::artifact::Manifest *manifest = nullptr;
  const uint8_t *code = nullptr;
  size_t codeSize = 0;
  const uint8_t *weights = nullptr;
  size_t weightsSize = 0;
  const kiln::artifact::TextSection *text = nullptr; // the TEXT section, or nullptr (ids only)
};

/// Opens (mmap) and validates `path`. On failure returns the status (IO_ERROR: cannot open / read;
/// BAD_ARTIFACT: anything about its contents) and sets `error` (one line, starting with the path).
kiln_status openArtifactSource(const std::string &path, bool verifyChecksums, ArtifactSource &out,
                               std::string &error);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_ARTIFACTSOURCE_H
