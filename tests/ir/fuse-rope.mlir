// RUN: kiln-opt %s --kiln-fuse-rope --canonicalize | FileCheck %s
// RUN: kiln-opt %s --kiln-fuse-rope=report=true -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
// Rotate-half RoPE as the builders emit it (full and partial rotary, positions [1, s] = iota + p), and
// near misses that must stay unfused.

// CHECK-LABEL: func.func @rope_full
// CHECK: %[[POS:.*]] = kiln.add %{{.*}}, %{{.*}} : (tensor<1x?xi64, #kiln.dims<[s]>>, tensor<i64>)
// CHECK: %[[B:.*]] = kiln.broadcast_to %[[POS]] : tensor<1x?xi64, #kiln.dims<[s]>> -> tensor<?x?xi64, #kiln.dims<[b, s]>>
// CHECK: %[[F:.*]] = kiln.constant dense<[1.000000e+00, 0.316227764, 1.000000e-01, {{.*}}]> : tensor<8xf32>
// CHECK: %[[R:.*]] = kiln.rope %arg0, %[[B]], %[[F]] {interleaved = false}
// CHECK-NOT: kiln.cos
// CHECK-NOT: kiln.sin
// CHECK-NOT: kiln.neg
// CHECK: return %[[R]]
// REPORT-DAG: fused: rope at {{.*}}fuse-rope.mlir:{{[0-9]+}}{{$}}
func.func @rope_full(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %it = kiln.iota dim 1 : tensor<1x?xi64, #kiln.dims<[s]>>
  %p = kiln.sym "p" : tensor<i64>
  %pos = kiln.add %it, %p : (tensor<1x?xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<1x?xi64, #kiln.dims<[s]>>
  %pf = kiln.convert %pos : tensor<1x?xi64, #kiln.dims<[s]>> -> tensor<1x?xf32, #kiln.dims<[s]>>
  %p3 = kiln.reshape %pf : tensor<1x?xf32, #kiln.dims<[s]>> -> tensor<1x?x1xf32, #kiln.dims<[s]>>
  %inv = kiln.constant dense<[[[1.00000000e+00, 3.16227766e-01, 1.00000000e-01, 3.16227766e-02, 1.00000000e-02, 3.16227766e-03, 1.00000000e-03, 3.16227766e-04]]]> : tensor<1x1x8xf32> : tensor<1x1x8xf32>
  %f = kiln.mul %p3, %inv : (tensor<1x?x1xf32, #kiln.dims<[s]>>, tensor<1x1x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[s]>>
  %emb = kiln.concat %f, %f {axis = 2 : i64} : (tensor<1x?x8xf32, #kiln.dims<[s]>>, tensor<1x?x8xf32, #kiln.dims<[s]>>) -> tensor<1x?x16xf32, #kiln.dims<[s]>>
  %e4 = kiln.reshape %emb : tensor<1x?x16xf32, #kiln.dims<[s]>> -> tensor<1x1x?x16xf32, #kiln.dims<[s]>>
  %cos = kiln.cos %e4 : tensor<1x1x?x16xf32, #kiln.dims<[s]>> -> tensor<1x1x?x16xf32, #kiln.dims<[s]>>
  %sin = kiln.sin %e4 : tensor<1x1x?x16xf32, #kiln.dims<[s]>> -> tensor<1x1x?x16xf32, #kiln.dims<[s]>>
  %x1 = kiln.slice %x {axis = 3 : i64, start = 0 : i64, end = 8 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %x2 = kiln.slice %x {axis = 3 : i64, start = 8 : i64, end = 16 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %n = kiln.neg %x2 : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %rot = kiln.concat %n, %x1 {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %a = kiln.mul %x, %cos : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x16xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %b2 = kiln.mul %rot, %sin : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x16xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %y = kiln.add %a, %b2 : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %y : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// CHECK-LABEL: func.func @rope_partial
// CHECK: %[[R:.*]] = kiln.rope %arg0, %{{.*}}, %{{.*}} {interleaved = false} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x?xi64, #kiln.dims<[b, s]>>, tensor<4xf32>)
// CHECK-NOT: kiln.slice
// CHECK-NOT: kiln.concat
// CHECK: return %[[R]]
// REPORT-DAG: fused: rope at {{.*}} (partial, 8 of 16)
func.func @rope_partial(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
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
  %x1 = kiln.slice %xr {axis = 3 : i64, start = 0 : i64, end = 4 : i64} : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4xf32, #kiln.dims<[b, s]>>
  %x2 = kiln.slice %xr {axis = 3 : i64, start = 4 : i64, end = 8 : i64} : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4xf32, #kiln.dims<[b, s]>>
  %n = kiln.neg %x2 : tensor<?x4x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x4xf32, #kiln.dims<[b, s]>>
  %rot = kiln.concat %n, %x1 {axis = 3 : i64} : (tensor<?x4x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %a = kiln.mul %xr, %cos : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x8xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %b2 = kiln.mul %rot, %sin : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x8xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %y = kiln.add %a, %b2 : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %pass = kiln.slice %x {axis = 3 : i64, start = 8 : i64, end = 16 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %out = kiln.concat %y, %pass {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %out : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// CHECK-LABEL: func.func @near_miss_neg_first_half
// CHECK-NOT: kiln.rope
// CHECK: kiln.neg
// REPORT-DAG: unfused: concat at {{.*}} left unfused: the second half of the rotate-half is not slice(rot, 0, r/2)
func.func @near_miss_neg_first_half(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %it = kiln.iota dim 1 : tensor<1x?xi64, #kiln.dims<[s]>>
  %p = kiln.sym "p" : tensor<i64>
  %pos = kiln.add %it, %p : (tensor<1x?xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<1x?xi64, #kiln.dims<[s]>>
  %pf = kiln.convert %pos : tensor<1x?xi64, #kiln.dims<[s]>> -> tensor<1x?xf32, #kiln.dims<[s]>>
  %p3 = kiln.reshape %pf : tensor<1x?xf32, #kiln.dims<[s]>> -> tensor<1x?x1xf32, #kiln.dims<[s]>>
  %inv = kiln.constant dense<[[[1.00000000e+00, 3.16227766e-01, 1.00000000e-01, 3.16227766e-02, 1.00000000e-02, 3.16227766e-03, 1.00000000e-03, 3.16227766e-04]]]> : tensor<1x1x8xf32> : tensor<1x1x8xf32>
  %f = kiln.mul %p3, %inv : (tensor<1x?x1xf32, #kiln.dims<[s]>>, tensor<1x1x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[s]>>
  %emb = kiln.concat %f, %f {axis = 2 : i64} : (tensor<1x?x8xf32, #kiln.dims<[s]>>, tensor<1x?x8xf32, #kiln.dims<[s]>>) -> tensor<1x?x16xf32, #kiln.dims<[s]>>
  %e4 = kiln.reshape %emb : tensor<1x?x16xf32, #kiln.dims<[s]>> -> tensor<1x1x?x16xf32, #kiln.dims<[s]>>
  %cos = kiln.cos %e4 : tensor<1x1x?x16xf32, #kiln.dims<[s]>> -> tensor<1x1x?x16xf32, #kiln.dims<[s]>>
  %sin = kiln.sin %e4 : tensor<1x1x?x16xf32, #kiln.dims<[s]>> -> tensor<1x1x?x16xf32, #kiln.dims<[s]>>
  %x1 = kiln.slice %x {axis = 3 : i64, start = 0 : i64, end = 8 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %x2 = kiln.slice %x {axis = 3 : i64, start = 8 : i64, end = 16 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %n = kiln.neg %x1 : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %rot = kiln.concat %n, %x2 {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %a = kiln.mul %x, %cos : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x16xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %b2 = kiln.mul %rot, %sin : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x16xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %y = kiln.add %a, %b2 : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %y : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// CHECK-LABEL: func.func @near_miss_different_halves
// CHECK-NOT: kiln.rope
// CHECK: kiln.cos
// REPORT-DAG: unfused: concat at {{.*}} left unfused: the cos/sin table is not concat(f, f) of the same f
func.func @near_miss_different_halves(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %it = kiln.iota dim 1 : tensor<1x?xi64, #kiln.dims<[s]>>
  %p = kiln.sym "p" : tensor<i64>
  %pos = kiln.add %it, %p : (tensor<1x?xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<1x?xi64, #kiln.dims<[s]>>
  %pf = kiln.convert %pos : tensor<1x?xi64, #kiln.dims<[s]>> -> tensor<1x?xf32, #kiln.dims<[s]>>
  %p3 = kiln.reshape %pf : tensor<1x?xf32, #kiln.dims<[s]>> -> tensor<1x?x1xf32, #kiln.dims<[s]>>
  %inv = kiln.constant dense<[[[1.00000000e+00, 3.16227766e-01, 1.00000000e-01, 3.16227766e-02, 1.00000000e-02, 3.16227766e-03, 1.00000000e-03, 3.16227766e-04]]]> : tensor<1x1x8xf32> : tensor<1x1x8xf32>
  %f = kiln.mul %p3, %inv : (tensor<1x?x1xf32, #kiln.dims<[s]>>, tensor<1x1x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[s]>>
  %inv2 = kiln.constant dense<[[[2.00000000e+00, 6.32455532e-01, 2.00000000e-01, 6.32455532e-02, 2.00000000e-02, 6.32455532e-03, 2.00000000e-03, 6.32455532e-04]]]> : tensor<1x1x8xf32> : tensor<1x1x8xf32>
  %g = kiln.mul %p3, %inv2 : (tensor<1x?x1xf32, #kiln.dims<[s]>>, tensor<1x1x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[s]>>
  %emb = kiln.concat %f, %g {axis = 2 : i64} : (tensor<1x?x8xf32, #kiln.dims<[s]>>, tensor<1x?x8xf32, #kiln.dims<[s]>>) -> tensor<1x?x16xf32, #kiln.dims<[s]>>
  %e4 = kiln.reshape %emb : tensor<1x?x16xf32, #kiln.dims<[s]>> -> tensor<1x1x?x16xf32, #kiln.dims<[s]>>
  %cos = kiln.cos %e4 : tensor<1x1x?x16xf32, #kiln.dims<[s]>> -> tensor<1x1x?x16xf32, #kiln.dims<[s]>>
  %sin = kiln.sin %e4 : tensor<1x1x?x16xf32, #kiln.dims<[s]>> -> tensor<1x1x?x16xf32, #kiln.dims<[s]>>
  %x1 = kiln.slice %x {axis = 3 : i64, start = 0 : i64, end = 8 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %x2 = kiln.slice %x {axis = 3 : i64, start = 8 : i64, end = 16 : i64} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %n = kiln.neg %x2 : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %rot = kiln.concat %n, %x1 {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %a = kiln.mul %x, %cos : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x16xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %b2 = kiln.mul %rot, %sin : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1x1x?x16xf32, #kiln.dims<[s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %y = kiln.add %a, %b2 : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %y : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}
