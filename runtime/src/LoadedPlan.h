//===- LoadedPlan.h - the manifest, decoded once at load -------------*- C++ -*-===//
//
// What every executor consumes instead of the protobuf: buffers with symbolic shapes over the manifest's
// symbols, KV-cache entries, kernels, dispatches grouped into segments by executor, the step function's
// inputs and outputs and the model facts. Built once from a manifest that passed
// kiln::artifact::validateManifest (openArtifact runs it), adding what this runtime needs beyond the format:
//   - symbols are b (batch), s (tokens in the chunk) and p (tokens in the KV cache), each at most once;
//   - every shape, row offset and grid size, and every buffer's bytes, fit in int64 / uint64 at the symbols'
//     max values (so evaluating them at run time, with symbols in range, cannot overflow);
//   - the inputs are input_ids (required) and attention_mask, I64 or I32 [b, s]; there is an output;
//   - a causal LM's logits end in vocab_size, an encoder's last_hidden_state in hidden_size;
//   - dispatches run on "cpu" (the host: HOST buffers only) or on one device (DEVICE buffers only; it also
//     runs the TRANSFERs); an in-place KV entry is [b, h, capacity, d] with h and d constant.
// Failures are one line: "FILE: what is wrong, naming the entry".
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_LOADEDPLAN_H
#define KILN_RUNTIME_LOADEDPLAN_H

#include "kiln/artifact/SymbolicDim.h"
#include "kiln/support/Status.h"
#include "kiln_artifact.pb.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::runtime {

using artifact::SymbolicDim;

/// What a manifest symbol stands for at run time.
/// LogitsRows: `r`, the last rows of a chunk that get logits (a causal LM's LM head runs on [b, r, H]).
enum class SymbolRole { Batch, Seq, Past, LogitsRows };
constexpr int kNumSymbolRoles = 4;

struct PlanSymbol {
  std::string name; // "b", "s", "p", "r"
  SymbolRole role = SymbolRole::Batch;
  int64_t maxValue = 0;
};

struct PlanBuffer {
  int id = 0;
  std::string name;
  artifact::Buffer::Kind kind = artifact::Buffer::KIND_UNSPECIFIED;
  artifact::DType dtype = artifact::DTYPE_UNSPECIFIED;
  size_t elemBytes = 0;  // bytes per element (1 for a q8_0 / q4_0 weight matrix: bytesAt is its max_bytes)
  std::vector<SymbolicDim> shape;
  uint64_t offset = 0;   // ARENA: in its arena; WEIGHT: in the weights region
  uint64_t maxBytes = 0; // the planned size (exact for WEIGHT)
  bool device = false;   // Location DEVICE: the device executor's memory
  int kvEntry = -1;      // KV_CACHE: its entry (past, present or appended rows)
  bool kvPresent = false; // KV_CACHE: the present (written) buffer of its entry
  int64_t rowCapacity = 0; // > 0: a view of an in-place entry's storage, rows along axis 2 this far apart
  SymbolicDim rowOffset;   // ... starting at this row

  /// Bytes at `symbols` (values in Manifest.symbols order, each within its max value); negative dims count 0.
  uint64_t bytesAt(const int64_t *symbols) const;
  /// The shape at `symbols`.
  void shapeAt(const int64_t *symbols, std::vector<int64_t> &out) const;
};

struct PlanKvEntry {
  std::string name;
  int past = -1, present = -1, append = -1;
  bool inPlace = false;
  int64_t capacity = 0; // in place: rows of the one storage (max_context)
  uint64_t bytes = 0;   // each of the two buffers; in place: the one storage [max_batch, h, capacity, d]
  bool device = false;
};

