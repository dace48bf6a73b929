// The runtime on hand-made toy artifacts (ToyArtifact.h): load / run / reset, chunked == one shot,
// concurrent sessions, input checks, corrupted files, the `kiln run` CLI.
#include "ToyArtifact.h"
#include "kiln/kiln.h"
#include "kiln/kiln.hpp"

#include "kiln/artifact/ArtifactReader.h"
#include "kiln/frontend/SafeTensors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sys/wait.h>
#include <thread>

using namespace kiln::runtime::test;

namespace {

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

class RuntimeTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ = makeTempDir("toy");
    ASSERT_FALSE(dir_.empty());
    causal_ = dir_ + "/causal.kiln";
    encoder_ = dir_ + "/encoder.kiln";
    std::string e = writeToyArtifact(causal_);
    ASSERT_EQ(e, "");
    ToyOptions enc;
    enc.encoder = true;
    ASSERT_EQ(writeToyArtifact(encoder_, enc), "");
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!dir_.empty())
      std::filesystem::remove_all(dir_, ec);
  }
  static std::string dir_, causal_, encoder_;

  // Runs `ids` [B, S] through a fresh session in `chunks`, returns the concatenated logits.
  static std::vector<float> runChunks(kiln_model *model, const std::vector<int64_t> &ids, int64_t B, int64_t S,
                                      const std::vector<int64_t> &chunks) {
    kiln_session *s = nullptr;
    EXPECT_EQ(kiln_session_create(model, B, &s), KILN_OK) << kiln_last_error();
    std::vector<float> out(B * S * kVocab);
    int64_t pos = 0;
    for (int64_t c : chunks) {
      std::vector<int64_t> chunk = promptChunk(ids, B, S, pos, c);
      EXPECT_EQ(kiln_session_run(s, chunk.data(), nullptr, B, c), KILN_OK) << kiln_session_error(s);
      const float *data;
      int64_t shape[KILN_MAX_RANK];
      int rank;
      EXPECT_EQ(kiln_session_output(s, "logits", &data, shape, &rank), KILN_OK);
      EXPECT_EQ(rank, 3);
      EXPECT_EQ(shape[0], B);
      EXPECT_EQ(shape[1], c);
      EXPECT_EQ(shape[2], kVocab);
      for (int64_t r = 0; r < B; ++r)
        std::copy_n(data + r * c * kVocab, c * kVocab, out.begin() + (r * S + pos) * kVocab);
      pos += c;
    }
    EXPECT_EQ(kiln_session_past_length(s), S);
    kiln_session_free(s);
    return out;
  }

  static void expectNear(const std::vector<float> &a, const std::vector<float> &b, float tol = 1e-5f) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      ASSERT_NEAR(a[i], b[i], tol) << "at " << i;
  }
};
std::string RuntimeTest::dir_, RuntimeTest::causal_, RuntimeTest::encoder_;

TEST_F(RuntimeTest, LoadAndIntrospect) {
  kiln_model *m = nullptr;
  ASSERT_EQ(kiln_model_load(causal_.c_str(), nullptr, &m), KILN_OK) << kiln_last_error();
  EXPECT_STREQ(kiln_model_task(m), "causal-lm");
  EXPECT_STREQ(kiln_model_architecture(m), "ToyForCausalLM");
  EXPECT_EQ(kiln_model_vocab_size(m), kVocab);
  EXPECT_EQ(kiln_model_hidden_size(m), kHidden);
  EXPECT_EQ(kiln_model_max_context(m), kMaxContext);
  EXPECT_EQ(kiln_model_max_batch(m), kMaxBatch);
  EXPECT_EQ(kiln_model_num_threads(m), 2);
  ASSERT_EQ(kiln_model_num_inputs(m), 1);
  EXPECT_STREQ(kiln_model_input_name(m, 0), "input_ids");
  EXPECT_EQ(kiln_model_input_name(m, 1), nullptr);
  ASSERT_EQ(kiln_model_num_outputs(m), 1);
  EXPECT_STREQ(kiln_model_output_name(m, 0), "logits");
  EXPECT_GT(kiln_model_session_bytes(m), 0u);
  kiln_model_free(m);

  kiln::runtime::Model enc;
  ASSERT_TRUE(enc.load(encoder_)) << kiln_last_error();
  EXPECT_EQ(enc.task(), "encoder");
  EXPECT_EQ(enc.hiddenSize(), kHidden);
  EXPECT_EQ(enc.vocabSize(), kVocab);
  EXPECT_EQ(enc.inputNames(), (std::vector<std::string>{"input_ids", "attention_mask"}));
  EXPECT_EQ(enc.outputNames(), (std::vector<std::string>{"last_hidden_state"}));
}

