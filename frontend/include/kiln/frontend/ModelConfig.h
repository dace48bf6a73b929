// Parsing a Hugging Face config.json, written by transformers 4.x or 5.x, into one normalized
// ModelConfig. Where both spellings of a setting are present the explicit / newer one wins.
// Every error is a one-line Status message starting with the config path.
#pragma once

#include "kiln/support/Status.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

struct RopeParams {
  std::string type = "default"; // default | linear | llama3 (others are rejected)
  double theta = 10000.0;
  double factor = 1.0;
  double lowFreqFactor = 1.0, highFreqFactor = 4.0; // llama3
  int64_t originalMaxPositions = 0;                 // llama3 (and Phi-3's top-level key)
};

struct ModelConfig {
  std::string path;         // the config.json path, for messages
  std::string architecture; // architectures[0] (e.g. "LlamaForCausalLM"); falls back to model_type
  std::string modelType;    // model_type
  int64_t vocabSize = 0, hiddenSize = 0, intermediateSize = 0, numLayers = 0, numHeads = 0,
          numKvHeads = 0, headDim = 0, maxPositions = 0;
  double rmsNormEps = 1e-6, layerNormEps = 1e-12;
  std::string hiddenAct; // hidden_activation / hidden_act / activation_function
  bool tieWordEmbeddings = false, attentionBias = false, mlpBias = false;
  std::string dtype; // "float32" / "float16" / "bfloat16": dtype (5.x) or torch_dtype (4.x)
  RopeParams rope;   // rope of full-attention layers (all layers for most models)
  std::optional<RopeParams> ropeLocal; // Gemma 3 sliding layers
  double partialRotaryFactor = 1.0;
  std::vector<std::string> layerTypes; // numLayers entries: "full_attention" | "sliding_attention"
  std::optional<int64_t> slidingWindow; // only when some layer slides
  double queryPreAttnScalar = 0;
  std::optional<double> attnLogitSoftcapping, finalLogitSoftcapping;
  int64_t typeVocabSize = 0; // BERT / MPNet
  std::optional<int64_t> padTokenId;
  int64_t relativeAttentionNumBuckets = 0;
  nlohmann::json raw; // the whole parsed object, for builders that need a rare key

  bool isSliding(int64_t layer) const {
    return layer >= 0 && size_t(layer) < layerTypes.size() &&
           layerTypes[size_t(layer)] == "sliding_attention";
  }
};

StatusOr<ModelConfig> parseModelConfig(const std::string &path);
StatusOr<ModelConfig> parseModelConfigText(std::string_view text,
                                           const std::string &nameForMessages);

} // namespace kiln
