//===- SpirvCodegen.h - Vulkan compute kernels for kiln ops ------*- C++ -*-===//
//
// One SPIR-V compute module per kiln op, following the Kernel contract of kiln_artifact.proto:
// - descriptor set 0, binding i = the dispatch's buffer i (the op's operands, then its result), std430
//   storage buffers, row-major and contiguous;
// - descriptor set 1, binding 0: a std140 uniform buffer `uvec4 symbols[(N + 3) / 4]`, the values of the
//   symbols in `symbolNames` order, four per uvec4 (Kernel.symbols_in_uniform: a command buffer recorded once
//   replays every step, the runtime writes only this buffer);
// - the runtime dispatches ceil(globalSize[k] / workgroupSize[k]) workgroups per axis (globalSize evaluated
//   with the symbols); every kernel loops (grid-stride) over its whole iteration space, so any grid is
//   correct and invocations past the end do nothing.
// Storage: f32 as float, i32 as int, i64 as two 32-bit words (arithmetic in 32-bit int, exact for
// |values| < 2^31: token ids, positions, masks; no Int64 capability needed), i1 as one uint8 per element
// (GL_EXT_shader_8bit_storage). f16 / bf16 need target.float16 (16-bit storage) and are converted to f32.
// The kernels' GLSL: codegen/spirv/shaders (one .comp file per kernel family, variants by #define and
// specialization constants); only the elementwise ops and copies have a generated body.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_SPIRVCODEGEN_H
#define KILN_CODEGEN_SPIRVCODEGEN_H

#include "kiln/support/Status.h"
#include "kiln/ir/SymShape.h"

#include "mlir/IR/Operation.h"
#include "llvm/ADT/ArrayRef.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::codegen {

/// The cooperative-matrix shape the matmul kernel uses (a device profile's cooperative_matrix_shapes entry).
constexpr const char *kSpirvCooperativeMatrixShape = "16x8x16 f16 f16 f32 f32";

/// What the kernels may use of a Vulkan device (a subset of a device profile).
struct SpirvTarget {
  bool float16 = false;              ///< 16-bit storage (f16 / bf16 tensors, computed in f32)
  uint32_t subgroupSize = 32;
  uint32_t maxSharedMemory = 32768;  ///< maxComputeSharedMemorySize, bytes
  uint32_t maxWorkgroupInvocations = 1024;
  uint64_t maxStorageBufferRange = 1ull << 27;
  bool subgroupArithmetic = true;
  /// VK_KHR_cooperative_matrix with kSpirvCooperativeMatrixShape (tensor cores): transpose_b matmuls with f16
  /// or bf16 weights and more than 4 rows take cooperative-matrix tiles (on 32-wide subgroups), else the
  /// scalar tiles.
  bool cooperativeMatrix = false;
  /// f32 weights take the cooperative-matrix tiles too, rounded to f16 as they are staged (off by default:
  /// the Vulkan f32 accuracy contract is 1e-3 against the f32 reference).
  bool cooperativeMatrixF32Weights = false;
  /// The cooperative-matrix block "BMxBNxBK" for every matmul (a device profile's cooperative_matrix_tile);
  /// empty: chosen per shape (coopmatTile in codegen/spirv/lib/CoopmatTiles.h).
  std::string cooperativeMatrixTile;
  /// Prefill attention (steps of 8+ query rows) on cooperative-matrix tiles (attention_tile_cm.glsl: Q, K, P
  /// and V rounded to f16, f32 accumulate and softmax) where the device has them. The compiler sets it for
  /// plans whose matmul weights are 16-bit, whose GEMMs already round to f16 on the tensor cores (and with
  /// --matmul-precision f16); f32 weights keep the f32 tiles (the Vulkan f32 accuracy contract).
  bool cooperativeMatrixAttention = false;
  /// The packed 4 x 8-bit integer dot product (SPV_KHR_integer_dot_product's OpSUDot; the device needs
  /// shaderIntegerDotProduct): the GEMV against q8_0 / q4_0 weights (gemv_quant.glsl) takes a block's product as
  /// 8 of them on the activations quantized to bytes, instead of 32 byte extractions, conversions and FMAs; the
  /// same exact integer sums, so the same results bit for bit. The compiler sets it where the profile has it
  /// accelerated (integer_dot_product_accelerated); tests set it directly (lavapipe has it, not accelerated).
  bool integerDotProduct = false;
  /// Tests only: the cooperative-matrix tiles with their fragment operations emulated in plain GLSL
  /// (matmul_coopmat.glsl CM_EMULATE), so that a device without them (lavapipe) runs the tiling and staging.
  bool emulateCooperativeMatrix = false;
  /// A kernel's small-rows variant (SpirvKernel::smallRows), for steps of at most kSpirvGemvRows rows: a
  /// matmul's GEMV path only, attention's row path only, without the tile paths (their registers and shared
  /// memory would lower the occupancy; on the H100 the f16 plans' decode attention took 2x as long with its
  /// cooperative-matrix tiles compiled in).
  bool smallRowsVariant = false;
  /// The fallback for attention split over the KV length: its partials combined by a second dispatch (passes
  /// 1 and 2) rather than by the last workgroup of each query row to finish (kSpirvCombinedPass, one dispatch;
  /// it needs 32-bit atomics on storage buffers and the Coherent decoration, both core Vulkan 1.0, so every
  /// profile takes it; the tests run both).
  bool attentionCombinePass = false;
};

