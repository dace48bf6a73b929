// RUN: kiln-opt %s --kiln-partition="max-context=16" | FileCheck %s --check-prefix=ALL
// RUN: kiln-opt %s --kiln-partition="unavailable-ops=kiln.rope max-context=16" | FileCheck %s --check-prefix=ROPE
// RUN: kiln-opt %s --kiln-partition="unavailable-ops=rope max-context=16" --kiln-partition="max-context=16" | FileCheck %s --check-prefix=ALL
// RUN: not kiln-opt %s --kiln-partition="profile=no-such-profile" -o /dev/null 2>&1 | FileCheck %s --check-prefix=BADPROFILE
// kiln-partition: kiln compile's partition (Partition.h, the SPIR-V backend's catalog) recorded as attributes:
// kiln.device on every dispatched op (weights and constants have no dispatch), kiln.reason / kiln.fallback
// on the cpu ones, the transfers and the counts on the function. A second run replaces the first one's
// attributes (the third RUN line: the rope is back on the device).

!ids = tensor<?x?xi64, #kiln.dims<[b, s]>>
!h = tensor<?x?x8xf32, #kiln.dims<[b, s]>>
!heads = tensor<?x?x1x8xf32, #kiln.dims<[b, s]>>
!q = tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>
!past = tensor<?x1x?x8xf32, #kiln.dims<[b, p]>>
!kv = tensor<?x1x?x8xf32, #kiln.dims<[b, p + s]>>
!s1 = tensor<1x?xi64, #kiln.dims<[s]>>

// Everything is legal on lavapipe: one transfer in (input_ids), one out (logits).
// ALL-LABEL: func.func @step
// ALL-SAME: kiln.partition = {cpu = 0 : i64, fallbacks = 0 : i64, transfers = 2 : i64, vulkan = 15 : i64}
// ALL-SAME: kiln.transfers = ["input_ids to device", "kiln.matmul at logits@device to host"]
// ALL: kiln.weight "emb" :
// ALL: kiln.gather {{.*}}kiln.device = "vulkan"
// ALL-NOT: kiln.reason
// ALL: kiln.rope {{.*}}kiln.device = "vulkan"
// ALL-NOT: kiln.fallback
// ALL: kiln.matmul {{.*}}kiln.device = "vulkan"

