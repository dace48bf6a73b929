//===- DType.cpp - the manifest's element types ---------------------------===//
#include "kiln/artifact/DType.h"

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

const char *dtypeShortName(DType dtype) {
  const DTypeInfo *d = find(dtype);
  return d ? d->shortName : "?";
}

const char *dtypeName(DType dtype) {
  const DTypeInfo *d = find(dtype);
  return d ? d->name : "unspecified";
}

} // namespace kiln::artifact
