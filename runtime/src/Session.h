//===- Session.h - one sequence (batch) of a Model ----------------*- C++ -*-===//
//
// Create: allocate the host arena and every host KV-cache buffer once (one storage of capacity rows for an
// in-place entry, which past, present and the appended rows view; both halves of any other), input scratch,
// and a session on every executor (device memory, command buffers). Run: check the inputs, evaluate the
// symbols, point every host buffer, run the plan's segments on their executors, read the outputs, swap the
// KV halves of the entries that are not in place.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_SESSION_H
#define KILN_RUNTIME_SESSION_H

#include "Error.h"
#include "Executor.h"
#include "Model.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::runtime::core {

/// A 64-byte aligned host allocation (freed on destruction).
class HostBuffer {
public:
  HostBuffer() = default;
  HostBuffer(const HostBuffer &) = delete;
  HostBuffer &operator=(const HostBuffer &) = delete;
  ~HostBuffer();
  /// Allocates `bytes` (at least 64, rounded up to 64); false when out of memory.
  bool allocate(uint64_t bytes);
  uint8_t *data() const { return static_cast<uint8_t *>(data_); }

private:
  void *data_ = nullptr;
};

class Session {
public:
  /// Errors: OUT_OF_RANGE (batch beyond the max), INTERNAL (out of memory, device failures).
  Error create(const Model &model, int64_t batch);

  /// One chunk (kiln_session_run). On failure nothing has changed.
  Error run(const int64_t *ids, const int64_t *mask, int64_t batch, int64_t seq);
  /// An F32 output of the last run (kiln_session_output); `shape` gets its dims.
  Error output(const std::string &name, const float **data, const std::vector<int64_t> **shape) const;
  void reset();
  /// Which rows of each chunk get logits: every row (false, the default) or the last one (true: r = 1).
  /// INVALID_ARGUMENT for the last row when the artifact has no logits-rows symbol.
  Error setLogitsRows(bool lastOnly);
  bool lastRowLogits() const { return lastRowLogits_; }

  int64_t past() const { return past_; }
  int64_t batch() const { return batch_; }
  int64_t maxContext() const;
  const Model &model() const { return *model_; }
  const LoadedPlan &plan() const { return *plan_; }
  uint64_t deviceTimeNs() const;

private:
  bool allocateHostMemory();
  Error checkInputs(const int64_t *ids, const int64_t *mask, int64_t batch, int64_t seq) const;
  Error bindHostBuffers(const int64_t *ids, const int64_t *mask, const StepState &step);
  Error bindKvView(const PlanBuffer &b, uint64_t bytes, const StepState &step);
  Error bindInput(const PlanBuffer &b, uint64_t bytes, const int64_t *ids, const int64_t *mask,
                  const StepState &step);
  Error execute(StepState &step);

  const Model *model_ = nullptr;
  const LoadedPlan *plan_ = nullptr;
  int64_t batch_ = 0, past_ = 0;
  int parity_ = 0; // which KV half holds the past
  HostBuffer arena_;
  std::vector<HostBuffer> kvHalves_[2]; // per entry (host entries only; in place: [0] is the one storage)
  HostBuffer onesMask_;                 // attention_mask of ones (an omitted mask), at its max size
  HostBuffer idsScratch_, maskScratch_; // input_ids / attention_mask converted to I32 when the artifact wants I32
  std::vector<void *> host_;            // per buffer, this run
  std::vector<int64_t> symbolValues_;   // per plan symbol, this run
  std::vector<std::unique_ptr<ExecutorSession>> executors_; // by plan executor index
  bool hasOutputs_ = false;
  bool lastRowLogits_ = false;
  std::vector<const float *> outputData_;
  std::vector<std::vector<int64_t>> outputShapes_;
};

} // namespace kiln::runtime::core

#endif // KILN_RUNTIME_SESSION_H
