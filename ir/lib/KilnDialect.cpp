//===- KilnDialect.cpp - dialect registration and #kiln.dims ----------------===//
#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/SymShape.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace kiln::ir;

#include "kiln/ir/KilnDialect.cpp.inc"
#include "kiln/ir/KilnEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "kiln/ir/KilnAttrs.cpp.inc"

void KilnDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "kiln/ir/KilnAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "kiln/ir/KilnOps.cpp.inc"
      >();
}

// #kiln.dims<[b, p + s, 2*s + 1]>
Attribute DimsAttr::parse(AsmParser &parser, Type) {
  MLIRContext *context = parser.getContext();
  llvm::SmallVector<Attribute> exprs;
  auto parseTerm = [&](SymExpr &e) -> ParseResult {
    int64_t value;
    OptionalParseResult integer = parser.parseOptionalInteger(value);
    if (integer.has_value()) {
      if (failed(*integer))
        return failure();
      if (failed(parser.parseOptionalStar())) {
        e = e + SymExpr::constant(value);
        return success();
      }
      if (value <= 0)
        return parser.emitError(parser.getCurrentLocation(), "coefficients must be positive");
    } else {
      value = 1;
    }
    std::string name;
    if (parser.parseKeywordOrString(&name))
      return failure();
    SymExpr term = SymExpr::symbol(name);
    for (int64_t i = 0; i < value; ++i)
      e = e + term;
    return success();
  };
  auto parseExpr = [&]() -> ParseResult {
    SymExpr e;
    do {
      if (parseTerm(e))
        return failure();
    } while (succeeded(parser.parseOptionalPlus()));
    exprs.push_back(StringAttr::get(context, e.str()));
    return success();
  };
  if (parser.parseLess() ||
      parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, parseExpr) || parser.parseGreater())
    return {};
  return DimsAttr::get(context, ArrayAttr::get(context, exprs));
}

void DimsAttr::print(AsmPrinter &printer) const {
  printer << "<[";
  llvm::interleaveComma(getExprs(), printer,
                        [&](Attribute a) { printer << cast<StringAttr>(a).getValue(); });
  printer << "]>";
}

LogicalResult DimsAttr::verifyEncoding(ArrayRef<int64_t> shape, Type,
                                       function_ref<InFlightDiagnostic()> emitError) const {
  size_t dynamic = llvm::count_if(shape, ShapedType::isDynamic);
  if (dynamic != getExprs().size())
    return emitError() << "#kiln.dims has " << getExprs().size() << " expressions for " << dynamic
                       << " dynamic dims";
  for (Attribute a : getExprs()) {
    auto text = dyn_cast<StringAttr>(a);
    if (!text || !SymExpr::parse(text.getValue()))
      return emitError() << "#kiln.dims: malformed expression " << a;
    if (SymExpr::parse(text.getValue())->isConstant())
      return emitError() << "#kiln.dims: constant " << a << " must be a static dim";
  }
  return success();
}

std::string kiln::ir::describeOp(mlir::Operation *op) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "'" << op->getName() << "' at " << op->getLoc();
  return s;
}
