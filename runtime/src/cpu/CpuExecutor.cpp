//===- CpuExecutor.cpp - generated kernels over host buffers --------------===//
#include "cpu/CpuExecutor.h"

#include "cpu/CodeLoader.h"
#include "cpu/ThreadPool.h"
#include "cpu/HostCpu.h"
#include "Environment.h"
#include "kiln/artifact/CpuTargets.h"
#include "kiln/kernel_abi.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <map>
#include <mutex>

extern "C" void openblas_set_num_threads(int num_threads);

namespace kiln::runtime::cpu {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t nanosSince(Clock::time_point t0) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
}

/// OpenBLAS's thread count is process-wide (0.3.21, Debian 12, has no openblas_set_num_threads_local): every
/// kernel that calls it runs under this lock, with the count set to its model's --threads when it differs
/// from the last one set. Two models with different counts each get theirs; their BLAS calls take turns.
class BlasCall {
public:
  explicit BlasCall(int threads) : lock_(mutex()) {
    static int current = 0; // guarded by mutex()
    if (current != threads) {
      openblas_set_num_threads(threads);
      current = threads;
    }
  }

private:
  static std::mutex &mutex() {
    static std::mutex m;
    return m;
  }
  std::lock_guard<std::mutex> lock_;
};

/// One kernel call split over a pool: part p of n computes items [extent * p / n, extent * (p + 1) / n).
struct SplitCall {
  kiln_kernel_fn fn;
  void *const *buffers;
  const int64_t *symbols;
  int64_t extent;
  static void part(void *context, int p, int n) {
    const SplitCall &c = *static_cast<const SplitCall *>(context);
    c.fn(c.buffers, c.symbols, c.extent * p / n, c.extent * (p + 1) / n);
  }
};

bool profileRequested() { return runtime::envFlag("KILN_PROFILE"); }

/// KILN_PROFILE counters of one kind of step.
struct Profile {
  std::vector<uint64_t> ns, calls; // per dispatch
  uint64_t runs = 0, runNs = 0, tokens = 0;
};

class CpuExecutor : public Executor {
public:
  explicit CpuExecutor(const ExecutorContext &context)
      : plan_(context.plan), numThreads_(std::max(1, context.numThreads)) {}
  ~CpuExecutor() override {
    if (profile_) {
      printProfile(profiles_[0], "prefill (seq_len > 1)");
      printProfile(profiles_[1], "decode (seq_len 1)");
    }
    unloadSharedObject(library_, libraryFd_);
  }

  Error load(const ExecutorContext &context);
  std::string deviceName() const override { return kHostExecutor; }
  std::string codeTarget() const override { return codeTarget_; }
  Error createSession(std::unique_ptr<ExecutorSession> &out) override;

  const LoadedPlan &plan_;
  std::vector<kiln_kernel_fn> dispatchFn_;        // per dispatch; null where another executor runs it
  std::vector<kiln_kernel_range_fn> dispatchRange_; // per dispatch: the kernel's `<symbol>_range`
  int numThreads_ = 1;
  int64_t grainOverride_ = 0; // KILN_THREADS_GRAIN: every kernel's grain (tests split even tiny kernels)
  // KILN_BLAS_THREADS: OpenBLAS's thread count instead of numThreads_ (its threaded GEMM is not reproducible
  // across counts on every CPU: e2e.threads sets 1 where it checks kiln's own splits byte for byte).
  int blasThreads_ = 0;
  bool profile_ = false;
  Profile profiles_[2]; // [0]: seq_len > 1, [1]: seq_len 1

private:
  void printProfile(const Profile &p, const char *what) const;
  Error loadCode(const ExecutorContext &context);
  void *library_ = nullptr;
  int libraryFd_ = -1;
  std::string codeTarget_; // which kernel object loaded, and why (kiln_model_cpu_target)
};

class CpuSession : public ExecutorSession {
public:
  explicit CpuSession(CpuExecutor &executor)
      : ex_(executor), table_(executor.plan_.dispatchBuffers.size(), nullptr) {
    // Each session its own threads: sessions of one model may run concurrently.
    if (ex_.numThreads_ > 1)
      pool_ = std::make_unique<ThreadPool>(ex_.numThreads_);
  }

  Error beginStep(StepState &step) override {
    const std::vector<int32_t> &ids = ex_.plan_.dispatchBuffers;
    const std::vector<void *> &host = *step.host;
    for (size_t j = 0; j < ids.size(); ++j)
      table_[j] = host[size_t(ids[j])];
    stepStart_ = Clock::now();
    return {};
  }

