//===- SplitWeights.cpp - row chunks of weights too large for one device buffer ===//
//
// See SplitWeights.h. Works per func.func: group the kiln.weight ops of one tensor, classify every use,
// pick one chunking for the splittable uses, rewrite them, drop what became dead.
//
//===----------------------------------------------------------------------===//
#include "kiln/passes/SplitWeights.h"
#include "kiln/passes/Legality.h"
#include "kiln/passes/Passes.h"

#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/ShapeInference.h"
#include "kiln/support/Quantize.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <map>
#include <optional>

using namespace mlir;

namespace kiln::passes {

SplitWeightsOptions splitWeightsOptions(const target::DeviceProfile &profile, const PlanOptions &bounds) {
  SplitWeightsOptions o;
  o.bounds = bounds;
  if (profile.maxStorageBufferRange <= profile.maxAllocationSize) {
    o.maxBufferBytes = profile.maxStorageBufferRange;
    o.limitName = "maxStorageBufferRange " + formatBytes(profile.maxStorageBufferRange);
  } else {
    o.maxBufferBytes = profile.maxAllocationSize;
    o.limitName = "maxMemoryAllocationSize " + formatBytes(profile.maxAllocationSize);
  }
  return o;
}

namespace {

enum class UseKind { Gather, MatmulRows, MatmulContract };

constexpr size_t kMaxConcatInputs = 8;

/// One splittable use: `op` reads the weight (or, with `convert`, the convert's result) as operand
/// `operand`.
struct SplitUse {
  Operation *op = nullptr;
  unsigned operand = 0;
  UseKind kind = UseKind::Gather;
  mutable ir::ConvertOp convert; // the use reads convert(W)
};

/// "[512, 64] f32"; `element` names the stored format instead of the element type (a q8_0 / q4_0 matrix).
std::string shapeText(Type t, const char *element = nullptr) {
  FailureOr<ir::SymShape> s = ir::getSymShape(t);
  std::string text = succeeded(s) ? ir::formatShape(*s) : "[?]";
  return text + " " + (element ? std::string(element) : dtypeName(cast<ShapedType>(t).getElementType()));
}

std::string where(Operation *op) {
  std::string loc = locationText(op->getLoc());
  return op->getName().getStringRef().str() + (loc.empty() ? "" : " at " + loc);
}

/// Bytes of `t` at the symbols' bounds; nullopt when a symbol is unbounded.
std::optional<uint64_t> maxBytes(Type t, const PlanOptions &bounds) {
  FailureOr<ir::SymShape> shape = ir::getSymShape(t);
  if (failed(shape))
    return std::nullopt;
  uint64_t n = elementBytes(cast<ShapedType>(t).getElementType());
  for (const ir::SymExpr &d : *shape) {
    StatusOr<int64_t> v = maxDimValue(d, bounds);
    if (!v.ok() || *v < 0)
      return std::nullopt;
    if (__builtin_mul_overflow(n, uint64_t(*v), &n))
      return std::nullopt;
  }
  return n;
}

class Splitter {
public:
  Splitter(const SplitWeightsOptions &o, SplitWeightsReport *r) : opts_(o), report_(r) {}

  void run(func::FuncOp f) {
    // Group the whole-tensor weight ops by (name, type), in block order.
    std::vector<std::pair<std::string, Type>> order;
    std::map<std::pair<std::string, Type>, std::vector<ir::WeightOp>, Less> groups;
    f.walk([&](ir::WeightOp w) {
      if (w.getRows())
        return;
      auto key = std::make_pair(w.getName().str(), w.getType());
      if (!groups.count(key))
        order.push_back(key);
      groups[key].push_back(w);
    });
    for (const auto &key : order)
      splitGroup(groups[key]);
  }

private:
  struct Less {
    bool operator()(const std::pair<std::string, Type> &a, const std::pair<std::string, Type> &b) const {
      return std::make_pair(a.first, a.second.getAsOpaquePointer()) <
             std::make_pair(b.first, b.second.getAsOpaquePointer());
    }
  };