// Without kiln.rope on the device: the rope falls back to the cpu, its operands go to the host and its
// result back to the device.
// ROPE-LABEL: func.func @step
// ROPE-SAME: kiln.partition = {cpu = 1 : i64, fallbacks = 1 : i64, transfers = 5 : i64, vulkan = 14 : i64}
// ROPE-SAME: kiln.transfers = ["input_ids to device", "kiln.transpose at attn to host", "kiln.broadcast_to at attn to host", "kiln.rope at attn to device", "kiln.matmul at logits@device to host"]
// ROPE: kiln.transpose {{.*}}kiln.device = "vulkan"
// ROPE: kiln.rope {{.*}}{interleaved = false, kiln.device = "cpu", kiln.fallback, kiln.reason = "profile lacks kiln.rope"}
// ROPE: kiln.concat {{.*}}kiln.device = "vulkan"
func.func @step(%ids: !ids {kiln.name = "input_ids"}, %pk: !past {kiln.name = "past_key.0"},
                %pv: !past {kiln.name = "past_value.0"})
    -> (!h {kiln.name = "logits"}, !kv {kiln.name = "present_key.0"}, !kv {kiln.name = "present_value.0"}) {
  %emb = kiln.weight "emb" : tensor<16x8xf32> loc("embed")
  %h = kiln.gather %emb, %ids : (tensor<16x8xf32>, !ids) -> !h loc("embed")
  %r = kiln.reshape %h : !h -> !heads loc("attn")
  %t = kiln.transpose %r {permutation = array<i64: 0, 2, 1, 3>} : !heads -> !q loc("attn")
  %i = kiln.iota dim 1 : !s1 loc("rotary")
  %p = kiln.sym "p" : tensor<i64> loc("rotary")
  %pos1 = kiln.add %i, %p : (!s1, tensor<i64>) -> !s1 loc("rotary")
  %pos = kiln.broadcast_to %pos1 : !s1 -> !ids loc("attn")
  %f = kiln.constant dense<[1.0, 0.1, 0.01, 0.001]> : tensor<4xf32> : tensor<4xf32> loc("attn")
  %k = kiln.rope %t, %pos, %f {interleaved = false} : (!q, !ids, tensor<4xf32>) -> !q loc("attn")
  %kc = kiln.concat %pk, %k {axis = 2 : i64} : (!past, !q) -> !kv loc("attn")
  %vc = kiln.concat %pv, %t {axis = 2 : i64} : (!past, !q) -> !kv loc("attn")
  %a = kiln.attention %k, %kc, %vc {mask = #kiln.mask<causal>, scale = 0.35 : f64} : (!q, !kv, !kv) -> !q loc("attn")
  %o = kiln.transpose %a {permutation = array<i64: 0, 2, 1, 3>} : !q -> !heads loc("attn")
  %o2 = kiln.reshape %o : !heads -> !h loc("attn")
  %w = kiln.weight "head" : tensor<8x8xf16> loc("head")
  %wf = kiln.convert %w : tensor<8x8xf16> -> tensor<8x8xf32> loc("head")
  %logits = kiln.matmul %o2, %wf {transpose_b = true} : (!h, tensor<8x8xf32>) -> !h loc("head")
  return %logits, %kc, %vc : !h, !kv, !kv
}

// A table larger than lavapipe's maxStorageBufferRange (128 MiB): its gather falls back; the cheap add
// that only feeds it, from host operands, runs beside it on the cpu (not a fallback), and nothing is left
// on the device but the tanh, whose operand is copied over and whose result comes back.
// ALL-LABEL: func.func @big_table
// ALL-SAME: kiln.partition = {cpu = 2 : i64, fallbacks = 1 : i64, transfers = 2 : i64, vulkan = 1 : i64}
// ALL-SAME: kiln.transfers = ["kiln.gather at embed to device", "kiln.tanh at out@device to host"]
// ALL: kiln.add {{.*}}{kiln.device = "cpu", kiln.reason = "legal on vulkan; runs on the cpu beside its cpu consumers (saves a transfer)"}
// ALL: kiln.gather {{.*}}{kiln.device = "cpu", kiln.fallback, kiln.reason = "weight table f32 [40000, 1024] is 156.25 MiB > maxStorageBufferRange 128.00 MiB"}
// ALL: kiln.tanh {{.*}}{kiln.device = "vulkan"}
func.func @big_table(%ids: !ids {kiln.name = "input_ids"}) -> (tensor<?x?x1024xf32, #kiln.dims<[b, s]>> {kiln.name = "out"}) {
  %one = kiln.constant dense<1> : tensor<i64> : tensor<i64> loc("embed")
  %shifted = kiln.add %ids, %one : (!ids, tensor<i64>) -> !ids loc("embed")
  %table = kiln.weight "table" : tensor<40000x1024xf32> loc("embed")
  %g = kiln.gather %table, %shifted : (tensor<40000x1024xf32>, !ids) -> tensor<?x?x1024xf32, #kiln.dims<[b, s]>> loc("embed")
  %y = kiln.tanh %g : tensor<?x?x1024xf32, #kiln.dims<[b, s]>> -> tensor<?x?x1024xf32, #kiln.dims<[b, s]>> loc("out")
  return %y : tensor<?x?x1024xf32, #kiln.dims<[b, s]>>
}

// BADPROFILE: error: kiln-partition: no-such-profile: no such device profile file (built-in profiles: lavapipe, nvidia-h200, generic)