TEST_F(RuntimeTest, RunMatchesReference) {
  kiln::runtime::Model model;
  ASSERT_TRUE(model.load(causal_));
  for (int64_t B : {1, 3}) {
    const int64_t S = 7;
    std::vector<int64_t> ids = toyPrompt(B, S);
    expectNear(runChunks(model.get(), ids, B, S, {S}), toyCausalReference(ids, B, S));
  }
}

TEST_F(RuntimeTest, ChunkedEqualsOneShot) {
  kiln::runtime::Model model;
  ASSERT_TRUE(model.load(causal_));
  const int64_t B = 2, S = 12;
  std::vector<int64_t> ids = toyPrompt(B, S, 1);
  std::vector<float> whole = runChunks(model.get(), ids, B, S, {S});
  expectNear(whole, toyCausalReference(ids, B, S));
  for (std::vector<int64_t> chunks : {std::vector<int64_t>{2, 5, 1, 1, 1, 1, 1}, std::vector<int64_t>{1, 11},
                                      std::vector<int64_t>(12, 1)}) {
    std::vector<float> chunked = runChunks(model.get(), ids, B, S, chunks);
    ASSERT_EQ(chunked, whole); // the toy's arithmetic is order-identical: bit-exact
  }
}

TEST_F(RuntimeTest, ResetStartsOver) {
  kiln::runtime::Model model;
  ASSERT_TRUE(model.load(causal_));
  kiln::runtime::Session s;
  ASSERT_TRUE(s.create(model, 1));
  std::vector<int64_t> a = toyPrompt(1, 5), b = toyPrompt(1, 4, 7);
  ASSERT_TRUE(s.run(a.data(), nullptr, 1, 5));
  EXPECT_EQ(s.pastLength(), 5);
  ASSERT_TRUE(s.reset());
  EXPECT_EQ(s.pastLength(), 0);
  kiln::runtime::Tensor out;
  EXPECT_FALSE(s.output("logits", out)); // nothing since the reset
  ASSERT_TRUE(s.run(b.data(), nullptr, 1, 4));
  ASSERT_TRUE(s.output("logits", out));
  EXPECT_EQ(out.shape, (std::vector<int64_t>{1, 4, kVocab}));
  expectNear(std::vector<float>(out.data, out.data + out.numElements()), toyCausalReference(b, 1, 4));
  // The failure case of the brief: a 5-token prompt after a 2-token warm-up, keeping the cache.
  ASSERT_TRUE(s.reset());
  std::vector<int64_t> warm = toyPrompt(1, 2, 3), next = toyPrompt(1, 5, 9), all = warm;
  all.insert(all.end(), next.begin(), next.end());
  ASSERT_TRUE(s.run(warm.data(), nullptr, 1, 2));
  ASSERT_TRUE(s.run(next.data(), nullptr, 1, 5));
  ASSERT_TRUE(s.output("logits", out));
  std::vector<float> ref = toyCausalReference(all, 1, 7);
  expectNear(std::vector<float>(out.data, out.data + out.numElements()),
             std::vector<float>(ref.begin() + 2 * kVocab, ref.end()));
}

TEST_F(RuntimeTest, ConcurrentSessionsMatchOne) {
  kiln::runtime::Model model;
  ASSERT_TRUE(model.load(causal_));
  const int64_t B = 2, S = 20;
  std::vector<int64_t> ids1 = toyPrompt(B, S, 2), ids2 = toyPrompt(B, S, 5);
  std::vector<int64_t> chunks = {3, 4, 1, 1, 1, 10};
  std::vector<float> ref1 = runChunks(model.get(), ids1, B, S, chunks);
  std::vector<float> ref2 = runChunks(model.get(), ids2, B, S, chunks);
  for (int round = 0; round < 20; ++round) {
    std::vector<float> out1, out2;
    std::thread t1([&] { out1 = runChunks(model.get(), ids1, B, S, chunks); });
    std::thread t2([&] { out2 = runChunks(model.get(), ids2, B, S, chunks); });
    t1.join();
    t2.join();
    ASSERT_EQ(out1, ref1);
    ASSERT_EQ(out2, ref2);
  }
}

