// RUN: kiln-opt %s --kiln-partition="max-context=16" --kiln-fold-device-weights="max-context=16" | FileCheck %s
// RUN: kiln-opt %s --kiln-partition="max-context=16" --kiln-fold-device-weights="max-context=16" --kiln-fold-device-weights="max-context=16" | FileCheck %s
// RUN: kiln-opt %s --kiln-partition="unavailable-ops=kiln.attention max-context=16" --kiln-fold-device-weights="max-context=16" | FileCheck %s --check-prefix=CPU
// The head transposes of kiln-fold-device-weights (foldDeviceTransposes, DeviceWeights.h): a transpose read
// only by rope (its input) or attention (query, key, value) on the device has no dispatch, its reader reads
// the transpose's input in the permuted order; a transpose of an attention's result read by nothing else has
// none either, the attention writes the transposed layout. Folded: kiln.folded = "transpose-view", and the
// counts on the function drop by them; a second run finds nothing more. With the attention on the cpu only
// the rope's input transposes fold.

!h = tensor<?x?x8xf32, #kiln.dims<[b, s]>>
!heads = tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
!q = tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
!pos = tensor<?x?xi64, #kiln.dims<[b, s]>>

// CHECK-LABEL: func.func @step
// CHECK-SAME: kiln.partition = {cpu = 0 : i64, fallbacks = 0 : i64, transfers = 4 : i64, vulkan = 7 : i64}
// The query's transpose, read by the rope only: folded.
// CHECK: kiln.transpose %{{.*}} {kiln.device = "vulkan", kiln.folded = "transpose-view", permutation = array<i64: 0, 2, 1, 3>}
// CHECK: kiln.rope {{.*}}kiln.device = "vulkan"
// The value's transpose is read by the attention and by the add: it keeps its kernel.
// CHECK: kiln.transpose %{{.*}} {kiln.device = "vulkan", permutation = array<i64: 0, 2, 1, 3>}
// The key's, read by the attention only: folded.
// CHECK: kiln.transpose %{{.*}} {kiln.device = "vulkan", kiln.folded = "transpose-view", permutation = array<i64: 0, 2, 1, 3>}
// CHECK: kiln.attention
// The attention's result transposed back to [b, s, h, d]: the attention writes that layout.
// CHECK: kiln.transpose %{{.*}} {kiln.device = "vulkan", kiln.folded = "transpose-view", permutation = array<i64: 0, 2, 1, 3>}
// The transpose of the sum (not an attention's result) keeps its kernel.
// CHECK: kiln.add
// CHECK: kiln.transpose %{{.*}} {kiln.device = "vulkan", permutation = array<i64: 0, 2, 1, 3>}

// CPU-LABEL: func.func @step
// CPU: kiln.transpose {{.*}}kiln.folded = "transpose-view"
// CPU: kiln.transpose %{{.*}} {kiln.device = "vulkan", permutation = array<i64: 0, 2, 1, 3>}
// CPU: kiln.transpose %{{.*}} {kiln.device = "vulkan", permutation = array<i64: 0, 2, 1, 3>}
// CPU: kiln.attention
// CPU-NOT: transpose-view
func.func @step(%x: !h {kiln.name = "hidden"}, %pos: !pos {kiln.name = "position_ids"})
    -> (!h {kiln.name = "out"}, !h {kiln.name = "sum"}) {
  %r = kiln.reshape %x : !h -> !heads loc("r")
  %qt = kiln.transpose %r {permutation = array<i64: 0, 2, 1, 3>} : !heads -> !q loc("q")
  %f = kiln.constant dense<[1.0, 0.1]> : tensor<2xf32> : tensor<2xf32> loc("f")
  %q = kiln.rope %qt, %pos, %f {interleaved = false} : (!q, !pos, tensor<2xf32>) -> !q loc("rope")
  %v = kiln.transpose %r {permutation = array<i64: 0, 2, 1, 3>} : !heads -> !q loc("v")
  %k = kiln.transpose %r {permutation = array<i64: 0, 2, 1, 3>} : !heads -> !q loc("k")
  %a = kiln.attention %q, %k, %v {mask = #kiln.mask<causal>, scale = 0.5 : f64} : (!q, !q, !q) -> !q loc("attn")
  %o = kiln.transpose %a {permutation = array<i64: 0, 2, 1, 3>} : !q -> !heads loc("out")
  %o2 = kiln.reshape %o : !heads -> !h loc("o2")
  %sum = kiln.add %v, %q : (!q, !q) -> !q loc("add")
  %st = kiln.transpose %sum {permutation = array<i64: 0, 2, 1, 3>} : !q -> !heads loc("sum")
  %s2 = kiln.reshape %st : !heads -> !h loc("s2")
  return %o2, %s2 : !h, !h
}
