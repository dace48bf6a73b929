//===- SymbolicDim.cpp ----------------------------------------------------===//
#include "kiln/artifact/SymbolicDim.h"

#include <algorithm>
#include <climits>

namespace kiln::artifact {

bool SymbolicDim::bound(const std::vector<int64_t> &maxValues, int64_t &out) const {
  if (constant == INT64_MIN)
    return false;
  int64_t total = constant < 0 ? -constant : constant;
  for (const Term &t : terms) {
    if (t.coeff == INT64_MIN || t.symbol < 0 || size_t(t.symbol) >= maxValues.size() || maxValues[t.symbol] < 0)
      return false;
    int64_t term;
    if (__builtin_mul_overflow(t.coeff < 0 ? -t.coeff : t.coeff, maxValues[t.symbol], &term) ||
        __builtin_add_overflow(total, term, &total))
      return false;
  }
  out = total;
  return true;
}

StatusOr<SymbolicDim> decodeDim(const Dim &dim, const google::protobuf::RepeatedPtrField<Symbol> &symbols) {
  SymbolicDim d;
  d.constant = dim.constant();
  for (const Dim::Term &t : dim.terms()) {
    auto it = std::find_if(symbols.begin(), symbols.end(), [&](const Symbol &s) { return s.name() == t.symbol(); });
    if (it == symbols.end())
      return Status::error("undeclared symbol '" + t.symbol() + "'");
    const int index = int(it - symbols.begin());
    auto term = std::find_if(d.terms.begin(), d.terms.end(), [&](const SymbolicDim::Term &x) { return x.symbol == index; });
    if (term == d.terms.end())
      term = d.terms.insert(std::upper_bound(d.terms.begin(), d.terms.end(), index,
                                             [](int i, const SymbolicDim::Term &x) { return i < x.symbol; }),
                            SymbolicDim::Term{index, 0});
    if (__builtin_add_overflow(term->coeff, t.coeff(), &term->coeff))
      return Status::error("the coefficients of '" + t.symbol() + "' overflow");
  }
  d.terms.erase(std::remove_if(d.terms.begin(), d.terms.end(), [](const SymbolicDim::Term &t) { return t.coeff == 0; }),
                d.terms.end());
  return d;
}

} // namespace kiln::artifact
