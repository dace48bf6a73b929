//===- CpuCodegen.cpp - kiln ops -> native kernels -------------------------===//
//
// Each dispatched op becomes a `func.func @kiln_kNN(%buffers: !llvm.ptr, %symbols: !llvm.ptr)`. The body
// loads the buffer pointers and symbol values, computes every dim from the types' symbolic shapes, and
// walks the data with scf loops over i64 offsets, reading and writing through llvm.getelementptr /
// llvm.load / llvm.store. Raw pointers instead of memref descriptors: every kernel addresses flat
// row-major buffers with strides it computes itself (0 along a broadcast dim), so descriptors would only
// be built to be taken apart again.
//
// Values are computed in two types: f32 for every float element type (f16 and bf16 widen on load and
// round to nearest even on store) and i64 for every integer type (i1 is one byte, 0/1). Reductions
// accumulate in f32 (kAccType). f32 matmuls call OpenBLAS cblas_sgemm.
//
// One mechanism carries most ops: emitMap, a loop nest over an iteration shape in which every operand and
// the result are read / written through (base, strides). Elementwise ops (unary, binary, compare, select,
// convert) use broadcast strides; data movement (reshape, transpose, broadcast_to, slice, concat, iota)
// uses permuted or offset strides with raw copies. Reductions, softmax, norms, rope, gather, matmul and
// attention have their own loop nests.
//
// The whole module is lowered once (scf -> cf, math/arith/func/cf -> llvm), translated to LLVM IR,
// optimized, compiled to one object for the target CPU and linked with clang into a shared object.
//
//===----------------------------------------------------------------------===//
#include "kiln/codegen/CpuCodegen.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/OpTable.h"
#include "kiln/ir/ShapeInference.h"
#include "kiln/ir/SymShape.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <unistd.h>

using namespace mlir;

namespace kiln::codegen {
namespace {

using kiln::ir::SymExpr;
using kiln::ir::SymShape;
using kiln::ir::describeOp;

std::string printed(Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << t;
  return s;
}

/// The op's name and types: the text of CpuKernelInfo::signature.
std::string signatureOf(Operation *op) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << op->getName() << " (";
  llvm::interleaveComma(op->getOperandTypes(), os);
  os << ") -> ";
  llvm::interleaveComma(op->getResultTypes(), os);
  return s;
}

/// Two ops with the same name, attributes and types compute the same function of their buffers: they
/// share one kernel (a 22-layer model repeats each layer's ops 22 times).
std::string dedupeKey(Operation *op) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << signatureOf(op) << " " << op->getAttrDictionary();
  return s;
}

/// A tensor operand or result of the kernel: its data pointer, element type, and dims as i64 values.
struct Tensor {
  Value ptr;
  Type elem;    // the tensor's element type
  Type storage; // how an element sits in memory (bf16 as i16, i1 as i8)
  SymShape shape;
  SmallVector<Value> dims;
  int64_t rowCapacity = 0; // > 0: a strided KV-cache view (KernelLayout), rows along axis 2 this far apart
  std::optional<QuantFormat> quant; // a block-quantized weight (KernelLayout::quant): storage is its bytes
  bool isFloat() const { return isa<FloatType>(elem); }
};

/// The integer dot product the quantized GEMV uses, from the target CPU's features.
enum class DotIsa {
  Generic, ///< plain vector arithmetic (LLVM lowers it for whatever the target has)
  Avx2,    ///< vpmaddubsw / vpmaddwd
  Vnni,    ///< vpdpbusd on 256-bit vectors (AVX-VNNI)
  Vnni512, ///< AVX512-VNNI (+ VL, BW): 512-bit vpdpbusd over a group's interleaved rows
};

/// How emitMap reads or writes one tensor: element offset = base + sum(iv[d] * strides[d]).
struct Access {
  const Tensor *t;
  Value base;
  SmallVector<Value> strides;
};

constexpr const char *kSgemm = "cblas_sgemm";
/// KILN_KERNEL_CALLS_BLAS of runtime/include/kiln/kernel_abi.h (the runtime's header; codegen does not
/// include it: tests/unit/codegen/CpuCodegenTest.cpp checks the two agree).
constexpr int64_t kCallsBlasFlag = 1;
/// KILN_KERNEL_CALLS_BLAS_PER_ITEM: each item calls OpenBLAS (one thread), the range split over the runtime's.
constexpr int64_t kCallsBlasPerItemFlag = 2;
constexpr const char *kSgemv = "cblas_sgemv";
constexpr const char *kMalloc = "malloc";
constexpr const char *kFree = "free";

/// Which buffers of an op's kernel may be strided KV-cache views (KernelLayout::rowCapacity).
enum class KvViews {
  None,
  KeyValue, ///< operands 1 and 2 (kiln.attention's key and value)
  Result,   ///< the result (kiln.rope / kiln.transpose writing the new rows into the cache)
  Append,   ///< operand 0 and the result of an in-place append (kiln.concat onto the cache)
};

/// The buffers of one dispatch as tensors: the op's operands, then its results.
struct OpTensors {
  std::vector<Tensor> ins, outs;
  bool appendInPlace = false;
};

class KernelEmitter;

/// How the CPU backend emits one op: its row of the op table (KernelEmitter::table()).
struct CpuRule {
  LogicalResult (KernelEmitter::*emit)(Operation *, const OpTensors &) = nullptr;
  /// Elementwise unary and binary ops: the element function on f32 values and on i64 values (null: the op
  /// is not defined on integer tensors).
  Value (*onFloat)(KernelEmitter &, ArrayRef<Value>) = nullptr;
  Value (*onInteger)(KernelEmitter &, ArrayRef<Value>) = nullptr;
  KvViews kvViews = KvViews::None;
};

class KernelEmitter {
public:
  /// `begin` / `end`: the kernel's range arguments (kernel_abi.h); the builder is at the top of `entry`.
  KernelEmitter(ImplicitLocOpBuilder &b, Value symbols, Value begin, Value end,
                const llvm::StringMap<unsigned> &symbolIndex, std::string &error, DotIsa dotIsa = DotIsa::Generic)
      : b_(b), symbols_(symbols), begin_(begin), end_(end), entry_(b.getInsertionBlock()),
        symbolIndex_(symbolIndex), error_(error), dotIsa_(dotIsa) {
    ptrTy_ = LLVM::LLVMPointerType::get(b.getContext());
    f32_ = b.getF32Type();
    i64_ = b.getI64Type();
    accTy_ = f32_;
  }

  LogicalResult emit(Operation *op, ArrayRef<Value> bufferPtrs, const KernelLayout *layout = nullptr);
  /// The op table (built once): every kiln op -> how its kernel is emitted, or why it has none.
  static const ir::OpTable<CpuRule> &table();

  /// The kernel's range (kernel_abi.h) as values of the kernel's entry block: null when it has no
  /// parallel loop (extent 1).
  Value rangeExtent() const { return rangeExtent_; }
  Value rangeGrain() const { return rangeGrain_; }
  bool callsBlas() const { return callsBlas_; }
  /// The target has 512-bit vectors (AVX-512): the attention kernel may use 16-lane vectors.
  void setWideVectors(bool wide) { wideVectors_ = wide; }
  Value rangeFlags() const { return rangeFlags_; }

private:
  //===--------------------------------------------------------------------===//
  // The kernel's range: every kernel goes through parallelFor for its outer (parallel) loop
  //===--------------------------------------------------------------------===//
  /// Element operations one thread should get at least (a fork-join costs a few microseconds).
  static constexpr int64_t kMinPartWork = 16384;

  /// for item in [begin, end) clamped to [0, extent): body(item). The kernel's parallel loop: called at the
  /// kernel's top level; every call of one kernel covers the same extent (the first call's value is what
  /// `<symbol>_range` returns), and every store of a kernel that has one is inside one, so that each item's
  /// work is done by exactly one call whatever the split. itemCost: element operations per item (the grain).
  void parallelFor(Value extent, Value itemCost, llvm::function_ref<void(Value)> body) {
    if (b_.getInsertionBlock() != entry_)
      rangeMisplaced_ = true;
    if (!rangeExtent_) {
      rangeExtent_ = extent;
      rangeGrain_ = arith::MaxSIOp::create(
          b_, c64(1), arith::DivSIOp::create(b_, c64(kMinPartWork), arith::MaxSIOp::create(b_, itemCost, c64(1))));
    }
    auto [lo, hi] = rangeBounds(extent);
    forLoop(lo, hi, body);
  }

  /// The items [lo, hi) of this call: [begin, end) clamped to [0, extent) (what parallelFor loops over).
  std::pair<Value, Value> rangeBounds(Value extent) {
    Value lo = arith::MinSIOp::create(b_, arith::MaxSIOp::create(b_, begin_, c64(0)), extent);
    Value hi = arith::MinSIOp::create(b_, arith::MaxSIOp::create(b_, end_, lo), extent);
    return {lo, hi};
  }

  /// The row-major multi-index of `item` over `dims` (item < product(dims), so every dim is >= 1).
  SmallVector<Value> decompose(Value item, ArrayRef<Value> dims) {
    SmallVector<Value> ivs(dims.size());
    for (int64_t d = (int64_t)dims.size() - 1; d >= 0; --d) {
      if (d == 0) {
        ivs[0] = item;
        break;
      }
      ivs[d] = arith::RemUIOp::create(b_, item, dims[d]);
      item = arith::DivUIOp::create(b_, item, dims[d]);
    }
    return ivs;
  }

  //===--------------------------------------------------------------------===//
  // Scalars, dims and memory
  //===--------------------------------------------------------------------===//
  LogicalResult fail(Operation *op, const llvm::Twine &why) {
    error_ = (describeOp(op) + ": " + why).str();
    return failure();
  }
  Value c64(int64_t v) { return arith::ConstantIntOp::create(b_, i64_, v); }
  Value cf32(double v) { return arith::ConstantFloatOp::create(b_, cast<FloatType>(f32_), llvm::APFloat((float)v)); }
  Value cf(Type t, double v) {
    return t.isF64() ? (Value)arith::ConstantFloatOp::create(b_, cast<FloatType>(t), llvm::APFloat(v)) : cf32(v);
  }
  Value add(Value a, Value c) { return arith::AddIOp::create(b_, a, c); }
  Value mul(Value a, Value c) { return arith::MulIOp::create(b_, a, c); }
  Value sub(Value a, Value c) { return arith::SubIOp::create(b_, a, c); }

  Value symbolValue(unsigned index) {
    auto it = symbolCache_.find(index);
    if (it != symbolCache_.end())
      return it->second;
    OpBuilder::InsertionGuard guard(b_);
    b_.setInsertionPointAfterValue(symbols_);
    Value p = LLVM::GEPOp::create(b_, ptrTy_, i64_, symbols_, ArrayRef<LLVM::GEPArg>{(int32_t)index});
    Value v = LLVM::LoadOp::create(b_, i64_, p);
    symbolCache_[index] = v;
    return v;
  }

  FailureOr<Value> dimValue(Operation *op, const SymExpr &e) {
    Value v = c64(e.getConstant());
    for (const auto &[name, coeff] : e.terms()) {
      auto it = symbolIndex_.find(name);
      if (it == symbolIndex_.end()) {
        (void)fail(op, "symbol '" + name + "' is not one of the step function's symbols");
        return failure();
      }
      v = add(v, mul(c64(coeff), symbolValue(it->second)));
    }
    return v;
  }

  FailureOr<Tensor> makeTensor(Operation *op, Value ptr, Type type) {
    Tensor t;
    t.ptr = ptr;
    std::string reason;
    FailureOr<SymShape> shape = kiln::ir::getSymShape(type, &reason);
    if (failed(shape)) {
      (void)fail(op, reason);
      return failure();
    }
    t.shape = *shape;
    if (failed(setElementType(op, t, cast<ShapedType>(type).getElementType())))
      return failure();
    for (const SymExpr &e : t.shape) {
      FailureOr<Value> d = dimValue(op, e);
      if (failed(d))
        return failure();
      t.dims.push_back(*d);
    }
    return t;
  }

  /// The tensor's element type and how it sits in memory (bf16 as i16, i1 as i8).
  LogicalResult setElementType(Operation *op, Tensor &t, Type elem) {
    t.elem = elem;
    if (t.elem.isF32() || t.elem.isF16() || t.elem.isInteger(64) || t.elem.isInteger(32))
      t.storage = t.elem;
    else if (t.elem.isBF16())
      t.storage = b_.getI16Type();
    else if (t.elem.isInteger(1))
      t.storage = b_.getI8Type();
    else
      return fail(op, "element type " + printed(t.elem) + " is not supported by the CPU backend");
    return success();
  }

  Type computeType(const Tensor &t) const { return t.isFloat() ? f32_ : i64_; }

  Value address(const Tensor &t, Value offset) {
    return LLVM::GEPOp::create(b_, ptrTy_, t.storage, t.ptr, ValueRange{offset});
  }
  Value loadRaw(const Tensor &t, Value offset) { return LLVM::LoadOp::create(b_, t.storage, address(t, offset)); }
  void storeRaw(const Tensor &t, Value offset, Value v) { LLVM::StoreOp::create(b_, v, address(t, offset)); }

  /// Loads an element widened to its compute type (f32 or i64).
  Value load(const Tensor &t, Value offset) {
    Value v = loadRaw(t, offset);
    if (t.elem.isF16())
      return arith::ExtFOp::create(b_, f32_, v);
    if (t.elem.isBF16()) { // bf16 is the top half of an f32
      Value bits = arith::ShLIOp::create(b_, arith::ExtUIOp::create(b_, b_.getI32Type(), v),
                                         arith::ConstantIntOp::create(b_, b_.getI32Type(), 16));
      return arith::BitcastOp::create(b_, f32_, bits);
    }
    if (t.elem.isInteger(32))
      return arith::ExtSIOp::create(b_, i64_, v);
    if (t.elem.isInteger(1))
      return arith::ExtUIOp::create(b_, i64_, v);
    return v;
  }

  /// Stores a compute-typed value, rounding to the element type (to nearest even for f16 and bf16).
  void store(const Tensor &t, Value offset, Value v) {
    v = castTo(v, computeType(t));
    if (t.elem.isF16())
      v = arith::TruncFOp::create(b_, b_.getF16Type(), v);
    else if (t.elem.isBF16())
      v = f32ToBf16Bits(v);
    else if (t.elem.isInteger(32))
      v = arith::TruncIOp::create(b_, b_.getI32Type(), v);
    else if (t.elem.isInteger(1))
      v = arith::ExtUIOp::create(b_, b_.getI8Type(), arith::CmpIOp::create(b_, arith::CmpIPredicate::ne, v, c64(0)));
    storeRaw(t, offset, v);
  }

  /// f32 -> bf16 bits, round to nearest even, NaN stays a (quiet) NaN. Done on the bits so it does not
  /// depend on the target's bf16 support or a compiler-rt helper.
  Value f32ToBf16Bits(Value v) {
    Type i32 = b_.getI32Type();
    auto c32 = [&](int64_t x) { return arith::ConstantIntOp::create(b_, i32, x); };
    Value bits = arith::BitcastOp::create(b_, i32, v);
    Value lsb = arith::AndIOp::create(b_, arith::ShRUIOp::create(b_, bits, c32(16)), c32(1));
    Value rounded = arith::ShRUIOp::create(b_, add(bits, add(lsb, c32(0x7FFF))), c32(16));
    Value isNan = arith::CmpFOp::create(b_, arith::CmpFPredicate::UNO, v, v);
    Value r = arith::SelectOp::create(b_, isNan, c32(0x7FC0), rounded);
    return arith::TruncIOp::create(b_, b_.getI16Type(), r);
  }

  /// Between the two compute types: i64 -> f32 rounds, f32 -> i64 truncates toward zero (a C cast).
  Value castTo(Value v, Type to) {
    Type from = v.getType();
    if (from == to)
      return v;
    if (isa<FloatType>(from) && isa<FloatType>(to))
      return to.getIntOrFloatBitWidth() > from.getIntOrFloatBitWidth() ? (Value)arith::ExtFOp::create(b_, to, v)
                                                                        : (Value)arith::TruncFOp::create(b_, to, v);
    if (isa<FloatType>(to))
      return arith::SIToFPOp::create(b_, to, v);
    if (isa<FloatType>(from))
      return arith::FPToSIOp::create(b_, to, v);
    return to.getIntOrFloatBitWidth() > from.getIntOrFloatBitWidth() ? (Value)arith::ExtSIOp::create(b_, to, v)
                                                                      : (Value)arith::TruncIOp::create(b_, to, v);
  }

  /// x / y on i64 that cannot trap: a kernel never fails, and x86's idiv faults on y = 0 and on
  /// INT64_MIN / -1. y = 0 gives 0; y = -1 gives -x (wrapping).
  Value safeDiv(Value x, Value y) {
    Value zero = arith::CmpIOp::create(b_, arith::CmpIPredicate::eq, y, c64(0));
    Value minusOne = arith::CmpIOp::create(b_, arith::CmpIPredicate::eq, y, c64(-1));
    Value special = arith::OrIOp::create(b_, zero, minusOne);
    Value q = arith::DivSIOp::create(b_, x, arith::SelectOp::create(b_, special, c64(1), y));
    Value r = arith::SelectOp::create(b_, minusOne, sub(c64(0), x), q);
    return arith::SelectOp::create(b_, zero, c64(0), r);
  }

  /// 1 (i1) when v != 0.
  Value nonzero(Value v) {
    if (isa<FloatType>(v.getType()))
      return arith::CmpFOp::create(b_, arith::CmpFPredicate::UNE, v, cf(v.getType(), 0.0));
    return arith::CmpIOp::create(b_, arith::CmpIPredicate::ne, v, arith::ConstantIntOp::create(b_, v.getType(), 0));
  }

  SmallVector<Value> rowMajorStrides(ArrayRef<Value> dims) {
    SmallVector<Value> strides(dims.size());
    Value s = c64(1);
    for (int64_t i = (int64_t)dims.size() - 1; i >= 0; --i) {
      strides[i] = s;
      s = mul(s, dims[i]);
    }
    return strides;
  }

  /// The tensor's element strides: row-major, except that a KV-cache view's axis 2 spans rowCapacity rows.
  SmallVector<Value> stridesOf(const Tensor &t) {
    if (t.rowCapacity <= 0)
      return rowMajorStrides(t.dims);
    SmallVector<Value> dims(t.dims.begin(), t.dims.end());
    dims[2] = c64(t.rowCapacity);
    return rowMajorStrides(dims);
  }

  Value product(ArrayRef<Value> dims) {
    Value p = c64(1);
    for (Value d : dims)
      p = mul(p, d);
    return p;
  }

  //===--------------------------------------------------------------------===//
  // Explicit <vw_ x f32> vectors (f32 storage only; 8 lanes, 16 where the attention kernel asks): LLVM's own
  // vectorizers give up on the attention loops once they are fully unrolled and their operands hoisted, so hot
  // loops spell the vectors out.
  //===--------------------------------------------------------------------===//
  static constexpr int64_t kVec = 8;
  /// The lanes of the explicit vectors below: kVec, or 16 where a kernel asks (wideVectors_: an AVX-512 target).
  int64_t vw_ = kVec;
  Type vecType() { return VectorType::get({vw_}, f32_); }
  Value zeroVec() { return arith::ConstantOp::create(b_, DenseElementsAttr::get(cast<ShapedType>(vecType()), 0.0f)); }
  Value loadVec(const Tensor &t, Value offset) { return LLVM::LoadOp::create(b_, vecType(), address(t, offset), 4); }
  void storeVec(const Tensor &t, Value offset, Value v) { LLVM::StoreOp::create(b_, v, address(t, offset), 4); }
  Value splat(Value x) { return splatAs(x, cast<VectorType>(vecType())); }
  Value splatAs(Value x, VectorType t) {
    Value v = LLVM::PoisonOp::create(b_, t);
    v = LLVM::InsertElementOp::create(b_, v, x, c64(0));
    return LLVM::ShuffleVectorOp::create(b_, v, v, ArrayRef<int32_t>(SmallVector<int32_t>(t.getNumElements(), 0)));
  }
  /// The sum of the lanes in a fixed tree order: (0+4, 1+5, 2+6, 3+7), then (0+2, 1+3), then 0+1.
  Value horizontalSum(Value v) { return horizontal(v, false); }
  /// The largest of the lanes (NaN if any is).
  Value horizontalMax(Value v) { return horizontal(v, true); }
  /// The largest of the lanes by maxAsX86 (a NaN lane may be passed over): the attention kernel's.
  Value horizontalMaxAsX86(Value v) { return horizontal(v, true, true); }
  /// a > b ? a : b (scalars or vectors): one maxps / maxss; NaN-propagating arith.maximumf costs a compare and
  /// blends more, in the attention kernel's serial chain. NaN scores still reach the output through exp.
  Value maxAsX86(Value a, Value b) {
    return arith::SelectOp::create(b_, arith::CmpFOp::create(b_, arith::CmpFPredicate::OGT, a, b), a, b);
  }
  /// (Any power-of-two lane count; integer lanes are summed.)
  Value horizontal(Value v, bool max, bool asX86 = false) {
    auto type = cast<VectorType>(v.getType());
    const int64_t lanes = type.getNumElements();
    const bool integer = isa<IntegerType>(type.getElementType());
    for (int64_t width = lanes / 2; width >= 1; width /= 2) {
      SmallVector<int32_t> mask;
      for (int64_t i = 0; i < lanes; ++i)
        mask.push_back(static_cast<int32_t>(i < width ? i + width : i));
      Value hi = LLVM::ShuffleVectorOp::create(b_, v, v, ArrayRef<int32_t>(mask));
      v = max       ? (asX86 ? maxAsX86(v, hi) : (Value)arith::MaximumFOp::create(b_, v, hi))
          : integer ? (Value)arith::AddIOp::create(b_, v, hi)
                    : (Value)arith::AddFOp::create(b_, v, hi);
    }
    return LLVM::ExtractElementOp::create(b_, v, c64(0));
  }
  /// n rounded down to a multiple of the vector width (n >= 0).
  Value floorToVec(Value n) { return arith::AndIOp::create(b_, n, c64(~(vw_ - 1))); }
  /// for iv in [lb, ub) step vw_ with loop-carried values (the last iv may be within vw_ of ub).
  SmallVector<Value> forLoopVec(Value lb, Value ub, ValueRange init,
                                llvm::function_ref<SmallVector<Value>(Value, ValueRange)> body) {
    return forLoopStep(lb, ub, c64(vw_), init, body);
  }

  /// Strides that read `t` as if broadcast (numpy, right-aligned) to a shape of rank `rank`: 0 along a dim
  /// that is the constant 1 (the verifier allows a dim to stretch only then) and along missing leading dims.
  SmallVector<Value> broadcastStrides(const Tensor &t, size_t rank) {
    SmallVector<Value> own = rowMajorStrides(t.dims), strides(rank, c64(0));
    size_t offset = rank - t.dims.size();
    for (size_t i = 0; i < t.dims.size(); ++i)
      if (!t.shape[i].isOne())
        strides[offset + i] = own[i];
    return strides;
  }

  //===--------------------------------------------------------------------===//
  // Loops
  //===--------------------------------------------------------------------===//
  /// for iv in [lb, ub): body(iv)
  void forLoop(Value lb, Value ub, llvm::function_ref<void(Value)> body) {
    auto loop = scf::ForOp::create(b_, lb, ub, c64(1));
    OpBuilder::InsertionGuard guard(b_);
    b_.setInsertionPoint(loop.getBody()->getTerminator());
    body(loop.getInductionVar());
  }

