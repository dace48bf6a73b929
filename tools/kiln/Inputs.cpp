//===- Inputs.cpp - input_ids / attention_mask of run and eval ---------------===//
#include "Inputs.h"

#include <cstring>

namespace kiln::cli {
namespace {

/// An integer [B, S] tensor (I64 or I32) as int64.
Status readIntMatrix(const SafeTensorsFile &file, const std::string &name, const std::string &path,
                     std::vector<int64_t> &out, std::vector<int64_t> &shape) {
  const TensorInfo *t = file.find(name);
  if (!t)
    return Status::error(path + ": no tensor '" + name + "'");
  if (t->dtype != DType::I64 && t->dtype != DType::I32)
    return Status::error(path + ": tensor '" + name + "' must be I64 (or I32) [batch, seq], got " +
                         dtypeName(t->dtype));
  if (t->shape.size() != 2 || t->shape[0] <= 0 || t->shape[1] <= 0) {
    std::string s;
    for (int64_t d : t->shape)
      s += (s.empty() ? "" : ", ") + std::to_string(d);
    return Status::error(path + ": tensor '" + name + "' must be [batch, seq] with both > 0, got [" + s + "]");
  }
  shape = t->shape;
  out.resize(size_t(t->numElements()));
  if (t->dtype == DType::I64) {
    std::memcpy(out.data(), t->data, out.size() * 8);
    return Status::ok();
  }
  for (size_t i = 0; i < out.size(); ++i) {
    int32_t v;
    std::memcpy(&v, t->data + 4 * i, 4);
    out[i] = v;
  }
  return Status::ok();
}

std::string element(const std::string &name, size_t i, int64_t seq) {
  return name + "[" + std::to_string(int64_t(i) / seq) + ", " + std::to_string(int64_t(i) % seq) + "]";
}

} // namespace

StatusOr<IdInputs> readIdInputs(const SafeTensorsFile &file, const std::string &path, bool causal,
                                int64_t vocabSize, const std::string &model) {
  IdInputs in;
  std::vector<int64_t> shape;
  if (Status s = readIntMatrix(file, "input_ids", path, in.ids, shape); !s)
    return s;
  in.batch = shape[0];
  in.seq = shape[1];
  for (size_t i = 0; i < in.ids.size(); ++i)
    if (in.ids[i] < 0 || in.ids[i] >= vocabSize)
      return Status::error(path + ": " + element("input_ids", i, in.seq) + " = " + std::to_string(in.ids[i]) +
                           " is outside the vocabulary [0, " + std::to_string(vocabSize) + ") of " + model);
  if (!file.find("attention_mask"))
    return in;
  std::vector<int64_t> maskShape;
  if (Status s = readIntMatrix(file, "attention_mask", path, in.mask, maskShape); !s)
    return s;
  if (maskShape != shape)
    return Status::error(path + ": attention_mask must have the shape of input_ids");
  for (size_t i = 0; i < in.mask.size(); ++i) {
    if (in.mask[i] != 0 && in.mask[i] != 1)
      return Status::error(path + ": " + element("attention_mask", i, in.seq) + " = " + std::to_string(in.mask[i]) +
                           " is not 0 or 1");
    if (causal && in.mask[i] != 1)
      return Status::error(path + ": " + element("attention_mask", i, in.seq) + " = 0, but " + model +
                           " is a causal LM, which takes no padding: drop attention_mask or make it all ones");
  }
  return in;
}

} // namespace kiln::cli
