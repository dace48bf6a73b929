//===- ShapeInference.cpp - symbolic shape rules --------------------------===//
#include "kiln/ir/ShapeInference.h"

#include <algorithm>

using namespace mlir;

namespace kiln::ir {

FailureOr<int64_t> normalizeAxis(int64_t axis, int64_t rank, std::string &error) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    error = "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank);
    return failure();
  }
  return a;
}

FailureOr<SymShape> inferBroadcast(llvm::ArrayRef<SymShape> shapes, std::string &error) {
  size_t rank = 0;
  for (const SymShape &s : shapes)
    rank = std::max(rank, s.size());
  SymShape out(rank, SymExpr::constant(1));
  for (size_t i = 0; i < rank; ++i) {
    // Dim i counted from the right in every operand.
    std::optional<SymExpr> dim;
    for (const SymShape &s : shapes) {
      if (i >= s.size())
        continue;
      const SymExpr &d = s[s.size() - 1 - i];
      if (d.isOne())
        continue;
      if (!dim) {
        dim = d;
      } else if (*dim != d) {
        std::string list;
        for (const SymShape &t : shapes)
          list += (list.empty() ? "" : " and ") + formatShape(t);
        error = "cannot broadcast " + list + ": dim " + std::to_string(rank - 1 - i) + " is " +
                dim->str() + " in one and " + d.str() + " in the other";
        if (!dim->isConstant() || !d.isConstant())
          error += " (they differ for some values of the symbols)";
        return failure();
      }
    }
    out[rank - 1 - i] = dim ? *dim : SymExpr::constant(1);
  }
  return out;
}

LogicalResult checkBroadcastTo(const SymShape &from, const SymShape &to, std::string &error) {
  if (from.size() > to.size()) {
    error = "cannot broadcast " + formatShape(from) + " to " + formatShape(to) + ": rank " +
            std::to_string(from.size()) + " is larger than " + std::to_string(to.size());
    return failure();
  }
  for (size_t i = 0; i < from.size(); ++i) {
    const SymExpr &f = from[from.size() - 1 - i];
    const SymExpr &t = to[to.size() - 1 - i];
    if (f.isOne() || f == t)
      continue;
    error = "cannot broadcast " + formatShape(from) + " to " + formatShape(to) + ": dim " +
            std::to_string(to.size() - 1 - i) + " is " + f.str() + ", not 1 or " + t.str();
    if (!f.isConstant() || !t.isConstant())
      error += " for every value of the symbols";
    return failure();
  }
  return success();
}

FailureOr<SymShape> inferMatmul(const SymShape &lhs, const SymShape &rhs, bool transposeB,
                                std::string &error) {
  if (lhs.size() < 2 || rhs.size() < 2) {
    error = "matmul operands need rank >= 2, got " + formatShape(lhs) + " and " + formatShape(rhs);
    return failure();
  }
  const SymExpr &m = lhs[lhs.size() - 2], &k = lhs.back();
  const SymExpr &kb = transposeB ? rhs.back() : rhs[rhs.size() - 2];
  const SymExpr &n = transposeB ? rhs[rhs.size() - 2] : rhs.back();
  if (k != kb) {
    error = "matmul contraction dims differ: " + formatShape(lhs) + " x " + formatShape(rhs) +
            (transposeB ? "^T" : "") + " (" + k.str() + " vs " + kb.str() + ")";
    return failure();
  }
  SymShape lb(lhs.begin(), lhs.end() - 2), rb(rhs.begin(), rhs.end() - 2);
  FailureOr<SymShape> batch = inferBroadcast({lb, rb}, error);
  if (failed(batch)) {
    error = "matmul batch dims: " + error;
    return failure();
  }
  SymShape out = *batch;
  out.push_back(m);
  out.push_back(n);
  return out;
}

