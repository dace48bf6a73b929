//===- OpTable.h - a backend's map from ops to code -------------*- C++ -*-===//
//
// One row per op, keyed by the op's TypeID: how a backend (the interpreter, the CPU or the SPIR-V code
// generator) handles it, or the reason it has no code there. Each backend fills one table once; entries()
// lists it by op name for tests/unit/codegen/OpCoverageTest.cpp, which checks it against the dialect.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_IR_OPTABLE_H
#define KILN_IR_OPTABLE_H

#include "mlir/IR/Operation.h"
#include "mlir/Support/TypeID.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringRef.h"

#include <map>
#include <optional>
#include <string>

namespace kiln::ir {

template <typename Row> class OpTable {
public:
  /// The same row for each of `Ops`.
  template <typename... Ops> OpTable &add(const Row &row) {
    (insert(mlir::TypeID::get<Ops>(), Ops::getOperationName(), row, ""), ...);
    return *this;
  }
  /// `Ops` have no code here, for `reason`.
  template <typename... Ops> OpTable &without(llvm::StringRef reason) {
    (insert(mlir::TypeID::get<Ops>(), Ops::getOperationName(), std::nullopt, reason), ...);
    return *this;
  }
  /// The op's row; null when the table has none (reason() says why when the op is listed without code).
  const Row *find(mlir::Operation *op) const {
    auto it = entries_.find(op->getName().getTypeID());
    return it == entries_.end() || !it->second.row ? nullptr : &*it->second.row;
  }
  std::string reason(mlir::Operation *op) const {
    auto it = entries_.find(op->getName().getTypeID());
    return it == entries_.end() ? std::string() : it->second.reason;
  }
  /// Op name -> "" (a row) or the reason it has none.
  std::map<std::string, std::string> entries() const {
    std::map<std::string, std::string> out;
    for (const auto &entry : entries_)
      out[entry.second.name] = entry.second.reason;
    return out;
  }

private:
  struct Entry {
    std::string name;
    std::optional<Row> row;
    std::string reason;
  };
  void insert(mlir::TypeID id, llvm::StringRef name, std::optional<Row> row, llvm::StringRef reason) {
    entries_[id] = Entry{name.str(), std::move(row), reason.str()};
  }
  llvm::DenseMap<mlir::TypeID, Entry> entries_;
};

} // namespace kiln::ir

#endif // KILN_IR_OPTABLE_H
