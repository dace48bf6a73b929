//===- Compile.cpp - `kiln compile` ---------------------------------------===//
//
// kiln compile MODEL_DIR -o MODEL.kiln [--target cpu|vulkan] [--device-profile NAME|FILE] [--cpu NAME]
//              [--max-context N] [--max-batch N] [--threads N] [--dump-dir DIR] [--no-fuse] [--strict]
// kiln compile MODEL_DIR --emit=ir [--fuse]
// import -> verify -> fusion (unless --no-fuse) -> [vulkan: kiln-split-weights, row chunks of weights larger
// than one device buffer] -> memory plan -> [vulkan: legality + partition (report on
// stderr, --strict, partition.dot/.svg)] -> CPU kernels for the cpu dispatches, SPIR-V kernels for the
// vulkan ones -> manifest -> artifact (ArtifactFormat.h).
//
//===----------------------------------------------------------------------===//
#include "Cli.h"
#include "ModelLoader.h"
#include "Subcommands.h"

#include "kiln/artifact/ArtifactWriter.h"
#include "kiln/artifact/SyntheticWeights.h"
#include "kiln/passes/Fusion.h"
#include "kiln/target/DeviceProfile.h"
#include "kiln/passes/DeviceWeights.h"
#include "kiln/passes/Legality.h"
#include "kiln/passes/MemoryPlan.h"
#include "kiln/passes/Partition.h"
#include "kiln/passes/SplitWeights.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln_artifact.pb.h"
#if KILN_WITH_CPU_CODEGEN
#include "kiln/codegen/CpuCodegen.h"
#endif
#if KILN_WITH_SPIRV_CODEGEN
#include "kiln/codegen/SpirvCodegen.h"
#endif

#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <tuple>
#include <memory>

#ifndef KILN_VERSION
#define KILN_VERSION "unknown"
#endif
#ifndef KILN_GIT_REVISION
#define KILN_GIT_REVISION "unknown"
#endif