  std::string fits(Type t, const std::string &what) {
    std::optional<uint64_t> n = maxBytes(t, opts_.bounds);
    if (!n)
      return what + " " + shapeText(t) + " has an unbounded size";
    if (*n > opts_.maxBufferBytes)
      return what + " " + shapeText(t) + " is " + formatBytes(*n) + " > " + opts_.limitName +
             " whether or not the weight is split";
    return "";
  }

  /// Classifies `op` reading weight value `w` [N, ...] (of `rows` rows): "" and the kind and the largest
  /// chunk (in rows) that keeps the op's growing buffers within the limit, or why it cannot be split.
  std::string classify(Operation *op, Value w, int64_t rows, UseKind *kind, unsigned *operand, int64_t *bound) {
    unsigned count = 0;
    for (OpOperand &o : op->getOpOperands())
      if (o.get() == w) {
        ++count;
        *operand = o.getOperandNumber();
      }
    if (count != 1)
      return "reads the weight twice";
    auto wType = cast<RankedTensorType>(w.getType());
    const uint64_t limit = opts_.maxBufferBytes;
    if (auto g = dyn_cast<ir::GatherOp>(op)) {
      if (*operand != 0)
        return "the weight is the indices, not the table";
      if (!isa<IntegerType>(cast<ShapedType>(g.getIndices().getType()).getElementType()))
        return "the indices are not integers";
      if (std::string why = fits(g.getIndices().getType(), "its indices"); !why.empty())
        return why;
      if (std::string why = fits(g.getType(), "its result"); !why.empty())
        return why;
      *kind = UseKind::Gather;
      *bound = rows;
      return "";
    }
    if (auto m = dyn_cast<ir::MatmulOp>(op)) {
      if (*operand != 1)
        return "the weight is the left operand (only a right operand's rows are split)";
      if (wType.getRank() != 2)
        return "a batched right operand (rank " + std::to_string(wType.getRank()) + ")";
      std::optional<uint64_t> resultBytes = maxBytes(m.getType(), opts_.bounds);
      std::optional<uint64_t> lhsBytes = maxBytes(m.getLhs().getType(), opts_.bounds);
      if (!resultBytes || !lhsBytes)
        return "an operand or result has an unbounded size";
      if (m.getTransposeB()) {
        // Rows are output columns: the result grows with the chunk, x does not.
        if (std::string why = fits(m.getLhs().getType(), "its left operand"); !why.empty())
          return why;
        uint64_t perRow = (*resultBytes + uint64_t(rows) - 1) / uint64_t(rows);
        *kind = UseKind::MatmulRows;
        *bound = perRow ? int64_t(limit / perRow) : rows;
        return "";
      }
      // Rows contract: x's slice grows with the chunk, each partial product is the whole result.
      if (std::string why = fits(m.getType(), "its result"); !why.empty())
        return why;
      uint64_t perRow = (*lhsBytes + uint64_t(rows) - 1) / uint64_t(rows);
      *kind = UseKind::MatmulContract;
      *bound = perRow ? int64_t(limit / perRow) : rows;
      return "";
    }
    return "no row split for " + op->getName().getStringRef().str() +
           " (only gather tables and matmul right operands are split)";
  }

