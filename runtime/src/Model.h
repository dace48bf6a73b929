//===- Model.h - a loaded artifact: its plan and its executors ------*- C++ -*-===//
//
// Load: open (mmap) the artifact and validate it (ArtifactSource), decode the manifest once (LoadedPlan), then
// create an executor for every device the plan names, from the table of Executor.h. Read-only afterwards:
// any number of Sessions of one Model may run concurrently. (Namespace core: kiln::runtime::Model and Session are
// the public wrapper of kiln.hpp.)
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_MODEL_H
#define KILN_RUNTIME_MODEL_H

#include "ArtifactSource.h"
#include "Error.h"
#include "Executor.h"
#include "LoadedPlan.h"
#include "Text.h"

#include <memory>
#include <string>
#include <vector>

namespace kiln::runtime::core {

struct LoadOptions {
  int numThreads = 0; // 0: the artifact's default, else 2
  bool verifyChecksums = true;
};

class Model {
public:
  Model() = default;
  Model(const Model &) = delete;
  Model &operator=(const Model &) = delete;
  ~Model();

  /// Errors: IO_ERROR (cannot open / no device), BAD_ARTIFACT (anything about the contents).
  Error load(const std::string &path, const LoadOptions &options);

  const LoadedPlan &plan() const { return plan_; }
  /// The text side (tokenizer, chat template, EOS ids, pooling); present() is false for an ids-only artifact.
  const TextModel &text() const { return text_; }
  /// The weights region: every WEIGHT buffer at its offset (mapped, or generated for synthetic weights).
  const uint8_t *weights() const { return source_.weights; }
  int numThreads() const { return numThreads_; }
  /// The device executor's device name, or "cpu" for an artifact without one.
  const std::string &device() const { return device_; }
  /// The CPU kernel object loaded ("CPU kernels for x86-64-v3 (object 2 of 3; ...)"), "" without CPU kernels.
  const std::string &cpuTarget() const { return cpuTarget_; }
  /// Bytes one session allocates: the arena and the KV cache (one storage per in-place entry, two halves of
  /// any other).
  uint64_t sessionBytes() const;
  /// The executors, by LoadedPlan::executors index.
  const std::vector<std::unique_ptr<Executor>> &executors() const { return executors_; }
  /// Executor indices in table order (beginStep order; finishStep runs in reverse).
  const std::vector<int> &stepOrder() const { return stepOrder_; }
  /// The device executor's index, or -1.
  int deviceExecutor() const { return deviceExecutor_; }

private:
  Error createExecutors();

  ArtifactSource source_;
  LoadedPlan plan_;
  TextModel text_;
  std::vector<std::unique_ptr<Executor>> executors_;
  std::vector<int> stepOrder_;
  int deviceExecutor_ = -1;
  int numThreads_ = 2;
  std::string device_ = kHostExecutor;
  std::string cpuTarget_;
};

} // namespace kiln::runtime::core

#endif // KILN_RUNTIME_MODEL_H
