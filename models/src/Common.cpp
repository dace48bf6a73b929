//===- Common.cpp - pieces shared by the model builders -------------------===//
#include "Common.h"

#include <cmath>
#include <limits>

using namespace mlir;

namespace kiln::models {

static std::string formatDims(llvm::ArrayRef<int64_t> shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}


Value Weights::get(const std::string &name, llvm::ArrayRef<int64_t> shape) {
  if (!g_.ok())
    return {};
  if (!table_) {
    // Tied weights (an embedding reused as the head) are requested twice: record each name once.
    if (llvm::none_of(requested_, [&](const WeightSpec &w) { return w.name == name; }))
      requested_.push_back({name, std::vector<int64_t>(shape.begin(), shape.end())});
    return g_.weight(name, shape, g_.f32());
  }
  const TensorInfo *t = table_->find(name);
  if (!t) {
    // The full path: the message must say which directory's weights lack it.
    std::string file = table_->files().empty() ? "the weights" : table_->files().front()->path();
    if (table_->files().size() > 1) {
      const size_t slash = file.rfind('/');
      file = (slash == std::string::npos ? std::string() : file.substr(0, slash + 1)) + "model.safetensors.index.json";
    }
    g_.fail(file + ": missing tensor '" + name + "' (" + config_.architecture + " needs it)");
    return {};
  }
  if (t->shape != std::vector<int64_t>(shape.begin(), shape.end())) {
    g_.fail(t->file + ": tensor '" + name + "' has shape " + formatDims(t->shape) + " but " + config_.path +
            " implies " + formatDims(shape));
    return {};
  }
  Type stored;
  switch (t->dtype) {
  case DType::F32: stored = g_.f32(); break;
  case DType::F16: stored = g_.builder().getF16Type(); break;
  case DType::BF16: stored = g_.builder().getBF16Type(); break;
  default:
    g_.fail(t->file + ": tensor '" + name + "' has dtype " + dtypeName(t->dtype) +
            "; weights must be F32, F16 or BF16");
    return {};
  }
  return g_.weight(name, shape, stored);
}

StepFunction::StepFunction(ModuleOp module, llvm::StringRef architecture, llvm::StringRef task)
    : builder_(module.getContext()) {
  MLIRContext *ctx = module.getContext();
  module->setAttr("kiln.architecture", StringAttr::get(ctx, architecture));
  module->setAttr("kiln.task", StringAttr::get(ctx, task));
  builder_.setInsertionPointToEnd(module.getBody());
  func_ = func::FuncOp::create(builder_, NameLoc::get(StringAttr::get(ctx, architecture)), "step",
                                         builder_.getFunctionType({}, {}));
  builder_.setInsertionPointToStart(func_.addEntryBlock());
}

Value StepFunction::addInput(llvm::StringRef name, llvm::ArrayRef<SymExpr> shape, Type elementType) {
  Block &body = func_.getBody().front();
  Type t = ir::makeTensorType(builder_.getContext(), shape, elementType);
  inputNames_.push_back(name.str());
  return body.addArgument(t, NameLoc::get(builder_.getStringAttr(name)));
}

void StepFunction::addOutput(llvm::StringRef name, Value value) {
  outputs_.push_back(value);
  outputNames_.push_back(name.str());
}

void StepFunction::finish() {
  func::ReturnOp::create(builder_, func_.getLoc(), outputs_);
  llvm::SmallVector<Type> results;
  for (Value v : outputs_)
    results.push_back(v.getType());
  llvm::SmallVector<Type> inputs(func_.getBody().front().getArgumentTypes());
  func_.setFunctionType(builder_.getFunctionType(inputs, results));
  for (size_t i = 0; i < inputNames_.size(); ++i)
    func_.setArgAttr(i, "kiln.name", builder_.getStringAttr(inputNames_[i]));
  for (size_t i = 0; i < outputNames_.size(); ++i)
    func_.setResultAttr(i, "kiln.name", builder_.getStringAttr(outputNames_[i]));
}

Value linear(GraphBuilder &g, Weights &w, Value x, const std::string &weight, const std::string &bias, int64_t out,
             int64_t in) {
  Value y = g.matmul(x, w.get(weight, {out, in}), /*transposeB=*/true);
  return bias.empty() ? y : g.add(y, w.get(bias, {out}));
}

Value conv1d(GraphBuilder &g, Weights &w, Value x, const std::string &prefix, int64_t in, int64_t out) {
  return g.add(g.matmul(x, w.get(prefix + ".weight", {in, out})), w.get(prefix + ".bias", {out}));
}

Value rmsNorm(GraphBuilder &g, Value x, Value weight, double eps, bool unitOffset) {
  Value variance = g.reduceMean(g.pow(x, g.scalar(2.0)), -1);
  Value normed = g.mul(x, g.rsqrt(g.add(variance, g.scalar(eps))));
  return g.mul(normed, unitOffset ? g.add(g.scalar(1.0), weight) : weight);
}

Value layerNorm(GraphBuilder &g, Value x, Value weight, Value bias, double eps) {
  Value mean = g.reduceMean(x, -1);
  Value centered = g.sub(x, mean);
  Value variance = g.reduceMean(g.mul(centered, centered), -1);
  Value normed = g.mul(centered, g.rsqrt(g.add(variance, g.scalar(eps))));
  return g.add(g.mul(normed, weight), bias);
}

std::vector<float> ropeInverseFrequencies(const RopeParams &rope, int64_t rotaryDim) {
  std::vector<float> inv;
  for (int64_t i = 0; i < rotaryDim; i += 2) {
    float exponent = static_cast<float>(i) / static_cast<float>(rotaryDim);
    inv.push_back(1.0f / std::pow(static_cast<float>(rope.theta), exponent));
  }
  if (rope.type == "linear") {
    for (float &f : inv)
      f = static_cast<float>(f / rope.factor);
  } else if (rope.type == "llama3") {
    // transformers' _compute_llama3_parameters.
    double oldContext = rope.originalMaxPositions;
    double lowWavelen = oldContext / rope.lowFreqFactor, highWavelen = oldContext / rope.highFreqFactor;
    for (float &f : inv) {
      double wavelen = 2 * M_PI / f;
      double scaled = wavelen > lowWavelen ? f / rope.factor : f;
      if (!(wavelen < highWavelen) && !(wavelen > lowWavelen)) {
        double smooth = (oldContext / wavelen - rope.lowFreqFactor) / (rope.highFreqFactor - rope.lowFreqFactor);
        scaled = (1 - smooth) * scaled / rope.factor + smooth * scaled;
      }
      f = static_cast<float>(scaled);
    }
  }
  return inv;
}

Value chunkPositions(GraphBuilder &g) {
  return g.add(g.iota({dim(1), dim("s")}, 1, g.i64()), g.sym("p"));
}

RopeTables ropeTables(GraphBuilder &g, Value positions, const std::vector<float> &invFreq) {
  int64_t half = invFreq.size();
  // freqs[s, i] = position[s] * inv_freq[i]; emb = cat(freqs, freqs).
  Value pos = g.reshape(g.convert(positions, g.f32()), {dim(1), dim("s"), dim(1)});
  Value freqs = g.mul(pos, g.constant(invFreq, {1, 1, half}));
  Value emb = g.concat({freqs, freqs}, -1);
  Value emb4 = g.reshape(emb, {dim(1), dim(1), dim("s"), dim(2 * half)});
  return {g.unary<ir::CosOp>(emb4), g.unary<ir::SinOp>(emb4), 2 * half};
}

Value applyRope(GraphBuilder &g, Value x, const RopeTables &t) {
  if (!g.ok())
    return {};
  int64_t d = g.shape(x)[3].getConstant(), r = t.rotaryDim;
  Value rot = r == d ? x : g.slice(x, 3, 0, r);
  Value x1 = g.slice(rot, 3, 0, r / 2), x2 = g.slice(rot, 3, r / 2, r);
  Value rotated = g.concat({g.neg(x2), x1}, 3);
  Value embedded = g.add(g.mul(rot, t.cos), g.mul(rotated, t.sin));
  return r == d ? embedded : g.concat({embedded, g.slice(x, 3, r, d)}, 3);
}

static Value negInf(GraphBuilder &g) { return g.scalar(-std::numeric_limits<double>::infinity()); }

Value causalMask(GraphBuilder &g, std::optional<int64_t> window) {
  SymExpr t = dim("p") + dim("s");
  Value queryPos = g.add(g.iota({dim("s"), dim(1)}, 0, g.i64()), g.sym("p")); // [s, 1]
  Value keyPos = g.iota({dim(1), t}, 1, g.i64());                           // [1, p + s]
  Value visible = g.compare(ir::ComparePredicate::le, keyPos, queryPos);                          // [s, p + s]
  if (window) {
    Value inWindow = g.compare(ir::ComparePredicate::lt, g.sub(queryPos, keyPos), g.scalarI64(*window));
    visible = g.select(visible, inWindow, visible);
  }
  Value mask = g.select(visible, g.scalar(0.0), negInf(g));
  return g.reshape(mask, {dim(1), dim(1), dim("s"), t});
}

Value paddingMask(GraphBuilder &g, Value attentionMask) {
  Value valid = g.compare(ir::ComparePredicate::ne, attentionMask, g.scalarI64(0)); // [b, s]
  Value mask = g.select(valid, g.scalar(0.0), negInf(g));
  return g.reshape(mask, {dim("b"), dim(1), dim(1), dim("s")});
}

Value splitHeads(GraphBuilder &g, Value x, int64_t heads, int64_t headDim) {
  Value r = g.reshape(x, {dim("b"), dim("s"), dim(heads), dim(headDim)});
  return g.transpose(r, {0, 2, 1, 3});
}

Value mergeHeads(GraphBuilder &g, Value x) {
  if (!g.ok())
    return {};
  SymShape s = g.shape(x); // [b, h, s, d]
  Value t = g.transpose(x, {0, 2, 1, 3});
  return g.reshape(t, {s[0], s[2], dim(s[1].getConstant() * s[3].getConstant())});
}

Value repeatKv(GraphBuilder &g, Value x, int64_t groups) {
  if (!g.ok() || groups == 1)
    return x;
  SymShape s = g.shape(x); // [b, hkv, t, d]
  Value e = g.reshape(x, {s[0], s[1], dim(1), s[2], s[3]});
  Value b = g.broadcastTo(e, {s[0], s[1], dim(groups), s[2], s[3]});
  return g.reshape(b, {s[0], dim(s[1].getConstant() * groups), s[2], s[3]});
}

Value attention(GraphBuilder &g, Value q, Value k, Value v, double scale, Value mask, Value bias,
                std::optional<double> softcap) {
  Value scores = g.mul(g.matmul(q, k, /*transposeB=*/true), g.scalar(scale));
  if (softcap)
    scores = g.mul(g.tanh(g.div(scores, g.scalar(*softcap))), g.scalar(*softcap));
  if (bias)
    scores = g.add(scores, bias);
  if (mask)
    scores = g.add(scores, mask);
  return g.matmul(g.softmax(scores, -1), v);
}

KvCache appendKvCache(GraphBuilder &g, StepFunction &step, int64_t layer, Value k, Value v, int64_t kvHeads,
                      int64_t headDim) {
  std::string l = std::to_string(layer);
  SymShape past = {dim("b"), dim(kvHeads), dim("p"), dim(headDim)};
  Value pastK = step.addInput("past_key." + l, past, g.f32());
  Value pastV = step.addInput("past_value." + l, past, g.f32());
  return {g.concat({pastK, k}, 2), g.concat({pastV, v}, 2)};
}

Value logitsRows(GraphBuilder &g, Value hidden) { return g.tail(hidden, 1, dim("r")); }

bool addCausalLmOutputs(GraphBuilder &g, StepFunction &step, Value logits, llvm::ArrayRef<KvCache> presents) {
  if (!g.ok())
    return false;
  step.addOutput("logits", logits);
  for (size_t l = 0; l < presents.size(); ++l) {
    step.addOutput("present_key." + std::to_string(l), presents[l].key);
    step.addOutput("present_value." + std::to_string(l), presents[l].value);
  }
  return true;
}

Value layerNormNamed(GraphBuilder &g, Weights &w, Value x, const std::string &prefix, int64_t H, double eps) {
  return layerNorm(g, x, w.get(prefix + ".weight", {H}), w.get(prefix + ".bias", {H}), eps);
}

bool checkGeluNew(GraphBuilder &g, const ModelConfig &c) {
  const std::string act = c.hiddenAct.empty() ? "gelu_new" : c.hiddenAct;
  if (act == "gelu_new" || act == "gelu_pytorch_tanh")
    return true;
  g.fail(c.path + ": activation_function '" + act + "' is not supported for " + c.architecture + " (gelu_new)");
  return false;
}

std::string gptPrefix(Weights &w) {
  return w.has("transformer.wte.weight") || !w.has("wte.weight") ? "transformer." : "";
}

Value gptTokenEmbeddings(GraphBuilder &g, StepFunction &step, Weights &w, const ModelConfig &c,
                         const std::string &prefix) {
  Value ids = step.addInput("input_ids", {dim("b"), dim("s")}, g.i64());
  g.setLocation(prefix + "wte");
  return g.gather(w.get(prefix + "wte.weight", {c.vocabSize, c.hiddenSize}), ids);
}

bool addGptOutputs(GraphBuilder &g, StepFunction &step, Weights &w, const ModelConfig &c, Value x,
                   const std::string &prefix, const std::string &head, const std::string &bias,
                   llvm::ArrayRef<KvCache> presents) {
  const int64_t H = c.hiddenSize;
  g.setLocation(prefix + "ln_f");
  x = layerNormNamed(g, w, x, prefix + "ln_f", H, c.layerNormEps);
  g.setLocation("lm_head");
  Value logits = linear(g, w, logitsRows(g, x), head, bias, c.vocabSize, H);
  return addCausalLmOutputs(g, step, logits, presents);
}

} // namespace kiln::models
