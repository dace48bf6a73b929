#include "kiln/support/Half.h"
#include "kiln/frontend/SafeTensors.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

using namespace kiln;
using kiln::test::TempDir;

namespace {

std::vector<uint8_t> rawFile(const std::string &header, size_t dataBytes = 0) {
  std::vector<uint8_t> out(8);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i)
    out[i] = uint8_t(n >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + dataBytes, 0x11);
  return out;
}

template <class T> std::vector<uint8_t> bytesOf(const std::vector<T> &v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Opens bytes written to DIR/name; returns the error message ("" when it opened).
std::string openError(const TempDir &dir, const std::vector<uint8_t> &bytes,
                      const std::string &name = "bad.safetensors") {
  std::string path = dir.file(name);
  kiln::test::writeBytes(path, bytes);
  auto f = SafeTensorsFile::open(path);
  if (f.ok())
    return "";
  return f.status().message();
}

} // namespace

TEST(SafeTensors, DTypeNames) {
  for (DType d : {DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I8,
                  DType::U8, DType::BOOL}) {
    auto p = parseDType(dtypeName(d));
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(*p, d);
  }
  EXPECT_EQ(dtypeSize(DType::I64), 8u);
  EXPECT_EQ(dtypeSize(DType::BF16), 2u);
  EXPECT_FALSE(parseDType("F64").has_value());
  EXPECT_FALSE(parseDType("f32").has_value());
}

