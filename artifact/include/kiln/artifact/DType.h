//===- DType.h - the manifest's element types -----------------*- C++ -*-===//
//
// The one table of manifest dtypes (kiln_artifact.proto DType): bytes per element and names. The writer's
// validation, the runtime and `kiln inspect` all read it.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_ARTIFACT_DTYPE_H
#define KILN_ARTIFACT_DTYPE_H

#include "kiln_artifact.pb.h"

#include <cstddef>
#include <cstdint>

namespace kiln::artifact {

/// Bytes per element of a manifest dtype (I1 is one byte); 0 for DTYPE_UNSPECIFIED / unknown and for the
/// block-quantized Q8_0 / Q4_0 (see weightDTypeBytes).
size_t dtypeBytes(DType dtype);
/// Q8_0 / Q4_0 (blocks of 32 with a scale each, WEIGHT buffers only).
bool isQuantized(DType dtype);
/// Bytes of a buffer of `dtype` holding `elements` elements whose last dim is `lastDim`: elements *
/// dtypeBytes, or for Q8_0 / Q4_0 the quants and scales of support/Quantize.h (lastDim a multiple of 32);
/// 0 when the dtype is unknown, the last dim does not fit the blocks, or the size overflows.
uint64_t storageBytes(DType dtype, uint64_t elements, uint64_t lastDim);
/// "f32", "i64", ... ("?" for DTYPE_UNSPECIFIED / unknown).
const char *dtypeShortName(DType dtype);
/// "F32", "I64", ... as safetensors spells them ("unspecified" for DTYPE_UNSPECIFIED / unknown).
const char *dtypeName(DType dtype);

} // namespace kiln::artifact

#endif // KILN_ARTIFACT_DTYPE_H
