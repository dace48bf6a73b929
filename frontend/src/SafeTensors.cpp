#include "kiln/support/JsonError.h"
#include "kiln/frontend/SafeTensors.h"

#include "kiln/support/Half.h"
#include "kiln/support/Utf8.h"
#include "kiln/support/Util.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <dirent.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <numeric>
#include <set>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln {

using json = nlohmann::json;


static constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

size_t dtypeSize(DType dtype) {
  switch (dtype) {
  case DType::F32: return 4;
  case DType::F16: return 2;
  case DType::BF16: return 2;
  case DType::I64: return 8;
  case DType::I32: return 4;
  case DType::I8: return 1;
  case DType::U8: return 1;
  case DType::BOOL: return 1;
  }
  return 1;
}

const char *dtypeName(DType dtype) {
  switch (dtype) {
  case DType::F32: return "F32";
  case DType::F16: return "F16";
  case DType::BF16: return "BF16";
  case DType::I64: return "I64";
  case DType::I32: return "I32";
  case DType::I8: return "I8";
  case DType::U8: return "U8";
  case DType::BOOL: return "BOOL";
  }
  return "?";
}

std::optional<DType> parseDType(std::string_view name) {
  static constexpr DType all[] = {DType::F32, DType::F16, DType::BF16, DType::I64,
                                  DType::I32, DType::I8,  DType::U8,   DType::BOOL};
  for (DType d : all)
    if (name == dtypeName(d))
      return d;
  return std::nullopt;
}

int64_t TensorInfo::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n))
      return -1;
  return n;
}

static std::string shapeString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// ---------------------------------------------------------------------------------------------
// SafeTensorsFile

SafeTensorsFile::~SafeTensorsFile() {
  if (mapping_)
    ::munmap(mapping_, mappingSize_);
}

StatusOr<std::unique_ptr<SafeTensorsFile>> SafeTensorsFile::open(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Status::error(path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Status::error(path + ": " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::error(path + ": not a regular file");
  }
  std::unique_ptr<SafeTensorsFile> f(new SafeTensorsFile());
  f->path_ = path;
  f->size_ = size_t(st.st_size);
  if (f->size_ >= 8) {
    void *p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return Status::error(path + ": mmap failed: " + std::strerror(err));
    }
    f->mapping_ = p;
    f->mappingSize_ = f->size_;
    f->base_ = static_cast<const uint8_t *>(p);
  }
  ::close(fd);
  if (Status s = f->parse(); !s)
    return s;
  return f;
}

StatusOr<std::unique_ptr<SafeTensorsFile>> SafeTensorsFile::fromBuffer(std::string name,
                                                                       std::vector<uint8_t> bytes) {
  std::unique_ptr<SafeTensorsFile> f(new SafeTensorsFile());
  f->path_ = std::move(name);
  f->buffer_ = std::move(bytes);
  f->base_ = f->buffer_.data();
  f->size_ = f->buffer_.size();
  if (Status s = f->parse(); !s)
    return s;
  return f;
}

// A non-negative integer that fits int64 (nlohmann parses non-negative literals as unsigned).
static bool asNonNegative(const json &v, uint64_t &out) {
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    out = uint64_t(v.get<int64_t>());
    return true;
  }
  return false;
}

