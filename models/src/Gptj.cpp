//===- Gptj.cpp - GPT-J (GPTJForCausalLM) ---------------------------------===//
//
// transformers' GPTJForCausalLM: token embeddings only (no learned positions), parallel blocks in which one
// LayerNorm ln_1 feeds both the attention and the MLP (x + attn(ln_1 x) + mlp(ln_1 x)), q/k/v/out_proj
// without bias, partial *interleaved* rotary on the first rotary_dim channels of each head (rotate_every_two:
// pairs (x[2i], x[2i+1]), sin/cos repeat_interleave'd), causal attention scaled by 1/sqrt(head_dim), a
// gelu_new (tanh) MLP fc_in/fc_out with biases, final LayerNorm ln_f and an untied lm_head with a bias.
//
// The rotary is emitted as HF computes it, in primitives that fuse-rope raises to kiln.rope {interleaved}:
//   f = reshape(convert(positions)) * inv_freq                      [1, s, r/2]
//   C = reshape(broadcast_to(reshape(cos(f), [1,1,s,r/2,1]), [1,1,s,r/2,2]), [1,1,s,r])  (repeat_interleave)
//   y = reshape(rot, [b,h,s,r/2,2]); rotated = reshape(concat(neg(y[..,1:2]), y[..,0:1]), [b,h,s,r])
//   out = concat(rot * C + rotated * S, x[.., r:d])
//
//===----------------------------------------------------------------------===//
#include "Common.h"

#include <cmath>

namespace kiln::models {

namespace {

struct InterleavedTables {
  Value cos, sin; // [1, 1, s, r], each value repeated for the pair (2i, 2i + 1)
  int64_t rotaryDim;
};

/// repeat_interleave(t, 2, last axis) of t [1, s, r/2] -> [1, 1, s, r].
Value repeatInterleave2(GraphBuilder &g, Value t, int64_t half) {
  Value e = g.reshape(t, {dim(1), dim(1), dim("s"), dim(half), dim(1)});
  Value b = g.broadcastTo(e, {dim(1), dim(1), dim("s"), dim(half), dim(2)});
  return g.reshape(b, {dim(1), dim(1), dim("s"), dim(2 * half)});
}

InterleavedTables interleavedTables(GraphBuilder &g, Value positions, const std::vector<float> &invFreq) {
  int64_t half = invFreq.size();
  // create_sinusoidal_positions gathered at the positions: sinusoid_inp[s, i] = position[s] * inv_freq[i].
  Value pos = g.reshape(g.convert(positions, g.f32()), {dim(1), dim("s"), dim(1)});
  Value freqs = g.mul(pos, g.constant(invFreq, {1, 1, half}));
  return {repeatInterleave2(g, g.unary<ir::CosOp>(freqs), half),
          repeatInterleave2(g, g.unary<ir::SinOp>(freqs), half), 2 * half};
}

/// apply_rotary_pos_emb of GPT-J on x [b, h, s, d]: the first r channels rotate in pairs, the rest pass.
Value applyInterleavedRope(GraphBuilder &g, Value x, const InterleavedTables &t) {
  if (!g.ok())
    return {};
  SymShape xs = g.shape(x);
  int64_t d = xs[3].getConstant(), r = t.rotaryDim;
  Value rot = r == d ? x : g.slice(x, 3, 0, r);
  // rotate_every_two: x1 = x[..., ::2], x2 = x[..., 1::2]; stack((-x2, x1), -1).flatten(-2).
  Value pairs = g.reshape(rot, {xs[0], xs[1], xs[2], dim(r / 2), dim(2)});
  Value x1 = g.slice(pairs, 4, 0, 1), x2 = g.slice(pairs, 4, 1, 2);
  Value rotated = g.reshape(g.concat({g.neg(x2), x1}, 4), {xs[0], xs[1], xs[2], dim(r)});
  Value embedded = g.add(g.mul(rot, t.cos), g.mul(rotated, t.sin));
  return r == d ? embedded : g.concat({embedded, g.slice(x, 3, r, d)}, 3);
}

} // namespace

bool buildGptj(GraphBuilder &g, StepFunction &step, Weights &w, const ModelConfig &c) {
  const int64_t H = c.hiddenSize, heads = c.numHeads, d = c.headDim, I = c.intermediateSize;
  if (!checkGeluNew(g, c))
    return false;
  if (c.numKvHeads != heads || H != heads * d) {
    g.fail(c.path + ": " + c.architecture + " needs n_embd = n_head * head_dim and no key/value head groups");
    return false;
  }
  // GPTJConfig's default rotary_dim is 64; null (rotary over the whole embedding) is not a per-head rotary.
  int64_t rotaryDim = 64;
  if (auto it = c.raw.find("rotary_dim"); it != c.raw.end()) {
    if (!it->is_number_integer()) {
      g.fail(c.path + ": 'rotary_dim' must be an even integer in [2, head_dim " + std::to_string(d) + "]");
      return false;
    }
    rotaryDim = it->get<int64_t>();
  }
  if (rotaryDim < 2 || rotaryDim > d || rotaryDim % 2) {
    g.fail(c.path + ": 'rotary_dim' " + std::to_string(rotaryDim) + " must be an even integer in [2, head_dim " +
           std::to_string(d) + "]");
    return false;
  }
  const double eps = c.layerNormEps;
  const std::string t = gptPrefix(w);

  Value x = gptTokenEmbeddings(g, step, w, c, t);

  // create_sinusoidal_positions uses base 10000 and no scaling.
  g.setLocation(t + "h.0.attn.embed_positions");
  InterleavedTables rope = interleavedTables(g, chunkPositions(g), ropeInverseFrequencies(RopeParams{}, rotaryDim));
  Value mask;
  llvm::SmallVector<KvCache> presents;
  for (int64_t l = 0; l < c.numLayers; ++l) {
    std::string p = t + "h." + std::to_string(l) + ".";
    g.setLocation(p + "ln_1");
    Value h = layerNormNamed(g, w, x, p + "ln_1", H, eps);

    g.setLocation(p + "attn");
    Value q = linear(g, w, h, p + "attn.q_proj.weight", "", H, H);
    Value k = linear(g, w, h, p + "attn.k_proj.weight", "", H, H);
    Value v = linear(g, w, h, p + "attn.v_proj.weight", "", H, H);
    q = applyInterleavedRope(g, splitHeads(g, q, heads, d), rope);
    k = applyInterleavedRope(g, splitHeads(g, k, heads, d), rope);
    KvCache cache = appendKvCache(g, step, l, k, splitHeads(g, v, heads, d), heads, d);
    presents.push_back(cache);
    if (!mask)
      mask = causalMask(g, std::nullopt);
    Value attn = attention(g, q, cache.key, cache.value, 1.0 / std::sqrt(static_cast<double>(d)), mask);
    Value attnOut = linear(g, w, mergeHeads(g, attn), p + "attn.out_proj.weight", "", H, H);

    g.setLocation(p + "mlp");
    Value fc = g.unary<ir::GeluTanhOp>(linear(g, w, h, p + "mlp.fc_in.weight", p + "mlp.fc_in.bias", I, H));
    Value ff = linear(g, w, fc, p + "mlp.fc_out.weight", p + "mlp.fc_out.bias", H, I);
    // GPTJBlock: hidden_states = attn_output + feed_forward_hidden_states + residual.
    x = g.add(g.add(attnOut, ff), x);
  }

  return addGptOutputs(g, step, w, c, x, t, "lm_head.weight", "lm_head.bias", presents);
}

} // namespace kiln::models
