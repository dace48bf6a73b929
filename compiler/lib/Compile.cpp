//===- Compile.cpp - compile(): the stages in order, the report, the IR dumps ===//
#include "kiln/compiler/Compile.h"
#include "kiln/compiler/Stages.h"

#include "kiln/ir/KilnDialect.h"
#include "kiln/passes/PlanAnnotations.h"
#include "kiln/support/Util.h"

#include "mlir/IR/AsmState.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <unistd.h>

namespace kiln::compiler {
namespace {

/// What one session of the plan allocates, as the runtime counts it (kiln_model_session_bytes): the host
/// arena and each KV-cache entry, twice where it is copied forward instead of appended in place.
uint64_t sessionBytes(const passes::MemoryPlan &plan) {
  uint64_t total = plan.arenaBytes;
  for (const passes::PlanKvEntry &e : plan.kvCache) {
    uint64_t bytes = std::max(plan.buffers[size_t(e.pastBuffer)].maxBytes, plan.buffers[size_t(e.presentBuffer)].maxBytes);
    total += (e.inPlace ? 1 : 2) * bytes;
  }
  return total;
}

/// "warning: ..." when a session (plus the weights) is larger than this machine's memory, "" otherwise.
std::string sessionMemoryWarning(uint64_t session, const PlanSummary &plan) {
  const long pages = ::sysconf(_SC_PHYS_PAGES), pageSize = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || pageSize <= 0)
    return "";
  const uint64_t machine = uint64_t(pages) * uint64_t(pageSize);
  if (session + plan.weightsBytes <= machine)
    return "";
  return "warning: a session needs " + passes::formatBytes(session) + " (max context " +
         std::to_string(plan.maxContext) + ", batch " + std::to_string(plan.maxBatch) + ") + weights " +
         passes::formatBytes(plan.weightsBytes) + ", more than this machine's memory " +
         passes::formatBytes(machine) + "; lower --max-context or --max-batch";
}

using Clock = std::chrono::steady_clock;
double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// The report as it grows: every line is recorded in its stage and handed to options.progress at once.
class Reporter {
public:
  Reporter(const CompileOptions &options, CompileReport &report) : options(options), report(report) {}

  void lines(const std::string &stage, const std::vector<std::string> &lines, double seconds = 0) {
    StageReport &s = find(stage);
    s.seconds += seconds;
    for (const std::string &line : lines) {
      s.lines.push_back(line);
      if (options.progress)
        options.progress(line);
    }
  }
  void line(const std::string &stage, const std::string &line, double seconds = 0) { lines(stage, {line}, seconds); }
  /// Stored always, printed with --report.
  void details(const std::string &stage, const std::vector<std::string> &lines) {
    StageReport &s = find(stage);
    for (const std::string &line : lines) {
      s.details.push_back(line);
      if (options.progress && options.reportDetails)
        options.progress(line);
    }
  }

private:
  StageReport &find(const std::string &stage) {
    if (report.stages.empty() || report.stages.back().stage != stage)
      report.stages.push_back(StageReport{stage, 0, {}, {}});
    return report.stages.back();
  }
  const CompileOptions &options;
  CompileReport &report;
};

/// --dump-dir DIR: the module after a phase as DIR/NAME; --dump-ir-after-all: the same text to irDump.
class IrDumps {
public:
  explicit IrDumps(const CompileOptions &options) : options(options) {
    // Locations inline as loc("model.layers.0.mlp"): readable, and kiln-opt parses it (pretty form it cannot).
    flags.enableDebugInfo(/*enable=*/true, /*prettyForm=*/false).useLocalScope();
  }
  bool enabled() const { return !options.dumpDir.empty() || options.irDump; }

  Status createDirectory() const {
    if (!options.dumpDir.empty())
      if (std::error_code ec = llvm::sys::fs::create_directories(options.dumpDir))
        return Status::error(options.dumpDir + ": cannot create the dump directory: " + ec.message());
    return Status::ok();
  }

