//===- KernelBuilder.h - one kiln op -> one GLSL compute kernel (private) -*- C++ -*-===//
//
// The machinery every SPIR-V kernel emitter shares: the op's tensors (storage kind, shape, dims as uint
// GLSL expressions over the push constants), the grid planning, the kernel's variant defines, and the
// source assembly (shaders/header.glsl, the generated declarations, the kernel's .comp file) compiled with
// glslang and validated with SPIRV-Tools. An emitter (one per kernel family: MapKernels.cpp, RowKernels.cpp,
// MatmulKernel.cpp, AttentionKernel.cpp) checks the op, picks the .comp file, sets its defines, the
// workgroup and the global size; SpirvOpTable.cpp says which emitter each op has.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_SPIRV_KERNELBUILDER_H
#define KILN_CODEGEN_SPIRV_KERNELBUILDER_H

#include "kiln/codegen/SpirvCodegen.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/SymShape.h"
#include "kiln/support/Quantize.h"

#include "mlir/IR/Operation.h"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kiln::codegen::spirv {

/// A uint GLSL expression, folded while it is a constant: a dim, a stride, an extent.
struct UintExpr {
  bool isConst = true;
  uint64_t value = 0;
  std::string text;
  static UintExpr k(uint64_t v) { return UintExpr{true, v, ""}; }
  static UintExpr t(std::string s) { return UintExpr{false, 0, std::move(s)}; }
  std::string str() const { return isConst ? std::to_string(value) + "u" : text; }
};
UintExpr operator*(const UintExpr &a, const UintExpr &b);
UintExpr operator+(const UintExpr &a, const UintExpr &b);

/// k * e as a SymExpr.
ir::SymExpr scaleSym(const ir::SymExpr &e, int64_t k);

using ir::describeOp; // "'kiln.x' at loc(...)": how errors name the op (kiln/ir/KilnDialect.h)

/// A float as a GLSL literal that reads back as the same f32 (infinities as bit casts).
std::string glslFloat(double v);

/// How a tensor's elements are stored (shaders/types.glsl).
enum class Kind { F32, F16, BF16, I64, I32, I1 };
const char *kindName(Kind k);  ///< "f32", ... (kernel names)
const char *kindMacro(Kind k); ///< "F32", ... (types.glsl's LOAD_F32, STORAGE_F32, ...)

/// One buffer of the kernel: binding i = the op's operand i, then its results (a kiln.group's member: the
/// group's binding of that value).
struct Tensor {
  unsigned binding = 0;
  bool output = false; ///< a result (or a two-pass kernel's scratch): declared writable
  Kind kind = Kind::F32;
  ir::SymShape shape;
  std::vector<UintExpr> dims;
  /// A KV-cache view (SpirvKvView): the GLSL macro mapping a row-major index over `dims` to the storage's
  /// ("KV_VIEW_<binding>"), and its #define; empty for a contiguous buffer.
  std::string viewMacro, viewDefine;
  int64_t rowCapacity = 0; ///< the view's storage rows (0: not a view) ...
  UintExpr rowOffset;      ///< ... and its first row
  bool permuted = false;   ///< stored with its axes permuted (SpirvKvView::storageOrder; the view macro maps)
  bool coherent = false;   ///< written and read by different workgroups of one dispatch (COHERENT_BUFFER)
  /// A block-quantized weight (a kiln.weight with `quant`): `kind` is F32 (the values it stands for), the
  /// buffer holds its blocks as uint words (STORAGE_QUANT; shaders/quant.glsl reads them).
  std::optional<QuantFormat> quant;
  /// Element `off` of the row-major index space as an index into the buffer (through the view's macro).
  std::string at(const std::string &off) const { return viewMacro.empty() ? off : viewMacro + "(" + off + ")"; }
  bool isFloat() const { return kind == Kind::F32 || kind == Kind::F16 || kind == Kind::BF16; }
  bool is16() const { return kind == Kind::F16 || kind == Kind::BF16; }
  UintExpr numElements() const;
  std::vector<UintExpr> strides() const; ///< row-major
  size_t elementBytes() const;
  std::string buf() const { return "b" + std::to_string(binding) + ".d"; }
  /// Element `off` as a float (float kinds) or int (integer kinds); a store of such a value.
  std::string load(const std::string &off) const;
  std::string store(const std::string &off, const std::string &v) const;
};

