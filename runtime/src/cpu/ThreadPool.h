//===- ThreadPool.h - fork-join over a session's CPU threads --------*- C++ -*-===//
//
// The threads that split a generated kernel's range (kernel_abi.h): size() - 1 workers plus the calling
// thread. run() publishes a job of n parts; every thread, the caller included, claims parts from one atomic
// ticket until none is left, so a worker the OS has not scheduled (a loaded machine) delays nothing: the
// others take its parts. run() returns when every part has finished. Between runs the workers spin for a
// short while (the next kernel follows within microseconds), then sleep on a condition variable; sleep()
// sends them to sleep at once (before an OpenBLAS call, whose own threads need the cores). Plain
// std::thread: no OpenMP runtime in the runtime library.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_CPU_THREADPOOL_H
#define KILN_RUNTIME_CPU_THREADPOOL_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln::runtime::cpu {

class ThreadPool {
public:
  using PartFn = void (*)(void *context, int part, int parts);

  /// `threads` >= 1 in all (the caller included).
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  int size() const { return int(workers_.size()) + 1; }
  /// fn(context, p, parts) once for every p in [0, parts) (parts < 2^16), on any of the pool's threads.
  void run(int parts, PartFn fn, void *context);
  /// Workers stop spinning and sleep until the next run().
  void sleep() { spin_.store(false, std::memory_order_relaxed); }

private:
  void workerLoop();
  /// Waits for a ticket of another generation than `generation`; false when the pool stops.
  bool waitForJob(uint32_t generation);
  /// Claims and runs parts of the job of `generation` until none is left.
  void work(uint32_t generation);

  static uint32_t generationOf(uint64_t ticket) { return uint32_t(ticket >> 32); }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  // generation (32 bits) | parts (16) | next unclaimed part (16): a claim is one compare-and-swap, and a
  // thread holding a claimed part knows the job is still the current one (run() waits for every part).
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int> done_{0}; // parts of the current job finished
  std::atomic<int> sleepers_{0};
  std::atomic<bool> spin_{true};
  std::atomic<bool> stop_{false};
  // The current job (written before ticket_ publishes it).
  PartFn fn_ = nullptr;
  void *context_ = nullptr;
};

} // namespace kiln::runtime::cpu

#endif // KILN_RUNTIME_CPU_THREADPOOL_H
