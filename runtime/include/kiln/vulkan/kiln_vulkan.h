/*===- kiln_vulkan.h - Vulkan additions to the kiln C API -----------------===*
 *
 * Artifacts compiled with `--target vulkan` run their device partitions on a Vulkan device, chosen at load
 * by the environment variable KILN_VULKAN_DEVICE (an index into `kiln devices`, or a substring of the
 * device name; default: the first device, GPUs before CPUs, that satisfies the artifact's profile).
 * kiln_model_load fails (KILN_IO_ERROR) with a one-line message when no device is usable.
 *
 *===----------------------------------------------------------------------===*/
#ifndef KILN_VULKAN_KILN_VULKAN_H
#define KILN_VULKAN_KILN_VULKAN_H

#include "kiln/kiln.h"

#ifdef __cplusplus
extern "C" {
#endif

/* GPU time of the session's last run in nanoseconds (Vulkan timestamps; 0 for CPU-only artifacts or a queue
 * without timestamps). */
KILN_API uint64_t kiln_session_gpu_time_ns(const kiln_session *session);

/* The Vulkan device the model runs on, or "cpu" for a CPU-only artifact. */
KILN_API const char *kiln_model_device(const kiln_model *model);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_VULKAN_KILN_VULKAN_H */
