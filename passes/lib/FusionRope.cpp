//===- FusionRope.cpp - rotate-half and interleaved RoPE -> kiln.rope -----===//
//
// Rotate-half (Llama, transformers' apply_rotary_pos_emb), anchored on every kiln.concat [neg(a), b] along
// the last axis of a rank-4 tensor:
//   x1 = slice(rot, -1, 0, r/2), x2 = slice(rot, -1, r/2, r)      (r = the last dim of rot, even)
//   out = add(mul(rot, cos(E)), mul(concat(neg(x2), x1), sin(E)))  (same E in cos and sin)
//   E = reshape(concat(f, f))  [P0, 1, s, r]                        (the same f in both halves)
// Interleaved (GPT-J's rotate_every_two: pairs (x[2i], x[2i+1])), anchored on every kiln.concat with a
// kiln.neg input along the last axis of a rank-5 tensor:
//   y = reshape(rot) [.., r/2, 2]; x1 = slice(y, 4, 0, 1), x2 = slice(y, 4, 1, 2)
//   out = add(mul(rot, C), mul(reshape(concat(neg(x2), x1)) [.., r], S))
//   C, S = repeat-pairs(cos(f)), repeat-pairs(sin(f)), or cos(T), sin(T) with T = repeat-pairs(f), where
//   repeat-pairs(t) = reshape(broadcast_to(reshape(t, [P0, 1, s, r/2, 1]), [.., 2]), [P0, 1, s, r])
//   (torch.repeat_interleave(t, 2, -1): entry i serves the pair 2i, 2i + 1), the same f for cos and sin.
// Both:
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
  bool interleaved = false;
};

/// f = mul(reshape(convert(positions)), constant inv_freq) of shape [P0, s, r/2]: sets positions, inv_freq.
bool matchFreqs(Value f, const ir::SymExpr &p0, const ir::SymExpr &s, RopeMatch &m, std::string &why);

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
  return matchFreqs(emb.getInputs()[0], p0, s, m, why);
}

