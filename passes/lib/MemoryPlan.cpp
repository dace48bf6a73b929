//===- MemoryPlan.cpp - buffers, dispatches and arena layout of a step ----===//
#include "kiln/passes/MemoryPlan.h"
#include "kiln/passes/Partition.h"

#include "kiln/ir/KilnDialect.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Location.h"
#include "llvm/ADT/DenseMap.h"

#include <algorithm>
#include <map>
#include <set>

namespace kiln::passes {

const char *bufferKindName(BufferKind kind) {
  switch (kind) {
  case BufferKind::Arena: return "ARENA";
  case BufferKind::Weight: return "WEIGHT";
  case BufferKind::Input: return "INPUT";
  case BufferKind::KvCache: return "KV_CACHE";
  }
  return "?";
}

const char *deviceName(DispatchDevice device) { return device == DispatchDevice::Vulkan ? "vulkan" : "cpu"; }

std::vector<int> PlanDispatch::written() const {
  if (transfer)
    return buffers.size() == 2 ? std::vector<int>{buffers[1]} : std::vector<int>{};
  size_t n = op ? op->getNumResults() + (pass == 1 ? 1 : pass == kCombinedPass ? 2 : 0) : 0;
  n = std::min(n, buffers.size());
  return std::vector<int>(buffers.end() - long(n), buffers.end());
}

namespace {

/// A new ARENA buffer `name` of `bytes` (`elementType`, where the dispatch's result lives) in dispatch
/// `dispatch`'s buffers before its results.
void addScratchBuffer(MemoryPlan &plan, PlanDispatch &d, const std::string &name, uint64_t bytes,
                      mlir::Type elementType, bool wholeStep) {
  const size_t results = d.op->getNumResults();
  PlanBuffer scratch;
  scratch.id = int(plan.buffers.size());
  scratch.name = d.location + "." + name;
  scratch.kind = BufferKind::Arena;
  scratch.elementType = elementType;
  const uint64_t elementSize = std::max<uint64_t>(1, elementBytes(elementType));
  scratch.shape = {ir::SymExpr::constant(int64_t((bytes + elementSize - 1) / elementSize))};
  scratch.maxBytes = (bytes + elementSize - 1) / elementSize * elementSize;
  scratch.location = plan.buffers[size_t(d.buffers.back())].location;
  scratch.wholeStep = wholeStep;
  plan.buffers.push_back(scratch);
  d.buffers.insert(d.buffers.end() - long(results), scratch.id);
  if (!d.storageOrder.empty())
    d.storageOrder.insert(d.storageOrder.end() - long(results), std::vector<int64_t>{});
}

} // namespace

void addCombinedSplit(MemoryPlan &plan, int dispatch, uint64_t scratchBytes, mlir::Type scratchType,
                      uint64_t counterBytes, mlir::Type counterType) {
  PlanDispatch &d = plan.dispatches[size_t(dispatch)];
  addScratchBuffer(plan, d, "scratch", scratchBytes, scratchType, false);
  addScratchBuffer(plan, d, "counters", counterBytes, counterType, true);
  d.pass = PlanDispatch::kCombinedPass;
}

void addSecondPass(MemoryPlan &plan, int dispatch, uint64_t scratchBytes, mlir::Type elementType,
                   PartitionResult *partition) {
  PlanDispatch &first = plan.dispatches[size_t(dispatch)];
  addScratchBuffer(plan, first, "scratch", scratchBytes, elementType, false);
  first.pass = 1;
  PlanDispatch second = first;
  second.pass = 2;
  plan.dispatches.insert(plan.dispatches.begin() + dispatch + 1, second);
  if (partition) {
    for (int &t : partition->transferDispatches)
      if (t > dispatch)
        ++t;
    for (PartitionEntry &pe : partition->entries) // the dispatches after the new pass moved by one
      if (pe.dispatch > dispatch)
        ++pe.dispatch;
  }
}

std::vector<mlir::Operation *> MemoryPlan::dispatchOps() const {
  std::vector<mlir::Operation *> ops;
  for (const PlanDispatch &d : dispatches)
    ops.push_back(d.op);
  return ops;
}

std::vector<mlir::Operation *> kernelOps(const MemoryPlan &plan) {
  std::vector<mlir::Operation *> ops;
  for (const PlanDispatch &d : plan.dispatches)
    if (!d.transfer && d.op)
      ops.push_back(d.op);
  return ops;
}

std::vector<mlir::Operation *> removedOps(const std::vector<mlir::Operation *> &before, const MemoryPlan &after) {
  std::vector<mlir::Operation *> now = kernelOps(after);
  std::set<mlir::Operation *> kept(now.begin(), now.end());
  std::vector<mlir::Operation *> removed;
  for (mlir::Operation *op : before)
    if (!kept.count(op))
      removed.push_back(op);
  return removed;
}

std::vector<std::string> MemoryPlan::symbolNames() const {
  std::vector<std::string> names;
  for (const PlanSymbol &s : symbols)
    names.push_back(s.name);
  return names;
}

uint64_t elementBytes(mlir::Type type) {
  if (auto f = mlir::dyn_cast<mlir::FloatType>(type)) {
    unsigned w = f.getWidth();
    return (w == 16 || w == 32 || w == 64) ? w / 8 : 0;
  }
  if (auto i = mlir::dyn_cast<mlir::IntegerType>(type)) {
    unsigned w = i.getWidth();
    if (w == 1)
      return 1; // one byte per element
    return (w == 8 || w == 16 || w == 32 || w == 64) ? w / 8 : 0;
  }
  return 0;
}

std::string locationText(mlir::Location loc) {
  if (auto name = mlir::dyn_cast<mlir::NameLoc>(loc))
    return name.getName().str();
  if (auto file = mlir::dyn_cast<mlir::FileLineColLoc>(loc))
    return file.getFilename().str() + ":" + std::to_string(file.getLine()) + ":" +
           std::to_string(file.getColumn());
  if (auto fused = mlir::dyn_cast<mlir::FusedLoc>(loc)) {
    for (mlir::Location part : fused.getLocations())
      if (std::string text = locationText(part); !text.empty())
        return text;
    return "";
  }
  if (auto call = mlir::dyn_cast<mlir::CallSiteLoc>(loc))
    return locationText(call.getCallee());
  return "";
}

// The bound of one dim. A dim is c + sum(k_x * x) with every k_x >= 0 (SymExpr keeps them positive; checked).
// Legal run-time values: 1 <= b <= B (max-batch); s >= 1, p >= 0 and p + s <= C (max-context). b is
// independent of s and p, so k_b * b <= k_b * B. s and p are not independent: over the triangle
// {s >= 1, p >= 0, p + s <= C} the linear k_s * s + k_p * p is largest at a vertex, (s, p) = (C, 0) or
// (1, C - 1), so
//   dim <= c + k_b * B + max(k_s * C, k_s + k_p * (C - 1)),
// r (the rows of a chunk that get logits) is at most s and counts as s here.
// exact for every single dim (p + s -> C, s -> C, p -> C - 1, 2*s -> 2C). Evaluating s = p = C independently
// would give 2C for the KV cache's `p + s`, twice too much. A buffer's bound is the product of its dims'
// bounds: every dim is >= 0, so the product of upper bounds bounds the product (tight when at most one dim is
// symbolic in s / p, as in every step function; [s, p] would get C * (C - 1) where about C^2 / 4 is the truth).
StatusOr<int64_t> maxDimValue(const ir::SymExpr &dim, const PlanOptions &options) {
  int64_t value = dim.getConstant();
  int64_t ks = 0, kp = 0;
  for (const auto &[symbol, coeff] : dim.terms()) {
    if (coeff < 0)
      return Status::error("dim '" + dim.str() + "' has a negative coefficient of '" + symbol + "'");
    int64_t term;
    if (symbol == "b") {
      if (__builtin_mul_overflow(coeff, options.maxBatch, &term) || __builtin_add_overflow(value, term, &value))
        return Status::error("dim '" + dim.str() + "' overflows at its bound");
    } else if (symbol == "s" || symbol == "r") { // r (the logits rows) <= s
      if (__builtin_add_overflow(ks, coeff, &ks))
        return Status::error("dim '" + dim.str() + "' overflows at its bound");
    } else if (symbol == "p") {
      kp = coeff;
    } else {
      return Status::error("dim '" + dim.str() + "' uses symbol '" + symbol +
                           "', which has no bound (known: b <= max-batch; s, p with p + s <= max-context; r <= s)");
    }
  }
  int64_t atS = 0, atP = 0; // k_s * C and k_s + k_p * (C - 1)
  if (__builtin_mul_overflow(ks, options.maxContext, &atS) || __builtin_mul_overflow(kp, options.maxContext - 1, &atP) ||
      __builtin_add_overflow(atP, ks, &atP) || __builtin_add_overflow(value, std::max(atS, atP), &value))
    return Status::error("dim '" + dim.str() + "' overflows at its bound");
  return value;
}

namespace {

uint64_t alignUp(uint64_t v) { return (v + kPlanAlignment - 1) / kPlanAlignment * kPlanAlignment; }

Status opError(mlir::Operation *op, const std::string &what) {
  std::string loc = locationText(op->getLoc());
  return Status::error((loc.empty() ? std::string("step") : loc) + ": " + op->getName().getStringRef().str() +
                       ": " + what);
}

StatusOr<uint64_t> bufferBytes(mlir::Type type, ir::SymShape *shapeOut, const PlanOptions &options) {
  std::string error;
  mlir::FailureOr<ir::SymShape> shape = ir::getSymShape(type, &error);
  if (mlir::failed(shape))
    return Status::error(error.empty() ? "not a ranked tensor with symbolic dims" : error);
  mlir::Type elem = mlir::cast<mlir::ShapedType>(type).getElementType();
  uint64_t bytes = elementBytes(elem);
  if (bytes == 0) {
    std::string text;
    llvm::raw_string_ostream os(text);
    elem.print(os);
    return Status::error("element type " + text + " has no artifact dtype");
  }
  for (const ir::SymExpr &d : *shape) {
    StatusOr<int64_t> v = maxDimValue(d, options);
    if (!v.ok())
      return v.status();
    if (__builtin_mul_overflow(bytes, uint64_t(*v), &bytes))
      return Status::error("buffer size overflows at the symbols' bounds");
  }
  *shapeOut = std::move(*shape);
  return bytes;
}

// Little-endian bytes of a dense constant, one element after another (i1 as one byte).
Status constantBytes(mlir::Attribute value, std::vector<uint8_t> *out) {
  auto dense = mlir::dyn_cast<mlir::DenseElementsAttr>(value);
  if (!dense)
    return Status::error("only dense constants can be placed in the artifact");
  mlir::Type elem = dense.getElementType();
  uint64_t width = elementBytes(elem);
  if (width == 0)
    return Status::error("constant element type has no artifact dtype");
  out->clear();
  out->reserve(size_t(dense.getNumElements()) * width);
  auto push = [&](const llvm::APInt &bits) {
    uint64_t v = bits.getBitWidth() == 1 ? (bits.isZero() ? 0 : 1) : bits.getZExtValue();
    for (uint64_t i = 0; i < width; ++i)
      out->push_back(uint8_t(v >> (8 * i)));
  };
  if (mlir::isa<mlir::FloatType>(elem)) {
    for (const llvm::APFloat &f : dense.getValues<llvm::APFloat>())
      push(f.bitcastToAPInt());
  } else if (mlir::isa<mlir::IntegerType>(elem)) {
    for (const llvm::APInt &i : dense.getValues<llvm::APInt>())
      push(i);
  } else {
    return Status::error("constant element type has no artifact dtype");
  }
  return Status::ok();
}

void collectSymbols(mlir::Type type, std::set<std::string> *symbols) {
  mlir::FailureOr<ir::SymShape> shape = ir::getSymShape(type);
  if (mlir::failed(shape))
    return;
  for (const ir::SymExpr &d : *shape)
    for (const auto &term : d.terms())
      symbols->insert(term.first);
}

} // namespace

void layoutArenas(MemoryPlan &plan) {
  // Live ranges from the dispatch list.
  std::vector<int> lastRead(plan.buffers.size(), -1), firstWrite(plan.buffers.size(), -1);
  for (size_t i = 0; i < plan.dispatches.size(); ++i) {
    const PlanDispatch &d = plan.dispatches[i];
    std::vector<int> written = d.written();
    for (int id : d.buffers) {
      bool isWrite = std::find(written.begin(), written.end(), id) != written.end();
      if (isWrite) {
        if (firstWrite[size_t(id)] < 0)
          firstWrite[size_t(id)] = int(i);
      } else {
        lastRead[size_t(id)] = std::max(lastRead[size_t(id)], int(i));
      }
    }
  }
  const int lastDispatch = std::max(int(plan.dispatches.size()) - 1, 0);
  std::set<int> outputs;
  for (const PlanPort &p : plan.outputs)
    outputs.insert(p.buffer);
  plan.intermediateBytes = 0;
  for (PlanBuffer &b : plan.buffers) {
    if (b.kind != BufferKind::Arena)
      continue;
    int first = firstWrite[size_t(b.id)], last = lastRead[size_t(b.id)];
    if (first < 0)
      first = last;
    b.firstUse = b.wholeStep ? 0 : first;
    b.lastUse = std::max(first, last);
    if (outputs.count(b.id) || b.wholeStep)
      b.lastUse = lastDispatch;
  }

  for (BufferLocation where : {BufferLocation::Host, BufferLocation::Device}) {
    uint64_t bytes = 0;
    // Arena: first-fit decreasing. Buffers are placed largest first (ties: earlier definition first), each at
    // the lowest 64-byte aligned offset where it overlaps no already placed buffer whose live range
    // [firstUse, lastUse] intersects its own. Within one dispatch operands and result are all live, so a
    // kernel never sees its output alias an input.
    std::vector<int> arena;
    for (const PlanBuffer &b : plan.buffers)
      if (b.kind == BufferKind::Arena && b.location == where) {
        arena.push_back(b.id);
        plan.intermediateBytes += b.maxBytes;
      }
    std::sort(arena.begin(), arena.end(), [&](int a, int b) {
      const PlanBuffer &x = plan.buffers[size_t(a)], &y = plan.buffers[size_t(b)];
      if (x.maxBytes != y.maxBytes)
        return x.maxBytes > y.maxBytes;
      return x.firstUse != y.firstUse ? x.firstUse < y.firstUse : a < b;
    });
    std::vector<int> placed;
    std::vector<std::pair<uint64_t, uint64_t>> busy;
    for (int id : arena) {
      PlanBuffer &b = plan.buffers[size_t(id)];
      busy.clear();
      for (int other : placed) {
        const PlanBuffer &o = plan.buffers[size_t(other)];
        if (o.firstUse <= b.lastUse && b.firstUse <= o.lastUse && o.maxBytes > 0)
          busy.push_back({o.offset, o.offset + alignUp(o.maxBytes)});
      }
      std::sort(busy.begin(), busy.end());
      uint64_t offset = 0;
      const uint64_t need = alignUp(b.maxBytes);
      for (const auto &[start, end] : busy) {
        if (offset + need <= start)
          break;
        offset = std::max(offset, end);
      }
      b.offset = offset;
      bytes = std::max(bytes, offset + need);
      placed.push_back(id);
    }
    (where == BufferLocation::Host ? plan.arenaBytes : plan.deviceArenaBytes) = bytes;
  }
}

namespace {

/// planMemory's state while it walks the step: buffers by value, ports by name, weights and constants
/// deduplicated, the weights section's cursor.
class PlanBuilder {
public:
  PlanBuilder(mlir::func::FuncOp step, const PlanOptions &options) : step(step), options(options) {
    plan.options = options;
  }

