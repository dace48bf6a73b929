// RUN: kiln-opt %s --kiln-fuse-attention --canonicalize | FileCheck %s
// RUN: kiln-opt %s --kiln-fuse-attention=report=true -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
// Attention as the builders emit it: matmul(q, k^T) * scale [-> softcap] [+ bias] [+ mask] -> softmax -> matmul v,
// with the causal / sliding-window mask built from iota + sym p, the padding mask from attention_mask, GQA
// through repeat-kv; and near misses that must stay unfused.

// CHECK-LABEL: func.func @causal_gqa
// CHECK: %[[A:.*]] = kiln.attention %arg0, %arg1, %arg2 {mask = #kiln.mask<causal>, scale = 0.35355338{{[0-9]*}} : f64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
// CHECK-NOT: kiln.softmax
// CHECK-NOT: kiln.select
// CHECK-NOT: kiln.iota
// CHECK-NOT: kiln.compare
// CHECK-NOT: kiln.broadcast_to
// CHECK: return %[[A]]
// REPORT-DAG: fused: attention at {{.*}} (causal, gqa 4:2)
func.func @causal_gqa(%q: tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, %k: tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>>, %v: tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> {
  %ke = kiln.reshape %k : tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>>
  %kb = kiln.broadcast_to %ke : tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>>
  %kr = kiln.reshape %kb : tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>
  %ve = kiln.reshape %v : tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>>
  %vb = kiln.broadcast_to %ve : tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>>
  %vr = kiln.reshape %vb : tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>
  %qk = kiln.matmul %q, %kr {transpose_b = true} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %scale = kiln.constant dense<0.353553385> : tensor<f32> : tensor<f32>
  %s0 = kiln.mul %qk, %scale : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<f32>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %qi = kiln.iota dim 0 : tensor<?x1xi64, #kiln.dims<[s]>>
  %p = kiln.sym "p" : tensor<i64>
  %qpos = kiln.add %qi, %p : (tensor<?x1xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<?x1xi64, #kiln.dims<[s]>>
  %kpos = kiln.iota dim 1 : tensor<1x?xi64, #kiln.dims<[p + s]>>
  %vis = kiln.compare le, %kpos, %qpos : (tensor<1x?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
  %zero = kiln.constant dense<0.0> : tensor<f32> : tensor<f32>
  %ninf = kiln.constant dense<0xFF800000> : tensor<f32> : tensor<f32>
  %mask = kiln.select %vis, %zero, %ninf : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
  %m4 = kiln.reshape %mask : tensor<?x?xf32, #kiln.dims<[s, p + s]>> -> tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>
  %sm = kiln.add %s0, %m4 : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %pr = kiln.softmax %sm {axis = 3 : i64} : tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>> -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %o = kiln.matmul %pr, %vr {transpose_b = false} : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  return %o : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
}

// CHECK-LABEL: func.func @sliding_window_softcap
// CHECK: %[[A:.*]] = kiln.attention %arg0, %arg1, %arg2 {mask = #kiln.mask<causal>, scale = {{.*}}, softcap = 5.000000e+01 : f64, window = 4 : i64}
// CHECK-NOT: kiln.softmax
// CHECK-NOT: kiln.select
// CHECK-NOT: kiln.iota
// CHECK-NOT: kiln.compare
// CHECK-NOT: kiln.tanh
// CHECK: return %[[A]]
// REPORT-DAG: fused: attention at {{.*}} (causal, window 4, softcap, gqa 4:2)
func.func @sliding_window_softcap(%q: tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, %k: tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>>, %v: tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> {
  %ke = kiln.reshape %k : tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>>
  %kb = kiln.broadcast_to %ke : tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>>
  %kr = kiln.reshape %kb : tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>
  %ve = kiln.reshape %v : tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>>
  %vb = kiln.broadcast_to %ve : tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>>
  %vr = kiln.reshape %vb : tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>
  %qk = kiln.matmul %q, %kr {transpose_b = true} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %scale = kiln.constant dense<0.353553385> : tensor<f32> : tensor<f32>
  %s0 = kiln.mul %qk, %scale : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<f32>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %cap = kiln.constant dense<50.0> : tensor<f32> : tensor<f32>
  %sd = kiln.div %s0, %cap : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<f32>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %st = kiln.tanh %sd : tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>> -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %sc = kiln.mul %st, %cap : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<f32>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %qi = kiln.iota dim 0 : tensor<?x1xi64, #kiln.dims<[s]>>
  %p = kiln.sym "p" : tensor<i64>
  %qpos = kiln.add %qi, %p : (tensor<?x1xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<?x1xi64, #kiln.dims<[s]>>
  %kpos = kiln.iota dim 1 : tensor<1x?xi64, #kiln.dims<[p + s]>>
  %vis = kiln.compare le, %kpos, %qpos : (tensor<1x?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
  %d = kiln.sub %qpos, %kpos : (tensor<?x1xi64, #kiln.dims<[s]>>, tensor<1x?xi64, #kiln.dims<[p + s]>>) -> tensor<?x?xi64, #kiln.dims<[s, p + s]>>
  %w = kiln.constant dense<4> : tensor<i64> : tensor<i64>
  %inw = kiln.compare lt, %d, %w : (tensor<?x?xi64, #kiln.dims<[s, p + s]>>, tensor<i64>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
  %vw = kiln.select %vis, %inw, %vis : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<?x?xi1, #kiln.dims<[s, p + s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
  %zero = kiln.constant dense<0.0> : tensor<f32> : tensor<f32>
  %ninf = kiln.constant dense<0xFF800000> : tensor<f32> : tensor<f32>
  %mask = kiln.select %vw, %zero, %ninf : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
  %m4 = kiln.reshape %mask : tensor<?x?xf32, #kiln.dims<[s, p + s]>> -> tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>
  %sm = kiln.add %sc, %m4 : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %pr = kiln.softmax %sm {axis = 3 : i64} : tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>> -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %o = kiln.matmul %pr, %vr {transpose_b = false} : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  return %o : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
}

// CHECK-LABEL: func.func @padding
// CHECK: %[[A:.*]] = kiln.attention %arg0, %arg1, %arg2 key_padding_mask(%arg3) {mask = #kiln.mask<bidirectional>, scale = {{.*}}}
// CHECK-NOT: kiln.softmax
// CHECK-NOT: kiln.select
// CHECK-NOT: kiln.iota
// CHECK-NOT: kiln.compare
// CHECK: return %[[A]]
// REPORT-DAG: fused: attention at {{.*}} (bidirectional, key padding)
func.func @padding(%q: tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>, %k: tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>, %v: tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>, %am: tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x2x?x8xf32, #kiln.dims<[b, s]>> {
  %qk = kiln.matmul %q, %k {transpose_b = true} : (tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>
  %scale = kiln.constant dense<0.353553385> : tensor<f32> : tensor<f32>
  %s0 = kiln.mul %qk, %scale : (tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>, tensor<f32>) -> tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>
  %z = kiln.constant dense<0> : tensor<i64> : tensor<i64>
  %valid = kiln.compare ne, %am, %z : (tensor<?x?xi64, #kiln.dims<[b, s]>>, tensor<i64>) -> tensor<?x?xi1, #kiln.dims<[b, s]>>
  %zero = kiln.constant dense<0.0> : tensor<f32> : tensor<f32>
  %ninf = kiln.constant dense<0xFF800000> : tensor<f32> : tensor<f32>
  %mask = kiln.select %valid, %zero, %ninf : (tensor<?x?xi1, #kiln.dims<[b, s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[b, s]>>
  %m4 = kiln.reshape %mask : tensor<?x?xf32, #kiln.dims<[b, s]>> -> tensor<?x1x1x?xf32, #kiln.dims<[b, s]>>
  %sm = kiln.add %s0, %m4 : (tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>, tensor<?x1x1x?xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>
  %pr = kiln.softmax %sm {axis = 3 : i64} : tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>> -> tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>
  %o = kiln.matmul %pr, %v {transpose_b = false} : (tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>, tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>
  return %o : tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>
}

// CHECK-LABEL: func.func @bias_padding
// CHECK: %[[A:.*]] = kiln.attention %arg0, %arg1, %arg2 key_padding_mask(%arg3) bias(%arg4) {mask = #kiln.mask<bidirectional>, scale = {{.*}}}
// CHECK-NOT: kiln.softmax
// CHECK-NOT: kiln.select
// CHECK-NOT: kiln.iota
// CHECK-NOT: kiln.compare
// CHECK: return %[[A]]
// REPORT-DAG: fused: attention at {{.*}} (bidirectional, key padding, bias)
func.func @bias_padding(%q: tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>, %k: tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>, %v: tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>, %am: tensor<?x?xi64, #kiln.dims<[b, s]>>, %bias: tensor<1x2x?x?xf32, #kiln.dims<[s, s]>>) -> tensor<?x2x?x8xf32, #kiln.dims<[b, s]>> {
  %qk = kiln.matmul %q, %k {transpose_b = true} : (tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>
  %scale = kiln.constant dense<0.353553385> : tensor<f32> : tensor<f32>
  %s0 = kiln.mul %qk, %scale : (tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>, tensor<f32>) -> tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>
  %sb = kiln.add %s0, %bias : (tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>, tensor<1x2x?x?xf32, #kiln.dims<[s, s]>>) -> tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>
  %z = kiln.constant dense<0> : tensor<i64> : tensor<i64>
  %valid = kiln.compare ne, %am, %z : (tensor<?x?xi64, #kiln.dims<[b, s]>>, tensor<i64>) -> tensor<?x?xi1, #kiln.dims<[b, s]>>
  %zero = kiln.constant dense<0.0> : tensor<f32> : tensor<f32>
  %ninf = kiln.constant dense<0xFF800000> : tensor<f32> : tensor<f32>
  %mask = kiln.select %valid, %zero, %ninf : (tensor<?x?xi1, #kiln.dims<[b, s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[b, s]>>
  %m4 = kiln.reshape %mask : tensor<?x?xf32, #kiln.dims<[b, s]>> -> tensor<?x1x1x?xf32, #kiln.dims<[b, s]>>
  %sm = kiln.add %sb, %m4 : (tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>, tensor<?x1x1x?xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>
  %pr = kiln.softmax %sm {axis = 3 : i64} : tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>> -> tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>
  %o = kiln.matmul %pr, %v {transpose_b = false} : (tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>, tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>
  return %o : tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>
}

// CHECK-LABEL: func.func @bidirectional
// CHECK: %[[A:.*]] = kiln.attention %arg0, %arg1, %arg2 {mask = #kiln.mask<bidirectional>, scale = {{.*}}}
// CHECK-NOT: kiln.softmax
// CHECK: return %[[A]]
func.func @bidirectional(%q: tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>, %k: tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>, %v: tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x8xf32, #kiln.dims<[b, s]>> {
  %qk = kiln.matmul %q, %k {transpose_b = true} : (tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>
  %scale = kiln.constant dense<0.353553385> : tensor<f32> : tensor<f32>
  %s0 = kiln.mul %qk, %scale : (tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>, tensor<f32>) -> tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>
  %pr = kiln.softmax %s0 {axis = 3 : i64} : tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>> -> tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>
  %o = kiln.matmul %pr, %v {transpose_b = false} : (tensor<?x2x?x?xf32, #kiln.dims<[b, s, s]>>, tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>
  return %o : tensor<?x2x?x8xf32, #kiln.dims<[b, s]>>
}

// Equivalent form: compare ge (qpos, kpos).
// CHECK-LABEL: func.func @causal_ge_swapped
// CHECK: kiln.attention %arg0, %arg1, %arg2 {mask = #kiln.mask<causal>
// CHECK-NOT: kiln.softmax
// CHECK-NOT: kiln.select
// CHECK-NOT: kiln.iota
// CHECK-NOT: kiln.compare
func.func @causal_ge_swapped(%q: tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, %k: tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>>, %v: tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> {
  %ke = kiln.reshape %k : tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>>
  %kb = kiln.broadcast_to %ke : tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>>
  %kr = kiln.reshape %kb : tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>
  %ve = kiln.reshape %v : tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>>
  %vb = kiln.broadcast_to %ve : tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>>
  %vr = kiln.reshape %vb : tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>
  %qk = kiln.matmul %q, %kr {transpose_b = true} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %scale = kiln.constant dense<0.353553385> : tensor<f32> : tensor<f32>
  %s0 = kiln.mul %qk, %scale : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<f32>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %qi = kiln.iota dim 0 : tensor<?x1xi64, #kiln.dims<[s]>>
  %p = kiln.sym "p" : tensor<i64>
  %qpos = kiln.add %qi, %p : (tensor<?x1xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<?x1xi64, #kiln.dims<[s]>>
  %kpos = kiln.iota dim 1 : tensor<1x?xi64, #kiln.dims<[p + s]>>
  %vis = kiln.compare ge, %qpos, %kpos : (tensor<?x1xi64, #kiln.dims<[s]>>, tensor<1x?xi64, #kiln.dims<[p + s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
  %zero = kiln.constant dense<0.0> : tensor<f32> : tensor<f32>
  %ninf = kiln.constant dense<0xFF800000> : tensor<f32> : tensor<f32>
  %mask = kiln.select %vis, %zero, %ninf : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
  %m4 = kiln.reshape %mask : tensor<?x?xf32, #kiln.dims<[s, p + s]>> -> tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>
  %sm = kiln.add %s0, %m4 : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %pr = kiln.softmax %sm {axis = 3 : i64} : tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>> -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %o = kiln.matmul %pr, %vr {transpose_b = false} : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  return %o : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
}

// Near miss: compare ge (kpos, qpos) hides the past, not the future.
// CHECK-LABEL: func.func @near_miss_not_causal
// CHECK-NOT: kiln.attention
// CHECK: kiln.softmax
// REPORT-DAG: unfused: softmax at {{.*}} left unfused: a mask that is neither causal nor padding: the mask compare 'ge' has the key on the wrong side: key <= query is not causal
func.func @near_miss_not_causal(%q: tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, %k: tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>>, %v: tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> {
  %ke = kiln.reshape %k : tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>>
  %kb = kiln.broadcast_to %ke : tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>>
  %kr = kiln.reshape %kb : tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>
  %ve = kiln.reshape %v : tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>>
  %vb = kiln.broadcast_to %ve : tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>>
  %vr = kiln.reshape %vb : tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>
  %qk = kiln.matmul %q, %kr {transpose_b = true} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %scale = kiln.constant dense<0.353553385> : tensor<f32> : tensor<f32>
  %s0 = kiln.mul %qk, %scale : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<f32>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %qi = kiln.iota dim 0 : tensor<?x1xi64, #kiln.dims<[s]>>
  %p = kiln.sym "p" : tensor<i64>
  %qpos = kiln.add %qi, %p : (tensor<?x1xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<?x1xi64, #kiln.dims<[s]>>
  %kpos = kiln.iota dim 1 : tensor<1x?xi64, #kiln.dims<[p + s]>>
  %vis = kiln.compare ge, %kpos, %qpos : (tensor<1x?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
  %zero = kiln.constant dense<0.0> : tensor<f32> : tensor<f32>
  %ninf = kiln.constant dense<0xFF800000> : tensor<f32> : tensor<f32>
  %mask = kiln.select %vis, %zero, %ninf : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
  %m4 = kiln.reshape %mask : tensor<?x?xf32, #kiln.dims<[s, p + s]>> -> tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>
  %sm = kiln.add %s0, %m4 : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %pr = kiln.softmax %sm {axis = 3 : i64} : tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>> -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %o = kiln.matmul %pr, %vr {transpose_b = false} : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  return %o : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
}

// Near miss: compare lt (kpos, qpos) also hides the diagonal.
// CHECK-LABEL: func.func @near_miss_lt
// CHECK-NOT: kiln.attention
// CHECK: kiln.softmax
// REPORT-DAG: unfused: softmax at {{.*}} left unfused: a mask that is neither causal nor padding: the mask compare 'lt' is not causal (key <= query)
func.func @near_miss_lt(%q: tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, %k: tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>>, %v: tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> {
  %ke = kiln.reshape %k : tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>>
  %kb = kiln.broadcast_to %ke : tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>>
  %kr = kiln.reshape %kb : tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>
  %ve = kiln.reshape %v : tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>>
  %vb = kiln.broadcast_to %ve : tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>>
  %vr = kiln.reshape %vb : tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>
  %qk = kiln.matmul %q, %kr {transpose_b = true} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %scale = kiln.constant dense<0.353553385> : tensor<f32> : tensor<f32>
  %s0 = kiln.mul %qk, %scale : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<f32>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %qi = kiln.iota dim 0 : tensor<?x1xi64, #kiln.dims<[s]>>
  %p = kiln.sym "p" : tensor<i64>
  %qpos = kiln.add %qi, %p : (tensor<?x1xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<?x1xi64, #kiln.dims<[s]>>
  %kpos = kiln.iota dim 1 : tensor<1x?xi64, #kiln.dims<[p + s]>>
  %vis = kiln.compare lt, %kpos, %qpos : (tensor<1x?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
  %zero = kiln.constant dense<0.0> : tensor<f32> : tensor<f32>
  %ninf = kiln.constant dense<0xFF800000> : tensor<f32> : tensor<f32>
  %mask = kiln.select %vis, %zero, %ninf : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
  %m4 = kiln.reshape %mask : tensor<?x?xf32, #kiln.dims<[s, p + s]>> -> tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>
  %sm = kiln.add %s0, %m4 : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %pr = kiln.softmax %sm {axis = 3 : i64} : tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>> -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %o = kiln.matmul %pr, %vr {transpose_b = false} : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  return %o : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
}

// Near miss: the fill values are swapped.
// CHECK-LABEL: func.func @near_miss_fill_values
// CHECK-NOT: kiln.attention
// CHECK: kiln.softmax
// REPORT-DAG: unfused: softmax at {{.*}} left unfused: a mask that is neither causal nor padding: the mask's fill values are not 0 (visible) and -inf (hidden)
func.func @near_miss_fill_values(%q: tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, %k: tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>>, %v: tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> {
  %ke = kiln.reshape %k : tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>>
  %kb = kiln.broadcast_to %ke : tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>>
  %kr = kiln.reshape %kb : tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>
  %ve = kiln.reshape %v : tensor<?x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>>
  %vb = kiln.broadcast_to %ve : tensor<?x2x1x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>>
  %vr = kiln.reshape %vb : tensor<?x2x2x?x8xf32, #kiln.dims<[b, p + s]>> -> tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>
  %qk = kiln.matmul %q, %kr {transpose_b = true} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %scale = kiln.constant dense<0.353553385> : tensor<f32> : tensor<f32>
  %s0 = kiln.mul %qk, %scale : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<f32>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %qi = kiln.iota dim 0 : tensor<?x1xi64, #kiln.dims<[s]>>
  %p = kiln.sym "p" : tensor<i64>
  %qpos = kiln.add %qi, %p : (tensor<?x1xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<?x1xi64, #kiln.dims<[s]>>
  %kpos = kiln.iota dim 1 : tensor<1x?xi64, #kiln.dims<[p + s]>>
  %vis = kiln.compare le, %kpos, %qpos : (tensor<1x?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
  %zero = kiln.constant dense<0.0> : tensor<f32> : tensor<f32>
  %ninf = kiln.constant dense<0xFF800000> : tensor<f32> : tensor<f32>
  %mask = kiln.select %vis, %ninf, %zero : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
  %m4 = kiln.reshape %mask : tensor<?x?xf32, #kiln.dims<[s, p + s]>> -> tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>
  %sm = kiln.add %s0, %m4 : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %pr = kiln.softmax %sm {axis = 3 : i64} : tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>> -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %o = kiln.matmul %pr, %vr {transpose_b = false} : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  return %o : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
}
