// RUN: kiln-opt %s --kiln-fuse-matmul-norms | FileCheck %s
// RUN: kiln-opt %s --kiln-fuse-matmul-norms=report=true -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
// After kiln-fuse-matmul-groups (the Vulkan partition): residual adds go into the epilogue of their Linear
// matmul (matmul_group residual(r)), RMSNorms over symbolic rows read only by one group / Linear matmul into
// its prologue (matmul_group norm(w) normed(y): the norm stays for the kernels of many rows to read, its
// decode dispatch goes). Near misses stay as they are.

!x = tensor<?x?x64xf32, #kiln.dims<[b, s]>>
!kv = tensor<?x?x16xf32, #kiln.dims<[b, s]>>
!h = tensor<?x?x96xf32, #kiln.dims<[b, s]>>

// One Llama layer after kiln-fuse-matmul-groups: QKV(+norm) / o(+residual) / gate-up(+norm, silu*up) /
// down(+residual); the add_rms_norm between o and gate-up splits into o's residual group and a norm that
// folds into gate-up; each norm stays only as its group's normed(y); no add_rms_norm / add remains.
// CHECK-LABEL: func.func @layer
// CHECK: %[[N1:.*]] = kiln.rms_norm %arg0
// CHECK: %[[QKV:.*]]:3 = kiln.matmul_group %arg0, %{{.*}}, %{{.*}}, %{{.*}} norm(%{{[0-9]+}}) normed(%[[N1]]) {norm_eps = 9.9999999999999995E-7 : f64, silu_mul = false}
// CHECK: %[[H1:.*]] = kiln.matmul_group %arg1, %{{.*}} residual(%arg0) {silu_mul = false}
// CHECK: %[[N2:.*]] = kiln.rms_norm %[[H1]]
// CHECK: %[[G:.*]] = kiln.matmul_group %[[H1]], %{{.*}}, %{{.*}} norm(%{{[0-9]+}}) normed(%[[N2]]) {norm_eps = 9.9999999999999995E-7 : f64, silu_mul = true}
// CHECK: %[[H2:.*]] = kiln.matmul_group %[[G]], %{{.*}} residual(%[[H1]]) {silu_mul = false}
// CHECK-NOT: rms_norm
// CHECK-NOT: kiln.add
// CHECK: return %[[QKV]]#0, %[[QKV]]#1, %[[QKV]]#2, %[[H2]]
func.func @layer(%x: !x, %attn: !x) -> (!x, !kv, !kv, !x) {
  %nw1 = kiln.weight "model.layers.0.input_layernorm.weight" : tensor<64xf32>
  %n1 = kiln.rms_norm %x, %nw1 {eps = 1.0e-6 : f64, unit_offset = false} : (!x, tensor<64xf32>) -> !x loc("model.layers.0.input_layernorm")
  %wq = kiln.weight "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
  %wk = kiln.weight "model.layers.0.self_attn.k_proj.weight" : tensor<16x64xf32>
  %wv = kiln.weight "model.layers.0.self_attn.v_proj.weight" : tensor<16x64xf32>
  %qkv:3 = kiln.matmul_group %n1, %wq, %wk, %wv {silu_mul = false} : (!x, tensor<64x64xf32>, tensor<16x64xf32>, tensor<16x64xf32>) -> (!x, !kv, !kv) loc("model.layers.0.self_attn.q_proj")
  %wo = kiln.weight "model.layers.0.self_attn.o_proj.weight" : tensor<64x64xf32>
  %o = kiln.matmul %attn, %wo {transpose_b = true} : (!x, tensor<64x64xf32>) -> !x loc("model.layers.0.self_attn.o_proj")
  %nw2 = kiln.weight "model.layers.0.post_attention_layernorm.weight" : tensor<64xf32>
  %h1, %n2 = kiln.add_rms_norm %x, %o, %nw2 {eps = 1.0e-6 : f64, unit_offset = false} : (!x, !x, tensor<64xf32>) -> (!x, !x) loc("model.layers.0.post_attention_layernorm")
  %wg = kiln.weight "model.layers.0.mlp.gate_proj.weight" : tensor<96x64xf32>
  %wu = kiln.weight "model.layers.0.mlp.up_proj.weight" : tensor<96x64xf32>
  %g = kiln.matmul_group %n2, %wg, %wu {silu_mul = true} : (!x, tensor<96x64xf32>, tensor<96x64xf32>) -> !h loc("model.layers.0.mlp.gate_proj")
  %wd = kiln.weight "model.layers.0.mlp.down_proj.weight" : tensor<64x96xf32>
  %d = kiln.matmul %g, %wd {transpose_b = true} : (!h, tensor<64x96xf32>) -> !x loc("model.layers.0.mlp.down_proj")
  %h2 = kiln.add %h1, %d : (!x, !x) -> !x
  return %qkv#0, %qkv#1, %qkv#2, %h2 : !x, !kv, !kv, !x
}

