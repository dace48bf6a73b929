//===- Gemma3.cpp - Gemma 3 text (Gemma3ForCausalLM) ----------------------===//
//
// transformers' Gemma3ForCausalLM (model_type gemma3_text): embeddings scaled by sqrt(hidden), RMSNorm with
// (1 + w), q/k RMSNorm over head_dim, rotate-half RoPE with a local base on sliding layers, attention scaled
// by query_pre_attn_scalar^-0.5 (optionally softcapped) under a causal or sliding-window mask, sandwich
// norms around attention and MLP, a GeGLU (gelu_tanh) MLP, tied head, optional final logit softcapping.
//
//===----------------------------------------------------------------------===//
#include "Common.h"

#include <cmath>

namespace kiln::models {

bool buildGemma3(GraphBuilder &g, StepFunction &step, Weights &w, const ModelConfig &c) {
  const int64_t H = c.hiddenSize, hq = c.numHeads, hkv = c.numKvHeads, d = c.headDim, I = c.intermediateSize;
  const std::string act = c.hiddenAct.empty() ? "gelu_pytorch_tanh" : c.hiddenAct;
  if (act != "gelu_pytorch_tanh") {
    g.fail(c.path + ": hidden_activation '" + act + "' is not supported for " + c.architecture +
           " (gelu_pytorch_tanh)");
    return false;
  }
  // Gemma3TextConfig's default query_pre_attn_scalar is 256.
  const double queryScalar = c.queryPreAttnScalar > 0 ? c.queryPreAttnScalar : 256.0;
  const double scale = std::pow(queryScalar, -0.5);
  const double eps = c.rmsNormEps;

  Value ids = step.addInput("input_ids", {dim("b"), dim("s")}, g.i64());
  g.setLocation("model.embed_tokens");
  Value embedTable = w.get("model.embed_tokens.weight", {c.vocabSize, H});
  // Gemma3TextScaledWordEmbedding: embed_scale = hidden_size**0.5 as a float32 tensor.
  Value x = g.mul(g.gather(embedTable, ids), g.scalar(std::sqrt(static_cast<double>(H))));

  g.setLocation("model.rotary_emb");
  Value positions = chunkPositions(g);
  RopeTables globalRope = ropeTables(g, positions, ropeInverseFrequencies(c.rope, d));
  RopeTables localRope = globalRope;
  bool anySliding = false;
  for (int64_t l = 0; l < c.numLayers; ++l)
    anySliding |= c.isSliding(l) && c.slidingWindow.has_value();
  if (anySliding) {
    g.setLocation("model.rotary_emb_local");
    localRope = ropeTables(g, positions, ropeInverseFrequencies(c.ropeLocal ? *c.ropeLocal : RopeParams{}, d));
  }
  Value fullMask, slidingMask;
  llvm::SmallVector<KvCache> presents;

  for (int64_t l = 0; l < c.numLayers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    bool sliding = c.isSliding(l) && c.slidingWindow.has_value();
    g.setLocation(p + "input_layernorm");
    Value h = rmsNorm(g, x, w.get(p + "input_layernorm.weight", {H}), eps, /*unitOffset=*/true);

    g.setLocation(p + "self_attn");
    auto bias = [&](const char *n) { return c.attentionBias ? p + "self_attn." + n + ".bias" : std::string(); };
    Value q = splitHeads(g, linear(g, w, h, p + "self_attn.q_proj.weight", bias("q_proj"), hq * d, H), hq, d);
    Value k = splitHeads(g, linear(g, w, h, p + "self_attn.k_proj.weight", bias("k_proj"), hkv * d, H), hkv, d);
    Value v = splitHeads(g, linear(g, w, h, p + "self_attn.v_proj.weight", bias("v_proj"), hkv * d, H), hkv, d);
    q = rmsNorm(g, q, w.get(p + "self_attn.q_norm.weight", {d}), eps, /*unitOffset=*/true);
    k = rmsNorm(g, k, w.get(p + "self_attn.k_norm.weight", {d}), eps, /*unitOffset=*/true);
    const RopeTables &rope = sliding ? localRope : globalRope;
    q = applyRope(g, q, rope);
    k = applyRope(g, k, rope);
    KvCache cache = appendKvCache(g, step, l, k, v, hkv, d);
    presents.push_back(cache);

    Value &mask = sliding ? slidingMask : fullMask;
    if (!mask)
      mask = causalMask(g, sliding ? c.slidingWindow : std::nullopt);
    Value attn = attention(g, q, repeatKv(g, cache.key, hq / hkv), repeatKv(g, cache.value, hq / hkv), scale, mask,
                           /*bias=*/{}, c.attnLogitSoftcapping);
    Value o = linear(g, w, mergeHeads(g, attn), p + "self_attn.o_proj.weight", bias("o_proj"), H, hq * d);
    g.setLocation(p + "post_attention_layernorm");
    o = rmsNorm(g, o, w.get(p + "post_attention_layernorm.weight", {H}), eps, /*unitOffset=*/true);
    x = g.add(x, o);

    g.setLocation(p + "pre_feedforward_layernorm");
    h = rmsNorm(g, x, w.get(p + "pre_feedforward_layernorm.weight", {H}), eps, /*unitOffset=*/true);
    g.setLocation(p + "mlp");
    Value gate = linear(g, w, h, p + "mlp.gate_proj.weight", "", I, H);
    Value up = linear(g, w, h, p + "mlp.up_proj.weight", "", I, H);
    Value down = linear(g, w, g.mul(g.unary<ir::GeluTanhOp>(gate), up), p + "mlp.down_proj.weight", "", H, I);
    g.setLocation(p + "post_feedforward_layernorm");
    down = rmsNorm(g, down, w.get(p + "post_feedforward_layernorm.weight", {H}), eps, /*unitOffset=*/true);
    x = g.add(x, down);
  }

  g.setLocation("model.norm");
  x = rmsNorm(g, x, w.get("model.norm.weight", {H}), eps, /*unitOffset=*/true);
  g.setLocation("lm_head");
  std::string head = w.has("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight";
  x = logitsRows(g, x);
  Value logits = linear(g, w, x, head, "", c.vocabSize, H);
  if (c.finalLogitSoftcapping) {
    Value cap = g.scalar(*c.finalLogitSoftcapping);
    logits = g.mul(g.tanh(g.div(logits, cap)), cap);
  }
  return addCausalLmOutputs(g, step, logits, presents);
}

} // namespace kiln::models
