#include "JsonError.h"
#include "kiln/frontend/ModelConfig.h"

#include "kiln/support/Util.h"

#include <cmath>

namespace kiln {

using json = nlohmann::json;


namespace {

constexpr int64_t kMaxSize = int64_t(1) << 32;   // any one dimension
constexpr int64_t kMaxLayers = int64_t(1) << 16; // layers

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Typed, non-throwing access to the keys of one JSON object. A key that is absent or null reads
// as "not set"; a key of the wrong type is an error naming it.
class Reader {
public:
  Reader(const json &obj, const std::string &path, std::string prefix = "")
      : obj_(obj), path_(path), prefix_(std::move(prefix)) {}

  Status error(const std::string &msg) const { return Status::error(path_ + ": " + msg); }
  std::string name(const char *key) const { return "'" + prefix_ + key + "'"; }
  const std::string &path() const { return path_; }

  const json *get(const char *key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null())
      return nullptr;
    return &*it;
  }
  bool has(const char *key) const { return obj_.find(key) != obj_.end(); }

  Status getInt(const char *key, std::optional<int64_t> &out) const {
    out.reset();
    const json *v = get(key);
    if (!v)
      return Status::ok();
    if (v->is_number_unsigned()) {
      uint64_t u = v->get<uint64_t>();
      if (u <= uint64_t(INT64_MAX)) {
        out = int64_t(u);
        return Status::ok();
      }
    } else if (v->is_number_integer()) {
      out = v->get<int64_t>();
      return Status::ok();
    } else if (v->is_number_float()) {
      double d = v->get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18) {
        out = int64_t(d);
        return Status::ok();
      }
    }
    return error(name(key) + " must be an integer");
  }
  Status getNumber(const char *key, std::optional<double> &out) const {
    out.reset();
    const json *v = get(key);
    if (!v)
      return Status::ok();
    if (v->is_number()) {
      double d = v->get<double>();
      if (std::isfinite(d)) {
        out = d;
        return Status::ok();
      }
    }
    return error(name(key) + " must be a number");
  }
  Status getBool(const char *key, std::optional<bool> &out) const {
    out.reset();
    const json *v = get(key);
    if (!v)
      return Status::ok();
    if (!v->is_boolean())
      return error(name(key) + " must be true or false");
    out = v->get<bool>();
    return Status::ok();
  }
  Status getString(const char *key, std::optional<std::string> &out) const {
    out.reset();
    const json *v = get(key);
    if (!v)
      return Status::ok();
    if (!v->is_string())
      return error(name(key) + " must be a string");
    out = v->get<std::string>();
    return Status::ok();
  }
  const json *getObject(const char *key, Status &st) const {
    const json *v = get(key);
    if (v && !v->is_object()) {
      st = error(name(key) + " must be an object");
      return nullptr;
    }
    return v;
  }

  // The first of `keys` that is set; `which` names it.
  Status firstInt(std::initializer_list<const char *> keys, std::optional<int64_t> &out,
                  const char *&which) const {
    which = *keys.begin();
    for (const char *k : keys) {
      if (Status s = getInt(k, out); !s)
        return s;
      if (out) {
        which = k;
        return Status::ok();
      }
    }
    return Status::ok();
  }

  // A required positive size under the first of `keys` that is present.
  Status positive(std::initializer_list<const char *> keys, int64_t &out) const {
    std::optional<int64_t> v;
    const char *which;
    if (Status s = firstInt(keys, v, which); !s)
      return s;
    if (!v || *v <= 0)
      return error(name(which) + " must be a positive integer");
    if (*v > kMaxSize)
      return error(name(which) + " " + std::to_string(*v) + " is out of range");
    out = *v;
    return Status::ok();
  }
  // An optional non-negative integer (0 when absent).
  Status nonNegative(std::initializer_list<const char *> keys, int64_t &out) const {
    std::optional<int64_t> v;
    const char *which;
    if (Status s = firstInt(keys, v, which); !s)
      return s;
    if (!v)
      return Status::ok();
    if (*v < 0 || *v > kMaxSize)
      return error(name(which) + " must be a non-negative integer, not " + std::to_string(*v));
    out = *v;
    return Status::ok();
  }
  Status nonNegativeNumber(std::initializer_list<const char *> keys, double &out) const {
    for (const char *k : keys) {
      std::optional<double> v;
      if (Status s = getNumber(k, v); !s)
        return s;
      if (v) {
        if (*v < 0)
          return error(name(k) + " must not be negative");
        out = *v;
        return Status::ok();
      }
    }
    return Status::ok();
  }
  Status firstString(std::initializer_list<const char *> keys, std::string &out) const {
    for (const char *k : keys) {
      std::optional<std::string> v;
      if (Status s = getString(k, v); !s)
        return s;
      if (v) {
        out = *v;
        return Status::ok();
      }
    }
    return Status::ok();
  }

private:
  const json &obj_;
  const std::string &path_;
  std::string prefix_;
};

