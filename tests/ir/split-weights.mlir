// RUN: kiln-opt %s --kiln-split-weights="max-buffer-bytes=4096 max-context=4" | FileCheck %s
// RUN: kiln-opt %s --kiln-split-weights="max-buffer-bytes=4096 max-context=4 limit-name=maxStorageBufferRange report=true" -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
// RUN: kiln-opt %s --kiln-split-weights="max-buffer-bytes=4096 max-context=4" | kiln-opt --kiln-split-weights="max-buffer-bytes=4096 max-context=4" | FileCheck %s
// Weights larger than one buffer (4 KiB here) become row chunks where their op allows (gather tables,
// matmul right operands, through one convert); near misses keep the whole weight. Symbol bounds: b = 1,
// s = p + s = 4. The second pipeline checks that the rewrite is idempotent (chunks are never re-split).

!ids = tensor<?x?xi64, #kiln.dims<[b, s]>>
!h = tensor<?x?x16xf32, #kiln.dims<[b, s]>>
!l = tensor<?x?x100xf32, #kiln.dims<[b, s]>>

// An embedding table [100, 16] f32 (6400 B): 64 rows per chunk (4096 B), ids offset and clamped per chunk,
// the gathered rows picked by select(ids >= 64).
// CHECK-LABEL: func.func @embedding
// CHECK: %[[W0:.*]] = kiln.weight "emb" {rows = array<i64: 0, 64>} : tensor<64x16xf32>
// CHECK: %[[W1:.*]] = kiln.weight "emb" {rows = array<i64: 64, 100>} : tensor<36x16xf32>
// CHECK: %[[R:.*]] = kiln.reshape %arg0 : {{.*}} -> tensor<?x?x1xi64, #kiln.dims<[b, s]>>
// CHECK: %[[C63:.*]] = kiln.constant dense<63> : tensor<i64>
// CHECK: %[[I0:.*]] = kiln.min %arg0, %[[C63]]
// CHECK: %[[G0:.*]] = kiln.gather %[[W0]], %[[I0]] : (tensor<64x16xf32>, {{.*}}) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
// CHECK: %[[C64:.*]] = kiln.constant dense<64> : tensor<i64>
// CHECK: %[[S1:.*]] = kiln.sub %arg0, %[[C64]]
// CHECK: %[[C0:.*]] = kiln.constant dense<0> : tensor<i64>
// CHECK: %[[I1:.*]] = kiln.max %[[S1]], %[[C0]]
// CHECK-NOT: kiln.min
// CHECK: %[[G1:.*]] = kiln.gather %[[W1]], %[[I1]] : (tensor<36x16xf32>,
// CHECK: %[[B64:.*]] = kiln.constant dense<64> : tensor<i64>
// CHECK: %[[GE:.*]] = kiln.compare ge, %[[R]], %[[B64]]
// CHECK: %[[SEL:.*]] = kiln.select %[[GE]], %[[G1]], %[[G0]]
// CHECK: return %[[SEL]]
// CHECK-NOT: kiln.weight "emb" :
func.func @embedding(%ids: !ids) -> !h {
  %w = kiln.weight "emb" : tensor<100x16xf32>
  %e = kiln.gather %w, %ids : (tensor<100x16xf32>, !ids) -> !h
  return %e : !h
}

// A tied embedding and LM head: both uses share one chunking (two chunk weights in all); the head becomes
// per-chunk matmuls concatenated along the last axis.
// CHECK-LABEL: func.func @tied
// CHECK-COUNT-2: kiln.weight "tok" {rows
// CHECK-NOT: kiln.weight
// CHECK: kiln.select
// CHECK: %[[M0:.*]] = kiln.matmul %{{.*}}, %{{.*}} {transpose_b = true} : ({{.*}}, tensor<64x16xf32>) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
// CHECK: %[[M1:.*]] = kiln.matmul %{{.*}}, %{{.*}} {transpose_b = true} : ({{.*}}, tensor<36x16xf32>) -> tensor<?x?x36xf32, #kiln.dims<[b, s]>>
// CHECK: %[[CAT:.*]] = kiln.concat %[[M0]], %[[M1]] {axis = 2 : i64}
// CHECK: return %[[CAT]]
func.func @tied(%ids: !ids) -> !l {
  %w = kiln.weight "tok" : tensor<100x16xf32>
  %e = kiln.gather %w, %ids : (tensor<100x16xf32>, !ids) -> !h
  %w2 = kiln.weight "tok" : tensor<100x16xf32>
  %logits = kiln.matmul %e, %w2 {transpose_b = true} : (!h, tensor<100x16xf32>) -> !l
  return %logits : !l
}

