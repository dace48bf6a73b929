// The Vulkan executor on hand-made artifacts, run on whatever Vulkan device the loader finds (lavapipe in
// CI: VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json). The toy causal LM of ToyArtifact.h,
// split across devices, with GLSL kernels compiled here by glslangValidator:
//   T  input_ids (HOST I64)            -> ids_dev            TRANSFER host->device
//   vk_gather   embed_dev, ids_dev     -> x_dev
//   vk_concat   past (device KV), x    -> present (device KV)
//   vk_prefix   present                -> h_dev              h[t] = present[p+t] + mean(present[0..p+t])
//   T  h_dev                           -> h_host             TRANSFER device->host (ends a segment)
//   toy_project h_host, embed_host     -> logits_host        CPU (C kernel, compiled here)
//   T  logits_host                     -> logits_dev         TRANSFER host->device
//   vk_scale    logits_dev             -> out_dev            out = 2 * logits (out_dev aliases dead buffers)
//   T  out_dev                         -> logits (HOST)      TRANSFER device->host   [or: logits = out_dev]
// Expected: 2 * toyCausalReference.
#include "ToyArtifact.h"
#include "kiln/artifact/ArtifactReader.h"
#include "kiln/kiln.h"
#include "kiln/vulkan/Devices.h"
#include "kiln/vulkan/kiln_vulkan.h"
#include "vulkan/VulkanProgram.h" // deviceRequirements (runtime/src)

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#ifndef KILN_TEST_SHADERS
#error "KILN_TEST_SHADERS must name tests/unit/runtime/shaders"
#endif
#ifndef KILN_GLSLANG_VALIDATOR
#error "KILN_GLSLANG_VALIDATOR must name glslangValidator"
#endif

using namespace kiln::runtime::test;
namespace art = kiln::artifact;

namespace {


// After kToyKernelPrelude.
const char *kCpuC = R"C(TOY_RANGE(toy_project)
void toy_project(void *const *buf, const int64_t *sym, int64_t begin, int64_t end) { /* symbols {b, p, s} */
  const float *h = (const float *)buf[0];
  const float *embed = (const float *)buf[1];
  float *logits = (float *)buf[2];
  int64_t n = sym[0] * sym[2];
  for (int64_t t = 0; t < n; ++t)
    for (int v = 0; v < 16; ++v) {
      float d = 0;
      for (int k = 0; k < 4; ++k)
        d += h[t * 4 + k] * embed[v * 4 + k];
      logits[t * 16 + v] = d;
    }
}
)C";

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Compiles tests/unit/runtime/shaders/NAME.comp into DIR/NAME.spv (`flags`: e.g. -DSYMBOLS_IN_UNIFORM).
std::string compileGlsl(const std::string &dir, const std::string &name, std::string &spirv,
                        const std::string &flags = "") {
  std::string src = std::string(KILN_TEST_SHADERS) + "/" + name + ".comp", out = dir + "/" + name + ".spv";
  std::string cmd = std::string(KILN_GLSLANG_VALIDATOR) + " -V --target-env vulkan1.1 " + flags + " -o " + out + " " + src +
                    " > " + dir + "/" + name + ".log 2>&1";
  if (std::system(cmd.c_str()) != 0)
    return "glslangValidator failed: " + readFile(dir + "/" + name + ".log");
  spirv = readFile(out);
  return spirv.empty() ? "empty SPIR-V" : "";
}

/// The artifact's target profile: the conservative built-in one, renamed, changed by `edit`.
template <typename Edit> std::string toyProfileJson(const std::string &name, Edit edit) {
  kiln::target::DeviceProfile p = *kiln::target::builtinDeviceProfile("generic");
  p.name = name;
  edit(p);
  return kiln::target::writeDeviceProfile(p);
}

struct VkToyOptions {
  bool deviceOutput = false;     // logits is out_dev itself (the runtime reads it back)
  std::string profileJson =
      toyProfileJson("toy", [](kiln::target::DeviceProfile &p) { p.maxStorageBufferRange = 65536; });
  bool hostBufferInVulkanDispatch = false; // an invalid plan
  uint32_t sharedMemory = 0;               // vk_prefix claims this much shared memory
  bool symbolsInUniform = false; // the kernels read the symbols from the set-1 uniform (replayed steps)
  bool integerDotProduct = false; // vk_scale takes its factor from a packed integer dot product (DotProduct)
};

