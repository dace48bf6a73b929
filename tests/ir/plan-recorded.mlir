// RUN: kiln-opt %s --split-input-file --verify-diagnostics --kiln-fold-device-weights --kiln-place-kv-cache
// The plan passes read the earlier passes' attributes back (PlanAnnotations.h readPlacement,
// applyRecordedFolds); what they cannot apply is an error naming the op, never a silent change.

!h = tensor<?x?x8xf32, #kiln.dims<[b, s]>>
!x = tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>

// expected-error @+1 {{kiln-fold-device-weights: no kiln.device attributes (run kiln-partition first)}}
func.func @not_partitioned(%x: !h {kiln.name = "hidden"}) -> (!h {kiln.name = "out"}) {
  %y = kiln.tanh %x : !h -> !h loc("act")
  return %y : !h
}

// -----

!h = tensor<?x?x8xf32, #kiln.dims<[b, s]>>
// expected-error @+1 {{out: kiln.neg: no kiln.device (kiln-partition places every dispatched op)}}
func.func @partly_placed(%x: !h {kiln.name = "hidden"}) -> (!h {kiln.name = "out"}) {
  %y = kiln.tanh %x {kiln.device = "vulkan"} : !h -> !h loc("act")
  %z = kiln.neg %y : !h -> !h loc("out")
  return %z : !h
}

// -----

!h = tensor<?x?x8xf32, #kiln.dims<[b, s]>>
// expected-error @+1 {{act: kiln.tanh: kiln.device is 'gpu', not "vulkan" or "cpu"}}
func.func @unknown_device(%x: !h {kiln.name = "hidden"}) -> (!h {kiln.name = "out"}) {
  %y = kiln.tanh %x {kiln.device = "gpu"} : !h -> !h loc("act")
  return %y : !h
}

// -----

!h = tensor<?x?x8xf32, #kiln.dims<[b, s]>>
// expected-error @+1 {{act: kiln.tanh: kiln.folded = "reshape-view" does not apply to this op}}
func.func @fold_of_another_op(%x: !h {kiln.name = "hidden"}) -> (!h {kiln.name = "out"}) {
  %y = kiln.tanh %x {kiln.device = "vulkan", kiln.folded = "reshape-view"} : !h -> !h loc("act")
  %z = kiln.neg %y {kiln.device = "vulkan"} : !h -> !h loc("out")
  return %z : !h
}

// -----

!h = tensor<?x?x8xf32, #kiln.dims<[b, s]>>
!x = tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
// A reshape read by a cpu kernel cannot be a device view.
// expected-error @+1 {{heads: kiln.reshape: kiln.folded = "reshape-view" but it cannot be folded (not on vulkan, or its result is read by a cpu dispatch, a transfer or an output)}}
func.func @fold_into_cpu_reader(%x: !h {kiln.name = "hidden"}) -> (!x {kiln.name = "out"}) {
  %y = kiln.tanh %x {kiln.device = "vulkan"} : !h -> !h loc("act")
  %r = kiln.reshape %y {kiln.device = "vulkan", kiln.folded = "reshape-view"} : !h -> !x loc("heads")
  %z = kiln.neg %r {kiln.device = "cpu"} : !x -> !x loc("out")
  return %z : !x
}
