//===- LoadedPlan.cpp - decoding the manifest once -------------------------===//
#include "LoadedPlan.h"

#include "kiln/artifact/DType.h"
#include "kiln/support/Util.h"

#include <algorithm>
#include <limits>

namespace kiln::runtime {

namespace art = kiln::artifact;

uint64_t PlanBuffer::bytesAt(const int64_t *symbols) const {
  if (art::isQuantized(dtype)) // a q8_0 / q4_0 weight matrix: constant shape, its blocks' bytes
    return maxBytes;
  uint64_t n = elemBytes;
  for (const SymbolicDim &d : shape) {
    const int64_t v = d.eval(symbols);
    n *= v > 0 ? static_cast<uint64_t>(v) : 0;
  }
  return n;
}

void PlanBuffer::shapeAt(const int64_t *symbols, std::vector<int64_t> &out) const {
  out.clear();
  for (const SymbolicDim &d : shape)
    out.push_back(d.eval(symbols));
}

std::string LoadedPlan::deviceExecutor() const {
  for (const std::string &e : executors)
    if (e != kHostExecutor)
      return e;
  return "";
}

namespace {

class PlanBuilder {
public:
  PlanBuilder(const art::Manifest &m, const std::string &path) : m_(m) { p_.path = path; }

  StatusOr<LoadedPlan> build(const std::string &defaultDevice) {
    Status s = facts();
    if (s)
      s = symbols();
    for (int i = 0; s && i < m_.buffers_size(); ++i)
      s = buffer(i);
    for (int i = 0; s && i < m_.kv_cache_size(); ++i)
      s = kvEntry(i);
    for (int i = 0; s && i < m_.kernels_size(); ++i)
      s = kernel(i);
    if (s)
      s = dispatches(defaultDevice);
    if (s)
      s = inputs();
    if (s)
      s = outputs();
    if (!s)
      return s;
    return std::move(p_);
  }

private:
  Status bad(const std::string &what) const { return Status::error(support::oneLine(p_.path + ": " + what)); }
  std::string describe(int id) const {
    const std::string &name = m_.buffers(id).name();
    return "buffer " + std::to_string(id) + (name.empty() ? "" : " ('" + name + "')");
  }

  Status facts() {
    p_.task = m_.task();
    p_.architecture = m_.architecture();
    p_.vocabSize = m_.vocab_size();
    p_.hiddenSize = m_.hidden_size();
    p_.maxContext = m_.max_context();
    p_.maxBatch = m_.max_batch();
    p_.numThreadsDefault = m_.num_threads_default();
    p_.arenaBytes = m_.arena_bytes();
    p_.deviceArenaBytes = m_.device_arena_bytes();
    p_.deviceProfileJson = m_.device_profile_json();
    return Status::ok();
  }

  Status symbols() {
    for (const art::Symbol &sym : m_.symbols()) {
      const std::string &n = sym.name();
      const int role = n == "b"   ? int(SymbolRole::Batch)
                       : n == "s" ? int(SymbolRole::Seq)
                       : n == "p" ? int(SymbolRole::Past)
                       : n == "r" ? int(SymbolRole::LogitsRows)
                                  : -1;
      if (role < 0)
        return bad("unknown symbol '" + n + "' (the runtime knows b, s, p, r)");
      p_.symbolIndex[role] = int(p_.symbols.size()); // each name once: validateManifest
      p_.symbols.push_back({n, SymbolRole(role), sym.max_value()});
      p_.symbolMax.push_back(sym.max_value());
    }
    return Status::ok();
  }

  // `dim` decoded, with |value| bounded in int64 at the symbols' max values; `bytes`, when given, multiplied
  // by that bound (overflow: false).
  bool decode(const art::Dim &dim, SymbolicDim &out, uint64_t *bytes = nullptr) const {
    StatusOr<SymbolicDim> d = art::decodeDim(dim, m_.symbols());
    int64_t bound = 0;
    if (!d.ok() || !d->bound(p_.symbolMax, bound))
      return false;
    out = std::move(*d);
    return !bytes || !__builtin_mul_overflow(*bytes, uint64_t(bound), bytes);
  }

  Status buffer(int i) {
    const art::Buffer &b = m_.buffers(i);
    PlanBuffer pb;
    pb.id = i;
    pb.name = b.name();
    pb.kind = b.kind();
    pb.dtype = b.dtype();
    pb.elemBytes = art::isQuantized(b.dtype()) ? 1 : art::dtypeBytes(b.dtype());
    pb.offset = b.offset();
    pb.maxBytes = b.max_bytes();
    pb.device = b.location() == art::Buffer::DEVICE;
    uint64_t bytes = pb.elemBytes;
    for (const art::Dim &d : b.shape()) {
      pb.shape.emplace_back();
      if (!decode(d, pb.shape.back(), &bytes))
        return bad(describe(i) + ": its shape overflows at the symbols' max values");
    }
    pb.rowCapacity = b.row_capacity();
    if (pb.rowCapacity > 0 && !decode(b.row_offset(), pb.rowOffset))
      return bad(describe(i) + ": its row_offset overflows at the symbols' max values");
    p_.buffers.push_back(std::move(pb));
    return Status::ok();
  }

