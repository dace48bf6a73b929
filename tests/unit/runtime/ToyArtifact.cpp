#include "ToyArtifact.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#ifndef KILN_C_COMPILER
#error "KILN_C_COMPILER must name the C compiler"
#endif

namespace kiln::runtime::test {
namespace art = kiln::artifact;

namespace {

// symbols[] = {b, p, s} (Manifest.symbols sorted by name), after kToyKernelPrelude.
const char *kKernelsC = R"C(TOY_RANGE(toy_gather)
TOY_RANGE(toy_gather_i32)
TOY_RANGE(toy_concat)
/* With -DTOY_BLAS_PROBE toy_logits says it calls OpenBLAS and writes the OpenBLAS thread count it runs
 * with into logits[0] (the runtime sets the count per BLAS kernel call). */
#ifdef TOY_BLAS_PROBE
int openblas_get_num_threads(void);
void toy_logits_range(const int64_t *sym, kiln_kernel_range *r) { (void)sym; r->extent = 1; r->grain = 1; r->flags = 1; }
#else
TOY_RANGE(toy_logits)
#endif
TOY_RANGE(toy_encode)
#define V 16
#define H 4
#ifndef TOY_SCALE
#define TOY_SCALE 1
#endif
void toy_gather(void *const *buf, const int64_t *sym, int64_t begin, int64_t end) {
  const float *embed = (const float *)buf[0];
  const int64_t *ids = (const int64_t *)buf[1];
  float *x = (float *)buf[2];
  int64_t n = sym[0] * sym[2];
  for (int64_t i = 0; i < n; ++i)
    for (int k = 0; k < H; ++k)
      x[i * H + k] = embed[ids[i] * H + k];
}
void toy_gather_i32(void *const *buf, const int64_t *sym, int64_t begin, int64_t end) {
  const float *embed = (const float *)buf[0];
  const int32_t *ids = (const int32_t *)buf[1];
  float *x = (float *)buf[2];
  int64_t n = sym[0] * sym[2];
  for (int64_t i = 0; i < n; ++i)
    for (int k = 0; k < H; ++k)
      x[i * H + k] = embed[ids[i] * H + k];
}
void toy_concat(void *const *buf, const int64_t *sym, int64_t begin, int64_t end) {
  const float *past = (const float *)buf[0];
  const float *x = (const float *)buf[1];
  float *present = (float *)buf[2];
  int64_t b = sym[0], p = sym[1], s = sym[2];
  for (int64_t r = 0; r < b; ++r) {
    for (int64_t t = 0; t < p * H; ++t)
      present[r * (p + s) * H + t] = past[r * p * H + t];
    for (int64_t t = 0; t < s * H; ++t)
      present[r * (p + s) * H + p * H + t] = x[r * s * H + t];
  }
}
void toy_logits(void *const *buf, const int64_t *sym, int64_t begin, int64_t end) {
  const float *present = (const float *)buf[0];
  const float *embed = (const float *)buf[1];
  float *logits = (float *)buf[2];
  int64_t b = sym[0], p = sym[1], s = sym[2];
  for (int64_t r = 0; r < b; ++r)
    for (int64_t t = 0; t < s; ++t) {
      const float *row = present + r * (p + s) * H;
      int64_t a = p + t;
      float h[H];
      for (int k = 0; k < H; ++k) {
        float sum = 0;
        for (int64_t j = 0; j <= a; ++j)
          sum += row[j * H + k];
        h[k] = row[a * H + k] + sum / (float)(a + 1);
      }
      for (int v = 0; v < V; ++v) {
        float d = 0;
        for (int k = 0; k < H; ++k)
          d += h[k] * embed[v * H + k];
        logits[(r * s + t) * V + v] = d * (float)TOY_SCALE;
      }
    }
#ifdef TOY_BLAS_PROBE
  logits[0] = (float)openblas_get_num_threads();
#endif
}
/* symbols {b, s} for the encoder */
void toy_encode(void *const *buf, const int64_t *sym, int64_t begin, int64_t end) {
  const float *embed = (const float *)buf[0];
  const int64_t *ids = (const int64_t *)buf[1];
  const int64_t *mask = (const int64_t *)buf[2];
  float *out = (float *)buf[3];
  int64_t b = sym[0], s = sym[1];
  for (int64_t r = 0; r < b; ++r) {
    float mean[H] = {0};
    int64_t count = 0;
    for (int64_t t = 0; t < s; ++t)
      if (mask[r * s + t]) {
        ++count;
        for (int k = 0; k < H; ++k)
          mean[k] += embed[ids[r * s + t] * H + k];
      }
    for (int k = 0; k < H; ++k)
      mean[k] = count ? mean[k] / (float)count : 0.0f;
    for (int64_t t = 0; t < s; ++t)
      for (int k = 0; k < H; ++k)
        out[(r * s + t) * H + k] = (float)mask[r * s + t] * (embed[ids[r * s + t] * H + k] + mean[k]);
  }
}
)C";

int addBuffer(art::Manifest &m, const std::string &name, art::Buffer::Kind kind, art::DType dtype,
              std::vector<art::Dim> shape, uint64_t offset, uint64_t maxBytes) {
  art::Buffer *b = m.add_buffers();
  b->set_id(m.buffers_size() - 1);
  b->set_name(name);
  b->set_kind(kind);
  b->set_dtype(dtype);
  for (art::Dim &d : shape)
    *b->add_shape() = d;
  b->set_offset(offset);
  b->set_max_bytes(maxBytes);
  return b->id();
}

int addKernel(art::Manifest &m, const std::string &symbol, const std::string &op) {
  art::Kernel *k = m.add_kernels();
  k->set_symbol(symbol);
  k->set_op(op);
  return m.kernels_size() - 1;
}

void addDispatch(art::Manifest &m, int kernel, std::vector<int> buffers, const std::string &location) {
  art::Dispatch *d = m.add_dispatches();
  d->set_kernel(kernel);
  for (int b : buffers)
    d->add_buffers(b);
  d->set_location(location);
  d->set_device("cpu");
}

std::string compileKernels(const std::string &dir, int scale, bool blasProbe, std::vector<uint8_t> &bytes) {
  std::string src = dir + "/toy_kernels.c", so = dir + "/toy_kernels.so";
  {
    std::ofstream out(src);
    out << kToyKernelPrelude << kKernelsC;
  }
  std::string cmd = std::string(KILN_C_COMPILER) + " -O1 -shared -fPIC -DTOY_SCALE=" + std::to_string(scale) + (blasProbe ? " -DTOY_BLAS_PROBE" : "") + " -o " + so + " " + src + " 2>&1";
  if (std::system(cmd.c_str()) != 0)
    return "compiling the toy kernels failed: " + cmd;
  std::ifstream in(so, std::ios::binary);
  bytes.assign(std::istreambuf_iterator<char>(in), {});
  return bytes.empty() ? "empty " + so : "";
}

} // namespace

