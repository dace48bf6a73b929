#include "kiln/frontend/ModelConfig.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

using namespace kiln;

namespace {

std::string dataConfig(const char *model) {
  return kiln::test::sourceDir() + "/tests/data/" + model + "/config.json";
}

ModelConfig parseOk(const std::string &text) {
  auto c = parseModelConfigText(text, "config.json");
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? std::move(c).value() : ModelConfig{};
}

std::string parseError(const std::string &text) {
  auto c = parseModelConfigText(text, "config.json");
  if (c.ok())
    return "";
  return c.status().message();
}

void expectSameRope(const RopeParams &a, const RopeParams &b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.theta, b.theta);
  EXPECT_EQ(a.factor, b.factor);
  EXPECT_EQ(a.lowFreqFactor, b.lowFreqFactor);
  EXPECT_EQ(a.highFreqFactor, b.highFreqFactor);
  EXPECT_EQ(a.originalMaxPositions, b.originalMaxPositions);
}

void expectSame(const ModelConfig &a, const ModelConfig &b) {
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.modelType, b.modelType);
  EXPECT_EQ(a.vocabSize, b.vocabSize);
  EXPECT_EQ(a.hiddenSize, b.hiddenSize);
  EXPECT_EQ(a.intermediateSize, b.intermediateSize);
  EXPECT_EQ(a.numLayers, b.numLayers);
  EXPECT_EQ(a.numHeads, b.numHeads);
  EXPECT_EQ(a.numKvHeads, b.numKvHeads);
  EXPECT_EQ(a.headDim, b.headDim);
  EXPECT_EQ(a.maxPositions, b.maxPositions);
  EXPECT_EQ(a.rmsNormEps, b.rmsNormEps);
  EXPECT_EQ(a.layerNormEps, b.layerNormEps);
  EXPECT_EQ(a.hiddenAct, b.hiddenAct);
  EXPECT_EQ(a.tieWordEmbeddings, b.tieWordEmbeddings);
  EXPECT_EQ(a.attentionBias, b.attentionBias);
  EXPECT_EQ(a.mlpBias, b.mlpBias);
  EXPECT_EQ(a.dtype, b.dtype);
  expectSameRope(a.rope, b.rope);
  ASSERT_EQ(a.ropeLocal.has_value(), b.ropeLocal.has_value());
  if (a.ropeLocal)
    expectSameRope(*a.ropeLocal, *b.ropeLocal);
  EXPECT_EQ(a.partialRotaryFactor, b.partialRotaryFactor);
  EXPECT_EQ(a.layerTypes, b.layerTypes);
  EXPECT_EQ(a.slidingWindow, b.slidingWindow);
  EXPECT_EQ(a.queryPreAttnScalar, b.queryPreAttnScalar);
  EXPECT_EQ(a.attnLogitSoftcapping, b.attnLogitSoftcapping);
  EXPECT_EQ(a.finalLogitSoftcapping, b.finalLogitSoftcapping);
  EXPECT_EQ(a.typeVocabSize, b.typeVocabSize);
  EXPECT_EQ(a.padTokenId, b.padTokenId);
  EXPECT_EQ(a.relativeAttentionNumBuckets, b.relativeAttentionNumBuckets);
}

// transformers 4.x spellings of the three reference configs.
const char *kLlama4x = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 1, "eos_token_id": 2, "head_dim": 16, "hidden_act": "silu", "hidden_size": 64,
  "initializer_range": 0.1, "intermediate_size": 176, "max_position_embeddings": 256,
  "mlp_bias": false, "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 2,
  "num_key_value_heads": 2, "pad_token_id": null, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": null, "rope_theta": 10000.0, "tie_word_embeddings": false,
  "torch_dtype": "float32", "transformers_version": "4.46.0", "use_cache": true, "vocab_size": 512
})";
const char *kGemma4x = R"({
  "architectures": ["Gemma3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "attn_logit_softcapping": null, "bos_token_id": 2, "eos_token_id": 1,
  "final_logit_softcapping": null, "head_dim": 16, "hidden_activation": "gelu_pytorch_tanh",
  "hidden_size": 64, "initializer_range": 0.1, "intermediate_size": 128,
  "max_position_embeddings": 256, "model_type": "gemma3_text", "num_attention_heads": 4,
  "num_hidden_layers": 3, "num_key_value_heads": 2, "pad_token_id": 0,
  "query_pre_attn_scalar": 16, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000.0,
  "rope_scaling": null, "rope_theta": 1000000.0, "sliding_window": 6,
  "sliding_window_pattern": 3, "tie_word_embeddings": true, "torch_dtype": "float32",
  "transformers_version": "4.50.0", "use_cache": true, "vocab_size": 512
})";
const char *kBert4x = R"({
  "architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "classifier_dropout": null,
  "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 64, "initializer_range": 0.1,
  "intermediate_size": 128, "layer_norm_eps": 1e-12, "max_position_embeddings": 128,
  "model_type": "bert", "num_attention_heads": 4, "num_hidden_layers": 2, "pad_token_id": 0,
  "position_embedding_type": "absolute", "tie_word_embeddings": true, "torch_dtype": "float32",
  "transformers_version": "4.46.0", "type_vocab_size": 2, "use_cache": true, "vocab_size": 512
})";

