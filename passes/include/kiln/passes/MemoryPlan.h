//===- MemoryPlan.h - buffers, dispatch order and arena layout of a step -*- C++ -*-===//
//
// The memory plan of a step function: every tensor value becomes one buffer, every op (except kiln.weight,
// kiln.constant and func.return) one dispatch, in program order. Buffer kinds:
//   WEIGHT   kiln.weight (bytes from the safetensors, deduplicated by name and, for a row chunk of
//            kiln-split-weights, its rows; the buffer keeps the tensor's name) and kiln.constant (bytes from
//            the attribute), placed back to back, 64-byte aligned, in the weights section;
//   INPUT    func arguments other than past_* (input_ids, attention_mask, ...);
//   KV_CACHE past_* arguments and present_* results (owned by the session, paired by name); after
//            placeKvCacheInPlace also the s appended rows a producer writes straight into the cache;
//   ARENA    every other value, including the logits / last_hidden_state results; placed by liveness-based
//            first-fit in one arena, 64-byte aligned.
// The runtime only executes this plan; the artifact manifest is a direct transcription of it.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_MEMORYPLAN_H
#define KILN_PASSES_MEMORYPLAN_H

#include "kiln/support/Status.h"
#include "kiln/support/Quantize.h"
#include "kiln/ir/SymShape.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::passes {

constexpr uint64_t kPlanAlignment = 64;

struct PlanOptions {
  int64_t maxContext = 2048; // p + s <= maxContext
  int64_t maxBatch = 1;      // b <= maxBatch
};

enum class BufferKind { Arena, Weight, Input, KvCache };
const char *bufferKindName(BufferKind kind); // "ARENA", "WEIGHT", "INPUT", "KV_CACHE"

/// Where a buffer's bytes live (Buffer.Location): HOST memory, or the Vulkan DEVICE. planMemory puts
/// everything on the host; partitionPlan (Partition.h) moves what the device partition uses.
enum class BufferLocation { Host, Device };
/// Which executor runs a dispatch (Dispatch.device): "cpu" or "vulkan".
enum class DispatchDevice { Cpu, Vulkan };
const char *deviceName(DispatchDevice device); // "cpu", "vulkan"

struct PlanBuffer {
  int id = 0;
  std::string name; // weight name, argument / result name, or the producing op's location
  BufferKind kind = BufferKind::Arena;
  mlir::Type elementType;
  ir::SymShape shape;
  uint64_t offset = 0;   // ARENA: in the arena; WEIGHT: in the weights section
  uint64_t maxBytes = 0; // at the symbols' bounds (exact for WEIGHT)
  mlir::Value value;     // the first IR value it holds
  // WEIGHT only: a kiln.weight names its tensor; a kiln.constant carries its little-endian bytes.
  std::string weightName;
  bool isConstant = false;
  std::vector<uint8_t> constantData;
  // A kiln.weight with `quant` (--weights q8_0|q4_0): elementType stays f32 (the values it stands for), the
  // bytes are the blocks of support/Quantize.h (maxBytes counts them).
  std::optional<QuantFormat> quant;
  // ARENA only: live over dispatches [firstUse, lastUse] (inclusive; outputs live to the last dispatch).
  int firstUse = -1, lastUse = -1;
  // ARENA only: live over the whole step, so no other buffer shares its bytes and what a step leaves in it is
  // there for the next (a split attention's counters, addCombinedSplit; the runtime zeroes the arena once).
  bool wholeStep = false;
  BufferLocation location = BufferLocation::Host; // ARENA: HOST -> arena, DEVICE -> device arena
  // A second copy of buffer `copyOf` in the other location (partitionPlan): a WEIGHT copy shares the
  // original's bytes in the weights section (same offset, uploaded at load); an ARENA copy is filled by
  // a TRANSFER dispatch.
  int copyOf = -1;
  // KV_CACHE in place (placeKvCacheInPlace): a strided view of entry `kvEntry`'s one storage buffer, laid
  // out [b, heads, rowCapacity, head_dim] (rowCapacity = max context): along axis 2 the view's rows are
  // rowCapacity apart per (batch, head), and it starts at row `rowOffset` (0 for past_X and present_X, p
  // for the s rows a producer appends). rowCapacity 0: a plain row-major buffer.
  int kvEntry = -1;
  int64_t rowCapacity = 0;
  ir::SymExpr rowOffset;
};