Status SafeTensorsFile::parse() {
  const std::string &P = path_;
  auto fail = [&](const std::string &msg) { return Status::error(P + ": " + msg); };
  if (size_ < 8)
    return fail("file is " + std::to_string(size_) +
                " bytes, too short for the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | base_[i];
  if (n == 0)
    return fail("header length is 0");
  if (n > kMaxHeaderBytes)
    return fail("header length " + std::to_string(n) + " exceeds the 100 MiB limit");
  if (n > size_ - 8)
    return fail("header length " + std::to_string(n) + " runs past the end of the file (" +
                std::to_string(size_) + " bytes)");
  const char *hbegin = reinterpret_cast<const char *>(base_ + 8);
  std::string_view header(hbegin, size_t(n));
  if (!support::isValidUtf8(header))
    return fail("header is not valid UTF-8");
  json j = json::parse(header.begin(), header.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return fail("header is not valid JSON");
  if (!j.is_object())
    return fail("header is not a JSON object");

  const uint8_t *dataStart = base_ + 8 + n;
  const uint64_t dataSize = size_ - 8 - n;
  struct Range {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Range> ranges;
  tensors_.reserve(j.size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string &key = it.key();
    const json &v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object())
        return fail("'__metadata__' must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          return fail("'__metadata__' entry " + support::quoteName(m.key()) + " is not a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string T = "tensor " + support::quoteName(key) + ": ";
    if (!v.is_object())
      return fail(T + "entry is not an object");

    auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string())
      return fail(T + "'dtype' is missing or not a string");
    const std::string &dtypeStr = dt->get_ref<const std::string &>();
    std::optional<DType> dtype = parseDType(dtypeStr);
    if (!dtype)
      return fail(T + "unknown dtype " + support::quoteName(dtypeStr));

    auto sh = v.find("shape");
    if (sh == v.end() || !sh->is_array())
      return fail(T + "'shape' is missing or not a list");
    std::vector<int64_t> shape;
    shape.reserve(sh->size());
    for (const json &d : *sh) {
      if (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0)
        return fail(T + "negative dimension " + std::to_string(d.get<int64_t>()) + " in 'shape'");
      uint64_t u;
      if (!asNonNegative(d, u))
        return fail(T + "'shape' must be a list of integers");
      if (u > uint64_t(INT64_MAX))
        return fail(T + "dimension " + std::to_string(u) + " in 'shape' is too large");
      shape.push_back(int64_t(u));
    }
    int64_t numel = 1;
    for (int64_t d : shape)
      if (__builtin_mul_overflow(numel, d, &numel))
        return fail(T + "the element count of shape " + shapeString(shape) + " overflows");
    uint64_t nbytes;
    if (__builtin_mul_overflow(uint64_t(numel), uint64_t(dtypeSize(*dtype)), &nbytes))
      return fail(T + "the byte size of shape " + shapeString(shape) + " x " + dtypeName(*dtype) +
                  " overflows");

    auto off = v.find("data_offsets");
    uint64_t begin = 0, end = 0;
    if (off == v.end() || !off->is_array() || off->size() != 2 ||
        !asNonNegative((*off)[0], begin) || !asNonNegative((*off)[1], end))
      return fail(T + "'data_offsets' must be [begin, end] with non-negative integers");
    const std::string offStr = "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
    if (begin > end)
      return fail(T + "data_offsets " + offStr + " have begin > end");
    if (end > dataSize)
      return fail(T + "data_offsets " + offStr + " lie outside the data section (" +
                  std::to_string(dataSize) + " bytes)");
    if (end - begin != nbytes)
      return fail(T + "shape " + shapeString(shape) + " x " + dtypeName(*dtype) + " is " +
                  std::to_string(nbytes) + " bytes but its data_offsets span " +
                  std::to_string(end - begin));
    TensorInfo info;
    info.name = key;
    info.dtype = *dtype;
    info.shape = std::move(shape);
    info.data = dataStart + begin;
    info.nbytes = size_t(nbytes);
    info.file = path_;
    if (begin != end)
      ranges.push_back({begin, end, tensors_.size()});
    tensors_.push_back(std::move(info));
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range &a, const Range &b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < ranges.size(); ++i) {
    const Range &a = ranges[i - 1], &b = ranges[i];
    if (b.begin < a.end)
      return fail("tensors " + support::quoteName(tensors_[a.index].name) + " [" + std::to_string(a.begin) +
                  ", " + std::to_string(a.end) + "] and " + support::quoteName(tensors_[b.index].name) + " [" +
                  std::to_string(b.begin) + ", " + std::to_string(b.end) + "] overlap");
  }
  // nlohmann's object is a std::map: tensors_ is already sorted by name.
  return Status::ok();
}

const TensorInfo *SafeTensorsFile::find(std::string_view name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const TensorInfo &t, std::string_view n) { return t.name < n; });
  if (it != tensors_.end() && it->name == name)
    return &*it;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// WeightTable

static std::string joinPath(const std::string &dir, const std::string &name) {
  if (dir.empty())
    return name;
  if (dir.back() == '/')
    return dir + name;
  return dir + "/" + name;
}

static bool isSafeShardName(const std::string &s) {
  if (s.empty() || s[0] == '/' || s.find('\0') != std::string::npos)
    return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t slash = s.find('/', start);
    std::string_view part(s.data() + start,
                          (slash == std::string::npos ? s.size() : slash) - start);
    if (part == ".." || part.empty())
      return false;
    if (slash == std::string::npos)
      break;
    start = slash + 1;
  }
  return true;
}

namespace {
bool isFloatDType(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16; }
} // namespace

size_t WeightTable::storeFloatsAs(DType dtype) {
  if (!isFloatDType(dtype))
    return 0;
  size_t count = 0;
  for (auto &[name, info] : byName_)
    if (info->dtype != dtype && storeTensorAs(name, dtype))
      ++count;
  return count;
}

