//===- SpirvOpTable.cpp - the SPIR-V backend's one table of kiln ops ------===//
//
// Every kiln op the backend knows -> its kernel emitter (or why it has none). Elementwise ops carry their
// GLSL expression here ($0, $1: the operand values, cast to the result's float-ness; shaders/math.glsl
// provides the helpers), so a new unary or binary op is one line of this table.
//
//===----------------------------------------------------------------------===//
#include "KernelBuilder.h"

#include "kiln/ir/KilnDialect.h"

namespace kiln::codegen::spirv {
namespace {

std::map<std::string, SpirvOpEntry> buildTable() {
  std::map<std::string, SpirvOpEntry> t;
  auto kernel = [&](llvm::StringRef op, KernelEmitter emit, const char *family) {
    t[op.str()] = SpirvOpEntry{"", emit, family};
  };
  // An elementwise op: its float expression, and its integer one when integers are allowed.
  auto map = [&](llvm::StringRef op, const char *floatExpr, const char *intExpr = "") {
    t[op.str()] = SpirvOpEntry{"", emitElementwise, "map", floatExpr, intExpr};
  };
  auto none = [&](llvm::StringRef op, const char *why) { t[op.str()] = SpirvOpEntry{why, nullptr}; };

  none(ir::WeightOp::getOperationName(), "weights and constants are buffers, not kernels");
  none(ir::ConstantOp::getOperationName(), "weights and constants are buffers, not kernels");

  kernel(ir::SymOp::getOperationName(), emitSym, "map");
  kernel(ir::IotaOp::getOperationName(), emitIota, "map");
  kernel(ir::ConvertOp::getOperationName(), emitConvert, "map");
  kernel(ir::CompareOp::getOperationName(), emitCompare, "map");
  kernel(ir::SelectOp::getOperationName(), emitSelect, "map");

  map(ir::AddOp::getOperationName(), "$0 + $1", "$0 + $1");
  map(ir::SubOp::getOperationName(), "$0 - $1", "$0 - $1");
  map(ir::MulOp::getOperationName(), "$0 * $1", "$0 * $1");
  map(ir::DivOp::getOperationName(), "$0 / $1", "($1 == 0 ? 0 : $0 / $1)");
  map(ir::MaxOp::getOperationName(), "((isnan($0) || isnan($1)) ? kNaN() : max($0, $1))", "max($0, $1)");
  map(ir::MinOp::getOperationName(), "((isnan($0) || isnan($1)) ? kNaN() : min($0, $1))", "min($0, $1)");
  map(ir::PowOp::getOperationName(), "powF($0, $1)");

  map(ir::NegOp::getOperationName(), "-$0", "-$0");
  map(ir::AbsOp::getOperationName(), "abs($0)", "abs($0)");
  map(ir::ReluOp::getOperationName(), "($0 > 0.0 ? $0 : (isnan($0) ? $0 : 0.0))", "max($0, 0)");
  map(ir::ExpOp::getOperationName(), "exp($0)");
  map(ir::LogOp::getOperationName(), "log($0)");
  map(ir::TanhOp::getOperationName(), "tanhAccurate($0)");
  map(ir::ErfOp::getOperationName(), "erfApprox($0)");
  map(ir::CosOp::getOperationName(), "cos($0)");
  map(ir::SinOp::getOperationName(), "sin($0)");
  map(ir::RsqrtOp::getOperationName(), "(1.0 / sqrt($0))");
  map(ir::SqrtOp::getOperationName(), "sqrt($0)");
  map(ir::SigmoidOp::getOperationName(), "sigmoidF($0)");
  map(ir::SiluOp::getOperationName(), "($0 * sigmoidF($0))");
  map(ir::GeluOp::getOperationName(), "($0 * 0.5 * (1.0 + erfApprox($0 * 0.70710678118654752)))");
  map(ir::GeluTanhOp::getOperationName(),
      "(0.5 * $0 * (1.0 + tanhAccurate(0.79788456080286536 * ($0 + 0.044715 * $0 * $0 * $0))))");

  kernel(ir::ReshapeOp::getOperationName(), emitReshape, "copy");
  kernel(ir::TransposeOp::getOperationName(), emitTranspose, "copy");
  kernel(ir::BroadcastToOp::getOperationName(), emitBroadcastTo, "copy");
  kernel(ir::SliceOp::getOperationName(), emitSlice, "copy");
  kernel(ir::TailOp::getOperationName(), emitTail, "copy");
  kernel(ir::ConcatOp::getOperationName(), emitConcat, "copy");
  kernel(ir::GatherOp::getOperationName(), emitGather, "gather");

  kernel(ir::ReduceSumOp::getOperationName(), emitReduce, "row");
  kernel(ir::ReduceMeanOp::getOperationName(), emitReduce, "row");
  kernel(ir::ReduceMaxOp::getOperationName(), emitReduce, "row");
  kernel(ir::SoftmaxOp::getOperationName(), emitSoftmax, "row");
  kernel(ir::RmsNormOp::getOperationName(), emitRmsNorm, "row");
  kernel(ir::AddRmsNormOp::getOperationName(), emitRmsNorm, "row");
  kernel(ir::LayerNormOp::getOperationName(), emitLayerNorm, "row");
  kernel(ir::AddLayerNormOp::getOperationName(), emitLayerNorm, "row");

  kernel(ir::MatmulOp::getOperationName(), emitMatmul, "matmul");
  kernel(ir::MatmulGroupOp::getOperationName(), emitMatmulGroup, "matmul");
  kernel(ir::RopeOp::getOperationName(), emitRope, "rope");
  kernel(ir::AttentionOp::getOperationName(), emitAttention, "attention");
  kernel(ir::GroupOp::getOperationName(), emitGroup, "group");
  none(ir::YieldOp::getOperationName(), "the terminator of kiln.group: its group's kernel stores the values");
  return t;
}

} // namespace

const std::map<std::string, SpirvOpEntry> &spirvOpTable() {
  static const std::map<std::string, SpirvOpEntry> table = buildTable();
  return table;
}

} // namespace kiln::codegen::spirv