bool matchFreqs(Value f, const ir::SymExpr &p0, const ir::SymExpr &s, RopeMatch &m, std::string &why) {
  int64_t h = m.half;
  auto freqs = def<MulOp>(f);
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

/// out = add(mul(rot, C), mul(rotated, S)) over the users of `rotated` (rank 4, rot's type): C and S are
/// passed to `tables` (which checks them and sets the positions and inv_freq); then the partial-rotary concat
/// with slice(x, r, d) when rot = slice(x, 0, r). Sets m.root and m.input.
template <typename Tables>
bool matchRotation(Value rot, Value rotated, RopeMatch &m, std::string &why, Tables tables) {
  int64_t r = 2 * m.half;
  for (Operation *u : rotated.getUsers()) {
    auto mulSin = dyn_cast<MulOp>(u);
    if (!mulSin)
      continue;
    Value sinTable = otherOperand(mulSin, rotated);
    for (Operation *u2 : mulSin->getUsers()) {
      auto sum = dyn_cast<AddOp>(u2);
      if (!sum)
        continue;
      auto mulCos = def<MulOp>(otherOperand(sum, mulSin.getResult()));
      if (!mulCos)
        continue;
      Value cosTable = otherOperand(mulCos, rot);
      if (!cosTable)
        continue;
      if (sum.getType() != rot.getType()) {
        why = "the rotated result is broadcast beyond the input";
        return false;
      }
      if (!tables(cosTable, sinTable))
        return false;
      m.root = sum;
      m.input = rot;
      // Partial rotary: concat(sum, slice(x, r, d)) with rot = slice(x, 0, r).
      Value x;
      if (isSliceOf(rot, 3, 0, r, x)) {
        std::optional<int64_t> d = lastDimConstant(x);
        for (Operation *u3 : sum->getUsers()) {
          auto cat = dyn_cast<ConcatOp>(u3);
          Value passX;
          if (cat && d && cat.getAxis() == 3 && cat.getInputs().size() == 2 &&
              cat.getInputs()[0] == sum.getResult() && isSliceOf(cat.getInputs()[1], 3, r, *d, passX) &&
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
  why = m.interleaved ? "the rotate-every-two is not added as rot * cos + rotated * sin"
                      : "the rotate-half is not added as rot * cos + rotated * sin";
  return false;
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
  return matchRotation(rot, rotated.getResult(), m, why, [&](Value c, Value sTable) {
    auto cos = def<CosOp>(c);
    auto sin = def<SinOp>(sTable);
    if (!cos || !sin) {
      why = "the rotate-half is not multiplied by cos and sin tables";
      return false;
    }
    if (cos.getInput() != sin.getInput()) {
      why = "cos and sin are not of the same table";
      return false;
    }
    return matchTables(cos.getInput(), *rotShape, m, why);
  });
}

/// t = repeat-pairs(inner): reshape(broadcast_to(reshape(inner, [P, 1, s, h, 1]), [P, 1, s, h, 2]),
/// [P, 1, s, 2h]) with inner [P, s, h]; P is 1 or rot's batch, s rot's sequence dim. Sets inner and P.
bool matchRepeatPairs(Value t, const ir::SymShape &rotShape, int64_t h, Value &inner, ir::SymExpr &p0,
                      std::string &why) {
  auto one = ir::SymExpr::constant(1);
  auto flat = def<ReshapeOp>(t);
  auto bcast = flat ? def<BroadcastToOp>(flat.getInput()) : BroadcastToOp();
  auto expand = bcast ? def<ReshapeOp>(bcast.getInput()) : ReshapeOp();
  if (!expand) {
    why = "the cos/sin table is not repeated in pairs (reshape(broadcast_to(reshape(t, [.., r/2, 1]), [.., 2])))";
    return false;
  }
  auto ts = shapeOf(t), bs = shapeOf(bcast.getResult()), es = shapeOf(expand.getResult()),
       is = shapeOf(expand.getInput());
  if (!ts || !bs || !es || !is || ts->size() != 4 || is->size() != 3) {
    why = "the cos/sin table is not [P, 1, s, r] repeated in pairs from [P, s, r/2]";
    return false;
  }
  p0 = (*is)[0];
  const ir::SymExpr &s = (*is)[1];
  auto H = ir::SymExpr::constant(h);
  if ((*is)[2] != H || *es != ir::SymShape{p0, one, s, H, one} ||
      *bs != ir::SymShape{p0, one, s, H, ir::SymExpr::constant(2)} ||
      *ts != ir::SymShape{p0, one, s, ir::SymExpr::constant(2 * h)}) {
    if ((*is)[2] == H && es->size() == 5 && (*es)[3] == one && (*es)[4] == H)
      why = "the cos/sin table repeats each frequency over halves, not in pairs";
    else
      why = "the cos/sin table " + ir::formatShape(*ts) + " is not [P, 1, s, r] repeated in pairs from [P, s, r/2]";
    return false;
  }
  if (s != rotShape[2] || !(p0.isOne() || p0 == rotShape[0])) {
    why = "the cos/sin table " + ir::formatShape(*ts) + " does not index the rotated " + ir::formatShape(rotShape) +
          " by its sequence dim";
    return false;
  }
  inner = expand.getInput();
  return true;
}

/// The interleaved tables C, S: repeat-pairs(cos(f)), repeat-pairs(sin(f)), or cos(T), sin(T) with
/// T = repeat-pairs(f); the same f in both.
bool matchPairTables(Value c, Value sTable, const ir::SymShape &rotShape, RopeMatch &m, std::string &why) {
  Value fc, fs;
  ir::SymExpr p0c, p0s;
  auto cosOuter = def<CosOp>(c);
  auto sinOuter = def<SinOp>(sTable);
  if (cosOuter && sinOuter) {
    // cos(T), sin(T) of one angle table T = repeat-pairs(f).
    if (cosOuter.getInput() != sinOuter.getInput()) {
      why = "cos and sin are not of the same table";
      return false;
    }
    if (!matchRepeatPairs(cosOuter.getInput(), rotShape, m.half, fc, p0c, why))
      return false;
    return matchFreqs(fc, p0c, rotShape[2], m, why);
  }
  if (!matchRepeatPairs(c, rotShape, m.half, fc, p0c, why) || !matchRepeatPairs(sTable, rotShape, m.half, fs, p0s, why))
    return false;
  auto cos = def<CosOp>(fc);
  auto sin = def<SinOp>(fs);
  if (!cos || !sin) {
    why = "the rotate-every-two is not multiplied by cos and sin tables";
    return false;
  }
  if (cos.getInput() != sin.getInput() || p0c != p0s) {
    why = "cos and sin are not of the same frequencies";
    return false;
  }
  return matchFreqs(cos.getInput(), p0c, rotShape[2], m, why);
}

/// GPT-J's rotate_every_two: reshape(concat(neg(slice(y, 4, 1, 2)), slice(y, 4, 0, 1))) with y =
/// reshape(rot) [.., r/2, 2].
bool matchInterleavedRope(ConcatOp pairsCat, RopeMatch &m, std::string &why) {
  m.interleaved = true;
  auto shape = shapeOf(pairsCat.getResult());
  if (!shape || shape->size() != 5 || pairsCat.getAxis() != 4 || pairsCat.getInputs().size() != 2 ||
      (*shape)[4] != ir::SymExpr::constant(2) || !(*shape)[3].isConstant()) {
    why = "not a rotate-every-two concat of pairs [.., r/2, 2] over the last axis of a rank-5 tensor";
    return false;
  }
  int64_t h = (*shape)[3].getConstant();
  auto neg = def<NegOp>(pairsCat.getInputs()[0]);
  if (!neg) {
    why = "the sign is on the second element of each pair: rotate_every_two is (-x[2i+1], x[2i])";
    return false;
  }
  Value y, y2;
  bool negOdd = isSliceOf(neg.getInput(), 4, 1, 2, y);
  bool secondEven = isSliceOf(pairsCat.getInputs()[1], 4, 0, 1, y2);
  if (!negOdd || !secondEven) {
    Value a, b;
    if (isSliceOf(neg.getInput(), 4, 0, 1, a) && isSliceOf(pairsCat.getInputs()[1], 4, 1, 2, b))
      why = "the pairs are (-x[2i], x[2i+1]), not rotate_every_two's (-x[2i+1], x[2i])";
    else
      why = "the pair is not (-slice(y, 1, 2), slice(y, 0, 1)) along the last axis";
    return false;
  }
  if (y != y2) {
    why = "the two elements of each pair come from different tensors";
    return false;
  }
  auto pairs = def<ReshapeOp>(y);
  if (!pairs) {
    why = "the pairs are not reshape(rot) to [.., r/2, 2]";
    return false;
  }
  Value rot = pairs.getInput();
  auto rotShape = shapeOf(rot), yShape = shapeOf(y);
  if (!rotShape || !yShape || rotShape->size() != 4 || (*rotShape)[3] != ir::SymExpr::constant(2 * h) ||
      *yShape != ir::SymShape{(*rotShape)[0], (*rotShape)[1], (*rotShape)[2], ir::SymExpr::constant(h),
                              ir::SymExpr::constant(2)}) {
    why = "the pairs are not reshape(rot [b, h, s, r]) to [b, h, s, r/2, 2]";
    return false;
  }
  // The flattened rotation: reshape(concat) back to rot's type.
  Value rotated;
  for (Operation *u : pairsCat->getUsers())
    if (auto flat = dyn_cast<ReshapeOp>(u); flat && flat.getType() == rot.getType())
      rotated = flat.getResult();
  if (!rotated) {
    why = "the rotated pairs are not flattened back to the rotated channels";
    return false;
  }
  m.half = h;
  return matchRotation(rot, rotated, m, why,
                       [&](Value c, Value sTable) { return matchPairTables(c, sTable, *rotShape, m, why); });
}

} // namespace

void fuseRope(ModuleOp module, FusionReport *report) {
  SmallVector<ConcatOp> anchors;
  auto isPairs = [](ConcatOp op) { return cast<RankedTensorType>(op.getType()).getRank() == 5; };
  module.walk([&](ConcatOp op) {
    if (op.getInputs().empty())
      return;
    // Rotate-half: neg first. Interleaved pairs (rank 5): a neg on either element, so that a sign on the
    // wrong element is reported.
    if (def<NegOp>(op.getInputs()[0]) || (isPairs(op) && llvm::any_of(op.getInputs(), [](Value v) {
                                            return (bool)def<NegOp>(v);
                                          })))
      anchors.push_back(op);
  });
  for (ConcatOp anchor : anchors) {
    RopeMatch m;
    std::string why;
    if (!(isPairs(anchor) ? matchInterleavedRope(anchor, m, why) : matchRope(anchor, m, why))) {
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
    Value fused = RopeOp::create(b, loc, m.input.getType(), m.input, positions, invFreq, m.interleaved).getResult();
    m.root->getResult(0).replaceAllUsesWith(fused);
    std::optional<int64_t> d = lastDimConstant(m.input);
    std::string detail = m.interleaved ? "interleaved" : "";
    if (d && *d != 2 * m.half)
      detail += (detail.empty() ? "" : ", ") + std::string("partial, ") + std::to_string(2 * m.half) + " of " +
                std::to_string(*d);
    noteFused(report, "rope", fused.getDefiningOp(), detail);
  }
}

} // namespace kiln::passes
