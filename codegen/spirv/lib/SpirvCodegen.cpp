//===- SpirvCodegen.cpp - kiln ops -> GLSL compute kernels -> SPIR-V -------===//
//
// The public entry points. Each op becomes one GLSL compute shader: the kernel family's .comp file under
// codegen/spirv/shaders (embedded at build time) with the op's variant defines, or, for elementwise ops and
// copies, a generated visit() around shaders/map.comp; compiled with glslang and validated with SPIRV-Tools.
// SpirvOpTable.cpp maps each op to its emitter; KernelBuilder.h has the machinery they share.
//
//===----------------------------------------------------------------------===//
#include "kiln/codegen/SpirvCodegen.h"
#include "KernelBuilder.h"

#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/ShapeInference.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <spirv-tools/libspirv.hpp>

#include <cstdio>
#include <set>

using namespace mlir;

namespace kiln::codegen {
namespace {

const spirv::SpirvOpEntry *entryOf(Operation *op) {
  auto it = spirv::spirvOpTable().find(op->getName().getStringRef().str());
  return it == spirv::spirvOpTable().end() ? nullptr : &it->second;
}

const spirv::SpirvOpEntry &unknownOp() {
  static const spirv::SpirvOpEntry entry{"no SPIR-V kernel for this op", nullptr};
  return entry;
}

/// The symbols the op's shapes (and a kiln.sym) refer to, sorted.
std::vector<std::string> symbolsOf(Operation *op) {
  std::set<std::string> seen;
  auto collect = [&](Type t) {
    FailureOr<ir::SymShape> shape = ir::getSymShape(t);
    if (succeeded(shape))
      for (const ir::SymExpr &d : *shape)
        for (const auto &[name, c] : d.terms())
          seen.insert(name);
  };
  for (Type t : op->getOperandTypes())
    collect(t);
  for (Type t : op->getResultTypes())
    collect(t);
  if (auto sym = dyn_cast<ir::SymOp>(op))
    seen.insert(sym.getSymbol().str());
  return std::vector<std::string>(seen.begin(), seen.end());
}

Status writeFile(const std::string &path, const std::string &text) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return Status::error(path + ": cannot write: " + ec.message());
  os << text;
  return Status::ok();
}

} // namespace

std::map<std::string, std::string> spirvOpEntries() {
  std::map<std::string, std::string> entries;
  for (const auto &[name, entry] : spirv::spirvOpTable())
    entries[name] = entry.noKernel;
  return entries;
}

std::string spirvUnsupportedReason(Operation *op, const SpirvTarget &target) {
  const spirv::SpirvOpEntry *entry = entryOf(op);
  if (!entry)
    return unknownOp().noKernel;
  if (!entry->noKernel.empty())
    return entry->noKernel;
  // Generating the kernel is cheap (milliseconds) and is the one source of truth for what fits.
  std::vector<std::string> symbols = symbolsOf(op);
  spirv::KernelBuilder b(op, symbols, target);
  if (b.run(*entry))
    return "";
  std::string prefix = spirv::describeOp(op) + ": ";
  return b.error.rfind(prefix, 0) == 0 ? b.error.substr(prefix.size()) : b.error;
}

StatusOr<SpirvKernel> generateSpirvKernel(Operation *op, llvm::ArrayRef<std::string> symbolNames,
                                          const SpirvTarget &target, llvm::ArrayRef<Type> operandStorage,
                                          llvm::ArrayRef<SpirvKvView> views, int pass) {
  const spirv::SpirvOpEntry *entry = entryOf(op);
  if (pass != 0 && spirvTwoPassScratchBytes(op, target, 1) == 0)
    return Status::error(spirv::describeOp(op) + ": has no two-pass kernel (pass " + std::to_string(pass) + ")");
  if (pass < 0 || pass > kSpirvCombinedPass)
    return Status::error(spirv::describeOp(op) + ": no kernel pass " + std::to_string(pass));
  spirv::KernelBuilder b(op, symbolNames, target, operandStorage, views, pass);
  if (!b.run(entry ? *entry : unknownOp()))
    return Status::error(b.error);
  return std::move(b.kernel);
}

uint64_t spirvTwoPassScratchBytes(Operation *op, const SpirvTarget &target, int64_t maxBatch) {
  return isa<ir::AttentionOp>(op) ? spirv::attentionScratchBytes(op, target, maxBatch) : 0;
}

uint64_t spirvSplitCounterBytes(Operation *op, const SpirvTarget &target, int64_t maxBatch) {
  return isa<ir::AttentionOp>(op) && !target.attentionCombinePass ? spirv::attentionCounterBytes(op, target, maxBatch)
                                                                   : 0;
}

std::string disassembleSpirv(llvm::ArrayRef<uint32_t> words) {
  spvtools::SpirvTools tools(SPV_ENV_VULKAN_1_1);
  std::string text;
  uint32_t options = SPV_BINARY_TO_TEXT_OPTION_FRIENDLY_NAMES | SPV_BINARY_TO_TEXT_OPTION_INDENT |
                     SPV_BINARY_TO_TEXT_OPTION_COMMENT;
  if (!tools.Disassemble(words.data(), words.size(), &text, options))
    return "; spirv-dis failed\n";
  return text;
}

Status dumpSpirvKernel(const SpirvKernel &kernel, const std::string &dumpDir, int index) {
  if (dumpDir.empty())
    return Status::ok();
  std::string dir = dumpDir + "/spirv";
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return Status::error(dir + ": cannot create the directory: " + ec.message());
  char prefix[32];
  std::snprintf(prefix, sizeof prefix, "%03d-", index);
  std::string base = dir + "/" + prefix + kernel.name;
  std::string spec;
  for (size_t i = 0; i < kernel.specialization.size(); ++i)
    spec += (i ? ", SC" : "SC") + std::to_string(i) + " = " + std::to_string(kernel.specialization[i]);
  std::string header = "// kernel " + std::to_string(index) + ": " + kernel.name + (spec.empty() ? "" : "; " + spec) + "\n";
  std::string glsl = kernel.glsl;
  glsl.insert(glsl.find('\n') + 1, header); // after the version directive, which must stay the first line
  if (Status s = writeFile(base + ".comp", glsl); !s)
    return s;
  return writeFile(base + ".spvasm", disassembleSpirv(kernel.spirv));
}

} // namespace kiln::codegen
