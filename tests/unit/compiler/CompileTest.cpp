// The compiler as a library (compiler/include/kiln/compiler/Compile.h, Stages.h): compile() on the test
// models with the report captured through CompileOptions::progress, its typed summaries, the report stored
// in the artifact, errors as Status, and the stages called one by one.
#include "kiln/compiler/Compile.h"
#include "kiln/compiler/Stages.h"

#include "kiln/artifact/ArtifactReader.h"
#include "kiln/target/DeviceProfile.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace kiln;
using namespace kiln::compiler;

namespace {

std::string dataDir(const std::string &name) { return std::string(KILN_SOURCE_DIR) + "/tests/data/" + name; }

/// A directory for the tests' artifacts, removed when the tests end.
class TempDir : public ::testing::Environment {
public:
  static std::string path(const std::string &name) {
    if (dir().empty()) {
      std::string pattern = ::testing::TempDir() + "kiln_compiler_XXXXXX";
      dir() = mkdtemp(pattern.data()) ? pattern : ::testing::TempDir();
    }
    return dir() + "/" + name;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir().empty())
      std::filesystem::remove_all(dir(), ec);
  }

private:
  static std::string &dir() {
    static std::string d;
    return d;
  }
};
const auto *const kTempDir = ::testing::AddGlobalTestEnvironment(new TempDir);

std::string tempPath(const std::string &name) { return TempDir::path(name); }

/// Options for a small compile whose report lines are collected in `lines`.
CompileOptions smallCompile(const std::string &model, const std::string &output, std::vector<std::string> *lines) {
  CompileOptions o;
  o.modelDir = dataDir(model);
  o.output = tempPath(output);
  o.maxContext = 16;
  o.progress = [lines](const std::string &line) { lines->push_back(line); };
  return o;
}

std::vector<std::string> stageNames(const CompileReport &r) {
  std::vector<std::string> names;
  for (const StageReport &s : r.stages)
    names.push_back(s.stage);
  return names;
}