  StatusOr<MemoryPlan> build() {
    for (Status (PlanBuilder::*part)() : {&PlanBuilder::addSymbols, &PlanBuilder::addArguments, &PlanBuilder::addOps,
                                          &PlanBuilder::addResults, &PlanBuilder::pairKvCache})
      if (Status s = (this->*part)(); !s)
        return s;
    plan.weightsBytes = weightsCursor;
    layoutArenas(plan);
    return std::move(plan);
  }

private:
  /// Symbols: every symbol any tensor of the step mentions, plus kiln.sym's, sorted (std::set order).
  Status addSymbols() {
    std::set<std::string> symbolSet;
    for (mlir::Type t : step.getFunctionType().getInputs())
      collectSymbols(t, &symbolSet);
    for (mlir::Type t : step.getFunctionType().getResults())
      collectSymbols(t, &symbolSet);
    step.walk([&](mlir::Operation *op) {
      for (mlir::Type t : op->getResultTypes())
        collectSymbols(t, &symbolSet);
      if (auto sym = mlir::dyn_cast<ir::SymOp>(op))
        symbolSet.insert(sym.getSymbol().str());
    });
    for (const std::string &name : symbolSet) {
      int64_t max;
      if (name == "b")
        max = options.maxBatch;
      else if (name == "s" || name == "r") // r: the rows of a chunk that get logits, at most s
        max = options.maxContext;
      else if (name == "p")
        max = options.maxContext - 1; // s >= 1; jointly p + s <= maxContext (Manifest.max_context)
      else
        return Status::error("step: symbol '" + name + "' has no bound (known: b, s, p, r)");
      plan.symbols.push_back({name, max});
    }
    return Status::ok();
  }