#define KILN_TRY(expr)                                                                             \
  do {                                                                                             \
    if (::kiln::Status _st = (expr); !_st)                                                         \
      return _st;                                                                                  \
  } while (0)

bool startsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// One rope dict: 5.x rope_parameters (or one of its per-layer-type entries) or 4.x rope_scaling.
Status parseRopeDict(const json &d, const std::string &path, const std::string &prefix,
                     double defaultTheta, RopeParams &out, std::optional<double> &partial) {
  Reader r(d, path, prefix);
  RopeParams p;
  p.theta = defaultTheta;
  std::optional<std::string> type;
  KILN_TRY(r.getString("rope_type", type));
  if (!type)
    KILN_TRY(r.getString("type", type));
  if (type)
    p.type = *type;
  if (p.type != "default" && p.type != "linear" && p.type != "llama3")
    return r.error("unsupported rope type " + support::quoteName(p.type) + " in '" + prefix.substr(0, prefix.size() - 1) +
                   "' (supported: default, linear, llama3)");
  std::optional<double> theta, factor, low, high;
  std::optional<int64_t> origMax;
  KILN_TRY(r.getNumber("rope_theta", theta));
  KILN_TRY(r.getNumber("factor", factor));
  KILN_TRY(r.getNumber("low_freq_factor", low));
  KILN_TRY(r.getNumber("high_freq_factor", high));
  KILN_TRY(r.getInt("original_max_position_embeddings", origMax));
  KILN_TRY(r.getNumber("partial_rotary_factor", partial));
  if (theta)
    p.theta = *theta;
  if (!(p.theta > 0))
    return r.error(r.name("rope_theta") + " must be positive");
  if (factor) {
    if (!(*factor > 0))
      return r.error(r.name("factor") + " must be positive");
    p.factor = *factor;
  } else if (p.type != "default") {
    return r.error("rope type " + support::quoteName(p.type) + " needs " + r.name("factor"));
  }
  if (low)
    p.lowFreqFactor = *low;
  if (high)
    p.highFreqFactor = *high;
  if (origMax) {
    if (*origMax < 0 || *origMax > kMaxSize)
      return r.error(r.name("original_max_position_embeddings") + " is out of range");
    p.originalMaxPositions = *origMax;
  }
  if (p.type == "llama3") {
    if (!low || !high || !origMax)
      return r.error("rope type 'llama3' needs " + r.name("low_freq_factor") + ", " +
                     r.name("high_freq_factor") + " and " +
                     r.name("original_max_position_embeddings"));
    if (!(p.lowFreqFactor > 0) || !(p.highFreqFactor > p.lowFreqFactor) ||
        p.originalMaxPositions <= 0)
      return r.error("rope type 'llama3' needs 0 < low_freq_factor < high_freq_factor and a "
                     "positive original_max_position_embeddings");
  }
  out = p;
  return Status::ok();
}

} // namespace