std::string writeVulkanToy(const std::string &path, const VkToyOptions &o) {
  std::string dir = makeTempDir("vkcc");
  if (dir.empty())
    return "mkdtemp failed";
  art::Manifest m;
  std::string e;
  std::string spvGather, spvConcat, spvPrefix, spvScale;
  const std::string flags = o.symbolsInUniform ? "-DSYMBOLS_IN_UNIFORM" : "";
  if (!(e = compileGlsl(dir, "gather", spvGather, flags)).empty() ||
      !(e = compileGlsl(dir, "concat", spvConcat, flags)).empty() ||
      !(e = compileGlsl(dir, "prefix", spvPrefix, flags)).empty() ||
      !(e = compileGlsl(dir, "scale", spvScale, flags + (o.integerDotProduct ? " -DINTEGER_DOT_PRODUCT" : ""))).empty())
    return e;
  {
    std::ofstream(dir + "/cpu.c") << kToyKernelPrelude << kCpuC;
    std::string cmd = std::string(KILN_C_COMPILER) + " -O1 -shared -fPIC -o " + dir + "/cpu.so " + dir + "/cpu.c";
    if (std::system(cmd.c_str()) != 0)
      return "compiling the CPU kernel failed";
  }
  std::string so = readFile(dir + "/cpu.so");
  std::vector<uint8_t> code(so.begin(), so.end());
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);

  m.mutable_provenance()->set_compiler_version("vulkan-runtime-tests");
  m.mutable_provenance()->set_target("vulkan");
  art::recordModelFacts({"ToyForCausalLM", "causal-lm", kVocab, kHidden}, m);
  m.set_max_context(kMaxContext);
  m.set_max_batch(kMaxBatch);
  m.set_num_threads_default(1);
  m.set_device_profile_json(o.profileJson);
  for (auto [name, max] : {std::pair<const char *, int64_t>{"b", kMaxBatch}, {"p", kMaxContext}, {"s", kMaxContext}}) {
    auto *s = m.add_symbols();
    s->set_name(name);
    s->set_max_value(max);
  }
  const uint64_t tok = kMaxBatch * kMaxContext;
  auto buf = [&](const std::string &name, art::Buffer::Kind kind, art::DType dt, std::vector<art::Dim> shape,
                 uint64_t offset, uint64_t maxBytes, bool device) {
    auto *b = m.add_buffers();
    b->set_id(m.buffers_size() - 1);
    b->set_name(name);
    b->set_kind(kind);
    b->set_dtype(dt);
    for (auto &d : shape)
      *b->add_shape() = d;
    b->set_offset(offset);
    b->set_max_bytes(maxBytes);
    b->set_location(device ? art::Buffer::DEVICE : art::Buffer::HOST);
    return b->id();
  };
  const auto W = art::Buffer::WEIGHT, A = art::Buffer::ARENA, KV = art::Buffer::KV_CACHE, IN = art::Buffer::INPUT;
  int embedDev = buf("model.embed_tokens.weight", W, art::F32, {dimConst(kVocab), dimConst(kHidden)}, 0, 256, true);
  int embedHost = buf("lm_head.weight", W, art::F32, {dimConst(kVocab), dimConst(kHidden)}, 0, 256, false);
  int ids = buf("input_ids", IN, art::I64, {dimSym("b"), dimSym("s")}, 0, tok * 8, false);
  int idsDev = buf("input_ids.device", A, art::I64, {dimSym("b"), dimSym("s")}, 0, tok * 8, true);
  int xDev = buf("model.embed_tokens", A, art::F32, {dimSym("b"), dimSym("s"), dimConst(kHidden)}, 1024, tok * 16, true);
  int past = buf("past_key.0", KV, art::F32, {dimSym("b"), dimConst(1), dimSym("p"), dimConst(kHidden)}, 0, tok * 16, true);
  int present = buf("present_key.0", KV, art::F32, {dimSym("b"), dimConst(1), dimSym("p", 1, "s"), dimConst(kHidden)}, 0,
                    tok * 16, true);
  int hDev = buf("model.layers.0", A, art::F32, {dimSym("b"), dimSym("s"), dimConst(kHidden)}, 3072, tok * 16, true);
  int hHost = buf("model.layers.0.host", A, art::F32, {dimSym("b"), dimSym("s"), dimConst(kHidden)}, 0, tok * 16,
                  o.hostBufferInVulkanDispatch ? false : false);
  int logitsHost = buf("lm_head", A, art::F32, {dimSym("b"), dimSym("s"), dimConst(kVocab)}, 2048, tok * 64, false);
  int logitsDev = buf("lm_head.device", A, art::F32, {dimSym("b"), dimSym("s"), dimConst(kVocab)}, 5120, tok * 64, true);
  // out_dev reuses [0, 8192): ids / x / h of this step are dead by then (a WAR hazard for the barriers).
  int outDev = buf("scale", A, art::F32, {dimSym("b"), dimSym("s"), dimConst(kVocab)}, 0, tok * 64, true);
  int logits = o.deviceOutput ? outDev
                              : buf("logits", A, art::F32, {dimSym("b"), dimSym("s"), dimConst(kVocab)}, 10240, tok * 64, false);
  m.set_arena_bytes(10240 + tok * 64);
  m.set_device_arena_bytes(5120 + tok * 64);

  auto kernel = [&](const std::string &name, const std::string &spirv, art::Dim global) {
    auto *k = m.add_kernels();
    k->set_symbol(name);
    k->set_op("toy." + name);
    if (!spirv.empty()) {
      k->set_spirv(spirv);
      k->set_symbols_in_uniform(o.symbolsInUniform);
      for (int a = 0; a < 3; ++a)
        k->add_workgroup_size(a == 0 ? 64 : 1);
      *k->add_global_size() = global;
      *k->add_global_size() = dimConst(1);
      *k->add_global_size() = dimConst(1);
    }
    return m.kernels_size() - 1;
  };
  int kProject = kernel("toy_project", "", {});
  int kGather = kernel("vk_gather", spvGather, dimSym("s", 4));
  int kConcat = kernel("vk_concat", spvConcat, dimSym("p", 4, "s"));
  int kPrefix = kernel("vk_prefix", spvPrefix, dimConst(64));
  m.mutable_kernels(kPrefix)->set_shared_memory_bytes(o.sharedMemory);
  int kScale = kernel("vk_scale", spvScale, dimSym("s", 16));
  auto dispatch = [&](int k, std::vector<int> bufs, const char *loc, const char *device, bool transfer = false) {
    auto *d = m.add_dispatches();
    d->set_kernel(k);
    for (int b : bufs)
      d->add_buffers(b);
    d->set_location(loc);
    d->set_device(device);
    d->set_kind(transfer ? art::Dispatch::TRANSFER : art::Dispatch::KERNEL);
  };
  dispatch(0, {ids, idsDev}, "transfer.input_ids", "vulkan", true);
  dispatch(kGather, {embedDev, o.hostBufferInVulkanDispatch ? ids : idsDev, xDev}, "model.embed_tokens", "vulkan");
  dispatch(kConcat, {past, xDev, present}, "model.layers.0.cache", "vulkan");
  dispatch(kPrefix, {present, hDev}, "model.layers.0", "vulkan");
  dispatch(0, {hDev, hHost}, "transfer.h", "vulkan", true);
  dispatch(kProject, {hHost, embedHost, logitsHost}, "lm_head", "cpu");
  dispatch(0, {logitsHost, logitsDev}, "transfer.logits", "vulkan", true);
  dispatch(kScale, {logitsDev, outDev}, "scale", "vulkan");
  if (!o.deviceOutput)
    dispatch(0, {outDev, logits}, "transfer.out", "vulkan", true);
  addPort(m.mutable_inputs(), "input_ids", ids);
  addPort(m.mutable_inputs(), "past_key.0", past);
  addPort(m.mutable_outputs(), "logits", logits);
  addPort(m.mutable_outputs(), "present_key.0", present);
  auto *kv = m.add_kv_cache();
  kv->set_name("key.0");
  kv->set_past_buffer(past);
  kv->set_present_buffer(present);
  kv->set_seq_axis(2);

  std::vector<float> embed = toyEmbedding();
  art::WeightBlob blob;
  blob.offset = 0;
  blob.size = 256;
  blob.data = reinterpret_cast<const uint8_t *>(embed.data());
  blob.name = "embed";
  kiln::Status st = art::writeArtifact(path, m, code, {blob});
  return st.isOk() ? "" : st.message();
}

