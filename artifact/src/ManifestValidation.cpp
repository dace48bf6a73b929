//===- ManifestValidation.cpp - validateManifest ----------------------------===//
//
// The manifest's internal consistency, checked by the writer before it writes and by the reader before
// anything indexes a buffer, kernel or weight. Each check is one line naming the file and the entry.
//
//===----------------------------------------------------------------------===//
#include "kiln/artifact/ArtifactFormat.h"
#include "kiln/artifact/ArtifactReader.h"
#include "kiln/artifact/ArtifactWriter.h"
#include "kiln/artifact/DType.h"
#include "kiln/support/Quantize.h"
#include "kiln/artifact/SymbolicDim.h"
#include "kiln/support/Util.h"

#include <algorithm>
#include <set>

namespace kiln::artifact {
namespace {

bool addOverflows(uint64_t a, uint64_t b, uint64_t *out) { return __builtin_add_overflow(a, b, out); }

std::string bufferRef(int64_t id) { return "buffer " + std::to_string(id); }

// Names end up in one-line messages (and C strings): no control characters, NUL and newlines included.
bool printable(const std::string &s) {
  return std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// A name from the manifest for a message: quoted, or described when it is not printable.
std::string quoted(const std::string &s) { return printable(s) ? "'" + s + "'" : "(a name with a control character)"; }

class Validator {
public:
  Validator(const Manifest &m, uint64_t storedWeightsSize, const std::string &file)
      : m_(m), file_(file), storedWeightsSize_(storedWeightsSize),
        weightsSize_(m.synthetic_weights() ? weightsSectionSize(m) : storedWeightsSize) {}

  Status run() {
    Status s = modelFacts();
    for (int i = 0; s && i < m_.symbols_size(); ++i)
      s = symbol(i);
    for (int i = 0; s && i < m_.buffers_size(); ++i)
      s = buffer(i);
    for (int i = 0; s && i < m_.kernels_size(); ++i)
      s = kernel(i);
    for (int i = 0; s && i < m_.dispatches_size(); ++i)
      s = dispatch(i);
    if (s)
      s = ports();
    std::vector<int> owner(size_t(m_.buffers_size()), -1); // KV_CACHE buffer -> its entry
    for (int i = 0; s && i < m_.kv_cache_size(); ++i)
      s = kvEntry(i, owner);
    for (int i = 0; s && i < m_.buffers_size(); ++i)
      s = kvBuffer(i, owner);
    return s;
  }

private:
  Status bad(const std::string &what) const { return Status::error(support::oneLine(file_ + ": manifest: " + what)); }
  bool inRange(int64_t id) const { return id >= 0 && id < m_.buffers_size(); }
  std::string describe(int64_t id) const {
    const std::string &name = m_.buffers(int(id)).name();
    return bufferRef(id) + (name.empty() ? "" : " (" + name + ")");
  }

  Status modelFacts() const {
    if (m_.max_context() <= 0)
      return bad("max_context " + std::to_string(m_.max_context()) + " is not positive");
    if (m_.max_batch() <= 0)
      return bad("max_batch " + std::to_string(m_.max_batch()) + " is not positive");
    if (m_.num_threads_default() < 0)
      return bad("num_threads_default is negative");
    if (!printable(m_.architecture()))
      return bad("the architecture has a control character");
    if (m_.task() != "causal-lm" && m_.task() != "encoder")
      return bad("unknown task " + quoted(m_.task()) + " (expected causal-lm or encoder)");
    if (m_.vocab_size() <= 0 || m_.hidden_size() <= 0)
      return bad("vocab_size " + std::to_string(m_.vocab_size()) + " and hidden_size " +
                 std::to_string(m_.hidden_size()) + " must be positive");
    return Status::ok();
  }

  Status symbol(int i) {
    const Symbol &s = m_.symbols(i);
    if (s.name().empty() || !printable(s.name()))
      return bad("symbol " + std::to_string(i) + " has no name or one with a control character");
    if (i > 0 && !(m_.symbols(i - 1).name() < s.name()))
      return bad("symbols are not sorted and unique at '" + s.name() + "'");
    if (s.max_value() < 0)
      return bad("symbol '" + s.name() + "' has max_value " + std::to_string(s.max_value()));
    symbols_.insert(s.name());
    return Status::ok();
  }

  // A dim of a shape or a row offset: a non-negative constant plus positive multiples of declared symbols.
  Status shapeDim(const Dim &d, const std::string &what) const {
    if (d.constant() < 0)
      return bad(what + " has a negative dim constant");
    for (const Dim::Term &t : d.terms()) {
      if (!symbols_.count(t.symbol()))
        return bad(what + " uses undeclared symbol " + quoted(t.symbol()));
      if (t.coeff() <= 0)
        return bad(what + " has a non-positive coefficient of " + quoted(t.symbol()));
    }
    return Status::ok();
  }

  Status buffer(int i) const {
    const Buffer &b = m_.buffers(i);
    if (!printable(b.name()))
      return bad(bufferRef(i) + " has a name with a control character");
    const std::string what = describe(i);
    if (b.id() != i)
      return bad(what + " has id " + std::to_string(b.id()) + " (ids must equal their index)");
    if (b.kind() != Buffer::ARENA && b.kind() != Buffer::WEIGHT && b.kind() != Buffer::INPUT &&
        b.kind() != Buffer::KV_CACHE)
      return bad(what + " has no valid kind");
    if (dtypeBytes(b.dtype()) == 0 && !(isQuantized(b.dtype()) && b.kind() == Buffer::WEIGHT))
      return bad(what + " has no valid dtype" + (isQuantized(b.dtype()) ? " (Q8_0 / Q4_0 are for WEIGHT buffers)" : ""));
    if (isQuantized(b.dtype()) != !b.weight_layout().empty() ||
        (isQuantized(b.dtype()) && b.weight_layout() != kQuantLayout))
      return bad(what + " has weight_layout '" + b.weight_layout() + "' for dtype " + dtypeName(b.dtype()) +
                 " (Q8_0 / Q4_0 take '" + kQuantLayout + "', other dtypes none)");
    if (b.location() != Buffer::HOST && b.location() != Buffer::DEVICE)
      return bad(what + " has no valid location");
    bool constantShape = true;
    uint64_t elements = 1;
    for (const Dim &d : b.shape()) {
      if (Status s = shapeDim(d, what); !s)
        return s;
      if (d.terms_size() != 0)
        constantShape = false;
      else if (__builtin_mul_overflow(elements, uint64_t(d.constant()), &elements))
        return bad(what + " is too large");
    }
    uint64_t end;
    if (addOverflows(b.offset(), b.max_bytes(), &end))
      return bad(what + " offset + max_bytes overflows");
    switch (b.kind()) {
    case Buffer::WEIGHT:
      if (!constantShape)
        return bad(what + " is a WEIGHT with a symbolic shape");
      return weight(b, what, elements, end);
    case Buffer::ARENA: {
      if (b.offset() % kAlignment != 0)
        return bad(what + " is not 64-byte aligned in the arena");
      // HOST and DEVICE arena buffers are planned into separate arenas.
      const bool onDevice = b.location() == Buffer::DEVICE;
      const uint64_t limit = onDevice ? m_.device_arena_bytes() : m_.arena_bytes();
      if (end > limit)
        return bad(what + " ends at " + std::to_string(end) + ", past " +
                   (onDevice ? "device_arena_bytes " : "arena_bytes ") + std::to_string(limit));
      return Status::ok();
    }
    case Buffer::INPUT:
      if (b.location() != Buffer::HOST)
        return bad(what + " is an INPUT on the DEVICE (inputs are HOST; a TRANSFER copies them)");
      return Status::ok();
    default:
      return Status::ok();
    }
  }

  Status weight(const Buffer &b, const std::string &what, uint64_t elements, uint64_t end) const {
    const bool synthetic = m_.synthetic_weights();
    if (isQuantized(b.dtype()) && (b.shape_size() != 2 || b.shape(1).constant() % kQuantBlock != 0 ||
                                   b.shape(1).constant() <= 0))
      return bad(what + " is " + dtypeName(b.dtype()) + " but not a matrix whose last dim is a multiple of 32");
    const uint64_t lastDim = b.shape_size() ? uint64_t(b.shape(b.shape_size() - 1).constant()) : 1;
    const uint64_t bytes = storageBytes(b.dtype(), elements, lastDim);
    if ((bytes == 0 && elements != 0) || bytes != b.max_bytes())
      return bad(what + " has max_bytes " + std::to_string(b.max_bytes()) + ", its shape needs " +
                 std::to_string(bytes));
    if (b.offset() % kAlignment != 0)
      return bad(what + " is not 64-byte aligned in the weights section");
    if (end > weightsSize_)
      return bad(what + " ends at " + std::to_string(end) + ", past the weights section (" +
                 std::to_string(weightsSize_) + " bytes)");
    if (b.synthetic() && !synthetic)
      return bad(what + " is synthetic in a manifest without synthetic_weights");
    if (synthetic && !b.synthetic()) {
      uint64_t storedEnd;
      if (b.stored_offset() % kAlignment != 0)
        return bad(what + " is not 64-byte aligned in the stored weights section");
      if (addOverflows(b.stored_offset(), b.max_bytes(), &storedEnd) || storedEnd > storedWeightsSize_)
        return bad(what + " is stored past the weights section (" + std::to_string(storedWeightsSize_) + " bytes)");
    }
    if (b.synthetic() && b.dtype() != F32 && b.dtype() != F16 && b.dtype() != BF16 && !isQuantized(b.dtype()))
      return bad(what + " is synthetic but not f32, f16, bf16, q8_0 or q4_0");
    if ((b.weight_row_begin() != 0 || b.weight_row_end() != 0) &&
        (b.weight_row_begin() < 0 || b.weight_row_end() <= b.weight_row_begin() || b.shape_size() == 0 ||
         b.shape(0).constant() != b.weight_row_end() - b.weight_row_begin()))
      return bad(what + " is rows " + std::to_string(b.weight_row_begin()) + ".." +
                 std::to_string(b.weight_row_end()) + " of its tensor, which its shape does not have");
    return Status::ok();
  }

  Status kernel(int i) const {
    const Kernel &k = m_.kernels(i);
    const std::string what = "kernel " + std::to_string(i);
    if (k.symbol().empty() || !printable(k.symbol()) || !printable(k.op()))
      return bad(what + " has no symbol, or a symbol or op with a control character");
    for (const Dim &d : k.global_size())
      for (const Dim::Term &t : d.terms())
        if (!symbols_.count(t.symbol()))
          return bad(what + " '" + k.symbol() + "' has a global_size with undeclared symbol " + quoted(t.symbol()));
    // A shared SPIR-V module: an earlier kernel's own (Kernel.spirv_from), and no bytes of its own.
    const int64_t from = int64_t(k.spirv_from()) - 1;
    if (k.spirv_from() != 0 &&
        (!k.spirv().empty() || from < 0 || from >= i || m_.kernels(int(from)).spirv_from() != 0))
      return bad(what + " '" + k.symbol() + "' has spirv_from " + std::to_string(k.spirv_from()) +
                 ", which does not name an earlier kernel with its own module (and spirv must then be empty)");
    return Status::ok();
  }

  Status dispatch(int i) const {
    const Dispatch &d = m_.dispatches(i);
    const std::string what = "dispatch " + std::to_string(i);
    if (!printable(d.location()) || !printable(d.device()))
      return bad(what + " has a location or device with a control character");
    const int64_t numKernels = m_.kernels_size();
    if (d.kernel() < 0 || d.kernel() >= numKernels)
      return bad(what + " uses kernel " + std::to_string(d.kernel()) + " of " + std::to_string(numKernels));
    if (d.kind() != Dispatch::KERNEL && d.kind() != Dispatch::TRANSFER)
      return bad(what + " has no valid kind");
    if (Status s = smallRowsKernel(d, what); !s)
      return s;
    if (d.buffers_size() == 0)
      return bad(what + " has no buffers");
    for (int32_t id : d.buffers())
      if (!inRange(id))
        return bad(what + " uses " + bufferRef(id) + " of " + std::to_string(m_.buffers_size()));
    // The last num_results buffers (0 means 1) are the results: a kernel never writes weights or inputs.
    const bool transfer = d.kind() == Dispatch::TRANSFER;
    if (!transfer && (d.num_results() < 0 || d.num_results() > d.buffers_size()))
      return bad(what + " has " + std::to_string(d.num_results()) + " results among its " +
                 std::to_string(d.buffers_size()) + " buffers");
    const int results = transfer ? 1 : std::max(d.num_results(), 1);
    for (int j = d.buffers_size() - results; j < d.buffers_size(); ++j) {
      const Buffer &result = m_.buffers(d.buffers(j));
      if (result.kind() == Buffer::WEIGHT || result.kind() == Buffer::INPUT)
        return bad(what + " writes " + bufferRef(result.id()) + ", a read-only buffer");
    }
    return transfer ? transferDispatch(d, what) : Status::ok();
  }

  // Dispatch.small_rows_kernel: another Vulkan kernel of the same op, chosen by a row count in the symbols.
  Status smallRowsKernel(const Dispatch &d, const std::string &what) const {
    if (d.small_rows_kernel() == 0)
      return Status::ok();
    const int64_t alt = int64_t(d.small_rows_kernel()) - 1;
    if (alt < 0 || alt >= m_.kernels_size() || d.kind() != Dispatch::KERNEL || d.device() != "vulkan" ||
        m_.kernels(int(alt)).op() != m_.kernels(d.kernel()).op() || d.small_rows_max() < 1)
      return bad(what + " has small_rows_kernel " + std::to_string(d.small_rows_kernel()) + " (max rows " +
                 std::to_string(d.small_rows_max()) + "), which does not name a Vulkan kernel of the same op");
    if (Status s = shapeDim(d.small_rows(), what + " small_rows"); !s)
      return s;
    return Status::ok();
  }

  Status transferDispatch(const Dispatch &d, const std::string &what) const {
    if (d.buffers_size() != 2)
      return bad(what + " (" + d.location() + "): a TRANSFER needs [source, destination]");
    const Buffer &a = m_.buffers(d.buffers(0)), &b = m_.buffers(d.buffers(1));
    if (a.location() == b.location())
      return bad(what + " (" + d.location() + "): a TRANSFER from '" + a.name() + "' to '" + b.name() +
                 "' must go between HOST and DEVICE");
    bool sameShape = a.dtype() == b.dtype() && a.shape_size() == b.shape_size();
    for (int k = 0; sameShape && k < a.shape_size(); ++k) {
      StatusOr<SymbolicDim> x = decodeDim(a.shape(k), m_.symbols()), y = decodeDim(b.shape(k), m_.symbols());
      sameShape = x.ok() && y.ok() && *x == *y;
    }
    if (!sameShape)
      return bad(what + " (" + d.location() + "): TRANSFER '" + a.name() + "' -> '" + b.name() +
                 "' changes dtype or shape");
    return Status::ok();
  }

  Status port(const Port &p, bool input, std::set<std::string> &names) const {
    const char *side = input ? "input '" : "output '";
    if (!printable(p.name()))
      return bad(std::string(input ? "an input" : "an output") + " has a name with a control character");
    if (!inRange(p.buffer()))
      return bad(side + p.name() + "' uses " + bufferRef(p.buffer()));
    Buffer::Kind k = m_.buffers(p.buffer()).kind();
    if (input && k != Buffer::INPUT && k != Buffer::KV_CACHE)
      return bad(side + p.name() + "' is not an INPUT or KV_CACHE buffer");
    if (!input && k != Buffer::ARENA && k != Buffer::KV_CACHE)
      return bad(side + p.name() + "' is not an ARENA or KV_CACHE buffer");
    if (!names.insert(p.name()).second)
      return bad("duplicate port '" + p.name() + "'");
    return Status::ok();
  }

  Status ports() const {
    std::set<std::string> names;
    for (const Port &p : m_.inputs())
      if (Status s = port(p, true, names); !s)
        return s;
    for (const Port &p : m_.outputs())
      if (Status s = port(p, false, names); !s)
        return s;
    return Status::ok();
  }

  // Claims `id` for entry `e` (a KV_CACHE buffer belongs to one entry, as its past, present or append).
  Status claim(int id, int e, std::vector<int> &owner, const std::string &what) const {
    if (!inRange(id))
      return bad(what + " uses a buffer out of range");
    if (m_.buffers(id).kind() != Buffer::KV_CACHE)
      return bad(what + " uses " + describe(id) + ", a buffer that is not KV_CACHE");
    if (owner[size_t(id)] >= 0)
      return bad(what + " uses " + describe(id) + ", already a buffer of entry " + std::to_string(owner[size_t(id)]));
    owner[size_t(id)] = e;
    return Status::ok();
  }

  Status kvEntry(int i, std::vector<int> &owner) const {
    const KvCacheEntry &e = m_.kv_cache(i);
    if (!printable(e.name()))
      return bad("kv_cache entry " + std::to_string(i) + " has a name with a control character");
    const std::string what = "kv_cache entry '" + e.name() + "'";
    if (Status s = claim(e.past_buffer(), i, owner, what); !s)
      return s;
    if (Status s = claim(e.present_buffer(), i, owner, what); !s)
      return s;
    const Buffer &past = m_.buffers(e.past_buffer()), &present = m_.buffers(e.present_buffer());
    if (past.dtype() != present.dtype() || past.shape_size() != present.shape_size())
      return bad(what + ": past and present differ in dtype or rank");
    if (past.location() != present.location())
      return bad(what + ": past and present are in different locations (HOST and DEVICE)");
    if (e.seq_axis() < 0 || e.seq_axis() >= past.shape_size())
      return bad(what + " has seq_axis " + std::to_string(e.seq_axis()) + " out of range");
    // In place: past, present (and the appended rows) are views of one storage of `capacity` rows.
    if (!e.in_place()) {
      if (past.row_capacity() != 0 || present.row_capacity() != 0)
        return bad(what + " is not in place but its buffers are strided views");
      return Status::ok();
    }
    if (e.capacity() != m_.max_context() || e.seq_axis() != 2 || past.shape_size() != 4)
      return bad(what + " is in place with capacity " + std::to_string(e.capacity()) + " along axis " +
                 std::to_string(e.seq_axis()) + " (expected max_context " + std::to_string(m_.max_context()) +
                 " along axis 2 of a rank-4 cache)");
    std::vector<int> views = {e.past_buffer(), e.present_buffer()};
    if (e.append_buffer() != -1) {
      if (!inRange(e.append_buffer()) || m_.buffers(e.append_buffer()).kind() != Buffer::KV_CACHE)
        return bad(what + " appends through " + bufferRef(e.append_buffer()) + ", not a KV_CACHE buffer");
      if (Status s = claim(e.append_buffer(), i, owner, what); !s)
        return s;
      views.push_back(e.append_buffer());
    }
    for (int id : views) {
      const Buffer &v = m_.buffers(id);
      if (v.row_capacity() != e.capacity() || v.kv_entry() != i || v.shape_size() != 4 || v.dtype() != past.dtype() ||
          v.location() != past.location() || v.shape(1).terms_size() != 0 || v.shape(3).terms_size() != 0)
        return bad(what + ": " + bufferRef(id) + " is not a rank-4 view [b, h, rows, d] of its storage with row_capacity " +
                   std::to_string(e.capacity()));
    }
    return Status::ok();
  }

  // Every KV_CACHE buffer is in an entry; every strided view belongs to an in-place one (checked above from
  // the entry's side).
  Status kvBuffer(int i, const std::vector<int> &owner) const {
    const Buffer &b = m_.buffers(i);
    if (b.kind() == Buffer::KV_CACHE && owner[size_t(i)] < 0)
      return bad(describe(i) + " is KV_CACHE but in no kv_cache entry");
    if (b.row_capacity() == 0)
      return Status::ok();
    if (b.row_capacity() < 0 || b.kind() != Buffer::KV_CACHE || b.kv_entry() < 0 ||
        b.kv_entry() >= m_.kv_cache_size() || !m_.kv_cache(b.kv_entry()).in_place())
      return bad(bufferRef(i) + " has row_capacity " + std::to_string(b.row_capacity()) +
                 " but is no view of an in-place KV-cache entry");
    for (const Dim::Term &t : b.row_offset().terms())
      if (!symbols_.count(t.symbol()) || t.coeff() <= 0)
        return bad(bufferRef(i) + " has a row_offset with an undeclared symbol or a non-positive coefficient");
    if (b.row_offset().constant() < 0)
      return bad(bufferRef(i) + " has a negative row_offset");
    return Status::ok();
  }

  const Manifest &m_;
  const std::string &file_;
  const uint64_t storedWeightsSize_;
  // Synthetic weights: WEIGHT buffers live in the region the runtime allocates (weightsSectionSize), the
  // stored (non-synthetic) ones also at stored_offset in the WEIGHTS section. Otherwise the section is the
  // region.
  const uint64_t weightsSize_;
  std::set<std::string> symbols_;
};

} // namespace

Status validateManifest(const Manifest &manifest, uint64_t storedWeightsSize, const std::string &file) {
  return Validator(manifest, storedWeightsSize, file).run();
}

} // namespace kiln::artifact