bool WeightTable::replaceF32Matrix(std::string_view name, bool transposed, const MatrixMaker &make) {
  auto it = byName_.find(name);
  if (it == byName_.end() || it->second->dtype != DType::F32 || it->second->shape.size() != 2)
    return false;
  const TensorInfo &info = *it->second;
  const uint64_t rows = uint64_t(info.shape[0]), cols = uint64_t(info.shape[1]);
  std::vector<float> values(rows * cols);
  convertToF32(info, values.data());
  auto c = std::make_unique<ConvertedTensor>();
  c->info = info;
  if (transposed)
    c->info.shape = {info.shape[1], info.shape[0]};
  c->bytes.resize(rows * cols * 4);
  if (!make(values.data(), rows, cols, reinterpret_cast<float *>(c->bytes.data())))
    return false;
  c->info.data = c->bytes.data();
  c->info.widenedFrom = nullptr; // the copy holds its values
  c->info.nbytes = c->bytes.size();
  it->second = &c->info;
  converted_.push_back(std::move(c));
  return true;
}

bool WeightTable::storeDequantized(std::string_view name, QuantFormat format) {
  return replaceF32Matrix(name, false, [format](const float *values, uint64_t rows, uint64_t cols, float *out) {
    std::vector<uint8_t> quantized(quantizedMatrixBytes(format, rows, cols));
    if (quantized.empty())
      return false;
    quantizeMatrix(format, values, rows, cols, quantized.data());
    dequantizeMatrix(format, quantized.data(), rows, cols, out);
    return true;
  });
}

bool WeightTable::storeTransposed(std::string_view name) {
  return replaceF32Matrix(name, true, [](const float *values, uint64_t rows, uint64_t cols, float *out) {
    for (uint64_t r = 0; r < rows; ++r)
      for (uint64_t k = 0; k < cols; ++k)
        out[k * rows + r] = values[r * cols + k];
    return true;
  });
}

bool WeightTable::storeTensorAs(std::string_view tensorName, DType dtype) {
  auto it = byName_.find(tensorName);
  if (it == byName_.end() || !isFloatDType(dtype) || !isFloatDType(it->second->dtype))
    return false;
  const TensorInfo *&info = it->second;
  if (info->dtype == dtype)
    return true;
  if (dtype == DType::F32) { // widening is exact: a view read through the source (TensorInfo::widenedFrom)
    auto c = std::make_unique<ConvertedTensor>();
    c->info = *info;
    c->info.dtype = DType::F32;
    c->info.data = nullptr;
    c->info.nbytes = size_t(info->numElements()) * 4;
    c->info.widenedFrom = info->widenedFrom ? info->widenedFrom : info;
    info = &c->info;
    converted_.push_back(std::move(c));
    return true;
  }
  {
    auto c = std::make_unique<ConvertedTensor>();
    c->info = *info;
    const size_t n = size_t(info->numElements());
    std::vector<float> values(n);
    convertToF32(*info, values.data());
    c->bytes.resize(n * dtypeSize(dtype));
    if (dtype == DType::F32) {
      std::memcpy(c->bytes.data(), values.data(), c->bytes.size());
    } else {
      std::vector<uint16_t> halves(n);
      for (size_t k = 0; k < n; ++k)
        halves[k] = dtype == DType::F16 ? floatToHalf(values[k]) : floatToBf16(values[k]);
      std::memcpy(c->bytes.data(), halves.data(), c->bytes.size());
    }
    c->info.dtype = dtype;
    c->info.data = c->bytes.data();
    c->info.widenedFrom = nullptr; // the copy holds its values
    c->info.nbytes = c->bytes.size();
    info = &c->info;
    converted_.push_back(std::move(c));
  }
  return true;
}

/// "; pytorch_model.bin is not read ..." when `dir` holds weights in a format kiln does not read, else "".
static std::string otherWeightFormats(const std::string &dir) {
  DIR *d = ::opendir(dir.c_str());
  if (!d)
    return "";
  std::string found;
  auto endsWith = [](const std::string &s, const char *suffix) {
    const size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
  };
  while (const dirent *e = ::readdir(d)) {
    const std::string name = e->d_name;
    for (const char *suffix : {".bin", ".pt", ".pth", ".ckpt", ".gguf"})
      if (found.empty() && endsWith(name, suffix))
        found = name;
  }
  ::closedir(d);
  if (found.empty())
    return "";
  return "; " + found + " is not read (PyTorch pickles and GGUF are not kiln inputs): convert the model to " +
         "safetensors, e.g. with transformers' save_pretrained(DIR, safe_serialization=True)";
}

