//===- MapKernels.cpp - elementwise ops, copies, gather, rope -------------===//
//
// The kernels that visit every element of the result once (shaders/grid.glsl, one invocation per element).
// Elementwise ops and copies are the only generated kernels: their visit() reads each operand at the
// element's coordinates through broadcast / permuted / offset strides, which depend on the op's ranks and
// shapes, then applies the op's expression (SpirvOpTable.cpp); gather and rope are fixed .comp files.
//
//===----------------------------------------------------------------------===//
#include "KernelBuilder.h"

#include "kiln/ir/KilnDialect.h"

using namespace mlir;

namespace kiln::codegen::spirv {
namespace {

std::string castTo(const std::string &v, bool fromFloat, bool toFloat) {
  if (fromFloat == toFloat)
    return v;
  return toFloat ? "float(" + v + ")" : "int(" + v + ")";
}

/// A map over the result: one invocation per element, `shader`'s visit (grid.glsl) on a workgroup of 256.
void mapGrid(KernelBuilder &b, const std::string &shader) {
  const Tensor &o = b.out();
  uint32_t wg = b.workgroupUpTo(256);
  b.setWorkgroup(wg);
  b.useGrid(b.planGrid(o.shape, o.dims, wg, false));
  b.useShader(shader);
}

/// A map over the result with the generated `visit` body (after the result coordinates c0..c{r-1}).
bool generatedMap(KernelBuilder &b, const std::string &body, bool needsMath) {
  b.addGenerated(std::string(needsMath ? "#include \"math.glsl\"\n" : "") + "void visit(uint lin) {\n" +
                 KernelBuilder::coords(b.out().dims, "lin", "c", "  ") + body + "}\n");
  mapGrid(b, "map.comp");
  return true;
}

/// `float v<i> = <operand i at the element>;` for every operand, read through broadcast strides.
std::string readOperands(const KernelBuilder &b) {
  std::string s;
  for (unsigned i = 0; i + 1 < b.numTensors(); ++i)
    s += std::string("  ") + (b.in(i).isFloat() ? "float" : "int") + " v" + std::to_string(i) + " = " +
         b.in(i).load(KernelBuilder::offset(KernelBuilder::broadcastStrides(b.in(i), b.out().shape))) + ";\n";
  return s;
}

/// Reads the operands, stores `value` (a GLSL expression over v0, v1, ...).
bool storeMap(KernelBuilder &b, const std::string &value, bool readsOperands = true) {
  return generatedMap(b, (readsOperands ? readOperands(b) : "") + "  " + b.out().store("lin", value) + "\n", true);
}

/// A copy of element `srcOff` of `src` to the result's element lin: the stored bits, whatever the kind.
std::string copyElement(const Tensor &src, const Tensor &o, const std::string &srcOff) {
  // Through the views' indices where a buffer is a KV-cache view (Tensor::at).
  const std::string dst = o.at("lin"), from = src.at(srcOff);
  if (src.kind == Kind::I64)
    return "{ uint s_ = 2u * (" + from + "), d_ = 2u * (" + dst + "); " + o.buf() + "[d_] = " + src.buf() +
           "[s_]; " + o.buf() + "[d_ + 1u] = " + src.buf() + "[s_ + 1u]; }";
  std::string v = src.is16() || src.kind == Kind::I1 ? src.buf() + "[" + from + "]" : src.load(srcOff);
  return o.buf() + "[" + dst + "] = " + v + ";";
}

bool copyMap(KernelBuilder &b, const std::string &body) { return generatedMap(b, body, false); }

int64_t normalizedAxis(int64_t axis, size_t rank) { return axis < 0 ? axis + int64_t(rank) : axis; }

} // namespace

//===----------------------------------------------------------------------===//
// Elementwise ops
//===----------------------------------------------------------------------===//

bool emitElementwise(KernelBuilder &b, const SpirvOpEntry &entry) {
  bool f = b.out().isFloat();
  std::string value = f ? entry.floatExpr : entry.intExpr;
  if (value.empty())
    return b.fail("integer " + b.op()->getName().getStringRef().str() + " has no SPIR-V kernel");
  for (unsigned i = 0; i + 1 < b.numTensors(); ++i) {
    std::string placeholder = "$" + std::to_string(i);
    std::string operand = castTo("v" + std::to_string(i), b.in(i).isFloat(), f);
    for (size_t pos = value.find(placeholder); pos != std::string::npos;
         pos = value.find(placeholder, pos + operand.size()))
      value.replace(pos, placeholder.size(), operand);
  }
  return storeMap(b, value);
}

bool emitConvert(KernelBuilder &b, const SpirvOpEntry &) {
  bool from = b.in(0).isFloat();
  if (b.out().kind == Kind::I1)
    return storeMap(b, from ? "(v0 != 0.0 ? 1 : 0)" : "(v0 != 0 ? 1 : 0)");
  return storeMap(b, castTo("v0", from, b.out().isFloat()));
}

bool emitCompare(KernelBuilder &b, const SpirvOpEntry &) {
  static const char *const kOperator[] = {"==", "!=", "<", "<=", ">", ">="}; // ir::ComparePredicate order
  std::string c = kOperator[static_cast<int>(cast<ir::CompareOp>(b.op()).getPredicate())];
  bool f0 = b.in(0).isFloat(), f1 = b.in(1).isFloat(), anyF = f0 || f1;
  return storeMap(b, "((" + castTo("v0", f0, anyF) + " " + c + " " + castTo("v1", f1, anyF) + ") ? 1 : 0)");
}

bool emitSelect(KernelBuilder &b, const SpirvOpEntry &) {
  bool f = b.out().isFloat();
  return storeMap(b, "(v0 != 0 ? " + castTo("v1", b.in(1).isFloat(), f) + " : " + castTo("v2", b.in(2).isFloat(), f) +
                         ")");
}

bool emitSym(KernelBuilder &b, const SpirvOpEntry &) {
  std::string ref;
  if (!b.symbolRef(cast<ir::SymOp>(b.op()).getSymbol().str(), ref))
    return false;
  return storeMap(b, castTo("int(" + ref + ")", false, b.out().isFloat()), false);
}

bool emitIota(KernelBuilder &b, const SpirvOpEntry &) {
  std::string c = "int(c" + std::to_string(cast<ir::IotaOp>(b.op()).getDim()) + ")";
  return storeMap(b, castTo(c, false, b.out().isFloat()), false);
}

//===----------------------------------------------------------------------===//
// Copies: reshape, transpose, broadcast_to, slice, concat
//===----------------------------------------------------------------------===//

bool emitReshape(KernelBuilder &b, const SpirvOpEntry &) {
  return copyMap(b, "  " + copyElement(b.in(0), b.out(), "lin") + "\n");
}

bool emitTranspose(KernelBuilder &b, const SpirvOpEntry &) {
  std::vector<UintExpr> s = b.in(0).strides(), strides;
  for (int64_t p : cast<ir::TransposeOp>(b.op()).getPermutation())
    strides.push_back(s[p]);
  return copyMap(b, "  " + copyElement(b.in(0), b.out(), KernelBuilder::offset(strides)) + "\n");
}

bool emitBroadcastTo(KernelBuilder &b, const SpirvOpEntry &) {
  std::string off = KernelBuilder::offset(KernelBuilder::broadcastStrides(b.in(0), b.out().shape));
  return copyMap(b, "  " + copyElement(b.in(0), b.out(), off) + "\n");
}

bool emitSlice(KernelBuilder &b, const SpirvOpEntry &) {
  auto slice = cast<ir::SliceOp>(b.op());
  int64_t axis = normalizedAxis((int64_t)slice.getAxis(), b.out().shape.size());
  std::vector<UintExpr> s = b.in(0).strides();
  std::string off = KernelBuilder::offset(s, "c", UintExpr::k(slice.getStart()) * s[axis]);
  return copyMap(b, "  " + copyElement(b.in(0), b.out(), off) + "\n");
}

// The last out-dim elements along the axis: starting (in - out) rows in, both run-time dims.
bool emitTail(KernelBuilder &b, const SpirvOpEntry &) {
  int64_t axis = normalizedAxis((int64_t)cast<ir::TailOp>(b.op()).getAxis(), b.out().shape.size());
  std::vector<UintExpr> s = b.in(0).strides();
  UintExpr skipped = UintExpr::t("(" + b.in(0).dims[axis].str() + " - " + b.out().dims[axis].str() + ")");
  std::string off = KernelBuilder::offset(s, "c", skipped * s[axis]);
  return copyMap(b, "  " + copyElement(b.in(0), b.out(), off) + "\n");
}

bool emitConcat(KernelBuilder &b, const SpirvOpEntry &) {
  int64_t axis = normalizedAxis((int64_t)cast<ir::ConcatOp>(b.op()).getAxis(), b.out().shape.size());
  std::string a = std::to_string(axis);
  std::string body = "  uint ca = c" + a + ";\n";
  UintExpr start = UintExpr::k(0);
  for (unsigned i = 0; i + 1 < b.numTensors(); ++i) {
    const Tensor &src = b.in(i);
    UintExpr end = start + src.dims[axis];
    body += std::string("  ") + (i ? "else " : "") + "if (ca < " + end.str() + ") {\n";
    body += "    c" + a + " = ca - " + start.str() + ";\n";
    body += "    " + copyElement(src, b.out(), KernelBuilder::offset(src.strides())) + "\n  }\n";
    start = end;
  }
  return copyMap(b, body);
}

//===----------------------------------------------------------------------===//
// Gather and rope (shaders/gather.comp, shaders/rope.comp)
//===----------------------------------------------------------------------===//

bool emitGather(KernelBuilder &b, const SpirvOpEntry &) {
  const Tensor &table = b.in(0), &o = b.out();
  if (table.shape.empty())
    return b.fail("table must have rank >= 1");
  UintExpr row = UintExpr::k(1);
  for (size_t d = 1; d < table.dims.size(); ++d)
    row = row * table.dims[d];
  b.define("GATHER_ROW", row.str());
  b.define("GATHER_ROWS", table.dims[0].str());
  b.bindRole("TABLE", table);
  b.bindRole("INDEX", b.in(1));
  b.bindRole("OUT", o);
  if (table.quant) { // a q8_0 / q4_0 embedding table: the gathered rows dequantized (quant.glsl)
    if (!o.isFloat() || o.kind == Kind::BF16)
      return b.fail("a block-quantized table is gathered into f32 or f16 only");
    b.define("QUANT_TABLE");
    defineQuantReader(b, table);
  } else if (table.kind != o.kind) // an f16 / bf16 table read in place for an f32 result (a folded weight convert)
    b.define("GATHER_CONVERT");
  mapGrid(b, "gather.comp");
  return true;
}

bool emitRope(KernelBuilder &b, const SpirvOpEntry &) {
  auto rope = cast<ir::RopeOp>(b.op());
  const Tensor &x = b.in(0), &freq = b.in(2), &o = b.out();
  if (x.shape.size() != 4 || !freq.shape.back().isConstant() || !x.shape[3].isConstant())
    return b.fail("rope needs a static head dim and frequency table");
  if (!x.isFloat())
    return b.fail("only float rope has a SPIR-V kernel");
  if (o.kind == Kind::BF16)
    return b.fail("bf16 results have no SPIR-V rope kernel");
  b.define("ROPE_HALF", std::to_string(freq.shape.back().getConstant()) + "u");
  b.define("ROPE_D", x.dims[3].str());
  b.define("ROPE_S", x.dims[2].str());
  b.define("ROPE_H", x.dims[1].str());
  if (rope.getInterleaved())
    b.define("INTERLEAVED");
  b.bindRole("X", x);
  b.bindRole("POS", b.in(1));
  b.bindRole("FREQ", freq);
  b.bindRole("OUT", o);
  mapGrid(b, "rope.comp");
  return true;
}

} // namespace kiln::codegen::spirv
