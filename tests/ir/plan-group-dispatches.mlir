// RUN: kiln-opt %s --kiln-partition="max-context=64" --kiln-fold-device-weights="max-context=64" --kiln-group-dispatches="max-context=64" | FileCheck %s
// RUN: kiln-opt %s --kiln-partition="max-context=64" --kiln-fold-device-weights="max-context=64" --kiln-group-dispatches="max-context=64 kv-in-place=false" | FileCheck %s --check-prefix=COPYKV
// RUN: kiln-opt %s --kiln-partition="max-context=64 unavailable-ops=kiln.rope" --kiln-group-dispatches="max-context=64" | FileCheck %s --check-prefix=CPUROPE
// RUN: kiln-opt %s --kiln-partition="max-context=64" --kiln-fold-device-weights="max-context=64" --kiln-group-dispatches="max-context=64" --kiln-group-dispatches="max-context=64" | FileCheck %s --check-prefix=TWICE
// RUN: not kiln-opt %s --kiln-group-dispatches="max-context=64" 2>&1 | FileCheck %s --check-prefix=UNPLACED
// kiln-group-dispatches (DispatchGroups.h): adjacent Vulkan dispatches of kiln.rope / kiln.transpose that
// read nothing another of them writes become one kiln.group (one dispatch, its members moved into the
// body); a dependence, another op between them or a member on the cpu ends a run.

!h = tensor<?x?x32xf32, #kiln.dims<[b, s]>>
!kvh = tensor<?x?x16xf32, #kiln.dims<[b, s]>>
!heads = tensor<?x?x4x8xf32, #kiln.dims<[b, s]>>
!kvheads = tensor<?x?x2x8xf32, #kiln.dims<[b, s]>>
!q = tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
!k = tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>
!past = tensor<?x2x?x8xf32, #kiln.dims<[b, p]>>
!kv = tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>>
!pos = tensor<?x?xi64, #kiln.dims<[b, s]>>