TEST(SafeTensors, RoundTripAllDTypes) {
  TempDir dir;
  std::vector<float> f32 = {1.5f, -2.25f, 0.0f, 1e-3f, 3.0e38f, -0.0f};
  std::vector<float> halfVals = {1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24), 0.333251953125f,
                                 -0.0f};
  std::vector<uint16_t> f16, bf16;
  for (float v : halfVals) {
    f16.push_back(floatToHalf(v));
    bf16.push_back(floatToBf16(v));
  }
  std::vector<int64_t> i64 = {-(int64_t(1) << 40), 0, 7, 123456789};
  std::vector<int32_t> i32 = {-5, 0, 2147483647};
  std::vector<int8_t> i8 = {-128, -1, 0, 127};
  std::vector<uint8_t> u8 = {0, 1, 200, 255};
  std::vector<uint8_t> boolean = {0, 1, 0, 1, 1, 0};

  SafeTensorsWriter w;
  w.add("b.f32", DType::F32, {2, 3}, f32.data(), f32.size() * 4);
  w.add("a.f16", DType::F16, {6}, f16.data(), f16.size() * 2);
  w.add("c.bf16", DType::BF16, {3, 2}, bf16.data(), bf16.size() * 2);
  w.add("d.i64", DType::I64, {4}, i64.data(), i64.size() * 8);
  w.add("e.i32", DType::I32, {3, 1}, i32.data(), i32.size() * 4);
  w.add("f.i8", DType::I8, {4}, i8.data(), i8.size());
  w.add("g.u8", DType::U8, {2, 2}, u8.data(), u8.size());
  w.add("h.bool", DType::BOOL, {1, 6}, boolean.data(), boolean.size());
  w.add("i.scalar", DType::F32, {}, f32.data(), 4);
  w.add("j.empty", DType::F32, {0, 5}, nullptr, 0);
  std::string path = dir.file("model.safetensors");
  ASSERT_TRUE(w.write(path, {{"format", "pt"}, {"note", "kiln"}}).isOk());

  auto opened = SafeTensorsFile::open(path);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  const SafeTensorsFile &f = **opened;
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.metadata().size(), 2u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  ASSERT_EQ(f.tensors().size(), 10u);
  for (size_t i = 1; i < f.tensors().size(); ++i)
    EXPECT_LT(f.tensors()[i - 1].name, f.tensors()[i].name);

  // Data section 8-byte aligned; every tensor aligned to its element size.
  const TensorInfo *first = f.find("d.i64");
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(first->data) % 8, 0u);
  for (const TensorInfo &t : f.tensors()) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % dtypeSize(t.dtype), 0u) << t.name;
    EXPECT_EQ(t.file, path);
  }

  const TensorInfo *t = f.find("b.f32");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::F32);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t->numElements(), 6);
  EXPECT_EQ(t->nbytes, 24u);
  EXPECT_EQ(std::memcmp(t->data, f32.data(), 24), 0);
  std::vector<float> out(6);
  convertToF32(*t, out.data());
  EXPECT_EQ(out, f32);

  for (const char *name : {"a.f16", "c.bf16"}) {
    t = f.find(name);
    ASSERT_NE(t, nullptr) << name;
    convertToF32(*t, out.data());
    for (size_t i = 0; i < halfVals.size(); ++i) {
      float expect = t->dtype == DType::F16 ? halfToFloat(f16[i]) : bf16ToFloat(bf16[i]);
      EXPECT_EQ(out[i], expect) << name << " " << i;
    }
  }
  // Exact values survive fp16; bf16 rounds 65504 to 65536 (8 bits of mantissa).
  convertToF32(*f.find("a.f16"), out.data());
  EXPECT_EQ(out[2], 65504.0f);
  EXPECT_EQ(out[3], std::ldexp(1.0f, -24));
  EXPECT_EQ(out[4], 0.333251953125f);
  EXPECT_TRUE(std::signbit(out[5]));
  convertToF32(*f.find("c.bf16"), out.data());
  EXPECT_EQ(out[2], 65536.0f);
  EXPECT_EQ(out[1], -2.0f);

  std::vector<double> d(6);
  convertToF64(*f.find("d.i64"), d.data());
  EXPECT_EQ(d[0], -double(int64_t(1) << 40));
  EXPECT_EQ(d[3], 123456789.0);
  convertToF64(*f.find("e.i32"), d.data());
  EXPECT_EQ(d[2], 2147483647.0);
  convertToF32(*f.find("f.i8"), out.data());
  EXPECT_EQ(out[0], -128.0f);
  EXPECT_EQ(out[3], 127.0f);
  convertToF32(*f.find("g.u8"), out.data());
  EXPECT_EQ(out[2], 200.0f);
  convertToF32(*f.find("h.bool"), out.data());
  EXPECT_EQ(out, (std::vector<float>{0, 1, 0, 1, 1, 0}));
  t = f.find("i.scalar");
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->shape.empty());
  EXPECT_EQ(t->numElements(), 1);
  t = f.find("j.empty");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->numElements(), 0);
  EXPECT_EQ(t->nbytes, 0u);
  EXPECT_EQ(f.find("nope"), nullptr);

  // The same bytes through fromBuffer.
  auto bytes = w.serialize({{"format", "pt"}, {"note", "kiln"}});
  ASSERT_TRUE(bytes.ok());
  auto mem = SafeTensorsFile::fromBuffer("mem", std::move(*bytes));
  ASSERT_TRUE(mem.ok()) << mem.status().message();
  EXPECT_EQ((*mem)->tensors().size(), 10u);
  EXPECT_EQ((*mem)->path(), "mem");
}

