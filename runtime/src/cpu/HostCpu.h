//===- HostCpu.h - the x86 features of the CPU the runtime runs on -*- C++ -*-===//
//
// What the CPU executor checks an artifact's kernel objects against (kiln/artifact/CpuTargets.h): cpuid for
// the instructions, xgetbv for the OS saving the AVX / AVX-512 / APX register state (a feature whose state
// the OS does not save counts as absent, as LLVM's host detection does). Names are LLVM's, only those
// CpuTargets.h records. No LLVM here.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_CPU_HOSTCPU_H
#define KILN_RUNTIME_CPU_HOSTCPU_H

#include <set>
#include <string>

namespace kiln::runtime::cpu {

/// The features of this CPU (empty on a non-x86 host).
std::set<std::string> detectHostCpuFeatures();

/// detectHostCpuFeatures() less the comma-separated names in KILN_CPU_DISABLE: a test (and a user) can make
/// the runtime load the object it would pick on an older CPU.
std::set<std::string> hostCpuFeatures();

} // namespace kiln::runtime::cpu

#endif // KILN_RUNTIME_CPU_HOSTCPU_H
