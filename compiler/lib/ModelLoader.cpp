//===- ModelLoader.cpp ----------------------------------------------------===//
#include "kiln/compiler/ModelLoader.h"

#include "kiln/models/Models.h"

#include <cstring>
#include <sys/stat.h>

namespace kiln::compiler {

StatusOr<ImportedModel> importModel(mlir::MLIRContext &context, const std::string &dir) {
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
  StatusOr<mlir::OwningOpRef<mlir::ModuleOp>> module = models::buildModel(context, *config, *weights);
  if (!module.ok())
    return module.status();
  ImportedModel m{std::move(*config), std::move(*weights), std::move(*module)};
  return m;
}

} // namespace kiln::compiler
