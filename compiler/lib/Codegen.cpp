//===- Codegen.cpp - the CPU and SPIR-V code generation stages, the device kernel catalog ===//
#include "kiln/compiler/DeviceCatalog.h"
#include "kiln/compiler/Stages.h"

#if KILN_WITH_CPU_CODEGEN
#include "kiln/codegen/CpuCodegen.h"
#endif
#if KILN_WITH_SPIRV_CODEGEN
#include "kiln/codegen/SpirvCodegen.h"
#include "kiln/ir/KilnDialect.h"
#endif
#include "ArtifactTypes.h"
#include "kiln/artifact/ArtifactFormat.h"
#include "kiln/artifact/CpuTargets.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"

#include <algorithm>
#include <tuple>

namespace kiln::compiler {

StatusOr<std::vector<std::string>> cpuTargetList(const std::string &cpu) {
  std::vector<std::string> targets;
  size_t start = 0;
  while (true) {
    const size_t comma = cpu.find(',', start);
    const std::string name = cpu.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (name.empty())
      return Status::error("compile: --cpu '" + cpu + "' has an empty entry (comma-separated LLVM CPU names, " +
                           "native or portable, e.g. x86-64,x86-64-v3,native)");
    if (name == "portable") {
      StatusOr<std::vector<std::string>> portable = cpuTargetList(kPortableCpus);
      targets.insert(targets.end(), portable->begin(), portable->end());
    } else {
      targets.push_back(name);
    }
    if (comma == std::string::npos)
      return targets;
    start = comma + 1;
  }
}

std::string resolveCpuName(const std::string &cpu) {
  StatusOr<std::vector<std::string>> targets = cpuTargetList(cpu);
  if (!targets.ok())
    return cpu;
  std::string out;
  for (const std::string &t : *targets)
    out += (out.empty() ? "" : ",") + (t == "native" ? llvm::sys::getHostCPUName().str() : t);
  return out;
}

std::vector<int> cpuKernelDispatches(const passes::MemoryPlan &plan) {
  std::vector<int> dispatches;
  for (size_t i = 0; i < plan.dispatches.size(); ++i)
    if (!plan.dispatches[i].transfer && plan.dispatches[i].device == passes::DispatchDevice::Cpu)
      dispatches.push_back(int(i));
  return dispatches;
}

#if KILN_WITH_CPU_CODEGEN
namespace {
/// Per buffer of the dispatch: its element type where it differs from the op's (a folded weight convert:
/// the kernel reads the 16-bit weight), else a null type.
std::vector<mlir::Type> storedElementTypes(const passes::MemoryPlan &plan, int dispatch) {
  const passes::PlanDispatch &d = plan.dispatches[size_t(dispatch)];
  std::vector<mlir::Type> types(d.buffers.size());
  const unsigned numOperands = d.op->getNumOperands();
  for (size_t k = 0; k < d.buffers.size() && k < numOperands; ++k) {
    mlir::Type stored = plan.buffers[size_t(d.buffers[k])].elementType;
    if (stored != mlir::getElementTypeOrSelf(d.op->getOperand(unsigned(k)).getType()))
      types[k] = stored;
  }
  return types;
}
} // namespace
#endif

Status checkCpuTargets(const std::string &cpu) {
  StatusOr<std::vector<std::string>> names = cpuTargetList(cpu);
  if (!names.ok())
    return names.status();
#if KILN_WITH_CPU_CODEGEN
  for (const std::string &name : *names)
    if (StatusOr<codegen::CpuTargetInfo> info = codegen::describeCpuTarget(name); !info.ok())
      return Status::error("compile: --cpu " + name + ": " + info.status().message());
#endif
  return Status::ok();
}

#if KILN_WITH_CPU_CODEGEN
namespace {

/// One kernel object to generate: the --cpu entry codegen takes and what the manifest records of it.
struct CpuTarget {
  std::string requested; // "native" or an LLVM CPU name
  artifact::CpuObject object;
};

/// The --cpu targets resolved, their recorded features (artifact/CpuTargets.h's names) filled in, most
/// features first; a target with the features of an earlier one is dropped (the runtime would never pick it).
StatusOr<std::vector<CpuTarget>> planCpuTargets(const std::string &cpu, CodegenSummary *summary) {
  StatusOr<std::vector<std::string>> names = cpuTargetList(cpu);
  if (!names.ok())
    return names.status();
  std::vector<CpuTarget> targets;
  for (const std::string &name : *names) {
    StatusOr<codegen::CpuTargetInfo> info = codegen::describeCpuTarget(name);
    if (!info.ok())
      return Status::error("compile: --cpu " + name + ": " + info.status().message());
    CpuTarget t{name, {}};
    t.object.set_cpu(info->cpu);
    for (const std::string &f : info->features) // sorted
      if (artifact::isCpuFeatureName(f))
        t.object.add_features(f);
    auto same = llvm::find_if(targets, [&](const CpuTarget &o) {
      return llvm::equal(o.object.features(), t.object.features());
    });
    if (same != targets.end()) {
      summary->cpuDropped.push_back(info->cpu + " (the features of " + same->object.cpu() + ")");
      continue;
    }
    targets.push_back(std::move(t));
  }
  std::stable_sort(targets.begin(), targets.end(), [](const CpuTarget &a, const CpuTarget &b) {
    return a.object.features_size() > b.object.features_size();
  });
  return targets;
}

/// The first object's kernels into the table (identical ops share a symbol: one Kernel entry each).
void recordCpuKernels(const std::vector<codegen::CpuKernelInfo> &infos, const std::vector<int> &dispatches,
                      KernelTable &kernels) {
  std::map<std::string, int> kernelBySymbol;
  for (size_t i = 0; i < infos.size(); ++i) {
    const codegen::CpuKernelInfo &k = infos[i];
    auto [it, inserted] = kernelBySymbol.emplace(k.symbol, int(kernels.kernels.size()));
    if (inserted) {
      artifact::Kernel out;
      out.set_symbol(k.symbol);
      out.set_op(k.op);
      out.set_signature(k.signature);
      kernels.kernels.push_back(std::move(out));
    }
    kernels.kernelOfDispatch[dispatches[i]] = it->second;
  }
}

bool sameKernels(const std::vector<codegen::CpuKernelInfo> &a, const std::vector<codegen::CpuKernelInfo> &b) {
  return llvm::equal(a, b, [](const codegen::CpuKernelInfo &x, const codegen::CpuKernelInfo &y) {
    return x.symbol == y.symbol && x.op == y.op && x.signature == y.signature;
  });
}

/// Where target `index`'s dumps go: DIR for the first, DIR/cpu-NAME for the others.
StatusOr<std::string> targetDumpDir(const std::string &dumpDir, size_t index, const std::string &cpu) {
  if (dumpDir.empty() || index == 0)
    return dumpDir;
  std::string dir = dumpDir + "/cpu-" + cpu;
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return Status::error("compile: --dump-dir: cannot create " + dir + ": " + ec.message());
  return dir;
}

} // namespace
#endif

StatusOr<std::vector<uint8_t>> cpuCodegenStage(mlir::func::FuncOp step, const passes::MemoryPlan &plan,
                                               const CpuCodegenInput &input, KernelTable &kernels,
                                               CodegenSummary *summary) {
#if KILN_WITH_CPU_CODEGEN
  const std::vector<int> dispatches = cpuKernelDispatches(plan); // codegen/cpu takes only the cpu partition's
  summary->cpu = resolveCpuName(input.cpu);
  summary->cpuDispatches = dispatches.size();
  if (dispatches.empty())
    return std::vector<uint8_t>();
  StatusOr<std::vector<CpuTarget>> targets = planCpuTargets(input.cpu, summary);
  if (!targets.ok())
    return targets.status();
  std::vector<mlir::Operation *> ops;
  std::vector<codegen::KernelLayout> layouts; // strided KV-cache views and in-place appends
  for (int i : dispatches) {
    ops.push_back(plan.dispatches[size_t(i)].op);
    passes::DispatchLayout l = passes::dispatchLayout(plan, i);
    layouts.push_back(codegen::KernelLayout{l.rowCapacity, l.appendInPlace, storedElementTypes(plan, i), {}});
    const passes::PlanDispatch &d = plan.dispatches[size_t(i)];
    for (int id : d.buffers)
      layouts.back().quant.push_back(plan.buffers[size_t(id)].quant);
  }
  std::vector<uint8_t> section; // the objects, each 64-byte aligned
  std::vector<codegen::CpuKernelInfo> firstKernels;
  for (size_t t = 0; t < targets->size(); ++t) {
    CpuTarget &target = (*targets)[t];
    codegen::CpuCodegenOptions options;
    options.cpu = target.requested;
    StatusOr<std::string> dumpDir = targetDumpDir(input.dumpDir, t, target.object.cpu());
    if (!dumpDir.ok())
      return dumpDir.status();
    options.dumpDir = *dumpDir;
    options.irDump = t == 0 ? input.irDump : nullptr; // --dump-ir-after-all: the first target's phases
    StatusOr<codegen::CpuCode> code = codegen::generateCpuKernels(step, ops, plan.symbolNames(), options, layouts);
    if (!code.ok())
      return code.status();
    if (code->kernels.size() != ops.size() || (t > 0 && !sameKernels(code->kernels, firstKernels)))
      return Status::error("compile: internal error: codegen returned " + std::to_string(code->kernels.size()) +
                           " kernels for " + std::to_string(ops.size()) + " dispatches" +
                           (t > 0 ? ", or other kernels for " + target.object.cpu() + " than for the first target" : ""));
    if (t == 0) {
      firstKernels = code->kernels;
      recordCpuKernels(firstKernels, dispatches, kernels);
    }
    section.resize((section.size() + artifact::kAlignment - 1) / artifact::kAlignment * artifact::kAlignment, 0);
    target.object.set_offset(section.size());
    target.object.set_size(code->sharedObject.size());
    section.insert(section.end(), code->sharedObject.begin(), code->sharedObject.end());
    summary->cpuObjects.push_back({target.object.cpu(), code->sharedObject.size()});
    kernels.cpuObjects.push_back(target.object);
  }
  summary->cpuKernels = int(kernels.kernels.size());
  summary->sharedObjectBytes = section.size();
  return section;
#else
  return Status::error("compile: this build has no CPU backend (codegen/cpu); only --emit=ir works");
#endif
}

#if KILN_WITH_SPIRV_CODEGEN
namespace {

codegen::SpirvTarget spirvTarget(const DeviceProfile &p, bool f16MatmulsForF32Weights = false) {
  codegen::SpirvTarget t;
  t.float16 = p.float16 && p.storage16;
  t.subgroupSize = p.subgroupSize;
  t.maxSharedMemory = static_cast<uint32_t>(p.maxSharedMemory); // 32-bit in every profile (the reader checks)
  t.maxWorkgroupInvocations = static_cast<uint32_t>(p.maxWorkgroupInvocations);
  t.maxStorageBufferRange = p.maxStorageBufferRange;
  t.subgroupArithmetic = p.hasSubgroupOp("arithmetic");
  t.cooperativeMatrix = p.hasCooperativeMatrixShape(codegen::kSpirvCooperativeMatrixShape);
  t.cooperativeMatrixTile = p.cooperativeMatrixTile;
  t.cooperativeMatrixF32Weights = f16MatmulsForF32Weights;
  // Only where it is one instruction: emulated (lavapipe), 8 dot products cost more than the f32 FMAs they replace.
  t.integerDotProduct = p.integerDotProduct && p.integerDotProductAccelerated;
  return t;
}

/// Why `p` gives the quantized GEMV no integer dot product ("" when it does: spirvTarget).
std::string noIntegerDotProductReason(const DeviceProfile &p) {
  if (!p.integerDotProduct)
    return "no shaderIntegerDotProduct";
  if (!p.integerDotProductAccelerated)
    return "its packed 4x8-bit dot product is not accelerated";
  return "";
}

/// Whether dispatch `d` reads a block-quantized weight.
bool readsQuantizedWeight(const passes::MemoryPlan &plan, const passes::PlanDispatch &d) {
  return std::any_of(d.buffers.begin(), d.buffers.end(),
                     [&](int id) { return plan.buffers[size_t(id)].quant.has_value(); });
}

class SpirvCatalog : public passes::DeviceKernelCatalog {
public:
  std::string unsupportedReason(mlir::Operation *op, const DeviceProfile &profile) const override {
    return codegen::spirvUnsupportedReason(op, spirvTarget(profile));
  }
};

/// The manifest's Kernel entry of a SPIR-V kernel (its module in `spirv` unless an earlier kernel owns it).
artifact::Kernel spirvKernelEntry(const codegen::SpirvKernel &k, mlir::Operation *op) {
  artifact::Kernel out;
  out.set_symbol(k.name);
  out.set_op(op->getName().getStringRef().str());
  std::string sig;
  llvm::raw_string_ostream os(sig);
  llvm::interleaveComma(op->getOperandTypes(), os);
  os << " -> ";
  llvm::interleaveComma(op->getResultTypes(), os);
  out.set_signature(sig);
  for (uint32_t v : k.specialization)
    out.add_specialization(v);
  for (uint32_t w : k.workgroupSize)
    out.add_workgroup_size(w);
  for (const ir::SymExpr &g : k.globalSize)
    *out.add_global_size() = toDim(g);
  out.set_shared_memory_bytes(k.sharedMemoryBytes);
  out.set_symbols_in_uniform(true); // codegen/spirv: header.glsl
  return out;
}

/// The precision rule of prefill attention on cooperative matrices (SpirvTarget::cooperativeMatrixAttention):
/// a plan whose Vulkan matmuls read only 16-bit weights, which their GEMMs already round to f16 on the tensor
/// cores (as --matmul-precision f16 has f32 weights' GEMMs do). "" when it holds, else why not (f32 weights: the
/// f32 accuracy contract).
std::string attentionF16Rule(const passes::MemoryPlan &plan) {
  bool any = false;
  for (const passes::PlanDispatch &d : plan.dispatches) {
    if (d.transfer || d.device != passes::DispatchDevice::Vulkan || !mlir::isa<ir::MatmulOp, ir::MatmulGroupOp>(d.op))
      continue;
    for (int id : d.buffers) {
      const passes::PlanBuffer &b = plan.buffers[size_t(id)];
      if (b.kind != passes::BufferKind::Weight)
        continue;
      if (!b.elementType.isF16() && !b.elementType.isBF16())
        return "f32 weights keep the f32 tiles: the f32 accuracy contract, unless --matmul-precision f16";
      any = true;
    }
  }
  return any ? "" : "no 16-bit matmul weights on vulkan: the f32 tiles";
}

/// Counts a Vulkan attention kernel's prefill path for the report (its name's "_tilecm" / "_tile" tag).
void countAttention(const codegen::SpirvKernel &k, CodegenSummary &summary) {
  if (k.name.find("_tilecm") != std::string::npos)
    ++summary.attentionCoopmat;
  else if (k.name.find("_tile") != std::string::npos)
    ++summary.attentionF32Tiles;
  else
    ++summary.attentionRows;
}

} // namespace
#endif

const passes::DeviceKernelCatalog *deviceKernelCatalog() {
#if KILN_WITH_SPIRV_CODEGEN
  static const SpirvCatalog catalog;
  return &catalog;
#else
  return nullptr;
#endif
}

std::string twoPassStage(passes::MemoryPlan &plan, const DeviceProfile &profile, passes::PartitionResult *partition) {
#if KILN_WITH_SPIRV_CODEGEN
  const codegen::SpirvTarget spirv = spirvTarget(profile);
  int split = 0, candidates = 0;
  uint64_t bytes = 0, counterBytes = 0;
  for (int i = int(plan.dispatches.size()) - 1; i >= 0; --i) { // from the end: inserting keeps earlier indices
    const passes::PlanDispatch &d = plan.dispatches[size_t(i)];
    if (d.transfer || d.device != passes::DispatchDevice::Vulkan || d.pass != 0 || !mlir::isa<ir::AttentionOp>(d.op))
      continue;
    ++candidates;
    const uint64_t scratch = codegen::spirvTwoPassScratchBytes(d.op, spirv, plan.options.maxBatch);
    if (!scratch)
      continue;
    mlir::MLIRContext *ctx = d.op->getContext();
    // The last chunk of a row to finish combines the row (one dispatch), or the fallback's second pass does.
    if (const uint64_t counters = codegen::spirvSplitCounterBytes(d.op, spirv, plan.options.maxBatch)) {
      passes::addCombinedSplit(plan, i, scratch, mlir::Float32Type::get(ctx), counters,
                               mlir::IntegerType::get(ctx, 32));
      counterBytes += counters;
    } else {
      passes::addSecondPass(plan, i, scratch, mlir::Float32Type::get(ctx), partition);
    }
    ++split;
    bytes = std::max(bytes, scratch);
  }
  if (!split)
    return "";
  passes::layoutArenas(plan);
  const std::string combine = counterBytes ? "the last chunk of each row to finish combines it, counters " +
                                                 std::to_string(counterBytes) + " B in all"
                                           : "a combine dispatch each, empty while one chunk holds the keys";
  return "attention: " + std::to_string(split) + " of " + std::to_string(candidates) +
         " on vulkan split over the KV length (flash-decoding for steps of few query rows: " + combine +
         "; scratch " + std::to_string((bytes + 1023) / 1024) + " KiB)";
#else
  (void)plan, (void)profile, (void)partition;
  return "";
#endif
}

Status spirvCodegenStage(const passes::MemoryPlan &plan, const DeviceProfile &profile, bool f16MatmulsForF32Weights,
                         const std::string &dumpDir, KernelTable &kernels, CodegenSummary *summary) {
#if KILN_WITH_SPIRV_CODEGEN
  codegen::SpirvTarget spirv = spirvTarget(profile, f16MatmulsForF32Weights);
  summary->attentionRule = f16MatmulsForF32Weights ? "" : attentionF16Rule(plan);
  spirv.cooperativeMatrixAttention = summary->attentionRule.empty();
  const std::vector<std::string> symbols = plan.symbolNames();
  // One Kernel per (variant, module, specialization); each distinct module stored once (spirv_from).
  std::map<std::tuple<std::string, std::vector<uint32_t>, std::vector<uint32_t>>, int> kernelByCode;
  std::map<std::vector<uint32_t>, int> moduleOwner;
  for (size_t i = 0; i < plan.dispatches.size(); ++i) {
    const passes::PlanDispatch &d = plan.dispatches[i];
    if (d.transfer || d.device != passes::DispatchDevice::Vulkan)
      continue;
    std::vector<mlir::Type> storage; // the buffers' element types (a folded weight convert: f16 for f32)
    for (size_t j = 0; j < d.op->getNumOperands(); ++j)
      storage.push_back(plan.buffers[size_t(d.buffers[j])].elementType);
    std::vector<codegen::SpirvKvView> views; // strided views of in-place KV caches (placeKvCacheInPlace)
    for (size_t j = 0; j < d.buffers.size(); ++j) {
      const passes::PlanBuffer &b = plan.buffers[size_t(d.buffers[j])];
      views.push_back({b.rowCapacity, b.rowOffset, j < d.storageOrder.size() ? d.storageOrder[j] : std::vector<int64_t>{}});
    }
    const std::string what = (d.location.empty() ? std::string("step") : d.location) + ": " +
                             d.op->getName().getStringRef().str();
    // The kernel for `target`, checked against the profile and stored once: its index in kernels.
    auto addKernel = [&](const codegen::SpirvTarget &target) -> StatusOr<std::pair<int, codegen::SpirvKernel>> {
      StatusOr<codegen::SpirvKernel> k = codegen::generateSpirvKernel(d.op, symbols, target, storage, views, d.pass);
      if (!k.ok())
        return Status::error(what + ": SPIR-V: " + k.status().message());
      uint64_t invocations = uint64_t(k->workgroupSize[0]) * k->workgroupSize[1] * k->workgroupSize[2];
      if (k->sharedMemoryBytes > profile.maxSharedMemory || invocations > profile.maxWorkgroupInvocations ||
          k->globalSize.size() != 3)
        return Status::error(what + ": internal error: SPIR-V kernel " + k->name + " does not fit profile " +
                             profile.name);
      auto [it, inserted] =
          kernelByCode.emplace(std::make_tuple(k->name, k->spirv, k->specialization), int(kernels.kernels.size()));
      if (inserted) {
        artifact::Kernel out = spirvKernelEntry(*k, d.op);
        auto [owner, first] = moduleOwner.emplace(k->spirv, it->second);
        if (first)
          out.set_spirv(k->spirv.data(), k->spirv.size() * sizeof(uint32_t));
        else
          out.set_spirv_from(owner->second + 1);
        kernels.kernels.push_back(std::move(out));
        if (Status s = codegen::dumpSpirvKernel(*k, dumpDir, it->second); !s) // --dump-dir: spirv/NNN-name.comp, .spvasm
          return s;
      }
      return std::make_pair(it->second, std::move(*k));
    };
    StatusOr<std::pair<int, codegen::SpirvKernel>> k = addKernel(spirv);
    if (!k.ok())
      return k.status();
    const codegen::SpirvKernel &kernel = k->second;
    ++summary->spirvDispatches;
    if (mlir::isa<ir::AttentionOp>(d.op) && d.pass != 2)
      countAttention(kernel, *summary);
    // Matmuls and matmul_groups (which kiln-fuse-matmul-norms makes of o / down / lm_head too) take the tiles alike.
    if (d.op->getName().getStringRef() == "kiln.matmul" || d.op->getName().getStringRef() == "kiln.matmul_group") {
      ++summary->spirvMatmuls;
      if (size_t at = kernel.name.find("_coopmat"); at != std::string::npos) // "_coopmat128x128x32_..."
        ++summary->coopmatBlocks[kernel.name.substr(at + 8, kernel.name.find('_', at + 1) - at - 8)];
      if (readsQuantizedWeight(plan, d)) {
        ++summary->spirvQuantMatmuls;
        summary->spirvQuantIntegerDot += kernel.name.find("_idot") != std::string::npos;
      }
    }
    kernels.kernelOfDispatch[int(i)] = k->first;
    if (kernel.smallRows) { // decode steps take the small-rows variant (its own kernel: no tile paths)
      codegen::SpirvTarget smallRows = spirv;
      smallRows.smallRowsVariant = true;
      StatusOr<std::pair<int, codegen::SpirvKernel>> small = addKernel(smallRows);
      if (!small.ok())
        return small.status();
      kernels.smallRowsOfDispatch[int(i)] = {small->first, toDim(*kernel.smallRows), codegen::kSpirvGemvRows};
      ++summary->spirvSmallRowsVariants;
    }
  }
  if (!spirv.cooperativeMatrix)
    summary->noCooperativeMatrix = !profile.cooperativeMatrix ? "no VK_KHR_cooperative_matrix"
                                   : "its cooperative_matrix_shapes lack " + std::string(codegen::kSpirvCooperativeMatrixShape);
  else if (spirv.subgroupSize != 32)
    summary->noCooperativeMatrix = "subgroup size " + std::to_string(spirv.subgroupSize) + ", not 32";
  summary->noIntegerDotProduct = noIntegerDotProductReason(profile);
  summary->spirvKernels = int(kernelByCode.size());
  summary->spirvModules = int(moduleOwner.size());
  return Status::ok();
#else
  return Status::error("compile: this build has no SPIR-V backend (codegen/spirv)");
#endif
}

} // namespace kiln::compiler
