//===- Models.h - Hugging Face architectures -> kiln step functions -*- C++ -*-===//
//
// A builder turns (config, weight table) into `func.func @step` in primitive kiln ops that mirror the
// Hugging Face modeling code. The step contract (the runtime and `kiln eval` rely on it):
//   arguments: input_ids i64 [b, s]; encoders: attention_mask i64 [b, s]; causal LMs, per layer L:
//              past_key.L, past_value.L f32 [b, kv_heads, p, head_dim]
//   results:   causal LMs: logits f32 [b, s, vocab], then present_key.L, present_value.L
//              [b, kv_heads, p + s, head_dim] (fed back as the next chunk's past); encoders:
//              last_hidden_state f32 [b, s, hidden]
// Every argument and result carries its name in a `kiln.name` attribute; the module carries
// `kiln.architecture` and `kiln.task` ("causal-lm" or "encoder").
//
//===----------------------------------------------------------------------===//
#ifndef KILN_MODELS_MODELS_H
#define KILN_MODELS_MODELS_H

#include "kiln/frontend/ModelConfig.h"
#include "kiln/frontend/SafeTensors.h"
#include "kiln/support/Status.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>
#include <vector>

namespace kiln::models {

/// The `architectures` names a builder exists for.
const std::vector<std::string> &supportedArchitectures();

/// Builds and verifies the step function. Errors (one line): an unsupported architecture (listing the
/// supported ones), a tensor missing from the weights, or a tensor whose shape disagrees with the config.
StatusOr<mlir::OwningOpRef<mlir::ModuleOp>> buildModel(mlir::MLIRContext &context, const ModelConfig &config,
                                                      const WeightTable &weights);

/// A weight a model of this config needs: its name and shape.
struct WeightSpec {
  std::string name;
  std::vector<int64_t> shape;
};
/// The weights the builder of `config` reads, in build order (for `kiln synth`).
StatusOr<std::vector<WeightSpec>> listWeights(mlir::MLIRContext &context, const ModelConfig &config);

/// Loads the dialects the builders use into `context`.
void loadModelDialects(mlir::MLIRContext &context);

} // namespace kiln::models

#endif // KILN_MODELS_MODELS_H