// The toy artifact `name` with options `o`: written under `dir`, or, when KILN_VULKAN_TEST_ARTIFACTS names a
// folder, taken from there if present (else written there): a machine without glslangValidator or a C
// compiler (the GPU machine) runs artifacts written here.
std::string toyArtifact(const std::string &dir, const std::string &name, const VkToyOptions &o, std::string &path) {
  const char *cache = std::getenv("KILN_VULKAN_TEST_ARTIFACTS");
  path = (cache && *cache ? std::string(cache) : dir) + "/" + name;
  std::error_code ec;
  if (cache && *cache && std::filesystem::exists(path, ec))
    return "";
  if (cache && *cache)
    std::filesystem::create_directories(cache, ec);
  return writeVulkanToy(path, o);
}

bool haveVulkanDevice(std::string &why) {
  std::vector<kiln::vulkan::DeviceInfo> devices;
  return kiln::vulkan::listDevices(devices, why);
}

class VulkanRuntimeTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ = makeTempDir("vk");
    ASSERT_FALSE(dir_.empty());
    ASSERT_EQ(toyArtifact(dir_, "vk.kiln", {}, path_), "");
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void SetUp() override {
    std::string why;
    if (!haveVulkanDevice(why))
      GTEST_SKIP() << why;
  }
  static std::vector<float> expected(const std::vector<int64_t> &ids, int64_t B, int64_t S) {
    std::vector<float> r = toyCausalReference(ids, B, S);
    for (float &x : r)
      x *= 2.0f;
    return r;
  }
  // Runs `ids` [B, S] in `chunks` through `s` (reset first); the concatenated logits.
  static std::vector<float> runChunks(kiln_session *s, const std::vector<int64_t> &ids, int64_t B, int64_t S,
                                      const std::vector<int64_t> &chunks) {
    EXPECT_EQ(kiln_session_reset(s), KILN_OK);
    std::vector<float> out(B * S * kVocab);
    int64_t pos = 0;
    for (int64_t c : chunks) {
      std::vector<int64_t> chunk = promptChunk(ids, B, S, pos, c);
      EXPECT_EQ(kiln_session_run(s, chunk.data(), nullptr, B, c), KILN_OK) << kiln_session_error(s);
      const float *data = nullptr;
      int64_t shape[KILN_MAX_RANK];
      int rank = 0;
      EXPECT_EQ(kiln_session_output(s, "logits", &data, shape, &rank), KILN_OK) << kiln_session_error(s);
      if (!data || rank != 3 || shape[0] != B || shape[1] != c || shape[2] != kVocab) {
        ADD_FAILURE() << "bad output";
        return out;
      }
      for (int64_t r = 0; r < B; ++r)
        for (int64_t t = 0; t < c; ++t)
          std::copy_n(data + (r * c + t) * kVocab, kVocab, out.begin() + (r * S + pos + t) * kVocab);
      pos += c;
    }
    return out;
  }
  static void expectNear(const std::vector<float> &a, const std::vector<float> &b, float tol = 1e-5f) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      ASSERT_NEAR(a[i], b[i], tol * (1 + std::fabs(b[i]))) << "at " << i;
  }
  /// The toy artifact `name` with options `o`, written and loaded into `model`.
  static void loadToy(const std::string &name, const VkToyOptions &o, kiln_model **model) {
    std::string path;
    ASSERT_EQ(toyArtifact(dir_, name, o, path), "");
    ASSERT_EQ(kiln_model_load(path.c_str(), nullptr, model), KILN_OK) << kiln_last_error();
  }
  /// The toy `name` with options `o` computes the reference: toyPrompt(2, 5, 4) run in `chunks`.
  static void expectToyMatchesReference(const std::string &name, const VkToyOptions &o,
                                        const std::vector<int64_t> &chunks) {
    kiln_model *model = nullptr;
    ASSERT_NO_FATAL_FAILURE(loadToy(name, o, &model));
    kiln_session *s = nullptr;
    ASSERT_EQ(kiln_session_create(model, 2, &s), KILN_OK) << kiln_last_error();
    auto ids = toyPrompt(2, 5, 4);
    expectNear(runChunks(s, ids, 2, 5, chunks), expected(ids, 2, 5));
    kiln_session_free(s);
    kiln_model_free(model);
  }
  static std::string dir_, path_;
};
std::string VulkanRuntimeTest::dir_, VulkanRuntimeTest::path_;

