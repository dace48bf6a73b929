//===- FusionAttention.cpp - scaled dot-product attention -> kiln.attention ===//
//
// Anchored on every kiln.softmax. The pattern:
//   out = matmul(softmax(S, last axis), V)
//   S   = an add tree over the scores' full shape [b, hq, s, t] whose leaves are
//         exactly one scaled product: [softcap(] matmul(Q, K, transpose_b) * scale (or / c) [)],
//             softcap(y) = mul(tanh(div(y, c)), c) with the same c,
//         at most one causal mask:  [reshape to [1, 1, s, t]] select(visible, 0, -inf),
//             visible = compare le (kpos, qpos) (or ge (qpos, kpos)), optionally AND-ed as
//             select(visible, compare lt (sub(qpos, kpos), W), visible) for a sliding window W,
//             qpos = add(iota dim 0 [s, 1], sym X), kpos = iota dim 1 [1, t], t == X + s
//             (so query i sits at t - s + i: the KV-cache offset the kernel uses),
//         at most one padding mask: reshape(select(compare ne (m, 0), 0, -inf)) [b, 1, 1, t], m [b, t],
//         and any other addends, which become the bias operand (summed if several) unless they look like
//             a mask (a select with a -inf branch): a mask we cannot name leaves the attention unfused.
//   K and V through repeat-kv (reshape [b, hkv, 1, t, d] -> broadcast_to [b, hkv, g, t, d] -> reshape
//   [b, hkv * g, t, d]) are fused un-repeated, so the kernel shares KV heads (GQA).
//
//===----------------------------------------------------------------------===//
#include "kiln/ir/ShapeInference.h"
#include "kiln/passes/FusionMatch.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace kiln::ir;

