// RUN: kiln-opt %s --kiln-fuse-matmul-groups | FileCheck %s
// RUN: kiln-opt %s --kiln-fuse-matmul-groups=report=true -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
// Linear projections of one input become one kiln.matmul_group: SwiGLU's mul(silu(x Wg^T), x Wu^T) with the
// activation in the epilogue (silu_mul), then the remaining transpose_b matmuls of one x over whole 2-d
// weights (Q/K/V; f16 weights through their converts), at most 4 per group. Near misses stay plain matmuls.

!x = tensor<?x?x64xf32, #kiln.dims<[b, s]>>
!q = tensor<?x?x64xf32, #kiln.dims<[b, s]>>
!kv = tensor<?x?x16xf32, #kiln.dims<[b, s]>>
!h = tensor<?x?x96xf32, #kiln.dims<[b, s]>>

// Q, K, V of one normed x, f16 weights through their converts (the V weight's definition comes after the Q
// matmul: hoisted above the group).
// CHECK-LABEL: func.func @qkv
// CHECK-DAG: %[[WQ:.*]] = kiln.convert
// CHECK-DAG: %[[WK:.*]] = kiln.convert
// CHECK-DAG: %[[WV16:.*]] = kiln.weight "v_proj.weight" : tensor<16x64xf16>
// CHECK-DAG: %[[WV:.*]] = kiln.convert %[[WV16]]
// CHECK: %[[G:.*]]:3 = kiln.matmul_group %arg0, %[[WQ]], %[[WK]], %[[WV]] {silu_mul = false} : ({{.*}}, tensor<64x64xf32>, tensor<16x64xf32>, tensor<16x64xf32>) -> (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x?x16xf32, #kiln.dims<[b, s]>>)
// CHECK-NOT: kiln.matmul %
// CHECK: return %[[G]]#0, %[[G]]#1, %[[G]]#2
func.func @qkv(%x: !x) -> (!q, !kv, !kv) {
  %wq16 = kiln.weight "q_proj.weight" : tensor<64x64xf16>
  %wq = kiln.convert %wq16 : tensor<64x64xf16> -> tensor<64x64xf32>
  %q = kiln.matmul %x, %wq {transpose_b = true} : (!x, tensor<64x64xf32>) -> !q loc("model.layers.0.self_attn.q_proj")
  %wk16 = kiln.weight "k_proj.weight" : tensor<16x64xf16>
  %wk = kiln.convert %wk16 : tensor<16x64xf16> -> tensor<16x64xf32>
  %k = kiln.matmul %x, %wk {transpose_b = true} : (!x, tensor<16x64xf32>) -> !kv loc("model.layers.0.self_attn.k_proj")
  %wv16 = kiln.weight "v_proj.weight" : tensor<16x64xf16>
  %wv = kiln.convert %wv16 : tensor<16x64xf16> -> tensor<16x64xf32>
  %v = kiln.matmul %x, %wv {transpose_b = true} : (!x, tensor<16x64xf32>) -> !kv loc("model.layers.0.self_attn.v_proj")
  return %q, %k, %v : !q, !kv, !kv
}