  /// for iv in [lb, ub) with loop-carried values; body returns the next values. Returns the final ones.
  SmallVector<Value> forLoop(Value lb, Value ub, ValueRange init,
                             llvm::function_ref<SmallVector<Value>(Value, ValueRange)> body) {
    return forLoopStep(lb, ub, c64(1), init, body);
  }
  /// forLoop by `step` (the last iv may be within step of ub).
  SmallVector<Value> forLoopStep(Value lb, Value ub, Value step, ValueRange init,
                                 llvm::function_ref<SmallVector<Value>(Value, ValueRange)> body) {
    auto loop = scf::ForOp::create(b_, lb, ub, step, init,
                                   [&](OpBuilder &nested, Location, Value iv, ValueRange args) {
                                     OpBuilder::InsertionGuard guard(b_);
                                     b_.setInsertionPoint(nested.getInsertionBlock(), nested.getInsertionPoint());
                                     SmallVector<Value> next = body(iv, args);
                                     scf::YieldOp::create(b_, next);
                                   });
    return SmallVector<Value>(loop.getResults());
  }

  /// Nest over `dims` in row-major order (the last dim innermost). offsets[k] is the element offset of
  /// accesses[k] at the current index; the output access is written by the callback.
  using MapFn = llvm::function_ref<void(ArrayRef<Value> ivs, ArrayRef<Value> offsets)>;
  void nest(ArrayRef<Value> dims, ArrayRef<Access> accesses, MapFn fn) {
    SmallVector<Value> ivs, offsets;
    for (const Access &a : accesses)
      offsets.push_back(a.base);
    nestLevel(dims, accesses, 0, ivs, offsets, fn);
  }
  void nestLevel(ArrayRef<Value> dims, ArrayRef<Access> accesses, size_t d, SmallVector<Value> &ivs,
                 SmallVector<Value> offsets, MapFn fn) {
    if (d == dims.size()) {
      fn(ivs, offsets);
      return;
    }
    forLoop(c64(0), dims[d], [&](Value iv) {
      SmallVector<Value> inner;
      for (size_t k = 0; k < accesses.size(); ++k)
        inner.push_back(add(offsets[k], mul(iv, accesses[k].strides[d])));
      ivs.push_back(iv);
      nestLevel(dims, accesses, d + 1, ivs, inner, fn);
      ivs.pop_back();
    });
  }

  /// nest() with its leading `parallelDims` dims flattened into the kernel's parallel loop (-1: all but the
  /// last dim, or the only one; 0: not parallel).
  void parallelNest(ArrayRef<Value> dims, ArrayRef<Access> accesses, int64_t parallelDims, MapFn fn) {
    size_t outer = parallelDims >= 0 ? size_t(parallelDims) : dims.size() <= 1 ? dims.size() : dims.size() - 1;
    if (outer == 0) {
      nest(dims, accesses, fn);
      return;
    }
    Value cost = mul(product(dims.drop_front(outer)), c64((int64_t)accesses.size()));
    parallelFor(product(dims.take_front(outer)), cost, [&](Value item) {
      SmallVector<Value> ivs = decompose(item, dims.take_front(outer)), offsets;
      for (const Access &a : accesses) {
        Value o = a.base;
        for (size_t d = 0; d < outer; ++d)
          o = add(o, mul(ivs[d], a.strides[d]));
        offsets.push_back(o);
      }
      nestLevel(dims, accesses, outer, ivs, offsets, fn);
    });
  }

  using ScalarFn = llvm::function_ref<Value(ArrayRef<Value> ins, ArrayRef<Value> ivs)>;
  /// The general mechanism: out[at out's access] = fn(ins[at their accesses], ivs) over `dims`, the
  /// leading dims in the kernel's parallel loop (parallelNest).
  /// raw: copy storage bits (data movement; fn gets and returns raw values), else compute-typed values.
  void emitMap(ArrayRef<Value> dims, ArrayRef<Access> ins, const Access &out, bool raw, ScalarFn fn,
               int64_t parallelDims = -1) {
    SmallVector<Access> all(ins.begin(), ins.end());
    all.push_back(out);
    parallelNest(dims, all, parallelDims, [&](ArrayRef<Value> ivs, ArrayRef<Value> offsets) {
      SmallVector<Value> values;
      for (size_t k = 0; k < ins.size(); ++k)
        values.push_back(raw ? loadRaw(*ins[k].t, offsets[k]) : load(*ins[k].t, offsets[k]));
      Value r = fn(values, ivs);
      if (raw)
        storeRaw(*out.t, offsets.back(), r);
      else
        store(*out.t, offsets.back(), r);
    });
  }

  Access contiguous(const Tensor &t) { return {&t, c64(0), rowMajorStrides(t.dims)}; }

  /// Elementwise over the result shape with every input broadcast to it. When no input broadcasts and
  /// the function ignores the index, the nest collapses to one loop over all elements.
  void emitBroadcastMap(const Tensor &out, ArrayRef<const Tensor *> ins, bool usesIndex, bool raw, ScalarFn fn) {
    bool flat = !usesIndex && llvm::all_of(ins, [&](const Tensor *t) { return t->shape == out.shape; });
    if (flat) {
      Value n = product(out.dims), one = c64(1);
      SmallVector<Access> accesses;
      for (const Tensor *t : ins)
        accesses.push_back({t, c64(0), {one}});
      emitMap({n}, accesses, {&out, c64(0), {one}}, raw, fn);
      return;
    }
    SmallVector<Access> accesses;
    for (const Tensor *t : ins)
      accesses.push_back({t, c64(0), broadcastStrides(*t, out.dims.size())});
    emitMap(out.dims, accesses, contiguous(out), raw, fn);
  }

  //===--------------------------------------------------------------------===//
  // Scalar functions of the elementwise ops
  //===--------------------------------------------------------------------===//
  Value sigmoid(Value x) {
    Value e = math::ExpOp::create(b_, arith::NegFOp::create(b_, x));
    return arith::DivFOp::create(b_, cf32(1.0), arith::AddFOp::create(b_, cf32(1.0), e));
  }
  Value mulf(Value a, Value c) { return arith::MulFOp::create(b_, a, c); }
  Value gelu(Value x) {
    Value e = math::ErfOp::create(b_, mulf(x, cf32(1.0 / std::sqrt(2.0))));
    return mulf(mulf(x, cf32(0.5)), arith::AddFOp::create(b_, cf32(1.0), e));
  }
  Value geluTanh(Value x) {
    Value x3 = mulf(mulf(x, x), x);
    Value inner = mulf(cf32(std::sqrt(2.0 / 3.14159265358979323846)),
                       arith::AddFOp::create(b_, x, mulf(cf32(0.044715), x3)));
    Value t = math::TanhOp::create(b_, inner);
    return mulf(mulf(x, cf32(0.5)), arith::AddFOp::create(b_, cf32(1.0), t));
  }
  static void addUnaryRows(ir::OpTable<CpuRule> &t);
  /// Rows of the op table: an op family's emitter (and which buffers it takes as KV-cache views), or for an
  /// elementwise op its element functions on f32 and on i64 values.
  using FamilyFn = LogicalResult (KernelEmitter::*)(Operation *, const OpTensors &);
  using ElementFn = Value (*)(KernelEmitter &, ArrayRef<Value>);
  static CpuRule family(FamilyFn emit, KvViews kvViews = KvViews::None) { return {emit, nullptr, nullptr, kvViews}; }
  static CpuRule scalar(ElementFn onFloat, ElementFn onInteger = nullptr) {
    return {&KernelEmitter::emitScalar, onFloat, onInteger, KvViews::None};
  }

  Value compare(ir::CompareOp op, Value x, Value y) {
    Value r;
    if (isa<FloatType>(x.getType())) {
      // Ordered predicates except ne, which is true when either side is NaN (like C's !=).
      static constexpr arith::CmpFPredicate kFloat[] = {arith::CmpFPredicate::OEQ, arith::CmpFPredicate::UNE,
                                                        arith::CmpFPredicate::OLT, arith::CmpFPredicate::OLE,
                                                        arith::CmpFPredicate::OGT, arith::CmpFPredicate::OGE};
      r = arith::CmpFOp::create(b_, kFloat[static_cast<int>(op.getPredicate())], x, y);
    } else {
      static constexpr arith::CmpIPredicate kInt[] = {arith::CmpIPredicate::eq,  arith::CmpIPredicate::ne,
                                                      arith::CmpIPredicate::slt, arith::CmpIPredicate::sle,
                                                      arith::CmpIPredicate::sgt, arith::CmpIPredicate::sge};
      r = arith::CmpIOp::create(b_, kInt[static_cast<int>(op.getPredicate())], x, y);
    }
    return arith::ExtUIOp::create(b_, i64_, r);
  }

  /// kiln.convert between compute types: to i1 is `!= 0`; float -> int truncates toward zero; the
  /// rounding to f16 / bf16 / i32 happens in store().
  Value convert(Value x, const Tensor &out) {
    if (out.elem.isInteger(1))
      return arith::ExtUIOp::create(b_, i64_, nonzero(x));
    return castTo(x, computeType(out));
  }

  //===--------------------------------------------------------------------===//
  // Op families
  //===--------------------------------------------------------------------===//
  FailureOr<int64_t> axisOf(Operation *op, int64_t axis, size_t rank) {
    std::string reason;
    FailureOr<int64_t> a = ir::normalizeAxis(axis, rank, reason);
    if (failed(a))
      (void)fail(op, reason);
    return a;
  }
  // The op families, one emitter each (a row of the op table names it): the op and its tensors.
  LogicalResult emitScalar(Operation *op, const OpTensors &bufs);
  LogicalResult emitCompare(Operation *op, const OpTensors &bufs);
  LogicalResult emitSelect(Operation *op, const OpTensors &bufs);
  LogicalResult emitConvert(Operation *op, const OpTensors &bufs);
  LogicalResult emitSym(Operation *op, const OpTensors &bufs);
  LogicalResult emitIota(Operation *op, const OpTensors &bufs);
  LogicalResult emitReshape(Operation *op, const OpTensors &bufs);
  LogicalResult emitTranspose(Operation *op, const OpTensors &bufs);
  LogicalResult emitBroadcastTo(Operation *op, const OpTensors &bufs);
  LogicalResult emitSlice(Operation *op, const OpTensors &bufs);
  LogicalResult emitTail(Operation *op, const OpTensors &bufs);
  /// The result = the input's rows along the op's axis (`axisAttr`) from first(axis) on (slice, tail); `raw`
  /// copies storage bits.
  LogicalResult emitRowsFrom(Operation *op, int64_t axisAttr, const OpTensors &bufs, bool raw,
                             llvm::function_ref<Value(int64_t axis)> first);
  LogicalResult emitConcat(Operation *op, const OpTensors &bufs);
  template <typename OpT> LogicalResult emitReduceOp(Operation *op, const OpTensors &bufs) {
    FailureOr<int64_t> axis = axisOf(op, cast<OpT>(op).getAxis(), bufs.ins[0].dims.size());
    return failed(axis) ? failure() : emitReduce(op, bufs.ins[0], bufs.outs[0], *axis);
  }
  LogicalResult emitReduce(Operation *op, const Tensor &in, const Tensor &out, int64_t axis);
  LogicalResult emitSoftmax(Operation *op, const OpTensors &bufs);
  LogicalResult emitMatmul(Operation *op, const OpTensors &bufs);
  LogicalResult emitGather(Operation *op, const OpTensors &bufs);
  // 16-bit weights read in place (f32 activations and results, f32 accumulation): see their definitions.
  LogicalResult emitWideningMatmul(const Tensor &a, const Tensor &w, const Tensor &out, Value M, Value K, Value N,
                                   bool transposed, Value pathRows);
  Value matmulPathRows(Operation *op, Value rows);
  static constexpr int64_t kWide = 16;
  Type wideType() { return VectorType::get({kWide}, f32_); }
  Value loadWidened(const Tensor &t, Value offset);
  Value wideSum(Value v);
  Value wideSplat(Value x);
  void emitWideningGemvGroup(const Tensor &a, const Tensor &w, const Tensor &out, Value M, Value K, Value N,
                             bool transposed, Value group);
  void emitGemvRows(const Tensor &a, const Tensor &w, const Tensor &out, Value i, Value j, int64_t rows, Value K,
                    Value N);
  void emitWidenRun(const Tensor &src, Value srcOff, Value dst, Value dstOff, Value n);
  /// Weight rows (columns of a [K, N] weight) per widened / dequantized tile: kTileElements / K, a multiple of
  /// 16, at least 16, at most N and at most the multiple of 16 above N / 2.
  Value sgemmTileRows(Value K, Value N);
  /// The range of a matmul that takes a GEMV for few rows (`few`: pathRows <= gemvMaxRows; items: column groups
  /// of groupRows) and sgemm tiles otherwise (items: tiles of `tile` columns); sets rangeFlags_ for the tiles.
  struct GemvOrTiles {
    Value few, tile, extent;
  };
  GemvOrTiles gemvOrTiles(Value pathRows, int64_t gemvMaxRows, int64_t groupRows, Value K, Value N);
  void emitSgemmTile(const Tensor &a, const Tensor &w, const Tensor &out, Value scratch, Value j0, Value nt, Value M,
                     Value K, Value N, bool transposed);
  void emitSgemmTileItem(const Tensor &a, const Tensor &w, const Tensor &out, Value tile, Value t, Value M, Value K,
                         Value N, bool transposed);
  // Block-quantized weights (--weights q8_0|q4_0): see their definitions.
  LogicalResult emitQuantMatmul(const Tensor &a, const Tensor &w, const Tensor &out, Value M, Value K, Value N,
                                Value pathRows);
  Value quantScales(const Tensor &w);
  Value loadQuantBlock(const Tensor &w, Value block);
  Value blockScale(const Tensor &w, Value block);
  std::pair<Value, Value> quantRowBlocks(const Tensor &w, Value row);
  void emitDequantRun(const Tensor &src, Value srcOff, Value dst, Value dstOff, Value n);
  Value integerDot(Value init, Value weights, Value activations, QuantFormat format);
  Value splatConst(VectorType type, int64_t v);
  void ifElse(Value cond, llvm::function_ref<void()> then, llvm::function_ref<void()> otherwise);
  /// The GEMV's quantized activation rows (emitQuantizeActivations's scratch, three views of it).
  struct QuantActivations {
    Tensor quants, scales, sums;
  };
  QuantActivations quantActivations(Value scratch, Value M, Value K);
  struct QuantActivationBlock {
    Value quants, scale, correction;
  };
  QuantActivationBlock loadActivationBlock(const QuantActivations &act, Value ab, QuantFormat format);
  void emitQuantizeActivations(const Tensor &a, Value row0, Value M, Value K, Value scratch);
  std::pair<Value, Value> quantizeActivationBlock(Value x);
  void emitRoundTripActivations(const Tensor &a, Value row0, Value M, Value K, Value dst);
  void emitQuantGemvRow(const Tensor &w, const Tensor &out, const QuantActivations &act, Value nb, Value N, Value i,
                        Value j, Value actRow);
  void emitQuantGemvGroupRows(const Tensor &w, const Tensor &out, const QuantActivations &act, Value nb, Value N,
                              Value i, Value j0);
  void emitQuantGemvGroup(const Tensor &w, const Tensor &out, Value scratch, Value M, Value K, Value N, Value group);
  // The int8 GEMM of many rows: weight rows per panel (the i32 lanes of one vector) and activation rows per tile.
  int64_t quantGemmLanes() const { return dotIsa_ == DotIsa::Vnni512 ? 16 : 8; }
  int64_t quantGemmTileRows() const { return dotIsa_ == DotIsa::Vnni512 ? 8 : 4; }
  SmallVector<Value> loadQuantPanelChunks(const Tensor &w, Value j0, Value nb, Value blk);
  Value loadQuantPanelScales(const Tensor &w, Value j0, Value nb, Value blk);
  void emitQuantGemmTile(const Tensor &w, const Tensor &out, const QuantActivations &act, Value nb, Value N, Value i,
                         Value actRow, Value j0, int64_t rows);
  void emitQuantGemmItem(const Tensor &w, const Tensor &out, const QuantActivations &act, Value actRow0, Value i0,
                         Value i1, Value nb, Value N, Value j0);
  Value emitMallocOrNull(Value bytes);
  /// The int8 GEMM where the target has VNNI; elsewhere (measured slower than OpenBLAS) the dequantized tiles
  /// and sgemm, with the activations quantized and dequantized as the int8 kernels see them.
  bool quantGemmInt8() const { return dotIsa_ == DotIsa::Vnni || dotIsa_ == DotIsa::Vnni512; }
  LogicalResult emitQuantMatmulSgemm(const Tensor &a, const Tensor &w, const Tensor &out, Value M, Value K, Value N,
                                     Value pathRows);
  void emitQuantSgemmItem(const Tensor &a, const Tensor &w, const Tensor &out, Value roundTrip, Value rowBuffer,
                          Value tile, Value item, Value M, Value K, Value N);
  LogicalResult emitNorm(Operation *op, const OpTensors &bufs);
  LogicalResult emitAddNorm(Operation *op, const OpTensors &bufs);
  LogicalResult emitNormRows(Operation *op, const Tensor &x, const Tensor *residual, const Tensor *h,
                             const Tensor &w, const Tensor *bias, const Tensor &y, double eps, bool rms,
                             bool unitOffset);
  LogicalResult emitRope(Operation *op, const OpTensors &bufs);
  LogicalResult emitAttention(Operation *op, const OpTensors &bufs);
  struct AttentionRow;
  /// Query rows computed together by the f32 attention path: per row its head, query index, element offsets
  /// of the query and output rows and visible keys [lo, hi); the union of those keys [jLo, jHi).
  struct AttentionRows {
    SmallVector<Value> h, i, qBase, oBase, lo, hi;
    Value jLo, jHi;
  };
  /// Query rows per item of the attention kernel's parallel loop (the f32 path computes them at once).
  static constexpr int64_t kRows = 4;
  std::pair<Value, Value> attentionBounds(const AttentionRow &a, Value i);
  Value attentionScore(const AttentionRow &a, Value j);
  SmallVector<Value> attentionKey(const AttentionRow &a, Value j, Value m, Value l);
  Value sumLanesOfEach(ArrayRef<Value> v);
  Value attentionDots(const AttentionRow &a, Value qBase, ArrayRef<Value> keyRows);
  SmallVector<Value> attentionRowsBlock(const AttentionRow &a, const AttentionRows &rows, Value j0, ValueRange ml,
                                        bool last);
  void attentionRowsValues(const AttentionRow &a, const AttentionRows &rows, ArrayRef<Value> vRows,
                           ArrayRef<Value> corrs);
  AttentionRows attentionRows(const AttentionRow &a, Value kvHead, Value group, ArrayRef<Value> us);
  void emitAttentionRows(const AttentionRow &a, const Tensor &out, Value kvHead, Value group, ArrayRef<Value> us);
  void emitAttentionRowScalar(AttentionRow &a, const Tensor &out, Value kvHead, Value group, Value u);
  Value expNonPositive(Value x);

  ImplicitLocOpBuilder &b_;
  Value symbols_, begin_, end_;
  Block *entry_;
  Value rangeExtent_, rangeGrain_;
  Value rangeFlags_; // set: the range's flags computed from the symbols (else callsBlas_ decides)
  bool callsBlas_ = false, rangeMisplaced_ = false, wideVectors_ = false;
  const llvm::StringMap<unsigned> &symbolIndex_;
  std::string &error_;
  DotIsa dotIsa_;
  llvm::DenseMap<unsigned, Value> symbolCache_;
  Type ptrTy_, f32_, i64_, accTy_;
};

//===----------------------------------------------------------------------===//
// Elementwise families: one loop over the result with the inputs broadcast (emitBroadcastMap)
//===----------------------------------------------------------------------===//

/// A unary or binary op: its row's element function, in the result's compute type.
LogicalResult KernelEmitter::emitScalar(Operation *op, const OpTensors &bufs) {
  const CpuRule &rule = *table().find(op);
  ArrayRef<Tensor> ins = bufs.ins;
  const Tensor &out = bufs.outs[0];
  if (!out.isFloat() && !rule.onInteger)
    return fail(op, "is not defined on integer tensors in the CPU backend");
  SmallVector<const Tensor *> inputs;
  for (const Tensor &t : ins)
    inputs.push_back(&t);
  Type t = computeType(out);
  auto fn = out.isFloat() ? rule.onFloat : rule.onInteger;
  emitBroadcastMap(out, inputs, /*usesIndex=*/false, /*raw=*/false, [&](ArrayRef<Value> v, ArrayRef<Value>) {
    SmallVector<Value, 2> args;
    for (Value x : v)
      args.push_back(castTo(x, t));
    return fn(*this, args);
  });
  return success();
}

/// kiln.compare computes in f32 when either side is a float, else in i64; the result is 0 / 1.
LogicalResult KernelEmitter::emitCompare(Operation *compareOp, const OpTensors &bufs) {
  auto op = cast<ir::CompareOp>(compareOp);
  ArrayRef<Tensor> ins = bufs.ins;
  const Tensor &out = bufs.outs[0];
  bool anyFloat = llvm::any_of(ins, [](const Tensor &t) { return t.isFloat(); });
  Type opType = anyFloat ? f32_ : i64_;
  emitBroadcastMap(out, {&ins[0], &ins[1]}, false, false, [&](ArrayRef<Value> v, ArrayRef<Value>) {
    return compare(op, castTo(v[0], opType), castTo(v[1], opType));
  });
  return success();
}

LogicalResult KernelEmitter::emitSelect(Operation *, const OpTensors &bufs) {
  ArrayRef<Tensor> ins = bufs.ins;
  const Tensor &out = bufs.outs[0];
  Type t = computeType(out);
  emitBroadcastMap(out, {&ins[0], &ins[1], &ins[2]}, false, false, [&](ArrayRef<Value> v, ArrayRef<Value>) {
    return (Value)arith::SelectOp::create(b_, nonzero(v[0]), castTo(v[1], t), castTo(v[2], t));
  });
  return success();
}

LogicalResult KernelEmitter::emitConvert(Operation *, const OpTensors &bufs) {
  const Tensor &in = bufs.ins[0], &out = bufs.outs[0];
  emitBroadcastMap(out, {&in}, false, false, [&](ArrayRef<Value> v, ArrayRef<Value>) { return convert(v[0], out); });
  return success();
}

LogicalResult KernelEmitter::emitSym(Operation *symOp, const OpTensors &bufs) {
  auto op = cast<ir::SymOp>(symOp);
  const Tensor &out = bufs.outs[0];
  auto it = symbolIndex_.find(op.getSymbol());
  if (it == symbolIndex_.end())
    return fail(op, "symbol '" + op.getSymbol() + "' is not one of the step function's symbols");
  store(out, c64(0), symbolValue(it->second));
  return success();
}

LogicalResult KernelEmitter::emitIota(Operation *iotaOp, const OpTensors &bufs) {
  auto op = cast<ir::IotaOp>(iotaOp);
  const Tensor &out = bufs.outs[0];
  FailureOr<int64_t> dim = axisOf(op, op.getDim(), out.dims.size());
  if (failed(dim))
    return failure();
  emitBroadcastMap(out, {}, /*usesIndex=*/true, false, [&](ArrayRef<Value>, ArrayRef<Value> ivs) { return ivs[*dim]; });
  return success();
}

