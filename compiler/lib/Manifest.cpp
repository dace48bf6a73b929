//===- Manifest.cpp - the manifest (a transcription of the plan), the weights, the file ===//
#include "ArtifactTypes.h"
#include "kiln/compiler/Stages.h"

#include "kiln/artifact/ArtifactWriter.h"
#include "kiln/artifact/DType.h"
#include "kiln/artifact/SyntheticWeights.h"
#include "kiln/ir/KilnDialect.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <ctime>
#include <memory>

#include "Version.h" // generated at build time (cmake/WriteVersionHeader.cmake)

namespace kiln::compiler {

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

namespace {

std::string utcNow() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
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

artifact::Buffer::Kind toKind(passes::BufferKind k) {
  switch (k) {
  case passes::BufferKind::Arena: return artifact::Buffer::ARENA;
  case passes::BufferKind::Weight: return artifact::Buffer::WEIGHT;
  case passes::BufferKind::Input: return artifact::Buffer::INPUT;
  case passes::BufferKind::KvCache: return artifact::Buffer::KV_CACHE;
  }
  return artifact::Buffer::KIND_UNSPECIFIED;
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

Status fillBuffers(const passes::MemoryPlan &plan, artifact::Manifest *m) {
  for (const passes::PlanBuffer &b : plan.buffers) {
    artifact::Buffer *out = m->add_buffers();
    out->set_id(b.id);
    out->set_name(b.name);
    out->set_kind(toKind(b.kind));
    StatusOr<artifact::DType> dtype = toDType(b.elementType);
    if (!dtype.ok())
      return Status::error("buffer '" + b.name + "': " + dtype.status().message());
    out->set_dtype(*dtype);
    if (b.quant) { // the f32 values it stands for, stored in blocks (support/Quantize.h)
      out->set_dtype(*b.quant == QuantFormat::Q8_0 ? artifact::Q8_0 : artifact::Q4_0);
      out->set_weight_layout(kQuantLayout);
    }
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
  return Status::ok();
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
  if (Status s = fillBuffers(plan, m); !s)
    return s;
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

/// --synthetic-weights: the model's weights become synthetic (generated by the runtime at load, see
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
    if (d != artifact::F32 && d != artifact::F16 && d != artifact::BF16 && !artifact::isQuantized(d))
      return Status::error(orig.weightName + ": --synthetic-weights needs f32, f16, bf16, q8_0 or q4_0 weights, "
                           "the IR wants " + artifact::DType_Name(d));
    out->set_name(orig.weightName); // the generator's stream is seeded by it (a device copy included)
    out->set_synthetic(true);
    out->set_synthetic_center(artifact::syntheticCenter(orig.weightName, orig.shape.size(), modelType));
  }
  return Status::ok();
}

/// The source of one weight buffer's bytes: the tensor, or for a row chunk (kiln-split-weights) a view of
/// its rows in the same mapping, copied as it is or widened from f16 / bf16 to f32.
Status weightBlob(const passes::PlanBuffer &b, const TensorInfo &table, artifact::DType want,
                  artifact::WeightBlob *blob) {
  // A widened view (WeightTable::storeFloatsAs) is read from its 16-bit source: converted below as wanted.
  const TensorInfo &t = table.widenedFrom ? *table.widenedFrom : table;
  std::shared_ptr<const TensorInfo> src(&t, [](const TensorInfo *) {});
  std::string what = "tensor " + b.weightName;
  if (std::optional<std::pair<int64_t, int64_t>> rows = weightRows(b)) {
    auto [begin, end] = *rows;
    what += " rows " + std::to_string(begin) + ".." + std::to_string(end);
    if (t.shape.empty() || t.shape[0] < end || t.shape[0] <= 0)
      return Status::error(t.file + ": " + what + ": the tensor has no such rows");
    const size_t rowBytes = t.nbytes / size_t(t.shape[0]);
    auto chunk = std::make_shared<TensorInfo>(t);
    chunk->shape[0] = end - begin;
    chunk->data = t.data + size_t(begin) * rowBytes;
    chunk->nbytes = size_t(end - begin) * rowBytes;
    src = chunk;
  }
  if (artifact::isQuantized(want)) {
    const QuantFormat format = want == artifact::Q8_0 ? QuantFormat::Q8_0 : QuantFormat::Q4_0;
    if (src->shape.size() != 2 || quantizedMatrixBytes(format, uint64_t(src->shape[0]), uint64_t(src->shape[1])) !=
                                      b.maxBytes)
      return Status::error(t.file + ": " + what + " does not fit the IR's " + quantFormatName(format) + " matrix");
    blob->produce = [src, format](uint8_t *out) {
      const uint64_t rows = uint64_t(src->shape[0]), cols = uint64_t(src->shape[1]);
      std::vector<float> values(rows * cols);
      convertToF32(*src, values.data());
      quantizeMatrix(format, values.data(), rows, cols, out);
      return Status::ok();
    };
    return Status::ok();
  }
  std::optional<DType> same = storedDType(want);
  if (same && src->dtype == *same) {
    if (src->nbytes != b.maxBytes)
      return Status::error(t.file + ": " + what + " has " + std::to_string(src->nbytes) + " bytes, the IR expects " +
                           std::to_string(b.maxBytes));
    blob->data = src->data;
    return Status::ok();
  }
  if (want == artifact::F32 && (src->dtype == DType::F16 || src->dtype == DType::BF16) &&
      uint64_t(src->numElements()) * 4 == b.maxBytes) {
    blob->produce = [src](uint8_t *out) {
      convertToF32(*src, reinterpret_cast<float *>(out));
      return Status::ok();
    };
    return Status::ok();
  }
  return Status::error(t.file + ": " + what + " is " + dtypeName(src->dtype) + ", the IR wants " +
                       artifact::DType_Name(want));
}

} // namespace

StatusOr<artifact::Manifest> manifestStage(const passes::MemoryPlan &plan, const ManifestInput &input) {
  artifact::Manifest manifest;
  artifact::Provenance *prov = manifest.mutable_provenance();
  prov->set_compiler_version(KILN_VERSION);
  prov->set_git_revision(KILN_GIT_REVISION);
  for (const std::string &arg : input.commandLine)
    prov->add_flags(arg);
  prov->set_target(input.target);
  prov->set_model_dir(input.modelDir);
  prov->set_created_utc(utcNow());
  artifact::recordModelFacts({input.architecture, input.task, input.vocabSize, input.hiddenSize}, manifest);
  manifest.set_num_threads_default(input.threads);
  if (Status s = fillPlan(plan, &manifest); !s)
    return Status::error(input.modelDir + ": " + s.message());
  if (input.profile)
    manifest.set_device_profile_json(target::writeDeviceProfile(*input.profile));
  if (input.partition)
    for (const passes::PartitionEntry &e : input.partition->entries) {
      artifact::PartitionEntry *out = manifest.add_partition();
      out->set_op(e.op);
      out->set_location(e.location);
      out->set_device(passes::deviceName(e.device));
      out->set_reason(e.reason);
    }
  return manifest;
}

void storeKernels(const KernelTable &kernels, artifact::Manifest *manifest) {
  for (const artifact::Kernel &k : kernels.kernels)
    *manifest->add_kernels() = k;
  for (const auto &[dispatch, kernel] : kernels.kernelOfDispatch)
    manifest->mutable_dispatches(dispatch)->set_kernel(kernel);
  for (const auto &[dispatch, small] : kernels.smallRowsOfDispatch) {
    artifact::Dispatch *d = manifest->mutable_dispatches(dispatch);
    d->set_small_rows_kernel(small.kernel + 1);
    *d->mutable_small_rows() = small.rows;
    d->set_small_rows_max(small.max);
  }
  for (const artifact::CpuObject &o : kernels.cpuObjects)
    *manifest->add_cpu_objects() = o;
}

void storeReport(const CompileReport &report, artifact::Manifest *manifest) {
  manifest->clear_compile_report();
  for (const StageReport &stage : report.stages) {
    artifact::ReportStage *out = manifest->add_compile_report();
    out->set_stage(stage.stage);
    out->set_seconds(stage.seconds);
    for (const std::string &line : stage.lines)
      out->add_lines(line);
    for (const std::string &line : stage.details)
      out->add_details(line);
  }
}

StatusOr<std::vector<artifact::WeightBlob>> weightsStage(const passes::MemoryPlan &plan, artifact::Manifest *manifest,
                                                         const WeightTable &weights,
                                                         std::optional<uint64_t> syntheticSeed,
                                                         const std::string &modelType) {
  if (syntheticSeed)
    if (Status s = markSyntheticWeights(plan, *syntheticSeed, modelType, manifest); !s)
      return s;
  const artifact::Manifest &m = *manifest;
  std::vector<artifact::WeightBlob> blobs;
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
    } else {
      const TensorInfo *t = weights.find(b.weightName);
      if (!t)
        return Status::error(b.weightName + ": not in the model's safetensors");
      if (Status s = weightBlob(b, *t, m.buffers(b.id).dtype(), &blob); !s)
        return s;
    }
    blobs.push_back(std::move(blob));
  }
  return blobs;
}

Status writeStage(const std::string &path, const artifact::Manifest &manifest,
                  const std::vector<uint8_t> &sharedObject, const std::vector<artifact::WeightBlob> &blobs,
                  WriteSummary *summary, const artifact::TextSection *text) {
  if (Status s = artifact::writeArtifact(path, manifest, sharedObject, blobs, text); !s)
    return s;
  uint64_t fileBytes = 0;
  llvm::sys::fs::file_size(path, fileBytes);
  summary->fileBytes = fileBytes;
  return Status::ok();
}

} // namespace kiln::compiler
