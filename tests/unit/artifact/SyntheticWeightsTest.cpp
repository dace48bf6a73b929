// --synthetic-weights: the manifest marks WEIGHT buffers synthetic, the WEIGHTS section keeps only the
// constants (at stored_offset), and materializeSyntheticWeights rebuilds the whole region: constants
// copied, synthetic buffers from the one generator kiln synth uses.
#include "kiln/artifact/ArtifactReader.h"
#include "kiln/artifact/ArtifactWriter.h"
#include "kiln/artifact/SyntheticWeights.h"

#include "kiln/support/Half.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <vector>

using namespace kiln;
using namespace kiln::artifact;

namespace {

std::string tempPath(const std::string &name) {
  return "/tmp/kiln_synth_" + std::to_string(getpid()) + "_" + name;
}

Dim constDim(int64_t c) {
  Dim d;
  d.set_constant(c);
  return d;
}

// weight w [4, 8] f32 synthetic at 0, constant c [3] f32 at 128 (stored at 0), norm n [16] bf16 synthetic at
// 192, a device copy of w at 0, one arena result.
Manifest makeManifest() {
  Manifest m;
  recordModelFacts({"TestForCausalLM", "causal-lm", 16, 8}, m);
  m.set_max_context(4);
  m.set_max_batch(1);
  m.set_synthetic_weights(true);
  m.set_synthetic_weights_seed(42);
  auto add = [&](const std::string &name, Buffer::Kind kind, DType dtype, std::vector<int64_t> shape, uint64_t offset,
                 uint64_t bytes) {
    Buffer *b = m.add_buffers();
    b->set_id(m.buffers_size() - 1);
    b->set_name(name);
    b->set_kind(kind);
    b->set_dtype(dtype);
    for (int64_t d : shape)
      *b->add_shape() = constDim(d);
    b->set_offset(offset);
    b->set_max_bytes(bytes);
    return b;
  };
  add("w", Buffer::WEIGHT, F32, {4, 8}, 0, 128)->set_synthetic(true);
  add("constant c", Buffer::WEIGHT, F32, {3}, 128, 12)->set_stored_offset(0);
  Buffer *n = add("model.norm.weight", Buffer::WEIGHT, BF16, {16}, 192, 32);
  n->set_synthetic(true);
  n->set_synthetic_center(syntheticCenter("model.norm.weight", 1, "llama"));
  Buffer *copy = add("w", Buffer::WEIGHT, F32, {4, 8}, 0, 128);
  copy->set_synthetic(true);
  copy->set_location(Buffer::DEVICE);
  add("out", Buffer::ARENA, F32, {4}, 0, 16);
  m.set_arena_bytes(64);
  Kernel *k = m.add_kernels();
  k->set_symbol("k");
  Dispatch *d = m.add_dispatches();
  for (int id : {0, 1, 2, 4})
    d->add_buffers(id);
  Port *p = m.add_outputs();
  p->set_name("out");
  p->set_buffer(4);
  return m;
}

TEST(SyntheticWeights, Center) {
  EXPECT_EQ(syntheticCenter("model.norm.weight", 1, "llama"), 1.0f);
  EXPECT_EQ(syntheticCenter("model.layers.0.input_layernorm.weight", 1, "llama"), 1.0f);
  EXPECT_EQ(syntheticCenter("encoder.LayerNorm.bias", 1, "bert"), 0.0f);
  EXPECT_EQ(syntheticCenter("model.norm.weight", 1, "gemma3_text"), 0.0f);
  EXPECT_EQ(syntheticCenter("model.norm.weight", 2, "llama"), 0.0f);
  EXPECT_EQ(syntheticCenter("model.embed_tokens.weight", 2, "llama"), 0.0f);
}

TEST(SyntheticWeights, DeterministicPerNameAndSeed) {
  std::vector<float> a(1000), b(1000), c(1000), d(1000);
  ASSERT_TRUE(fillSyntheticWeight(1, "x", 0.0f, F32, a.size(), a.data()));
  ASSERT_TRUE(fillSyntheticWeight(1, "x", 0.0f, F32, b.size(), b.data()));
  ASSERT_TRUE(fillSyntheticWeight(2, "x", 0.0f, F32, c.size(), c.data()));
  ASSERT_TRUE(fillSyntheticWeight(1, "y", 0.0f, F32, d.size(), d.data()));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);
  double sum = 0, sq = 0;
  std::vector<float> big(100000);
  ASSERT_TRUE(fillSyntheticWeight(3, "big", 1.0f, F32, big.size(), big.data()));
  for (float v : big) {
    EXPECT_LT(std::fabs(v - 1.0f), 0.0347f);
    sum += v;
    sq += double(v - 1.0f) * (v - 1.0f);
  }
  EXPECT_NEAR(sum / big.size(), 1.0, 1e-3);
  EXPECT_NEAR(std::sqrt(sq / big.size()), 0.02, 1e-3);
  // f16 / bf16 are the f32 values rounded.
  std::vector<uint16_t> h(1000), bf(1000);
  ASSERT_TRUE(fillSyntheticWeight(1, "x", 0.0f, F16, h.size(), h.data()));
  ASSERT_TRUE(fillSyntheticWeight(1, "x", 0.0f, BF16, bf.size(), bf.data()));
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(h[i], floatToHalf(a[i]));
    EXPECT_EQ(bf[i], floatToBf16(a[i]));
  }
  EXPECT_FALSE(fillSyntheticWeight(1, "x", 0.0f, I64, 1, a.data()));
}

