// What the passes tests share: the real test models (tests/data) built into their step functions, and a
// fixture that plans hand-written step functions.
#ifndef KILN_TESTS_UNIT_PASSES_PLANTESTUTIL_H
#define KILN_TESTS_UNIT_PASSES_PLANTESTUTIL_H

#include "kiln/frontend/SafeTensors.h"
#include "kiln/passes/MemoryPlan.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

namespace kiln::passes::test {

/// tests/data/NAME (a folder of the source tree).
std::string dataDir(const std::string &name);

/// A test model's module, its context and the weights it was built from (the interpreter reads them).
struct Model {
  std::unique_ptr<mlir::MLIRContext> context; // declared first: destroyed after the module
  mlir::OwningOpRef<mlir::ModuleOp> module;
  std::unique_ptr<WeightTable> weights;
  mlir::func::FuncOp step() { return module->lookupSymbol<mlir::func::FuncOp>("step"); }
};

/// tests/data/NAME built into its step function (`fused`: after the fusion passes). On an error the test
/// fails and the module is empty.
Model loadModel(const std::string &name, bool fused = false);

/// The memory plan of a loaded model's step function; an error when the model did not load.
StatusOr<MemoryPlan> planModel(Model &m, PlanOptions options);

inline uint64_t align64(uint64_t v) { return (v + 63) / 64 * 64; }

/// Plans hand-written modules holding a func.func @step, with the options the fixture was made with.
class HandPlanTest : public ::testing::Test {
protected:
  explicit HandPlanTest(PlanOptions options);
  /// The plan of `body`'s @step; a parse error fails the test (and is returned).
  StatusOr<MemoryPlan> plan(const std::string &body);

  PlanOptions options;
  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
};

} // namespace kiln::passes::test

#endif // KILN_TESTS_UNIT_PASSES_PLANTESTUTIL_H
