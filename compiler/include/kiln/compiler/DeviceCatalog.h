//===- DeviceCatalog.h - what the device backend can generate, for legality -*- C++ -*-===//
#ifndef KILN_COMPILER_DEVICECATALOG_H
#define KILN_COMPILER_DEVICECATALOG_H

#include "kiln/passes/Legality.h"

namespace kiln::compiler {

/// Legality (c) (passes/Legality.h): whether codegen/spirv has a kernel variant of an op that fits a
/// profile. Null in a build without the SPIR-V backend (then only the profile decides). kiln compile and
/// kiln-opt (--kiln-partition) both use it, so their partitions are the same.
const passes::DeviceKernelCatalog *deviceKernelCatalog();

} // namespace kiln::compiler

#endif // KILN_COMPILER_DEVICECATALOG_H
