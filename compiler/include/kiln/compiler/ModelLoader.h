//===- ModelLoader.h - a model directory, imported -------------*- C++ -*-===//
#ifndef KILN_COMPILER_MODELLOADER_H
#define KILN_COMPILER_MODELLOADER_H

#include "kiln/frontend/ModelConfig.h"
#include "kiln/frontend/SafeTensors.h"
#include "kiln/compiler/WeightsFormat.h"
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

/// What --weights did, for the import stage's report.
struct WeightsImport {
  size_t converted = 0;                   ///< float tensors converted (f32|f16|bf16; q formats: to f32)
  std::vector<std::string> quantized;     ///< matrices stored q8_0 / q4_0
  std::vector<std::string> keptF16;       ///< --keep-f16 matrices
  std::vector<std::string> notQuantized;  ///< "name (why)": 2-d weights left in f32
};

/// `format.floats` (--weights f32|f16|bf16): every float weight converted to that dtype before the model is
/// built (WeightTable::storeFloatsAs), so its kiln.weight ops, the artifact's bytes and kiln eval's values
/// are the converted ones. `format.quant` (q8_0|q4_0): every float weight converted to f32, the model built,
/// and every 2-d weight that only transposed matmuls (a Linear weight) and gathers read, with a last dim that
/// is a multiple of 32, marked `quant` on its kiln.weight ops (the artifact stores it quantized); with
/// `dequantize` (kiln eval) the table holds the values the quantized matrices stand for. Other 2-d weights
/// stay f32 (WeightsImport::notQuantized says why); --keep-f16 names that match no tensor are an error.
StatusOr<ImportedModel> importModel(mlir::MLIRContext &context, const std::string &dir,
                                    const WeightsFormat &format = {}, WeightsImport *summary = nullptr,
                                    bool dequantize = false);

} // namespace kiln::compiler

#endif // KILN_COMPILER_MODELLOADER_H
