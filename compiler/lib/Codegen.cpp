//===- Codegen.cpp - the CPU and SPIR-V code generation stages, the device kernel catalog ===//
#include "kiln/compiler/DeviceCatalog.h"
#include "kiln/compiler/Stages.h"

#if KILN_WITH_CPU_CODEGEN
#include "kiln/codegen/CpuCodegen.h"
#endif
#if KILN_WITH_SPIRV_CODEGEN
#include "kiln/codegen/SpirvCodegen.h"
#endif
#include "ArtifactTypes.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"

#include <tuple>

namespace kiln::compiler {

std::string resolveCpuName(const std::string &cpu) {
  return cpu == "native" ? llvm::sys::getHostCPUName().str() : cpu;
}

std::vector<int> cpuKernelDispatches(const passes::MemoryPlan &plan) {
  std::vector<int> dispatches;
  for (size_t i = 0; i < plan.dispatches.size(); ++i)
    if (!plan.dispatches[i].transfer && plan.dispatches[i].device == passes::DispatchDevice::Cpu)
      dispatches.push_back(int(i));
  return dispatches;
}

StatusOr<std::vector<uint8_t>> cpuCodegenStage(mlir::func::FuncOp step, const passes::MemoryPlan &plan,
                                               const CpuCodegenInput &input, KernelTable &kernels,
                                               CodegenSummary *summary) {
#if KILN_WITH_CPU_CODEGEN
  const std::vector<int> dispatches = cpuKernelDispatches(plan); // codegen/cpu takes only the cpu partition's
  summary->cpu = resolveCpuName(input.cpu);
  summary->cpuDispatches = dispatches.size();
  if (dispatches.empty())
    return std::vector<uint8_t>();
  codegen::CpuCodegenOptions options;
  options.cpu = input.cpu;
  options.dumpDir = input.dumpDir;
  options.irDump = input.irDump;
  std::vector<mlir::Operation *> ops;
  std::vector<codegen::KernelLayout> layouts; // strided KV-cache views and in-place appends
  for (int i : dispatches) {
    ops.push_back(plan.dispatches[size_t(i)].op);
    passes::DispatchLayout l = passes::dispatchLayout(plan, i);
    layouts.push_back(codegen::KernelLayout{l.rowCapacity, l.appendInPlace});
  }
  StatusOr<codegen::CpuCode> code = codegen::generateCpuKernels(step, ops, plan.symbolNames(), options, layouts);
  if (!code.ok())
    return code.status();
  if (code->kernels.size() != ops.size())
    return Status::error("compile: internal error: codegen returned " + std::to_string(code->kernels.size()) +
                         " kernels for " + std::to_string(ops.size()) + " dispatches");
  std::map<std::string, int> kernelBySymbol; // identical ops share a symbol: one Kernel entry each
  for (size_t i = 0; i < ops.size(); ++i) {
    const codegen::CpuKernelInfo &k = code->kernels[i];
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
  summary->cpuKernels = int(kernelBySymbol.size());
  summary->sharedObjectBytes = code->sharedObject.size();
  return std::move(code->sharedObject);
#else
  return Status::error("compile: this build has no CPU backend (codegen/cpu); only --emit=ir works");
#endif
}

#if KILN_WITH_SPIRV_CODEGEN
namespace {

codegen::SpirvTarget spirvTarget(const DeviceProfile &p) {
  codegen::SpirvTarget t;
  t.float16 = p.float16 && p.storage16;
  t.subgroupSize = p.subgroupSize;
  t.maxSharedMemory = static_cast<uint32_t>(p.maxSharedMemory); // 32-bit in every profile (the reader checks)
  t.maxWorkgroupInvocations = static_cast<uint32_t>(p.maxWorkgroupInvocations);
  t.maxStorageBufferRange = p.maxStorageBufferRange;
  t.subgroupArithmetic = p.hasSubgroupOp("arithmetic");
  t.cooperativeMatrix = p.hasCooperativeMatrixShape(codegen::kSpirvCooperativeMatrixShape);
  return t;
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

Status spirvCodegenStage(const passes::MemoryPlan &plan, const DeviceProfile &profile, const std::string &dumpDir,
                         KernelTable &kernels, CodegenSummary *summary) {
#if KILN_WITH_SPIRV_CODEGEN
  const codegen::SpirvTarget spirv = spirvTarget(profile);
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
    for (int id : d.buffers)
      views.push_back({plan.buffers[size_t(id)].rowCapacity, plan.buffers[size_t(id)].rowOffset});
    const std::string what = (d.location.empty() ? std::string("step") : d.location) + ": " +
                             d.op->getName().getStringRef().str();
    StatusOr<codegen::SpirvKernel> k = codegen::generateSpirvKernel(d.op, symbols, spirv, storage, views);
    if (!k.ok())
      return Status::error(what + ": SPIR-V: " + k.status().message());
    uint64_t invocations = uint64_t(k->workgroupSize[0]) * k->workgroupSize[1] * k->workgroupSize[2];
    if (k->sharedMemoryBytes > profile.maxSharedMemory || invocations > profile.maxWorkgroupInvocations ||
        k->globalSize.size() != 3)
      return Status::error(d.location + ": " + d.op->getName().getStringRef().str() + ": internal error: " +
                           "SPIR-V kernel " + k->name + " does not fit profile " + profile.name);
    ++summary->spirvDispatches;
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
    kernels.kernelOfDispatch[int(i)] = it->second;
  }
  summary->spirvKernels = int(kernelByCode.size());
  summary->spirvModules = int(moduleOwner.size());
  return Status::ok();
#else
  return Status::error("compile: this build has no SPIR-V backend (codegen/spirv)");
#endif
}

} // namespace kiln::compiler
