// RUN: kiln-opt %s --kiln-partition="max-context=16" --kiln-fold-device-weights="max-context=16" | FileCheck %s
// RUN: kiln-opt %s --kiln-partition="max-context=16" --kiln-fold-device-weights="max-context=16" --kiln-fold-device-weights="max-context=16" | FileCheck %s
// RUN: kiln-opt %s --kiln-partition="unavailable-ops=kiln.matmul max-context=16" --kiln-fold-device-weights="max-context=16" | FileCheck %s --check-prefix=CPU
// kiln-fold-device-weights after kiln-partition: foldDeviceWeightConverts and foldDeviceReshapes
// (DeviceWeights.h) on the recorded partition. A folded op keeps kiln.device and gets kiln.folded; it has no
// dispatch, and the counts on the function drop by it. A second run applies the recorded folds and finds
// nothing more (the second RUN line). With the matmuls on the cpu nothing folds into them.

!h = tensor<?x?x8xf32, #kiln.dims<[b, s]>>
!x = tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>

// CHECK-LABEL: func.func @step
// CHECK-SAME: kiln.partition = {cpu = 0 : i64, fallbacks = 0 : i64, transfers = 3 : i64, vulkan = 5 : i64}
// The bf16 weight read through a convert by a device matmul: the matmul reads the bf16 buffer.
// CHECK: kiln.convert {{.*}}{kiln.device = "vulkan", kiln.folded = "weight-convert"} : tensor<8x8xbf16> -> tensor<8x8xf32>
// CHECK: kiln.matmul
// CHECK-NOT: kiln.folded
// A reshape of a device buffer read by a device kernel is a view.
// CHECK: kiln.reshape {{.*}}{kiln.device = "vulkan", kiln.folded = "reshape-view"} : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
// CHECK: kiln.softmax
// The reshape whose result is an output port keeps its kernel (the port is a buffer of its own).
// CHECK: kiln.reshape {{.*}}{kiln.device = "vulkan"} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
// The f32 weight's convert-free matmul and the f16 weight widened for an add (not a matmul / gather /
// norm reader) keep their kernels.
// CHECK: kiln.convert {{.*}}{kiln.device = "vulkan"} : tensor<8xf16> -> tensor<8xf32>
// CHECK-NOT: kiln.folded

// CPU-LABEL: func.func @step
// CPU-NOT: kiln.folded = "weight-convert"
// CPU: kiln.reshape {{.*}}kiln.folded = "reshape-view"
// CPU-NOT: kiln.folded
func.func @step(%x: !h {kiln.name = "hidden"}) -> (!h {kiln.name = "out"}, !h {kiln.name = "biased"}) {
  %w = kiln.weight "w" : tensor<8x8xbf16> loc("proj")
  %wf = kiln.convert %w : tensor<8x8xbf16> -> tensor<8x8xf32> loc("proj")
  %y = kiln.matmul %x, %wf {transpose_b = true} : (!h, tensor<8x8xf32>) -> !h loc("proj")
  %r = kiln.reshape %y : !h -> !x loc("heads")
  %sm = kiln.softmax %r {axis = -1 : i64} : !x -> !x loc("heads")
  %out = kiln.reshape %sm : !x -> !h loc("out")
  %b = kiln.weight "b" : tensor<8xf16> loc("bias")
  %bf = kiln.convert %b : tensor<8xf16> -> tensor<8xf32> loc("bias")
  %biased = kiln.add %y, %bf : (!h, tensor<8xf32>) -> !h loc("bias")
  return %out, %biased : !h, !h
}
