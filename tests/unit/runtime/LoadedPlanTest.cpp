// The decoded plan (runtime/src/LoadedPlan.h) of the toy artifacts, its rejections (one line naming the
// artifact and the entry), and the plan fuzzer's seed corpus (every seed must stay a valid plan).
#include "LoadedPlan.h"
#include "PlanFuzzInput.h"
#include "ToyArtifact.h"

#include "kiln/artifact/ArtifactReader.h"
#include "kiln/artifact/ArtifactWriter.h"

#include <gtest/gtest.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace {

using namespace kiln::runtime;
using namespace kiln::runtime::test;
namespace art = kiln::artifact;

LoadedPlan decode(const art::Manifest &m) {
  kiln::Status valid = art::validateManifest(m, art::storedWeightsSize(m), "toy.kiln");
  EXPECT_TRUE(valid.isOk()) << valid.message();
  kiln::StatusOr<LoadedPlan> plan = buildLoadedPlan(m, "toy.kiln", "vulkan");
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  return plan.ok() ? std::move(*plan) : LoadedPlan();
}

// `m` passes validateManifest, and buildLoadedPlan rejects it with one line containing `expect`.
void expectRejected(const art::Manifest &m, const std::string &expect) {
  kiln::Status valid = art::validateManifest(m, art::storedWeightsSize(m), "toy.kiln");
  ASSERT_TRUE(valid.isOk()) << valid.message();
  kiln::StatusOr<LoadedPlan> plan = buildLoadedPlan(m, "toy.kiln", "vulkan");
  ASSERT_FALSE(plan.ok()) << "accepted: " << expect;
  const std::string &msg = plan.status().message();
  EXPECT_EQ(msg.rfind("toy.kiln: ", 0), 0u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_NE(msg.find(expect), std::string::npos) << msg;
}

int bufferNamed(const art::Manifest &m, const std::string &name) {
  for (const art::Buffer &b : m.buffers())
    if (b.name() == name)
      return b.id();
  ADD_FAILURE() << "no buffer " << name;
  return 0;
}

} // namespace

TEST(LoadedPlan, ToyCausalLm) {
  LoadedPlan p = decode(toyManifest());
  EXPECT_EQ(p.task, "causal-lm");
  EXPECT_EQ(p.vocabSize, kVocab);
  EXPECT_EQ(p.hiddenSize, kHidden);
  ASSERT_EQ(p.symbols.size(), 3u); // b, p, s: the order kernels receive them in
  EXPECT_EQ(p.symbolIndex[int(SymbolRole::Batch)], 0);
  EXPECT_EQ(p.symbolIndex[int(SymbolRole::Past)], 1);
  EXPECT_EQ(p.symbolIndex[int(SymbolRole::Seq)], 2);
  ASSERT_EQ(p.kv.size(), 1u);
  const PlanKvEntry &kv = p.kv[0];
  EXPECT_FALSE(kv.inPlace);
  EXPECT_EQ(kv.bytes, uint64_t(kMaxBatch * kMaxContext * kHidden * 4));
  const PlanBuffer &present = p.buffers[size_t(kv.present)];
  EXPECT_TRUE(present.kvPresent);
  EXPECT_EQ(present.kvEntry, 0);
  const int64_t sym[3] = {2, 3, 5}; // b, p, s
  EXPECT_EQ(present.bytesAt(sym), uint64_t(2 * 1 * 8 * kHidden * 4));
  std::vector<int64_t> shape;
  present.shapeAt(sym, shape);
  EXPECT_EQ(shape, (std::vector<int64_t>{2, 1, 8, kHidden}));
  // Three CPU dispatches: one executor, one segment.
  EXPECT_EQ(p.executors, (std::vector<std::string>{"cpu"}));
  ASSERT_EQ(p.dispatches.size(), 3u);
  ASSERT_EQ(p.segments.size(), 1u);
  EXPECT_EQ(p.segments[0].begin, 0);
  EXPECT_EQ(p.segments[0].end, 3);
  EXPECT_FALSE(p.usesDevice);
  const PlanDispatch &concat = p.dispatches[1];
  ASSERT_EQ(concat.numBuffers, 3u);
  EXPECT_EQ(p.buffersOf(concat)[2], kv.present);
  EXPECT_EQ(p.inputNames, (std::vector<std::string>{"input_ids"}));
  EXPECT_EQ(p.outputNames, (std::vector<std::string>{"logits"}));
  EXPECT_EQ(p.attentionMask, -1);
}

