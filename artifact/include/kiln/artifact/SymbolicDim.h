//===- SymbolicDim.h - a manifest Dim, decoded --------------------*- C++ -*-===//
//
// The one symbolic-dim type outside the compiler: constant + sum(coeff * value of symbol), where a symbol
// is its position in Manifest.symbols (the order kernels receive the values in). Buffer shapes, KV row
// offsets and Vulkan grid sizes are all decoded into it once, at load.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_ARTIFACT_SYMBOLICDIM_H
#define KILN_ARTIFACT_SYMBOLICDIM_H

#include "kiln/support/Status.h"
#include "kiln_artifact.pb.h"

#include <cstdint>
#include <vector>

namespace kiln::artifact {

struct SymbolicDim {
  struct Term {
    int symbol = 0; // index into Manifest.symbols
    int64_t coeff = 0;
    bool operator==(const Term &o) const { return symbol == o.symbol && coeff == o.coeff; }
  };
  int64_t constant = 0;
  std::vector<Term> terms; // one per symbol, sorted by symbol, no zero coefficients

  static SymbolicDim of(int64_t constant) {
    SymbolicDim d;
    d.constant = constant;
    return d;
  }
  bool isConstant() const { return terms.empty(); }
  /// The value for `values` (one per Manifest.symbols). Cannot overflow when every value lies in
  /// [0, max_value] and bound() succeeded for those maxima.
  int64_t eval(const int64_t *values) const {
    int64_t v = constant;
    for (const Term &t : terms)
      v += t.coeff * values[t.symbol];
    return v;
  }
  /// |constant| + sum(|coeff| * maxValues[symbol]): a bound on |eval| for values in [0, maxValues], and the
  /// maximum itself when no coefficient is negative. False when it does not fit in int64.
  bool bound(const std::vector<int64_t> &maxValues, int64_t &out) const;
  bool operator==(const SymbolicDim &o) const { return constant == o.constant && terms == o.terms; }
  bool operator!=(const SymbolicDim &o) const { return !(*this == o); }
};

/// Decodes `dim` over `symbols` (terms of one symbol are summed). Errors (no prefix): "undeclared symbol
/// 'q'", "the coefficients of 'p' overflow".
StatusOr<SymbolicDim> decodeDim(const Dim &dim, const google::protobuf::RepeatedPtrField<Symbol> &symbols);

} // namespace kiln::artifact

#endif // KILN_ARTIFACT_SYMBOLICDIM_H