/// The iteration space split into x / y / z groups (see planGrid).
struct Grid {
  std::vector<UintExpr> extent;      // 3 group extents (GLSL)
  std::vector<ir::SymExpr> global;   // 3 global sizes, in invocations
};

class KernelBuilder;
struct SpirvOpEntry;
/// A kernel family's emitter: checks the op and describes its kernel on the builder; false after fail().
using KernelEmitter = bool (*)(KernelBuilder &, const SpirvOpEntry &);

/// The SPIR-V backend's entry for one kiln op (SpirvOpTable.cpp).
struct SpirvOpEntry {
  std::string noKernel;           ///< why the op has no kernel; empty when `emit` makes one
  KernelEmitter emit = nullptr;
  /// The kernel's name is "<op>_<family>_<result kind>" unless the emitter names it (matmul, attention).
  const char *family = "";
  /// Elementwise ops: the result's GLSL expression with $0, $1 standing for the operand values (cast to the
  /// result's float-ness) for a float result, and for an integer result ("" when there is none).
  const char *floatExpr = "";
  const char *intExpr = "";
};

class KernelBuilder {
public:
  KernelBuilder(mlir::Operation *op, llvm::ArrayRef<std::string> symbols, const SpirvTarget &target,
                llvm::ArrayRef<mlir::Type> operandStorage = {}, llvm::ArrayRef<SpirvKvView> views = {},
                int pass = 0);

  /// Makes the kernel of the op with `entry`'s emitter: tensors, limits, emitter, source, glslang, validation.
  bool run(const SpirvOpEntry &entry);
  /// A kiln.group's member: its tensors bound at `bindings` (operands, then results) of the group's kernel.
  void bindAt(std::vector<unsigned> bindings) { bindings_ = std::move(bindings); }
  /// run() up to the emitter (tensors, limits, emitter): no source, no SPIR-V (GroupKernel.cpp composes).
  bool describe(const SpirvOpEntry &entry);

  std::string error; ///< "'kiln.x' at loc: why" after a failure
  SpirvKernel kernel;

  // --- for the emitters ---
  bool fail(const std::string &why);
  mlir::Operation *op() const { return op_; }
  const SpirvTarget &target() const { return target_; }
  unsigned numTensors() const { return unsigned(tensors_.size()); }
  const Tensor &in(unsigned i) const { return tensors_[i]; }
  const Tensor &out() const { return tensors_.back(); }
  /// 0: the op's one kernel; 1 / 2: a pass of a two-pass kernel (generateSpirvKernel), whose buffers are the
  /// operands, a scratch buffer (binding = the number of operands, f32), then the results; kSpirvCombinedPass:
  /// its one dispatch, with a counters buffer (i32) after the scratch.
  int pass() const { return pass_; }
  const Tensor &scratch() const { return tensors_[op_->getNumOperands()]; }
  const Tensor &counters() const { return tensors_[op_->getNumOperands() + 1]; }
  Tensor &tensor(unsigned i) { return tensors_[i]; }
  /// The GLSL of symbol `name` ("pc.symbols[i / 4][i % 4]", the uniform of header.glsl), or fails naming it.
  bool symbolRef(const std::string &name, std::string &glsl);
  /// `e` as a GLSL uint expression over the symbols, or fails naming an unknown symbol.
  bool symExpr(const ir::SymExpr &e, UintExpr &out);

