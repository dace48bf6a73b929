//===- KernelBuilder.cpp - tensors, grid, source assembly, glslang -------===//
#include "KernelBuilder.h"

#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/ShapeInference.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/Support/raw_ostream.h"

#include <glslang/Public/ResourceLimits.h>
#include <glslang/Public/ShaderLang.h>
#include <glslang/SPIRV/GlslangToSpv.h>
#include <spirv-tools/libspirv.hpp>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>
#include <set>

using namespace mlir;

namespace kiln::codegen::spirv {

using ir::SymExpr;
using ir::SymShape;

UintExpr operator*(const UintExpr &a, const UintExpr &b) {
  if (a.isConst && b.isConst)
    return UintExpr::k(a.value * b.value);
  if ((a.isConst && a.value == 0) || (b.isConst && b.value == 0))
    return UintExpr::k(0);
  if (a.isConst && a.value == 1)
    return b;
  if (b.isConst && b.value == 1)
    return a;
  return UintExpr::t("(" + a.str() + " * " + b.str() + ")");
}

UintExpr operator+(const UintExpr &a, const UintExpr &b) {
  if (a.isConst && b.isConst)
    return UintExpr::k(a.value + b.value);
  if (a.isConst && a.value == 0)
    return b;
  if (b.isConst && b.value == 0)
    return a;
  return UintExpr::t("(" + a.str() + " + " + b.str() + ")");
}

SymExpr scaleSym(const SymExpr &e, int64_t k) {
  SymExpr out = SymExpr::constant(e.getConstant() * k);
  for (const auto &[name, coeff] : e.terms())
    for (int64_t i = 0; i < coeff * k; ++i)
      out = out + SymExpr::symbol(name);
  return out;
}

std::string glslFloat(double v) {
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
// Tensors
//===----------------------------------------------------------------------===//

const char *kindName(Kind k) {
  static const char *const names[] = {"f32", "f16", "bf16", "i64", "i32", "i1"};
  return names[static_cast<int>(k)];
}

const char *kindMacro(Kind k) {
  static const char *const names[] = {"F32", "F16", "BF16", "I64", "I32", "I1"};
  return names[static_cast<int>(k)];
}

UintExpr Tensor::numElements() const {
  UintExpr n = UintExpr::k(1);
  for (const UintExpr &d : dims)
    n = n * d;
  return n;
}

std::vector<UintExpr> Tensor::strides() const {
  std::vector<UintExpr> s(dims.size(), UintExpr::k(1));
  for (int i = (int)dims.size() - 2; i >= 0; --i)
    s[i] = s[i + 1] * dims[i + 1];
  return s;
}

size_t Tensor::elementBytes() const {
  static const size_t bytes[] = {4, 2, 2, 8, 4, 1};
  return bytes[static_cast<int>(kind)];
}

std::string Tensor::load(const std::string &off) const {
  return std::string("LOAD_") + kindMacro(kind) + "(" + buf() + ", " + at(off) + ")";
}

std::string Tensor::store(const std::string &off, const std::string &v) const {
  return std::string("STORE_") + kindMacro(kind) + "(" + buf() + ", " + at(off) + ", " + v + ");";
}

namespace {

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

} // namespace

std::string expandIncludes(const std::string &text, std::set<std::string> &included) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos)
      eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line.compare(start, 10, "#include \"") != 0) {
      out += line + "\n";
      continue;
    }
    std::string name = line.substr(start + 10, line.find('"', start + 10) - start - 10);
    if (!included.insert(name).second)
      continue;
    auto it = shaderFiles().find(name);
    if (it == shaderFiles().end())
      out += "#error kiln: no shader file " + name + "\n";
    else
      out += expandIncludes(it->second, included);
  }
  return out;
}


//===----------------------------------------------------------------------===//
// The builder
//===----------------------------------------------------------------------===//

KernelBuilder::KernelBuilder(Operation *op, llvm::ArrayRef<std::string> symbols, const SpirvTarget &target,
                             llvm::ArrayRef<Type> operandStorage, llvm::ArrayRef<SpirvKvView> views, int pass)
    : op_(op), symbols_(symbols), target_(target), operandStorage_(operandStorage), views_(views), pass_(pass) {}