FailureOr<SymShape> inferReduce(const SymShape &input, int64_t axis, bool keepdim, std::string &error) {
  FailureOr<int64_t> a = normalizeAxis(axis, input.size(), error);
  if (failed(a))
    return failure();
  SymShape out = input;
  if (keepdim)
    out[*a] = SymExpr::constant(1);
  else
    out.erase(out.begin() + *a);
  return out;
}

FailureOr<SymShape> inferGather(const SymShape &table, const SymShape &indices, std::string &error) {
  if (table.empty()) {
    error = "gather table must have rank >= 1";
    return failure();
  }
  SymShape out = indices;
  out.append(table.begin() + 1, table.end());
  return out;
}

FailureOr<SymShape> inferTranspose(const SymShape &input, llvm::ArrayRef<int64_t> permutation,
                                   std::string &error) {
  if (permutation.size() != input.size()) {
    error = "permutation of " + std::to_string(permutation.size()) + " dims for a rank-" +
            std::to_string(input.size()) + " tensor";
    return failure();
  }
  std::vector<bool> seen(input.size(), false);
  SymShape out;
  for (int64_t p : permutation) {
    if (p < 0 || p >= (int64_t)input.size() || seen[p]) {
      error = "permutation is not a permutation of 0.." + std::to_string(input.size() - 1);
      return failure();
    }
    seen[p] = true;
    out.push_back(input[p]);
  }
  return out;
}

FailureOr<SymShape> inferSlice(const SymShape &input, int64_t axis, int64_t start, int64_t end,
                               std::string &error) {
  FailureOr<int64_t> a = normalizeAxis(axis, input.size(), error);
  if (failed(a))
    return failure();
  const SymExpr &d = input[*a];
  if (!d.isConstant()) {
    error = "slice of symbolic dim " + d.str() + " (only constant dims can be sliced)";
    return failure();
  }
  if (start < 0 || start > end || end > d.getConstant()) {
    error = "slice [" + std::to_string(start) + ", " + std::to_string(end) + ") is outside dim " +
            std::to_string(*a) + " of size " + d.str();
    return failure();
  }
  SymShape out = input;
  out[*a] = SymExpr::constant(end - start);
  return out;
}

FailureOr<SymShape> inferConcat(llvm::ArrayRef<SymShape> inputs, int64_t axis, std::string &error) {
  if (inputs.empty()) {
    error = "concat of no tensors";
    return failure();
  }
  FailureOr<int64_t> a = normalizeAxis(axis, inputs[0].size(), error);
  if (failed(a))
    return failure();
  SymShape out = inputs[0];
  for (size_t i = 1; i < inputs.size(); ++i) {
    const SymShape &s = inputs[i];
    if (s.size() != out.size()) {
      error = "concat of " + formatShape(inputs[0]) + " and " + formatShape(s) + ": ranks differ";
      return failure();
    }
    for (size_t d = 0; d < s.size(); ++d) {
      if ((int64_t)d == *a)
        continue;
      if (s[d] != inputs[0][d]) {
        error = "concat of " + formatShape(inputs[0]) + " and " + formatShape(s) + " along " +
                std::to_string(*a) + ": dim " + std::to_string(d) + " differs";
        return failure();
      }
    }
    out[*a] = out[*a] + s[*a];
  }
  return out;
}

LogicalResult checkReshape(const SymShape &from, const SymShape &to, std::string &error) {
  auto split = [](const SymShape &s, int64_t &product, std::vector<SymExpr> &symbolic) {
    product = 1;
    for (const SymExpr &d : s) {
      if (d.isConstant())
        product *= d.getConstant();
      else
        symbolic.push_back(d);
    }
    std::sort(symbolic.begin(), symbolic.end());
  };
  int64_t pf, pt;
  std::vector<SymExpr> sf, st;
  split(from, pf, sf);
  split(to, pt, st);
  if (pf != pt || sf != st) {
    error = "cannot reshape " + formatShape(from) + " to " + formatShape(to) +
            (pf != pt ? ": element counts differ" : ": symbolic dims differ");
    return failure();
  }
  return success();
}

} // namespace kiln::ir
