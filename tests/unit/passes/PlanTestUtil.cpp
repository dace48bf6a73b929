#include "PlanTestUtil.h"

#include "kiln/frontend/ModelConfig.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/models/Models.h"
#include "kiln/passes/Fusion.h"

#include "mlir/Parser/Parser.h"

namespace kiln::passes::test {

std::string dataDir(const std::string &name) { return std::string(KILN_SOURCE_DIR) + "/tests/data/" + name; }

Model loadModel(const std::string &name, bool fused) {
  Model m;
  m.context = std::make_unique<mlir::MLIRContext>();
  models::loadModelDialects(*m.context);
  StatusOr<ModelConfig> config = parseModelConfig(dataDir(name) + "/config.json");
  StatusOr<WeightTable> weights = WeightTable::openDirectory(dataDir(name));
  if (!config.ok() || !weights.ok()) {
    ADD_FAILURE() << name << ": " << (config.ok() ? weights.status() : config.status()).message();
    return m;
  }
  m.weights = std::make_unique<WeightTable>(std::move(*weights));
  StatusOr<mlir::OwningOpRef<mlir::ModuleOp>> module = models::buildModel(*m.context, *config, *m.weights);
  if (!module.ok()) {
    ADD_FAILURE() << name << ": " << module.status().message();
    return m;
  }
  m.module = std::move(*module);
  if (fused && mlir::failed(runFusionPasses(*m.module))) {
    ADD_FAILURE() << name << ": the fusion passes failed";
    m.module = nullptr;
  }
  return m;
}

StatusOr<MemoryPlan> planModel(Model &m, PlanOptions options) {
  if (!m.module)
    return Status::error("the model did not load");
  return planMemory(m.step(), options);
}

HandPlanTest::HandPlanTest(PlanOptions options) : options(options) {
  context.loadDialect<ir::KilnDialect, mlir::func::FuncDialect>();
}

StatusOr<MemoryPlan> HandPlanTest::plan(const std::string &body) {
  module = mlir::parseSourceString<mlir::ModuleOp>(body, &context, "test.mlir");
  EXPECT_TRUE(module) << "parse failed";
  if (!module)
    return Status::error("parse failed");
  return planMemory(module->lookupSymbol<mlir::func::FuncOp>("step"), options);
}

} // namespace kiln::passes::test
