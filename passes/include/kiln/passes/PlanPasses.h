//===- PlanPasses.h - kiln-partition, kiln-fold-device-weights, kiln-place-kv-cache -*- C++ -*-===//
#ifndef KILN_PASSES_PLANPASSES_H
#define KILN_PASSES_PLANPASSES_H

#include "kiln/passes/Legality.h"

namespace kiln::passes {

/// Registers the plan-level passes of PlanPasses.td. `catalog` is the device backend's kernel catalog
/// (legality (c)); it may be null (then only the profile decides) and must outlive every pass run.
/// kiln-opt passes the SPIR-V backend's, as kiln compile does (compiler/DeviceCatalog.h).
void registerPlanPasses(const DeviceKernelCatalog *catalog);

} // namespace kiln::passes

#endif // KILN_PASSES_PLANPASSES_H