/// generateSpirvKernel's `pass` for an op split as two passes would be (spirvTwoPassScratchBytes > 0) but
/// combined in its one dispatch: buffers operands, scratch (f32), counters (i32, spirvSplitCounterBytes; all 0
/// before the first dispatch, and left 0 by each), results.
constexpr int kSpirvCombinedPass = 3;

/// The most rows of A a matmul's GEMV path takes (decode and tiny chunks); more take the tiles.
constexpr int64_t kSpirvGemvRows = 4;

struct SpirvKernel {
  std::string name;             ///< a readable variant name, e.g. "matmul_tiled16_f32"
  std::vector<uint32_t> spirv;  ///< validated SPIR-V 1.3 words, entry point "main"
  uint32_t workgroupSize[3] = {1, 1, 1};
  std::vector<ir::SymExpr> globalSize; ///< 3 entries, in invocations
  uint32_t sharedMemoryBytes = 0;
  /// Values of the module's specialization constants (constant_id 0 .. n-1): static dims the kernel reads
  /// as `layout(constant_id = i) const uint SCi` (default 1), so kernels that differ only in them share
  /// one module (Kernel.specialization in the artifact).
  std::vector<uint32_t> specialization;
  std::string glsl;             ///< the source glslang compiled: shaders/header.glsl, the variant defines, the .comp
  /// A transpose_b matmul whose rows of A, or an attention whose query rows, are symbolic (one kernel for
  /// decode and prefill, with tile paths): those rows. The compiler then also generates the kernel with
  /// SpirvTarget::smallRowsVariant, which the runtime dispatches instead for steps where they are at most
  /// kSpirvGemvRows (Dispatch.small_rows_kernel in the artifact).
  std::optional<ir::SymExpr> smallRows;
};

/// Every kiln op (by operation name, "kiln.add") the backend has an entry for: "" when it has a kernel
/// (which may still reject some dtypes or shapes: spirvUnsupportedReason), else the reason it has none, and
/// legality places the op on the CPU.
std::map<std::string, std::string> spirvOpEntries();

/// Why `op` has no kernel for `target` (empty when it has one): unsupported op or dtype, a static operand
/// larger than maxStorageBufferRange, shared memory or workgroup size of the variant above the limits, ...
std::string spirvUnsupportedReason(mlir::Operation *op, const SpirvTarget &target);