const char *const kToyKernelPrelude = R"C(
#include <stdint.h>
/* kernel_abi.h: each kernel takes a (begin, end) range and has a <symbol>_range; these run whole (extent 1). */
typedef struct { int64_t extent, grain, flags; } kiln_kernel_range;
#define TOY_RANGE(name) \
  void name##_range(const int64_t *sym, kiln_kernel_range *r) { (void)sym; r->extent = 1; r->grain = 1; r->flags = 0; }
)C";

art::Dim dimConst(int64_t c) {
  art::Dim d;
  d.set_constant(c);
  return d;
}

art::Dim dimSym(const char *sym, int64_t coeff, const char *sym2) {
  art::Dim d;
  art::Dim::Term *t = d.add_terms();
  t->set_symbol(sym);
  t->set_coeff(coeff);
  if (sym2) {
    t = d.add_terms();
    t->set_symbol(sym2);
    t->set_coeff(1);
  }
  return d;
}

void addPort(google::protobuf::RepeatedPtrField<art::Port> *ports, const std::string &name, int buffer) {
  art::Port *p = ports->Add();
  p->set_name(name);
  p->set_buffer(buffer);
}

std::vector<int64_t> toyPrompt(int64_t B, int64_t S, int64_t salt) {
  std::vector<int64_t> ids(B * S);
  for (int64_t i = 0; i < B * S; ++i)
    ids[i] = (i * 5 + 3 + salt) % kVocab;
  return ids;
}

std::vector<int64_t> promptChunk(const std::vector<int64_t> &ids, int64_t B, int64_t S, int64_t pos, int64_t c) {
  std::vector<int64_t> chunk(B * c);
  for (int64_t r = 0; r < B; ++r)
    std::copy_n(ids.begin() + r * S + pos, c, chunk.begin() + r * c);
  return chunk;
}

std::vector<float> toyEmbedding() {
  std::vector<float> e(kVocab * kHidden);
  for (int64_t v = 0; v < kVocab; ++v)
    for (int64_t k = 0; k < kHidden; ++k)
      e[v * kHidden + k] = float(((v * 7 + k * 3) % 11) - 5) / 4.0f + 0.125f * float(k);
  return e;
}

