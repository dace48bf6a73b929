//===- Report.cpp - the compile report's lines (one formatter for stderr and the manifest) ===//
#include "kiln/compiler/Report.h"

#include "kiln/passes/Legality.h"

#include <algorithm>

namespace kiln::compiler {
namespace {

using passes::formatBytes;
using std::to_string;

std::string ms(double seconds) { return to_string(int(seconds * 1000)) + " ms"; }
std::string secs(double seconds) { return to_string(seconds).substr(0, 5) + " s"; }

} // namespace

std::vector<std::string> importLines(const ImportSummary &s, double seconds) {
  std::vector<std::string> lines = {"imported " + s.architecture + " (" + s.task + ", " + to_string(s.ops) +
                                    " ops) in " + ms(seconds)};
  if (!s.weights.empty())
    lines.push_back(s.weights);
  if (!s.unusedWeights.empty()) {
    constexpr size_t kNamed = 4;
    std::string names;
    for (size_t i = 0; i < s.unusedWeights.size() && i < kNamed; ++i)
      names += (i ? ", " : "") + s.unusedWeights[i];
    if (s.unusedWeights.size() > kNamed)
      names += " and " + to_string(s.unusedWeights.size() - kNamed) + " more";
    lines.push_back("warning: " + to_string(s.unusedWeights.size()) + " tensors of the checkpoint are not used (config.json " +
                    "describes fewer layers, or they belong to a head kiln does not compute): " + names);
  }
  return lines;
}

std::vector<std::string> fusionLines(const FusionSummary &s, double seconds) {
  if (!s.enabled)
    return {};
  return {"fused " + to_string(s.fusedOps) + " ops (rms_norm " + to_string(s.rmsNorm) + ", layer_norm " +
          to_string(s.layerNorm) + ", of them with the residual add " + to_string(s.addNorms) + ", rope " +
          to_string(s.rope) + ", attention " + to_string(s.attention) + "; " + to_string(s.unfused.size()) +
          " candidates left unfused): " + to_string(s.opsAfter) + " ops in " + ms(seconds)};
}

std::vector<std::string> fusionDetails(const FusionSummary &s) {
  std::vector<std::string> lines;
  for (const std::string &line : s.fused)
    lines.push_back("fused " + line);
  for (const std::string &line : s.unfused)
    lines.push_back("not fused: " + line);
  return lines;
}

std::vector<std::string> splitLines(const SplitSummary &s, double seconds) {
  std::vector<std::string> lines;
  if (s.weights > 0 || !s.notSplit.empty())
    lines.push_back("kiln-split-weights: " + to_string(s.weights) + " weights into " + to_string(s.chunks) +
                    " chunks for " + to_string(s.uses) + " ops (" + s.profile + ") in " + ms(seconds));
  lines.insert(lines.end(), s.split.begin(), s.split.end());
  lines.insert(lines.end(), s.notSplit.begin(), s.notSplit.end());
  return lines;
}

std::vector<std::string> matmulGroupLines(const std::vector<std::string> &fused, const std::vector<std::string> &unfused,
                                          const std::string &profile, double seconds) {
  size_t silu = 0, replaced = 0;
  for (const std::string &line : fused) {
    const bool swiglu = line.find("(silu_mul: ") != std::string::npos;
    silu += swiglu;
    // A group of n matmuls replaces n dispatches; with silu_mul also the silu and the mul.
    replaced += size_t(std::count(line.begin(), line.end(), '+')) + 1 + (swiglu ? 2 : 0);
  }
  std::vector<std::string> lines = {"matmul groups: " + to_string(fused.size()) + " kiln.matmul_group (" +
                                    to_string(silu) + " with silu * up) replace " + to_string(replaced) +
                                    " dispatches (" + profile + ") in " + ms(seconds)};
  for (const std::string &line : unfused)
    lines.push_back("not grouped: " + line);
  return lines;
}

std::vector<std::string> matmulNormLines(const std::vector<std::string> &fused, const std::vector<std::string> &unfused,
                                         const std::string &profile, double seconds) {
  auto count = [&](const std::string &kind) {
    return size_t(std::count_if(fused.begin(), fused.end(),
                                [&](const std::string &line) { return line.rfind(kind + " at ", 0) == 0; }));
  };
  std::vector<std::string> lines = {"matmul norms: " + to_string(count("matmul_residual")) +
                                    " residual adds into the GEMV epilogue, " + to_string(count("matmul_norm")) +
                                    " rms_norms into the decode GEMVs' prologue (" + profile + ") in " + ms(seconds)};
  for (const std::string &line : unfused)
    lines.push_back("not folded: " + line);
  return lines;
}

std::vector<std::string> dispatchGroupLines(const std::vector<std::string> &groups,
                                            const std::vector<std::string> &rejected, int removed,
                                            const std::string &profile, double seconds) {
  std::vector<std::string> lines = {"dispatch groups: " + to_string(groups.size()) + " kiln.group replace " +
                                    to_string(size_t(removed) + groups.size()) + " dispatches by " +
                                    to_string(groups.size()) + " (" + profile + ") in " + ms(seconds)};
  for (const std::string &line : rejected)
    lines.push_back("not grouped: " + line);
  return lines;
}

std::vector<std::string> planLines(const PlanSummary &s, double seconds) {
  return {"memory plan: " + to_string(s.buffers) + " buffers, " + to_string(s.dispatches) + " dispatches, arena " +
          formatBytes(s.arenaBytes) + " (intermediates " + formatBytes(s.intermediateBytes) + "), weights " +
          formatBytes(s.weightsBytes) + ", KV cache " + formatBytes(s.kvCacheBytes) + " (max context " +
          to_string(s.maxContext) + ", batch " + to_string(s.maxBatch) + ") in " + ms(seconds)};
}

std::vector<std::string> partitionLines(const PartitionSummary &s, double seconds) {
  std::vector<std::string> lines;
  if (s.foldedConverts)
    lines.push_back("device weights: " + to_string(s.foldedConverts) +
                    " f16/bf16 weight converts folded into their matmul / gather / norm kernels");
  if (s.foldedReshapes)
    lines.push_back("device reshapes: " + to_string(s.foldedReshapes) + " reshapes are views (no copy kernel)");
  if (s.foldedTransposes)
    lines.push_back("device transposes: " + to_string(s.foldedTransposes) +
                    " head transposes folded into the strides of rope / attention (no copy kernel)");
  lines.insert(lines.end(), s.groups.begin(), s.groups.end());
  lines.push_back("partition: host arena " + formatBytes(s.hostArenaBytes) + ", device arena " +
                  formatBytes(s.deviceArenaBytes) + " in " + ms(seconds));
  return lines;
}

std::string cpuCodegenStartLine(const CodegenSummary &s) {
  return "generating " + to_string(s.cpuDispatches) + " CPU kernels for " + s.cpu + "...";
}

std::string cpuCodegenLine(const CodegenSummary &s, double seconds) {
  std::string objects = "shared object " + formatBytes(s.sharedObjectBytes);
  if (s.cpuObjects.size() > 1) { // in the order the runtime tries them
    objects = to_string(s.cpuObjects.size()) + " shared objects, " + formatBytes(s.sharedObjectBytes) + " (";
    for (size_t i = 0; i < s.cpuObjects.size(); ++i)
      objects += (i ? ", " : "") + s.cpuObjects[i].cpu + " " + formatBytes(s.cpuObjects[i].bytes);
    objects += ")";
  }
  for (const std::string &d : s.cpuDropped)
    objects += "; no object for " + d;
  return "generated " + to_string(s.cpuKernels) + " distinct kernels, " + objects + " in " + secs(seconds);
}

std::string cpuWeightsLine(const CodegenSummary &s) {
  if (s.cpuFoldedConverts == 0 && s.cpuWeightConverts == 0)
    return "";
  return "cpu weights: " + to_string(s.cpuFoldedConverts) +
         " f16/bf16 weight converts folded into their matmul / gather / norm / elementwise / slice kernels (read in "
         "place), " + to_string(s.cpuWeightConverts) + " weight converts left";
}

std::string spirvCodegenLine(const CodegenSummary &s, const std::string &profile, double seconds) {
  return "generated " + to_string(s.spirvDispatches) + " SPIR-V dispatches (" + to_string(s.spirvKernels) +
         " distinct kernels, " + to_string(s.spirvModules) + " SPIR-V modules) for " + profile + " in " + secs(seconds) +
         (s.spirvSmallRowsVariants ? "; " + to_string(s.spirvSmallRowsVariants) +
                                         " matmuls also get a GEMV-only kernel for steps of at most 4 rows (decode)"
                                   : "");
}

std::string spirvCoopmatLine(const CodegenSummary &s, const std::string &profile, bool f16MatmulsForF32Weights) {
  if (s.spirvMatmuls == 0)
    return "";
  if (!s.noCooperativeMatrix.empty())
    return "cooperative matrices: none on " + profile + " (" + s.noCooperativeMatrix + "): the " +
           to_string(s.spirvMatmuls) + " matmuls use the scalar tiles for more than 4 rows";
  int tensor = 0;
  std::string blocks;
  for (const auto &[block, n] : s.coopmatBlocks) {
    tensor += n;
    blocks += (blocks.empty() ? "" : ", ") + block + " x" + to_string(n);
  }
  return "cooperative matrices: " + to_string(tensor) + " of " + to_string(s.spirvMatmuls) +
         " matmuls on tensor cores for more than 4 rows" + (blocks.empty() ? "" : " (blocks " + blocks + ")") +
         (f16MatmulsForF32Weights ? ", f32 weights included (--matmul-precision f16)" : "") +
         (tensor < s.spirvMatmuls ? std::string("; the others (") +
                                        (f16MatmulsForF32Weights ? "" : "f32 weights: --matmul-precision f32, ") +
                                        "B not transposed) on the scalar tiles"
                                  : "");
}

std::string spirvAttentionLine(const CodegenSummary &s, const std::string &profile) {
  const int total = s.attentionCoopmat + s.attentionF32Tiles + s.attentionRows;
  if (total == 0)
    return "";
  std::string why;
  if (s.attentionCoopmat)
    why = " (the GEMMs round to f16 too: 16-bit weights or --matmul-precision f16; Q, K, P, V rounded to f16, "
          "f32 softmax and sums)";
  else if (!s.noCooperativeMatrix.empty())
    why = " (no cooperative matrices on " + profile + ": " + s.noCooperativeMatrix + ")";
  else if (!s.attentionRule.empty())
    why = " (" + s.attentionRule + ")";
  std::string line = "attention: " + to_string(total) + " on vulkan; prefill (steps of 8+ rows): ";
  std::vector<std::string> parts;
  if (s.attentionCoopmat)
    parts.push_back(to_string(s.attentionCoopmat) + " on cooperative-matrix tiles");
  if (s.attentionF32Tiles)
    parts.push_back(to_string(s.attentionF32Tiles) + " on f32 tiles");
  if (s.attentionRows)
    parts.push_back(to_string(s.attentionRows) + " one query row per workgroup");
  for (size_t i = 0; i < parts.size(); ++i)
    line += (i ? ", " : "") + parts[i];
  return line + why;
}

std::string spirvIntegerDotLine(const CodegenSummary &s, const std::string &profile) {
  if (s.spirvQuantMatmuls == 0)
    return "";
  const std::string matmuls = to_string(s.spirvQuantMatmuls) + " q8_0 / q4_0 matmuls";
  if (!s.noIntegerDotProduct.empty())
    return "integer dot product: none on " + profile + " (" + s.noIntegerDotProduct + "): the GEMVs of the " +
           matmuls + " (decode) multiply the quantized blocks in f32";
  return "integer dot product: the GEMVs of " + to_string(s.spirvQuantIntegerDot) + " of the " + matmuls +
         " (decode) take packed 4x8-bit dot products (OpSUDot), the same exact sums";
}

std::string syntheticWeightsLine(uint64_t seed) {
  return "synthetic weights (seed " + to_string(seed) + "): only the IR's constants are stored";
}

std::string writeStartLine(const WriteSummary &s) {
  return "writing " + s.path + " (" + to_string(s.weightBuffers) + " weight buffers, " + formatBytes(s.weightsBytes) +
         ")...";
}

std::string writeLine(const WriteSummary &s, double seconds, double totalSeconds) {
  return "wrote " + s.path + " (" + formatBytes(s.fileBytes) + ") in " + secs(seconds) + "; total " + secs(totalSeconds);
}

} // namespace kiln::compiler
