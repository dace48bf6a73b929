// RUN: kiln-opt %s --kiln-fuse-norms --kiln-fuse-add-norms --canonicalize | FileCheck %s
// RUN: kiln-opt %s --kiln-fuse-norms --kiln-fuse-add-norms=report=true -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
// RUN: kiln-opt %s --kiln-fuse-norms --kiln-fuse-add-norms=report=true -o /dev/null 2>&1 | FileCheck %s --check-prefix=UNFUSED
// A residual add whose sum is also read elsewhere (the next residual) folds into the norm that reads it:
// kiln.add_rms_norm / kiln.add_layer_norm -> (h, y). Near misses stay: a broadcasting add, a norm not
// directly over an add, an add read by the norm alone.

!x = tensor<?x?x64xf32, #kiln.dims<[b, s]>>
!m = tensor<?x?x1xf32, #kiln.dims<[b, s]>>

// The primitive RMSNorm of a residual sum, as the builders emit it: fuse-norms, then the add folds in.
// CHECK-LABEL: func.func @rms_from_primitives
// CHECK: %[[H:.*]], %[[Y:.*]] = kiln.add_rms_norm %arg0, %arg1, %arg2 {eps = 9.99999997{{[0-9]+}}E-7 : f64, unit_offset = false} : ({{.*}}, {{.*}}, tensor<64xf32>) -> ({{.*}}, {{.*}})
// CHECK-NOT: kiln.add
// CHECK-NOT: kiln.rms_norm
// CHECK: return %[[H]], %[[Y]]
func.func @rms_from_primitives(%x: !x, %r: !x, %w: tensor<64xf32>) -> (!x, !x) {
  %h = kiln.add %x, %r : (!x, !x) -> !x
  %two = kiln.constant dense<2.0> : tensor<f32> : tensor<f32>
  %eps = kiln.constant dense<1.0e-06> : tensor<f32> : tensor<f32>
  %sq = kiln.pow %h, %two : (!x, tensor<f32>) -> !x
  %var = kiln.reduce_mean %sq {axis = 2 : i64, keepdim = true} : !x -> !m
  %ve = kiln.add %var, %eps : (!m, tensor<f32>) -> !m
  %rs = kiln.rsqrt %ve : !m -> !m
  %n = kiln.mul %h, %rs : (!x, !m) -> !x
  %y = kiln.mul %n, %w : (!x, tensor<64xf32>) -> !x
  return %h, %y : !x, !x
}

// Gemma's unit offset carries over; the next residual add reads h.
// CHECK-LABEL: func.func @rms_unit_offset
// CHECK: %[[H:.*]], %[[Y:.*]] = kiln.add_rms_norm %arg0, %arg1, %arg2 {eps = 9.99999999{{[0-9]+}}E-7 : f64, unit_offset = true}
// CHECK: %[[NEXT:.*]] = kiln.add %[[H]], %[[Y]]
// CHECK: return %[[NEXT]]
func.func @rms_unit_offset(%x: !x, %r: !x, %w: tensor<64xf32>) -> !x {
  %h = kiln.add %x, %r : (!x, !x) -> !x
  %y = kiln.rms_norm %h, %w {eps = 1.0e-06 : f64, unit_offset = true} : (!x, tensor<64xf32>) -> !x
  %next = kiln.add %h, %y : (!x, !x) -> !x
  return %next : !x
}

// The norm's weight is defined after the add (a kiln.weight between them): the fused op goes at the norm.
// CHECK-LABEL: func.func @layer_norm_weight_after_add
// CHECK: %[[W:.*]] = kiln.weight "ln.weight"
// CHECK: %[[B:.*]] = kiln.weight "ln.bias"
// CHECK: %[[H:.*]], %[[Y:.*]] = kiln.add_layer_norm %arg0, %arg1, %[[W]], %[[B]] {eps = 9.99999999{{[0-9]+}}E-13 : f64}
// CHECK: return %[[Y]], %[[H]]
func.func @layer_norm_weight_after_add(%x: !x, %r: !x) -> (!x, !x) {
  %h = kiln.add %x, %r : (!x, !x) -> !x
  %w = kiln.weight "ln.weight" : tensor<64xf32>
  %b = kiln.weight "ln.bias" : tensor<64xf32>
  %y = kiln.layer_norm %h, %w, %b {eps = 1.0e-12 : f64} : (!x, tensor<64xf32>, tensor<64xf32>) -> !x
  return %y, %h : !x, !x
}

// Near miss: the add broadcasts (r is [b, s, 1]).
// CHECK-LABEL: func.func @broadcast_add
// CHECK: kiln.add %arg0, %arg1
// CHECK: kiln.rms_norm
// CHECK-NOT: kiln.add_rms_norm
func.func @broadcast_add(%x: !x, %r: !m, %w: tensor<64xf32>) -> (!x, !x) {
  %h = kiln.add %x, %r : (!x, !m) -> !x
  %y = kiln.rms_norm %h, %w {eps = 1.0e-06 : f64, unit_offset = false} : (!x, tensor<64xf32>) -> !x
  return %h, %y : !x, !x
}

// Near miss: the norm is not directly over the add (a mul between them).
// CHECK-LABEL: func.func @not_over_add
// CHECK: kiln.add %arg0, %arg1
// CHECK: kiln.mul
// CHECK: kiln.layer_norm
// CHECK-NOT: kiln.add_layer_norm
func.func @not_over_add(%x: !x, %r: !x, %w: tensor<64xf32>, %b: tensor<64xf32>) -> (!x, !x) {
  %h = kiln.add %x, %r : (!x, !x) -> !x
  %g = kiln.mul %h, %h : (!x, !x) -> !x
  %y = kiln.layer_norm %g, %w, %b {eps = 1.0e-05 : f64} : (!x, tensor<64xf32>, tensor<64xf32>) -> !x
  return %h, %y : !x, !x
}

// Left as it is: the add is read by the norm alone (h would be written for nobody).
// CHECK-LABEL: func.func @add_only_for_norm
// CHECK: kiln.add %arg0, %arg1
// CHECK: kiln.rms_norm
// CHECK-NOT: kiln.add_rms_norm
func.func @add_only_for_norm(%x: !x, %r: !x, %w: tensor<64xf32>) -> !x {
  %h = kiln.add %x, %r : (!x, !x) -> !x
  %y = kiln.rms_norm %h, %w {eps = 1.0e-06 : f64, unit_offset = false} : (!x, tensor<64xf32>) -> !x
  return %y : !x
}

// REPORT-DAG: fused: add_rms_norm at {{.*}}
// REPORT-DAG: fused: add_rms_norm at {{.*}} (unit offset)
// REPORT-DAG: fused: add_layer_norm at {{.*}}
// REPORT-DAG: unfused: rms_norm at {{.*}} left unfused: the add broadcasts (its operands are not both of its result type)
// Only the broadcasting add is a near miss in the report: a norm not over an add, or over one it alone
// reads, is no candidate.
// UNFUSED-COUNT-1: {{^}}unfused:
// UNFUSED-NOT: {{^}}unfused:
