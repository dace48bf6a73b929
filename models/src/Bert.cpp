//===- Bert.cpp - BERT (BertModel) and MPNet (MPNetModel) encoders ----------===//
//
// transformers' BertModel and MPNetModel: post-LayerNorm encoder layers (self-attention + residual ->
// LayerNorm, gelu MLP + residual -> LayerNorm) over bidirectional attention with a padding mask. BERT
// embeds word + token type (row 0: token_type_ids are zero in this contract) + absolute positions; MPNet
// embeds word + positions counted over non-padding tokens and adds a bucketed relative position bias to the
// scores of every layer. Output: last_hidden_state.
//
//===----------------------------------------------------------------------===//
#include "Common.h"

#include <cmath>

namespace kiln::models {

namespace {

/// Weight names of one post-LayerNorm encoder layer, relative to the layer prefix.
struct EncoderLayerNames {
  const char *query, *key, *value, *attnOut, *attnNorm, *intermediate, *output, *outputNorm;
};

const EncoderLayerNames kBertLayer = {"attention.self.query",      "attention.self.key",
                                      "attention.self.value",      "attention.output.dense",
                                      "attention.output.LayerNorm", "intermediate.dense",
                                      "output.dense",              "output.LayerNorm"};
const EncoderLayerNames kMpnetLayer = {"attention.attn.q", "attention.attn.k",   "attention.attn.v",
                                       "attention.attn.o", "attention.LayerNorm", "intermediate.dense",
                                       "output.dense",     "output.LayerNorm"};

bool checkGelu(GraphBuilder &g, const ModelConfig &c) {
  const std::string act = c.hiddenAct.empty() ? "gelu" : c.hiddenAct;
  if (act != "gelu") {
    g.fail(c.path + ": hidden_act '" + act + "' is not supported for " + c.architecture + " (gelu)");
    return false;
  }
  return true;
}

/// One encoder layer: attention (+ bias, + padding mask) -> dense + residual -> LayerNorm; intermediate
/// dense -> gelu -> output dense + residual -> LayerNorm.
Value encoderLayer(GraphBuilder &g, Weights &w, const ModelConfig &c, const EncoderLayerNames &n,
                   const std::string &p, Value x, Value mask, Value bias) {
  const int64_t H = c.hiddenSize, heads = c.numHeads, d = c.headDim, I = c.intermediateSize;
  auto lin = [&](Value in, const char *name, int64_t out, int64_t inDim) {
    return linear(g, w, in, p + name + ".weight", p + name + ".bias", out, inDim);
  };
  g.setLocation(p + "attention");
  Value q = splitHeads(g, lin(x, n.query, heads * d, H), heads, d);
  Value k = splitHeads(g, lin(x, n.key, heads * d, H), heads, d);
  Value v = splitHeads(g, lin(x, n.value, heads * d, H), heads, d);
  Value ctx = attention(g, q, k, v, 1.0 / std::sqrt(static_cast<double>(d)), mask, bias);
  Value attnOut = lin(mergeHeads(g, ctx), n.attnOut, H, heads * d);
  x = layerNormNamed(g, w, g.add(attnOut, x), p + n.attnNorm, H, c.layerNormEps);

  g.setLocation(p + "intermediate");
  Value h = g.unary<ir::GeluOp>(lin(x, n.intermediate, I, H));
  g.setLocation(p + "output");
  return layerNormNamed(g, w, g.add(lin(h, n.output, H, I), x), p + n.outputNorm, H, c.layerNormEps);
}

} // namespace

bool buildBert(GraphBuilder &g, StepFunction &step, Weights &w, const ModelConfig &c) {
  if (!checkGelu(g, c))
    return false;
  auto it = c.raw.find("position_embedding_type");
  if (it != c.raw.end() && it->is_string() && it->get<std::string>() != "absolute") {
    g.fail(c.path + ": position_embedding_type '" + it->get<std::string>() + "' is not supported for " +
           c.architecture + " (absolute)");
    return false;
  }
  const int64_t H = c.hiddenSize;
  // BertForMaskedLM-style checkpoints hold the encoder under "bert.".
  const std::string root = w.has("bert.embeddings.word_embeddings.weight") ? "bert." : "";
  const int64_t typeVocab = c.typeVocabSize > 0 ? c.typeVocabSize : 2;

  Value ids = step.addInput("input_ids", {dim("b"), dim("s")}, g.i64());
  Value attentionMask = step.addInput("attention_mask", {dim("b"), dim("s")}, g.i64());

  std::string e = root + "embeddings.";
  g.setLocation(e + "word_embeddings");
  Value x = g.gather(w.get(e + "word_embeddings.weight", {c.vocabSize, H}), ids);
  g.setLocation(e + "token_type_embeddings");
  // token_type_ids default to zeros: every token adds row 0.
  x = g.add(x, g.slice(w.get(e + "token_type_embeddings.weight", {typeVocab, H}), 0, 0, 1));
  g.setLocation(e + "position_embeddings");
  Value positions = g.iota({dim(1), dim("s")}, 1, g.i64());
  x = g.add(x, g.gather(w.get(e + "position_embeddings.weight", {c.maxPositions, H}), positions));
  g.setLocation(e + "LayerNorm");
  x = layerNormNamed(g, w, x, e + "LayerNorm", H, c.layerNormEps);

  g.setLocation(root + "encoder");
  Value mask = paddingMask(g, attentionMask);
  for (int64_t l = 0; l < c.numLayers; ++l)
    x = encoderLayer(g, w, c, kBertLayer, root + "encoder.layer." + std::to_string(l) + ".", x, mask, {});
  if (!g.ok())
    return false;
  step.addOutput("last_hidden_state", x);
  return true;
}

/// transformers' create_position_ids_from_input_ids: cumsum(ids != pad) * (ids != pad) + pad, as i64 [b, s].
/// The cumsum is a matmul with the upper-triangular ones matrix (exact for these small integers).
static Value mpnetPositions(GraphBuilder &g, Value ids, int64_t paddingIdx) {
  Value mask = g.select(g.compare(ir::ComparePredicate::ne, ids, g.scalarI64(paddingIdx)), g.scalar(1.0), g.scalar(0.0)); // [b, s]
  Value row = g.iota({dim("s"), dim("s")}, 0, g.i64()), col = g.iota({dim("s"), dim("s")}, 1, g.i64());
  Value upper = g.select(g.compare(ir::ComparePredicate::le, row, col), g.scalar(1.0), g.scalar(0.0)); // [s, s]: j <= i
  Value cumsum = g.matmul(mask, upper);                                             // [b, s]
  return g.add(g.convert(g.mul(cumsum, mask), g.i64()), g.scalarI64(paddingIdx));
}

/// MPNetEncoder.relative_position_bucket (bidirectional, max_distance 128) of key - query positions, [s, s].
static Value mpnetRelativeBuckets(GraphBuilder &g, int64_t numBuckets, int64_t maxDistance) {
  Value queryPos = g.iota({dim("s"), dim(1)}, 0, g.i64()); // context_position
  Value keyPos = g.iota({dim(1), dim("s")}, 1, g.i64());   // memory_position
  Value n = g.neg(g.sub(keyPos, queryPos));                // -relative_position, [s, s]
  numBuckets /= 2;
  Value ret = g.select(g.compare(ir::ComparePredicate::lt, n, g.scalarI64(0)), g.scalarI64(numBuckets), g.scalarI64(0));
  n = g.unary<ir::AbsOp>(n);
  int64_t maxExact = numBuckets / 2;
  Value isSmall = g.compare(ir::ComparePredicate::lt, n, g.scalarI64(maxExact));
  // transformers computes the large branch in float32 and truncates it to an integer: at n = 16, 32, 64 the
  // exact value is an integer, so the rounding decides the bucket. Each step is rounded to f32 with an
  // f32 -> f32 convert (a no-op in f32 code; in the double-precision interpreter it is what makes the
  // truncation agree with torch). log(0) is never selected (n = 0 is small); max(n, 1) keeps it finite.
  auto f32 = [&](Value v) { return g.convert(v, g.f32()); };
  Value nf = g.max(g.convert(n, g.f32()), g.scalar(1.0));
  Value logN = f32(g.unary<ir::LogOp>(f32(g.div(nf, g.scalar(static_cast<double>(maxExact))))));
  Value logRatio =
      f32(g.div(logN, g.scalar(std::log(static_cast<double>(maxDistance) / static_cast<double>(maxExact)))));
  Value scaled = f32(g.mul(logRatio, g.scalar(static_cast<double>(numBuckets - maxExact))));
  Value large = g.add(g.scalarI64(maxExact), g.convert(scaled, g.i64()));
  large = g.min(large, g.scalarI64(numBuckets - 1));
  return g.add(ret, g.select(isSmall, n, large));
}

bool buildMpnet(GraphBuilder &g, StepFunction &step, Weights &w, const ModelConfig &c) {
  if (!checkGelu(g, c))
    return false;
  const int64_t H = c.hiddenSize, heads = c.numHeads;
  // MPNetEncoder.compute_position_bias buckets with its default num_buckets = 32 whatever the config says;
  // the embedding table has relative_attention_num_buckets rows.
  const int64_t tableRows = c.relativeAttentionNumBuckets > 0 ? c.relativeAttentionNumBuckets : 32;
  const int64_t numBuckets = 32;
  if (tableRows < numBuckets) {
    g.fail(c.path + ": relative_attention_num_buckets " + std::to_string(tableRows) + " is below the " +
           std::to_string(numBuckets) + " buckets MPNet's position bias uses");
    return false;
  }
  // MPNetEmbeddings hard-codes padding_idx = 1 (the pad id of every MPNet tokenizer).
  const int64_t paddingIdx = 1;
  const std::string root = w.has("mpnet.embeddings.word_embeddings.weight") ? "mpnet." : "";

  Value ids = step.addInput("input_ids", {dim("b"), dim("s")}, g.i64());
  Value attentionMask = step.addInput("attention_mask", {dim("b"), dim("s")}, g.i64());

  std::string e = root + "embeddings.";
  g.setLocation(e + "position_ids");
  Value positions = mpnetPositions(g, ids, paddingIdx);
  g.setLocation(e + "word_embeddings");
  Value x = g.gather(w.get(e + "word_embeddings.weight", {c.vocabSize, H}), ids);
  g.setLocation(e + "position_embeddings");
  x = g.add(x, g.gather(w.get(e + "position_embeddings.weight", {c.maxPositions, H}), positions));
  g.setLocation(e + "LayerNorm");
  x = layerNormNamed(g, w, x, e + "LayerNorm", H, c.layerNormEps);

  g.setLocation(root + "encoder.relative_attention_bias");
  Value buckets = mpnetRelativeBuckets(g, numBuckets, /*maxDistance=*/128);
  Value values = g.gather(w.get(root + "encoder.relative_attention_bias.weight", {tableRows, heads}), buckets);
  Value bias = g.reshape(g.transpose(values, {2, 0, 1}), {dim(1), dim(heads), dim("s"), dim("s")});

  g.setLocation(root + "encoder");
  Value mask = paddingMask(g, attentionMask);
  for (int64_t l = 0; l < c.numLayers; ++l)
    x = encoderLayer(g, w, c, kMpnetLayer, root + "encoder.layer." + std::to_string(l) + ".", x, mask, bias);
  if (!g.ok())
    return false;
  step.addOutput("last_hidden_state", x);
  return true;
}

} // namespace kiln::models
