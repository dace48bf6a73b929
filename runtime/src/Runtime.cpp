//===- Runtime.cpp - the kiln C API: models, sessions, the CPU executor ----===//
//
// Load: open (mmap) the artifact, validate the manifest against itself and the file (every id in range,
// every symbol known, every arena / weight range inside its region), dlopen the code section, resolve
// every kernel. Session: allocate the arena and every KV-cache buffer once: one buffer of capacity rows for
// an in-place entry (past, present and the appended rows are views of it), both halves of any other. Run:
// evaluate the symbols, check the inputs, point every buffer, call the dispatches in order, swap the KV
// halves of the entries that are not in place.
//
//===----------------------------------------------------------------------===//
#include "kiln/kiln.h"
#include "kiln/kernel_abi.h"

#include "ArtifactSource.h"
#include "CodeLoader.h"
#include "vulkan/VulkanExecutor.h"
#include "kiln/vulkan/kiln_vulkan.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <functional>
#include <limits>
#include <mutex>
#include <map>
#include <new>
#include <string>
#include <vector>

extern "C" void openblas_set_num_threads(int num_threads);

namespace art = kiln::artifact;

namespace {

thread_local std::string tlsLastError;

constexpr int kSymB = 0, kSymS = 1, kSymP = 2, kNumSym = 3;

struct DimExpr {
  int64_t constant = 0;
  int64_t coeff[kNumSym] = {0, 0, 0};
  int64_t eval(const int64_t *v) const { return constant + coeff[0] * v[0] + coeff[1] * v[1] + coeff[2] * v[2]; }
  bool isConstant() const { return coeff[0] == 0 && coeff[1] == 0 && coeff[2] == 0; }
};

struct BufferInfo {
  art::Buffer::Kind kind = art::Buffer::KIND_UNSPECIFIED;
  art::DType dtype = art::DTYPE_UNSPECIFIED;
  size_t elemSize = 0;
  std::vector<DimExpr> dims;
  uint64_t offset = 0;
  uint64_t maxBytes = 0;
  std::string name;
  int kvEntry = -1;     // KV_CACHE: the entry
  bool kvPresent = false; // KV_CACHE: the present (written) half
  int64_t rowCapacity = 0; // KV_CACHE of an in-place entry: a view, rows along axis 2 this far apart
  DimExpr rowOffset;       // ... starting at this row of the storage
  bool device = false;    // Location DEVICE: lives on the Vulkan device (the Vulkan executor's business)
};

size_t dtypeSize(art::DType t) {
  switch (t) {
  case art::F32:
  case art::I32:
    return 4;
  case art::F16:
  case art::BF16:
    return 2;
  case art::I64:
    return 8;
  case art::I8:
  case art::U8:
  case art::I1:
    return 1;
  default:
    return 0;
  }
}

const char *dtypeName(art::DType t) {
  switch (t) {
  case art::F32: return "F32";
  case art::F16: return "F16";
  case art::BF16: return "BF16";
  case art::I64: return "I64";
  case art::I32: return "I32";
  case art::I8: return "I8";
  case art::U8: return "U8";
  case art::I1: return "I1";
  default: return "unspecified";
  }
}

void *alignedAlloc(uint64_t bytes) {
  if (bytes == 0)
    bytes = 64;
  bytes = (bytes + 63) & ~uint64_t(63);
  void *p = nullptr;
  if (posix_memalign(&p, 64, bytes) != 0)
    return nullptr;
  return p;
}

// Multiplies with overflow detection; false on overflow or a negative factor.
bool checkedMul(uint64_t a, int64_t b, uint64_t &out) {
  if (b < 0)
    return false;
  if (b != 0 && a > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(b))
    return false;
  out = a * static_cast<uint64_t>(b);
  return true;
}

} // namespace

struct kiln_model {
  kiln::runtime::ArtifactSource source;
  const art::Manifest *manifest = nullptr;
  void *library = nullptr;
  int libraryFd = -1;
  std::vector<kiln_kernel_fn> kernels; // by manifest kernel index
  std::vector<BufferInfo> buffers;
  // Dispatches, flattened: kernel, first index into dispatchBuffers, count.
  std::vector<kiln_kernel_fn> dispatchFn;
  std::vector<uint32_t> dispatchBegin;
  std::vector<int32_t> dispatchBuffers;
  // Manifest symbol i is our symbol symbolKind[i] (kSymB / kSymS / kSymP).
  std::vector<int> symbolKind;
  int64_t symbolMax[kNumSym] = {-1, -1, -1}; // -1: not a symbol of this artifact
  int inputIdsBuffer = -1, attentionMaskBuffer = -1;
  std::vector<std::string> inputNames, outputNames;
  std::vector<int> outputBuffers;
  struct KvEntry {
    int past = -1, present = -1;
    uint64_t bytes = 0; // each half; in place: the one storage [max_batch, h, capacity, d]
    bool inPlace = false;
    int64_t capacity = 0;
  };
  std::vector<KvEntry> kv;
  std::string task, architecture;
  int64_t vocab = 0, hidden = 0, maxContext = 0, maxBatch = 0;
  uint64_t arenaBytes = 0;
  int numThreads = 2;
  kiln::vulkan::VulkanModel *vk = nullptr; // the artifact has Vulkan dispatches / DEVICE buffers
  std::string error;
  // KILN_PROFILE=1 (or any non-empty value but 0): wall time of every CPU dispatch, summed over all runs,
  // separately for decode steps (seq_len 1) and the others (prefill, encoders), printed to stderr by
  // kiln_model_free (time per op kind, then the top dispatches). KILN_PROFILE_TOP=N: how many dispatches.
  bool profile = false;
  struct Profile {
    std::vector<uint64_t> ns, calls; // per dispatch
    uint64_t runs = 0, runNs = 0, tokens = 0;
  };
  Profile profiles[2]; // [0]: seq_len > 1, [1]: seq_len 1
};