//===----------------------------------------------------------------------===//
// Data movement: raw copies through permuted or offset strides
//===----------------------------------------------------------------------===//

namespace {
Value identity(ArrayRef<Value> v, ArrayRef<Value>) { return v[0]; }
} // namespace

LogicalResult KernelEmitter::emitReshape(Operation *, const OpTensors &bufs) {
  const Tensor &in = bufs.ins[0], &out = bufs.outs[0];
  Value n = product(out.dims), one = c64(1);
  emitMap({n}, {{&in, c64(0), {one}}}, {&out, c64(0), {one}}, /*raw=*/true, identity);
  return success();
}

LogicalResult KernelEmitter::emitTranspose(Operation *op, const OpTensors &bufs) {
  const Tensor &in = bufs.ins[0], &out = bufs.outs[0];
  SmallVector<Value> own = rowMajorStrides(in.dims), strides;
  for (int64_t p : cast<ir::TransposeOp>(op).getPermutation())
    strides.push_back(own[p]);
  emitMap(out.dims, {{&in, c64(0), strides}}, {&out, c64(0), stridesOf(out)}, true, identity);
  return success();
}

LogicalResult KernelEmitter::emitBroadcastTo(Operation *, const OpTensors &bufs) {
  const Tensor &in = bufs.ins[0], &out = bufs.outs[0];
  emitBroadcastMap(out, {&in}, false, true, identity);
  return success();
}

LogicalResult KernelEmitter::emitRowsFrom(Operation *op, int64_t axisAttr, const OpTensors &bufs, bool raw,
                                          llvm::function_ref<Value(int64_t axis)> first) {
  const Tensor &in = bufs.ins[0], &out = bufs.outs[0];
  FailureOr<int64_t> axis = axisOf(op, axisAttr, in.dims.size());
  if (failed(axis))
    return failure();
  SmallVector<Value> strides = rowMajorStrides(in.dims);
  emitMap(out.dims, {{&in, mul(first(*axis), strides[*axis]), strides}}, contiguous(out), raw, identity);
  return success();
}

LogicalResult KernelEmitter::emitSlice(Operation *op, const OpTensors &bufs) {
  auto slice = cast<ir::SliceOp>(op);
  // A 16-bit weight read in place (its convert folded) is widened as it is copied.
  return emitRowsFrom(op, slice.getAxis(), bufs, /*raw=*/bufs.ins[0].elem == bufs.outs[0].elem,
                      [&](int64_t) { return c64(slice.getStart()); });
}

/// The last out-dim elements along the axis: the offset is (in - out) rows, both run-time dims.
LogicalResult KernelEmitter::emitTail(Operation *op, const OpTensors &bufs) {
  const Tensor &in = bufs.ins[0], &out = bufs.outs[0];
  return emitRowsFrom(op, cast<ir::TailOp>(op).getAxis(), bufs, /*raw=*/true,
                      [&](int64_t axis) { return sub(in.dims[axis], out.dims[axis]); });
}

/// Each input is copied into its slab of the result: the result's strides, offset along the axis. An in-place
/// append (the result is a KV-cache view whose first rows are operand 0) copies only the rest. The parallel
/// loop runs over the dims before the axis, the same items for every input.
LogicalResult KernelEmitter::emitConcat(Operation *op, const OpTensors &bufs) {
  const Tensor &out = bufs.outs[0];
  FailureOr<int64_t> axis = axisOf(op, cast<ir::ConcatOp>(op).getAxis(), out.dims.size());
  if (failed(axis))
    return failure();
  SmallVector<Value> outStrides = stridesOf(out);
  Value offset = c64(0);
  for (auto [n, in] : llvm::enumerate(bufs.ins)) {
    if (!(bufs.appendInPlace && n == 0))
      emitMap(in.dims, {contiguous(in)}, {&out, mul(offset, outStrides[*axis]), outStrides}, true, identity,
              /*parallelDims=*/*axis);
    offset = add(offset, in.dims[*axis]);
  }
  return success();
}

LogicalResult KernelEmitter::emitReduce(Operation *op, const Tensor &in, const Tensor &out, int64_t axis) {
  ArrayRef<Value> dims = in.dims;
  Value outer = product(dims.take_front(axis)), size = dims[axis], inner = product(dims.drop_front(axis + 1));
  bool isMax = isa<ir::ReduceMaxOp>(op), isMean = isa<ir::ReduceMeanOp>(op);
  bool isFloat = in.isFloat();
  Type acc = isFloat ? accTy_ : i64_;
  parallelFor(mul(outer, inner), size, [&](Value item) {
    Value o = arith::DivUIOp::create(b_, item, inner), i = arith::RemUIOp::create(b_, item, inner);
    Value base = add(mul(mul(o, size), inner), i);
    Value init = isFloat ? cf32(isMax ? -std::numeric_limits<double>::infinity() : 0.0)
                         : c64(isMax ? std::numeric_limits<int64_t>::min() : 0);
    Value r = forLoop(c64(0), size, {init}, [&](Value k, ValueRange a) -> SmallVector<Value> {
      Value x = castTo(load(in, add(base, mul(k, inner))), acc);
      if (isMax)
        return {isFloat ? (Value)arith::MaximumFOp::create(b_, a[0], x) : (Value)arith::MaxSIOp::create(b_, a[0], x)};
      return {isFloat ? (Value)arith::AddFOp::create(b_, a[0], x) : add(a[0], x)};
    })[0];
    if (isMean)
      r = isFloat ? (Value)arith::DivFOp::create(b_, r, castTo(size, acc)) : safeDiv(r, size);
    store(out, item, r);
  });
  return success();
}

LogicalResult KernelEmitter::emitSoftmax(Operation *softmaxOp, const OpTensors &bufs) {
  auto op = cast<ir::SoftmaxOp>(softmaxOp);
  const Tensor &in = bufs.ins[0], &out = bufs.outs[0];
  if (!in.isFloat() || !out.isFloat())
    return fail(op, "softmax needs float tensors");
  std::string reason;
  FailureOr<int64_t> axis = ir::normalizeAxis(op.getAxis(), in.dims.size(), reason);
  if (failed(axis))
    return fail(op, reason);
  ArrayRef<Value> dims = in.dims;
  Value outer = product(dims.take_front(*axis)), size = dims[*axis], inner = product(dims.drop_front(*axis + 1));
  Value ninf = cf32(-std::numeric_limits<double>::infinity());
  parallelFor(mul(outer, inner), mul(size, c64(3)), [&](Value item) {
    Value o = arith::DivUIOp::create(b_, item, inner), i = arith::RemUIOp::create(b_, item, inner);
    Value base = add(mul(mul(o, size), inner), i);
    auto at = [&](Value k) { return add(base, mul(k, inner)); };
    Value m = forLoop(c64(0), size, {ninf}, [&](Value k, ValueRange a) -> SmallVector<Value> {
                return {arith::MaximumFOp::create(b_, a[0], load(in, at(k)))};
              })[0];
    // A row of only -inf (fully masked) gives zeros: shift by 0 instead of -inf, then exp gives 0s and
    // the zero sum scales by 0.
    Value allMasked = arith::CmpFOp::create(b_, arith::CmpFPredicate::OEQ, m, ninf);
    Value shift = arith::SelectOp::create(b_, allMasked, cf32(0.0), m);
    Value sum = forLoop(c64(0), size, {cf32(0.0)}, [&](Value k, ValueRange a) -> SmallVector<Value> {
                  Value e = math::ExpOp::create(b_, arith::SubFOp::create(b_, load(in, at(k)), shift));
                  store(out, at(k), e);
                  return {arith::AddFOp::create(b_, a[0], e)};
                })[0];
    Value zeroSum = arith::CmpFOp::create(b_, arith::CmpFPredicate::OEQ, sum, cf32(0.0));
    Value scale = arith::SelectOp::create(b_, zeroSum, cf32(0.0), arith::DivFOp::create(b_, cf32(1.0), sum));
    forLoop(c64(0), size, [&](Value k) { store(out, at(k), arith::MulFOp::create(b_, load(out, at(k)), scale)); });
  });
  return success();
}

/// The rows that choose a matmul's path (GEMV or tiles): its own, or, when its lhs is a kiln.tail of the rows
/// (a causal LM's logits rows), the rows the tail was cut from: the kept rows are then computed by the kernel
/// an all-rows run uses for them, so their bytes equal that run's (kiln_session_set_logits).
Value KernelEmitter::matmulPathRows(Operation *op, Value rows) {
  auto tail = op->getOperand(0).getDefiningOp<ir::TailOp>();
  if (!tail)
    return rows;
  auto inType = cast<RankedTensorType>(tail.getInput().getType());
  const int64_t rank = inType.getRank(), axis = tail.getAxis() < 0 ? tail.getAxis() + rank : tail.getAxis();
  FailureOr<SymShape> in = kiln::ir::getSymShape(inType), out = kiln::ir::getSymShape(tail.getType());
  if (axis != rank - 2 || failed(in) || failed(out))
    return rows;
  FailureOr<Value> whole = dimValue(op, (*in)[size_t(axis)]), kept = dimValue(op, (*out)[size_t(axis)]);
  if (failed(whole) || failed(kept))
    return rows;
  return mul(arith::DivSIOp::create(b_, rows, arith::MaxSIOp::create(b_, *kept, c64(1))), *whole);
}

LogicalResult KernelEmitter::emitMatmul(Operation *matmulOp, const OpTensors &bufs) {
  auto op = cast<ir::MatmulOp>(matmulOp);
  const Tensor &a = bufs.ins[0], &bm = bufs.ins[1], &out = bufs.outs[0];
  bool tb = op.getTransposeB();
  size_t ra = a.dims.size(), rb = bm.dims.size();
  if (ra < 2 || rb < 2)
    return fail(op, "operands need rank >= 2");
  Value M = a.dims[ra - 2], K = a.dims[ra - 1];
  Value N = tb ? bm.dims[rb - 2] : bm.dims[rb - 1];
  ArrayRef<Value> batch = ArrayRef<Value>(out.dims).drop_back(2);
  bool blas = a.elem.isF32() && bm.elem.isF32() && out.elem.isF32();
  const Value rows = mul(product(ArrayRef<Value>(a.dims).drop_back(2)), M);
  if (bm.quant) {
    if (rb != 2 || !tb || !a.elem.isF32() || !out.elem.isF32())
      return fail(op, "a block-quantized weight must be the transposed 2-d weight of an f32 matmul");
    return emitQuantMatmul(a, bm, out, rows, K, N, matmulPathRows(op, rows));
  }
  if (rb == 2 && (bm.elem.isF16() || bm.elem.isBF16()) && a.elem.isF32() && out.elem.isF32())
    return emitWideningMatmul(a, bm, out, rows, K, N, tb, matmulPathRows(op, rows));

  // A 2-d right operand (a Linear weight) is the same for every batch: the lhs batch dims fold into M and
  // one sgemm does it all (lhs and out are contiguous over them).
  if (rb == 2) {
    M = mul(product(ArrayRef<Value>(a.dims).drop_back(2)), M);
    batch = {};
  }
  // Batch strides in elements, broadcasting like the interpreter.
  auto batchAccess = [&](const Tensor &t, Value matrixSize) {
    Tensor view = t;
    view.dims.resize(t.dims.size() - 2);
    view.shape.resize(t.shape.size() - 2);
    SmallVector<Value> strides = broadcastStrides(view, batch.size());
    for (Value &s : strides)
      s = mul(s, matrixSize);
    return Access{&t, c64(0), strides};
  };
  SmallVector<Access> accesses;
  if (rb == 2) {
    accesses = {{&a, c64(0), {}}, {&bm, c64(0), {}}, {&out, c64(0), {}}};
  } else {
    accesses = {batchAccess(a, mul(M, K)), batchAccess(bm, mul(K, N)), {&out, c64(0), {}}};
    Value mn = mul(M, N);
    SmallVector<Value> os = rowMajorStrides(batch);
    for (Value &s : os)
      s = mul(s, mn);
    accesses[2].strides = os;
  }

  if (blas) {
    callsBlas_ = true; // OpenBLAS threads it: the kernel has no parallel loop of its own
    Type i32 = b_.getI32Type();
    auto i32v = [&](Value v) { return (Value)arith::TruncIOp::create(b_, i32, v); };
    auto ci32 = [&](int64_t v) { return (Value)arith::ConstantIntOp::create(b_, i32, v); };
    auto atLeast1 = [&](Value v) { return (Value)arith::MaxSIOp::create(b_, v, c64(1)); };
    Value lda = atLeast1(K), ldb = atLeast1(tb ? K : N), ldc = atLeast1(N);
    nest(batch, accesses, [&](ArrayRef<Value>, ArrayRef<Value> off) {
      auto sgemm = [&] {
        // cblas_sgemm(RowMajor=101, NoTrans=111, Trans=112, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
        SmallVector<Value> args = {ci32(101), ci32(111), ci32(tb ? 112 : 111), i32v(M), i32v(N), i32v(K),
                                   cf32(1.0), address(a, off[0]), i32v(lda), address(bm, off[1]), i32v(ldb),
                                   cf32(0.0), address(out, off[2]), i32v(ldc)};
        func::CallOp::create(b_, kSgemm, TypeRange{}, args);
      };
      if (!tb) {
        sgemm();
        return;
      }
      // One row against a transposed B (every decode step's Linear layers): out[j] = dot(B[j, :], a).
      // sgemm packs all of B for a single row and runs 4-5x slower than sgemv, which streams B once.
      // cblas_sgemv(RowMajor, NoTrans, N, K, 1, B, K, a, 1, 0, out, 1): OpenBLAS splits the N dot
      // products between threads (each one summed by one thread), so the result does not depend on the
      // thread count. (The non-transposed form would split K and sum partial vectors: it stays sgemm.)
      Value isRow = arith::CmpIOp::create(b_, arith::CmpIPredicate::eq, matmulPathRows(op, M), c64(1));
      auto ifOp = scf::IfOp::create(b_, isRow, /*withElseRegion=*/true);
      {
        OpBuilder::InsertionGuard guard(b_);
        b_.setInsertionPoint(ifOp.thenBlock()->getTerminator());
        SmallVector<Value> args = {ci32(101), ci32(111), i32v(N), i32v(K), cf32(1.0), address(bm, off[1]),
                                   i32v(ldb), address(a, off[0]), ci32(1), cf32(0.0), address(out, off[2]),
                                   ci32(1)};
        func::CallOp::create(b_, kSgemv, TypeRange{}, args);
        b_.setInsertionPoint(ifOp.elseBlock()->getTerminator());
        sgemm();
      }
    });
    return success();
  }
  // Other element types: a plain loop nest accumulating in the compute type (f32 or i64), its parallel loop
  // over the output elements (batch, i, j), each one K-long dot product.
  bool isFloat = out.isFloat();
  Type acc = isFloat ? accTy_ : i64_;
  SmallVector<Value> itemDims(batch.begin(), batch.end());
  itemDims.append({M, N});
  parallelFor(product(itemDims), K, [&](Value item) {
    SmallVector<Value> ivs = decompose(item, itemDims);
    Value i = ivs[batch.size()], j = ivs[batch.size() + 1];
    SmallVector<Value> off;
    for (const Access &access : accesses) {
      Value o = access.base;
      for (size_t d = 0; d < batch.size(); ++d)
        o = add(o, mul(ivs[d], access.strides[d]));
      off.push_back(o);
    }
    Value init = isFloat ? cf32(0.0) : c64(0);
    Value r = forLoop(c64(0), K, {init}, [&](Value p, ValueRange s) -> SmallVector<Value> {
                Value x = castTo(load(a, add(off[0], add(mul(i, K), p))), acc);
                Value bOff = tb ? add(mul(j, K), p) : add(mul(p, N), j);
                Value y = castTo(load(bm, add(off[1], bOff)), acc);
                return {isFloat ? (Value)arith::AddFOp::create(b_, s[0], arith::MulFOp::create(b_, x, y))
                                : add(s[0], mul(x, y))};
              })[0];
    store(out, add(off[2], add(mul(i, N), j)), r);
  });
  return success();
}

LogicalResult KernelEmitter::emitGather(Operation *op, const OpTensors &bufs) {
  const Tensor &table = bufs.ins[0], &indices = bufs.ins[1], &out = bufs.outs[0];
  if (table.dims.empty())
    return fail(op, "table must have rank >= 1");
  Value rows = table.dims[0], row = product(ArrayRef<Value>(table.dims).drop_front());
  Value count = product(indices.dims);
  Value last = sub(rows, c64(1));
  parallelFor(count, row, [&](Value j) {
    // Indices are in range by contract; clamping keeps an out-of-range one from reading outside the table.
    Value idx = castTo(load(indices, j), i64_);
    idx = arith::MaxSIOp::create(b_, arith::MinSIOp::create(b_, idx, last), c64(0));
    Value src = mul(idx, row), dst = mul(j, row);
    if (table.quant) // a block-quantized table: the gathered row dequantized
      emitDequantRun(table, src, out.ptr, dst, row);
    else if (table.elem != out.elem) // a 16-bit table read in place (its convert folded): widen the row
      forLoop(c64(0), row, [&](Value r) { store(out, add(dst, r), load(table, add(src, r))); });
    else
      forLoop(c64(0), row, [&](Value r) { storeRaw(out, add(dst, r), loadRaw(table, add(src, r))); });
  });
  return success();
}

//===----------------------------------------------------------------------===//
// 16-bit weights read in place: kiln.matmul with an f16 / bf16 2-d weight (its convert folded by the plan,
// passes/DeviceWeights.h foldCpuWeightConverts), f32 activations, results and accumulation. Few rows (the
// decode shape): a GEMV streaming the weight once, <16 x half> loads widened in registers (vcvtph2ps with
// F16C; bf16 is a 16-bit shift), FMAs into <16 x f32> accumulators. Many rows: the weight is widened one tile
// of rows (or columns) at a time into a small f32 scratch and OpenBLAS's sgemm runs per tile; never an f32
// copy of the whole weight. Each result element is summed by one loop in a fixed order (no split K).
//===----------------------------------------------------------------------===//

/// Up to this many rows the GEMV runs; above it the tiles and sgemm.
constexpr int64_t kGemvMaxRows = 8;
/// Weight rows of the GEMV's unit of work (a transposed weight; see emitWideningGemvGroup).
constexpr int64_t kGemvGroupRows = 8;
/// The f32 scratch of one tile holds about this many elements (8 MiB): tiles of a multiple of 16 weight
/// rows, at least 16 (fewer, narrower sgemm calls measured slower).
constexpr int64_t kTileElements = int64_t(1) << 21;

Value KernelEmitter::loadWidened(const Tensor &t, Value offset) {
  if (t.elem.isF32())
    return LLVM::LoadOp::create(b_, wideType(), address(t, offset), 4);
  if (t.elem.isF16()) {
    Value h = LLVM::LoadOp::create(b_, VectorType::get({kWide}, b_.getF16Type()), address(t, offset), 2);
    return arith::ExtFOp::create(b_, wideType(), h);
  }
  // bf16 is the top half of an f32.
  Type i32v = VectorType::get({kWide}, b_.getI32Type());
  Value bits = LLVM::LoadOp::create(b_, VectorType::get({kWide}, b_.getI16Type()), address(t, offset), 2);
  Value sixteen = arith::ConstantOp::create(b_, DenseElementsAttr::get(cast<ShapedType>(i32v), int32_t(16)));
  Value wide = arith::ShLIOp::create(b_, arith::ExtUIOp::create(b_, i32v, bits), sixteen);
  return arith::BitcastOp::create(b_, wideType(), wide);
}

/// The sum of the 16 lanes in a fixed tree order (lane i + lane i + width, halving the width).
Value KernelEmitter::wideSum(Value v) {
  for (int64_t width = kWide / 2; width >= 1; width /= 2) {
    SmallVector<int32_t> mask;
    for (int64_t i = 0; i < kWide; ++i)
      mask.push_back(static_cast<int32_t>(i < width ? i + width : i));
    v = arith::AddFOp::create(b_, v, LLVM::ShuffleVectorOp::create(b_, v, v, ArrayRef<int32_t>(mask)));
  }
  return LLVM::ExtractElementOp::create(b_, v, c64(0));
}

Value KernelEmitter::wideSplat(Value x) {
  Value v = LLVM::PoisonOp::create(b_, wideType());
  v = LLVM::InsertElementOp::create(b_, v, x, c64(0));
  return LLVM::ShuffleVectorOp::create(b_, v, v, ArrayRef<int32_t>(SmallVector<int32_t>(kWide, 0)));
}

/// out[i, j .. j + rows) = a[i, :] . w[j .. j + rows, :] for a transposed weight [N, K]: `rows` weight rows
/// share each activation load.
void KernelEmitter::emitGemvRows(const Tensor &a, const Tensor &w, const Tensor &out, Value i, Value j,
                                 int64_t rows, Value K, Value N) {
  Value aRow = mul(i, K), blocks = arith::DivSIOp::create(b_, K, c64(kWide)), vecEnd = mul(blocks, c64(kWide));
  SmallVector<Value> wRows, init;
  for (int64_t r = 0; r < rows; ++r) {
    wRows.push_back(mul(add(j, c64(r)), K));
    init.push_back(arith::ConstantOp::create(b_, DenseElementsAttr::get(cast<ShapedType>(wideType()), 0.0f)));
  }
  SmallVector<Value> acc = forLoop(c64(0), blocks, init, [&](Value blk, ValueRange s) -> SmallVector<Value> {
    Value p = mul(blk, c64(kWide));
    Value av = loadWidened(a, add(aRow, p));
    SmallVector<Value> next;
    for (int64_t r = 0; r < rows; ++r) {
      next.push_back(math::FmaOp::create(b_, av, loadWidened(w, add(wRows[r], p)), s[r]));
      // A whole group: the next group's row r at the same column into the cache meanwhile (each row is its own
      // short stream, which the hardware prefetcher picks up late; past the weight's end the hint is dropped).
      if (rows == kGemvGroupRows)
        LLVM::Prefetch::create(b_, address(w, add(add(wRows[r], p), mul(K, c64(kGemvGroupRows)))),
                               b_.getI32IntegerAttr(0), b_.getI32IntegerAttr(3), b_.getI32IntegerAttr(1));
    }
    return next;
  });
  for (int64_t r = 0; r < rows; ++r) {
    Value sum = forLoop(vecEnd, K, {wideSum(acc[r])}, [&](Value p, ValueRange s) -> SmallVector<Value> {
                  Value x = arith::MulFOp::create(b_, load(a, add(aRow, p)), load(w, add(wRows[r], p)));
                  return {arith::AddFOp::create(b_, s[0], x)};
                })[0];
    store(out, add(mul(i, N), add(j, c64(r))), sum);
  }
}

/// The GEMV's unit of work (a part of the kernel's range): a transposed weight [N, K] eight rows at a time
/// (the last group: the one to seven rows left, one at a time), each activation row against them while they are
/// in cache; a [K, N] weight in 16-column strips (the last: the columns left, one at a time), the activation
/// broadcast along them. Every output element is computed by the same code however the groups are split.
int64_t gemvGroupWidth(bool transposed) { return transposed ? kGemvGroupRows : 16; }

