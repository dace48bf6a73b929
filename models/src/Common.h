//===- Common.h - pieces shared by the model builders -----------*- C++ -*-===//
//
// Private to models/. The blocks mirror the Hugging Face implementations op for op (RMSNorm as
// pow/mean/rsqrt/mul, rotate-half RoPE as slice/neg/concat, attention as matmul + mask + softmax + matmul)
// so the fusion passes have the reference patterns to raise.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_MODELS_COMMON_H
#define KILN_MODELS_COMMON_H

#include "kiln/frontend/ModelConfig.h"
#include "kiln/frontend/SafeTensors.h"
#include "kiln/models/GraphBuilder.h"
#include "kiln/models/Models.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <optional>
#include <set>

namespace kiln::models {

/// Weight access checked against the config: a missing tensor or a shape that disagrees with what the
/// config implies is a builder failure naming the file, the tensor and both shapes.
class Weights {
public:
  Weights(const WeightTable &table, const ModelConfig &config, GraphBuilder &g)
      : table_(&table), config_(config), g_(g) {}
  /// Recording mode, for `kiln synth`: no table; every requested tensor is noted with its shape.
  Weights(const ModelConfig &config, GraphBuilder &g) : config_(config), g_(g) {}
  const std::vector<WeightSpec> &requested() const { return requested_; }
  bool has(const std::string &name) const { return table_ && table_->find(name) != nullptr; }
  /// The tensor as f32 (converted from its stored dtype), checked to have `shape`.
  Value get(const std::string &name, llvm::ArrayRef<int64_t> shape);

private:
  const WeightTable *table_ = nullptr;
  const ModelConfig &config_;
  GraphBuilder &g_;
  std::vector<WeightSpec> requested_;
};

/// The `@step` function under construction: arguments and results are added by name.
class StepFunction {
public:
  StepFunction(mlir::ModuleOp module, llvm::StringRef architecture, llvm::StringRef task);
  mlir::OpBuilder &builder() { return builder_; }
  Value addInput(llvm::StringRef name, llvm::ArrayRef<SymExpr> shape, mlir::Type elementType);
  void addOutput(llvm::StringRef name, Value value);
  /// Ends the body with func.return and fixes the function type.
  void finish();

private:
  mlir::OpBuilder builder_;
  mlir::func::FuncOp func_;
  llvm::SmallVector<Value> outputs_;
  llvm::SmallVector<std::string> inputNames_, outputNames_;
};

/// x W^T + b for a Hugging Face Linear (weight [out, in]); `bias` empty for none.
Value linear(GraphBuilder &g, Weights &w, Value x, const std::string &weight, const std::string &bias,
             int64_t out, int64_t in);
/// x W + b for GPT-2's Conv1D (weight [in, out]).
Value conv1d(GraphBuilder &g, Weights &w, Value x, const std::string &prefix, int64_t in, int64_t out);

/// RMSNorm as Llama computes it: w * (x * rsqrt(mean(x^2) + eps)); Gemma's (1 + w) with unitOffset.
Value rmsNorm(GraphBuilder &g, Value x, Value weight, double eps, bool unitOffset = false);
/// LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * w + b.
Value layerNorm(GraphBuilder &g, Value x, Value weight, Value bias, double eps);
/// layerNorm with the weights <prefix>.weight and <prefix>.bias [H].
Value layerNormNamed(GraphBuilder &g, Weights &w, Value x, const std::string &prefix, int64_t H, double eps);

/// The inverse frequencies of a rotary embedding over `rotaryDim` channels, with the scaling of `rope`
/// (default, linear, llama3), computed at compile time in float32 as transformers does.
std::vector<float> ropeInverseFrequencies(const RopeParams &rope, int64_t rotaryDim);
/// cos and sin tables [1, 1, s, rotaryDim] for positions [1, s] (i64).
struct RopeTables {
  Value cos, sin;
  int64_t rotaryDim;
};
RopeTables ropeTables(GraphBuilder &g, Value positions, const std::vector<float> &invFreq);
/// Rotate-half RoPE of x [b, h, s, d] on its first rotaryDim channels: x * cos + rotate_half(x) * sin.
Value applyRope(GraphBuilder &g, Value x, const RopeTables &tables);

/// Positions of this chunk's tokens: p + [0, s), as i64 [1, s].
Value chunkPositions(GraphBuilder &g);

/// An additive causal mask [1, 1, s, p + s]: 0 where key j <= query position (and, with a window,
/// query position - j < window), -inf elsewhere.
Value causalMask(GraphBuilder &g, std::optional<int64_t> window);
/// An additive padding mask [b, 1, 1, s] from attention_mask i64 [b, s]: 0 for valid keys, -inf for padding.
Value paddingMask(GraphBuilder &g, Value attentionMask);

/// [b, s, heads * headDim] -> [b, heads, s, headDim]
Value splitHeads(GraphBuilder &g, Value x, int64_t heads, int64_t headDim);
/// [b, heads, s, headDim] -> [b, s, heads * headDim]
Value mergeHeads(GraphBuilder &g, Value x);
/// GQA: [b, kvHeads, t, d] -> [b, kvHeads * groups, t, d], each KV head repeated `groups` times.
Value repeatKv(GraphBuilder &g, Value x, int64_t groups);
/// softmax(q k^T * scale [softcapped] + mask + bias) v for q [b, hq, s, d], k/v [b, hq, t, d]; `mask`,
/// `bias` may be null.
Value attention(GraphBuilder &g, Value q, Value k, Value v, double scale, Value mask, Value bias = {},
                std::optional<double> softcap = std::nullopt);

/// The KV-cache arguments of one layer and their concatenation with this chunk's keys and values.
struct KvCache {
  Value key, value; // [b, kvHeads, p + s, headDim]
};
KvCache appendKvCache(GraphBuilder &g, StepFunction &step, int64_t layer, Value k, Value v, int64_t kvHeads,
                      int64_t headDim);

/// The rows of the final hidden state [b, s, H] that get logits: the last `r` of each chunk, [b, r, H]. `r`
/// is a run-time symbol (kiln_session_set_logits: r = s for every row, r = 1 for the last), so the LM head
/// (and its read-back) covers only the rows the caller reads.
Value logitsRows(GraphBuilder &g, Value hidden);

/// A causal LM's results: `logits`, then present_key.L / present_value.L per layer. False if the graph
/// already failed (the builder's error stands).
bool addCausalLmOutputs(GraphBuilder &g, StepFunction &step, Value logits, llvm::ArrayRef<KvCache> presents);

// What GPT-2 and GPT-J share: weights named <prefix>wte, <prefix>h.L, <prefix>ln_f, a gelu_new MLP.
/// activation_function is gelu_new (or gelu_pytorch_tanh, the same formula); otherwise the builder fails.
bool checkGeluNew(GraphBuilder &g, const ModelConfig &c);
/// The body's weight prefix: "transformer." in the LM checkpoints, "" in the bare model's (wte.weight).
std::string gptPrefix(Weights &w);
/// input_ids [b, s], a step input, embedded by <prefix>wte.
Value gptTokenEmbeddings(GraphBuilder &g, StepFunction &step, Weights &w, const ModelConfig &c,
                         const std::string &prefix);
/// The final LayerNorm <prefix>ln_f, the LM head (`head`, `bias` empty for none) over the logits rows, and the
/// causal LM's results.
bool addGptOutputs(GraphBuilder &g, StepFunction &step, Weights &w, const ModelConfig &c, Value x,
                   const std::string &prefix, const std::string &head, const std::string &bias,
                   llvm::ArrayRef<KvCache> presents);

// Builders of the architecture families (one file each).
bool buildLlamaFamily(GraphBuilder &g, StepFunction &step, Weights &w, const ModelConfig &config);
bool buildGemma3(GraphBuilder &g, StepFunction &step, Weights &w, const ModelConfig &config);
bool buildGpt2(GraphBuilder &g, StepFunction &step, Weights &w, const ModelConfig &config);
bool buildGptj(GraphBuilder &g, StepFunction &step, Weights &w, const ModelConfig &config);
bool buildBert(GraphBuilder &g, StepFunction &step, Weights &w, const ModelConfig &config);
bool buildMpnet(GraphBuilder &g, StepFunction &step, Weights &w, const ModelConfig &config);

} // namespace kiln::models

#endif // KILN_MODELS_COMMON_H