// A Llama layer's rope of q, rope of k (into the key cache) and value copy (into the value cache): one group,
// its results read by the appends and the attention.
// CHECK-LABEL: func.func @layer
// CHECK: %[[G:.*]]:3 = kiln.group %{{.*}}, %arg5, %{{.*}}, %{{.*}}, %{{.*}} {kiln.device = "vulkan"} : ({{.*}}) -> ({{.*}}) {
// CHECK-NEXT: ^bb0(%[[X:[^:]*]]: {{.*}}, %[[P:[^:]*]]: {{.*}}, %[[F:[^:]*]]: {{.*}}, %[[KX:[^:]*]]: {{.*}}, %[[V:[^:]*]]: {{.*}}):
// CHECK-NEXT: %[[RQ:.*]] = kiln.rope %[[X]], %[[P]], %[[F]]
// CHECK-NEXT: %[[RK:.*]] = kiln.rope %[[KX]], %[[P]], %[[F]]
// CHECK-NEXT: %[[TV:.*]] = kiln.transpose %[[V]]
// CHECK-NEXT: kiln.yield %[[RQ]], %[[RK]], %[[TV]] :
// CHECK-NEXT: }
// CHECK: kiln.concat %arg3, %[[G]]#1
// CHECK: kiln.concat %arg4, %[[G]]#2
// CHECK: kiln.attention %[[G]]#0
// CHECK-NOT: kiln.group
// Without the KV placement the group is the same (the appends copy the rows after it).
// COPYKV-LABEL: func.func @layer
// COPYKV: kiln.group
// COPYKV-NEXT: ^bb0
// COPYKV-NEXT: kiln.rope
// COPYKV-NEXT: kiln.rope
// COPYKV-NEXT: kiln.transpose
// COPYKV-NEXT: kiln.yield
// The group records its device (its members'): a second run reads the plan back and finds nothing more to group.
// TWICE-LABEL: func.func @layer
// TWICE: kiln.group {{.*}} {kiln.device = "vulkan"} :
// TWICE-NOT: kiln.group
// TWICE: kiln.attention
// With the ropes on the cpu only the value copy is left on the device: nothing to group.
// CPUROPE-NOT: kiln.group
// UNPLACED: error: kiln-group-dispatches: no kiln.device attributes (run kiln-partition first)
func.func @layer(%xq: !h {kiln.name = "q"}, %xk: !kvh {kiln.name = "k"}, %xv: !kvh {kiln.name = "v"},
                 %pk: !past {kiln.name = "past_key.0"}, %pv: !past {kiln.name = "past_value.0"},
                 %pos: !pos {kiln.name = "position_ids"})
    -> (!q {kiln.name = "out"}, !kv {kiln.name = "present_key.0"}, !kv {kiln.name = "present_value.0"}) {
  %f = kiln.constant dense<[1.0, 0.1, 0.01, 0.001]> : tensor<4xf32> : tensor<4xf32> loc("attn")
  %qr = kiln.reshape %xq : !h -> !heads loc("attn")
  %qt = kiln.transpose %qr {permutation = array<i64: 0, 2, 1, 3>} : !heads -> !q loc("attn")
  %q = kiln.rope %qt, %pos, %f {interleaved = false} : (!q, !pos, tensor<4xf32>) -> !q loc("attn.q")
  %kr = kiln.reshape %xk : !kvh -> !kvheads loc("attn")
  %kt = kiln.transpose %kr {permutation = array<i64: 0, 2, 1, 3>} : !kvheads -> !k loc("attn")
  %k = kiln.rope %kt, %pos, %f {interleaved = false} : (!k, !pos, tensor<4xf32>) -> !k loc("attn.k")
  %vr = kiln.reshape %xv : !kvh -> !kvheads loc("attn")
  %v = kiln.transpose %vr {permutation = array<i64: 0, 2, 1, 3>} : !kvheads -> !k loc("attn.v")
  %kc = kiln.concat %pk, %k {axis = 2 : i64} : (!past, !k) -> !kv loc("attn.k")
  %vc = kiln.concat %pv, %v {axis = 2 : i64} : (!past, !k) -> !kv loc("attn.v")
  %a = kiln.attention %q, %kc, %vc {mask = #kiln.mask<causal>, scale = 0.35 : f64} : (!q, !kv, !kv) -> !q loc("attn")
  return %a, %kc, %vc : !q, !kv, !kv
}

// A rope of a rope reads its result: a dependence, no group.
// CHECK-LABEL: func.func @dependent
// CHECK-NOT: kiln.group
// CHECK: return
func.func @dependent(%x: !q {kiln.name = "x"}, %pos: !pos {kiln.name = "position_ids"}) -> (!q {kiln.name = "out"}) {
  %f = kiln.constant dense<[1.0, 0.1, 0.01, 0.001]> : tensor<4xf32> : tensor<4xf32> loc("attn")
  %a = kiln.rope %x, %pos, %f {interleaved = false} : (!q, !pos, tensor<4xf32>) -> !q loc("a")
  %b = kiln.rope %a, %pos, %f {interleaved = true} : (!q, !pos, tensor<4xf32>) -> !q loc("b")
  return %b : !q
}

// Another dispatch between two ropes ends the run: they are not adjacent.
// CHECK-LABEL: func.func @between
// CHECK-NOT: kiln.group
// CHECK: return
func.func @between(%x: !q {kiln.name = "x"}, %pos: !pos {kiln.name = "position_ids"}) -> (!q {kiln.name = "a"}, !q {kiln.name = "b"}) {
  %f = kiln.constant dense<[1.0, 0.1, 0.01, 0.001]> : tensor<4xf32> : tensor<4xf32> loc("attn")
  %a = kiln.rope %x, %pos, %f {interleaved = false} : (!q, !pos, tensor<4xf32>) -> !q loc("a")
  %e = kiln.exp %x : !q -> !q loc("e")
  %b = kiln.rope %e, %pos, %f {interleaved = false} : (!q, !pos, tensor<4xf32>) -> !q loc("b")
  return %a, %b : !q, !q
}
