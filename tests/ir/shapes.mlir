// RUN: kiln-opt %s | FileCheck %s
// The right mask, [s, p + s], broadcasts; symbolic dims print canonically and round-trip.

// CHECK-LABEL: func.func @causal_mask
func.func @causal_mask(%mask: tensor<?x?xf32, #kiln.dims<[s, s + p]>>,
                       %scores: tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>>)
    -> tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>> {
  // CHECK: kiln.add %{{.*}}, %{{.*}} : (tensor<?x?xf32, #kiln.dims<[s, p + s]>>, tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>>)
  %0 = kiln.add %mask, %scores : (tensor<?x?xf32, #kiln.dims<[s, s + p]>>, tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>>) -> tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>>
  return %0 : tensor<?x32x?x?xf32, #kiln.dims<[b, s, p + s]>>
}

// CHECK-LABEL: func.func @kv_append
func.func @kv_append(%past: tensor<?x2x?x16xf32, #kiln.dims<[b, p]>>, %new: tensor<?x2x?x16xf32, #kiln.dims<[b, s]>>)
    -> tensor<?x2x?x16xf32, #kiln.dims<[b, p + s]>> {
  // CHECK: kiln.concat
  %0 = kiln.concat %past, %new {axis = 2 : i64} : (tensor<?x2x?x16xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x16xf32, #kiln.dims<[b, p + s]>>
  return %0 : tensor<?x2x?x16xf32, #kiln.dims<[b, p + s]>>
}
