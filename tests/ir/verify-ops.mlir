// RUN: kiln-opt %s -split-input-file -verify-diagnostics

func.func @concat_wrong_sum(%past: tensor<?x2x?x16xf32, #kiln.dims<[b, p]>>, %new: tensor<?x2x?x16xf32, #kiln.dims<[b, s]>>)
    -> tensor<?x2x?x16xf32, #kiln.dims<[b, s]>> {
  // expected-error @+1 {{result shape [b, 2, s, 16] should be [b, 2, p + s, 16]}}
  %0 = kiln.concat %past, %new {axis = 2 : i64} : (tensor<?x2x?x16xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x16xf32, #kiln.dims<[b, s]>>
  return %0 : tensor<?x2x?x16xf32, #kiln.dims<[b, s]>>
}

// -----

func.func @matmul_k(%a: tensor<?x?x64xf32, #kiln.dims<[b, s]>>, %w: tensor<128x32xf32>) -> tensor<?x?x128xf32, #kiln.dims<[b, s]>> {
  // expected-error @+1 {{matmul contraction dims differ: [b, s, 64] x [128, 32]^T (64 vs 32)}}
  %0 = kiln.matmul %a, %w {transpose_b = true} : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<128x32xf32>) -> tensor<?x?x128xf32, #kiln.dims<[b, s]>>
  return %0 : tensor<?x?x128xf32, #kiln.dims<[b, s]>>
}

// -----

func.func @reshape_split_symbol(%a: tensor<?x?x64xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x16xf32, #kiln.dims<[b]>> {
  // expected-error @+1 {{cannot reshape [b, s, 64] to [b, 4, 16]: symbolic dims differ}}
  %0 = kiln.reshape %a : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<?x4x16xf32, #kiln.dims<[b]>>
  return %0 : tensor<?x4x16xf32, #kiln.dims<[b]>>
}

// -----