  Status dump(mlir::ModuleOp module, const std::string &name) const {
    if (options.irDump) {
      std::string text;
      llvm::raw_string_ostream os(text);
      os << "// -----// IR Dump After " << name << " //----- //\n";
      module.print(os, flags);
      os << "\n";
      options.irDump(text);
    }
    if (options.dumpDir.empty())
      return Status::ok();
    std::string path = options.dumpDir + "/" + name;
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    if (ec)
      return Status::error(path + ": cannot write: " + ec.message());
    module.print(os, flags);
    os << "\n";
    return Status::ok();
  }

  std::string text(mlir::ModuleOp module) const {
    std::string text;
    llvm::raw_string_ostream os(text);
    module.print(os, flags);
    return text;
  }

private:
  const CompileOptions &options;
  mlir::OpPrintingFlags flags;
};

class Pipeline {
public:
  explicit Pipeline(const CompileOptions &options)
      : o(options), vulkan(options.target == Target::Vulkan), reporter(options, result.report), dumps(options) {}
  StatusOr<CompileResult> run();

private:
  Status import();
  Status fuse();
  Status limits();
  Status split();
  Status groupMatmuls();
  Status foldMatmulNorms();
  Status recordDeviceFusion(const passes::FusionReport &report, const std::string &stage,
                            const std::vector<std::string> &lines, double seconds, const std::string &verb,
                            const std::string &dumpName);
  Status plan();
  Status partition();
  Status dumpPartition(const std::string &title);
  Status placeKvCache();
  Status groupDispatches();
  Status collectText();
  Status buildManifest();
  Status generateKernels();
  Status write();

  mlir::ModuleOp module() { return *model->module; }
  mlir::func::FuncOp step() { return model->step(); }

