// Write -> read round trips and every corruption of a written artifact: each must be a clean one-line
// error naming the file, never a crash.
#include "kiln/artifact/ArtifactFormat.h"
#include "kiln/artifact/ArtifactReader.h"
#include "kiln/artifact/ArtifactWriter.h"
#include "kiln/artifact/Checksum.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>
#include <vector>

using namespace kiln;
using namespace kiln::artifact;

namespace {

std::string tempPath(const std::string &name) {
  const char *dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/kiln_artifact_test_" + std::to_string(getpid()) + "_" + name;
}

std::vector<uint8_t> readAll(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}
void writeAll(const std::string &path, const std::vector<uint8_t> &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
}

Dim constDim(int64_t c) {
  Dim d;
  d.set_constant(c);
  return d;
}
Dim symDim(const std::string &s, int64_t constant = 0) {
  Dim d;
  d.set_constant(constant);
  Dim::Term *t = d.add_terms();
  t->set_symbol(s);
  t->set_coeff(1);
  return d;
}

// A small but complete manifest: input [b, s] i64, weight [4, 8] f32, weight [3] f32 (constant), two arena
// buffers, a KV pair, 2 dispatches.
struct Sample {
  Manifest manifest;
  std::vector<float> w0, w1;
  std::vector<uint8_t> code;
};

Sample makeSample() {
  Sample s;
  Manifest &m = s.manifest;
  m.mutable_provenance()->set_compiler_version("0.1.0");
  m.mutable_provenance()->set_git_revision("abc");
  m.mutable_provenance()->add_flags("kiln compile x -o y");
  recordModelFacts({"TestForCausalLM", "causal-lm", 4, 8}, m);
  for (const char *n : {"b", "p", "s"}) {
    Symbol *sym = m.add_symbols();
    sym->set_name(n);
    sym->set_max_value(std::string(n) == "b" ? 2 : 16);
  }
  m.set_max_context(16);
  m.set_max_batch(2);
  auto addBuffer = [&](const std::string &name, Buffer::Kind kind, DType dtype, std::vector<Dim> shape,
                       uint64_t offset, uint64_t maxBytes) {
    Buffer *b = m.add_buffers();
    b->set_id(m.buffers_size() - 1);
    b->set_name(name);
    b->set_kind(kind);
    b->set_dtype(dtype);
    for (Dim &d : shape)
      *b->add_shape() = d;
    b->set_offset(offset);
    b->set_max_bytes(maxBytes);
    return b->id();
  };
  int in = addBuffer("input_ids", Buffer::INPUT, I64, {symDim("b"), symDim("s")}, 0, 2 * 16 * 8);
  int w0 = addBuffer("w0", Buffer::WEIGHT, F32, {constDim(4), constDim(8)}, 0, 128);
  int w1 = addBuffer("c1", Buffer::WEIGHT, F32, {constDim(3)}, 128, 12);
  int a0 = addBuffer("x", Buffer::ARENA, F32, {symDim("b"), symDim("s"), constDim(8)}, 0, 1024);
  int a1 = addBuffer("logits", Buffer::ARENA, F32, {symDim("b"), symDim("s"), constDim(4)}, 1024, 512);
  Dim ps = symDim("p");
  Dim::Term *t = ps.add_terms();
  t->set_symbol("s");
  t->set_coeff(1);
  int past = addBuffer("past_key.0", Buffer::KV_CACHE, F32, {symDim("b"), constDim(1), symDim("p"), constDim(8)},
                       0, 2 * 16 * 8 * 4);
  int present = addBuffer("present_key.0", Buffer::KV_CACHE, F32, {symDim("b"), constDim(1), ps, constDim(8)}, 0,
                          2 * 16 * 8 * 4);
  m.set_arena_bytes(1536);
  for (const char *k : {"kiln_k0", "kiln_k1"}) {
    Kernel *kern = m.add_kernels();
    kern->set_symbol(k);
    kern->set_op("kiln.test");
  }
  Dispatch *d0 = m.add_dispatches();
  d0->set_kernel(0);
  for (int id : {w0, in, a0})
    d0->add_buffers(id);
  d0->set_location("model.embed");
  d0->set_device("cpu");
  Dispatch *d1 = m.add_dispatches();
  d1->set_kernel(1);
  for (int id : {a0, w1, past, a1})
    d1->add_buffers(id);
  d1->set_device("cpu");
  Port *p = m.add_inputs();
  p->set_name("input_ids");
  p->set_buffer(in);
  p = m.add_inputs();
  p->set_name("past_key.0");
  p->set_buffer(past);
  p = m.add_outputs();
  p->set_name("logits");
  p->set_buffer(a1);
  p = m.add_outputs();
  p->set_name("present_key.0");
  p->set_buffer(present);
  KvCacheEntry *kv = m.add_kv_cache();
  kv->set_name("key.0");
  kv->set_past_buffer(past);
  kv->set_present_buffer(present);
  kv->set_seq_axis(2);

  for (int i = 0; i < 32; ++i)
    s.w0.push_back(float(i) * 0.5f);
  s.w1 = {1.f, 2.f, 3.f};
  for (int i = 0; i < 777; ++i)
    s.code.push_back(uint8_t(i * 7));
  return s;
}

std::vector<WeightBlob> blobsOf(const Sample &s) {
  std::vector<WeightBlob> blobs(2);
  blobs[0].offset = 0;
  blobs[0].size = 128;
  blobs[0].data = reinterpret_cast<const uint8_t *>(s.w0.data());
  blobs[0].name = "w0";
  blobs[1].offset = 128;
  blobs[1].size = 12;
  const std::vector<float> *w1 = &s.w1;
  blobs[1].produce = [w1](uint8_t *out) {
    std::memcpy(out, w1->data(), 12);
    return Status::ok();
  };
  blobs[1].name = "c1";
  return blobs;
}

class ArtifactFile : public ::testing::Test {
protected:
  void SetUp() override {
    path_ = tempPath(::testing::UnitTest::GetInstance()->current_test_info()->name() + std::string(".kiln"));
    sample_ = makeSample();
    Status s = writeArtifact(path_, sample_.manifest, sample_.code, blobsOf(sample_));
    ASSERT_TRUE(s.isOk()) << s.message();
    bytes_ = readAll(path_);
    corrupt_ = path_ + ".bad";
  }
  void TearDown() override {
    std::remove(path_.c_str());
    std::remove(corrupt_.c_str());
  }
  // Writes `bytes` to the corrupt file and expects a clean error containing `expect`.
  void expectError(const std::vector<uint8_t> &bytes, const std::string &expect, const std::string &what) {
    writeAll(corrupt_, bytes);
    StatusOr<MappedArtifact> a = openArtifact(corrupt_);
    ASSERT_FALSE(a.ok()) << what << ": opened a corrupted file";
    const std::string &msg = a.status().message();
    EXPECT_EQ(msg.rfind(corrupt_ + ": ", 0), 0u) << what << ": message does not name the file: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << what << ": message is not one line: " << msg;
    if (!expect.empty())
      EXPECT_NE(msg.find(expect), std::string::npos) << what << ": got '" << msg << "', expected '" << expect << "'";
  }
  const SectionEntry &section(SectionKind kind) {
    const SectionEntry *table = reinterpret_cast<const SectionEntry *>(bytes_.data() + sizeof(FileHeader));
    for (int i = 0; i < 3; ++i)
      if (table[i].kind == uint32_t(kind))
        return table[i];
    ADD_FAILURE() << "no section";
    return table[0];
  }

