//===- SpirvCodegen.cpp - kiln ops -> GLSL compute kernels -> SPIR-V -------===//
//
// Each op becomes one GLSL compute shader, specialized for its dtypes and static dims (a symbolic dim is a
// uint expression over the push constants), compiled with glslang and validated with SPIRV-Tools.
//
// One mechanism carries most ops, like the CPU backend's emitMap: a grid-stride loop over the result's
// elements (`lin`, decomposed into coordinates c0..c{r-1}) in which every operand is read at
// sum(c[d] * stride[d]), with strides 0 along broadcast dims. Elementwise ops (unary, binary, compare,
// select, convert), sym, iota, gather and the copies (reshape, transpose, broadcast_to, slice, concat) are
// bodies of that loop. Row ops (reductions, softmax, rms_norm, layer_norm) run one workgroup per row with
// a shared-memory tree reduction; matmul is one kernel with a GEMV path (M <= 4 with transpose_b: vectorized
// loads, subgroupAdd) and a 64x64 register-blocked shared-memory tile path; attention runs one workgroup per query row with an online softmax over blocks of
// keys, each block's scores and p * v split across the workgroup's invocations, the mask computed in the kernel.
//
// The grid: the iteration space is split into up to three groups of dims (x: the trailing dims through the
// first symbolic one, y: the next dims through the next symbolic one, z: the rest). Each group's global
// size is a SymExpr the runtime can evaluate (a constant capped at the 65535-workgroup limit, or the
// group's symbolic dim); the kernel loops over the group's true extent, so any grid is correct.
//
//===----------------------------------------------------------------------===//
#include "kiln/codegen/SpirvCodegen.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/ShapeInference.h"
#include "kiln/ir/SymShape.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/raw_ostream.h"

#include <glslang/Public/ResourceLimits.h>
#include <glslang/Public/ShaderLang.h>
#include <glslang/SPIRV/GlslangToSpv.h>
#include <spirv-tools/libspirv.hpp>

#include <cmath>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>

using namespace mlir;

namespace kiln::codegen {
namespace {

using ir::SymExpr;
using ir::SymShape;

std::string describeOp(Operation *op) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "'" << op->getName() << "' at " << op->getLoc();
  return s;
}

std::string fmtFloat(double v) {
  if (std::isinf(v))
    return v > 0 ? "uintBitsToFloat(0x7f800000u)" : "uintBitsToFloat(0xff800000u)";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", (double)(float)v);
  std::string s = buf;
  if (s.find_first_of(".eE") == std::string::npos)
    s += ".0";
  return s;
}

//===----------------------------------------------------------------------===//
// uint expressions with constant folding
//===----------------------------------------------------------------------===//

struct E {
  bool isConst = true;
  uint64_t value = 0;
  std::string text;
  static E k(uint64_t v) { return E{true, v, ""}; }
  static E t(std::string s) { return E{false, 0, std::move(s)}; }
  std::string str() const { return isConst ? std::to_string(value) + "u" : text; }
};
E operator*(const E &a, const E &b) {
  if (a.isConst && b.isConst)
    return E::k(a.value * b.value);
  if ((a.isConst && a.value == 0) || (b.isConst && b.value == 0))
    return E::k(0);
  if (a.isConst && a.value == 1)
    return b;
  if (b.isConst && b.value == 1)
    return a;
  return E::t("(" + a.str() + " * " + b.str() + ")");
}
E operator+(const E &a, const E &b) {
  if (a.isConst && b.isConst)
    return E::k(a.value + b.value);
  if (a.isConst && a.value == 0)
    return b;
  if (b.isConst && b.value == 0)
    return a;
  return E::t("(" + a.str() + " + " + b.str() + ")");
}

/// k * e as a SymExpr.
SymExpr scaleSym(const SymExpr &e, int64_t k) {
  SymExpr out = SymExpr::constant(e.getConstant() * k);
  for (const auto &[name, coeff] : e.terms())
    for (int64_t i = 0; i < coeff * k; ++i)
      out = out + SymExpr::symbol(name);
  return out;
}

//===----------------------------------------------------------------------===//
// Tensors: storage, loads and stores
//===----------------------------------------------------------------------===//

enum class Kind { F32, F16, BF16, I64, I32, I1 };

struct Tensor {
  unsigned binding = 0;
  Kind kind = Kind::F32;
  SymShape shape;
  std::vector<E> dims;
  bool isFloat() const { return kind == Kind::F32 || kind == Kind::F16 || kind == Kind::BF16; }
  E numElements() const {
    E n = E::k(1);
    for (const E &d : dims)
      n = n * d;
    return n;
  }
  /// Row-major strides.
  std::vector<E> strides() const {
    std::vector<E> s(dims.size(), E::k(1));
    for (int i = (int)dims.size() - 2; i >= 0; --i)
      s[i] = s[i + 1] * dims[i + 1];
    return s;
  }
  std::string buf() const { return "b" + std::to_string(binding) + ".d"; }
  /// A scalar expression: float for float tensors, int for integer ones.
  std::string load(const std::string &off) const {
    switch (kind) {
    case Kind::F32:
      return buf() + "[" + off + "]";
    case Kind::F16:
      return "float(" + buf() + "[" + off + "])";
    case Kind::BF16:
      return "uintBitsToFloat(uint(" + buf() + "[" + off + "]) << 16)";
    case Kind::I64:
      return "int(" + buf() + "[2u * (" + off + ")])";
    case Kind::I32:
      return buf() + "[" + off + "]";
    case Kind::I1:
      return "int(uint(" + buf() + "[" + off + "]))";
    }
    return "";
  }
  std::string store(const std::string &off, const std::string &v) const {
    switch (kind) {
    case Kind::F32:
      return buf() + "[" + off + "] = " + v + ";";
    case Kind::F16:
      return buf() + "[" + off + "] = float16_t(" + v + ");";
    case Kind::BF16:
      return buf() + "[" + off + "] = uint16_t(bf16Bits(" + v + "));";
    case Kind::I64:
      return "{ int v_ = " + v + "; " + buf() + "[2u * (" + off + ")] = uint(v_); " + buf() + "[2u * (" + off +
             ") + 1u] = uint(v_ >> 31); }";
    case Kind::I32:
      return buf() + "[" + off + "] = " + v + ";";
    case Kind::I1:
      return buf() + "[" + off + "] = uint8_t((" + v + ") != 0 ? 1u : 0u);";
    }
    return "";
  }
  std::string glslType() const {
    switch (kind) {
    case Kind::F32:
      return "float";
    case Kind::F16:
      return "float16_t";
    case Kind::BF16:
      return "uint16_t";
    case Kind::I64:
      return "uint";
    case Kind::I32:
      return "int";
    case Kind::I1:
      return "uint8_t";
    }
    return "";
  }
  size_t elementBytes() const {
    switch (kind) {
    case Kind::F32:
    case Kind::I32:
      return 4;
    case Kind::F16:
    case Kind::BF16:
      return 2;
    case Kind::I64:
      return 8;
    case Kind::I1:
      return 1;
    }
    return 4;
  }
};

std::string kindName(Kind k) {
  switch (k) {
  case Kind::F32:
    return "f32";
  case Kind::F16:
    return "f16";
  case Kind::BF16:
    return "bf16";
  case Kind::I64:
    return "i64";
  case Kind::I32:
    return "i32";
  case Kind::I1:
    return "i1";
  }
  return "?";
}

/// The storage kind of an element type, or a reason it has none.
std::string kindOf(Type t, const SpirvTarget &target, Kind &kind) {
  if (t.isF32())
    kind = Kind::F32;
  else if (t.isF16() || t.isBF16()) {
    if (!target.float16)
      return "16-bit float storage is not available on the target";
    kind = t.isF16() ? Kind::F16 : Kind::BF16;
  } else if (t.isInteger(64) || t.isIndex())
    kind = Kind::I64;
  else if (t.isInteger(32))
    kind = Kind::I32;
  else if (t.isInteger(1))
    kind = Kind::I1;
  else {
    std::string s;
    llvm::raw_string_ostream os(s);
    os << "element type " << t << " has no SPIR-V kernel";
    return s;
  }
  return "";
}

//===----------------------------------------------------------------------===//
// The kernel builder
//===----------------------------------------------------------------------===//

struct Grid {
  std::vector<E> extent;         // 3 group extents (GLSL)
  std::vector<SymExpr> global;   // 3 global sizes, in invocations
};

class Builder {
public:
  Builder(Operation *op, llvm::ArrayRef<std::string> symbols, const SpirvTarget &target,
          llvm::ArrayRef<Type> operandStorage = {})
      : op_(op), symbols_(symbols), target_(target), operandStorage_(operandStorage) {}

  std::string error;
  SpirvKernel kernel;

  bool fail(const std::string &why) {
    if (error.empty())
      error = describeOp(op_) + ": " + why;
    return false;
  }

  bool run();

private:
  Operation *op_;
  llvm::ArrayRef<std::string> symbols_;
  const SpirvTarget &target_;
  llvm::ArrayRef<Type> operandStorage_; // per operand, the buffer's element type when it differs
  bool subgroupArithmetic_ = false;      // the kernel uses subgroupAdd & co (GL_KHR_shader_subgroup_arithmetic)

  /// A specialization constant holding `v` (constant_id = the next free id, default 1 in the module, the
  /// value in kernel.specialization): a static dim that does not change the kernel's code.
  E specConst(uint64_t v) {
    std::string id = std::to_string(kernel.specialization.size());
    kernel.specialization.push_back(static_cast<uint32_t>(v));
    shared_ += "layout(constant_id = " + id + ") const uint SC" + id + " = 1u;\n";
    return E::t("SC" + id);
  }
  std::vector<Tensor> tensors_; // operands, then the result
  std::ostringstream body_;
  std::string helpers_;
  std::string shared_;
  unsigned sharedBytes_ = 0;
  uint32_t wg_[3] = {256, 1, 1};