  const CompileOptions &o;
  const bool vulkan;
  const Clock::time_point start = Clock::now();
  CompileResult result;
  Reporter reporter;
  IrDumps dumps;
  mlir::MLIRContext context;
  DeviceProfile profile;
  std::optional<ImportedModel> model;
  passes::PlanOptions bounds;
  passes::MemoryPlan memoryPlan;
  passes::PartitionResult partitioned;
  artifact::Manifest manifest;
  KernelTable kernels;
  std::vector<uint8_t> sharedObject;
  std::optional<artifact::TextSection> text;
};

StatusOr<CompileResult> Pipeline::run() {
  if (vulkan) {
    StatusOr<DeviceProfile> p = target::loadDeviceProfile(o.deviceProfile);
    if (!p.ok())
      return p.status();
    profile = *p;
  }
  if (Status s = import(); !s)
    return s;
  if (o.emitIr) // --emit=ir [--fuse]: the module itself (tests/e2e/fused_ir.py counts its ops)
    return std::move(result);
  for (Status (Pipeline::*stage)() :
       {&Pipeline::collectText, &Pipeline::fuse, &Pipeline::limits, &Pipeline::split, &Pipeline::groupMatmuls,
        &Pipeline::foldMatmulNorms,
        &Pipeline::plan, &Pipeline::partition,
        &Pipeline::placeKvCache, &Pipeline::groupDispatches, &Pipeline::buildManifest, &Pipeline::generateKernels, &Pipeline::write})
    if (Status s = (this->*stage)(); !s)
      return s;
  return std::move(result);
}

Status Pipeline::import() {
  StatusOr<Imported> imported = importStage(context, o.modelDir, o.weights);
  if (!imported.ok())
    return imported.status();
  model.emplace(std::move(imported->model));
  result.report.import = imported->summary;
  if (Status s = verifyStage(module(), o.modelDir); !s)
    return s;
  if (o.emitIr) {
    if (o.fuse)
      if (StatusOr<FusionSummary> f = fuseStage(module(), o.modelDir); !f.ok())
        return f.status();
    result.ir = dumps.text(module());
    return Status::ok();
  }
  reporter.lines("import", importLines(result.report.import, secondsSince(start)), secondsSince(start));
  // --dump-dir: 00-imported.mlir, 01-fused.mlir, 02-split.mlir, 02-grouped.mlir, 03-planned.mlir, then codegen's
  // own files.
  if (Status s = dumps.createDirectory(); !s)
    return s;
  return dumps.enabled() ? dumps.dump(module(), "00-imported.mlir") : Status::ok();
}

Status Pipeline::fuse() {
  // Fusion by default; --no-fuse keeps the primitive graph (the differential baseline of every fusion).
  if (o.fuse) {
    const Clock::time_point t = Clock::now();
    StatusOr<FusionSummary> fusion = fuseStage(module(), o.modelDir);
    if (!fusion.ok())
      return fusion.status();
    result.report.fusion = std::move(*fusion);
    const double seconds = secondsSince(t);
    reporter.lines("fuse", fusionLines(result.report.fusion, seconds), seconds);
    reporter.details("fuse", fusionDetails(result.report.fusion));
    if (dumps.enabled())
      if (Status s = dumps.dump(module(), "01-fused.mlir"); !s)
        return s;
  }
  return Status::ok();
}

Status Pipeline::limits() {
  StatusOr<passes::PlanOptions> b = boundsStage(model->config, result.report.import.task, o.maxContext, o.maxBatch);
  if (!b.ok())
    return b.status();
  bounds = *b;
  return Status::ok();
}

Status Pipeline::split() {
  // Vulkan: weights larger than one device storage buffer (maxStorageBufferRange / the allocation limit)
  // become row chunks where their ops allow, so that those ops can run on the device.
  if (!vulkan)
    return Status::ok();
  const Clock::time_point t = Clock::now();
  StatusOr<SplitSummary> split = splitWeightsStage(module(), profile, bounds, o.modelDir);
  if (!split.ok())
    return split.status();
  result.report.split = std::move(*split);
  const double seconds = secondsSince(t);
  reporter.lines("split-weights", splitLines(*result.report.split, seconds), seconds);
  if (result.report.split->weights > 0 && dumps.enabled())
    return dumps.dump(module(), "02-split.mlir");
  return Status::ok();
}

Status Pipeline::groupMatmuls() {
  // Vulkan, fused: Q/K/V and gate/up (with silu * up) as one matmul_group dispatch each; after split(),
  // whose row chunks stay plain matmuls. The CPU has no matmul_group kernel: only groups the device runs.
  if (!vulkan || !o.fuse)
    return Status::ok();
  const Clock::time_point t = Clock::now();
  StatusOr<passes::FusionReport> groups = matmulGroupStage(module(), profile, o.modelDir);
  if (!groups.ok())
    return groups.status();
  result.report.fusion.matmulGroups = int(groups->count("matmul_group"));
  const double seconds = secondsSince(t);
  return recordDeviceFusion(*groups, "matmul-groups",
                            matmulGroupLines(groups->fused, groups->unfused, profile.name, seconds), seconds, "grouped",
                            "02-grouped.mlir");
}

Status Pipeline::foldMatmulNorms() {
  // Vulkan, fused, after groupMatmuls: the residual adds and the RMSNorms between the GEMVs go into the groups'
  // epilogues / prologues (no add_rms_norm dispatch between o and gate-up, nor between down and the next QKV).
  if (!vulkan || !o.fuse || !o.matmulNorms)
    return Status::ok();
  const Clock::time_point t = Clock::now();
  StatusOr<passes::FusionReport> folds = matmulNormStage(module(), profile, o.modelDir);
  if (!folds.ok())
    return folds.status();
  result.report.fusion.matmulResiduals = int(folds->count("matmul_residual"));
  result.report.fusion.matmulNorms = int(folds->count("matmul_norm"));
  const double seconds = secondsSince(t);
  return recordDeviceFusion(*folds, "matmul-norms",
                            matmulNormLines(folds->fused, folds->unfused, profile.name, seconds), seconds, "folded",
                            "02-matmul-norms.mlir");
}

// A device-side fusion stage's outcome: its fusions in the report, its lines, "VERB <fusion>" details, and the
// module dumped as `dumpName` when it changed anything.
Status Pipeline::recordDeviceFusion(const passes::FusionReport &report, const std::string &stage,
                                    const std::vector<std::string> &lines, double seconds, const std::string &verb,
                                    const std::string &dumpName) {
  FusionSummary &f = result.report.fusion;
  f.fused.insert(f.fused.end(), report.fused.begin(), report.fused.end());
  f.unfused.insert(f.unfused.end(), report.unfused.begin(), report.unfused.end());
  reporter.lines(stage, lines, seconds);
  std::vector<std::string> details;
  for (const std::string &line : report.fused)
    details.push_back(verb + " " + line);
  reporter.details(stage, details);
  if (!report.fused.empty() && dumps.enabled())
    return dumps.dump(module(), dumpName);
  return Status::ok();
}

Status Pipeline::plan() {
  const Clock::time_point t = Clock::now();
  StatusOr<Planned> planned = planStage(step(), bounds, o.modelDir);
  if (!planned.ok())
    return planned.status();
  memoryPlan = std::move(planned->plan);
  result.report.plan = planned->summary;
  const double seconds = secondsSince(t);
  reporter.lines("plan", planLines(result.report.plan, seconds), seconds);
  return Status::ok();
}

Status Pipeline::partition() {
  // Vulkan: legality of every dispatch, the device partition, the CPU fallback and the transfers, then
  // the weight converts and reshapes the device reads in place. --dump-dir records each decision in the
  // IR as kiln-opt's --kiln-partition / --kiln-fold-device-weights would (PlanAnnotations.h). Either
  // target: the CPU kernels read f16 / bf16 weights in place too (no IR record: the CPU plan is not
  // annotated).
  if (!vulkan) {
    result.report.codegen.cpuFoldedConverts = foldCpuWeightsStage(memoryPlan, partitioned);
    return Status::ok();
  }
  const Clock::time_point t = Clock::now();
  partitioned = partitionStage(memoryPlan, profile);
  if (dumps.enabled())
    passes::annotatePartition(step(), memoryPlan, partitioned);
  passes::DeviceFolds folds = foldDeviceWeightsStage(memoryPlan, partitioned);
  result.report.codegen.cpuFoldedConverts = foldCpuWeightsStage(memoryPlan, partitioned);
  if (dumps.enabled()) {
    passes::annotateFolded(folds.converts, "weight-convert");
    passes::annotateFolded(folds.reshapes, "reshape-view");
    passes::annotateFolded(folds.transposes, "transpose-view");
    passes::annotatePartitionCounts(step(), partitioned);
  }
  result.report.partition = summarizePartition(memoryPlan, partitioned, folds, profile.name);
  const PartitionSummary &summary = *result.report.partition;
  const double seconds = secondsSince(t);
  reporter.lines("partition", partitionLines(summary, seconds), seconds);
  if (!o.dumpDir.empty())
    if (Status s = dumpPartition(result.report.import.architecture + " on vulkan (" + profile.name + ")"); !s)
      return s;
  if (o.strict && summary.fallbacks > 0) {
    std::string list;
    for (size_t i = 1; i < summary.groups.size(); ++i)
      if (summary.groups[i].find("saves a transfer") == std::string::npos)
        list += (list.empty() ? "" : "; ") + summary.groups[i];
    return Status::error("compile: --strict: " + std::to_string(summary.fallbacks) +
                         " ops cannot run on vulkan (profile " + profile.name + "): " + list);
  }
#if !KILN_WITH_SPIRV_CODEGEN
  return Status::error("compile: this build has no SPIR-V backend (codegen/spirv); the partition above is what "
                       "--target vulkan would run");
#endif
  return Status::ok();
}

/// Writes partition.dot, and partition.svg when Graphviz's `dot` is installed.
Status Pipeline::dumpPartition(const std::string &title) {
  std::string path = o.dumpDir + "/partition.dot";
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    if (ec)
      return Status::error(path + ": cannot write: " + ec.message());
    os << passes::partitionDot(memoryPlan, title);
  }
  if (llvm::ErrorOr<std::string> dot = llvm::sys::findProgramByName("dot")) {
    std::string svg = o.dumpDir + "/partition.svg";
    llvm::StringRef argv[] = {*dot, "-Tsvg", path, "-o", svg};
    std::string error;
    if (llvm::sys::ExecuteAndWait(*dot, argv, std::nullopt, {}, 60, 0, &error) != 0)
      reporter.line("partition", "warning: dot could not render " + svg + (error.empty() ? "" : ": " + error));
  }
  return Status::ok();
}

