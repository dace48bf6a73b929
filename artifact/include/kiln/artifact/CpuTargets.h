//===- CpuTargets.h - the CPU targets of an artifact's kernel objects -*- C++ -*-===//
//
// An artifact's CPU_CODE section holds one shared object per CPU target (Manifest.cpu_objects), each with
// the x86 ISA features its code may use. The names are LLVM's (`-mattr`, llvm::sys::getHostCPUFeatures),
// limited to the features LLVM's code generation emits for ordinary code (SSE / AVX / AVX-512 / AVX10 / APX,
// FMA, F16C, BMI, ...): system and intrinsic-only features (AES, SHA, AMX, XSAVE, RDRAND, ...) are not
// recorded, so that an artifact is not refused for an instruction its kernels cannot contain.
// The runtime detects the host's features (runtime/src/cpu/HostCpu.h: cpuid + xgetbv) and loads the first
// object whose features it has (chooseCpuObject). No LLVM here.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_ARTIFACT_CPUTARGETS_H
#define KILN_ARTIFACT_CPUTARGETS_H

#include "kiln/support/Status.h"
#include "kiln_artifact.pb.h"

#include <set>
#include <string>
#include <vector>

namespace kiln::artifact {

using CpuFeatureSet = std::set<std::string>;

/// Every feature name an object may record, sorted.
const std::vector<std::string> &cpuFeatureNames();
bool isCpuFeatureName(const std::string &name);

/// The features `object` records that `host` lacks, in the object's order.
std::vector<std::string> missingCpuFeatures(const CpuObject &object, const CpuFeatureSet &host);

/// The highest x86-64 psABI level whose features `host` has ("x86-64-v4", ..., "x86-64"): what a refusal
/// suggests recompiling for.
std::string bestX86Level(const CpuFeatureSet &host);

/// Which kernel object of `manifest` a host with the features `host` loads.
struct CpuObjectChoice {
  bool ok = false;
  int index = -1;      ///< into Manifest.cpu_objects; -1 with ok: no recorded objects (the whole section)
  std::string message; ///< ok: which object and why (the skipped ones and what they need); else the refusal,
                       ///< one line starting with `file`, naming the missing features and how to recompile
};
/// The first object (preference order) whose features `host` all has.
CpuObjectChoice chooseCpuObject(const Manifest &manifest, const CpuFeatureSet &host, const std::string &file);

/// Manifest.cpu_objects against a CPU_CODE section of `codeSize` bytes: at most 16, each with a printable
/// CPU name, known features sorted without repeats, 64-byte aligned, non-empty, inside the section and not
/// overlapping another. One line "FILE: manifest: cpu object N (NAME): ..." on failure.
Status validateCpuObjects(const Manifest &manifest, uint64_t codeSize, const std::string &file);

} // namespace kiln::artifact

#endif // KILN_ARTIFACT_CPUTARGETS_H
