//===- Legality.cpp - device legality of one dispatch ---------------------===//
#include "kiln/passes/Legality.h"

#include "llvm/Support/raw_ostream.h"

#include <set>

namespace kiln::passes {

std::string dtypeName(mlir::Type t) {
  std::string text;
  llvm::raw_string_ostream os(text);
  t.print(os);
  return text;
}

std::string formatBytes(uint64_t n) {
  char buf[64];
  if (n >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", double(n) / double(1ull << 30));
  else if (n >= (1ull << 20))
    std::snprintf(buf, sizeof buf, "%.2f MiB", double(n) / double(1ull << 20));
  else if (n >= 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", double(n) / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  return buf;
}

namespace {
std::string bufferText(const PlanBuffer &b) {
  std::string s = dtypeName(b.elementType) + " [";
  for (size_t i = 0; i < b.shape.size(); ++i)
    s += (i ? ", " : "") + b.shape[i].str();
  return s + "]";
}
} // namespace

std::string vulkanUnsupportedReason(const MemoryPlan &plan, int index, const target::DeviceProfile &profile,
                                    const DeviceKernelCatalog *catalog) {
  const PlanDispatch &d = plan.dispatches[size_t(index)];
  if (!d.op)
    return "";
  const std::string opName = d.op->getName().getStringRef().str();
  // (a) the profile's lists, then storage types.
  if (profile.opUnavailable(opName))
    return "profile lacks " + opName;
  // Block-quantized weights: codegen/spirv reads them as 32-bit words (quant.glsl), so they need no 8- or
  // 16-bit storage; which readers have a kernel (matmul with transpose_b, gather; the GEMV needs subgroup
  // arithmetic) is the catalog's answer below, with the reason for the others.
  std::set<std::string> seen;
  for (int id : d.buffers) {
    std::string dt = dtypeName(plan.buffers[size_t(id)].elementType);
    if (!seen.insert(dt).second)
      continue;
    if (profile.dtypeUnavailable(dt))
      return "profile lacks dtype " + dt;
    if ((dt == "f16" || dt == "bf16") && !profile.storage16)
      return dt + " buffers need 16-bit storage, which the profile lacks";
  }
  // (b) one binding must address each buffer, and each must fit one allocation.
  for (int id : d.buffers) {
    const PlanBuffer &b = plan.buffers[size_t(id)];
    std::string what = std::string(b.kind == BufferKind::Weight ? "weight " : "buffer ") + b.name + " " + bufferText(b);
    if (b.maxBytes > profile.maxStorageBufferRange)
      return what + " is " + formatBytes(b.maxBytes) + " > maxStorageBufferRange " +
             formatBytes(profile.maxStorageBufferRange);
    if (b.maxBytes > profile.maxAllocationSize)
      return what + " is " + formatBytes(b.maxBytes) + " > maxMemoryAllocationSize " +
             formatBytes(profile.maxAllocationSize);
  }
  // (c) the backend's variants.
  if (catalog)
    return catalog->unsupportedReason(d.op, profile);
  return "";
}

} // namespace kiln::passes
