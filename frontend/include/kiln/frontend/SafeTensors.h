// Reading and writing safetensors files (https://github.com/huggingface/safetensors).
// Files are mmap'ed read-only and the header is fully validated on open: every error is a
// one-line Status message starting with the file path.
#pragma once

#include "kiln/support/Quantize.h"
#include "kiln/support/Status.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

enum class DType { F32, F16, BF16, I64, I32, I8, U8, BOOL };

size_t dtypeSize(DType dtype);
const char *dtypeName(DType dtype); // "F32", "F16", "BF16", "I64", "I32", "I8", "U8", "BOOL"
std::optional<DType> parseDType(std::string_view name);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr; // into the file's mapping; valid while the file lives
  size_t nbytes = 0;
  std::string file; // path of the file holding it
  /// A 16-bit tensor read as f32 (WeightTable::storeFloatsAs): `data` is null and the values are widened from
  /// this source whenever they are read (convertToF32, the artifact writer), so that no f32 copy of the
  /// checkpoint is ever held (widening is exact: the same values as a copy).
  const TensorInfo *widenedFrom = nullptr;
  int64_t numElements() const;
};

class SafeTensorsFile {
public:
  static StatusOr<std::unique_ptr<SafeTensorsFile>> open(const std::string &path);
  // Parses an in-memory file; `name` stands for the path in messages.
  static StatusOr<std::unique_ptr<SafeTensorsFile>> fromBuffer(std::string name,
                                                               std::vector<uint8_t> bytes);
  ~SafeTensorsFile();
  SafeTensorsFile(const SafeTensorsFile &) = delete;
  SafeTensorsFile &operator=(const SafeTensorsFile &) = delete;

  const std::vector<TensorInfo> &tensors() const { return tensors_; } // sorted by name
  const TensorInfo *find(std::string_view name) const;
  const std::map<std::string, std::string> &metadata() const { return metadata_; }
  const std::string &path() const { return path_; }

private:
  SafeTensorsFile() = default;
  Status parse();

  std::string path_;
  const uint8_t *base_ = nullptr;
  size_t size_ = 0;
  void *mapping_ = nullptr; // non-null when mmap'ed
  size_t mappingSize_ = 0;
  std::vector<uint8_t> buffer_; // backing store of fromBuffer
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a model directory: DIR/model.safetensors, or the shards listed by
// DIR/model.safetensors.index.json ({"metadata": {...}, "weight_map": {tensor: shard}}).
class WeightTable {
public:
  static StatusOr<WeightTable> openDirectory(const std::string &dir);
  const TensorInfo *find(std::string_view name) const;
  std::vector<std::string> names() const; // sorted
  const std::vector<std::unique_ptr<SafeTensorsFile>> &files() const { return files_; }
  size_t size() const { return byName_.size(); }
  /// Every F32 / F16 / BF16 tensor stored as `dtype` (F32, F16 or BF16; rounded to nearest even): the table
  /// holds the converted copies and find() returns them, so the model built from it, the weights written
  /// and the interpreter's values all see one 16-bit (or f32) checkpoint (kiln compile / eval --weights).
  /// To F32 nothing is copied: the tensors are widened views (TensorInfo::widenedFrom).
  /// Other dtypes stay. Returns how many tensors were converted.
  size_t storeFloatsAs(DType dtype);
  /// The same for one float tensor (--keep-f16): false when `name` is not a float tensor of the table.
  bool storeTensorAs(std::string_view name, DType dtype);
  /// The f32 matrix `name` [rows, cols] (cols a multiple of 32) replaced by the values its q8_0 / q4_0
  /// quantization stands for (support/Quantize.h): kiln eval --weights q8_0|q4_0 computes with them.
  /// False when `name` is not such a matrix.
  bool storeDequantized(std::string_view name, QuantFormat format);
  /// The f32 matrix `name` [rows, cols] replaced by its transpose [cols, rows] (a Conv1D weight [in, out]
  /// quantized along `in`, read as a transposed matmul weight). False when `name` is not an f32 matrix.
  bool storeTransposed(std::string_view name);

  WeightTable(WeightTable &&) = default;
  WeightTable &operator=(WeightTable &&) = default;

private:
  WeightTable() = default;
  /// The f32 matrix `name` [rows, cols] replaced by `make`'s values (written to `out`, rows x cols floats;
  /// shape [cols, rows] when `transposed`). False when `name` is not an f32 matrix or `make` returns false.
  using MatrixMaker = std::function<bool(const float *values, uint64_t rows, uint64_t cols, float *out)>;
  bool replaceF32Matrix(std::string_view name, bool transposed, const MatrixMaker &make);
  std::vector<std::unique_ptr<SafeTensorsFile>> files_;
  std::map<std::string, const TensorInfo *, std::less<>> byName_;
  struct ConvertedTensor {
    TensorInfo info;
    std::vector<uint8_t> bytes;
  };
  std::vector<std::unique_ptr<ConvertedTensor>> converted_; // storeFloatsAs's copies
};

// Converts a tensor of any dtype to float / double (BOOL -> 0/1). `out` holds numElements().
void convertToF32(const TensorInfo &t, float *out);
void convertToF64(const TensorInfo &t, double *out);

// Writes safetensors files as Hugging Face does: header JSON keys sorted by name, padded with
// spaces so that the data section starts 8-byte aligned; data contiguous, ordered by element
// size (largest first) then name, so every tensor is aligned to its element size.
class SafeTensorsWriter {
public:
  // Copies the data. nbytes must be numElements * dtypeSize (else write() fails).
  void add(std::string name, DType dtype, std::vector<int64_t> shape, const void *data,
           size_t nbytes);
  Status write(const std::string &path,
               const std::map<std::string, std::string> &metadata = {}) const;
  // The whole file in memory (for fromBuffer and fuzz seeds).
  StatusOr<std::vector<uint8_t>> serialize(const std::map<std::string, std::string> &metadata = {},
                                           const std::string &nameForMessages = "safetensors") const;

private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
    size_t declaredBytes;
  };
  std::vector<Entry> entries_;
};

} // namespace kiln