void KernelEmitter::emitWideningGemvGroup(const Tensor &a, const Tensor &w, const Tensor &out, Value M, Value K,
                                          Value N, bool transposed, Value group) {
  const int64_t width = gemvGroupWidth(transposed);
  Value j0 = mul(group, c64(width));
  Value full = arith::CmpIOp::create(b_, arith::CmpIPredicate::sle, add(j0, c64(width)), N);
  auto ifOp = scf::IfOp::create(b_, full, /*withElseRegion=*/true);
  OpBuilder::InsertionGuard guard(b_);
  if (transposed) {
    b_.setInsertionPoint(ifOp.thenBlock()->getTerminator());
    forLoop(c64(0), M, [&](Value i) { emitGemvRows(a, w, out, i, j0, width, K, N); });
    b_.setInsertionPoint(ifOp.elseBlock()->getTerminator());
    forLoop(j0, N, [&](Value j) { forLoop(c64(0), M, [&](Value i) { emitGemvRows(a, w, out, i, j, 1, K, N); }); });
    return;
  }
  b_.setInsertionPoint(ifOp.thenBlock()->getTerminator());
  forLoop(c64(0), M, [&](Value i) {
    Value aRow = mul(i, K);
    Value zero = arith::ConstantOp::create(b_, DenseElementsAttr::get(cast<ShapedType>(wideType()), 0.0f));
    Value acc = forLoop(c64(0), K, {zero}, [&](Value p, ValueRange s) -> SmallVector<Value> {
                  Value av = wideSplat(load(a, add(aRow, p)));
                  return {math::FmaOp::create(b_, av, loadWidened(w, add(mul(p, N), j0)), s[0])};
                })[0];
    LLVM::StoreOp::create(b_, acc, address(out, add(mul(i, N), j0)), 4);
  });
  b_.setInsertionPoint(ifOp.elseBlock()->getTerminator());
  forLoop(c64(0), M, [&](Value i) {
    Value aRow = mul(i, K);
    forLoop(j0, N, [&](Value j) {
      Value sum = forLoop(c64(0), K, {cf32(0.0)}, [&](Value p, ValueRange s) -> SmallVector<Value> {
                    Value x = arith::MulFOp::create(b_, load(a, add(aRow, p)), load(w, add(mul(p, N), j)));
                    return {arith::AddFOp::create(b_, s[0], x)};
                  })[0];
      store(out, add(mul(i, N), j), sum);
    });
  });
}

/// dst[dstOff .. + n) (f32) = the 16-bit src[srcOff .. + n) widened.
void KernelEmitter::emitWidenRun(const Tensor &src, Value srcOff, Value dst, Value dstOff, Value n) {
  if (src.quant) {
    emitDequantRun(src, srcOff, dst, dstOff, n);
    return;
  }
  Tensor d{dst, f32_, f32_, {}, {}};
  Value blocks = arith::DivSIOp::create(b_, n, c64(kWide));
  forLoop(c64(0), blocks, [&](Value blk) {
    Value p = mul(blk, c64(kWide));
    LLVM::StoreOp::create(b_, loadWidened(src, add(srcOff, p)), address(d, add(dstOff, p)), 4);
  });
  forLoop(mul(blocks, c64(kWide)), n, [&](Value p) { storeRaw(d, add(dstOff, p), load(src, add(srcOff, p))); });
}

/// Many rows: the weight in tiles of `tile` output columns, each tile one item of the kernel's range: the
/// weight's tile widened (dequantized) into a malloc'd f32 scratch, then one sgemm (out[:, j0 .. j0 + nt) =
/// a . tile, the result's row stride N) on one OpenBLAS thread (KILN_KERNEL_CALLS_BLAS_PER_ITEM), the tiles
/// split over the session's threads. The tiles depend only on K and N, so the bytes do not depend on the
/// thread count.
Value KernelEmitter::sgemmTileRows(Value K, Value N) {
  Value rows = arith::DivSIOp::create(b_, c64(kTileElements), arith::MaxSIOp::create(b_, K, c64(1)));
  Value tile = arith::MaxSIOp::create(b_, arith::AndIOp::create(b_, rows, c64(~int64_t(15))), c64(16));
  // At least two tiles where N allows (a multiple of 16 above N / 2), so that two threads share the work.
  Value half = arith::AndIOp::create(b_, add(arith::DivSIOp::create(b_, add(N, c64(1)), c64(2)), c64(15)), c64(~int64_t(15)));
  tile = arith::MinSIOp::create(b_, tile, arith::MaxSIOp::create(b_, half, c64(16)));
  return arith::MaxSIOp::create(b_, arith::MinSIOp::create(b_, tile, N), c64(1));
}

KernelEmitter::GemvOrTiles KernelEmitter::gemvOrTiles(Value pathRows, int64_t gemvMaxRows, int64_t groupRows,
                                                      Value K, Value N) {
  Value few = arith::CmpIOp::create(b_, arith::CmpIPredicate::sle, pathRows, c64(gemvMaxRows));
  Value groups = arith::DivSIOp::create(b_, add(N, c64(groupRows - 1)), c64(groupRows));
  Value tile = sgemmTileRows(K, N);
  Value tiles = arith::DivSIOp::create(b_, add(N, sub(tile, c64(1))), tile);
  Value extent = arith::SelectOp::create(b_, few, groups, tiles);
  rangeFlags_ = arith::SelectOp::create(b_, few, c64(0), c64(kCallsBlasPerItemFlag));
  return {few, tile, extent};
}

/// out[:, j0 .. j0 + nt) = a . (the weight's columns j0 .. j0 + nt, widened into scratch).
void KernelEmitter::emitSgemmTile(const Tensor &a, const Tensor &w, const Tensor &out, Value scratch, Value j0,
                                  Value nt, Value M, Value K, Value N, bool transposed) {
  Type i32 = b_.getI32Type();
  auto i32v = [&](Value v) { return (Value)arith::TruncIOp::create(b_, i32, v); };
  auto ci32 = [&](int64_t v) { return (Value)arith::ConstantIntOp::create(b_, i32, v); };
  Tensor s{scratch, f32_, f32_, {}, {}};
  if (transposed)
    emitWidenRun(w, mul(j0, K), scratch, c64(0), mul(nt, K));
  else
    forLoop(c64(0), K, [&](Value p) { emitWidenRun(w, add(mul(p, N), j0), scratch, mul(p, nt), nt); });
  Value ldb = arith::MaxSIOp::create(b_, transposed ? K : nt, c64(1));
  // cblas_sgemm(RowMajor=101, NoTrans=111, Trans=112, M, nt, K, 1, a, K, tile, ldb, 0, out + j0, N)
  SmallVector<Value> args = {ci32(101), ci32(111), ci32(transposed ? 112 : 111), i32v(M), i32v(nt), i32v(K),
                             cf32(1.0), address(a, c64(0)), i32v(arith::MaxSIOp::create(b_, K, c64(1))),
                             address(s, c64(0)), i32v(ldb), cf32(0.0), address(out, j0),
                             i32v(arith::MaxSIOp::create(b_, N, c64(1)))};
  func::CallOp::create(b_, kSgemm, TypeRange{}, args);
}

/// Tile `t` of `tile` columns (the item of a many-rows matmul): its scratch malloc'd and freed; without the
/// memory, one column at a time through a stack row of K floats (the same products, slower: a kernel never
/// fails).
void KernelEmitter::emitSgemmTileItem(const Tensor &a, const Tensor &w, const Tensor &out, Value tile, Value t,
                                      Value M, Value K, Value N, bool transposed) {
  Value j0 = mul(t, tile);
  Value nt = arith::MinSIOp::create(b_, tile, sub(N, j0));
  Value bytes = mul(mul(tile, arith::MaxSIOp::create(b_, K, c64(1))), c64(4));
  Value scratch = func::CallOp::create(b_, kMalloc, TypeRange{ptrTy_}, ValueRange{bytes}).getResult(0);
  Value noScratch = LLVM::ICmpOp::create(b_, LLVM::ICmpPredicate::eq, scratch, LLVM::ZeroOp::create(b_, ptrTy_));
  ifElse(
      noScratch,
      [&] {
        Value row = LLVM::AllocaOp::create(b_, ptrTy_, f32_, arith::MaxSIOp::create(b_, K, c64(1)), 64);
        forLoop(j0, add(j0, nt), [&](Value j) { emitSgemmTile(a, w, out, row, j, c64(1), M, K, N, transposed); });
      },
      [&] {
        emitSgemmTile(a, w, out, scratch, j0, nt, M, K, N, transposed);
        func::CallOp::create(b_, kFree, TypeRange{}, ValueRange{scratch});
      });
}

LogicalResult KernelEmitter::emitWideningMatmul(const Tensor &a, const Tensor &w, const Tensor &out, Value M,
                                                Value K, Value N, bool transposed, Value pathRows) {
  // Few rows: the GEMV, its column groups split over the session's threads. Many: the tiles and sgemm (the
  // flag is computed from the symbols, like the extent).
  const int64_t width = gemvGroupWidth(transposed);
  const GemvOrTiles range = gemvOrTiles(pathRows, kGemvMaxRows, width, K, N);
  Value few = range.few, tile = range.tile, extent = range.extent;
  Value cost = arith::SelectOp::create(b_, few, mul(M, mul(K, c64(width))), mul(M, mul(K, tile)));
  parallelFor(extent, cost, [&](Value item) {
    ifElse(few, [&] { emitWideningGemvGroup(a, w, out, M, K, N, transposed, item); },
           [&] { emitSgemmTileItem(a, w, out, tile, item, M, K, N, transposed); });
  });
  return success();
}

//===----------------------------------------------------------------------===//
// Block-quantized weights (--weights q8_0|q4_0, support/Quantize.h's layout: quants, then f16 scales, rows in
// groups of 8 interleaved block by block): the transposed 2-d weight of a matmul, or a gather's table. Decode
// rows (at most kQuantGemvMaxRows): the GEMV quantizes each activation row once per call, per block of 32, to
// int8 with an f32 scale (what quantizeActivationBlock does), then per block an integer dot product of the
// unsigned weight quants with the signed activation quants (vpdpbusd with VNNI, vpmaddubsw / vpmaddwd with
// AVX2), the zero point (128 or 8) taken off through the activation block's sum, the i32 lanes scaled by
// d_w * d_a into f32 accumulators. A group of 8 weight rows is one contiguous stream read in 512-bit (AVX512-
// VNNI) or 256-bit vectors of several rows' blocks (emitQuantGemvGroupRows); groups are the range's items, so
// every output is summed by the same code whatever the thread split. More rows: the int8 GEMM below
// (emitQuantGemmTile), its activations quantized the same way, on targets with VNNI; elsewhere dequantized
// tiles and sgemm against activations quantized and dequantized so (emitQuantMatmulSgemm); never a
// dequantized copy of the whole weight.
//===----------------------------------------------------------------------===//

namespace {
int64_t zeroPoint(QuantFormat f) { return f == QuantFormat::Q8_0 ? 128 : 8; }
VectorType vecOf(int64_t n, Type t) { return VectorType::get({n}, t); }
} // namespace

Value KernelEmitter::splatConst(VectorType type, int64_t v) {
  Type e = type.getElementType();
  Attribute a = isa<FloatType>(e) ? (Attribute)b_.getFloatAttr(e, double(v)) : (Attribute)b_.getIntegerAttr(e, v);
  return arith::ConstantOp::create(b_, DenseElementsAttr::get(cast<ShapedType>(type), ArrayRef<Attribute>{a}));
}

void KernelEmitter::ifElse(Value cond, llvm::function_ref<void()> then, llvm::function_ref<void()> otherwise) {
  auto ifOp = scf::IfOp::create(b_, cond, /*withElseRegion=*/true);
  OpBuilder::InsertionGuard guard(b_);
  b_.setInsertionPoint(ifOp.thenBlock()->getTerminator());
  then();
  b_.setInsertionPoint(ifOp.elseBlock()->getTerminator());
  otherwise();
}

/// The f16 scales: after the quants of all the matrix's elements.
Value KernelEmitter::quantScales(const Tensor &w) {
  Value elements = product(w.dims);
  Value quantBytes = *w.quant == QuantFormat::Q8_0 ? elements : arith::DivUIOp::create(b_, elements, c64(2));
  return LLVM::GEPOp::create(b_, ptrTy_, b_.getI8Type(), w.ptr, ValueRange{quantBytes});
}

Value KernelEmitter::blockScale(const Tensor &w, Value block) {
  Value p = LLVM::GEPOp::create(b_, ptrTy_, b_.getF16Type(), quantScales(w), ValueRange{block});
  return arith::ExtFOp::create(b_, f32_, (Value)LLVM::LoadOp::create(b_, b_.getF16Type(), p, 2));
}

/// Block `block`'s 32 quants as unsigned bytes (q + 128 for q8_0, q + 8 for q4_0), in element order.
Value KernelEmitter::loadQuantBlock(const Tensor &w, Value block) {
  Type i8 = b_.getI8Type();
  if (*w.quant == QuantFormat::Q8_0)
    return LLVM::LoadOp::create(b_, vecOf(32, i8), address(w, mul(block, c64(32))), 1);
  Value packed = LLVM::LoadOp::create(b_, vecOf(16, i8), address(w, mul(block, c64(16))), 1);
  Value lo = arith::AndIOp::create(b_, packed, splatConst(vecOf(16, i8), 15));
  Value hi = arith::ShRUIOp::create(b_, packed, splatConst(vecOf(16, i8), 4));
  SmallVector<int32_t> concat;
  for (int32_t i = 0; i < 32; ++i)
    concat.push_back(i);
  return LLVM::ShuffleVectorOp::create(b_, lo, hi, ArrayRef<int32_t>(concat));
}

/// Row `row`'s first block in the layout and the step from one of its blocks to the next: the rows of its
/// group (support/Quantize.h quantBlockIndex: groups of 8 rows interleaved block by block, the last group
/// the rows left).
std::pair<Value, Value> KernelEmitter::quantRowBlocks(const Tensor &w, Value row) {
  Value nb = arith::DivUIOp::create(b_, w.dims[1], c64(kQuantBlock));
  Value group = arith::AndIOp::create(b_, row, c64(~(kQuantGroupRows - 1)));
  Value groupRows = arith::MinSIOp::create(b_, c64(kQuantGroupRows), sub(w.dims[0], group));
  return {add(mul(group, nb), sub(row, group)), groupRows};
}

/// dst[dstOff .. + n) (f32) = the values of the quantized src[srcOff .. + n) (whole rows: srcOff, n multiples
/// of the row length): float(q - zero point) * scale, the very products dequantizeMatrix computes.
void KernelEmitter::emitDequantRun(const Tensor &src, Value srcOff, Value dst, Value dstOff, Value n) {
  Tensor d{dst, f32_, f32_, {}, {}};
  Value K = arith::MaxSIOp::create(b_, src.dims[1], c64(1));
  Value first = arith::DivUIOp::create(b_, srcOff, K), nb = arith::DivUIOp::create(b_, K, c64(kQuantBlock));
  Type i32v = vecOf(32, b_.getI32Type()), f32v = vecOf(32, f32_);
  forLoop(c64(0), arith::DivUIOp::create(b_, n, K), [&](Value r) {
    Value base, step;
    std::tie(base, step) = quantRowBlocks(src, add(first, r));
    Value rowOut = add(dstOff, mul(r, K));
    forLoop(c64(0), nb, [&](Value blk) {
      Value e = add(base, mul(blk, step));
      Value q = arith::SubIOp::create(b_, arith::ExtUIOp::create(b_, i32v, loadQuantBlock(src, e)),
                                      splatConst(cast<VectorType>(i32v), zeroPoint(*src.quant)));
      Value y = arith::MulFOp::create(b_, arith::SIToFPOp::create(b_, f32v, q),
                                      splatAs(blockScale(src, e), cast<VectorType>(f32v)));
      LLVM::StoreOp::create(b_, y, address(d, add(rowOut, mul(blk, c64(kQuantBlock)))), 4);
    });
  });
}

/// init + the dot products of the unsigned weight bytes with the signed activation bytes (32, or 64 with
/// AVX512-VNNI): i32 lane k adds the products of bytes 4k .. 4k + 3 (as vpdpbusd), so that the lanes of a
/// vector holding several rows' blocks each belong to one row.
Value KernelEmitter::integerDot(Value init, Value weights, Value activations, QuantFormat format) {
  Type i32 = b_.getI32Type(), i16 = b_.getI16Type();
  const int64_t bytes = cast<VectorType>(weights.getType()).getNumElements();
  auto intrinsic = [&](const char *name, Type result, ValueRange args) {
    return LLVM::CallIntrinsicOp::create(b_, result, b_.getStringAttr(name), args).getResult(0);
  };
  if (bytes == 64) // DotIsa::Vnni512 only
    return intrinsic("llvm.x86.avx512.vpdpbusd.512", vecOf(16, i32), {init, weights, activations});
  if (dotIsa_ == DotIsa::Vnni || dotIsa_ == DotIsa::Vnni512)
    return intrinsic("llvm.x86.avx512.vpdpbusd.256", vecOf(8, i32), {init, weights, activations});
  if (dotIsa_ == DotIsa::Avx2 && format == QuantFormat::Q4_0) { // 15 * 127 * 2 cannot saturate vpmaddubsw
    Value pairs = intrinsic("llvm.x86.avx2.pmadd.ub.sw", vecOf(16, i16), {weights, activations});
    Value quads = intrinsic("llvm.x86.avx2.pmadd.wd", vecOf(8, i32), {pairs, splatConst(vecOf(16, i16), 1)});
    return arith::AddIOp::create(b_, init, quads);
  }
  auto strided = [&](Value v, int32_t from, int32_t step, int64_t count) {
    SmallVector<int32_t> mask;
    for (int32_t i = 0; i < count; ++i)
      mask.push_back(from + i * step);
    return (Value)LLVM::ShuffleVectorOp::create(b_, v, v, ArrayRef<int32_t>(mask));
  };
  if (dotIsa_ == DotIsa::Avx2) { // q8_0: 255 * 127 * 2 would saturate vpmaddubsw; 16-bit products instead
    Value w16 = arith::ExtUIOp::create(b_, vecOf(32, i16), weights);
    Value a16 = arith::ExtSIOp::create(b_, vecOf(32, i16), activations);
    Value lo = intrinsic("llvm.x86.avx2.pmadd.wd", vecOf(8, i32), {strided(w16, 0, 1, 16), strided(a16, 0, 1, 16)});
    Value hi = intrinsic("llvm.x86.avx2.pmadd.wd", vecOf(8, i32), {strided(w16, 16, 1, 16), strided(a16, 16, 1, 16)});
    // Pair sums (2k, 2k + 1) of bytes 0 .. 31 to the quads 4k .. 4k + 3.
    Value pairs = LLVM::ShuffleVectorOp::create(b_, lo, hi, ArrayRef<int32_t>(llvm::to_vector(llvm::seq<int32_t>(0, 16))));
    Value quads = arith::AddIOp::create(b_, strided(pairs, 0, 2, 8), strided(pairs, 1, 2, 8));
    return arith::AddIOp::create(b_, init, quads);
  }
  Value prod = arith::MulIOp::create(b_, arith::ExtUIOp::create(b_, vecOf(32, i32), weights),
                                     arith::ExtSIOp::create(b_, vecOf(32, i32), activations));
  Value sum = init;
  for (int32_t q = 0; q < 4; ++q)
    sum = arith::AddIOp::create(b_, sum, strided(prod, q, 4, 8));
  return sum;
}

/// scratch = the M activation rows from row0 on quantized per block: M * K int8 quants, then M * K / 32 f32
/// scales, then M * K / 32 i32 sums of the quants (quantizeActivationBlock's numerics).
void KernelEmitter::emitQuantizeActivations(const Tensor &a, Value row0, Value M, Value K, Value scratch) {
  Type i8 = b_.getI8Type(), i32 = b_.getI32Type();
  VectorType f32v = vecOf(32, f32_);
  QuantActivations act = quantActivations(scratch, M, K);
  forLoop(c64(0), mul(M, arith::DivUIOp::create(b_, K, c64(32))), [&](Value blk) { // the rows' blocks, row-major
    Value off = mul(blk, c64(32));
    auto [qi, d] = quantizeActivationBlock(LLVM::LoadOp::create(b_, f32v, address(a, add(mul(row0, K), off)), 4));
    LLVM::StoreOp::create(b_, arith::TruncIOp::create(b_, vecOf(32, i8), qi), address(act.quants, off), 1);
    storeRaw(act.scales, blk, d);
    storeRaw(act.sums, blk,
             arith::TruncIOp::create(b_, i32, horizontalSum(arith::ExtSIOp::create(b_, vecOf(32, b_.getI64Type()), qi))));
  });
}

/// One block of 32 activations (f32) to int8 (quantizeActivationBlock's numerics): the quants as i32 lanes, d.
std::pair<Value, Value> KernelEmitter::quantizeActivationBlock(Value x) {
  auto f32v = cast<VectorType>(x.getType());
  Value amax = horizontalMax(math::AbsFOp::create(b_, x));
  Value d = arith::DivFOp::create(b_, amax, cf32(127.0));
  Value nonzero = arith::CmpFOp::create(b_, arith::CmpFPredicate::UNE, d, cf32(0.0));
  Value id = arith::SelectOp::create(b_, nonzero, arith::DivFOp::create(b_, cf32(1.0), d), cf32(0.0));
  Value scaled = arith::MulFOp::create(b_, x, splatAs(id, f32v));
  return {arith::FPToSIOp::create(b_, vecOf(32, b_.getI32Type()), math::RoundEvenOp::create(b_, scaled)), d};
}

/// dst (f32) = rows row0 .. row0 + M of a, each block quantized as the int8 kernels do and dequantized
/// (float(q) * d): the activations of the sgemm path, which then computes what the int8 GEMM would.
void KernelEmitter::emitRoundTripActivations(const Tensor &a, Value row0, Value M, Value K, Value dst) {
  Tensor d{dst, f32_, f32_, {}, {}};
  VectorType f32v = vecOf(32, f32_);
  forLoop(c64(0), mul(M, arith::DivUIOp::create(b_, K, c64(32))), [&](Value blk) {
    Value off = mul(blk, c64(32));
    auto [qi, scale] = quantizeActivationBlock(LLVM::LoadOp::create(b_, f32v, address(a, add(mul(row0, K), off)), 4));
    Value y = arith::MulFOp::create(b_, arith::SIToFPOp::create(b_, f32v, qi), splatAs(scale, f32v));
    LLVM::StoreOp::create(b_, y, address(d, off), 4);
  });
}

KernelEmitter::QuantActivations KernelEmitter::quantActivations(Value scratch, Value M, Value K) {
  Type i8 = b_.getI8Type(), i32 = b_.getI32Type();
  Value nb = arith::DivUIOp::create(b_, K, c64(kQuantBlock));
  QuantActivations act{{scratch, i8, i8, {}, {}}, {}, {}};
  act.scales = {LLVM::GEPOp::create(b_, ptrTy_, i8, scratch, ValueRange{mul(M, K)}), f32_, f32_, {}, {}};
  act.sums = {LLVM::GEPOp::create(b_, ptrTy_, f32_, act.scales.ptr, ValueRange{mul(M, nb)}), i32, i32, {}, {}};
  return act;
}