  /// Creates the chunk weights (before the first weight op: they dominate every use) and their converts,
  /// rewrites every use to read the chunks and erases what is left unused. Returns the uses, for the report.
  std::string rewriteUses(std::vector<ir::WeightOp> &ops, ir::WeightOp first, const std::vector<SplitUse> &uses,
                          const std::vector<std::pair<int64_t, int64_t>> &ranges) {
    auto type = cast<RankedTensorType>(first.getType());
    OpBuilder b(first);
    std::vector<Value> chunks;
    for (auto [a, e] : ranges) {
      llvm::SmallVector<int64_t> shape(type.getShape());
      shape[0] = e - a;
      auto t = RankedTensorType::get(shape, type.getElementType());
      chunks.push_back(ir::WeightOp::create(b, first.getLoc(), t, first.getNameAttr(), b.getDenseI64ArrayAttr({a, e}),
                                            first.getQuantAttr())
                           .getResult());
    }
    std::map<Operation *, std::vector<Value>> convertedChunks;
    std::string usesText;
    for (const SplitUse &u : uses) {
      std::vector<Value> in = chunks;
      if (u.convert) {
        std::vector<Value> &conv = convertedChunks[u.convert];
        if (conv.empty()) {
          OpBuilder cb(u.convert);
          for (Value c : chunks) {
            auto ct = RankedTensorType::get(cast<RankedTensorType>(c.getType()).getShape(),
                                            u.convert.getType().getElementType());
            conv.push_back(ir::ConvertOp::create(cb, u.convert.getLoc(), ct, c).getResult());
          }
        }
        in = conv;
      }
      rewrite(u, in, ranges);
      usesText += (usesText.empty() ? "" : ", ") + where(u.op);
    }
    for (auto &[convert, _] : convertedChunks)
      if (convert->use_empty())
        convert->erase();
    for (ir::WeightOp w : ops)
      if (w->use_empty())
        w->erase();
    return usesText;
  }