struct kiln_session {
  kiln_model *model = nullptr;
  int64_t batch = 0;
  int64_t past = 0;
  int current = 0; // which KV half holds the past
  void *arena = nullptr;
  std::vector<void *> kvHalves[2]; // per entry
  void *onesMask = nullptr;        // attention_mask of ones (encoders), at its max size
  void *idsScratch = nullptr;      // input_ids converted to I32 when the artifact wants I32
  void *maskScratch = nullptr;
  std::vector<void *> bufferPtr;   // per buffer, this run
  std::vector<void *> table;       // per dispatch buffer
  int64_t symbols[kNumSym] = {0, 0, 0};
  std::vector<int64_t> symbolValues; // in manifest order
  bool hasOutputs = false;
  std::vector<const float *> outputData;
  std::vector<std::vector<int64_t>> outputShapes;
  kiln::vulkan::VulkanSession *vk = nullptr; // device arena, device KV cache, command buffers
  std::string error;
};

namespace {

kiln_status setError(std::string *slot, kiln_status code, std::string message) {
  tlsLastError = message;
  if (slot)
    *slot = std::move(message);
  return code;
}

kiln_status modelError(kiln_model *m, kiln_status code, std::string message) {
  return setError(m ? &m->error : nullptr, code, std::move(message));
}

kiln_status sessionError(kiln_session *s, kiln_status code, std::string message) {
  return setError(s ? &s->error : nullptr, code, std::move(message));
}

// Fills model->buffers etc. from the manifest; BAD_ARTIFACT with a message on any inconsistency.
kiln_status validate(kiln_model &m, const std::string &path) {
  const art::Manifest &mf = *m.manifest;
  auto bad = [&](const std::string &msg) { return modelError(&m, KILN_BAD_ARTIFACT, path + ": " + msg); };

  m.task = mf.task();
  m.architecture = mf.architecture();
  if (m.task != "causal-lm" && m.task != "encoder")
    return bad("unknown task '" + m.task + "' (expected causal-lm or encoder)");
  m.maxContext = mf.max_context();
  m.maxBatch = mf.max_batch();
  if (m.maxContext <= 0 || m.maxBatch <= 0)
    return bad("max_context and max_batch must be positive");
  m.arenaBytes = mf.arena_bytes();

  // Symbols.
  for (const art::Symbol &sym : mf.symbols()) {
    int kind = sym.name() == "b" ? kSymB : sym.name() == "s" ? kSymS : sym.name() == "p" ? kSymP : -1;
    if (kind < 0)
      return bad("unknown symbol '" + sym.name() + "' (the runtime knows b, s, p)");
    if (m.symbolMax[kind] >= 0)
      return bad("symbol '" + sym.name() + "' listed twice");
    if (sym.max_value() < 0)
      return bad("symbol '" + sym.name() + "' has a negative max_value");
    m.symbolMax[kind] = sym.max_value();
    m.symbolKind.push_back(kind);
  }

  // Buffers.
  m.buffers.resize(mf.buffers_size());
  for (int i = 0; i < mf.buffers_size(); ++i) {
    const art::Buffer &b = mf.buffers(i);
    BufferInfo &info = m.buffers[i];
    if (b.id() != i)
      return bad("buffer " + std::to_string(i) + " has id " + std::to_string(b.id()));
    info.kind = b.kind();
    info.dtype = b.dtype();
    info.elemSize = dtypeSize(b.dtype());
    info.offset = b.offset();
    info.maxBytes = b.max_bytes();
    info.name = b.name();
    info.device = b.location() == art::Buffer::DEVICE;
    if (info.elemSize == 0)
      return bad("buffer " + std::to_string(i) + " ('" + b.name() + "') has no dtype");
    info.rowCapacity = b.row_capacity();
    info.rowOffset.constant = b.row_offset().constant();
    for (const art::Dim::Term &t : b.row_offset().terms()) {
      int kind = t.symbol() == "b" ? kSymB : t.symbol() == "s" ? kSymS : t.symbol() == "p" ? kSymP : -1;
      if (kind < 0 || m.symbolMax[kind] < 0)
        return bad("buffer '" + b.name() + "' has a row_offset with symbol '" + t.symbol() + "', not among the manifest's symbols");
      info.rowOffset.coeff[kind] += t.coeff();
    }
    for (const art::Dim &d : b.shape()) {
      DimExpr e;
      e.constant = d.constant();
      for (const art::Dim::Term &t : d.terms()) {
        int kind = t.symbol() == "b" ? kSymB : t.symbol() == "s" ? kSymS : t.symbol() == "p" ? kSymP : -1;
        if (kind < 0 || m.symbolMax[kind] < 0)
          return bad("buffer '" + b.name() + "' uses symbol '" + t.symbol() + "', not among the manifest's symbols");
        e.coeff[kind] += t.coeff();
      }
      info.dims.push_back(e);
    }
    switch (b.kind()) {
    case art::Buffer::ARENA:
      if (info.device)
        break; // checked against device_arena_bytes by the Vulkan executor
      if (b.offset() > m.arenaBytes || b.max_bytes() > m.arenaBytes - b.offset())
        return bad("arena buffer '" + b.name() + "' [" + std::to_string(b.offset()) + ", +" +
                   std::to_string(b.max_bytes()) + ") lies outside the arena of " + std::to_string(m.arenaBytes) +
                   " bytes");
      break;
    case art::Buffer::WEIGHT: {
      uint64_t bytes = info.elemSize;
      for (const DimExpr &e : info.dims)
        if (!e.isConstant() || !checkedMul(bytes, e.constant, bytes))
          return bad("weight '" + b.name() + "' has a symbolic or invalid shape");
      if (b.offset() % 64 != 0)
        return bad("weight '" + b.name() + "' is not 64-byte aligned in the weights section");
      if (b.offset() > m.source.weightsSize || bytes > m.source.weightsSize - b.offset())
        return bad("weight '" + b.name() + "' [" + std::to_string(b.offset()) + ", +" + std::to_string(bytes) +
                   ") lies outside the weights section of " + std::to_string(m.source.weightsSize) + " bytes");
      break;
    }
    case art::Buffer::INPUT:
    case art::Buffer::KV_CACHE:
      break;
    default:
      return bad("buffer '" + b.name() + "' has no kind");
    }
  }

  // Inputs and outputs.
  for (const art::Port &p : mf.inputs()) {
    if (p.buffer() < 0 || p.buffer() >= mf.buffers_size())
      return bad("input '" + p.name() + "' names buffer " + std::to_string(p.buffer()) + ", out of range");
    const BufferInfo &b = m.buffers[p.buffer()];
    if (b.kind == art::Buffer::KV_CACHE)
      continue; // past_*: the session's business
    if (b.kind != art::Buffer::INPUT)
      return bad("input '" + p.name() + "' is not an INPUT buffer");
    if (b.dims.size() != 2 || (b.dtype != art::I64 && b.dtype != art::I32))
      return bad("input '" + p.name() + "' must be I64 or I32 [b, s]");
    if (p.name() == "input_ids")
      m.inputIdsBuffer = p.buffer();
    else if (p.name() == "attention_mask")
      m.attentionMaskBuffer = p.buffer();
    else
      return bad("unsupported input '" + p.name() + "' (the runtime supplies input_ids and attention_mask)");
    m.inputNames.push_back(p.name());
  }
  if (m.inputIdsBuffer < 0)
    return bad("the step function has no input_ids input");
  for (const art::Port &p : mf.outputs()) {
    if (p.buffer() < 0 || p.buffer() >= mf.buffers_size())
      return bad("output '" + p.name() + "' names buffer " + std::to_string(p.buffer()) + ", out of range");
    if (m.buffers[p.buffer()].kind == art::Buffer::KV_CACHE)
      continue; // present_*: the session's business
    m.outputNames.push_back(p.name());
    m.outputBuffers.push_back(p.buffer());
  }
  if (m.outputNames.empty())
    return bad("the step function has no outputs");

  // KV cache.
  for (int i = 0; i < mf.kv_cache_size(); ++i) {
    const art::KvCacheEntry &e = mf.kv_cache(i);
    for (int id : {e.past_buffer(), e.present_buffer()})
      if (id < 0 || id >= mf.buffers_size() || m.buffers[id].kind != art::Buffer::KV_CACHE ||
          m.buffers[id].kvEntry >= 0)
        return bad("kv_cache entry '" + e.name() + "' names buffer " + std::to_string(id) +
                   ", not an unused KV_CACHE buffer");
    m.buffers[e.past_buffer()].kvEntry = i;
    m.buffers[e.present_buffer()].kvEntry = i;
    m.buffers[e.present_buffer()].kvPresent = true;
    kiln_model::KvEntry k;
    k.past = e.past_buffer();
    k.present = e.present_buffer();
    k.bytes = std::max(m.buffers[k.past].maxBytes, m.buffers[k.present].maxBytes);
    if (e.in_place()) {
      // One storage [max_batch, h, capacity, d] that past, present and the appended rows view.
      k.inPlace = true;
      k.capacity = e.capacity();
      if (e.append_buffer() != -1) {
        int a = e.append_buffer();
        if (a < 0 || a >= mf.buffers_size() || m.buffers[a].kind != art::Buffer::KV_CACHE || m.buffers[a].kvEntry >= 0)
          return bad("kv_cache entry '" + e.name() + "' appends through buffer " + std::to_string(a) +
                     ", not an unused KV_CACHE buffer");
        m.buffers[a].kvEntry = i;
      }
      const BufferInfo &pr = m.buffers[k.present];
      const int64_t atMax[kNumSym] = {m.maxBatch, 0, 0};
      uint64_t bytes = pr.elemSize;
      if (k.capacity != m.maxContext || pr.dims.size() != 4 || !pr.dims[1].isConstant() || !pr.dims[3].isConstant() ||
          !checkedMul(bytes, pr.dims[0].eval(atMax), bytes) || !checkedMul(bytes, pr.dims[1].constant, bytes) ||
          !checkedMul(bytes, k.capacity, bytes) || !checkedMul(bytes, pr.dims[3].constant, bytes))
        return bad("kv_cache entry '" + e.name() + "' is in place but not [b, h, capacity = max_context, d]");
      for (int id : {k.past, k.present, e.append_buffer()})
        if (id >= 0 && (m.buffers[id].rowCapacity != k.capacity || m.buffers[id].dims.size() != 4))
          return bad("kv_cache entry '" + e.name() + "': buffer '" + m.buffers[id].name +
                     "' is not a view with row_capacity " + std::to_string(k.capacity));
      k.bytes = bytes;
    }
    m.kv.push_back(k);
  }
  for (size_t i = 0; i < m.buffers.size(); ++i)
    if (m.buffers[i].kind == art::Buffer::KV_CACHE && m.buffers[i].kvEntry < 0)
      return bad("KV_CACHE buffer '" + m.buffers[i].name + "' is in no kv_cache entry");
  if (m.task == "causal-lm" && m.symbolMax[kSymP] < 0 && !m.kv.empty())
    return bad("a KV cache without the symbol p");

  // Dispatches.
  for (int i = 0; i < mf.dispatches_size(); ++i) {
    const art::Dispatch &d = mf.dispatches(i);
    const bool transfer = d.kind() == art::Dispatch::TRANSFER;
    if (!transfer && (d.kernel() < 0 || d.kernel() >= mf.kernels_size()))
      return bad("dispatch " + std::to_string(i) + " names kernel " + std::to_string(d.kernel()) + ", out of range");
    if (!transfer && !d.device().empty() && d.device() != "cpu" && d.device() != "vulkan")
      return bad("dispatch " + std::to_string(i) + " (" + d.location() + ") runs on device '" + d.device() +
                 "', which this runtime does not drive");
    if (!transfer && (d.num_results() < 0 || std::max(d.num_results(), 1) > d.buffers_size()))
      return bad("dispatch " + std::to_string(i) + " (" + d.location() + ") has " + std::to_string(d.num_results()) +
                 " results among its " + std::to_string(d.buffers_size()) + " buffers");
    m.dispatchBegin.push_back(static_cast<uint32_t>(m.dispatchBuffers.size()));
    for (int id : d.buffers()) {
      if (id < 0 || id >= mf.buffers_size())
        return bad("dispatch " + std::to_string(i) + " names buffer " + std::to_string(id) + ", out of range");
      m.dispatchBuffers.push_back(id);
    }
  }
  m.dispatchBegin.push_back(static_cast<uint32_t>(m.dispatchBuffers.size()));

  // Sizes for introspection: the output's last dim, else the token embedding's shape.
  for (size_t i = 0; i < m.outputNames.size(); ++i) {
    const BufferInfo &b = m.buffers[m.outputBuffers[i]];
    if (b.dims.empty() || !b.dims.back().isConstant())
      continue;
    if (m.outputNames[i] == "logits")
      m.vocab = b.dims.back().constant;
    else if (m.outputNames[i] == "last_hidden_state")
      m.hidden = b.dims.back().constant;
  }
  for (const BufferInfo &b : m.buffers) {
    if (b.kind != art::Buffer::WEIGHT || b.dims.size() != 2)
      continue;
    auto endsWith = [&](const char *suffix) {
      size_t n = std::strlen(suffix);
      return b.name.size() >= n && b.name.compare(b.name.size() - n, n, suffix) == 0;
    };
    if (endsWith("embed_tokens.weight") || endsWith("word_embeddings.weight") || endsWith("wte.weight")) {
      if (m.vocab == 0)
        m.vocab = b.dims[0].constant;
      if (m.hidden == 0)
        m.hidden = b.dims[1].constant;
      break;
    }
  }
  return KILN_OK;
}

kiln_status resolveKernels(kiln_model &m, const std::string &path) {
  const art::Manifest &mf = *m.manifest;
  std::string error;
  // CPU kernels: those of CPU dispatches (Vulkan kernels are SPIR-V, built by the Vulkan executor).
  auto isCpu = [](const art::Dispatch &d) {
    return d.kind() != art::Dispatch::TRANSFER && (d.device().empty() || d.device() == "cpu");
  };
  std::vector<bool> cpuKernel(mf.kernels_size(), false);
  for (const art::Dispatch &d : mf.dispatches())
    if (isCpu(d))
      cpuKernel[d.kernel()] = true;
  if (std::find(cpuKernel.begin(), cpuKernel.end(), true) != cpuKernel.end()) {
    m.library = kiln::runtime::loadSharedObject(m.source.code, m.source.codeSize, m.libraryFd, error);
    if (!m.library)
      return modelError(&m, KILN_BAD_ARTIFACT, path + ": " + error);
  }
  for (int i = 0; i < mf.kernels_size(); ++i) {
    if (!cpuKernel[i]) {
      m.kernels.push_back(nullptr);
      continue;
    }
    const std::string &sym = mf.kernels(i).symbol();
    ::dlerror();
    void *fn = sym.empty() ? nullptr : ::dlsym(m.library, sym.c_str());
    if (!fn)
      return modelError(&m, KILN_BAD_ARTIFACT,
                        path + ": kernel '" + sym + "' missing from the code section");
    m.kernels.push_back(reinterpret_cast<kiln_kernel_fn>(fn));
  }
  for (int i = 0; i < mf.dispatches_size(); ++i)
    m.dispatchFn.push_back(isCpu(mf.dispatches(i)) ? m.kernels[mf.dispatches(i).kernel()] : nullptr);
  if (kiln::vulkan::manifestUsesVulkan(mf)) {
    m.vk = kiln::vulkan::createModel(mf, m.source.weights, m.source.weightsSize, error);
    if (!m.vk)
      return modelError(&m, KILN_IO_ERROR, path + ": " + error);
  }
  return KILN_OK;
}

std::mutex blasMutex;

void setBlasThreads(int n) {
  std::lock_guard<std::mutex> lock(blasMutex);
  openblas_set_num_threads(n);
}

bool profileRequested() {
  const char *v = std::getenv("KILN_PROFILE");
  return v && *v && std::strcmp(v, "0") != 0;
}

// The KILN_PROFILE report: time per op kind, then the top dispatches (location, kernel, signature).
void printProfile(const kiln_model &m, const kiln_model::Profile &p, const char *what) {
  const art::Manifest &mf = *m.manifest;
  uint64_t total = 0;
  for (uint64_t ns : p.ns)
    total += ns;
  if (p.runs == 0)
    return;
  std::fprintf(stderr,
               "kiln profile, %s: %llu runs, %llu tokens, %.3f ms per run (%.3f ms in the CPU dispatches), %zu "
               "dispatches per run\n",
               what, (unsigned long long)p.runs, (unsigned long long)p.tokens, 1e-6 * double(p.runNs) / double(p.runs),
               1e-6 * double(total) / double(p.runs), m.dispatchFn.size());
  struct Kind {
    uint64_t ns = 0, calls = 0;
  };
  std::map<std::string, Kind> kinds;
  for (size_t d = 0; d < p.ns.size(); ++d) {
    if (!p.calls[d])
      continue;
    const art::Dispatch &disp = mf.dispatches(static_cast<int>(d));
    Kind &k = kinds[mf.kernels(disp.kernel()).op()];
    k.ns += p.ns[d];
    k.calls += p.calls[d];
  }
  std::vector<std::pair<std::string, Kind>> sorted(kinds.begin(), kinds.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto &a, const auto &b) { return a.second.ns > b.second.ns; });
  const double safeTotal = total ? double(total) : 1.0;
  std::fprintf(stderr, "  %-22s %12s %7s %10s %12s\n", "op", "ms/run", "share", "calls", "us/call");
  for (const auto &[name, k] : sorted)
    std::fprintf(stderr, "  %-22s %12.3f %6.1f%% %10llu %12.2f\n", name.c_str(), 1e-6 * double(k.ns) / double(p.runs),
                 100.0 * double(k.ns) / safeTotal, (unsigned long long)k.calls,
                 1e-3 * double(k.ns) / double(k.calls));
  std::vector<size_t> order;
  for (size_t d = 0; d < p.ns.size(); ++d)
    if (p.calls[d])
      order.push_back(d);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p.ns[a] > p.ns[b]; });
  int top = 15;
  if (const char *v = std::getenv("KILN_PROFILE_TOP"))
    top = std::max(0, std::atoi(v));
  if (order.size() > static_cast<size_t>(top))
    order.resize(static_cast<size_t>(top));
  std::fprintf(stderr, "  top dispatches:\n  %5s %12s %7s %10s  %-10s %s\n", "#", "ms/run", "share", "us/call",
               "kernel", "location / signature");
  for (size_t d : order) {
    const art::Dispatch &disp = mf.dispatches(static_cast<int>(d));
    const art::Kernel &k = mf.kernels(disp.kernel());
    std::fprintf(stderr, "  %5zu %12.3f %6.1f%% %10.2f  %-10s %s\n         %s\n", d, 1e-6 * double(p.ns[d]) / double(p.runs),
                 100.0 * double(p.ns[d]) / safeTotal, 1e-3 * double(p.ns[d]) / double(p.calls[d]),
                 k.symbol().c_str(), disp.location().c_str(), k.signature().c_str());
  }
}