  bool dimOf(const SymExpr &e, E &out) {
    E v = E::k((uint64_t)e.getConstant());
    for (const auto &[name, coeff] : e.terms()) {
      auto it = std::find(symbols_.begin(), symbols_.end(), name);
      if (it == symbols_.end())
        return fail("symbol '" + name + "' is not one of the step function's symbols");
      E s = E::t("pc.symbols[" + std::to_string(it - symbols_.begin()) + "]");
      v = v + E::k((uint64_t)coeff) * s;
    }
    out = v;
    return true;
  }

  bool makeTensors() {
    unsigned i = 0;
    auto add = [&](Type type) {
      Tensor t;
      t.binding = i++;
      auto ranked = dyn_cast<RankedTensorType>(type);
      if (!ranked)
        return fail("operand is not a ranked tensor");
      Type elem = ranked.getElementType();
      if (t.binding < operandStorage_.size() && t.binding < op_->getNumOperands() && operandStorage_[t.binding] &&
          operandStorage_[t.binding] != elem) {
        Type stored = operandStorage_[t.binding];
        if (!elem.isF32() || !(stored.isF16() || stored.isBF16()))
          return fail("operand " + std::to_string(t.binding) +
                      ": only an f32 operand may be stored as f16 / bf16 (a folded weight convert)");
        elem = stored;
      }
      std::string reason = kindOf(elem, target_, t.kind);
      if (!reason.empty())
        return fail(reason);
      FailureOr<SymShape> shape = ir::getSymShape(type, &reason);
      if (failed(shape))
        return fail(reason);
      t.shape = *shape;
      for (const SymExpr &d : t.shape) {
        E e;
        if (!dimOf(d, e))
          return false;
        t.dims.push_back(e);
      }
      tensors_.push_back(std::move(t));
      return true;
    };
    for (Value v : op_->getOperands())
      if (!add(v.getType()))
        return false;
    // One result, or add_rms_norm / add_layer_norm's two (h, then y: out() is y).
    if (op_->getNumResults() != (isa<ir::AddRmsNormOp, ir::AddLayerNormOp>(op_) ? 2u : 1u))
      return fail("expected one result");
    for (Value r : op_->getResults())
      if (!add(r.getType()))
        return false;
    return true;
  }

  const Tensor &out() const { return tensors_.back(); }
  const Tensor &in(unsigned i) const { return tensors_[i]; }

  /// Splits `dims` (a row-major iteration space) into x / y / z groups; see the file comment.
  /// `unit` is the x workgroup size when each x index is a workgroup (row kernels), else 1.
  Grid planGrid(const SymShape &sym, const std::vector<E> &dims, uint32_t wgx, bool perWorkgroup) {
    Grid g;
    g.extent.assign(3, E::k(1));
    g.global.assign(3, SymExpr::constant(1));
    const int64_t cap = 65535;
    int d = (int)dims.size() - 1;
    for (int axis = 0; axis < 3; ++axis) {
      E ext = E::k(1);
      int64_t constant = 1;
      std::optional<SymExpr> symbolic;
      // x: the trailing constant dims, and the next symbolic dim when they are few; y: the dims through the
      // next symbolic one; z: everything left.
      while (d >= 0 && sym[d].isConstant()) {
        if (axis == 0 && perWorkgroup && constant * sym[d].getConstant() > cap)
          break;
        ext = dims[d] * ext;
        constant *= sym[d].getConstant();
        --d;
      }
      bool takeSymbolic = d >= 0 && (axis > 0 || constant < 256 || perWorkgroup);
      if (takeSymbolic) {
        ext = dims[d] * ext;
        symbolic = sym[d];
        --d;
      }
      if (axis == 2)
        for (; d >= 0; --d)
          ext = dims[d] * ext;
      g.extent[axis] = ext;
      SymExpr count;
      if (!symbolic)
        count = SymExpr::constant(std::min<int64_t>(constant, (perWorkgroup || axis) ? cap : cap * wgx));
      else if (axis == 0 && !perWorkgroup)
        count = scaleSym(*symbolic, constant);
      else
        count = *symbolic;
      g.global[axis] = (axis == 0 && perWorkgroup) ? scaleSym(count, wgx) : count;
    }
    return g;
  }

  /// Opens the grid-stride loops over the groups and defines `lin`, the linear index into `dims`.
  void openLoops(const Grid &g, bool perWorkgroup) {
    std::string id = perWorkgroup ? "gl_WorkGroupID" : "gl_GlobalInvocationID";
    std::string n = perWorkgroup ? "gl_NumWorkGroups" : "(gl_NumWorkGroups * gl_WorkGroupSize)";
    body_ << "  const uint NX = " << g.extent[0].str() << ", NY = " << g.extent[1].str()
          << ", NZ = " << g.extent[2].str() << ";\n";
    body_ << "  for (uint gz = " << id << ".z; gz < NZ; gz += " << n << ".z)\n";
    body_ << "  for (uint gy = " << id << ".y; gy < NY; gy += " << n << ".y)\n";
    body_ << "  for (uint gx = " << id << ".x; gx < NX; gx += " << n << ".x) {\n";
    body_ << "    uint lin = (gz * NY + gy) * NX + gx;\n";
  }

  /// Coordinates c0..c{r-1} of `lin` in `dims`.
  void coords(const std::vector<E> &dims, const std::string &linVar = "lin", const std::string &prefix = "c") {
    body_ << "    uint rem_" << prefix << " = " << linVar << ";\n";
    for (int d = (int)dims.size() - 1; d >= 0; --d) {
      if (d == 0)
        body_ << "    uint " << prefix << d << " = rem_" << prefix << ";\n";
      else
        body_ << "    uint " << prefix << d << " = rem_" << prefix << " % " << dims[d].str() << "; rem_" << prefix
              << " /= " << dims[d].str() << ";\n";
    }
  }

  static std::string offset(const std::vector<E> &strides, const std::string &prefix = "c", E base = E::k(0)) {
    E acc = base;
    for (size_t d = 0; d < strides.size(); ++d)
      acc = acc + E::t(prefix + std::to_string(d)) * strides[d];
    return acc.str();
  }

  /// Strides that read `t` broadcast (numpy, right-aligned) to `outShape`.
  std::vector<E> broadcastStrides(const Tensor &t, const SymShape &outShape) {
    std::vector<E> inStrides = t.strides(), s(outShape.size(), E::k(0));
    size_t off = outShape.size() - t.shape.size();
    for (size_t i = 0; i < t.shape.size(); ++i)
      s[off + i] = (t.shape[i].isOne() && !outShape[off + i].isOne()) ? E::k(0) : inStrides[i];
    return s;
  }

  bool emitMap(const std::function<bool()> &bodyFn) {
    const Tensor &o = out();
    uint32_t wg = std::min<uint32_t>(256, std::max<uint32_t>(1, target_.maxWorkgroupInvocations));
    wg = 1u << (31 - __builtin_clz(wg));
    Grid g = planGrid(o.shape, o.dims, wg, false);
    wg_[0] = wg;
    kernel.globalSize = g.global;
    openLoops(g, false);
    coords(o.dims);
    if (!bodyFn())
      return false;
    body_ << "  }\n";
    return true;
  }

  std::string castTo(const std::string &v, bool fromFloat, bool toFloat) {
    if (fromFloat == toFloat)
      return v;
    return toFloat ? "float(" + v + ")" : "int(" + v + ")";
  }

  // The op families.
  bool emitElementwise();
  bool emitCopy();
  bool emitGather();
  bool emitRowOp();
  bool emitMatmul();
  bool emitRope();
  bool emitAttention();
  std::string source();
  bool compile(const std::string &glsl);
};

//===----------------------------------------------------------------------===//
// Elementwise ops (unary, binary, compare, select, convert, sym, iota)
//===----------------------------------------------------------------------===//

const char *kMathHelpers = R"(
float kNaN() { return uintBitsToFloat(0x7fc00000u); }
float erfApprox(float x) {
  // Abramowitz & Stegun 7.1.28-style rational approximation refined: max abs error ~1.2e-7.
  float a = abs(x);
  float t = 1.0 / (1.0 + 0.5 * a);
  float y = t * exp(-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
            t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
            t * (-0.82215223 + t * 0.17087277)))))))));
  float r = 1.0 - y;
  if (a < 0.5) {
    // Taylor series near 0, where 1 - y cancels.
    float x2 = a * a;
    r = a * (1.1283791671 + x2 * (-0.3761263890 + x2 * (0.1128379167 + x2 * (-0.0268661706 +
        x2 * (0.0052239776 + x2 * (-0.0008548327 + x2 * 0.0001205492))))));
  }
  return x < 0.0 ? -r : r;
}
float tanhAccurate(float x) {
  float a = abs(x);
  float r;
  if (a < 0.55) {
    float x2 = a * a;
    r = a * (1.0 + x2 * (-0.333333333 + x2 * (0.133333333 + x2 * (-0.0539682540 + x2 * (0.0218694885 +
        x2 * (-0.00886323552 + x2 * 0.00359212803))))));
  } else if (a > 10.0) {
    r = 1.0;
  } else {
    float e = exp(2.0 * a);
    r = 1.0 - 2.0 / (e + 1.0);
  }
  return x < 0.0 ? -r : r;
}
float sigmoidF(float x) { return 1.0 / (1.0 + exp(-x)); }
uint bf16Bits(float f) {
  uint u = floatBitsToUint(f);
  if (isnan(f)) return 0x7fc0u;
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
)";