const char *kMinimal = R"("architectures": ["X"], "vocab_size": 10, "hidden_size": 8,
  "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2)";

std::string minimal(const std::string &extra = "") {
  return std::string("{") + kMinimal + (extra.empty() ? "" : ", " + extra) + "}";
}

} // namespace

TEST(ModelConfig, LlamaTiny) {
  auto c = parseModelConfig(dataConfig("llama-tiny"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->path, dataConfig("llama-tiny"));
  EXPECT_EQ(c->architecture, "LlamaForCausalLM");
  EXPECT_EQ(c->modelType, "llama");
  EXPECT_EQ(c->numLayers, 2);
  EXPECT_EQ(c->vocabSize, 512);
  EXPECT_EQ(c->hiddenSize, 64);
  EXPECT_EQ(c->intermediateSize, 176);
  EXPECT_EQ(c->numHeads, 4);
  EXPECT_EQ(c->numKvHeads, 2);
  EXPECT_EQ(c->headDim, 16);
  EXPECT_EQ(c->maxPositions, 256);
  EXPECT_EQ(c->rmsNormEps, 1e-5);
  EXPECT_EQ(c->hiddenAct, "silu");
  EXPECT_FALSE(c->tieWordEmbeddings);
  EXPECT_EQ(c->dtype, "float32");
  EXPECT_EQ(c->rope.type, "default");
  EXPECT_EQ(c->rope.theta, 10000.0);
  EXPECT_FALSE(c->ropeLocal.has_value());
  EXPECT_EQ(c->layerTypes, (std::vector<std::string>{"full_attention", "full_attention"}));
  EXPECT_FALSE(c->slidingWindow.has_value());
  EXPECT_FALSE(c->padTokenId.has_value());
  EXPECT_TRUE(c->raw.is_object());
  expectSame(*c, parseOk(kLlama4x));
}

TEST(ModelConfig, Gemma3Tiny) {
  auto c = parseModelConfig(dataConfig("gemma3-tiny"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->architecture, "Gemma3ForCausalLM");
  EXPECT_EQ(c->modelType, "gemma3_text");
  EXPECT_EQ(c->numLayers, 3);
  EXPECT_EQ(c->layerTypes, (std::vector<std::string>{"sliding_attention", "sliding_attention",
                                                     "full_attention"}));
  EXPECT_TRUE(c->isSliding(0));
  EXPECT_FALSE(c->isSliding(2));
  ASSERT_TRUE(c->ropeLocal.has_value());
  EXPECT_EQ(c->ropeLocal->theta, 10000.0);
  EXPECT_EQ(c->rope.theta, 1e6);
  EXPECT_EQ(c->slidingWindow, std::optional<int64_t>(6));
  EXPECT_EQ(c->headDim, 16);
  EXPECT_EQ(c->queryPreAttnScalar, 16.0);
  EXPECT_EQ(c->hiddenAct, "gelu_pytorch_tanh");
  EXPECT_FALSE(c->attnLogitSoftcapping.has_value());
  EXPECT_FALSE(c->finalLogitSoftcapping.has_value());
  EXPECT_TRUE(c->tieWordEmbeddings);
  EXPECT_EQ(c->padTokenId, std::optional<int64_t>(0));
  expectSame(*c, parseOk(kGemma4x));
}

TEST(ModelConfig, BertTiny) {
  auto c = parseModelConfig(dataConfig("bert-tiny"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->architecture, "BertModel");
  EXPECT_EQ(c->layerNormEps, 1e-12);
  EXPECT_EQ(c->typeVocabSize, 2);
  EXPECT_EQ(c->padTokenId, std::optional<int64_t>(0));
  EXPECT_EQ(c->maxPositions, 128);
  EXPECT_EQ(c->headDim, 16);
  EXPECT_EQ(c->numKvHeads, 4);
  EXPECT_EQ(c->hiddenAct, "gelu");
  expectSame(*c, parseOk(kBert4x));
}

TEST(ModelConfig, NewerKeysWin) {
  // rope_parameters beats rope_theta / rope_scaling; dtype beats torch_dtype;
  // layer_types beats sliding_window_pattern.
  ModelConfig c = parseOk(minimal(R"("rope_theta": 5.0, "rope_scaling": {"type": "linear", "factor": 2},
      "rope_parameters": {"rope_type": "default", "rope_theta": 7.0},
      "dtype": "bfloat16", "torch_dtype": "float16", "sliding_window": 4,
      "sliding_window_pattern": 2, "layer_types": ["sliding_attention", "sliding_attention"])"));
  EXPECT_EQ(c.rope.type, "default");
  EXPECT_EQ(c.rope.theta, 7.0);
  EXPECT_EQ(c.dtype, "bfloat16");
  EXPECT_EQ(c.layerTypes, (std::vector<std::string>{"sliding_attention", "sliding_attention"}));
  EXPECT_EQ(c.slidingWindow, std::optional<int64_t>(4));
}

TEST(ModelConfig, RopeVariants) {
  ModelConfig c = parseOk(minimal(R"("rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3",
      "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 8192})"));
  EXPECT_EQ(c.rope.type, "llama3");
  EXPECT_EQ(c.rope.theta, 500000.0);
  EXPECT_EQ(c.rope.factor, 8.0);
  EXPECT_EQ(c.rope.highFreqFactor, 4.0);
  EXPECT_EQ(c.rope.originalMaxPositions, 8192);
  ModelConfig c5 = parseOk(minimal(R"("rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0,
      "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 8192})"));
  expectSameRope(c.rope, c5.rope);

  c = parseOk(minimal(R"("rope_scaling": {"type": "linear", "factor": 4})"));
  EXPECT_EQ(c.rope.type, "linear");
  EXPECT_EQ(c.rope.factor, 4.0);
  EXPECT_EQ(c.rope.theta, 10000.0);

  // Phi-3: top-level partial_rotary_factor and original_max_position_embeddings.
  c = parseOk(minimal(R"("partial_rotary_factor": 0.5, "original_max_position_embeddings": 4096)"));
  EXPECT_EQ(c.partialRotaryFactor, 0.5);
  EXPECT_EQ(c.rope.originalMaxPositions, 4096);
  c = parseOk(minimal(R"("rope_parameters": {"rope_theta": 1e4, "partial_rotary_factor": 0.25})"));
  EXPECT_EQ(c.partialRotaryFactor, 0.25);

  std::string m = parseError(minimal(R"("rope_scaling": {"rope_type": "yarn", "factor": 4})"));
  EXPECT_EQ(m.rfind("config.json: ", 0), 0u);
  EXPECT_NE(m.find("unsupported rope type 'yarn'"), std::string::npos) << m;
  m = parseError(minimal(R"("rope_parameters": {"rope_type": "dynamic", "factor": 2})"));
  EXPECT_NE(m.find("unsupported rope type 'dynamic'"), std::string::npos) << m;
  m = parseError(minimal(R"("rope_scaling": {"rope_type": "llama3", "factor": 8})"));
  EXPECT_NE(m.find("llama3"), std::string::npos) << m;
  m = parseError(minimal(R"("rope_theta": -1)"));
  EXPECT_NE(m.find("'rope_theta'"), std::string::npos) << m;
  m = parseError(minimal(R"("partial_rotary_factor": 1.5)"));
  EXPECT_NE(m.find("'partial_rotary_factor'"), std::string::npos) << m;
}

TEST(ModelConfig, SlidingWindowStyles) {
  // Mistral: sliding_window set -> every layer slides; null -> none.
  ModelConfig c = parseOk(minimal(R"("model_type": "mistral", "sliding_window": 4096)"));
  EXPECT_EQ(c.layerTypes, (std::vector<std::string>{"sliding_attention", "sliding_attention"}));
  EXPECT_EQ(c.slidingWindow, std::optional<int64_t>(4096));
  c = parseOk(minimal(R"("model_type": "mistral", "sliding_window": null)"));
  EXPECT_EQ(c.layerTypes, (std::vector<std::string>{"full_attention", "full_attention"}));
  EXPECT_FALSE(c.slidingWindow.has_value());
  // Qwen2: only with use_sliding_window, from max_window_layers on.
  c = parseOk(R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 10,
      "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 4, "num_attention_heads": 2,
      "use_sliding_window": true, "sliding_window": 32, "max_window_layers": 2})");
  EXPECT_EQ(c.layerTypes, (std::vector<std::string>{"full_attention", "full_attention",
                                                    "sliding_attention", "sliding_attention"}));
  EXPECT_EQ(c.slidingWindow, std::optional<int64_t>(32));
  c = parseOk(R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 10,
      "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 4, "num_attention_heads": 2,
      "use_sliding_window": false, "sliding_window": 32, "max_window_layers": 2})");
  EXPECT_FALSE(c.slidingWindow.has_value());
  EXPECT_EQ(c.layerTypes[3], "full_attention");
  // Gemma 3 pattern: layer i is full iff (i + 1) % N == 0; the 5.x private key counts too.
  c = parseOk(R"({"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
      "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 7,
      "num_attention_heads": 2, "sliding_window": 5, "_sliding_window_pattern": 6})");
  EXPECT_EQ(c.layerTypes[4], "sliding_attention");
  EXPECT_EQ(c.layerTypes[5], "full_attention");
  EXPECT_EQ(c.layerTypes[6], "sliding_attention");
  ASSERT_TRUE(c.ropeLocal.has_value());
  EXPECT_EQ(c.ropeLocal->theta, 10000.0);
  // Llama: none.
  c = parseOk(minimal(R"("model_type": "llama")"));
  EXPECT_FALSE(c.slidingWindow.has_value());
}

TEST(ModelConfig, OtherFamilies) {
  ModelConfig g = parseOk(R"({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
      "vocab_size": 50257, "n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": null,
      "n_positions": 1024, "layer_norm_epsilon": 1e-05, "activation_function": "gelu_new"})");
  EXPECT_EQ(g.hiddenSize, 768);
  EXPECT_EQ(g.numLayers, 12);
  EXPECT_EQ(g.numHeads, 12);
  EXPECT_EQ(g.intermediateSize, 4 * 768);
  EXPECT_EQ(g.maxPositions, 1024);
  EXPECT_EQ(g.layerNormEps, 1e-5);
  EXPECT_EQ(g.hiddenAct, "gelu_new");
  EXPECT_EQ(g.headDim, 64);
  EXPECT_TRUE(g.tieWordEmbeddings);
  ModelConfig m = parseOk(R"({"architectures": ["MPNetModel"], "model_type": "mpnet",
      "vocab_size": 30527, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
      "num_attention_heads": 12, "layer_norm_eps": 1e-05, "relative_attention_num_buckets": 32,
      "pad_token_id": 1, "max_position_embeddings": 514, "hidden_act": "gelu"})");
  EXPECT_EQ(m.relativeAttentionNumBuckets, 32);
  EXPECT_EQ(m.padTokenId, std::optional<int64_t>(1));
  EXPECT_EQ(m.layerNormEps, 1e-5);
  // Architecture falls back to model_type; unknown architectures are accepted here.
  ModelConfig u = parseOk(R"({"model_type": "mystery", "vocab_size": 10, "hidden_size": 8,
      "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2})");
  EXPECT_EQ(u.architecture, "mystery");
  // Gemma 2 softcapping.
  ModelConfig s = parseOk(minimal(R"("attn_logit_softcapping": 50.0, "final_logit_softcapping": 30)"));
  EXPECT_EQ(s.attnLogitSoftcapping, std::optional<double>(50.0));
  EXPECT_EQ(s.finalLogitSoftcapping, std::optional<double>(30.0));
}

