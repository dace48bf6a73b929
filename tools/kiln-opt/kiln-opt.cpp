//===- kiln-opt.cpp - the kiln dialect and passes under MlirOptMain -------===//
#include "kiln/ir/KilnDialect.h"
#include "kiln/compiler/DeviceCatalog.h"
#include "kiln/passes/Fusion.h"
#include "kiln/passes/PlanPasses.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  kiln::passes::registerFusionPasses(); // every pass of Passes.td: kiln-fuse*, kiln-split-weights
  // kiln-partition, kiln-fold-device-weights, kiln-place-kv-cache, deciding with kiln compile's catalog.
  kiln::passes::registerPlanPasses(kiln::compiler::deviceKernelCatalog());
  mlir::DialectRegistry registry;
  registry.insert<kiln::ir::KilnDialect, mlir::func::FuncDialect, mlir::tensor::TensorDialect>();
  return mlir::asMainReturnCode(mlir::MlirOptMain(argc, argv, "kiln optimizer driver\n", registry));
}