TEST(Compile, CpuReportIsWhatProgressGot) {
  std::vector<std::string> lines;
  CompileOptions o = smallCompile("llama-tiny", "llama.kiln", &lines);
  StatusOr<CompileResult> r = compile(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const CompileReport &report = r->report;
  EXPECT_EQ(report.import.architecture, "LlamaForCausalLM");
  EXPECT_EQ(report.import.task, "causal-lm");
  EXPECT_TRUE(report.fusion.enabled);
  EXPECT_EQ(report.fusion.rope, 4);
  EXPECT_EQ(report.fusion.attention, 2);
  EXPECT_EQ(report.fusion.fusedOps, int(report.fusion.fused.size()) - report.fusion.addNorms);
  EXPECT_FALSE(report.split.has_value());
  EXPECT_FALSE(report.partition.has_value());
  EXPECT_EQ(report.kvCache.entries, 4);
  EXPECT_EQ(report.kvCache.inPlace, 4);
  EXPECT_EQ(report.plan.maxContext, 16);
  EXPECT_GT(report.codegen.cpuKernels, 0);
  EXPECT_GT(report.write.fileBytes, 0u);
  EXPECT_EQ(stageNames(report),
            (std::vector<std::string>{"import", "text", "fuse", "plan", "kv-cache", "cpu-codegen", "write"}));
  // Without reportDetails the details are kept in the report but not handed to progress.
  std::vector<std::string> stageLines;
  for (const StageReport &s : report.stages)
    stageLines.insert(stageLines.end(), s.lines.begin(), s.lines.end());
  EXPECT_EQ(stageLines, lines);
  EXPECT_EQ(report.stages[2].details.size(), report.fusion.fused.size() + report.fusion.unfused.size());

  // The artifact stores the same lines (all but the last, which names the file's size).
  StatusOr<artifact::MappedArtifact> a = artifact::openArtifact(o.output, /*verifyChecksums=*/true);
  ASSERT_TRUE(a.ok()) << a.status().message();
  std::vector<std::string> stored;
  for (const artifact::ReportStage &s : a->manifest().compile_report())
    stored.insert(stored.end(), s.lines().begin(), s.lines().end());
  ASSERT_EQ(stored.size() + 1, lines.size());
  EXPECT_TRUE(std::equal(stored.begin(), stored.end(), lines.begin()));
  EXPECT_EQ(lines.back().rfind("wrote ", 0), 0u);
}

TEST(Compile, VulkanPartitionWithoutRope) {
  target::DeviceProfile profile = *target::builtinDeviceProfile("lavapipe");
  profile.name = "no-rope";
  profile.unavailableOps = {"kiln.rope"};
  const std::string profilePath = tempPath("no-rope.json");
  std::ofstream(profilePath) << target::writeDeviceProfile(profile);

  std::vector<std::string> lines;
  CompileOptions o = smallCompile("llama-tiny", "llama-vk.kiln", &lines);
  o.target = Target::Vulkan;
  o.deviceProfile = profilePath;
  StatusOr<CompileResult> r = compile(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE(r->report.partition.has_value());
  const PartitionSummary &p = *r->report.partition;
  EXPECT_EQ(p.profile, "no-rope");
  EXPECT_EQ(p.fallbacks, 4);
  int ropes = 0;
  for (const CpuPlacedOp &op : p.cpuPlaced)
    if (op.op == "kiln.rope") {
      ++ropes;
      EXPECT_TRUE(op.fallback);
      EXPECT_EQ(op.reason, "profile lacks kiln.rope");
    }
  EXPECT_EQ(ropes, 4);
  EXPECT_GT(p.transfers, 2);
  ASSERT_TRUE(r->report.split.has_value());
  EXPECT_EQ(r->report.split->weights, 0);
  EXPECT_GT(r->report.codegen.spirvDispatches, 0);
  // In place on the device too: the keys' appends copy the rows rope made on the CPU into the cache slot.
  EXPECT_EQ(r->report.kvCache.inPlace, 4);

  o.strict = true;
  o.output = tempPath("strict.kiln");
  StatusOr<CompileResult> strict = compile(o);
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.status().message().rfind("compile: --strict: 4 ops cannot run on vulkan (profile no-rope): "
                                            "kiln.rope x 4 -> cpu: profile lacks kiln.rope",
                                            0),
            0u)
      << strict.status().message();
}

// --target vulkan groups each layer's Q/K/V and gate/up (+ silu * up) into kiln.matmul_group dispatches; the
// CPU target does not (it has no such kernel); a profile without kiln.matmul_group keeps the matmuls and the
// report says why.
TEST(Compile, VulkanMatmulGroups) {
  auto groupLine = [](const std::vector<std::string> &lines) {
    for (const std::string &l : lines)
      if (l.rfind("matmul groups: ", 0) == 0)
        return l;
    return std::string();
  };
  std::vector<std::string> lines;
  CompileOptions o = smallCompile("llama-tiny", "llama-groups.kiln", &lines);
  o.target = Target::Vulkan;
  o.deviceProfile = "lavapipe";
  StatusOr<CompileResult> r = compile(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->report.fusion.matmulGroups, 4); // 2 layers x (q/k/v, gate/up)
  EXPECT_EQ(groupLine(lines).rfind("matmul groups: 4 kiln.matmul_group (2 with silu * up) replace 14 dispatches "
                                   "(lavapipe)",
                                   0),
            0u)
      << groupLine(lines);
  int silu = 0;
  for (const std::string &f : r->report.fusion.fused)
    silu += f.find("matmul_group at model.layers.") == 0 && f.find("(silu_mul: gate_proj + up_proj)") != std::string::npos;
  EXPECT_EQ(silu, 2);

  lines.clear();
  CompileOptions cpu = smallCompile("llama-tiny", "llama-cpu-groups.kiln", &lines);
  StatusOr<CompileResult> c = compile(cpu);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->report.fusion.matmulGroups, 0);
  EXPECT_EQ(groupLine(lines), "");

  target::DeviceProfile profile = *target::builtinDeviceProfile("lavapipe");
  profile.name = "no-groups";
  profile.unavailableOps = {"kiln.matmul_group"};
  const std::string profilePath = tempPath("no-groups.json");
  std::ofstream(profilePath) << target::writeDeviceProfile(profile);
  lines.clear();
  o.deviceProfile = profilePath;
  o.output = tempPath("llama-no-groups.kiln");
  StatusOr<CompileResult> n = compile(o);
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(n->report.fusion.matmulGroups, 0);
  ASSERT_TRUE(n->report.partition.has_value());
  EXPECT_EQ(n->report.partition->fallbacks, 0);
  int why = 0;
  for (const std::string &l : lines)
    why += l.find("not grouped: ") == 0 && l.find("profile no-groups lists kiln.matmul_group as unavailable") !=
                                                 std::string::npos;
  EXPECT_EQ(why, 6); // per layer: q/k/v, gate/up with silu_mul, then gate/up as plain siblings
}

