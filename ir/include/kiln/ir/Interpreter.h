//===- Interpreter.h - reference interpreter of the kiln dialect -*- C++ -*-===//
//
// The oracle behind `kiln eval`: evaluates a func.func of kiln ops op by op on host tensors, every element
// as a double, every sum accumulated in double. Slow on purpose; simple enough to trust. Only
// `kiln.convert` rounds (to the precision of its result type), so a model that converts to f16 evaluates
// like an f16 model.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_IR_INTERPRETER_H
#define KILN_IR_INTERPRETER_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kiln::ir {

/// A host tensor: row-major, every element as double (token ids and booleans are exact in a double).
struct HostTensor {
  std::vector<int64_t> shape;
  std::vector<double> data;
  bool isInteger = false;

  int64_t numElements() const;
};

/// Supplies the data of `kiln.weight "name"` ops, as doubles, with its shape. Returns false and sets
/// `error` on failure.
using WeightLoader = std::function<bool(llvm::StringRef name, HostTensor &out, std::string &error)>;

class Interpreter {
public:
  /// Loaded weights are cached across runs (a chunked prompt calls run() repeatedly).
  explicit Interpreter(WeightLoader loader);

  /// Runs `func` on `args`. Binds the symbols of the argument types (#kiln.dims) from the argument shapes
  /// (a symbol bound twice to different values, a wrong rank or a wrong static dim is an error naming the
  /// argument by its `kiln.name` arg attribute if present, else its index, with expected and actual
  /// shape), evaluates op by op in double precision, checks each op's result shape against its type
  /// evaluated with the bindings, and returns the results. On failure returns false with a one-line
  /// message naming the op (its name and location). `symbols` binds the symbols no argument shape holds
  /// (e.g. `r`, the logits rows of a causal LM's step); a value the arguments contradict is an error.
  bool run(mlir::func::FuncOp func, llvm::ArrayRef<HostTensor> args, std::vector<HostTensor> &results,
           std::string &error, const std::map<std::string, int64_t> &symbols = {});

  /// Drops the cached weights (the next run reloads them through the loader).
  void clearWeightCache() { weights_.clear(); }

  /// A matmul against a block-quantized weight (kiln.weight `quant`) quantizes its lhs per block of 32 as the
  /// kernels do (quantizeActivationBlock) when it has at most this many rows (batch dims folded in). Default:
  /// any number (the CPU, whose int8 GEMV and GEMM both do); kQuantGemvMaxRows for Vulkan, whose prefill
  /// tiles take f32 activations.
  void setQuantizedActivationRows(int64_t maxRows) { quantizedActivationRows_ = maxRows; }

private:
  WeightLoader loader_;
  int64_t quantizedActivationRows_ = INT64_MAX;
  llvm::StringMap<std::shared_ptr<const HostTensor>> weights_;
};

/// The interpreter's op table: every kiln op name with a row -> "" (it has a rule), or the reason it has none.
/// tests/unit/codegen/OpCoverageTest.cpp checks that every op of the dialect has an entry.
std::map<std::string, std::string> interpreterOpEntries();

} // namespace kiln::ir

#endif // KILN_IR_INTERPRETER_H