struct PlanDispatch {
  mlir::Operation *op = nullptr; // null for a transfer
  std::vector<int> buffers;      // operands, then results; a transfer: {source, destination}
  std::string location;
  DispatchDevice device = DispatchDevice::Cpu;
  bool transfer = false;
  /// 0: the op's one dispatch. A kernel in two passes (addSecondPass: e.g. attention split over the KV
  /// length, then its partials combined) has buffers operands, scratch, results in both: pass 1 writes the
  /// scratch and the results, pass 2 (the next dispatch) reads the scratch and writes the results.
  /// kCombinedPass (addCombinedSplit): such a kernel as one dispatch, buffers operands, scratch, counters,
  /// results, all but the operands written.
  int pass = 0;
  static constexpr int kCombinedPass = 3; // codegen::kSpirvCombinedPass
  /// Per buffer (empty, or empty entries: row-major as the op's type): the buffer holds the op's tensor with
  /// its axes in this order, storage axis k being the tensor's axis storageOrder[k] (a kiln.transpose folded
  /// into its reader or its producer: foldDeviceTransposes, DeviceWeights.h).
  std::vector<std::vector<int64_t>> storageOrder;
  /// Buffers the dispatch writes: a kernel's results (the last op->getNumResults(); pass 1 also the scratch
  /// before them), a transfer's destination.
  std::vector<int> written() const;
};

struct PlanPort {
  std::string name;
  int buffer = -1;
};

struct PlanKvEntry {
  std::string name; // "key.0" for past_key.0 / present_key.0
  int pastBuffer = -1, presentBuffer = -1;
  int seqAxis = 2;
  // placeKvCacheInPlace: past_X and present_X are one session buffer of `capacity` rows along seqAxis
  // (present aliases past), the concat only appends the s new rows at row p. appendBuffer >= 0: its
  // producer (`producer`, kiln.rope or kiln.transpose) writes those rows straight into the cache and the
  // concat has no dispatch; -1: the concat's dispatch copies them (an append). Not in place: `reason`.
  bool inPlace = false;
  int64_t capacity = 0;
  int appendBuffer = -1;
  std::string producer;
  std::string reason;
};

struct PlanSymbol {
  std::string name;
  int64_t maxValue = 0;
};

struct MemoryPlan {
  PlanOptions options;
  std::vector<PlanSymbol> symbols; // every symbol of the function, sorted by name (b: maxBatch, s: maxContext,
                                   // p: maxContext - 1)
  std::vector<PlanBuffer> buffers; // id == index
  std::vector<PlanDispatch> dispatches;
  std::vector<PlanPort> inputs, outputs;
  std::vector<PlanKvEntry> kvCache;
  uint64_t arenaBytes = 0;        // HOST ARENA buffers
  uint64_t deviceArenaBytes = 0;  // DEVICE ARENA buffers (0 until partitionPlan moves some there)
  uint64_t weightsBytes = 0;       // end of the last WEIGHT buffer, 64-byte aligned
  uint64_t intermediateBytes = 0;  // sum of ARENA max_bytes (what the arena would be without reuse)

  std::vector<mlir::Operation *> dispatchOps() const;
  std::vector<std::string> symbolNames() const;
};

/// Builds the plan of `step`. Errors (one line, naming the op's location or the port): a dim with a symbol
/// the options do not bound, an unnamed or duplicate port, a past_X without present_X (or the reverse), an
/// unsupported element type or constant attribute, a result that is not produced by a dispatch (an
/// argument, weight or constant returned directly, or one value returned twice), an op with regions.
StatusOr<MemoryPlan> planMemory(mlir::func::FuncOp step, const PlanOptions &options);

/// The dispatched ops of `plan` (kernels, not transfers), in order.
std::vector<mlir::Operation *> kernelOps(const MemoryPlan &plan);
/// The ops of `before` that have no dispatch in `after` (what a fold or the KV placement removed).
std::vector<mlir::Operation *> removedOps(const std::vector<mlir::Operation *> &before, const MemoryPlan &after);

/// Recomputes the live range of every ARENA buffer from the dispatch list (written by its dispatch, read by
/// later ones; output ports live to the last dispatch) and places them: one arena per location, each laid
/// out by first-fit decreasing (arenaBytes, deviceArenaBytes, intermediateBytes). planMemory ends with it;
/// partitionPlan calls it again after inserting transfers.
void layoutArenas(MemoryPlan &plan);

