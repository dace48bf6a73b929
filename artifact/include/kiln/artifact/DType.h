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

namespace kiln::artifact {

/// Bytes per element of a manifest dtype (I1 is one byte); 0 for DTYPE_UNSPECIFIED / unknown.
size_t dtypeBytes(DType dtype);
/// "f32", "i64", ... ("?" for DTYPE_UNSPECIFIED / unknown).
const char *dtypeShortName(DType dtype);
/// "F32", "I64", ... as safetensors spells them ("unspecified" for DTYPE_UNSPECIFIED / unknown).
const char *dtypeName(DType dtype);

} // namespace kiln::artifact

#endif // KILN_ARTIFACT_DTYPE_H