// --target vulkan --matmul-norms folds the residual adds into the o / down GEMVs' epilogues and every RMSNorm into
// the decode GEMV's prologue of its reader (QKV, gate/up, the lm_head): no add_rms_norm is left, and each rms_norm
// only feeds its reader's kernel of many rows (prefill), its small-rows variant an empty grid. The CPU target does not
// (it has no matmul_group kernel); a profile without kiln.matmul_group folds nothing and says why.
TEST(Compile, VulkanMatmulNorms) {
  auto normLine = [](const std::vector<std::string> &lines) {
    for (const std::string &l : lines)
      if (l.rfind("matmul norms: ", 0) == 0)
        return l;
    return std::string();
  };
  std::vector<std::string> lines;
  CompileOptions o = smallCompile("llama-tiny", "llama-norms.kiln", &lines);
  o.target = Target::Vulkan;
  o.matmulNorms = true;
  o.deviceProfile = "lavapipe";
  StatusOr<CompileResult> r = compile(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->report.fusion.matmulResiduals, 4); // 2 layers x (o_proj, down_proj)
  EXPECT_EQ(r->report.fusion.matmulNorms, 5);     // 2 layers x (input, post-attention) + the final norm
  EXPECT_EQ(normLine(lines).rfind("matmul norms: 4 residual adds into the GEMV epilogue, 5 rms_norms into the "
                                  "decode GEMVs' prologue (lavapipe)",
                                  0),
            0u)
      << normLine(lines);
  for (const std::string &f : r->report.fusion.fused)
    EXPECT_EQ(f.find("add_rms_norm at") == 0 && f.find("folded") != std::string::npos, false) << f;

  lines.clear();
  StatusOr<CompileResult> c = compile(smallCompile("llama-tiny", "llama-cpu-norms.kiln", &lines));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->report.fusion.matmulResiduals + c->report.fusion.matmulNorms, 0);
  EXPECT_EQ(normLine(lines), "");

  target::DeviceProfile profile = *target::builtinDeviceProfile("lavapipe");
  profile.name = "no-groups";
  profile.unavailableOps = {"kiln.matmul_group"};
  const std::string profilePath = tempPath("no-groups-norms.json");
  std::ofstream(profilePath) << target::writeDeviceProfile(profile);
  lines.clear();
  o.deviceProfile = profilePath;
  o.output = tempPath("llama-no-groups-norms.kiln");
  StatusOr<CompileResult> n = compile(o);
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(n->report.fusion.matmulResiduals + n->report.fusion.matmulNorms, 0);
  int why = 0;
  for (const std::string &l : lines)
    why += l.find("not folded: ") == 0 && l.find("profile no-groups lists kiln.matmul_group as unavailable") !=
                                              std::string::npos;
  EXPECT_EQ(why, 5); // 4 residual adds, the final norm (the others stay in add_rms_norm or have 3 readers)
}

