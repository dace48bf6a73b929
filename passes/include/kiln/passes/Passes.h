//===- Passes.h - kiln pass declarations (tablegen'd from Passes.td) -*- C++ -*-===//
#ifndef KILN_PASSES_PASSES_H
#define KILN_PASSES_PASSES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

#include <memory>

namespace kiln::passes {

#define GEN_PASS_DECL
#include "kiln/passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "kiln/passes/Passes.h.inc"

} // namespace kiln::passes

#endif // KILN_PASSES_PASSES_H
