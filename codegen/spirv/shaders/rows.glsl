// Row kernels (reductions, softmax, norms): one workgroup per row. A row is ROW_SIZE elements ROW_STRIDE
// apart (the op's axis of a row-major tensor; norms: the last axis, stride 1), and the rows are every index
// of the other dims: row `lin` starts at rowBase(lin), ROW_SPAN = ROW_SIZE * ROW_STRIDE. The invocations
// stride over a row's elements (k = t, t + WG_X, ...) and combine their partial results in shared memory.
#define PER_WORKGROUP
#include "workgroup_reduce.glsl"

uint rowBase(uint lin) { return (lin / ROW_STRIDE) * ROW_SPAN + lin % ROW_STRIDE; }

// Element k of the row starting at `base`, as a float (integer sums and maxima go through f32: exact while
// |values| < 2^24, e.g. masks and token counts).
#ifdef X_IS_FLOAT
#define ROW_X(k) LOAD_X(base + (k) * ROW_STRIDE)
#else
#define ROW_X(k) float(LOAD_X(base + (k) * ROW_STRIDE))
#endif