/// Activation row i's block ab: its 32 quants, d_a, and the weights' zero point times the quants' sum (taken
/// off the integer dot product once per block and row).
KernelEmitter::QuantActivationBlock KernelEmitter::loadActivationBlock(const QuantActivations &act, Value ab,
                                                                       QuantFormat format) {
  Type i8 = b_.getI8Type(), i32 = b_.getI32Type();
  Value quants = LLVM::LoadOp::create(b_, vecOf(32, i8), address(act.quants, mul(ab, c64(kQuantBlock))), 1);
  Value correction = arith::MulIOp::create(b_, loadRaw(act.sums, ab), arith::ConstantIntOp::create(b_, i32, -zeroPoint(format)));
  return {quants, loadRaw(act.scales, ab), correction};
}

/// out[i, j] for one weight row j (a group of fewer than 8 rows), block after block.
void KernelEmitter::emitQuantGemvRow(const Tensor &w, const Tensor &out, const QuantActivations &act, Value nb,
                                     Value N, Value i, Value j, Value actRow) {
  Value base, step;
  std::tie(base, step) = quantRowBlocks(w, j);
  VectorType lanes = vecOf(8, b_.getI32Type()), acc = vecOf(8, f32_);
  Value zeroLanes = splatConst(lanes, 0);
  Value sum = forLoop(c64(0), nb, {splatConst(acc, 0)}, [&](Value blk, ValueRange s) -> SmallVector<Value> {
                QuantActivationBlock a = loadActivationBlock(act, add(mul(actRow, nb), blk), *w.quant);
                Value wb = add(base, mul(blk, step));
                Value init = LLVM::InsertElementOp::create(b_, zeroLanes, a.correction, c64(0));
                Value isum = integerDot(init, loadQuantBlock(w, wb), a.quants, *w.quant);
                Value scale = splatAs(arith::MulFOp::create(b_, blockScale(w, wb), a.scale), acc);
                return {math::FmaOp::create(b_, arith::SIToFPOp::create(b_, acc, isum), scale, s[0])};
              })[0];
  store(out, add(mul(i, N), j), horizontalSum(sum));
}

/// out[i, j0 .. j0 + 8) for a whole group of 8 weight rows, interleaved block by block in the layout: a block
/// of the 8 rows is one contiguous run, read in vectors of 64 bytes (AVX512-VNNI) or 32, each holding R whole
/// rows' blocks (q4_0: their low nibbles, elements 0 .. 15, against the activation block's first 16 quants
/// repeated R times, then the high nibbles against the last 16). The integer lanes a row owns (bytes 4k ..
/// 4k + 3 go to lane k) are scaled by that row's d_w * d_a, the group's 8 scales one f16 vector, into f32
/// accumulators; each row's lanes are summed at the end in a fixed order.
void KernelEmitter::emitQuantGemvGroupRows(const Tensor &w, const Tensor &out, const QuantActivations &act, Value nb,
                                           Value N, Value i, Value j0) {
  const QuantFormat format = *w.quant;
  const int64_t bytes = dotIsa_ == DotIsa::Vnni512 ? 64 : 32, lanes = bytes / 4;
  const int64_t blockBytes = format == QuantFormat::Q8_0 ? kQuantBlock : kQuantBlock / 2;
  const int64_t rowsPerVec = bytes / blockBytes, lanesPerRow = lanes / rowsPerVec;
  const int64_t vecs = kQuantGroupRows / rowsPerVec;
  Type i8 = b_.getI8Type(), i32 = b_.getI32Type(), f16 = b_.getF16Type();
  VectorType byteVec = vecOf(bytes, i8), laneVec = vecOf(lanes, i32), accVec = vecOf(lanes, f32_);
  VectorType groupScales = vecOf(kQuantGroupRows, f32_);
  auto shuffle = [&](Value v, int64_t count, llvm::function_ref<int32_t(int32_t)> lane) {
    SmallVector<int32_t> mask;
    for (int32_t l = 0; l < count; ++l)
      mask.push_back(lane(l));
    return (Value)LLVM::ShuffleVectorOp::create(b_, v, v, ArrayRef<int32_t>(mask));
  };
  SmallVector<Attribute> firstLanes; // all ones on each row's first lane: where the zero point's correction goes
  for (int64_t l = 0; l < lanes; ++l)
    firstLanes.push_back(b_.getI32IntegerAttr(l % lanesPerRow == 0 ? -1 : 0));
  Value firstLaneMask = arith::ConstantOp::create(b_, DenseElementsAttr::get(laneVec, firstLanes));
  Value groupBase = mul(j0, nb), scalesW = quantScales(w), groupBytes = mul(nb, c64(kQuantGroupRows * blockBytes));
  SmallVector<Value> init(size_t(vecs), splatConst(accVec, 0));
  SmallVector<Value> acc = forLoop(c64(0), nb, init, [&](Value blk, ValueRange s) -> SmallVector<Value> {
    QuantActivationBlock a = loadActivationBlock(act, add(mul(i, nb), blk), format);
    Value first = arith::AndIOp::create(b_, splatAs(a.correction, laneVec), firstLaneMask);
    Value e = add(groupBase, mul(blk, c64(kQuantGroupRows)));
    Value dw = LLVM::LoadOp::create(b_, vecOf(kQuantGroupRows, f16), LLVM::GEPOp::create(b_, ptrTy_, f16, scalesW, ValueRange{e}), 2);
    Value scales = arith::MulFOp::create(b_, arith::ExtFOp::create(b_, groupScales, dw), splatAs(a.scale, groupScales));
    const int32_t span = format == QuantFormat::Q8_0 ? 32 : 16;
    Value aLow = shuffle(a.quants, bytes, [&](int32_t l) { return l % span; });
    Value aHigh = shuffle(a.quants, bytes, [&](int32_t l) { return 16 + l % span; });
    SmallVector<Value> next;
    for (int64_t v = 0; v < vecs; ++v) {
      Value at = add(mul(e, c64(blockBytes)), c64(v * bytes));
      Value q = LLVM::LoadOp::create(b_, byteVec, address(w, at), 1);
      // The next group's bytes at the same place into the cache meanwhile (as emitGemvRows; the hardware
      // prefetcher restarts at every 4 KiB page; past the weight's end the hint is dropped).
      LLVM::Prefetch::create(b_, address(w, add(at, groupBytes)), b_.getI32IntegerAttr(0), b_.getI32IntegerAttr(3),
                             b_.getI32IntegerAttr(1));
      Value isum;
      if (format == QuantFormat::Q8_0) {
        isum = integerDot(first, q, aLow, format);
      } else {
        Value low = arith::AndIOp::create(b_, q, splatConst(byteVec, 15));
        Value high = arith::ShRUIOp::create(b_, q, splatConst(byteVec, 4));
        isum = integerDot(integerDot(first, low, aLow, format), high, aHigh, format);
      }
      Value scale = shuffle(scales, lanes, [&](int32_t l) { return int32_t(v * rowsPerVec + l / lanesPerRow); });
      next.push_back(math::FmaOp::create(b_, arith::SIToFPOp::create(b_, accVec, isum), scale, s[size_t(v)]));
    }
    return next;
  });
  for (int64_t v = 0; v < vecs; ++v)
    for (int64_t r = 0; r < rowsPerVec; ++r) {
      Value own = shuffle(acc[size_t(v)], lanesPerRow, [&](int32_t l) { return int32_t(r * lanesPerRow + l); });
      store(out, add(mul(i, N), add(j0, c64(v * rowsPerVec + r))), horizontalSum(own));
    }
}

/// The GEMV's unit of work: weight rows [8 g, 8 g + 8) (the last group: the rows left, one at a time).
void KernelEmitter::emitQuantGemvGroup(const Tensor &w, const Tensor &out, Value scratch, Value M, Value K, Value N,
                                       Value group) {
  QuantActivations act = quantActivations(scratch, M, K);
  Value nb = arith::DivUIOp::create(b_, K, c64(kQuantBlock));
  Value j0 = mul(group, c64(kQuantGroupRows));
  Value full = arith::CmpIOp::create(b_, arith::CmpIPredicate::sle, add(j0, c64(kQuantGroupRows)), N);
  ifElse(
      full, [&] { forLoop(c64(0), M, [&](Value i) { emitQuantGemvGroupRows(w, out, act, nb, N, i, j0); }); },
      [&] {
        forLoop(j0, N, [&](Value j) { forLoop(c64(0), M, [&](Value i) { emitQuantGemvRow(w, out, act, nb, N, i, j, i); }); });
      });
}

//===----------------------------------------------------------------------===//
// The int8 GEMM of many rows (more than kQuantGemvMaxRows): every activation row quantized per block as the
// GEMV's (once per call, for the rows of the call's items), and a register tile of several activation rows
// against a panel of L weight rows (L = the i32 lanes of a vector: 16 with AVX512-VNNI, else 8: one or two
// groups of the layout, read in place). Per block, the panel's quants are regrouped in registers (a dword
// transpose, loadQuantPanelChunks) into 8 vectors, vector c holding elements 4c .. 4c + 3 of every weight row
// (q4_0: the nibbles unpacked), so that an integer dot product (vpdpbusd, or integerDot's AVX2 / plain forms)
// against activation dword c broadcast adds into lane l the products of weight row l: after the 8 chunks,
// lane l holds row l's whole block dot product, scaled by d_w(l) * d_a into the row's f32 accumulator. Each
// loaded weight vector serves every activation row of the tile. Items: blocks of kQuantGemmRowBlock activation
// rows x panels; a panel past N's last multiple of L goes row by row (emitQuantGemvRow). Every output is
// summed by the same code whatever the tile or thread split.
//===----------------------------------------------------------------------===//

namespace {
/// Activation rows of one item of the int8 GEMM.
constexpr int64_t kQuantGemmRowBlock = 64;
} // namespace

/// Chunk c (0 .. 7) of block `blk` of weight rows j0 .. j0 + L (whole groups): elements 4c .. 4c + 3 of each
/// row as unsigned bytes (the stored q + zero point), row l in i32 lane l.
SmallVector<Value> KernelEmitter::loadQuantPanelChunks(const Tensor &w, Value j0, Value nb, Value blk) {
  const QuantFormat format = *w.quant;
  const int64_t L = quantGemmLanes(), blockBytes = format == QuantFormat::Q8_0 ? kQuantBlock : kQuantBlock / 2;
  const int64_t dwords = blockBytes / 4, rowsPerVec = L / dwords, vecsPerGroup = kQuantGroupRows / rowsPerVec;
  Type i32 = b_.getI32Type();
  VectorType vec = vecOf(L, i32);
  struct Part {
    Value v;
    SmallVector<std::pair<int64_t, int64_t>> lanes; // (weight row, dword of its block) per lane
  };
  SmallVector<Part> parts;
  for (int64_t g = 0; g < L / kQuantGroupRows; ++g) { // a group's block: its 8 rows' blocks, one after another
    Value e = add(mul(add(j0, c64(g * kQuantGroupRows)), nb), mul(blk, c64(kQuantGroupRows)));
    for (int64_t v = 0; v < vecsPerGroup; ++v) {
      Part part{LLVM::LoadOp::create(b_, vec, address(w, add(mul(e, c64(blockBytes)), c64(v * 4 * L))), 1), {}};
      for (int64_t l = 0; l < L; ++l)
        part.lanes.push_back({g * kQuantGroupRows + v * rowsPerVec + l / dwords, l % dwords});
      parts.push_back(std::move(part));
    }
  }
  // The transpose: stage `bit` pairs parts whose dwords agree below `bit` and splits their lanes by that bit of
  // the dword (one two-source shuffle each); after log2(dwords) stages each part holds one dword of every row,
  // in row order.
  for (int64_t bit = 1; bit < dwords; bit *= 2) {
    SmallVector<Part> next;
    for (int64_t cls = 0; cls < bit; ++cls) {
      SmallVector<const Part *> same;
      for (const Part &p : parts)
        if ((p.lanes[0].second & (bit - 1)) == cls)
          same.push_back(&p);
      for (size_t k = 0; k + 1 < same.size(); k += 2)
        for (int64_t side = 0; side < 2; ++side) {
          SmallVector<std::tuple<int64_t, int64_t, int32_t>> picked; // (dword, row, source lane)
          for (int64_t h = 0; h < 2; ++h)
            for (int64_t l = 0; l < L; ++l) {
              auto [row, dword] = same[k + size_t(h)]->lanes[size_t(l)];
              if (((dword / bit) & 1) == side)
                picked.push_back({dword, row, int32_t(h * L + l)});
            }
          llvm::sort(picked);
          Part out;
          SmallVector<int32_t> mask;
          for (auto [dword, row, src] : picked) {
            mask.push_back(src);
            out.lanes.push_back({row, dword});
          }
          out.v = LLVM::ShuffleVectorOp::create(b_, same[k]->v, same[k + 1]->v, ArrayRef<int32_t>(mask));
          next.push_back(std::move(out));
        }
    }
    parts = std::move(next);
  }
  SmallVector<Value> chunks(8);
  for (const Part &p : parts) {
    const int64_t d = p.lanes[0].second;
    if (format == QuantFormat::Q8_0) {
      chunks[size_t(d)] = p.v;
      continue;
    }
    // q4_0: byte j holds elements j (low nibble) and j + 16 (high): dword d gives chunks d and d + 4.
    Value nibbles = splatConst(vec, 0x0F0F0F0F);
    chunks[size_t(d)] = arith::AndIOp::create(b_, p.v, nibbles);
    chunks[size_t(d + 4)] = arith::AndIOp::create(b_, arith::ShRUIOp::create(b_, p.v, splatConst(vec, 4)), nibbles);
  }
  return chunks;
}

/// The f16 scales of block `blk` of weight rows j0 .. j0 + L (whole groups) as f32, row l in lane l.
Value KernelEmitter::loadQuantPanelScales(const Tensor &w, Value j0, Value nb, Value blk) {
  const int64_t L = quantGemmLanes();
  Type f16 = b_.getF16Type();
  Value scales = quantScales(w), v;
  for (int64_t g = 0; g < L / kQuantGroupRows; ++g) {
    Value e = add(mul(add(j0, c64(g * kQuantGroupRows)), nb), mul(blk, c64(kQuantGroupRows)));
    Value group = LLVM::LoadOp::create(b_, vecOf(kQuantGroupRows, f16),
                                       LLVM::GEPOp::create(b_, ptrTy_, f16, scales, ValueRange{e}), 2);
    v = g == 0 ? group
               : (Value)LLVM::ShuffleVectorOp::create(b_, v, group,
                                                      ArrayRef<int32_t>(llvm::to_vector(llvm::seq<int32_t>(0, 16))));
  }
  return arith::ExtFOp::create(b_, vecOf(L, f32_), v);
}

/// out[i .. i + rows, j0 .. j0 + L) (a panel of whole groups), the activation rows' quantized blocks at row
/// actRow of `act` on.
void KernelEmitter::emitQuantGemmTile(const Tensor &w, const Tensor &out, const QuantActivations &act, Value nb,
                                      Value N, Value i, Value actRow, Value j0, int64_t rows) {
  const QuantFormat format = *w.quant;
  const int64_t L = quantGemmLanes();
  Type i8 = b_.getI8Type(), i32 = b_.getI32Type();
  VectorType laneVec = vecOf(L, i32), accVec = vecOf(L, f32_), byteVec = vecOf(4 * L, i8);
  auto bytes = [&](Value v) { return (Value)LLVM::BitcastOp::create(b_, byteVec, v); };
  Value minusZero = arith::ConstantIntOp::create(b_, i32, -zeroPoint(format));
  SmallVector<Value> init(size_t(rows), splatConst(accVec, 0));
  SmallVector<Value> acc = forLoop(c64(0), nb, init, [&](Value blk, ValueRange s) -> SmallVector<Value> {
    SmallVector<Value> chunks = loadQuantPanelChunks(w, j0, nb, blk);
    Value dw = loadQuantPanelScales(w, j0, nb, blk);
    SmallVector<Value> next;
    for (int64_t r = 0; r < rows; ++r) {
      Value ab = add(mul(add(actRow, c64(r)), nb), blk);
      // The zero point's share, taken off every lane: zero point * the sum of the activation block's quants.
      Value isum = splatAs(arith::MulIOp::create(b_, loadRaw(act.sums, ab), minusZero), laneVec);
      Value quants = address(act.quants, mul(ab, c64(kQuantBlock)));
      for (int64_t c = 0; c < 8; ++c) {
        Value dword = LLVM::LoadOp::create(b_, i32, LLVM::GEPOp::create(b_, ptrTy_, i32, quants, ValueRange{c64(c)}), 4);
        isum = integerDot(isum, bytes(chunks[size_t(c)]), bytes(splatAs(dword, laneVec)), format);
      }
      Value scale = arith::MulFOp::create(b_, dw, splatAs(loadRaw(act.scales, ab), accVec));
      next.push_back(math::FmaOp::create(b_, arith::SIToFPOp::create(b_, accVec, isum), scale, s[size_t(r)]));
    }
    return next;
  });
  for (int64_t r = 0; r < rows; ++r)
    LLVM::StoreOp::create(b_, acc[size_t(r)], address(out, add(mul(add(i, c64(r)), N), j0)), 4);
}

/// out[i0 .. i1, j0 .. j0 + L) (one item): tiles of quantGemmTileRows rows, then the rows left one at a time;
/// a panel past the last whole one row by row. Activation row i's blocks are row i - actRow0 of `act`.
void KernelEmitter::emitQuantGemmItem(const Tensor &w, const Tensor &out, const QuantActivations &act, Value actRow0,
                                      Value i0, Value i1, Value nb, Value N, Value j0) {
  const int64_t L = quantGemmLanes(), R = quantGemmTileRows();
  Value full = arith::CmpIOp::create(b_, arith::CmpIPredicate::sle, add(j0, c64(L)), N);
  ifElse(
      full,
      [&] {
        Value tiles = arith::DivSIOp::create(b_, sub(i1, i0), c64(R));
        forLoop(c64(0), tiles, [&](Value t) {
          Value i = add(i0, mul(t, c64(R)));
          emitQuantGemmTile(w, out, act, nb, N, i, sub(i, actRow0), j0, R);
        });
        forLoop(add(i0, mul(tiles, c64(R))), i1,
                [&](Value i) { emitQuantGemmTile(w, out, act, nb, N, i, sub(i, actRow0), j0, 1); });
      },
      [&] {
        forLoop(j0, N, [&](Value j) {
          forLoop(i0, i1, [&](Value i) { emitQuantGemvRow(w, out, act, nb, N, i, j, sub(i, actRow0)); });
        });
      });
}

/// malloc(bytes), or null without calling it when bytes <= 0.
Value KernelEmitter::emitMallocOrNull(Value bytes) {
  Value wanted = arith::CmpIOp::create(b_, arith::CmpIPredicate::sgt, bytes, c64(0));
  auto ifOp = scf::IfOp::create(b_, TypeRange{ptrTy_}, wanted, /*withElseRegion=*/true);
  OpBuilder::InsertionGuard guard(b_);
  b_.setInsertionPointToStart(ifOp.thenBlock());
  scf::YieldOp::create(b_, func::CallOp::create(b_, kMalloc, TypeRange{ptrTy_}, ValueRange{bytes}).getResult(0));
  b_.setInsertionPointToStart(ifOp.elseBlock());
  scf::YieldOp::create(b_, (Value)LLVM::ZeroOp::create(b_, ptrTy_));
  return ifOp.getResult(0);
}

/// Decode rows (pathRows <= kQuantGemvMaxRows): the GEMV, its activations quantized on the stack. More: the
/// int8 GEMM, the rows of this call's items quantized into a malloc'd scratch; without the memory, each row
/// quantized on the stack just before its products (the same bytes: a kernel never fails). A target without
/// VNNI: emitQuantMatmulSgemm.
LogicalResult KernelEmitter::emitQuantMatmul(const Tensor &a, const Tensor &w, const Tensor &out, Value M, Value K,
                                             Value N, Value pathRows) {
  if (!quantGemmInt8())
    return emitQuantMatmulSgemm(a, w, out, M, K, N, pathRows);
  Type i8 = b_.getI8Type();
  const int64_t L = quantGemmLanes();
  auto ceilDiv = [&](Value x, int64_t d) { return (Value)arith::DivSIOp::create(b_, add(x, c64(d - 1)), c64(d)); };
  Value few = arith::CmpIOp::create(b_, arith::CmpIPredicate::sle, pathRows, c64(kQuantGemvMaxRows));
  Value nb = arith::DivUIOp::create(b_, K, c64(kQuantBlock));
  Value panels = arith::MaxSIOp::create(b_, ceilDiv(N, L), c64(1));
  Value extent = arith::SelectOp::create(b_, few, ceilDiv(N, kQuantGroupRows), mul(ceilDiv(M, kQuantGemmRowBlock), panels));
  rangeFlags_ = c64(0);
  auto scratchBytes = [&](Value rows) { return add(mul(rows, K), mul(mul(rows, nb), c64(8))); };
  // The GEMV's quantized rows (at most 8: M * K * 1.25 bytes on the stack), or the GEMM's one row.
  Value stackRows = arith::SelectOp::create(b_, few, M, c64(1));
  Value scratch = LLVM::AllocaOp::create(b_, ptrTy_, i8, scratchBytes(stackRows), 64);
  // The GEMM's rows of items lo .. hi - 1 (row blocks lo / panels .. (hi - 1) / panels).
  auto [lo, hi] = rangeBounds(extent);
  Value row0 = mul(arith::DivSIOp::create(b_, lo, panels), c64(kQuantGemmRowBlock));
  Value rowEnd = arith::MinSIOp::create(
      b_, M, mul(add(arith::DivSIOp::create(b_, sub(hi, c64(1)), panels), c64(1)), c64(kQuantGemmRowBlock)));
  Value none = arith::OrIOp::create(b_, few, arith::CmpIOp::create(b_, arith::CmpIPredicate::sle, hi, lo));
  Value rows = arith::SelectOp::create(b_, none, c64(0), arith::MaxSIOp::create(b_, sub(rowEnd, row0), c64(0)));
  Value heap = emitMallocOrNull(scratchBytes(rows));
  Value noHeap = LLVM::ICmpOp::create(b_, LLVM::ICmpPredicate::eq, heap, LLVM::ZeroOp::create(b_, ptrTy_));
  ifElse(
      few, [&] { emitQuantizeActivations(a, c64(0), M, K, scratch); },
      [&] { ifElse(noHeap, [] {}, [&] { emitQuantizeActivations(a, row0, rows, K, heap); }); });
  QuantActivations heapAct = quantActivations(heap, rows, K), rowAct = quantActivations(scratch, c64(1), K);
  Value cost = arith::SelectOp::create(b_, few, mul(M, mul(K, c64(kQuantGroupRows))),
                                       mul(c64(kQuantGemmRowBlock), mul(K, c64(L))));
  parallelFor(extent, cost, [&](Value item) {
    ifElse(few, [&] { emitQuantGemvGroup(w, out, scratch, M, K, N, item); },
           [&] {
             Value i0 = mul(arith::DivSIOp::create(b_, item, panels), c64(kQuantGemmRowBlock));
             Value i1 = arith::MinSIOp::create(b_, M, add(i0, c64(kQuantGemmRowBlock)));
             Value j0 = mul(arith::RemSIOp::create(b_, item, panels), c64(L));
             ifElse(
                 noHeap,
                 [&] {
                   forLoop(i0, i1, [&](Value i) {
                     emitQuantizeActivations(a, i, c64(1), K, scratch);
                     emitQuantGemmItem(w, out, rowAct, i, i, add(i, c64(1)), nb, N, j0);
                   });
                 },
                 [&] { emitQuantGemmItem(w, out, heapAct, row0, i0, i1, nb, N, j0); });
           });
  });
  ifElse(noHeap, [] {}, [&] { func::CallOp::create(b_, kFree, TypeRange{}, ValueRange{heap}); });
  return success();
}