// A weight whose rows contract (matmul without transpose_b, W [K = 100, N = 16]): x is sliced along its
// last axis and the partial products summed.
// CHECK-LABEL: func.func @contract
// CHECK-DAG: %[[K0:.*]] = kiln.weight "down" {rows = array<i64: 0, 64>} : tensor<64x16xf32>
// CHECK-DAG: %[[K1:.*]] = kiln.weight "down" {rows = array<i64: 64, 100>} : tensor<36x16xf32>
// CHECK: %[[X0:.*]] = kiln.slice %arg0 {axis = 2 : i64, end = 64 : i64, start = 0 : i64}
// CHECK: %[[P0:.*]] = kiln.matmul %[[X0]], %[[K0]] {transpose_b = false}
// CHECK: %[[X1:.*]] = kiln.slice %arg0 {axis = 2 : i64, end = 100 : i64, start = 64 : i64}
// CHECK: %[[P1:.*]] = kiln.matmul %[[X1]], %[[K1]] {transpose_b = false}
// CHECK: %[[SUM:.*]] = kiln.add %[[P0]], %[[P1]]
// CHECK: return %[[SUM]]
func.func @contract(%x: !l) -> !h {
  %w = kiln.weight "down" : tensor<100x16xf32>
  %y = kiln.matmul %x, %w {transpose_b = false} : (!l, tensor<100x16xf32>) -> !h
  return %y : !h
}

// A bf16 table [200, 16] (6400 B) read through kiln.convert to f32 (12800 B): the chunks are sized for
// the f32 copies (64 rows = 4096 B) and each chunk is converted on its own.
// CHECK-LABEL: func.func @converted
// CHECK-COUNT-4: kiln.weight "bf" {rows
// CHECK-COUNT-4: kiln.convert %{{.*}} : tensor<{{64|8}}x16xbf16> -> tensor<{{64|8}}x16xf32>
// CHECK-NOT: tensor<200x16xf32>
// CHECK: return
func.func @converted(%ids: !ids) -> !h {
  %w = kiln.weight "bf" : tensor<200x16xbf16>
  %c = kiln.convert %w : tensor<200x16xbf16> -> tensor<200x16xf32>
  %e = kiln.gather %c, %ids : (tensor<200x16xf32>, !ids) -> !h
  return %e : !h
}

// Near misses, each kept whole:
// a weight within the limit (32 x 16 f32 = 2048 B);
// CHECK-LABEL: func.func @small
// CHECK: kiln.weight "small" : tensor<32x16xf32>
// CHECK-NOT: rows
func.func @small(%ids: !ids) -> !h {
  %w = kiln.weight "small" : tensor<32x16xf32>
  %e = kiln.gather %w, %ids : (tensor<32x16xf32>, !ids) -> !h
  return %e : !h
}

// an elementwise use (no row split for kiln.mul) and a weight as the left operand of a matmul;
// CHECK-LABEL: func.func @unsplittable
// CHECK: kiln.weight "scale" : tensor<100x16xf32>
// CHECK: kiln.weight "lhs" : tensor<100x16xf32>
// CHECK-NOT: rows
// CHECK: return
func.func @unsplittable(%x: tensor<100x16xf32>, %y: tensor<16x16xf32>) -> (tensor<100x16xf32>, tensor<100x16xf32>) {
  %w = kiln.weight "scale" : tensor<100x16xf32>
  %m = kiln.mul %w, %x : (tensor<100x16xf32>, tensor<100x16xf32>) -> tensor<100x16xf32>
  %l = kiln.weight "lhs" : tensor<100x16xf32>
  %p = kiln.matmul %l, %y {transpose_b = false} : (tensor<100x16xf32>, tensor<16x16xf32>) -> tensor<100x16xf32>
  return %m, %p : tensor<100x16xf32>, tensor<100x16xf32>
}

// a gather whose result ([1, 4, 512] f32 = 8 KiB) exceeds the limit whatever the table's chunks;
// CHECK-LABEL: func.func @wide_rows
// CHECK: kiln.weight "wide" : tensor<100x512xf32>
// CHECK-NOT: rows
func.func @wide_rows(%ids: !ids) -> tensor<?x?x512xf32, #kiln.dims<[b, s]>> {
  %w = kiln.weight "wide" : tensor<100x512xf32>
  %e = kiln.gather %w, %ids : (tensor<100x512xf32>, !ids) -> tensor<?x?x512xf32, #kiln.dims<[b, s]>>
  return %e : tensor<?x?x512xf32, #kiln.dims<[b, s]>>
}