bool Builder::emitElementwise() {
  const Tensor &o = out();
  helpers_ += kMathHelpers;
  // Operand values, read through broadcast strides.
  std::vector<std::string> vals;
  std::vector<bool> isF;
  auto readAll = [&]() {
    for (unsigned i = 0; i + 1 < tensors_.size(); ++i) {
      body_ << "    " << (in(i).isFloat() ? "float" : "int") << " v" << i << " = "
            << in(i).load(offset(broadcastStrides(in(i), o.shape))) << ";\n";
      vals.push_back("v" + std::to_string(i));
      isF.push_back(in(i).isFloat());
    }
  };
  llvm::StringRef name = op_->getName().getStringRef();
  return emitMap([&]() -> bool {
    std::string r;
    bool f = o.isFloat();
    if (auto sym = dyn_cast<ir::SymOp>(op_)) {
      auto it = std::find(symbols_.begin(), symbols_.end(), sym.getSymbol().str());
      if (it == symbols_.end())
        return fail("symbol '" + sym.getSymbol().str() + "' is not one of the step function's symbols");
      r = castTo("int(pc.symbols[" + std::to_string(it - symbols_.begin()) + "])", false, f);
    } else if (auto iota = dyn_cast<ir::IotaOp>(op_)) {
      r = castTo("int(c" + std::to_string(iota.getDim()) + ")", false, f);
    } else {
      readAll();
      if (isa<ir::ConvertOp>(op_)) {
        if (o.kind == Kind::I1)
          r = isF[0] ? "(v0 != 0.0 ? 1 : 0)" : "(v0 != 0 ? 1 : 0)";
        else
          r = castTo("v0", isF[0], f);
      } else if (auto cmp = dyn_cast<ir::CompareOp>(op_)) {
        static const char *const kOperator[] = {"==", "!=", "<", "<=", ">", ">="}; // ComparePredicate order
        std::string c = kOperator[static_cast<int>(cmp.getPredicate())];
        bool anyF = isF[0] || isF[1];
        r = "((" + castTo("v0", isF[0], anyF) + " " + c + " " + castTo("v1", isF[1], anyF) + ") ? 1 : 0)";
      } else if (isa<ir::SelectOp>(op_)) {
        r = "(v0 != 0 ? " + castTo("v1", isF[1], f) + " : " + castTo("v2", isF[2], f) + ")";
      } else if (op_->getNumOperands() == 2) {
        std::string x = castTo("v0", isF[0], f), y = castTo("v1", isF[1], f);
        if (name == "kiln.add")
          r = x + " + " + y;
        else if (name == "kiln.sub")
          r = x + " - " + y;
        else if (name == "kiln.mul")
          r = x + " * " + y;
        else if (name == "kiln.div")
          r = f ? x + " / " + y : "(" + y + " == 0 ? 0 : " + x + " / " + y + ")";
        else if (name == "kiln.max" || name == "kiln.min") {
          std::string fn = name == "kiln.max" ? "max" : "min";
          r = f ? "((isnan(" + x + ") || isnan(" + y + ")) ? kNaN() : " + fn + "(" + x + ", " + y + "))"
                : fn + "(" + x + ", " + y + ")";
        } else if (name == "kiln.pow") {
          if (!f)
            return fail("integer pow has no SPIR-V kernel");
          // pow(x, y) for x < 0 and integral y, like std::pow; x == 0 handled by the builtin's limits.
          r = "powF(" + x + ", " + y + ")";
          if (helpers_.find("powF") == std::string::npos)
            helpers_ += R"(
float powF(float x, float y) {
  if (y == 0.0) return 1.0;
  if (x == 0.0) return y > 0.0 ? 0.0 : uintBitsToFloat(0x7f800000u);
  if (x < 0.0) {
    if (floor(y) != y) return kNaN();
    float m = exp2(y * log2(-x));
    return (mod(y, 2.0) == 1.0) ? -m : m;
  }
  return exp2(y * log2(x));
}
)";
        } else
          return fail("no SPIR-V kernel for this binary op");
      } else if (op_->getNumOperands() == 1) {
        std::string x = castTo("v0", isF[0], f);
        if (!f && name != "kiln.neg" && name != "kiln.abs" && name != "kiln.relu")
          return fail("integer " + name.str() + " has no SPIR-V kernel");
        if (name == "kiln.neg")
          r = "-" + x;
        else if (name == "kiln.exp")
          r = "exp(" + x + ")";
        else if (name == "kiln.log")
          r = "log(" + x + ")";
        else if (name == "kiln.tanh")
          r = "tanhAccurate(" + x + ")";
        else if (name == "kiln.erf")
          r = "erfApprox(" + x + ")";
        else if (name == "kiln.cos")
          r = "cos(" + x + ")";
        else if (name == "kiln.sin")
          r = "sin(" + x + ")";
        else if (name == "kiln.rsqrt")
          r = "(1.0 / sqrt(" + x + "))";
        else if (name == "kiln.sqrt")
          r = "sqrt(" + x + ")";
        else if (name == "kiln.abs")
          r = "abs(" + x + ")";
        else if (name == "kiln.sigmoid")
          r = "sigmoidF(" + x + ")";
        else if (name == "kiln.silu")
          r = "(" + x + " * sigmoidF(" + x + "))";
        else if (name == "kiln.gelu")
          r = "(" + x + " * 0.5 * (1.0 + erfApprox(" + x + " * 0.70710678118654752)))";
        else if (name == "kiln.gelu_tanh")
          r = "(0.5 * " + x + " * (1.0 + tanhAccurate(0.79788456080286536 * (" + x + " + 0.044715 * " + x + " * " + x +
              " * " + x + "))))";
        else if (name == "kiln.relu")
          r = f ? "(" + x + " > 0.0 ? " + x + " : (isnan(" + x + ") ? " + x + " : 0.0))" : "max(" + x + ", 0)";
        else
          return fail("no SPIR-V kernel for this unary op");
      } else {
        return fail("no SPIR-V kernel for this op");
      }
    }
    body_ << "    " << o.store("lin", r) << "\n";
    return true;
  });
}

//===----------------------------------------------------------------------===//
// Data movement: reshape, transpose, broadcast_to, slice, concat (raw copies through strides)
//===----------------------------------------------------------------------===//

bool Builder::emitCopy() {
  const Tensor &o = out();
  auto copy = [&](const Tensor &src, const std::string &srcOff) {
    std::string v = src.load(srcOff);
    if (src.kind == Kind::F16 || src.kind == Kind::BF16 || src.kind == Kind::I1)
      v = src.buf() + "[" + srcOff + "]"; // same storage: copy the bits
    if (src.kind == Kind::I64)
      return "{ uint s_ = 2u * (" + srcOff + "); " + o.buf() + "[2u * lin] = " + src.buf() + "[s_]; " + o.buf() +
             "[2u * lin + 1u] = " + src.buf() + "[s_ + 1u]; }";
    return o.buf() + "[lin] = " + v + ";";
  };
  return emitMap([&]() -> bool {
    if (isa<ir::ReshapeOp>(op_)) {
      body_ << "    " << copy(in(0), "lin") << "\n";
    } else if (auto t = dyn_cast<ir::TransposeOp>(op_)) {
      std::vector<E> s = in(0).strides(), strides;
      for (int64_t p : t.getPermutation())
        strides.push_back(s[p]);
      body_ << "    " << copy(in(0), offset(strides)) << "\n";
    } else if (isa<ir::BroadcastToOp>(op_)) {
      body_ << "    " << copy(in(0), offset(broadcastStrides(in(0), o.shape))) << "\n";
    } else if (auto sl = dyn_cast<ir::SliceOp>(op_)) {
      int64_t axis = (int64_t)sl.getAxis() < 0 ? (int64_t)sl.getAxis() + (int64_t)o.shape.size() : (int64_t)sl.getAxis();
      std::vector<E> s = in(0).strides();
      body_ << "    " << copy(in(0), offset(s, "c", E::k(sl.getStart()) * s[axis])) << "\n";
    } else if (auto cat = dyn_cast<ir::ConcatOp>(op_)) {
      int64_t axis = (int64_t)cat.getAxis() < 0 ? (int64_t)cat.getAxis() + (int64_t)o.shape.size() : (int64_t)cat.getAxis();
      E start = E::k(0);
      body_ << "    uint ca = c" << axis << ";\n";
      for (unsigned i = 0; i + 1 < tensors_.size(); ++i) {
        const Tensor &src = in(i);
        E end = start + src.dims[axis];
        body_ << "    " << (i ? "else " : "") << "if (ca < " << end.str() << ") {\n";
        body_ << "      c" << axis << " = ca - " << start.str() << ";\n";
        body_ << "      " << copy(src, offset(src.strides())) << "\n    }\n";
        start = end;
      }
    } else {
      return fail("no SPIR-V copy kernel for this op");
    }
    return true;
  });
}

bool Builder::emitGather() {
  const Tensor &table = in(0), &idx = in(1), &o = out();
  if (table.shape.empty())
    return fail("table must have rank >= 1");
  E row = E::k(1);
  for (size_t d = 1; d < table.dims.size(); ++d)
    row = row * table.dims[d];
  E rows = table.dims[0];
  const Tensor *t = &table;
  return emitMap([&]() -> bool {
    body_ << "    uint j = lin / " << row.str() << ", r = lin % " << row.str() << ";\n";
    body_ << "    int ix = " << (idx.isFloat() ? "int(" + idx.load("j") + ")" : idx.load("j")) << ";\n";
    body_ << "    uint k = uint(clamp(ix, 0, int(" << rows.str() << ") - 1));\n";
    std::string src = "k * " + row.str() + " + r";
    if (t->kind != o.kind) // an f16 / bf16 table read in place for an f32 result (a folded weight convert)
      body_ << "    " << o.store("lin", t->load(src)) << "\n";
    else if (t->kind == Kind::I64)
      body_ << "    " << o.buf() << "[2u * lin] = " << t->buf() << "[2u * (" << src << ")]; " << o.buf()
            << "[2u * lin + 1u] = " << t->buf() << "[2u * (" << src << ") + 1u];\n";
    else
      body_ << "    " << o.buf() << "[lin] = " << t->buf() << "[" << src << "];\n";
    return true;
  });
}

//===----------------------------------------------------------------------===//
// Row ops: reductions, softmax, rms_norm, layer_norm (one workgroup per row, shared-memory reductions)
//===----------------------------------------------------------------------===//