/// Many rows on a target without VNNI, where the int8 GEMM measured slower than OpenBLAS (TinyLlama pp512 on
/// the AVX2 object: 2.5x, the plain one 2x): the activations quantized and dequantized as the int8 kernels see
/// them (emitRoundTripActivations, once per call into a malloc'd scratch), then tiles of weight rows
/// dequantized and one-thread sgemms (emitSgemmTileItem), so that the run computes what kiln eval --weights
/// does whichever object the host runs, to f32 round-off. Decode rows: the GEMV.
LogicalResult KernelEmitter::emitQuantMatmulSgemm(const Tensor &a, const Tensor &w, const Tensor &out, Value M,
                                                  Value K, Value N, Value pathRows) {
  Type i8 = b_.getI8Type();
  const GemvOrTiles range = gemvOrTiles(pathRows, kQuantGemvMaxRows, kQuantGroupRows, K, N);
  Value few = range.few, tile = range.tile, extent = range.extent;
  // The GEMV's quantized activations (at most 8 rows: M * K * 1.25 bytes on the stack), or one f32 row.
  Value rowsQuantized = arith::SelectOp::create(b_, few, M, c64(0));
  Value bytes = add(mul(rowsQuantized, K), mul(mul(rowsQuantized, arith::DivUIOp::create(b_, K, c64(32))), c64(8)));
  Value scratch = LLVM::AllocaOp::create(b_, ptrTy_, i8, arith::MaxSIOp::create(b_, bytes, mul(K, c64(4))), 64);
  Value roundTrip = emitMallocOrNull(arith::SelectOp::create(b_, few, c64(0), mul(mul(M, K), c64(4))));
  Value noRoundTrip = LLVM::ICmpOp::create(b_, LLVM::ICmpPredicate::eq, roundTrip, LLVM::ZeroOp::create(b_, ptrTy_));
  ifElse(
      few, [&] { emitQuantizeActivations(a, c64(0), M, K, scratch); },
      [&] { ifElse(noRoundTrip, [] {}, [&] { emitRoundTripActivations(a, c64(0), M, K, roundTrip); }); });
  Value cost = arith::SelectOp::create(b_, few, mul(M, mul(K, c64(kQuantGroupRows))), mul(M, mul(K, tile)));
  parallelFor(extent, cost, [&](Value item) {
    ifElse(few, [&] { emitQuantGemvGroup(w, out, scratch, M, K, N, item); },
           [&] { emitQuantSgemmItem(a, w, out, roundTrip, scratch, tile, item, M, K, N); });
  });
  ifElse(noRoundTrip, [] {}, [&] { func::CallOp::create(b_, kFree, TypeRange{}, ValueRange{roundTrip}); });
  return success();
}

/// Tile `item` of the sgemm path: against the round-tripped activations, or without their scratch (null) row
/// by row, each row round-tripped into rowBuffer (K floats) first.
void KernelEmitter::emitQuantSgemmItem(const Tensor &a, const Tensor &w, const Tensor &out, Value roundTrip,
                                       Value rowBuffer, Value tile, Value item, Value M, Value K, Value N) {
  Value noRoundTrip = LLVM::ICmpOp::create(b_, LLVM::ICmpPredicate::eq, roundTrip, LLVM::ZeroOp::create(b_, ptrTy_));
  ifElse(
      noRoundTrip,
      [&] {
        forLoop(c64(0), M, [&](Value i) {
          emitRoundTripActivations(a, i, c64(1), K, rowBuffer);
          Tensor outRow{LLVM::GEPOp::create(b_, ptrTy_, f32_, out.ptr, ValueRange{mul(i, N)}), f32_, f32_, {}, {}};
          emitSgemmTileItem({rowBuffer, f32_, f32_, {}, {}}, w, outRow, tile, item, c64(1), K, N, /*transposed=*/true);
        });
      },
      [&] { emitSgemmTileItem({roundTrip, f32_, f32_, {}, {}}, w, out, tile, item, M, K, N, /*transposed=*/true); });
}

/// rms_norm (ins = x, w) and layer_norm (ins = x, w, b) over the last axis.
LogicalResult KernelEmitter::emitNorm(Operation *op, const OpTensors &bufs) {
  ArrayRef<Tensor> ins = bufs.ins;
  const Tensor &out = bufs.outs[0];
  auto rms = dyn_cast<ir::RmsNormOp>(op);
  double eps = rms ? rms.getEps().convertToDouble() : cast<ir::LayerNormOp>(op).getEps().convertToDouble();
  return emitNormRows(op, ins[0], nullptr, nullptr, ins[1], rms ? nullptr : &ins[2], out, eps, bool(rms),
                      rms && rms.getUnitOffset());
}

/// add_rms_norm (ins = x, r, w) and add_layer_norm (ins = x, r, w, b): the norm of h = x + r, which is
/// stored too (the next residual).
LogicalResult KernelEmitter::emitAddNorm(Operation *op, const OpTensors &bufs) {
  ArrayRef<Tensor> ins = bufs.ins;
  const Tensor &h = bufs.outs[0], &y = bufs.outs[1];
  auto rms = dyn_cast<ir::AddRmsNormOp>(op);
  double eps = rms ? rms.getEps().convertToDouble() : cast<ir::AddLayerNormOp>(op).getEps().convertToDouble();
  return emitNormRows(op, ins[0], &ins[1], &h, ins[2], rms ? nullptr : &ins[3], y, eps, bool(rms),
                      rms && rms.getUnitOffset());
}

/// The norms, row by row over the last axis: y = (v - mean) * rsqrt(var + eps) * w (+ bias), with v = x, or
/// v = h = x + residual when `residual` is set (then h is stored in the first pass, which also accumulates
/// its sum / sum of squares, and read back from the row just written, in cache). rms: mean = 0 and var = the
/// mean of v^2; layer_norm: var = the mean of (v - mean)^2, a second pass (no cancellation).
LogicalResult KernelEmitter::emitNormRows(Operation *op, const Tensor &x, const Tensor *residual, const Tensor *h,
                                          const Tensor &w, const Tensor *bias, const Tensor &y, double eps,
                                          bool rms, bool unitOffset) {
  if (x.dims.empty() || !x.isFloat())
    return fail(op, "input must be a float tensor of rank >= 1");
  const Tensor &v = residual ? *h : x;
  Value n = x.dims.back(), rows = product(ArrayRef<Value>(x.dims).drop_back());
  Value nf = castTo(n, accTy_);
  auto addf = [&](Value a, Value c) { return (Value)arith::AddFOp::create(b_, a, c); };
  auto mulf = [&](Value a, Value c) { return (Value)arith::MulFOp::create(b_, a, c); };
  auto sumOver = [&](llvm::function_ref<Value(Value)> term) {
    return forLoop(c64(0), n, {cf32(0.0)}, [&](Value i, ValueRange a) -> SmallVector<Value> {
      return {addf(a[0], term(i))};
    })[0];
  };
  parallelFor(rows, mul(n, c64(3)), [&](Value r) {
    Value base = mul(r, n);
    auto vi = [&](Value i) { return load(v, add(base, i)); };
    Value acc; // the first pass's sum (layer_norm) or sum of squares (rms), when it stores h
    if (residual)
      acc = sumOver([&](Value i) {
        store(*h, add(base, i), addf(load(x, add(base, i)), load(*residual, add(base, i))));
        Value hi = vi(i); // as stored
        return rms ? mulf(hi, hi) : hi;
      });
    Value mean = cf32(0.0);
    if (!rms)
      mean = arith::DivFOp::create(b_, residual ? acc : sumOver(vi), nf);
    Value ss = rms && residual ? acc : sumOver([&](Value i) {
      Value d = arith::SubFOp::create(b_, vi(i), mean);
      return mulf(d, d);
    });
    Value var = arith::DivFOp::create(b_, ss, nf);
    Value inv = arith::DivFOp::create(b_, cf32(1.0), math::SqrtOp::create(b_, addf(var, cf32(eps))));
    forLoop(c64(0), n, [&](Value i) {
      Value wi = load(w, i);
      if (unitOffset)
        wi = addf(cf32(1.0), wi);
      Value out = mulf(mulf(arith::SubFOp::create(b_, vi(i), mean), inv), wi);
      if (bias)
        out = addf(out, load(*bias, i));
      store(y, add(base, i), out);
    });
  });
  return success();
}

LogicalResult KernelEmitter::emitRope(Operation *ropeOp, const OpTensors &bufs) {
  auto op = cast<ir::RopeOp>(ropeOp);
  ArrayRef<Tensor> ins = bufs.ins;
  const Tensor &out = bufs.outs[0];
  const Tensor &x = ins[0], &pos = ins[1], &freq = ins[2];
  if (x.dims.size() != 4 || pos.dims.size() != 2 || !x.isFloat())
    return fail(op, "input must be float [b, h, s, d] and positions [b, s]");
  Value B = x.dims[0], H = x.dims[1], S = x.dims[2], D = x.dims[3];
  Value half = product(freq.dims);
  bool interleaved = op.getInterleaved();
  Type f64 = b_.getF64Type();
  auto mulf = [&](Value a, Value c) { return (Value)arith::MulFOp::create(b_, a, c); };
  // The result may be a KV-cache view (rows rowCapacity apart per (batch, head)): its own row base.
  Value So = out.rowCapacity > 0 ? c64(out.rowCapacity) : S;
  auto rowBase = [&](Value bi, Value h, Value s) { return mul(add(mul(add(mul(bi, H), h), S), s), D); };
  auto outRowBase = [&](Value bi, Value h, Value s) { return mul(add(mul(add(mul(bi, H), h), So), s), D); };
  // Channels past the rotated ones pass through (partial rotary).
  Value rotated = mul(half, c64(2));
  // The parallel loop: one (batch, position) per item, all its heads (the angles are computed once).
  parallelFor(mul(B, S), mul(H, D), [&](Value item) {
    Value bi = arith::DivUIOp::create(b_, item, S), s = arith::RemUIOp::create(b_, item, S);
    // The angle in f64: positions reach 1e5 and more, where an f32 product loses the phase.
    Value p = castTo(load(pos, item), f64);
    forLoop(c64(0), half, [&](Value i) {
      Value angle = mulf(p, castTo(load(freq, i), f64));
      Value c = castTo(math::CosOp::create(b_, angle), f32_), sn = castTo(math::SinOp::create(b_, angle), f32_);
      Value i1 = interleaved ? mul(i, c64(2)) : i;
      Value i2 = interleaved ? add(i1, c64(1)) : add(i, half);
      forLoop(c64(0), H, [&](Value h) {
        Value base = rowBase(bi, h, s), obase = outRowBase(bi, h, s);
        Value x1 = load(x, add(base, i1)), x2 = load(x, add(base, i2));
        store(out, add(obase, i1), arith::SubFOp::create(b_, mulf(x1, c), mulf(x2, sn)));
        store(out, add(obase, i2), arith::AddFOp::create(b_, mulf(x2, c), mulf(x1, sn)));
      });
    });
    forLoop(c64(0), H, [&](Value h) {
      Value base = rowBase(bi, h, s), obase = outRowBase(bi, h, s);
      forLoop(rotated, D, [&](Value d) { storeRaw(out, add(obase, d), loadRaw(x, add(base, d))); });
    });
  });
  return success();
}

/// The attention kernel's operands and the state of the row being computed (emitAttention and its pieces).
struct KernelEmitter::AttentionRow {
  const Tensor *q, *k, *v, *padding, *bias;
  Tensor acc;                   // kRows x Dv floats on the stack: each row's accumulator
  Tensor probs;                 // kRows x vw_ floats on the stack: a block's probabilities (f32 path)
  Value T, S, D, Dv, Hq, bi, h, i; // sizes; the batch; the head and query index of the scalar path's row
  Value qBase, kBase, vBase;    // element offsets of that query row and of the (batch, kv head) K / V
  double scale;
  std::optional<double> softcap;
  SmallVector<Value> biasStrides;
  bool causal;
  std::optional<uint64_t> window;
  bool vec;                     // f32 q / k / v: the rows-at-once path with <vw_ x f32> vectors
  bool dTail, dvTail;           // D / Dv may not be a multiple of vw_ (not a constant multiple)
};

/// The keys query i sees, [lo, hi): it sits at position t - s + i (the KV-cache offset); causal: keys j <= that
/// position, and with a window only position - j < window; else all t keys. lo <= hi.
std::pair<Value, Value> KernelEmitter::attentionBounds(const AttentionRow &a, Value i) {
  Value lo = c64(0), hi = a.T;
  if (a.causal) {
    Value position = add(sub(a.T, a.S), i);
    hi = arith::MaxSIOp::create(b_, c64(0), arith::MinSIOp::create(b_, a.T, add(position, c64(1))));
    if (a.window)
      lo = arith::MaxSIOp::create(b_, c64(0), sub(add(position, c64(1)), c64((int64_t)*a.window)));
  }
  return {arith::MinSIOp::create(b_, lo, hi), hi};
}

/// The score of key j for the scalar path's row: q . k_j * scale, soft-capped, plus the bias; -inf for a
/// padded key.
Value KernelEmitter::attentionScore(const AttentionRow &a, Value j) {
  Value kRow = add(a.kBase, mul(j, a.D));
  Value dot = forLoop(c64(0), a.D, {cf32(0.0)}, [&](Value d, ValueRange s) -> SmallVector<Value> {
                Value qd = load(*a.q, add(a.qBase, d)), kd = load(*a.k, add(kRow, d));
                return {arith::AddFOp::create(b_, s[0], mulf(qd, kd))};
              })[0];
  Value score = mulf(dot, cf32(a.scale));
  if (a.softcap)
    score = mulf(cf32(*a.softcap), math::TanhOp::create(b_, mulf(score, cf32(1.0 / *a.softcap))));
  if (a.bias) {
    const SmallVector<Value> &st = a.biasStrides;
    Value off = add(add(mul(a.bi, st[0]), mul(a.h, st[1])), add(mul(a.i, st[2]), mul(j, st[3])));
    score = arith::AddFOp::create(b_, score, load(*a.bias, off));
  }
  // A hidden key (padding) is a score of -inf: it changes neither m nor l nor the accumulator.
  if (a.padding) {
    Value valid = nonzero(load(*a.padding, add(mul(a.bi, a.T), j)));
    score = arith::SelectOp::create(b_, valid, score, cf32(-std::numeric_limits<double>::infinity()));
  }
  return score;
}

/// One key into the scalar path's online softmax (accumulator row 0): returns the new (m, l).
SmallVector<Value> KernelEmitter::attentionKey(const AttentionRow &a, Value j, Value m, Value l) {
  Value score = attentionScore(a, j);
  Value mNew = arith::MaximumFOp::create(b_, m, score);
  // While every score so far is -inf nothing accumulates (and exp(-inf - -inf) would be NaN).
  Value none = arith::CmpFOp::create(b_, arith::CmpFPredicate::OEQ, mNew, cf32(-std::numeric_limits<double>::infinity()));
  Value corr = arith::SelectOp::create(b_, none, cf32(1.0), math::ExpOp::create(b_, arith::SubFOp::create(b_, m, mNew)));
  Value p = arith::SelectOp::create(b_, none, cf32(0.0), math::ExpOp::create(b_, arith::SubFOp::create(b_, score, mNew)));
  Value vRow = add(a.vBase, mul(j, a.Dv));
  forLoop(c64(0), a.Dv, [&](Value d) {
    Value acc = mulf(loadRaw(a.acc, d), corr);
    storeRaw(a.acc, d, arith::AddFOp::create(b_, acc, mulf(p, load(*a.v, add(vRow, d)))));
  });
  return {mNew, arith::AddFOp::create(b_, mulf(l, corr), p)};
}

/// vw_ vectors of vw_ lanes -> one whose lane k is the sum of vector k's lanes, by log2(vw_) rounds of pairwise
/// shuffles and adds (for 8: 14 shuffles and 7 adds instead of eight horizontal sums). Each round adds a vector's
/// lane j to its lane j + half within the lanes it still holds and packs the owners of a pair side by side, in
/// order, so that after the last round lane k holds vector k's sum.
Value KernelEmitter::sumLanesOfEach(ArrayRef<Value> v) {
  const int64_t W = vw_;
  SmallVector<Value> level(v.begin(), v.end());
  for (int64_t held = W; held > 1; held /= 2) { // lanes per owner before this round
    SmallVector<int32_t> lo, hi;
    for (int64_t side = 0; side < 2; ++side)     // the pair's first vector, then its second
      for (int64_t owner = 0; owner < W / held; ++owner)
        for (int64_t j = 0; j < held / 2; ++j) {
          lo.push_back(int32_t(side * W + owner * held + j));
          hi.push_back(int32_t(side * W + owner * held + j + held / 2));
        }
    SmallVector<Value> next;
    for (size_t k = 0; k + 1 < level.size(); k += 2)
      next.push_back(arith::AddFOp::create(b_, LLVM::ShuffleVectorOp::create(b_, level[k], level[k + 1], lo),
                                           LLVM::ShuffleVectorOp::create(b_, level[k], level[k + 1], hi)));
    level = next;
  }
  return level[0];
}

/// q . k for one query row (element offset qBase) and the vw_ keys at keyRows: one vector, lane k for key k.
Value KernelEmitter::attentionDots(const AttentionRow &a, Value qBase, ArrayRef<Value> keyRows) {
  Value dEnd = a.dTail ? floorToVec(a.D) : a.D;
  SmallVector<Value> init(vw_, zeroVec());
  SmallVector<Value> accs = forLoopVec(c64(0), dEnd, init, [&](Value d, ValueRange s) -> SmallVector<Value> {
    Value qd = loadVec(*a.q, add(qBase, d));
    SmallVector<Value> next;
    for (int64_t kk = 0; kk < vw_; ++kk)
      next.push_back(math::FmaOp::create(b_, qd, loadVec(*a.k, add(keyRows[kk], d)), s[kk]));
    return next;
  });
  Value dots = sumLanesOfEach(accs);
  if (!a.dTail)
    return dots;
  Value tail = zeroVec();
  for (int64_t kk = 0; kk < vw_; ++kk) {
    Value t = forLoop(dEnd, a.D, {cf32(0.0)}, [&](Value d, ValueRange s) -> SmallVector<Value> {
                Value p = mulf(load(*a.q, add(qBase, d)), load(*a.k, add(keyRows[kk], d)));
                return {arith::AddFOp::create(b_, s[0], p)};
              })[0];
    tail = LLVM::InsertElementOp::create(b_, tail, t, c64(kk));
  }
  return arith::AddFOp::create(b_, dots, tail);
}

/// Keys [j0, j0 + 8) into the online softmax of every row of `rows` at once (f32): per row the scores of the
/// block in one vector (masked outside the row's [lo, hi) and for padded keys), one rescale of its accumulator
/// and its probabilities by a vector exp; each V row of the block is loaded once for all rows. The last block
/// (`last`) may pass the rows' last key (jHi): its keys past it read key jHi - 1 and are masked. `ml` holds every
/// row's (m, l); returns the new ones.
SmallVector<Value> KernelEmitter::attentionRowsBlock(const AttentionRow &a, const AttentionRows &rows, Value j0,
                                                     ValueRange ml, bool last) {
  const double ninf = -std::numeric_limits<double>::infinity();
  const int64_t R = (int64_t)rows.qBase.size();
  SmallVector<Value> keyRows, vRows, keys;
  Value padValid;
  VectorType validTy = VectorType::get({vw_}, b_.getI1Type());
  Type padStorage = a.padding ? a.padding->storage : Type();
  bool padVector = a.padding && !last && isa<IntegerType>(padStorage);
  if (padVector) { // 8 consecutive mask elements at once
    VectorType padTy = VectorType::get({vw_}, padStorage);
    Value mask = LLVM::LoadOp::create(b_, padTy, address(*a.padding, add(mul(a.bi, a.T), j0)), 1);
    Value zero = arith::ConstantOp::create(b_, DenseElementsAttr::get(padTy, APInt(padStorage.getIntOrFloatBitWidth(), 0)));
    padValid = arith::CmpIOp::create(b_, arith::CmpIPredicate::ne, mask, zero);
  } else if (a.padding) {
    padValid = LLVM::PoisonOp::create(b_, validTy);
  }
  for (int64_t kk = 0; kk < vw_; ++kk) {
    Value j = add(j0, c64(kk));
    if (last)
      j = arith::MinSIOp::create(b_, j, sub(rows.jHi, c64(1)));
    keys.push_back(j);
    keyRows.push_back(add(a.kBase, mul(j, a.D)));
    vRows.push_back(add(a.vBase, mul(j, a.Dv)));
    if (a.padding && !padVector)
      padValid = LLVM::InsertElementOp::create(b_, padValid, nonzero(load(*a.padding, add(mul(a.bi, a.T), j))),
                                               c64(kk));
  }
  VectorType laneTy = VectorType::get({vw_}, i64_);
  SmallVector<int64_t> laneIndex;
  for (int64_t kk = 0; kk < vw_; ++kk)
    laneIndex.push_back(kk);
  Value lanes = arith::ConstantOp::create(b_, DenseElementsAttr::get(laneTy, ArrayRef<int64_t>(laneIndex)));
  SmallVector<Value> next, corrs, sums;
  Value diffs = zeroVec();
  for (int64_t r = 0; r < R; ++r) {
    Value s = arith::MulFOp::create(b_, attentionDots(a, rows.qBase[r], keyRows), splat(cf32(a.scale)));
    if (a.softcap)
      s = arith::MulFOp::create(b_, splat(cf32(*a.softcap)),
                                math::TanhOp::create(b_, arith::MulFOp::create(b_, s, splat(cf32(1.0 / *a.softcap)))));
    if (a.bias) {
      const SmallVector<Value> &st = a.biasStrides;
      Value rowOff = add(add(mul(a.bi, st[0]), mul(rows.h[r], st[1])), mul(rows.i[r], st[2]));
      Value bias = zeroVec();
      for (int64_t kk = 0; kk < vw_; ++kk)
        bias = LLVM::InsertElementOp::create(b_, bias, load(*a.bias, add(rowOff, mul(keys[kk], st[3]))), c64(kk));
      s = arith::AddFOp::create(b_, s, bias);
    }
    // Lane k is key j0 + k: visible when lo <= j0 + k < hi (and not padded).
    Value valid = arith::AndIOp::create(
        b_, arith::CmpIOp::create(b_, arith::CmpIPredicate::sge, lanes, splatAs(sub(rows.lo[r], j0), laneTy)),
        arith::CmpIOp::create(b_, arith::CmpIPredicate::slt, lanes, splatAs(sub(rows.hi[r], j0), laneTy)));
    if (a.padding)
      valid = arith::AndIOp::create(b_, valid, padValid);
    s = arith::SelectOp::create(b_, valid, s, splat(cf32(ninf)));
    Value m = ml[2 * r];
    Value mNew = maxAsX86(horizontalMaxAsX86(s), m);
    // While every score so far is -inf nothing accumulates (and exp(-inf - -inf) would be NaN).
    Value none = arith::CmpFOp::create(b_, arith::CmpFPredicate::OEQ, mNew, cf32(ninf));
    // Every score <= mNew; with none, all are -inf and exp gives 0.
    Value shift = arith::SelectOp::create(b_, none, cf32(0.0), mNew);
    Value p = expNonPositive(arith::SubFOp::create(b_, s, splat(shift)));
    storeVec(a.probs, c64(r * vw_), p);
    // m - mNew <= 0 for lane r of one vector exp below (a libm call here would spill every vector register).
    Value diff = arith::SelectOp::create(b_, none, cf32(0.0), arith::SubFOp::create(b_, m, mNew));
    diffs = LLVM::InsertElementOp::create(b_, diffs, diff, c64(r % vw_));
    sums.push_back(horizontalSum(p));
    next.push_back(mNew);
    if (r % vw_ == vw_ - 1 || r == R - 1) {
      Value e = expNonPositive(diffs);
      for (int64_t k = r - r % vw_; k <= r; ++k)
        corrs.push_back(LLVM::ExtractElementOp::create(b_, e, c64(k % vw_)));
    }
  }
  for (int64_t r = 0; r < R; ++r)
    next.insert(next.begin() + 2 * r + 1, arith::AddFOp::create(b_, mulf(ml[2 * r + 1], corrs[r]), sums[r]));
  attentionRowsValues(a, rows, vRows, corrs);
  return next;
}