void freeSession(kiln_session *s) {
  if (!s)
    return;
  kiln::vulkan::destroySession(s->vk);
  std::free(s->arena);
  for (auto &half : s->kvHalves)
    for (void *p : half)
      std::free(p);
  std::free(s->onesMask);
  std::free(s->idsScratch);
  std::free(s->maskScratch);
  delete s;
}

// Bytes of buffer `b` at the current symbols (false on overflow / negative dims).
bool bufferBytes(const BufferInfo &b, const int64_t *sym, uint64_t &bytes, std::vector<int64_t> *shape) {
  bytes = b.elemSize;
  if (shape)
    shape->clear();
  for (const DimExpr &e : b.dims) {
    int64_t d = e.eval(sym);
    if (!checkedMul(bytes, d, bytes))
      return false;
    if (shape)
      shape->push_back(d);
  }
  return true;
}

kiln_status runImpl(kiln_session *s, const int64_t *ids, const int64_t *mask, int64_t batch, int64_t seq) {
  kiln_model &m = *s->model;
  if (!ids)
    return sessionError(s, KILN_INVALID_ARGUMENT, "input_ids is NULL");
  if (batch != s->batch)
    return sessionError(s, KILN_INVALID_ARGUMENT,
                        "input_ids has batch " + std::to_string(batch) + " but the session was created for batch " +
                            std::to_string(s->batch));
  if (seq <= 0)
    return sessionError(s, KILN_INVALID_ARGUMENT, "input_ids must have at least one token (seq_len " +
                                                      std::to_string(seq) + ")");
  const bool causal = !m.kv.empty();
  const int64_t past = causal ? s->past : 0;
  if (seq > m.maxContext - past) {
    if (causal && past > 0)
      return sessionError(s, KILN_OUT_OF_RANGE,
                          std::to_string(past) + " tokens in the KV cache + " + std::to_string(seq) +
                              " new exceed the compiled max context of " + std::to_string(m.maxContext) +
                              " (reset the session to start over)");
    return sessionError(s, KILN_OUT_OF_RANGE,
                        std::to_string(seq) + " tokens exceed the compiled max context of " +
                            std::to_string(m.maxContext));
  }
  int64_t sym[kNumSym] = {batch, seq, past};
  static const char *names[kNumSym] = {"batch", "chunk length", "past length"};
  for (int k = 0; k < kNumSym; ++k)
    if (m.symbolMax[k] >= 0 && sym[k] > m.symbolMax[k])
      return sessionError(s, KILN_OUT_OF_RANGE,
                          std::string(names[k]) + " " + std::to_string(sym[k]) + " exceeds the compiled maximum " +
                              std::to_string(m.symbolMax[k]));
  const int64_t n = batch * seq;
  {
    for (int64_t i = 0; i < n; ++i) {
      int64_t t = ids[i];
      if (t < 0 || (m.vocab > 0 && t >= m.vocab))
        return sessionError(s, KILN_INVALID_ARGUMENT,
                            "input_ids[" + std::to_string(i / seq) + ", " + std::to_string(i % seq) + "] = " +
                                std::to_string(t) + " is outside the vocabulary [0, " +
                                (m.vocab > 0 ? std::to_string(m.vocab) : std::string("?")) + ")");
    }
  }
  if (mask) {
    for (int64_t i = 0; i < n; ++i) {
      if (mask[i] != 0 && mask[i] != 1)
        return sessionError(s, KILN_INVALID_ARGUMENT,
                            "attention_mask[" + std::to_string(i / seq) + ", " + std::to_string(i % seq) + "] = " +
                                std::to_string(mask[i]) + " is not 0 or 1");
      if (m.attentionMaskBuffer < 0 && mask[i] != 1)
        return sessionError(s, KILN_INVALID_ARGUMENT,
                            "this " + m.task + " artifact takes no attention_mask (no padding): pass NULL or all ones");
    }
  }

  // Point every buffer.
  uint8_t *arena = static_cast<uint8_t *>(s->arena);
  const uint8_t *weights = m.source.weights;
  for (size_t i = 0; i < m.buffers.size(); ++i) {
    const BufferInfo &b = m.buffers[i];
    uint64_t bytes = 0;
    if (b.kind != art::Buffer::WEIGHT) {
      if (!bufferBytes(b, sym, bytes, nullptr))
        return sessionError(s, KILN_INTERNAL, "buffer '" + b.name + "' has an invalid shape at b=" +
                                                  std::to_string(batch) + ", s=" + std::to_string(seq) +
                                                  ", p=" + std::to_string(past));
    }
    if (b.device) {
      s->bufferPtr[i] = nullptr; // the Vulkan executor's
      continue;
    }
    switch (b.kind) {
    case art::Buffer::ARENA:
      if (bytes > b.maxBytes)
        return sessionError(s, KILN_INTERNAL, "arena buffer '" + b.name + "' needs " + std::to_string(bytes) +
                                                  " bytes, more than the planned " + std::to_string(b.maxBytes));
      s->bufferPtr[i] = arena + b.offset;
      break;
    case art::Buffer::WEIGHT:
      s->bufferPtr[i] = const_cast<uint8_t *>(weights + b.offset);
      break;
    case art::Buffer::KV_CACHE: {
      const kiln_model::KvEntry &e = m.kv[b.kvEntry];
      if (bytes > e.bytes)
        return sessionError(s, KILN_INTERNAL, "KV-cache buffer '" + b.name + "' needs " + std::to_string(bytes) +
                                                  " bytes, more than the planned " + std::to_string(e.bytes));
      if (!e.inPlace) {
        s->bufferPtr[i] = s->kvHalves[b.kvPresent ? 1 - s->current : s->current][b.kvEntry];
        break;
      }
      // A view of the one storage: rows [offset, offset + dim 2) of every (batch, head), capacity rows apart.
      const int64_t offset = b.rowOffset.eval(sym), rows = b.dims[2].eval(sym);
      if (offset < 0 || rows < 0 || offset + rows > e.capacity || batch > m.maxBatch)
        return sessionError(s, KILN_INTERNAL, "KV-cache view '" + b.name + "' rows [" + std::to_string(offset) + ", " +
                                                  std::to_string(offset + rows) + ") exceed its capacity " +
                                                  std::to_string(e.capacity));
      s->bufferPtr[i] = static_cast<uint8_t *>(s->kvHalves[0][b.kvEntry]) +
                        uint64_t(offset) * uint64_t(b.dims[3].eval(sym)) * b.elemSize;
      break;
    }
    case art::Buffer::INPUT: {
      if (b.dims.size() != 2 || b.dims[0].eval(sym) != batch || b.dims[1].eval(sym) != seq)
        return sessionError(s, KILN_INTERNAL, "input '" + b.name + "' is not [b, s] in the artifact");
      if (bytes > b.maxBytes && b.dtype != art::I64)
        return sessionError(s, KILN_INTERNAL, "input '" + b.name + "' exceeds its planned size");
      const bool isIds = static_cast<int>(i) == m.inputIdsBuffer;
      const int64_t *src = isIds ? ids : mask;
      if (!src) { // attention_mask omitted: ones
        s->bufferPtr[i] = s->onesMask;
        break;
      }
      if (b.dtype == art::I64) {
        s->bufferPtr[i] = const_cast<int64_t *>(src);
      } else {
        int32_t *dst = static_cast<int32_t *>(isIds ? s->idsScratch : s->maskScratch);
        for (int64_t j = 0; j < n; ++j)
          dst[j] = static_cast<int32_t>(src[j]);
        s->bufferPtr[i] = dst;
      }
      break;
    }
    default:
      return sessionError(s, KILN_INTERNAL, "buffer '" + b.name + "' has no kind");
    }
  }
  for (size_t j = 0; j < m.dispatchBuffers.size(); ++j)
    s->table[j] = s->bufferPtr[m.dispatchBuffers[j]];
  for (size_t k = 0; k < m.symbolKind.size(); ++k)
    s->symbolValues[k] = sym[m.symbolKind[k]];

  const int64_t *symbolValues = s->symbolValues.data();
  void *const *table = s->table.data();
  using ProfileClock = std::chrono::steady_clock;
  kiln_model::Profile &prof = m.profiles[seq == 1 ? 1 : 0];
  auto timed = [&](size_t d) {
    auto t0 = ProfileClock::now();
    m.dispatchFn[d](table + m.dispatchBegin[d], symbolValues);
    prof.ns[d] += static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(ProfileClock::now() - t0).count());
    ++prof.calls[d];
  };
  const auto runStart = ProfileClock::now();
  if (m.vk) {
    std::string error;
    auto cpu = [&](int d) {
      if (m.profile)
        timed(static_cast<size_t>(d));
      else
        m.dispatchFn[d](table + m.dispatchBegin[d], symbolValues);
    };
    if (!kiln::vulkan::runStep(*m.vk, *s->vk, symbolValues, s->current, s->bufferPtr, cpu, error))
      return sessionError(s, KILN_INTERNAL, error);
  } else {
    const size_t numDispatches = m.dispatchFn.size();
    if (m.profile)
      for (size_t d = 0; d < numDispatches; ++d)
        timed(d);
    else
      for (size_t d = 0; d < numDispatches; ++d)
        m.dispatchFn[d](table + m.dispatchBegin[d], symbolValues);
  }
  if (m.profile) {
    ++prof.runs;
    prof.tokens += static_cast<uint64_t>(n);
    prof.runNs += static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(ProfileClock::now() - runStart).count());
  }

  // Outputs of this run.
  for (size_t o = 0; o < m.outputBuffers.size(); ++o) {
    const BufferInfo &b = m.buffers[m.outputBuffers[o]];
    uint64_t bytes;
    bufferBytes(b, sym, bytes, &s->outputShapes[o]);
    s->outputData[o] = b.dtype == art::F32 ? static_cast<const float *>(s->bufferPtr[m.outputBuffers[o]]) : nullptr;
  }
  s->hasOutputs = true;
  if (causal) {
    s->current = 1 - s->current;
    s->past += seq;
  }
  s->error.clear();
  return KILN_OK;
}

} // namespace

