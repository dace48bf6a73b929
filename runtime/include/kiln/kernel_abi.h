/*===- kernel_abi.h - how the runtime calls generated kernels ------------===*
 *
 * Every dispatch of an artifact calls one generated function of this type. `buffers` holds the
 * dispatch's buffers in Dispatch.buffers order (operands, then the result), each a pointer to
 * row-major, contiguous data whose shape is the buffer's symbolic shape evaluated with `symbols`
 * (the values of Manifest.symbols, in that order). Kernels never allocate and never fail: the
 * compiler proved the shapes, and the runtime checks inputs before the first dispatch.
 *
 * Threads: a kernel computes the items [begin, end) of its range, the outer (parallel) dimension of its
 * loop nest (rows of a norm, query rows of attention, output rows of a GEMV...), clamped to
 * [0, extent). Items are independent (no reduction spans two items), so any split of [0, extent) over
 * threads gives the same bytes as one call with (0, extent). begin = 0, end = INT64_MAX runs it all.
 * The companion function `<symbol>_range` gives the extent for the current symbols, the fewest items a
 * thread should take (grain: below it the fork-join costs more than it saves) and flags. A kernel
 * without a parallel dimension has extent 1. A kernel with KILN_KERNEL_CALLS_BLAS calls OpenBLAS,
 * which uses its own threads: the runtime calls it once, on one thread, with (0, extent). A kernel with
 * KILN_KERNEL_CALLS_BLAS_PER_ITEM calls OpenBLAS once per item (a tile of a widened / dequantized weight and
 * its sgemm): the runtime sets OpenBLAS to one thread and splits the range over its own threads.
 *
 *===----------------------------------------------------------------------===*/
#ifndef KILN_KERNEL_ABI_H
#define KILN_KERNEL_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*kiln_kernel_fn)(void *const *buffers, const int64_t *symbols, int64_t begin, int64_t end);

typedef struct kiln_kernel_range {
  int64_t extent; /* items of the range (>= 0) */
  int64_t grain;  /* fewest items worth one thread (>= 1) */
  int64_t flags;  /* KILN_KERNEL_* */
} kiln_kernel_range;

#define KILN_KERNEL_CALLS_BLAS 1
#define KILN_KERNEL_CALLS_BLAS_PER_ITEM 2

/* The symbol `<kernel symbol>_range`. */
typedef void (*kiln_kernel_range_fn)(const int64_t *symbols, kiln_kernel_range *range);

#ifdef __cplusplus
}
#endif

#endif /* KILN_KERNEL_ABI_H */
