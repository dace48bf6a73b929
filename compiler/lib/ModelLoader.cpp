//===- ModelLoader.cpp ----------------------------------------------------===//
#include "kiln/compiler/ModelLoader.h"

#include "kiln/ir/KilnDialect.h"
#include "kiln/models/Models.h"

#include <cstring>
#include <map>
#include <set>
#include <sys/stat.h>

namespace kiln::compiler {

std::string WeightsFormat::name() const {
  if (quant)
    return quantFormatName(*quant);
  return floats ? llvm::StringRef(dtypeName(*floats)).lower() : "";
}

std::optional<WeightsFormat> parseWeightsFormat(const std::string &text, std::string *error) {
  WeightsFormat f;
  if (text == "f32")
    f.floats = DType::F32;
  else if (text == "f16")
    f.floats = DType::F16;
  else if (text == "bf16")
    f.floats = DType::BF16;
  else if (!(f.quant = parseQuantFormat(text))) {
    *error = "--weights takes f32, f16, bf16, q8_0 or q4_0, got '" + text + "'";
    return std::nullopt;
  }
  return f;
}

std::optional<WeightsFormat> parseWeightsFlags(const std::optional<std::string> &weights,
                                               const std::optional<std::string> &keepF16, std::string *error) {
  WeightsFormat f;
  if (weights) {
    std::optional<WeightsFormat> parsed = parseWeightsFormat(*weights, error);
    if (!parsed)
      return std::nullopt;
    f = *parsed;
  }
  if (!keepF16)
    return f;
  if (!f.quant) {
    *error = "--keep-f16 needs --weights q8_0 or q4_0";
    return std::nullopt;
  }
  llvm::SmallVector<llvm::StringRef> names;
  llvm::StringRef(*keepF16).split(names, ',');
  for (llvm::StringRef n : names) {
    if (n.trim().empty()) {
      *error = "--keep-f16 takes comma-separated tensor names (or embed, lm_head), got '" + *keepF16 + "'";
      return std::nullopt;
    }
    f.keepF16.push_back(n.trim().str());
  }
  return f;
}

namespace {

/// A weight read only as the untransposed rhs of matmuls (a Conv1D weight [in, out]): it is quantized along
/// `in`, stored transposed and read by the matmuls as a transposed weight.
bool onlyUntransposedRhs(ir::WeightOp w) {
  for (mlir::OpOperand &use : w->getUses()) {
    auto mm = mlir::dyn_cast<ir::MatmulOp>(use.getOwner());
    if (!mm || use.getOperandNumber() != 1 || mm.getTransposeB())
      return false;
  }
  return !w->use_empty();
}

/// Whether kiln.weight `w` may be stored quantized as far as this one op is concerned, else why not.
std::string quantBlocker(ir::WeightOp w) {
  auto type = mlir::cast<mlir::RankedTensorType>(w.getType());
  if (!type.getElementType().isF32())
    return "not f32";
  const int64_t k = type.getDimSize(onlyUntransposedRhs(w) ? 0 : 1);
  if (k % kQuantBlock != 0)
    return "its contraction dim " + std::to_string(k) + " is not a multiple of 32";
  if (onlyUntransposedRhs(w))
    return "";
  for (mlir::OpOperand &use : w->getUses()) {
    mlir::Operation *user = use.getOwner();
    if (auto mm = mlir::dyn_cast<ir::MatmulOp>(user); mm && use.getOperandNumber() == 1 && mm.getTransposeB())
      continue;
    if (mlir::isa<ir::GatherOp>(user) && use.getOperandNumber() == 0)
      continue;
    return "read by " + user->getName().getStringRef().str() +
           (mlir::isa<ir::MatmulOp>(user) ? " untransposed and otherwise" : "");
  }
  return "";
}

/// Every 2-d weight's name -> "" (quantizable) or why not; the Conv1D weights to transpose; the aliases of
/// --keep-f16.
struct QuantPlan {
  std::map<std::string, std::string> blocker;
  std::set<std::string> transpose, embed, lmHead;
};

QuantPlan planQuantization(mlir::func::FuncOp step, int64_t vocabSize) {
  QuantPlan p;
  step.walk([&](ir::WeightOp w) {
    auto type = mlir::cast<mlir::RankedTensorType>(w.getType());
    if (type.getRank() != 2)
      return;
    std::string name = w.getName().str();
    std::string why = quantBlocker(w);
    auto [it, fresh] = p.blocker.emplace(name, why);
    if (!fresh && it->second.empty())
      it->second = why;
    if (onlyUntransposedRhs(w))
      p.transpose.insert(name);
    for (mlir::Operation *user : w->getUsers()) {
      if (mlir::isa<ir::GatherOp>(user))
        p.embed.insert(name);
      if (auto mm = mlir::dyn_cast<ir::MatmulOp>(user); mm && mm.getTransposeB() && type.getDimSize(0) == vocabSize)
        p.lmHead.insert(name);
    }
  });
  return p;
}

/// --keep-f16's names resolved to tensors (aliases expanded); an error names one that matches none.
StatusOr<std::set<std::string>> resolveKeepF16(const QuantPlan &p, const std::vector<std::string> &names,
                                               const std::string &dir) {
  std::set<std::string> keep;
  for (const std::string &n : names) {
    const std::set<std::string> *alias = n == "embed" ? &p.embed : n == "lm_head" ? &p.lmHead : nullptr;
    if (alias && !alias->empty()) {
      keep.insert(alias->begin(), alias->end());
      continue;
    }
    if (!p.blocker.count(n))
      return Status::error(dir + ": --keep-f16 '" + n +
                           "' names no matrix the model reads (a tensor name, 'embed' or 'lm_head')");
    keep.insert(n);
  }
  return keep;
}

StatusOr<mlir::OwningOpRef<mlir::ModuleOp>> buildFrom(mlir::MLIRContext &context, const ModelConfig &config,
                                                      const WeightTable &weights) {
  return models::buildModel(context, config, weights);
}

/// --weights q8_0|q4_0 on an imported f32 model: decides the quantized and kept matrices, converts the
/// kept ones to f16 (and with `dequantize` the quantized ones to their dequantized values), rebuilds the
/// module and marks the quantized kiln.weight ops.
Status quantizeImported(mlir::MLIRContext &context, ImportedModel &m, const WeightsFormat &format,
                        WeightsImport &summary, bool dequantize, const std::string &dir) {
  QuantPlan plan = planQuantization(m.step(), m.config.vocabSize);
  StatusOr<std::set<std::string>> keep = resolveKeepF16(plan, format.keepF16, dir);
  if (!keep.ok())
    return keep.status();
  std::set<std::string> quantized;
  for (const auto &[name, why] : plan.blocker) {
    if (keep->count(name)) {
      m.weights.storeTensorAs(name, DType::F16);
      summary.keptF16.push_back(name);
    } else if (!why.empty()) {
      summary.notQuantized.push_back(name + " (" + why + ")");
    } else {
      quantized.insert(name);
      summary.quantized.push_back(name + (plan.transpose.count(name) ? " (transposed)" : ""));
    }
  }
  // Built before the Conv1D weights are transposed in the table (the builder checks their [in, out] shapes).
  StatusOr<mlir::OwningOpRef<mlir::ModuleOp>> module = buildFrom(context, m.config, m.weights);
  if (!module.ok())
    return module.status();
  m.module = std::move(*module);
  for (const std::string &name : quantized) {
    if (plan.transpose.count(name) && !m.weights.storeTransposed(name))
      return Status::error(dir + ": tensor " + name + " cannot be transposed");
    if (dequantize && !m.weights.storeDequantized(name, *format.quant))
      return Status::error(dir + ": tensor " + name + " cannot be quantized");
  }
  mlir::StringAttr attr = mlir::StringAttr::get(&context, quantFormatName(*format.quant));
  m.step().walk([&](ir::WeightOp w) {
    const std::string name = w.getName().str();
    if (!quantized.count(name))
      return;
    if (plan.transpose.count(name)) { // [in, out] -> [out, in], read as a transposed matmul weight
      auto type = mlir::cast<mlir::RankedTensorType>(w.getType());
      w.getResult().setType(mlir::RankedTensorType::get({type.getDimSize(1), type.getDimSize(0)}, type.getElementType()));
      for (mlir::Operation *user : w->getUsers())
        mlir::cast<ir::MatmulOp>(user).setTransposeB(true);
    }
    w.setQuantAttr(attr);
  });
  return Status::ok();
}

} // namespace

StatusOr<ImportedModel> importModel(mlir::MLIRContext &context, const std::string &dir, const WeightsFormat &format,
                                    WeightsImport *summary, bool dequantize) {
  struct stat st;
  const bool exists = stat(dir.c_str(), &st) == 0;
  if (!exists || !S_ISDIR(st.st_mode)) {
    auto endsWith = [&](const char *suffix) {
      const size_t n = std::strlen(suffix);
      return dir.size() >= n && dir.compare(dir.size() - n, n, suffix) == 0;
    };
    const bool otherFormat = exists && S_ISREG(st.st_mode) && (endsWith(".gguf") || endsWith(".bin"));
    return Status::error(dir + ": not a model directory (expected config.json and model.safetensors)" +
                         std::string(otherFormat ? "; GGUF and PyTorch .bin files are not read: kiln compiles a "
                                                   "Hugging Face directory with safetensors weights"
                                                 : ""));
  }
  StatusOr<ModelConfig> config = parseModelConfig(dir + "/config.json");
  if (!config.ok())
    return config.status();
  StatusOr<WeightTable> weights = WeightTable::openDirectory(dir);
  if (!weights.ok())
    return weights.status();
  WeightsImport local;
  WeightsImport &done = summary ? *summary : local;
  if (format.any())
    done.converted = weights->storeFloatsAs(format.quant ? DType::F32 : *format.floats);
  StatusOr<mlir::OwningOpRef<mlir::ModuleOp>> module = buildFrom(context, *config, *weights);
  if (!module.ok())
    return module.status();
  ImportedModel m{std::move(*config), std::move(*weights), std::move(*module)};
  if (format.quant)
    if (Status s = quantizeImported(context, m, format, done, dequantize, dir); !s)
      return s;
  return m;
}

} // namespace kiln::compiler