namespace {

// architectures[0], else model_type.
Status parseArchitecture(Reader &r, ModelConfig &c) {
  KILN_TRY(r.firstString({"model_type"}, c.modelType));
  if (const json *a = r.get("architectures")) {
    if (!a->is_array())
      return r.error("'architectures' must be a list of strings");
    if (!a->empty()) {
      if (!(*a)[0].is_string())
        return r.error("'architectures' must be a list of strings");
      c.architecture = (*a)[0].get<std::string>();
    }
  }
  if (c.architecture.empty())
    c.architecture = c.modelType;
  if (c.architecture.empty())
    return r.error("neither 'architectures' nor 'model_type' names the architecture");

  return Status::ok();
}

// Vocabulary, widths, layers, heads (KV heads and head_dim with their defaults), positions.
Status parseSizes(Reader &r, ModelConfig &c) {
  KILN_TRY(r.positive({"vocab_size"}, c.vocabSize));
  KILN_TRY(r.positive({"hidden_size", "n_embd", "d_model"}, c.hiddenSize));
  KILN_TRY(r.positive({"num_hidden_layers", "n_layer", "num_layers"}, c.numLayers));
  if (c.numLayers > kMaxLayers)
    return r.error("'num_hidden_layers' " + std::to_string(c.numLayers) + " is out of range");
  KILN_TRY(r.positive({"num_attention_heads", "n_head"}, c.numHeads));
  if (r.get("num_key_value_heads"))
    KILN_TRY(r.positive({"num_key_value_heads"}, c.numKvHeads));
  else
    c.numKvHeads = c.numHeads;
  if (r.get("intermediate_size") || r.get("n_inner") || r.get("ffn_dim")) {
    KILN_TRY(r.positive({"intermediate_size", "n_inner", "ffn_dim"}, c.intermediateSize));
  } else if (r.has("n_inner") || c.modelType == "gpt2") {
    c.intermediateSize = 4 * c.hiddenSize; // GPT-2: n_inner null
  } else {
    return r.error("'intermediate_size' must be a positive integer");
  }
  if (r.get("head_dim")) {
    KILN_TRY(r.positive({"head_dim"}, c.headDim));
  } else {
    if (c.hiddenSize % c.numHeads != 0)
      return r.error("'hidden_size' " + std::to_string(c.hiddenSize) +
                     " is not divisible by 'num_attention_heads' " + std::to_string(c.numHeads) +
                     " (and there is no 'head_dim')");
    c.headDim = c.hiddenSize / c.numHeads;
  }
  if (c.numHeads % c.numKvHeads != 0)
    return r.error("'num_attention_heads' " + std::to_string(c.numHeads) +
                   " is not a multiple of 'num_key_value_heads' " + std::to_string(c.numKvHeads));
  KILN_TRY(r.nonNegative({"max_position_embeddings", "n_positions", "n_ctx"}, c.maxPositions));

  return Status::ok();
}

// Norm epsilons, the activation, tied embeddings, biases, the checkpoint dtype.
Status parseNormsAndFlags(Reader &r, ModelConfig &c) {
  KILN_TRY(r.nonNegativeNumber({"rms_norm_eps"}, c.rmsNormEps));
  KILN_TRY(r.nonNegativeNumber({"layer_norm_eps", "layer_norm_epsilon"}, c.layerNormEps));
  KILN_TRY(r.firstString({"hidden_activation", "hidden_act", "activation_function"}, c.hiddenAct));
  std::optional<bool> b;
  KILN_TRY(r.getBool("tie_word_embeddings", b));
  // transformers' defaults when the key is absent: GPT-2 and Gemma tie, most others do not.
  c.tieWordEmbeddings = b ? *b : (c.modelType == "gpt2" || startsWith(c.modelType, "gemma"));
  KILN_TRY(r.getBool("attention_bias", b));
  c.attentionBias = b.value_or(false);
  KILN_TRY(r.getBool("mlp_bias", b));
  c.mlpBias = b.value_or(false);
  KILN_TRY(r.firstString({"dtype", "torch_dtype"}, c.dtype));

  return Status::ok();
}

// RoPE: 5.x rope_parameters (one dict or one per layer type), 4.x rope_theta / rope_scaling, partial rotary.
Status parseRope(Reader &r, ModelConfig &c) {
  std::optional<double> topTheta, localBase, topPartial, innerPartial;
  std::optional<int64_t> topOrigMax;
  KILN_TRY(r.getNumber("rope_theta", topTheta));
  KILN_TRY(r.getNumber("rope_local_base_freq", localBase));
  KILN_TRY(r.getNumber("partial_rotary_factor", topPartial));
  KILN_TRY(r.getInt("original_max_position_embeddings", topOrigMax));
  if (topTheta && !(*topTheta > 0))
    return r.error("'rope_theta' must be positive");
  if (localBase && !(*localBase > 0))
    return r.error("'rope_local_base_freq' must be positive");
  const double defaultTheta = topTheta.value_or(10000.0);
  c.rope.theta = defaultTheta;
  Status st;
  if (const json *rp = r.getObject("rope_parameters", st)) {
    auto full = rp->find("full_attention");
    auto slide = rp->find("sliding_attention");
    bool perLayer = (full != rp->end() && full->is_object()) ||
                    (slide != rp->end() && slide->is_object());
    if (perLayer) {
      for (auto it = rp->begin(); it != rp->end(); ++it) {
        if (it.key() != "full_attention" && it.key() != "sliding_attention")
          return r.error("unknown layer type " + support::quoteName(it.key()) + " in 'rope_parameters'");
        if (!it->is_object())
          return r.error("'rope_parameters." + it.key() + "' must be an object");
      }
      std::optional<double> ignored;
      if (full != rp->end())
        KILN_TRY(parseRopeDict(*full, r.path(), "rope_parameters.full_attention.", defaultTheta, c.rope,
                               innerPartial));
      if (slide != rp->end()) {
        RopeParams local;
        KILN_TRY(parseRopeDict(*slide, r.path(), "rope_parameters.sliding_attention.",
                               localBase.value_or(10000.0), local, ignored));
        c.ropeLocal = local;
      }
    } else {
      KILN_TRY(parseRopeDict(*rp, r.path(), "rope_parameters.", defaultTheta, c.rope, innerPartial));
    }
  } else if (!st) {
    return st;
  } else if (const json *rs = r.getObject("rope_scaling", st)) {
    KILN_TRY(parseRopeDict(*rs, r.path(), "rope_scaling.", defaultTheta, c.rope, innerPartial));
  } else if (!st) {
    return st;
  }
  if (!c.ropeLocal && localBase) {
    RopeParams local;
    local.theta = *localBase;
    c.ropeLocal = local;
  }
  if (c.rope.originalMaxPositions == 0 && topOrigMax) {
    if (*topOrigMax < 0 || *topOrigMax > kMaxSize)
      return r.error("'original_max_position_embeddings' is out of range");
    c.rope.originalMaxPositions = *topOrigMax;
  }
  if (innerPartial || topPartial) {
    c.partialRotaryFactor = innerPartial ? *innerPartial : *topPartial;
    if (!(c.partialRotaryFactor > 0 && c.partialRotaryFactor <= 1))
      return r.error("'partial_rotary_factor' must be in (0, 1], not " +
                     num(c.partialRotaryFactor));
    if (std::floor(double(c.headDim) * c.partialRotaryFactor) < 1)
      return r.error("'partial_rotary_factor' " + num(c.partialRotaryFactor) +
                     " leaves no rotary dimension of 'head_dim' " + std::to_string(c.headDim));
  }

  return Status::ok();
}

// Layer types (5.x layer_types, else derived from the 4.x sliding-window keys) and the window.
Status parseLayerTypes(Reader &r, ModelConfig &c) {
  std::optional<int64_t> window;
  KILN_TRY(r.getInt("sliding_window", window));
  if (window && *window <= 0)
    return r.error("'sliding_window' must be a positive integer or null");
  const size_t L = size_t(c.numLayers);
  if (const json *lt = r.get("layer_types")) {
    if (!lt->is_array())
      return r.error("'layer_types' must be a list of strings");
    if (lt->size() != L)
      return r.error("'layer_types' has " + std::to_string(lt->size()) + " entries but there are " +
                     std::to_string(L) + " layers");
    for (const json &t : *lt) {
      if (!t.is_string())
        return r.error("'layer_types' must be a list of strings");
      const std::string &s = t.get_ref<const std::string &>();
      if (s != "full_attention" && s != "sliding_attention")
        return r.error("unknown layer type " + support::quoteName(s) +
                       " in 'layer_types' (supported: full_attention, sliding_attention)");
      c.layerTypes.push_back(s);
    }
  } else {
    std::optional<int64_t> pattern;
    const char *which;
    KILN_TRY(r.firstInt({"sliding_window_pattern", "_sliding_window_pattern"}, pattern, which));
    if (pattern && *pattern <= 0)
      return r.error(r.name(which) + " must be a positive integer");
    if (!pattern && startsWith(c.modelType, "gemma3"))
      pattern = 6; // transformers' Gemma 3 default
    std::optional<bool> useSliding;
    KILN_TRY(r.getBool("use_sliding_window", useSliding));
    if (!useSliding && startsWith(c.modelType, "qwen"))
      useSliding = false; // Qwen2's default
    std::optional<int64_t> maxWindowLayers;
    KILN_TRY(r.getInt("max_window_layers", maxWindowLayers));
    for (size_t i = 0; i < L; ++i) {
      bool sliding;
      if (pattern)
        sliding = (int64_t(i) + 1) % *pattern != 0;
      else if (c.modelType == "gemma2")
        sliding = i % 2 == 0;
      else if (useSliding)
        sliding = *useSliding && window && int64_t(i) >= maxWindowLayers.value_or(28);
      else
        sliding = window.has_value();
      c.layerTypes.push_back(sliding ? "sliding_attention" : "full_attention");
    }
  }
  bool anySliding = false;
  for (const std::string &t : c.layerTypes)
    anySliding |= t == "sliding_attention";
  if (anySliding) {
    if (!window)
      return r.error("'sliding_window' must be a positive integer: some layers use sliding "
                     "attention");
    c.slidingWindow = window;
    if (!c.ropeLocal && startsWith(c.modelType, "gemma3"))
      c.ropeLocal = RopeParams{}; // rope_local_base_freq defaults to 10000
  }

  return Status::ok();
}

// Gemma 2/3 query scaling and softcapping; BERT / MPNet token types, padding, position buckets.
Status parseExtras(Reader &r, ModelConfig &c) {
  std::optional<double> d;
  KILN_TRY(r.getNumber("query_pre_attn_scalar", d));
  if (d) {
    if (!(*d > 0))
      return r.error("'query_pre_attn_scalar' must be positive");
    c.queryPreAttnScalar = *d;
  }
  KILN_TRY(r.getNumber("attn_logit_softcapping", c.attnLogitSoftcapping));
  KILN_TRY(r.getNumber("final_logit_softcapping", c.finalLogitSoftcapping));
  if (c.attnLogitSoftcapping && !(*c.attnLogitSoftcapping > 0))
    return r.error("'attn_logit_softcapping' must be positive or null");
  if (c.finalLogitSoftcapping && !(*c.finalLogitSoftcapping > 0))
    return r.error("'final_logit_softcapping' must be positive or null");

  KILN_TRY(r.nonNegative({"type_vocab_size"}, c.typeVocabSize));
  KILN_TRY(r.getInt("pad_token_id", c.padTokenId));
  KILN_TRY(r.nonNegative({"relative_attention_num_buckets"}, c.relativeAttentionNumBuckets));

  return Status::ok();
}

} // namespace

StatusOr<ModelConfig> parseModelConfigText(std::string_view text, const std::string &P) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return Status::error(P + ": " + jsonSyntaxError(text));
  if (!j.is_object())
    return Status::error(P + ": not a JSON object");
  ModelConfig c;
  c.path = P;
  Reader r(j, P);
  for (Status (*section)(Reader &, ModelConfig &) :
       {parseArchitecture, parseSizes, parseNormsAndFlags, parseRope, parseLayerTypes, parseExtras})
    KILN_TRY(section(r, c));
  c.raw = std::move(j);
  return c;
}

StatusOr<ModelConfig> parseModelConfig(const std::string &path) {
  std::string text;
  if (Status s = support::readFile(path, text, 64ull << 20); !s)
    return s;
  return parseModelConfigText(text, path);
}

} // namespace kiln
