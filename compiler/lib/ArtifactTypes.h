//===- ArtifactTypes.h - IR types and dims as the manifest spells them (compiler-internal) -*- C++ -*-===//
#ifndef KILN_COMPILER_ARTIFACTTYPES_H
#define KILN_COMPILER_ARTIFACTTYPES_H

#include "kiln/ir/SymShape.h"
#include "kiln/support/Status.h"
#include "kiln_artifact.pb.h"

#include "mlir/IR/Types.h"

namespace kiln::compiler {

/// A symbolic dim as a manifest Dim (constant + coefficient * symbol terms).
artifact::Dim toDim(const ir::SymExpr &e);

/// The artifact dtype of an element type; an error naming the type when it has none.
StatusOr<artifact::DType> toDType(mlir::Type t);

} // namespace kiln::compiler

#endif // KILN_COMPILER_ARTIFACTTYPES_H