const char *kReduceHelpers = R"(
shared float red[WG];
float wgSum(float v) {
  red[gl_LocalInvocationID.x] = v;
  barrier();
  for (uint h = WG / 2u; h > 0u; h >>= 1u) {
    if (gl_LocalInvocationID.x < h) red[gl_LocalInvocationID.x] += red[gl_LocalInvocationID.x + h];
    barrier();
  }
  float r = red[0];
  barrier();
  return r;
}
float wgMax(float v) {
  red[gl_LocalInvocationID.x] = v;
  barrier();
  for (uint h = WG / 2u; h > 0u; h >>= 1u) {
    if (gl_LocalInvocationID.x < h) {
      float a = red[gl_LocalInvocationID.x], b = red[gl_LocalInvocationID.x + h];
      red[gl_LocalInvocationID.x] = (isnan(a) || isnan(b)) ? uintBitsToFloat(0x7fc00000u) : max(a, b);
    }
    barrier();
  }
  float r = red[0];
  barrier();
  return r;
}
)";

bool Builder::emitRowOp() {
  const Tensor &x = in(0), &o = out();
  bool intReduce = !x.isFloat() && isa<ir::ReduceSumOp, ir::ReduceMaxOp>(op_) && !o.isFloat();
  if ((!x.isFloat() || !o.isFloat()) && !intReduce)
    return fail("only float tensors have a SPIR-V row kernel");
  int64_t axis;
  bool isNorm = isa<ir::RmsNormOp, ir::LayerNormOp, ir::AddRmsNormOp, ir::AddLayerNormOp>(op_);
  if (isNorm)
    axis = (int64_t)x.shape.size() - 1;
  else if (auto s = dyn_cast<ir::SoftmaxOp>(op_))
    axis = s.getAxis();
  else
    axis = op_->getAttrOfType<IntegerAttr>("axis").getInt();
  if (axis < 0)
    axis += (int64_t)x.shape.size();
  if (axis < 0 || axis >= (int64_t)x.shape.size())
    return fail("axis out of range");
  // Rows: [outer..., inner...] without the axis.
  SymShape rowSym;
  std::vector<E> rowDims;
  E inner = E::k(1), size = x.dims[axis];
  for (size_t d = 0; d < x.shape.size(); ++d)
    if ((int64_t)d != axis) {
      rowSym.push_back(x.shape[d]);
      rowDims.push_back(x.dims[d]);
    }
  for (size_t d = axis + 1; d < x.shape.size(); ++d)
    inner = inner * x.dims[d];
  uint32_t wg = std::min<uint32_t>(256, target_.maxWorkgroupInvocations);
  wg = 1u << (31 - __builtin_clz(wg));
  wg_[0] = wg;
  sharedBytes_ = wg * 4;
  helpers_ += "#define WG " + std::to_string(wg) + "u\n";
  helpers_ += kReduceHelpers;
  Grid g = planGrid(rowSym, rowDims, wg, true);
  kernel.globalSize = g.global;
  openLoops(g, true);
  body_ << "    uint outer = lin / " << inner.str() << ", inr = lin % " << inner.str() << ";\n";
  body_ << "    uint base = outer * " << (size * inner).str() << " + inr;\n";
  body_ << "    const uint N = " << size.str() << ", STR = " << inner.str() << ";\n";
  body_ << "    uint t = gl_LocalInvocationID.x;\n";
  // Integer sums / maxima go through f32: exact while |values| < 2^24 (masks, token counts).
  std::string X = x.isFloat() ? x.load("base + k * STR") : "float(" + x.load("base + k * STR") + ")";
  std::string R = intReduce ? "int(acc)" : "acc";
  if (isa<ir::ReduceSumOp, ir::ReduceMeanOp>(op_)) {
    body_ << "    float acc = 0.0;\n    for (uint k = t; k < N; k += WG) acc += " << X << ";\n";
    body_ << "    acc = wgSum(acc);\n";
    if (isa<ir::ReduceMeanOp>(op_))
      body_ << "    acc /= float(N);\n";
    body_ << "    if (t == 0u) " << o.store("lin", R) << "\n";
  } else if (isa<ir::ReduceMaxOp>(op_)) {
    body_ << "    float acc = uintBitsToFloat(0xff800000u);\n    for (uint k = t; k < N; k += WG) { float v = " << X
          << "; acc = (isnan(v) || isnan(acc)) ? uintBitsToFloat(0x7fc00000u) : max(acc, v); }\n";
    body_ << "    acc = wgMax(acc);\n";
    body_ << "    if (t == 0u) " << o.store("lin", R) << "\n";
  } else if (isa<ir::SoftmaxOp>(op_)) {
    body_ << "    float m = uintBitsToFloat(0xff800000u);\n    for (uint k = t; k < N; k += WG) { float v = " << X
          << "; m = (isnan(v) || isnan(m)) ? uintBitsToFloat(0x7fc00000u) : max(m, v); }\n";
    body_ << "    m = wgMax(m);\n";
    body_ << "    bool none = isinf(m) && m < 0.0;\n";
    body_ << "    float s = 0.0;\n    if (!none) for (uint k = t; k < N; k += WG) s += exp(" << X << " - m);\n";
    body_ << "    s = wgSum(s);\n";
    body_ << "    for (uint k = t; k < N; k += WG) " << o.store("base + k * STR", "none ? 0.0 : exp(" + X + " - m) / s")
          << "\n";
  } else if (isa<ir::AddRmsNormOp, ir::AddLayerNormOp>(op_)) {
    // h = x + r stored once; each invocation then reads back only the elements it stored (k = t, t + WG, ..).
    auto rms = dyn_cast<ir::AddRmsNormOp>(op_);
    const Tensor &r = in(1), &w = in(2), &h = tensors_[op_->getNumOperands()];
    if (!r.isFloat() || !h.isFloat())
      return fail("only float tensors have a SPIR-V row kernel");
    body_ << "    for (uint k = t; k < N; k += WG) " << h.store("base + k", X + " + " + r.load("base + k * STR"))
          << "\n";
    std::string H = h.load("base + k");
    std::string W = w.load("k");
    if (rms) {
      if (rms.getUnitOffset())
        W = "(1.0 + " + W + ")";
      body_ << "    float ss = 0.0;\n    for (uint k = t; k < N; k += WG) { float v = " << H << "; ss += v * v; }\n";
      body_ << "    float inv = 1.0 / sqrt(wgSum(ss) / float(N) + " << fmtFloat(rms.getEps().convertToDouble())
            << ");\n";
      body_ << "    for (uint k = t; k < N; k += WG) " << o.store("base + k", H + " * inv * " + W) << "\n";
    } else {
      auto ln = cast<ir::AddLayerNormOp>(op_);
      body_ << "    float sm = 0.0;\n    for (uint k = t; k < N; k += WG) sm += " << H << ";\n";
      body_ << "    float mean = wgSum(sm) / float(N);\n";
      body_ << "    float sv = 0.0;\n    for (uint k = t; k < N; k += WG) { float v = " << H
            << " - mean; sv += v * v; }\n";
      body_ << "    float inv = 1.0 / sqrt(wgSum(sv) / float(N) + " << fmtFloat(ln.getEps().convertToDouble())
            << ");\n";
      body_ << "    for (uint k = t; k < N; k += WG) "
            << o.store("base + k", "(" + H + " - mean) * inv * " + W + " + " + in(3).load("k")) << "\n";
    }
  } else if (auto rms = dyn_cast<ir::RmsNormOp>(op_)) {
    const Tensor &w = in(1);
    std::string W = w.load("k");
    if (rms.getUnitOffset())
      W = "(1.0 + " + W + ")";
    body_ << "    float ss = 0.0;\n    for (uint k = t; k < N; k += WG) { float v = " << X << "; ss += v * v; }\n";
    body_ << "    ss = wgSum(ss);\n";
    body_ << "    float inv = 1.0 / sqrt(ss / float(N) + " << fmtFloat(rms.getEps().convertToDouble()) << ");\n";
    body_ << "    for (uint k = t; k < N; k += WG) " << o.store("base + k", X + " * inv * " + W) << "\n";
  } else if (auto ln = dyn_cast<ir::LayerNormOp>(op_)) {
    const Tensor &w = in(1), &b = in(2);
    body_ << "    float sm = 0.0;\n    for (uint k = t; k < N; k += WG) sm += " << X << ";\n";
    body_ << "    float mean = wgSum(sm) / float(N);\n";
    body_ << "    float sv = 0.0;\n    for (uint k = t; k < N; k += WG) { float v = " << X
          << " - mean; sv += v * v; }\n";
    body_ << "    float inv = 1.0 / sqrt(wgSum(sv) / float(N) + " << fmtFloat(ln.getEps().convertToDouble()) << ");\n";
    body_ << "    for (uint k = t; k < N; k += WG) "
          << o.store("base + k", "(" + X + " - mean) * inv * " + w.load("k") + " + " + b.load("k")) << "\n";
  } else {
    return fail("no SPIR-V row kernel for this op");
  }
  body_ << "  }\n";
  return true;
}

//===----------------------------------------------------------------------===//
// Matmul: a GEMV for M <= 4 with transpose_b, else 64x64 register-blocked tiles through shared memory
//===----------------------------------------------------------------------===//

