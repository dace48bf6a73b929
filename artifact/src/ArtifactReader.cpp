//===- ArtifactReader.cpp -------------------------------------------------===//
#include "kiln/artifact/ArtifactReader.h"
#include "kiln/artifact/ArtifactWriter.h"
#include "kiln/artifact/ArtifactFormat.h"
#include "kiln/artifact/Checksum.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <set>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::artifact {

size_t dtypeBytes(DType dtype) {
  switch (dtype) {
  case F32: case I32: return 4;
  case F16: case BF16: return 2;
  case I64: return 8;
  case I8: case U8: case I1: return 1;
  default: return 0;
  }
}

const char *dtypeShortName(DType dtype) {
  switch (dtype) {
  case F32: return "f32";
  case F16: return "f16";
  case BF16: return "bf16";
  case I64: return "i64";
  case I32: return "i32";
  case I8: return "i8";
  case U8: return "u8";
  case I1: return "i1";
  default: return "?";
  }
}

const char *sectionName(uint32_t kind) {
  switch (static_cast<SectionKind>(kind)) {
  case SectionKind::Manifest: return "manifest";
  case SectionKind::CpuCode: return "code";
  case SectionKind::Weights: return "weights";
  }
  return "unknown";
}

namespace {
bool addOverflows(uint64_t a, uint64_t b, uint64_t *out) { return __builtin_add_overflow(a, b, out); }

Status err(const std::string &file, const std::string &what) { return Status::error(file + ": " + what); }

std::string bufferRef(int64_t id) { return "buffer " + std::to_string(id); }
} // namespace

