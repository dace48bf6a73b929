//===- Fusion.h - raising primitive patterns to kiln's fused ops -*- C++ -*-===//
//
// The model builders emit the reference math as primitive ops; these entry points raise the patterns to
// kiln.rms_norm, kiln.layer_norm, kiln.rope and kiln.attention. Each pattern is checked on structure and
// on values (eps is the add's constant, the pow exponent is exactly 2, the mask's fill values are 0 and
// -inf, the causal compare has the right direction, ...). A near miss stays unfused, and therefore
// correct, and is listed in the report with the reason.
//
// Typical use (kiln compile / kiln eval --fuse):
//   kiln::passes::FusionReport report;
//   if (failed(kiln::passes::runFusionPasses(module, &report))) ...
//   for (auto &line : report.fused) ...   // "rms_norm at model.layers.0.input_layernorm"
//   for (auto &line : report.unfused) ... // "softmax at X left unfused: <why>"
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_FUSION_H
#define KILN_PASSES_FUSION_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include <functional>
#include <string>
#include <vector>

namespace kiln::passes {

struct FusionReport {
  /// One line per fused op: "<op> at <location>", e.g. "rms_norm at model.layers.0.input_layernorm",
  /// "attention at model.layers.0.self_attn (causal, window 4, gqa 4:2)".
  std::vector<std::string> fused;
  /// One line per candidate left as primitive ops: "<anchor> at <location> left unfused: <why>".
  std::vector<std::string> unfused;
  /// Number of fused ops of each kind ("rms_norm", "layer_norm", "rope", "attention").
  size_t count(llvm::StringRef kind) const;
};

/// The individual fusions over every function of `module`; `report` may be null. They only add ops and
/// redirect uses: the replaced primitive ops stay until a cleanup (canonicalize / DCE).
void fuseNorms(mlir::ModuleOp module, FusionReport *report);
void fuseRope(mlir::ModuleOp module, FusionReport *report);
void fuseAttention(mlir::ModuleOp module, FusionReport *report);
/// After fuseNorms: a norm of h = add(x, r) (same types, the add also read elsewhere: the residual) becomes
/// kiln.add_rms_norm / kiln.add_layer_norm (x, r, w[, b]) -> (h, y); the norm (and the add) are erased.
/// Reported as "add_rms_norm at ..." / "add_layer_norm at ..." (the "rms_norm at ..." line stays).
void fuseAddNorms(mlir::ModuleOp module, FusionReport *report);

/// Accepts a kiln.matmul_group fuseMatmulGroups is about to make: "" to keep it, else why not (e.g. the
/// device has no kernel for it; the matmuls stay and the report says why).
using MatmulGroupFilter = std::function<std::string(mlir::Operation *)>;
/// Linear projections of one input as kiln.matmul_group (FusionMatmulGroups.cpp; kiln compile --target vulkan
/// after kiln-split-weights): mul(silu(x Wg^T), x Wu^T) -> matmul_group {silu_mul} (x, Wg, Wu), then the
/// transpose_b matmuls of one lhs with whole 2-d weights (or their converts), up to 4 at a time, ->
/// matmul_group (x, W_0, ...). Reported as "matmul_group at <first matmul> (q_proj + k_proj + v_proj)".
void fuseMatmulGroups(mlir::ModuleOp module, FusionReport *report, const MatmulGroupFilter &accept);
void fuseMatmulGroups(mlir::ModuleOp module, FusionReport *report);
/// After fuseMatmulGroups (FusionMatmulNorms.cpp; kiln compile --target vulkan): residual adds into the
/// epilogue of their Linear matmul (matmul_group (x, W) residual(r); an add_rms_norm splits into that group
/// and a plain rms_norm), then rms_norms read only as the lhs of one matmul_group / Linear matmul into its
/// prologue (norm(w)). Reported as "matmul_residual at <matmul> (o_proj + residual)" and
/// "matmul_norm at <norm> (into q_proj + k_proj + v_proj)".
void fuseMatmulNorms(mlir::ModuleOp module, FusionReport *report, const MatmulGroupFilter &accept);
void fuseMatmulNorms(mlir::ModuleOp module, FusionReport *report);

/// Norms, rope, attention, then canonicalize + CSE + dead-code elimination of what became dead (the
/// mask computation, the cos/sin tables, the repeated K/V), then fuseAddNorms (the dead primitive norm ops
/// would count as users of the residual add). Fails only if the module no longer verifies
/// (an internal error, reported through the context's diagnostics).
mlir::LogicalResult runFusionPasses(mlir::ModuleOp module, FusionReport *report = nullptr);

/// Registers the kiln-fuse-* passes (kiln-opt).
void registerFusionPasses();

} // namespace kiln::passes

#endif // KILN_PASSES_FUSION_H