const float kConstant[3] = {1.5f, -2.f, 3.25f}; // the bytes of "constant c"

WeightBlob constantBlob() {
  WeightBlob blob;
  blob.offset = 0;
  blob.size = 12;
  blob.data = reinterpret_cast<const uint8_t *>(kConstant);
  blob.name = "constant c";
  return blob;
}

/// Writes `m` (its one stored weight: "constant c") to `path`, opens it and materializes the weights
/// region; `stored` gets the size of the stored weights section. Null (and a test failure) on any error.
std::unique_ptr<WeightsRegion> writeOpenMaterialize(const Manifest &m, const std::string &path, uint64_t *stored) {
  Status w = writeArtifact(path, m, {}, {constantBlob()});
  EXPECT_TRUE(w.isOk()) << w.message();
  StatusOr<MappedArtifact> a = openArtifact(path);
  EXPECT_TRUE(a.ok()) << (a.ok() ? "" : a.status().message());
  if (!w.isOk() || !a.ok())
    return nullptr;
  *stored = a->weightsSize();
  StatusOr<std::unique_ptr<WeightsRegion>> r =
      materializeSyntheticWeights(a->manifest(), a->weightsBase(), a->weightsSize(), path);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.status().message());
  return r.ok() ? std::move(*r) : nullptr;
}

// A row chunk of a split weight (kiln-split-weights) starts `first` elements into the tensor's stream: the
// jump-ahead gives exactly the whole tensor's values there, for any offset (0, odd, across 2^k).
TEST(SyntheticWeights, JumpAheadEqualsTheWholeTensorsSlice) {
  std::vector<float> whole(70000);
  ASSERT_TRUE(fillSyntheticWeight(7, "model.embed_tokens.weight", 0.0f, F32, whole.size(), whole.data()));
  for (uint64_t first : {0ull, 1ull, 63ull, 64ull, 4095ull, 32768ull, 65537ull}) {
    std::vector<float> part(whole.size() - first);
    ASSERT_TRUE(fillSyntheticWeight(7, "model.embed_tokens.weight", 0.0f, F32, part.size(), part.data(), first));
    EXPECT_EQ(std::memcmp(part.data(), whole.data() + first, part.size() * sizeof(float)), 0) << "first " << first;
  }
  std::vector<uint16_t> wholeBf(1000), partBf(600);
  ASSERT_TRUE(fillSyntheticWeight(7, "x", 0.0f, BF16, wholeBf.size(), wholeBf.data()));
  ASSERT_TRUE(fillSyntheticWeight(7, "x", 0.0f, BF16, partBf.size(), partBf.data(), 400));
  EXPECT_TRUE(std::equal(partBf.begin(), partBf.end(), wholeBf.begin() + 400));
}

// materializeSyntheticWeights fills a chunk buffer (weight_row_begin/end) with the tensor's rows.
TEST(SyntheticWeights, MaterializeRowChunks) {
  Manifest m = makeManifest();
  // Rows 1..3 of "w" [4, 8] as a [2, 8] buffer at 256.
  Buffer *b = m.add_buffers();
  b->set_id(m.buffers_size() - 1);
  b->set_name("w");
  b->set_kind(Buffer::WEIGHT);
  b->set_dtype(F32);
  *b->add_shape() = constDim(2);
  *b->add_shape() = constDim(8);
  b->set_offset(256);
  b->set_max_bytes(64);
  b->set_synthetic(true);
  b->set_weight_row_begin(1);
  b->set_weight_row_end(3);
  std::string path = tempPath("chunk.kiln");
  uint64_t stored = 0;
  std::unique_ptr<WeightsRegion> r = writeOpenMaterialize(m, path, &stored);
  ASSERT_TRUE(r);
  std::vector<float> want(32);
  fillSyntheticWeight(42, "w", 0.0f, F32, 32, want.data());
  EXPECT_EQ(std::memcmp(r->data() + 256, want.data() + 8, 64), 0);
  // Rows that the shape does not have: the manifest does not validate (the writer refuses it).
  b->set_weight_row_end(4);
  Status bad = writeArtifact(path, m, {}, {constantBlob()});
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.message().find("rows 1..4 of its tensor"), std::string::npos) << bad.message();
  std::remove(path.c_str());
}