TEST_F(RuntimeTest, ThreadCountDoesNotChangeResults) {
  const int64_t B = 1, S = 9;
  std::vector<int64_t> ids = toyPrompt(B, S);
  std::vector<float> first;
  for (int threads : {1, 2, 3}) {
    kiln::runtime::Model model;
    ASSERT_TRUE(model.load(causal_, threads));
    EXPECT_EQ(model.numThreads(), threads);
    std::vector<float> out = runChunks(model.get(), ids, B, S, {4, 5});
    if (first.empty())
      first = out;
    ASSERT_EQ(out, first);
  }
}

// OpenBLAS's thread count is process-wide: two models loaded with different counts, run in turns and
// concurrently, each see their own in every kernel that calls OpenBLAS (the runtime sets it per call).
TEST_F(RuntimeTest, ModelsKeepTheirOwnBlasThreads) {
  std::string probe = dir_ + "/probe.kiln";
  ToyOptions o;
  o.blasProbe = true;
  ASSERT_EQ(writeToyArtifact(probe, o), "");
  kiln::runtime::Model one, three;
  ASSERT_TRUE(one.load(probe, 1));
  ASSERT_TRUE(three.load(probe, 3));
  std::vector<int64_t> ids = toyPrompt(1, 4);
  auto blasThreads = [&](kiln::runtime::Model &m) { return runChunks(m.get(), ids, 1, 4, {4}).at(0); };
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(blasThreads(one), 1.0f);
    EXPECT_EQ(blasThreads(three), 3.0f);
  }
  float seenOne = 0, seenThree = 0;
  std::thread a([&] {
    for (int i = 0; i < 50 && (seenOne == 0 || seenOne == 1); ++i)
      seenOne = blasThreads(one);
  });
  std::thread b([&] {
    for (int i = 0; i < 50 && (seenThree == 0 || seenThree == 3); ++i)
      seenThree = blasThreads(three);
  });
  a.join();
  b.join();
  EXPECT_EQ(seenOne, 1.0f);
  EXPECT_EQ(seenThree, 3.0f);
}

TEST_F(RuntimeTest, Int32InputIds) {
  std::string path = dir_ + "/i32.kiln";
  ToyOptions o;
  o.idsI32 = true;
  ASSERT_EQ(writeToyArtifact(path, o), "");
  kiln::runtime::Model model;
  ASSERT_TRUE(model.load(path));
  std::vector<int64_t> ids = toyPrompt(2, 6);
  expectNear(runChunks(model.get(), ids, 2, 6, {2, 4}), toyCausalReference(ids, 2, 6));
}

TEST_F(RuntimeTest, Encoder) {
  kiln::runtime::Model model;
  ASSERT_TRUE(model.load(encoder_));
  kiln::runtime::Session s;
  ASSERT_TRUE(s.create(model, 2));
  const int64_t B = 2, S = 5;
  std::vector<int64_t> ids = toyPrompt(B, S), ones(B * S, 1), mask = {1, 1, 1, 0, 0, 1, 1, 1, 1, 1};
  kiln::runtime::Tensor out;
  ASSERT_TRUE(s.run(ids.data(), nullptr, B, S));
  ASSERT_TRUE(s.output("last_hidden_state", out));
  EXPECT_EQ(out.shape, (std::vector<int64_t>{B, S, kHidden}));
  expectNear(std::vector<float>(out.data, out.data + out.numElements()), toyEncoderReference(ids, ones, B, S));
  EXPECT_EQ(s.pastLength(), 0);
  ASSERT_TRUE(s.run(ids.data(), mask.data(), B, S));
  ASSERT_TRUE(s.output("last_hidden_state", out));
  expectNear(std::vector<float>(out.data, out.data + out.numElements()), toyEncoderReference(ids, mask, B, S));
  // Encoders run each call independently: the full context again.
  std::vector<int64_t> longIds(B * kMaxContext, 1);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(s.run(longIds.data(), nullptr, B, kMaxContext));
  std::vector<int64_t> badMask = ones;
  badMask[3] = 2;
  kiln::runtime::Result r = s.run(ids.data(), badMask.data(), B, S);
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("attention_mask[0, 3] = 2"), std::string::npos) << r.message;
}