  StatusOr<int> newBuffer(std::string name, BufferKind kind, mlir::Value value) {
    PlanBuffer b;
    b.id = int(plan.buffers.size());
    b.name = std::move(name);
    b.kind = kind;
    b.value = value;
    b.elementType = mlir::cast<mlir::ShapedType>(value.getType()).getElementType();
    StatusOr<uint64_t> bytes = bufferBytes(value.getType(), &b.shape, options);
    if (!bytes.ok())
      return bytes.status();
    b.maxBytes = *bytes;
    plan.buffers.push_back(std::move(b));
    bufferOf[value] = plan.buffers.back().id;
    return plan.buffers.back().id;
  }

  Status addArguments() {
    for (unsigned i = 0; i < step.getNumArguments(); ++i) {
      auto nameAttr = step.getArgAttrOfType<mlir::StringAttr>(i, "kiln.name");
      if (!nameAttr || nameAttr.getValue().empty())
        return Status::error("step: argument " + std::to_string(i) + " has no kiln.name");
      std::string name = nameAttr.getValue().str();
      if (!portNames.insert(name).second)
        return Status::error("step: two ports named '" + name + "'");
      if (!mlir::isa<mlir::RankedTensorType>(step.getArgument(i).getType()))
        return Status::error("step: argument '" + name + "' is not a ranked tensor");
      bool past = llvm::StringRef(name).starts_with("past_");
      StatusOr<int> id = newBuffer(name, past ? BufferKind::KvCache : BufferKind::Input, step.getArgument(i));
      if (!id.ok())
        return Status::error("step: argument '" + name + "': " + id.status().message());
      plan.inputs.push_back({name, *id});
      if (past)
        pastByName[name.substr(5)] = *id;
    }
    return Status::ok();
  }