TEST(SafeTensors, WriterRejectsBadInput) {
  TempDir dir;
  float x[4] = {};
  {
    SafeTensorsWriter w;
    w.add("x", DType::F32, {2, 2}, x, 12);
    Status s = w.write(dir.file("w.safetensors"));
    ASSERT_FALSE(s.isOk());
    EXPECT_NE(s.message().find("w.safetensors: tensor 'x'"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("16 bytes"), std::string::npos) << s.message();
  }
  {
    SafeTensorsWriter w;
    w.add("x", DType::F32, {1}, x, 4);
    w.add("x", DType::F32, {1}, x, 4);
    EXPECT_FALSE(w.write(dir.file("w.safetensors")).isOk());
  }
  {
    SafeTensorsWriter w;
    w.add("x", DType::F32, {-1}, x, 4);
    EXPECT_FALSE(w.write(dir.file("w.safetensors")).isOk());
  }
  {
    SafeTensorsWriter w;
    w.add("x", DType::F32, {1}, x, 4);
    Status s = w.write(dir.file("no/such/dir/w.safetensors"));
    ASSERT_FALSE(s.isOk());
    EXPECT_NE(s.message().find("No such file or directory"), std::string::npos);
  }
}

struct BadCase {
  const char *what;
  std::vector<uint8_t> bytes;
  std::vector<const char *> expected; // substrings of the message
};

TEST(SafeTensors, BadHeaders) {
  TempDir dir;
  const std::string f32x4 = R"("dtype":"F32","shape":[4])";
  std::vector<BadCase> cases = {
      {"empty file", {}, {"0 bytes", "too short"}},
      {"truncated", {1, 2, 3, 4, 5}, {"5 bytes", "too short"}},
      {"length 0", rawFile(""), {"header length is 0"}},
      {"length past EOF", [] { auto b = rawFile("{}"); b[0] = 100; return b; }(),
       {"header length 100", "past the end"}},
      {"length > 100 MiB", [] { auto b = rawFile("{}"); b[4] = 1; return b; }(),
       {"exceeds the 100 MiB limit"}},
      {"bad JSON", rawFile(R"({"a": {"dtype": )"), {"not valid JSON"}},
      {"not an object", rawFile("[1, 2, 3]"), {"not a JSON object"}},
      {"not UTF-8", rawFile("{\"\xff\xfe\": {}}"), {"not valid UTF-8"}},
      {"entry not an object", rawFile(R"({"w": [1, 2]})"), {"tensor 'w'", "not an object"}},
      {"missing dtype", rawFile(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4),
       {"tensor 'w'", "'dtype'"}},
      {"dtype not a string", rawFile(R"({"w": {"dtype": 5, "shape": [1], "data_offsets": [0, 4]}})", 4),
       {"tensor 'w'", "'dtype'"}},
      {"unknown dtype", rawFile(R"({"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}})", 16),
       {"tensor 'w'", "unknown dtype 'F128'"}},
      {"missing shape", rawFile(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4),
       {"tensor 'w'", "'shape'"}},
      {"shape not ints", rawFile(R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4),
       {"tensor 'w'", "'shape' must be a list of integers"}},
      {"negative dim", rawFile(R"({"w": {"dtype": "F32", "shape": [2, -3], "data_offsets": [0, 4]}})", 4),
       {"tensor 'w'", "negative dimension -3"}},
      {"element count overflow",
       rawFile(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})", 4),
       {"tensor 'w'", "overflows"}},
      {"byte size overflow",
       rawFile(R"({"w": {"dtype": "I64", "shape": [4611686018427387904], "data_offsets": [0, 4]}})", 4),
       {"tensor 'w'", "overflows"}},
      {"missing data_offsets", rawFile(R"({"w": {"dtype": "F32", "shape": [1]}})", 4),
       {"tensor 'w'", "'data_offsets'"}},
      {"data_offsets wrong arity", rawFile(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4),
       {"tensor 'w'", "'data_offsets'"}},
      {"data_offsets negative", rawFile(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 4),
       {"tensor 'w'", "'data_offsets'"}},
      {"begin > end", rawFile(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 8),
       {"tensor 'w'", "[8, 4]", "begin > end"}},
      {"outside data", rawFile("{\"w\": {" + f32x4 + ", \"data_offsets\": [0, 16]}}", 12),
       {"tensor 'w'", "[0, 16]", "outside the data section (12 bytes)"}},
      {"size mismatch",
       rawFile(R"({"x.weight": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 60]}})", 64),
       {"tensor 'x.weight': shape [4, 4] x F32 is 64 bytes but its data_offsets span 60"}},
      {"overlap",
       rawFile("{\"a\": {" + f32x4 + ", \"data_offsets\": [0, 16]}, \"b\": {" + f32x4 +
                   ", \"data_offsets\": [8, 24]}}",
               24),
       {"'a' [0, 16]", "'b' [8, 24]", "overlap"}},
      {"metadata not an object", rawFile(R"({"__metadata__": [1]})"), {"'__metadata__'"}},
      {"metadata not strings", rawFile(R"({"__metadata__": {"format": 1}})"),
       {"'__metadata__'", "'format'", "not a string"}},
      {"newline in name stays one line",
       rawFile("{\"a\\nb\": {\"dtype\": \"F99\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4),
       {"tensor 'a\\x0ab'"}},
  };
  for (const BadCase &c : cases) {
    std::string msg = openError(dir, c.bytes);
    ASSERT_FALSE(msg.empty()) << c.what << ": opened";
    EXPECT_EQ(msg.rfind(dir.file("bad.safetensors") + ": ", 0), 0u) << c.what << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << c.what << ": " << msg;
    for (const char *e : c.expected)
      EXPECT_NE(msg.find(e), std::string::npos) << c.what << ": '" << e << "' not in: " << msg;
    // fromBuffer says the same with its name.
    auto m = SafeTensorsFile::fromBuffer("buf", c.bytes);
    ASSERT_FALSE(m.ok()) << c.what;
    EXPECT_EQ(m.status().message().rfind("buf: ", 0), 0u) << m.status().message();
  }
}

