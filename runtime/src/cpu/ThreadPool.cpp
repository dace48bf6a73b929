//===- ThreadPool.cpp -----------------------------------------------------===//
#include "cpu/ThreadPool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KILN_CPU_RELAX() _mm_pause()
#else
#define KILN_CPU_RELAX() std::this_thread::yield()
#endif

namespace kiln::runtime::cpu {
namespace {
/// Polls before a worker sleeps: about 50-100 microseconds of pause instructions, longer than the gap
/// between two kernels of a step, far shorter than a step.
constexpr int kSpinPolls = 20000;
} // namespace

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i)
    workers_.emplace_back([this, i] { workerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (std::thread &t : workers_)
    t.join();
}

/// Waits until generation_ moves past `seen` (then updates it); false when the pool stops.
bool ThreadPool::waitForJob(uint64_t &seen) {
  for (int i = 0; i < kSpinPolls && spin_.load(std::memory_order_relaxed); ++i) {
    if (generation_.load(std::memory_order_acquire) != seen)
      break;
    KILN_CPU_RELAX();
  }
  if (generation_.load(std::memory_order_acquire) == seen) {
    std::unique_lock<std::mutex> lock(mutex_);
    // sleepers_ before the re-check (both seq_cst): run() either sees this sleeper and notifies under the
    // mutex, or its new generation is seen here.
    sleepers_.fetch_add(1);
    wake_.wait(lock, [&] { return generation_.load() != seen; });
    sleepers_.fetch_sub(1);
  }
  seen = generation_.load(std::memory_order_acquire);
  return !stop_.load();
}

void ThreadPool::workerLoop(int index) {
  uint64_t seen = 0;
  while (waitForJob(seen)) {
    // Every worker acknowledges every run, with a part or not: the next run() rewrites the job only after
    // all have read this one.
    if (index < parts_)
      fn_(context_, index, parts_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(int parts, PartFn fn, void *context) {
  if (parts <= 1 || workers_.empty()) {
    for (int p = 0; p < parts; ++p)
      fn(context, p, parts);
    return;
  }
  fn_ = fn;
  context_ = context;
  parts_ = parts;
  pending_.store(int(workers_.size()), std::memory_order_relaxed);
  spin_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1); // seq_cst: publishes the job
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  fn(context, 0, parts);
  while (pending_.load(std::memory_order_acquire) != 0)
    KILN_CPU_RELAX();
}

} // namespace kiln::runtime::cpu
