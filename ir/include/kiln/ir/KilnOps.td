//===- KilnOps.td - kiln ops ------------------------------------*- tablegen -*-===//
//
// Primitive ops mirror the reference math of the Hugging Face modeling code; the fused ops (rope, rms_norm,
// layer_norm, attention) are what the fusion passes raise those patterns to. Every op verifies its shapes
// symbolically (ShapeInference.h): the same functions compute result types in the model builders.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_OPS_TD
#define KILN_OPS_TD

include "kiln/ir/KilnBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Enum attributes: checked by the parser, read as C++ enums by every backend
//===----------------------------------------------------------------------===//

def Kiln_ComparePredicate : I32Enum<"ComparePredicate", "the comparison of kiln.compare", [
    I32EnumCase<"eq", 0>, I32EnumCase<"ne", 1>, I32EnumCase<"lt", 2>,
    I32EnumCase<"le", 3>, I32EnumCase<"gt", 4>, I32EnumCase<"ge", 5>]> {
  let cppNamespace = "::kiln::ir";
}
// `kiln.compare lt, ...` in the op's form; `#kiln<predicate lt>` as a bare attribute.
def Kiln_ComparePredicateAttr : EnumAttr<Kiln_Dialect, Kiln_ComparePredicate, "predicate">;

def Kiln_AttentionMask : I32Enum<"AttentionMask", "the mask kind of kiln.attention", [
    I32EnumCase<"causal", 0>, I32EnumCase<"bidirectional", 1>]> {
  let cppNamespace = "::kiln::ir";
}
// `mask = #kiln.mask<causal>` in the attribute dictionary.
def Kiln_AttentionMaskAttr : EnumAttr<Kiln_Dialect, Kiln_AttentionMask, "mask"> {
  let assemblyFormat = "`<` $value `>`";
}

//===----------------------------------------------------------------------===//
// Sources: weights, constants, symbols, iota
//===----------------------------------------------------------------------===//

