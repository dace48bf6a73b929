//===- Executors.cpp - the table of backends ------------------------------===//
//
// One entry per backend (Executor.h). The host executor comes first: its kernels resolve before a device is
// opened, and it begins each step first and finishes it last.
//
//===----------------------------------------------------------------------===//
#include "Executor.h"

#include "cpu/CpuExecutor.h"
#include "vulkan/VulkanExecutor.h"

namespace kiln::runtime {

const std::vector<ExecutorKind> &executorKinds() {
  static const std::vector<ExecutorKind> kinds = {
      {kHostExecutor, /*host=*/true, cpu::createExecutor},
      {"vulkan", /*host=*/false, vulkan::createExecutor},
  };
  return kinds;
}

const ExecutorKind *findExecutorKind(const std::string &device) {
  for (const ExecutorKind &kind : executorKinds())
    if (device == kind.device)
      return &kind;
  return nullptr;
}

} // namespace kiln::runtime
