//===- FusionNorms.cpp - RMSNorm / LayerNorm -> kiln.rms_norm / kiln.layer_norm ===//
//
// Anchored on every kiln.rsqrt: its input must be add(reduce_mean(..., last axis, keepdim), eps) with eps
// a splat constant >= 0. The mean's input decides the kind:
//   pow(x, 2)            RMSNorm:   mul(mul(x, rsqrt), w)      (w, or add(1, w) -> unit_offset)
//   mul(c, c)            LayerNorm: add(mul(mul(c, rsqrt), w), b),  c = sub(x, reduce_mean(x, last axis))
// w and b must be [n] vectors over the last dim n of x, of x's element type; the result type is x's.
//
// fuseAddNorms (after fuseNorms): a kiln.rms_norm / kiln.layer_norm whose input is h = kiln.add(x, r) of two
// operands of h's type (no broadcast) becomes kiln.add_rms_norm / kiln.add_layer_norm (x, r, w[, b]) ->
// (h, y): one pass reads x and r, writes h and y, instead of the add writing h and the norm reading it again.
// Only where the add has another user (the next residual): an add read by the norm alone is left as it is,
// since its h would be a buffer written for nobody. Near misses (a broadcasting add, a norm not directly over
// an add) stay. Reported as unfused: a norm over an add that does not fold (broadcast, or an order of
// definitions the fused op cannot take); a norm not over an add, or over one it alone reads, is no candidate.
//
//===----------------------------------------------------------------------===//
#include "kiln/passes/FusionMatch.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Dominance.h"
#include "mlir/IR/BuiltinOps.h"

using namespace mlir;
using namespace kiln::ir;

