//===- kiln-opt.cpp - the kiln dialect and passes under MlirOptMain -------===//
#include "kiln/ir/KilnDialect.h"
#include "kiln/compiler/DeviceCatalog.h"
#include "kiln/passes/Fusion.h"
#include "kiln/passes/PlanPasses.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
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
  // The CPU codegen's lowering phases (--dump-dir's cpu-NN-*.mlir, --dump-ir-after-all) are in these.
  registry.insert<mlir::arith::ArithDialect, mlir::cf::ControlFlowDialect, mlir::LLVM::LLVMDialect,
                  mlir::math::MathDialect, mlir::memref::MemRefDialect, mlir::scf::SCFDialect>();
  return mlir::asMainReturnCode(mlir::MlirOptMain(argc, argv, "kiln optimizer driver\n", registry));
}