func.func @missing_dims(%a: tensor<?x64xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{operand: dynamic dim without a symbolic expression (#kiln.dims encoding)}}
  %0 = kiln.exp %a : tensor<?x64xf32> -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}

// -----

func.func @gqa_heads(%q: tensor<1x6x3x16xf32>, %k: tensor<1x4x3x16xf32>) -> tensor<1x6x3x16xf32> {
  // expected-error @+1 {{query heads 6 must be a constant multiple of kv heads 4}}
  %0 = kiln.attention %q, %k, %k {scale = 0.25 : f64, mask = #kiln.mask<causal>} : (tensor<1x6x3x16xf32>, tensor<1x4x3x16xf32>, tensor<1x4x3x16xf32>) -> tensor<1x6x3x16xf32>
  return %0 : tensor<1x6x3x16xf32>
}

// -----

// expected-error @+1 {{#kiln.dims has 1 expressions for 2 dynamic dims}}
func.func @bad_encoding(%a: tensor<?x?xf32, #kiln.dims<[s]>>) {
  return
}

// -----

func.func @unknown_predicate(%a: tensor<4xi64>) -> tensor<4xi1> {
  // expected-error @+2 {{expected one of [eq, ne, lt, le, gt, ge] for the comparison of kiln.compare, got: lq}}
  // expected-error @+1 {{failed to parse Kiln_ComparePredicateAttr}}
  %0 = kiln.compare lq, %a, %a : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi1>
  return %0 : tensor<4xi1>
}

// -----

func.func @unknown_mask(%q: tensor<1x2x3x16xf32>) -> tensor<1x2x3x16xf32> {
  // expected-error @+2 {{expected one of [causal, bidirectional] for the mask kind of kiln.attention, got: sliding}}
  // expected-error @+1 {{failed to parse Kiln_AttentionMaskAttr}}
  %0 = kiln.attention %q, %q, %q {scale = 0.25 : f64, mask = #kiln.mask<sliding>} : (tensor<1x2x3x16xf32>, tensor<1x2x3x16xf32>, tensor<1x2x3x16xf32>) -> tensor<1x2x3x16xf32>
  return %0 : tensor<1x2x3x16xf32>
}

// -----

func.func @string_mask(%q: tensor<1x2x3x16xf32>) -> tensor<1x2x3x16xf32> {
  // expected-error @+1 {{attribute 'mask' failed to satisfy constraint: the mask kind of kiln.attention}}
  %0 = kiln.attention %q, %q, %q {scale = 0.25 : f64, mask = "causal"} : (tensor<1x2x3x16xf32>, tensor<1x2x3x16xf32>, tensor<1x2x3x16xf32>) -> tensor<1x2x3x16xf32>
  return %0 : tensor<1x2x3x16xf32>
}

// -----

func.func @window_without_causal(%q: tensor<1x2x3x16xf32>) -> tensor<1x2x3x16xf32> {
  // expected-error @+1 {{window needs a causal mask and a positive size}}
  %0 = kiln.attention %q, %q, %q {scale = 0.25 : f64, mask = #kiln.mask<bidirectional>, window = 2 : i64} : (tensor<1x2x3x16xf32>, tensor<1x2x3x16xf32>, tensor<1x2x3x16xf32>) -> tensor<1x2x3x16xf32>
  return %0 : tensor<1x2x3x16xf32>
}

// -----

func.func @tail_other_dim(%x: tensor<?x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x4xf32, #kiln.dims<[b, r]>> {
  // expected-error @+1 {{result shape [b, r, 4] should be [b, r, 8]}}
  %0 = kiln.tail %x {axis = 1 : i64} : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x4xf32, #kiln.dims<[b, r]>>
  return %0 : tensor<?x?x4xf32, #kiln.dims<[b, r]>>
}

// -----

func.func @tail_too_many(%x: tensor<?x6x4xf32, #kiln.dims<[s]>>) -> tensor<?x7x4xf32, #kiln.dims<[s]>> {
  // expected-error @+1 {{takes 7 of the 6 elements of dim 1}}
  %0 = kiln.tail %x {axis = 1 : i64} : tensor<?x6x4xf32, #kiln.dims<[s]>> -> tensor<?x7x4xf32, #kiln.dims<[s]>>
  return %0 : tensor<?x7x4xf32, #kiln.dims<[s]>>
}

// -----

func.func @tail_axis(%x: tensor<?x6x4xf32, #kiln.dims<[s]>>) -> tensor<?x6x4xf32, #kiln.dims<[s]>> {
  // expected-error @+1 {{axis 3 is out of range for rank 3}}
  %0 = kiln.tail %x {axis = 3 : i64} : tensor<?x6x4xf32, #kiln.dims<[s]>> -> tensor<?x6x4xf32, #kiln.dims<[s]>>
  return %0 : tensor<?x6x4xf32, #kiln.dims<[s]>>
}

// -----

func.func @matmul_group_normed_without_norm(%x: tensor<?x?x64xf32, #kiln.dims<[b, s]>>, %y: tensor<?x?x64xf32, #kiln.dims<[b, s]>>,
                                            %w: tensor<96x64xf32>) -> tensor<?x?x96xf32, #kiln.dims<[b, s]>> {
  // expected-error @+1 {{normed(y) without norm(w)}}
  %0 = kiln.matmul_group %x, %w normed(%y) {silu_mul = false} : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<96x64xf32>, tensor<?x?x64xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x96xf32, #kiln.dims<[b, s]>>
  return %0 : tensor<?x?x96xf32, #kiln.dims<[b, s]>>
}

// -----

func.func @matmul_group_normed_type(%x: tensor<?x?x64xf32, #kiln.dims<[b, s]>>, %y: tensor<?x?x64xf32, #kiln.dims<[b, p]>>,
                                    %w: tensor<96x64xf32>, %nw: tensor<64xf32>) -> tensor<?x?x96xf32, #kiln.dims<[b, s]>> {
  // expected-error @+1 {{normed 'tensor<?x?x64xf32, #kiln.dims<[b, p]>>' should be of the lhs's type 'tensor<?x?x64xf32, #kiln.dims<[b, s]>>'}}
  %0 = kiln.matmul_group %x, %w norm(%nw) normed(%y) {norm_eps = 1.0e-6 : f64, silu_mul = false} : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<96x64xf32>, tensor<64xf32>, tensor<?x?x64xf32, #kiln.dims<[b, p]>>) -> tensor<?x?x96xf32, #kiln.dims<[b, s]>>
  return %0 : tensor<?x?x96xf32, #kiln.dims<[b, s]>>
}
