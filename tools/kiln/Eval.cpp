//===- Eval.cpp - `kiln eval`: the imported IR through the reference interpreter ===//
//
// Runs a prompt through the step function chunk by chunk, feeding each chunk's present KV cache back as
// the next chunk's past: exactly the schedule the compiled runtime follows.
//
//===----------------------------------------------------------------------===//
#include "Cli.h"
#include "Inputs.h"
#include "kiln/compiler/ModelLoader.h"
#include "Subcommands.h"

#include "kiln/ir/Interpreter.h"
#include "kiln/support/Quantize.h"
#include "kiln/support/Util.h"
#include "kiln/ir/SymShape.h"
#include "kiln/passes/Fusion.h"

namespace kiln::cli {

static std::string argName(mlir::func::FuncOp f, unsigned i) {
  auto name = f.getArgAttrOfType<mlir::StringAttr>(i, "kiln.name");
  return name ? name.getValue().str() : "arg" + std::to_string(i);
}

static std::string resultName(mlir::func::FuncOp f, unsigned i) {
  auto name = f.getResultAttrOfType<mlir::StringAttr>(i, "kiln.name");
  return name ? name.getValue().str() : "result" + std::to_string(i);
}

/// An integer [B, S] matrix as a host tensor.
static ir::HostTensor idTensor(const std::vector<int64_t> &values, int64_t batch, int64_t seq) {
  ir::HostTensor h;
  h.shape = {batch, seq};
  h.isInteger = true;
  h.data.assign(values.begin(), values.end());
  return h;
}

/// Columns [begin, begin + len) of a [B, S, ...] tensor.
static ir::HostTensor sliceSeq(const ir::HostTensor &x, int64_t begin, int64_t len) {
  ir::HostTensor out = x;
  int64_t B = x.shape[0], S = x.shape[1], inner = 1;
  for (size_t i = 2; i < x.shape.size(); ++i)
    inner *= x.shape[i];
  out.shape[1] = len;
  out.data.assign(B * len * inner, 0.0);
  for (int64_t b = 0; b < B; ++b)
    std::copy_n(x.data.begin() + (b * S + begin) * inner, len * inner, out.data.begin() + b * len * inner);
  return out;
}

/// Appends [B, s, ...] chunks along dim 1.
static void appendSeq(ir::HostTensor &acc, const ir::HostTensor &chunk) {
  if (acc.shape.empty()) {
    acc = chunk;
    return;
  }
  int64_t B = acc.shape[0], S = acc.shape[1], s = chunk.shape[1], inner = 1;
  for (size_t i = 2; i < acc.shape.size(); ++i)
    inner *= acc.shape[i];
  std::vector<double> data(B * (S + s) * inner);
  for (int64_t b = 0; b < B; ++b) {
    std::copy_n(acc.data.begin() + b * S * inner, S * inner, data.begin() + b * (S + s) * inner);
    std::copy_n(chunk.data.begin() + b * s * inner, s * inner, data.begin() + (b * (S + s) + S) * inner);
  }
  acc.data = std::move(data);
  acc.shape[1] = S + s;
}

static void addF32(SafeTensorsWriter &w, const std::string &name, const ir::HostTensor &t) {
  std::vector<float> f(t.data.begin(), t.data.end());
  w.add(name, DType::F32, t.shape, f.data(), f.size() * sizeof(float));
}

int runEval(int argc, char **argv) {
  std::optional<Args> parsed;
  if (std::optional<int> done = parseArgs(argc, argv, "eval", parsed))
    return *done;
  const Args &args = *parsed;
  const std::string usage = usageLine(*findCommand("eval"));
  if (args.positional().size() != 1 || !args.has("--inputs") || !args.has("--outputs"))
    return fail(kExitUsage, usage);
  std::string inputsPath = *args.get("--inputs"), outputsPath = *args.get("--outputs");
  if (Status s = support::checkOutputPath("--outputs", outputsPath,
                                          {{"the model directory", args.positional()[0]}, {"--inputs", inputsPath}});
      !s)
    return fail(kExitBadInput, s.message());

  std::string weightsError;
  std::optional<compiler::WeightsFormat> weights =
      compiler::parseWeightsFlags(args.get("--weights"), args.get("--keep-f16"), &weightsError);
  if (!weights)
    return fail(kExitUsage, "eval: " + weightsError);
  const std::string target = args.get("--target").value_or("cpu");
  if (target != "cpu" && target != "vulkan")
    return fail(kExitUsage, "eval: unknown --target '" + target + "' (cpu, vulkan)");
  if (args.has("--target") && !weights->quant) // only quantized weights' activations depend on the target
    std::fprintf(stderr, "kiln eval: warning: --target does nothing here (only with --weights q8_0|q4_0)\n");
  mlir::MLIRContext context;
  StatusOr<compiler::ImportedModel> model =
      compiler::importModel(context, args.positional()[0], *weights, nullptr, /*dequantize=*/true);
  if (!model.ok())
    return fail(kExitBadInput, model.status().message());
  // --fuse: interpret the fused IR (kiln.rms_norm / layer_norm / rope / attention) instead of the imported
  // one, a differential test of the fusion passes against the same references.
  if (args.has("--fuse") && failed(passes::runFusionPasses(*model->module)))
    return fail(kExitBadInput, "fusion produced a module that does not verify");
  StatusOr<std::unique_ptr<SafeTensorsFile>> inputs = SafeTensorsFile::open(inputsPath);
  if (!inputs.ok())
    return fail(kExitBadInput, inputs.status().message());
  // The checks kiln run makes (Inputs.h): ids in the vocabulary, a 0/1 mask, no padding for a causal LM.
  StatusOr<IdInputs> in = readIdInputs(**inputs, inputsPath, model->task() != "encoder", model->config.vocabSize,
                                       args.positional()[0]);
  if (!in.ok())
    return fail(kExitBadInput, in.status().message());
  const int64_t B = in->batch, S = in->seq;
  const ir::HostTensor ids = idTensor(in->ids, B, S);

  const WeightTable &table = model->weights;
  ir::Interpreter interpreter([&table](llvm::StringRef name, ir::HostTensor &out, std::string &error) {
    const TensorInfo *t = table.find(name.str());
    if (!t) {
      error = "no weight '" + name.str() + "'";
      return false;
    }
    out.shape = t->shape;
    out.data.resize(t->numElements());
    convertToF64(*t, out.data.data());
    return true;
  });
  if (target == "vulkan")
    interpreter.setQuantizedActivationRows(kQuantGemvMaxRows);
  mlir::func::FuncOp step = model->step();
  SafeTensorsWriter writer;
  std::string error;

  if (model->task() == "encoder") {
    if (args.has("--chunks"))
      return fail(kExitUsage, "--chunks is for causal LMs; " + model->config.architecture + " is an encoder");
    const ir::HostTensor mask = idTensor(in->mask.empty() ? std::vector<int64_t>(size_t(B * S), 1) : in->mask, B, S);
    std::vector<ir::HostTensor> results;
    if (!interpreter.run(step, {ids, mask}, results, error))
      return fail(kExitBadInput, error);
    for (size_t i = 0; i < results.size(); ++i)
      addF32(writer, resultName(step, i), results[i]);
  } else {
    std::vector<int64_t> chunks = {S};
    if (auto text = args.get("--chunks")) {
      std::string error;
      std::optional<std::vector<int64_t>> parsed = parseIntListFlag("--chunks", *text, 1, kMaxTokens, &error);
      if (!parsed)
        return fail(kExitUsage, error);
      chunks = *parsed;
    }
    int64_t total = 0;
    for (int64_t c : chunks)
      total += c;
    if (total != S)
      return fail(kExitBadInput, "--chunks sum to " + std::to_string(total) + " but input_ids has " +
                                     std::to_string(S) + " tokens");
    if (S > model->config.maxPositions && model->config.maxPositions > 0)
      return fail(kExitBadInput, inputsPath + ": " + std::to_string(S) + " tokens exceed max_position_embeddings " +
                                     std::to_string(model->config.maxPositions));
    // Empty caches: every past_* argument at p = 0.
    std::vector<ir::HostTensor> caches;
    for (unsigned i = 1; i < step.getNumArguments(); ++i) {
      mlir::FailureOr<ir::SymShape> shape = ir::getSymShape(step.getArgument(i).getType());
      mlir::FailureOr<llvm::SmallVector<int64_t>> dims =
          ir::evaluateShape(*shape, {{"b", B}, {"p", 0}}, &error);
      if (failed(dims))
        return fail(kExitBadInput, "step argument " + argName(step, i) + ": " + error);
      ir::HostTensor c;
      c.shape.assign(dims->begin(), dims->end());
      caches.push_back(c);
    }
    ir::HostTensor logits;
    int64_t pos = 0;
    for (int64_t c : chunks) {
      std::vector<ir::HostTensor> stepArgs = {sliceSeq(ids, pos, c)};
      stepArgs.insert(stepArgs.end(), caches.begin(), caches.end());
      std::vector<ir::HostTensor> results;
      // Every row of the chunk gets logits (r = s), as `kiln run` computes them.
      if (!interpreter.run(step, stepArgs, results, error, {{"r", c}}))
        return fail(kExitBadInput, error);
      appendSeq(logits, results[0]);
      caches.assign(results.begin() + 1, results.end());
      pos += c;
    }
    addF32(writer, resultName(step, 0), logits);
  }
  Status written = writer.write(outputsPath);
  if (!written.isOk())
    return fail(kExitBadInput, written.message());
  return kExitOk;
}

} // namespace kiln::cli