  std::string path_, corrupt_;
  Sample sample_;
  std::vector<uint8_t> bytes_;
};

} // namespace

TEST_F(ArtifactFile, RoundTrip) {
  StatusOr<MappedArtifact> a = openArtifact(path_);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_TRUE(a->checksumsVerified());
  EXPECT_EQ(a->manifest().SerializeAsString(), sample_.manifest.SerializeAsString());
  ASSERT_EQ(a->cpuCodeSize(), sample_.code.size());
  EXPECT_EQ(std::memcmp(a->cpuCode(), sample_.code.data(), sample_.code.size()), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a->weightsBase()) % kAlignment, 0u);
  EXPECT_EQ(a->weightsSize(), 192u); // 128 + 12, 64-aligned
  EXPECT_EQ(std::memcmp(a->weightsBase(), sample_.w0.data(), 128), 0);
  EXPECT_EQ(std::memcmp(a->weightsBase() + 128, sample_.w1.data(), 12), 0);
  for (size_t i = 140; i < 192; ++i)
    EXPECT_EQ(a->weightsBase()[i], 0) << "gap byte " << i;
  for (const SectionEntry &s : a->sections())
    EXPECT_EQ(s.offset % kAlignment, 0u);
  EXPECT_EQ(a->fileSize(), bytes_.size());
  // Moving keeps the mapping valid.
  MappedArtifact moved = std::move(*a);
  EXPECT_EQ(std::memcmp(moved.weightsBase(), sample_.w0.data(), 128), 0);
  EXPECT_EQ(moved.manifest().architecture(), "TestForCausalLM");
  EXPECT_FALSE(std::ifstream(path_ + ".tmp").good()) << "temporary file left behind";
}

