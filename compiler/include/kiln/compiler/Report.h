//===- Report.h - the compile report: what each stage decided, built once -*- C++ -*-===//
//
// Each stage of compile() (Compile.h) fills its typed summary; the functions below turn a summary into the
// stage's report lines, the one text `kiln compile` prints on stderr ("kiln compile: " + line) and the
// artifact stores (Manifest.compile_report, shown by `kiln inspect`). Details are the lines only --report
// prints (every fusion, every candidate left unfused and why); the manifest always has them.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_COMPILER_REPORT_H
#define KILN_COMPILER_REPORT_H

#include <cstdint>
#include <optional>
#include <map>
#include <string>
#include <vector>

namespace kiln::compiler {

struct ImportSummary {
  std::string architecture, task; // "LlamaForCausalLM", "causal-lm" | "encoder"
  size_t ops = 0;                 // in the step function
  std::string weights; // "--weights f16: 201 float tensors converted"; empty: as the checkpoint stores them
  std::vector<std::string> unusedWeights; // tensors of the checkpoint no kiln.weight names (sorted)
};

struct FusionSummary {
  bool enabled = false; // false: --no-fuse
  int fusedOps = 0;     // fused ops (an add_rms_norm / add_layer_norm counts once, with its norm)
  int rmsNorm = 0, layerNorm = 0, addNorms = 0, rope = 0, attention = 0;
  int matmulGroups = 0; // --target vulkan: kiln.matmul_group ops (compile's matmul-groups stage)
  int matmulResiduals = 0, matmulNorms = 0; // --target vulkan: folds of compile's matmul-norms stage
  int dispatchGroups = 0; // --target vulkan: kiln.group ops (compile's dispatch-groups stage)
  size_t opsAfter = 0;
  std::vector<std::string> fused;   // "rms_norm at model.layers.0.input_layernorm"
  std::vector<std::string> unfused; // "softmax at X left unfused: <why>"
};

/// kiln-split-weights (SplitWeights.h), --target vulkan.
struct SplitSummary {
  std::string profile;
  int weights = 0, chunks = 0, uses = 0;
  std::vector<std::string> split, notSplit; // one line per weight split / use kept whole
};

struct PlanSummary {
  size_t buffers = 0, dispatches = 0;
  uint64_t arenaBytes = 0, intermediateBytes = 0, weightsBytes = 0, kvCacheBytes = 0;
  int64_t maxContext = 0, maxBatch = 0;
};

/// An op the partition put on the cpu (--target vulkan).
struct CpuPlacedOp {
  std::string op, location, reason;
  bool fallback = false; // the device cannot run it (what --strict rejects)
};

struct PartitionSummary {
  std::string profile;
  int vulkanOps = 0, cpuOps = 0, fallbacks = 0, transfers = 0;
  uint64_t transferBytes = 0; // at the symbols' bounds
  int foldedConverts = 0, foldedReshapes = 0; // the device-weight folds (DeviceWeights.h)
  int foldedTransposes = 0;                   // head transposes folded into rope / attention strides
  std::vector<CpuPlacedOp> cpuPlaced;
  std::vector<std::string> groups; // the partition report: the counts, then the cpu ops by (op, reason)
  uint64_t hostArenaBytes = 0, deviceArenaBytes = 0;
};

struct KvCacheSummary {
  int entries = 0, inPlace = 0;
  std::string line; // "kv cache: 2 x 2 buffers in place, capacity 32 (...)"
};

struct CodegenSummary {
  std::string cpu;                // the CPU kernels' targets ("znver5", "x86-64,x86-64-v3,znver5")
  size_t cpuDispatches = 0;
  int cpuKernels = 0;             // distinct
  uint64_t sharedObjectBytes = 0; // all objects
  struct CpuObject {
    std::string cpu;
    uint64_t bytes = 0;
  };
  std::vector<CpuObject> cpuObjects;  // in the artifact's (preference) order
  std::vector<std::string> cpuDropped; // "x86-64-v4 (the features of sapphirerapids)": no object of its own
  int spirvDispatches = 0, spirvKernels = 0, spirvModules = 0;
  int spirvMatmuls = 0;                      // kiln.matmul dispatches on Vulkan
  int spirvSmallRowsVariants = 0;            // dispatches with a GEMV-only kernel for decode steps
  std::map<std::string, int> coopmatBlocks;  // of those, the cooperative-matrix ones per block ("128x128x32")
  std::string noCooperativeMatrix;           // why the profile has none ("" when it has)
  // Matmul dispatches reading q8_0 / q4_0 weights; of those, the ones whose GEMV takes packed 4x8-bit integer dot
  // products; noIntegerDotProduct: why none do ("" when the profile has them accelerated).
  int spirvQuantMatmuls = 0, spirvQuantIntegerDot = 0;
  std::string noIntegerDotProduct;
  // Vulkan attention kernels by their prefill path: cooperative-matrix tiles, f32 tiles, one row per workgroup
  // (static steps of under 8 rows, or no tile fits the shared memory); attentionRule: why the plan keeps the f32 tiles ("" when it may not).
  int attentionCoopmat = 0, attentionF32Tiles = 0, attentionRows = 0;
  std::string attentionRule;
  int cpuFoldedConverts = 0; // f16 / bf16 weight converts the CPU kernels read in place (foldCpuWeightConverts)
  int cpuWeightConverts = 0; // kiln.convert dispatches of a weight left on the CPU (an f32 copy per step)
};

struct WriteSummary {
  std::string path;
  std::optional<uint64_t> syntheticSeed;
  size_t weightBuffers = 0;
  uint64_t weightsBytes = 0, fileBytes = 0;
};

/// One stage's part of the report.
struct StageReport {
  std::string stage; // import, text, fuse, split-weights, plan, partition, kv-cache, cpu-codegen, spirv-codegen, write
  double seconds = 0;
  std::vector<std::string> lines;   // always printed
  std::vector<std::string> details; // printed with --report
};

struct CompileReport {
  ImportSummary import;
  FusionSummary fusion;
  std::optional<SplitSummary> split;         // --target vulkan
  PlanSummary plan;
  std::optional<PartitionSummary> partition; // --target vulkan
  KvCacheSummary kvCache;
  CodegenSummary codegen;
  WriteSummary write;
  double seconds = 0; // the whole compile
  std::vector<StageReport> stages; // the lines of the summaries above, in the order they were printed
};

// The lines of each summary (seconds: the stage's time, as printed).
std::vector<std::string> importLines(const ImportSummary &s, double seconds);
std::vector<std::string> fusionLines(const FusionSummary &s, double seconds);
std::vector<std::string> fusionDetails(const FusionSummary &s);
std::vector<std::string> splitLines(const SplitSummary &s, double seconds);
/// "matmul groups: 44 kiln.matmul_group (22 with silu * up) replace 110 dispatches (lavapipe) in 3 ms", then
/// the groups not made and why.
std::vector<std::string> matmulGroupLines(const std::vector<std::string> &fused, const std::vector<std::string> &unfused,
                                          const std::string &profile, double seconds);
/// "matmul norms: 44 residual adds into the GEMV epilogue, 44 rms_norms into the decode GEMVs' prologue (lavapipe) in 1 ms",
/// then the candidates not folded and why.
std::vector<std::string> matmulNormLines(const std::vector<std::string> &fused, const std::vector<std::string> &unfused,
                                         const std::string &profile, double seconds);
/// "dispatch groups: 22 kiln.group replace 66 dispatches by 22 (lavapipe) in 1 ms", then the runs not grouped.
std::vector<std::string> dispatchGroupLines(const std::vector<std::string> &groups,
                                            const std::vector<std::string> &rejected, int removed,
                                            const std::string &profile, double seconds);
std::vector<std::string> planLines(const PlanSummary &s, double seconds);
std::vector<std::string> partitionLines(const PartitionSummary &s, double seconds);
std::string cpuCodegenStartLine(const CodegenSummary &s);
std::string cpuCodegenLine(const CodegenSummary &s, double seconds);
/// "cpu weights: ..." (the folded weight converts and the converts left), or "" when there are neither.
std::string cpuWeightsLine(const CodegenSummary &s);
std::string spirvCodegenLine(const CodegenSummary &s, const std::string &profile, double seconds);
/// The Vulkan matmuls on tensor cores (cooperative-matrix blocks for more than 4 rows) and on the scalar
/// tiles, or why the device has none; "" without Vulkan matmuls.
std::string spirvCoopmatLine(const CodegenSummary &s, const std::string &profile, bool f16MatmulsForF32Weights);
/// The Vulkan attention kernels' prefill path (cooperative-matrix tiles, f32 tiles, one row per workgroup) and
/// why; "" without Vulkan attention.
std::string spirvAttentionLine(const CodegenSummary &s, const std::string &profile);
/// "integer dot product: ..." for the matmuls reading q8_0 / q4_0 weights on Vulkan ("" when there are none).
std::string spirvIntegerDotLine(const CodegenSummary &s, const std::string &profile);
std::string syntheticWeightsLine(uint64_t seed);
std::string writeStartLine(const WriteSummary &s);
std::string writeLine(const WriteSummary &s, double seconds, double totalSeconds);

} // namespace kiln::compiler

#endif // KILN_COMPILER_REPORT_H