TEST(SafeTensors, GapsAndEmptyTensorsAreAllowed) {
  TempDir dir;
  std::string h = R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                      "b": {"dtype": "U8", "shape": [0], "data_offsets": [2, 2]},
                      "c": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})";
  std::string msg = openError(dir, rawFile(h + "   ", 16), "gap.safetensors");
  EXPECT_EQ(msg, "");
}

TEST(SafeTensors, OpenErrors) {
  TempDir dir;
  auto f = SafeTensorsFile::open(dir.file("missing.safetensors"));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(), dir.file("missing.safetensors") + ": No such file or directory");
  f = SafeTensorsFile::open(dir.path());
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("not a regular file"), std::string::npos);
}

namespace {
void writeShard(const std::string &path, const std::vector<std::string> &names) {
  SafeTensorsWriter w;
  for (const std::string &n : names) {
    float v[2] = {float(n.size()), 2.0f};
    w.add(n, DType::F32, {2}, v, sizeof v);
  }
  ASSERT_TRUE(w.write(path, {{"format", "pt"}}).isOk());
}
} // namespace

TEST(WeightTable, SingleFile) {
  TempDir dir;
  writeShard(dir.file("model.safetensors"), {"b", "a"});
  auto t = WeightTable::openDirectory(dir.path());
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->names(), (std::vector<std::string>{"a", "b"}));
  ASSERT_NE(t->find("a"), nullptr);
  EXPECT_EQ(t->find("a")->file, dir.file("model.safetensors"));
  EXPECT_EQ(t->find("c"), nullptr);
}

TEST(WeightTable, Sharded) {
  TempDir dir;
  writeShard(dir.file("model-00001-of-00002.safetensors"), {"layer.0.w", "embed"});
  writeShard(dir.file("model-00002-of-00002.safetensors"), {"layer.1.w", "lm_head"});
  kiln::test::writeText(dir.file("model.safetensors.index.json"), R"({
    "metadata": {"total_size": 32},
    "weight_map": {
      "embed": "model-00001-of-00002.safetensors",
      "layer.0.w": "model-00001-of-00002.safetensors",
      "layer.1.w": "model-00002-of-00002.safetensors",
      "lm_head": "model-00002-of-00002.safetensors"}})");
  auto t = WeightTable::openDirectory(dir.path() + "/");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->names(), (std::vector<std::string>{"embed", "layer.0.w", "layer.1.w", "lm_head"}));
  EXPECT_EQ(t->files().size(), 2u);
  const TensorInfo *w = t->find("lm_head");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->file, dir.file("model-00002-of-00002.safetensors"));
  float v[2];
  convertToF32(*w, v);
  EXPECT_EQ(v[0], 7.0f);
  // Moving the table keeps the TensorInfo pointers valid.
  WeightTable moved = std::move(t).value();
  EXPECT_EQ(moved.find("embed")->shape, (std::vector<int64_t>{2}));
}

