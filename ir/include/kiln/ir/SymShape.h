//===- SymShape.h - symbolic dims of kiln tensors ---------------*- C++ -*-===//
#ifndef KILN_IR_SYMSHAPE_H
#define KILN_IR_SYMSHAPE_H

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include <map>
#include <optional>
#include <string>

namespace kiln::ir {

/// A symbolic dim: constant + sum(coeff * symbol), coefficients positive. The symbols of a step function
/// are `b` (batch), `s` (tokens in this chunk) and `p` (tokens already in the KV cache); any name works.
class SymExpr {
public:
  SymExpr() = default;
  static SymExpr constant(int64_t value);
  static SymExpr symbol(llvm::StringRef name);
  /// Parses the canonical text (`p + s`, `2*s + 1`, `64`); nullopt on malformed text.
  static std::optional<SymExpr> parse(llvm::StringRef text);

  bool isConstant() const { return terms_.empty(); }
  int64_t getConstant() const { return constant_; }
  const std::map<std::string, int64_t> &terms() const { return terms_; }
  /// True when the value is 1 for every value of the symbols.
  bool isOne() const { return isConstant() && constant_ == 1; }

  SymExpr operator+(const SymExpr &other) const;
  bool operator==(const SymExpr &other) const {
    return constant_ == other.constant_ && terms_ == other.terms_;
  }
  bool operator!=(const SymExpr &other) const { return !(*this == other); }
  bool operator<(const SymExpr &other) const {
    return std::tie(terms_, constant_) < std::tie(other.terms_, other.constant_);
  }

  /// Canonical text: terms sorted by symbol, constant last (`p + s`, `2*s + 1`).
  std::string str() const;
  /// The value for the given symbol values; nullopt when a symbol is unbound.
  std::optional<int64_t> evaluate(const std::map<std::string, int64_t> &bindings) const;

private:
  int64_t constant_ = 0;
  std::map<std::string, int64_t> terms_;
};

using SymShape = llvm::SmallVector<SymExpr, 4>;

/// "[b, s, 64]"
std::string formatShape(llvm::ArrayRef<SymExpr> shape);

/// The symbolic shape of a ranked tensor type: static dims become constants, dynamic dims take their
/// expressions from the `#kiln.dims` encoding. Fails (with a reason) for an unranked type or a dynamic dim
/// without an expression.
mlir::FailureOr<SymShape> getSymShape(mlir::Type type, std::string *error = nullptr);

/// The tensor type of a symbolic shape: constant dims static, the others dynamic with a #kiln.dims encoding.
mlir::RankedTensorType makeTensorType(mlir::MLIRContext *context, llvm::ArrayRef<SymExpr> shape,
                                      mlir::Type elementType);

/// The concrete shape for bound symbols; fails naming the unbound symbol.
mlir::FailureOr<llvm::SmallVector<int64_t>>
evaluateShape(llvm::ArrayRef<SymExpr> shape, const std::map<std::string, int64_t> &bindings,
              std::string *error = nullptr);

} // namespace kiln::ir

#endif // KILN_IR_SYMSHAPE_H