/// The kernel of one kiln op: its kernel family's GLSL (codegen/spirv/shaders) specialized by defines for the
/// op's dtypes, attributes and static dims (symbolic dims come from the symbols uniform, in `symbolNames`
/// order), compiled with glslang to SPIR-V 1.3 / Vulkan 1.1 and validated with SPIRV-Tools. Errors name the op and include the first compiler or validator message.
/// A buffer of the kernel that is a strided view of an in-place KV cache (passes/MemoryPlan.h
/// placeKvCacheInPlace, Buffer.row_capacity in the artifact): rank 4 [b, h, rows, d] inside a storage
/// [b, h, rowCapacity, d], starting at row `rowOffset` (e.g. p for the appended rows). The runtime binds the
/// whole storage (offset 0), so the kernel adds the row offset itself, from the symbols: the command buffer
/// does not change with p.
struct SpirvKvView {
  int64_t rowCapacity = 0; ///< 0: a contiguous row-major buffer
  ir::SymExpr rowOffset;
  /// Non-empty (with rowCapacity 0): the buffer holds the tensor with its axes in this order, storage axis
  /// k being the tensor's axis storageOrder[k] (a kiln.transpose folded into its reader or producer,
  /// passes::foldDeviceTransposes); every access goes through the permuted index.
  std::vector<int64_t> storageOrder;
};

/// `operandStorage` (optional, one element type per operand): the element type the operand's buffer really
/// holds when it differs from the IR's, which is allowed only for an f32 operand stored as f16 / bf16 (a
/// weight whose convert was folded away, passes/DeviceWeights.h): the kernel reads the 16-bit values and
/// widens them to f32, as the convert did. `views` (optional, per buffer: operands, then results): KV-cache
/// views; every access of such a buffer goes through its strided index (KV_VIEW_<binding> in the GLSL).
/// `pass` 1 / 2: the passes of an op that runs in two (spirvTwoPassScratchBytes > 0), each one dispatch over
/// the buffers operands, scratch (f32, that many bytes), results: pass 1 writes the scratch (and may write
/// the results), pass 2 reads it and writes the results (`views` then has an entry for the scratch too);
/// kSpirvCombinedPass: such an op as one dispatch (scratch, then counters, before the results).
StatusOr<SpirvKernel> generateSpirvKernel(mlir::Operation *op, llvm::ArrayRef<std::string> symbolNames,
                                          const SpirvTarget &target,
                                          llvm::ArrayRef<mlir::Type> operandStorage = {},
                                          llvm::ArrayRef<SpirvKvView> views = {}, int pass = 0);

/// The scratch bytes (for batches up to `maxBatch`) when `op` runs as two kernels on `target`, else 0:
/// kiln.attention over a KV cache (keys p + s, queries s) splits the keys over workgroups for steps of few
/// query rows (flash-decoding) and combines the chunks' partial results in a second pass (or, unless
/// target.attentionCombinePass, in the same dispatch: kSpirvCombinedPass, with spirvSplitCounterBytes too).
uint64_t spirvTwoPassScratchBytes(mlir::Operation *op, const SpirvTarget &target, int64_t maxBatch);
/// The counter bytes of such an op combined in its one dispatch (kSpirvCombinedPass), else 0.
uint64_t spirvSplitCounterBytes(mlir::Operation *op, const SpirvTarget &target, int64_t maxBatch);

/// SPIR-V assembly text of `words` (spirv-dis, friendly names).
std::string disassembleSpirv(llvm::ArrayRef<uint32_t> words);

/// --dump-dir: writes DIR/spirv/NNN-<kernel name>.comp (the GLSL as compiled, with its variant defines and,
/// as a comment, the specialization constants' values) and DIR/spirv/NNN-<kernel name>.spvasm (the module's
/// disassembly); NNN is `index`, the kernel's index in the artifact (Dispatch.kernel). An empty
/// `dumpDir` writes nothing.
Status dumpSpirvKernel(const SpirvKernel &kernel, const std::string &dumpDir, int index);

} // namespace kiln::codegen

#endif // KILN_CODEGEN_SPIRVCODEGEN_H