extern "C" {

const char *kiln_status_name(kiln_status status) {
  switch (status) {
  case KILN_OK: return "OK";
  case KILN_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
  case KILN_BAD_ARTIFACT: return "BAD_ARTIFACT";
  case KILN_IO_ERROR: return "IO_ERROR";
  case KILN_OUT_OF_RANGE: return "OUT_OF_RANGE";
  case KILN_INTERNAL: return "INTERNAL";
  }
  return "UNKNOWN";
}

const char *kiln_last_error(void) { return tlsLastError.c_str(); }

const char *kiln_version(void) { return "0.1.0"; }

void kiln_load_options_init(kiln_load_options *options) {
  if (!options)
    return;
  options->num_threads = 0;
  options->verify_checksums = 1;
}

kiln_status kiln_model_load(const char *path, const kiln_load_options *options, kiln_model **out) {
  if (!out)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "kiln_model_load: model is NULL");
  *out = nullptr;
  if (!path)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "kiln_model_load: path is NULL");
  kiln_load_options opts;
  kiln_load_options_init(&opts);
  if (options)
    opts = *options;
  if (opts.num_threads < 0)
    return setError(nullptr, KILN_INVALID_ARGUMENT,
                    "kiln_model_load: num_threads must be >= 0, got " + std::to_string(opts.num_threads));
  try {
    kiln_model *m = new kiln_model();
    std::string error;
    kiln_status st = kiln::runtime::openArtifactSource(path, opts.verify_checksums != 0, m->source, error);
    if (st != KILN_OK) {
      delete m;
      return setError(nullptr, st, error);
    }
    m->manifest = m->source.manifest;
    if ((st = validate(*m, path)) != KILN_OK || (st = resolveKernels(*m, path)) != KILN_OK) {
      std::string msg = m->error;
      kiln_model_free(m);
      return setError(nullptr, st, msg);
    }
    int threads = opts.num_threads;
    if (threads == 0)
      threads = m->manifest->num_threads_default() > 0 ? static_cast<int>(m->manifest->num_threads_default()) : 2;
    m->numThreads = threads;
    setBlasThreads(threads);
    if ((m->profile = profileRequested()))
      for (kiln_model::Profile &p : m->profiles) {
        p.ns.assign(m->dispatchFn.size(), 0);
        p.calls.assign(m->dispatchFn.size(), 0);
      }
    *out = m;
    return KILN_OK;
  } catch (const std::bad_alloc &) {
    return setError(nullptr, KILN_INTERNAL, std::string(path) + ": out of memory while loading");
  } catch (...) {
    return setError(nullptr, KILN_INTERNAL, std::string(path) + ": unexpected error while loading");
  }
}