bool KernelBuilder::fail(const std::string &why) {
  if (error.empty())
    error = describeOp(op_) + ": " + why;
  return false;
}

bool KernelBuilder::symbolRef(const std::string &name, std::string &glsl) {
  auto it = std::find(symbols_.begin(), symbols_.end(), name);
  if (it == symbols_.end())
    return fail("symbol '" + name + "' is not one of the step function's symbols");
  // std140 packs the symbols four to a uvec4 (header.glsl).
  const long index = it - symbols_.begin();
  glsl = "pc.symbols[" + std::to_string(index / 4) + "][" + std::to_string(index % 4) + "]";
  return true;
}

bool KernelBuilder::symExpr(const SymExpr &e, UintExpr &out) {
  out = UintExpr::k((uint64_t)e.getConstant());
  for (const auto &[name, coeff] : e.terms()) {
    std::string ref;
    if (!symbolRef(name, ref))
      return false;
    out = out + UintExpr::k((uint64_t)coeff) * UintExpr::t(ref);
  }
  return true;
}

// A KV-cache view [b, h, R, d] of a storage [b, h, capacity, d] from row `rowOffset`: row-major index i
// (row q = i / d of the b * h * R rows) is element ((q / R) * capacity + rowOffset + q % R) * d + i % d.
bool KernelBuilder::makeView(Tensor &t, const SpirvKvView &view) {
  if (t.dims.size() != 4)
    return fail("operand " + std::to_string(t.binding) + " is a KV-cache view but not rank 4");
  UintExpr offset;
  if (!symExpr(view.rowOffset, offset))
    return false;
  const std::string d = t.dims[3].str(), rows = t.dims[2].str();
  t.rowCapacity = view.rowCapacity;
  t.rowOffset = offset;
  t.viewMacro = "KV_VIEW_" + std::to_string(t.binding);
  t.viewDefine = "#define " + t.viewMacro + "(i) (((((i) / " + d + ") / " + rows + ") * " +
                 std::to_string(view.rowCapacity) + "u + " + offset.str() + " + ((i) / " + d + ") % " + rows +
                 ") * " + d + " + (i) % " + d + ")\n";
  return true;
}

// A tensor stored with its axes in `order` (storage axis k = the tensor's axis order[k]): row-major index i
// over `dims` has coordinates c_a = (i / stride_a) % dims_a and lives at sum_k c_order[k] * storageStride_k.
bool KernelBuilder::makePermutedView(Tensor &t, const std::vector<int64_t> &order) {
  const size_t rank = t.dims.size();
  std::vector<bool> seen(rank, false);
  for (int64_t a : order) {
    if (a < 0 || size_t(a) >= rank || seen[size_t(a)])
      return fail("operand " + std::to_string(t.binding) + ": storage order is not a permutation of its axes");
    seen[size_t(a)] = true;
  }
  if (order.size() != rank)
    return fail("operand " + std::to_string(t.binding) + ": storage order of another rank");
  const std::vector<UintExpr> strides = t.strides();
  std::vector<UintExpr> storageStride(rank, UintExpr::k(1));
  for (int k = int(rank) - 2; k >= 0; --k)
    storageStride[size_t(k)] = storageStride[size_t(k) + 1] * t.dims[size_t(order[size_t(k) + 1])];
  t.viewMacro = "T_VIEW_" + std::to_string(t.binding);
  std::string index;
  for (size_t k = 0; k < rank; ++k) {
    const size_t a = size_t(order[k]);
    std::string coord = "((i) / " + strides[a].str() + ")";
    if (a > 0)
      coord = "(" + coord + " % " + t.dims[a].str() + ")";
    index += (k ? " + " : "") + coord + " * " + storageStride[k].str();
  }
  t.viewDefine = "#define " + t.viewMacro + "(i) (" + index + ")\n";
  t.permuted = true;
  return true;
}

void KernelBuilder::define(const std::string &name, const std::string &value) { defines_.emplace_back(name, value); }

