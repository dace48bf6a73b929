//===- FusionMatmulGroups.cpp - Linear projections of one input as one kiln.matmul_group ===//
//
// A decode step runs each projection as its own GEMV dispatch: Q, K and V of a layer read the same normed x,
// so do gate and up, and SwiGLU then adds a silu and a mul dispatch. kiln.matmul_group computes them in one
// kernel (the Vulkan backend's matmul.comp once per weight), and with silu_mul folds silu(gate) * up into
// its epilogue: per Llama layer 3 + 4 dispatches become 2. Block-quantized weights (--weights q8_0|q4_0) are
// grouped with weights of their own format only (the kernel reads every segment with one quant.glsl reader).
//
//===----------------------------------------------------------------------===//
#include "kiln/passes/Fusion.h"
#include "kiln/passes/FusionMatch.h"

#include "kiln/ir/KilnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#include "llvm/ADT/MapVector.h"

using namespace mlir;

namespace kiln::passes {

namespace detail {

ir::WeightOp linearWeight(Value w, bool quantized) {
  if (auto c = def<ir::ConvertOp>(w))
    w = c.getInput();
  auto weight = def<ir::WeightOp>(w);
  // Block-quantized weights only where the caller handles them: the norm and residual folds do not (the
  // quantized GEMV quantizes its lhs as stored).
  if (!weight || weight.getRows() || (weight.getQuant() && !quantized))
    return {};
  auto type = dyn_cast<RankedTensorType>(weight.getType());
  return type && type.getRank() == 2 && type.hasStaticShape() ? weight : ir::WeightOp();
}

} // namespace detail

using namespace detail;

namespace {

constexpr size_t kMaxGroupWeights = 4; // matmul_group's kernel (codegen/spirv matmul_group.glsl)

/// How the weight is stored: its element type and block-quantized format, if any (a group's kernel reads all its
/// weights in one storage type).
std::pair<Type, Attribute> storedType(Value w) {
  ir::WeightOp weight = linearWeight(w, /*quantized=*/true);
  return {weight.getType().getElementType(), weight.getQuantAttr()};
}

/// A transpose_b matmul of a Linear weight (block-quantized or not) in `block`.
bool isLinear(ir::MatmulOp m, Block *block) {
  return m && m->getBlock() == block && m.getTransposeB() && linearWeight(m.getRhs(), /*quantized=*/true);
}

/// "q_proj + k_proj": the matmuls' weights by the last component of their names, ".weight" dropped
/// ("model.layers.0.self_attn.q_proj.weight" -> "q_proj").
std::string names(llvm::ArrayRef<ir::MatmulOp> matmuls) {
  std::string s;
  for (ir::MatmulOp m : matmuls) {
    llvm::StringRef name = linearWeight(m.getRhs(), /*quantized=*/true).getName();
    name.consume_back(".weight");
    size_t dot = name.rfind('.');
    s += (s.empty() ? "" : " + ") + (dot == llvm::StringRef::npos ? name : name.substr(dot + 1)).str();
  }
  return s;
}

/// Moves the definition of weight operand `w` (the kiln.weight, and its convert) before `at` when it is not
/// already: both are pure and read nothing else, so their other uses stay dominated.
void hoistWeight(Value w, Operation *at) {
  auto c = def<ir::ConvertOp>(w);
  Operation *weight = (c ? c.getInput() : w).getDefiningOp();
  if (weight->getBlock() == at->getBlock() && at->isBeforeInBlock(weight))
    weight->moveBefore(at);
  if (c && c->getBlock() == at->getBlock() && at->isBeforeInBlock(c))
    c->moveBefore(at);
}

/// Builds the group before `at`; null (and nothing changed) when `accept` rejects it (its reason reported).
ir::MatmulGroupOp buildGroup(llvm::ArrayRef<ir::MatmulOp> matmuls, bool siluMul, TypeRange results, Operation *at,
                             const MatmulGroupFilter &accept, FusionReport *report) {
  OpBuilder b(at);
  llvm::SmallVector<Value> weights;
  llvm::SmallVector<Location> locs;
  for (ir::MatmulOp m : matmuls) {
    weights.push_back(m.getRhs());
    locs.push_back(m->getLoc());
  }
  ir::MatmulOp first = matmuls.front();
  auto group = ir::MatmulGroupOp::create(b, b.getFusedLoc(locs), results, first.getLhs(), weights,
                                         /*norm_weight=*/Value(), /*residual=*/Value(), /*normed=*/Value(),
                                         b.getBoolAttr(siluMul),
                                         /*norm_eps=*/FloatAttr(), /*norm_unit_offset=*/UnitAttr());
  if (accept) {
    std::string why = accept(group.getOperation());
    if (!why.empty()) {
      group->erase();
      noteUnfused(report, matmuls.front(), "no matmul_group (" + names(matmuls) + "): " + why);
      return {};
    }
  }
  return group;
}

/// mul(silu(x Wg^T), x Wu^T) (either operand order), each product and the silu read only there, Wg and Wu of
/// one shape: matmul_group {silu_mul} (x, Wg, Wu) in place of the mul.
int fuseSwiGlu(func::FuncOp func, const MatmulGroupFilter &accept, FusionReport *report) {
  llvm::SmallVector<ir::MulOp> muls;
  func.walk([&](ir::MulOp m) { muls.push_back(m); });
  int fused = 0;
  for (ir::MulOp mul : muls) {
    for (int order = 0; order < 2; ++order) {
      auto silu = def<ir::SiluOp>(mul->getOperand(order));
      if (!silu || !silu->hasOneUse())
        continue;
      auto gate = def<ir::MatmulOp>(silu.getInput()), up = def<ir::MatmulOp>(mul->getOperand(1 - order));
      Block *block = mul->getBlock();
      if (!isLinear(gate, block) || !isLinear(up, block) || gate == up || gate.getLhs() != up.getLhs() ||
          !gate->hasOneUse() || !up->hasOneUse() || gate.getType() != up.getType() ||
          gate.getType() != mul.getType() || gate.getRhs().getType() != up.getRhs().getType() ||
          storedType(gate.getRhs()) != storedType(up.getRhs()))
        continue;
      ir::MatmulGroupOp group = buildGroup({gate, up}, true, mul->getResultTypes(), mul, accept, report);
      if (!group)
        break;
      mul.getResult().replaceAllUsesWith(group.getResults()[0]);
      noteFused(report, "matmul_group", gate, "silu_mul: " + names({gate, up}));
      mul->erase();
      silu->erase();
      gate->erase();
      up->erase();
      ++fused;
      break;
    }
  }
  return fused;
}

/// Linear matmuls of one lhs whose weights are stored in one element type (in block order, at most
/// kMaxGroupWeights at a time): one matmul_group before the first, the weights' definitions hoisted above it.
int fuseSiblings(func::FuncOp func, const MatmulGroupFilter &accept, FusionReport *report) {
  // By (lhs, stored weight type), in the order of their first reader.
  llvm::MapVector<std::pair<Value, std::pair<Type, Attribute>>, llvm::SmallVector<ir::MatmulOp>> byLhs;
  func.walk([&](ir::MatmulOp m) {
    if (isLinear(m, m->getBlock()))
      byLhs[{m.getLhs(), storedType(m.getRhs())}].push_back(m);
  });
  int fused = 0;
  for (auto &entry : byLhs) {
    llvm::ArrayRef<ir::MatmulOp> all = entry.second;
    for (size_t begin = 0; begin + 1 < all.size(); begin += kMaxGroupWeights) {
      llvm::ArrayRef<ir::MatmulOp> matmuls = all.slice(begin, std::min(kMaxGroupWeights, all.size() - begin));
      if (matmuls.size() < 2)
        break;
      Operation *at = matmuls.front();
      llvm::SmallVector<Type> results;
      for (ir::MatmulOp m : matmuls) {
        hoistWeight(m.getRhs(), at);
        results.push_back(m.getType());
      }
      ir::MatmulGroupOp group = buildGroup(matmuls, false, results, at, accept, report);
      if (!group)
        continue;
      noteFused(report, "matmul_group", matmuls.front(), names(matmuls));
      for (size_t i = 0; i < matmuls.size(); ++i) {
        ir::MatmulOp m = matmuls[i];
        m.getResult().replaceAllUsesWith(group.getResults()[i]);
        m->erase();
      }
      ++fused;
    }
  }
  return fused;
}

} // namespace

void fuseMatmulGroups(ModuleOp module, FusionReport *report, const MatmulGroupFilter &accept) {
  module.walk([&](func::FuncOp func) {
    fuseSwiGlu(func, accept, report);
    fuseSiblings(func, accept, report);
  });
}

void fuseMatmulGroups(ModuleOp module, FusionReport *report) { fuseMatmulGroups(module, report, nullptr); }

} // namespace kiln::passes
