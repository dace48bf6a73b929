//===- Stages.h - the stages of compile(), each a function with typed input and output -*- C++ -*-===//
//
// compile() (Compile.h) runs them in this order and turns each summary into report lines (Report.h).
// Each is usable on its own (tests, other drivers); none prints anything.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_COMPILER_STAGES_H
#define KILN_COMPILER_STAGES_H

#include "kiln/compiler/ModelLoader.h"
#include "kiln/compiler/Report.h"

#include "kiln/artifact/ArtifactWriter.h"
#include "kiln/passes/DeviceWeights.h"
#include "kiln/passes/DispatchGroups.h"
#include "kiln/passes/Fusion.h"
#include "kiln/passes/MemoryPlan.h"
#include "kiln/passes/Partition.h"
#include "kiln/target/DeviceProfile.h"
#include "kiln_artifact.pb.h"

#include <map>

namespace kiln::compiler {

/// The target device's capability profile (the one place the compiler names its type).
using DeviceProfile = target::DeviceProfile;

// ---- import, verify, fuse ----

/// MODEL_DIR (config.json + safetensors) -> the kiln module of its step function.
struct Imported {
  ImportedModel model;
  ImportSummary summary;
};
StatusOr<Imported> importStage(mlir::MLIRContext &context, const std::string &modelDir,
                               const WeightsFormat &weights = {});

/// The verifier's first diagnostic as one line ("MODEL_DIR: the imported module does not verify: LOC: ...").
Status verifyStage(mlir::ModuleOp module, const std::string &modelDir);

/// The fusion passes (passes/Fusion.h), in place.
StatusOr<FusionSummary> fuseStage(mlir::ModuleOp module, const std::string &modelDir);

// ---- text ----

/// The model directory's tokenizer files (tokenizer.json, tokenizer_config.json, special_tokens_map.json,
/// generation_config.json, chat_template.jinja), checked by loading them, with the EOS ids generation stops at
/// and, for an encoder, the sentence-transformers pooling (modules.json, 1_Pooling/config.json, prompts).
/// Without tokenizer.json: no section and the line "no tokenizer: ids only (...)". A tokenizer the library
/// refuses, an EOS id outside the vocabulary or a malformed pooling config is an error naming the file.
struct TextStageResult {
  std::optional<artifact::TextSection> text;
  std::vector<std::string> lines; // the report lines
};
StatusOr<TextStageResult> textStage(const std::string &modelDir, const std::string &task, int64_t vocabSize);

// ---- limits, split weights, plan ----

/// The symbols' bounds: --max-context / --max-batch or the model's defaults (causal LMs min(max positions,
/// 2048) tokens, batch 1; encoders every position, batch 32); more than max_position_embeddings is an error.
StatusOr<passes::PlanOptions> boundsStage(const ModelConfig &config, const std::string &task,
                                          std::optional<int64_t> maxContext, std::optional<int64_t> maxBatch);

/// --target vulkan: weights larger than one device buffer become row chunks (passes/SplitWeights.h), in place.
StatusOr<SplitSummary> splitWeightsStage(mlir::ModuleOp module, const DeviceProfile &profile,
                                         const passes::PlanOptions &bounds, const std::string &modelDir);

/// --target vulkan, fused: Linear projections of one input as kiln.matmul_group (passes/Fusion.h
/// fuseMatmulGroups), only groups the profile allows and codegen/spirv has a kernel for; the report's lines
/// are "matmul_group at ..." / "... left unfused: no matmul_group (...): <why>".
StatusOr<passes::FusionReport> matmulGroupStage(mlir::ModuleOp module, const DeviceProfile &profile,
                                                const std::string &modelDir);
/// --target vulkan, fused, after matmulGroupStage: residual adds into the epilogue and RMSNorms into the
/// prologue of kiln.matmul_group (passes/Fusion.h fuseMatmulNorms), only where the device's kernel accepts the
/// fused group; the report's lines are "matmul_residual at ..." / "matmul_norm at ..." / "... left unfused: ...".
StatusOr<passes::FusionReport> matmulNormStage(mlir::ModuleOp module, const DeviceProfile &profile,
                                               const std::string &modelDir);

/// The memory plan of the step (passes/MemoryPlan.h): every op on the cpu, the KV cache not yet placed.
struct Planned {
  passes::MemoryPlan plan;
  PlanSummary summary;
};
StatusOr<Planned> planStage(mlir::func::FuncOp step, const passes::PlanOptions &bounds, const std::string &modelDir);

// ---- partition, fold device weights, KV-cache placement ----

/// --target vulkan: every dispatch on vulkan or cpu (passes/Partition.h), legality (c) asked of the SPIR-V
/// backend (DeviceCatalog.h); `plan` is rewritten with transfers and both arenas.
passes::PartitionResult partitionStage(passes::MemoryPlan &plan, const DeviceProfile &profile);

/// f16 / bf16 weight converts and reshapes folded into their device readers (passes/DeviceWeights.h).
passes::DeviceFolds foldDeviceWeightsStage(passes::MemoryPlan &plan, passes::PartitionResult &partition);

/// f16 / bf16 weight converts folded into their CPU readers (passes/DeviceWeights.h foldCpuWeightConverts);
/// returns how many. `partition` is empty for --target cpu.
int foldCpuWeightsStage(passes::MemoryPlan &plan, passes::PartitionResult &partition);

/// The partition's summary after the folds (the report's partition lines).
PartitionSummary summarizePartition(const passes::MemoryPlan &plan, const passes::PartitionResult &partition,
                                    const passes::DeviceFolds &folds, const std::string &profileName);

/// The KV cache in place where it can be (placeKvCacheInPlace), or, `inPlace` false (--no-kv-in-place),
/// the two-buffer cache everywhere. Returns the ops whose dispatch was dropped (appends written by their
/// producer) in `droppedAppends` when not null.
KvCacheSummary kvCacheStage(passes::MemoryPlan &plan, passes::PartitionResult *partition, bool inPlace,
                            std::vector<mlir::Operation *> *droppedAppends);

// ---- code generation ----

/// The artifact's kernels and which one each dispatch runs (dispatch index -> kernel index), filled by
/// the code generators in turn (CPU kernels first).
struct KernelTable {
  std::vector<artifact::Kernel> kernels;
  std::map<int, int> kernelOfDispatch;
  /// Dispatches with a small-rows variant (Dispatch.small_rows_kernel / small_rows / small_rows_max).
  struct SmallRows {
    int kernel = -1;
    artifact::Dim rows;
    int64_t max = 0;
  };
  std::map<int, SmallRows> smallRowsOfDispatch;
  std::vector<artifact::CpuObject> cpuObjects; // the CPU_CODE section's objects (Manifest.cpu_objects)
};

/// The dispatches codegen/cpu generates kernels for: the kernels on the cpu, in order.
std::vector<int> cpuKernelDispatches(const passes::MemoryPlan &plan);

/// The cpu dispatches' kernels through MLIR and LLVM (codegen/cpu): one shared object per CPU target, in
/// preference order (most recorded features first; a target with the same features as an earlier one gets
/// no object), packed 64-byte aligned into the CPU_CODE section's bytes (returned) and described in
/// kernels.cpuObjects.
struct CpuCodegenInput {
  std::string cpu = "native"; // --cpu: LLVM CPU names, comma-separated, "native" or "portable" (cpuTargetList)
  std::string dumpDir;        // kernels.ll / kernels.o when set (further targets: DIR/cpu-NAME/)
  std::function<void(const std::string &text)> irDump; // --dump-ir-after-all: each lowering phase's module
};
StatusOr<std::vector<uint8_t>> cpuCodegenStage(mlir::func::FuncOp step, const passes::MemoryPlan &plan,
                                               const CpuCodegenInput &input, KernelTable &kernels,
                                               CodegenSummary *summary);

/// The vulkan dispatches' SPIR-V kernels (codegen/spirv), each distinct module stored once; with a
/// `dumpDir`, each kernel's GLSL and disassembly as DIR/spirv/NNN-<kernel>.comp / .spvasm.
Status spirvCodegenStage(const passes::MemoryPlan &plan, const DeviceProfile &profile, bool f16MatmulsForF32Weights,
                         const std::string &dumpDir, KernelTable &kernels, CodegenSummary *summary);

/// Ops that run as two SPIR-V kernels on the profile (codegen::spirvTwoPassScratchBytes: attention split
/// over the KV length, flash-decoding) get their second pass and scratch buffer in the plan
/// (passes::addSecondPass; arenas re-laid out). Returns the report line, "" when no dispatch has two passes.
std::string twoPassStage(passes::MemoryPlan &plan, const DeviceProfile &profile, passes::PartitionResult *partition);

/// kiln-group-dispatches (passes/DispatchGroups.h) on the partitioned Vulkan plan of `step`: each group only
/// when the SPIR-V backend makes its kernel for the profile. An error when the module does not verify after.
StatusOr<passes::DispatchGroups> dispatchGroupStage(mlir::func::FuncOp step, passes::MemoryPlan &plan,
                                                    const DeviceProfile &profile, passes::PartitionResult &partition);

/// The targets --cpu names: comma-separated LLVM CPU names or "native"; "portable" stands for
/// kPortableCpus. An error names an empty entry.
StatusOr<std::vector<std::string>> cpuTargetList(const std::string &cpu);
/// What --cpu portable means: every x86-64 runs one of them, newer CPUs a faster one.
constexpr const char *kPortableCpus = "x86-64,x86-64-v3,x86-64-v4,sapphirerapids";

/// Every target of `cpu` (a --cpu value) is one LLVM knows: checked before any work.
Status checkCpuTargets(const std::string &cpu);

/// `cpu` (a --cpu value) with "native" replaced by the compiling host's CPU name and "portable" expanded.
std::string resolveCpuName(const std::string &cpu);

// ---- manifest, weights, write ----

/// What the manifest records besides the plan and the kernels.
struct ManifestInput {
  std::string modelDir, architecture, task;
  int64_t vocabSize = 0, hiddenSize = 0; // the config's: the runtime's model facts (artifact::recordModelFacts)
  std::string target;                   // provenance: "cpu:znver5" or "vulkan:lavapipe+cpu:znver5"
  std::vector<std::string> commandLine;
  int64_t threads = 0;
  const DeviceProfile *profile = nullptr;             // --target vulkan
  const passes::PartitionResult *partition = nullptr; // --target vulkan
};
/// The manifest: provenance, the plan's buffers, dispatches, ports and KV cache, the partition (no kernels yet).
StatusOr<artifact::Manifest> manifestStage(const passes::MemoryPlan &plan, const ManifestInput &input);

/// The generated kernels into the manifest (Manifest.kernels, Dispatch.kernel).
void storeKernels(const KernelTable &kernels, artifact::Manifest *manifest);

/// The report as the manifest stores it (Manifest.compile_report).
void storeReport(const CompileReport &report, artifact::Manifest *manifest);

/// One blob per WEIGHT buffer: constants from the plan, weights from the safetensors mapping (f16 / bf16
/// widened to f32 where the IR wants f32; row chunks as views). With `syntheticSeed` the model's weights
/// are marked synthetic in `manifest` first (generated at load: no blob) and only the constants are stored.
StatusOr<std::vector<artifact::WeightBlob>> weightsStage(const passes::MemoryPlan &plan, artifact::Manifest *manifest,
                                                         const WeightTable &weights,
                                                         std::optional<uint64_t> syntheticSeed,
                                                         const std::string &modelType);

/// The artifact file (artifact/ArtifactWriter.h); summary->fileBytes is its size.
Status writeStage(const std::string &path, const artifact::Manifest &manifest,
                  const std::vector<uint8_t> &sharedObject, const std::vector<artifact::WeightBlob> &blobs,
                  WriteSummary *summary,
                  const artifact::TextSection *text = nullptr);

} // namespace kiln::compiler

#endif // KILN_COMPILER_STAGES_H
