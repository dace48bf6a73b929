//===- KernelTestUtil.h - what the per-op kernel tests share (CPU and SPIR-V) -*- C++ -*-===//
//
// tests/unit/codegen/CpuCodegenTest.cpp and tests/unit/spirv/SpirvCodegenTest.cpp run every kernel of a
// step function on random inputs and compare each returned value with kiln::ir::Interpreter. This is the
// part that does not depend on the backend: element storage (f32, f16, bf16, i64, i32, i1), the buffers of
// a run, random inputs rounded to their element types, constants as buffers, and the comparison with the
// interpreter (floats by max |out - ref| / max |ref|, f16 / bf16 with their own bounds; integers and
// booleans exactly; NaN and inf must match).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TESTS_UNIT_COMMON_KERNELTESTUTIL_H
#define KILN_TESTS_UNIT_COMMON_KERNELTESTUTIL_H

#include "kiln/ir/Interpreter.h"
#include "kiln/ir/KilnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Types.h"
#include "llvm/ADT/DenseMap.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace kiln::test {

using Bindings = std::map<std::string, int64_t>;
/// The symbols of the test functions, in the order kernels receive them.
extern const std::vector<std::string> kSymbols;

// ---- storage of one element type ----
size_t elementSize(mlir::Type t);
void storeElement(mlir::Type t, double v, uint8_t *p);
double loadElement(mlir::Type t, const uint8_t *p);
/// Rounds a double to what the element type can hold (so the interpreter sees the kernel's inputs).
double roundTo(mlir::Type t, double v);

struct Buffer {
  std::vector<uint8_t> bytes;
  std::vector<int64_t> shape;
  mlir::Type type;
};

Buffer toBuffer(const ir::HostTensor &t, mlir::Type elem);
std::vector<double> fromBuffer(const Buffer &b, size_t n);
/// A result buffer of `type` at `bindings`, filled with 0xAB so that missed writes show.
Buffer garbageBuffer(mlir::Type type, const Bindings &bindings);
std::vector<int64_t> evalShape(mlir::Type type, const Bindings &bindings);
int64_t numElements(const std::vector<int64_t> &shape);

/// Fills argument `index` of the given shape; the default is uniform [-1, 1) for floats, [0, 10) for
/// integers and random 0/1 for i1.
using Filler = std::function<std::vector<double>(const std::vector<int64_t> &shape, const Bindings &, std::mt19937 &)>;
/// The same values at every binding (a frequency table).
Filler constant(std::vector<double> values);
/// RoPE's inv_freq: 1 / base^(2i / dim) for i < half.
std::vector<double> invFreq(int64_t half, int64_t dim, double base);
/// Positions [b, s]: token i of a chunk sits at p + i, batch row r `rowOffset` further on.
Filler positions(int64_t rowOffset);

/// The function's arguments at `bindings` (fillers by argument index, else the default), rounded to their
/// element types: as interpreter inputs (`args`) and as buffers (`values`).
void makeInputs(mlir::func::FuncOp func, const Bindings &bindings, const std::map<unsigned, Filler> &fillers,
                std::mt19937 &rng, std::vector<ir::HostTensor> &args, llvm::DenseMap<mlir::Value, Buffer> &values);

/// A kiln.constant's value as a buffer.
Buffer constantBuffer(ir::ConstantOp c, const Bindings &bindings);
/// Whether `op` is one no kernel runs: a kiln.constant (its value bound in `values` as a buffer) or the return.
bool runsNoKernel(mlir::Operation &op, const Bindings &bindings, llvm::DenseMap<mlir::Value, Buffer> &values);
/// One garbageBuffer per result of `op`.
std::vector<Buffer> resultBuffers(mlir::Operation &op, const Bindings &bindings);

/// Runs the interpreter on `args` and compares every value `func` returns with its buffer in `values`
/// (`tolerance` for f32, 1e-3 for f16, 8e-3 for bf16); `describe` names a result's producer for messages.
/// `worst` collects the largest relative error per "op -> type". `symbols`: the values of symbols no argument
/// binds (r), as the kernels got them.
void compareWithInterpreter(mlir::func::FuncOp func, const std::vector<ir::HostTensor> &args,
                            llvm::DenseMap<mlir::Value, Buffer> &values, double tolerance,
                            const std::function<std::string(mlir::Operation *)> &describe,
                            std::map<std::string, double> &worst, const Bindings &symbols = {});

std::string printedType(mlir::Type t);
/// "b=1 p=0 s=3 "
std::string describeBindings(const Bindings &bindings);
/// One "[ error    ] op -> type   max rel error X" line per entry of `worst`.
void printWorst(const std::map<std::string, double> &worst);

/// What a backend's kernel test fixture holds whatever the backend: the function under test (parse() it),
/// the worst error per "op -> type" (printed after each test) and the random generator of the inputs.
class KernelTest : public ::testing::Test {
protected:
  KernelTest();
  /// Parses `source` into `module` and its first function into `func`; false (the test failed) when it does
  /// not parse.
  bool parse(const std::string &source);
  void TearDown() override;

  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  mlir::func::FuncOp func;
  std::map<std::string, double> worst;
  std::mt19937 rng{20240607};
};

} // namespace kiln::test

#endif // KILN_TESTS_UNIT_COMMON_KERNELTESTUTIL_H