bool Builder::emitMatmul() {
  auto mm = cast<ir::MatmulOp>(op_);
  const Tensor &a = in(0), &b = in(1), &o = out();
  if (!a.isFloat() || !b.isFloat() || !o.isFloat())
    return fail("only float matmuls have a SPIR-V kernel");
  bool tb = mm.getTransposeB();
  size_t ra = a.dims.size(), rb = b.dims.size(), ro = o.dims.size();
  if (ra < 2 || rb < 2)
    return fail("operands need rank >= 2");
  // Every static dim of the operands and the result is a specialization constant (one per dim, in order),
  // so matmuls of one shape class (dtypes, transpose, ranks and broadcasts, K's vector width) share one
  // module; only K's static value picks the code (the vector path).
  const int64_t kStatic = a.shape[ra - 1].isConstant() ? a.shape[ra - 1].getConstant() : 0;
  for (Tensor &t : tensors_)
    for (E &d : t.dims)
      if (d.isConst)
        d = specConst(d.value);
  E M = a.dims[ra - 2], K = a.dims[ra - 1], N = o.dims[ro - 1];
  // Batch: the result's leading dims; operands read through broadcast strides (in matrices).
  SymShape batchSym(o.shape.begin(), o.shape.end() - 2);
  std::vector<E> batchDims(o.dims.begin(), o.dims.end() - 2);
  auto batchStrides = [&](const Tensor &t) {
    std::vector<E> s(batchSym.size(), E::k(0));
    size_t tbatch = t.dims.size() - 2, off = batchSym.size() - tbatch;
    E st = t.dims[t.dims.size() - 1] * t.dims[t.dims.size() - 2];
    for (int i = (int)tbatch - 1; i >= 0; --i) {
      s[off + i] = (t.shape[i].isOne() && !batchSym[off + i].isOne()) ? E::k(0) : st;
      st = st * t.dims[i];
    }
    return s;
  };
  std::vector<E> as = batchStrides(a), bs = batchStrides(b);
  E batch = E::k(1);
  for (const E &d : batchDims)
    batch = batch * d;
  // z: the batch, with a symbolic global size when it has a symbolic dim.
  SymExpr zCount = SymExpr::constant(1);
  int64_t zConst = 1;
  for (const SymExpr &d : batchSym) {
    if (!d.isConstant()) {
      if (zCount.isConstant())
        zCount = d;
    } else
      zConst *= d.getConstant();
  }
  if (zCount.isConstant())
    zCount = SymExpr::constant(std::min<int64_t>(zConst, 65535));
  // One kernel, two paths chosen by the (uniform) M: with transpose_b and M <= 4 (decode, tiny chunks) a
  // GEMV: each workgroup of 256 computes 4 output columns j for every row of A, its invocations striding
  // over K with vectorized loads (vec4 of f32, or 8 f16 / bf16 in a uvec4, when K allows) and f32
  // accumulators, reduced with subgroupAdd (shared memory only across subgroups) or, without subgroup
  // arithmetic, a shared-memory tree. Otherwise a register-blocked tile: 64x64 of C per workgroup, K in
  // steps of 16 through shared memory, each invocation a 4x4 micro-tile (rows ty + 16 r, columns tx + 16 c:
  // conflict-free shared reads, coalesced stores). Both paths grid-stride, so any grid is correct.
  const uint32_t WG = 256, R = 4, MS = 4, BM = 64, BN = 64, BK = 16, LD = BM + 1;
  if (target_.maxWorkgroupInvocations < WG)
    return fail("the matmul kernel needs a workgroup of " + std::to_string(WG) + " invocations");
  wg_[0] = WG;
  wg_[1] = 1;
  const uint32_t smFloats = 2 * BK * LD; // As | Bs, reused by the GEMV reduction
  sharedBytes_ = smFloats * 4;
  shared_ += "shared float sm[" + std::to_string(smFloats) + "];\n";
  const bool b16 = b.kind == Kind::F16 || b.kind == Kind::BF16, a16 = a.kind == Kind::F16 || a.kind == Kind::BF16;
  const uint32_t VW = (a16 || b16) ? 8 : 4;
  const bool vec = tb && kStatic > 0 && kStatic % VW == 0;
  const bool useSubgroups = target_.subgroupArithmetic && target_.subgroupSize >= 4;
  subgroupArithmetic_ = subgroupArithmetic_ || (useSubgroups && tb);
  kernel.name = std::string(tb ? "matmul_tb_gemv4_tile64" : "matmul_tile64") + (vec ? "_v" + std::to_string(VW) : "") +
                (useSubgroups && tb ? "_sg" : "") + (b.kind != o.kind ? "_b" + kindName(b.kind) : "") +
                (a.kind != o.kind ? "_a" + kindName(a.kind) : "");
  if (vec) {
    // Vector views of A and B (same bindings): vec4 of f32, or uvec4 of 8 16-bit values.
    for (const Tensor *t : {&a, &b}) {
      bool is16 = t->kind == Kind::F16 || t->kind == Kind::BF16;
      std::string bn = std::to_string(t->binding);
      shared_ += "layout(std430, set = 0, binding = " + bn + ") readonly buffer V" + bn + " { " +
                 (is16 ? "uvec4" : "vec4") + " d[]; } v" + bn + ";\n";
      // ld8_i(v, lo, hi): elements 8v .. 8v+7 (VW 8) or ld4_i(v): elements 4v .. 4v+3 (VW 4).
      if (VW == 4) {
        helpers_ += "vec4 ld4_" + bn + "(uint v) { return v" + bn + ".d[v]; }\n";
      } else if (!is16) {
        helpers_ += "void ld8_" + bn + "(uint v, out vec4 lo, out vec4 hi) { lo = v" + bn + ".d[2u * v]; hi = v" + bn +
                    ".d[2u * v + 1u]; }\n";
      } else if (t->kind == Kind::F16) {
        helpers_ += "void ld8_" + bn + "(uint v, out vec4 lo, out vec4 hi) { uvec4 u = v" + bn +
                    ".d[v]; lo = vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y)); hi = vec4(unpackHalf2x16(u.z), "
                    "unpackHalf2x16(u.w)); }\n";
      } else {
        helpers_ += "vec2 bf2_(uint u) { return vec2(uintBitsToFloat(u << 16), uintBitsToFloat(u & 0xffff0000u)); }\n";
        helpers_ += "void ld8_" + bn + "(uint v, out vec4 lo, out vec4 hi) { uvec4 u = v" + bn +
                    ".d[v]; lo = vec4(bf2_(u.x), bf2_(u.y)); hi = vec4(bf2_(u.z), bf2_(u.w)); }\n";
      }
    }
    if (a.kind == Kind::BF16 && b.kind == Kind::BF16) {
      // bf2_ was emitted twice.
      size_t first = helpers_.find("vec2 bf2_"), second = helpers_.find("vec2 bf2_", first + 1);
      if (second != std::string::npos)
        helpers_.erase(second, helpers_.find('\n', second) - second + 1);
    }
  }
  // The grid (workgroups along x, batch along z).
  SymExpr nSym = o.shape[ro - 1], mSym = a.shape[ra - 2];
  auto ceilDiv = [](int64_t x, int64_t y) { return (x + y - 1) / y; };
  SymExpr xCount;
  if (nSym.isConstant()) {
    int64_t n = nSym.getConstant(), tilesN = ceilDiv(n, BN);
    int64_t groups = 0;
    if (tb && mSym.isConstant())
      groups = mSym.getConstant() <= MS ? ceilDiv(n, R) : ceilDiv(mSym.getConstant(), BM) * tilesN;
    else if (tb)
      groups = ceilDiv(n, R); // >= the tiles for M <= 16 N / ... (M <= 1024 when N >= 64); more loop
    else if (mSym.isConstant())
      groups = ceilDiv(mSym.getConstant(), BM) * tilesN;
    if (groups) {
      xCount = SymExpr::constant(std::min<int64_t>(groups, 65535) * WG);
    } else {
      // Symbolic M, no transpose: tilesN + M tilesN / 64 workgroups cover every tile.
      xCount = SymExpr::constant(tilesN * WG) + scaleSym(mSym, tilesN * (WG / BM));
    }
  } else {
    xCount = scaleSym(nSym, WG / R); // N / 4 workgroups
  }
  kernel.globalSize = {xCount, SymExpr::constant(1), zCount};

  body_ << "  const uint M = " << M.str() << ", N = " << N.str() << ", K = " << K.str() << ", NB = " << batch.str()
        << ";\n";
  body_ << "  uint t = gl_LocalInvocationID.x;\n";
  body_ << "  for (uint bz = gl_WorkGroupID.z; bz < NB; bz += gl_NumWorkGroups.z) {\n";
  coords(batchDims, "bz", "c");
  body_ << "    uint A0 = " << offset(as) << ", B0 = " << offset(bs) << ";\n";
  auto idx = [](uint32_t m, uint32_t r) { return std::to_string(m) + "_" + std::to_string(r); };
  if (tb) {
    body_ << "    if (M <= " << MS << "u) {\n";
    body_ << "    for (uint jb = gl_WorkGroupID.x * " << R << "u; jb < N; jb += gl_NumWorkGroups.x * " << R << "u) {\n";
    for (uint32_t m = 0; m < MS; ++m)
      for (uint32_t r = 0; r < R; ++r)
        body_ << "      float acc" << idx(m, r) << " = 0.0;\n";
    for (uint32_t r = 0; r < R; ++r)
      body_ << "      uint j" << r << " = min(jb + " << r << "u, N - 1u);\n";
    for (uint32_t m = 0; m < MS; ++m)
      body_ << "      uint i" << m << " = min(" << m << "u, M - 1u);\n";
    if (vec) {
      std::string ab = std::to_string(a.binding), bb = std::to_string(b.binding);
      body_ << "      const uint KV = K / " << VW << "u;\n";
      for (uint32_t m = 0; m < MS; ++m)
        body_ << "      uint ar" << m << " = (A0 + i" << m << " * K) / " << VW << "u;\n";
      for (uint32_t r = 0; r < R; ++r)
        body_ << "      uint br" << r << " = (B0 + j" << r << " * K) / " << VW << "u;\n";
      body_ << "      for (uint kv = t; kv < KV; kv += " << WG << "u) {\n";
      if (VW == 4) {
        for (uint32_t r = 0; r < R; ++r)
          body_ << "        vec4 w" << r << " = ld4_" << bb << "(br" << r << " + kv);\n";
        for (uint32_t m = 0; m < MS; ++m) {
          body_ << "        if (" << m << "u < M) { vec4 x = ld4_" << ab << "(ar" << m << " + kv);";
          for (uint32_t r = 0; r < R; ++r)
            body_ << " acc" << idx(m, r) << " += dot(x, w" << r << ");";
          body_ << " }\n";
        }
      } else {
        for (uint32_t r = 0; r < R; ++r)
          body_ << "        vec4 wl" << r << ", wh" << r << "; ld8_" << bb << "(br" << r << " + kv, wl" << r << ", wh" << r
                << ");\n";
        for (uint32_t m = 0; m < MS; ++m) {
          body_ << "        if (" << m << "u < M) { vec4 xl, xh; ld8_" << ab << "(ar" << m << " + kv, xl, xh);";
          for (uint32_t r = 0; r < R; ++r)
            body_ << " acc" << idx(m, r) << " += dot(xl, wl" << r << ") + dot(xh, wh" << r << ");";
          body_ << " }\n";
        }
      }
      body_ << "      }\n";
    } else {
      body_ << "      for (uint kk = t; kk < K; kk += " << WG << "u) {\n";
      for (uint32_t r = 0; r < R; ++r)
        body_ << "        float w" << r << " = " << b.load("B0 + j" + std::to_string(r) + " * K + kk") << ";\n";
      for (uint32_t m = 0; m < MS; ++m) {
        body_ << "        if (" << m << "u < M) { float x = " << a.load("A0 + i" + std::to_string(m) + " * K + kk") << ";";
        for (uint32_t r = 0; r < R; ++r)
          body_ << " acc" << idx(m, r) << " += x * w" << r << ";";
        body_ << " }\n";
      }
      body_ << "      }\n";
    }
    // Reduce the MS x R accumulators over the workgroup; invocation q < MS R stores (m, r) = (q / R, q % R).
    const uint32_t NA = MS * R;
    if (useSubgroups) {
      body_ << "      uint NSG = gl_NumSubgroups;\n";
      for (uint32_t q = 0; q < NA; ++q)
        body_ << "      { float v = subgroupAdd(acc" << idx(q / R, q % R) << "); if (subgroupElect()) sm[" << q
              << "u * NSG + gl_SubgroupID] = v; }\n";
      body_ << "      barrier();\n";
      body_ << "      if (t < " << NA << "u) {\n";
      body_ << "        float v = 0.0; for (uint g = 0u; g < NSG; ++g) v += sm[t * NSG + g];\n";
    } else {
      // Shared-memory tree, 8 accumulators at a time (8 x 256 floats of sm).
      body_ << "      float red[" << NA << "];\n";
      for (uint32_t q = 0; q < NA; ++q)
        body_ << "      red[" << q << "] = acc" << idx(q / R, q % R) << ";\n";
      body_ << "      float mine = 0.0;\n";
      body_ << "      for (uint h0 = 0u; h0 < " << NA << "u; h0 += 8u) {\n";
      body_ << "        for (uint q = 0u; q < 8u; ++q) sm[q * " << WG << "u + t] = red[h0 + q];\n";
      body_ << "        barrier();\n";
      body_ << "        for (uint h = " << WG / 2 << "u; h > 0u; h >>= 1u) { if (t < h) for (uint q = 0u; q < 8u; ++q) sm[q * "
            << WG << "u + t] += sm[q * " << WG << "u + t + h]; barrier(); }\n";
      body_ << "        if (t >= h0 && t < h0 + 8u) mine = sm[(t - h0) * " << WG << "u];\n";
      body_ << "        barrier();\n";
      body_ << "      }\n";
      body_ << "      if (t < " << NA << "u) {\n";
      body_ << "        float v = mine;\n";
    }
    body_ << "        uint m = t / " << R << "u, j = jb + t % " << R << "u;\n";
    body_ << "        if (m < M && j < N) " << o.store("(bz * M + m) * N + j", "v") << "\n";
    body_ << "      }\n";
    body_ << "      barrier();\n";
    body_ << "    }\n";
    body_ << "    } else {\n";
  }
  // The register-blocked tile.
  body_ << "    uint tx = t % 16u, ty = t / 16u;\n";
  body_ << "    uint tilesN = (N + " << BN - 1 << "u) / " << BN << "u, tiles = ((M + " << BM - 1 << "u) / " << BM
        << "u) * tilesN;\n";
  body_ << "    for (uint tile = gl_WorkGroupID.x; tile < tiles; tile += gl_NumWorkGroups.x) {\n";
  body_ << "      uint i0 = (tile / tilesN) * " << BM << "u, j0 = (tile % tilesN) * " << BN << "u;\n";
  for (uint32_t r = 0; r < 4; ++r)
    for (uint32_t c = 0; c < 4; ++c)
      body_ << "      float c" << idx(r, c) << " = 0.0;\n";
  body_ << "      for (uint k0 = 0u; k0 < K; k0 += " << BK << "u) {\n";
  const uint32_t perThread = BM * BK / WG; // 4 elements of each tile per invocation
  if (vec) {
    // Vector tile loads (K % VW == 0, so a row's VW-element group never crosses K): VW = 4, every invocation
    // one vec4 of A and of B; VW = 8, the first 128 invocations 8 elements of each.
    std::string ab = std::to_string(a.binding), bb = std::to_string(b.binding);
    const uint32_t groupsPerRow = BK / VW, loaders = BM * groupsPerRow;
    body_ << "        if (t < " << loaders << "u) {\n";
    body_ << "          uint row = t / " << groupsPerRow << "u, kq = (t % " << groupsPerRow << "u) * " << VW
          << "u, kk = k0 + kq;\n";
    body_ << "          uint i = min(i0 + row, M - 1u), jj = min(j0 + row, N - 1u);\n";
    body_ << "          bool kin = kk < K, ain = kin && i0 + row < M, bin = kin && j0 + row < N;\n";
    body_ << "          uint kc = min(kk, K - " << VW << "u);\n";
    if (VW == 4) {
      body_ << "          vec4 xa = ain ? ld4_" << ab << "((A0 + i * K + kc) / 4u) : vec4(0.0);\n";
      body_ << "          vec4 xb = bin ? ld4_" << bb << "((B0 + jj * K + kc) / 4u) : vec4(0.0);\n";
      for (uint32_t c = 0; c < 4; ++c)
        body_ << "          sm[(kq + " << c << "u) * " << LD << "u + row] = xa[" << c << "]; sm[" << BK * LD << "u + (kq + "
              << c << "u) * " << LD << "u + row] = xb[" << c << "];\n";
    } else {
      body_ << "          vec4 al = vec4(0.0), ah = vec4(0.0), bl = vec4(0.0), bh = vec4(0.0);\n";
      body_ << "          if (ain) ld8_" << ab << "((A0 + i * K + kc) / 8u, al, ah);\n";
      body_ << "          if (bin) ld8_" << bb << "((B0 + jj * K + kc) / 8u, bl, bh);\n";
      for (uint32_t c = 0; c < 8; ++c) {
        std::string comp = std::string(c < 4 ? "l" : "h") + "[" + std::to_string(c % 4) + "]";
        body_ << "          sm[(kq + " << c << "u) * " << LD << "u + row] = a" << comp << "; sm[" << BK * LD
              << "u + (kq + " << c << "u) * " << LD << "u + row] = b" << comp << ";\n";
      }
    }
    body_ << "        }\n";
  } else {
  body_ << "        for (uint e = 0u; e < " << perThread << "u; ++e) {\n";
  body_ << "          uint q = t + " << WG << "u * e, row = q / " << BK << "u, kq = q % " << BK << "u;\n";
  body_ << "          uint i = i0 + row, kk = k0 + kq;\n";
  body_ << "          sm[kq * " << LD << "u + row] = (i < M && kk < K) ? " << a.load("A0 + i * K + kk") << " : 0.0;\n";
  if (tb) {
    body_ << "          uint jj = j0 + row;\n";
    body_ << "          sm[" << BK * LD << "u + kq * " << LD << "u + row] = (jj < N && kk < K) ? " << b.load("B0 + jj * K + kk")
          << " : 0.0;\n";
  } else {
    body_ << "          uint kb = k0 + q / " << BN << "u, jj = j0 + q % " << BN << "u;\n";
    body_ << "          sm[" << BK * LD << "u + (q / " << BN << "u) * " << LD << "u + q % " << BN
          << "u] = (jj < N && kb < K) ? " << b.load("B0 + kb * N + jj") << " : 0.0;\n";
  }
  body_ << "        }\n";
  }
  body_ << "        barrier();\n";
  body_ << "        for (uint q = 0u; q < " << BK << "u; ++q) {\n";
  body_ << "          uint ao = q * " << LD << "u + ty, bo = " << BK * LD << "u + q * " << LD << "u + tx;\n";
  for (uint32_t r = 0; r < 4; ++r)
    body_ << "          float a" << r << " = sm[ao + " << 16 * r << "u], b" << r << " = sm[bo + " << 16 * r << "u];\n";
  for (uint32_t r = 0; r < 4; ++r) {
    body_ << "         ";
    for (uint32_t c = 0; c < 4; ++c)
      body_ << " c" << idx(r, c) << " += a" << r << " * b" << c << ";";
    body_ << "\n";
  }
  body_ << "        }\n";
  body_ << "        barrier();\n";
  body_ << "      }\n";
  for (uint32_t r = 0; r < 4; ++r)
    for (uint32_t c = 0; c < 4; ++c)
      body_ << "      { uint i = i0 + ty + " << 16 * r << "u, j = j0 + tx + " << 16 * c << "u; if (i < M && j < N) "
            << o.store("(bz * M + i) * N + j", "c" + idx(r, c)) << " }\n";
  body_ << "    }\n";
  if (tb)
    body_ << "    }\n";
  body_ << "  }\n";
  return true;
}