  Error runSegment(const PlanSegment &segment, StepState &step) override {
    const std::vector<PlanDispatch> &dispatches = ex_.plan_.dispatches;
    void *const *table = table_.data();
    const int64_t *symbols = step.symbols;
    if (!ex_.profile_) {
      for (int d = segment.begin; d < segment.end; ++d)
        runDispatch(size_t(d), table + dispatches[size_t(d)].firstBuffer, symbols);
      return {};
    }
    Profile &prof = ex_.profiles_[step.seq == 1 ? 1 : 0];
    for (int d = segment.begin; d < segment.end; ++d) {
      const Clock::time_point t0 = Clock::now();
      runDispatch(size_t(d), table + dispatches[size_t(d)].firstBuffer, symbols);
      prof.ns[size_t(d)] += nanosSince(t0);
      ++prof.calls[size_t(d)];
    }
    return {};
  }

  Error finishStep(StepState &step) override {
    if (ex_.profile_) {
      Profile &prof = ex_.profiles_[step.seq == 1 ? 1 : 0];
      ++prof.runs;
      prof.tokens += static_cast<uint64_t>(step.batch * step.seq);
      prof.runNs += nanosSince(stepStart_);
    }
    return {};
  }

private:
  /// One kernel: over the pool when its range has work for more than one thread (kernel_abi.h), alone with
  /// OpenBLAS's threads (the pool asleep) when it calls OpenBLAS, over the pool with OpenBLAS on one thread
  /// when each item calls it.
  void runDispatch(size_t d, void *const *buffers, const int64_t *symbols) {
    kiln_kernel_fn fn = ex_.dispatchFn_[d];
    kiln_kernel_range range{1, 1, 0};
    ex_.dispatchRange_[d](symbols, &range);
    if (range.flags & KILN_KERNEL_CALLS_BLAS) {
      if (pool_)
        pool_->sleep();
      BlasCall call(ex_.blasThreads_ > 0 ? ex_.blasThreads_ : ex_.numThreads_);
      fn(buffers, symbols, 0, range.extent);
      return;
    }
    if (range.flags & KILN_KERNEL_CALLS_BLAS_PER_ITEM) {
      BlasCall call(1);
      runSplit(fn, buffers, symbols, range);
      return;
    }
    runSplit(fn, buffers, symbols, range);
  }

  void runSplit(kiln_kernel_fn fn, void *const *buffers, const int64_t *symbols, const kiln_kernel_range &range) {
    if (range.extent <= 0)
      return;
    const int64_t grain = ex_.grainOverride_ > 0 ? ex_.grainOverride_ : std::max<int64_t>(range.grain, 1);
    const int64_t parts = pool_ ? std::min<int64_t>(pool_->size(), range.extent / grain) : 1;
    if (parts <= 1) {
      fn(buffers, symbols, 0, range.extent);
      return;
    }
    SplitCall call{fn, buffers, symbols, range.extent};
    pool_->run(int(parts), &SplitCall::part, &call);
  }

  CpuExecutor &ex_;
  std::unique_ptr<ThreadPool> pool_; // null with one thread
  std::vector<void *> table_; // per LoadedPlan::dispatchBuffers entry: the host pointer this step
  Clock::time_point stepStart_;
};

// The kernel object of the CPU_CODE section this host runs (artifact::chooseCpuObject), loaded; an artifact
// with no object the host can run is refused here, before any kernel executes.
Error CpuExecutor::loadCode(const ExecutorContext &context) {
  const artifact::Manifest &manifest = *context.source.manifest;
  artifact::CpuObjectChoice choice = artifact::chooseCpuObject(manifest, hostCpuFeatures(), context.plan.path);
  if (!choice.ok)
    return Error(KILN_BAD_ARTIFACT, choice.message);
  codeTarget_ = choice.message;
  if (runtime::envFlag("KILN_VERBOSE"))
    std::fprintf(stderr, "kiln: %s: %s\n", context.plan.path.c_str(), choice.message.c_str());
  const uint8_t *code = context.source.code;
  size_t size = context.source.codeSize;
  if (choice.index >= 0) { // inside the section: validateCpuObjects
    code += manifest.cpu_objects(choice.index).offset();
    size = manifest.cpu_objects(choice.index).size();
  }
  std::string error;
  if (!(library_ = loadSharedObject(code, size, libraryFd_, error)))
    return Error(KILN_BAD_ARTIFACT, context.plan.path + ": " + error);
  return {};
}

