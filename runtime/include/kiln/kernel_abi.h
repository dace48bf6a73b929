/*===- kernel_abi.h - how the runtime calls generated kernels ------------===*
 *
 * Every dispatch of an artifact calls one generated function of this type. `buffers` holds the
 * dispatch's buffers in Dispatch.buffers order (operands, then the result), each a pointer to
 * row-major, contiguous data whose shape is the buffer's symbolic shape evaluated with `symbols`
 * (the values of Manifest.symbols, in that order). Kernels never allocate and never fail: the
 * compiler proved the shapes, and the runtime checks inputs before the first dispatch.
 *
 *===----------------------------------------------------------------------===*/
#ifndef KILN_KERNEL_ABI_H
#define KILN_KERNEL_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*kiln_kernel_fn)(void *const *buffers, const int64_t *symbols);

#ifdef __cplusplus
}
#endif

#endif /* KILN_KERNEL_ABI_H */
