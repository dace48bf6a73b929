//===- Passes.td - kiln passes ------------------------------*- tablegen -*-===//
#ifndef KILN_PASSES_TD
#define KILN_PASSES_TD

include "mlir/Pass/PassBase.td"

defvar kReportOption = Option<"report", "report", "bool", /*default=*/"false",
                              "print what was fused, and what was not and why, to stderr">;

def KilnFuseNorms : Pass<"kiln-fuse-norms", "mlir::ModuleOp"> {
  let summary = "raise RMSNorm (w and Gemma's 1 + w) and LayerNorm patterns to kiln.rms_norm / kiln.layer_norm";
  let description = [{
    RMSNorm: mul(mul(x, rsqrt(add(reduce_mean(pow(x, 2), -1), eps))), w), or w replaced by add(1, w)
    (unit_offset). LayerNorm: c = sub(x, reduce_mean(x, -1)); add(mul(mul(c, rsqrt(add(reduce_mean(mul(c, c),
    -1), eps))), w), b). eps must be a splat constant >= 0 and the exponent exactly 2; w and b [n] over the
    last dim n. The replaced ops are left for DCE.
  }];
  let options = [kReportOption];
}

def KilnFuseAddNorms : Pass<"kiln-fuse-add-norms", "mlir::ModuleOp"> {
  let summary = "fold a residual add into the kiln.rms_norm / kiln.layer_norm that reads it";
  let description = [{
    Run after kiln-fuse-norms and a cleanup (kiln-fuse does: dead primitive ops would count as users of the
    add). rms_norm(h, w) / layer_norm(h, w, b) with h = add(x, r), x and r of h's type
    (no broadcast), and h read by another op too (the next residual) -> add_rms_norm(x, r, w) /
    add_layer_norm(x, r, w, b) with results (h, y): one pass over x and r instead of writing h and reading it
    back. An add read by the norm alone is left (h would be a dead buffer); so are broadcasting adds and norms
    not directly over an add.
  }];
  let options = [kReportOption];
}