//===----------------------------------------------------------------------===//
// RoPE: a map over the result; the angle is reduced modulo 2 pi in float-float (positions reach 1e5)
//===----------------------------------------------------------------------===//

const char *kRopeHelpers = R"(
// p * f reduced to [-pi, pi]: the product exactly as hi + lo (Dekker, no fma needed), then Cody-Waite
// with a 3-part 2 pi. `precise` keeps the compiler from contracting or reassociating.
float reducedAngle(float p, float f) {
  precise float cp = 4097.0 * p, ph = cp - (cp - p), pl = p - ph;
  precise float cf = 4097.0 * f, fh = cf - (cf - f), fl = f - fh;
  precise float hi = p * f;
  precise float lo = ((ph * fh - hi) + ph * fl + pl * fh) + pl * fl;
  float k = round(hi * 0.15915494309189535);
  precise float kc = 4097.0 * k, kh = kc - (kc - k), kl = k - kh;
  // k * C1 exactly: C1 = 6.28318548202514648 has 24 bits; split it too.
  const float c1h = 6.28125, c1l = 6.28318548202514648 - 6.28125;
  precise float r = ((hi - kh * c1h) - kl * c1h) - k * c1l;
  r = r - k * -1.74845553e-7;
  r = r - k * -6.86049804e-15;
  return r + lo;
}
)";