TEST_F(ArtifactFile, NoChecksumVerification) {
  std::vector<uint8_t> b = bytes_;
  const SectionEntry &w = section(SectionKind::Weights);
  b[w.offset + 3] ^= 0xFF;
  writeAll(corrupt_, b);
  StatusOr<MappedArtifact> a = openArtifact(corrupt_, /*verifyChecksums=*/false);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_FALSE(a->checksumsVerified());
  expectError(b, "corrupted: weights section checksum mismatch", "weights byte");
}

TEST_F(ArtifactFile, TruncatedAtEveryLength) {
  // Every length up to past the manifest, then a stride through code and weights.
  std::vector<size_t> lengths;
  for (size_t n = 0; n < std::min<size_t>(bytes_.size(), 1200); ++n)
    lengths.push_back(n);
  for (size_t n = 1200; n < bytes_.size(); n += 37)
    lengths.push_back(n);
  lengths.push_back(bytes_.size() - 1);
  for (size_t n : lengths)
    expectError(std::vector<uint8_t>(bytes_.begin(), bytes_.begin() + long(n)), "", "truncated to " + std::to_string(n));
}

TEST_F(ArtifactFile, EveryHeaderAndTableByteFlipped) {
  const size_t tableEnd = sizeof(FileHeader) + 3 * sizeof(SectionEntry);
  for (size_t i = 0; i < tableEnd; ++i) {
    std::vector<uint8_t> b = bytes_;
    b[i] ^= 0x5A;
    expectError(b, "", "byte " + std::to_string(i) + " flipped");
  }
}

TEST_F(ArtifactFile, EverySectionByteFlipped) {
  for (SectionKind kind : {SectionKind::Manifest, SectionKind::CpuCode, SectionKind::Weights}) {
    const SectionEntry s = section(kind);
    std::string expect = std::string("corrupted: ") + sectionName(uint32_t(kind)) + " section checksum mismatch";
    for (uint64_t i = 0; i < s.size; i += (kind == SectionKind::Manifest ? 1 : 7)) {
      std::vector<uint8_t> b = bytes_;
      b[s.offset + i] ^= 0x01;
      expectError(b, expect, std::string(sectionName(uint32_t(kind))) + " byte " + std::to_string(i));
    }
  }
}

TEST_F(ArtifactFile, WrongMagic) {
  std::vector<uint8_t> b = bytes_;
  b[0] = 'X';
  expectError(b, "not a kiln artifact", "magic");
  expectError({'h', 'e', 'l', 'l', 'o'}, "not a kiln artifact", "text file");
  expectError({}, "not a kiln artifact", "empty file");
  expectError(std::vector<uint8_t>(bytes_.begin(), bytes_.begin() + 5), "truncated", "magic prefix");
  // The right magic but nothing else.
  expectError(std::vector<uint8_t>(bytes_.begin(), bytes_.begin() + 8), "truncated", "magic only");
}

