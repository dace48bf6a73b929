//===- ThreadPool.h - fork-join over a session's CPU threads --------*- C++ -*-===//
//
// The threads that split a generated kernel's range (kernel_abi.h): size() - 1 workers plus the calling
// thread. run() hands part p of n to worker p (part 0 to the caller) and returns when all are done. Between
// runs the workers spin for a short while (the next kernel follows within microseconds), then sleep on a
// condition variable; sleep() sends them to sleep at once (before an OpenBLAS call, whose own threads need
// the cores). Plain std::thread: no OpenMP runtime in the runtime library.
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
  /// fn(context, p, parts) for every p in [0, parts), parts <= size(); part 0 on the calling thread.
  void run(int parts, PartFn fn, void *context);
  /// Workers stop spinning and sleep until the next run().
  void sleep() { spin_.store(false, std::memory_order_relaxed); }

private:
  void workerLoop(int index);
  bool waitForJob(uint64_t &seen);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0}; // bumped by every run() (and by the destructor)
  std::atomic<int> sleepers_{0};
  std::atomic<int> pending_{0}; // workers that have not finished with the current run
  std::atomic<bool> spin_{true};
  std::atomic<bool> stop_{false};
  // The current job (written before generation_ is bumped, read after it is seen).
  PartFn fn_ = nullptr;
  void *context_ = nullptr;
  int parts_ = 0;
};

} // namespace kiln::runtime::cpu

#endif // KILN_RUNTIME_CPU_THREADPOOL_H