// REPORT: fused: matmul_residual at model.layers.0.self_attn.o_proj (o_proj + residual)
// REPORT: fused: matmul_residual at model.layers.0.mlp.down_proj (down_proj + residual)
// REPORT: fused: matmul_norm at model.layers.0.input_layernorm (into q_proj + k_proj + v_proj)
// REPORT: fused: matmul_norm at model.layers.0.post_attention_layernorm (into gate_proj + up_proj)

// A norm read by a lone Linear matmul (an lm_head) folds into a one-weight group; Gemma's (1 + w) keeps its
// unit offset.
// CHECK-LABEL: func.func @lone
// CHECK: kiln.matmul_group %arg0, %{{.*}} norm(%{{[0-9]+}}) normed(%{{[0-9]+}}) {norm_eps = 1.000000e-05 : f64, norm_unit_offset, silu_mul = false} : ({{.*}}, tensor<96x64xf32>, tensor<64xf32>, tensor<?x?x64xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x96xf32, #kiln.dims<[b, s]>>
func.func @lone(%x: !x) -> !h {
  %nw = kiln.weight "model.norm.weight" : tensor<64xf32>
  %n = kiln.rms_norm %x, %nw {eps = 1.0e-5 : f64, unit_offset = true} : (!x, tensor<64xf32>) -> !x
  %w = kiln.weight "lm_head.weight" : tensor<96x64xf32>
  %y = kiln.matmul %n, %w {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h
  return %y : !h
}

// The logits rows (kiln.tail over the rows, symbol r) of a final norm: the tail moves above the norm (the norm
// is per row), which then folds into the LM head's prologue over the kept rows only.
// CHECK-LABEL: func.func @tail_rows
// CHECK: %[[T:.*]] = kiln.tail %arg0 {axis = 1 : i64}
// CHECK: %[[TN:.*]] = kiln.rms_norm %[[T]]
// CHECK: kiln.matmul_group %[[T]], %{{.*}} norm(%{{[0-9]+}}) normed(%[[TN]]) {norm_eps = 1.000000e-05 : f64, silu_mul = false}
func.func @tail_rows(%x: !x) -> tensor<?x?x96xf32, #kiln.dims<[b, r]>> {
  %nw = kiln.weight "model.norm.weight" : tensor<64xf32>
  %n = kiln.rms_norm %x, %nw {eps = 1.0e-5 : f64, unit_offset = false} : (!x, tensor<64xf32>) -> !x
  %t = kiln.tail %n {axis = 1 : i64} : !x -> tensor<?x?x64xf32, #kiln.dims<[b, r]>>
  %w = kiln.weight "lm_head.weight" : tensor<96x64xf32>
  %y = kiln.matmul %t, %w {transpose_b = true} : (tensor<?x?x64xf32, #kiln.dims<[b, r]>>, tensor<96x64xf32>) -> tensor<?x?x96xf32, #kiln.dims<[b, r]>>
  return %y : tensor<?x?x96xf32, #kiln.dims<[b, r]>>
}

// Near misses: a norm read twice (its output is materialized anyway: it stays, and so do its readers), a
// quantized weight (no float kernel reads it), a row chunk of kiln-split-weights, a matmul product also read
// elsewhere, a broadcasting add, an add of two activations.
// CHECK-LABEL: func.func @near_misses
// CHECK: kiln.rms_norm
// CHECK: kiln.matmul_group %[[N:.*]], %{{.*}}, %{{.*}} {silu_mul = false}
// CHECK: kiln.matmul %[[N]]
// CHECK: kiln.rms_norm
// CHECK: kiln.weight "q.weight" {quant = "q8_0"}
// CHECK-NEXT: kiln.matmul %{{.*}}, %{{.*}} {transpose_b = true}
// CHECK: kiln.rms_norm
// CHECK: kiln.weight "c.weight" {rows = array<i64: 0, 96>}
// CHECK-NEXT: kiln.matmul %{{.*}}, %{{.*}} {transpose_b = true}
// CHECK: kiln.matmul
// CHECK: kiln.add
// CHECK: kiln.matmul
// CHECK: kiln.add
// CHECK: kiln.add
// CHECK-NOT: kiln.matmul_group
// CHECK: return
func.func @near_misses(%x: !x, %r: !x, %b: tensor<64xf32>, %z: !x) -> (!kv, !kv, !h, !h, !h, !x, !x, !x, !x) {
  %nw = kiln.weight "n.weight" : tensor<64xf32>
  %n = kiln.rms_norm %x, %nw {eps = 1.0e-6 : f64, unit_offset = false} : (!x, tensor<64xf32>) -> !x
  %wk = kiln.weight "k.weight" : tensor<16x64xf32>
  %kv:2 = kiln.matmul_group %n, %wk, %wk {silu_mul = false} : (!x, tensor<16x64xf32>, tensor<16x64xf32>) -> (!kv, !kv)
  %w = kiln.weight "w.weight" : tensor<96x64xf32>
  %e = kiln.matmul %n, %w {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h
  %n2 = kiln.rms_norm %r, %nw {eps = 1.0e-6 : f64, unit_offset = false} : (!x, tensor<64xf32>) -> !x
  %wq = kiln.weight "q.weight" {quant = "q8_0"} : tensor<96x64xf32>
  %q = kiln.matmul %n2, %wq {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h loc("quantized")
  %n3 = kiln.rms_norm %z, %nw {eps = 1.0e-6 : f64, unit_offset = false} : (!x, tensor<64xf32>) -> !x
  %wc = kiln.weight "c.weight" {rows = array<i64: 0, 96>} : tensor<96x64xf32>
  %c = kiln.matmul %n3, %wc {transpose_b = true} : (!x, tensor<96x64xf32>) -> !h loc("chunk")
  %wo = kiln.weight "o.weight" : tensor<64x64xf32>
  %o = kiln.matmul %x, %wo {transpose_b = true} : (!x, tensor<64x64xf32>) -> !x
  %s1 = kiln.add %o, %r : (!x, !x) -> !x
  %o2 = kiln.matmul %r, %wo {transpose_b = true} : (!x, tensor<64x64xf32>) -> !x
  %s2 = kiln.add %o2, %b : (!x, tensor<64xf32>) -> !x
  %s3 = kiln.add %x, %r : (!x, !x) -> !x
  return %kv#0, %kv#1, %e, %q, %c, %s1, %s2, %s3, %o : !kv, !kv, !h, !h, !h, !x, !x, !x, !x
}

// REPORT: unfused: rms_norm at {{.*}} left unfused: no matmul prologue: its output has other readers
// REPORT-NEXT: unfused: rms_norm at {{.*}} left unfused: no matmul prologue: its reader is not a Linear matmul over a whole float weight
// REPORT-NEXT: unfused: rms_norm at {{.*}} left unfused: no matmul prologue: its reader is not a Linear matmul over a whole float weight

// Static rows (no decode step: nothing to fold the norm's dispatch into) stay unfused.
// CHECK-LABEL: func.func @static_rows
// CHECK: kiln.rms_norm
// CHECK-NEXT: kiln.weight
// CHECK-NEXT: kiln.matmul %{{.*}}, %{{.*}} {transpose_b = true}
func.func @static_rows(%x: tensor<2x5x64xf32>) -> tensor<2x5x96xf32> {
  %nw = kiln.weight "n.weight" : tensor<64xf32>
  %n = kiln.rms_norm %x, %nw {eps = 1.0e-6 : f64, unit_offset = false} : (tensor<2x5x64xf32>, tensor<64xf32>) -> tensor<2x5x64xf32>
  %w = kiln.weight "w.weight" : tensor<96x64xf32>
  %y = kiln.matmul %n, %w {transpose_b = true} : (tensor<2x5x64xf32>, tensor<96x64xf32>) -> tensor<2x5x96xf32>
  return %y : tensor<2x5x96xf32>
}
// REPORT: unfused: rms_norm at {{.*}} left unfused: no matmul prologue: its rows are static