  void splitGroup(std::vector<ir::WeightOp> &ops) {
    ir::WeightOp first = ops.front();
    for (ir::WeightOp w : ops)
      if (w->isBeforeInBlock(first))
        first = w;
    auto type = cast<RankedTensorType>(first.getType());
    if (type.getRank() < 1 || type.getDimSize(0) < 2)
      return;
    // A q8_0 / q4_0 matrix is its blocks' bytes, and its row chunks stay quantized (blocks run along a row, so
    // a chunk of rows is a quantized matrix of its own, as the writer and the synthetic weights make it).
    const std::optional<QuantFormat> quant =
        first.getQuant() && type.getRank() == 2 ? parseQuantFormat(first.getQuant()->str()) : std::nullopt;
    const uint64_t bytes =
        quant ? quantizedMatrixBytes(*quant, uint64_t(type.getDimSize(0)), uint64_t(type.getDimSize(1)))
              : uint64_t(type.getNumElements()) * elementBytes(type.getElementType());
    // Too large itself, or once widened by a kiln.convert (a bf16 weight's f32 copy).
    uint64_t widest = bytes;
    Type widestType = type.getElementType();
    for (ir::WeightOp w : ops)
      for (Operation *user : w->getUsers())
        if (auto c = dyn_cast<ir::ConvertOp>(user)) {
          uint64_t n = uint64_t(type.getNumElements()) * elementBytes(c.getType().getElementType());
          if (n > widest) {
            widest = n;
            widestType = c.getType().getElementType();
          }
        }
    if (widest <= opts_.maxBufferBytes)
      return;
    const int64_t rows = type.getDimSize(0);
    const std::string name = first.getName().str();
    const std::string what = name + " " + shapeText(type, quant ? quantFormatName(*quant) : nullptr) + " (" +
                             formatBytes(bytes) +
                             (widest > bytes ? "; " + formatBytes(widest) + " as " + dtypeName(widestType) : "") + ")";

    // Classify every use (through one kiln.convert).
    std::vector<SplitUse> uses;
    std::vector<std::string> kept; // "kiln.mul at loc: why"
    int64_t bound = int64_t(opts_.maxBufferBytes / std::max<uint64_t>(1, bytes / uint64_t(rows)));
    std::string boundBy = "the weight's chunks";
    auto consider = [&](Operation *user, Value w, ir::ConvertOp convert, std::vector<SplitUse> &into,
                        std::vector<std::string> &why) {
      SplitUse u;
      u.op = user;
      u.convert = convert;
      int64_t b = rows;
      std::string reason = classify(user, w, rows, &u.kind, &u.operand, &b);
      if (!reason.empty()) {
        why.push_back(where(user) + ": " + reason);
        return;
      }
      into.push_back(u);
      if (b < bound) {
        bound = b;
        boundBy = std::string(u.kind == UseKind::MatmulContract ? "the left-operand slices of " : "the results of ") +
                  where(user);
      }
    };
    std::vector<std::pair<Operation *, Value>> users; // each once, in no particular order
    for (ir::WeightOp w : ops)
      for (Operation *user : w->getUsers())
        if (std::find(users.begin(), users.end(), std::pair<Operation *, Value>(user, w.getResult())) == users.end())
          users.push_back({user, w.getResult()});
    std::sort(users.begin(), users.end(),
              [](const auto &x, const auto &y) { return x.first->isBeforeInBlock(y.first); });
    for (auto [user, wv] : users) {
        auto convert = dyn_cast<ir::ConvertOp>(user);
        if (!convert) {
          consider(user, wv, {}, uses, kept);
          continue;
        }
        // The convert is split with its uses only when all of them can be split.
        std::vector<SplitUse> inner;
        std::vector<std::string> innerWhy;
        int64_t saved = bound;
        std::string savedBy = boundBy;
        uint64_t convBytes = uint64_t(type.getNumElements()) * elementBytes(convert.getType().getElementType());
        int64_t convBound = int64_t(opts_.maxBufferBytes / std::max<uint64_t>(1, convBytes / uint64_t(rows)));
        if (convBound < bound) {
          bound = convBound;
          boundBy = "the converted chunks (" + dtypeName(convert.getType().getElementType()) + ")";
        }
        for (Operation *cu : convert->getUsers())
          consider(cu, convert.getResult(), convert, inner, innerWhy);
        if (!innerWhy.empty() || inner.empty()) {
          bound = saved;
          boundBy = savedBy;
          kept.push_back(where(convert) + ": " + (innerWhy.empty() ? "its result is unused" : innerWhy.front()));
          continue;
        }
        uses.insert(uses.end(), inner.begin(), inner.end());
      }
    auto keptText = [&] {
      std::string s;
      for (size_t i = 0; i < kept.size() && i < 4; ++i)
        s += (i ? "; " : "") + kept[i];
      if (kept.size() > 4)
        s += "; ... (" + std::to_string(kept.size()) + " uses)";
      return s;
    };
    if (uses.empty()) {
      report_->notSplit.push_back("not split: " + what + " > " + opts_.limitName + ": " + keptText());
      return;
    }
    if (bound < 1) {
      report_->notSplit.push_back("not split: " + what + " > " + opts_.limitName + ": one row of " + boundBy +
                                  " already exceeds it");
      return;
    }

    // The chunking: rows a multiple of 64 when 64 fit, balanced over the fewest chunks.
    const int64_t align = bound >= 64 ? 64 : 1;
    const int64_t maxRows = bound / align * align;
    const int64_t k = (rows + maxRows - 1) / maxRows;
    const int64_t chunkRows = std::min(maxRows, ((rows + k - 1) / k + align - 1) / align * align);
    std::vector<std::pair<int64_t, int64_t>> ranges;
    for (int64_t a = 0; a < rows; a += chunkRows)
      ranges.push_back({a, std::min(rows, a + chunkRows)});

    const std::string usesText = rewriteUses(ops, first, uses, ranges);

    const uint64_t chunkBytes = bytes / uint64_t(rows) * uint64_t(chunkRows);
    std::string line = "split " + what + " into " + std::to_string(ranges.size()) + " chunks of <= " +
                       std::to_string(chunkRows) + " rows (" + formatBytes(chunkBytes) + ") for " + opts_.limitName +
                       " (bound by " + boundBy + "): " + usesText;
    report_->split.push_back(line);
    if (!kept.empty())
      report_->notSplit.push_back("kept whole: " + name + " for " + keptText());
    ++report_->weightsSplit;
    report_->chunks += int(ranges.size());
    report_->usesSplit += int(uses.size());
  }

