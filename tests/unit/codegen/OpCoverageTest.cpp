//===- OpCoverageTest.cpp - every kiln op has a row in every backend's op table and a kernel case ===//
//
// Walks the operations the kiln dialect registers. Each must have an entry in the op table of the
// interpreter (interpreterOpEntries), the CPU backend (cpuOpEntries) and the SPIR-V backend (spirvOpEntries):
// a kernel, or an explicit reason it has none. And each must be run by a shared kernel case
// (tests/unit/common/KernelCases.h, on every backend against the interpreter) unless opsWithoutKernelCase()
// says why not. A new op that misses any of these fails here, naming the op and what it lacks.
//
//===----------------------------------------------------------------------===//
#include "KernelCases.h"

#include "kiln/codegen/CpuCodegen.h"
#include "kiln/codegen/SpirvCodegen.h"
#include "kiln/ir/Interpreter.h"
#include "kiln/ir/KilnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

namespace {

using kiln::test::KernelCase;

std::vector<std::string> dialectOps(mlir::MLIRContext &context) {
  context.loadDialect<kiln::ir::KilnDialect, mlir::func::FuncDialect>();
  std::vector<std::string> names;
  for (mlir::RegisteredOperationName op : context.getRegisteredOperationsByDialect("kiln"))
    names.push_back(op.getStringRef().str());
  return names;
}

/// Checks one backend's op table: every dialect op has an entry, and every entry is a dialect op.
void expectEntries(const std::string &backend, const std::map<std::string, std::string> &entries,
                   const std::vector<std::string> &ops) {
  for (const std::string &op : ops)
    EXPECT_TRUE(entries.count(op)) << op << " has no entry in the " << backend
                                   << " op table (a kernel, or the reason it has none)";
  std::set<std::string> known(ops.begin(), ops.end());
  for (const auto &[op, reason] : entries)
    EXPECT_TRUE(known.count(op)) << "the " << backend << " op table has an entry for " << op
                                 << ", which the kiln dialect does not register";
}

TEST(OpCoverage, TheDialectRegistersItsOps) {
  mlir::MLIRContext context;
  std::vector<std::string> ops = dialectOps(context);
  // A floor, so that an empty registry cannot pass the tests below.
  EXPECT_GE(ops.size(), 40u);
  for (const char *op : {"kiln.add", "kiln.compare", "kiln.attention", "kiln.add_rms_norm", "kiln.weight"})
    EXPECT_NE(std::find(ops.begin(), ops.end(), op), ops.end()) << op;
}

TEST(OpCoverage, InterpreterHasEveryOp) {
  mlir::MLIRContext context;
  std::map<std::string, std::string> entries = kiln::ir::interpreterOpEntries();
  expectEntries("interpreter", entries, dialectOps(context));
  // The interpreter is the oracle: it evaluates every op, none has a reason instead.
  for (const auto &[op, reason] : entries)
    EXPECT_EQ(reason, "") << op << " has no interpreter rule";
}

TEST(OpCoverage, CpuBackendHasEveryOp) {
  mlir::MLIRContext context;
  expectEntries("CPU", kiln::codegen::cpuOpEntries(), dialectOps(context));
}

TEST(OpCoverage, SpirvBackendHasEveryOp) {
  mlir::MLIRContext context;
  expectEntries("SPIR-V", kiln::codegen::spirvOpEntries(), dialectOps(context));
}

/// Every dialect op runs in a shared kernel case, or opsWithoutKernelCase() gives the reason.
TEST(OpCoverage, EveryOpHasAKernelCase) {
  mlir::MLIRContext context;
  std::vector<std::string> ops = dialectOps(context);
  std::map<std::string, std::string> usedBy; // op -> the first case that runs it
  for (const KernelCase &c : kiln::test::kernelCases()) {
    mlir::OwningOpRef<mlir::ModuleOp> module = mlir::parseSourceString<mlir::ModuleOp>(c.source, &context);
    ASSERT_TRUE(module) << "kernel case " << c.name << " does not parse";
    module->walk([&](mlir::Operation *op) { usedBy.insert({op->getName().getStringRef().str(), c.name}); });
  }
  const std::map<std::string, std::string> &exempt = kiln::test::opsWithoutKernelCase();
  for (const std::string &op : ops)
    EXPECT_TRUE(usedBy.count(op) || exempt.count(op))
        << op << " is in no shared kernel case (tests/unit/common/KernelCases.cpp) and has no reason in "
        << "opsWithoutKernelCase()";
  for (const auto &[op, reason] : exempt) {
    EXPECT_FALSE(reason.empty()) << op;
    EXPECT_NE(std::find(ops.begin(), ops.end(), op), ops.end()) << op << " is exempt but not a kiln op";
    EXPECT_FALSE(usedBy.count(op)) << op << " is exempt from the kernel cases, but case " << usedBy[op]
                                   << " runs it: drop the reason";
  }
}

} // namespace
