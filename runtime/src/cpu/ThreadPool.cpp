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
/// Polls before a worker sleeps (tens to hundreds of microseconds, by the CPU's pause): longer than the gap
/// between two kernels of a step, far shorter than a step.
constexpr int kSpinPolls = 4000;
/// Polls of a waiting caller before it yields its core (to a worker the OS has put on the same one).
constexpr int kPollsBeforeYield = 256;
} // namespace

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i)
    workers_.emplace_back([this] { workerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    ticket_.store((uint64_t(generationOf(ticket_.load()) + 1)) << 32);
  }
  wake_.notify_all();
  for (std::thread &t : workers_)
    t.join();
}

bool ThreadPool::waitForJob(uint32_t generation) {
  auto moved = [&] { return generationOf(ticket_.load()) != generation; };
  for (int i = 0; i < kSpinPolls && spin_.load(std::memory_order_relaxed) && !moved(); ++i)
    KILN_CPU_RELAX();
  if (!moved()) {
    std::unique_lock<std::mutex> lock(mutex_);
    // sleepers_ before the re-check (both seq_cst): run() either sees this sleeper and notifies under the
    // mutex, or its new ticket is seen here.
    sleepers_.fetch_add(1);
    wake_.wait(lock, moved);
    sleepers_.fetch_sub(1);
  }
  return !stop_.load();
}

void ThreadPool::work(uint32_t generation) {
  uint64_t t = ticket_.load();
  for (;;) {
    const uint32_t parts = uint32_t(t >> 16) & 0xFFFF, next = uint32_t(t) & 0xFFFF;
    if (generationOf(t) != generation || next >= parts)
      return;
    if (!ticket_.compare_exchange_weak(t, t + 1))
      continue; // t reloaded
    fn_(context_, int(next), int(parts));
    done_.fetch_add(1, std::memory_order_acq_rel);
    t = ticket_.load();
  }
}

void ThreadPool::workerLoop() {
  uint32_t generation = 0;
  while (waitForJob(generation)) {
    generation = generationOf(ticket_.load());
    work(generation);
  }
}

void ThreadPool::run(int parts, PartFn fn, void *context) {
  if (parts <= 1 || workers_.empty() || parts > 0xFFFF) {
    for (int p = 0; p < parts; ++p)
      fn(context, p, parts);
    return;
  }
  fn_ = fn;
  context_ = context;
  done_.store(0, std::memory_order_relaxed);
  spin_.store(true, std::memory_order_relaxed);
  const uint32_t generation = generationOf(ticket_.load()) + 1;
  ticket_.store(uint64_t(generation) << 32 | uint64_t(parts) << 16); // seq_cst: publishes the job
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  work(generation);
  for (int polls = 0; done_.load(std::memory_order_acquire) != parts; ++polls) {
    if (polls < kPollsBeforeYield)
      KILN_CPU_RELAX();
    else
      std::this_thread::yield();
  }
}

} // namespace kiln::runtime::cpu
