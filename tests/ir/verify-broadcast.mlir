// RUN: kiln-opt %s -split-input-file -verify-diagnostics
// The TinyLlama failure of eager frameworks, caught at compile time: a causal mask built [seq, seq]
// cannot be broadcast to the scores [b, heads, seq, past + seq] once the KV cache holds a warm-up.

func.func @static_mask_after_warmup(%mask: tensor<5x5xf32>) -> tensor<1x32x5x7xf32> {
  // expected-error @+1 {{cannot broadcast [5, 5] to [1, 32, 5, 7]: dim 3 is 5, not 1 or 7}}
  %0 = kiln.broadcast_to %mask : tensor<5x5xf32> -> tensor<1x32x5x7xf32>
  return %0 : tensor<1x32x5x7xf32>
}

// -----

func.func @static_mask_add(%mask: tensor<5x5xf32>, %scores: tensor<1x32x5x7xf32>) -> tensor<1x32x5x7xf32> {
  // expected-error @+1 {{cannot broadcast [5, 5] and [1, 32, 5, 7]: dim 3 is 5 in one and 7 in the other}}
  %0 = kiln.add %mask, %scores : (tensor<5x5xf32>, tensor<1x32x5x7xf32>) -> tensor<1x32x5x7xf32>
  return %0 : tensor<1x32x5x7xf32>
}

// -----

// The same bug with symbolic dims: wrong for every past > 0, so rejected before any run.
func.func @symbolic_mask(%mask: tensor<?x?xf32, #kiln.dims<[s, s]>>,
                         %scores: tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>>)
    -> tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>> {
  // expected-error @+1 {{cannot broadcast [s, s] and [b, 32, s, p + s]: dim 3 is s in one and p + s in the other (they differ for some values of the symbols)}}
  %0 = kiln.add %mask, %scores : (tensor<?x?xf32, #kiln.dims<[s, s]>>, tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>>) -> tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>>
  return %0 : tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>>
}

// -----

func.func @symbolic_broadcast_to(%mask: tensor<?x?xf32, #kiln.dims<[s, s]>>)
    -> tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>> {
  // expected-error @+1 {{cannot broadcast [s, s] to [b, 32, s, p + s]: dim 3 is s, not 1 or p + s for every value of the symbols}}
  %0 = kiln.broadcast_to %mask : tensor<?x?xf32, #kiln.dims<[s, s]>> -> tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>>
  return %0 : tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>>
}
