// RUN: kiln-opt %s --kiln-fuse-norms --canonicalize | FileCheck %s
// RUN: kiln-opt %s --kiln-fuse-norms=report=true -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
// RMSNorm (w and Gemma's 1 + w) and LayerNorm as the model builders emit them, and near misses that must
// stay unfused (and therefore correct).

!x = tensor<?x?x64xf32, #kiln.dims<[b, s]>>
!m = tensor<?x?x1xf32, #kiln.dims<[b, s]>>

// CHECK-LABEL: func.func @rms_norm
// CHECK: %[[N:.*]] = kiln.rms_norm %arg0, %arg1 {eps = 9.99999997{{[0-9]+}}E-7 : f64, unit_offset = false}
// CHECK-NOT: kiln.rsqrt
// CHECK-NOT: kiln.pow
// CHECK: return %[[N]]
func.func @rms_norm(%x: !x, %w: tensor<64xf32>) -> !x {
  %two = kiln.constant dense<2.0> : tensor<f32> : tensor<f32>
  %eps = kiln.constant dense<1.0e-06> : tensor<f32> : tensor<f32>
  %sq = kiln.pow %x, %two : (!x, tensor<f32>) -> !x
  %var = kiln.reduce_mean %sq {axis = 2 : i64, keepdim = true} : !x -> !m
  %ve = kiln.add %var, %eps : (!m, tensor<f32>) -> !m
  %r = kiln.rsqrt %ve : !m -> !m
  %n = kiln.mul %x, %r : (!x, !m) -> !x
  %y = kiln.mul %n, %w : (!x, tensor<64xf32>) -> !x
  return %y : !x
}

// Gemma: (1 + w), eps as the lhs of the add.
// CHECK-LABEL: func.func @rms_norm_unit_offset
// CHECK: kiln.rms_norm %arg0, %arg1 {eps = 9.99999997{{[0-9]+}}E-7 : f64, unit_offset = true}
// CHECK-NOT: kiln.rsqrt
func.func @rms_norm_unit_offset(%x: !x, %w: tensor<64xf32>) -> !x {
  %one = kiln.constant dense<1.0> : tensor<f32> : tensor<f32>
  %two = kiln.constant dense<2.0> : tensor<f32> : tensor<f32>
  %eps = kiln.constant dense<1.0e-06> : tensor<f32> : tensor<f32>
  %sq = kiln.pow %x, %two : (!x, tensor<f32>) -> !x
  %var = kiln.reduce_mean %sq {axis = 2 : i64, keepdim = true} : !x -> !m
  %ve = kiln.add %eps, %var : (tensor<f32>, !m) -> !m
  %r = kiln.rsqrt %ve : !m -> !m
  %n = kiln.mul %x, %r : (!x, !m) -> !x
  %w1 = kiln.add %one, %w : (tensor<f32>, tensor<64xf32>) -> tensor<64xf32>
  %y = kiln.mul %n, %w1 : (!x, tensor<64xf32>) -> !x
  return %y : !x
}

// CHECK-LABEL: func.func @layer_norm
// CHECK: %[[N:.*]] = kiln.layer_norm %arg0, %arg1, %arg2 {eps = 9.99999996{{[0-9]+}}E-13 : f64}
// CHECK-NOT: kiln.reduce_mean
// CHECK: return %[[N]]
func.func @layer_norm(%x: !x, %w: tensor<64xf32>, %b: tensor<64xf32>) -> !x {
  %eps = kiln.constant dense<1.0e-12> : tensor<f32> : tensor<f32>
  %mean = kiln.reduce_mean %x {axis = 2 : i64, keepdim = true} : !x -> !m
  %c = kiln.sub %x, %mean : (!x, !m) -> !x
  %sq = kiln.mul %c, %c : (!x, !x) -> !x
  %var = kiln.reduce_mean %sq {axis = 2 : i64, keepdim = true} : !x -> !m
  %ve = kiln.add %var, %eps : (!m, tensor<f32>) -> !m
  %r = kiln.rsqrt %ve : !m -> !m
  %n = kiln.mul %c, %r : (!x, !m) -> !x
  %s = kiln.mul %n, %w : (!x, tensor<64xf32>) -> !x
  %y = kiln.add %s, %b : (!x, tensor<64xf32>) -> !x
  return %y : !x
}

