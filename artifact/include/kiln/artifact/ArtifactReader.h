//===- ArtifactReader.h - opening a .kiln file ------------------*- C++ -*-===//
//
// The runtime side of ArtifactFormat.h: the file is mmap'ed read-only, every structural field and
// (optionally) every section checksum is verified, and the manifest is parsed and checked for internal
// consistency, so that an executor can index buffers, kernels and weights without further checks.
// Every failure is a one-line Status starting with the file path; nothing here crashes on bad input.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_ARTIFACT_ARTIFACTREADER_H
#define KILN_ARTIFACT_ARTIFACTREADER_H

#include "kiln/artifact/ArtifactFormat.h"
#include "kiln/support/Status.h"
#include "kiln_artifact.pb.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::artifact {

/// Checks the manifest on its own: buffer ids == index, known kinds and dtypes, dims that name declared
/// symbols, kernel / buffer indices of dispatches in range, WEIGHT buffers 64-byte aligned, constant-shaped,
/// exactly sized and inside a WEIGHTS section of `weightsSize` bytes, ARENA offset + max_bytes <=
/// arena_bytes, ports and KV-cache entries referencing existing buffers of the right kinds.
/// With synthetic_weights, WEIGHT buffers must lie inside the region weightsSectionSize(manifest) and the
/// non-synthetic ones (constants) at stored_offset inside the `weightsSize`-byte WEIGHTS section.
/// `file` prefixes the message ("FILE: manifest: ...").
Status validateManifest(const Manifest &manifest, uint64_t weightsSize, const std::string &file);

/// Bytes per element of a manifest dtype (I1 is one byte); 0 for DTYPE_UNSPECIFIED / unknown.
size_t dtypeBytes(DType dtype);
/// "f32", "i64", ...
const char *dtypeShortName(DType dtype);

/// An open artifact. Move-only; the mapping lives as long as the object.
class MappedArtifact {
public:
  MappedArtifact(MappedArtifact &&other) noexcept;
  MappedArtifact &operator=(MappedArtifact &&other) noexcept;
  MappedArtifact(const MappedArtifact &) = delete;
  MappedArtifact &operator=(const MappedArtifact &) = delete;
  ~MappedArtifact();

  const std::string &path() const { return path_; }
  const Manifest &manifest() const { return *manifest_; }
  /// The CPU shared object (empty when the artifact has none).
  const uint8_t *cpuCode() const { return cpuCode_; }
  uint64_t cpuCodeSize() const { return cpuCodeSize_; }
  /// The WEIGHTS section; a WEIGHT buffer's data is weightsBase() + buffer.offset(). 64-byte aligned.
  const uint8_t *weightsBase() const { return weights_; }
  uint64_t weightsSize() const { return weightsSize_; }
  /// The whole file and its header / section table (for `kiln inspect`).
  const uint8_t *fileData() const { return static_cast<const uint8_t *>(mapping_); }
  uint64_t fileSize() const { return fileSize_; }
  const FileHeader &header() const { return *reinterpret_cast<const FileHeader *>(mapping_); }
  const std::vector<SectionEntry> &sections() const { return sections_; }
  bool checksumsVerified() const { return checksumsVerified_; }

private:
  friend StatusOr<MappedArtifact> openArtifact(const std::string &path, bool verifyChecksums);
  MappedArtifact() = default;
  void release();

  std::string path_;
  void *mapping_ = nullptr;
  uint64_t fileSize_ = 0;
  std::unique_ptr<Manifest> manifest_;
  std::vector<SectionEntry> sections_;
  const uint8_t *cpuCode_ = nullptr;
  uint64_t cpuCodeSize_ = 0;
  const uint8_t *weights_ = nullptr;
  uint64_t weightsSize_ = 0;
  bool checksumsVerified_ = false;
};

/// Opens and validates `path`. Messages: "FILE: not a kiln artifact", "FILE: format version 2, this runtime
/// reads 1", "FILE: truncated: ...", "FILE: corrupted: header checksum mismatch", "FILE: corrupted: weights
/// section checksum mismatch", "FILE: manifest: ...".
StatusOr<MappedArtifact> openArtifact(const std::string &path, bool verifyChecksums = true);

/// The name of a section kind ("manifest", "code", "weights") or "unknown".
const char *sectionName(uint32_t kind);

} // namespace kiln::artifact

#endif // KILN_ARTIFACT_ARTIFACTREADER_H