TEST_F(ArtifactFile, WrongVersion) {
  std::vector<uint8_t> b = bytes_;
  FileHeader h;
  std::memcpy(&h, b.data(), sizeof h);
  h.formatVersion = kFormatVersion + 1;
  std::memcpy(b.data(), &h, sizeof h);
  const std::string v = std::to_string(kFormatVersion + 1);
  expectError(b, "format version " + v + ", this runtime reads " + std::to_string(kFormatVersion), "version " + v);
}

// A flipped byte of the version field is a corrupted header, not "format version 5767170"; another version
// with a valid checksum is named as such.
TEST_F(ArtifactFile, FlippedVersionByteIsAChecksumMismatch) {
  std::vector<uint8_t> b = bytes_;
  b[10] ^= 0x57;
  expectError(b, "corrupted: header checksum mismatch", "version byte flipped");
  StatusOr<MappedArtifact> a = openArtifactBuffer("x.kiln", b.data(), b.size(), true);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().message().find("format version"), std::string::npos) << a.status().message();

  std::vector<uint8_t> v = bytes_;
  FileHeader h;
  std::memcpy(&h, v.data(), sizeof h);
  h.formatVersion = kFormatVersion + 1;
  h.headerChecksum = 0;
  std::memcpy(v.data(), &h, sizeof h);
  const uint64_t tableEnd = sizeof h + uint64_t(h.sectionCount) * sizeof(SectionEntry);
  h.headerChecksum = checksum64(v.data(), tableEnd); // header (checksum 0) + table, as the writer computes it
  std::memcpy(v.data(), &h, sizeof h);
  StatusOr<MappedArtifact> other = openArtifactBuffer("x.kiln", v.data(), v.size(), true);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().message(), "x.kiln: format version " + std::to_string(kFormatVersion + 1) +
                                          ", this runtime reads " + std::to_string(kFormatVersion));
}

TEST_F(ArtifactFile, NotAFileOrMissing) {
  StatusOr<MappedArtifact> a = openArtifact(tempPath("does-not-exist.kiln"));
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("cannot open"), std::string::npos) << a.status().message();
  StatusOr<MappedArtifact> d = openArtifact("/tmp");
  ASSERT_FALSE(d.ok());
}

// A structurally valid file (checksums right) whose manifest is inconsistent: the reader must catch it.
class BadManifest : public ::testing::Test {
protected:
  void expectRejected(void (*mutate)(Manifest &), const std::string &expect, bool writerRejects = true) {
    Sample s = makeSample();
    mutate(s.manifest);
    Status v = validateManifest(s.manifest, 192, "x.kiln");
    ASSERT_FALSE(v.isOk()) << "accepted: " << expect;
    EXPECT_NE(v.message().find(expect), std::string::npos) << v.message();
    EXPECT_EQ(v.message().rfind("x.kiln: manifest: ", 0), 0u) << v.message();
    // And the writer refuses to write it.
    if (!writerRejects)
      return; // the writer sizes the weights section from the manifest itself
    std::string path = tempPath("bad.kiln");
    Status w = writeArtifact(path, s.manifest, s.code, blobsOf(s));
    EXPECT_FALSE(w.isOk());
    EXPECT_FALSE(std::ifstream(path).good());
  }
};