TEST_F(RuntimeTest, InputErrors) {
  kiln::runtime::Model model;
  ASSERT_TRUE(model.load(causal_));
  kiln::runtime::Session s;
  // Session batch beyond the compiled max.
  kiln::runtime::Result r = s.create(model, kMaxBatch + 1);
  EXPECT_EQ(r.code, KILN_OUT_OF_RANGE);
  EXPECT_NE(r.message.find("max batch"), std::string::npos) << r.message;
  EXPECT_EQ(s.create(model, 0).code, KILN_INVALID_ARGUMENT);
  ASSERT_TRUE(s.create(model, 1));

  std::vector<int64_t> ids = toyPrompt(2, 4);
  r = s.run(ids.data(), nullptr, 2, 4);
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("batch 2"), std::string::npos) << r.message;
  EXPECT_EQ(s.run(nullptr, nullptr, 1, 4).code, KILN_INVALID_ARGUMENT);
  EXPECT_EQ(s.run(ids.data(), nullptr, 1, 0).code, KILN_INVALID_ARGUMENT);
  std::vector<int64_t> bad = {1, 2, kVocab, 3};
  r = s.run(bad.data(), nullptr, 1, 4);
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("input_ids[0, 2] = 16 is outside the vocabulary [0, 16)"), std::string::npos)
      << r.message;
  bad[2] = -1;
  EXPECT_EQ(s.run(bad.data(), nullptr, 1, 4).code, KILN_INVALID_ARGUMENT);
  std::vector<int64_t> mask = {1, 1, 0, 1};
  r = s.run(ids.data(), mask.data(), 1, 4);
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("no attention_mask"), std::string::npos) << r.message;
  std::vector<int64_t> onesMask(4, 1);
  EXPECT_TRUE(s.run(ids.data(), onesMask.data(), 1, 4)); // all ones is fine
  EXPECT_EQ(s.pastLength(), 4);
  EXPECT_STREQ(kiln_session_error(s.get()), "");

  // Context overflow: refused, and the cache stays as it was.
  std::vector<int64_t> many(kMaxContext, 1);
  r = s.run(many.data(), nullptr, 1, kMaxContext - 3);
  EXPECT_EQ(r.code, KILN_OUT_OF_RANGE);
  EXPECT_NE(r.message.find("4 tokens in the KV cache + 29 new exceed the compiled max context of 32"),
            std::string::npos)
      << r.message;
  EXPECT_STREQ(kiln_session_error(s.get()), r.message.c_str());
  EXPECT_EQ(s.pastLength(), 4);
  EXPECT_TRUE(s.run(many.data(), nullptr, 1, kMaxContext - 4)); // exactly full
  EXPECT_EQ(s.pastLength(), kMaxContext);
  EXPECT_EQ(s.run(many.data(), nullptr, 1, 1).code, KILN_OUT_OF_RANGE);
  ASSERT_TRUE(s.reset());
  r = s.run(many.data(), nullptr, 1, kMaxContext);
  EXPECT_TRUE(r) << r.message;
  std::vector<int64_t> tooMany(kMaxContext + 1, 1);
  ASSERT_TRUE(s.reset());
  r = s.run(tooMany.data(), nullptr, 1, kMaxContext + 1);
  EXPECT_EQ(r.code, KILN_OUT_OF_RANGE);
  EXPECT_NE(r.message.find("33 tokens exceed the compiled max context of 32"), std::string::npos) << r.message;

  kiln::runtime::Tensor out;
  ASSERT_TRUE(s.run(ids.data(), nullptr, 1, 4));
  r = s.output("last_hidden_state", out);
  EXPECT_EQ(r.code, KILN_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("outputs: logits"), std::string::npos) << r.message;

  // NULLs through the C API.
  kiln_model *m = nullptr;
  EXPECT_EQ(kiln_model_load(nullptr, nullptr, &m), KILN_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_model_load(causal_.c_str(), nullptr, nullptr), KILN_INVALID_ARGUMENT);
  kiln_session *sess = nullptr;
  EXPECT_EQ(kiln_session_create(nullptr, 1, &sess), KILN_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_session_run(nullptr, ids.data(), nullptr, 1, 4), KILN_INVALID_ARGUMENT);
  EXPECT_NE(std::string(kiln_last_error()).find("session is NULL"), std::string::npos);
  kiln_session_free(nullptr);
  kiln_model_free(nullptr);
}

// ---- bad files ----