// SwiGLU: silu(gate) * up in the group's epilogue (either operand order); the silu and the mul are gone.
// CHECK-LABEL: func.func @swiglu
// CHECK: %[[Y:.*]] = kiln.matmul_group %arg0, %{{.*}}, %{{.*}} {silu_mul = true} : ({{.*}}, tensor<96x64xf32>, tensor<96x64xf32>) -> tensor<?x?x96xf32, #kiln.dims<[b, s]>>
// CHECK-NOT: kiln.silu
// CHECK-NOT: kiln.mul
// CHECK: %[[Z:.*]] = kiln.matmul_group %arg0, %{{.*}}, %{{.*}} {silu_mul = true}
// CHECK: return %[[Y]], %[[Z]]
func.func @swiglu(%x: !x) -> (!h, !h) {
  %wg = kiln.weight "gate_proj.weight" : tensor<96x64xf32>
  %wu = kiln.weight "up_proj.weight" : tensor<96x64xf32>
  %g = kiln.matmul %x, %wg {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h loc("model.layers.0.mlp.gate_proj")
  %u = kiln.matmul %x, %wu {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h loc("model.layers.0.mlp.up_proj")
  %a = kiln.silu %g : !h -> !h
  %y = kiln.mul %a, %u : (!h, !h) -> !h
  %g2 = kiln.matmul %x, %wg {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h
  %u2 = kiln.matmul %x, %wu {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h
  %a2 = kiln.silu %g2 : !h -> !h
  %z = kiln.mul %u2, %a2 : (!h, !h) -> !h
  return %y, %z : !h, !h
}

// Near misses: the gate also read elsewhere (no silu_mul: gate and up group as two plain products, the
// silu and mul stay), a matmul without transpose_b, a row chunk of kiln-split-weights, an activation rhs,
// a lone matmul of its x.
// CHECK-LABEL: func.func @near_misses
// CHECK: %[[P:.*]]:2 = kiln.matmul_group %arg0, %{{.*}}, %{{.*}} {silu_mul = false}
// CHECK: kiln.silu %[[P]]#0
// CHECK: kiln.mul
// CHECK: kiln.matmul %arg1, %{{.*}} {transpose_b = false}
// CHECK: kiln.matmul %arg1, %{{.*}} {transpose_b = true}
// CHECK: kiln.matmul %arg1, %arg2 {transpose_b = true}
// CHECK: kiln.matmul %arg3, %{{.*}} {transpose_b = true}
// CHECK-NOT: kiln.matmul_group
func.func @near_misses(%x: !x, %x2: !x, %act: tensor<96x64xf32>, %x3: !x) -> (!h, !h, tensor<?x?x96xf32, #kiln.dims<[b, s]>>, !h, !h, !h) {
  %wg = kiln.weight "gate_proj.weight" : tensor<96x64xf32>
  %wu = kiln.weight "up_proj.weight" : tensor<96x64xf32>
  %g = kiln.matmul %x, %wg {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h
  %u = kiln.matmul %x, %wu {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h
  %a = kiln.silu %g : !h -> !h
  %y = kiln.mul %a, %u : (!h, !h) -> !h
  %wt = kiln.weight "t.weight" : tensor<64x96xf32>
  %n = kiln.matmul %x2, %wt {transpose_b = false} : (!x, tensor<64x96xf32>) -> !h
  %wc = kiln.weight "c.weight" {rows = array<i64: 0, 96>} : tensor<96x64xf32>
  %c = kiln.matmul %x2, %wc {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h
  %d = kiln.matmul %x2, %act {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h
  %e = kiln.matmul %x3, %wu {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h
  return %y, %g, %n, %c, %d, %e : !h, !h, tensor<?x?x96xf32, #kiln.dims<[b, s]>>, !h, !h, !h
}

// Weights stored in different types do not share a group (one storage type per kernel): the two f32 ones do.
// CHECK-LABEL: func.func @mixed_storage
// CHECK: kiln.matmul_group %arg0, %{{.*}}, %{{.*}} {silu_mul = false} : ({{.*}}, tensor<16x64xf32>, tensor<16x64xf32>)
// CHECK: kiln.matmul %arg0
func.func @mixed_storage(%x: !x) -> (!kv, !kv, !kv) {
  %a = kiln.weight "a.weight" : tensor<16x64xf32>
  %b16 = kiln.weight "b.weight" : tensor<16x64xbf16>
  %b = kiln.convert %b16 : tensor<16x64xbf16> -> tensor<16x64xf32>
  %c = kiln.weight "c.weight" : tensor<16x64xf32>
  %0 = kiln.matmul %x, %a {transpose_b = true} : (!x, tensor<16x64xf32>) -> !kv
  %1 = kiln.matmul %x, %b {transpose_b = true} : (!x, tensor<16x64xf32>) -> !kv
  %2 = kiln.matmul %x, %c {transpose_b = true} : (!x, tensor<16x64xf32>) -> !kv
  return %0, %1, %2 : !kv, !kv, !kv
}

// Five projections of one x: a group of 4, the fifth alone stays a matmul.
// CHECK-LABEL: func.func @five
// CHECK: kiln.matmul_group %arg0, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {silu_mul = false}
// CHECK: kiln.matmul %arg0
func.func @five(%x: !x) -> (!kv, !kv, !kv, !kv, !kv) {
  %w = kiln.weight "a.weight" : tensor<16x64xf32>
  %0 = kiln.matmul %x, %w {transpose_b = true} : (!x, tensor<16x64xf32>) -> !kv
  %1 = kiln.matmul %x, %w {transpose_b = true} : (!x, tensor<16x64xf32>) -> !kv
  %2 = kiln.matmul %x, %w {transpose_b = true} : (!x, tensor<16x64xf32>) -> !kv
  %3 = kiln.matmul %x, %w {transpose_b = true} : (!x, tensor<16x64xf32>) -> !kv
  %4 = kiln.matmul %x, %w {transpose_b = true} : (!x, tensor<16x64xf32>) -> !kv
  return %0, %1, %2, %3, %4 : !kv, !kv, !kv, !kv, !kv
}

// REPORT: fused: matmul_group at model.layers.0.self_attn.q_proj (q_proj + k_proj + v_proj)
// REPORT: fused: matmul_group at model.layers.0.mlp.gate_proj (silu_mul: gate_proj + up_proj)

// Block-quantized weights (--weights q8_0|q4_0) group with weights of their own format (the kernel reads its
// segments with one quant.glsl reader): K and V (q8_0) group, and so do gate and up (q4_0, silu_mul); the
// q4_0 O weight and the f32 one of the same x do not join the q8_0 pair, and stay plain matmuls.
// CHECK-LABEL: func.func @quantized
// CHECK: kiln.matmul_group %arg0, %{{.*}}, %{{.*}} {silu_mul = false} : ({{.*}}, tensor<16x64xf32>, tensor<16x64xf32>)
// CHECK-COUNT-2: kiln.matmul %arg0
// CHECK: kiln.matmul_group %arg1, %{{.*}}, %{{.*}} {silu_mul = true} : ({{.*}}, tensor<96x64xf32>, tensor<96x64xf32>)
// CHECK-NOT: kiln.matmul_group
func.func @quantized(%x: !x, %x2: !x) -> (!kv, !kv, !kv, !kv, !h) {
  %wk = kiln.weight "k_proj.weight" {quant = "q8_0"} : tensor<16x64xf32>
  %k = kiln.matmul %x, %wk {transpose_b = true} : (!x, tensor<16x64xf32>) -> !kv loc("model.layers.0.self_attn.k_proj")
  %wv = kiln.weight "v_proj.weight" {quant = "q8_0"} : tensor<16x64xf32>
  %v = kiln.matmul %x, %wv {transpose_b = true} : (!x, tensor<16x64xf32>) -> !kv loc("model.layers.0.self_attn.v_proj")
  %wo = kiln.weight "o_proj.weight" {quant = "q4_0"} : tensor<16x64xf32>
  %o = kiln.matmul %x, %wo {transpose_b = true} : (!x, tensor<16x64xf32>) -> !kv
  %wf = kiln.weight "f.weight" : tensor<16x64xf32>
  %f = kiln.matmul %x, %wf {transpose_b = true} : (!x, tensor<16x64xf32>) -> !kv
  %wg = kiln.weight "gate_proj.weight" {quant = "q4_0"} : tensor<96x64xf32>
  %wu = kiln.weight "up_proj.weight" {quant = "q4_0"} : tensor<96x64xf32>
  %g = kiln.matmul %x2, %wg {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h loc("model.layers.0.mlp.gate_proj")
  %u = kiln.matmul %x2, %wu {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h loc("model.layers.0.mlp.up_proj")
  %a = kiln.silu %g : !h -> !h
  %y = kiln.mul %a, %u : (!h, !h) -> !h
  return %k, %v, %o, %f, %y : !kv, !kv, !kv, !kv, !h
}

// Mixed formats: a q8_0 and a q4_0 gate / up pair stay apart (no silu_mul), and so do the products.
// CHECK-LABEL: func.func @mixed_formats
// CHECK-NOT: kiln.matmul_group
// CHECK: kiln.silu
func.func @mixed_formats(%x: !x) -> !h {
  %wg = kiln.weight "gate_proj.weight" {quant = "q8_0"} : tensor<96x64xf32>
  %wu = kiln.weight "up_proj.weight" {quant = "q4_0"} : tensor<96x64xf32>
  %g = kiln.matmul %x, %wg {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h
  %u = kiln.matmul %x, %wu {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h
  %a = kiln.silu %g : !h -> !h
  %y = kiln.mul %a, %u : (!h, !h) -> !h
  return %y : !h
}
