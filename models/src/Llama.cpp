//===- Llama.cpp - Llama 2/3, TinyLlama, Mistral, Qwen2, Phi-3 ------------===//
//
// transformers' LlamaForCausalLM and its close relatives: RMSNorm, rotate-half RoPE (default, linear or
// llama3 frequencies; partial rotary for Phi-3), grouped-query attention with a causal (Mistral: sliding)
// mask, SwiGLU MLP. Qwen2 adds q/k/v biases; Phi-3 fuses qkv_proj and gate_up_proj.
//
//===----------------------------------------------------------------------===//
#include "Common.h"

#include <cmath>

namespace kiln::models {

bool buildLlamaFamily(GraphBuilder &g, StepFunction &step, Weights &w, const ModelConfig &c) {
  const bool phi3 = c.architecture == "Phi3ForCausalLM";
  const bool qkvBias = c.architecture == "Qwen2ForCausalLM" || c.attentionBias;
  const int64_t H = c.hiddenSize, hq = c.numHeads, hkv = c.numKvHeads, d = c.headDim, I = c.intermediateSize;
  const std::string act = c.hiddenAct.empty() ? "silu" : c.hiddenAct;
  if (act != "silu") {
    g.fail(c.path + ": hidden_act '" + act + "' is not supported for " + c.architecture + " (silu)");
    return false;
  }
  int64_t rotaryDim = static_cast<int64_t>(d * c.partialRotaryFactor);
  rotaryDim -= rotaryDim % 2;

  Value ids = step.addInput("input_ids", {dim("b"), dim("s")}, g.i64());
  g.setLocation("model.embed_tokens");
  Value x = g.gather(w.get("model.embed_tokens.weight", {c.vocabSize, H}), ids);

  g.setLocation("model.rotary_emb");
  RopeTables rope = ropeTables(g, chunkPositions(g), ropeInverseFrequencies(c.rope, rotaryDim));
  Value fullMask, slidingMask;
  llvm::SmallVector<KvCache> presents;

  for (int64_t l = 0; l < c.numLayers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    g.setLocation(p + "input_layernorm");
    Value h = rmsNorm(g, x, w.get(p + "input_layernorm.weight", {H}), c.rmsNormEps);

    g.setLocation(p + "self_attn");
    Value q, k, v;
    if (phi3) {
      Value qkv = linear(g, w, h, p + "self_attn.qkv_proj.weight", "", (hq + 2 * hkv) * d, H);
      q = g.slice(qkv, 2, 0, hq * d);
      k = g.slice(qkv, 2, hq * d, (hq + hkv) * d);
      v = g.slice(qkv, 2, (hq + hkv) * d, (hq + 2 * hkv) * d);
    } else {
      auto bias = [&](const char *n) { return qkvBias ? p + "self_attn." + n + ".bias" : std::string(); };
      q = linear(g, w, h, p + "self_attn.q_proj.weight", bias("q_proj"), hq * d, H);
      k = linear(g, w, h, p + "self_attn.k_proj.weight", bias("k_proj"), hkv * d, H);
      v = linear(g, w, h, p + "self_attn.v_proj.weight", bias("v_proj"), hkv * d, H);
    }
    q = applyRope(g, splitHeads(g, q, hq, d), rope);
    k = applyRope(g, splitHeads(g, k, hkv, d), rope);
    KvCache cache = appendKvCache(g, step, l, k, splitHeads(g, v, hkv, d), hkv, d);
    presents.push_back(cache);

    bool sliding = c.isSliding(l) && c.slidingWindow;
    Value &mask = sliding ? slidingMask : fullMask;
    if (!mask)
      mask = causalMask(g, sliding ? c.slidingWindow : std::nullopt);
    Value attn = attention(g, q, repeatKv(g, cache.key, hq / hkv), repeatKv(g, cache.value, hq / hkv),
                           1.0 / std::sqrt(static_cast<double>(d)), mask);
    Value o = linear(g, w, mergeHeads(g, attn), p + "self_attn.o_proj.weight",
                     c.attentionBias ? p + "self_attn.o_proj.bias" : "", H, hq * d);
    x = g.add(x, o);

    g.setLocation(p + "post_attention_layernorm");
    h = rmsNorm(g, x, w.get(p + "post_attention_layernorm.weight", {H}), c.rmsNormEps);
    g.setLocation(p + "mlp");
    Value gate, up;
    if (phi3) {
      Value gateUp = linear(g, w, h, p + "mlp.gate_up_proj.weight", "", 2 * I, H);
      gate = g.slice(gateUp, 2, 0, I);
      up = g.slice(gateUp, 2, I, 2 * I);
    } else {
      auto bias = [&](const char *n) { return c.mlpBias ? p + "mlp." + n + ".bias" : std::string(); };
      gate = linear(g, w, h, p + "mlp.gate_proj.weight", bias("gate_proj"), I, H);
      up = linear(g, w, h, p + "mlp.up_proj.weight", bias("up_proj"), I, H);
    }
    Value down = linear(g, w, g.mul(g.unary<ir::SiluOp>(gate), up), p + "mlp.down_proj.weight",
                        c.mlpBias ? p + "mlp.down_proj.bias" : "", H, I);
    x = g.add(x, down);
  }

  g.setLocation("model.norm");
  x = rmsNorm(g, x, w.get("model.norm.weight", {H}), c.rmsNormEps);
  g.setLocation("lm_head");
  std::string head = c.tieWordEmbeddings && !w.has("lm_head.weight") ? "model.embed_tokens.weight" : "lm_head.weight";
  x = logitsRows(g, x);
  Value logits = linear(g, w, x, head, "", c.vocabSize, H);
  return addCausalLmOutputs(g, step, logits, presents);
}

} // namespace kiln::models
