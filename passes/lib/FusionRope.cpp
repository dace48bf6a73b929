//===- FusionRope.cpp - rotate-half RoPE -> kiln.rope ---------------------===//
//
// Anchored on every kiln.concat [neg(a), b] along the last axis of a rank-4 tensor (the rotate-half of
// transformers' apply_rotary_pos_emb). The whole pattern, checked structurally:
//   x1 = slice(rot, -1, 0, r/2), x2 = slice(rot, -1, r/2, r)      (r = the last dim of rot, even)
//   out = add(mul(rot, cos(E)), mul(concat(neg(x2), x1), sin(E)))  (same E in cos and sin)
//   E = reshape(concat(f, f))  [P0, 1, s, r]                        (the same f in both halves)
//   f = mul(reshape(convert(positions)), constant inv_freq)  [P0, s, r/2], positions integer [P0, s]
// rot is x (full rotary), or slice(x, -1, 0, r) with out concatenated with slice(x, -1, r, d) (partial
// rotary: the concat is what kiln.rope replaces). P0 is 1 (broadcast to [b, s]) or x's batch.
//
//===----------------------------------------------------------------------===//
#include "kiln/passes/FusionMatch.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

using namespace mlir;
using namespace kiln::ir;

namespace kiln::passes {
using namespace detail;

namespace {

bool isSliceOf(Value v, int64_t axis, int64_t start, int64_t end, Value &input) {
  auto s = def<SliceOp>(v);
  if (!s || (int64_t)s.getAxis() != axis || (int64_t)s.getStart() != start || (int64_t)s.getEnd() != end)
    return false;
  input = s.getInput();
  return true;
}

struct RopeMatch {
  Operation *root = nullptr;
  Value input, positions; // positions: integer [P0, s]
  DenseElementsAttr invFreq;
  int64_t half = 0;
};

/// The frequency table under E = reshape(concat(f, f)): sets positions and inv_freq.
bool matchTables(Value e, const ir::SymShape &rotShape, RopeMatch &m, std::string &why) {
  int64_t h = m.half, r = 2 * h;
  auto reshape = def<ReshapeOp>(e);
  if (!reshape) {
    why = "the cos/sin argument is not reshape(concat(f, f))";
    return false;
  }
  auto emb = def<ConcatOp>(reshape.getInput());
  if (!emb || emb.getInputs().size() != 2 || emb.getInputs()[0] != emb.getInputs()[1]) {
    why = "the cos/sin table is not concat(f, f) of the same f";
    return false;
  }
  auto embShape = shapeOf(emb.getResult());
  auto eShape = shapeOf(e);
  if (!embShape || embShape->size() != 3 || emb.getAxis() != 2 || (*embShape)[2] != ir::SymExpr::constant(r)) {
    why = "the cos/sin table is not [P, s, r] with r = " + std::to_string(r);
    return false;
  }
  const ir::SymExpr &p0 = (*embShape)[0], &s = (*embShape)[1];
  ir::SymShape expectE = {p0, ir::SymExpr::constant(1), s, ir::SymExpr::constant(r)};
  if (!eShape || *eShape != expectE) {
    why = "the cos/sin table is not [P, 1, s, r]";
    return false;
  }
  if (s != rotShape[2] || !(p0.isOne() || p0 == rotShape[0])) {
    why = "the cos/sin table " + ir::formatShape(*eShape) + " does not index the rotated " +
          ir::formatShape(rotShape) + " by its sequence dim";
    return false;
  }
  auto freqs = def<MulOp>(emb.getInputs()[0]);
  if (!freqs) {
    why = "f is not positions * inv_freq";
    return false;
  }
  Value pos3, table;
  for (auto [a, b] : {std::pair{freqs.getLhs(), freqs.getRhs()}, std::pair{freqs.getRhs(), freqs.getLhs()}})
    if (def<ConstantOp>(b) && def<ReshapeOp>(a)) {
      pos3 = a;
      table = b;
    }
  if (!table) {
    why = "f is not reshape(positions) * constant inv_freq";
    return false;
  }
  auto dense = dyn_cast<DenseElementsAttr>(def<ConstantOp>(table).getValue());
  auto tableType = cast<RankedTensorType>(table.getType());
  if (!dense || !tableType.getElementType().isF32() || tableType.getNumElements() != h ||
      tableType.getShape().back() != h) {
    why = "inv_freq is not a dense f32 constant of r/2 = " + std::to_string(h) + " values";
    return false;
  }
  auto conv = def<ConvertOp>(def<ReshapeOp>(pos3).getInput());
  ir::SymShape expectPos3 = {p0, s, ir::SymExpr::constant(1)};
  if (!conv || shapeOf(pos3) != std::optional<ir::SymShape>(expectPos3)) {
    why = "the positions are not reshape(convert(positions)) to [P, s, 1]";
    return false;
  }
  Value positions = conv.getInput();
  auto posShape = shapeOf(positions);
  if (!isa<IntegerType>(cast<ShapedType>(positions.getType()).getElementType()) || !posShape ||
      *posShape != ir::SymShape{p0, s}) {
    why = "the positions are not integers [P, s]";
    return false;
  }
  m.positions = positions;
  m.invFreq = dense.reshape(RankedTensorType::get({h}, tableType.getElementType()));
  return true;
}

bool matchRope(ConcatOp rotated, RopeMatch &m, std::string &why) {
  auto neg = def<NegOp>(rotated.getInputs()[0]);
  auto shape = shapeOf(rotated.getResult());
  if (!shape || shape->size() != 4 || rotated.getAxis() != 3 || rotated.getInputs().size() != 2) {
    why = "not a rotate-half concat over the last axis of a rank-4 tensor";
    return false;
  }
  Value x1Src = rotated.getInputs()[1];
  auto x1 = def<SliceOp>(x1Src);
  if (!x1 || x1.getAxis() != 3 || x1.getStart() != 0) {
    why = "the second half of the rotate-half is not slice(rot, 0, r/2)";
    return false;
  }
  Value rot = x1.getInput();
  std::optional<int64_t> r = lastDimConstant(rot);
  if (!r || *r % 2 || (int64_t)x1.getEnd() != *r / 2) {
    why = "the slices are not at r/2 of an even rotary dim";
    return false;
  }
  int64_t h = *r / 2;
  Value rot2;
  if (!isSliceOf(neg.getInput(), 3, h, *r, rot2) || rot2 != rot) {
    why = "the negated half is not slice(rot, r/2, r) of the same rot";
    return false;
  }
  m.half = h;
  auto rotShape = shapeOf(rot);

  for (Operation *u : rotated->getUsers()) {
    auto mulSin = dyn_cast<MulOp>(u);
    if (!mulSin)
      continue;
    auto sin = def<SinOp>(otherOperand(mulSin, rotated.getResult()));
    if (!sin)
      continue;
    for (Operation *u2 : mulSin->getUsers()) {
      auto sum = dyn_cast<AddOp>(u2);
      if (!sum)
        continue;
      auto mulCos = def<MulOp>(otherOperand(sum, mulSin.getResult()));
      if (!mulCos)
        continue;
      auto cos = def<CosOp>(otherOperand(mulCos, rot));
      if (!cos)
        continue;
      if (cos.getInput() != sin.getInput()) {
        why = "cos and sin are not of the same table";
        return false;
      }
      if (sum.getType() != rot.getType()) {
        why = "the rotated result is broadcast beyond the input";
        return false;
      }
      if (!matchTables(cos.getInput(), *rotShape, m, why))
        return false;
      m.root = sum;
      m.input = rot;
      // Partial rotary: concat(sum, slice(x, r, d)) with rot = slice(x, 0, r).
      Value x;
      if (isSliceOf(rot, 3, 0, *r, x)) {
        std::optional<int64_t> d = lastDimConstant(x);
        for (Operation *u3 : sum->getUsers()) {
          auto cat = dyn_cast<ConcatOp>(u3);
          Value passX;
          if (cat && d && cat.getAxis() == 3 && cat.getInputs().size() == 2 &&
              cat.getInputs()[0] == sum.getResult() && isSliceOf(cat.getInputs()[1], 3, *r, *d, passX) &&
              passX == x && cat.getType() == x.getType()) {
            m.root = cat;
            m.input = x;
            break;
          }
        }
      }
      return true;
    }
  }
  why = "the rotate-half is not added as rot * cos + rotated * sin";
  return false;
}

} // namespace

void fuseRope(ModuleOp module, FusionReport *report) {
  SmallVector<ConcatOp> anchors;
  module.walk([&](ConcatOp op) {
    if (!op.getInputs().empty() && def<NegOp>(op.getInputs()[0]))
      anchors.push_back(op);
  });
  for (ConcatOp anchor : anchors) {
    RopeMatch m;
    std::string why;
    if (!matchRope(anchor, m, why)) {
      noteUnfused(report, anchor, why);
      continue;
    }
    OpBuilder b(m.root);
    Location loc = m.root->getLoc();
    auto xShape = *shapeOf(m.input);
    Value positions = m.positions;
    auto posShape = *shapeOf(positions);
    if (posShape[0] != xShape[0]) {
      auto type = ir::makeTensorType(b.getContext(), {xShape[0], xShape[2]},
                                     cast<ShapedType>(positions.getType()).getElementType());
      positions = BroadcastToOp::create(b, loc, type, positions).getResult();
    }
    Value invFreq = ConstantOp::create(b, loc, m.invFreq.getType(), m.invFreq).getResult();
    Value fused = RopeOp::create(b, loc, m.input.getType(), m.input, positions, invFreq, false).getResult();
    m.root->getResult(0).replaceAllUsesWith(fused);
    std::optional<int64_t> d = lastDimConstant(m.input);
    noteFused(report, "rope", fused.getDefiningOp(),
              d && *d != 2 * m.half ? "partial, " + std::to_string(2 * m.half) + " of " + std::to_string(*d)
                                    : std::string());
  }
}

} // namespace kiln::passes