  Status kvEntry(int i) {
    const art::KvCacheEntry &e = m_.kv_cache(i);
    PlanKvEntry k;
    k.name = e.name();
    k.past = e.past_buffer();
    k.present = e.present_buffer();
    k.inPlace = e.in_place();
    k.append = e.in_place() ? e.append_buffer() : -1;
    for (int id : {k.past, k.present, k.append})
      if (id >= 0)
        p_.buffers[size_t(id)].kvEntry = i;
    p_.buffers[size_t(k.present)].kvPresent = true;
    const PlanBuffer &past = p_.buffers[size_t(k.past)], &present = p_.buffers[size_t(k.present)];
    k.device = past.device;
    k.bytes = std::max(past.maxBytes, present.maxBytes);
    if (k.inPlace) {
      // One storage [max_batch, h, capacity, d] that past, present and the appended rows view (rank 4, h and
      // d constant: validateManifest).
      k.capacity = e.capacity();
      std::vector<int64_t> atMaxBatch(p_.symbols.size(), 0);
      if (p_.symbolIndex[int(SymbolRole::Batch)] >= 0)
        atMaxBatch[size_t(p_.symbolIndex[int(SymbolRole::Batch)])] = p_.maxBatch;
      int64_t rows = 0; // dim 0 at b = max_batch (its coefficients are positive: the bound is the value)
      uint64_t bytes = present.elemBytes;
      bool fits = present.shape[0].bound(atMaxBatch, rows);
      for (int64_t f : {rows, present.shape[1].constant, k.capacity, present.shape[3].constant})
        fits = fits && f >= 0 && !__builtin_mul_overflow(bytes, uint64_t(f), &bytes);
      if (!fits)
        return bad("kv_cache entry '" + k.name + "' is in place but its storage [b, h, capacity, d] overflows");
      k.bytes = bytes;
    }
    p_.kv.push_back(std::move(k));
    if (p_.symbolIndex[int(SymbolRole::Past)] < 0)
      return bad("kv_cache entry '" + e.name() + "' without the symbol p");
    return Status::ok();
  }

  Status kernel(int i) {
    const art::Kernel &k = m_.kernels(i);
    PlanKernel pk;
    pk.symbol = k.symbol();
    pk.op = k.op();
    pk.signature = k.signature();
    pk.spirv = k.spirv_from() > 0 ? &m_.kernels(k.spirv_from() - 1).spirv() : &k.spirv();
    for (int a = 0; a < 3; ++a) {
      if (a < k.workgroup_size_size() && k.workgroup_size(a) > 0)
        pk.workgroupSize[a] = k.workgroup_size(a);
      if (a < k.global_size_size() && !decode(k.global_size(a), pk.globalSize[a]))
        return bad("kernel " + std::to_string(i) + " '" + k.symbol() + "': global_size " + std::to_string(a) +
                   " overflows at the symbols' max values");
    }
    pk.sharedMemoryBytes = k.shared_memory_bytes();
    pk.specialization.assign(k.specialization().begin(), k.specialization().end());
    pk.symbolsInUniform = k.symbols_in_uniform();
    p_.kernels.push_back(std::move(pk));
    return Status::ok();
  }

  int executorIndex(const std::string &name) {
    auto it = std::find(p_.executors.begin(), p_.executors.end(), name);
    if (it != p_.executors.end())
      return int(it - p_.executors.begin());
    p_.executors.push_back(name);
    return int(p_.executors.size()) - 1;
  }

  // The host executor takes HOST buffers, the device executor DEVICE ones (TRANSFERs: one of each).
  Status placement(const art::Dispatch &d, int i, bool host) const {
    if (d.kind() == art::Dispatch::TRANSFER)
      return host ? bad("dispatch " + std::to_string(i) + " (" + d.location() +
                        ") is a TRANSFER on the CPU (the device executor copies between host and device)")
                  : Status::ok();
    for (int id : d.buffers()) {
      const PlanBuffer &b = p_.buffers[size_t(id)];
      if (b.device == host)
        return bad("dispatch " + std::to_string(i) + " (" + d.location() + ") runs on " +
                   (host ? std::string("the CPU") : d.device()) + " but uses the " + (host ? "DEVICE" : "HOST") +
                   " buffer '" + b.name + "'" + (host ? "" : " (a TRANSFER must copy it)"));
    }
    return Status::ok();
  }