void kiln_model_free(kiln_model *model) {
  if (!model)
    return;
  if (model->profile) {
    printProfile(*model, model->profiles[0], "prefill (seq_len > 1)");
    printProfile(*model, model->profiles[1], "decode (seq_len 1)");
  }
  kiln::vulkan::destroyModel(model->vk);
  kiln::runtime::unloadSharedObject(model->library, model->libraryFd);
  delete model;
}

const char *kiln_model_error(const kiln_model *m) { return m ? m->error.c_str() : ""; }
const char *kiln_model_task(const kiln_model *m) { return m ? m->task.c_str() : ""; }
const char *kiln_model_architecture(const kiln_model *m) { return m ? m->architecture.c_str() : ""; }
int64_t kiln_model_vocab_size(const kiln_model *m) { return m ? m->vocab : 0; }
int64_t kiln_model_hidden_size(const kiln_model *m) { return m ? m->hidden : 0; }
int64_t kiln_model_max_context(const kiln_model *m) { return m ? m->maxContext : 0; }
int64_t kiln_model_max_batch(const kiln_model *m) { return m ? m->maxBatch : 0; }
int kiln_model_num_threads(const kiln_model *m) { return m ? m->numThreads : 0; }
int kiln_model_num_inputs(const kiln_model *m) { return m ? static_cast<int>(m->inputNames.size()) : 0; }
const char *kiln_model_input_name(const kiln_model *m, int i) {
  return m && i >= 0 && i < static_cast<int>(m->inputNames.size()) ? m->inputNames[i].c_str() : nullptr;
}
int kiln_model_num_outputs(const kiln_model *m) { return m ? static_cast<int>(m->outputNames.size()) : 0; }
const char *kiln_model_output_name(const kiln_model *m, int i) {
  return m && i >= 0 && i < static_cast<int>(m->outputNames.size()) ? m->outputNames[i].c_str() : nullptr;
}
uint64_t kiln_model_session_bytes(const kiln_model *m) {
  if (!m)
    return 0;
  uint64_t total = m->arenaBytes;
  for (const auto &e : m->kv)
    total += (e.inPlace ? 1 : 2) * e.bytes;
  return total;
}

