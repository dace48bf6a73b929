//===- Model.cpp - loading an artifact ------------------------------------===//
#include "Model.h"

#include <algorithm>

namespace kiln::runtime::core {

Model::~Model() {
  // Device executors first: their sessions are gone, their device memory goes before the host code.
  for (auto it = stepOrder_.rbegin(); it != stepOrder_.rend(); ++it)
    executors_[size_t(*it)].reset();
}

Error Model::load(const std::string &path, const LoadOptions &options) {
  std::string error;
  if (kiln_status st = openArtifactSource(path, options.verifyChecksums, source_, error); st != KILN_OK)
    return Error(st, error);
  std::string defaultDevice;
  for (const ExecutorKind &kind : executorKinds())
    if (!kind.host && defaultDevice.empty())
      defaultDevice = kind.device;
  StatusOr<LoadedPlan> plan = buildLoadedPlan(*source_.manifest, path, defaultDevice);
  if (!plan.ok())
    return Error(KILN_BAD_ARTIFACT, plan.status().message());
  plan_ = std::move(*plan);
  text_.attach(source_.text, path, plan_.vocabSize);
  numThreads_ = options.numThreads > 0 ? options.numThreads
                : plan_.numThreadsDefault > 0 ? static_cast<int>(plan_.numThreadsDefault) : 2;
  return createExecutors();
}

Error Model::createExecutors() {
  executors_.resize(plan_.executors.size());
  for (size_t i = 0; i < plan_.executors.size(); ++i)
    if (!findExecutorKind(plan_.executors[i]))
      return Error(KILN_BAD_ARTIFACT, plan_.path + ": dispatches run on device '" + plan_.executors[i] +
                                          "', which this runtime does not drive");
  // In table order: the host's kernels resolve before a device is opened.
  for (const ExecutorKind &kind : executorKinds()) {
    auto it = std::find(plan_.executors.begin(), plan_.executors.end(), kind.device);
    if (it == plan_.executors.end())
      continue;
    const int index = int(it - plan_.executors.begin());
    ExecutorContext context{plan_, source_, index, numThreads_};
    if (Error e = kind.create(context, executors_[size_t(index)]))
      return e;
    stepOrder_.push_back(index);
    if (kind.host)
      cpuTarget_ = executors_[size_t(index)]->codeTarget();
    if (!kind.host) {
      deviceExecutor_ = index;
      device_ = executors_[size_t(index)]->deviceName();
    }
  }
  return {};
}

uint64_t Model::sessionBytes() const {
  uint64_t total = plan_.arenaBytes;
  for (const PlanKvEntry &e : plan_.kv)
    total += (e.inPlace ? 1 : 2) * e.bytes;
  return total;
}

} // namespace kiln::runtime::core