namespace kiln::cli {
namespace {

const char *kUsage =
    "usage: kiln compile MODEL_DIR -o MODEL.kiln [--target cpu|vulkan] [--device-profile NAME|FILE] [--cpu NAME] "
    "[--max-context N] "
    "[--max-batch N] [--threads N] [--dump-dir DIR] [--dump-ir-after-all] [--no-fuse] [--no-kv-in-place] [--report] [--strict] [--synthetic-weights SEED] | kiln compile MODEL_DIR --emit=ir";

using Clock = std::chrono::steady_clock;
double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void progress(const std::string &line) { std::fprintf(stderr, "kiln compile: %s\n", line.c_str()); }

std::string utcNow() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<int64_t> positiveInt(const Args &args, const std::string &name, std::string *error) {
  std::optional<std::string> text = args.get(name);
  if (!text)
    return std::nullopt;
  std::optional<std::vector<int64_t>> v = parseIntList(*text);
  if (!v || v->size() != 1) {
    *error = name + " wants a positive integer, got '" + *text + "'";
    return std::nullopt;
  }
  return (*v)[0];
}

StatusOr<artifact::DType> toDType(mlir::Type t) {
  if (t.isF32()) return artifact::F32;
  if (t.isF16()) return artifact::F16;
  if (t.isBF16()) return artifact::BF16;
  if (t.isInteger(64)) return artifact::I64;
  if (t.isInteger(32)) return artifact::I32;
  if (t.isInteger(1)) return artifact::I1;
  if (t.isSignlessInteger(8) || t.isSignedInteger(8)) return artifact::I8;
  if (t.isUnsignedInteger(8)) return artifact::U8;
  std::string text;
  llvm::raw_string_ostream os(text);
  t.print(os);
  return Status::error("element type " + text + " has no artifact dtype");
}

/// The frontend dtype a weight must be stored in to be copied unchanged.
std::optional<DType> storedDType(artifact::DType d) {
  switch (d) {
  case artifact::F32: return DType::F32;
  case artifact::F16: return DType::F16;
  case artifact::BF16: return DType::BF16;
  case artifact::I64: return DType::I64;
  case artifact::I32: return DType::I32;
  case artifact::I8: return DType::I8;
  case artifact::U8: return DType::U8;
  case artifact::I1: return DType::BOOL;
  default: return std::nullopt;
  }
}

artifact::Dim toDim(const ir::SymExpr &e) {
  artifact::Dim d;
  d.set_constant(e.getConstant());
  for (const auto &[symbol, coeff] : e.terms()) {
    artifact::Dim::Term *t = d.add_terms();
    t->set_symbol(symbol);
    t->set_coeff(coeff);
  }
  return d;
}

artifact::Buffer::Kind toKind(passes::BufferKind k) {
  switch (k) {
  case passes::BufferKind::Arena: return artifact::Buffer::ARENA;
  case passes::BufferKind::Weight: return artifact::Buffer::WEIGHT;
  case passes::BufferKind::Input: return artifact::Buffer::INPUT;
  case passes::BufferKind::KvCache: return artifact::Buffer::KV_CACHE;
  }
  return artifact::Buffer::KIND_UNSPECIFIED;
}

/// Runs the verifier, turning the first diagnostic into a one-line message.
Status verifyModule(mlir::ModuleOp module, const std::string &dir) {
  std::string first;
  mlir::ScopedDiagnosticHandler handler(module.getContext(), [&](mlir::Diagnostic &diag) {
    if (first.empty()) {
      std::string loc = passes::locationText(diag.getLocation());
      first = (loc.empty() ? "" : loc + ": ") + diag.str();
    }
    return mlir::success();
  });
  if (mlir::failed(mlir::verify(module)))
    return Status::error(dir + ": the imported module does not verify: " + (first.empty() ? "?" : first));
  return Status::ok();
}

/// A WEIGHT buffer that is a row chunk of its tensor (kiln-split-weights): [begin, end) along dim 0.
std::optional<std::pair<int64_t, int64_t>> weightRows(const passes::PlanBuffer &b) {
  if (b.kind != passes::BufferKind::Weight || b.isConstant || !b.value)
    return std::nullopt;
  auto w = b.value.getDefiningOp<ir::WeightOp>();
  if (!w || !w.getRows())
    return std::nullopt;
  return std::make_pair((*w.getRows())[0], (*w.getRows())[1]);
}

/// The manifest's buffer / dispatch / port / KV part, transcribed from the plan.
Status fillPlan(const passes::MemoryPlan &plan, artifact::Manifest *m) {
  for (const passes::PlanSymbol &s : plan.symbols) {
    artifact::Symbol *sym = m->add_symbols();
    sym->set_name(s.name);
    sym->set_max_value(s.maxValue);
  }
  m->set_max_context(plan.options.maxContext);
  m->set_max_batch(plan.options.maxBatch);
  for (const passes::PlanBuffer &b : plan.buffers) {
    artifact::Buffer *out = m->add_buffers();
    out->set_id(b.id);
    out->set_name(b.name);
    out->set_kind(toKind(b.kind));
    StatusOr<artifact::DType> dtype = toDType(b.elementType);
    if (!dtype.ok())
      return Status::error("buffer '" + b.name + "': " + dtype.status().message());
    out->set_dtype(*dtype);
    for (const ir::SymExpr &d : b.shape)
      *out->add_shape() = toDim(d);
    out->set_offset(b.offset);
    out->set_max_bytes(b.maxBytes);
    if (std::optional<std::pair<int64_t, int64_t>> rows = weightRows(b)) {
      out->set_weight_row_begin(rows->first);
      out->set_weight_row_end(rows->second);
    }
    out->set_location(b.location == passes::BufferLocation::Device ? artifact::Buffer::DEVICE
                                                                    : artifact::Buffer::HOST);
    if (b.rowCapacity > 0) { // a strided view of an in-place KV cache (placeKvCacheInPlace)
      out->set_row_capacity(b.rowCapacity);
      *out->mutable_row_offset() = toDim(b.rowOffset);
      out->set_kv_entry(b.kvEntry);
    }
  }
  for (const passes::PlanDispatch &d : plan.dispatches) {
    artifact::Dispatch *out = m->add_dispatches();
    for (int id : d.buffers)
      out->add_buffers(id);
    out->set_location(d.location);
    out->set_device(passes::deviceName(d.device));
    out->set_kind(d.transfer ? artifact::Dispatch::TRANSFER : artifact::Dispatch::KERNEL);
    if (!d.transfer)
      out->set_num_results(int(d.written().size()));
  }
  for (const passes::PlanPort &p : plan.inputs) {
    artifact::Port *out = m->add_inputs();
    out->set_name(p.name);
    out->set_buffer(p.buffer);
  }
  for (const passes::PlanPort &p : plan.outputs) {
    artifact::Port *out = m->add_outputs();
    out->set_name(p.name);
    out->set_buffer(p.buffer);
  }
  for (const passes::PlanKvEntry &e : plan.kvCache) {
    artifact::KvCacheEntry *out = m->add_kv_cache();
    out->set_name(e.name);
    out->set_past_buffer(e.pastBuffer);
    out->set_present_buffer(e.presentBuffer);
    out->set_seq_axis(e.seqAxis);
    out->set_in_place(e.inPlace);
    out->set_append_buffer(-1);
    if (e.inPlace) {
      out->set_capacity(e.capacity);
      out->set_append_buffer(e.appendBuffer);
      out->set_producer(e.producer);
    } else {
      out->set_reason(e.reason);
    }
  }
  m->set_arena_bytes(plan.arenaBytes);
  m->set_device_arena_bytes(plan.deviceArenaBytes);
  return Status::ok();
}

/// One blob per WEIGHT buffer: constants from the plan, weights straight from the safetensors mapping
/// (converted to f32 only when the IR wants f32 and the file holds f16 / bf16).
/// With --synthetic-weights: the model's weights become synthetic (generated by the runtime at load, see
/// kiln_artifact.proto Buffer.synthetic), the IR's constants are stored, packed at stored_offset.
Status markSyntheticWeights(const passes::MemoryPlan &plan, uint64_t seed, const std::string &modelType,
                            artifact::Manifest *m) {
  m->set_synthetic_weights(true);
  m->set_synthetic_weights_seed(seed);
  std::map<int, uint64_t> storedOffset; // original constant buffer id -> its stored offset
  uint64_t cursor = 0;
  for (const passes::PlanBuffer &b : plan.buffers) {
    if (b.kind != passes::BufferKind::Weight)
      continue;
    const passes::PlanBuffer &orig = b.copyOf >= 0 ? plan.buffers[size_t(b.copyOf)] : b;
    artifact::Buffer *out = m->mutable_buffers(b.id);
    if (orig.isConstant) {
      auto [it, inserted] = storedOffset.emplace(orig.id, cursor);
      if (inserted)
        cursor = (cursor + orig.maxBytes + 63) / 64 * 64;
      out->set_stored_offset(it->second);
      continue;
    }
    if (m->buffers(orig.id).name() != orig.weightName)
      return Status::error("buffer '" + m->buffers(orig.id).name() + "': a weight's buffer is not named after its tensor '" +
                           orig.weightName + "'");
    artifact::DType d = out->dtype();
    if (d != artifact::F32 && d != artifact::F16 && d != artifact::BF16)
      return Status::error(orig.weightName + ": --synthetic-weights needs f32, f16 or bf16 weights, the IR wants " +
                           artifact::DType_Name(d));
    out->set_name(orig.weightName); // the generator's stream is seeded by it (a device copy included)
    out->set_synthetic(true);
    out->set_synthetic_center(artifact::syntheticCenter(orig.weightName, orig.shape.size(), modelType));
  }
  return Status::ok();
}

Status weightBlobs(const passes::MemoryPlan &plan, const artifact::Manifest &m, const WeightTable &weights,
                   std::vector<artifact::WeightBlob> *blobs) {
  for (const passes::PlanBuffer &b : plan.buffers) {
    if (b.kind != passes::BufferKind::Weight || b.copyOf >= 0) // a device copy shares the original's bytes
      continue;
    if (m.buffers(b.id).synthetic())
      continue; // generated at load
    artifact::WeightBlob blob;
    blob.offset = m.synthetic_weights() ? m.buffers(b.id).stored_offset() : b.offset;
    blob.size = b.maxBytes;
    blob.name = b.isConstant ? "constant at " + b.name : b.weightName;
    if (b.isConstant) {
      blob.data = b.constantData.data();
      blobs->push_back(std::move(blob));
      continue;
    }
    const TensorInfo *t = weights.find(b.weightName);
    if (!t)
      return Status::error(b.weightName + ": not in the model's safetensors");
    artifact::DType want = m.buffers(b.id).dtype();
    std::optional<DType> same = storedDType(want);
    // The tensor, or for a row chunk (kiln-split-weights) a view of its rows in the same mapping.
    std::shared_ptr<const TensorInfo> src(t, [](const TensorInfo *) {});
    std::string what = "tensor " + b.weightName;
    if (std::optional<std::pair<int64_t, int64_t>> rows = weightRows(b)) {
      auto [begin, end] = *rows;
      what += " rows " + std::to_string(begin) + ".." + std::to_string(end);
      if (t->shape.empty() || t->shape[0] < end || t->shape[0] <= 0)
        return Status::error(t->file + ": " + what + ": the tensor has no such rows");
      const size_t rowBytes = t->nbytes / size_t(t->shape[0]);
      auto chunk = std::make_shared<TensorInfo>(*t);
      chunk->shape[0] = end - begin;
      chunk->data = t->data + size_t(begin) * rowBytes;
      chunk->nbytes = size_t(end - begin) * rowBytes;
      src = chunk;
    }
    if (same && src->dtype == *same) {
      if (src->nbytes != b.maxBytes)
        return Status::error(t->file + ": " + what + " has " + std::to_string(src->nbytes) +
                             " bytes, the IR expects " + std::to_string(b.maxBytes));
      blob.data = src->data;
    } else if (want == artifact::F32 && (src->dtype == DType::F16 || src->dtype == DType::BF16) &&
               uint64_t(src->numElements()) * 4 == b.maxBytes) {
      blob.produce = [src](uint8_t *out) {
        convertToF32(*src, reinterpret_cast<float *>(out));
        return Status::ok();
      };
    } else {
      return Status::error(t->file + ": " + what + " is " + dtypeName(src->dtype) + ", the IR wants " +
                           artifact::DType_Name(want));
    }
    blobs->push_back(std::move(blob));
  }
  return Status::ok();
}

#if KILN_WITH_SPIRV_CODEGEN
codegen::SpirvTarget spirvTarget(const target::DeviceProfile &p) {
  codegen::SpirvTarget t;
  t.float16 = p.float16 && p.storage16;
  t.subgroupSize = p.subgroupSize;
  t.maxSharedMemory = static_cast<uint32_t>(p.maxSharedMemory); // 32-bit in every profile (the reader checks)
  t.maxWorkgroupInvocations = static_cast<uint32_t>(p.maxWorkgroupInvocations);
  t.maxStorageBufferRange = p.maxStorageBufferRange;
  t.subgroupArithmetic = p.hasSubgroupOp("arithmetic");
  return t;
}

/// Legality (c): whether codegen/spirv has a variant of the op that fits the profile.
class SpirvCatalog : public passes::DeviceKernelCatalog {
public:
  std::string unsupportedReason(mlir::Operation *op, const target::DeviceProfile &profile) const override {
    return codegen::spirvUnsupportedReason(op, spirvTarget(profile));
  }
};
#endif

/// Writes partition.dot, and partition.svg when Graphviz's `dot` is installed.
Status dumpPartition(const passes::MemoryPlan &plan, const std::string &dumpDir, const std::string &title) {
  std::string path = dumpDir + "/partition.dot";
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    if (ec)
      return Status::error(path + ": cannot write: " + ec.message());
    os << passes::partitionDot(plan, title);
  }
  if (llvm::ErrorOr<std::string> dot = llvm::sys::findProgramByName("dot")) {
    std::string svg = dumpDir + "/partition.svg";
    llvm::StringRef argv[] = {*dot, "-Tsvg", path, "-o", svg};
    std::string error;
    if (llvm::sys::ExecuteAndWait(*dot, argv, std::nullopt, {}, 60, 0, &error) != 0)
      progress("warning: dot could not render " + svg + (error.empty() ? "" : ": " + error));
  }
  return Status::ok();
}

} // namespace