Status validateManifest(const Manifest &m, uint64_t storedWeightsSize, const std::string &file) {
  auto bad = [&](const std::string &what) { return err(file, "manifest: " + what); };
  // Synthetic weights: WEIGHT buffers live in the region the runtime allocates (weightsSectionSize), the
  // stored (non-synthetic) ones also at stored_offset in the WEIGHTS section. Otherwise the section is the
  // region.
  const bool synthetic = m.synthetic_weights();
  const uint64_t weightsSize = synthetic ? weightsSectionSize(m) : storedWeightsSize;
  if (m.max_context() <= 0)
    return bad("max_context " + std::to_string(m.max_context()) + " is not positive");
  if (m.max_batch() <= 0)
    return bad("max_batch " + std::to_string(m.max_batch()) + " is not positive");
  if (m.num_threads_default() < 0)
    return bad("num_threads_default is negative");
  std::set<std::string> symbols;
  for (int i = 0; i < m.symbols_size(); ++i) {
    const Symbol &s = m.symbols(i);
    if (s.name().empty())
      return bad("symbol " + std::to_string(i) + " has no name");
    if (i > 0 && !(m.symbols(i - 1).name() < s.name()))
      return bad("symbols are not sorted and unique at '" + s.name() + "'");
    if (s.max_value() < 0)
      return bad("symbol '" + s.name() + "' has max_value " + std::to_string(s.max_value()));
    symbols.insert(s.name());
  }
  const int64_t numBuffers = m.buffers_size();
  auto inRange = [&](int64_t id) { return id >= 0 && id < numBuffers; };
  for (int64_t i = 0; i < numBuffers; ++i) {
    const Buffer &b = m.buffers(int(i));
    std::string what = bufferRef(i) + (b.name().empty() ? "" : " (" + b.name() + ")");
    if (b.id() != i)
      return bad(what + " has id " + std::to_string(b.id()) + " (ids must equal their index)");
    if (b.kind() != Buffer::ARENA && b.kind() != Buffer::WEIGHT && b.kind() != Buffer::INPUT &&
        b.kind() != Buffer::KV_CACHE)
      return bad(what + " has no valid kind");
    size_t elem = dtypeBytes(b.dtype());
    if (elem == 0)
      return bad(what + " has no valid dtype");
    bool constantShape = true;
    uint64_t elements = 1;
    for (const Dim &d : b.shape()) {
      if (d.constant() < 0)
        return bad(what + " has a negative dim constant");
      for (const Dim::Term &t : d.terms()) {
        if (!symbols.count(t.symbol()))
          return bad(what + " uses undeclared symbol '" + t.symbol() + "'");
        if (t.coeff() <= 0)
          return bad(what + " has a non-positive coefficient of '" + t.symbol() + "'");
      }
      if (d.terms_size() != 0)
        constantShape = false;
      else if (__builtin_mul_overflow(elements, uint64_t(d.constant()), &elements))
        return bad(what + " is too large");
    }
    uint64_t end;
    if (addOverflows(b.offset(), b.max_bytes(), &end))
      return bad(what + " offset + max_bytes overflows");
    switch (b.kind()) {
    case Buffer::WEIGHT: {
      if (!constantShape)
        return bad(what + " is a WEIGHT with a symbolic shape");
      uint64_t bytes;
      if (__builtin_mul_overflow(elements, uint64_t(elem), &bytes) || bytes != b.max_bytes())
        return bad(what + " has max_bytes " + std::to_string(b.max_bytes()) + ", its shape needs " +
                   std::to_string(elements * elem));
      if (b.offset() % kAlignment != 0)
        return bad(what + " is not 64-byte aligned in the weights section");
      if (end > weightsSize)
        return bad(what + " ends at " + std::to_string(end) + ", past the weights section (" +
                   std::to_string(weightsSize) + " bytes)");
      if (b.synthetic() && !synthetic)
        return bad(what + " is synthetic in a manifest without synthetic_weights");
      if (synthetic && !b.synthetic()) {
        uint64_t storedEnd;
        if (b.stored_offset() % kAlignment != 0)
          return bad(what + " is not 64-byte aligned in the stored weights section");
        if (addOverflows(b.stored_offset(), b.max_bytes(), &storedEnd) || storedEnd > storedWeightsSize)
          return bad(what + " is stored past the weights section (" + std::to_string(storedWeightsSize) +
                     " bytes)");
      }
      if (b.synthetic() && b.dtype() != F32 && b.dtype() != F16 && b.dtype() != BF16)
        return bad(what + " is synthetic but not f32, f16 or bf16");
      if ((b.weight_row_begin() != 0 || b.weight_row_end() != 0) &&
          (b.weight_row_begin() < 0 || b.weight_row_end() <= b.weight_row_begin() || b.shape_size() == 0 ||
           b.shape(0).constant() != b.weight_row_end() - b.weight_row_begin()))
        return bad(what + " is rows " + std::to_string(b.weight_row_begin()) + ".." +
                   std::to_string(b.weight_row_end()) + " of its tensor, which its shape does not have");
      break;
    }
    case Buffer::ARENA: {
      if (b.offset() % kAlignment != 0)
        return bad(what + " is not 64-byte aligned in the arena");
      // HOST and DEVICE arena buffers are planned into separate arenas.
      const bool onDevice = b.location() == Buffer::DEVICE;
      const uint64_t limit = onDevice ? m.device_arena_bytes() : m.arena_bytes();
      if (end > limit)
        return bad(what + " ends at " + std::to_string(end) + ", past " +
                   (onDevice ? "device_arena_bytes " : "arena_bytes ") + std::to_string(limit));
      break;
    }
    default:
      break;
    }
  }
  const int64_t numKernels = m.kernels_size();
  for (int i = 0; i < m.kernels_size(); ++i)
    if (m.kernels(i).symbol().empty())
      return bad("kernel " + std::to_string(i) + " has no symbol");
  for (int i = 0; i < m.dispatches_size(); ++i) {
    const Dispatch &d = m.dispatches(i);
    std::string what = "dispatch " + std::to_string(i);
    if (d.kernel() < 0 || d.kernel() >= numKernels)
      return bad(what + " uses kernel " + std::to_string(d.kernel()) + " of " + std::to_string(numKernels));
    if (d.buffers_size() == 0)
      return bad(what + " has no buffers");
    for (int32_t id : d.buffers())
      if (!inRange(id))
        return bad(what + " uses " + bufferRef(id) + " of " + std::to_string(numBuffers));
    // The last num_results buffers (0 means 1) are the results: a kernel never writes weights or inputs.
    const bool transfer = d.kind() == Dispatch::TRANSFER;
    if (!transfer && (d.num_results() < 0 || d.num_results() > d.buffers_size()))
      return bad(what + " has " + std::to_string(d.num_results()) + " results among its " +
                 std::to_string(d.buffers_size()) + " buffers");
    const int results = transfer ? 1 : std::max(d.num_results(), 1);
    for (int j = d.buffers_size() - results; j < d.buffers_size(); ++j) {
      const Buffer &result = m.buffers(d.buffers(j));
      if (result.kind() == Buffer::WEIGHT || result.kind() == Buffer::INPUT)
        return bad(what + " writes " + bufferRef(result.id()) + ", a read-only buffer");
    }
  }
  std::set<std::string> names;
  for (int i = 0; i < m.inputs_size(); ++i) {
    const Port &p = m.inputs(i);
    if (!inRange(p.buffer()))
      return bad("input '" + p.name() + "' uses " + bufferRef(p.buffer()));
    Buffer::Kind k = m.buffers(p.buffer()).kind();
    if (k != Buffer::INPUT && k != Buffer::KV_CACHE)
      return bad("input '" + p.name() + "' is not an INPUT or KV_CACHE buffer");
    if (!names.insert(p.name()).second)
      return bad("duplicate port '" + p.name() + "'");
  }
  for (int i = 0; i < m.outputs_size(); ++i) {
    const Port &p = m.outputs(i);
    if (!inRange(p.buffer()))
      return bad("output '" + p.name() + "' uses " + bufferRef(p.buffer()));
    Buffer::Kind k = m.buffers(p.buffer()).kind();
    if (k != Buffer::ARENA && k != Buffer::KV_CACHE)
      return bad("output '" + p.name() + "' is not an ARENA or KV_CACHE buffer");
    if (!names.insert(p.name()).second)
      return bad("duplicate port '" + p.name() + "'");
  }
  for (int i = 0; i < m.kv_cache_size(); ++i) {
    const KvCacheEntry &e = m.kv_cache(i);
    std::string what = "kv_cache entry '" + e.name() + "'";
    if (!inRange(e.past_buffer()) || !inRange(e.present_buffer()))
      return bad(what + " uses a buffer out of range");
    const Buffer &past = m.buffers(e.past_buffer()), &present = m.buffers(e.present_buffer());
    if (past.kind() != Buffer::KV_CACHE || present.kind() != Buffer::KV_CACHE)
      return bad(what + " uses a buffer that is not KV_CACHE");
    if (past.dtype() != present.dtype() || past.shape_size() != present.shape_size())
      return bad(what + ": past and present differ in dtype or rank");
    if (e.seq_axis() < 0 || e.seq_axis() >= past.shape_size())
      return bad(what + " has seq_axis " + std::to_string(e.seq_axis()) + " out of range");
    // In place: past, present (and the appended rows) are views of one storage of `capacity` rows.
    if (!e.in_place()) {
      if (past.row_capacity() != 0 || present.row_capacity() != 0)
        return bad(what + " is not in place but its buffers are strided views");
      continue;
    }
    if (e.capacity() != m.max_context() || e.seq_axis() != 2 || past.shape_size() != 4)
      return bad(what + " is in place with capacity " + std::to_string(e.capacity()) + " along axis " +
                 std::to_string(e.seq_axis()) + " (expected max_context " + std::to_string(m.max_context()) +
                 " along axis 2 of a rank-4 cache)");
    std::vector<int> views = {e.past_buffer(), e.present_buffer()};
    if (e.append_buffer() != -1) {
      if (!inRange(e.append_buffer()) || m.buffers(e.append_buffer()).kind() != Buffer::KV_CACHE)
        return bad(what + " appends through " + bufferRef(e.append_buffer()) + ", not a KV_CACHE buffer");
      views.push_back(e.append_buffer());
    }
    for (int id : views) {
      const Buffer &v = m.buffers(id);
      if (v.row_capacity() != e.capacity() || v.kv_entry() != i || v.shape_size() != 4 ||
          v.dtype() != past.dtype())
        return bad(what + ": " + bufferRef(id) + " is not a rank-4 view of its storage with row_capacity " +
                   std::to_string(e.capacity()));
    }
  }
  // Every strided view belongs to an in-place entry (checked above from the entry's side).
  for (int64_t i = 0; i < numBuffers; ++i) {
    const Buffer &b = m.buffers(int(i));
    if (b.row_capacity() == 0)
      continue;
    if (b.row_capacity() < 0 || b.kind() != Buffer::KV_CACHE || b.kv_entry() < 0 ||
        b.kv_entry() >= m.kv_cache_size() || !m.kv_cache(b.kv_entry()).in_place())
      return bad(bufferRef(i) + " has row_capacity " + std::to_string(b.row_capacity()) +
                 " but is no view of an in-place KV-cache entry");
    for (const Dim::Term &t : b.row_offset().terms())
      if (!symbols.count(t.symbol()) || t.coeff() <= 0)
        return bad(bufferRef(i) + " has a row_offset with an undeclared symbol or a non-positive coefficient");
    if (b.row_offset().constant() < 0)
      return bad(bufferRef(i) + " has a negative row_offset");
  }
  return Status::ok();
}

