//===- ArtifactWriter.h - writing a .kiln file ------------------*- C++ -*-===//
//
// The compiler side of ArtifactFormat.h. Weights are streamed into the file one at a time, straight from
// where they already are (the mmap'ed safetensors), so a model is never held in memory twice.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_ARTIFACT_ARTIFACTWRITER_H
#define KILN_ARTIFACT_ARTIFACTWRITER_H

#include "kiln/support/Status.h"
#include "kiln_artifact.pb.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kiln::artifact {

/// The bytes of one WEIGHT buffer: `size` bytes at `offset` in the WEIGHTS section (64-byte aligned).
/// Either `data` points at them (e.g. into a safetensors mapping; must stay valid during writeArtifact),
/// or `produce` fills a `size`-byte scratch buffer (e.g. a dtype conversion); it is called once, only
/// while this weight is written.
struct WeightBlob {
  uint64_t offset = 0;
  uint64_t size = 0;
  const uint8_t *data = nullptr;
  std::function<Status(uint8_t *out)> produce;
  std::string name; // for messages
};

/// The model facts the runtime reads instead of guessing (Manifest.architecture, task, vocab_size,
/// hidden_size; vocab_size and hidden_size are required from format version 3 on).
struct ModelFacts {
  std::string architecture; // e.g. "LlamaForCausalLM"
  std::string task;         // "causal-lm" or "encoder"
  int64_t vocabSize = 0;    // config.json vocab_size: token ids lie in [0, vocabSize)
  int64_t hiddenSize = 0;   // config.json hidden_size
};

/// Writes `facts` into `manifest` (the compiler's one call for them).
void recordModelFacts(const ModelFacts &facts, Manifest &manifest);

/// The WEIGHTS section size the manifest implies: the end of its last WEIGHT buffer, 64-byte aligned.
/// (With synthetic weights: the size of the region the runtime allocates.)
uint64_t weightsSectionSize(const Manifest &manifest);

/// The WEIGHTS section size as stored: weightsSectionSize without synthetic weights; with them, the end of
/// the last non-synthetic WEIGHT buffer's stored_offset + max_bytes, 64-byte aligned (0 if none). Blobs
/// then go at stored offsets.
uint64_t storedWeightsSize(const Manifest &manifest);

/// Writes `path` (via `path.tmp`, renamed at the end, so a failed write leaves no partial artifact).
/// Validates the manifest first (validateManifest) and the blobs against it: each inside the WEIGHTS
/// section, 64-byte aligned, not overlapping another. Gaps are zero. `text` (optional, validated with
/// validateTextSection) becomes the TEXT section. One-line errors naming the file.
Status writeArtifact(const std::string &path, const Manifest &manifest, const std::vector<uint8_t> &cpuCode,
                     const std::vector<WeightBlob> &weights, const TextSection *text = nullptr);

} // namespace kiln::artifact

#endif // KILN_ARTIFACT_ARTIFACTWRITER_H