TEST_F(VulkanRuntimeTest, OneShotMatchesReference) {
  kiln_model *model = nullptr;
  ASSERT_EQ(kiln_model_load(path_.c_str(), nullptr, &model), KILN_OK) << kiln_last_error();
  EXPECT_STRNE(kiln_model_device(model), "cpu");
  kiln_session *s = nullptr;
  ASSERT_EQ(kiln_session_create(model, 2, &s), KILN_OK) << kiln_last_error();
  auto ids = toyPrompt(2, 7);
  expectNear(runChunks(s, ids, 2, 7, {7}), expected(ids, 2, 7));
  EXPECT_EQ(kiln_session_past_length(s), 7);
  kiln_session_free(s);
  kiln_model_free(model);
}

TEST_F(VulkanRuntimeTest, ChunkedEqualsOneShot) {
  kiln_model *model = nullptr;
  ASSERT_EQ(kiln_model_load(path_.c_str(), nullptr, &model), KILN_OK) << kiln_last_error();
  kiln_session *s = nullptr;
  ASSERT_EQ(kiln_session_create(model, 3, &s), KILN_OK) << kiln_last_error();
  auto ids = toyPrompt(3, 9, 1);
  std::vector<float> oneShot = runChunks(s, ids, 3, 9, {9});
  expectNear(oneShot, expected(ids, 3, 9));
  for (const std::vector<int64_t> &chunks : {std::vector<int64_t>{2, 5, 2}, {1, 1, 1, 1, 1, 1, 1, 1, 1}, {8, 1}})
    expectNear(runChunks(s, ids, 3, 9, chunks), oneShot, 1e-6f);
  // The same shapes again: the recorded command buffers are reused and still right.
  expectNear(runChunks(s, ids, 3, 9, {2, 5, 2}), oneShot, 1e-6f);
  kiln_session_free(s);
  kiln_model_free(model);
}

