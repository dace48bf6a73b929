//===- FusionPasses.cpp - the fusion pipeline, its passes and shared matchers ===//
#include "kiln/passes/Fusion.h"
#include "kiln/passes/FusionMatch.h"
#include "kiln/passes/Passes.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace mlir;

namespace kiln::passes {

//===----------------------------------------------------------------------===//
// Matchers
//===----------------------------------------------------------------------===//

namespace detail {

std::optional<double> splatValue(Value v) {
  auto c = def<ir::ConstantOp>(v);
  if (!c)
    return std::nullopt;
  auto dense = dyn_cast<DenseElementsAttr>(c.getValue());
  if (!dense || !dense.isSplat())
    return std::nullopt;
  Type element = dense.getElementType();
  if (isa<FloatType>(element)) {
    APFloat f = dense.getSplatValue<APFloat>();
    bool losesInfo = false;
    f.convert(APFloat::IEEEdouble(), APFloat::rmNearestTiesToEven, &losesInfo);
    return f.convertToDouble();
  }
  if (auto it = dyn_cast<IntegerType>(element)) {
    APInt i = dense.getSplatValue<APInt>();
    return it.isUnsigned() || it.getWidth() == 1 ? (double)i.getZExtValue() : (double)i.getSExtValue();
  }
  return std::nullopt;
}

std::optional<ir::SymShape> shapeOf(Value v) {
  if (!v)
    return std::nullopt;
  FailureOr<ir::SymShape> s = ir::getSymShape(v.getType());
  if (failed(s))
    return std::nullopt;
  return *s;
}

bool isF32(Value v) {
  auto t = dyn_cast<ShapedType>(v.getType());
  return t && t.getElementType().isF32();
}

std::optional<int64_t> lastDimConstant(Value v) {
  auto s = shapeOf(v);
  if (!s || s->empty() || !s->back().isConstant())
    return std::nullopt;
  return s->back().getConstant();
}

std::string locationName(Location loc) {
  if (auto name = dyn_cast<NameLoc>(loc))
    return name.getName().str();
  if (auto fused = dyn_cast<FusedLoc>(loc))
    for (Location l : fused.getLocations())
      if (auto name = dyn_cast<NameLoc>(l))
        return name.getName().str();
  if (auto call = dyn_cast<CallSiteLoc>(loc))
    return locationName(call.getCallee());
  if (auto file = dyn_cast<FileLineColLoc>(loc))
    return llvm::sys::path::filename(file.getFilename().getValue()).str() + ":" + std::to_string(file.getLine());
  std::string s;
  llvm::raw_string_ostream os(s);
  loc.print(os);
  return s;
}

void noteFused(FusionReport *report, llvm::StringRef kind, Operation *at, llvm::StringRef detail) {
  if (!report)
    return;
  std::string line = kind.str() + " at " + locationName(at->getLoc());
  if (!detail.empty())
    line += " (" + detail.str() + ")";
  report->fused.push_back(line);
}

void noteUnfused(FusionReport *report, Operation *anchor, llvm::StringRef why) {
  if (!report)
    return;
  std::string name = anchor->getName().getStringRef().str();
  if (llvm::StringRef(name).starts_with("kiln."))
    name = name.substr(5);
  report->unfused.push_back(name + " at " + locationName(anchor->getLoc()) + " left unfused: " + why.str());
}

} // namespace detail

size_t FusionReport::count(llvm::StringRef kind) const {
  std::string prefix = kind.str() + " at ";
  size_t n = 0;
  for (const std::string &line : fused)
    n += llvm::StringRef(line).starts_with(prefix);
  return n;
}

//===----------------------------------------------------------------------===//
// Pipeline
//===----------------------------------------------------------------------===//

/// Canonicalize + CSE: removes what the fusions left dead (masks, tables, repeated K/V).
static LogicalResult cleanup(ModuleOp module) {
  PassManager pm(module.getContext(), ModuleOp::getOperationName());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  return pm.run(module);
}

LogicalResult runFusionPasses(ModuleOp module, FusionReport *report) {
  fuseNorms(module, report);
  fuseRope(module, report);
  fuseAttention(module, report);
  if (failed(cleanup(module)))
    return failure();
  // After the cleanup: the primitive norm ops left dead would otherwise count as users of the residual add.
  fuseAddNorms(module, report);
  return verify(module);
}

//===----------------------------------------------------------------------===//
// Passes
//===----------------------------------------------------------------------===//

#define GEN_PASS_DEF_KILNFUSENORMS
#define GEN_PASS_DEF_KILNFUSEADDNORMS
#define GEN_PASS_DEF_KILNFUSEROPE
#define GEN_PASS_DEF_KILNFUSEATTENTION
#define GEN_PASS_DEF_KILNFUSEMATMULGROUPS
#define GEN_PASS_DEF_KILNFUSEMATMULNORMS
#define GEN_PASS_DEF_KILNFUSE
#include "kiln/passes/Passes.h.inc"

static void printReport(const FusionReport &report) {
  for (const std::string &line : report.fused)
    llvm::errs() << "fused: " << line << "\n";
  for (const std::string &line : report.unfused)
    llvm::errs() << "unfused: " << line << "\n";
}

namespace {

template <void (*Fuse)(ModuleOp, FusionReport *)> struct Runner {
  static void run(ModuleOp module, bool print) {
    FusionReport report;
    Fuse(module, &report);
    if (print)
      printReport(report);
  }
};

struct FuseNormsPass : impl::KilnFuseNormsBase<FuseNormsPass> {
  using Base::Base;
  void runOnOperation() override { Runner<fuseNorms>::run(getOperation(), report); }
};
struct FuseAddNormsPass : impl::KilnFuseAddNormsBase<FuseAddNormsPass> {
  using Base::Base;
  void runOnOperation() override { Runner<fuseAddNorms>::run(getOperation(), report); }
};
struct FuseRopePass : impl::KilnFuseRopeBase<FuseRopePass> {
  using Base::Base;
  void runOnOperation() override { Runner<fuseRope>::run(getOperation(), report); }
};
struct FuseAttentionPass : impl::KilnFuseAttentionBase<FuseAttentionPass> {
  using Base::Base;
  void runOnOperation() override { Runner<fuseAttention>::run(getOperation(), report); }
};
struct FuseMatmulGroupsPass : impl::KilnFuseMatmulGroupsBase<FuseMatmulGroupsPass> {
  using Base::Base;
  void runOnOperation() override {
    Runner<static_cast<void (*)(ModuleOp, FusionReport *)>(fuseMatmulGroups)>::run(getOperation(), report);
  }
};
struct FuseMatmulNormsPass : impl::KilnFuseMatmulNormsBase<FuseMatmulNormsPass> {
  using Base::Base;
  void runOnOperation() override {
    Runner<static_cast<void (*)(ModuleOp, FusionReport *)>(fuseMatmulNorms)>::run(getOperation(), report);
  }
};
struct FusePass : impl::KilnFuseBase<FusePass> {
  using Base::Base;
  void runOnOperation() override {
    FusionReport r;
    if (failed(runFusionPasses(getOperation(), &r)))
      return signalPassFailure();
    if (report)
      printReport(r);
  }
};

} // namespace

void registerFusionPasses() { registerKilnPasses(); }

} // namespace kiln::passes