bool Builder::emitRope() {
  auto rope = cast<ir::RopeOp>(op_);
  const Tensor &x = in(0), &pos = in(1), &freq = in(2), &o = out();
  if (x.shape.size() != 4 || !freq.shape.back().isConstant() || !x.shape[3].isConstant())
    return fail("rope needs a static head dim and frequency table");
  if (!x.isFloat())
    return fail("only float rope has a SPIR-V kernel");
  int64_t half = freq.shape.back().getConstant();
  bool inter = rope.getInterleaved();
  helpers_ += kRopeHelpers;
  return emitMap([&]() -> bool {
    // c0 = b, c1 = h, c2 = s, c3 = d
    body_ << "    uint dd = c3; uint rowBase = lin - dd;\n";
    body_ << "    if (dd >= " << 2 * half << "u) { " << o.store("lin", x.load("lin")) << " }\n";
    body_ << "    else {\n";
    if (inter)
      body_ << "      uint i = dd / 2u; bool first = (dd % 2u) == 0u; uint i1 = 2u * i, i2 = 2u * i + 1u;\n";
    else
      body_ << "      uint i = dd % " << half << "u; bool first = dd < " << half << "u; uint i1 = i, i2 = i + " << half
            << "u;\n";
    std::string P = pos.isFloat() ? pos.load("c0 * " + x.dims[2].str() + " + c2")
                                  : "float(" + pos.load("c0 * " + x.dims[2].str() + " + c2") + ")";
    body_ << "      float ang = reducedAngle(" << P << ", " << freq.load("i") << ");\n";
    body_ << "      float cs = cos(ang), sn = sin(ang);\n";
    body_ << "      float x1 = " << x.load("rowBase + i1") << ", x2 = " << x.load("rowBase + i2") << ";\n";
    body_ << "      " << o.store("lin", "first ? x1 * cs - x2 * sn : x2 * cs + x1 * sn") << "\n    }\n";
    return true;
  });
}

//===----------------------------------------------------------------------===//
// Attention: one workgroup per query row, the keys of each block split across its invocations, online softmax
//===----------------------------------------------------------------------===//

bool Builder::emitAttention() {
  auto att = cast<ir::AttentionOp>(op_);
  const Tensor &q = in(0), &k = in(1), &v = in(2), &o = out();
  if (q.shape.size() != 4 || k.shape.size() != 4 || v.shape.size() != 4)
    return fail("query, key and value must be rank 4");
  if (!q.shape[3].isConstant() || !v.shape[3].isConstant() || !q.shape[1].isConstant() || !k.shape[1].isConstant())
    return fail("attention needs static head counts and head dims");
  if (!q.isFloat() || !k.isFloat() || !v.isFloat())
    return fail("only float attention has a SPIR-V kernel");
  int64_t D = q.shape[3].getConstant(), Dv = v.shape[3].getConstant();
  int64_t Hq = q.shape[1].getConstant(), Hkv = k.shape[1].getConstant();
  if (Hkv == 0 || Hq % Hkv)
    return fail("query heads are not a multiple of key heads");
  // Keys split across the invocations: each block of NB keys takes L = WG / NB invocations per score (strided
  // partial dots over d, summed in shared memory), one shared max per block (a tree), then P = WG / G parts of
  // G invocations each accumulate p * v over their share of the block's keys for their dims (the same block
  // max for every part, so no rescale between parts); at the end the parts' (l, acc) are summed in shared
  // memory. Decode (few rows, few keys) no longer walks the keys with one invocation per dim.
  uint32_t wg = 8;
  while (wg * 2 <= std::min<uint32_t>(256, target_.maxWorkgroupInvocations))
    wg *= 2;
  auto sharedFor = [&](uint32_t w) { return 4 * (uint32_t)(D + 2 * std::min<uint32_t>(64, w) + w); };
  while (wg > 8 && sharedFor(wg) > target_.maxSharedMemory)
    wg /= 2;
  if (sharedFor(wg) > target_.maxSharedMemory)
    return fail("attention with head_dim " + std::to_string(D) + " needs " + std::to_string(sharedFor(wg)) +
                " bytes of shared memory (split-key variant: q, the block's scores and maxima, one partial per "
                "invocation), the target has " +
                std::to_string(target_.maxSharedMemory));
  uint32_t nb = std::min<uint32_t>(64, wg), lanes = wg / nb;
  uint32_t gsz = 8;
  while (gsz < Dv && gsz < wg)
    gsz *= 2;
  uint32_t parts = wg / gsz;
  wg_[0] = wg;
  sharedBytes_ = sharedFor(wg);
  int64_t dpt = (Dv + gsz - 1) / gsz;
  kernel.name = "attention_online_d" + std::to_string(D);
  shared_ += "shared float qs[" + std::to_string(D) + "];\nshared float sc[" + std::to_string(nb) +
             "];\nshared float mx[" + std::to_string(nb) + "];\nshared float dp[" + std::to_string(wg) + "];\n";
  SymShape rowSym(q.shape.begin(), q.shape.begin() + 3);
  std::vector<E> rowDims(q.dims.begin(), q.dims.begin() + 3);
  Grid g = planGrid(rowSym, rowDims, wg, true);
  kernel.globalSize = g.global;
  bool causal = att.getMask() == ir::AttentionMask::causal;
  std::optional<uint64_t> window = att.getWindow();
  std::optional<double> softcap;
  if (auto c = att.getSoftcap())
    softcap = c->convertToDouble();
  unsigned next = 3;
  const Tensor *pad = att.getKeyPaddingMask() ? &in(next++) : nullptr;
  const Tensor *bias = att.getBias() ? &in(next++) : nullptr;
  E S = q.dims[2], T = k.dims[2];
  body_ << "  const uint WG = " << wg << "u, NB = " << nb << "u, L = " << lanes << "u, G = " << gsz
        << "u, P = " << parts << "u, S = " << S.str() << ", T = " << T.str() << ";\n";
  body_ << "  uint t = gl_LocalInvocationID.x, lane = t % L, kk = t / L, gd = t % G, part = t / G;\n";
  openLoops(g, true);
  body_ << "    uint bq = lin / (" << Hq << "u * S), hq = (lin / S) % " << Hq << "u, i = lin % S;\n";
  body_ << "    uint hk = hq / " << Hq / Hkv << "u;\n";
  body_ << "    uint K0 = (bq * " << Hkv << "u + hk) * T * " << D << "u, V0 = (bq * " << Hkv << "u + hk) * T * " << Dv
        << "u;\n";
  body_ << "    int position = int(T) - int(S) + int(i);\n";
  // The keys the mask can let through: causal stops at the position, a window starts after it.
  if (causal)
    body_ << "    uint jEnd = uint(clamp(position + 1, 0, int(T)));\n";
  else
    body_ << "    uint jEnd = T;\n";
  if (causal && window)
    body_ << "    uint jBeg = uint(clamp(position - " << *window << " + 1, 0, int(jEnd)));\n";
  else
    body_ << "    uint jBeg = 0u;\n";
  body_ << "    for (uint d = t; d < " << D << "u; d += WG) qs[d] = " << q.load("lin * " + std::to_string(D) + "u + d")
        << ";\n";
  body_ << "    barrier();\n";
  body_ << "    float m = uintBitsToFloat(0xff800000u), l = 0.0;\n";
  body_ << "    float acc[" << dpt << "];\n    for (int r = 0; r < " << dpt << "; ++r) acc[r] = 0.0;\n";
  body_ << "    for (uint j0 = jBeg; j0 < jEnd; j0 += NB) {\n";
  body_ << "      uint j = j0 + kk;\n";
  std::string see = "j < jEnd";
  if (causal) {
    see += " && int(j) <= position";
    if (window)
      see += " && position - int(j) < " + std::to_string(*window);
  }
  if (pad)
    see += " && " + pad->load("bq * T + j") + (pad->isFloat() ? " != 0.0" : " != 0");
  body_ << "      bool visible = " << see << ";\n";
  body_ << "      float part_ = 0.0;\n";
  body_ << "      if (visible)\n        for (uint d = lane; d < " << D << "u; d += L) part_ += qs[d] * "
        << k.load("K0 + j * " + std::to_string(D) + "u + d") << ";\n";
  body_ << "      dp[t] = part_;\n      barrier();\n";
  body_ << "      if (lane == 0u) {\n";
  body_ << "        float score = uintBitsToFloat(0xff800000u);\n";
  body_ << "        if (visible) {\n";
  body_ << "          float dot = 0.0;\n          for (uint x = 0u; x < L; ++x) dot += dp[t + x];\n";
  body_ << "          score = " << fmtFloat(att.getScale().convertToDouble()) << " * dot;\n";
  if (softcap)
    body_ << "          score = " << fmtFloat(*softcap) << " * tanhAccurate(score / " << fmtFloat(*softcap) << ");\n";
  if (bias) {
    SymShape scoreSym = {q.shape[0], q.shape[1], q.shape[2], k.shape[2]};
    std::vector<E> bsd = broadcastStrides(*bias, scoreSym);
    E off = E::t("bq") * bsd[0] + E::t("hq") * bsd[1] + E::t("i") * bsd[2] + E::t("j") * bsd[3];
    body_ << "          score += " << bias->load(off.str()) << ";\n";
  }
  body_ << "        }\n        sc[kk] = score;\n        mx[kk] = score;\n      }\n";
  body_ << "      barrier();\n";
  body_ << "      for (uint h = NB / 2u; h > 0u; h >>= 1u) {\n";
  body_ << "        if (t < h) mx[t] = max(mx[t], mx[t + h]);\n        barrier();\n      }\n";
  body_ << "      float mb = max(m, mx[0]);\n";
  body_ << "      if (!(isinf(mb) && mb < 0.0)) {\n";
  body_ << "        float alpha = exp(m - mb);\n";
  body_ << "        l *= alpha;\n        for (int r = 0; r < " << dpt << "; ++r) acc[r] *= alpha;\n";
  body_ << "        uint nk = min(NB, jEnd - j0);\n";
  body_ << "        for (uint x = part; x < nk; x += P) {\n";
  body_ << "          float s = sc[x];\n          if (isinf(s) && s < 0.0) continue;\n";
  body_ << "          float p = exp(s - mb);\n          l += p;\n";
  body_ << "          for (int r = 0; r < " << dpt << "; ++r) { uint d = gd + uint(r) * G; if (d < " << Dv
        << "u) acc[r] += p * " << v.load("V0 + (j0 + x) * " + std::to_string(Dv) + "u + d") << "; }\n";
  body_ << "        }\n        m = mb;\n      }\n";
  body_ << "      barrier();\n    }\n";
  if (parts > 1) {
    // parts > 1 only when G >= Dv, so each invocation holds one dim (dpt == 1).
    body_ << "    dp[t] = acc[0];\n    if (gd == 0u) sc[part] = l;\n    barrier();\n";
    body_ << "    if (part == 0u && gd < " << Dv << "u) {\n";
    body_ << "      float a = 0.0, lt = 0.0;\n";
    body_ << "      for (uint x = 0u; x < P; ++x) { a += dp[x * G + gd]; lt += sc[x]; }\n";
    body_ << "      " << o.store("lin * " + std::to_string(Dv) + "u + gd", "lt > 0.0 ? a / lt : 0.0") << "\n    }\n";
  } else {
    body_ << "    for (int r = 0; r < " << dpt << "; ++r) { uint d = gd + uint(r) * G; if (d < " << Dv << "u) "
          << o.store("lin * " + std::to_string(Dv) + "u + d", "l > 0.0 ? acc[r] / l : 0.0") << " }\n";
  }
  body_ << "    barrier();\n";
  body_ << "  }\n";
  helpers_ += kMathHelpers;
  return true;
}