def Kiln_WeightOp : Kiln_Op<"weight", [Pure]> {
  let summary = "a named parameter of the model's weight table";
  let description = [{
    The tensor `name` of the model's safetensors, in its stored dtype. The IR names weights instead of
    embedding their data, so dumps stay readable and the artifact writer decides where the bytes go.
    With `rows = array<i64: begin, end>` the op is the row chunk [begin, end) of dim 0 of that tensor
    (kiln-split-weights: a weight too large for one device storage buffer); its type is the chunk's.
    With `quant = "q8_0"` or `"q4_0"` (kiln compile / eval --weights q8_0|q4_0) the f32 matrix [rows, cols]
    (cols a multiple of 32) is stored block-quantized (support/include/kiln/support/Quantize.h): its value
    is the dequantized matrix, and a matmul of at most 8 rows against it quantizes its activation rows per
    block of 32 as the decode GEMV does (the interpreter and codegen/cpu agree on this). A row chunk of such a
    matrix keeps `quant`: blocks run along a row, so the chunk is the quantized matrix of its rows.
  }];
  let arguments = (ins StrAttr:$name, OptionalAttr<DenseI64ArrayAttr>:$rows, OptionalAttr<StrAttr>:$quant);
  let results = (outs AnyRankedTensor:$result);
  let builders = [OpBuilder<(ins "::mlir::Type":$type, "::mlir::StringAttr":$name), [{
    build($_builder, $_state, type, name, ::mlir::DenseI64ArrayAttr(), ::mlir::StringAttr());
  }]>];
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Kiln_ConstantOp : Kiln_Op<"constant", [Pure]> {
  let summary = "a small constant tensor (static shape)";
  let arguments = (ins ElementsAttr:$value);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$value attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Kiln_SymOp : Kiln_Op<"sym", [Pure]> {
  let summary = "the run-time value of a symbolic dim, as a 0-d i64 tensor";
  let arguments = (ins StrAttr:$symbol);
  let results = (outs 0DTensorOf<[I64]>:$result);
  let assemblyFormat = "$symbol attr-dict `:` type($result)";
}

def Kiln_IotaOp : Kiln_Op<"iota", [Pure]> {
  let summary = "0, 1, 2, ... along `dim`, the same along every other dim";
  let arguments = (ins I64Attr:$dim);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "`dim` $dim attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

// Binary ops broadcast numpy-style: shapes align at the right; a dim of 1 stretches; other dims must be
// equal as symbolic expressions (equal for every value of the symbols).
class Kiln_BinaryOp<string mnemonic, string desc> : Kiln_Op<mnemonic, [Pure]> {
  let summary = desc;
  let arguments = (ins AnyRankedTensor:$lhs, AnyRankedTensor:$rhs);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::verify() { return verifyBroadcastingOp(getOperation(), 0); }
  }];
}
def Kiln_AddOp : Kiln_BinaryOp<"add", "lhs + rhs">;
def Kiln_SubOp : Kiln_BinaryOp<"sub", "lhs - rhs">;
def Kiln_MulOp : Kiln_BinaryOp<"mul", "lhs * rhs">;
def Kiln_DivOp : Kiln_BinaryOp<"div", "lhs / rhs">;
def Kiln_MaxOp : Kiln_BinaryOp<"max", "max(lhs, rhs)">;
def Kiln_MinOp : Kiln_BinaryOp<"min", "min(lhs, rhs)">;
def Kiln_PowOp : Kiln_BinaryOp<"pow", "lhs ** rhs">;

def Kiln_CompareOp : Kiln_Op<"compare", [Pure]> {
  let summary = "elementwise comparison (eq, ne, lt, le, gt, ge) with broadcasting, to i1";
  let arguments = (ins Kiln_ComparePredicateAttr:$predicate, AnyRankedTensor:$lhs, AnyRankedTensor:$rhs);
  let results = (outs TensorOf<[I1]>:$result);
  // `kiln.compare lt, %a, %b`; the empty literal drops the op's space (the enum prints its own).
  let assemblyFormat = "`` $predicate `,` $lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_SelectOp : Kiln_Op<"select", [Pure]> {
  let summary = "cond ? on_true : on_false, all three broadcast together";
  let arguments = (ins TensorOf<[I1]>:$cond, AnyRankedTensor:$on_true, AnyRankedTensor:$on_false);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$cond `,` $on_true `,` $on_false attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::verify() { return verifyBroadcastingOp(getOperation(), 1); }
  }];
}

class Kiln_UnaryOp<string mnemonic, string desc> : Kiln_Op<mnemonic, [Pure]> {
  let summary = desc;
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::verify() { return verifySameTypeUnaryOp(getOperation()); }
  }];
}
def Kiln_NegOp : Kiln_UnaryOp<"neg", "-x">;
def Kiln_ExpOp : Kiln_UnaryOp<"exp", "e^x">;
def Kiln_LogOp : Kiln_UnaryOp<"log", "natural log">;
def Kiln_TanhOp : Kiln_UnaryOp<"tanh", "tanh(x)">;
def Kiln_ErfOp : Kiln_UnaryOp<"erf", "erf(x)">;
def Kiln_CosOp : Kiln_UnaryOp<"cos", "cos(x)">;
def Kiln_SinOp : Kiln_UnaryOp<"sin", "sin(x)">;
def Kiln_RsqrtOp : Kiln_UnaryOp<"rsqrt", "1 / sqrt(x)">;
def Kiln_SqrtOp : Kiln_UnaryOp<"sqrt", "sqrt(x)">;
def Kiln_AbsOp : Kiln_UnaryOp<"abs", "|x|">;
def Kiln_SigmoidOp : Kiln_UnaryOp<"sigmoid", "1 / (1 + e^-x)">;
def Kiln_SiluOp : Kiln_UnaryOp<"silu", "x * sigmoid(x)">;
def Kiln_GeluOp : Kiln_UnaryOp<"gelu", "x * (1 + erf(x / sqrt 2)) / 2">;
def Kiln_GeluTanhOp : Kiln_UnaryOp<"gelu_tanh", "x * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2">;
def Kiln_ReluOp : Kiln_UnaryOp<"relu", "max(x, 0)">;