// storeFloatsAs(F32) copies nothing: 16-bit tensors become widened views (data null) whose values are read from
// the source; the table's later conversions (to f16, transposed, dequantized) start from those values.
TEST(WeightTable, WidenedViewsCopyNothing) {
  TempDir dir;
  const size_t rows = 2, cols = 32;
  std::vector<uint16_t> halves(rows * cols), bf(rows * cols);
  for (size_t i = 0; i < halves.size(); ++i) {
    halves[i] = floatToHalf(0.37f * float(i) - 5.0f);
    bf[i] = floatToBf16(-0.11f * float(i) + 1.5f);
  }
  SafeTensorsWriter w;
  w.add("h", DType::F16, {int64_t(rows), int64_t(cols)}, halves.data(), halves.size() * 2);
  w.add("b", DType::BF16, {int64_t(rows), int64_t(cols)}, bf.data(), bf.size() * 2);
  float f[2] = {1.0f, -2.0f};
  w.add("f", DType::F32, {2}, f, sizeof f);
  ASSERT_TRUE(w.write(dir.file("model.safetensors")).isOk());
  auto t = WeightTable::openDirectory(dir.path());
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->storeFloatsAs(DType::F32), 2u);
  const TensorInfo *h = t->find("h");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->dtype, DType::F32);
  EXPECT_EQ(h->data, nullptr);
  EXPECT_EQ(h->nbytes, rows * cols * 4);
  ASSERT_NE(h->widenedFrom, nullptr);
  EXPECT_EQ(h->widenedFrom->dtype, DType::F16);
  std::vector<float> v(rows * cols);
  convertToF32(*h, v.data());
  for (size_t i = 0; i < v.size(); ++i)
    ASSERT_EQ(v[i], halfToFloat(halves[i])) << i;
  EXPECT_EQ(t->find("f")->widenedFrom, nullptr); // already f32: untouched
  // A widened tensor transposed holds its own values (no longer a view).
  ASSERT_TRUE(t->storeTransposed("h"));
  h = t->find("h");
  EXPECT_EQ(h->widenedFrom, nullptr);
  ASSERT_NE(h->data, nullptr);
  convertToF32(*h, v.data());
  EXPECT_EQ(v[1 * rows + 0], halfToFloat(halves[1])); // [cols, rows]: element (k = 1, r = 0)
  // Narrowed back to bf16 from the widened view: the source's bits again.
  ASSERT_TRUE(t->storeTensorAs("b", DType::BF16));
  EXPECT_EQ(t->find("b")->dtype, DType::BF16);
  ASSERT_TRUE(t->storeFloatsAs(DType::F32) == 1u); // b again (h and f are f32)
  ASSERT_TRUE(t->storeDequantized("b", QuantFormat::Q8_0));
  const TensorInfo *b = t->find("b");
  EXPECT_EQ(b->widenedFrom, nullptr);
  convertToF32(*b, v.data());
  for (size_t i = 0; i < v.size(); ++i) // q8_0 of these values: within half a step of the block's scale
    ASSERT_NEAR(v[i], bf16ToFloat(bf[i]), 0.05) << i;
}

