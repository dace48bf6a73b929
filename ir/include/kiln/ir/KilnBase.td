//===- KilnBase.td - the kiln dialect and its attributes --------*- tablegen -*-===//
#ifndef KILN_BASE_TD
#define KILN_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"
include "mlir/IR/TensorEncoding.td"

def Kiln_Dialect : Dialect {
  let name = "kiln";
  let cppNamespace = "::kiln::ir";
  let summary = "Tensor ops of transformer models with symbolic batch / seq / past dims";
  let description = [{
    Values are ranked tensors. A dynamic dim (`?`) always carries a symbolic expression in the tensor's
    encoding, `#kiln.dims<[...]>`, one entry per dynamic dim in order: a sum of symbols with positive
    integer coefficients plus a constant, e.g. `b`, `s`, `p + s`. Symbols are bound at run time (b: batch,
    s: chunk length, p: tokens already in the KV cache). Verifiers check every shape rule symbolically, so a
    program that verifies is well-shaped for every value of the symbols.
  }];
  let useDefaultAttributePrinterParser = 1;
}

def Kiln_DimsAttr : AttrDef<Kiln_Dialect, "Dims",
    [DeclareAttrInterfaceMethods<VerifiableTensorEncoding>]> {
  let mnemonic = "dims";
  let summary = "symbolic expressions of a tensor's dynamic dims";
  let description = [{
    `#kiln.dims<[b, p + s]>`: the expressions of the dynamic dims, in order. Stored canonically (terms sorted
    by symbol name, constant last) so that two equal expressions compare equal as attributes.
  }];
  let parameters = (ins "::mlir::ArrayAttr":$exprs);
  let hasCustomAssemblyFormat = 1;
}

class Kiln_Op<string mnemonic, list<Trait> traits = []> : Op<Kiln_Dialect, mnemonic, traits>;

#endif // KILN_BASE_TD