Status Pipeline::placeKvCache() {
  const Clock::time_point t = Clock::now();
  std::vector<mlir::Operation *> dropped;
  result.report.kvCache = kvCacheStage(memoryPlan, vulkan ? &partitioned : nullptr, o.kvInPlace, &dropped);
  if (!result.report.kvCache.line.empty())
    reporter.line("kv-cache", result.report.kvCache.line, secondsSince(t));
  if (vulkan)
    if (std::string line = twoPassStage(memoryPlan, profile, &partitioned); !line.empty())
      reporter.line("kv-cache", line);
  if (std::string warning = sessionMemoryWarning(sessionBytes(memoryPlan), result.report.plan); !warning.empty())
    reporter.line("kv-cache", warning);
  if (dumps.enabled()) {
    // 03-planned.mlir: the plan's decisions as attributes; removed again, since kernels are keyed by them.
    passes::annotateKvCache(step(), memoryPlan, dropped);
    if (vulkan)
      passes::annotatePartitionCounts(step(), partitioned);
    Status s = dumps.dump(module(), "03-planned.mlir");
    passes::clearPlanAnnotations(step());
    if (!s)
      return s;
  }
  return Status::ok();
}

Status Pipeline::groupDispatches() {
  // Vulkan, fused, after the KV placement and the two-pass split: adjacent independent rope / transpose
  // dispatches (per layer: rope q, rope k into the key cache, the value copy into the value cache) as one
  // kiln.group dispatch each.
  if (!vulkan || !o.fuse || !o.groupDispatches)
    return Status::ok();
  const Clock::time_point t = Clock::now();
  StatusOr<passes::DispatchGroups> groups = dispatchGroupStage(step(), memoryPlan, profile, partitioned);
  if (!groups.ok())
    return Status::error(o.modelDir + ": " + groups.status().message());
  result.report.fusion.dispatchGroups = int(groups->groups.size());
  if (groups->groups.empty() && groups->rejected.empty())
    return Status::ok(); // nothing to group (an encoder: no rope, no KV cache)
  passes::FusionReport report;
  report.fused = groups->groups;
  report.unfused = groups->rejected;
  const double seconds = secondsSince(t);
  return recordDeviceFusion(report, "dispatch-groups",
                            dispatchGroupLines(groups->groups, groups->rejected, groups->dispatchesRemoved,
                                               profile.name, seconds),
                            seconds, "grouped", "04-dispatch-groups.mlir");
}