kiln_status kiln_session_create(kiln_model *model, int64_t batch, kiln_session **out) {
  if (!out)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "kiln_session_create: session is NULL");
  *out = nullptr;
  if (!model)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "kiln_session_create: model is NULL");
  if (batch < 1)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "batch must be >= 1, got " + std::to_string(batch));
  if (batch > model->maxBatch)
    return setError(nullptr, KILN_OUT_OF_RANGE,
                    "batch " + std::to_string(batch) + " exceeds the compiled max batch of " +
                        std::to_string(model->maxBatch));
  kiln_session *s = nullptr;
  try {
    s = new kiln_session();
    s->model = model;
    s->batch = batch;
    bool ok = (s->arena = alignedAlloc(model->arenaBytes)) != nullptr;
    for (int h = 0; h < 2; ++h) {
      std::vector<void *> &half = s->kvHalves[h];
      half.assign(model->kv.size(), nullptr);
      for (size_t e = 0; ok && e < model->kv.size(); ++e) { // DEVICE KV caches: on the device
        if (h == 1 && model->kv[e].inPlace)
          continue; // one buffer: present aliases past
        ok = (half[e] = alignedAlloc(model->buffers[model->kv[e].past].device ? 0 : model->kv[e].bytes)) != nullptr;
      }
    }
    // Inputs: ones for an omitted attention_mask, I32 scratch where the artifact wants I32.
    uint64_t maxTokens = static_cast<uint64_t>(batch) * static_cast<uint64_t>(model->maxContext);
    if (ok && model->attentionMaskBuffer >= 0) {
      const BufferInfo &b = model->buffers[model->attentionMaskBuffer];
      ok = (s->onesMask = alignedAlloc(maxTokens * b.elemSize)) != nullptr;
      if (ok && b.dtype == art::I64)
        std::fill_n(static_cast<int64_t *>(s->onesMask), maxTokens, int64_t(1));
      else if (ok)
        std::fill_n(static_cast<int32_t *>(s->onesMask), maxTokens, int32_t(1));
      if (ok && b.dtype == art::I32)
        ok = (s->maskScratch = alignedAlloc(maxTokens * 4)) != nullptr;
    }
    if (ok && model->buffers[model->inputIdsBuffer].dtype == art::I32)
      ok = (s->idsScratch = alignedAlloc(maxTokens * 4)) != nullptr;
    if (!ok) {
      freeSession(s);
      return setError(nullptr, KILN_INTERNAL,
                      "out of memory allocating a session (" + std::to_string(kiln_model_session_bytes(model)) +
                          " bytes)");
    }
    if (model->vk) {
      std::string error;
      if (!(s->vk = kiln::vulkan::createSession(*model->vk, error))) {
        freeSession(s);
        return setError(nullptr, KILN_INTERNAL, error);
      }
    }
    s->bufferPtr.assign(model->buffers.size(), nullptr);
    s->table.assign(model->dispatchBuffers.size(), nullptr);
    s->symbolValues.assign(model->symbolKind.size(), 0);
    s->outputData.assign(model->outputBuffers.size(), nullptr);
    s->outputShapes.assign(model->outputBuffers.size(), {});
    for (auto &shape : s->outputShapes)
      shape.reserve(KILN_MAX_RANK);
    *out = s;
    return KILN_OK;
  } catch (...) {
    freeSession(s);
    return setError(nullptr, KILN_INTERNAL, "out of memory allocating a session");
  }
}