  void placeWeight(int id) {
    PlanBuffer &b = plan.buffers[size_t(id)];
    b.offset = weightsCursor;
    weightsCursor = alignUp(weightsCursor + b.maxBytes);
  }

  Status addWeight(ir::WeightOp w) {
    std::string name = w.getName().str();
    std::string key = name; // a row chunk (kiln-split-weights) is its own buffer, named after its tensor
    if (std::optional<llvm::ArrayRef<int64_t>> rows = w.getRows())
      key += "[rows " + std::to_string((*rows)[0]) + ":" + std::to_string((*rows)[1]) + "]";
    auto it = weightByName.find(key);
    if (it != weightByName.end()) {
      if (plan.buffers[size_t(it->second)].value.getType() != w.getType())
        return opError(w, "weight '" + name + "' is used with two different types");
      bufferOf[w.getResult()] = it->second;
      return Status::ok();
    }
    StatusOr<int> id = newBuffer(name, BufferKind::Weight, w.getResult());
    if (!id.ok())
      return opError(w, id.status().message());
    PlanBuffer &b = plan.buffers[size_t(*id)];
    b.weightName = name;
    if (std::optional<llvm::StringRef> quant = w.getQuant()) {
      b.quant = parseQuantFormat(quant->str());
      auto type = mlir::cast<mlir::RankedTensorType>(w.getType());
      b.maxBytes = b.quant ? quantizedMatrixBytes(*b.quant, uint64_t(type.getDimSize(0)), uint64_t(type.getDimSize(1))) : 0;
      if (b.maxBytes == 0)
        return opError(w, "weight '" + name + "': quant \"" + quant->str() + "\" does not fit its type");
    }
    placeWeight(*id);
    weightByName[key] = *id;
    return Status::ok();
  }