TEST(ModelConfig, Errors) {
  struct Case {
    std::string text;
    const char *expected;
  } cases[] = {
      {"{\"a\": ", "config.json: not valid JSON"},
      {"[1, 2]", "config.json: not a JSON object"},
      {R"({"vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
          "num_attention_heads": 2})",
       "config.json: neither 'architectures' nor 'model_type' names the architecture"},
      {R"({"architectures": "Llama", "vocab_size": 10})", "'architectures' must be a list"},
      {R"({"architectures": ["X"], "vocab_size": 10, "intermediate_size": 16,
          "num_hidden_layers": 2, "num_attention_heads": 2})",
       "config.json: 'hidden_size' must be a positive integer"},
      {minimal(R"("hidden_size": "8")"), "config.json: 'hidden_size' must be an integer"},
      {R"({"architectures": ["X"], "vocab_size": 10, "hidden_size": -8, "intermediate_size": 16,
          "num_hidden_layers": 2, "num_attention_heads": 2})",
       "config.json: 'hidden_size' must be a positive integer"},
      {R"({"architectures": ["X"], "vocab_size": 10, "hidden_size": 9, "intermediate_size": 16,
          "num_hidden_layers": 2, "num_attention_heads": 2})",
       "'hidden_size' 9 is not divisible by 'num_attention_heads' 2"},
      {R"({"architectures": ["X"], "vocab_size": 10, "hidden_size": 12, "intermediate_size": 16,
          "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 3})",
       "'num_attention_heads' 4 is not a multiple of 'num_key_value_heads' 3"},
      {minimal(R"("max_position_embeddings": -1)"), "'max_position_embeddings' must be a non-negative"},
      {minimal(R"("layer_types": ["full_attention"])"), "'layer_types' has 1 entries but there are 2 layers"},
      {minimal(R"("layer_types": ["full_attention", "chunked_attention"], "sliding_window": 3)"),
       "unknown layer type 'chunked_attention'"},
      {minimal(R"("layer_types": ["full_attention", "sliding_attention"])"), "'sliding_window'"},
      {minimal(R"("tie_word_embeddings": "yes")"), "'tie_word_embeddings' must be true or false"},
      {minimal(R"("rms_norm_eps": [1])"), "'rms_norm_eps' must be a number"},
      {minimal(R"("num_hidden_layers": 1e15)"), "out of range"},
      {minimal(R"("rope_scaling": 3)"), "'rope_scaling' must be an object"},
  };
  for (const Case &c : cases) {
    std::string m = parseError(c.text);
    ASSERT_FALSE(m.empty()) << "parsed: " << c.text;
    EXPECT_EQ(m.rfind("config.json: ", 0), 0u) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_NE(m.find(c.expected), std::string::npos) << "'" << c.expected << "' not in: " << m;
  }
  auto missing = parseModelConfig("/nonexistent/config.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "/nonexistent/config.json: No such file or directory");
}

