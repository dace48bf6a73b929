//===- KernelCases.h - the kernel cases every backend runs against the interpreter -*- C++ -*-===//
//
// Each case is one step function holding many ops over the symbols b, p, s, the symbol values it runs at
// and how its inputs are made. tests/unit/codegen (CPU) and tests/unit/spirv (SPIR-V on lavapipe) each
// instantiate one parameterized test over kernelCases(): compile every dispatch op of the function, run it
// at each binding and compare every returned value with kiln::ir::Interpreter. A kernel added to one
// backend is thereby tested on both; tests/unit/codegen/OpCoverageTest.cpp fails for a dialect op that no
// case runs unless opsWithoutKernelCase() gives the reason.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TESTS_UNIT_COMMON_KERNELCASES_H
#define KILN_TESTS_UNIT_COMMON_KERNELCASES_H

#include "KernelTestUtil.h"

#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace kiln::test {

struct KernelCase {
  std::string name;   ///< the GoogleTest parameter name
  std::string source; ///< one func.func
  std::vector<Bindings> shapes;
  std::map<unsigned, Filler> fillers; ///< by argument index (else KernelTestUtil's defaults)
  double tolerance = 1e-5;            ///< f32 results, max |out - ref| / max |ref|
  /// Also on small workgroups (128 and 64 invocations) where a backend has variants for them (SPIR-V's
  /// split-key attention).
  bool smallWorkgroups = false;
};

const std::vector<KernelCase> &kernelCases();

/// Dialect ops that no kernel case runs, each with the reason.
const std::map<std::string, std::string> &opsWithoutKernelCase();

/// The default symbol values: s = 1, 3, 7, 13; p = 0 and p > 0; b = 1, 2, 3.
extern const std::vector<Bindings> kShapes;

std::string replaceAll(std::string s, const std::string &from, const std::string &to);
/// Type shorthands in test sources: !X = tensor<?x?x8xf32> over [b, s], !B, !S1, !M (i1), !H (f16),
/// !F (bf16), !I (i64), !J (i32).
std::string expand(std::string s);

/// GoogleTest prints a case by its name.
inline void PrintTo(const KernelCase &c, std::ostream *os) { *os << c.name; }
/// Names each instance of a test over kernelCases() by its case (INSTANTIATE_TEST_SUITE_P's name generator).
struct KernelCaseName {
  template <class ParamInfo> std::string operator()(const ParamInfo &info) const { return info.param.name; }
};

/// @q(x [b, s, K], ids [b, s]): x times a block-quantized weight "w" [N, K] of `format` (q8_0, q4_0),
/// transposed, and the rows of "w" that ids pick (kiln.gather): what the quantized-kernel tests of every
/// backend compile.
std::string quantMatmulGatherSource(const std::string &format, int64_t n, int64_t k);

} // namespace kiln::test

#endif // KILN_TESTS_UNIT_COMMON_KERNELCASES_H