/// acc[r] = acc[r] * corr[r] + sum_k probs[r][k] * v_k for every row r of `rows` and the block's V rows
/// (vRows): each V vector is loaded once for all rows.
void KernelEmitter::attentionRowsValues(const AttentionRow &a, const AttentionRows &rows, ArrayRef<Value> vRows,
                                        ArrayRef<Value> corrs) {
  const int64_t R = (int64_t)rows.qBase.size();
  auto prob = [&](int64_t r, int64_t kk) { return loadRaw(a.probs, c64(r * vw_ + kk)); };
  Value vEnd = a.dvTail ? floorToVec(a.Dv) : a.Dv;
  forLoopVec(c64(0), vEnd, {}, [&](Value d, ValueRange) -> SmallVector<Value> {
    SmallVector<Value> vk;
    for (int64_t kk = 0; kk < vw_; ++kk)
      vk.push_back(loadVec(*a.v, add(vRows[kk], d)));
    for (int64_t r = 0; r < R; ++r) {
      Value at = add(mul(c64(r), a.Dv), d);
      Value acc = arith::MulFOp::create(b_, loadVec(a.acc, at), splat(corrs[r]));
      for (int64_t kk = 0; kk < vw_; ++kk)
        acc = math::FmaOp::create(b_, splat(prob(r, kk)), vk[kk], acc);
      storeVec(a.acc, at, acc);
    }
    return {};
  });
  if (!a.dvTail)
    return;
  forLoop(vEnd, a.Dv, [&](Value d) {
    SmallVector<Value> vk;
    for (int64_t kk = 0; kk < vw_; ++kk)
      vk.push_back(load(*a.v, add(vRows[kk], d)));
    for (int64_t r = 0; r < R; ++r) {
      Value at = add(mul(c64(r), a.Dv), d);
      Value acc = mulf(loadRaw(a.acc, at), corrs[r]);
      for (int64_t kk = 0; kk < vw_; ++kk)
        acc = math::FmaOp::create(b_, prob(r, kk), vk[kk], acc);
      storeRaw(a.acc, at, acc);
    }
  });
}

/// exp(x) on <vw_ x f32> for x <= 0 (scores minus their running max), as MLIR's polynomial approximation of
/// exp: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by Cephes' degree-7 polynomial, 2^n from the exponent bits.
/// Below -87.3 (2^n would be subnormal), and for -inf, it gives 0. About 1 ulp.
Value KernelEmitter::expNonPositive(Value x) {
  auto vc = [&](double c) {
    return (Value)arith::ConstantOp::create(b_, DenseElementsAttr::get(cast<ShapedType>(vecType()), (float)c));
  };
  auto fma = [&](Value p, Value q, Value r) { return (Value)math::FmaOp::create(b_, p, q, r); };
  const double lowest = -87.33654;
  // max(x, lowest) keeping a NaN x (one maxps).
  Value xc = arith::SelectOp::create(b_, arith::CmpFOp::create(b_, arith::CmpFPredicate::OLT, x, vc(lowest)), vc(lowest), x);
  Value n = math::FloorOp::create(b_, fma(xc, vc(1.44269504088896341), vc(0.5)));
  Value r = fma(n, vc(-0.693359375), xc);
  r = fma(n, vc(2.12194440e-4), r);
  Value p = vc(1.9875691500E-4);
  for (double c : {1.3981999507E-3, 8.3334519073E-3, 4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1})
    p = fma(p, r, vc(c));
  Value y = fma(p, arith::MulFOp::create(b_, r, r), arith::AddFOp::create(b_, r, vc(1.0)));
  Type vi32 = VectorType::get({vw_}, b_.getI32Type());
  auto ic = [&](int64_t c) {
    return (Value)arith::ConstantOp::create(b_, DenseElementsAttr::get(cast<ShapedType>(vi32), (int32_t)c));
  };
  Value bits = arith::ShLIOp::create(b_, arith::AddIOp::create(b_, arith::FPToSIOp::create(b_, vi32, n), ic(127)), ic(23));
  Value scaled = arith::MulFOp::create(b_, y, arith::BitcastOp::create(b_, vecType(), bits));
  Value under = arith::CmpFOp::create(b_, arith::CmpFPredicate::OLT, x, vc(lowest));
  return arith::SelectOp::create(b_, under, vc(0.0), scaled);
}

/// The query rows u of the (batch, kv head) a.kBase / a.vBase addresses, u = g * s + i for query head
/// kvHead * group + g and query index i: their offsets and visible keys, and the union of those, [jLo, jHi).
KernelEmitter::AttentionRows KernelEmitter::attentionRows(const AttentionRow &a, Value kvHead, Value group,
                                                          ArrayRef<Value> us) {
  AttentionRows rows;
  for (Value u : us) {
    Value i = arith::RemUIOp::create(b_, u, a.S);
    Value h = add(mul(kvHead, group), arith::DivUIOp::create(b_, u, a.S));
    Value row = add(mul(add(mul(a.bi, a.Hq), h), a.S), i);
    auto [lo, hi] = attentionBounds(a, i);
    rows.h.push_back(h), rows.i.push_back(i), rows.lo.push_back(lo), rows.hi.push_back(hi);
    rows.qBase.push_back(mul(row, a.D));
    rows.oBase.push_back(mul(row, a.Dv));
    rows.jLo = rows.jLo ? (Value)arith::MinSIOp::create(b_, rows.jLo, lo) : lo;
    rows.jHi = rows.jHi ? (Value)arith::MaxSIOp::create(b_, rows.jHi, hi) : hi;
  }
  return rows;
}

/// The f32 path for the rows `us` (all of one batch and kv head): zeroed accumulators, the key blocks of
/// their union range (attentionRowsBlock), then each row's acc / l into the output (a row that sees no key
/// gives zeros).
void KernelEmitter::emitAttentionRows(const AttentionRow &a, const Tensor &out, Value kvHead, Value group,
                                      ArrayRef<Value> us) {
  AttentionRows rows = attentionRows(a, kvHead, group, us);
  const int64_t R = (int64_t)us.size();
  forLoop(c64(0), mul(c64(R), a.Dv), [&](Value d) { storeRaw(a.acc, d, cf32(0.0)); });
  SmallVector<Value> ml;
  for (int64_t r = 0; r < R; ++r)
    ml.append({cf32(-std::numeric_limits<double>::infinity()), cf32(0.0)});
  // Whole blocks, then the last keys as one block that runs past jHi (a loop of zero or one iteration).
  Value wholeEnd = add(rows.jLo, floorToVec(sub(rows.jHi, rows.jLo)));
  ml = forLoopVec(rows.jLo, wholeEnd, ml,
                  [&](Value j0, ValueRange st) { return attentionRowsBlock(a, rows, j0, st, false); });
  ml = forLoopVec(wholeEnd, rows.jHi, ml,
                  [&](Value j0, ValueRange st) { return attentionRowsBlock(a, rows, j0, st, true); });
  for (int64_t r = 0; r < R; ++r) {
    Value l = ml[2 * r + 1];
    Value empty = arith::CmpFOp::create(b_, arith::CmpFPredicate::OEQ, l, cf32(0.0));
    Value invL = arith::SelectOp::create(b_, empty, cf32(0.0), arith::DivFOp::create(b_, cf32(1.0), l));
    Value accRow = mul(c64(r), a.Dv);
    forLoop(c64(0), a.Dv, [&](Value d) {
      store(out, add(rows.oBase[r], d), arith::MulFOp::create(b_, loadRaw(a.acc, add(accRow, d)), invL));
    });
  }
}

/// The scalar path (f16 / bf16 query, key or value): the row u (as attentionRows), key by key.
void KernelEmitter::emitAttentionRowScalar(AttentionRow &a, const Tensor &out, Value kvHead, Value group, Value u) {
  a.i = arith::RemUIOp::create(b_, u, a.S);
  a.h = add(mul(kvHead, group), arith::DivUIOp::create(b_, u, a.S));
  Value row = add(mul(add(mul(a.bi, a.Hq), a.h), a.S), a.i);
  a.qBase = mul(row, a.D);
  forLoop(c64(0), a.Dv, [&](Value d) { storeRaw(a.acc, d, cf32(0.0)); });
  auto [lo, hi] = attentionBounds(a, a.i);
  SmallVector<Value> ml = {cf32(-std::numeric_limits<double>::infinity()), cf32(0.0)};
  ml = forLoop(lo, hi, ml, [&](Value j, ValueRange st) { return attentionKey(a, j, st[0], st[1]); });
  Value l = ml[1];
  Value empty = arith::CmpFOp::create(b_, arith::CmpFPredicate::OEQ, l, cf32(0.0));
  Value invL = arith::SelectOp::create(b_, empty, cf32(0.0), arith::DivFOp::create(b_, cf32(1.0), l));
  Value oBase = mul(row, a.Dv);
  forLoop(c64(0), a.Dv, [&](Value d) { store(out, add(oBase, d), arith::MulFOp::create(b_, loadRaw(a.acc, d), invL)); });
}

/// Online softmax over the visible keys of each query row: running max m, running sum l and an f32
/// accumulator of dv values per row on the stack, so no score tensor and no heap. The parallel loop's items
/// are blocks of kRows query rows of one (batch, kv head) (GQA: the group's heads' rows together), so each
/// key and value row loaded serves them all; a block's split never depends on the thread count. f32 runs the
/// rows of a full block at once in blocks of vw_ keys (emitAttentionRows: 8, or 16 on an AVX-512 target when the
/// head dims are multiples of 16), a last partial block row by row; other types row by row, key by key. The causal / window mask becomes per-row key bounds; padding is per key.
LogicalResult KernelEmitter::emitAttention(Operation *attentionOp, const OpTensors &bufs) {
  auto op = cast<ir::AttentionOp>(attentionOp);
  ArrayRef<Tensor> ins = bufs.ins;
  const Tensor &out = bufs.outs[0];
  const Tensor &q = ins[0], &k = ins[1], &v = ins[2];
  if (q.dims.size() != 4 || k.dims.size() != 4 || v.dims.size() != 4 || !q.isFloat())
    return fail(op, "query, key and value must be float tensors of rank 4");
  AttentionRow a;
  a.q = &q, a.k = &k, a.v = &v;
  size_t next = 3;
  a.padding = op.getKeyPaddingMask() ? &ins[next++] : nullptr;
  a.bias = op.getBias() ? &ins[next++] : nullptr;
  Value B = q.dims[0], Hkv = k.dims[1];
  a.Hq = q.dims[1], a.S = q.dims[2], a.D = q.dims[3], a.T = k.dims[2], a.Dv = v.dims[3];
  // Key / value may be KV-cache views: per (batch, head) their rows span the cache's capacity, not T.
  Value Tk = k.rowCapacity > 0 ? c64(k.rowCapacity) : a.T, Tv = v.rowCapacity > 0 ? c64(v.rowCapacity) : a.T;
  // Query heads per KV head (the verifier guarantees hq = group * hkv; max(.., 1) keeps the divisions safe).
  Value group = arith::MaxSIOp::create(
      b_, arith::DivSIOp::create(b_, a.Hq, arith::MaxSIOp::create(b_, Hkv, c64(1))), c64(1));
  a.scale = op.getScale().convertToDouble();
  a.causal = op.getMask() == ir::AttentionMask::causal;
  a.window = op.getWindow();
  if (auto c = op.getSoftcap())
    a.softcap = c->convertToDouble();
  if (a.bias)
    a.biasStrides = broadcastStrides(*a.bias, 4);
  a.vec = q.elem.isF32() && k.elem.isF32() && v.elem.isF32();
  auto multipleOf = [](const SymExpr &e, int64_t n) { return e.isConstant() && e.getConstant() % n == 0; };
  // 16 lanes (blocks of 16 keys, 16 dims a vector) where the target has 512-bit vectors and the head dims fit.
  vw_ = wideVectors_ && multipleOf(q.shape[3], 16) && multipleOf(v.shape[3], 16) ? 16 : kVec;
  a.dTail = !multipleOf(q.shape[3], vw_), a.dvTail = !multipleOf(v.shape[3], vw_);
  // The accumulators and probabilities: stack slots for the whole kernel (at the function's top level,
  // outside every loop).
  Value acc = LLVM::AllocaOp::create(b_, ptrTy_, f32_, mul(c64(kRows), arith::MaxSIOp::create(b_, a.Dv, c64(1))), 64);
  a.acc = Tensor{acc, f32_, f32_, {}, {}};
  Value probs = LLVM::AllocaOp::create(b_, ptrTy_, f32_, c64(kRows * vw_), 64);
  a.probs = Tensor{probs, f32_, f32_, {}, {}};

  // The parallel loop: (batch, kv head, block of kRows rows u = g * s + i).
  Value rowsPerKvHead = mul(group, a.S);
  Value blocks = arith::DivUIOp::create(b_, add(rowsPerKvHead, c64(kRows - 1)), c64(kRows));
  parallelFor(product({B, Hkv, blocks}), mul(c64(kRows), mul(a.T, add(a.D, a.Dv))), [&](Value item) {
    SmallVector<Value> idx = decompose(item, {B, Hkv, blocks});
    a.bi = idx[0];
    Value hk = idx[1], u0 = mul(idx[2], c64(kRows));
    a.kBase = mul(mul(add(mul(a.bi, Hkv), hk), Tk), a.D);
    a.vBase = mul(mul(add(mul(a.bi, Hkv), hk), Tv), a.Dv);
    Value u1 = arith::MinSIOp::create(b_, add(u0, c64(kRows)), rowsPerKvHead);
    if (!a.vec) {
      forLoop(u0, u1, [&](Value u) { emitAttentionRowScalar(a, out, hk, group, u); });
      return;
    }
    Value full = arith::CmpIOp::create(b_, arith::CmpIPredicate::eq, sub(u1, u0), c64(kRows));
    auto ifOp = scf::IfOp::create(b_, full, /*withElseRegion=*/true);
    OpBuilder::InsertionGuard guard(b_);
    b_.setInsertionPoint(ifOp.thenBlock()->getTerminator());
    SmallVector<Value> us;
    for (int64_t r = 0; r < kRows; ++r)
      us.push_back(add(u0, c64(r)));
    emitAttentionRows(a, out, hk, group, us);
    b_.setInsertionPoint(ifOp.elseBlock()->getTerminator());
    forLoop(u0, u1, [&](Value u) { emitAttentionRows(a, out, hk, group, {u}); });
  });
  return success();
}

/// Builds the op's tensors (operands, then results) and emits its kernel by its row of the op table.
LogicalResult KernelEmitter::emit(Operation *op, ArrayRef<Value> bufferPtrs, const KernelLayout *layout) {
  const CpuRule *rule = table().find(op);
  if (!rule) {
    std::string reason = table().reason(op);
    return fail(op, reason.empty() ? std::string("no CPU lowering for this op") : "no CPU kernel: " + reason);
  }
  const unsigned numOperands = op->getNumOperands(), numBuffers = numOperands + op->getNumResults();
  auto capacityOf = [&](unsigned i) -> int64_t {
    return layout && i < layout->rowCapacity.size() ? layout->rowCapacity[i] : 0;
  };
  auto typeOf = [&](unsigned i) {
    return i < numOperands ? op->getOperand(i).getType() : op->getResult(i - numOperands).getType();
  };
  OpTensors tensors;
  tensors.appendInPlace = layout && layout->appendInPlace;
  // KV-cache views (KernelLayout): only where the op's kernel addresses them (stridesOf / rowCapacity).
  for (unsigned i = 0; i < numBuffers; ++i) {
    if (capacityOf(i) <= 0)
      continue;
    bool isResult = i >= numOperands;
    bool accepted = (rule->kvViews == KvViews::KeyValue && (i == 1 || i == 2)) ||
                    (rule->kvViews == KvViews::Result && isResult) ||
                    (rule->kvViews == KvViews::Append && tensors.appendInPlace && (isResult || i == 0));
    if (!accepted || cast<ShapedType>(typeOf(i)).getRank() != 4)
      return fail(op, "buffer " + llvm::Twine(i) + " is a strided KV-cache view, which this kernel cannot address");
  }
  if (tensors.appendInPlace && (rule->kvViews != KvViews::Append || capacityOf(0) != capacityOf(numBuffers - 1)))
    return fail(op, "an in-place append must be a kiln.concat onto the cache it appends to");
  for (unsigned i = 0; i < numBuffers; ++i) {
    FailureOr<Tensor> t = makeTensor(op, bufferPtrs[i], typeOf(i));
    if (failed(t))
      return failure();
    t->rowCapacity = capacityOf(i);
    // A 16-bit weight read in place (its convert folded): only where the op's kernel widens its loads.
    if (Type stored = layout && i < layout->elementType.size() ? layout->elementType[i] : Type()) {
      if (!isa<ir::MatmulOp, ir::GatherOp, ir::RmsNormOp, ir::LayerNormOp, ir::AddRmsNormOp, ir::AddLayerNormOp,
               ir::AddOp, ir::SubOp, ir::MulOp, ir::DivOp, ir::SliceOp>(op) ||
          !(stored.isF16() || stored.isBF16()) || !t->elem.isF32())
        return fail(op, "buffer " + llvm::Twine(i) + " holds " + printed(stored) + ", which this kernel cannot read");
      if (failed(setElementType(op, *t, stored)))
        return failure();
    }
    if (std::optional<QuantFormat> quant = layout && i < layout->quant.size() ? layout->quant[i] : std::nullopt) {
      auto matmul = dyn_cast<ir::MatmulOp>(op);
      bool readable = (matmul && i == 1 && matmul.getTransposeB()) || (isa<ir::GatherOp>(op) && i == 0);
      if (!readable || t->shape.size() != 2 || !t->elem.isF32())
        return fail(op, "buffer " + llvm::Twine(i) + " is " + quantFormatName(*quant) +
                            ", which this kernel cannot read (only a transposed matmul weight or a gather table)");
      t->quant = quant;
      t->storage = b_.getI8Type();
    }
    (i < numOperands ? tensors.ins : tensors.outs).push_back(*t);
  }
  if (failed((this->*rule->emit)(op, tensors)))
    return failure();
  if (rangeMisplaced_)
    return fail(op, "internal error: the kernel's parallel loop is not at its top level");
  return success();
}

const ir::OpTable<CpuRule> &KernelEmitter::table() {
  using E = KernelEmitter;
  using V = ArrayRef<Value>;
  static const ir::OpTable<CpuRule> table = [] {
    ir::OpTable<CpuRule> t;
    t.without<ir::WeightOp, ir::ConstantOp>("weights and constants are buffers of the artifact, not kernels");
    t.without<ir::MatmulGroupOp>("made only for the Vulkan target (kiln-fuse-matmul-groups)");
    t.without<ir::GroupOp, ir::YieldOp>("made only for the Vulkan target (kiln-group-dispatches, after the partition)");
    // Binary ops: f32, then i64 (NaN-propagating max / min; integer division truncates, like the interpreter).
    t.add<ir::AddOp>(scalar([](E &e, V v) -> Value { return arith::AddFOp::create(e.b_, v[0], v[1]); },
                            [](E &e, V v) { return e.add(v[0], v[1]); }))
        .add<ir::SubOp>(scalar([](E &e, V v) -> Value { return arith::SubFOp::create(e.b_, v[0], v[1]); },
                               [](E &e, V v) { return e.sub(v[0], v[1]); }))
        .add<ir::MulOp>(scalar([](E &e, V v) -> Value { return arith::MulFOp::create(e.b_, v[0], v[1]); },
                               [](E &e, V v) { return e.mul(v[0], v[1]); }))
        .add<ir::DivOp>(scalar([](E &e, V v) -> Value { return arith::DivFOp::create(e.b_, v[0], v[1]); },
                               [](E &e, V v) { return e.safeDiv(v[0], v[1]); }))
        .add<ir::MaxOp>(scalar([](E &e, V v) -> Value { return arith::MaximumFOp::create(e.b_, v[0], v[1]); },
                               [](E &e, V v) -> Value { return arith::MaxSIOp::create(e.b_, v[0], v[1]); }))
        .add<ir::MinOp>(scalar([](E &e, V v) -> Value { return arith::MinimumFOp::create(e.b_, v[0], v[1]); },
                               [](E &e, V v) -> Value { return arith::MinSIOp::create(e.b_, v[0], v[1]); }))
        .add<ir::PowOp>(scalar([](E &e, V v) -> Value { return math::PowFOp::create(e.b_, v[0], v[1]); },
                               [](E &e, V v) {
                                 Type f64 = e.b_.getF64Type();
                                 Value f = math::PowFOp::create(e.b_, e.castTo(v[0], f64), e.castTo(v[1], f64));
                                 return e.castTo(f, e.i64_);
                               }));
    addUnaryRows(t);
    t.add<ir::SymOp>(family(&E::emitSym))
        .add<ir::IotaOp>(family(&E::emitIota))
        .add<ir::CompareOp>(family(&E::emitCompare))
        .add<ir::SelectOp>(family(&E::emitSelect))
        .add<ir::ConvertOp>(family(&E::emitConvert))
        .add<ir::ReduceSumOp>(family(&E::emitReduceOp<ir::ReduceSumOp>))
        .add<ir::ReduceMeanOp>(family(&E::emitReduceOp<ir::ReduceMeanOp>))
        .add<ir::ReduceMaxOp>(family(&E::emitReduceOp<ir::ReduceMaxOp>))
        .add<ir::SoftmaxOp>(family(&E::emitSoftmax))
        .add<ir::MatmulOp>(family(&E::emitMatmul))
        .add<ir::GatherOp>(family(&E::emitGather))
        .add<ir::ReshapeOp>(family(&E::emitReshape))
        .add<ir::TransposeOp>(family(&E::emitTranspose, KvViews::Result))
        .add<ir::BroadcastToOp>(family(&E::emitBroadcastTo))
        .add<ir::SliceOp>(family(&E::emitSlice))
        .add<ir::TailOp>(family(&E::emitTail))
        .add<ir::ConcatOp>(family(&E::emitConcat, KvViews::Append))
        .add<ir::RmsNormOp, ir::LayerNormOp>(family(&E::emitNorm))
        .add<ir::AddRmsNormOp, ir::AddLayerNormOp>(family(&E::emitAddNorm))
        .add<ir::RopeOp>(family(&E::emitRope, KvViews::Result))
        .add<ir::AttentionOp>(family(&E::emitAttention, KvViews::KeyValue));
    return t;
  }();
  return table;
}

