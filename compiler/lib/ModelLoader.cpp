//===- ModelLoader.cpp ----------------------------------------------------===//
#include "kiln/compiler/ModelLoader.h"

#include "kiln/models/Models.h"

#include <cstring>
#include <sys/stat.h>

namespace kiln::compiler {

std::optional<DType> parseWeightsFormat(const std::string &text, std::string *error) {
  if (text == "f32")
    return DType::F32;
  if (text == "f16")
    return DType::F16;
  if (text == "bf16")
    return DType::BF16;
  *error = "--weights takes f32, f16 or bf16, got '" + text + "'" +
           (text == "q8_0" || text == "q4_0" ? " (the quantized formats are not implemented yet)" : "");
  return std::nullopt;
}

StatusOr<ImportedModel> importModel(mlir::MLIRContext &context, const std::string &dir,
                                    std::optional<DType> storeWeightsAs, size_t *converted) {
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
  if (storeWeightsAs) {
    size_t n = weights->storeFloatsAs(*storeWeightsAs);
    if (converted)
      *converted = n;
  }
  StatusOr<mlir::OwningOpRef<mlir::ModuleOp>> module = models::buildModel(context, *config, *weights);
  if (!module.ok())
    return module.status();
  ImportedModel m{std::move(*config), std::move(*weights), std::move(*module)};
  return m;
}

} // namespace kiln::compiler
