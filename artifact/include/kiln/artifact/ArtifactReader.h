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
#include "kiln/artifact/DType.h"
#include "kiln/support/Status.h"
#include "kiln_artifact.pb.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::artifact {

/// Checks the manifest on its own: the model facts (task causal-lm or encoder, vocab_size and hidden_size
/// > 0), buffer ids == index, known kinds and dtypes, dims that name declared symbols, kernel / buffer
/// indices of dispatches in range, results never WEIGHT / INPUT buffers, TRANSFERs [source, destination]
/// between HOST and DEVICE keeping dtype and shape, WEIGHT buffers 64-byte aligned, constant-shaped,
/// exactly sized and inside a WEIGHTS section of `weightsSize` bytes, ARENA offset + max_bytes <=
/// arena_bytes (device_arena_bytes for DEVICE ones), INPUT buffers HOST, ports and KV-cache entries
/// referencing existing buffers of the right kinds, every KV_CACHE buffer in exactly one entry, an entry's
/// buffers in one location, Vulkan kernels' grid sizes over declared symbols and shared modules
/// (spirv_from) naming an earlier kernel with its own.
/// With synthetic_weights, WEIGHT buffers must lie inside the region weightsSectionSize(manifest) and the
/// non-synthetic ones (constants) at stored_offset inside the `weightsSize`-byte WEIGHTS section.
/// `file` prefixes the message ("FILE: manifest: ...").
Status validateManifest(const Manifest &manifest, uint64_t weightsSize, const std::string &file);

/// Checks a TEXT section against its manifest: tokenizer.json present and at most 256 MiB in all, EOS ids
/// inside [0, vocab_size), a known pooling mode (only for an encoder), max_seq_length >= 0, prompt names
/// non-empty. `file` prefixes the message ("FILE: text section: ...").
Status validateTextSection(const TextSection &text, const Manifest &manifest, const std::string &file);

/// An open artifact: a file mapping or bytes in memory (openArtifactBuffer). Move-only; the bytes live as long
/// as the object.
class MappedArtifact {
public:
  MappedArtifact(MappedArtifact &&other) noexcept;
  MappedArtifact &operator=(MappedArtifact &&other) noexcept;
  MappedArtifact(const MappedArtifact &) = delete;
  MappedArtifact &operator=(const MappedArtifact &) = delete;
  ~MappedArtifact();

  const std::string &path() const { return path_; }
  const Manifest &manifest() const { return *manifest_; }
  /// The TEXT section (validated), or nullptr when the artifact has none (ids only).
  const TextSection *text() const { return text_.get(); }
  /// The CPU shared object (empty when the artifact has none).
  const uint8_t *cpuCode() const { return cpuCode_; }
  uint64_t cpuCodeSize() const { return cpuCodeSize_; }
  /// The WEIGHTS section; a WEIGHT buffer's data is weightsBase() + buffer.offset(). 64-byte aligned.
  const uint8_t *weightsBase() const { return weights_; }
  uint64_t weightsSize() const { return weightsSize_; }
  /// Gives the pages of weights bytes [begin, end) back to the page cache (the whole pages inside the range;
  /// a file mapping only): after they were copied elsewhere, so that they are not resident twice. Reading them
  /// again still works (it maps them in from the file again).
  void releaseWeightPages(uint64_t begin, uint64_t end) const;
  /// The whole file and its header / section table (for `kiln inspect`).
  const uint8_t *fileData() const { return static_cast<const uint8_t *>(mapping_); }
  uint64_t fileSize() const { return fileSize_; }
  const FileHeader &header() const { return *reinterpret_cast<const FileHeader *>(mapping_); }
  const std::vector<SectionEntry> &sections() const { return sections_; }
  bool checksumsVerified() const { return checksumsVerified_; }

private:
  friend StatusOr<MappedArtifact> openArtifact(const std::string &path, bool verifyChecksums);
  friend StatusOr<MappedArtifact> openArtifactBuffer(const std::string &name, const uint8_t *data, size_t size,
                                                     bool verifyChecksums);
  MappedArtifact() = default;
  void release();
  /// Checks the header, the section table and (optionally) the checksums, parses and validates the manifest.
  Status parse(bool verifyChecksums);

  std::string path_;
  void *mapping_ = nullptr;
  bool heap_ = false; // mapping_ is a heap copy (openArtifactBuffer), not an mmap
  uint64_t fileSize_ = 0;
  std::unique_ptr<Manifest> manifest_;
  std::unique_ptr<TextSection> text_;
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

/// The same checks on `size` bytes in memory (copied, 64-byte aligned), named `name` in messages.
StatusOr<MappedArtifact> openArtifactBuffer(const std::string &name, const uint8_t *data, size_t size,
                                            bool verifyChecksums = true);

/// The name of a section kind ("manifest", "code", "weights", "text") or "unknown".
const char *sectionName(uint32_t kind);

} // namespace kiln::artifact

#endif // KILN_ARTIFACT_ARTIFACTREADER_H
