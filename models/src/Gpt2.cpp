//===- Gpt2.cpp - GPT-2 (GPT2LMHeadModel) ---------------------------------===//
//
// transformers' GPT2LMHeadModel: token + learned position embeddings, pre-LayerNorm blocks with a fused
// Conv1D c_attn (weights [in, out]), causal attention scaled by 1/sqrt(head_dim), a gelu_new (tanh) MLP,
// final LayerNorm and the head tied to wte.
//
//===----------------------------------------------------------------------===//
#include "Common.h"

#include <cmath>

namespace kiln::models {

bool buildGpt2(GraphBuilder &g, StepFunction &step, Weights &w, const ModelConfig &c) {
  const int64_t H = c.hiddenSize, heads = c.numHeads, d = c.headDim, I = c.intermediateSize;
  if (!checkGeluNew(g, c))
    return false;
  auto flag = [&](const char *key, bool fallback) {
    auto it = c.raw.find(key);
    return it != c.raw.end() && it->is_boolean() ? it->get<bool>() : fallback;
  };
  const bool scaleWeights = flag("scale_attn_weights", true);
  const bool scaleByLayer = flag("scale_attn_by_inverse_layer_idx", false);
  const double eps = c.layerNormEps;
  // GPT2LMHeadModel checkpoints prefix the body with "transformer."; the original GPT2Model ones do not.
  const std::string t = gptPrefix(w);

  Value x = gptTokenEmbeddings(g, step, w, c, t);
  g.setLocation(t + "wpe");
  // position_ids = arange(past, past + s): the learned positions continue after the KV cache.
  x = g.add(x, g.gather(w.get(t + "wpe.weight", {c.maxPositions, H}), chunkPositions(g)));

  Value mask;
  llvm::SmallVector<KvCache> presents;
  for (int64_t l = 0; l < c.numLayers; ++l) {
    std::string p = t + "h." + std::to_string(l) + ".";
    g.setLocation(p + "ln_1");
    Value h = layerNormNamed(g, w, x, p + "ln_1", H, eps);

    g.setLocation(p + "attn");
    Value qkv = conv1d(g, w, h, p + "attn.c_attn", H, 3 * H);
    Value q = splitHeads(g, g.slice(qkv, 2, 0, H), heads, d);
    Value k = splitHeads(g, g.slice(qkv, 2, H, 2 * H), heads, d);
    Value v = splitHeads(g, g.slice(qkv, 2, 2 * H, 3 * H), heads, d);
    KvCache cache = appendKvCache(g, step, l, k, v, heads, d);
    presents.push_back(cache);
    if (!mask)
      mask = causalMask(g, std::nullopt);
    double scale = scaleWeights ? 1.0 / std::sqrt(static_cast<double>(d)) : 1.0;
    if (scaleByLayer)
      scale /= static_cast<double>(l + 1);
    Value attn = attention(g, q, cache.key, cache.value, scale, mask);
    x = g.add(x, conv1d(g, w, mergeHeads(g, attn), p + "attn.c_proj", H, H));

    g.setLocation(p + "ln_2");
    h = layerNormNamed(g, w, x, p + "ln_2", H, eps);
    g.setLocation(p + "mlp");
    Value fc = g.unary<ir::GeluTanhOp>(conv1d(g, w, h, p + "mlp.c_fc", H, I));
    x = g.add(x, conv1d(g, w, fc, p + "mlp.c_proj", I, H));
  }

  const std::string head = w.has("lm_head.weight") ? "lm_head.weight" : t + "wte.weight"; // tied by default
  return addGptOutputs(g, step, w, c, x, t, head, "", presents);
}

} // namespace kiln::models