std::string makeTempDir(const std::string &tag) {
  const char *base = std::getenv("TMPDIR");
  std::string templ = std::string(base && *base ? base : "/tmp") + "/kiln-rt-" + tag + "-XXXXXX";
  if (!mkdtemp(templ.data()))
    return "";
  return templ;
}

int runCommand(const std::string &command, std::string &output) {
  output.clear();
  FILE *p = popen(command.c_str(), "r");
  if (!p)
    return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0)
    output.append(buf, n);
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

namespace {

void addSymbol(art::Manifest &m, const char *name, int64_t max) {
  art::Symbol *s = m.add_symbols();
  s->set_name(name);
  s->set_max_value(max);
}

// The encoder's buffers, kernel, dispatch and ports (symbols b, s).
void addToyEncoder(art::Manifest &m, const ToyOptions &options) {
  const uint64_t embedBytes = kVocab * kHidden * 4;
  const uint64_t tokens = kMaxBatch * kMaxContext;
  addSymbol(m, "b", kMaxBatch);
  addSymbol(m, "s", kMaxContext);
  int wEmbed = addBuffer(m, "embeddings.word_embeddings.weight", art::Buffer::WEIGHT, art::F32,
                         {dimConst(kVocab), dimConst(kHidden)}, 0, embedBytes);
  int ids = addBuffer(m, "input_ids", art::Buffer::INPUT, art::I64, {dimSym("b"), dimSym("s")}, 0, tokens * 8);
  int mask = addBuffer(m, "attention_mask", art::Buffer::INPUT, art::I64, {dimSym("b"), dimSym("s")}, 0,
                       tokens * 8);
  int out = addBuffer(m, "last_hidden_state", art::Buffer::ARENA, art::F32,
                      {dimSym("b"), dimSym("s"), dimConst(kHidden)}, 0, tokens * kHidden * 4);
  m.set_arena_bytes(tokens * kHidden * 4);
  int k = addKernel(m, options.missingKernel.empty() ? "toy_encode" : options.missingKernel, "toy.encode");
  addDispatch(m, k, {wEmbed, ids, mask, out}, "encoder");
  addPort(m.mutable_inputs(), "input_ids", ids);
  addPort(m.mutable_inputs(), "attention_mask", mask);
  addPort(m.mutable_outputs(), "last_hidden_state", out);
}

// The causal LM's buffers, kernels, dispatches, ports and KV entry (symbols b, p, s).
void addToyCausal(art::Manifest &m, const ToyOptions &options) {
  const uint64_t embedBytes = kVocab * kHidden * 4;
  const uint64_t tokens = kMaxBatch * kMaxContext;
  addSymbol(m, "b", kMaxBatch);
  addSymbol(m, "p", kMaxContext);
  addSymbol(m, "s", kMaxContext);
  int wEmbed = addBuffer(m, "model.embed_tokens.weight", art::Buffer::WEIGHT, art::F32,
                         {dimConst(kVocab), dimConst(kHidden)}, 0, embedBytes);
  int ids = addBuffer(m, "input_ids", art::Buffer::INPUT, options.idsI32 ? art::I32 : art::I64,
                      {dimSym("b"), dimSym("s")}, 0, tokens * (options.idsI32 ? 4 : 8));
  int past = addBuffer(m, "past_key.0", art::Buffer::KV_CACHE, art::F32,
                       {dimSym("b"), dimConst(1), dimSym("p"), dimConst(kHidden)}, 0, tokens * kHidden * 4);
  int present = addBuffer(m, "present_key.0", art::Buffer::KV_CACHE, art::F32,
                          {dimSym("b"), dimConst(1), dimSym("p", 1, "s"), dimConst(kHidden)}, 0,
                          tokens * kHidden * 4);
  // Arena: x at 0, logits after it (64-aligned).
  uint64_t xBytes = tokens * kHidden * 4, logitsOffset = (xBytes + 63) / 64 * 64;
  int x = addBuffer(m, "model.embed_tokens", art::Buffer::ARENA, art::F32,
                    {dimSym("b"), dimSym("s"), dimConst(kHidden)}, 0, xBytes);
  int logits = addBuffer(m, "logits", art::Buffer::ARENA, art::F32, {dimSym("b"), dimSym("s"), dimConst(kVocab)},
                         logitsOffset, tokens * kVocab * 4);
  m.set_arena_bytes(logitsOffset + tokens * kVocab * 4);
  int kGather = addKernel(m, options.idsI32 ? "toy_gather_i32" : "toy_gather", "kiln.gather");
  int kConcat = addKernel(m, "toy_concat", "kiln.concat");
  int kLogits = addKernel(m, options.missingKernel.empty() ? "toy_logits" : options.missingKernel, "toy.logits");
  addDispatch(m, kGather, {wEmbed, ids, x}, "model.embed_tokens");
  addDispatch(m, kConcat, {past, x, present}, "model.layers.0");
  addDispatch(m, kLogits, {present, wEmbed, logits}, "lm_head");
  addPort(m.mutable_inputs(), "input_ids", ids);
  addPort(m.mutable_inputs(), "past_key.0", past);
  addPort(m.mutable_outputs(), "logits", logits);
  addPort(m.mutable_outputs(), "present_key.0", present);
  art::KvCacheEntry *e = m.add_kv_cache();
  e->set_name("key.0");
  e->set_past_buffer(past);
  e->set_present_buffer(present);
  e->set_seq_axis(2);
}

} // namespace