int runCompile(int argc, char **argv) {
  const Clock::time_point start = Clock::now();
  Args args(argc, argv, 2,
            {"--emit", "-o", "--target", "--device-profile", "--cpu", "--max-context", "--max-batch", "--threads",
             "--dump-dir", "--synthetic-weights"},
            {"--no-fuse", "--no-kv-in-place", "--strict", "--fuse", "--report", "--dump-ir-after-all"});
  if (!args.ok() || args.positional().size() != 1)
    return fail(kExitUsage, (args.ok() ? std::string("") : args.error() + "; ") + kUsage);
  const std::string modelDir = args.positional()[0];
  std::string emit = args.get("--emit").value_or("");
  if (!emit.empty() && emit != "ir")
    return fail(kExitUsage, "compile: --emit takes 'ir' (print the imported module); " + std::string(kUsage));
  std::string output = args.get("-o").value_or("");
  if (emit.empty() && output.empty())
    return fail(kExitUsage, "compile: -o MODEL.kiln is required; " + std::string(kUsage));
  std::string target = args.get("--target").value_or("cpu");
  if (target != "cpu" && target != "vulkan")
    return fail(kExitUsage, "compile: unknown --target '" + target + "' (cpu, vulkan)");
  const bool vulkan = target == "vulkan";
  if (!vulkan && args.has("--device-profile"))
    return fail(kExitUsage, "compile: --device-profile needs --target vulkan");
  target::DeviceProfile profile;
  if (vulkan) {
    StatusOr<target::DeviceProfile> p = target::loadDeviceProfile(args.get("--device-profile").value_or("lavapipe"));
    if (!p.ok())
      return fail(kExitBadInput, p.status().message());
    profile = *p;
  }
  std::string intError;
  std::optional<int64_t> maxContextArg = positiveInt(args, "--max-context", &intError);
  std::optional<int64_t> maxBatchArg = positiveInt(args, "--max-batch", &intError);
  std::optional<int64_t> threadsArg = positiveInt(args, "--threads", &intError);
  if (!intError.empty())
    return fail(kExitUsage, "compile: " + intError);
  std::string dumpDir = args.get("--dump-dir").value_or("");

  mlir::MLIRContext context;
  StatusOr<ImportedModel> model = importModel(context, modelDir);
  if (!model.ok())
    return fail(kExitBadInput, model.status().message());
  if (Status s = verifyModule(*model->module, modelDir); !s)
    return fail(kExitBadInput, s.message());
  mlir::OpPrintingFlags printFlags;
  printFlags.enableDebugInfo(/*enable=*/true, /*prettyForm=*/true);
  if (emit == "ir") {
    // --emit=ir --fuse: the module after the fusion passes (tests/e2e/fused_ir.py counts its ops).
    if (args.has("--fuse") && failed(passes::runFusionPasses(*model->module)))
      return fail(kExitBadInput, modelDir + ": the fused module does not verify");
    model->module->print(llvm::outs(), printFlags);
    llvm::outs() << "\n";
    return kExitOk;
  }
  mlir::func::FuncOp step = model->step();
  if (!step)
    return fail(kExitBadInput, modelDir + ": the imported module has no step function");
  const std::string task = model->task();
  auto archAttr = (*model->module)->getAttrOfType<mlir::StringAttr>("kiln.architecture");
  const std::string architecture = archAttr ? archAttr.getValue().str() : model->config.architecture;
  auto countOps = [&] {
    size_t n = 0;
    step.walk([&](mlir::Operation *) { ++n; });
    return n;
  };
  progress("imported " + architecture + " (" + task + ", " + std::to_string(countOps()) + " ops) in " +
           std::to_string(int(secondsSince(start) * 1000)) + " ms");

  // --dump-dir: 00-imported.mlir, 01-fused.mlir, then codegen's own files.
  // --dump-ir-after-all: the same modules on stderr, headed like MLIR's --mlir-print-ir-after-all.
  const bool dumpAll = args.has("--dump-ir-after-all");
  auto dumpModule = [&](const std::string &name) -> Status {
    if (dumpAll) {
      llvm::errs() << "// -----// IR Dump After " << name << " //----- //\n";
      model->module->print(llvm::errs(), printFlags);
      llvm::errs() << "\n";
    }
    if (dumpDir.empty())
      return Status::ok();
    std::string path = dumpDir + "/" + name;
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    if (ec)
      return Status::error(path + ": cannot write: " + ec.message());
    model->module->print(os, printFlags);
    os << "\n";
    return Status::ok();
  };
  if (!dumpDir.empty())
    if (std::error_code ec = llvm::sys::fs::create_directories(dumpDir))
      return fail(kExitBadInput, dumpDir + ": cannot create the dump directory: " + ec.message());
  if (!dumpDir.empty() || dumpAll)
    if (Status s = dumpModule("00-imported.mlir"); !s)
      return fail(kExitBadInput, s.message());

  // Fusion (default; --no-fuse keeps the primitive graph, the differential baseline of every fusion).
  const bool fuse = !args.has("--no-fuse");
  passes::FusionReport fusion;
  if (fuse) {
    Clock::time_point tf = Clock::now();
    if (failed(passes::runFusionPasses(*model->module, &fusion)))
      return fail(kExitBadInput, modelDir + ": the fused module does not verify");
    step = model->step();
    // An add_rms_norm / add_layer_norm line follows its norm's "rms_norm at" line: one fused op, not two.
    const size_t addNorms = fusion.count("add_rms_norm") + fusion.count("add_layer_norm");
    progress("fused " + std::to_string(fusion.fused.size() - addNorms) + " ops (rms_norm " +
             std::to_string(fusion.count("rms_norm")) + ", layer_norm " + std::to_string(fusion.count("layer_norm")) +
             ", of them with the residual add " + std::to_string(addNorms) + ", rope " +
             std::to_string(fusion.count("rope")) + ", attention " +
             std::to_string(fusion.count("attention")) + "; " + std::to_string(fusion.unfused.size()) +
             " candidates left unfused): " + std::to_string(countOps()) + " ops in " +
             std::to_string(int(secondsSince(tf) * 1000)) + " ms");
    // --report: every fusion and every candidate left unfused, with its reason (also in `kiln inspect`).
    if (args.has("--report")) {
      for (const std::string &line : fusion.fused)
        std::fprintf(stderr, "kiln compile: fused %s\n", line.c_str());
      for (const std::string &line : fusion.unfused)
        std::fprintf(stderr, "kiln compile: not fused: %s\n", line.c_str());
    }
    if (!dumpDir.empty() || dumpAll)
      if (Status s = dumpModule("01-fused.mlir"); !s)
        return fail(kExitBadInput, s.message());
  }

  // Limits. Causal LMs: min(max_position_embeddings, 2048) tokens, batch 1; encoders: all positions,
  // batch 32. More than max_position_embeddings is refused (learned position tables have no more rows).
  const bool encoder = task == "encoder";
  const int64_t maxPositions = model->config.maxPositions;
  if (maxPositions <= 0 && !maxContextArg)
    return fail(kExitBadInput, model->config.path + ": no max_position_embeddings; pass --max-context N");
  int64_t maxContext = maxContextArg.value_or(encoder ? maxPositions : std::min<int64_t>(maxPositions, 2048));
  if (maxPositions > 0 && maxContext > maxPositions)
    return fail(kExitBadInput, "compile: --max-context " + std::to_string(maxContext) +
                                   " exceeds max_position_embeddings " + std::to_string(maxPositions) + " of " +
                                   model->config.path);
  int64_t maxBatch = maxBatchArg.value_or(encoder ? 32 : 1);

  // Vulkan: weights larger than one device storage buffer (maxStorageBufferRange / the allocation limit)
  // become row chunks where their ops allow (SplitWeights.h), so that those ops can run on the device.
  passes::SplitWeightsReport split;
  if (vulkan) {
    Clock::time_point ts = Clock::now();
    passes::splitLargeWeights(*model->module, passes::splitWeightsOptions(profile, passes::PlanOptions{maxContext, maxBatch}),
                              &split);
    if (mlir::failed(mlir::verify(*model->module)))
      return fail(kExitBadInput, modelDir + ": internal error: the module does not verify after kiln-split-weights");
    step = model->step();
    if (split.weightsSplit > 0 || !split.notSplit.empty())
      progress("kiln-split-weights: " + std::to_string(split.weightsSplit) + " weights into " + std::to_string(split.chunks) +
               " chunks for " + std::to_string(split.usesSplit) + " ops (" + profile.name + ") in " +
               std::to_string(int(secondsSince(ts) * 1000)) + " ms");
    for (const std::string &line : split.split)
      progress(line);
    for (const std::string &line : split.notSplit)
      progress(line);
    if (split.weightsSplit > 0 && (!dumpDir.empty() || dumpAll))
      if (Status s = dumpModule("02-split.mlir"); !s)
        return fail(kExitBadInput, s.message());
  }

  Clock::time_point t = Clock::now();
  StatusOr<passes::MemoryPlan> plan = passes::planMemory(step, passes::PlanOptions{maxContext, maxBatch});
  if (!plan.ok())
    return fail(kExitBadInput, modelDir + ": memory plan: " + plan.status().message());
  uint64_t kvBytes = 0;
  for (const passes::PlanKvEntry &e : plan->kvCache)
    kvBytes += plan->buffers[size_t(e.presentBuffer)].maxBytes;
  progress("memory plan: " + std::to_string(plan->buffers.size()) + " buffers, " +
           std::to_string(plan->dispatches.size()) + " dispatches, arena " + passes::formatBytes(plan->arenaBytes) +
           " (intermediates " + passes::formatBytes(plan->intermediateBytes) + "), weights " +
           passes::formatBytes(plan->weightsBytes) + ", KV cache " + passes::formatBytes(kvBytes) + " (max context " +
           std::to_string(maxContext) + ", batch " + std::to_string(maxBatch) + ") in " +
           std::to_string(int(secondsSince(t) * 1000)) + " ms");

  // Vulkan: legality of every dispatch, the device partition, the CPU fallback and the transfers.
  passes::PartitionResult partition;
  if (vulkan) {
    t = Clock::now();
#if KILN_WITH_SPIRV_CODEGEN
    SpirvCatalog catalog;
    const passes::DeviceKernelCatalog *catalogPtr = &catalog;
#else
    const passes::DeviceKernelCatalog *catalogPtr = nullptr; // no backend: only the profile's limits decide
#endif
    partition = passes::partitionPlan(*plan, profile, catalogPtr);
    // f16 / bf16 weights read in place by the device's matmuls and gathers (no convert kernel, no f32 copy).
    if (int folded = passes::foldDeviceWeightConverts(*plan, partition))
      progress("device weights: " + std::to_string(folded) +
               " f16/bf16 weight converts folded into their matmul / gather / norm kernels");
    if (int views = passes::foldDeviceReshapes(*plan, partition))
      progress("device reshapes: " + std::to_string(views) + " reshapes are views (no copy kernel)");
    for (const std::string &line : passes::partitionReport(partition, profile.name))
      progress(line);
    progress("partition: host arena " + passes::formatBytes(plan->arenaBytes) + ", device arena " +
             passes::formatBytes(plan->deviceArenaBytes) + " in " + std::to_string(int(secondsSince(t) * 1000)) + " ms");
    if (!dumpDir.empty())
      if (Status s = dumpPartition(*plan, dumpDir, architecture + " on vulkan (" + profile.name + ")"); !s)
        return fail(kExitBadInput, s.message());
    if (args.has("--strict") && partition.fallbacks > 0) {
      std::vector<std::string> report = passes::partitionReport(partition, profile.name);
      std::string list;
      for (size_t i = 1; i < report.size(); ++i)
        if (report[i].find("saves a transfer") == std::string::npos)
          list += (list.empty() ? "" : "; ") + report[i];
      return fail(kExitBadInput, "compile: --strict: " + std::to_string(partition.fallbacks) +
                                     " ops cannot run on vulkan (profile " + profile.name + "): " + list);
    }
#if !KILN_WITH_SPIRV_CODEGEN
    return fail(kExitBadInput, "compile: this build has no SPIR-V backend (codegen/spirv); the partition above "
                               "is what --target vulkan would run");
#endif
  }

  // The KV cache in place where every use takes the strided cache view (MemoryPlan.h placeKvCacheInPlace);
  // --no-kv-in-place keeps the two-buffer cache copied forward each step (the differential baseline).
  if (args.has("--no-kv-in-place")) {
    for (passes::PlanKvEntry &e : plan->kvCache)
      e.reason = "--no-kv-in-place";
  } else {
    passes::placeKvCacheInPlace(*plan, passes::KvInPlaceOptions{}, vulkan ? &partition : nullptr);
  }
  if (!plan->kvCache.empty())
    progress(passes::kvCacheSummary(*plan));

  std::string cpuName = args.get("--cpu").value_or("native");
  std::string resolvedCpu = cpuName == "native" ? llvm::sys::getHostCPUName().str() : cpuName;

  artifact::Manifest manifest;
  artifact::Provenance *prov = manifest.mutable_provenance();
  prov->set_compiler_version(KILN_VERSION);
  prov->set_git_revision(KILN_GIT_REVISION);
  for (int i = 0; i < argc; ++i)
    prov->add_flags(argv[i]);
  prov->set_target(vulkan ? "vulkan:" + profile.name + "+cpu:" + resolvedCpu : "cpu:" + resolvedCpu);
  prov->set_model_dir(modelDir);
  prov->set_created_utc(utcNow());
  artifact::recordModelFacts({architecture, task, model->config.vocabSize, model->config.hiddenSize}, manifest);
  manifest.set_num_threads_default(threadsArg.value_or(0));
  if (Status s = fillPlan(*plan, &manifest); !s)
    return fail(kExitBadInput, modelDir + ": " + s.message());
  if (!plan->kvCache.empty())
    manifest.add_notes(passes::kvCacheSummary(*plan));
  if (cpuName == "native")
    manifest.add_notes("cpu: native = " + resolvedCpu + " (the compiling host's CPU and features)");
  if (fuse) {
    const size_t addNorms = fusion.count("add_rms_norm") + fusion.count("add_layer_norm");
    manifest.add_notes("fusion: " + std::to_string(fusion.fused.size() - addNorms) + " fused ops (rms_norm " +
                       std::to_string(fusion.count("rms_norm")) + ", layer_norm " +
                       std::to_string(fusion.count("layer_norm")) + ", of them with the residual add " +
                       std::to_string(addNorms) + ", rope " + std::to_string(fusion.count("rope")) +
                       ", attention " + std::to_string(fusion.count("attention")) + ")");
    for (const std::string &line : fusion.fused)
      manifest.add_notes("fused: " + line);
    for (const std::string &line : fusion.unfused)
      manifest.add_notes("unfused: " + line);
  } else {
    manifest.add_notes("fusion: off (--no-fuse); every primitive op is one kernel");
  }
  if (vulkan) {
    manifest.set_device_profile_json(target::writeDeviceProfile(profile));
    for (const passes::PartitionEntry &e : partition.entries) {
      artifact::PartitionEntry *out = manifest.add_partition();
      out->set_op(e.op);
      out->set_location(e.location);
      out->set_device(passes::deviceName(e.device));
      out->set_reason(e.reason);
    }
    for (const std::string &line : passes::partitionReport(partition, profile.name))
      manifest.add_notes("partitioning: " + line);
    for (const std::string &line : split.split)
      manifest.add_notes("partitioning: " + line);
    for (const std::string &line : split.notSplit)
      manifest.add_notes("partitioning: " + line);
    manifest.add_notes("memory plan: arena " + std::to_string(plan->arenaBytes) + " bytes, device arena " +
                       std::to_string(plan->deviceArenaBytes) + " bytes for " +
                       std::to_string(plan->intermediateBytes) +
                       " bytes of intermediates (first-fit decreasing by liveness, per arena)");
  } else {
    manifest.add_notes("partitioning: every op on cpu (no fallback needed" +
                       std::string(args.has("--strict") ? ", --strict satisfied)" : ")"));
    manifest.add_notes("memory plan: arena " + std::to_string(plan->arenaBytes) + " bytes for " +
                       std::to_string(plan->intermediateBytes) + " bytes of intermediates (first-fit decreasing by liveness)");
  }

  // Kernels.
  std::vector<uint8_t> sharedObject;
#if KILN_WITH_CPU_CODEGEN
  std::vector<int> cpuDispatches; // codegen/cpu takes only the cpu partition's ops
  for (size_t i = 0; i < plan->dispatches.size(); ++i)
    if (!plan->dispatches[i].transfer && plan->dispatches[i].device == passes::DispatchDevice::Cpu)
      cpuDispatches.push_back(int(i));
  if (!cpuDispatches.empty()) {
    t = Clock::now();
    progress("generating " + std::to_string(cpuDispatches.size()) + " CPU kernels for " + resolvedCpu + "...");
    codegen::CpuCodegenOptions options;
    options.cpu = cpuName;
    options.dumpDir = dumpDir;
    std::vector<mlir::Operation *> ops;
    std::vector<codegen::KernelLayout> layouts; // strided KV-cache views and in-place appends
    for (int i : cpuDispatches) {
      ops.push_back(plan->dispatches[size_t(i)].op);
      passes::DispatchLayout l = passes::dispatchLayout(*plan, i);
      layouts.push_back(codegen::KernelLayout{l.rowCapacity, l.appendInPlace});
    }
    std::vector<std::string> symbols = plan->symbolNames();
    StatusOr<codegen::CpuCode> code = codegen::generateCpuKernels(step, ops, symbols, options, layouts);
    if (!code.ok())
      return fail(kExitBadInput, code.status().message());
    if (code->kernels.size() != ops.size())
      return fail(kExitBadInput, "compile: internal error: codegen returned " +
                                     std::to_string(code->kernels.size()) + " kernels for " +
                                     std::to_string(ops.size()) + " dispatches");
    std::map<std::string, int> kernelBySymbol; // identical ops share a symbol: one Kernel entry each
    for (size_t i = 0; i < ops.size(); ++i) {
      const codegen::CpuKernelInfo &k = code->kernels[i];
      auto [it, inserted] = kernelBySymbol.emplace(k.symbol, manifest.kernels_size());
      if (inserted) {
        artifact::Kernel *out = manifest.add_kernels();
        out->set_symbol(k.symbol);
        out->set_op(k.op);
        out->set_signature(k.signature);
      }
      manifest.mutable_dispatches(cpuDispatches[i])->set_kernel(it->second);
    }
    sharedObject = std::move(code->sharedObject);
    progress("generated " + std::to_string(manifest.kernels_size()) + " distinct kernels, shared object " +
             passes::formatBytes(sharedObject.size()) + " in " + std::to_string(secondsSince(t)).substr(0, 5) + " s");
  }
#else
  return fail(kExitBadInput, "compile: this build has no CPU backend (codegen/cpu); only --emit=ir works");
#endif
#if KILN_WITH_SPIRV_CODEGEN
  if (vulkan) {
    t = Clock::now();
    const codegen::SpirvTarget spirv = spirvTarget(profile);
    std::vector<std::string> symbols = plan->symbolNames();
    // One Kernel per (variant, module, specialization); each distinct module stored once (spirv_from).
    std::map<std::tuple<std::string, std::vector<uint32_t>, std::vector<uint32_t>>, int> kernelByCode;
    std::map<std::vector<uint32_t>, int> moduleOwner;
    int generated = 0;
    for (size_t i = 0; i < plan->dispatches.size(); ++i) {
      const passes::PlanDispatch &d = plan->dispatches[i];
      if (d.transfer || d.device != passes::DispatchDevice::Vulkan)
        continue;
      std::vector<mlir::Type> storage; // the buffers' element types (a folded weight convert: f16 for f32)
      for (size_t j = 0; j < d.op->getNumOperands(); ++j)
        storage.push_back(plan->buffers[size_t(d.buffers[j])].elementType);
      StatusOr<codegen::SpirvKernel> k = codegen::generateSpirvKernel(d.op, symbols, spirv, storage);
      if (!k.ok())
        return fail(kExitBadInput, (d.location.empty() ? std::string("step") : d.location) + ": " +
                                       d.op->getName().getStringRef().str() + ": SPIR-V: " + k.status().message());
      uint64_t invocations = uint64_t(k->workgroupSize[0]) * k->workgroupSize[1] * k->workgroupSize[2];
      if (k->sharedMemoryBytes > profile.maxSharedMemory || invocations > profile.maxWorkgroupInvocations ||
          k->globalSize.size() != 3)
        return fail(kExitBadInput, d.location + ": " + d.op->getName().getStringRef().str() + ": internal error: " +
                                       "SPIR-V kernel " + k->name + " does not fit profile " + profile.name);
      ++generated;
      auto [it, inserted] =
          kernelByCode.emplace(std::make_tuple(k->name, k->spirv, k->specialization), manifest.kernels_size());
      if (inserted) {
        artifact::Kernel *out = manifest.add_kernels();
        out->set_symbol(k->name);
        out->set_op(d.op->getName().getStringRef().str());
        std::string sig;
        llvm::raw_string_ostream os(sig);
        llvm::interleaveComma(d.op->getOperandTypes(), os);
        os << " -> ";
        llvm::interleaveComma(d.op->getResultTypes(), os);
        out->set_signature(sig);
        auto [owner, first] = moduleOwner.emplace(k->spirv, it->second);
        if (first)
          out->set_spirv(k->spirv.data(), k->spirv.size() * sizeof(uint32_t));
        else
          out->set_spirv_from(owner->second + 1);
        for (uint32_t v : k->specialization)
          out->add_specialization(v);
        for (uint32_t w : k->workgroupSize)
          out->add_workgroup_size(w);
        for (const ir::SymExpr &g : k->globalSize)
          *out->add_global_size() = toDim(g);
        out->set_shared_memory_bytes(k->sharedMemoryBytes);
        if (Status s = codegen::dumpSpirvKernel(*k, dumpDir, it->second); !s) // --dump-dir: spirv/NNN-name.comp, .spvasm
          return fail(kExitBadInput, s.message());
      }
      manifest.mutable_dispatches(int(i))->set_kernel(it->second);
    }
    progress("generated " + std::to_string(generated) + " SPIR-V dispatches (" + std::to_string(kernelByCode.size()) +
             " distinct kernels, " + std::to_string(moduleOwner.size()) + " SPIR-V modules) for " + profile.name + " in " + std::to_string(secondsSince(t)).substr(0, 5) + " s");
  }
#endif

  // Weights and the file.
  if (std::optional<std::string> seedText = args.get("--synthetic-weights")) {
    char *end = nullptr;
    errno = 0;
    unsigned long long seed = std::strtoull(seedText->c_str(), &end, 10);
    if (seedText->empty() || *end != '\0' || errno != 0 || (*seedText)[0] == '-')
      return fail(kExitUsage, "--synthetic-weights takes a non-negative integer seed, got '" + *seedText + "'");
    if (Status s = markSyntheticWeights(*plan, seed, model->config.modelType, &manifest); !s)
      return fail(kExitBadInput, s.message());
    progress("synthetic weights (seed " + std::to_string(seed) + "): only the IR's constants are stored");
  }
  std::vector<artifact::WeightBlob> blobs;
  if (Status s = weightBlobs(*plan, manifest, model->weights, &blobs); !s)
    return fail(kExitBadInput, s.message());
  t = Clock::now();
  progress("writing " + output + " (" + std::to_string(blobs.size()) + " weight buffers, " +
           passes::formatBytes(plan->weightsBytes) + ")...");
  if (Status s = artifact::writeArtifact(output, manifest, sharedObject, blobs); !s)
    return fail(kExitBadInput, s.message());
  uint64_t fileBytes = 0;
  llvm::sys::fs::file_size(output, fileBytes);
  progress("wrote " + output + " (" + passes::formatBytes(fileBytes) + ") in " + std::to_string(secondsSince(t)).substr(0, 5) +
           " s; total " + std::to_string(secondsSince(start)).substr(0, 5) + " s");
  return kExitOk;
}

} // namespace kiln::cli