// The report says which Vulkan matmuls run on tensor cores and with which blocks, or why none do.
TEST(Compile, CooperativeMatrixReport) {
  auto lineStarting = [](const std::vector<std::string> &lines, const std::string &start) {
    for (const std::string &l : lines)
      if (l.rfind(start, 0) == 0)
        return l;
    return std::string();
  };
  auto coopmatLine = [&](const std::vector<std::string> &lines) { return lineStarting(lines, "cooperative matrices: "); };
  // Prefill attention: cooperative-matrix tiles where the GEMMs round to f16, else the f32 tiles, and why.
  auto attentionLine = [&](const std::vector<std::string> &lines) { return lineStarting(lines, "attention: 2 on vulkan; "); };
  std::vector<std::string> lines;
  CompileOptions o = smallCompile("llama-tiny", "llama-coopmat-lvp.kiln", &lines);
  o.target = Target::Vulkan;
  o.deviceProfile = "lavapipe";
  StatusOr<CompileResult> r = compile(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(coopmatLine(lines).rfind("cooperative matrices: none on lavapipe (no VK_KHR_cooperative_matrix): the ", 0),
            0u)
      << coopmatLine(lines);
  EXPECT_TRUE(r->report.codegen.coopmatBlocks.empty());
  EXPECT_NE(attentionLine(lines).find("2 on f32 tiles (no cooperative matrices on lavapipe: no VK_KHR_cooperative_matrix)"),
            std::string::npos)
      << attentionLine(lines);

  lines.clear();
  o.deviceProfile = "nvidia-h200";
  o.weights.floats = DType::F16;
  o.output = tempPath("llama-coopmat-h200.kiln");
  r = compile(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  int blocks = 0;
  for (const auto &[block, n] : r->report.codegen.coopmatBlocks)
    blocks += n;
  EXPECT_EQ(blocks, r->report.codegen.spirvMatmuls) << coopmatLine(lines); // every f16-weight matmul
  EXPECT_GT(blocks, 0);
  EXPECT_EQ(coopmatLine(lines).rfind("cooperative matrices: " + std::to_string(blocks) + " of " +
                                         std::to_string(blocks) + " matmuls on tensor cores for more than 4 rows (blocks ",
                                     0),
            0u)
      << coopmatLine(lines);
  EXPECT_EQ(r->report.codegen.attentionCoopmat, 2) << attentionLine(lines);
  EXPECT_NE(attentionLine(lines).find("2 on cooperative-matrix tiles (the GEMMs round to f16 too"), std::string::npos)
      << attentionLine(lines);

  // f32 weights: the scalar tiles (f32 products), unless --matmul-precision f16 puts them on tensor cores too.
  o.weights.floats = DType::F32;
  for (bool f16Products : {false, true}) {
    lines.clear();
    o.f16MatmulsForF32Weights = f16Products;
    o.output = tempPath(f16Products ? "llama-coopmat-h200-f32-f16mm.kiln" : "llama-coopmat-h200-f32.kiln");
    r = compile(o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    int tensor = 0;
    for (const auto &[block, n] : r->report.codegen.coopmatBlocks)
      tensor += n;
    EXPECT_EQ(tensor, f16Products ? r->report.codegen.spirvMatmuls : 0) << coopmatLine(lines);
    EXPECT_NE(coopmatLine(lines).find(f16Products ? "f32 weights included (--matmul-precision f16)"
                                                  : "f32 weights: --matmul-precision f32"),
              std::string::npos)
        << coopmatLine(lines);
    EXPECT_EQ(r->report.codegen.attentionCoopmat, f16Products ? 2 : 0) << attentionLine(lines);
    EXPECT_NE(attentionLine(lines).find(f16Products ? "2 on cooperative-matrix tiles" : "2 on f32 tiles (f32 weights keep"),
              std::string::npos)
        << attentionLine(lines);
  }
}

// q8_0 weights on Vulkan: the GEMVs take the packed integer dot product where the profile has it accelerated
// (nvidia-h200: every quantized matmul, "_idot" kernels), and the report says why not elsewhere (lavapipe: not
// accelerated; a device without the feature).
TEST(Compile, IntegerDotProductReport) {
  std::vector<std::string> lines;
  auto idotLine = [&]() {
    for (const std::string &l : lines)
      if (l.rfind("integer dot product: ", 0) == 0)
        return l;
    return std::string();
  };
  DeviceProfile without = *target::builtinDeviceProfile("lavapipe");
  without.name = "lavapipe-no-idot";
  without.integerDotProduct = false;
  const std::string withoutPath = tempPath("lavapipe-no-idot.json");
  std::ofstream(withoutPath) << target::writeDeviceProfile(without);
  const std::pair<std::string, std::string> cases[] = {
      {"lavapipe", "none on lavapipe (its packed 4x8-bit dot product is not accelerated): the GEMVs of the "},
      {withoutPath, "none on lavapipe-no-idot (no shaderIntegerDotProduct): the GEMVs of the "},
      {"nvidia-h200", ""}};
  for (const auto &[profile, reason] : cases) {
    SCOPED_TRACE(profile);
    lines.clear();
    CompileOptions o = smallCompile("llama-tiny", "llama-idot.kiln", &lines);
    o.target = Target::Vulkan;
    o.deviceProfile = profile;
    o.weights.quant = QuantFormat::Q8_0;
    StatusOr<CompileResult> r = compile(o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    const CodegenSummary &c = r->report.codegen;
    EXPECT_GT(c.spirvQuantMatmuls, 0);
    const std::string matmuls = std::to_string(c.spirvQuantMatmuls) + " q8_0 / q4_0 matmuls (decode)";
    if (reason.empty()) {
      EXPECT_EQ(c.spirvQuantIntegerDot, c.spirvQuantMatmuls);
      EXPECT_EQ(idotLine(), "integer dot product: the GEMVs of " + matmuls.substr(0, matmuls.find(' ')) +
                                " of the " + matmuls + " take packed 4x8-bit dot products (OpSUDot), the same exact sums");
    } else {
      EXPECT_EQ(c.spirvQuantIntegerDot, 0);
      EXPECT_EQ(idotLine(), "integer dot product: " + reason + matmuls + " multiply the quantized blocks in f32");
    }
  }
}

TEST(Compile, EmitIrAndErrors) {
  CompileOptions o;
  o.modelDir = dataDir("gemma3-tiny");
  o.emitIr = true;
  o.fuse = true;
  StatusOr<CompileResult> r = compile(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_NE(r->ir.find("kiln.attention"), std::string::npos);
  EXPECT_EQ(r->ir.find("kiln.softmax"), std::string::npos);
  EXPECT_TRUE(r->report.stages.empty()); // nothing compiled, nothing reported

  o.emitIr = false;
  StatusOr<CompileResult> noOutput = compile(o);
  ASSERT_FALSE(noOutput.ok());
  EXPECT_EQ(noOutput.status().message(), "compile: no output file (CompileOptions::output)");

  std::vector<std::string> lines;
  CompileOptions missing = smallCompile("no-such-model", "x.kiln", &lines);
  StatusOr<CompileResult> m = compile(missing);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(), missing.modelDir + ": not a model directory (expected config.json and model.safetensors)");
  EXPECT_TRUE(lines.empty());

  CompileOptions tooLong = smallCompile("llama-tiny", "y.kiln", &lines);
  tooLong.maxContext = 1 << 20;
  StatusOr<CompileResult> t = compile(tooLong);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("exceeds max_position_embeddings"), std::string::npos);

  CompileOptions badProfile = smallCompile("llama-tiny", "z.kiln", &lines);
  badProfile.target = Target::Vulkan;
  badProfile.deviceProfile = "no-such-profile";
  StatusOr<CompileResult> b = compile(badProfile);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("no-such-profile"), std::string::npos);
}

TEST(Stages, OneByOne) {
  mlir::MLIRContext context;
  StatusOr<Imported> imported = importStage(context, dataDir("bert-tiny"));
  ASSERT_TRUE(imported.ok()) << imported.status().message();
  ImportedModel &model = imported->model;
  EXPECT_EQ(imported->summary.task, "encoder");
  ASSERT_TRUE(verifyStage(*model.module, "bert-tiny").isOk());
  StatusOr<FusionSummary> fusion = fuseStage(*model.module, "bert-tiny");
  ASSERT_TRUE(fusion.ok()) << fusion.status().message();
  EXPECT_GT(fusion->layerNorm, 0);
  EXPECT_LT(fusion->opsAfter, imported->summary.ops);

  // Encoder defaults: every position, batch 32.
  StatusOr<passes::PlanOptions> bounds = boundsStage(model.config, "encoder", std::nullopt, std::nullopt);
  ASSERT_TRUE(bounds.ok()) << bounds.status().message();
  EXPECT_EQ(bounds->maxContext, model.config.maxPositions);
  EXPECT_EQ(bounds->maxBatch, 32);
  StatusOr<Planned> planned = planStage(model.step(), passes::PlanOptions{8, 2}, "bert-tiny");
  ASSERT_TRUE(planned.ok()) << planned.status().message();
  EXPECT_EQ(planned->summary.dispatches, planned->plan.dispatches.size());
  EXPECT_EQ(planned->summary.kvCacheBytes, 0u);
  KvCacheSummary kv = kvCacheStage(planned->plan, nullptr, true, nullptr);
  EXPECT_EQ(kv.entries, 0);
  EXPECT_TRUE(kv.line.empty());

  KernelTable kernels;
  CodegenSummary codegen;
  StatusOr<std::vector<uint8_t>> so = cpuCodegenStage(model.step(), planned->plan, {}, kernels, &codegen);
  ASSERT_TRUE(so.ok()) << so.status().message();
  EXPECT_FALSE(so->empty());
  EXPECT_EQ(codegen.cpuDispatches, planned->plan.dispatches.size());
  EXPECT_EQ(kernels.kernelOfDispatch.size(), codegen.cpuDispatches);
  EXPECT_EQ(int(kernels.kernels.size()), codegen.cpuKernels);
}

TEST(Stages, KvCacheCopiedForward) {
  mlir::MLIRContext context;
  StatusOr<Imported> imported = importStage(context, dataDir("qwen2-tiny"));
  ASSERT_TRUE(imported.ok()) << imported.status().message();
  ASSERT_TRUE(fuseStage(*imported->model.module, "qwen2-tiny").ok());
  StatusOr<Planned> planned = planStage(imported->model.step(), passes::PlanOptions{16, 1}, "qwen2-tiny");
  ASSERT_TRUE(planned.ok()) << planned.status().message();
  std::vector<mlir::Operation *> dropped;
  KvCacheSummary kv = kvCacheStage(planned->plan, nullptr, /*inPlace=*/false, &dropped);
  EXPECT_GT(kv.entries, 0);
  EXPECT_EQ(kv.inPlace, 0);
  EXPECT_TRUE(dropped.empty());
  for (const passes::PlanKvEntry &e : planned->plan.kvCache)
    EXPECT_EQ(e.reason, "--no-kv-in-place");
  EXPECT_NE(kv.line.find("copied forward each step"), std::string::npos);
}

} // namespace