art::Manifest toyManifest(const ToyOptions &options) {
  art::Manifest m;
  m.mutable_provenance()->set_compiler_version("runtime-tests");
  m.mutable_provenance()->set_target("cpu");
  art::recordModelFacts({options.encoder ? "ToyEncoder" : "ToyForCausalLM", options.encoder ? "encoder" : "causal-lm",
                         kVocab, kHidden},
                        m);
  m.set_max_context(kMaxContext);
  m.set_max_batch(kMaxBatch);
  m.set_num_threads_default(2);
  if (options.encoder)
    addToyEncoder(m, options);
  else
    addToyCausal(m, options);
  return m;
}

std::string writeToyArtifact(const std::string &path, const ToyOptions &options) {
  std::string dir = makeTempDir("cc");
  if (dir.empty())
    return "mkdtemp failed";
  std::vector<uint8_t> code;
  if (options.garbageCode) {
    code.assign(4096, 0xAB);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  } else {
    std::string e = compileKernels(dir, options.logitsScale, options.blasProbe, code);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (!e.empty())
      return e;
  }

  art::Manifest m = toyManifest(options);
  const uint64_t embedBytes = kVocab * kHidden * 4;
  std::vector<float> embed = toyEmbedding();
  art::WeightBlob blob;
  blob.offset = 0;
  blob.size = embedBytes;
  std::vector<uint8_t> embedBytesVec(embedBytes);
  std::memcpy(embedBytesVec.data(), embed.data(), embedBytes);
  blob.data = embedBytesVec.data();
  blob.name = "embed";
  Status st = art::writeArtifact(path, m, code, {blob});
  return st.isOk() ? "" : st.message();
}

std::vector<float> toyCausalReference(const std::vector<int64_t> &ids, int64_t B, int64_t S) {
  std::vector<float> e = toyEmbedding(), out(B * S * kVocab);
  for (int64_t r = 0; r < B; ++r)
    for (int64_t t = 0; t < S; ++t) {
      float h[kHidden];
      for (int64_t k = 0; k < kHidden; ++k) {
        float sum = 0;
        for (int64_t j = 0; j <= t; ++j)
          sum += e[ids[r * S + j] * kHidden + k];
        h[k] = e[ids[r * S + t] * kHidden + k] + sum / float(t + 1);
      }
      for (int64_t v = 0; v < kVocab; ++v) {
        float d = 0;
        for (int64_t k = 0; k < kHidden; ++k)
          d += h[k] * e[v * kHidden + k];
        out[(r * S + t) * kVocab + v] = d;
      }
    }
  return out;
}

std::vector<float> toyEncoderReference(const std::vector<int64_t> &ids, const std::vector<int64_t> &mask,
                                       int64_t B, int64_t S) {
  std::vector<float> e = toyEmbedding(), out(B * S * kHidden);
  for (int64_t r = 0; r < B; ++r) {
    float mean[kHidden] = {0};
    int64_t count = 0;
    for (int64_t t = 0; t < S; ++t)
      if (mask[r * S + t]) {
        ++count;
        for (int64_t k = 0; k < kHidden; ++k)
          mean[k] += e[ids[r * S + t] * kHidden + k];
      }
    for (int64_t k = 0; k < kHidden; ++k)
      mean[k] = count ? mean[k] / float(count) : 0.0f;
    for (int64_t t = 0; t < S; ++t)
      for (int64_t k = 0; k < kHidden; ++k)
        out[(r * S + t) * kHidden + k] = float(mask[r * S + t]) * (e[ids[r * S + t] * kHidden + k] + mean[k]);
  }
  return out;
}

} // namespace kiln::runtime::test