//===----------------------------------------------------------------------===//
// Source assembly, glslang, validation
//===----------------------------------------------------------------------===//

std::string Builder::source() {
  std::ostringstream s;
  s << "#version 450\n";
  bool has8 = false, has16 = false;
  for (const Tensor &t : tensors_) {
    has8 |= t.kind == Kind::I1;
    has16 |= t.kind == Kind::F16 || t.kind == Kind::BF16;
  }
  if (has8)
    s << "#extension GL_EXT_shader_8bit_storage : require\n";
  if (has16)
    s << "#extension GL_EXT_shader_16bit_storage : require\n";
  if (subgroupArithmetic_)
    s << "#extension GL_KHR_shader_subgroup_arithmetic : require\n";
  s << "#extension GL_EXT_shader_explicit_arithmetic_types_int8 : enable\n";
  s << "#extension GL_EXT_shader_explicit_arithmetic_types_int16 : enable\n";
  s << "// " << describeOp(op_) << "\n";
  s << "layout(local_size_x = " << wg_[0] << ", local_size_y = " << wg_[1] << ", local_size_z = " << wg_[2]
    << ") in;\n";
  if (!symbols_.empty())
    s << "layout(push_constant) uniform PC { uint symbols[" << symbols_.size() << "]; } pc;\n";
  for (const Tensor &t : tensors_) {
    bool isOut = t.binding >= op_->getNumOperands();
    s << "layout(std430, set = 0, binding = " << t.binding << ") " << (isOut ? "" : "readonly ") << "buffer B"
      << t.binding << " { " << t.glslType() << " d[]; } b" << t.binding << ";\n";
  }
  s << shared_;
  s << helpers_;
  s << "void main() {\n" << body_.str() << "}\n";
  return s.str();
}

bool Builder::compile(const std::string &glsl) {
  static std::once_flag once;
  std::call_once(once, [] { glslang::InitializeProcess(); });
  glslang::TShader shader(EShLangCompute);
  const char *text = glsl.c_str();
  shader.setStrings(&text, 1);
  shader.setEnvInput(glslang::EShSourceGlsl, EShLangCompute, glslang::EShClientVulkan, 100);
  shader.setEnvClient(glslang::EShClientVulkan, glslang::EShTargetVulkan_1_1);
  shader.setEnvTarget(glslang::EShTargetSpv, glslang::EShTargetSpv_1_3);
  shader.setEntryPoint("main");
  EShMessages messages = (EShMessages)(EShMsgSpvRules | EShMsgVulkanRules);
  if (!shader.parse(GetDefaultResources(), 450, false, messages)) {
    std::string log = shader.getInfoLog();
    return fail("glslang: " + log.substr(0, log.find('\n', log.find("ERROR"))));
  }
  glslang::TProgram program;
  program.addShader(&shader);
  if (!program.link(messages))
    return fail(std::string("glslang link: ") + program.getInfoLog());
  glslang::SpvOptions options;
  options.disableOptimizer = true;
  std::vector<unsigned int> words;
  glslang::GlslangToSpv(*program.getIntermediate(EShLangCompute), words, &options);
  spvtools::SpirvTools tools(SPV_ENV_VULKAN_1_1);
  std::string first;
  tools.SetMessageConsumer([&](spv_message_level_t, const char *, const spv_position_t &, const char *msg) {
    if (first.empty())
      first = msg;
  });
  if (!tools.Validate(words.data(), words.size()))
    return fail("spirv-val: " + first);
  kernel.spirv.assign(words.begin(), words.end());
  return true;
}

bool Builder::run() {
  if (!makeTensors())
    return false;
  // Buffers beyond the target's storage range (static sizes only; symbolic ones are checked by the planner).
  for (const Tensor &t : tensors_) {
    E n = t.numElements();
    if (n.isConst && n.value * t.elementBytes() > target_.maxStorageBufferRange)
      return fail("a " + std::to_string(n.value * t.elementBytes()) + "-byte buffer exceeds maxStorageBufferRange (" +
                  std::to_string(target_.maxStorageBufferRange) + ")");
  }
  std::string family;
  bool ok = llvm::TypeSwitch<Operation *, bool>(op_)
                .Case<ir::ReshapeOp, ir::TransposeOp, ir::BroadcastToOp, ir::SliceOp, ir::ConcatOp>([&](auto) {
                  family = "copy";
                  return emitCopy();
                })
                .Case<ir::GatherOp>([&](auto) {
                  family = "gather";
                  return emitGather();
                })
                .Case<ir::ReduceSumOp, ir::ReduceMeanOp, ir::ReduceMaxOp, ir::SoftmaxOp, ir::RmsNormOp,
                      ir::LayerNormOp, ir::AddRmsNormOp, ir::AddLayerNormOp>([&](auto) {
                  family = "row";
                  return emitRowOp();
                })
                .Case<ir::MatmulOp>([&](auto) { return emitMatmul(); })
                .Case<ir::RopeOp>([&](auto) {
                  family = "rope";
                  return emitRope();
                })
                .Case<ir::AttentionOp>([&](auto) { return emitAttention(); })
                .Case<ir::WeightOp, ir::ConstantOp>(
                    [&](auto) { return fail("weights and constants are buffers, not kernels"); })
                .Default([&](Operation *) {
                  family = "map";
                  return emitElementwise();
                });
  if (!ok)
    return false;
  if (wg_[0] * wg_[1] * wg_[2] > target_.maxWorkgroupInvocations)
    return fail("workgroup of " + std::to_string(wg_[0] * wg_[1] * wg_[2]) + " invocations exceeds the target's " +
                std::to_string(target_.maxWorkgroupInvocations));
  if (sharedBytes_ > target_.maxSharedMemory)
    return fail("needs " + std::to_string(sharedBytes_) + " bytes of shared memory, the target has " +
                std::to_string(target_.maxSharedMemory));
  if (kernel.name.empty()) {
    std::string n = op_->getName().getStringRef().str();
    kernel.name = n.substr(n.find('.') + 1) + "_" + family;
  }
  kernel.name += "_" + kindName(out().kind);
  for (int i = 0; i < 3; ++i)
    kernel.workgroupSize[i] = wg_[i];
  kernel.sharedMemoryBytes = sharedBytes_;
  kernel.glsl = source();
  return compile(kernel.glsl);
}

} // namespace

std::string spirvUnsupportedReason(Operation *op, const SpirvTarget &target) {
  // Generating the kernel is cheap (milliseconds) and is the one source of truth for what fits.
  std::vector<std::string> symbols;
  std::set<std::string> seen;
  auto collect = [&](Type t) {
    FailureOr<SymShape> shape = ir::getSymShape(t);
    if (succeeded(shape))
      for (const SymExpr &d : *shape)
        for (const auto &[name, c] : d.terms())
          seen.insert(name);
  };
  for (Type t : op->getOperandTypes())
    collect(t);
  for (Type t : op->getResultTypes())
    collect(t);
  if (auto sym = dyn_cast<ir::SymOp>(op))
    seen.insert(sym.getSymbol().str());
  symbols.assign(seen.begin(), seen.end());
  Builder b(op, symbols, target);
  if (b.run())
    return "";
  std::string prefix = describeOp(op) + ": ";
  return b.error.rfind(prefix, 0) == 0 ? b.error.substr(prefix.size()) : b.error;
}

StatusOr<SpirvKernel> generateSpirvKernel(Operation *op, llvm::ArrayRef<std::string> symbolNames,
                                          const SpirvTarget &target, llvm::ArrayRef<Type> operandStorage) {
  Builder b(op, symbolNames, target, operandStorage);
  if (!b.run())
    return Status::error(b.error);
  return std::move(b.kernel);
}

} // namespace kiln::codegen
