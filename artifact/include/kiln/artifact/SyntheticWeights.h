//===- SyntheticWeights.h - the one random-weight generator -----*- C++ -*-===//
//
// Shared by `kiln synth` (tools/kiln/Synth.cpp, which writes the values into a safetensors file) and the
// runtime (which fills the weights region of an artifact compiled with --synthetic-weights), so both
// produce bit-identical weights. No LLVM or MLIR here: the runtime links it.
//
// Per tensor: xorshift64* seeded from (seed, tensor name); uniform in [-a, a) with a = 0.02 * sqrt(3)
// (std 0.02, transformers' initializer) around `center` (syntheticCenter: 1 for norm scales, else 0);
// converted to f32 / f16 / bf16 (round to nearest even, kiln/support/Half.h).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_ARTIFACT_SYNTHETICWEIGHTS_H
#define KILN_ARTIFACT_SYNTHETICWEIGHTS_H

#include "kiln/support/Status.h"
#include "kiln_artifact.pb.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace kiln::artifact {

/// The value a tensor's synthetic values are centred on: 1 for 1-D tensors whose name contains "norm" and
/// not "bias" (norm scales), except for Gemma (`modelType` starting "gemma", whose norms store scale - 1);
/// 0 otherwise.
float syntheticCenter(const std::string &name, size_t rank, const std::string &modelType);

/// Writes `count` values of `dtype` (F32, F16 or BF16; anything else: false) to `out`: the tensor's values
/// [first, first + count) (a row chunk of a split weight starts `first` elements in; the generator jumps
/// there in O(log first), so a chunk equals the same slice of the whole tensor).
bool fillSyntheticWeight(uint64_t seed, const std::string &name, float center, DType dtype, uint64_t count,
                         void *out, uint64_t first = 0);

/// An anonymous, page-aligned memory region (munmap'ed on destruction).
class WeightsRegion {
public:
  WeightsRegion(void *base, uint64_t size) : base_(base), size_(size) {}
  WeightsRegion(const WeightsRegion &) = delete;
  WeightsRegion &operator=(const WeightsRegion &) = delete;
  ~WeightsRegion();
  const uint8_t *data() const { return static_cast<const uint8_t *>(base_); }
  uint8_t *data() { return static_cast<uint8_t *>(base_); }
  /// Read-only from now on (a stray write faults instead of changing a weight).
  void seal();
  uint64_t size() const { return size_; }

private:
  void *base_;
  uint64_t size_;
};

/// `size` bytes of zeroed anonymous memory for weights. hugePages: advised as transparent huge pages (where the
/// kernel has them in "madvise" or "always" mode, 2 MiB pages: a decode step streams every CPU weight, and
/// 4 KiB pages cost it a TLB miss per 4 KiB; measured 3-6 % of q4_0 decode on a 2-core Xeon, bench/RESULTS.md).
StatusOr<std::unique_ptr<WeightsRegion>> allocateWeightsRegion(uint64_t size, bool hugePages, const std::string &file);

/// For a manifest with synthetic_weights: allocates the weights region (weightsSectionSize(manifest) bytes),
/// copies the stored (non-synthetic) WEIGHT buffers from `stored` (the WEIGHTS section, `storedSize`
/// bytes) to their offsets and generates every synthetic one (once per offset: a device copy shares its
/// original's bytes). The manifest must have passed openArtifact's validation. One-line errors.
/// hugePages as for allocateWeightsRegion.
StatusOr<std::unique_ptr<WeightsRegion>> materializeSyntheticWeights(const Manifest &manifest,
                                                                      const uint8_t *stored, uint64_t storedSize,
                                                                      const std::string &file,
                                                                      bool hugePages = false);

} // namespace kiln::artifact

#endif // KILN_ARTIFACT_SYNTHETICWEIGHTS_H
