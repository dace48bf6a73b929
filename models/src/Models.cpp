//===- Models.cpp - architecture dispatch ---------------------------------===//
#include "kiln/models/Models.h"
#include "Common.h"

#include "kiln/ir/KilnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"

namespace kiln::models {

namespace {
struct Family {
  const char *architecture;
  const char *task;
  bool (*build)(GraphBuilder &, StepFunction &, Weights &, const ModelConfig &);
};
const Family kFamilies[] = {
    {"LlamaForCausalLM", "causal-lm", buildLlamaFamily},
    {"MistralForCausalLM", "causal-lm", buildLlamaFamily},
    {"Qwen2ForCausalLM", "causal-lm", buildLlamaFamily},
    {"Phi3ForCausalLM", "causal-lm", buildLlamaFamily},
    {"Gemma3ForCausalLM", "causal-lm", buildGemma3},
    {"GPT2LMHeadModel", "causal-lm", buildGpt2},
    {"GPTJForCausalLM", "causal-lm", buildGptj},
    {"BertModel", "encoder", buildBert},
    {"MPNetModel", "encoder", buildMpnet},
};
} // namespace

const std::vector<std::string> &supportedArchitectures() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const Family &f : kFamilies)
      out.push_back(f.architecture);
    return out;
  }();
  return names;
}

void loadModelDialects(mlir::MLIRContext &context) {
  context.loadDialect<ir::KilnDialect, mlir::func::FuncDialect>();
}

static StatusOr<const Family *> findFamily(const ModelConfig &config) {
  for (const Family &f : kFamilies)
    if (config.architecture == f.architecture)
      return &f;
  std::string list;
  for (const std::string &a : supportedArchitectures())
    list += (list.empty() ? "" : ", ") + a;
  return Status::error(config.path + ": unsupported architecture '" + config.architecture + "' (supported: " +
                       list + ")");
}

/// Runs the family's builder into a fresh module; `table` null records the weights instead of reading them.
static StatusOr<mlir::OwningOpRef<mlir::ModuleOp>> build(mlir::MLIRContext &context, const ModelConfig &config,
                                                        const WeightTable *table,
                                                        std::vector<WeightSpec> *requested) {
  StatusOr<const Family *> family = findFamily(config);
  if (!family.ok())
    return family.status();
  loadModelDialects(context);
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::ModuleOp::create(mlir::UnknownLoc::get(&context));
  StepFunction step(*module, (*family)->architecture, (*family)->task);
  GraphBuilder g(step.builder(), mlir::NameLoc::get(mlir::StringAttr::get(&context, (*family)->architecture)));
  Weights w = table ? Weights(*table, config, g) : Weights(config, g);
  if (!(*family)->build(g, step, w, config) || !g.ok())
    return Status::error(g.error());
  step.finish();
  if (requested)
    *requested = w.requested();
  return module;
}

StatusOr<std::vector<WeightSpec>> listWeights(mlir::MLIRContext &context, const ModelConfig &config) {
  std::vector<WeightSpec> specs;
  StatusOr<mlir::OwningOpRef<mlir::ModuleOp>> module = build(context, config, nullptr, &specs);
  if (!module.ok())
    return module.status();
  return specs;
}

StatusOr<mlir::OwningOpRef<mlir::ModuleOp>> buildModel(mlir::MLIRContext &context, const ModelConfig &config,
                                                      const WeightTable &weights) {
  StatusOr<mlir::OwningOpRef<mlir::ModuleOp>> built = build(context, config, &weights, nullptr);
  if (!built.ok())
    return built.status();
  mlir::OwningOpRef<mlir::ModuleOp> module = std::move(*built);

  // A builder bug, not bad input: report the first diagnostic as one line.
  std::string diagnostic;
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
    if (diagnostic.empty())
      diagnostic = d.str();
    return mlir::success();
  });
  if (mlir::failed(mlir::verify(*module)))
    return Status::error("internal error: the " + config.architecture + " step function does not verify: " +
                         diagnostic);
  return module;
}

} // namespace kiln::models