Error CpuExecutor::load(const ExecutorContext &context) {
  const LoadedPlan &plan = context.plan;
  dispatchFn_.assign(plan.dispatches.size(), nullptr);
  dispatchRange_.assign(plan.dispatches.size(), nullptr);
  std::vector<kiln_kernel_fn> kernelFn(plan.kernels.size(), nullptr);
  std::vector<kiln_kernel_range_fn> kernelRange(plan.kernels.size(), nullptr);
  for (size_t d = 0; d < plan.dispatches.size(); ++d) {
    const PlanDispatch &dispatch = plan.dispatches[d];
    if (dispatch.executor != context.executor)
      continue;
    kiln_kernel_fn &fn = kernelFn[size_t(dispatch.kernel)];
    if (!fn) {
      if (!library_)
        if (Error e = loadCode(context))
          return e;
      const std::string &symbol = plan.kernels[size_t(dispatch.kernel)].symbol;
      ::dlerror();
      fn = reinterpret_cast<kiln_kernel_fn>(::dlsym(library_, symbol.c_str()));
      kiln_kernel_range_fn range = reinterpret_cast<kiln_kernel_range_fn>(::dlsym(library_, (symbol + "_range").c_str()));
      if (!fn || !range)
        return Error(KILN_BAD_ARTIFACT, plan.path + ": kernel '" + symbol + (fn ? "_range" : "") +
                                            "' missing from the code section");
      kernelRange[size_t(dispatch.kernel)] = range;
    }
    dispatchFn_[d] = fn;
    dispatchRange_[d] = kernelRange[size_t(dispatch.kernel)];
  }
  if (const char *v = std::getenv("KILN_THREADS_GRAIN"))
    grainOverride_ = std::max(0LL, std::atoll(v));
  if (const char *v = std::getenv("KILN_BLAS_THREADS"))
    blasThreads_ = int(std::clamp(std::atoll(v), 0LL, 1024LL));
  if ((profile_ = profileRequested()))
    for (Profile &p : profiles_) {
      p.ns.assign(plan.dispatches.size(), 0);
      p.calls.assign(plan.dispatches.size(), 0);
    }
  return {};
}

Error CpuExecutor::createSession(std::unique_ptr<ExecutorSession> &out) {
  out = std::make_unique<CpuSession>(*this);
  return {};
}

// The KILN_PROFILE report: time per op kind, then the top dispatches (location, kernel, signature).
void CpuExecutor::printProfile(const Profile &p, const char *what) const {
  uint64_t total = 0;
  for (uint64_t ns : p.ns)
    total += ns;
  if (p.runs == 0)
    return;
  std::fprintf(stderr,
               "kiln profile, %s: %llu runs, %llu tokens, %.3f ms per run (%.3f ms in the CPU dispatches), %zu "
               "dispatches per run\n",
               what, (unsigned long long)p.runs, (unsigned long long)p.tokens, 1e-6 * double(p.runNs) / double(p.runs),
               1e-6 * double(total) / double(p.runs), plan_.dispatches.size());
  struct Kind {
    uint64_t ns = 0, calls = 0;
  };
  std::map<std::string, Kind> kinds;
  for (size_t d = 0; d < p.ns.size(); ++d) {
    if (!p.calls[d])
      continue;
    Kind &k = kinds[plan_.kernels[size_t(plan_.dispatches[d].kernel)].op];
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
  const int top = runtime::envCount("KILN_PROFILE_TOP", 15);
  if (order.size() > static_cast<size_t>(top))
    order.resize(static_cast<size_t>(top));
  std::fprintf(stderr, "  top dispatches:\n  %5s %12s %7s %10s  %-10s %s\n", "#", "ms/run", "share", "us/call",
               "kernel", "location / signature");
  for (size_t d : order) {
    const PlanDispatch &disp = plan_.dispatches[d];
    const PlanKernel &k = plan_.kernels[size_t(disp.kernel)];
    std::fprintf(stderr, "  %5zu %12.3f %6.1f%% %10.2f  %-10s %s\n         %s\n", d, 1e-6 * double(p.ns[d]) / double(p.runs),
                 100.0 * double(p.ns[d]) / safeTotal, 1e-3 * double(p.ns[d]) / double(p.calls[d]), k.symbol.c_str(),
                 disp.location.c_str(), k.signature.c_str());
  }
}

} // namespace

Error createExecutor(const ExecutorContext &context, std::unique_ptr<Executor> &out) {
  auto executor = std::make_unique<CpuExecutor>(context);
  if (Error e = executor->load(context))
    return e;
  out = std::move(executor);
  return {};
}

} // namespace kiln::runtime::cpu