  static Value scalar(OpBuilder &b, Location loc, Type elementType, int64_t v) {
    auto t = RankedTensorType::get({}, elementType);
    return ir::ConstantOp::create(b, loc, t,
                                  DenseElementsAttr::get(t, APInt(elementType.getIntOrFloatBitWidth(), uint64_t(v), true)))
        .getResult();
  }

  static RankedTensorType withShape(MLIRContext *ctx, const ir::SymShape &s, Type element) {
    return ir::makeTensorType(ctx, s, element);
  }

  void rewrite(const SplitUse &u, const std::vector<Value> &chunks, const std::vector<std::pair<int64_t, int64_t>> &ranges) {
    Operation *op = u.op;
    OpBuilder b(op);
    Location loc = op->getLoc();
    MLIRContext *ctx = op->getContext();
    Value replacement;
    std::string error;
    if (auto g = dyn_cast<ir::GatherOp>(op)) {
      Value ids = g.getIndices();
      auto idsType = cast<RankedTensorType>(ids.getType());
      Type idElem = idsType.getElementType();
      ir::SymShape idsShape = *ir::getSymShape(idsType);
      ir::SymShape resultShape = *ir::getSymShape(g.getType());
      // ids with a 1 per table dim past the first, to broadcast against the gathered rows.
      ir::SymShape idsRowShape = idsShape;
      int64_t tableRank = cast<RankedTensorType>(chunks.front().getType()).getRank();
      for (int64_t i = 1; i < tableRank; ++i)
        idsRowShape.push_back(ir::SymExpr::constant(1));
      Value idsRows = tableRank > 1 ? ir::ReshapeOp::create(b, loc, withShape(ctx, idsRowShape, idElem), ids).getResult()
                                    : ids;
      auto condType = withShape(ctx, idsRowShape, b.getI1Type());
      for (size_t i = 0; i < chunks.size(); ++i) {
        auto [a, e] = ranges[i];
        Value local = ids;
        if (a > 0) {
          local = ir::SubOp::create(b, loc, idsType, local, scalar(b, loc, idElem, a)).getResult();
          local = ir::MaxOp::create(b, loc, idsType, local, scalar(b, loc, idElem, 0)).getResult();
        }
        if (i + 1 < chunks.size())
          local = ir::MinOp::create(b, loc, idsType, local, scalar(b, loc, idElem, e - a - 1)).getResult();
        Value gi = ir::GatherOp::create(b, loc, g.getType(), chunks[i], local).getResult();
        if (i == 0) {
          replacement = gi;
          continue;
        }
        Value cond = ir::CompareOp::create(b, loc, condType, ir::ComparePredicate::ge, idsRows,
                                           scalar(b, loc, idElem, a))
                         .getResult();
        replacement = ir::SelectOp::create(b, loc, g.getType(), cond, gi, replacement).getResult();
      }
      (void)resultShape;
    } else if (auto m = dyn_cast<ir::MatmulOp>(op)) {
      ir::SymShape resultShape = *ir::getSymShape(m.getType());
      Type elem = m.getType().getElementType();
      if (u.kind == UseKind::MatmulRows) {
        std::vector<Value> parts;
        for (size_t i = 0; i < chunks.size(); ++i) {
          ir::SymShape s = resultShape;
          s.back() = ir::SymExpr::constant(ranges[i].second - ranges[i].first);
          parts.push_back(ir::MatmulOp::create(b, loc, withShape(ctx, s, elem), m.getLhs(), chunks[i],
                                               b.getBoolAttr(true))
                              .getResult());
        }
        // At most kMaxConcatInputs per concat (one storage-buffer binding each, plus the result: within
        // what every Vulkan device offers per stage); more chunks concatenate in a tree. A result too large
        // for the device (logits at a long context) is concatenated by the CPU: flat, no binding limit there.
        const int64_t axis = int64_t(resultShape.size()) - 1;
        std::optional<uint64_t> resultBytes = maxBytes(m.getType(), opts_.bounds);
        const bool onDevice = resultBytes && *resultBytes <= opts_.maxBufferBytes;
        while (onDevice && parts.size() > kMaxConcatInputs) {
          std::vector<Value> grouped;
          for (size_t i = 0; i < parts.size(); i += kMaxConcatInputs) {
            std::vector<Value> group(parts.begin() + i, parts.begin() + std::min(parts.size(), i + kMaxConcatInputs));
            if (group.size() == 1) {
              grouped.push_back(group[0]);
              continue;
            }
            int64_t cols = 0;
            for (Value v : group)
              cols += cast<RankedTensorType>(v.getType()).getShape().back();
            ir::SymShape s = resultShape;
            s.back() = ir::SymExpr::constant(cols);
            grouped.push_back(
                ir::ConcatOp::create(b, loc, withShape(ctx, s, elem), group, b.getI64IntegerAttr(axis)).getResult());
          }
          parts = std::move(grouped);
        }
        replacement = ir::ConcatOp::create(b, loc, m.getType(), parts, b.getI64IntegerAttr(axis)).getResult();
      } else {
        Value x = m.getLhs();
        auto xType = cast<RankedTensorType>(x.getType());
        ir::SymShape xShape = *ir::getSymShape(xType);
        const int64_t axis = int64_t(xShape.size()) - 1;
        for (size_t i = 0; i < chunks.size(); ++i) {
          ir::SymShape s = xShape;
          s.back() = ir::SymExpr::constant(ranges[i].second - ranges[i].first);
          Value xi = ir::SliceOp::create(b, loc, withShape(ctx, s, xType.getElementType()), x,
                                         b.getI64IntegerAttr(axis), b.getI64IntegerAttr(ranges[i].first),
                                         b.getI64IntegerAttr(ranges[i].second))
                         .getResult();
          Value pi = ir::MatmulOp::create(b, loc, m.getType(), xi, chunks[i], b.getBoolAttr(false)).getResult();
          replacement = i == 0 ? pi : ir::AddOp::create(b, loc, m.getType(), replacement, pi).getResult();
        }
      }
    }
    op->getResult(0).replaceAllUsesWith(replacement);
    op->erase();
  }

