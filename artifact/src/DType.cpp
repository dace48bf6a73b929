//===- DType.cpp - the manifest's element types ---------------------------===//
#include "kiln/artifact/DType.h"

#include "kiln/support/Quantize.h"

namespace kiln::artifact {
namespace {

struct DTypeInfo {
  DType dtype;
  size_t bytes;
  const char *shortName;
  const char *name;
};

constexpr DTypeInfo kDTypes[] = {
    {F32, 4, "f32", "F32"}, {F16, 2, "f16", "F16"}, {BF16, 2, "bf16", "BF16"}, {I64, 8, "i64", "I64"},
    {I32, 4, "i32", "I32"}, {I8, 1, "i8", "I8"},    {U8, 1, "u8", "U8"},       {I1, 1, "i1", "I1"},
    {Q8_0, 0, "q8_0", "Q8_0"}, {Q4_0, 0, "q4_0", "Q4_0"},
};

const DTypeInfo *find(DType dtype) {
  for (const DTypeInfo &d : kDTypes)
    if (d.dtype == dtype)
      return &d;
  return nullptr;
}

} // namespace

size_t dtypeBytes(DType dtype) {
  const DTypeInfo *d = find(dtype);
  return d ? d->bytes : 0;
}

bool isQuantized(DType dtype) { return dtype == Q8_0 || dtype == Q4_0; }

uint64_t storageBytes(DType dtype, uint64_t elements, uint64_t lastDim) {
  if (isQuantized(dtype)) {
    if (lastDim == 0 || elements % lastDim != 0)
      return 0;
    return quantizedMatrixBytes(dtype == Q8_0 ? QuantFormat::Q8_0 : QuantFormat::Q4_0, elements / lastDim, lastDim);
  }
  uint64_t bytes;
  if (__builtin_mul_overflow(elements, uint64_t(dtypeBytes(dtype)), &bytes))
    return 0;
  return bytes;
}

const char *dtypeShortName(DType dtype) {
  const DTypeInfo *d = find(dtype);
  return d ? d->shortName : "?";
}

const char *dtypeName(DType dtype) {
  const DTypeInfo *d = find(dtype);
  return d ? d->name : "unspecified";
}

} // namespace kiln::artifact