StatusOr<WeightTable> WeightTable::openDirectory(const std::string &dir) {
  WeightTable table;
  const std::string single = joinPath(dir, "model.safetensors");
  const std::string indexPath = joinPath(dir, "model.safetensors.index.json");
  struct stat st;
  if (::stat(single.c_str(), &st) == 0) {
    auto f = SafeTensorsFile::open(single);
    if (!f.ok())
      return f.status();
    table.files_.push_back(std::move(*f));
  } else if (::stat(indexPath.c_str(), &st) == 0) {
    std::string text;
    if (Status s = support::readFile(indexPath, text, kMaxHeaderBytes); !s)
      return s;
    auto fail = [&](const std::string &msg) { return Status::error(indexPath + ": " + msg); };
    json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded())
      return fail(support::jsonSyntaxError(text));
    if (!j.is_object())
      return fail("not a JSON object");
    auto wm = j.find("weight_map");
    if (wm == j.end() || !wm->is_object())
      return fail("'weight_map' must be an object mapping tensor names to shard files");
    if (wm->empty())
      return fail("'weight_map' lists no tensors");
    std::map<std::string, size_t> shardIndex; // shard file name -> files_ index
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string())
        return fail("'weight_map' entry " + support::quoteName(it.key()) + " is not a string");
      const std::string &shard = it.value().get_ref<const std::string &>();
      if (!isSafeShardName(shard))
        return fail("tensor " + support::quoteName(it.key()) + " is mapped to an invalid shard path " +
                    support::quoteName(shard));
      shardIndex.emplace(shard, 0);
    }
    for (auto &[shard, idx] : shardIndex) {
      if (::stat(joinPath(dir, shard).c_str(), &st) != 0)
        return fail("names the shard " + joinPath(dir, shard) + ", which cannot be opened: " + std::strerror(errno));
      auto f = SafeTensorsFile::open(joinPath(dir, shard));
      if (!f.ok())
        return f.status();
      idx = table.files_.size();
      table.files_.push_back(std::move(*f));
    }
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      const std::string &shard = it.value().get_ref<const std::string &>();
      const SafeTensorsFile &file = *table.files_[shardIndex[shard]];
      if (!file.find(it.key()))
        return fail("tensor " + support::quoteName(it.key()) + " is mapped to " + support::quoteName(shard) +
                    " but that shard has no such tensor");
    }
  } else {
    if (::stat(dir.c_str(), &st) != 0)
      return Status::error(dir + ": " + std::strerror(errno));
    if (!S_ISDIR(st.st_mode))
      return Status::error(dir + ": not a directory");
    return Status::error(dir + ": no model.safetensors or model.safetensors.index.json" + otherWeightFormats(dir));
  }
  for (const auto &file : table.files_) {
    for (const TensorInfo &t : file->tensors()) {
      auto [it, inserted] = table.byName_.emplace(t.name, &t);
      if (!inserted)
        return Status::error(file->path() + ": tensor " + support::quoteName(t.name) + " is also in " +
                             it->second->file);
    }
  }
  return table;
}

const TensorInfo *WeightTable::find(std::string_view name) const {
  auto it = byName_.find(name);
  return it == byName_.end() ? nullptr : it->second;
}