  /// A variant define of the kernel (`#define name value` after header.glsl's version directive).
  void define(const std::string &name, const std::string &value = "");
  /// Names tensor `t` for the .comp file as `role`: BUF_<role>, LOAD_<role>(i), STORE_<role>(i, v) (results
  /// only), <role>_IS_<KIND> and <role>_IS_FLOAT / <role>_IS_INT.
  void bindRole(const std::string &role, const Tensor &t);
  /// A specialization constant holding `v` (the next constant_id; the value goes to kernel.specialization).
  UintExpr specConst(uint64_t v);
  /// The kernel's .comp file under shaders/, and generated GLSL placed before it (maps: visit()).
  void useShader(const std::string &file) { shader_ = file; }
  void addGenerated(const std::string &glsl) { generated_ += glsl; }
  void setWorkgroup(uint32_t x, uint32_t y = 1, uint32_t z = 1);
  uint32_t workgroupX() const { return wg_[0]; }
  void setSharedBytes(uint32_t bytes) { sharedBytes_ = bytes; }
  void useSubgroupArithmetic() { subgroupArithmetic_ = true; }
  /// GL_NV_cooperative_matrix in the source (COOPERATIVE_MATRIX, the Vulkan memory model); the validated
  /// module is rewritten to SPV_KHR_cooperative_matrix (nvToKhrCooperativeMatrix).
  void useCooperativeMatrix() { cooperativeMatrix_ = true; }
  /// SPV_KHR_integer_dot_product (INTEGER_DOT_PRODUCT: header.glsl's dotSU4x8); only with target().integerDotProduct.
  void useIntegerDotProduct() { integerDotProduct_ = true; }
  /// The largest power-of-two workgroup of at most `cap` invocations the target allows.
  uint32_t workgroupUpTo(uint32_t cap) const;

  /// Splits `dims` (a row-major iteration space) into x / y / z groups: x the trailing constant dims through
  /// the first symbolic one, y the dims through the next symbolic one, z the rest. Each group's global size is
  /// a SymExpr the runtime can evaluate (a constant capped at the 65535-workgroup limit, or the group's
  /// symbolic dim); perWorkgroup: each x index is a workgroup of `wgx` invocations (row kernels).
  Grid planGrid(const ir::SymShape &sym, const std::vector<UintExpr> &dims, uint32_t wgx, bool perWorkgroup);
  /// planGrid's extents as GRID_X / GRID_Y / GRID_Z for shaders/grid.glsl, its global size as the kernel's.
  void useGrid(const Grid &g);
  /// GLSL lines declaring the coordinates <prefix>0.. of linear index `linVar` in `dims`.
  static std::string coords(const std::vector<UintExpr> &dims, const std::string &linVar, const std::string &prefix,
                            const std::string &indent);
  /// sum(<prefix>d * strides[d]) + base.
  static std::string offset(const std::vector<UintExpr> &strides, const std::string &prefix = "c",
                            UintExpr base = UintExpr::k(0));
  /// Strides that read `t` broadcast (numpy, right-aligned) to `outShape`.
  static std::vector<UintExpr> broadcastStrides(const Tensor &t, const ir::SymShape &outShape);

  /// kiln.group's emitter (GroupKernel.cpp): its members' kernels as segments of one.
  bool emitGroup();

private:
  /// The GLSL of member `m` as a segment `fn(uint group, uint groups)` of a group kernel (GroupKernel.cpp).
  bool segmentSource(KernelBuilder &m, const std::string &fn, std::set<std::string> &included, std::string &out);
  bool makeTensors();
  bool makeView(Tensor &t, const SpirvKvView &view);
  bool makePermutedView(Tensor &t, const std::vector<int64_t> &order);
  bool checkLimits();
  std::string source() const;
  bool compile(const std::string &glsl);