// and a weight with one splittable use (the gather is split) and one that is not (the mul keeps the
// whole weight beside the chunks).
// CHECK-LABEL: func.func @mixed
// CHECK-DAG: kiln.weight "mixed" : tensor<100x16xf32>
// CHECK-DAG: kiln.weight "mixed" {rows = array<i64: 0, 64>}
// CHECK-DAG: kiln.weight "mixed" {rows = array<i64: 64, 100>}
// CHECK: kiln.select
// CHECK: kiln.mul
func.func @mixed(%ids: !ids, %x: tensor<100x16xf32>) -> (!h, tensor<100x16xf32>) {
  %w = kiln.weight "mixed" : tensor<100x16xf32>
  %e = kiln.gather %w, %ids : (tensor<100x16xf32>, !ids) -> !h
  %m = kiln.mul %w, %x : (tensor<100x16xf32>, tensor<100x16xf32>) -> tensor<100x16xf32>
  return %e, %m : !h, tensor<100x16xf32>
}

// A q8_0 / q4_0 matrix counts its blocks' bytes: [100, 64] q4_0 is 3600 B (25600 B as f32) and stays whole and
// quantized; [100, 64] q8_0 is 6800 B and becomes quantized row chunks (68 B a row: 60 rows fit, balanced to 50).
// CHECK-LABEL: func.func @quantized
// CHECK: kiln.weight "q4" {quant = "q4_0"} : tensor<100x64xf32>
// CHECK-NEXT: kiln.weight "q8" {quant = "q8_0", rows = array<i64: 0, 50>} : tensor<50x64xf32>
// CHECK-NEXT: kiln.weight "q8" {quant = "q8_0", rows = array<i64: 50, 100>} : tensor<50x64xf32>
// CHECK-NOT: kiln.weight "q4"
// CHECK: return
func.func @quantized(%ids: !ids) -> (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<?x?x64xf32, #kiln.dims<[b, s]>>) {
  %a = kiln.weight "q4" {quant = "q4_0"} : tensor<100x64xf32>
  %b = kiln.weight "q8" {quant = "q8_0"} : tensor<100x64xf32>
  %0 = kiln.gather %a, %ids : (tensor<100x64xf32>, !ids) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
  %1 = kiln.gather %b, %ids : (tensor<100x64xf32>, !ids) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
  return %0, %1 : tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<?x?x64xf32, #kiln.dims<[b, s]>>
}

// REPORT-DAG: split emb [100, 16] f32 (6.2 KiB) into 2 chunks of <= 64 rows (4.0 KiB) for maxStorageBufferRange (bound by the weight's chunks): kiln.gather at {{.*}}split-weights.mlir:{{[0-9]+}}:{{[0-9]+}}{{$}}
// REPORT-DAG: split tok [100, 16] f32 (6.2 KiB) into 2 chunks of <= 64 rows (4.0 KiB) for maxStorageBufferRange (bound by the weight's chunks): kiln.gather at {{.*}}, kiln.matmul at {{.*}}
// REPORT-DAG: split down [100, 16] f32 (6.2 KiB) into 2 chunks of <= 64 rows (4.0 KiB) for maxStorageBufferRange (bound by the weight's chunks): kiln.matmul at
// REPORT-DAG: split bf [200, 16] bf16 (6.2 KiB; 12.5 KiB as f32) into 4 chunks of <= 64 rows (2.0 KiB) for maxStorageBufferRange (bound by the converted chunks (f32)): kiln.gather at
// REPORT-DAG: split mixed [100, 16] f32 (6.2 KiB) into 2 chunks
// REPORT-DAG: not split: scale [100, 16] f32 (6.2 KiB) > maxStorageBufferRange: kiln.mul at {{.*}}: no row split for kiln.mul (only gather tables and matmul right operands are split)
// REPORT-DAG: not split: lhs [100, 16] f32 (6.2 KiB) > maxStorageBufferRange: kiln.matmul at {{.*}}: the weight is the left operand
// REPORT-DAG: not split: wide [100, 512] f32 (200.0 KiB) > maxStorageBufferRange: kiln.gather at {{.*}}: its result [b, s, 512] f32 is 8.0 KiB > maxStorageBufferRange whether or not the weight is split
// REPORT-DAG: kept whole: mixed for kiln.mul at {{.*}}: no row split for kiln.mul
// REPORT-DAG: split q8 [100, 64] q8_0 (6.6 KiB) into 2 chunks of <= 50 rows (3.3 KiB)
// REPORT-NOT: small