TEST_F(VulkanRuntimeTest, TwoSessionsInterleavedAndConcurrent) {
  kiln_model *model = nullptr;
  ASSERT_EQ(kiln_model_load(path_.c_str(), nullptr, &model), KILN_OK) << kiln_last_error();
  kiln_session *a = nullptr, *b = nullptr;
  ASSERT_EQ(kiln_session_create(model, 1, &a), KILN_OK);
  ASSERT_EQ(kiln_session_create(model, 2, &b), KILN_OK);
  auto idsA = toyPrompt(1, 6, 2), idsB = toyPrompt(2, 5, 3);
  // Interleaved chunk by chunk: each session's device KV cache is its own.
  int64_t posA = 0, posB = 0;
  std::vector<float> outA(6 * kVocab);
  for (int step = 0; step < 3; ++step) {
    ASSERT_EQ(kiln_session_run(a, idsA.data() + posA, nullptr, 1, 2), KILN_OK) << kiln_session_error(a);
    const float *data;
    int64_t shape[KILN_MAX_RANK];
    int rank;
    ASSERT_EQ(kiln_session_output(a, "logits", &data, shape, &rank), KILN_OK);
    std::copy_n(data, 2 * kVocab, outA.begin() + posA * kVocab);
    posA += 2;
    std::vector<int64_t> chunkB = {idsB[posB], idsB[5 + posB]};
    if (posB < 5) {
      ASSERT_EQ(kiln_session_run(b, chunkB.data(), nullptr, 2, 1), KILN_OK) << kiln_session_error(b);
      ++posB;
    }
  }
  expectNear(outA, expected(idsA, 1, 6));
  // Concurrently from two threads.
  std::vector<float> ra, rb;
  std::thread ta([&] { ra = runChunks(a, idsA, 1, 6, {3, 3}); });
  std::thread tb([&] { rb = runChunks(b, idsB, 2, 5, {1, 4}); });
  ta.join();
  tb.join();
  expectNear(ra, expected(idsA, 1, 6));
  expectNear(rb, expected(idsB, 2, 5));
  EXPECT_GT(kiln_session_gpu_time_ns(a) + kiln_session_gpu_time_ns(b), 0u);
  kiln_session_free(a);
  kiln_session_free(b);
  kiln_model_free(model);
}

