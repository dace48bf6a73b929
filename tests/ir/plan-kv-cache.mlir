// RUN: kiln-opt %s --kiln-place-kv-cache="max-context=64" | FileCheck %s --check-prefix=CPU
// RUN: kiln-opt %s --kiln-place-kv-cache="max-context=64" --kiln-place-kv-cache="max-context=64" | FileCheck %s --check-prefix=CPU
// RUN: kiln-opt %s --kiln-partition="max-context=64" --kiln-place-kv-cache="max-context=64 vulkan=false" | FileCheck %s --check-prefix=VK
// RUN: kiln-opt %s --kiln-partition="max-context=64" --kiln-place-kv-cache="max-context=64 vulkan=true" | FileCheck %s --check-prefix=VKVIEW
// RUN: kiln-opt %s --kiln-partition="unavailable-ops=kiln.attention max-context=64" --kiln-place-kv-cache="max-context=64 vulkan=true" | FileCheck %s --check-prefix=SPLIT
// kiln-place-kv-cache: placeKvCacheInPlace (MemoryPlan.h) on the recorded partition (none: all on the
// cpu). An entry is in place (one buffer of max-context rows) when past_X is read only by its append
// concat and present_X only by kiln.attention as key / value on the same device; the producer of the new
// rows writes them into the cache when it is a rope or transpose read only by the append, and the
// append's dispatch is dropped (kiln.folded = "kv-append"); otherwise the append copies them.

!h = tensor<?x?x8xf32, #kiln.dims<[b, s]>>
!heads = tensor<?x?x1x8xf32, #kiln.dims<[b, s]>>
!q = tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>
!past = tensor<?x1x?x8xf32, #kiln.dims<[b, p]>>
!kv = tensor<?x1x?x8xf32, #kiln.dims<[b, p + s]>>
!pos = tensor<?x?xi64, #kiln.dims<[b, s]>>

// CPU-LABEL: func.func @step
// CPU-SAME: {kiln.kv_cache = "in place, capacity 64", kiln.name = "past_key.0"}
// CPU-SAME: {kiln.kv_cache = "in place, capacity 64", kiln.name = "past_value.0"}
// CPU-SAME: kiln.kv_cache = "kv cache: 1 x 2 buffers in place, capacity 64 (kiln.rope x 1 write into the cache; 1 appends copy the new rows)"
// CPU: %[[K:.*]] = kiln.rope {{.*}}{interleaved = false, kiln.kv_rows = "key.0"}
// CPU: kiln.concat %arg2, %[[K]] {axis = 2 : i64, kiln.folded = "kv-append"}
// The value rows are read twice (the append and the output projection): the append copies them.
// CPU: kiln.concat %arg3, %{{.*}} {axis = 2 : i64, kiln.kv_rows = "value.0"}
// CPU-NOT: kiln.device

// A vulkan partition keeps the two-buffer cache when its kernels do not take the strided view (vulkan=false)...
// VK-LABEL: func.func @step
// VK-SAME: {kiln.kv_cache = "two buffers: a vulkan artifact keeps the two-buffer KV cache", kiln.name = "past_key.0"}
// VK-NOT: kiln.kv_rows
// VK-NOT: kiln.folded
// ... and with vulkan=true (what kiln compile passes) the same decisions on the device.
// VKVIEW-LABEL: func.func @step
// VKVIEW-SAME: kiln.partition = {cpu = 0 : i64, fallbacks = 0 : i64, transfers = 3 : i64, vulkan = 9 : i64}
// VKVIEW: kiln.rope {{.*}}kiln.kv_rows = "key.0"
// VKVIEW: kiln.concat {{.*}}{axis = 2 : i64, kiln.device = "vulkan", kiln.folded = "kv-append"}
// With the attention on the cpu, present_key.0 is copied to the host for it: not in place.
// SPLIT-LABEL: func.func @step
// SPLIT-SAME: {kiln.kv_cache = "two buffers: present_key.0 is copied by a transfer", kiln.name = "past_key.0"}
func.func @step(%x: !h {kiln.name = "hidden"}, %pos: !pos {kiln.name = "position_ids"},
                %pk: !past {kiln.name = "past_key.0"}, %pv: !past {kiln.name = "past_value.0"})
    -> (!h {kiln.name = "out"}, !kv {kiln.name = "present_key.0"}, !kv {kiln.name = "present_value.0"}) {
  %r = kiln.reshape %x : !h -> !heads loc("attn")
  %t = kiln.transpose %r {permutation = array<i64: 0, 2, 1, 3>} : !heads -> !q loc("attn")
  %f = kiln.constant dense<[1.0, 0.1, 0.01, 0.001]> : tensor<4xf32> : tensor<4xf32> loc("attn")
  %q = kiln.rope %t, %pos, %f {interleaved = false} : (!q, !pos, tensor<4xf32>) -> !q loc("attn.q")
  %k = kiln.rope %t, %pos, %f {interleaved = false} : (!q, !pos, tensor<4xf32>) -> !q loc("attn.k")
  %kc = kiln.concat %pk, %k {axis = 2 : i64} : (!past, !q) -> !kv loc("attn.k")
  %vc = kiln.concat %pv, %t {axis = 2 : i64} : (!past, !q) -> !kv loc("attn.v")
  %a = kiln.attention %q, %kc, %vc {mask = #kiln.mask<causal>, scale = 0.35 : f64} : (!q, !kv, !kv) -> !q loc("attn")
  %sum = kiln.add %a, %t : (!q, !q) -> !q loc("attn")
  %o = kiln.transpose %sum {permutation = array<i64: 0, 2, 1, 3>} : !q -> !heads loc("attn")
  %o2 = kiln.reshape %o : !heads -> !h loc("attn")
  return %o2, %kc, %vc : !h, !kv, !kv
}

// Unfused attention reads the cache through a matmul: its kernel takes no strided view.
// CPU-LABEL: func.func @unfused
// CPU-SAME: {kiln.kv_cache = "two buffers: present_key.0 is read by kiln.matmul (operand 1), whose kernel takes no strided cache view", kiln.name = "past_key.0"}
// CPU-SAME: kiln.kv_cache = "kv cache: 0 x 2 buffers in place; 1 buffers copied forward each step (key.0: present_key.0 is read by kiln.matmul (operand 1), whose kernel takes no strided cache view)"
// CPU-NOT: kiln.kv_rows
func.func @unfused(%q: !q {kiln.name = "query"}, %k: !q {kiln.name = "key"}, %pk: !past {kiln.name = "past_key.0"})
    -> (tensor<?x1x?x?xf32, #kiln.dims<[b, s, p + s]>> {kiln.name = "scores"}, !kv {kiln.name = "present_key.0"}) {
  %kc = kiln.concat %pk, %k {axis = 2 : i64} : (!past, !q) -> !kv loc("attn")
  %s = kiln.matmul %q, %kc {transpose_b = true} : (!q, !kv) -> tensor<?x1x?x?xf32, #kiln.dims<[b, s, p + s]>> loc("attn")
  return %s, %kc : tensor<?x1x?x?xf32, #kiln.dims<[b, s, p + s]>>, !kv
}