  mlir::Operation *op_;
  llvm::ArrayRef<std::string> symbols_;
  const SpirvTarget &target_;
  llvm::ArrayRef<mlir::Type> operandStorage_; // per operand, the buffer's element type when it differs
  llvm::ArrayRef<SpirvKvView> views_;         // per buffer, KV-cache views (may be empty)
  int pass_ = 0;
  std::vector<unsigned> bindings_;            // per tensor, its binding (empty: its index)
  std::vector<Tensor> tensors_;               // operands, then results
  std::vector<std::pair<std::string, std::string>> defines_;
  std::string shader_;
  std::string generated_;
  uint32_t wg_[3] = {256, 1, 1};
  uint32_t sharedBytes_ = 0;
  bool subgroupArithmetic_ = false;
  bool cooperativeMatrix_ = false;
  bool integerDotProduct_ = false;
};

/// Rewrites a validated module that uses SPV_NV_cooperative_matrix to SPV_KHR_cooperative_matrix (what the
/// runtime enables): CooperativeMatrixKhr.cpp. False with `error` for a module it cannot rewrite.
bool nvToKhrCooperativeMatrix(std::vector<unsigned> &words, std::string &error);

/// The embedded files of codegen/spirv/shaders (generated at build time), by file name.
const std::map<std::string, std::string> &shaderFiles();
/// `text` with every `#include "file"` line replaced by that shader file, each file once per `included`.
std::string expandIncludes(const std::string &text, std::set<std::string> &included);

// The kernel families (one file each).
bool emitElementwise(KernelBuilder &b, const SpirvOpEntry &entry); // unary / binary ops by expression
bool emitConvert(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitCompare(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitSelect(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitSym(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitIota(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitReshape(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitTranspose(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitBroadcastTo(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitSlice(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitTail(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitConcat(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitGather(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitRope(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitReduce(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitSoftmax(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitRmsNorm(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitLayerNorm(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitMatmul(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitMatmulGroup(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitAttention(KernelBuilder &b, const SpirvOpEntry &entry);
bool emitGroup(KernelBuilder &b, const SpirvOpEntry &entry);
/// The tensors of a matmul (one weight, one result) or of a matmul_group (weights W_s, results Y_s, or one
/// result with silu_mul) (MatmulKernel.cpp).
struct MatmulParts {
  bool tb = true, group = false, siluMul = false;
  /// The lhs the products read: the op's, or a group's normed(y) in the kernel of many rows (then no norm).
  const Tensor *lhs = nullptr;
  std::vector<const Tensor *> weights, results;
  /// A group's folds (kiln-fuse-matmul-norms): the lhs's RMSNorm weight, eps and (1 + w); the residual.
  const Tensor *norm = nullptr, *residual = nullptr;
  double normEps = 0;
  bool normUnitOffset = false;
};
/// The defines of a matmul_group (matmul_group.glsl): GROUP, its segments' N, the roles Y0.. (or Y with
/// SILU_MUL) and B0.. of float weights (quantized ones are read by quant.glsl) (MatmulKernel.cpp).
void defineGroup(KernelBuilder &b, const MatmulParts &p);
/// kiln.matmul (transpose_b) or kiln.matmul_group against block-quantized weights (QuantKernels.cpp).
bool emitQuantMatmul(KernelBuilder &b, const MatmulParts &p);
/// quant.glsl's defines for reading the block-quantized tensor `t` (QuantKernels.cpp).
void defineQuantReader(KernelBuilder &b, const Tensor &t);
/// Scratch bytes of attention in two passes (split over the KV length) for up to `maxBatch` rows; 0: one pass.
uint64_t attentionScratchBytes(mlir::Operation *op, const SpirvTarget &target, int64_t maxBatch);
/// Counter bytes of that split combined in its own dispatch (kSpirvCombinedPass) for up to `maxBatch` rows.
uint64_t attentionCounterBytes(mlir::Operation *op, const SpirvTarget &target, int64_t maxBatch);

/// Every kiln op the backend knows, by operation name (SpirvOpTable.cpp).
const std::map<std::string, SpirvOpEntry> &spirvOpTable();

} // namespace kiln::codegen::spirv

#endif // KILN_CODEGEN_SPIRV_KERNELBUILDER_H
