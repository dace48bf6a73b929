//===- SplitWeights.h - weights too large for one device buffer, split by rows -*- C++ -*-===//
//
// A Vulkan kernel binds each operand as one storage buffer, so a weight larger than the device's
// maxStorageBufferRange (or maxMemoryAllocationSize) cannot be read by any kernel: Legality (b) would put
// every op using it on the CPU. splitLargeWeights (the `kiln-split-weights` pass) rewrites, before the
// memory plan, each such weight W [N, ...] into row chunks W_i = kiln.weight "W" {rows = [a_i, b_i)} and
// its uses into ops that already have device kernels:
//   gather(W, ids)                  -> g_i = gather(W_i, clamp(ids - a_i, 0, n_i - 1)), combined by
//                                      select(ids >= a_i, g_i, ...) (ids reshaped to broadcast over rows);
//   matmul(x, W, transpose_b) [N,K] -> concat(matmul(x, W_i, transpose_b), axis -1)   (an LM head; a tree
//                                      of concats of at most 8 inputs, one binding each);
//   matmul(x, W) with W [K, N]      -> sum_i matmul(slice(x, -1, a_i, b_i), W_i)      (rows contract);
// seen through one kiln.convert (an f16 / bf16 weight widened to f32 is split before the convert).
// The chunk size is the largest number of rows (a multiple of 64 when at least 64 fit) such that every
// buffer that grows with the chunk fits the limit: the weight chunk, its converted copy, a matmul chunk's
// result (an LM head's [b, s, n] logits at the symbols' bounds) or a contraction's x slice; the chunks are
// then balanced. All uses of one weight share one chunking (a tied embedding and LM head share chunks).
// A use that cannot be split (any other op, a batched matmul, W as the left operand, or an op whose other
// buffers exceed the limit anyway, so splitting would not bring it to the device) keeps the whole weight
// and falls back as before; the report says why.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_SPLITWEIGHTS_H
#define KILN_PASSES_SPLITWEIGHTS_H

#include "kiln/target/DeviceProfile.h"
#include "kiln/passes/MemoryPlan.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace kiln::passes {

struct SplitWeightsOptions {
  uint64_t maxBufferBytes = 0;  // one buffer's limit: min(maxStorageBufferRange, maxMemoryAllocationSize)
  std::string limitName;        // what the limit is, for the report ("maxStorageBufferRange 128.00 MiB")
  PlanOptions bounds;           // the symbols' bounds (result sizes are at these)
};

/// The options for a device profile: the smaller of its two limits, named.
SplitWeightsOptions splitWeightsOptions(const target::DeviceProfile &profile, const PlanOptions &bounds);

struct SplitWeightsReport {
  /// "split model.embed_tokens.weight [262144, 1152] f32 (1.13 GiB) into 16 chunks of <= 16384 rows
  /// (72.00 MiB) for maxStorageBufferRange 128.00 MiB: kiln.gather at model.embed_tokens, kiln.matmul at lm_head"
  std::vector<std::string> split;
  /// "not split: W [...] f32 (X) > maxStorageBufferRange ...: kiln.mul at loc: <why>" (a use kept whole).
  std::vector<std::string> notSplit;
  int weightsSplit = 0, chunks = 0, usesSplit = 0;
};

/// Rewrites every func.func of `module` as above. Never fails: what cannot be split stays as it was.
void splitLargeWeights(mlir::ModuleOp module, const SplitWeightsOptions &options, SplitWeightsReport *report);

} // namespace kiln::passes

#endif // KILN_PASSES_SPLITWEIGHTS_H