TEST_F(BadManifest, Rejected) {
  expectRejected([](Manifest &m) { m.mutable_buffers(2)->set_id(7); }, "has id 7");
  expectRejected([](Manifest &m) { m.mutable_dispatches(0)->set_kernel(2); }, "uses kernel 2");
  expectRejected([](Manifest &m) { m.mutable_dispatches(0)->set_kernel(-1); }, "uses kernel -1");
  expectRejected([](Manifest &m) { m.mutable_dispatches(1)->set_buffers(0, 99); }, "buffer 99");
  expectRejected([](Manifest &m) { m.mutable_dispatches(1)->clear_buffers(); }, "no buffers");
  expectRejected([](Manifest &m) { m.mutable_buffers(1)->set_offset(100); }, "not 64-byte aligned");
  expectRejected([](Manifest &m) { m.mutable_buffers(2)->set_offset(192); }, "past the weights section",
                 /*writerRejects=*/false);
  expectRejected([](Manifest &m) { m.mutable_buffers(1)->set_max_bytes(64); }, "its shape needs 128");
  expectRejected([](Manifest &m) { m.mutable_buffers(4)->set_max_bytes(513); }, "past arena_bytes");
  expectRejected([](Manifest &m) { m.set_arena_bytes(100); }, "past arena_bytes");
  expectRejected([](Manifest &m) { m.mutable_inputs(0)->set_buffer(50); }, "input 'input_ids'");
  expectRejected([](Manifest &m) { m.mutable_outputs(0)->set_buffer(1); }, "output 'logits'");
  expectRejected([](Manifest &m) { m.mutable_kv_cache(0)->set_present_buffer(3); }, "not KV_CACHE");
  expectRejected([](Manifest &m) { m.mutable_kv_cache(0)->set_past_buffer(-4); }, "out of range");
  expectRejected([](Manifest &m) { m.mutable_kv_cache(0)->set_seq_axis(4); }, "seq_axis 4");
  expectRejected([](Manifest &m) { m.mutable_buffers(0)->mutable_shape(0)->mutable_terms(0)->set_symbol("q"); },
                 "undeclared symbol 'q'");
  expectRejected([](Manifest &m) { m.mutable_symbols(0)->set_name("z"); }, "not sorted");
  expectRejected([](Manifest &m) { m.mutable_buffers(3)->set_kind(Buffer::KIND_UNSPECIFIED); }, "no valid kind");
  expectRejected([](Manifest &m) { m.mutable_buffers(3)->set_dtype(DTYPE_UNSPECIFIED); }, "no valid dtype");
  expectRejected([](Manifest &m) { m.mutable_dispatches(0)->set_buffers(2, 1); }, "read-only");
  // num_results: the last 3 of {a0, w1, past, a1} include the weight w1; more results than buffers.
  expectRejected([](Manifest &m) { m.mutable_dispatches(1)->set_num_results(3); }, "read-only");
  expectRejected([](Manifest &m) { m.mutable_dispatches(1)->set_num_results(5); }, "5 results among its 4 buffers");
  expectRejected([](Manifest &m) { m.mutable_dispatches(1)->set_num_results(-1); }, "-1 results");
  expectRejected([](Manifest &m) { m.set_max_context(0); }, "max_context");
  expectRejected([](Manifest &m) { m.mutable_buffers(4)->set_offset(~uint64_t(0) - 10); }, "overflows");
  // The model facts (format version 3).
  expectRejected([](Manifest &m) { m.set_task("text"); }, "unknown task 'text'");
  expectRejected([](Manifest &m) { m.set_vocab_size(0); }, "vocab_size 0 and hidden_size 8 must be positive");
  // Names reach one-line messages and C strings.
  expectRejected([](Manifest &m) { m.mutable_buffers(3)->set_name("x\ny"); }, "buffer 3 has a name with a control character");
  expectRejected([](Manifest &m) { m.mutable_dispatches(0)->set_location(std::string("a\0b", 3)); },
                 "dispatch 0 has a location or device with a control character");
  expectRejected([](Manifest &m) { m.mutable_buffers(0)->mutable_shape(0)->mutable_terms(0)->set_symbol("\x01"); },
                 "undeclared symbol (a name with a control character)");
  // Locations, KV ownership, transfers, shared SPIR-V modules.
  expectRejected([](Manifest &m) { m.mutable_buffers(0)->set_location(Buffer::DEVICE); }, "is an INPUT on the DEVICE");
  expectRejected([](Manifest &m) { m.clear_kv_cache(); }, "is KV_CACHE but in no kv_cache entry");
  expectRejected([](Manifest &m) { m.mutable_kv_cache(0)->set_present_buffer(m.kv_cache(0).past_buffer()); },
                 "already a buffer of entry 0");
  expectRejected([](Manifest &m) { m.mutable_buffers(m.kv_cache(0).past_buffer())->set_location(Buffer::DEVICE); },
                 "past and present are in different locations");
  expectRejected([](Manifest &m) { m.mutable_dispatches(0)->set_kind(Dispatch::TRANSFER); },
                 "a TRANSFER needs [source, destination]");
  expectRejected([](Manifest &m) { m.mutable_kernels(1)->set_spirv_from(2); }, "has spirv_from 2");
  // A small-rows kernel: a Vulkan dispatch's other kernel of the same op, a row count of declared symbols.
  expectRejected([](Manifest &m) { m.mutable_dispatches(0)->set_small_rows_kernel(3); }, "small_rows_kernel 3");
  expectRejected(
      [](Manifest &m) {
        m.mutable_dispatches(0)->set_small_rows_kernel(1);
        m.mutable_dispatches(0)->set_small_rows_max(4);
      },
      "which does not name a Vulkan kernel of the same op"); // dispatch 0 runs on the CPU
}

