//===- KernelCases.cpp - the kernel cases every backend runs (KernelCases.h) ===//
#include "KernelCases.h"

#include <cmath>
#include <utility>

namespace kiln::test {

const std::vector<Bindings> kShapes = {{{"b", 1}, {"s", 1}, {"p", 0}},
                                       {{"b", 2}, {"s", 3}, {"p", 5}},
                                       {{"b", 1}, {"s", 7}, {"p", 0}},
                                       {{"b", 3}, {"s", 13}, {"p", 2}}};

std::string replaceAll(std::string s, const std::string &from, const std::string &to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

std::string quantMatmulGatherSource(const std::string &format, int64_t n, int64_t k) {
  const std::string w = "tensor<" + std::to_string(n) + "x" + std::to_string(k) + "xf32>";
  const std::string x = "tensor<?x?x" + std::to_string(k) + "xf32, #kiln.dims<[b, s]>>";
  const std::string y = "tensor<?x?x" + std::to_string(n) + "xf32, #kiln.dims<[b, s]>>";
  const std::string ids = "tensor<?x?xi64, #kiln.dims<[b, s]>>";
  return "func.func @q(%x: " + x + ", %ids: " + ids + ") -> (" + y + ", " + x + ") {\n" +
         "  %w = kiln.weight \"w\" {quant = \"" + format + "\"} : " + w + "\n" +
         "  %0 = kiln.matmul %x, %w {transpose_b = true} : (" + x + ", " + w + ") -> " + y + "\n" +
         "  %1 = kiln.gather %w, %ids : (" + w + ", " + ids + ") -> " + x + "\n" +
         "  return %0, %1 : " + y + ", " + x + "\n}\n";
}

std::string expand(std::string s) {
  s = replaceAll(s, "!X", "tensor<?x?x8xf32, #kiln.dims<[b, s]>>");
  s = replaceAll(s, "!B", "tensor<?x1x8xf32, #kiln.dims<[b]>>");
  s = replaceAll(s, "!S1", "tensor<?x1xf32, #kiln.dims<[s]>>");
  s = replaceAll(s, "!M", "tensor<?x?x8xi1, #kiln.dims<[b, s]>>");
  s = replaceAll(s, "!H", "tensor<?x?x8xf16, #kiln.dims<[b, s]>>");
  s = replaceAll(s, "!F", "tensor<?x?x8xbf16, #kiln.dims<[b, s]>>");
  s = replaceAll(s, "!I", "tensor<?x?x8xi64, #kiln.dims<[b, s]>>");
  s = replaceAll(s, "!J", "tensor<?x?x8xi32, #kiln.dims<[b, s]>>");
  return s;
}

namespace {

/// Replaces each (shorthand, type) in order: longer shorthands first where one is a prefix of another.
std::string substitute(std::string s, const std::vector<std::pair<std::string, std::string>> &types) {
  for (const auto &[from, to] : types)
    s = replaceAll(s, from, to);
  return s;
}

Filler uniform(double lo, double hi, bool integers) {
  return [=](const std::vector<int64_t> &shape, const Bindings &, std::mt19937 &rng) {
    std::vector<double> v(numElements(shape));
    std::uniform_int_distribution<int> whole((int)lo, (int)hi);
    std::uniform_real_distribution<double> real(lo, hi);
    for (double &x : v)
      x = integers ? whole(rng) : real(rng);
    return v;
  };
}

/// A key padding mask [b, t] (nonzero = valid): batch row 1 hides its first `hidden` keys, so with causal
/// masking some of its queries see no key at all (their output is zeros); every row hides random others.
Filler keyPadding(int64_t hidden) {
  return [hidden](const std::vector<int64_t> &shape, const Bindings &, std::mt19937 &rng) {
    std::vector<double> v(numElements(shape));
    std::uniform_int_distribution<int> d(0, 3);
    for (int64_t r = 0; r < shape[0]; ++r)
      for (int64_t j = 0; j < shape[1]; ++j)
        v[r * shape[1] + j] = (r == 1 && j < hidden) ? 0 : d(rng) != 0;
    return v;
  };
}

//===----------------------------------------------------------------------===//
// Elementwise: every binary and unary op, compare, select, convert, sym, iota
//===----------------------------------------------------------------------===//

KernelCase elementwise() {
  return {"Elementwise", expand(R"(
func.func @elementwise(%a: !X, %c: !B, %d: tensor<8xf32>, %e: !S1, %m: !M, %i: !I) -> (
    !X, !X, !X, !X, !X, !X, !X,
    !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X,
    !M, !M, !M, !X, !X, !X, !I, !I) {
  %0 = kiln.add %a, %c : (!X, !B) -> !X
  %1 = kiln.sub %a, %d : (!X, tensor<8xf32>) -> !X
  %2 = kiln.mul %a, %e : (!X, !S1) -> !X
  %pa = kiln.abs %a : !X -> !X
  %pd = kiln.abs %d : tensor<8xf32> -> tensor<8xf32>
  %3 = kiln.div %a, %pd : (!X, tensor<8xf32>) -> !X
  %4 = kiln.max %a, %c : (!X, !B) -> !X
  %5 = kiln.min %e, %a : (!S1, !X) -> !X
  %6 = kiln.pow %pa, %d : (!X, tensor<8xf32>) -> !X
  %u0 = kiln.neg %a : !X -> !X
  %u1 = kiln.exp %a : !X -> !X
  %u2 = kiln.log %pa : !X -> !X
  %u3 = kiln.tanh %a : !X -> !X
  %u4 = kiln.erf %a : !X -> !X
  %u5 = kiln.cos %a : !X -> !X
  %u6 = kiln.sin %a : !X -> !X
  %u7 = kiln.rsqrt %pa : !X -> !X
  %u8 = kiln.sqrt %pa : !X -> !X
  %u10 = kiln.sigmoid %a : !X -> !X
  %u11 = kiln.silu %a : !X -> !X
  %u12 = kiln.gelu %a : !X -> !X
  %u13 = kiln.gelu_tanh %a : !X -> !X
  %u14 = kiln.relu %a : !X -> !X
  %k0 = kiln.compare lt, %a, %c : (!X, !B) -> !M
  %k1 = kiln.compare ge, %a, %d : (!X, tensor<8xf32>) -> !M
  %k2 = kiln.compare eq, %i, %i : (!I, !I) -> !M
  %s0 = kiln.select %k0, %a, %d : (!M, !X, tensor<8xf32>) -> !X
  %s1 = kiln.select %m, %e, %c : (!M, !S1, !B) -> !X
  %big = kiln.mul %a, %a : (!X, !X) -> !X
  %ii = kiln.mul %i, %i : (!I, !I) -> !I
  %id = kiln.sub %ii, %i : (!I, !I) -> !I
  return %0, %1, %2, %3, %4, %5, %6, %u0, %u1, %u2, %u3, %u4, %u5, %u6, %u7, %u8, %pa, %u10, %u11, %u12, %u13, %u14, %big, %s0,
         %k0, %k1, %k2, %s0, %s1, %big, %ii, %id :
         !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X, !X,
         !M, !M, !M, !X, !X, !X, !I, !I
})"), kShapes, {}};
}

/// %big = a * i: values up to +-9 with fractions, so float -> int truncation is exercised both ways.
KernelCase convertSymIota() {
  return {"ConvertSymIota", expand(R"(
func.func @convert(%a: !X, %i: !I, %m: !M, %h: !H, %past: tensor<1x?xf32, #kiln.dims<[p]>>) -> (!X, !X, !I, !X, !J, !M, !X, !F, !X, !H,
    tensor<?x?xi64, #kiln.dims<[s, p + s]>>, tensor<?x?xf32, #kiln.dims<[s, p + s]>>) {
  %if = kiln.convert %i : !I -> !X
  %big = kiln.mul %a, %if : (!X, !X) -> !X
  %0 = kiln.convert %a : !X -> !H
  %1 = kiln.convert %0 : !H -> !X
  %2 = kiln.convert %a : !X -> !F
  %3 = kiln.convert %2 : !F -> !X
  %4 = kiln.convert %big : !X -> !I
  %5 = kiln.convert %i : !I -> !X
  %6 = kiln.convert %big : !X -> !J
  %7 = kiln.convert %i : !I -> !M
  %8 = kiln.convert %m : !M -> !X
  %9 = kiln.convert %h : !H -> !F
  %10 = kiln.convert %9 : !F -> !X
  %11 = kiln.convert %a : !X -> !H
  %it = kiln.iota dim 1 : tensor<?x?xi64, #kiln.dims<[s, p + s]>>
  %is = kiln.iota dim 0 : tensor<?x?xf32, #kiln.dims<[s, p + s]>>
  %p = kiln.sym "p" : tensor<i64>
  %pos = kiln.add %it, %p : (tensor<?x?xi64, #kiln.dims<[s, p + s]>>, tensor<i64>) -> tensor<?x?xi64, #kiln.dims<[s, p + s]>>
  return %1, %3, %4, %5, %6, %7, %8, %9, %10, %11, %pos, %is : !X, !X, !I, !X, !J, !M, !X, !F, !X, !H,
    tensor<?x?xi64, #kiln.dims<[s, p + s]>>, tensor<?x?xf32, #kiln.dims<[s, p + s]>>
})"),
          kShapes, {{1, uniform(-9, 9, true)}, {3, uniform(-300, 300, false)}}};
}

//===----------------------------------------------------------------------===//
// Reductions, softmax, norms
//===----------------------------------------------------------------------===//

KernelCase reductionsSoftmaxNorms() {
  // The mask hides every key of some rows (those rows give zeros) and some keys of the others.
  Filler mask = [](const std::vector<int64_t> &shape, const Bindings &, std::mt19937 &rng) {
    std::vector<double> v(numElements(shape));
    std::uniform_int_distribution<int> d(0, 3);
    for (size_t r = 0; r < v.size() / 24; ++r) {
      bool none = r % 3 == 1;
      for (int k = 0; k < 24; ++k)
        v[r * 24 + k] = none ? 0 : d(rng) != 0;
    }
    return v;
  };
  return {"ReductionsSoftmaxNorms", R"(
func.func @reduce(%x: tensor<?x?x24xf32, #kiln.dims<[b, s]>>, %w: tensor<24xf32>, %bias: tensor<24xf32>,
                  %m: tensor<?x?x24xi1, #kiln.dims<[b, s]>>, %i: tensor<?x?x24xi64, #kiln.dims<[b, s]>>) -> (
    tensor<?x?x1xf32, #kiln.dims<[b, s]>>, tensor<?x24xf32, #kiln.dims<[b]>>, tensor<?x24xf32, #kiln.dims<[s]>>,
    tensor<?x?x24xf32, #kiln.dims<[b, s]>>, tensor<?x?x24xf32, #kiln.dims<[b, s]>>, tensor<?x?x24xf32, #kiln.dims<[b, s]>>,
    tensor<?x?x24xf32, #kiln.dims<[b, s]>>, tensor<?x?x24xf32, #kiln.dims<[b, s]>>, tensor<?x?x24xf32, #kiln.dims<[b, s]>>,
    tensor<?x?xi64, #kiln.dims<[b, s]>>) {
  %0 = kiln.reduce_sum %x {axis = -1 : i64, keepdim = true} : tensor<?x?x24xf32, #kiln.dims<[b, s]>> -> tensor<?x?x1xf32, #kiln.dims<[b, s]>>
  %1 = kiln.reduce_mean %x {axis = 1 : i64, keepdim = false} : tensor<?x?x24xf32, #kiln.dims<[b, s]>> -> tensor<?x24xf32, #kiln.dims<[b]>>
  %2 = kiln.reduce_max %x {axis = 0 : i64, keepdim = false} : tensor<?x?x24xf32, #kiln.dims<[b, s]>> -> tensor<?x24xf32, #kiln.dims<[s]>>
  %3 = kiln.softmax %x {axis = -1 : i64} : tensor<?x?x24xf32, #kiln.dims<[b, s]>> -> tensor<?x?x24xf32, #kiln.dims<[b, s]>>
  %4 = kiln.softmax %x {axis = 1 : i64} : tensor<?x?x24xf32, #kiln.dims<[b, s]>> -> tensor<?x?x24xf32, #kiln.dims<[b, s]>>
  %ninf = kiln.constant dense<0xFF800000> : tensor<f32> : tensor<f32>
  %masked = kiln.select %m, %x, %ninf : (tensor<?x?x24xi1, #kiln.dims<[b, s]>>, tensor<?x?x24xf32, #kiln.dims<[b, s]>>, tensor<f32>) -> tensor<?x?x24xf32, #kiln.dims<[b, s]>>
  %5 = kiln.softmax %masked {axis = -1 : i64} : tensor<?x?x24xf32, #kiln.dims<[b, s]>> -> tensor<?x?x24xf32, #kiln.dims<[b, s]>>
  %6 = kiln.rms_norm %x, %w {eps = 1.0e-6 : f64, unit_offset = false} : (tensor<?x?x24xf32, #kiln.dims<[b, s]>>, tensor<24xf32>) -> tensor<?x?x24xf32, #kiln.dims<[b, s]>>
  %7 = kiln.rms_norm %x, %w {eps = 1.0e-5 : f64, unit_offset = true} : (tensor<?x?x24xf32, #kiln.dims<[b, s]>>, tensor<24xf32>) -> tensor<?x?x24xf32, #kiln.dims<[b, s]>>
  %8 = kiln.layer_norm %x, %w, %bias {eps = 1.0e-12 : f64} : (tensor<?x?x24xf32, #kiln.dims<[b, s]>>, tensor<24xf32>, tensor<24xf32>) -> tensor<?x?x24xf32, #kiln.dims<[b, s]>>
  %9 = kiln.reduce_sum %i {axis = 2 : i64, keepdim = false} : tensor<?x?x24xi64, #kiln.dims<[b, s]>> -> tensor<?x?xi64, #kiln.dims<[b, s]>>
  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9 :
    tensor<?x?x1xf32, #kiln.dims<[b, s]>>, tensor<?x24xf32, #kiln.dims<[b]>>, tensor<?x24xf32, #kiln.dims<[s]>>,
    tensor<?x?x24xf32, #kiln.dims<[b, s]>>, tensor<?x?x24xf32, #kiln.dims<[b, s]>>, tensor<?x?x24xf32, #kiln.dims<[b, s]>>,
    tensor<?x?x24xf32, #kiln.dims<[b, s]>>, tensor<?x?x24xf32, #kiln.dims<[b, s]>>, tensor<?x?x24xf32, #kiln.dims<[b, s]>>,
    tensor<?x?xi64, #kiln.dims<[b, s]>>
})", kShapes, {{3, mask}}};
}

/// add_rms_norm (with and without unit_offset) / add_layer_norm over rows of n: 1, 7 and 257 (one element,
/// odd, longer than a 256-invocation workgroup); h returned, and read by the next add (the residual).
KernelCase addNorms(int n) {
  std::string src = R"(
func.func @add_norms(%x: !N, %r: !N, %w: tensor<LENxf32>, %bias: tensor<LENxf32>) -> (!N, !N, !N, !N, !N, !N) {
  %h, %y = kiln.add_rms_norm %x, %r, %w {eps = 1.0e-6 : f64, unit_offset = false} : (!N, !N, tensor<LENxf32>) -> (!N, !N)
  %h1, %y1 = kiln.add_rms_norm %h, %y, %w {eps = 1.0e-5 : f64, unit_offset = true} : (!N, !N, tensor<LENxf32>) -> (!N, !N)
  %h2, %y2 = kiln.add_layer_norm %h1, %x, %w, %bias {eps = 1.0e-12 : f64} : (!N, !N, tensor<LENxf32>, tensor<LENxf32>) -> (!N, !N)
  %next = kiln.add %h2, %y2 : (!N, !N) -> !N
  return %h, %y, %y1, %h2, %y2, %next : !N, !N, !N, !N, !N, !N
})";
  src = replaceAll(src, "!N", "tensor<?x?xLENxf32, #kiln.dims<[b, s]>>");
  return {"AddNormsRow" + std::to_string(n), replaceAll(src, "LEN", std::to_string(n)), kShapes, {}};
}

//===----------------------------------------------------------------------===//
// Matmul: linear layers, M = 1, odd sizes, batched, broadcast batch, transpose_b, f16
//===----------------------------------------------------------------------===//

KernelCase matmul() {
  return {"Matmul", R"(
func.func @matmul(%x: tensor<?x?x64xf32, #kiln.dims<[b, s]>>, %w: tensor<3x64xf32>, %v: tensor<1x7xf32>,
                  %u: tensor<7x13xf32>, %y: tensor<5x64xf32>, %z: tensor<64x3xf32>,
                  %q: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %k: tensor<?x4x?x16xf32, #kiln.dims<[b, p + s]>>,
                  %g: tensor<?x1x?x5xf32, #kiln.dims<[b, s]>>, %h: tensor<4x5x3xf32>,
                  %xh: tensor<?x?x64xf16, #kiln.dims<[b, s]>>, %wh: tensor<3x64xf16>) -> (
    tensor<?x?x3xf32, #kiln.dims<[b, s]>>, tensor<1x13xf32>, tensor<5x3xf32>,
    tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<?x4x?x3xf32, #kiln.dims<[b, s]>>,
    tensor<?x4x?x?xf32, #kiln.dims<[b, s, s]>>, tensor<?x?x3xf16, #kiln.dims<[b, s]>>) {
  %0 = kiln.matmul %x, %w {transpose_b = true} : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<3x64xf32>) -> tensor<?x?x3xf32, #kiln.dims<[b, s]>>
  %1 = kiln.matmul %v, %u {transpose_b = false} : (tensor<1x7xf32>, tensor<7x13xf32>) -> tensor<1x13xf32>
  %2 = kiln.matmul %y, %z {transpose_b = false} : (tensor<5x64xf32>, tensor<64x3xf32>) -> tensor<5x3xf32>
  %3 = kiln.matmul %q, %k {transpose_b = true} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>
  %4 = kiln.matmul %g, %h {transpose_b = false} : (tensor<?x1x?x5xf32, #kiln.dims<[b, s]>>, tensor<4x5x3xf32>) -> tensor<?x4x?x3xf32, #kiln.dims<[b, s]>>
  %qt = kiln.transpose %q {permutation = array<i64: 0, 1, 3, 2>} : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x16x?xf32, #kiln.dims<[b, s]>>
  %5 = kiln.matmul %q, %qt {transpose_b = false} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x16x?xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, s]>>
  %6 = kiln.matmul %xh, %wh {transpose_b = true} : (tensor<?x?x64xf16, #kiln.dims<[b, s]>>, tensor<3x64xf16>) -> tensor<?x?x3xf16, #kiln.dims<[b, s]>>
  return %0, %1, %2, %3, %4, %5, %6 : tensor<?x?x3xf32, #kiln.dims<[b, s]>>, tensor<1x13xf32>, tensor<5x3xf32>,
    tensor<?x4x?x?xf32, #kiln.dims<[b, s, p + s]>>, tensor<?x4x?x3xf32, #kiln.dims<[b, s]>>,
    tensor<?x4x?x?xf32, #kiln.dims<[b, s, s]>>, tensor<?x?x3xf16, #kiln.dims<[b, s]>>
})", kShapes, {}};
}

/// Awkward matmul sizes: N not a multiple of any tile or GEMV block (67, 301), K = 1032 (a multiple of 8 but
/// not of 16: vector loads, tile tails) and 40 (rows shorter than a subgroup's vector stride), M = s from 1 to
/// 70 (the GEMV for s <= 4, one and two tile rows above), with and without transpose_b.
KernelCase matmulAwkward() {
  std::string src = R"(
func.func @awkward(%x: !A, %w: tensor<67x1032xf32>, %y: !C, %v: tensor<301x40xf32>, %u: tensor<1032x67xf32>) -> (!N, !P, !N) {
  %0 = kiln.matmul %x, %w {transpose_b = true} : (!A, tensor<67x1032xf32>) -> !N
  %1 = kiln.matmul %y, %v {transpose_b = true} : (!C, tensor<301x40xf32>) -> !P
  %2 = kiln.matmul %x, %u {transpose_b = false} : (!A, tensor<1032x67xf32>) -> !N
  return %0, %1, %2 : !N, !P, !N
})";
  src = substitute(src, {{"!A", "tensor<?x?x1032xf32, #kiln.dims<[b, s]>>"},
                         {"!C", "tensor<?x?x40xf32, #kiln.dims<[b, s]>>"},
                         {"!N", "tensor<?x?x67xf32, #kiln.dims<[b, s]>>"},
                         {"!P", "tensor<?x?x301xf32, #kiln.dims<[b, s]>>"}});
  std::vector<Bindings> shapes;
  for (int64_t s : {1, 2, 3, 4, 5, 70})
    shapes.push_back({{"b", s == 3 ? 2 : 1}, {"s", s}, {"p", 0}});
  return {"MatmulAwkward", src, shapes, {}};
}

//===----------------------------------------------------------------------===//
// Data movement: gather, reshape, transpose, broadcast_to, slice, concat (along p + s), bf16 and i1 copies
//===----------------------------------------------------------------------===//

KernelCase dataMovement() {
  return {"DataMovement", R"(
func.func @movement(%t: tensor<10x4xf32>, %ids: tensor<?x?xi64, #kiln.dims<[b, s]>>, %x: tensor<?x?x8xf32, #kiln.dims<[b, s]>>,
                    %e: tensor<?x1xf32, #kiln.dims<[s]>>, %past: tensor<1x2x?x4xf32, #kiln.dims<[p]>>,
                    %new: tensor<1x2x?x4xf32, #kiln.dims<[s]>>, %h: tensor<?x?x8xbf16, #kiln.dims<[b, s]>>,
                    %m: tensor<?x?x8xi1, #kiln.dims<[b, s]>>) -> (
    tensor<?x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>,
    tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x?x4xf32, #kiln.dims<[b, s]>>, tensor<1x2x?x4xf32, #kiln.dims<[p + s]>>,
    tensor<?x?x20xf32, #kiln.dims<[b, s]>>, tensor<?x8x?xbf16, #kiln.dims<[b, s]>>, tensor<?x?x2x4xi1, #kiln.dims<[b, s]>>) {
  %0 = kiln.gather %t, %ids : (tensor<10x4xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x4xf32, #kiln.dims<[b, s]>>
  %1 = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
  %2 = kiln.transpose %1 {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
  %3 = kiln.broadcast_to %e : tensor<?x1xf32, #kiln.dims<[s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
  %4 = kiln.slice %x {axis = -1 : i64, start = 2 : i64, end = 6 : i64} : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x4xf32, #kiln.dims<[b, s]>>
  %5 = kiln.concat %past, %new {axis = 2 : i64} : (tensor<1x2x?x4xf32, #kiln.dims<[p]>>, tensor<1x2x?x4xf32, #kiln.dims<[s]>>) -> tensor<1x2x?x4xf32, #kiln.dims<[p + s]>>
  %6 = kiln.concat %x, %4, %x {axis = 2 : i64} : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x20xf32, #kiln.dims<[b, s]>>
  %7 = kiln.transpose %h {permutation = array<i64: 0, 2, 1>} : tensor<?x?x8xbf16, #kiln.dims<[b, s]>> -> tensor<?x8x?xbf16, #kiln.dims<[b, s]>>
  %8 = kiln.reshape %m : tensor<?x?x8xi1, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xi1, #kiln.dims<[b, s]>>
  return %0, %1, %2, %3, %4, %5, %6, %7, %8 :
    tensor<?x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>,
    tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x?x4xf32, #kiln.dims<[b, s]>>, tensor<1x2x?x4xf32, #kiln.dims<[p + s]>>,
    tensor<?x?x20xf32, #kiln.dims<[b, s]>>, tensor<?x8x?xbf16, #kiln.dims<[b, s]>>, tensor<?x?x2x4xi1, #kiln.dims<[b, s]>>
})", kShapes, {}};
}

/// kiln.tail: the last r rows of a chunk (the logits rows, r = 1 or s) and the last n of a static dim; r is a
/// symbol no argument binds (the runtime's kiln_session_set_logits), feeding a transposed matmul as the LM head.
KernelCase tailRows() {
  return {"TailRows", R"(
func.func @tail(%x: tensor<?x?x8xf32, #kiln.dims<[b, s]>>, %w: tensor<5x8xf32>, %t: tensor<?x6x4xf32, #kiln.dims<[s]>>) -> (
    tensor<?x?x8xf32, #kiln.dims<[b, r]>>, tensor<?x?x5xf32, #kiln.dims<[b, r]>>, tensor<?x2x4xf32, #kiln.dims<[s]>>) {
  %0 = kiln.tail %x {axis = 1 : i64} : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, r]>>
  %1 = kiln.matmul %0, %w {transpose_b = true} : (tensor<?x?x8xf32, #kiln.dims<[b, r]>>, tensor<5x8xf32>) -> tensor<?x?x5xf32, #kiln.dims<[b, r]>>
  %2 = kiln.tail %t {axis = -2 : i64} : tensor<?x6x4xf32, #kiln.dims<[s]>> -> tensor<?x2x4xf32, #kiln.dims<[s]>>
  return %0, %1, %2 : tensor<?x?x8xf32, #kiln.dims<[b, r]>>, tensor<?x?x5xf32, #kiln.dims<[b, r]>>, tensor<?x2x4xf32, #kiln.dims<[s]>>
})",
          {{{"b", 1}, {"s", 1}, {"p", 0}, {"r", 1}},
           {{"b", 2}, {"s", 3}, {"p", 5}, {"r", 1}},
           {{"b", 2}, {"s", 3}, {"p", 0}, {"r", 3}},
           {{"b", 3}, {"s", 13}, {"p", 2}, {"r", 1}},
           {{"b", 1}, {"s", 7}, {"p", 0}, {"r", 7}}},
          {}};
}

//===----------------------------------------------------------------------===//
// RoPE: head_dim 16 and 256, halves and interleaved pairs, partial rotary, positions p + i
//===----------------------------------------------------------------------===//

KernelCase rope() {
  return {"Rope", R"(
func.func @rope(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %pos: tensor<?x?xi64, #kiln.dims<[b, s]>>,
                %f8: tensor<8xf32>, %f4: tensor<4xf32>, %y: tensor<?x2x?x256xf32, #kiln.dims<[b, s]>>, %f128: tensor<128xf32>) -> (
    tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>,
    tensor<?x2x?x256xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x256xf32, #kiln.dims<[b, s]>>) {
  %0 = kiln.rope %x, %pos, %f8 {interleaved = false} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x?xi64, #kiln.dims<[b, s]>>, tensor<8xf32>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %1 = kiln.rope %x, %pos, %f8 {interleaved = true} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x?xi64, #kiln.dims<[b, s]>>, tensor<8xf32>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %2 = kiln.rope %x, %pos, %f4 {interleaved = false} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x?xi64, #kiln.dims<[b, s]>>, tensor<4xf32>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %3 = kiln.rope %y, %pos, %f128 {interleaved = false} : (tensor<?x2x?x256xf32, #kiln.dims<[b, s]>>, tensor<?x?xi64, #kiln.dims<[b, s]>>, tensor<128xf32>) -> tensor<?x2x?x256xf32, #kiln.dims<[b, s]>>
  %4 = kiln.rope %y, %pos, %f128 {interleaved = true} : (tensor<?x2x?x256xf32, #kiln.dims<[b, s]>>, tensor<?x?xi64, #kiln.dims<[b, s]>>, tensor<128xf32>) -> tensor<?x2x?x256xf32, #kiln.dims<[b, s]>>
  return %0, %1, %2, %3, %4 : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>,
    tensor<?x2x?x256xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x256xf32, #kiln.dims<[b, s]>>
})",
          kShapes,
          {{1, positions(1000)},
           {2, constant(invFreq(8, 16, 10000))},
           {3, constant(invFreq(4, 8, 10000))},
           {5, constant(invFreq(128, 256, 1000000))}}};
}

/// Interleaved partial RoPE (GPT-J: 8 of 16 channels in pairs): kiln.rope {interleaved = true}, and the
/// primitive rotate_every_two of the --no-fuse path (rank-5 reshape / slice / neg / concat, cos/sin tables
/// repeated in pairs through broadcast_to), at positions p + i per batch row.
KernelCase ropeInterleavedPartial() {
  std::string src = expand(R"(
func.func @rope_interleaved(%x: !Q, %pos: tensor<?x?xi64, #kiln.dims<[b, s]>>, %f: tensor<4xf32>) -> (!Q, !Q) {
  %0 = kiln.rope %x, %pos, %f {interleaved = true} : (!Q, tensor<?x?xi64, #kiln.dims<[b, s]>>, tensor<4xf32>) -> !Q
  %pf = kiln.convert %pos : tensor<?x?xi64, #kiln.dims<[b, s]>> -> tensor<?x?xf32, #kiln.dims<[b, s]>>
  %p3 = kiln.reshape %pf : tensor<?x?xf32, #kiln.dims<[b, s]>> -> tensor<?x?x1xf32, #kiln.dims<[b, s]>>
  %f3 = kiln.reshape %f : tensor<4xf32> -> tensor<1x1x4xf32>
  %ang = kiln.mul %p3, %f3 : (tensor<?x?x1xf32, #kiln.dims<[b, s]>>, tensor<1x1x4xf32>) -> !T3
  %c = kiln.cos %ang : !T3 -> !T3
  %sn = kiln.sin %ang : !T3 -> !T3
  %ce = kiln.reshape %c : !T3 -> !T5
  %cb = kiln.broadcast_to %ce : !T5 -> !T52
  %cos = kiln.reshape %cb : !T52 -> !T4
  %se = kiln.reshape %sn : !T3 -> !T5
  %sb = kiln.broadcast_to %se : !T5 -> !T52
  %sin = kiln.reshape %sb : !T52 -> !T4
  %xr = kiln.slice %x {axis = 3 : i64, start = 0 : i64, end = 8 : i64} : !Q -> !R
  %y = kiln.reshape %xr : !R -> !P
  %x1 = kiln.slice %y {axis = 4 : i64, start = 0 : i64, end = 1 : i64} : !P -> !P1
  %x2 = kiln.slice %y {axis = 4 : i64, start = 1 : i64, end = 2 : i64} : !P -> !P1
  %n = kiln.neg %x2 : !P1 -> !P1
  %st = kiln.concat %n, %x1 {axis = 4 : i64} : (!P1, !P1) -> !P
  %rot = kiln.reshape %st : !P -> !R
  %a = kiln.mul %xr, %cos : (!R, !T4) -> !R
  %b2 = kiln.mul %rot, %sin : (!R, !T4) -> !R
  %e = kiln.add %a, %b2 : (!R, !R) -> !R
  %pass = kiln.slice %x {axis = 3 : i64, start = 8 : i64, end = 16 : i64} : !Q -> !R
  %1 = kiln.concat %e, %pass {axis = 3 : i64} : (!R, !R) -> !Q
  return %0, %1 : !Q, !Q
})");
  src = substitute(src, {{"!Q", "tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>"},
                         {"!R", "tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>"},
                         {"!P1", "tensor<?x4x?x4x1xf32, #kiln.dims<[b, s]>>"},
                         {"!P", "tensor<?x4x?x4x2xf32, #kiln.dims<[b, s]>>"},
                         {"!T3", "tensor<?x?x4xf32, #kiln.dims<[b, s]>>"},
                         {"!T52", "tensor<?x1x?x4x2xf32, #kiln.dims<[b, s]>>"},
                         {"!T5", "tensor<?x1x?x4x1xf32, #kiln.dims<[b, s]>>"},
                         {"!T4", "tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>"}});
  // GPT-J: 1 / 10000^(2i / rotary_dim), rotary_dim 8.
  return {"RopeInterleavedPartial", src, kShapes, {{1, positions(37)}, {2, constant(invFreq(4, 8, 10000))}}};
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// Causal at a KV-cache offset, GQA 4/2, window, key padding, bias, softcap, head_dim 256.
KernelCase attention() {
  std::string src = R"(
func.func @attention(%q: Q, %k: KV, %v: KV, %pad: PAD, %bias: BIAS, %q2: Q256, %k2: KV256, %v2: KV256) -> (Q, Q, Q, Q, Q, Q, Q256, Q256) {
  %0 = kiln.attention %q, %k, %v {scale = 0.25 : f64, mask = #kiln.mask<causal>} : (Q, KV, KV) -> Q
  %1 = kiln.attention %q, %k, %v {scale = 0.25 : f64, mask = #kiln.mask<causal>, window = 3 : i64} : (Q, KV, KV) -> Q
  %2 = kiln.attention %q, %k, %v key_padding_mask(%pad) {scale = 0.25 : f64, mask = #kiln.mask<causal>} : (Q, KV, KV, PAD) -> Q
  %3 = kiln.attention %q, %k, %v key_padding_mask(%pad) {scale = 0.25 : f64, mask = #kiln.mask<bidirectional>} : (Q, KV, KV, PAD) -> Q
  %4 = kiln.attention %q, %k, %v bias(%bias) {scale = 0.5 : f64, mask = #kiln.mask<causal>, softcap = 2.0 : f64} : (Q, KV, KV, BIAS) -> Q
  %5 = kiln.attention %q, %k, %v {scale = 0.25 : f64, mask = #kiln.mask<bidirectional>, softcap = 1.5 : f64} : (Q, KV, KV) -> Q
  %6 = kiln.attention %q2, %k2, %v2 {scale = 0.0625 : f64, mask = #kiln.mask<causal>} : (Q256, KV256, KV256) -> Q256
  %7 = kiln.attention %q2, %k2, %v2 {scale = 0.0625 : f64, mask = #kiln.mask<causal>, window = 4 : i64} : (Q256, KV256, KV256) -> Q256
  return %0, %1, %2, %3, %4, %5, %6, %7 : Q, Q, Q, Q, Q, Q, Q256, Q256
})";
  src = substitute(src, {{"Q256", "tensor<?x4x?x256xf32, #kiln.dims<[b, s]>>"},
                         {"KV256", "tensor<?x4x?x256xf32, #kiln.dims<[b, p + s]>>"},
                         {"Q", "tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>"},
                         {"KV", "tensor<?x2x?x16xf32, #kiln.dims<[b, p + s]>>"},
                         {"PAD", "tensor<?x?xi64, #kiln.dims<[b, p + s]>>"},
                         {"BIAS", "tensor<1x4x?x?xf32, #kiln.dims<[s, p + s]>>"}});
  return {"Attention", src, kShapes, {{3, keyPadding(4)}}};
}

/// Decode shapes: one query row over 1, 257 and 1000 keys (one and several blocks of SPIR-V's split-key
/// kernel, a ragged last block), a 70-row prefill, GQA 8:2, head dims 64, 40 (fewer dims than a part's
/// invocations) and 256, a window shorter than the keys, a padding mask hiding the first 300 keys of batch
/// row 1 (a whole block and more).
KernelCase attentionDecode() {
  std::string src = R"(
func.func @attention_decode(%q: Q, %k: KV, %v: KV, %pad: PAD, %q2: Q256, %k2: KV256, %v2: KV256, %q3: Q40, %k3: KV40, %v3: KV40) -> (Q, Q, Q, Q, Q256, Q256, Q40) {
  %0 = kiln.attention %q, %k, %v {scale = 0.125 : f64, mask = #kiln.mask<causal>} : (Q, KV, KV) -> Q
  %1 = kiln.attention %q, %k, %v {scale = 0.125 : f64, mask = #kiln.mask<causal>, window = 100 : i64} : (Q, KV, KV) -> Q
  %2 = kiln.attention %q, %k, %v key_padding_mask(%pad) {scale = 0.125 : f64, mask = #kiln.mask<causal>} : (Q, KV, KV, PAD) -> Q
  %3 = kiln.attention %q, %k, %v key_padding_mask(%pad) {scale = 0.125 : f64, mask = #kiln.mask<bidirectional>, softcap = 3.0 : f64} : (Q, KV, KV, PAD) -> Q
  %4 = kiln.attention %q2, %k2, %v2 {scale = 0.0625 : f64, mask = #kiln.mask<causal>} : (Q256, KV256, KV256) -> Q256
  %5 = kiln.attention %q2, %k2, %v2 {scale = 0.0625 : f64, mask = #kiln.mask<causal>, window = 5 : i64} : (Q256, KV256, KV256) -> Q256
  %6 = kiln.attention %q3, %k3, %v3 {scale = 0.15 : f64, mask = #kiln.mask<causal>} : (Q40, KV40, KV40) -> Q40
  return %0, %1, %2, %3, %4, %5, %6 : Q, Q, Q, Q, Q256, Q256, Q40
})";
  src = substitute(src, {{"Q256", "tensor<?x8x?x256xf32, #kiln.dims<[b, s]>>"},
                         {"KV256", "tensor<?x2x?x256xf32, #kiln.dims<[b, p + s]>>"},
                         {"Q40", "tensor<?x8x?x40xf32, #kiln.dims<[b, s]>>"},
                         {"KV40", "tensor<?x2x?x40xf32, #kiln.dims<[b, p + s]>>"},
                         {"Q", "tensor<?x8x?x64xf32, #kiln.dims<[b, s]>>"},
                         {"KV", "tensor<?x2x?x64xf32, #kiln.dims<[b, p + s]>>"},
                         {"PAD", "tensor<?x?xi64, #kiln.dims<[b, p + s]>>"}});
  std::vector<Bindings> shapes = {{{"b", 1}, {"s", 1}, {"p", 0}},
                                  {{"b", 2}, {"s", 1}, {"p", 256}},
                                  {{"b", 1}, {"s", 1}, {"p", 999}},
                                  {{"b", 2}, {"s", 3}, {"p", 61}},
                                  {{"b", 1}, {"s", 70}, {"p", 0}}};
  KernelCase c{"AttentionDecode", src, shapes, {{3, keyPadding(300)}}, 2e-5};
  c.smallWorkgroups = true;
  return c;
}

} // namespace

const std::vector<KernelCase> &kernelCases() {
  static const std::vector<KernelCase> cases = [] {
    std::vector<KernelCase> all = {elementwise(), convertSymIota(), reductionsSoftmaxNorms(), matmul(), matmulAwkward(),
                                   dataMovement(), tailRows(),       rope(),
                                   ropeInterleavedPartial(), attention(), attentionDecode()};
    for (int n : {1, 7, 257})
      all.push_back(addNorms(n));
    return all;
  }();
  return cases;
}

const std::map<std::string, std::string> &opsWithoutKernelCase() {
  static const std::map<std::string, std::string> reasons = {
      {"kiln.weight", "a weight is a buffer the artifact holds and the runtime binds, not a kernel; the cases' "
                      "inputs are function arguments (the interpreter runs them without a weight loader)"},
      {"kiln.matmul_group", "made only for the Vulkan target (kiln-fuse-matmul-groups) and has no CPU kernel; "
                            "SpirvCodegenTest.MatmulGroup compares its kernel with the interpreter"},
      {"kiln.group", "made only for the Vulkan target after the partition (kiln-group-dispatches) and has no CPU "
                     "kernel; SpirvCodegenTest.DispatchGroup compares its kernel with the interpreter"},
      {"kiln.yield", "the terminator of kiln.group's body, no kernel of its own"}};
  return reasons;
}

} // namespace kiln::test