TEST(SyntheticWeights, WriteReadMaterialize) {
  Manifest m = makeManifest();
  EXPECT_EQ(weightsSectionSize(m), 256u);
  EXPECT_EQ(storedWeightsSize(m), 64u);
  const float *c = kConstant;
  std::string path = tempPath("syn.kiln");
  uint64_t stored = 0;
  std::unique_ptr<WeightsRegion> r = writeOpenMaterialize(m, path, &stored);
  ASSERT_TRUE(r);
  EXPECT_EQ(stored, 64u); // only the constant is stored
  const WeightsRegion &region = *r;
  ASSERT_EQ(region.size(), 256u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(region.data()) % 64, 0u);
  std::vector<float> want(32);
  fillSyntheticWeight(42, "w", 0.0f, F32, 32, want.data());
  EXPECT_EQ(std::memcmp(region.data(), want.data(), 128), 0);
  EXPECT_EQ(std::memcmp(region.data() + 128, c, 12), 0);
  std::vector<uint16_t> norm(16);
  fillSyntheticWeight(42, "model.norm.weight", 1.0f, BF16, 16, norm.data());
  EXPECT_EQ(std::memcmp(region.data() + 192, norm.data(), 32), 0);
  std::remove(path.c_str());
}

TEST(SyntheticWeights, EmptyWeightsSection) {
  Manifest m = makeManifest();
  m.mutable_buffers(1)->set_synthetic(true); // no constants at all: nothing stored
  std::string path = tempPath("empty.kiln");
  ASSERT_TRUE(writeArtifact(path, m, {}, {}).isOk());
  StatusOr<MappedArtifact> a = openArtifact(path);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->weightsSize(), 0u);
  StatusOr<std::unique_ptr<WeightsRegion>> r =
      materializeSyntheticWeights(a->manifest(), a->weightsBase(), a->weightsSize(), path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)->size(), 256u);
  std::remove(path.c_str());
}

TEST(SyntheticWeights, ValidationRejects) {
  {
    Manifest m = makeManifest();
    m.set_synthetic_weights(false); // a synthetic buffer without synthetic weights
    EXPECT_FALSE(validateManifest(m, weightsSectionSize(m), "f").isOk());
  }
  {
    Manifest m = makeManifest();
    EXPECT_TRUE(validateManifest(m, 64, "f").isOk());
    EXPECT_FALSE(validateManifest(m, 0, "f").isOk()); // the constant is stored past the section
    m.mutable_buffers(1)->set_stored_offset(8);       // misaligned
    EXPECT_FALSE(validateManifest(m, 64, "f").isOk());
  }
  {
    Manifest m = makeManifest();
    m.mutable_buffers(0)->set_dtype(I32); // a synthetic weight must be a float
    EXPECT_FALSE(validateManifest(m, 64, "f").isOk());
  }
  {
    Manifest m = makeManifest(); // the writer puts blobs at stored offsets
    WeightBlob blob;
    blob.offset = 128; // the region offset, outside the 64-byte stored section
    blob.size = 12;
    static const float c[3] = {};
    blob.data = reinterpret_cast<const uint8_t *>(c);
    std::string path = tempPath("bad.kiln");
    EXPECT_FALSE(writeArtifact(path, m, {}, {blob}).isOk());
  }
}

// The weights region the runtime copies a CPU artifact's weights into (huge pages advised or not): zeroed,
// writable until sealed, its size as asked (4 MiB: two huge pages where the kernel has them).
TEST(SyntheticWeights, WeightsRegionIsZeroedAndSized) {
  for (bool huge : {false, true}) {
    StatusOr<std::unique_ptr<WeightsRegion>> r = allocateWeightsRegion(4u << 20, huge, "f");
    ASSERT_TRUE(r.ok()) << r.status().message();
    WeightsRegion &region = **r;
    ASSERT_EQ(region.size(), 4u << 20);
    EXPECT_TRUE(std::all_of(region.data(), region.data() + region.size(), [](uint8_t b) { return b == 0; }));
    region.data()[12345] = 7;
    region.seal();
    EXPECT_EQ(static_cast<const WeightsRegion &>(region).data()[12345], 7);
  }
}

} // namespace