TEST(ArtifactWriter, RejectsBadBlobs) {
  Sample s = makeSample();
  std::string path = tempPath("blobs.kiln");
  std::vector<WeightBlob> blobs = blobsOf(s);
  blobs[1].offset = 96;
  EXPECT_FALSE(writeArtifact(path, s.manifest, s.code, blobs).isOk());
  blobs = blobsOf(s);
  blobs[1].offset = 64; // overlaps w0
  EXPECT_FALSE(writeArtifact(path, s.manifest, s.code, blobs).isOk());
  blobs = blobsOf(s);
  blobs[1].size = 1000;
  EXPECT_FALSE(writeArtifact(path, s.manifest, s.code, blobs).isOk());
  blobs = blobsOf(s);
  blobs[1].produce = [](uint8_t *) { return Status::error("conversion failed"); };
  Status st = writeArtifact(path, s.manifest, s.code, blobs);
  EXPECT_FALSE(st.isOk());
  EXPECT_EQ(st.message(), path + ": weight 'c1': conversion failed");
  EXPECT_FALSE(std::ifstream(path).good()) << "a failed write left a file";
  EXPECT_FALSE(std::ifstream(path + ".tmp").good()) << "a failed write left a temporary";
  Status bad = writeArtifact("/nonexistent-dir/x.kiln", s.manifest, s.code, blobsOf(s));
  EXPECT_FALSE(bad.isOk());
  EXPECT_NE(bad.message().find("/nonexistent-dir/x.kiln"), std::string::npos);
}

TEST(ArtifactWriter, EmptyCodeAndNoWeights) {
  Manifest m;
  recordModelFacts({"TestEncoder", "encoder", 4, 8}, m);
  m.set_max_context(4);
  m.set_max_batch(1);
  std::string path = tempPath("empty.kiln");
  ASSERT_TRUE(writeArtifact(path, m, {}, {}).isOk());
  StatusOr<MappedArtifact> a = openArtifact(path);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->cpuCodeSize(), 0u);
  EXPECT_EQ(a->weightsSize(), 0u);
  std::remove(path.c_str());
}

// The KV cache in place (KvCacheEntry.in_place, Buffer.row_capacity): a consistent in-place entry is
// accepted; every inconsistency between the entry and its views is rejected.
namespace {
void makeInPlace(Manifest &m) {
  KvCacheEntry *kv = m.mutable_kv_cache(0);
  kv->set_in_place(true);
  kv->set_capacity(m.max_context());
  kv->set_append_buffer(-1);
  kv->set_producer("kiln.rope");
  for (int id : {kv->past_buffer(), kv->present_buffer()}) {
    Buffer *b = m.mutable_buffers(id);
    b->set_row_capacity(m.max_context());
    b->set_kv_entry(0);
  }
}
} // namespace