namespace kiln::passes {
using namespace detail;

namespace {

/// reduce_mean over the last axis with keepdim; sets `input`.
bool isLastAxisMean(Value v, Value &input, std::string &why) {
  auto mean = def<ReduceMeanOp>(v);
  if (!mean) {
    why = "the rsqrt's input is not reduce_mean(...) + eps";
    return false;
  }
  auto rank = cast<RankedTensorType>(mean.getInput().getType()).getRank();
  if ((int64_t)mean.getAxis() != rank - 1 || !mean.getKeepdim()) {
    why = "the mean is not over the last axis with keepdim";
    return false;
  }
  input = mean.getInput();
  return true;
}

/// `w` is a [n] vector of x's element type over x's last dim n.
bool isChannelVector(Value w, Value x) {
  auto ws = shapeOf(w), xs = shapeOf(x);
  if (!ws || !xs || ws->size() != 1 || xs->empty() || (*ws)[0] != xs->back())
    return false;
  return cast<ShapedType>(w.getType()).getElementType() == cast<ShapedType>(x.getType()).getElementType();
}

/// The users of `v` that are OpTy with `v` as one operand.
template <typename OpTy> SmallVector<OpTy> usersOf(Value v) {
  SmallVector<OpTy> out;
  for (Operation *user : v.getUsers())
    if (auto op = dyn_cast<OpTy>(user))
      if (!llvm::is_contained(out, op))
        out.push_back(op);
  return out;
}

struct NormMatch {
  Operation *root = nullptr; // the op whose result the fused op replaces
  Value input, weight, bias;
  double eps = 0;
  bool unitOffset = false, layerNorm = false;
};

/// Given normed = mul(x, rsqrt): its user mul(normed, W) (and for LayerNorm the add(., b)).
bool matchAffine(Value normed, Value x, NormMatch &m, std::string &why) {
  for (MulOp scale : usersOf<MulOp>(normed)) {
    Value w = otherOperand(scale, normed);
    if (!w || w == normed)
      continue;
    bool unit = false;
    Value weight = w;
    double one = 0;
    Value inner;
    if (matchWithSplat<AddOp>(w, inner, one) && one == 1.0 && isChannelVector(inner, x)) {
      unit = true;
      weight = inner;
    }
    if (!isChannelVector(weight, x))
      continue;
    if (scale.getType() != x.getType())
      continue;
    if (!m.layerNorm) {
      m.root = scale;
      m.weight = weight;
      m.unitOffset = unit;
      return true;
    }
    if (unit)
      continue; // LayerNorm has no (1 + w) form
    for (AddOp shift : usersOf<AddOp>(scale.getResult())) {
      Value b = otherOperand(shift, scale.getResult());
      if (!b || !isChannelVector(b, x) || shift.getType() != x.getType())
        continue;
      m.root = shift;
      m.weight = weight;
      m.bias = b;
      return true;
    }
    why = "the scaled LayerNorm has no add of a [n] bias";
    return false;
  }
  why = "the normalized value is not multiplied by a [n] weight";
  return false;
}

bool matchNorm(RsqrtOp rsqrt, NormMatch &m, std::string &why) {
  Value meanValue;
  double eps = 0;
  if (!matchWithSplat<AddOp>(rsqrt.getInput(), meanValue, eps)) {
    why = "the rsqrt's input is not an add of a constant eps";
    return false;
  }
  if (!(eps >= 0)) {
    why = "eps " + std::to_string(eps) + " is negative";
    return false;
  }
  m.eps = eps;
  Value meanInput;
  if (!isLastAxisMean(meanValue, meanInput, why))
    return false;

  Value x;
  if (auto pow = def<PowOp>(meanInput)) {
    std::optional<double> exponent = splatValue(pow.getRhs());
    if (!exponent) {
      why = "the pow exponent is not a constant";
      return false;
    }
    if (*exponent != 2.0) {
      why = "the pow exponent is " + std::to_string(*exponent) + ", not 2";
      return false;
    }
    x = pow.getLhs();
  } else if (auto sq = def<MulOp>(meanInput)) {
    if (sq.getLhs() != sq.getRhs()) {
      why = "the variance is not mean(c * c) of one value";
      return false;
    }
    Value c = sq.getLhs();
    auto centered = def<SubOp>(c);
    Value x0;
    if (!centered || !isLastAxisMean(centered.getRhs(), x0, why) || x0 != centered.getLhs()) {
      why = "mean(c * c) where c is not x - mean(x) over the last axis";
      return false;
    }
    m.layerNorm = true;
    x = c; // normed = mul(c, rsqrt)
    m.input = x0;
  } else {
    why = "the mean is neither of pow(x, 2) nor of (x - mean(x))^2";
    return false;
  }
  if (!m.layerNorm)
    m.input = x;
  if (!isa<FloatType>(cast<ShapedType>(m.input.getType()).getElementType())) {
    why = "the input is not a float tensor";
    return false;
  }

  // normed = mul(x, rsqrt) (x the centered value for LayerNorm).
  for (MulOp normed : usersOf<MulOp>(rsqrt.getResult())) {
    if (otherOperand(normed, rsqrt.getResult()) != x)
      continue;
    if (normed.getType() != x.getType())
      continue;
    return matchAffine(normed.getResult(), m.input, m, why);
  }
  why = "the rsqrt does not multiply the normalized input";
  return false;
}

} // namespace

void fuseNorms(ModuleOp module, FusionReport *report) {
  SmallVector<RsqrtOp> anchors;
  module.walk([&](RsqrtOp op) { anchors.push_back(op); });
  for (RsqrtOp rsqrt : anchors) {
    NormMatch m;
    std::string why;
    if (!matchNorm(rsqrt, m, why)) {
      noteUnfused(report, rsqrt, why);
      continue;
    }
    OpBuilder b(m.root);
    Location loc = m.root->getLoc();
    Value fused;
    if (m.layerNorm)
      fused = LayerNormOp::create(b, loc, m.input.getType(), m.input, m.weight, m.bias, b.getF64FloatAttr(m.eps))
                  .getResult();
    else
      fused = RmsNormOp::create(b, loc, m.input.getType(), m.input, m.weight, b.getF64FloatAttr(m.eps),
                                b.getBoolAttr(m.unitOffset))
                  .getResult();
    m.root->getResult(0).replaceAllUsesWith(fused);
    noteFused(report, m.layerNorm ? "layer_norm" : "rms_norm", fused.getDefiningOp(),
              m.unitOffset ? "unit offset" : "");
  }
}

namespace {

/// The add that feeds `norm`'s input, when it can fold into an add_rms_norm / add_layer_norm; sets `at`, the
/// op the fused op is built before, or `why`.
AddOp foldableAdd(Operation *norm, DominanceInfo &dom, Operation *&at, std::string &why) {
  Value input = norm->getOperand(0);
  auto add = def<AddOp>(input);
  if (!add)
    return nullptr; // not a candidate (no report line)
  if (add.getLhs().getType() != add.getType() || add.getRhs().getType() != add.getType()) {
    why = "the add broadcasts (its operands are not both of its result type)";
    return nullptr;
  }
  bool otherUsers = llvm::any_of(add->getUsers(), [&](Operation *u) { return u != norm; });
  if (!otherUsers)
    return nullptr; // h would be a buffer nobody reads: left as it is, by design (no report line)
  // Built at the add when the norm's weight / bias are defined before it (then every user of the add is
  // after the fused op); else at the norm when every other user of the add is after the norm.
  bool paramsBeforeAdd = llvm::all_of(norm->getOperands().drop_front(),
                                      [&](Value p) { return dom.properlyDominates(p, add); });
  if (paramsBeforeAdd) {
    at = add;
    return add;
  }
  bool usersAfterNorm = llvm::all_of(add->getUsers(), [&](Operation *u) {
    return u == norm || (u->getBlock() == norm->getBlock() && norm->isBeforeInBlock(u));
  });
  if (!usersAfterNorm) {
    why = "the norm's weight is defined after the add and the add has users before the norm";
    return nullptr;
  }
  at = norm;
  return add;
}

} // namespace

void fuseAddNorms(ModuleOp module, FusionReport *report) {
  SmallVector<Operation *> anchors;
  module.walk([&](Operation *op) {
    if (isa<RmsNormOp, LayerNormOp>(op))
      anchors.push_back(op);
  });
  DominanceInfo dom(module);
  for (Operation *norm : anchors) {
    Operation *at = nullptr;
    std::string why;
    AddOp add = foldableAdd(norm, dom, at, why);
    if (!add) {
      if (!why.empty())
        noteUnfused(report, norm, why);
      continue;
    }
    OpBuilder b(at);
    Location loc = norm->getLoc();
    Type t = add.getType();
    Operation *fused;
    if (auto rms = dyn_cast<RmsNormOp>(norm))
      fused = AddRmsNormOp::create(b, loc, TypeRange{t, t}, add.getLhs(), add.getRhs(), rms.getWeight(),
                                   rms.getEpsAttr(), rms.getUnitOffsetAttr());
    else {
      auto ln = cast<LayerNormOp>(norm);
      fused = AddLayerNormOp::create(b, loc, TypeRange{t, t}, add.getLhs(), add.getRhs(), ln.getWeight(),
                                     ln.getBias(), ln.getEpsAttr());
    }
    norm->getResult(0).replaceAllUsesWith(fused->getResult(1));
    add.getResult().replaceAllUsesExcept(fused->getResult(0), norm);
    // Another norm of the same add (now reading h) stays a plain norm: it is not an anchor's add any more.
    norm->erase();
    if (add->use_empty())
      add->erase();
    bool unit = isa<AddRmsNormOp>(fused) && cast<AddRmsNormOp>(fused).getUnitOffset();
    noteFused(report, isa<AddRmsNormOp>(fused) ? "add_rms_norm" : "add_layer_norm", fused,
              unit ? "unit offset" : "");
  }
}

} // namespace kiln::passes