MappedArtifact::MappedArtifact(MappedArtifact &&o) noexcept { *this = std::move(o); }

MappedArtifact &MappedArtifact::operator=(MappedArtifact &&o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    mapping_ = o.mapping_;
    fileSize_ = o.fileSize_;
    manifest_ = std::move(o.manifest_);
    sections_ = std::move(o.sections_);
    cpuCode_ = o.cpuCode_;
    cpuCodeSize_ = o.cpuCodeSize_;
    weights_ = o.weights_;
    weightsSize_ = o.weightsSize_;
    checksumsVerified_ = o.checksumsVerified_;
    o.mapping_ = nullptr;
    o.fileSize_ = 0;
    o.cpuCode_ = o.weights_ = nullptr;
  }
  return *this;
}

MappedArtifact::~MappedArtifact() { release(); }

void MappedArtifact::release() {
  if (mapping_)
    munmap(mapping_, fileSize_);
  mapping_ = nullptr;
}

StatusOr<MappedArtifact> openArtifact(const std::string &path, bool verifyChecksums) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return err(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return err(path, std::string("cannot stat: ") + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return err(path, "not a regular file");
  }
  const uint64_t size = uint64_t(st.st_size);
  if (size == 0) {
    ::close(fd);
    return err(path, "not a kiln artifact (empty file)");
  }
  void *map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int mapErrno = errno;
  ::close(fd);
  if (map == MAP_FAILED)
    return err(path, std::string("cannot mmap: ") + std::strerror(mapErrno));

  MappedArtifact a;
  a.path_ = path;
  a.mapping_ = map;
  a.fileSize_ = size;
  const uint8_t *base = static_cast<const uint8_t *>(map);

  // Magic first (even on a short file), so that any other file is "not a kiln artifact".
  if (std::memcmp(base, kMagic, std::min<uint64_t>(size, sizeof(kMagic))) != 0)
    return err(path, "not a kiln artifact");
  if (size < sizeof(FileHeader))
    return err(path, "truncated: " + std::to_string(size) + " bytes, the header alone is 64");
  FileHeader header;
  std::memcpy(&header, base, sizeof header);
  if (header.formatVersion != kFormatVersion)
    return err(path, "format version " + std::to_string(header.formatVersion) + ", this runtime reads " +
                         std::to_string(kFormatVersion));
  if (header.sectionTableOffset != sizeof(FileHeader))
    return err(path, "corrupted: section table offset " + std::to_string(header.sectionTableOffset) +
                         " (expected 64)");
  if (header.sectionCount == 0 || header.sectionCount > 64)
    return err(path, "corrupted: section count " + std::to_string(header.sectionCount));
  const uint64_t tableEnd = sizeof(FileHeader) + uint64_t(header.sectionCount) * sizeof(SectionEntry);
  if (tableEnd > size)
    return err(path, "truncated: " + std::to_string(size) + " bytes, the section table ends at " +
                         std::to_string(tableEnd));
  {
    FileHeader zeroed = header;
    zeroed.headerChecksum = 0;
    Xxh64 h;
    h.update(&zeroed, sizeof zeroed);
    h.update(base + sizeof(FileHeader), tableEnd - sizeof(FileHeader));
    if (h.digest() != header.headerChecksum)
      return err(path, "corrupted: header checksum mismatch");
  }
  a.sections_.resize(header.sectionCount);
  std::memcpy(a.sections_.data(), base + sizeof(FileHeader), tableEnd - sizeof(FileHeader));

  const SectionEntry *manifestSec = nullptr, *codeSec = nullptr, *weightsSec = nullptr;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const SectionEntry &s : a.sections_) {
    std::string name = sectionName(s.kind);
    const SectionEntry **slot = nullptr;
    switch (static_cast<SectionKind>(s.kind)) {
    case SectionKind::Manifest: slot = &manifestSec; break;
    case SectionKind::CpuCode: slot = &codeSec; break;
    case SectionKind::Weights: slot = &weightsSec; break;
    }
    if (slot) {
      if (*slot)
        return err(path, "corrupted: two " + name + " sections");
      *slot = &s;
    } // an unknown kind (from a newer minor writer) is bounds-checked and ignored
    uint64_t end;
    if (addOverflows(s.offset, s.size, &end) || end > size)
      return err(path, "truncated: the " + name + " section ends at " +
                           (end < s.offset ? std::string("overflow") : std::to_string(end)) + ", the file has " +
                           std::to_string(size) + " bytes");
    if (s.offset % kAlignment != 0)
      return err(path, "corrupted: the " + name + " section is not 64-byte aligned");
    if (s.offset < tableEnd)
      return err(path, "corrupted: the " + name + " section overlaps the header");
    ranges.push_back({s.offset, end});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second)
      return err(path, "corrupted: sections overlap");
  if (!manifestSec)
    return err(path, "corrupted: no manifest section");
  if (verifyChecksums) {
    for (const SectionEntry &s : a.sections_)
      if (checksum64(base + s.offset, s.size) != s.checksum)
        return err(path, std::string("corrupted: ") + sectionName(s.kind) + " section checksum mismatch");
    a.checksumsVerified_ = true;
  }
  if (manifestSec->size > uint64_t(INT_MAX))
    return err(path, "corrupted: manifest section too large");
  a.manifest_ = std::make_unique<Manifest>();
  if (!a.manifest_->ParseFromArray(base + manifestSec->offset, int(manifestSec->size)))
    return err(path, "corrupted: the manifest does not parse");
  if (codeSec) {
    a.cpuCode_ = base + codeSec->offset;
    a.cpuCodeSize_ = codeSec->size;
  }
  if (weightsSec) {
    a.weights_ = base + weightsSec->offset;
    a.weightsSize_ = weightsSec->size;
  }
  if (Status s = validateManifest(*a.manifest_, a.weightsSize_, path); !s)
    return s;
  return a;
}

} // namespace kiln::artifact