TEST_F(VulkanRuntimeTest, DeviceOutputIsReadBack) {
  VkToyOptions o;
  o.deviceOutput = true;
  expectToyMatchesReference("devout.kiln", o, {3, 2});
}

// Kernels that read the symbols from the uniform: each step shape's command buffers are recorded once and
// replayed with new symbols and workgroup counts (vkCmdDispatchIndirect), here across decode steps whose p
// differs every time, chunk schedules that repeat shapes at other p, and two sessions.
TEST_F(VulkanRuntimeTest, ReplayedStepsMatchReference) {
  VkToyOptions o;
  o.symbolsInUniform = true;
  kiln_model *model = nullptr;
  ASSERT_NO_FATAL_FAILURE(loadToy("replay.kiln", o, &model));
  kiln_session *s = nullptr, *t = nullptr;
  ASSERT_EQ(kiln_session_create(model, 2, &s), KILN_OK) << kiln_last_error();
  ASSERT_EQ(kiln_session_create(model, 1, &t), KILN_OK) << kiln_last_error();
  auto ids = toyPrompt(2, 11, 5), idsT = toyPrompt(1, 6, 6);
  const std::vector<float> want = expected(ids, 2, 11);
  for (const std::vector<int64_t> &chunks :
       {std::vector<int64_t>{11}, {3, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {2, 2, 2, 2, 3}}) {
    expectNear(runChunks(s, ids, 2, 11, chunks), want);
    expectNear(runChunks(t, idsT, 1, 6, {1, 2, 1, 2}), expected(idsT, 1, 6));
  }
  kiln_session_free(s);
  kiln_session_free(t);
  kiln_model_free(model);
}

// A kernel declaring the DotProduct capability (codegen/spirv's quantized GEMV with the integer dot product):
// the plan requires shaderIntegerDotProduct (a device without it is refused, naming it), the runtime enables
// it, and the kernel runs (lavapipe has it).
TEST_F(VulkanRuntimeTest, IntegerDotProductKernel) {
  for (bool integerDot : {false, true}) {
    SCOPED_TRACE(integerDot ? "integer dot product" : "float");
    VkToyOptions o;
    o.integerDotProduct = integerDot;
    std::string path;
    const std::string name = integerDot ? "idot.kiln" : "noidot.kiln";
    ASSERT_EQ(toyArtifact(dir_, name, o, path), "");
    kiln::StatusOr<art::MappedArtifact> mapped = art::openArtifact(path);
    ASSERT_TRUE(mapped.ok()) << mapped.status().message();
    kiln::StatusOr<kiln::runtime::LoadedPlan> plan = kiln::runtime::buildLoadedPlan(mapped->manifest(), path, "vulkan");
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    const kiln::target::DeviceProfile need = kiln::vulkan::deviceRequirements(*plan, nullptr);
    EXPECT_EQ(need.integerDotProduct, integerDot);
    kiln::target::DeviceProfile without = *kiln::target::builtinDeviceProfile("lavapipe");
    without.integerDotProduct = false;
    EXPECT_EQ(kiln::target::missingCapabilities(without, need).find("no shaderIntegerDotProduct (integer_dot_product)") !=
                  std::string::npos,
              integerDot);
    expectToyMatchesReference(name, o, {3, 1, 1});
  }
}

TEST_F(VulkanRuntimeTest, UnsatisfiableProfileIsACleanError) {
  std::string path;
  VkToyOptions o;
  // Features come from the profile; limits from what the artifact uses (a kernel claiming 1 GiB of
  // shared memory). The profile's own max_* describe its device and are no requirement.
  o.profileJson = toyProfileJson("impossible", [](kiln::target::DeviceProfile &p) {
    p.cooperativeMatrix = true;
    p.maxSharedMemory = 1073741824;
    p.subgroupOps = {"basic", "clustered", "quad"};
    p.maxStorageBufferRange = 1099511627776;
  });
  o.sharedMemory = 1u << 30;
  ASSERT_EQ(toyArtifact(dir_, "impossible.kiln", o, path), "");
  kiln_model *model = nullptr;
  EXPECT_EQ(kiln_model_load(path.c_str(), nullptr, &model), KILN_IO_ERROR);
  EXPECT_EQ(model, nullptr);
  std::string msg = kiln_last_error();
  EXPECT_NE(msg.find("no Vulkan device satisfies the artifact's profile 'impossible'"), std::string::npos) << msg;
  std::vector<kiln::vulkan::DeviceInfo> devices;
  std::string why;
  ASSERT_TRUE(kiln::vulkan::listDevices(devices, why));
  if (!devices[0].profile.cooperativeMatrix) // lavapipe; the H200 has it
    EXPECT_NE(msg.find("cooperative_matrix"), std::string::npos) << msg;
  EXPECT_NE(msg.find("max_shared_memory"), std::string::npos) << msg;
  EXPECT_NE(msg.find("max_shared_memory " + std::to_string(devices[0].profile.maxSharedMemory) + " < 1073741824"),
            std::string::npos) << msg;
  EXPECT_EQ(msg.find("max_storage_buffer_range"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST_F(VulkanRuntimeTest, ProfileLimitsAreNotRequirements) {
  // A profile from a bigger device (limits above this one's) loads: the artifact uses little.
  std::string path;
  VkToyOptions o;
  o.profileJson = toyProfileJson("big", [](kiln::target::DeviceProfile &p) {
    p.maxSharedMemory = 1073741824;
    p.maxAllocationSize = 1099511627776;
    p.maxWorkgroupSize = {4096, 4096, 4096};
    p.maxStorageBufferRange = 1099511627776;
  });
  ASSERT_EQ(toyArtifact(dir_, "big.kiln", o, path), "");
  kiln_model *model = nullptr;
  ASSERT_EQ(kiln_model_load(path.c_str(), nullptr, &model), KILN_OK) << kiln_last_error();
  kiln_model_free(model);
}

TEST_F(VulkanRuntimeTest, UnreadableProfileIsACleanError) {
  // The runtime reads the artifact's profile with the compiler's reader: an unknown key or op is an error.
  struct Case {
    const char *file, *from, *to, *needle;
  } cases[] = {
      {"profile-key.kiln", "\"float16\"", "\"float17\"", "unknown key 'float17'"},
      {"profile-op.kiln", "\"unavailable_ops\": []", "\"unavailable_ops\": [\"kiln.ropee\"]",
       "key 'unavailable_ops': unknown op 'kiln.ropee'"},
      {"profile-cut.kiln", "\"cooperative_matrix\"", "", "not valid JSON"},
  };
  for (const Case &c : cases) {
    std::string path;
    VkToyOptions o;
    size_t at = o.profileJson.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    o.profileJson = *c.to ? o.profileJson.replace(at, std::strlen(c.from), c.to) : o.profileJson.substr(0, at);
    ASSERT_EQ(toyArtifact(dir_, c.file, o, path), "");
    kiln_model *model = nullptr;
    EXPECT_NE(kiln_model_load(path.c_str(), nullptr, &model), KILN_OK) << c.file;
    EXPECT_EQ(model, nullptr);
    std::string msg = kiln_last_error();
    EXPECT_NE(msg.find("the artifact's device_profile_json: "), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST_F(VulkanRuntimeTest, DeviceSelectionByEnvironment) {
  setenv("KILN_VULKAN_DEVICE", "no-such-device-xyz", 1);
  kiln_model *model = nullptr;
  EXPECT_NE(kiln_model_load(path_.c_str(), nullptr, &model), KILN_OK);
  std::string msg = kiln_last_error();
  EXPECT_NE(msg.find("KILN_VULKAN_DEVICE=no-such-device-xyz matches no Vulkan device"), std::string::npos) << msg;
  setenv("KILN_VULKAN_DEVICE", "0", 1);
  ASSERT_EQ(kiln_model_load(path_.c_str(), nullptr, &model), KILN_OK) << kiln_last_error();
  kiln_model_free(model);
  unsetenv("KILN_VULKAN_DEVICE");
}

TEST_F(VulkanRuntimeTest, HostBufferInVulkanDispatchIsRejected) {
  std::string path;
  VkToyOptions o;
  o.hostBufferInVulkanDispatch = true;
  ASSERT_EQ(toyArtifact(dir_, "badplan.kiln", o, path), "");
  kiln_model *model = nullptr;
  EXPECT_NE(kiln_model_load(path.c_str(), nullptr, &model), KILN_OK);
  std::string msg = kiln_last_error();
  EXPECT_NE(msg.find("runs on vulkan but uses the HOST buffer 'input_ids' (a TRANSFER must copy it)"), std::string::npos) << msg;
}

TEST(VulkanDevices, JsonHasTheSchemaKeys) {
  std::string why;
  if (!haveVulkanDevice(why))
    GTEST_SKIP() << why;
  std::string out;
  ASSERT_EQ(runCommand(std::string(KILN_BINARY) + " devices --json --device 0", out), 0) << out;
  for (const char *key : {"name", "api_version", "float16", "int8", "storage16", "storage8", "subgroup_size",
                          "subgroup_ops", "max_shared_memory", "max_workgroup_invocations", "max_workgroup_size",
                          "max_workgroup_count", "max_storage_buffer_range", "max_allocation_size",
                          "max_push_constants_size", "cooperative_matrix", "unavailable_ops", "unavailable_dtypes"})
    EXPECT_NE(out.find(std::string("\"") + key + "\":"), std::string::npos) << key << "\n" << out;
  kiln::StatusOr<kiln::target::DeviceProfile> parsed = kiln::target::parseDeviceProfile(out, "kiln devices --json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  kiln::target::DeviceProfile prof = *parsed;
  std::string error;
  EXPECT_FALSE(prof.name.empty());
  EXPECT_GT(prof.maxStorageBufferRange, 0u);
  EXPECT_GT(prof.subgroupSize, 0u);
  // The first device satisfies its own profile; a profile needing more names what is missing.
  std::vector<kiln::vulkan::DeviceInfo> devices;
  ASSERT_TRUE(kiln::vulkan::listDevices(devices, error));
  EXPECT_TRUE(devices[0].profile == prof) << "kiln devices --json writes the profile listDevices fills";
  EXPECT_EQ(kiln::target::missingCapabilities(devices[0].profile, prof), "");
  prof.maxSharedMemory = devices[0].profile.maxSharedMemory + 1;
  EXPECT_NE(kiln::target::missingCapabilities(devices[0].profile, prof).find("max_shared_memory"),
            std::string::npos);
}

TEST(VulkanDevices, NoDriverIsACleanError) {
  std::string out;
  EXPECT_EQ(runCommand("VK_DRIVER_FILES=/nonexistent/icd.json VK_ICD_FILENAMES=/nonexistent/icd.json " +
                           std::string(KILN_BINARY) + " devices 2>&1",
                       out),
            1)
      << out;
  EXPECT_NE(out.find("no Vulkan device"), std::string::npos) << out;
  EXPECT_NE(out.find("VK_DRIVER_FILES"), std::string::npos) << out;
}

} // namespace