def Kiln_ConvertOp : Kiln_Op<"convert", [Pure]> {
  let summary = "element type conversion (same shape)";
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Reductions and softmax
//===----------------------------------------------------------------------===//

class Kiln_ReduceOp<string mnemonic, string desc> : Kiln_Op<mnemonic, [Pure]> {
  let summary = desc;
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$axis, BoolAttr:$keepdim);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::verify() {
      return verifyReduceOp(getOperation(), getAxis(), getKeepdim());
    }
  }];
}
def Kiln_ReduceSumOp : Kiln_ReduceOp<"reduce_sum", "sum along `axis`">;
def Kiln_ReduceMeanOp : Kiln_ReduceOp<"reduce_mean", "mean along `axis`">;
def Kiln_ReduceMaxOp : Kiln_ReduceOp<"reduce_max", "max along `axis`">;

def Kiln_SoftmaxOp : Kiln_Op<"softmax", [Pure]> {
  let summary = "softmax along `axis` (max-subtracted)";
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$axis);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Contractions and data movement
//===----------------------------------------------------------------------===//

def Kiln_MatmulOp : Kiln_Op<"matmul", [Pure]> {
  let summary = "batched matrix product [..., M, K] x [..., K, N] -> [..., M, N]";
  let description = [{
    Batch dims broadcast numpy-style. With `transpose_b` the right operand is [..., N, K] (a Hugging Face
    Linear weight is [out, in]: y = x W^T).
  }];
  let arguments = (ins AnyRankedTensor:$lhs, AnyRankedTensor:$rhs, BoolAttr:$transpose_b);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_MatmulGroupOp : Kiln_Op<"matmul_group", [Pure, AttrSizedOperandSegments]> {
  let summary = "x W_i^T for several Linear weights sharing x, as one kernel (Q/K/V, gate/up)";
  let description = [{
    Each weight W_i is [N_i, K] and lhs is [..., M, K]: without `silu_mul`, result i is
    matmul(lhs, W_i, transpose_b) [..., M, N_i] (one result per weight); with `silu_mul`, two weights of one
    shape and one result silu(lhs W_0^T) * (lhs W_1^T) (SwiGLU's gate and up projections with the activation
    in the epilogue). One element type throughout. Made by kiln-fuse-matmul-groups (compile --target vulkan):
    one dispatch instead of one per weight (and the silu and the mul), the lhs read once per group.

    Folds of kiln-fuse-matmul-norms (the Vulkan partition only):
    - `norm(w)`: the lhs the products read is rms_norm(lhs, w) with `norm_eps` (and (1 + w) with
      `norm_unit_offset`): each row of lhs scaled by rsqrt(mean(row^2) + eps) and each k by w[k] as it is
      loaded (the prologue), the normed rows never stored. w is [K], of lhs's element type.
    - `residual(r)`: one weight, no silu_mul; the result is r + lhs W_0^T (the epilogue), r of the result's type.
    - `normed(y)` (with `norm(w)`): y is rms_norm(lhs, w) as stored by its own op; the result is the same,
      but a kernel may read y instead of norming lhs itself. The Vulkan kernels of many rows (prefill tiles)
      read y; those of a decode step's few rows norm lhs in the GEMV's prologue, and the norm's own dispatch
      is left out of those steps (its small-rows variant has an empty grid).
  }];
  let arguments = (ins AnyRankedTensor:$lhs, Variadic<AnyRankedTensor>:$weights,
                       Optional<AnyRankedTensor>:$norm_weight, Optional<AnyRankedTensor>:$residual,
                       Optional<AnyRankedTensor>:$normed,
                       BoolAttr:$silu_mul, OptionalAttr<F64Attr>:$norm_eps, UnitAttr:$norm_unit_offset);
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    $lhs `,` $weights (`norm` `(` $norm_weight^ `)`)? (`residual` `(` $residual^ `)`)? (`normed` `(` $normed^ `)`)?
    attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Kiln_GatherOp : Kiln_Op<"gather", [Pure]> {
  let summary = "rows of `table` [N, ...] picked by integer `indices` [...] -> [..., ...]";
  let arguments = (ins AnyRankedTensor:$table, AnyRankedTensor:$indices);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$table `,` $indices attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_ReshapeOp : Kiln_Op<"reshape", [Pure]> {
  let summary = "same elements, row-major, new shape";
  let description = [{
    Symbolic dims may move but not split or merge: both shapes must hold the same symbolic dims (as a
    multiset) and the same product of constant dims.
  }];
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_TransposeOp : Kiln_Op<"transpose", [Pure]> {
  let summary = "permutes dims: result dim i is input dim permutation[i]";
  let arguments = (ins AnyRankedTensor:$input, DenseI64ArrayAttr:$permutation);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_BroadcastToOp : Kiln_Op<"broadcast_to", [Pure]> {
  let summary = "numpy-style broadcast of the input to the result shape";
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_SliceOp : Kiln_Op<"slice", [Pure]> {
  let summary = "elements [start, end) of a constant-size dim";
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$axis, I64Attr:$start, I64Attr:$end);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_TailOp : Kiln_Op<"tail", [Pure]> {
  let summary = "the last n elements along `axis`, n the result's dim there (e.g. the logits rows of a chunk)";
  let description = [{
    result[..., j, ...] = input[..., in - n + j, ...] with in the operand's and n the result's (symbolic) dim
    along `axis`; every other dim is the operand's. n may be a symbol of its own (the rows a caller asks for,
    bound at run time to at most in): the rows not taken are never computed by the consumers.
  }];
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$axis);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_ConcatOp : Kiln_Op<"concat", [Pure]> {
  let summary = "joins tensors along `axis`; the result dim is the symbolic sum";
  let arguments = (ins Variadic<AnyRankedTensor>:$inputs, I64Attr:$axis);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$inputs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Fused ops (produced by the fusion passes)
//===----------------------------------------------------------------------===//

def Kiln_RmsNormOp : Kiln_Op<"rms_norm", [Pure]> {
  let summary = "x * rsqrt(mean(x^2, last axis) + eps) * w  (or * (1 + w) with unit_offset, Gemma)";
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$weight, F64Attr:$eps, BoolAttr:$unit_offset);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_LayerNormOp : Kiln_Op<"layer_norm", [Pure]> {
  let summary = "(x - mean) * rsqrt(var + eps) * w + b over the last axis";
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$weight, AnyRankedTensor:$bias, F64Attr:$eps);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input `,` $weight `,` $bias attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_AddRmsNormOp : Kiln_Op<"add_rms_norm", [Pure]> {
  let summary = "h = x + r; y = rms_norm(h) * w (or * (1 + w) with unit_offset): a residual add and its norm";
  let description = [{
    One read of x and r per row: h is stored (the next residual) and normalized over the last axis in the
    same pass. x, r, h and y have one type (no broadcast); w is [n] over the last dim n.
  }];
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$residual, AnyRankedTensor:$weight, F64Attr:$eps,
                       BoolAttr:$unit_offset);
  let results = (outs AnyRankedTensor:$sum, AnyRankedTensor:$result);
  let assemblyFormat = "$input `,` $residual `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_AddLayerNormOp : Kiln_Op<"add_layer_norm", [Pure]> {
  let summary = "h = x + r; y = layer_norm(h) * w + b over the last axis: a residual add and its norm";
  let description = [{
    As kiln.add_rms_norm, with LayerNorm's mean, variance and bias b [n].
  }];
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$residual, AnyRankedTensor:$weight,
                       AnyRankedTensor:$bias, F64Attr:$eps);
  let results = (outs AnyRankedTensor:$sum, AnyRankedTensor:$result);
  let assemblyFormat =
      "$input `,` $residual `,` $weight `,` $bias attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_RopeOp : Kiln_Op<"rope", [Pure]> {
  let summary = "rotary position embedding of x [b, h, s, d] at integer positions [b, s]";
  let description = [{
    `inv_freq` [r/2] is the frequency table, computed at compile time for the model's scaling (default,
    linear, llama3, per-layer bases); the first r of the d channels rotate, the rest pass through (partial
    rotary). `interleaved = false` rotates halves (x[i], x[i + r/2]), `true` rotates pairs (x[2i], x[2i+1]).
    Positions are an operand, so the op is right at any KV-cache offset.
  }];
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$positions, AnyRankedTensor:$inv_freq,
                       BoolAttr:$interleaved);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input `,` $positions `,` $inv_freq attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_AttentionOp : Kiln_Op<"attention", [Pure, AttrSizedOperandSegments]> {
  let summary = "softmax(scale * Q K^T + mask (+ bias)) V with the mask computed in the kernel";
  let description = [{
    q [b, hq, s, d], k [b, hkv, t, d], v [b, hkv, t, dv] -> [b, hq, s, dv]; hq a multiple of hkv (grouped
    query heads share a KV head). The mask is not a tensor: `mask = #kiln.mask<causal>` puts query i at
    position t - s + i (the KV-cache offset) and lets it see keys at positions <= its own, within the last
    `window` positions if set; `#kiln.mask<bidirectional>` sees all keys. `key_padding_mask` [b, t]
    (nonzero = valid) hides padded keys. `bias` adds a relative position bias broadcastable to [b, hq, s, t]. `softcap` c applies
    c * tanh(x / c) to the scaled scores before the mask.
  }];
  let arguments = (ins AnyRankedTensor:$query, AnyRankedTensor:$key, AnyRankedTensor:$value,
                       Optional<AnyRankedTensor>:$key_padding_mask, Optional<AnyRankedTensor>:$bias,
                       F64Attr:$scale, Kiln_AttentionMaskAttr:$mask, OptionalAttr<I64Attr>:$window,
                       OptionalAttr<F64Attr>:$softcap);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`key_padding_mask` `(` $key_padding_mask^ `)`)? (`bias` `(` $bias^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Dispatch groups
//===----------------------------------------------------------------------===//

def Kiln_GroupOp : Kiln_Op<"group", [Pure, IsolatedFromAbove, SingleBlockImplicitTerminator<"YieldOp">]> {
  let summary = "independent ops run as one dispatch (each a segment of the workgroups)";
  let description = [{
    The body's entry block has one argument per input (same types); its ops (kiln ops without regions)
    read only those arguments and each other's results, and `kiln.yield` returns the results, in order.
    Made by kiln-group-dispatches (passes/DispatchGroups.h) over a Vulkan plan: adjacent dispatches on the
    device that read nothing another of them writes (rope of q, rope of k into the key cache, the value
    copy into the value cache) become one kernel whose segments take ranges of its workgroups. Its value is
    the body's: evaluating the ops in order.
  }];
  let arguments = (ins Variadic<AnyRankedTensor>:$inputs);
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$inputs attr-dict `:` functional-type($inputs, $results) $body";
  let hasVerifier = 1;
}

def Kiln_YieldOp : Kiln_Op<"yield", [Pure, Terminator, HasParent<"GroupOp">]> {
  let summary = "the results of a kiln.group's body";
  let arguments = (ins Variadic<AnyRankedTensor>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
  let builders = [OpBuilder<(ins), [{ build($_builder, $_state, mlir::ValueRange()); }]>];
}

#endif // KILN_OPS_TD
