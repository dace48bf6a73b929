//===- Executor.h - the interface every backend implements ----------*- C++ -*-===//
//
// An executor runs the dispatches of one device (Dispatch.device) of a LoadedPlan. The Model creates one per
// device its plan names, from the table in Executors.cpp (as IREE registers HAL drivers); the Session creates
// one ExecutorSession per executor and, for every step, calls
//   beginStep (all executors, in table order), runSegment (each segment of consecutive dispatches, in
//   dispatch order, on the executor that owns it), finishStep (all executors, in reverse order),
// then reads the outputs: host buffers from StepState::host, the device's own through outputData().
// Host memory (the arena, host KV cache, inputs) belongs to the Session and is shared through
// StepState::host; device memory belongs to the device executor's session.
// A third backend is a new folder with a create function and one line in Executors.cpp.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_EXECUTOR_H
#define KILN_RUNTIME_EXECUTOR_H

#include "ArtifactSource.h"
#include "Error.h"
#include "LoadedPlan.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::runtime {

/// One step (one kiln_session_run) as every executor sees it.
struct StepState {
  const int64_t *symbols = nullptr; // values of LoadedPlan::symbols, in order
  int64_t batch = 0, seq = 0, past = 0;
  int parity = 0;                   // the half of a two-buffer KV entry that holds the past
  std::vector<void *> *host = nullptr; // per buffer: where a HOST buffer lives this step (null: DEVICE)
};

class ExecutorSession {
public:
  virtual ~ExecutorSession() = default;
  virtual Error beginStep(StepState &) { return {}; }
  /// Runs (or, on a device, enqueues) the dispatches [segment.begin, segment.end), all this executor's.
  virtual Error runSegment(const PlanSegment &segment, StepState &step) = 0;
  /// Completes the step: everything the device still has pending has run and its results are readable.
  virtual Error finishStep(StepState &) { return {}; }
  /// Where the DEVICE output buffer `id` can be read on the host after finishStep (null if not this one's).
  virtual const void *outputData(int /*id*/) const { return nullptr; }
  /// The device time of the last step in nanoseconds (0 when not measured).
  virtual uint64_t deviceTimeNs() const { return 0; }
};

class Executor {
public:
  virtual ~Executor() = default;
  /// What kiln_model_device reports for a device executor (e.g. the Vulkan device's name).
  virtual std::string deviceName() const = 0;
  /// The host executor: which CPU kernel object it loaded and why (kiln_model_cpu_target); "" for others.
  virtual std::string codeTarget() const { return {}; }
  /// A session's state on this executor (device memory, command buffers, ...). Errors are INTERNAL.
  virtual Error createSession(std::unique_ptr<ExecutorSession> &out) = 0;
};

/// What an executor is created from. The plan and the source outlive it.
struct ExecutorContext {
  const LoadedPlan &plan;
  const ArtifactSource &source; // the code section, the weights region
  int executor = -1;            // this executor's index in plan.executors
  int numThreads = 1;           // the model's CPU threads (kiln_load_options.num_threads resolved)
};

/// One backend: the Dispatch.device name it runs, whether it runs on host memory, and its constructor
/// (errors: BAD_ARTIFACT for what the artifact gets wrong, IO_ERROR for a missing device or library).
struct ExecutorKind {
  const char *device;
  bool host;
  Error (*create)(const ExecutorContext &context, std::unique_ptr<Executor> &out);
};

/// The registered backends, the host one first.
const std::vector<ExecutorKind> &executorKinds();
/// The entry for `device`, or null.
const ExecutorKind *findExecutorKind(const std::string &device);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_EXECUTOR_H