def KilnFuseRope : Pass<"kiln-fuse-rope", "mlir::ModuleOp"> {
  let summary = "raise rotate-half and interleaved RoPE over cos/sin tables of positions * inv_freq to kiln.rope";
  let description = [{
    Rotate-half: add(mul(rot, cos(E)), mul(concat(neg(slice(rot, r/2, r)), slice(rot, 0, r/2)), sin(E))) with
    E = reshape(concat(f, f)). Interleaved (GPT-J's rotate_every_two, -> interleaved = true):
    add(mul(rot, C), mul(reshape(concat(neg(slice(y, 4, 1, 2)), slice(y, 4, 0, 1))), S)) with
    y = reshape(rot) [.., r/2, 2] and C, S = repeat-pairs(cos(f)), repeat-pairs(sin(f)) (or cos, sin of
    repeat-pairs(f)), repeat-pairs(t) = reshape(broadcast_to(reshape(t, [.., r/2, 1]), [.., r/2, 2])).
    Both: f = mul(reshape(convert(positions)), constant inv_freq); rot = x, or slice(x, 0, r) with the
    result concatenated with slice(x, r, d) (partial rotary). Positions [1, s] are broadcast to [b, s];
    inv_freq becomes a [r/2] kiln.constant.
  }];
  let options = [kReportOption];
}

def KilnFuseAttention : Pass<"kiln-fuse-attention", "mlir::ModuleOp"> {
  let summary = "raise matmul-scale-[softcap]-[bias]-[mask]-softmax-matmul to kiln.attention";
  let description = [{
    matmul(softmax(s, -1), v) with s = add-tree of [softcap(]matmul(q, k, transpose_b) * scale[)] and
    addends recognized as: the causal mask (select(compare le kpos qpos, 0, -inf), qpos = iota + sym p over
    [s, 1], kpos = iota over [1, p + s], optionally AND-ed with compare lt (qpos - kpos, W)) -> mask causal
    (window W); the padding mask (select(compare ne attention_mask 0, 0, -inf) as [b, 1, 1, t]) ->
    key_padding_mask; anything else that is not mask-like -> bias. K and V through the repeat-kv pattern
    (reshape / broadcast_to / reshape) are fused un-repeated (GQA). The mask computation becomes dead.
  }];
  let options = [kReportOption];
}

def KilnFuseMatmulGroups : Pass<"kiln-fuse-matmul-groups", "mlir::ModuleOp"> {
  let summary = "Linear projections of one input as kiln.matmul_group (Q/K/V; gate/up with silu * up)";
  let description = [{
    kiln::passes::fuseMatmulGroups (Fusion.h): mul(silu(matmul(x, Wg)), matmul(x, Wu)) (transpose_b, each
    product and the silu read only there, one weight shape) -> matmul_group {silu_mul = true} (x, Wg, Wu);
    then transpose_b matmuls of one x whose rhs is a whole 2-d kiln.weight (or a kiln.convert of one), up
    to 4 in block order -> matmul_group (x, W_0, ...) before the first, the weights' definitions hoisted
    above it. Row chunks of kiln-split-weights and other rhs stay. Weights group only with weights stored alike
    (one element type, and one block-quantized format or none: --weights q8_0|q4_0). kiln compile runs it for
    --target vulkan (the CPU has no matmul_group kernel), keeping only groups the device's kernel accepts.
  }];
  let options = [kReportOption];
}

def KilnFuseMatmulNorms : Pass<"kiln-fuse-matmul-norms", "mlir::ModuleOp"> {
  let summary = "Residual adds into the GEMV's epilogue, RMSNorms into its prologue (kiln.matmul_group)";
  let description = [{
    kiln::passes::fuseMatmulNorms (Fusion.h), after kiln-fuse-matmul-groups: add(x W^T, r) (a transpose_b
    matmul over a whole Linear weight read only there, r of the add's type; also the add of an add_rms_norm,
    which splits into the group and a plain rms_norm) -> matmul_group (x, W) residual(r); then rms_norm(x, w)
    read only as the lhs of a matmul_group without a norm (or of one Linear matmul) -> that group with
    norm(w) {norm_eps}. kiln compile runs it for --target vulkan (the CPU has no matmul_group kernel),
    keeping only groups the device's kernel accepts.
  }];
  let options = [kReportOption];
}

def KilnFuse : Pass<"kiln-fuse", "mlir::ModuleOp"> {
  let summary = "kiln-fuse-norms, kiln-fuse-rope, kiln-fuse-attention, then canonicalize, CSE and DCE";
  let description = [{ The pipeline of kiln::passes::runFusionPasses (what kiln compile runs by default). }];
  let options = [kReportOption];
}

def KilnSplitWeights : Pass<"kiln-split-weights", "mlir::ModuleOp"> {
  let summary = "split weights larger than one device storage buffer into row chunks (gather, matmul uses)";
  let description = [{
    kiln::passes::splitLargeWeights (SplitWeights.h): a kiln.weight larger than max-buffer-bytes becomes
    row chunks kiln.weight {rows = array<i64: a, b>}; gather(W, ids) becomes per-chunk gathers of clamped,
    offset ids combined by select(ids >= a), matmul(x, W, transpose_b) a concat of per-chunk matmuls along
    the last axis, matmul(x, W) a sum of matmul(slice(x), W_i); through one kiln.convert. Other uses keep
    the whole weight. kiln compile runs it for --target vulkan with the profile's limits.
  }];
  let options = [
    Option<"maxBufferBytes", "max-buffer-bytes", "uint64_t", /*default=*/"0",
           "the largest buffer one kernel binding may address (0: split nothing)">,
    Option<"limitName", "limit-name", "std::string", /*default=*/"\"\"",
           "what the limit is called in the report (default: 'the buffer limit N')">,
    Option<"maxContext", "max-context", "int64_t", /*default=*/"2048", "the bound of p + s (result sizes)">,
    Option<"maxBatch", "max-batch", "int64_t", /*default=*/"1", "the bound of b (result sizes)">,
    kReportOption];
}

#endif // KILN_PASSES_TD
