//===- SyntheticWeights.cpp -----------------------------------------------===//
#include "kiln/artifact/SyntheticWeights.h"
#include "kiln/artifact/ArtifactWriter.h"

#include "kiln/artifact/DType.h"
#include "kiln/support/Half.h"
#include "kiln/support/Quantize.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <sys/mman.h>
#include <thread>
#include <vector>

namespace kiln::artifact {

float syntheticCenter(const std::string &name, size_t rank, const std::string &modelType) {
  bool scale = rank == 1 && name.find("norm") != std::string::npos && name.find("bias") == std::string::npos &&
               modelType.rfind("gemma", 0) != 0;
  return scale ? 1.0f : 0.0f;
}

namespace {

uint64_t initialState(uint64_t seed, const std::string &name) {
  uint64_t h = 0xcbf29ce484222325ull; // FNV-1a of the name
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  uint64_t state = 0x9E3779B97F4A7C15ull * (seed + 1) ^ h;
  return state ? state : 1; // xorshift's state must not be 0
}

/// xorshift64's step (s ^= s >> 12; s ^= s << 25; s ^= s >> 27) is linear over GF(2): column j of its
/// matrix is the step applied to bit j. Jumping n steps applies the n-th power (by squaring).
uint64_t xorshiftStep(uint64_t s) {
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return s;
}

using BitMatrix = std::array<uint64_t, 64>; // column j = the image of bit j

uint64_t applyMatrix(const BitMatrix &m, uint64_t v) {
  uint64_t r = 0;
  for (int j = 0; v; ++j, v >>= 1)
    if (v & 1)
      r ^= m[size_t(j)];
  return r;
}

uint64_t jumpAhead(uint64_t state, uint64_t steps) {
  BitMatrix power; // the step's matrix, squared as the bits of `steps` go by
  for (int j = 0; j < 64; ++j)
    power[size_t(j)] = xorshiftStep(1ull << j);
  for (; steps; steps >>= 1) {
    if (steps & 1)
      state = applyMatrix(power, state);
    BitMatrix sq;
    for (int j = 0; j < 64; ++j)
      sq[size_t(j)] = applyMatrix(power, power[size_t(j)]);
    power = sq;
  }
  return state;
}

template <class Store>
void generate(uint64_t seed, const std::string &name, float center, uint64_t count, uint64_t first, Store store) {
  uint64_t state = jumpAhead(initialState(seed, name), first);
  for (uint64_t i = 0; i < count; ++i) {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    uint64_t bits = state * 0x2545F4914F6CDD1Dull;
    float unit = static_cast<float>(bits >> 40) * (1.0f / 16777216.0f); // [0, 1)
    store(i, center + (unit * 2.0f - 1.0f) * 0.0346410f);               // std 0.02
  }
}

} // namespace

bool fillSyntheticWeight(uint64_t seed, const std::string &name, float center, DType dtype, uint64_t count,
                         void *out, uint64_t first) {
  switch (dtype) {
  case F32: {
    float *o = static_cast<float *>(out);
    generate(seed, name, center, count, first, [o](uint64_t i, float v) { o[i] = v; });
    return true;
  }
  case F16: {
    uint16_t *o = static_cast<uint16_t *>(out);
    generate(seed, name, center, count, first, [o](uint64_t i, float v) { o[i] = floatToHalf(v); });
    return true;
  }
  case BF16: {
    uint16_t *o = static_cast<uint16_t *>(out);
    generate(seed, name, center, count, first, [o](uint64_t i, float v) { o[i] = floatToBf16(v); });
    return true;
  }
  default: return false;
  }
}

namespace {
/// A synthetic Q8_0 / Q4_0 matrix: the tensor's f32 stream, quantized (support/Quantize.h); a row chunk
/// quantizes its rows' slice of the stream (blocks run along a row: the whole matrix's blocks of those rows).
bool fillSyntheticQuantized(uint64_t seed, const Buffer &b, uint8_t *out) {
  if (b.shape_size() != 2)
    return false;
  const uint64_t rows = uint64_t(b.shape(0).constant()), cols = uint64_t(b.shape(1).constant());
  const QuantFormat format = b.dtype() == Q8_0 ? QuantFormat::Q8_0 : QuantFormat::Q4_0;
  if (quantizedMatrixBytes(format, rows, cols) != b.max_bytes())
    return false;
  std::vector<float> values(rows * cols);
  const uint64_t first = b.weight_row_end() > 0 ? uint64_t(b.weight_row_begin()) * cols : 0;
  if (!fillSyntheticWeight(seed, b.name(), b.synthetic_center(), F32, rows * cols, values.data(), first))
    return false;
  quantizeMatrix(format, values.data(), rows, cols, out);
  return true;
}
} // namespace

void WeightsRegion::seal() { mprotect(base_, size_ ? size_ : 1, PROT_READ); }

WeightsRegion::~WeightsRegion() {
  if (base_)
    munmap(base_, size_ ? size_ : 1);
}

StatusOr<std::unique_ptr<WeightsRegion>> allocateWeightsRegion(uint64_t size, bool hugePages, const std::string &file) {
  void *base = mmap(nullptr, size ? size : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED)
    return Status::error(file + ": cannot allocate " + std::to_string(size) + " bytes for the weights: " +
                         std::strerror(errno));
  if (hugePages && size)
    madvise(base, size, MADV_HUGEPAGE); // advice: without THP in the kernel the pages stay 4 KiB
  return std::make_unique<WeightsRegion>(base, size);
}

StatusOr<std::unique_ptr<WeightsRegion>> materializeSyntheticWeights(const Manifest &m, const uint8_t *stored,
                                                                      uint64_t storedSize, const std::string &file,
                                                                      bool hugePages) {
  const uint64_t size = weightsSectionSize(m);
  StatusOr<std::unique_ptr<WeightsRegion>> allocated = allocateWeightsRegion(size, hugePages, file);
  if (!allocated.ok())
    return allocated.status();
  std::unique_ptr<WeightsRegion> region = std::move(*allocated);
  uint8_t *out = region->data();
  // One buffer per offset (a device copy shares its original's bytes): the lowest id.
  std::map<uint64_t, const Buffer *> byOffset;
  for (const Buffer &b : m.buffers())
    if (b.kind() == Buffer::WEIGHT && b.max_bytes() != 0)
      byOffset.emplace(b.offset(), &b);
  std::vector<const Buffer *> synthetic;
  for (const auto &[offset, b] : byOffset) {
    if (b->synthetic()) {
      synthetic.push_back(b);
      continue;
    }
    if (b->stored_offset() > storedSize || b->max_bytes() > storedSize - b->stored_offset())
      return Status::error(file + ": corrupted: constant '" + b->name() + "' lies outside the weights section");
    std::memcpy(out + offset, stored + b->stored_offset(), b->max_bytes());
  }
  // Largest first over a few threads: each buffer has its own stream, so the order does not matter.
  std::sort(synthetic.begin(), synthetic.end(),
            [](const Buffer *a, const Buffer *b) { return a->max_bytes() > b->max_bytes(); });
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < synthetic.size();) {
      const Buffer *b = synthetic[i];
      if (isQuantized(b->dtype())) { // the f32 stream quantized, as kiln compile --weights q8_0|q4_0 of it
        if (!fillSyntheticQuantized(m.synthetic_weights_seed(), *b, out + b->offset()))
          failed = true;
        continue;
      }
      uint64_t elem = b->dtype() == F32 ? 4 : 2;
      // A row chunk of a split weight: rows [weight_row_begin, end) of the tensor's stream.
      uint64_t count = b->max_bytes() / elem, first = 0;
      if (b->weight_row_end() > 0 && b->shape_size() > 0 && b->shape(0).constant() > 0)
        first = uint64_t(b->weight_row_begin()) * (count / uint64_t(b->shape(0).constant()));
      if (!fillSyntheticWeight(m.synthetic_weights_seed(), b->name(), b->synthetic_center(), b->dtype(), count,
                               out + b->offset(), first))
        failed = true;
    }
  };
  unsigned threads = std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
  threads = unsigned(std::min<size_t>(threads, std::max<size_t>(1, synthetic.size())));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t)
    pool.emplace_back(work);
  work();
  for (std::thread &t : pool)
    t.join();
  if (failed)
    return Status::error(file + ": a synthetic weight is not f32, f16, bf16 or a q8_0 / q4_0 matrix");
  region->seal();
  return region;
}

} // namespace kiln::artifact