namespace kiln::passes {
using namespace detail;

namespace {

using ir::SymExpr;
using ir::SymShape;

bool isNegInf(Value v) {
  std::optional<double> c = splatValue(v);
  return c && std::isinf(*c) && *c < 0;
}
bool isZero(Value v) {
  std::optional<double> c = splatValue(v);
  return c && *c == 0.0;
}

/// Through reshapes and broadcasts to the value that defines a mask.
Value stripLayout(Value v) {
  while (true) {
    if (auto r = def<ReshapeOp>(v))
      v = r.getInput();
    else if (auto b = def<BroadcastToOp>(v))
      v = b.getInput();
    else
      return v;
  }
}

/// A select with a -inf branch, under reshapes / broadcasts: something that masks scores.
bool looksLikeMask(Value v) {
  auto sel = def<SelectOp>(stripLayout(v));
  return sel && (isNegInf(sel.getOnTrue()) || isNegInf(sel.getOnFalse()));
}

struct Positions {
  Value qpos, kpos;
};

/// compare le (kpos, qpos) or ge (qpos, kpos): the key at or before the query.
bool matchVisible(Value cond, const SymExpr &s, const SymExpr &t, Positions &p, std::string &why) {
  auto cmp = def<CompareOp>(cond);
  if (!cmp) {
    why = "the mask condition is not a compare";
    return false;
  }
  Value kpos, qpos;
  if (cmp.getPredicate() == ComparePredicate::le) {
    kpos = cmp.getLhs();
    qpos = cmp.getRhs();
  } else if (cmp.getPredicate() == ComparePredicate::ge) {
    qpos = cmp.getLhs();
    kpos = cmp.getRhs();
  } else {
    why = "the mask compare '" + stringifyComparePredicate(cmp.getPredicate()).str() +
          "' is not causal (key <= query)";
    return false;
  }
  auto kIota = def<IotaOp>(kpos);
  auto kShape = shapeOf(kpos);
  if (auto swapped = def<IotaOp>(qpos); swapped && swapped.getDim() == 1 && !kIota) {
    why = "the mask compare '" + stringifyComparePredicate(cmp.getPredicate()).str() +
          "' has the key on the wrong side: key " + (cmp.getPredicate() == ComparePredicate::le ? ">=" : "<=") +
          " query is not causal";
    return false;
  }
  if (!kIota || kIota.getDim() != 1 || !kShape || *kShape != SymShape{SymExpr::constant(1), t}) {
    why = "the mask compare is not causal: its key side is not iota over [1, t]";
    return false;
  }
  auto qAdd = def<AddOp>(qpos);
  IotaOp qIota;
  SymOp offset;
  if (qAdd) {
    for (auto [a, b] : {std::pair{qAdd.getLhs(), qAdd.getRhs()}, std::pair{qAdd.getRhs(), qAdd.getLhs()}})
      if (def<IotaOp>(a) && def<SymOp>(b)) {
        qIota = def<IotaOp>(a);
        offset = def<SymOp>(b);
      }
  }
  auto qShape = shapeOf(qpos);
  if (!qIota || qIota.getDim() != 0 || !qShape || *qShape != SymShape{s, SymExpr::constant(1)} ||
      shapeOf(qIota.getResult()) != qShape) {
    why = "the mask compare is not causal: its query side is not iota + sym over [s, 1]";
    return false;
  }
  if (SymExpr::symbol(offset.getSymbol()) + s != t) {
    why = "the query offset sym " + offset.getSymbol().str() + " plus s is not the key length " + t.str();
    return false;
  }
  p.qpos = qpos;
  p.kpos = kpos;
  return true;
}

/// compare lt (sub(qpos, kpos), W): sets the window.
bool matchWindow(Value cond, const Positions &p, int64_t &window) {
  auto cmp = def<CompareOp>(cond);
  if (!cmp || cmp.getPredicate() != ComparePredicate::lt)
    return false;
  auto diff = def<SubOp>(cmp.getLhs());
  std::optional<double> w = splatValue(cmp.getRhs());
  if (!diff || diff.getLhs() != p.qpos || diff.getRhs() != p.kpos || !w || *w <= 0 || *w != std::floor(*w) ||
      !isa<IntegerType>(cast<ShapedType>(cmp.getRhs().getType()).getElementType()))
    return false;
  window = static_cast<int64_t>(*w);
  return true;
}

/// The causal mask [1, 1, s, t] (or [s, t]).
bool matchCausal(Value leaf, const SymShape &scores, std::optional<int64_t> &window, std::string &why) {
  const SymExpr &s = scores[2], &t = scores[3];
  auto leafShape = shapeOf(leaf);
  if (!leafShape || leafShape->size() < 2 || leafShape->size() > 4 || (*leafShape)[leafShape->size() - 2] != s ||
      leafShape->back() != t) {
    why = "the mask is not [s, t] over the scores";
    return false;
  }
  for (size_t i = 0; i + 2 < leafShape->size(); ++i)
    if (!(*leafShape)[i].isOne()) {
      why = "the mask is not [1, 1, s, t]";
      return false;
    }
  Value m = leaf;
  if (auto r = def<ReshapeOp>(m))
    m = r.getInput();
  auto sel = def<SelectOp>(m);
  if (!sel || shapeOf(m) != std::optional<SymShape>(SymShape{s, t})) {
    why = "the mask is not a select over [s, t]";
    return false;
  }
  if (!isZero(sel.getOnTrue()) || !isNegInf(sel.getOnFalse())) {
    why = "the mask's fill values are not 0 (visible) and -inf (hidden)";
    return false;
  }
  Value cond = sel.getCond();
  Positions p;
  window.reset();
  if (auto andSel = def<SelectOp>(cond)) {
    // select(a, b, a) is a AND b (both i1).
    if (andSel.getOnFalse() != andSel.getCond()) {
      why = "the mask condition is a select that is not an AND";
      return false;
    }
    Value a = andSel.getCond(), b = andSel.getOnTrue();
    int64_t w = 0;
    std::string whyA, whyB;
    if (matchVisible(a, s, t, p, whyA) && matchWindow(b, p, w)) {
      window = w;
    } else if (matchVisible(b, s, t, p, whyB) && matchWindow(a, p, w)) {
      window = w;
    } else {
      why = whyA.empty() ? "the AND-ed mask is not causal AND (query - key < W)" : whyA;
      return false;
    }
    return true;
  }
  return matchVisible(cond, s, t, p, why);
}

/// reshape(select(compare ne (m, 0), 0, -inf)) [b, 1, 1, t] with m [b, t]: sets the key padding mask m.
bool matchPadding(Value leaf, const SymShape &scores, Value &keyMask, std::string &why) {
  const SymExpr &b = scores[0], &t = scores[3];
  auto leafShape = shapeOf(leaf);
  auto one = SymExpr::constant(1);
  if (!leafShape || *leafShape != SymShape{b, one, one, t}) {
    why = "the padding mask is not [b, 1, 1, t]";
    return false;
  }
  auto r = def<ReshapeOp>(leaf);
  auto sel = r ? def<SelectOp>(r.getInput()) : SelectOp();
  if (!sel || !isZero(sel.getOnTrue()) || !isNegInf(sel.getOnFalse())) {
    why = "the padding mask is not reshape(select(m != 0, 0, -inf))";
    return false;
  }
  auto cmp = def<CompareOp>(sel.getCond());
  if (!cmp || cmp.getPredicate() != ComparePredicate::ne) {
    why = "the padding mask's compare is not 'ne 0'";
    return false;
  }
  Value m;
  if (isZero(cmp.getRhs()))
    m = cmp.getLhs();
  else if (isZero(cmp.getLhs()))
    m = cmp.getRhs();
  if (!m || shapeOf(m) != std::optional<SymShape>(SymShape{b, t}) ||
      !isa<IntegerType>(cast<ShapedType>(m.getType()).getElementType())) {
    why = "the padding mask does not compare an integer [b, t] attention mask with 0";
    return false;
  }
  keyMask = m;
  return true;
}

/// reshape(broadcast_to(reshape(k [b, hkv, t, d]) [b, hkv, 1, t, d]) [b, hkv, g, t, d]) [b, hkv * g, t, d].
Value unrepeat(Value x, int64_t &groups) {
  auto outer = def<ReshapeOp>(x);
  auto bc = outer ? def<BroadcastToOp>(outer.getInput()) : BroadcastToOp();
  auto inner = bc ? def<ReshapeOp>(bc.getInput()) : ReshapeOp();
  if (!inner)
    return {};
  Value k = inner.getInput();
  auto ks = shapeOf(k), es = shapeOf(inner.getResult()), bs = shapeOf(bc.getResult()), rs = shapeOf(x);
  if (!ks || !es || !bs || !rs || ks->size() != 4 || es->size() != 5 || bs->size() != 5 || rs->size() != 4)
    return {};
  const SymExpr &b = (*ks)[0], &hkv = (*ks)[1], &t = (*ks)[2], &d = (*ks)[3];
  if (*es != SymShape{b, hkv, SymExpr::constant(1), t, d})
    return {};
  const SymExpr &g = (*bs)[2];
  if (!g.isConstant() || !hkv.isConstant() || *bs != SymShape{b, hkv, g, t, d})
    return {};
  if (*rs != SymShape{b, SymExpr::constant(hkv.getConstant() * g.getConstant()), t, d})
    return {};
  groups = g.getConstant();
  return k;
}

struct AttentionMatch {
  MatmulOp root;
  Value q, k, v, keyPadding;
  SmallVector<Value> biases;
  double scale = 1.0;
  std::optional<double> softcap;
  bool causal = false;
  std::optional<int64_t> window;
  int64_t groups = 1;
};

/// [softcap(] matmul(q, k, transpose_b) * scale [)].
bool matchScores(Value v, AttentionMatch &m) {
  std::optional<double> softcap;
  {
    double c = 0, c2 = 0;
    Value th;
    if (matchWithSplat<MulOp>(v, th, c)) {
      Value y;
      if (auto tanh = def<TanhOp>(th); tanh && matchWithSplat<DivOp>(tanh.getInput(), y, c2, false) && c == c2 &&
                                       c > 0) {
        softcap = c;
        v = y;
      }
    }
  }
  double scale = 1.0, c = 0;
  Value mm = v;
  if (matchWithSplat<MulOp>(v, mm, c))
    scale = c;
  else if (matchWithSplat<DivOp>(v, mm, c, false) && c != 0)
    scale = 1.0 / c;
  auto matmul = def<MatmulOp>(mm);
  if (!matmul || !matmul.getTransposeB())
    return false;
  m.q = matmul.getLhs();
  m.k = matmul.getRhs();
  m.scale = scale;
  m.softcap = softcap;
  return true;
}

bool matchAttention(SoftmaxOp softmax, AttentionMatch &m, std::string &why) {
  auto scoreShape = shapeOf(softmax.getInput());
  if (!scoreShape || scoreShape->size() != 4 || softmax.getAxis() != 3) {
    why = "not a softmax over the last axis of rank-4 scores";
    return false;
  }
  if (!isa<FloatType>(cast<ShapedType>(softmax.getType()).getElementType())) {
    why = "the scores are not floats";
    return false;
  }
  for (Operation *u : softmax->getUsers())
    if (auto mm = dyn_cast<MatmulOp>(u); mm && mm.getLhs() == softmax.getResult() && !mm.getTransposeB()) {
      m.root = mm;
      break;
    }
  if (!m.root) {
    why = "the softmax is not multiplied by V";
    return false;
  }
  m.v = m.root.getRhs();

  // Leaves of the add tree over the full score shape.
  SmallVector<Value> leaves, stack = {softmax.getInput()};
  while (!stack.empty()) {
    Value v = stack.pop_back_val();
    auto add = def<AddOp>(v);
    if (add && shapeOf(v) == scoreShape) {
      stack.push_back(add.getRhs());
      stack.push_back(add.getLhs());
    } else {
      leaves.push_back(v);
    }
  }
  int scoreLeaves = 0;
  SmallVector<Value> others;
  for (Value leaf : leaves) {
    AttentionMatch trial;
    if (shapeOf(leaf) == scoreShape && matchScores(leaf, trial)) {
      if (++scoreLeaves > 1) {
        why = "two q.k products are added in the scores";
        return false;
      }
      m.q = trial.q;
      m.k = trial.k;
      m.scale = trial.scale;
      m.softcap = trial.softcap;
    } else {
      others.push_back(leaf);
    }
  }
  if (scoreLeaves == 0) {
    why = "the scores are not matmul(q, k, transpose_b) * scale (+ masks)";
    return false;
  }
  for (Value leaf : others) {
    std::string whyCausal, whyPadding;
    std::optional<int64_t> window;
    Value padding;
    if (matchCausal(leaf, *scoreShape, window, whyCausal)) {
      if (m.causal) {
        why = "two causal masks";
        return false;
      }
      m.causal = true;
      m.window = window;
    } else if (matchPadding(leaf, *scoreShape, padding, whyPadding)) {
      if (m.keyPadding) {
        why = "two padding masks";
        return false;
      }
      m.keyPadding = padding;
    } else if (looksLikeMask(leaf)) {
      auto ls = shapeOf(leaf);
      bool paddingShaped = ls && ls->size() == 4 && (*ls)[1].isOne() && (*ls)[2].isOne();
      why = "a mask that is neither causal nor padding: " + (paddingShaped ? whyPadding : whyCausal);
      return false;
    } else {
      if (!isF32(leaf) || leaf.getType() == Type()) {
        why = "an addend of the scores is not f32";
        return false;
      }
      m.biases.push_back(leaf);
    }
  }

  // Shapes: q [b, hq, s, d], k [b, hq, t, d] (maybe repeated), v [b, hq, t, dv].
  auto qs = shapeOf(m.q), ks = shapeOf(m.k), vs = shapeOf(m.v), rs = shapeOf(m.root.getResult());
  if (!qs || !ks || !vs || !rs || qs->size() != 4 || ks->size() != 4 || vs->size() != 4) {
    why = "q, k and v are not rank 4 [b, h, s, d]";
    return false;
  }
  if ((*ks)[0] != (*qs)[0] || (*vs)[0] != (*qs)[0] || (*ks)[1] != (*qs)[1] || (*vs)[1] != (*qs)[1] ||
      (*ks)[2] != (*vs)[2] || (*ks)[3] != (*qs)[3] ||
      *scoreShape != SymShape{(*qs)[0], (*qs)[1], (*qs)[2], (*ks)[2]} ||
      *rs != SymShape{(*qs)[0], (*qs)[1], (*qs)[2], (*vs)[3]}) {
    why = "q " + formatShape(*qs) + ", k " + formatShape(*ks) + " and v " + formatShape(*vs) +
          " are broadcast against each other";
    return false;
  }
  if (!(*qs)[1].isConstant()) {
    why = "the head count is symbolic";
    return false;
  }
  int64_t gk = 0, gv = 0;
  Value k0 = unrepeat(m.k, gk), v0 = unrepeat(m.v, gv);
  if (k0 && v0 && gk == gv && shapeOf(k0)->front() == (*qs)[0]) {
    m.k = k0;
    m.v = v0;
    m.groups = gk;
  }
  for (Value b : m.biases) {
    std::string error;
    auto bs = shapeOf(b);
    if (!bs || failed(checkBroadcastTo(*bs, *scoreShape, error))) {
      why = "an addend of the scores does not broadcast to them";
      return false;
    }
  }
  if (!m.causal && m.window) {
    why = "a window without a causal mask";
    return false;
  }
  return true;
}

std::string describe(const AttentionMatch &m, int64_t hq) {
  std::string d = m.causal ? "causal" : "bidirectional";
  if (m.window)
    d += ", window " + std::to_string(*m.window);
  if (m.keyPadding)
    d += ", key padding";
  if (!m.biases.empty())
    d += ", bias";
  if (m.softcap)
    d += ", softcap";
  if (m.groups > 1)
    d += ", gqa " + std::to_string(hq) + ":" + std::to_string(hq / m.groups);
  return d;
}

} // namespace

void fuseAttention(ModuleOp module, FusionReport *report) {
  SmallVector<SoftmaxOp> anchors;
  module.walk([&](SoftmaxOp op) { anchors.push_back(op); });
  for (SoftmaxOp softmax : anchors) {
    AttentionMatch m;
    std::string why;
    if (!matchAttention(softmax, m, why)) {
      noteUnfused(report, softmax, why);
      continue;
    }
    OpBuilder b(m.root);
    Location loc = softmax->getLoc();
    Value bias;
    for (Value term : m.biases) {
      if (!bias) {
        bias = term;
        continue;
      }
      std::string error;
      SymShape joined = *inferBroadcast({*shapeOf(bias), *shapeOf(term)}, error);
      bias = AddOp::create(b, loc, makeTensorType(b.getContext(), joined, b.getF32Type()), bias, term).getResult();
    }
    auto attn = AttentionOp::create(b, loc, m.root.getType(), m.q, m.k, m.v, m.keyPadding, bias,
                                    b.getF64FloatAttr(m.scale),
                                    AttentionMaskAttr::get(b.getContext(), m.causal ? AttentionMask::causal
                                                                                    : AttentionMask::bidirectional),
                                    m.window ? b.getI64IntegerAttr(*m.window) : IntegerAttr(),
                                    m.softcap ? b.getF64FloatAttr(*m.softcap) : FloatAttr());
    m.root.getResult().replaceAllUsesWith(attn.getResult());
    noteFused(report, "attention", attn, describe(m, (*shapeOf(m.q))[1].getConstant()));
  }
}

} // namespace kiln::passes