  Status addConstant(ir::ConstantOp c) {
    std::vector<uint8_t> bytes;
    if (Status s = constantBytes(c.getValue(), &bytes); !s)
      return opError(c, s.message());
    auto key = std::make_pair(c.getType().getAsOpaquePointer(), bytes);
    if (auto it = constantByBytes.find(key); it != constantByBytes.end()) {
      bufferOf[c.getResult()] = it->second;
      return Status::ok();
    }
    std::string loc = locationText(c->getLoc());
    StatusOr<int> id = newBuffer(loc.empty() ? "constant" : loc, BufferKind::Weight, c.getResult());
    if (!id.ok())
      return opError(c, id.status().message());
    PlanBuffer &b = plan.buffers[size_t(*id)];
    if (bytes.size() != b.maxBytes)
      return opError(c, "constant holds " + std::to_string(bytes.size()) + " bytes, its type " +
                            std::to_string(b.maxBytes));
    b.isConstant = true;
    b.constantData = std::move(bytes);
    placeWeight(*id);
    constantByBytes[key] = *id;
    return Status::ok();
  }

  Status addDispatch(mlir::Operation *op) {
    PlanDispatch d;
    d.op = op;
    d.location = locationText(op->getLoc());
    const int index = int(plan.dispatches.size());
    for (mlir::Value operand : op->getOperands()) {
      auto it = bufferOf.find(operand);
      if (it == bufferOf.end())
        return opError(op, "an operand has no buffer (not defined in the step's body)");
      d.buffers.push_back(it->second);
      PlanBuffer &b = plan.buffers[size_t(it->second)];
      if (b.kind == BufferKind::Arena)
        b.lastUse = std::max(b.lastUse, index);
    }
    for (mlir::Value result : op->getResults()) {
      StatusOr<int> id = newBuffer(d.location, BufferKind::Arena, result);
      if (!id.ok())
        return opError(op, id.status().message());
      plan.buffers[size_t(*id)].firstUse = index;
      plan.buffers[size_t(*id)].lastUse = index;
      d.buffers.push_back(*id);
    }
    plan.dispatches.push_back(std::move(d));
    return Status::ok();
  }

