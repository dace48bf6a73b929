//===- ModelLoader.cpp ----------------------------------------------------===//
#include "kiln/compiler/ModelLoader.h"

#include "kiln/models/Models.h"

#include <sys/stat.h>

namespace kiln::compiler {

StatusOr<ImportedModel> importModel(mlir::MLIRContext &context, const std::string &dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Status::error(dir + ": not a model directory (expected config.json and model.safetensors)");
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