TEST(LoadedPlan, ToyEncoder) {
  ToyOptions o;
  o.encoder = true;
  LoadedPlan p = decode(toyManifest(o));
  EXPECT_FALSE(p.causal());
  EXPECT_GE(p.attentionMask, 0);
  EXPECT_EQ(p.symbolIndex[int(SymbolRole::Past)], -1);
  EXPECT_EQ(p.outputNames, (std::vector<std::string>{"last_hidden_state"}));
}

TEST(LoadedPlan, InPlaceKvIsOneStorage) {
  art::Manifest m = toyManifest();
  art::KvCacheEntry *kv = m.mutable_kv_cache(0);
  kv->set_in_place(true);
  kv->set_capacity(m.max_context());
  kv->set_append_buffer(-1);
  for (int id : {kv->past_buffer(), kv->present_buffer()}) {
    m.mutable_buffers(id)->set_row_capacity(m.max_context());
    m.mutable_buffers(id)->set_kv_entry(0);
  }
  LoadedPlan p = decode(m);
  ASSERT_EQ(p.kv.size(), 1u);
  EXPECT_TRUE(p.kv[0].inPlace);
  // [max_batch, h = 1, capacity, d] of f32.
  EXPECT_EQ(p.kv[0].bytes, uint64_t(kMaxBatch * 1 * kMaxContext * kHidden * 4));
  EXPECT_EQ(p.buffers[size_t(p.kv[0].past)].rowCapacity, kMaxContext);
}

TEST(LoadedPlan, Rejections) {
  art::Manifest m = toyManifest();
  art::Symbol *extra = m.add_symbols();
  extra->set_name("t");
  expectRejected(m, "unknown symbol 't' (the runtime knows b, s, p, r)");

  m = toyManifest();
  m.mutable_inputs(0)->set_name("tokens");
  expectRejected(m, "unsupported input 'tokens'");

  m = toyManifest();
  m.set_vocab_size(kVocab + 1);
  expectRejected(m, "output 'logits' ends in 16, not the vocab_size 17");

  m = toyManifest();
  m.set_device_arena_bytes(1 << 20);
  m.mutable_buffers(bufferNamed(m, "model.embed_tokens"))->set_location(art::Buffer::DEVICE);
  expectRejected(m, "dispatch 0 (model.embed_tokens) runs on the CPU but uses the DEVICE buffer 'model.embed_tokens'");

  m = toyManifest();
  m.mutable_dispatches(2)->set_device("vulkan");
  expectRejected(m, "dispatch 2 (lm_head) runs on vulkan but uses the HOST buffer 'present_key.0'");

  // A size that overflows at the symbols' max values (p up to 2^62: past [b, 1, p, 4] of f32).
  m = toyManifest();
  m.mutable_symbols(1)->set_max_value(int64_t(1) << 62);
  expectRejected(m, "buffer 2 ('past_key.0'): its shape overflows at the symbols' max values");
}

// Every seed of the plan fuzzer's corpus opens and decodes (the fuzzer starts from valid plans).
TEST(LoadedPlan, FuzzSeedsAreValidPlans) {
  int seeds = 0;
  for (const auto &entry : std::filesystem::directory_iterator(KILN_PLAN_CORPUS)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::vector<uint8_t> input((std::istreambuf_iterator<char>(in)), {});
    const std::vector<uint8_t> bytes = kiln::fuzz::planFuzzArtifact(input.data(), input.size());
    const bool verify = !kiln::fuzz::planFuzzFileMode(input.data(), input.size());
    auto a = art::openArtifactBuffer(kiln::fuzz::kPlanFuzzName, bytes.data(), bytes.size(), verify);
    ASSERT_TRUE(a.ok()) << entry.path() << ": " << a.status().message();
    auto plan = buildLoadedPlan(a->manifest(), kiln::fuzz::kPlanFuzzName, "vulkan");
    EXPECT_TRUE(plan.ok()) << entry.path() << ": " << plan.status().message();
    ++seeds;
  }
  EXPECT_GE(seeds, 8);
}