void KernelBuilder::bindRole(const std::string &role, const Tensor &t) {
  const std::string kind = kindMacro(t.kind), buf = t.buf();
  define("BUF_" + role, buf);
  define("LOAD_" + role + "(i)", "LOAD_" + kind + "(" + buf + ", " + t.at("i") + ")");
  if (t.output)
    define("STORE_" + role + "(i, v)", "STORE_" + kind + "(" + buf + ", " + t.at("i") + ", v)");
  define(role + "_IS_" + kind);
  define(role + (t.isFloat() ? "_IS_FLOAT" : "_IS_INT"));
}

UintExpr KernelBuilder::specConst(uint64_t v) {
  std::string id = std::to_string(kernel.specialization.size());
  kernel.specialization.push_back(static_cast<uint32_t>(v));
  return UintExpr::t("SC" + id);
}

void KernelBuilder::setWorkgroup(uint32_t x, uint32_t y, uint32_t z) {
  wg_[0] = x;
  wg_[1] = y;
  wg_[2] = z;
}

uint32_t KernelBuilder::workgroupUpTo(uint32_t cap) const {
  uint32_t wg = std::min<uint32_t>(cap, std::max<uint32_t>(1, target_.maxWorkgroupInvocations));
  return 1u << (31 - __builtin_clz(wg));
}