/// The unary rows: f32, then i64 where the op is defined on integers (neg, abs, relu).
void KernelEmitter::addUnaryRows(ir::OpTable<CpuRule> &t) {
  using E = KernelEmitter;
  using V = ArrayRef<Value>;
  t.add<ir::NegOp>(scalar([](E &e, V v) -> Value { return arith::NegFOp::create(e.b_, v[0]); },
                          [](E &e, V v) { return e.sub(e.c64(0), v[0]); }))
      .add<ir::ExpOp>(scalar([](E &e, V v) -> Value { return math::ExpOp::create(e.b_, v[0]); }))
      .add<ir::LogOp>(scalar([](E &e, V v) -> Value { return math::LogOp::create(e.b_, v[0]); }))
      .add<ir::TanhOp>(scalar([](E &e, V v) -> Value { return math::TanhOp::create(e.b_, v[0]); }))
      .add<ir::ErfOp>(scalar([](E &e, V v) -> Value { return math::ErfOp::create(e.b_, v[0]); }))
      .add<ir::CosOp>(scalar([](E &e, V v) -> Value { return math::CosOp::create(e.b_, v[0]); }))
      .add<ir::SinOp>(scalar([](E &e, V v) -> Value { return math::SinOp::create(e.b_, v[0]); }))
      .add<ir::RsqrtOp>(scalar([](E &e, V v) -> Value {
        return arith::DivFOp::create(e.b_, e.cf32(1.0), math::SqrtOp::create(e.b_, v[0]));
      }))
      .add<ir::SqrtOp>(scalar([](E &e, V v) -> Value { return math::SqrtOp::create(e.b_, v[0]); }))
      .add<ir::AbsOp>(scalar([](E &e, V v) -> Value { return math::AbsFOp::create(e.b_, v[0]); },
                             [](E &e, V v) -> Value { return math::AbsIOp::create(e.b_, v[0]); }))
      .add<ir::SigmoidOp>(scalar([](E &e, V v) { return e.sigmoid(v[0]); }))
      .add<ir::SiluOp>(scalar([](E &e, V v) -> Value { return arith::MulFOp::create(e.b_, v[0], e.sigmoid(v[0])); }))
      .add<ir::GeluOp>(scalar([](E &e, V v) { return e.gelu(v[0]); }))
      .add<ir::GeluTanhOp>(scalar([](E &e, V v) { return e.geluTanh(v[0]); }))
      // NaN stays NaN.
      .add<ir::ReluOp>(scalar([](E &e, V v) -> Value { return arith::MaximumFOp::create(e.b_, v[0], e.cf32(0.0)); },
                              [](E &e, V v) -> Value { return arith::MaxSIOp::create(e.b_, v[0], e.c64(0)); }));
}

//===----------------------------------------------------------------------===//
// Lowering, object code, linking
//===----------------------------------------------------------------------===//

Status writeFile(const std::string &path, llvm::StringRef data) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
  if (ec)
    return Status::error(path + ": " + ec.message());
  os << data;
  return Status::ok();
}

Status dumpModule(const CpuCodegenOptions &options, int &counter, llvm::StringRef phase, ModuleOp module) {
  if (options.dumpDir.empty() && !options.irDump)
    return Status::ok();
  std::string text;
  llvm::raw_string_ostream os(text);
  module.print(os);
  char name[64];
  std::snprintf(name, sizeof name, "cpu-%02d-%s.mlir", counter++, phase.str().c_str());
  if (options.irDump)
    options.irDump("// -----// IR Dump After " + std::string(name) + " //----- //\n" + text + "\n");
  if (options.dumpDir.empty())
    return Status::ok();
  if (std::error_code ec = llvm::sys::fs::create_directories(options.dumpDir))
    return Status::error(options.dumpDir + ": " + ec.message());
  return writeFile(options.dumpDir + "/" + name, text);
}

/// Runs `pm` on `module`, turning diagnostics into a one-line error.
Status runPasses(PassManager &pm, ModuleOp module, llvm::StringRef phase) {
  std::string diagnostic;
  ScopedDiagnosticHandler handler(module.getContext(), [&](Diagnostic &diag) {
    if (diagnostic.empty() && diag.getSeverity() == DiagnosticSeverity::Error) {
      llvm::raw_string_ostream os(diagnostic);
      os << diag.getLocation() << ": " << diag.str();
    }
    return success();
  });
  if (failed(pm.run(module)))
    return Status::error("cpu codegen: " + phase.str() + " failed: " + diagnostic);
  return Status::ok();
}

StatusOr<std::unique_ptr<llvm::TargetMachine>> makeTargetMachine(const CpuCodegenOptions &options) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  std::string error;
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return Status::error("cpu codegen: no LLVM target for " + triple.str() + ": " + error);
  std::string cpu = options.cpu, features;
  if (cpu.empty() || cpu == "native") {
    cpu = llvm::sys::getHostCPUName().str();
    for (const auto &f : llvm::sys::getHostCPUFeatures())
      features += (features.empty() ? "" : ",") + std::string(f.second ? "+" : "-") + f.first().str();
  }
  // Checked before the target machine exists: creating one for an unknown CPU prints LLVM's own warning.
  std::unique_ptr<llvm::MCSubtargetInfo> generic(target->createMCSubtargetInfo(triple, "", ""));
  if (!generic || !generic->isCPUStringValid(cpu))
    return Status::error("cpu codegen: '" + cpu + "' is not a CPU LLVM knows for " + triple.str());
  llvm::CodeGenOptLevel level = options.optLevel >= 3   ? llvm::CodeGenOptLevel::Aggressive
                                : options.optLevel == 2 ? llvm::CodeGenOptLevel::Default
                                : options.optLevel == 1 ? llvm::CodeGenOptLevel::Less
                                                        : llvm::CodeGenOptLevel::None;
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      triple, cpu, features, llvm::TargetOptions(), llvm::Reloc::PIC_, std::nullopt, level));
  if (!tm)
    return Status::error("cpu codegen: cannot create a target machine for cpu '" + cpu + "'");
  if (!tm->getMCSubtargetInfo()->isCPUStringValid(cpu))
    return Status::error("cpu codegen: '" + cpu + "' is not a CPU LLVM knows for " + triple.str());
  return tm;
}

/// The enabled features of `tm` that the host detection knows (the ISA's; tuning flags are not among them).
std::vector<std::string> isaFeatures(const llvm::TargetMachine &tm) {
  const llvm::StringMap<bool> detectable = llvm::sys::getHostCPUFeatures();
  const llvm::MCSubtargetInfo &sti = *tm.getMCSubtargetInfo();
  std::vector<std::string> features;
  for (const llvm::SubtargetFeatureKV &kv : sti.getAllProcessorFeatures())
    if (sti.getFeatureBits().test(kv.Value) && detectable.count(kv.Key))
      features.push_back(kv.Key);
  std::sort(features.begin(), features.end());
  return features;
}

void optimize(llvm::Module &module, llvm::TargetMachine &tm, int optLevel) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::OptimizationLevel level = optLevel >= 3   ? llvm::OptimizationLevel::O3
                                  : optLevel == 2 ? llvm::OptimizationLevel::O2
                                  : optLevel == 1 ? llvm::OptimizationLevel::O1
                                                  : llvm::OptimizationLevel::O0;
  llvm::ModulePassManager mpm = level == llvm::OptimizationLevel::O0 ? pb.buildO0DefaultPipeline(level)
                                                                     : pb.buildPerModuleDefaultPipeline(level);
  mpm.run(module, mam);
}

/// Links `object` into a shared object with clang (found at run time) against OpenBLAS and libm.
StatusOr<std::vector<uint8_t>> linkSharedObject(llvm::StringRef object) {
  llvm::ErrorOr<std::string> clang = llvm::sys::findProgramByName("clang-22");
  if (!clang)
    clang = llvm::sys::findProgramByName("clang");
  if (!clang)
    return Status::error("cpu codegen: cannot link the kernels: neither clang-22 nor clang is on PATH");
  llvm::SmallString<128> obj, so, log;
  int fd;
  if (llvm::sys::fs::createTemporaryFile("kiln-kernels", "o", obj) ||
      llvm::sys::fs::createTemporaryFile("kiln-kernels", "so", so) ||
      llvm::sys::fs::createTemporaryFile("kiln-link", "log", fd, log))
    return Status::error("cpu codegen: cannot create temporary files");
  ::close(fd);
  auto cleanup = [&] {
    llvm::sys::fs::remove(obj);
    llvm::sys::fs::remove(so);
    llvm::sys::fs::remove(log);
  };
  if (Status s = writeFile(obj.str().str(), object); !s) {
    cleanup();
    return s;
  }
  std::string objPath = obj.str().str(), soPath = so.str().str(), logPath = log.str().str();
  llvm::SmallVector<llvm::StringRef> args = {*clang, "-shared", "-o", soPath, objPath, "-lopenblas", "-lm"};
  std::optional<llvm::StringRef> redirects[] = {std::nullopt, llvm::StringRef(logPath), llvm::StringRef(logPath)};
  std::string execError;
  int rc = llvm::sys::ExecuteAndWait(*clang, args, std::nullopt, redirects, 0, 0, &execError);
  if (rc != 0) {
    std::string message;
    if (auto buf = llvm::MemoryBuffer::getFile(logPath))
      message = (*buf)->getBuffer().split('\n').first.str();
    cleanup();
    return Status::error("cpu codegen: linking the kernels with " + *clang + " failed (" +
                         (execError.empty() ? "exit " + std::to_string(rc) : execError) + "): " + message);
  }
  auto buf = llvm::MemoryBuffer::getFile(soPath);
  if (!buf) {
    cleanup();
    return Status::error("cpu codegen: cannot read the linked shared object");
  }
  std::vector<uint8_t> bytes((*buf)->getBufferStart(), (*buf)->getBufferEnd());
  cleanup();
  return bytes;
}

/// `<kernel>_range(symbols, range)` (kernel_abi.h): the kernel's extent and grain are values of its entry
/// block computed from the symbols only; the ops that compute them (symbol loads, integer arithmetic) are
/// cloned into this function, so the two always agree.
Status emitRangeFunction(ImplicitLocOpBuilder &b, func::FuncOp kernel, const KernelEmitter &emitter) {
  Type ptrTy = LLVM::LLVMPointerType::get(b.getContext()), i64 = b.getI64Type();
  Block &kernelEntry = kernel.front();
  Value symbolsArg = kernelEntry.getArgument(1);
  llvm::SetVector<Operation *> slice; // defs before uses
  std::function<bool(Value)> collect = [&](Value v) -> bool {
    if (auto arg = dyn_cast<BlockArgument>(v))
      return arg == symbolsArg;
    Operation *def = v.getDefiningOp();
    if (def->getBlock() != &kernelEntry || def->getNumRegions() != 0)
      return false;
    if (slice.contains(def))
      return true;
    for (Value operand : def->getOperands())
      if (!collect(operand))
        return false;
    slice.insert(def);
    return true;
  };
  SmallVector<Value> fields = {emitter.rangeExtent(), emitter.rangeGrain(), emitter.rangeFlags()};
  for (Value v : fields)
    if (v && !collect(v))
      return Status::error("internal error: the kernel's range depends on more than its symbols");
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointAfter(kernel);
  auto fn = func::FuncOp::create(b, kernel.getSymName().str() + "_range", b.getFunctionType({ptrTy, ptrTy}, {}));
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToStart(entry);
  IRMapping mapping;
  mapping.map(symbolsArg, entry->getArgument(0));
  for (Operation *op : slice)
    b.clone(*op, mapping);
  auto constant = [&](int64_t v) { return (Value)arith::ConstantIntOp::create(b, i64, v); };
  Value values[3] = {fields[0] ? mapping.lookup(fields[0]) : constant(1),
                     fields[1] ? mapping.lookup(fields[1]) : constant(1),
                     fields[2] ? mapping.lookup(fields[2]) : constant(emitter.callsBlas() ? kCallsBlasFlag : 0)};
  for (int32_t i = 0; i < 3; ++i)
    LLVM::StoreOp::create(
        b, values[i], LLVM::GEPOp::create(b, ptrTy, i64, entry->getArgument(1), ArrayRef<LLVM::GEPArg>{i}));
  func::ReturnOp::create(b);
  return Status::ok();
}

/// The kernel of each dispatch op as a func.func in `module` (identical ops share one); fills code.kernels.
/// The quantized GEMV's integer dot product for a target with these ISA features.
DotIsa dotIsaOf(const std::vector<std::string> &features) {
  auto has = [&](const char *f) { return std::find(features.begin(), features.end(), f) != features.end(); };
  if (has("avx512vnni") && has("avx512vl") && has("avx512bw"))
    return DotIsa::Vnni512;
  if (has("avxvnni"))
    return DotIsa::Vnni;
  return has("avx2") ? DotIsa::Avx2 : DotIsa::Generic;
}

Status emitKernels(ModuleOp module, llvm::ArrayRef<Operation *> dispatchOps, llvm::ArrayRef<KernelLayout> layouts,
                   const llvm::StringMap<unsigned> &symbolIndex, CpuCode &code) {
  MLIRContext *context = module.getContext();
  ImplicitLocOpBuilder b(module.getLoc(), context);
  b.setInsertionPointToEnd(module.getBody());
  Type ptrTy = LLVM::LLVMPointerType::get(context);
  // 512-bit registers: 16-lane vectors are one register each, not two (and 32 of them, not 16).
  const bool wideVectors = llvm::is_contained(code.target.features, "avx512f");
  {
    Type i32 = b.getI32Type(), f32 = b.getF32Type();
    auto sgemm = func::FuncOp::create(
        b, kSgemm, b.getFunctionType({i32, i32, i32, i32, i32, i32, f32, ptrTy, i32, ptrTy, i32, f32, ptrTy, i32}, {}));
    sgemm.setPrivate();
    // cblas_sgemv(order, trans, M, N, alpha, A, lda, x, incx, beta, y, incy)
    auto sgemv = func::FuncOp::create(
        b, kSgemv, b.getFunctionType({i32, i32, i32, i32, f32, ptrTy, i32, ptrTy, i32, f32, ptrTy, i32}, {}));
    sgemv.setPrivate();
    func::FuncOp::create(b, kMalloc, b.getFunctionType({b.getI64Type()}, {ptrTy})).setPrivate();
    func::FuncOp::create(b, kFree, b.getFunctionType({ptrTy}, {})).setPrivate();
  }
  llvm::StringMap<std::string> symbolOfKey;
  std::string error;
  for (auto [opIndex, op] : llvm::enumerate(dispatchOps)) {
    const KernelLayout *layout = layouts.empty() ? nullptr : &layouts[opIndex];
    CpuKernelInfo info{"", op->getName().getStringRef().str(), signatureOf(op)};
    std::string key = dedupeKey(op);
    if (layout && (layout->appendInPlace || llvm::any_of(layout->rowCapacity, [](int64_t c) { return c > 0; }))) {
      key += " layout";
      for (int64_t c : layout->rowCapacity)
        key += " " + std::to_string(c);
      key += layout->appendInPlace ? " append" : "";
      info.signature += layout->appendInPlace ? " [in-place append" : " [kv view";
      for (auto [i, c] : llvm::enumerate(layout->rowCapacity))
        if (c > 0)
          info.signature += ", buffer " + std::to_string(i) + " rows " + std::to_string(c) + " apart";
      info.signature += "]";
    }
    if (layout)
      for (auto [i, t] : llvm::enumerate(layout->elementType))
        if (t) {
          key += " buffer " + std::to_string(i) + " stored " + printed(t);
          info.signature += " [buffer " + std::to_string(i) + " read as " + printed(t) + "]";
        }
    if (layout)
      for (auto [i, q] : llvm::enumerate(layout->quant))
        if (q) {
          key += " buffer " + std::to_string(i) + " quant " + quantFormatName(*q);
          info.signature += " [buffer " + std::to_string(i) + " " + quantFormatName(*q) + "]";
        }
    auto found = symbolOfKey.find(key);
    if (found != symbolOfKey.end()) {
      info.symbol = found->second;
      code.kernels.push_back(std::move(info));
      continue;
    }
    char name[32];
    std::snprintf(name, sizeof name, "kiln_k%02u", (unsigned)symbolOfKey.size());
    info.symbol = name;
    symbolOfKey[key] = info.symbol;

    b.setLoc(op->getLoc());
    // kernel_abi.h: (buffers, symbols, begin, end); the range [begin, end) goes to the emitter's parallelFor.
    Type i64 = b.getI64Type();
    auto fn = func::FuncOp::create(b, info.symbol, b.getFunctionType({ptrTy, ptrTy, i64, i64}, {}));
    Block *entry = fn.addEntryBlock();
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(entry);
      Value buffers = entry->getArgument(0), symbols = entry->getArgument(1);
      SmallVector<Value> ptrs;
      for (unsigned i = 0; i < op->getNumOperands() + op->getNumResults(); ++i) {
        Value p = LLVM::GEPOp::create(b, ptrTy, ptrTy, buffers, ArrayRef<LLVM::GEPArg>{(int32_t)i});
        ptrs.push_back(LLVM::LoadOp::create(b, ptrTy, p));
      }
      KernelEmitter emitter(b, symbols, entry->getArgument(2), entry->getArgument(3), symbolIndex, error,
                            dotIsaOf(code.target.features));
      emitter.setWideVectors(wideVectors);
      if (failed(emitter.emit(op, ptrs, layout)))
        return Status::error("cpu codegen: " + error);
      func::ReturnOp::create(b);
      if (Status s = emitRangeFunction(b, fn, emitter); !s)
        return Status::error("cpu codegen: " + describeOp(op) + ": " + s.message());
    }
    code.kernels.push_back(std::move(info));
  }
  return Status::ok();
}

/// Verifies the kernels, then lowers them (scf -> cf, everything -> the LLVM dialect), dumping each phase.
Status lowerToLLVMDialect(ModuleOp module, const CpuCodegenOptions &options) {
  MLIRContext *context = module.getContext();
  int dumpCounter = 0;
  if (Status s = dumpModule(options, dumpCounter, "kernels", module); !s)
    return s;
  {
    std::string diagnostic;
    ScopedDiagnosticHandler handler(context, [&](Diagnostic &diag) {
      if (diagnostic.empty())
        diagnostic = diag.str();
      return success();
    });
    if (failed(verify(module)))
      return Status::error("cpu codegen: internal error: the generated kernels do not verify: " + diagnostic);
  }
  {
    // erf (GELU) as MLIR's rational approximation (arith only) instead of a libm erff call per element: the
    // elementwise loops then vectorize.
    RewritePatternSet patterns(context);
    populatePolynomialApproximateErfPattern(patterns);
    if (failed(applyPatternsGreedily(module, std::move(patterns))))
      return Status::error("cpu codegen: internal error: the erf approximation did not converge");
  }
  {
    PassManager pm(context);
    pm.addPass(createSCFToControlFlowPass());
    if (Status s = runPasses(pm, module, "scf-to-cf"); !s)
      return s;
    if (Status s = dumpModule(options, dumpCounter, "cf", module); !s)
      return s;
  }
  PassManager pm(context);
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  if (Status s = runPasses(pm, module, "lowering to the LLVM dialect"); !s)
    return s;
  return dumpModule(options, dumpCounter, "llvm", module);
}

/// LLVM IR, optimized for the target CPU, to one object file's bytes.
StatusOr<std::vector<char>> compileObject(ModuleOp module, const CpuCodegenOptions &options) {
  StatusOr<std::unique_ptr<llvm::TargetMachine>> tm = makeTargetMachine(options);
  if (!tm.ok())
    return tm.status();
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule = translateModuleToLLVMIR(module, llvmContext, "kiln_kernels");
  if (!llvmModule)
    return Status::error("cpu codegen: translation to LLVM IR failed");
  llvmModule->setDataLayout((*tm)->createDataLayout());
  llvmModule->setTargetTriple((*tm)->getTargetTriple());
  optimize(*llvmModule, **tm, options.optLevel);
  if (!options.dumpDir.empty()) {
    std::string text;
    llvm::raw_string_ostream os(text);
    llvmModule->print(os, nullptr);
    if (Status s = writeFile(options.dumpDir + "/kernels.ll", text); !s)
      return s;
  }
  llvm::SmallVector<char, 0> object;
  {
    llvm::raw_svector_ostream os(object);
    llvm::legacy::PassManager pm;
    if ((*tm)->addPassesToEmitFile(pm, os, nullptr, llvm::CodeGenFileType::ObjectFile))
      return Status::error("cpu codegen: the target cannot emit object files");
    pm.run(*llvmModule);
  }
  if (!options.dumpDir.empty())
    if (Status s = writeFile(options.dumpDir + "/kernels.o", llvm::StringRef(object.data(), object.size())); !s)
      return s;
  return std::vector<char>(object.begin(), object.end());
}

} // namespace

std::map<std::string, std::string> cpuOpEntries() { return KernelEmitter::table().entries(); }

StatusOr<CpuTargetInfo> describeCpuTarget(const std::string &cpu) {
  CpuCodegenOptions options;
  options.cpu = cpu;
  StatusOr<std::unique_ptr<llvm::TargetMachine>> tm = makeTargetMachine(options);
  if (!tm.ok())
    return tm.status();
  return CpuTargetInfo{(*tm)->getTargetCPU().str(), isaFeatures(**tm)};
}

StatusOr<CpuCode> generateCpuKernels(func::FuncOp step, llvm::ArrayRef<Operation *> dispatchOps,
                                     llvm::ArrayRef<std::string> symbolNames, const CpuCodegenOptions &options,
                                     llvm::ArrayRef<KernelLayout> layouts) {
  if (!layouts.empty() && layouts.size() != dispatchOps.size())
    return Status::error("cpu codegen: internal error: " + std::to_string(layouts.size()) + " layouts for " +
                         std::to_string(dispatchOps.size()) + " ops");
  StatusOr<CpuTargetInfo> target = describeCpuTarget(options.cpu);
  if (!target.ok())
    return target.status();
  MLIRContext *context = step->getContext();
  {
    DialectRegistry registry;
    registerBuiltinDialectTranslation(registry);
    registerLLVMDialectTranslation(registry);
    context->appendDialectRegistry(registry);
    context->loadDialect<arith::ArithDialect, cf::ControlFlowDialect, func::FuncDialect, LLVM::LLVMDialect,
                         math::MathDialect, scf::SCFDialect>();
  }
  llvm::StringMap<unsigned> symbolIndex;
  for (auto [i, name] : llvm::enumerate(symbolNames))
    symbolIndex[name] = i;

  // kiln ops -> one func.func per distinct kernel, in one module; lowered and compiled once.
  OwningOpRef<ModuleOp> module = ModuleOp::create(step.getLoc());
  CpuCode code;
  code.target = std::move(*target);
  if (Status s = emitKernels(*module, dispatchOps, layouts, symbolIndex, code); !s)
    return s;
  if (Status s = lowerToLLVMDialect(*module, options); !s)
    return s;
  StatusOr<std::vector<char>> object = compileObject(*module, options);
  if (!object.ok())
    return object.status();
  StatusOr<std::vector<uint8_t>> so = linkSharedObject(llvm::StringRef(object->data(), object->size()));
  if (!so.ok())
    return so.status();
  code.sharedObject = std::move(*so);
  return code;
}

} // namespace kiln::codegen