  const SplitWeightsOptions &opts_;
  SplitWeightsReport *report_;
};

} // namespace

void splitLargeWeights(ModuleOp module, const SplitWeightsOptions &options, SplitWeightsReport *report) {
  SplitWeightsReport local;
  SplitWeightsReport *r = report ? report : &local;
  if (options.maxBufferBytes == 0)
    return;
  Splitter s(options, r);
  module.walk([&](func::FuncOp f) { s.run(f); });
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

#define GEN_PASS_DEF_KILNSPLITWEIGHTS
#include "kiln/passes/Passes.h.inc"

namespace {
struct SplitWeightsPass : impl::KilnSplitWeightsBase<SplitWeightsPass> {
  using Base::Base;
  void runOnOperation() override {
    SplitWeightsOptions o;
    o.maxBufferBytes = maxBufferBytes;
    o.limitName = limitName.empty() ? "the buffer limit " + formatBytes(maxBufferBytes) : std::string(limitName);
    o.bounds.maxContext = maxContext;
    o.bounds.maxBatch = maxBatch;
    SplitWeightsReport r;
    splitLargeWeights(getOperation(), o, &r);
    if (report) {
      for (const std::string &line : r.split)
        llvm::errs() << line << "\n";
      for (const std::string &line : r.notSplit)
        llvm::errs() << line << "\n";
    }
  }
};
} // namespace

} // namespace kiln::passes