  Status dispatches(const std::string &defaultDevice) {
    std::string device;
    for (int i = 0; i < m_.dispatches_size(); ++i) {
      const art::Dispatch &d = m_.dispatches(i);
      const std::string name = d.device().empty() ? kHostExecutor : d.device();
      const bool host = name == kHostExecutor;
      if (!host && !device.empty() && name != device)
        return bad("dispatch " + std::to_string(i) + " (" + d.location() + ") runs on '" + name + "', another on '" +
                   device + "': one artifact drives one device");
      if (!host)
        device = name;
      if (Status s = placement(d, i, host); !s)
        return s;
      PlanDispatch pd;
      pd.transfer = d.kind() == art::Dispatch::TRANSFER;
      pd.kernel = pd.transfer ? -1 : d.kernel();
      pd.executor = executorIndex(name);
      pd.firstBuffer = uint32_t(p_.dispatchBuffers.size());
      pd.numBuffers = uint32_t(d.buffers_size());
      pd.numResults = pd.transfer ? 1 : std::max(d.num_results(), 1);
      pd.location = d.location();
      if (d.small_rows_kernel() > 0) { // validated: a Vulkan kernel of the same op
        pd.smallRowsKernel = d.small_rows_kernel() - 1;
        pd.smallRowsMax = d.small_rows_max();
        if (!decode(d.small_rows(), pd.smallRows))
          return bad("dispatch " + std::to_string(i) + " (" + d.location() + "): small_rows overflows");
      }
      p_.dispatchBuffers.insert(p_.dispatchBuffers.end(), d.buffers().begin(), d.buffers().end());
      if (p_.segments.empty() || p_.segments.back().executor != pd.executor)
        p_.segments.push_back({pd.executor, i, i});
      p_.segments.back().end = i + 1;
      p_.dispatches.push_back(std::move(pd));
    }
    p_.usesDevice = !device.empty() || std::any_of(p_.buffers.begin(), p_.buffers.end(),
                                                   [](const PlanBuffer &b) { return b.device; });
    if (p_.usesDevice && device.empty()) {
      if (defaultDevice.empty())
        return bad("DEVICE buffers, but this runtime has no device executor");
      executorIndex(defaultDevice); // it holds the DEVICE buffers (weights uploaded at load)
    }
    return Status::ok();
  }

  Status inputs() {
    for (const art::Port &port : m_.inputs()) {
      const PlanBuffer &b = p_.buffers[size_t(port.buffer())];
      if (b.kind == art::Buffer::KV_CACHE)
        continue; // past_*: the session's business
      if (b.shape.size() != 2 || (b.dtype != art::I64 && b.dtype != art::I32))
        return bad("input '" + port.name() + "' must be I64 or I32 [b, s]");
      if (port.name() == "input_ids")
        p_.inputIds = port.buffer();
      else if (port.name() == "attention_mask")
        p_.attentionMask = port.buffer();
      else
        return bad("unsupported input '" + port.name() + "' (the runtime supplies input_ids and attention_mask)");
      p_.inputNames.push_back(port.name());
    }
    if (p_.inputIds < 0)
      return bad("the step function has no input_ids input");
    return Status::ok();
  }

  Status outputs() {
    for (const art::Port &port : m_.outputs()) {
      const PlanBuffer &b = p_.buffers[size_t(port.buffer())];
      if (b.kind == art::Buffer::KV_CACHE)
        continue; // present_*: the session's business
      // The model facts and the outputs agree (a causal LM's logits end in the vocabulary, an encoder's hidden
      // states in the hidden size).
      const bool logits = port.name() == "logits", hidden = port.name() == "last_hidden_state";
      const int64_t expect = logits ? p_.vocabSize : p_.hiddenSize;
      if ((logits || hidden) && !b.shape.empty() && b.shape.back().isConstant() && b.shape.back().constant != expect)
        return bad("output '" + port.name() + "' ends in " + std::to_string(b.shape.back().constant) + ", not the " +
                   (logits ? "vocab_size " : "hidden_size ") + std::to_string(expect));
      p_.outputNames.push_back(port.name());
      p_.outputBuffers.push_back(port.buffer());
    }
    if (p_.outputNames.empty())
      return bad("the step function has no outputs");
    return Status::ok();
  }

  const art::Manifest &m_;
  LoadedPlan p_;
};

} // namespace

StatusOr<LoadedPlan> buildLoadedPlan(const art::Manifest &manifest, const std::string &path,
                                     const std::string &defaultDevice) {
  return PlanBuilder(manifest, path).build(defaultDevice);
}

} // namespace kiln::runtime