void kiln_session_free(kiln_session *session) { freeSession(session); }

const char *kiln_session_error(const kiln_session *s) { return s ? s->error.c_str() : ""; }

kiln_status kiln_session_run(kiln_session *session, const int64_t *ids, const int64_t *attention_mask,
                             int64_t batch, int64_t seq_len) {
  if (!session)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "kiln_session_run: session is NULL");
  try {
    return runImpl(session, ids, attention_mask, batch, seq_len);
  } catch (...) {
    return sessionError(session, KILN_INTERNAL, "unexpected error in kiln_session_run");
  }
}

kiln_status kiln_session_output(kiln_session *s, const char *name, const float **data, int64_t *shape, int *rank) {
  if (!s || !name || !data || !shape || !rank)
    return sessionError(s, KILN_INVALID_ARGUMENT, "kiln_session_output: a NULL argument");
  *data = nullptr;
  *rank = 0;
  const kiln_model &m = *s->model;
  for (size_t o = 0; o < m.outputNames.size(); ++o) {
    if (m.outputNames[o] != name)
      continue;
    if (!s->hasOutputs)
      return sessionError(s, KILN_INVALID_ARGUMENT, std::string("output '") + name + "': the session has not run yet");
    const BufferInfo &b = m.buffers[m.outputBuffers[o]];
    if (b.dtype != art::F32)
      return sessionError(s, KILN_INVALID_ARGUMENT,
                          std::string("output '") + name + "' is " + dtypeName(b.dtype) + ", not F32");
    const std::vector<int64_t> &sh = s->outputShapes[o];
    if (sh.size() > KILN_MAX_RANK)
      return sessionError(s, KILN_INTERNAL, std::string("output '") + name + "' has rank > 8");
    std::copy(sh.begin(), sh.end(), shape);
    *rank = static_cast<int>(sh.size());
    *data = s->outputData[o];
    return KILN_OK;
  }
  std::string known;
  for (const std::string &n : m.outputNames)
    known += (known.empty() ? "" : ", ") + n;
  return sessionError(s, KILN_INVALID_ARGUMENT, std::string("no output '") + name + "' (outputs: " + known + ")");
}

int64_t kiln_session_past_length(const kiln_session *s) { return s ? s->past : 0; }
int64_t kiln_session_batch(const kiln_session *s) { return s ? s->batch : 0; }

kiln_status kiln_session_reset(kiln_session *s) {
  if (!s)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "kiln_session_reset: session is NULL");
  s->past = 0;
  s->current = 0;
  s->hasOutputs = false;
  s->error.clear();
  return KILN_OK;
}

uint64_t kiln_session_gpu_time_ns(const kiln_session *s) {
  return s && s->vk ? kiln::vulkan::lastGpuTimeNs(*s->vk) : 0;
}

const char *kiln_model_device(const kiln_model *m) {
  if (!m)
    return "";
  return m->vk ? kiln::vulkan::deviceName(*m->vk).c_str() : "cpu";
}

} // extern "C"
