//===- CpuExecutor.h - the host executor ---------------------------*- C++ -*-===//
//
// Runs the "cpu" dispatches: the generated kernels of the artifact's code section (a shared object loaded by
// CodeLoader, each kernel a kiln_kernel_fn, kernel_abi.h) over the host buffers the Session points. With
// N > 1 threads (the model's num_threads) each session has a ThreadPool of N threads that splits a kernel's
// range when it has at least two grains of work; a kernel that calls OpenBLAS runs alone, with OpenBLAS at N
// threads (set per call under a process-wide lock: the count is process-wide) and the pool asleep.
// KILN_THREADS_GRAIN=G overrides every kernel's grain (1: split every kernel that has a range; tests).
// KILN_PROFILE=1 (any non-empty value but 0): the wall time of every CPU dispatch, summed over all runs,
// separately for decode steps (seq_len 1) and the others, printed to stderr when the model is freed (time
// per op kind, then the top dispatches; KILN_PROFILE_TOP=N of them).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_CPU_CPUEXECUTOR_H
#define KILN_RUNTIME_CPU_CPUEXECUTOR_H

#include "Executor.h"

namespace kiln::runtime::cpu {

/// Loads the code section and resolves the kernel of every dispatch of `context.executor`.
Error createExecutor(const ExecutorContext &context, std::unique_ptr<Executor> &out);

} // namespace kiln::runtime::cpu

#endif // KILN_RUNTIME_CPU_CPUEXECUTOR_H