// Every reference case in tests/data: its 5.x config.json and its 4.x twin (config.v4.json,
// written by tools/config-to-v4.py) parse to the same ModelConfig.
TEST(ModelConfig, ReferenceCasesAgreeAcrossVersions) {
  std::error_code ec;
  std::string root = kiln::test::sourceDir() + "/tests/data";
  std::map<std::string, ModelConfig> byName;
  for (auto it = std::filesystem::directory_iterator(root, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string dir = it->path().string();
    std::string name = it->path().filename().string();
    if (!std::filesystem::exists(dir + "/config.json"))
      continue;
    auto c5 = parseModelConfig(dir + "/config.json");
    ASSERT_TRUE(c5.ok()) << c5.status().message();
    if (std::filesystem::exists(dir + "/config.v4.json")) {
      auto c4 = parseModelConfig(dir + "/config.v4.json");
      ASSERT_TRUE(c4.ok()) << c4.status().message();
      SCOPED_TRACE(name);
      expectSame(*c5, *c4);
    }
    byName.emplace(name, std::move(c5).value());
  }
  ASSERT_GE(byName.size(), 3u);
  auto has = [&](const char *n) { return byName.count(n) != 0; };
  if (has("mistral-tiny")) {
    const ModelConfig &c = byName["mistral-tiny"];
    EXPECT_TRUE(c.slidingWindow.has_value());
    for (int64_t i = 0; i < c.numLayers; ++i)
      EXPECT_TRUE(c.isSliding(i));
  }
  if (has("qwen2-tiny"))
    EXPECT_FALSE(byName["qwen2-tiny"].slidingWindow.has_value());
  if (has("phi3-tiny")) {
    EXPECT_EQ(byName["phi3-tiny"].partialRotaryFactor, 0.5);
    EXPECT_EQ(byName["phi3-tiny"].rope.originalMaxPositions, 4096);
  }
  if (has("llama3-tiny")) {
    const RopeParams &r = byName["llama3-tiny"].rope;
    EXPECT_EQ(r.type, "llama3");
    EXPECT_EQ(r.theta, 500000.0);
    EXPECT_EQ(r.factor, 8.0);
    EXPECT_EQ(r.originalMaxPositions, 64);
  }
  if (has("gpt2-tiny")) {
    const ModelConfig &c = byName["gpt2-tiny"];
    EXPECT_EQ(c.intermediateSize, 4 * c.hiddenSize);
    EXPECT_EQ(c.architecture, "GPT2LMHeadModel");
  }
  if (has("mpnet-tiny"))
    EXPECT_GT(byName["mpnet-tiny"].relativeAttentionNumBuckets, 0);
}