  /// Ops, in program order: weights and constants become WEIGHT buffers, every other op a dispatch.
  Status addOps() {
    for (mlir::Operation &opRef : step.getBody().front()) {
      mlir::Operation *op = &opRef;
      if (auto r = mlir::dyn_cast<mlir::func::ReturnOp>(op)) {
        ret = r;
        continue;
      }
      // kiln.group is one dispatch of its body's ops (its kernel composes theirs).
      if (op->getNumRegions() != 0 && !mlir::isa<ir::GroupOp>(op))
        return opError(op, "ops with regions cannot be dispatched");
      if (op->getNumResults() != 1 && (mlir::isa<ir::WeightOp>(op) || mlir::isa<ir::ConstantOp>(op)))
        return opError(op, "expected one result");
      for (mlir::Value v : op->getResults())
        if (!mlir::isa<mlir::RankedTensorType>(v.getType()))
          return opError(op, "a result is not a ranked tensor");
      Status s = mlir::isa<ir::WeightOp>(op)     ? addWeight(mlir::cast<ir::WeightOp>(op))
                 : mlir::isa<ir::ConstantOp>(op) ? addConstant(mlir::cast<ir::ConstantOp>(op))
                                                 : addDispatch(op);
      if (!s)
        return s;
    }
    if (!ret)
      return Status::error("step: no func.return");
    return Status::ok();
  }

  /// Results: named ports; present_* become session-owned KV_CACHE buffers, the rest stay in the arena and
  /// live to the end of the step.
  Status addResults() {
    const int lastDispatch = int(plan.dispatches.size()) - 1;
    std::set<int> resultBuffers;
    for (unsigned i = 0; i < ret.getNumOperands(); ++i) {
      auto nameAttr = step.getResultAttrOfType<mlir::StringAttr>(i, "kiln.name");
      if (!nameAttr || nameAttr.getValue().empty())
        return Status::error("step: result " + std::to_string(i) + " has no kiln.name");
      std::string name = nameAttr.getValue().str();
      if (!portNames.insert(name).second)
        return Status::error("step: two ports named '" + name + "'");
      auto it = bufferOf.find(ret.getOperand(i));
      if (it == bufferOf.end())
        return Status::error("step: result '" + name + "' has no buffer");
      PlanBuffer &b = plan.buffers[size_t(it->second)];
      if (b.kind != BufferKind::Arena || b.firstUse < 0)
        return Status::error("step: result '" + name + "' is " +
                             (b.kind == BufferKind::Weight ? "a weight or constant" : "an argument") +
                             " returned directly; only values computed by the step can be results");
      if (!resultBuffers.insert(b.id).second)
        return Status::error("step: result '" + name + "' returns the same value as another result");
      b.name = name;
      b.lastUse = std::max(lastDispatch, 0);
      if (llvm::StringRef(name).starts_with("present_")) {
        b.kind = BufferKind::KvCache;
        b.firstUse = b.lastUse = -1;
        presentByName[name.substr(8)] = b.id;
      }
      plan.outputs.push_back({name, b.id});
    }
    return Status::ok();
  }

  /// KV cache: past_X pairs with present_X.
  Status pairKvCache() {
    for (const auto &[name, past] : pastByName) {
      auto it = presentByName.find(name);
      if (it == presentByName.end())
        return Status::error("step: argument 'past_" + name + "' has no result 'present_" + name + "'");
      const PlanBuffer &p = plan.buffers[size_t(past)], &q = plan.buffers[size_t(it->second)];
      if (p.elementType != q.elementType || p.shape.size() != q.shape.size())
        return Status::error("step: 'past_" + name + "' and 'present_" + name + "' differ in element type or rank");
      if (p.shape.size() < 3)
        return Status::error("step: 'past_" + name + "' has rank " + std::to_string(p.shape.size()) +
                             "; the KV cache grows along axis 2");
      PlanKvEntry entry;
      entry.name = name;
      entry.pastBuffer = past;
      entry.presentBuffer = it->second;
      entry.reason = "not placed (placeKvCacheInPlace did not run)";
      plan.kvCache.push_back(std::move(entry));
    }
    for (const auto &[name, present] : presentByName)
      if (!pastByName.count(name))
        return Status::error("step: result 'present_" + name + "' has no argument 'past_" + name + "'");
    return Status::ok();
  }