TEST(WeightTable, ShardErrors) {
  {
    TempDir dir;
    writeShard(dir.file("s1.safetensors"), {"a"});
    kiln::test::writeText(dir.file("model.safetensors.index.json"),
                          R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})");
    auto t = WeightTable::openDirectory(dir.path());
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().message(), dir.file("model.safetensors.index.json") + ": names the shard " +
                                        dir.file("s2.safetensors") + ", which cannot be opened: No such file or directory");
  }
  {
    TempDir dir;
    writeShard(dir.file("s1.safetensors"), {"a"});
    kiln::test::writeText(dir.file("model.safetensors.index.json"),
                          R"({"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors"}})");
    auto t = WeightTable::openDirectory(dir.path());
    ASSERT_FALSE(t.ok());
    const std::string &m = t.status().message();
    EXPECT_EQ(m.rfind(dir.file("model.safetensors.index.json") + ": ", 0), 0u) << m;
    EXPECT_NE(m.find("tensor 'b' is mapped to 's1.safetensors' but that shard has no such tensor"),
              std::string::npos)
        << m;
  }
  {
    TempDir dir;
    writeShard(dir.file("s1.safetensors"), {"a", "b"});
    writeShard(dir.file("s2.safetensors"), {"b"});
    kiln::test::writeText(dir.file("model.safetensors.index.json"),
                          R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})");
    auto t = WeightTable::openDirectory(dir.path());
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("tensor 'b' is also in"), std::string::npos)
        << t.status().message();
  }
  {
    TempDir dir;
    kiln::test::writeText(dir.file("model.safetensors.index.json"), R"({"weight_map": [1]})");
    auto t = WeightTable::openDirectory(dir.path());
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("'weight_map'"), std::string::npos);
  }
  {
    TempDir dir;
    kiln::test::writeText(dir.file("model.safetensors.index.json"),
                          R"({"weight_map": {"a": "../escape.safetensors"}})");
    auto t = WeightTable::openDirectory(dir.path());
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("invalid shard path"), std::string::npos);
  }
  {
    TempDir dir;
    kiln::test::writeText(dir.file("model.safetensors.index.json"), "{nope");
    auto t = WeightTable::openDirectory(dir.path());
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("not valid JSON"), std::string::npos);
  }
  {
    TempDir dir;
    auto t = WeightTable::openDirectory(dir.path());
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().message(),
              dir.path() + ": no model.safetensors or model.safetensors.index.json");
    t = WeightTable::openDirectory(dir.file("absent"));
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().message(), dir.file("absent") + ": No such file or directory");
  }
}

TEST(WeightTable, ReferenceModels) {
  struct Case {
    const char *dir;
    const char *tensor;
    std::vector<int64_t> shape;
  } cases[] = {
      {"llama-tiny", "model.embed_tokens.weight", {512, 64}},
      {"gemma3-tiny", "model.embed_tokens.weight", {512, 64}},
      {"bert-tiny", "embeddings.word_embeddings.weight", {512, 64}},
  };
  for (const Case &c : cases) {
    std::string dir = kiln::test::sourceDir() + "/tests/data/" + c.dir;
    auto t = WeightTable::openDirectory(dir);
    ASSERT_TRUE(t.ok()) << t.status().message();
    EXPECT_GT(t->size(), 10u) << c.dir;
    const TensorInfo *w = t->find(c.tensor);
    ASSERT_NE(w, nullptr) << c.dir << " " << c.tensor;
    EXPECT_EQ(w->dtype, DType::F32);
    EXPECT_EQ(w->shape, c.shape);
    std::vector<float> v(size_t(w->numElements()));
    convertToF32(*w, v.data());
    bool allFinite = true, anyNonZero = false;
    for (float x : v) {
      allFinite &= std::isfinite(x);
      anyNonZero |= x != 0;
    }
    EXPECT_TRUE(allFinite && anyNonZero) << c.dir;
  }
}

TEST(WeightTable, EveryReferenceCaseOpens) {
  std::error_code ec;
  std::string root = kiln::test::sourceDir() + "/tests/data";
  int opened = 0;
  for (auto it = std::filesystem::directory_iterator(root, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string dir = it->path().string();
    if (!std::filesystem::exists(dir + "/model.safetensors"))
      continue;
    auto t = WeightTable::openDirectory(dir);
    ASSERT_TRUE(t.ok()) << t.status().message();
    EXPECT_GT(t->size(), 0u) << dir;
    ++opened;
    if (std::filesystem::exists(dir + "/reference.safetensors")) {
      auto r = SafeTensorsFile::open(dir + "/reference.safetensors");
      EXPECT_TRUE(r.ok()) << r.status().message();
    }
  }
  EXPECT_GE(opened, 3);
}