kiln_status loadStatus(const std::string &path, std::string &message, int verify = 1) {
  kiln_load_options o;
  kiln_load_options_init(&o);
  o.verify_checksums = verify;
  kiln_model *m = nullptr;
  kiln_status st = kiln_model_load(path.c_str(), &o, &m);
  message = kiln_last_error();
  if (st == KILN_OK) {
    EXPECT_NE(m, nullptr);
  } else {
    EXPECT_EQ(m, nullptr);
  }
  kiln_model_free(m);
  return st;
}

TEST_F(RuntimeTest, MissingFile) {
  std::string msg;
  EXPECT_EQ(loadStatus(dir_ + "/nope.kiln", msg), KILN_IO_ERROR);
  EXPECT_NE(msg.find("nope.kiln: cannot open"), std::string::npos) << msg;
  EXPECT_EQ(loadStatus(dir_, msg), KILN_IO_ERROR); // a directory
}

TEST_F(RuntimeTest, CorruptedSections) {
  std::string good = readFile(causal_);
  kiln::StatusOr<kiln::artifact::MappedArtifact> art = kiln::artifact::openArtifact(causal_, true);
  ASSERT_TRUE(art.ok());
  std::vector<kiln::artifact::SectionEntry> sections = art->sections();
  ASSERT_EQ(sections.size(), 3u);
  std::string path = dir_ + "/corrupt.kiln", msg;
  for (const kiln::artifact::SectionEntry &sec : sections) {
    for (uint64_t where : {uint64_t(0), sec.size / 2, sec.size - 1}) {
      std::string bytes = good;
      bytes[sec.offset + where] ^= 0x5A;
      writeFile(path, bytes);
      EXPECT_EQ(loadStatus(path, msg), KILN_BAD_ARTIFACT)
          << kiln::artifact::sectionName(sec.kind) << " byte " << where;
      EXPECT_NE(msg.find("corrupted"), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
  // Header and section table.
  for (size_t where : {size_t(8), size_t(12), size_t(70), size_t(100)}) {
    std::string bytes = good;
    bytes[where] ^= 0x01;
    writeFile(path, bytes);
    EXPECT_EQ(loadStatus(path, msg), KILN_BAD_ARTIFACT) << "header byte " << where;
  }
  // Unverified, a flipped weight byte loads (the checksums are the only guard of the weights).
  std::string bytes = good;
  bytes[sections[2].offset + 1] ^= 0x5A;
  writeFile(path, bytes);
  EXPECT_EQ(loadStatus(path, msg, /*verify=*/0), KILN_OK) << msg;
}

TEST_F(RuntimeTest, TruncatedAndForeignFiles) {
  std::string good = readFile(causal_), path = dir_ + "/trunc.kiln", msg;
  for (size_t keep : {size_t(0), size_t(10), size_t(64), size_t(100), good.size() / 2, good.size() - 1}) {
    writeFile(path, good.substr(0, keep));
    EXPECT_EQ(loadStatus(path, msg), KILN_BAD_ARTIFACT) << "kept " << keep;
    EXPECT_FALSE(msg.empty());
  }
  writeFile(path, "GGUF this is not a kiln artifact at all, not at all, no, not even close to one......");
  EXPECT_EQ(loadStatus(path, msg), KILN_BAD_ARTIFACT);
  EXPECT_NE(msg.find("not a kiln artifact"), std::string::npos) << msg;
  // Another format version (the next one: this runtime must refuse what it cannot read).
  std::string other = good;
  uint32_t version = kiln::artifact::kFormatVersion + 1;
  std::memcpy(&other[8], &version, 4);
  writeFile(path, other);
  EXPECT_EQ(loadStatus(path, msg), KILN_BAD_ARTIFACT);
  EXPECT_NE(msg.find("format version " + std::to_string(version)), std::string::npos) << msg;
}

TEST_F(RuntimeTest, MissingKernelAndBadCode) {
  std::string path = dir_ + "/missing.kiln", msg;
  ToyOptions o;
  o.missingKernel = "kiln_k17";
  ASSERT_EQ(writeToyArtifact(path, o), "");
  EXPECT_EQ(loadStatus(path, msg), KILN_BAD_ARTIFACT);
  EXPECT_NE(msg.find("kernel 'kiln_k17' missing from the code section"), std::string::npos) << msg;
  ToyOptions g;
  g.garbageCode = true;
  ASSERT_EQ(writeToyArtifact(path, g), "");
  EXPECT_EQ(loadStatus(path, msg), KILN_BAD_ARTIFACT);
  EXPECT_NE(msg.find("not a loadable shared object"), std::string::npos) << msg;
}

TEST_F(RuntimeTest, ManyModelsAtOnce) {
  // Each model dlopens its own copy of the code (memfd): load several, free in another order.
  std::vector<kiln_model *> models(4, nullptr);
  for (auto &m : models)
    ASSERT_EQ(kiln_model_load(causal_.c_str(), nullptr, &m), KILN_OK) << kiln_last_error();
  std::vector<int64_t> ids = toyPrompt(1, 3);
  for (size_t i : {2, 0, 3, 1}) {
    expectNear(runChunks(models[i], ids, 1, 3, {3}), toyCausalReference(ids, 1, 3));
    kiln_model_free(models[i]);
  }
}

TEST_F(RuntimeTest, DifferentCodeSectionsStayApart) {
  // glibc's dlopen matches loaded objects by path first: a reused /proc/self/fd/N must not hand one model
  // another's code. Same kernel names, different code.
  std::string scaled = dir_ + "/scaled.kiln";
  ToyOptions o;
  o.logitsScale = 3;
  ASSERT_EQ(writeToyArtifact(scaled, o), "");
  std::vector<int64_t> ids = toyPrompt(1, 4);
  std::vector<float> ref = toyCausalReference(ids, 1, 4), ref3 = ref;
  for (float &x : ref3)
    x *= 3;
  for (int round = 0; round < 3; ++round) {
    kiln::runtime::Model a, b;
    ASSERT_TRUE(a.load(causal_));
    ASSERT_TRUE(b.load(scaled));
    expectNear(runChunks(a.get(), ids, 1, 4, {4}), ref);
    expectNear(runChunks(b.get(), ids, 1, 4, {4}), ref3);
    a = kiln::runtime::Model(); // free a, load another into its place
    kiln::runtime::Model c;
    ASSERT_TRUE(c.load(scaled));
    expectNear(runChunks(c.get(), ids, 1, 4, {4}), ref3);
    ASSERT_TRUE(a.load(causal_));
    expectNear(runChunks(a.get(), ids, 1, 4, {4}), ref);
  }
}

// ---- the `kiln run` CLI (a toy artifact through the real binary) ----

#ifdef KILN_BINARY
int runKiln(const std::string &args, std::string &output, bool withStderr = true) {
  return runCommand(std::string(KILN_BINARY) + " " + args + (withStderr ? " 2>&1" : " 2>/dev/null"), output);
}

TEST_F(RuntimeTest, KilnRunCli) {
  const int64_t B = 2, S = 8;
  std::vector<int64_t> ids = toyPrompt(B, S, 4);
  std::string in = dir_ + "/in.safetensors", out = dir_ + "/out.safetensors", output;
  {
    kiln::SafeTensorsWriter w;
    w.add("input_ids", kiln::DType::I64, {B, S}, ids.data(), ids.size() * 8);
    ASSERT_TRUE(w.write(in).isOk());
  }
  for (std::string chunks : {"", " --chunks 2,5,1", " --chunks 1,1,1,1,1,1,1,1"}) {
    ASSERT_EQ(runKiln("run " + causal_ + " --inputs " + in + " --outputs " + out + chunks + " --threads 1", output), 0)
        << output;
    auto file = kiln::SafeTensorsFile::open(out);
    ASSERT_TRUE(file.ok());
    const kiln::TensorInfo *t = (*file)->find("logits");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, kiln::DType::F32);
    EXPECT_EQ(t->shape, (std::vector<int64_t>{B, S, kVocab}));
    std::vector<float> got(t->numElements());
    std::memcpy(got.data(), t->data, t->nbytes);
    expectNear(got, toyCausalReference(ids, B, S));
  }
  // Bad inputs: exit 1 with a one-line message.
  EXPECT_EQ(runKiln("run " + causal_ + " --inputs " + in + " --outputs " + out + " --chunks 2,5", output), 1);
  EXPECT_NE(output.find("--chunks sum to 7 but input_ids has 8 tokens"), std::string::npos) << output;
  std::string badIn = dir_ + "/bad.safetensors";
  {
    std::vector<float> f(B * S, 1.0f);
    kiln::SafeTensorsWriter w;
    w.add("input_ids", kiln::DType::F32, {B, S}, f.data(), f.size() * 4);
    ASSERT_TRUE(w.write(badIn).isOk());
  }
  EXPECT_EQ(runKiln("run " + causal_ + " --inputs " + badIn + " --outputs " + out, output), 1);
  EXPECT_NE(output.find("input_ids"), std::string::npos) << output;
  {
    std::vector<int64_t> flat(S, 1);
    kiln::SafeTensorsWriter w;
    w.add("input_ids", kiln::DType::I64, {S}, flat.data(), flat.size() * 8);
    ASSERT_TRUE(w.write(badIn).isOk());
  }
  EXPECT_EQ(runKiln("run " + causal_ + " --inputs " + badIn + " --outputs " + out, output), 1);
  EXPECT_NE(output.find("[batch, seq]"), std::string::npos) << output;
  {
    std::vector<int64_t> longIds(kMaxContext + 2, 1);
    kiln::SafeTensorsWriter w;
    w.add("input_ids", kiln::DType::I64, {1, kMaxContext + 2}, longIds.data(), longIds.size() * 8);
    ASSERT_TRUE(w.write(badIn).isOk());
  }
  EXPECT_EQ(runKiln("run " + causal_ + " --inputs " + badIn + " --outputs " + out, output), 1);
  EXPECT_NE(output.find("exceed the compiled max context of 32"), std::string::npos) << output;
  EXPECT_EQ(runKiln("run " + dir_ + "/nope.kiln --inputs " + in + " --outputs " + out, output), 1);
  EXPECT_EQ(runKiln("run " + causal_ + " --inputs " + in, output), 2);
  EXPECT_EQ(runKiln("run " + causal_ + " --inputs " + in + " --outputs " + out + " --bogus", output), 2);

  // Encoder: last_hidden_state, attention_mask honoured; --chunks refused.
  std::vector<int64_t> mask(B * S, 1);
  mask[S - 1] = 0;
  {
    kiln::SafeTensorsWriter w;
    w.add("input_ids", kiln::DType::I64, {B, S}, ids.data(), ids.size() * 8);
    w.add("attention_mask", kiln::DType::I64, {B, S}, mask.data(), mask.size() * 8);
    ASSERT_TRUE(w.write(in).isOk());
  }
  ASSERT_EQ(runKiln("run " + encoder_ + " --inputs " + in + " --outputs " + out, output), 0) << output;
  auto file = kiln::SafeTensorsFile::open(out);
  ASSERT_TRUE(file.ok());
  const kiln::TensorInfo *t = (*file)->find("last_hidden_state");
  ASSERT_NE(t, nullptr);
  std::vector<float> got(t->numElements());
  std::memcpy(got.data(), t->data, t->nbytes);
  expectNear(got, toyEncoderReference(ids, mask, B, S));
  EXPECT_EQ(runKiln("run " + encoder_ + " --inputs " + in + " --outputs " + out + " --chunks 4,4", output), 2);

  // generate: greedy, deterministic, stops at the context.
  ASSERT_EQ(runKiln("generate " + causal_ + " --ids 1,2,3 -n 5", output, false), 0) << output;
  std::string first = output;
  EXPECT_EQ(std::count(first.begin(), first.end(), ' '), 4) << first; // five ids
  ASSERT_EQ(runKiln("generate " + causal_ + " --ids 1,2,3 -n 5 --threads 1", output, false), 0) << output;
  EXPECT_EQ(output, first);
  ASSERT_EQ(runKiln("generate " + causal_ + " --ids 0,1 -n 100", output, false), 0) << output;
  EXPECT_EQ(std::count(output.begin(), output.end(), ' '), kMaxContext - 2) << output; // stops at the context
  EXPECT_EQ(runKiln("generate " + causal_ + " --ids 1,2,99 -n 5", output), 1) << output;
  ASSERT_EQ(runKiln("generate " + causal_ + " --ids 1,2,3 -n 4 --temperature 0.8 --top-k 5 --top-p 0.9 --seed 7",
                    output), 0) << output;
  // bench runs on the toy.
  ASSERT_EQ(runKiln("bench " + causal_ + " -p 8 -n 4 -r 2", output), 0) << output;
  EXPECT_NE(output.find("pp8"), std::string::npos) << output;
  EXPECT_NE(output.find("tg4"), std::string::npos) << output;
  ASSERT_EQ(runKiln("bench " + encoder_ + " -p 8 -r 2 --batch 2", output), 0) << output;
  EXPECT_EQ(runKiln("bench " + causal_ + " -p 64", output), 1) << output;
}
#endif

} // namespace
