// RUN: kiln-opt %s --kiln-fuse-rope --canonicalize | FileCheck %s
// RUN: kiln-opt %s --kiln-fuse-rope=report=true -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
// Interleaved RoPE (GPT-J's rotate_every_two) as the GPT-J builder emits it: partial rotary of 8 of 16
// channels, y = reshape(x_rot) [.., 4, 2], rotated = flatten(concat(-y[..., 1], y[..., 0])), cos/sin tables
// of positions * inv_freq repeated in pairs (repeat_interleave); and near misses that must stay unfused.

// CHECK-LABEL: func.func @rope_interleaved
// CHECK: %[[F:.*]] = kiln.constant dense<[1.000000e+00, 1.000000e-01, 0.00999999977, 1.000000e-03]> : tensor<4xf32>
// CHECK: %[[R:.*]] = kiln.rope %arg0, %{{.*}}, %[[F]] {interleaved = true} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x?xi64, #kiln.dims<[b, s]>>, tensor<4xf32>)
// CHECK-NOT: kiln.cos
// CHECK-NOT: kiln.sin
// CHECK-NOT: kiln.neg
// CHECK-NOT: kiln.concat
// CHECK: return %[[R]]
// REPORT-DAG: fused: rope at {{.*}}fuse-rope-interleaved.mlir:{{[0-9]+}} (interleaved, partial, 8 of 16)
func.func @rope_interleaved(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %it = kiln.iota dim 1 : tensor<1x?xi64, #kiln.dims<[s]>>
  %p = kiln.sym "p" : tensor<i64>
  %pos = kiln.add %it, %p : (tensor<1x?xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<1x?xi64, #kiln.dims<[s]>>
  %pf = kiln.convert %pos : tensor<1x?xi64, #kiln.dims<[s]>> -> tensor<1x?xf32, #kiln.dims<[s]>>
  %p3 = kiln.reshape %pf : tensor<1x?xf32, #kiln.dims<[s]>> -> tensor<1x?x1xf32, #kiln.dims<[s]>>
  %inv = kiln.constant dense<[[[1.00000000e+00, 1.00000000e-01, 1.00000000e-02, 1.00000000e-03]]]> : tensor<1x1x4xf32> : tensor<1x1x4xf32>
  %f = kiln.mul %p3, %inv : (tensor<1x?x1xf32, #kiln.dims<[s]>>, tensor<1x1x4xf32>) -> tensor<1x?x4xf32, #kiln.dims<[s]>>
  %cf = kiln.cos %f : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x?x4xf32, #kiln.dims<[s]>>
  %sf = kiln.sin %f : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x?x4xf32, #kiln.dims<[s]>>
  %cose = kiln.reshape %cf : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x1xf32, #kiln.dims<[s]>>
  %cosb = kiln.broadcast_to %cose : tensor<1x1x?x4x1xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x2xf32, #kiln.dims<[s]>>
  %cos = kiln.reshape %cosb : tensor<1x1x?x4x2xf32, #kiln.dims<[s]>> -> tensor<1x1x?x8xf32, #kiln.dims<[s]>>
  %sine = kiln.reshape %sf : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x1xf32, #kiln.dims<[s]>>
  %sinb = kiln.broadcast_to %sine : tensor<1x1x?x4x1xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x2xf32, #kiln.dims<[s]>>
  %sin = kiln.reshape %sinb : tensor<1x1x?x4x2xf32, #kiln.dims<[s]>> -> tensor<1x1x?x8xf32, #kiln.dims<[s]>>
  %xr = kiln.slice %x {axis = 3 : i64, start = 0 : i64, end = 8 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %y = kiln.reshape %xr : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>>
  %x1 = kiln.slice %y {axis = 4 : i64, start = 0 : i64, end = 1 : i64} : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %x2 = kiln.slice %y {axis = 4 : i64, start = 1 : i64, end = 2 : i64} : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %n = kiln.neg %x2 : tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %st = kiln.concat %n, %x1 {axis = 4 : i64} : (tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>>
  %rot = kiln.reshape %st : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %a = kiln.mul %xr, %cos : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x8xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %b2 = kiln.mul %rot, %sin : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x8xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %e = kiln.add %a, %b2 : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %pass = kiln.slice %x {axis = 3 : i64, start = 8 : i64, end = 16 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %out = kiln.concat %e, %pass {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %out : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// The repeat on the angle instead of on cos / sin: the same tables.
// CHECK-LABEL: func.func @rope_interleaved_angle_table
// CHECK: kiln.rope %arg0, %{{.*}}, %{{.*}} {interleaved = true}
// CHECK-NOT: kiln.cos
// CHECK: return
func.func @rope_interleaved_angle_table(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %it = kiln.iota dim 1 : tensor<1x?xi64, #kiln.dims<[s]>>
  %p = kiln.sym "p" : tensor<i64>
  %pos = kiln.add %it, %p : (tensor<1x?xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<1x?xi64, #kiln.dims<[s]>>
  %pf = kiln.convert %pos : tensor<1x?xi64, #kiln.dims<[s]>> -> tensor<1x?xf32, #kiln.dims<[s]>>
  %p3 = kiln.reshape %pf : tensor<1x?xf32, #kiln.dims<[s]>> -> tensor<1x?x1xf32, #kiln.dims<[s]>>
  %inv = kiln.constant dense<[[[1.00000000e+00, 1.00000000e-01, 1.00000000e-02, 1.00000000e-03]]]> : tensor<1x1x4xf32> : tensor<1x1x4xf32>
  %f = kiln.mul %p3, %inv : (tensor<1x?x1xf32, #kiln.dims<[s]>>, tensor<1x1x4xf32>) -> tensor<1x?x4xf32, #kiln.dims<[s]>>
  %ange = kiln.reshape %f : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x1xf32, #kiln.dims<[s]>>
  %angb = kiln.broadcast_to %ange : tensor<1x1x?x4x1xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x2xf32, #kiln.dims<[s]>>
  %ang = kiln.reshape %angb : tensor<1x1x?x4x2xf32, #kiln.dims<[s]>> -> tensor<1x1x?x8xf32, #kiln.dims<[s]>>
  %cos = kiln.cos %ang : tensor<1x1x?x8xf32, #kiln.dims<[s]>> -> tensor<1x1x?x8xf32, #kiln.dims<[s]>>
  %sin = kiln.sin %ang : tensor<1x1x?x8xf32, #kiln.dims<[s]>> -> tensor<1x1x?x8xf32, #kiln.dims<[s]>>
  %xr = kiln.slice %x {axis = 3 : i64, start = 0 : i64, end = 8 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %y = kiln.reshape %xr : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>>
  %x1 = kiln.slice %y {axis = 4 : i64, start = 0 : i64, end = 1 : i64} : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %x2 = kiln.slice %y {axis = 4 : i64, start = 1 : i64, end = 2 : i64} : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %n = kiln.neg %x2 : tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %st = kiln.concat %n, %x1 {axis = 4 : i64} : (tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>>
  %rot = kiln.reshape %st : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %a = kiln.mul %xr, %cos : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x8xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %b2 = kiln.mul %rot, %sin : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x8xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %e = kiln.add %a, %b2 : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %pass = kiln.slice %x {axis = 3 : i64, start = 8 : i64, end = 16 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %out = kiln.concat %e, %pass {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %out : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// (-x[2i], x[2i+1]): the wrong element of each pair is negated.
// CHECK-LABEL: func.func @near_miss_pair_order
// CHECK-NOT: kiln.rope
// CHECK: kiln.neg
// REPORT-DAG: unfused: concat at {{.*}} left unfused: the pairs are (-x[2i], x[2i+1]), not rotate_every_two's (-x[2i+1], x[2i])
func.func @near_miss_pair_order(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %it = kiln.iota dim 1 : tensor<1x?xi64, #kiln.dims<[s]>>
  %p = kiln.sym "p" : tensor<i64>
  %pos = kiln.add %it, %p : (tensor<1x?xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<1x?xi64, #kiln.dims<[s]>>
  %pf = kiln.convert %pos : tensor<1x?xi64, #kiln.dims<[s]>> -> tensor<1x?xf32, #kiln.dims<[s]>>
  %p3 = kiln.reshape %pf : tensor<1x?xf32, #kiln.dims<[s]>> -> tensor<1x?x1xf32, #kiln.dims<[s]>>
  %inv = kiln.constant dense<[[[1.00000000e+00, 1.00000000e-01, 1.00000000e-02, 1.00000000e-03]]]> : tensor<1x1x4xf32> : tensor<1x1x4xf32>
  %f = kiln.mul %p3, %inv : (tensor<1x?x1xf32, #kiln.dims<[s]>>, tensor<1x1x4xf32>) -> tensor<1x?x4xf32, #kiln.dims<[s]>>
  %cf = kiln.cos %f : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x?x4xf32, #kiln.dims<[s]>>
  %sf = kiln.sin %f : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x?x4xf32, #kiln.dims<[s]>>
  %cose = kiln.reshape %cf : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x1xf32, #kiln.dims<[s]>>
  %cosb = kiln.broadcast_to %cose : tensor<1x1x?x4x1xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x2xf32, #kiln.dims<[s]>>
  %cos = kiln.reshape %cosb : tensor<1x1x?x4x2xf32, #kiln.dims<[s]>> -> tensor<1x1x?x8xf32, #kiln.dims<[s]>>
  %sine = kiln.reshape %sf : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x1xf32, #kiln.dims<[s]>>
  %sinb = kiln.broadcast_to %sine : tensor<1x1x?x4x1xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x2xf32, #kiln.dims<[s]>>
  %sin = kiln.reshape %sinb : tensor<1x1x?x4x2xf32, #kiln.dims<[s]>> -> tensor<1x1x?x8xf32, #kiln.dims<[s]>>
  %xr = kiln.slice %x {axis = 3 : i64, start = 0 : i64, end = 8 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %y = kiln.reshape %xr : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>>
  %x1 = kiln.slice %y {axis = 4 : i64, start = 0 : i64, end = 1 : i64} : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %x2 = kiln.slice %y {axis = 4 : i64, start = 1 : i64, end = 2 : i64} : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %n = kiln.neg %x1 : tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %st = kiln.concat %n, %x2 {axis = 4 : i64} : (tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>>
  %rot = kiln.reshape %st : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %a = kiln.mul %xr, %cos : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x8xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %b2 = kiln.mul %rot, %sin : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x8xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %e = kiln.add %a, %b2 : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %pass = kiln.slice %x {axis = 3 : i64, start = 8 : i64, end = 16 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %out = kiln.concat %e, %pass {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %out : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// (x[2i+1], -x[2i]): the sign on the second element of the pair.
// CHECK-LABEL: func.func @near_miss_sign_on_second
// CHECK-NOT: kiln.rope
// CHECK: kiln.neg
// REPORT-DAG: unfused: concat at {{.*}} left unfused: the sign is on the second element of each pair: rotate_every_two is (-x[2i+1], x[2i])
func.func @near_miss_sign_on_second(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %it = kiln.iota dim 1 : tensor<1x?xi64, #kiln.dims<[s]>>
  %p = kiln.sym "p" : tensor<i64>
  %pos = kiln.add %it, %p : (tensor<1x?xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<1x?xi64, #kiln.dims<[s]>>
  %pf = kiln.convert %pos : tensor<1x?xi64, #kiln.dims<[s]>> -> tensor<1x?xf32, #kiln.dims<[s]>>
  %p3 = kiln.reshape %pf : tensor<1x?xf32, #kiln.dims<[s]>> -> tensor<1x?x1xf32, #kiln.dims<[s]>>
  %inv = kiln.constant dense<[[[1.00000000e+00, 1.00000000e-01, 1.00000000e-02, 1.00000000e-03]]]> : tensor<1x1x4xf32> : tensor<1x1x4xf32>
  %f = kiln.mul %p3, %inv : (tensor<1x?x1xf32, #kiln.dims<[s]>>, tensor<1x1x4xf32>) -> tensor<1x?x4xf32, #kiln.dims<[s]>>
  %cf = kiln.cos %f : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x?x4xf32, #kiln.dims<[s]>>
  %sf = kiln.sin %f : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x?x4xf32, #kiln.dims<[s]>>
  %cose = kiln.reshape %cf : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x1xf32, #kiln.dims<[s]>>
  %cosb = kiln.broadcast_to %cose : tensor<1x1x?x4x1xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x2xf32, #kiln.dims<[s]>>
  %cos = kiln.reshape %cosb : tensor<1x1x?x4x2xf32, #kiln.dims<[s]>> -> tensor<1x1x?x8xf32, #kiln.dims<[s]>>
  %sine = kiln.reshape %sf : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x1xf32, #kiln.dims<[s]>>
  %sinb = kiln.broadcast_to %sine : tensor<1x1x?x4x1xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x2xf32, #kiln.dims<[s]>>
  %sin = kiln.reshape %sinb : tensor<1x1x?x4x2xf32, #kiln.dims<[s]>> -> tensor<1x1x?x8xf32, #kiln.dims<[s]>>
  %xr = kiln.slice %x {axis = 3 : i64, start = 0 : i64, end = 8 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %y = kiln.reshape %xr : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>>
  %x1 = kiln.slice %y {axis = 4 : i64, start = 0 : i64, end = 1 : i64} : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %x2 = kiln.slice %y {axis = 4 : i64, start = 1 : i64, end = 2 : i64} : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %n = kiln.neg %x1 : tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %st = kiln.concat %x2, %n {axis = 4 : i64} : (tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>>
  %rot = kiln.reshape %st : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %a = kiln.mul %xr, %cos : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x8xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %b2 = kiln.mul %rot, %sin : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x8xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %e = kiln.add %a, %b2 : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %pass = kiln.slice %x {axis = 3 : i64, start = 8 : i64, end = 16 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %out = kiln.concat %e, %pass {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %out : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// The rotate-half table cat(f, f) with the pairwise rotation: channel 2i + 1 would get frequency 2i + 1.
// CHECK-LABEL: func.func @near_miss_halves_table
// CHECK-NOT: kiln.rope
// CHECK: kiln.cos
// REPORT-DAG: unfused: concat at {{.*}} left unfused: the cos/sin table is not repeated in pairs
func.func @near_miss_halves_table(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %it = kiln.iota dim 1 : tensor<1x?xi64, #kiln.dims<[s]>>
  %p = kiln.sym "p" : tensor<i64>
  %pos = kiln.add %it, %p : (tensor<1x?xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<1x?xi64, #kiln.dims<[s]>>
  %pf = kiln.convert %pos : tensor<1x?xi64, #kiln.dims<[s]>> -> tensor<1x?xf32, #kiln.dims<[s]>>
  %p3 = kiln.reshape %pf : tensor<1x?xf32, #kiln.dims<[s]>> -> tensor<1x?x1xf32, #kiln.dims<[s]>>
  %inv = kiln.constant dense<[[[1.00000000e+00, 1.00000000e-01, 1.00000000e-02, 1.00000000e-03]]]> : tensor<1x1x4xf32> : tensor<1x1x4xf32>
  %f = kiln.mul %p3, %inv : (tensor<1x?x1xf32, #kiln.dims<[s]>>, tensor<1x1x4xf32>) -> tensor<1x?x4xf32, #kiln.dims<[s]>>
  %emb = kiln.concat %f, %f {axis = 2 : i64} : (tensor<1x?x4xf32, #kiln.dims<[s]>>, tensor<1x?x4xf32, #kiln.dims<[s]>>) -> tensor<1x?x8xf32, #kiln.dims<[s]>>
  %e4 = kiln.reshape %emb : tensor<1x?x8xf32, #kiln.dims<[s]>> -> tensor<1x1x?x8xf32, #kiln.dims<[s]>>
  %cos = kiln.cos %e4 : tensor<1x1x?x8xf32, #kiln.dims<[s]>> -> tensor<1x1x?x8xf32, #kiln.dims<[s]>>
  %sin = kiln.sin %e4 : tensor<1x1x?x8xf32, #kiln.dims<[s]>> -> tensor<1x1x?x8xf32, #kiln.dims<[s]>>
  %xr = kiln.slice %x {axis = 3 : i64, start = 0 : i64, end = 8 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %y = kiln.reshape %xr : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>>
  %x1 = kiln.slice %y {axis = 4 : i64, start = 0 : i64, end = 1 : i64} : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %x2 = kiln.slice %y {axis = 4 : i64, start = 1 : i64, end = 2 : i64} : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %n = kiln.neg %x2 : tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %st = kiln.concat %n, %x1 {axis = 4 : i64} : (tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>>
  %rot = kiln.reshape %st : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %a = kiln.mul %xr, %cos : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x8xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %b2 = kiln.mul %rot, %sin : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x8xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %e = kiln.add %a, %b2 : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %pass = kiln.slice %x {axis = 3 : i64, start = 8 : i64, end = 16 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %out = kiln.concat %e, %pass {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %out : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// sin of other frequencies than cos: not one rotation.
// CHECK-LABEL: func.func @near_miss_other_frequencies
// CHECK-NOT: kiln.rope
// CHECK: kiln.sin
// REPORT-DAG: unfused: concat at {{.*}} left unfused: cos and sin are not of the same frequencies
func.func @near_miss_other_frequencies(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %it = kiln.iota dim 1 : tensor<1x?xi64, #kiln.dims<[s]>>
  %p = kiln.sym "p" : tensor<i64>
  %pos = kiln.add %it, %p : (tensor<1x?xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<1x?xi64, #kiln.dims<[s]>>
  %pf = kiln.convert %pos : tensor<1x?xi64, #kiln.dims<[s]>> -> tensor<1x?xf32, #kiln.dims<[s]>>
  %p3 = kiln.reshape %pf : tensor<1x?xf32, #kiln.dims<[s]>> -> tensor<1x?x1xf32, #kiln.dims<[s]>>
  %inv = kiln.constant dense<[[[1.00000000e+00, 1.00000000e-01, 1.00000000e-02, 1.00000000e-03]]]> : tensor<1x1x4xf32> : tensor<1x1x4xf32>
  %f = kiln.mul %p3, %inv : (tensor<1x?x1xf32, #kiln.dims<[s]>>, tensor<1x1x4xf32>) -> tensor<1x?x4xf32, #kiln.dims<[s]>>
  %inv2 = kiln.constant dense<[[[1.00000000e+00, 2.00000000e-01, 1.00000000e-02, 1.00000000e-03]]]> : tensor<1x1x4xf32> : tensor<1x1x4xf32>
  %f2 = kiln.mul %p3, %inv2 : (tensor<1x?x1xf32, #kiln.dims<[s]>>, tensor<1x1x4xf32>) -> tensor<1x?x4xf32, #kiln.dims<[s]>>
  %cf = kiln.cos %f : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x?x4xf32, #kiln.dims<[s]>>
  %sf = kiln.sin %f2 : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x?x4xf32, #kiln.dims<[s]>>
  %cose = kiln.reshape %cf : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x1xf32, #kiln.dims<[s]>>
  %cosb = kiln.broadcast_to %cose : tensor<1x1x?x4x1xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x2xf32, #kiln.dims<[s]>>
  %cos = kiln.reshape %cosb : tensor<1x1x?x4x2xf32, #kiln.dims<[s]>> -> tensor<1x1x?x8xf32, #kiln.dims<[s]>>
  %sine = kiln.reshape %sf : tensor<1x?x4xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x1xf32, #kiln.dims<[s]>>
  %sinb = kiln.broadcast_to %sine : tensor<1x1x?x4x1xf32, #kiln.dims<[s]>> -> tensor<1x1x?x4x2xf32, #kiln.dims<[s]>>
  %sin = kiln.reshape %sinb : tensor<1x1x?x4x2xf32, #kiln.dims<[s]>> -> tensor<1x1x?x8xf32, #kiln.dims<[s]>>
  %xr = kiln.slice %x {axis = 3 : i64, start = 0 : i64, end = 8 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %y = kiln.reshape %xr : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>>
  %x1 = kiln.slice %y {axis = 4 : i64, start = 0 : i64, end = 1 : i64} : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %x2 = kiln.slice %y {axis = 4 : i64, start = 1 : i64, end = 2 : i64} : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %n = kiln.neg %x2 : tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>
  %st = kiln.concat %n, %x1 {axis = 4 : i64} : (tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>>
  %rot = kiln.reshape %st : tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %a = kiln.mul %xr, %cos : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x8xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %b2 = kiln.mul %rot, %sin : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x8xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %e = kiln.add %a, %b2 : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %pass = kiln.slice %x {axis = 3 : i64, start = 8 : i64, end = 16 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %out = kiln.concat %e, %pass {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %out : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}
