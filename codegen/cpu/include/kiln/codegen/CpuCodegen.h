//===- CpuCodegen.h - native kernels for the kiln ops of a step function -*- C++ -*-===//
//
// Every dispatched kiln op becomes one function of the kernel ABI (runtime/include/kiln/kernel_abi.h):
//   void symbol(void *const *buffers, const int64_t *symbols, int64_t begin, int64_t end)
//   void symbol_range(const int64_t *symbols, kiln_kernel_range *range)
// `buffers` are the op's operands then its result, row-major and contiguous, with the shapes of their
// types' #kiln.dims evaluated with `symbols`; [begin, end) is the part of the kernel's parallel loop
// (rows, query rows, output elements...) to compute, so that the runtime can split it over threads. All
// kernels of a step function go into one shared object.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_CPUCODEGEN_H
#define KILN_CODEGEN_CPUCODEGEN_H

#include "kiln/support/Quantize.h"
#include "kiln/support/Status.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/ArrayRef.h"

#include <cstdint>
#include <map>
#include <optional>
#include <functional>
#include <string>
#include <vector>

namespace kiln::codegen {

struct CpuCodegenOptions {
  /// "native" (the host CPU and its features) or an LLVM CPU name ("x86-64-v3", "skylake-avx512").
  std::string cpu = "native";
  /// When set: <dumpDir>/cpu-NN-<phase>.mlir after each lowering phase, kernels.ll and kernels.o.
  std::string dumpDir;
  /// When set (--dump-ir-after-all): the same modules, headed "// -----// IR Dump After cpu-NN-<phase>.mlir".
  std::function<void(const std::string &text)> irDump;
  int optLevel = 3;
};

/// How one dispatch's kernel addresses its buffers (operands, then the result), from the memory plan's
/// KV-cache placement. rowCapacity[i] > 0: buffer i is a strided view of a KV-cache storage laid out
/// [b, h, rowCapacity, d] (rank 4; its rows along axis 2 are rowCapacity apart per (batch, head); the
/// runtime passes the view's first row). Taken by kiln.attention (key, value), kiln.rope and
/// kiln.transpose (result) and kiln.concat (result); any other op with a view is an error.
/// appendInPlace (kiln.concat): operand 0 is already the result's first rows (the cache it appends to), so
/// only the other operands are copied.
/// elementType[i] (when the vector is that long and the type is set): buffer i holds this element type
/// instead of its IR type's, a 16-bit float weight whose convert to f32 the plan folded into the reader
/// (passes/DeviceWeights.h foldCpuWeightConverts): the kernel widens its loads.
/// quant[i] (when the vector is that long and the entry is set): buffer i is a block-quantized weight
/// (--weights q8_0|q4_0, support/Quantize.h's layout) standing for its IR type's f32 matrix: the transposed
/// weight of a kiln.matmul or the table of a kiln.gather.
struct KernelLayout {
  std::vector<int64_t> rowCapacity;
  bool appendInPlace = false;
  std::vector<mlir::Type> elementType;
  std::vector<std::optional<QuantFormat>> quant;
};

struct CpuKernelInfo {
  std::string symbol;    ///< exported function name in the shared object
  std::string op;        ///< e.g. "kiln.matmul"
  std::string signature; ///< the op's operand and result types
};

/// A CPU target as LLVM resolves it (what the artifact records of each kernel object).
struct CpuTargetInfo {
  std::string cpu;                   ///< the LLVM CPU name ("native": the host's, e.g. "znver4")
  std::vector<std::string> features; ///< the ISA features the target machine enables, sorted: those of its
                                     ///< features llvm::sys::getHostCPUFeatures can detect (no tuning flags)
};

/// `cpu` ("native" or an LLVM CPU name) resolved; an error when LLVM does not know it.
StatusOr<CpuTargetInfo> describeCpuTarget(const std::string &cpu);

struct CpuCode {
  CpuTargetInfo target;               ///< options.cpu resolved
  std::vector<uint8_t> sharedObject;
  std::vector<CpuKernelInfo> kernels; ///< kernels[i] is for dispatchOps[i]; identical ops share a symbol
};

/// One kernel per op of `dispatchOps` (kiln ops of `step`, in order), with the ABI of kernel_abi.h. The
/// symbol values are passed in the order of `symbolNames` (e.g. {"b", "p", "s"}). Returns the linked shared
/// object (linked with clang against OpenBLAS and libm), or a one-line error naming the op. `layouts` is
/// empty (every buffer row-major) or has one entry per op of `dispatchOps`.
StatusOr<CpuCode> generateCpuKernels(mlir::func::FuncOp step, llvm::ArrayRef<mlir::Operation *> dispatchOps,
                                     llvm::ArrayRef<std::string> symbolNames, const CpuCodegenOptions &options,
                                     llvm::ArrayRef<KernelLayout> layouts = {});

/// The CPU backend's op table: every kiln op name with a row -> "" (it has a kernel) or the reason it has none.
/// tests/unit/codegen/OpCoverageTest.cpp checks that every op of the dialect has an entry.
std::map<std::string, std::string> cpuOpEntries();

} // namespace kiln::codegen

#endif // KILN_CODEGEN_CPUCODEGEN_H