struct PartitionResult;

/// Where a device's kernels accept strided KV-cache views (the CPU always; Vulkan when asked: kiln compile
/// does, its SPIR-V kernels take them through codegen::SpirvKvView).
struct KvInPlaceOptions {
  bool vulkan = false;
};

/// KV cache in place: the bufferization decision for every KV entry of `plan` (planMemory's, after
/// partitionPlan for Vulkan). An entry is in place when
///   - past_X is read by exactly one dispatch, a kiln.concat along axis 2 of (past_X, new) whose result is
///     present_X (an append),
///   - present_X is read only by kiln.attention as key or value (and returned),
///   - no transfer touches either, and the concat and every attention run on one device whose kernels take
///     the strided view: the CPU; with Vulkan dispatches in the plan only when `options.vulkan` (the Vulkan
///     executor binds the one storage; its kernels index the views themselves).
/// Unfused graphs (present read by transpose / matmul) keep the two-buffer path: correct either way.
/// Then past_X / present_X become views of one buffer [b, h, capacity, d] (capacity = max context), the
/// concat becomes an append of the s new rows at row p, and when `new` has one reader (the concat), is no
/// output and is produced on the same device by kiln.rope or kiln.transpose, that producer writes into the
/// cache slot (new becomes a KV_CACHE view at row p) and the concat's dispatch is dropped (`partition`, when
/// given, is renumbered). Re-lays out the arenas. Returns the number of entries placed in place.
int placeKvCacheInPlace(MemoryPlan &plan, const KvInPlaceOptions &options, PartitionResult *partition = nullptr);

/// One line for reports: "kv cache: 4 x 2 buffers in place, capacity 64 (rope 2, transpose 2 write into
/// the cache)" or why not.
std::string kvCacheSummary(const MemoryPlan &plan);

/// Splits kernel dispatch `dispatch` into two passes (PlanDispatch::pass): a new ARENA buffer of `scratchBytes`
/// (element type `elementType`, in the location of the dispatch's result) goes before its results, and a
/// copy of the dispatch right after it becomes pass 2; transfer indices of `partition` (when given) are
/// renumbered. The caller re-lays out the arenas (layoutArenas) after its last split.
void addSecondPass(MemoryPlan &plan, int dispatch, uint64_t scratchBytes, mlir::Type elementType,
                   PartitionResult *partition = nullptr);

/// Like addSecondPass without the second dispatch: kernel dispatch `dispatch` becomes
/// PlanDispatch::kCombinedPass, with a scratch ARENA buffer of `scratchBytes` (`scratchType`) and a counters
/// one of `counterBytes` (`counterType`, PlanBuffer::wholeStep) before its results. The caller re-lays out
/// the arenas.
void addCombinedSplit(MemoryPlan &plan, int dispatch, uint64_t scratchBytes, mlir::Type scratchType,
                      uint64_t counterBytes, mlir::Type counterType);

/// The layout of a dispatch's buffers for its kernel: per buffer (operands, then results) the row
/// capacity of a strided KV view (0: row-major), and whether it is an in-place append (a kiln.concat whose
/// first operand is the start of its result: only the other operands are copied).
struct DispatchLayout {
  std::vector<int64_t> rowCapacity;
  bool appendInPlace = false;
  bool strided() const;
};
DispatchLayout dispatchLayout(const MemoryPlan &plan, int dispatch);

/// The largest value of the dim over every legal (b, s, p): 1 <= b <= maxBatch, s >= 1, p >= 0,
/// p + s <= maxContext (so `p + s` -> maxContext, `s` -> maxContext, `p` -> maxContext - 1). Fails for an
/// unknown symbol or a negative coefficient.
StatusOr<int64_t> maxDimValue(const ir::SymExpr &dim, const PlanOptions &options);

/// Bytes per element (i1: one byte); 0 for a type the plan cannot hold.
uint64_t elementBytes(mlir::Type type);

/// The op's location as text: a NameLoc's name, file:line:col, or the first known part of a fused one.
std::string locationText(mlir::Location loc);

} // namespace kiln::passes

#endif // KILN_PASSES_MEMORYPLAN_H