struct PlanKernel {
  std::string symbol, op, signature;
  // Vulkan: the module (its own bytes or the one Kernel.spirv_from names; may be empty), workgroup size
  // (absent / 0 entries: 1), grid (absent entries: 1), shared memory and specialization constants.
  const std::string *spirv = nullptr;
  uint32_t workgroupSize[3] = {1, 1, 1};
  SymbolicDim globalSize[3] = {SymbolicDim::of(1), SymbolicDim::of(1), SymbolicDim::of(1)};
  uint32_t sharedMemoryBytes = 0;
  std::vector<uint32_t> specialization;
  bool symbolsInUniform = false; // the symbols come from a uniform buffer (set 1), not push constants
};

struct PlanDispatch {
  bool transfer = false;    // a TRANSFER: buffers [source, destination]
  int kernel = -1;          // KERNEL: index into LoadedPlan::kernels
  int executor = -1;        // index into LoadedPlan::executors
  uint32_t firstBuffer = 0; // its buffers: LoadedPlan::dispatchBuffers[firstBuffer, + numBuffers)
  uint32_t numBuffers = 0;
  int numResults = 1;       // the last numResults buffers are written
  std::string location;
  // A kernel for small steps (Dispatch.small_rows_kernel: a matmul's GEMV-only variant), -1 if none: taken
  // where smallRows at the step's symbols is at most smallRowsMax (kernelAt).
  int smallRowsKernel = -1;
  SymbolicDim smallRows = SymbolicDim::of(0);
  int64_t smallRowsMax = 0;

  /// The kernel this dispatch runs at `symbols`.
  int kernelAt(const int64_t *symbols) const {
    return smallRowsKernel >= 0 && smallRows.eval(symbols) <= smallRowsMax ? smallRowsKernel : kernel;
  }
};

/// Consecutive dispatches of one executor, [begin, end) in dispatch order.
struct PlanSegment {
  int executor = -1;
  int begin = 0, end = 0;
};

struct LoadedPlan {
  std::string path, task, architecture;
  int64_t vocabSize = 0, hiddenSize = 0, maxContext = 0, maxBatch = 0, numThreadsDefault = 0;
  uint64_t arenaBytes = 0, deviceArenaBytes = 0;
  std::string deviceProfileJson; // the profile a device artifact was compiled for ("" for CPU artifacts)

  std::vector<PlanSymbol> symbols;                 // Manifest.symbols order
  int symbolIndex[kNumSymbolRoles] = {-1, -1, -1, -1}; // by SymbolRole: its index in `symbols`, -1 if absent
  std::vector<int64_t> symbolMax;                  // per symbol, for bounds

  std::vector<PlanBuffer> buffers; // id == index
  std::vector<PlanKvEntry> kv;
  std::vector<PlanKernel> kernels;
  std::vector<PlanDispatch> dispatches;
  std::vector<int32_t> dispatchBuffers;
  std::vector<std::string> executors; // the devices the dispatches name: "cpu" (host) and at most one other
  std::vector<PlanSegment> segments;
  bool usesDevice = false; // a DEVICE buffer or a non-host dispatch exists (the device executor is needed)

  int inputIds = -1, attentionMask = -1; // INPUT buffers
  std::vector<std::string> inputNames;   // without the KV cache's
  std::vector<std::string> outputNames;  // without the KV cache's
  std::vector<int> outputBuffers;

  bool causal() const { return !kv.empty(); }
  const int32_t *buffersOf(const PlanDispatch &d) const { return dispatchBuffers.data() + d.firstBuffer; }
  /// The device executor's name (the non-host entry of `executors`), or "" when there is none.
  std::string deviceExecutor() const;
};

/// The name of the host executor in Dispatch.device ("" in a manifest means it too).
constexpr const char *kHostExecutor = "cpu";

/// Decodes `manifest` (which passed validateManifest). Errors are one line starting with `path`.
/// `defaultDevice` names the device executor when DEVICE buffers exist but no dispatch names a device.
StatusOr<LoadedPlan> buildLoadedPlan(const artifact::Manifest &manifest, const std::string &path,
                                     const std::string &defaultDevice);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_LOADEDPLAN_H