std::vector<std::string> WeightTable::names() const {
  std::vector<std::string> out;
  out.reserve(byName_.size());
  for (const auto &kv : byName_)
    out.push_back(kv.first);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Conversions

template <class Out> static void convertTo(const TensorInfo &t, Out *out) {
  if (t.widenedFrom)
    return convertTo(*t.widenedFrom, out);
  int64_t numel = t.numElements();
  if (numel <= 0 || !t.data)
    return;
  size_t n = std::min<size_t>(size_t(numel), t.nbytes / dtypeSize(t.dtype));
  const uint8_t *p = t.data;
  auto load = [p](size_t i, auto &v) { std::memcpy(&v, p + i * sizeof(v), sizeof(v)); };
  switch (t.dtype) {
  case DType::F32:
    for (size_t i = 0; i < n; ++i) { float v; load(i, v); out[i] = Out(v); }
    break;
  case DType::F16:
    for (size_t i = 0; i < n; ++i) { uint16_t v; load(i, v); out[i] = Out(halfToFloat(v)); }
    break;
  case DType::BF16:
    for (size_t i = 0; i < n; ++i) { uint16_t v; load(i, v); out[i] = Out(bf16ToFloat(v)); }
    break;
  case DType::I64:
    for (size_t i = 0; i < n; ++i) { int64_t v; load(i, v); out[i] = Out(v); }
    break;
  case DType::I32:
    for (size_t i = 0; i < n; ++i) { int32_t v; load(i, v); out[i] = Out(v); }
    break;
  case DType::I8:
    for (size_t i = 0; i < n; ++i) out[i] = Out(int8_t(p[i]));
    break;
  case DType::U8:
    for (size_t i = 0; i < n; ++i) out[i] = Out(p[i]);
    break;
  case DType::BOOL:
    for (size_t i = 0; i < n; ++i) out[i] = p[i] ? Out(1) : Out(0);
    break;
  }
}

void convertToF32(const TensorInfo &t, float *out) { convertTo(t, out); }
void convertToF64(const TensorInfo &t, double *out) { convertTo(t, out); }

// ---------------------------------------------------------------------------------------------
// SafeTensorsWriter

void SafeTensorsWriter::add(std::string name, DType dtype, std::vector<int64_t> shape,
                            const void *data, size_t nbytes) {
  Entry e{std::move(name), dtype, std::move(shape), {}, nbytes};
  if (data && nbytes) {
    const uint8_t *p = static_cast<const uint8_t *>(data);
    e.bytes.assign(p, p + nbytes);
  }
  entries_.push_back(std::move(e));
}

StatusOr<std::vector<uint8_t>>
SafeTensorsWriter::serialize(const std::map<std::string, std::string> &metadata,
                             const std::string &P) const {
  auto fail = [&](const std::string &msg) { return Status::error(P + ": " + msg); };
  std::set<std::string_view> seen;
  for (const Entry &e : entries_) {
    const std::string T = "tensor " + support::quoteName(e.name) + ": ";
    if (!support::isValidUtf8(e.name))
      return fail(T + "name is not valid UTF-8");
    if (e.name == "__metadata__")
      return fail(T + "reserved name");
    if (!seen.insert(e.name).second)
      return fail(T + "added twice");
    TensorInfo probe;
    probe.shape = e.shape;
    int64_t numel = probe.numElements();
    uint64_t expected;
    if (numel < 0 ||
        __builtin_mul_overflow(uint64_t(numel), uint64_t(dtypeSize(e.dtype)), &expected))
      return fail(T + "invalid shape " + shapeString(e.shape));
    if (expected != e.declaredBytes)
      return fail(T + "shape " + shapeString(e.shape) + " x " + dtypeName(e.dtype) + " is " +
                  std::to_string(expected) + " bytes but " + std::to_string(e.declaredBytes) +
                  " were given");
    if (e.bytes.size() != e.declaredBytes)
      return fail(T + "no data given");
  }
  for (const auto &[k, v] : metadata)
    if (!support::isValidUtf8(k) || !support::isValidUtf8(v))
      return fail("metadata entry " + support::quoteName(k) + " is not valid UTF-8");

  std::vector<size_t> order(entries_.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    size_t sa = dtypeSize(entries_[a].dtype), sb = dtypeSize(entries_[b].dtype);
    return sa != sb ? sa > sb : entries_[a].name < entries_[b].name;
  });
  json header = json::object();
  if (!metadata.empty()) {
    json m = json::object();
    for (const auto &[k, v] : metadata)
      m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  uint64_t offset = 0;
  for (size_t i : order) {
    const Entry &e = entries_[i];
    json t = json::object();
    t["dtype"] = dtypeName(e.dtype);
    t["shape"] = e.shape;
    t["data_offsets"] = json::array({offset, offset + e.bytes.size()});
    header[e.name] = std::move(t);
    offset += e.bytes.size();
  }
  std::string h = header.dump(-1, ' ', false, json::error_handler_t::replace);
  while ((8 + h.size()) % 8)
    h += ' ';
  std::vector<uint8_t> out;
  out.reserve(8 + h.size() + offset);
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i)
    out.push_back(uint8_t(n >> (8 * i)));
  out.insert(out.end(), h.begin(), h.end());
  for (size_t i : order)
    out.insert(out.end(), entries_[i].bytes.begin(), entries_[i].bytes.end());
  return out;
}

Status SafeTensorsWriter::write(const std::string &path,
                                const std::map<std::string, std::string> &metadata) const {
  auto bytes = serialize(metadata, path);
  if (!bytes.ok())
    return bytes.status();
  return support::writeFile(path, bytes->data(), bytes->size());
}

} // namespace kiln