  mlir::func::FuncOp step;
  const PlanOptions &options;
  MemoryPlan plan;
  llvm::DenseMap<mlir::Value, int> bufferOf;
  std::set<std::string> portNames;
  std::map<std::string, int> pastByName, presentByName;
  std::map<std::string, int> weightByName;
  std::map<std::pair<const void *, std::vector<uint8_t>>, int> constantByBytes;
  uint64_t weightsCursor = 0;
  mlir::func::ReturnOp ret;
};

} // namespace

StatusOr<MemoryPlan> planMemory(mlir::func::FuncOp step, const PlanOptions &options) {
  if (options.maxContext <= 0 || options.maxBatch <= 0)
    return Status::error("memory plan: max-context and max-batch must be positive");
  if (!step || step.getBody().empty())
    return Status::error("memory plan: no step function body");
  if (!llvm::hasSingleElement(step.getBody()))
    return Status::error("memory plan: the step function has more than one block");
  return PlanBuilder(step, options).build();
}

//===----------------------------------------------------------------------===//
// KV cache in place
//===----------------------------------------------------------------------===//

bool DispatchLayout::strided() const {
  return appendInPlace || std::any_of(rowCapacity.begin(), rowCapacity.end(), [](int64_t c) { return c > 0; });
}

DispatchLayout dispatchLayout(const MemoryPlan &plan, int dispatch) {
  DispatchLayout layout;
  const PlanDispatch &d = plan.dispatches[size_t(dispatch)];
  for (int id : d.buffers)
    layout.rowCapacity.push_back(plan.buffers[size_t(id)].rowCapacity);
  // An append: kiln.concat(past, new) -> present, past and present views of one entry's storage.
  if (!d.transfer && d.op && mlir::isa<ir::ConcatOp>(d.op) && d.buffers.size() == 3) {
    const PlanBuffer &first = plan.buffers[size_t(d.buffers[0])], &result = plan.buffers[size_t(d.buffers[2])];
    layout.appendInPlace = first.kvEntry >= 0 && first.kvEntry == result.kvEntry && first.rowOffset == result.rowOffset;
  }
  return layout;
}

int placeKvCacheInPlace(MemoryPlan &plan, const KvInPlaceOptions &options, PartitionResult *partition) {
  const size_t nb = plan.buffers.size(), nd = plan.dispatches.size();
  // Readers (dispatch, buffer index in the dispatch) and the writer of every buffer.
  std::vector<std::vector<std::pair<int, int>>> readers(nb);
  std::vector<int> writer(nb, -1);
  for (size_t i = 0; i < nd; ++i) {
    const PlanDispatch &d = plan.dispatches[i];
    std::vector<int> written = d.written();
    for (size_t k = 0; k < d.buffers.size(); ++k) {
      int id = d.buffers[k];
      if (std::find(written.begin(), written.end(), id) != written.end())
        writer[size_t(id)] = int(i);
      else
        readers[size_t(id)].push_back({int(i), int(k)});
    }
  }
  std::set<int> ports;
  for (const PlanPort &p : plan.outputs)
    ports.insert(p.buffer);
  auto opName = [](const PlanDispatch &d) {
    return d.transfer ? std::string("a transfer") : d.op->getName().getStringRef().str();
  };

  // The Vulkan executor binds the KV cache as two halves (ping-pong) until its kernels take views.
  const bool anyVulkan = std::any_of(plan.dispatches.begin(), plan.dispatches.end(),
                                     [](const PlanDispatch &d) { return d.device == DispatchDevice::Vulkan; });
  std::vector<bool> drop(nd, false);
  int placed = 0;
  const int64_t capacity = plan.options.maxContext;
  for (size_t e = 0; e < plan.kvCache.size(); ++e) {
    PlanKvEntry &kv = plan.kvCache[e];
    kv.inPlace = false;
    kv.appendBuffer = -1;
    kv.producer.clear();
    PlanBuffer &past = plan.buffers[size_t(kv.pastBuffer)], &present = plan.buffers[size_t(kv.presentBuffer)];
    const std::string pastName = "past_" + kv.name, presentName = "present_" + kv.name;
    if (anyVulkan && !options.vulkan) {
      kv.reason = "a vulkan artifact keeps the two-buffer KV cache";
      continue;
    }
    if (kv.seqAxis != 2 || past.shape.size() != 4 || present.shape.size() != 4) {
      kv.reason = pastName + " is not a rank-4 cache growing along axis 2";
      continue;
    }
    if (past.copyOf >= 0 || present.copyOf >= 0 || past.location != present.location) {
      kv.reason = pastName + " / " + presentName + " have copies on another device";
      continue;
    }
    // The append: past's only reader is kiln.concat(past, new) along axis 2, and it writes present.
    const std::vector<std::pair<int, int>> &pastReaders = readers[size_t(past.id)];
    if (pastReaders.size() != 1) {
      kv.reason = pastName + " is read by " + std::to_string(pastReaders.size()) + " dispatches, not by one append";
      continue;
    }
    const int ci = pastReaders[0].first;
    const PlanDispatch &cat = plan.dispatches[size_t(ci)];
    auto concat = cat.transfer || !cat.op ? ir::ConcatOp() : mlir::dyn_cast<ir::ConcatOp>(cat.op);
    if (!concat || pastReaders[0].second != 0 || cat.buffers.size() != 3 || cat.buffers[2] != present.id ||
        concat.getAxis() != 2 || cat.buffers[1] == past.id) {
      kv.reason = pastName + " is read by " + opName(cat) + ", not by the append kiln.concat(" + pastName +
                  ", new) {axis = 2} -> " + presentName;
      continue;
    }
    // Every reader of present: kiln.attention's key or value, on the append's device.
    std::string why;
    for (auto [r, k] : readers[size_t(present.id)]) {
      const PlanDispatch &d = plan.dispatches[size_t(r)];
      if (d.transfer)
        why = presentName + " is copied by a transfer";
      else if (!mlir::isa<ir::AttentionOp>(d.op) || (k != 1 && k != 2))
        why = presentName + " is read by " + opName(d) + " (operand " + std::to_string(k) +
              "), whose kernel takes no strided cache view";
      else if (d.device != cat.device)
        why = presentName + " is read on " + deviceName(d.device) + ", appended on " + deviceName(cat.device);
      if (!why.empty())
        break;
    }
    if (!why.empty()) {
      kv.reason = why;
      continue;
    }
    // One storage buffer [b, h, capacity, d]: present at its bound (p + s = max context) is exactly that.
    kv.inPlace = true;
    kv.capacity = capacity;
    kv.reason.clear();
    for (PlanBuffer *b : {&past, &present}) {
      b->kvEntry = int(e);
      b->rowCapacity = capacity;
      b->rowOffset = ir::SymExpr::constant(0);
    }
    ++placed;

    // The producer of the new rows writes them into the cache slot: no temporary, no append dispatch.
    const int nw = cat.buffers[1];
    PlanBuffer &fresh = plan.buffers[size_t(nw)];
    const int w = writer[size_t(nw)];
    if (fresh.kind != BufferKind::Arena || fresh.copyOf >= 0 || ports.count(nw) || readers[size_t(nw)].size() != 1 ||
        w < 0 || fresh.shape.size() != 4 || fresh.elementType != present.elementType)
      continue;
    const PlanDispatch &producer = plan.dispatches[size_t(w)];
    if (producer.transfer || producer.device != cat.device || producer.written().size() != 1 ||
        !mlir::isa<ir::RopeOp, ir::TransposeOp>(producer.op))
      continue;
    fresh.kind = BufferKind::KvCache;
    fresh.kvEntry = int(e);
    fresh.rowCapacity = capacity;
    fresh.rowOffset = ir::SymExpr::symbol("p");
    fresh.firstUse = fresh.lastUse = -1;
    fresh.offset = 0;
    kv.appendBuffer = nw;
    kv.producer = opName(producer);
    drop[size_t(ci)] = true;
  }

  // Drop the folded appends.
  std::vector<int> newIndex(nd, -1);
  std::vector<PlanDispatch> kept;
  for (size_t i = 0; i < nd; ++i) {
    if (drop[i])
      continue;
    newIndex[i] = int(kept.size());
    kept.push_back(std::move(plan.dispatches[i]));
  }
  plan.dispatches = std::move(kept);
  if (partition) {
    std::vector<PartitionEntry> entries;
    for (PartitionEntry &pe : partition->entries) {
      if (pe.dispatch >= 0 && drop[size_t(pe.dispatch)]) {
        --(pe.device == DispatchDevice::Vulkan ? partition->vulkanOps : partition->cpuOps);
        continue;
      }
      pe.dispatch = pe.dispatch >= 0 ? newIndex[size_t(pe.dispatch)] : -1;
      entries.push_back(std::move(pe));
    }
    partition->entries = std::move(entries);
    for (int &t : partition->transferDispatches)
      t = newIndex[size_t(t)];
  }
  layoutArenas(plan);
  return placed;
}

std::string kvCacheSummary(const MemoryPlan &plan) {
  if (plan.kvCache.empty())
    return "kv cache: none";
  size_t inPlace = 0;
  std::map<std::string, int> producers;
  int appends = 0;
  std::string firstReason;
  for (const PlanKvEntry &e : plan.kvCache) {
    if (!e.inPlace) {
      if (firstReason.empty())
        firstReason = e.name + ": " + e.reason;
      continue;
    }
    ++inPlace;
    if (e.appendBuffer >= 0)
      ++producers[e.producer];
    else
      ++appends;
  }
  // Entries come in key / value pairs per layer: "22 x 2 buffers".
  auto count = [&](size_t n) {
    return n % 2 == 0 ? std::to_string(n / 2) + " x 2 buffers" : std::to_string(n) + " buffers";
  };
  std::string line = "kv cache: " + count(inPlace) + " in place";
  if (inPlace) {
    line += ", capacity " + std::to_string(plan.options.maxContext) + " (";
    std::string parts;
    for (const auto &[op, n] : producers)
      parts += (parts.empty() ? "" : ", ") + op + " x " + std::to_string(n);
    if (!parts.empty())
      parts += " write into the cache";
    if (appends)
      parts += (parts.empty() ? "" : "; ") + std::to_string(appends) + " appends copy the new rows";
    line += parts + ")";
  }
  if (inPlace < plan.kvCache.size())
    line += "; " + count(plan.kvCache.size() - inPlace) + " copied forward each step (" + firstReason + ")";
  return line;
}

} // namespace kiln::passes