Grid KernelBuilder::planGrid(const SymShape &sym, const std::vector<UintExpr> &dims, uint32_t wgx, bool perWorkgroup) {
  Grid g;
  g.extent.assign(3, UintExpr::k(1));
  g.global.assign(3, SymExpr::constant(1));
  const int64_t cap = 65535;
  int d = (int)dims.size() - 1;
  for (int axis = 0; axis < 3; ++axis) {
    UintExpr ext = UintExpr::k(1);
    int64_t constant = 1;
    std::optional<SymExpr> symbolic;
    // x: the trailing constant dims, and the next symbolic dim when they are few; y: the constant dims before
    // the next symbolic one, or that symbolic dim when there are none; z: everything left. (A symbolic dim's
    // workgroup count is the symbol's value, unscaled, so y never holds both: [b, 32, s, 64] with y = b x 32
    // launched b workgroups for the 32 heads, one of them visiting all 32 at decode.)
    while (d >= 0 && sym[d].isConstant()) {
      if (axis == 0 && perWorkgroup && constant * sym[d].getConstant() > cap)
        break;
      ext = dims[d] * ext;
      constant *= sym[d].getConstant();
      --d;
    }
    bool takeSymbolic = d >= 0 && (axis == 2 || (axis == 1 && constant == 1) ||
                                   (axis == 0 && (constant < 256 || perWorkgroup)));
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

void KernelBuilder::useGrid(const Grid &g) {
  define("GRID_X", g.extent[0].str());
  define("GRID_Y", g.extent[1].str());
  define("GRID_Z", g.extent[2].str());
  kernel.globalSize = g.global;
}

std::string KernelBuilder::coords(const std::vector<UintExpr> &dims, const std::string &linVar,
                                  const std::string &prefix, const std::string &indent) {
  std::string s = indent + "uint rem_" + prefix + " = " + linVar + ";\n";
  for (int d = (int)dims.size() - 1; d >= 0; --d) {
    std::string c = prefix + std::to_string(d), r = "rem_" + prefix;
    if (d == 0)
      s += indent + "uint " + c + " = " + r + ";\n";
    else
      s += indent + "uint " + c + " = " + r + " % " + dims[d].str() + "; " + r + " /= " + dims[d].str() + ";\n";
  }
  return s;
}

std::string KernelBuilder::offset(const std::vector<UintExpr> &strides, const std::string &prefix, UintExpr base) {
  UintExpr acc = base;
  for (size_t d = 0; d < strides.size(); ++d)
    acc = acc + UintExpr::t(prefix + std::to_string(d)) * strides[d];
  return acc.str();
}

std::vector<UintExpr> KernelBuilder::broadcastStrides(const Tensor &t, const SymShape &outShape) {
  std::vector<UintExpr> inStrides = t.strides(), s(outShape.size(), UintExpr::k(0));
  size_t off = outShape.size() - t.shape.size();
  for (size_t i = 0; i < t.shape.size(); ++i)
    s[off + i] = (t.shape[i].isOne() && !outShape[off + i].isOne()) ? UintExpr::k(0) : inStrides[i];
  return s;
}

bool KernelBuilder::makeTensors() {
  auto add = [&](Type type) {
    Tensor t;
    const unsigned index = unsigned(tensors_.size()); // operandStorage_ and views_ are by index
    t.binding = index < bindings_.size() ? bindings_[index] : index;
    t.output = index >= op_->getNumOperands();
    auto ranked = dyn_cast<RankedTensorType>(type);
    if (!ranked)
      return fail("operand is not a ranked tensor");
    Type elem = ranked.getElementType();
    if (index < operandStorage_.size() && index < op_->getNumOperands() && operandStorage_[index] &&
        operandStorage_[index] != elem) {
      Type stored = operandStorage_[index];
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
      UintExpr v;
      if (!symExpr(d, v))
        return false;
      t.dims.push_back(v);
    }
    if (index < views_.size() && views_[index].rowCapacity > 0 && !makeView(t, views_[index]))
      return false;
    if (index < views_.size() && !views_[index].storageOrder.empty() &&
        !makePermutedView(t, views_[index].storageOrder))
      return false;
    tensors_.push_back(std::move(t));
    return true;
  };
  for (Value v : op_->getOperands()) {
    if (!add(v.getType()))
      return false;
    if (auto w = v.getDefiningOp<ir::WeightOp>(); w && w.getQuant()) // --weights q8_0|q4_0
      tensors_.back().quant = parseQuantFormat(w.getQuant()->str());
  }
  // A split kernel's scratch (f32) and, combined in one dispatch, its counters (i32): indexed by the kernel.
  for (Kind kind : {Kind::F32, Kind::I32}) {
    if (pass_ == 0 || (kind == Kind::I32 && pass_ != kSpirvCombinedPass))
      continue;
    Tensor scratch;
    scratch.binding = unsigned(tensors_.size());
    scratch.output = true;
    scratch.kind = kind;
    scratch.dims = {UintExpr::k(1)};
    scratch.shape = {SymExpr::constant(1)};
    scratch.coherent = pass_ == kSpirvCombinedPass;
    tensors_.push_back(std::move(scratch));
  }
  // One result, or add_rms_norm / add_layer_norm's two (h, then y: out() is y), or matmul_group's (one a weight).
  if (isa<ir::MatmulGroupOp, ir::GroupOp>(op_) ? op_->getNumResults() < 1
                                  : op_->getNumResults() != (isa<ir::AddRmsNormOp, ir::AddLayerNormOp>(op_) ? 2u : 1u))
    return fail("expected one result");
  for (Value r : op_->getResults())
    if (!add(r.getType()))
      return false;
  return true;
}

bool KernelBuilder::checkLimits() {
  if (wg_[0] * wg_[1] * wg_[2] > target_.maxWorkgroupInvocations)
    return fail("workgroup of " + std::to_string(wg_[0] * wg_[1] * wg_[2]) + " invocations exceeds the target's " +
                std::to_string(target_.maxWorkgroupInvocations));
  if (sharedBytes_ > target_.maxSharedMemory)
    return fail("needs " + std::to_string(sharedBytes_) + " bytes of shared memory, the target has " +
                std::to_string(target_.maxSharedMemory));
  return true;
}

bool KernelBuilder::describe(const SpirvOpEntry &entry) {
  if (!entry.noKernel.empty() || !entry.emit)
    return fail(entry.noKernel.empty() ? "no SPIR-V kernel for this op" : entry.noKernel);
  if (!makeTensors())
    return false;
  // Buffers beyond the target's storage range (static sizes only; symbolic ones are checked by the planner).
  for (const Tensor &t : tensors_) {
    UintExpr n = t.numElements();
    const uint64_t bytes = !n.isConst ? 0
                           : t.quant  ? quantizedMatrixBytes(*t.quant, n.value / t.shape.back().getConstant(),
                                                             uint64_t(t.shape.back().getConstant()))
                                      : n.value * t.elementBytes();
    if (bytes > target_.maxStorageBufferRange)
      return fail("a " + std::to_string(bytes) + "-byte buffer exceeds maxStorageBufferRange (" +
                  std::to_string(target_.maxStorageBufferRange) + ")");
    // Block-quantized weights have readers in quant.glsl only: the matmul (as B^T) and the gather (the table).
    if (t.quant && !isa<ir::MatmulOp, ir::MatmulGroupOp, ir::GatherOp>(op_))
      return fail(std::string("reads a ") + quantFormatName(*t.quant) + " weight: on Vulkan only kiln.matmul, " +
                  "kiln.matmul_group and kiln.gather read block-quantized weights");
  }
  return entry.emit(*this, entry) && checkLimits();
}

bool KernelBuilder::run(const SpirvOpEntry &entry) {
  if (!describe(entry))
    return false;
  if (kernel.name.empty()) {
    std::string n = op_->getName().getStringRef().str();
    kernel.name = n.substr(n.find('.') + 1) + "_" + entry.family;
  }
  kernel.name += std::string("_") + kindName(out().kind);
  if (std::any_of(tensors_.begin(), tensors_.end(), [](const Tensor &t) { return t.rowCapacity > 0; }))
    kernel.name += "_kvview";
  if (std::any_of(tensors_.begin(), tensors_.end(), [](const Tensor &t) { return t.permuted; }))
    kernel.name += "_tview";
  for (int i = 0; i < 3; ++i)
    kernel.workgroupSize[i] = wg_[i];
  kernel.sharedMemoryBytes = sharedBytes_;
  kernel.glsl = source();
  return compile(kernel.glsl);
}

//===----------------------------------------------------------------------===//
// Source assembly, glslang, validation
//===----------------------------------------------------------------------===//

std::string KernelBuilder::source() const {
  const std::string &header = shaderFiles().at("header.glsl");
  size_t versionEnd = header.find('\n') + 1;
  std::string describe = describeOp(op_);
  std::replace(describe.begin(), describe.end(), '\n', ' ');
  std::string s = header.substr(0, versionEnd) + "// " + describe + "\n";
  auto line = [&](const std::string &name, const std::string &value) {
    s += "#define " + name + (value.empty() ? "" : " " + value) + "\n";
  };
  line("WG_X", std::to_string(wg_[0]) + "u");
  line("WG_Y", std::to_string(wg_[1]) + "u");
  line("WG_Z", std::to_string(wg_[2]) + "u");
  line("NUM_SYMBOLS", std::to_string(symbols_.size()));
  if (std::any_of(tensors_.begin(), tensors_.end(), [](const Tensor &t) { return t.kind == Kind::I1; }))
    line("STORAGE_8BIT", "");
  if (std::any_of(tensors_.begin(), tensors_.end(), [](const Tensor &t) { return t.is16(); }))
    line("STORAGE_16BIT", "");
  if (subgroupArithmetic_)
    line("SUBGROUP_ARITHMETIC", "");
  if (cooperativeMatrix_)
    line("COOPERATIVE_MATRIX", "");
  if (integerDotProduct_)
    line("INTEGER_DOT_PRODUCT", "");
  for (const auto &[name, value] : defines_)
    line(name, value);
  std::set<std::string> included = {"header.glsl"};
  s += expandIncludes(header.substr(versionEnd), included);
  for (const Tensor &t : tensors_)
    s += std::string(t.coherent ? "COHERENT_BUFFER(" : t.output ? "OUTPUT_BUFFER(" : "INPUT_BUFFER(") +
         std::to_string(t.binding) + ", " + (t.quant ? "QUANT" : kindMacro(t.kind)) + ")\n" + t.viewDefine;
  for (size_t i = 0; i < kernel.specialization.size(); ++i)
    s += "SPEC_CONSTANT(" + std::to_string(i) + ")\n";
  s += expandIncludes(generated_, included);
  s += expandIncludes("#include \"" + shader_ + "\"\n", included);
  return s;
}

bool KernelBuilder::compile(const std::string &glsl) {
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
  std::string rewrite;
  if (cooperativeMatrix_ && !nvToKhrCooperativeMatrix(words, rewrite))
    return fail("cooperative matrix rewrite: " + rewrite);
  kernel.spirv.assign(words.begin(), words.end());
  return true;
}

} // namespace kiln::codegen::spirv
