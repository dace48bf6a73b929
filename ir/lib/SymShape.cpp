//===- SymShape.cpp -------------------------------------------------------===//
#include "kiln/ir/SymShape.h"
#include "kiln/ir/KilnDialect.h"

#include "llvm/ADT/StringExtras.h"

using namespace mlir;

namespace kiln::ir {

SymExpr SymExpr::constant(int64_t value) {
  SymExpr e;
  e.constant_ = value;
  return e;
}

SymExpr SymExpr::symbol(llvm::StringRef name) {
  SymExpr e;
  e.terms_[name.str()] = 1;
  return e;
}

SymExpr SymExpr::operator+(const SymExpr &other) const {
  SymExpr sum = *this;
  sum.constant_ += other.constant_;
  for (const auto &[name, coeff] : other.terms_)
    sum.terms_[name] += coeff;
  return sum;
}

static bool isIdentifier(llvm::StringRef s) {
  if (s.empty() || !(llvm::isAlpha(s[0]) || s[0] == '_'))
    return false;
  return llvm::all_of(s, [](char c) { return llvm::isAlnum(c) || c == '_'; });
}

std::optional<SymExpr> SymExpr::parse(llvm::StringRef text) {
  SymExpr e;
  llvm::SmallVector<llvm::StringRef> parts;
  text.split(parts, '+');
  for (llvm::StringRef part : parts) {
    part = part.trim();
    int64_t coeff = 1;
    auto [left, right] = part.split('*');
    llvm::StringRef name = part;
    if (!right.empty()) {
      if (left.trim().getAsInteger(10, coeff) || coeff <= 0)
        return std::nullopt;
      name = right.trim();
    } else {
      int64_t value;
      if (!part.getAsInteger(10, value)) {
        e.constant_ += value;
        continue;
      }
    }
    if (!isIdentifier(name))
      return std::nullopt;
    e.terms_[name.str()] += coeff;
  }
  return e;
}

std::string SymExpr::str() const {
  std::string out;
  for (const auto &[name, coeff] : terms_) {
    if (!out.empty())
      out += " + ";
    if (coeff != 1)
      out += std::to_string(coeff) + "*";
    out += name;
  }
  if (constant_ != 0 || out.empty()) {
    if (!out.empty())
      out += " + ";
    out += std::to_string(constant_);
  }
  return out;
}

std::optional<int64_t> SymExpr::evaluate(const std::map<std::string, int64_t> &bindings) const {
  int64_t value = constant_;
  for (const auto &[name, coeff] : terms_) {
    auto it = bindings.find(name);
    if (it == bindings.end())
      return std::nullopt;
    value += coeff * it->second;
  }
  return value;
}

std::string formatShape(llvm::ArrayRef<SymExpr> shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      out += ", ";
    out += shape[i].str();
  }
  return out + "]";
}

FailureOr<SymShape> getSymShape(Type type, std::string *error) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor) {
    if (error)
      *error = "expected a ranked tensor";
    return failure();
  }
  auto dims = dyn_cast_or_null<DimsAttr>(tensor.getEncoding());
  SymShape shape;
  unsigned next = 0;
  for (int64_t d : tensor.getShape()) {
    if (!ShapedType::isDynamic(d)) {
      shape.push_back(SymExpr::constant(d));
      continue;
    }
    if (!dims || next >= dims.getExprs().size()) {
      if (error)
        *error = "dynamic dim without a symbolic expression (#kiln.dims encoding)";
      return failure();
    }
    auto text = cast<StringAttr>(dims.getExprs()[next++]).getValue();
    std::optional<SymExpr> e = SymExpr::parse(text);
    if (!e) {
      if (error)
        *error = ("malformed symbolic dim '" + text + "'").str();
      return failure();
    }
    shape.push_back(*e);
  }
  return shape;
}

RankedTensorType makeTensorType(MLIRContext *context, llvm::ArrayRef<SymExpr> shape, Type elementType) {
  llvm::SmallVector<int64_t> dims;
  llvm::SmallVector<Attribute> exprs;
  for (const SymExpr &e : shape) {
    if (e.isConstant()) {
      dims.push_back(e.getConstant());
    } else {
      dims.push_back(ShapedType::kDynamic);
      exprs.push_back(StringAttr::get(context, e.str()));
    }
  }
  Attribute encoding;
  if (!exprs.empty())
    encoding = DimsAttr::get(context, ArrayAttr::get(context, exprs));
  return RankedTensorType::get(dims, elementType, encoding);
}

FailureOr<llvm::SmallVector<int64_t>> evaluateShape(llvm::ArrayRef<SymExpr> shape,
                                                    const std::map<std::string, int64_t> &bindings,
                                                    std::string *error) {
  llvm::SmallVector<int64_t> out;
  for (const SymExpr &e : shape) {
    std::optional<int64_t> v = e.evaluate(bindings);
    if (!v) {
      if (error)
        *error = "unbound symbol in dim '" + e.str() + "'";
      return failure();
    }
    out.push_back(*v);
  }
  return out;
}

} // namespace kiln::ir
