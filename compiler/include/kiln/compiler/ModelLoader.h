//===- ModelLoader.h - a model directory, imported -------------*- C++ -*-===//
#ifndef KILN_COMPILER_MODELLOADER_H
#define KILN_COMPILER_MODELLOADER_H

#include "kiln/frontend/ModelConfig.h"
#include "kiln/frontend/SafeTensors.h"
#include "kiln/support/Status.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

namespace kiln::compiler {

/// config.json + safetensors of MODEL_DIR imported into a kiln module (compile's import stage; kiln eval).
struct ImportedModel {
  ModelConfig config;
  WeightTable weights;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  mlir::func::FuncOp step() { return module->lookupSymbol<mlir::func::FuncOp>("step"); }
  std::string task() { return (*module)->getAttrOfType<mlir::StringAttr>("kiln.task").getValue().str(); }
};

/// --weights FMT (kiln compile / eval): f32, f16 or bf16; otherwise nullopt and `error` says what is accepted.
std::optional<DType> parseWeightsFormat(const std::string &text, std::string *error);

/// `storeWeightsAs` (--weights f32|f16|bf16): every float weight converted to that dtype before the model is
/// built (WeightTable::storeFloatsAs), so its kiln.weight ops, the artifact's bytes and kiln eval's values
/// are the converted ones. `converted` (optional) receives how many tensors were converted.
StatusOr<ImportedModel> importModel(mlir::MLIRContext &context, const std::string &dir,
                                    std::optional<DType> storeWeightsAs = std::nullopt, size_t *converted = nullptr);

} // namespace kiln::compiler

#endif // KILN_COMPILER_MODELLOADER_H