// Near miss: pow 3 is not a mean square.
// CHECK-LABEL: func.func @near_miss_pow3
// CHECK-NOT: kiln.rms_norm
// CHECK: kiln.pow
// CHECK: kiln.rsqrt
// REPORT-DAG: unfused: rsqrt at {{.*}} left unfused: the pow exponent is 3.000000, not 2
func.func @near_miss_pow3(%x: !x, %w: tensor<64xf32>) -> !x {
  %three = kiln.constant dense<3.0> : tensor<f32> : tensor<f32>
  %eps = kiln.constant dense<1.0e-06> : tensor<f32> : tensor<f32>
  %sq = kiln.pow %x, %three : (!x, tensor<f32>) -> !x
  %var = kiln.reduce_mean %sq {axis = 2 : i64, keepdim = true} : !x -> !m
  %ve = kiln.add %var, %eps : (!m, tensor<f32>) -> !m
  %r = kiln.rsqrt %ve : !m -> !m
  %n = kiln.mul %x, %r : (!x, !m) -> !x
  %y = kiln.mul %n, %w : (!x, tensor<64xf32>) -> !x
  return %y : !x
}

// Near miss: eps added after the rsqrt.
// CHECK-LABEL: func.func @near_miss_eps_after_rsqrt
// CHECK-NOT: kiln.rms_norm
// CHECK: kiln.rsqrt
// REPORT-DAG: unfused: rsqrt at {{.*}} left unfused: the rsqrt's input is not an add of a constant eps
func.func @near_miss_eps_after_rsqrt(%x: !x, %w: tensor<64xf32>) -> !x {
  %two = kiln.constant dense<2.0> : tensor<f32> : tensor<f32>
  %eps = kiln.constant dense<1.0e-06> : tensor<f32> : tensor<f32>
  %sq = kiln.pow %x, %two : (!x, tensor<f32>) -> !x
  %var = kiln.reduce_mean %sq {axis = 2 : i64, keepdim = true} : !x -> !m
  %r = kiln.rsqrt %var : !m -> !m
  %re = kiln.add %r, %eps : (!m, tensor<f32>) -> !m
  %n = kiln.mul %x, %re : (!x, !m) -> !x
  %y = kiln.mul %n, %w : (!x, tensor<64xf32>) -> !x
  return %y : !x
}

// Near miss: the mean is over x but the rsqrt scales another tensor.
// CHECK-LABEL: func.func @near_miss_other_input
// CHECK-NOT: kiln.rms_norm
// REPORT-DAG: unfused: rsqrt at {{.*}} left unfused: the rsqrt does not multiply the normalized input
func.func @near_miss_other_input(%x: !x, %z: !x, %w: tensor<64xf32>) -> !x {
  %two = kiln.constant dense<2.0> : tensor<f32> : tensor<f32>
  %eps = kiln.constant dense<1.0e-06> : tensor<f32> : tensor<f32>
  %sq = kiln.pow %x, %two : (!x, tensor<f32>) -> !x
  %var = kiln.reduce_mean %sq {axis = 2 : i64, keepdim = true} : !x -> !m
  %ve = kiln.add %var, %eps : (!m, tensor<f32>) -> !m
  %r = kiln.rsqrt %ve : !m -> !m
  %n = kiln.mul %z, %r : (!x, !m) -> !x
  %y = kiln.mul %n, %w : (!x, tensor<64xf32>) -> !x
  return %y : !x
}

// Near miss: LayerNorm whose variance is of a different centering (x - mean(z)).
// CHECK-LABEL: func.func @near_miss_layer_norm_centering
// CHECK-NOT: kiln.layer_norm
// REPORT-DAG: unfused: rsqrt at {{.*}} left unfused: mean(c * c) where c is not x - mean(x) over the last axis
func.func @near_miss_layer_norm_centering(%x: !x, %z: !x, %w: tensor<64xf32>, %b: tensor<64xf32>) -> !x {
  %eps = kiln.constant dense<1.0e-12> : tensor<f32> : tensor<f32>
  %mean = kiln.reduce_mean %z {axis = 2 : i64, keepdim = true} : !x -> !m
  %c = kiln.sub %x, %mean : (!x, !m) -> !x
  %sq = kiln.mul %c, %c : (!x, !x) -> !x
  %var = kiln.reduce_mean %sq {axis = 2 : i64, keepdim = true} : !x -> !m
  %ve = kiln.add %var, %eps : (!m, tensor<f32>) -> !m
  %r = kiln.rsqrt %ve : !m -> !m
  %n = kiln.mul %c, %r : (!x, !m) -> !x
  %s = kiln.mul %n, %w : (!x, tensor<64xf32>) -> !x
  %y = kiln.add %s, %b : (!x, tensor<64xf32>) -> !x
  return %y : !x
}