Status Pipeline::collectText() {
  Clock::time_point t = Clock::now();
  StatusOr<TextStageResult> r = textStage(o.modelDir, result.report.import.task, model->config.vocabSize);
  if (!r.ok())
    return r.status();
  text = std::move(r->text);
  reporter.lines("text", r->lines, secondsSince(t));
  return Status::ok();
}

Status Pipeline::buildManifest() {
  ManifestInput in;
  in.modelDir = o.modelDir;
  in.architecture = result.report.import.architecture;
  in.task = result.report.import.task;
  in.vocabSize = model->config.vocabSize;
  in.hiddenSize = model->config.hiddenSize;
  const std::string cpu = "cpu:" + resolveCpuName(o.cpu);
  in.target = vulkan ? "vulkan:" + profile.name + "+" + cpu : cpu;
  in.commandLine = o.commandLine;
  in.threads = o.threads.value_or(0);
  in.profile = vulkan ? &profile : nullptr;
  in.partition = vulkan ? &partitioned : nullptr;
  StatusOr<artifact::Manifest> m = manifestStage(memoryPlan, in);
  if (!m.ok())
    return m.status();
  manifest = std::move(*m);
  return Status::ok();
}

Status Pipeline::generateKernels() {
  CodegenSummary &summary = result.report.codegen;
  summary.cpu = resolveCpuName(o.cpu);
  summary.cpuDispatches = cpuKernelDispatches(memoryPlan).size();
  Clock::time_point t = Clock::now();
  if (summary.cpuDispatches > 0)
    reporter.line("cpu-codegen", cpuCodegenStartLine(summary));
  StatusOr<std::vector<uint8_t>> so = cpuCodegenStage(step(), memoryPlan, {o.cpu, o.dumpDir, o.irDump}, kernels, &summary);
  if (!so.ok())
    return so.status();
  sharedObject = std::move(*so);
  if (summary.cpuDispatches > 0)
    reporter.line("cpu-codegen", cpuCodegenLine(summary, secondsSince(t)), secondsSince(t));
  for (int d : cpuKernelDispatches(memoryPlan)) {
    const passes::PlanDispatch &dispatch = memoryPlan.dispatches[size_t(d)];
    if (mlir::isa<ir::ConvertOp>(dispatch.op) &&
        memoryPlan.buffers[size_t(dispatch.buffers[0])].kind == passes::BufferKind::Weight)
      ++summary.cpuWeightConverts;
  }
  if (std::string line = cpuWeightsLine(summary); !line.empty())
    reporter.line("cpu-codegen", line);
  if (vulkan) {
    t = Clock::now();
    if (Status s = spirvCodegenStage(memoryPlan, profile, o.f16MatmulsForF32Weights, o.dumpDir, kernels, &summary); !s)
      return s;
    reporter.line("spirv-codegen", spirvCodegenLine(summary, profile.name, secondsSince(t)), secondsSince(t));
    if (std::string line = spirvCoopmatLine(summary, profile.name, o.f16MatmulsForF32Weights); !line.empty())
      reporter.line("spirv-codegen", line);
    if (std::string line = spirvAttentionLine(summary, profile.name); !line.empty())
      reporter.line("spirv-codegen", line);
    if (std::string line = spirvIntegerDotLine(summary, profile.name); !line.empty())
      reporter.line("spirv-codegen", line);
  }
  storeKernels(kernels, &manifest);
  return Status::ok();
}

Status Pipeline::write() {
  WriteSummary &summary = result.report.write;
  summary.path = o.output;
  summary.syntheticSeed = o.syntheticWeightsSeed;
  StatusOr<std::vector<artifact::WeightBlob>> blobs =
      weightsStage(memoryPlan, &manifest, model->weights, o.syntheticWeightsSeed, model->config.modelType);
  if (!blobs.ok())
    return blobs.status();
  if (o.syntheticWeightsSeed)
    reporter.line("write", syntheticWeightsLine(*o.syntheticWeightsSeed));
  summary.weightBuffers = blobs->size();
  summary.weightsBytes = memoryPlan.weightsBytes;
  reporter.line("write", writeStartLine(summary));
  const Clock::time_point t = Clock::now();
  storeReport(result.report, &manifest); // the report so far: the file's own size is not known inside it
  if (Status s = writeStage(o.output, manifest, sharedObject, *blobs, &summary, text ? &*text : nullptr); !s)
    return s;
  result.report.seconds = secondsSince(start);
  reporter.line("write", writeLine(summary, secondsSince(t), result.report.seconds), secondsSince(t));
  return Status::ok();
}

} // namespace

StatusOr<CompileResult> compile(const CompileOptions &options) {
  if (!options.emitIr && options.output.empty())
    return Status::error("compile: no output file (CompileOptions::output)");
  // Before any work: an output that would overwrite the model's own files, or that cannot be written.
  if (!options.emitIr)
    if (Status s = support::checkOutputPath("-o", options.output, {{"the model directory", options.modelDir}}); !s)
      return s;
  if (!options.emitIr)
    if (Status s = checkCpuTargets(options.cpu); !s)
      return s;
  Pipeline pipeline(options);
  return pipeline.run();
}

} // namespace kiln::compiler