TEST_F(BadManifest, KvInPlace) {
  Sample s = makeSample();
  makeInPlace(s.manifest);
  Status ok = validateManifest(s.manifest, 192, "x.kiln");
  EXPECT_TRUE(ok.isOk()) << ok.message();
  expectRejected([](Manifest &m) { makeInPlace(m); m.mutable_kv_cache(0)->set_capacity(m.max_context() + 1); },
                 "is in place with capacity");
  expectRejected([](Manifest &m) { makeInPlace(m); m.mutable_buffers(m.kv_cache(0).present_buffer())->set_row_capacity(0); },
                 "is not a rank-4 view");
  expectRejected([](Manifest &m) { makeInPlace(m); m.mutable_kv_cache(0)->set_append_buffer(m.outputs(0).buffer()); },
                 "not a KV_CACHE buffer");
  expectRejected([](Manifest &m) { m.mutable_buffers(m.kv_cache(0).past_buffer())->set_row_capacity(16); },
                 "not in place but its buffers are strided views");
  expectRejected([](Manifest &m) { makeInPlace(m); m.mutable_buffers(m.outputs(0).buffer())->set_row_capacity(16); },
                 "no view of an in-place KV-cache entry");
  expectRejected([](Manifest &m) {
    makeInPlace(m);
    m.mutable_buffers(m.kv_cache(0).past_buffer())->mutable_row_offset()->add_terms()->set_symbol("q");
  }, "row_offset with an undeclared symbol");
}

namespace {
TextSection sampleText() {
  TextSection t;
  t.set_tokenizer_json(R"({"model": {"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "a"}})");
  t.set_tokenizer_config_json(R"({"eos_token": "a"})");
  t.set_chat_template("{{ messages[0].content }}");
  t.add_eos_token_ids(0);
  return t;
}
} // namespace

// The TEXT section: written after the weights, read back byte for byte, its checksum verified; without one,
// text() is null.
TEST_F(ArtifactFile, TextSectionRoundTrip) {
  EXPECT_EQ(openArtifact(path_)->text(), nullptr);
  const TextSection text = sampleText();
  ASSERT_TRUE(writeArtifact(path_, sample_.manifest, sample_.code, blobsOf(sample_), &text).isOk());
  StatusOr<MappedArtifact> a = openArtifact(path_);
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_NE(a->text(), nullptr);
  EXPECT_EQ(a->text()->SerializeAsString(), text.SerializeAsString());
  ASSERT_EQ(a->sections().size(), 4u);
  EXPECT_STREQ(sectionName(a->sections()[3].kind), "text");
  EXPECT_EQ(std::memcmp(a->weightsBase(), sample_.w0.data(), 128), 0);
  std::vector<uint8_t> b = readAll(path_);
  b[a->sections()[3].offset + 5] ^= 0xFF;
  expectError(b, "corrupted: text section checksum mismatch", "text byte");
}

// validateTextSection: what the writer refuses (and the reader, after a parse).
TEST_F(ArtifactFile, TextSectionRejected) {
  auto expectRejected = [&](TextSection t, Manifest m, const std::string &expect) {
    Status s = writeArtifact(path_, m, sample_.code, blobsOf(sample_), &t);
    ASSERT_FALSE(s.isOk()) << expect;
    EXPECT_NE(s.message().find(path_ + ": text section: " + expect), std::string::npos) << s.message();
  };
  TextSection t = sampleText();
  t.clear_tokenizer_json();
  expectRejected(t, sample_.manifest, "no tokenizer.json");
  t = sampleText();
  t.add_eos_token_ids(uint32_t(sample_.manifest.vocab_size()));
  expectRejected(t, sample_.manifest, "eos token id " + std::to_string(sample_.manifest.vocab_size()) + " is outside the vocabulary");
  t = sampleText();
  t.mutable_pooling()->set_mode(Pooling::MEAN);
  expectRejected(t, sample_.manifest, "pooling for a causal-lm model");
  Manifest encoder = sample_.manifest;
  encoder.set_task("encoder");
  t.mutable_pooling()->set_mode(Pooling::Mode(17));
  expectRejected(t, encoder, "unknown pooling mode 17");
  t.mutable_pooling()->set_mode(Pooling::CLS);
  t.mutable_pooling()->set_default_prompt_name("query");
  expectRejected(t, encoder, "default prompt 'query' is not among the prompts");
  (*t.mutable_pooling()->mutable_prompts())["query"] = "query: ";
  EXPECT_TRUE(writeArtifact(path_, encoder, sample_.code, blobsOf(sample_), &t).isOk());
}
