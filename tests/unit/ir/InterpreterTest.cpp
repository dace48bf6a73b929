//===- InterpreterTest.cpp - the reference interpreter vs. independent math ===//
//
// Every expected value here is computed in the test itself, by hand or with a naive loop written in a
// different form than the interpreter's (rotate_half RoPE, an explicit additive mask for attention,
// APFloat for f16 rounding).
//
//===----------------------------------------------------------------------===//
#include "kiln/ir/Interpreter.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/support/Quantize.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/APFloat.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <complex>
#include <limits>
#include <random>

using namespace kiln::ir;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

HostTensor tensor(std::vector<int64_t> shape, std::vector<double> data, bool isInteger = false) {
  HostTensor t;
  t.shape = std::move(shape);
  t.data = std::move(data);
  t.isInteger = isInteger;
  return t;
}

HostTensor randomTensor(std::vector<int64_t> shape, std::mt19937 &rng, double lo = -1, double hi = 1) {
  HostTensor t;
  t.shape = std::move(shape);
  std::uniform_real_distribution<double> dist(lo, hi);
  t.data.resize(t.numElements());
  for (double &x : t.data)
    x = dist(rng);
  return t;
}

void expectNear(const std::vector<double> &actual, const std::vector<double> &expected, double tol = 1e-12) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    if (std::isinf(expected[i]) || std::isnan(expected[i]))
      EXPECT_EQ(std::isnan(actual[i]), std::isnan(expected[i])) << "element " << i;
    if (std::isinf(expected[i]))
      EXPECT_EQ(actual[i], expected[i]) << "element " << i;
    else
      EXPECT_NEAR(actual[i], expected[i], tol) << "element " << i;
  }
}

std::string replaceAll(std::string s, const std::string &from, const std::string &to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

class InterpreterTest : public ::testing::Test {
protected:
  InterpreterTest() { context.loadDialect<KilnDialect, mlir::func::FuncDialect>(); }

  /// Parses `source` (keeps the module alive) and returns its first function.
  mlir::func::FuncOp parse(const std::string &source) {
    modules.push_back(mlir::parseSourceString<mlir::ModuleOp>(source, &context, "test.mlir"));
    if (!modules.back())
      return {};
    auto funcs = modules.back()->getOps<mlir::func::FuncOp>();
    return funcs.empty() ? mlir::func::FuncOp() : *funcs.begin();
  }

  /// Runs the first function of `source`; fails the test on a parse error.
  bool run(const std::string &source, std::vector<HostTensor> args, std::vector<HostTensor> &results,
           std::string &error, Interpreter *interpreter = nullptr) {
    mlir::func::FuncOp func = parse(source);
    EXPECT_TRUE(func) << "cannot parse:\n" << source;
    if (!func)
      return false;
    Interpreter fallback(loader);
    return (interpreter ? *interpreter : fallback).run(func, args, results, error);
  }

  /// Runs and expects success with one result.
  HostTensor runOne(const std::string &source, std::vector<HostTensor> args) {
    std::vector<HostTensor> results;
    std::string error;
    bool ok = run(source, std::move(args), results, error);
    EXPECT_TRUE(ok) << error;
    EXPECT_EQ(results.size(), 1u);
    return results.empty() ? HostTensor() : results[0];
  }

  mlir::MLIRContext context;
  std::vector<mlir::OwningOpRef<mlir::ModuleOp>> modules;
  std::map<std::string, HostTensor> weightTable;
  int loads = 0;
  WeightLoader loader = [this](llvm::StringRef name, HostTensor &out, std::string &error) {
    ++loads;
    auto it = weightTable.find(name.str());
    if (it == weightTable.end()) {
      error = "no tensor '" + name.str() + "' in model.safetensors";
      return false;
    }
    out = it->second;
    return true;
  };
  std::mt19937 rng{1234};
};

//===----------------------------------------------------------------------===//
// Elementwise, broadcasting, symbols
//===----------------------------------------------------------------------===//

TEST_F(InterpreterTest, BroadcastAddWithSymbolicDims) {
  const char *src = R"(
func.func @f(%a: tensor<?x1xf32, #kiln.dims<[s]>>, %b: tensor<1x?xf32, #kiln.dims<[t]>>)
    -> tensor<?x?xf32, #kiln.dims<[s, t]>> {
  %0 = kiln.add %a, %b : (tensor<?x1xf32, #kiln.dims<[s]>>, tensor<1x?xf32, #kiln.dims<[t]>>) -> tensor<?x?xf32, #kiln.dims<[s, t]>>
  return %0 : tensor<?x?xf32, #kiln.dims<[s, t]>>
})";
  for (auto [s, t] : {std::pair<int64_t, int64_t>{3, 7}, {1, 1}, {7, 3}, {1, 5}}) {
    HostTensor a = randomTensor({s, 1}, rng), b = randomTensor({1, t}, rng);
    HostTensor out = runOne(src, {a, b});
    ASSERT_EQ(out.shape, (std::vector<int64_t>{s, t}));
    std::vector<double> expected;
    for (int64_t i = 0; i < s; ++i)
      for (int64_t j = 0; j < t; ++j)
        expected.push_back(a.data[i] + b.data[j]);
    expectNear(out.data, expected);
    EXPECT_FALSE(out.isInteger);
  }
}

TEST_F(InterpreterTest, BinaryAndUnaryOps) {
  const char *src = R"(
func.func @f(%a: tensor<2x3xf32>, %b: tensor<3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>) {
  %0 = kiln.sub %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %1 = kiln.div %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %2 = kiln.max %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %3 = kiln.pow %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %4 = kiln.gelu %a : tensor<2x3xf32> -> tensor<2x3xf32>
  %5 = kiln.gelu_tanh %a : tensor<2x3xf32> -> tensor<2x3xf32>
  %6 = kiln.silu %a : tensor<2x3xf32> -> tensor<2x3xf32>
  return %0, %1, %2, %3, %4, %5, %6 : tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>
})";
  HostTensor a = tensor({2, 3}, {0.5, 1.5, 2.0, -1.0, 3.0, 0.25}), b = tensor({3}, {2.0, 0.5, 3.0});
  std::vector<HostTensor> results;
  std::string error;
  ASSERT_TRUE(run(src, {a, b}, results, error)) << error;
  ASSERT_EQ(results.size(), 7u);
  expectNear(results[0].data, {-1.5, 1.0, -1.0, -3.0, 2.5, -2.75});
  expectNear(results[1].data, {0.25, 3.0, 2.0 / 3.0, -0.5, 6.0, 0.25 / 3.0});
  expectNear(results[2].data, {2.0, 1.5, 3.0, 2.0, 3.0, 3.0});
  expectNear(results[3].data, {0.25, std::sqrt(1.5), 8.0, 1.0, std::sqrt(3.0), 0.25 * 0.25 * 0.25});
  // gelu(1.5) = 1.5 * Phi(1.5), Phi(1.5) = 0.9331927987311419 (normal table); the tanh form is within 3e-4.
  EXPECT_NEAR(results[4].data[1], 1.5 * 0.9331927987311419, 1e-12);
  EXPECT_NEAR(results[5].data[1], 1.5 * 0.9331927987311419, 3e-4);
  EXPECT_NEAR(results[5].data[1], 0.5 * 1.5 * (1 + std::tanh(0.7978845608028654 * (1.5 + 0.044715 * 3.375))), 1e-12);
  EXPECT_NEAR(results[6].data[3], -1.0 / (1.0 + std::exp(1.0)), 1e-12);
}

TEST_F(InterpreterTest, CosAndSin) {
  const char *src = R"(
func.func @f(%x: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>) {
  %0 = kiln.cos %x : tensor<3xf32> -> tensor<3xf32>
  %1 = kiln.sin %x : tensor<3xf32> -> tensor<3xf32>
  return %0, %1 : tensor<3xf32>, tensor<3xf32>
})";
  std::vector<HostTensor> results;
  std::string error;
  const double pi = 3.14159265358979323846;
  ASSERT_TRUE(run(src, {tensor({3}, {0, pi / 3, pi / 2})}, results, error)) << error;
  expectNear(results[0].data, {1, 0.5, 0}, 1e-15);
  expectNear(results[1].data, {0, std::sqrt(3.0) / 2, 1}, 1e-15);
}

TEST_F(InterpreterTest, CausalMaskFromIotaSymCompareSelect) {
  // The primitive form of a causal mask [s, p + s]: key j visible from query i iff j <= p + i.
  const char *src = R"(
func.func @f(%past: tensor<1x?xf32, #kiln.dims<[p]>>, %x: tensor<1x?xf32, #kiln.dims<[s]>>)
    -> tensor<?x?xf32, #kiln.dims<[s, p + s]>> {
  %i = kiln.iota dim 0 : tensor<?x?xi64, #kiln.dims<[s, p + s]>>
  %j = kiln.iota dim 1 : tensor<?x?xi64, #kiln.dims<[s, p + s]>>
  %p = kiln.sym "p" : tensor<i64>
  %pos = kiln.add %i, %p : (tensor<?x?xi64, #kiln.dims<[s, p + s]>>, tensor<i64>) -> tensor<?x?xi64, #kiln.dims<[s, p + s]>>
  %vis = kiln.compare le, %j, %pos : (tensor<?x?xi64, #kiln.dims<[s, p + s]>>, tensor<?x?xi64, #kiln.dims<[s, p + s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
  %zero = kiln.constant dense<0.0> : tensor<f32> : tensor<f32>
  %ninf = kiln.constant dense<0xFF800000> : tensor<f32> : tensor<f32>
  %m = kiln.select %vis, %zero, %ninf : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
  return %m : tensor<?x?xf32, #kiln.dims<[s, p + s]>>
})";
  for (auto [p, s] : {std::pair<int64_t, int64_t>{0, 3}, {2, 1}, {4, 3}, {5, 7}}) {
    HostTensor out = runOne(src, {tensor({1, p}, std::vector<double>(p)), tensor({1, s}, std::vector<double>(s))});
    ASSERT_EQ(out.shape, (std::vector<int64_t>{s, p + s}));
    for (int64_t i = 0; i < s; ++i)
      for (int64_t j = 0; j < p + s; ++j)
        EXPECT_EQ(out.data[i * (p + s) + j], j <= p + i ? 0.0 : -kInf) << i << "," << j;
  }
}

TEST_F(InterpreterTest, CompareIsIntegerAndIntegerDivTruncates) {
  const char *src = R"(
func.func @f(%a: tensor<4xi64>, %b: tensor<4xi64>) -> (tensor<4xi1>, tensor<4xi64>) {
  %0 = kiln.compare ne, %a, %b : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi1>
  %1 = kiln.div %a, %b : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi64>
  return %0, %1 : tensor<4xi1>, tensor<4xi64>
})";
  std::vector<HostTensor> results;
  std::string error;
  ASSERT_TRUE(run(src, {tensor({4}, {7, -7, 3, 4}, true), tensor({4}, {2, 2, 3, -3}, true)}, results, error))
      << error;
  EXPECT_TRUE(results[0].isInteger);
  expectNear(results[0].data, {1, 1, 0, 1});
  expectNear(results[1].data, {3, -3, 1, -1});
}

//===----------------------------------------------------------------------===//
// Reductions, softmax, matmul
//===----------------------------------------------------------------------===//

TEST_F(InterpreterTest, Reductions) {
  const char *src = R"(
func.func @f(%x: tensor<2x3x4xf32>) -> (tensor<2x4xf32>, tensor<2x3x1xf32>, tensor<3x4xf32>) {
  %0 = kiln.reduce_sum %x {axis = 1 : i64, keepdim = false} : tensor<2x3x4xf32> -> tensor<2x4xf32>
  %1 = kiln.reduce_mean %x {axis = -1 : i64, keepdim = true} : tensor<2x3x4xf32> -> tensor<2x3x1xf32>
  %2 = kiln.reduce_max %x {axis = 0 : i64, keepdim = false} : tensor<2x3x4xf32> -> tensor<3x4xf32>
  return %0, %1, %2 : tensor<2x4xf32>, tensor<2x3x1xf32>, tensor<3x4xf32>
})";
  HostTensor x = randomTensor({2, 3, 4}, rng);
  auto at = [&](int a, int b, int c) { return x.data[(a * 3 + b) * 4 + c]; };
  std::vector<HostTensor> results;
  std::string error;
  ASSERT_TRUE(run(src, {x}, results, error)) << error;
  std::vector<double> sum, mean, max;
  for (int a = 0; a < 2; ++a)
    for (int c = 0; c < 4; ++c)
      sum.push_back(at(a, 0, c) + at(a, 1, c) + at(a, 2, c));
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      mean.push_back((at(a, b, 0) + at(a, b, 1) + at(a, b, 2) + at(a, b, 3)) / 4);
  for (int b = 0; b < 3; ++b)
    for (int c = 0; c < 4; ++c)
      max.push_back(std::max(at(0, b, c), at(1, b, c)));
  EXPECT_EQ(results[0].shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(results[1].shape, (std::vector<int64_t>{2, 3, 1}));
  EXPECT_EQ(results[2].shape, (std::vector<int64_t>{3, 4}));
  expectNear(results[0].data, sum);
  expectNear(results[1].data, mean);
  expectNear(results[2].data, max);
}

TEST_F(InterpreterTest, SoftmaxWithNegativeInfinity) {
  const char *src = R"(
func.func @f(%x: tensor<3x4xf32>) -> (tensor<3x4xf32>, tensor<3x4xf32>) {
  %0 = kiln.softmax %x {axis = -1 : i64} : tensor<3x4xf32> -> tensor<3x4xf32>
  %1 = kiln.softmax %x {axis = 0 : i64} : tensor<3x4xf32> -> tensor<3x4xf32>
  return %0, %1 : tensor<3x4xf32>, tensor<3x4xf32>
})";
  HostTensor x = tensor({3, 4}, {1, 2, -kInf, 3, -kInf, -kInf, -kInf, -kInf, 1000, 1000, 0, -kInf});
  std::vector<HostTensor> results;
  std::string error;
  ASSERT_TRUE(run(src, {x}, results, error)) << error;
  double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  double e1 = 1 / (2 + std::exp(-1000.0));
  expectNear(results[0].data, {std::exp(1.0) / z, std::exp(2.0) / z, 0, std::exp(3.0) / z, // -inf -> 0
                               0, 0, 0, 0,                                                  // all masked
                               e1, e1, std::exp(-1000.0) * e1, 0});                          // max-subtracted
  // Along axis 0: column 0 is {1, -inf, 1000}; column 3 is {3, -inf, -inf}.
  EXPECT_NEAR(results[1].data[0], std::exp(1.0 - 1000.0), 1e-300);
  EXPECT_EQ(results[1].data[4], 0.0);
  EXPECT_NEAR(results[1].data[8], 1.0, 1e-15);
  EXPECT_EQ(results[1].data[3], 1.0);
  EXPECT_EQ(results[1].data[11], 0.0);
}

TEST_F(InterpreterTest, MatmulTransposeBAndBroadcastBatch) {
  const char *src = R"(
func.func @f(%a: tensor<2x1x?x4xf32, #kiln.dims<[s]>>, %b: tensor<1x3x5x4xf32>, %c: tensor<4x5xf32>)
    -> (tensor<2x3x?x5xf32, #kiln.dims<[s]>>, tensor<2x1x?x5xf32, #kiln.dims<[s]>>) {
  %0 = kiln.matmul %a, %b {transpose_b = true} : (tensor<2x1x?x4xf32, #kiln.dims<[s]>>, tensor<1x3x5x4xf32>) -> tensor<2x3x?x5xf32, #kiln.dims<[s]>>
  %1 = kiln.matmul %a, %c {transpose_b = false} : (tensor<2x1x?x4xf32, #kiln.dims<[s]>>, tensor<4x5xf32>) -> tensor<2x1x?x5xf32, #kiln.dims<[s]>>
  return %0, %1 : tensor<2x3x?x5xf32, #kiln.dims<[s]>>, tensor<2x1x?x5xf32, #kiln.dims<[s]>>
})";
  for (int64_t s : {1, 3, 7}) {
    HostTensor a = randomTensor({2, 1, s, 4}, rng), b = randomTensor({1, 3, 5, 4}, rng), c = randomTensor({4, 5}, rng);
    std::vector<HostTensor> results;
    std::string error;
    ASSERT_TRUE(run(src, {a, b, c}, results, error)) << error;
    ASSERT_EQ(results[0].shape, (std::vector<int64_t>{2, 3, s, 5}));
    std::vector<double> e0, e1;
    for (int64_t x = 0; x < 2; ++x)
      for (int64_t y = 0; y < 3; ++y)
        for (int64_t i = 0; i < s; ++i)
          for (int64_t j = 0; j < 5; ++j) {
            double acc = 0;
            for (int64_t k = 0; k < 4; ++k)
              acc += a.data[(x * s + i) * 4 + k] * b.data[(y * 5 + j) * 4 + k];
            e0.push_back(acc);
          }
    for (int64_t x = 0; x < 2; ++x)
      for (int64_t i = 0; i < s; ++i)
        for (int64_t j = 0; j < 5; ++j) {
          double acc = 0;
          for (int64_t k = 0; k < 4; ++k)
            acc += a.data[(x * s + i) * 4 + k] * c.data[k * 5 + j];
          e1.push_back(acc);
        }
    expectNear(results[0].data, e0);
    expectNear(results[1].data, e1);
  }
}

TEST_F(InterpreterTest, MatmulIsFast) {
  const char *src = R"(
func.func @f(%a: tensor<12x64xf32>, %b: tensor<64x512xf32>) -> tensor<12x512xf32> {
  %0 = kiln.matmul %a, %b {transpose_b = false} : (tensor<12x64xf32>, tensor<64x512xf32>) -> tensor<12x512xf32>
  return %0 : tensor<12x512xf32>
})";
  HostTensor a = randomTensor({12, 64}, rng), b = randomTensor({64, 512}, rng);
  auto start = std::chrono::steady_clock::now();
  HostTensor out = runOne(src, {a, b});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 0.1);
  double acc = 0;
  for (int k = 0; k < 64; ++k)
    acc += a.data[11 * 64 + k] * b.data[k * 512 + 511];
  EXPECT_NEAR(out.data.back(), acc, 1e-12);
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

TEST_F(InterpreterTest, GatherAndOutOfRangeIndex) {
  const char *src = R"(
func.func @f(%ids: tensor<1x?xi64, #kiln.dims<[s]>>) -> tensor<1x?x4xf32, #kiln.dims<[s]>> {
  %t = kiln.weight "embed_tokens.weight" : tensor<10x4xf32>
  %0 = kiln.gather %t, %ids : (tensor<10x4xf32>, tensor<1x?xi64, #kiln.dims<[s]>>) -> tensor<1x?x4xf32, #kiln.dims<[s]>>
  return %0 : tensor<1x?x4xf32, #kiln.dims<[s]>>
})";
  weightTable["embed_tokens.weight"] = randomTensor({10, 4}, rng);
  const HostTensor &table = weightTable["embed_tokens.weight"];
  HostTensor out = runOne(src, {tensor({1, 3}, {9, 0, 4}, true)});
  std::vector<double> expected;
  for (int row : {9, 0, 4})
    for (int c = 0; c < 4; ++c)
      expected.push_back(table.data[row * 4 + c]);
  expectNear(out.data, expected, 0);

  std::vector<HostTensor> results;
  std::string error;
  EXPECT_FALSE(run(src, {tensor({1, 3}, {1, 12, 3}, true)}, results, error));
  EXPECT_NE(error.find("'kiln.gather'"), std::string::npos) << error;
  EXPECT_NE(error.find("test.mlir:4:"), std::string::npos) << error;
  EXPECT_NE(error.find("index 12"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  EXPECT_FALSE(run(src, {tensor({1, 1}, {-1}, true)}, results, error));
  EXPECT_NE(error.find("index -1"), std::string::npos) << error;
}

TEST_F(InterpreterTest, ConcatAlongSymbolicDim) {
  const char *src = R"(
func.func @f(%past: tensor<1x2x?x4xf32, #kiln.dims<[p]>>, %new: tensor<1x2x?x4xf32, #kiln.dims<[s]>>)
    -> tensor<1x2x?x4xf32, #kiln.dims<[p + s]>> {
  %0 = kiln.concat %past, %new {axis = 2 : i64} : (tensor<1x2x?x4xf32, #kiln.dims<[p]>>, tensor<1x2x?x4xf32, #kiln.dims<[s]>>) -> tensor<1x2x?x4xf32, #kiln.dims<[p + s]>>
  return %0 : tensor<1x2x?x4xf32, #kiln.dims<[p + s]>>
})";
  for (auto [p, s] : {std::pair<int64_t, int64_t>{0, 3}, {3, 1}, {5, 7}}) {
    HostTensor a = randomTensor({1, 2, p, 4}, rng), b = randomTensor({1, 2, s, 4}, rng);
    HostTensor out = runOne(src, {a, b});
    ASSERT_EQ(out.shape, (std::vector<int64_t>{1, 2, p + s, 4}));
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t t = 0; t < p + s; ++t)
        for (int64_t c = 0; c < 4; ++c) {
          double expected = t < p ? a.data[(h * p + t) * 4 + c] : b.data[(h * s + t - p) * 4 + c];
          EXPECT_EQ(out.data[(h * (p + s) + t) * 4 + c], expected);
        }
  }
}

TEST_F(InterpreterTest, ReshapeTransposeSliceBroadcastTo) {
  const char *src = R"(
func.func @f(%x: tensor<1x?x6xf32, #kiln.dims<[s]>>)
    -> (tensor<1x3x?x2xf32, #kiln.dims<[s]>>, tensor<1x?x2xf32, #kiln.dims<[s]>>, tensor<2x1x?x6xf32, #kiln.dims<[s]>>) {
  %0 = kiln.reshape %x : tensor<1x?x6xf32, #kiln.dims<[s]>> -> tensor<1x?x3x2xf32, #kiln.dims<[s]>>
  %1 = kiln.transpose %0 {permutation = array<i64: 0, 2, 1, 3>} : tensor<1x?x3x2xf32, #kiln.dims<[s]>> -> tensor<1x3x?x2xf32, #kiln.dims<[s]>>
  %2 = kiln.slice %x {axis = 2 : i64, start = 3 : i64, end = 5 : i64} : tensor<1x?x6xf32, #kiln.dims<[s]>> -> tensor<1x?x2xf32, #kiln.dims<[s]>>
  %3 = kiln.broadcast_to %x : tensor<1x?x6xf32, #kiln.dims<[s]>> -> tensor<2x1x?x6xf32, #kiln.dims<[s]>>
  return %1, %2, %3 : tensor<1x3x?x2xf32, #kiln.dims<[s]>>, tensor<1x?x2xf32, #kiln.dims<[s]>>, tensor<2x1x?x6xf32, #kiln.dims<[s]>>
})";
  const int64_t s = 3;
  HostTensor x = randomTensor({1, s, 6}, rng);
  std::vector<HostTensor> results;
  std::string error;
  ASSERT_TRUE(run(src, {x}, results, error)) << error;
  std::vector<double> t, sl, bc;
  for (int64_t h = 0; h < 3; ++h)
    for (int64_t i = 0; i < s; ++i)
      for (int64_t c = 0; c < 2; ++c)
        t.push_back(x.data[i * 6 + h * 2 + c]);
  for (int64_t i = 0; i < s; ++i)
    for (int64_t c = 3; c < 5; ++c)
      sl.push_back(x.data[i * 6 + c]);
  for (int r = 0; r < 2; ++r)
    bc.insert(bc.end(), x.data.begin(), x.data.end());
  EXPECT_EQ(results[0].shape, (std::vector<int64_t>{1, 3, s, 2}));
  expectNear(results[0].data, t, 0);
  expectNear(results[1].data, sl, 0);
  EXPECT_EQ(results[2].shape, (std::vector<int64_t>{2, 1, s, 6}));
  expectNear(results[2].data, bc, 0);
}

//===----------------------------------------------------------------------===//
// Norms and conversion
//===----------------------------------------------------------------------===//

TEST_F(InterpreterTest, RmsNormWithAndWithoutUnitOffset) {
  std::string src = R"(
func.func @f(%x: tensor<1x?x8xf32, #kiln.dims<[s]>>, %w: tensor<8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[s]>> {
  %0 = kiln.rms_norm %x, %w {eps = 1.0e-06 : f64, unit_offset = UNIT} : (tensor<1x?x8xf32, #kiln.dims<[s]>>, tensor<8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[s]>>
  return %0 : tensor<1x?x8xf32, #kiln.dims<[s]>>
})";
  for (bool unit : {false, true}) {
    HostTensor x = randomTensor({1, 3, 8}, rng, -2, 2), w = randomTensor({8}, rng);
    HostTensor out = runOne(replaceAll(src, "UNIT", unit ? "true" : "false"), {x, w});
    std::vector<double> expected;
    for (int i = 0; i < 3; ++i) {
      double ms = 0;
      for (int c = 0; c < 8; ++c)
        ms += x.data[i * 8 + c] * x.data[i * 8 + c] / 8;
      for (int c = 0; c < 8; ++c)
        expected.push_back(x.data[i * 8 + c] / std::sqrt(ms + 1e-6) * (unit ? 1 + w.data[c] : w.data[c]));
    }
    expectNear(out.data, expected);
  }
}

TEST_F(InterpreterTest, LayerNorm) {
  const char *src = R"(
func.func @f(%x: tensor<2x?x6xf32, #kiln.dims<[s]>>, %w: tensor<6xf32>, %b: tensor<6xf32>) -> tensor<2x?x6xf32, #kiln.dims<[s]>> {
  %0 = kiln.layer_norm %x, %w, %b {eps = 1.0e-05 : f64} : (tensor<2x?x6xf32, #kiln.dims<[s]>>, tensor<6xf32>, tensor<6xf32>) -> tensor<2x?x6xf32, #kiln.dims<[s]>>
  return %0 : tensor<2x?x6xf32, #kiln.dims<[s]>>
})";
  HostTensor x = randomTensor({2, 5, 6}, rng, -3, 3), w = randomTensor({6}, rng), b = randomTensor({6}, rng);
  HostTensor out = runOne(src, {x, w, b});
  std::vector<double> expected;
  for (int r = 0; r < 10; ++r) {
    const double *v = &x.data[r * 6];
    double mean = (v[0] + v[1] + v[2] + v[3] + v[4] + v[5]) / 6, sq = 0;
    for (int c = 0; c < 6; ++c)
      sq += v[c] * v[c];
    double var = sq / 6 - mean * mean; // E[x^2] - E[x]^2: a different formula than the interpreter's
    for (int c = 0; c < 6; ++c)
      expected.push_back((v[c] - mean) / std::sqrt(var + 1e-5) * w.data[c] + b.data[c]);
  }
  expectNear(out.data, expected, 1e-10);
}

// add_rms_norm / add_layer_norm (two results) against the primitive add and the one-result norm.
TEST_F(InterpreterTest, AddNormsMatchAddThenNorm) {
  std::string src = R"(
!t = tensor<2x?x7xf32, #kiln.dims<[s]>>
func.func @f(%x: !t, %r: !t, %w: tensor<7xf32>, %b: tensor<7xf32>) -> (!t, !t, !t, !t, !t, !t, !t, !t) {
  %h, %y = kiln.add_rms_norm %x, %r, %w {eps = 1.0e-06 : f64, unit_offset = UNIT} : (!t, !t, tensor<7xf32>) -> (!t, !t)
  %h2, %y2 = kiln.add_layer_norm %x, %r, %w, %b {eps = 1.0e-05 : f64} : (!t, !t, tensor<7xf32>, tensor<7xf32>) -> (!t, !t)
  %unused, %y3 = kiln.add_rms_norm %r, %x, %w {eps = 1.0e-06 : f64, unit_offset = UNIT} : (!t, !t, tensor<7xf32>) -> (!t, !t)
  %a = kiln.add %x, %r : (!t, !t) -> !t
  %n = kiln.rms_norm %a, %w {eps = 1.0e-06 : f64, unit_offset = UNIT} : (!t, tensor<7xf32>) -> !t
  %l = kiln.layer_norm %a, %w, %b {eps = 1.0e-05 : f64} : (!t, tensor<7xf32>, tensor<7xf32>) -> !t
  return %h, %y, %h2, %y2, %y3, %a, %n, %l : !t, !t, !t, !t, !t, !t, !t, !t
})";
  for (bool unit : {false, true}) {
    HostTensor x = randomTensor({2, 3, 7}, rng, -2, 2), r = randomTensor({2, 3, 7}, rng, -2, 2);
    HostTensor w = randomTensor({7}, rng), b = randomTensor({7}, rng);
    std::vector<HostTensor> out;
    std::string error;
    ASSERT_TRUE(run(replaceAll(src, "UNIT", unit ? "true" : "false"), {x, r, w, b}, out, error)) << error;
    ASSERT_EQ(out.size(), 8u);
    EXPECT_EQ(out[0].shape, (std::vector<int64_t>{2, 3, 7}));
    expectNear(out[0].data, out[5].data, 0);
    expectNear(out[2].data, out[5].data, 0);
    expectNear(out[1].data, out[6].data, 1e-12);
    expectNear(out[4].data, out[6].data, 1e-12);
    expectNear(out[3].data, out[7].data, 1e-12);
  }
}

TEST_F(InterpreterTest, ConvertRoundsToTheTargetType) {
  const char *src = R"(
func.func @f(%x: tensor<10xf32>) -> (tensor<10xf16>, tensor<10xbf16>, tensor<10xf32>, tensor<10xi64>, tensor<10xi1>) {
  %0 = kiln.convert %x : tensor<10xf32> -> tensor<10xf16>
  %1 = kiln.convert %x : tensor<10xf32> -> tensor<10xbf16>
  %2 = kiln.convert %x : tensor<10xf32> -> tensor<10xf32>
  %3 = kiln.convert %x : tensor<10xf32> -> tensor<10xi64>
  %4 = kiln.convert %x : tensor<10xf32> -> tensor<10xi1>
  return %0, %1, %2, %3, %4 : tensor<10xf16>, tensor<10xbf16>, tensor<10xf32>, tensor<10xi64>, tensor<10xi1>
})";
  const double u = std::ldexp(1.0, -11); // half of an f16 ulp at 1
  HostTensor x = tensor({10}, {1 + u, 1 + 3 * u, 65519, 65520, std::ldexp(1.0, -25), 3 * std::ldexp(1.0, -25), 0.1,
                               -2.7, 2.7, 0});
  std::vector<HostTensor> results;
  std::string error;
  ASSERT_TRUE(run(src, {x}, results, error)) << error;
  // f16, by hand: ties go to even; 65520 is the tie between 65504 and 2^16 (-> inf); 2^-25 ties to 0.
  expectNear(results[0].data, {1.0, 1 + 4 * u, 65504, kInf, 0, std::ldexp(1.0, -23), 0.0999755859375, -2.69921875,
                               2.69921875, 0},
             0);
  // bf16 (8 significand bits): 1 + 2^-11 -> 1; 65519 -> 65536; 0.1 -> 0.10009765625.
  EXPECT_EQ(results[1].data[0], 1.0);
  EXPECT_EQ(results[1].data[2], 65536.0);
  EXPECT_EQ(results[1].data[6], 0.10009765625);
  EXPECT_EQ(results[2].data[6], (double)0.1f);
  EXPECT_TRUE(results[3].isInteger);
  expectNear(results[3].data, {1, 1, 65519, 65520, 0, 0, 0, -2, 2, 0}, 0);
  expectNear(results[4].data, {1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, 0);
}

TEST_F(InterpreterTest, ConvertToF16MatchesAPFloatOnASweep) {
  const char *src = R"(
func.func @f(%x: tensor<4000xf64>) -> (tensor<4000xf16>, tensor<4000xbf16>) {
  %0 = kiln.convert %x : tensor<4000xf64> -> tensor<4000xf16>
  %1 = kiln.convert %x : tensor<4000xf64> -> tensor<4000xbf16>
  return %0, %1 : tensor<4000xf16>, tensor<4000xbf16>
})";
  HostTensor x = tensor({4000}, {});
  std::uniform_real_distribution<double> mantissa(-1, 1);
  std::uniform_int_distribution<int> exponent(-30, 18);
  for (int i = 0; i < 4000; ++i)
    x.data.push_back(std::ldexp(mantissa(rng), exponent(rng)));
  std::vector<HostTensor> results;
  std::string error;
  ASSERT_TRUE(run(src, {x}, results, error)) << error;
  auto viaAPFloat = [](double v, const llvm::fltSemantics &sem) {
    llvm::APFloat f(v);
    bool losesInfo;
    f.convert(sem, llvm::APFloat::rmNearestTiesToEven, &losesInfo);
    f.convert(llvm::APFloat::IEEEdouble(), llvm::APFloat::rmNearestTiesToEven, &losesInfo);
    return f.convertToDouble();
  };
  for (int i = 0; i < 4000; ++i) {
    ASSERT_EQ(results[0].data[i], viaAPFloat(x.data[i], llvm::APFloat::IEEEhalf())) << x.data[i];
    ASSERT_EQ(results[1].data[i], viaAPFloat(x.data[i], llvm::APFloat::BFloat())) << x.data[i];
  }
}

//===----------------------------------------------------------------------===//
// RoPE
//===----------------------------------------------------------------------===//

std::string ropeSource(int64_t h, int64_t d, int64_t half, bool interleaved) {
  std::string src = R"(
func.func @f(%x: tensor<?xHx?xDxf32, #kiln.dims<[b, s]>>, %pos: tensor<?x?xi64, #kiln.dims<[b, s]>>, %f: tensor<Rxf32>)
    -> tensor<?xHx?xDxf32, #kiln.dims<[b, s]>> {
  %0 = kiln.rope %x, %pos, %f {interleaved = INTERLEAVED} : (tensor<?xHx?xDxf32, #kiln.dims<[b, s]>>, tensor<?x?xi64, #kiln.dims<[b, s]>>, tensor<Rxf32>) -> tensor<?xHx?xDxf32, #kiln.dims<[b, s]>>
  return %0 : tensor<?xHx?xDxf32, #kiln.dims<[b, s]>>
})";
  src = replaceAll(src, "xHx", "x" + std::to_string(h) + "x");
  src = replaceAll(src, "xDxf32", "x" + std::to_string(d) + "xf32");
  src = replaceAll(src, "<Rxf32>", "<" + std::to_string(half) + "xf32>");
  return replaceAll(src, "INTERLEAVED", interleaved ? "true" : "false");
}

TEST_F(InterpreterTest, RopeBothStylesAndPartialRotary) {
  struct Case {
    int64_t d, rotary, s;
    bool interleaved;
  };
  for (Case c : {Case{16, 16, 1, false}, Case{16, 16, 3, true}, Case{16, 8, 7, false}, Case{256, 256, 3, false},
                 Case{256, 128, 7, true}, Case{256, 64, 1, false}}) {
    const int64_t b = 2, h = 3, half = c.rotary / 2;
    HostTensor x = randomTensor({b, h, c.s, c.d}, rng), freq({{half}, {}});
    for (int64_t i = 0; i < half; ++i)
      freq.data.push_back(std::pow(10000.0, -2.0 * i / c.rotary));
    HostTensor pos = tensor({b, c.s}, {}, true);
    for (int64_t bi = 0; bi < b; ++bi)
      for (int64_t i = 0; i < c.s; ++i)
        pos.data.push_back(bi * 5 + i + 2); // a KV-cache offset that differs per batch row
    HostTensor out = runOne(ropeSource(h, c.d, half, c.interleaved), {x, pos, freq});
    std::vector<double> expected;
    for (int64_t bi = 0; bi < b; ++bi)
      for (int64_t hi = 0; hi < h; ++hi)
        for (int64_t i = 0; i < c.s; ++i) {
          const double *v = &x.data[((bi * h + hi) * c.s + i) * c.d];
          double p = pos.data[bi * c.s + i];
          std::vector<double> row(v, v + c.d);
          if (!c.interleaved) {
            // HF: x * cat(cos, cos) + rotate_half(x) * cat(sin, sin), rotate_half(x) = cat(-x2, x1).
            for (int64_t k = 0; k < c.rotary; ++k) {
              double angle = p * freq.data[k % half];
              double rotated = k < half ? -v[k + half] : v[k - half];
              row[k] = v[k] * std::cos(angle) + rotated * std::sin(angle);
            }
          } else {
            // Pairs as complex numbers times e^{i angle}.
            for (int64_t k = 0; k < half; ++k) {
              std::complex<double> z(v[2 * k], v[2 * k + 1]);
              z *= std::polar(1.0, p * freq.data[k]);
              row[2 * k] = z.real();
              row[2 * k + 1] = z.imag();
            }
          }
          expected.insert(expected.end(), row.begin(), row.end());
        }
    expectNear(out.data, expected, 1e-12);
  }
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

struct AttentionCase {
  int64_t b, hq, hkv, s, past, d;
  bool causal;
  int64_t window = 0;      // 0: none
  bool padding = false;    // key_padding_mask operand
  double softcap = 0;      // 0: none
  bool bias = false;       // bias [1, hq, s, t] operand
};

std::string attentionSource(const AttentionCase &c) {
  auto n = [](int64_t v) { return std::to_string(v); };
  std::string q = "tensor<?x" + n(c.hq) + "x?x" + n(c.d) + "xf32, #kiln.dims<[b, s]>>";
  std::string kv = "tensor<?x" + n(c.hkv) + "x?x" + n(c.d) + "xf32, #kiln.dims<[b, p + s]>>";
  std::string mask = "tensor<?x?xi64, #kiln.dims<[b, p + s]>>";
  std::string bias = "tensor<1x" + n(c.hq) + "x?x?xf32, #kiln.dims<[s, p + s]>>";
  std::string args = "%q: " + q + ", %k: " + kv + ", %v: " + kv;
  std::string operands = "%q, %k, %v", types = q + ", " + kv + ", " + kv;
  if (c.padding) {
    args += ", %m: " + mask;
    operands += " key_padding_mask(%m)";
    types += ", " + mask;
  }
  if (c.bias) {
    args += ", %bias: " + bias;
    operands += " bias(%bias)";
    types += ", " + bias;
  }
  std::string attrs = "scale = 0.3 : f64, mask = #kiln.mask<" + std::string(c.causal ? "causal" : "bidirectional") + ">";
  if (c.window)
    attrs += ", window = " + n(c.window) + " : i64";
  if (c.softcap)
    attrs += ", softcap = " + std::to_string(c.softcap) + " : f64";
  return "func.func @f(" + args + ") -> " + q + " {\n  %0 = kiln.attention " + operands + " {" + attrs +
         "} : (" + types + ") -> " + q + "\n  return %0 : " + q + "\n}\n";
}

/// HF-style eager attention: repeat_kv, scores = q k^T * scale, softcap, + an explicit additive mask
/// [b, 1, s, t] (0 or -inf) + bias, softmax (fully masked rows -> zeros), times v.
std::vector<double> naiveAttention(const AttentionCase &c, const HostTensor &q, const HostTensor &k,
                                   const HostTensor &v, const HostTensor *padding, const HostTensor *bias) {
  const int64_t t = c.past + c.s, rep = c.hq / c.hkv;
  std::vector<double> out;
  for (int64_t bi = 0; bi < c.b; ++bi)
    for (int64_t h = 0; h < c.hq; ++h) {
      int64_t kvh = h / rep; // repeat_kv: [b, hkv, t, d] -> [b, hkv * rep, t, d]
      for (int64_t i = 0; i < c.s; ++i) {
        std::vector<double> scores(t);
        for (int64_t j = 0; j < t; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < c.d; ++e)
            dot += q.data[((bi * c.hq + h) * c.s + i) * c.d + e] * k.data[((bi * c.hkv + kvh) * t + j) * c.d + e];
          double score = dot * 0.3;
          if (c.softcap)
            score = std::tanh(score / c.softcap) * c.softcap;
          double mask = 0;
          if (c.causal && j > c.past + i)
            mask = -kInf;
          if (c.window && c.past + i - j >= c.window)
            mask = -kInf;
          if (padding && padding->data[bi * t + j] == 0)
            mask = -kInf;
          scores[j] = score + mask + (bias ? bias->data[(h * c.s + i) * t + j] : 0.0);
        }
        double m = -kInf;
        for (double x : scores)
          m = std::max(m, x);
        std::vector<double> row(c.d, 0.0);
        if (m != -kInf) {
          double z = 0;
          for (double &x : scores)
            z += (x = std::exp(x - m));
          for (int64_t j = 0; j < t; ++j)
            for (int64_t e = 0; e < c.d; ++e)
              row[e] += scores[j] / z * v.data[((bi * c.hkv + kvh) * t + j) * c.d + e];
        }
        out.insert(out.end(), row.begin(), row.end());
      }
    }
  return out;
}

TEST_F(InterpreterTest, AttentionMatchesNaiveReference) {
  std::vector<AttentionCase> cases = {
      {1, 2, 2, 1, 0, 16, true},                     // a single token, no cache
      {1, 2, 2, 3, 4, 16, true},                     // causal with past > 0
      {2, 4, 2, 7, 3, 16, true, 4},                  // GQA + sliding window
      {2, 4, 2, 3, 2, 16, true, 0, true},            // GQA + key_padding_mask
      {1, 4, 2, 7, 5, 256, true, 3, true},           // head_dim 256, window, padding
      {2, 4, 1, 3, 0, 16, false, 0, true},           // bidirectional with padding (an encoder)
      {1, 4, 4, 3, 2, 16, true, 0, false, 5.0, true}, // softcap + bias
      {1, 2, 1, 1, 6, 256, true, 2},                 // decode step with window
  };
  for (const AttentionCase &c : cases) {
    SCOPED_TRACE(attentionSource(c));
    const int64_t t = c.past + c.s;
    HostTensor q = randomTensor({c.b, c.hq, c.s, c.d}, rng, -2, 2), k = randomTensor({c.b, c.hkv, t, c.d}, rng, -2, 2),
               v = randomTensor({c.b, c.hkv, t, c.d}, rng);
    std::vector<HostTensor> args = {q, k, v};
    HostTensor padding = tensor({c.b, t}, std::vector<double>(c.b * t, 1), true);
    if (c.padding) {
      padding.data[0] = 0; // a left-padded first row
      if (t > 2)
        padding.data[1] = 0;
      if (c.b > 1)
        padding.data[2 * t - 1] = 0; // and a padded last key in the second row
      args.push_back(padding);
    }
    HostTensor bias = randomTensor({1, c.hq, c.s, t}, rng);
    if (c.bias)
      args.push_back(bias);
    HostTensor out = runOne(attentionSource(c), args);
    ASSERT_EQ(out.shape, (std::vector<int64_t>{c.b, c.hq, c.s, c.d}));
    expectNear(out.data, naiveAttention(c, q, k, v, c.padding ? &padding : nullptr, c.bias ? &bias : nullptr),
               1e-12);
  }
}

TEST_F(InterpreterTest, AttentionRowWithNoVisibleKeyIsZero) {
  AttentionCase c{1, 2, 2, 3, 0, 16, true, 0, true};
  HostTensor q = randomTensor({1, 2, 3, 16}, rng), k = randomTensor({1, 2, 3, 16}, rng), v = randomTensor({1, 2, 3, 16}, rng);
  HostTensor mask = tensor({1, 3}, {0, 1, 1}, true); // query 0 sees only key 0, which is padded
  HostTensor out = runOne(attentionSource(c), {q, k, v, mask});
  for (int h = 0; h < 2; ++h)
    for (int e = 0; e < 16; ++e)
      EXPECT_EQ(out.data[(h * 3 + 0) * 16 + e], 0.0);
  expectNear(out.data, naiveAttention(c, q, k, v, &mask, nullptr), 1e-12);
}

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

TEST_F(InterpreterTest, ArgumentShapeErrorsNameTheArgument) {
  const char *src = R"(
func.func @f(%x: tensor<?x?x4xf32, #kiln.dims<[b, s]>> {kiln.name = "hidden"},
             %m: tensor<?x?xi64, #kiln.dims<[b, p + s]>> {kiln.name = "attention_mask"},
             %y: tensor<?xf32, #kiln.dims<[s]>>) -> tensor<?x?x4xf32, #kiln.dims<[b, s]>> {
  return %x : tensor<?x?x4xf32, #kiln.dims<[b, s]>>
})";
  std::vector<HostTensor> results;
  std::string error;
  auto zeros = [](std::vector<int64_t> shape) {
    HostTensor t = tensor(shape, {});
    t.data.assign(t.numElements(), 0.0);
    return t;
  };
  // p is solved from `p + s` once b and s are bound.
  ASSERT_TRUE(run(src, {zeros({2, 3, 4}), zeros({2, 8}), zeros({3})}, results, error)) << error;
  EXPECT_EQ(results[0].shape, (std::vector<int64_t>{2, 3, 4}));

  // s bound to 3 by `hidden`, then 5 by argument 2.
  EXPECT_FALSE(run(src, {zeros({2, 3, 4}), zeros({2, 8}), zeros({5})}, results, error));
  EXPECT_NE(error.find("argument 2"), std::string::npos) << error;
  EXPECT_NE(error.find("[5]"), std::string::npos) << error;
  EXPECT_NE(error.find("[s] = [3]"), std::string::npos) << error;

  // b bound to 2, then 1 by attention_mask.
  EXPECT_FALSE(run(src, {zeros({2, 3, 4}), zeros({1, 8}), zeros({3})}, results, error));
  EXPECT_NE(error.find("argument 'attention_mask'"), std::string::npos) << error;
  EXPECT_NE(error.find("[1, 8]"), std::string::npos) << error;

  // p + s = 2 < s = 3: no p >= 0 fits.
  EXPECT_FALSE(run(src, {zeros({2, 3, 4}), zeros({2, 2}), zeros({3})}, results, error));
  EXPECT_NE(error.find("argument 'attention_mask'"), std::string::npos) << error;

  // Wrong rank and wrong static dim.
  EXPECT_FALSE(run(src, {zeros({2, 3}), zeros({2, 8}), zeros({3})}, results, error));
  EXPECT_NE(error.find("argument 'hidden'"), std::string::npos) << error;
  EXPECT_NE(error.find("[b, s, 4]"), std::string::npos) << error;
  EXPECT_FALSE(run(src, {zeros({2, 3, 5}), zeros({2, 8}), zeros({3})}, results, error));
  EXPECT_NE(error.find("argument 'hidden' has shape [2, 3, 5]"), std::string::npos) << error;
  EXPECT_NE(error.find("[b, s, 4] = [2, 3, 4]"), std::string::npos) << error;

  // Wrong argument count; data that does not fill the shape.
  EXPECT_FALSE(run(src, {zeros({2, 3, 4})}, results, error));
  EXPECT_NE(error.find("3 arguments"), std::string::npos) << error;
  EXPECT_FALSE(run(src, {zeros({2, 3, 4}), zeros({2, 8}), tensor({3}, {1, 2})}, results, error));
  EXPECT_NE(error.find("argument 2"), std::string::npos) << error;
}

TEST_F(InterpreterTest, WeightLoaderErrorsPropagateAndWeightsAreCached) {
  const char *src = R"(
func.func @f(%x: tensor<1x?x4xf32, #kiln.dims<[s]>>) -> tensor<1x?x3xf32, #kiln.dims<[s]>> {
  %w = kiln.weight "lm_head.weight" : tensor<3x4xf32>
  %0 = kiln.matmul %x, %w {transpose_b = true} : (tensor<1x?x4xf32, #kiln.dims<[s]>>, tensor<3x4xf32>) -> tensor<1x?x3xf32, #kiln.dims<[s]>>
  return %0 : tensor<1x?x3xf32, #kiln.dims<[s]>>
})";
  mlir::func::FuncOp func = parse(src);
  ASSERT_TRUE(func);
  std::vector<HostTensor> results;
  std::string error;
  {
    Interpreter interpreter(loader);
    EXPECT_FALSE(interpreter.run(func, {randomTensor({1, 2, 4}, rng)}, results, error));
    EXPECT_NE(error.find("'kiln.weight'"), std::string::npos) << error;
    EXPECT_NE(error.find("no tensor 'lm_head.weight' in model.safetensors"), std::string::npos) << error;
    EXPECT_NE(error.find("test.mlir:3:"), std::string::npos) << error;
  }
  {
    weightTable["lm_head.weight"] = randomTensor({4, 3}, rng); // transposed by mistake
    Interpreter interpreter(loader);
    EXPECT_FALSE(interpreter.run(func, {randomTensor({1, 2, 4}, rng)}, results, error));
    EXPECT_NE(error.find("[4, 3]"), std::string::npos) << error;
    EXPECT_NE(error.find("[3, 4]"), std::string::npos) << error;
  }
  weightTable["lm_head.weight"] = randomTensor({3, 4}, rng);
  loads = 0;
  Interpreter interpreter(loader);
  for (int64_t s : {2, 1, 3}) { // chunks of one prompt
    HostTensor x = randomTensor({1, s, 4}, rng);
    ASSERT_TRUE(interpreter.run(func, {x}, results, error)) << error;
    EXPECT_EQ(results[0].shape, (std::vector<int64_t>{1, s, 3}));
    double acc = 0;
    for (int k = 0; k < 4; ++k)
      acc += x.data[(s - 1) * 4 + k] * weightTable["lm_head.weight"].data[2 * 4 + k];
    EXPECT_NEAR(results[0].data.back(), acc, 1e-12);
  }
  EXPECT_EQ(loads, 1);
}

// A matmul against a block-quantized weight computes with its lhs quantized per block of 32 as the CPU's int8
// kernels do (quantizeActivationBlock), every row by default; with setQuantizedActivationRows(8) (kiln eval
// --target vulkan, whose prefill tiles take f32 activations) only when it has at most 8 rows.
TEST_F(InterpreterTest, QuantizedWeightQuantizesActivationRows) {
  const char *src = R"(
func.func @f(%x: tensor<1x?x64xf32, #kiln.dims<[s]>>) -> tensor<1x?x3xf32, #kiln.dims<[s]>> {
  %w = kiln.weight "w" {quant = "q8_0"} : tensor<3x64xf32>
  %0 = kiln.matmul %x, %w {transpose_b = true} : (tensor<1x?x64xf32, #kiln.dims<[s]>>, tensor<3x64xf32>) -> tensor<1x?x3xf32, #kiln.dims<[s]>>
  return %0 : tensor<1x?x3xf32, #kiln.dims<[s]>>
})";
  mlir::func::FuncOp func = parse(src);
  ASSERT_TRUE(func);
  weightTable["w"] = randomTensor({3, 64}, rng);
  const std::vector<double> &w = weightTable["w"].data;
  // out[i, j] with x's rows quantized per block (quantized) or as they are.
  auto expected = [&](const HostTensor &x, bool quantized) {
    std::vector<double> a = x.data, out;
    for (size_t b = 0; quantized && b < a.size(); b += 32) {
      float block[32];
      int8_t q[32];
      int32_t sum;
      for (size_t e = 0; e < 32; ++e)
        block[e] = float(a[b + e]);
      const float d = kiln::quantizeActivationBlock(block, q, &sum);
      for (size_t e = 0; e < 32; ++e)
        a[b + e] = double(q[e]) * double(d);
    }
    for (size_t i = 0; i < a.size() / 64; ++i)
      for (size_t j = 0; j < 3; ++j) {
        double acc = 0;
        for (size_t k = 0; k < 64; ++k)
          acc += a[i * 64 + k] * w[j * 64 + k];
        out.push_back(acc);
      }
    return out;
  };
  auto maxDiff = [](const std::vector<double> &u, const std::vector<double> &v) {
    double m = 0;
    for (size_t i = 0; i < u.size(); ++i)
      m = std::max(m, std::fabs(u[i] - v[i]));
    return m;
  };
  std::vector<HostTensor> results;
  std::string error;
  for (int64_t s : {8, 9, 40}) {
    SCOPED_TRACE("rows " + std::to_string(s));
    HostTensor x = randomTensor({1, s, 64}, rng);
    Interpreter cpu(loader), vulkan(loader);
    vulkan.setQuantizedActivationRows(kiln::kQuantGemvMaxRows);
    ASSERT_TRUE(cpu.run(func, {x}, results, error)) << error;
    EXPECT_LE(maxDiff(results[0].data, expected(x, true)), 1e-12);
    ASSERT_TRUE(vulkan.run(func, {x}, results, error)) << error;
    EXPECT_LE(maxDiff(results[0].data, expected(x, s <= kiln::kQuantGemvMaxRows)), 1e-12);
    EXPECT_GT(maxDiff(expected(x, true), expected(x, false)), 1e-6) << "the quantization shows";
  }
}

TEST_F(InterpreterTest, UnknownOpIsAnError) {
  const char *src = R"(
func.func private @g(tensor<2xf32>) -> tensor<2xf32>
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = kiln.exp %x : tensor<2xf32> -> tensor<2xf32>
  %1 = func.call @g(%0) : (tensor<2xf32>) -> tensor<2xf32>
  return %1 : tensor<2xf32>
})";
  mlir::func::FuncOp func = parse(src);
  ASSERT_TRUE(func);
  func = modules.back()->lookupSymbol<mlir::func::FuncOp>("f");
  Interpreter interpreter(loader);
  std::vector<HostTensor> results;
  std::string error;
  EXPECT_FALSE(interpreter.run(func, {tensor({2}, {1, 2})}, results, error));
  EXPECT_NE(error.find("no interpreter rule for 'func.call'"), std::string::npos) << error;
  EXPECT_NE(error.find("test.mlir:5:"), std::string::npos) << error;
}

//===----------------------------------------------------------------------===//
// A small model end to end: speed
//===----------------------------------------------------------------------===//

TEST_F(InterpreterTest, TwoLayerModelRunsQuickly) {
  // A llama-like decoder, width 64, 4 heads of 16 (GQA with 2 KV heads), 2 layers, vocab 256.
  std::string layer = R"(
  %n@L@ = kiln.weight "l@L@.norm" : tensor<64xf32>
  %h@L@ = kiln.rms_norm %x@P@, %n@L@ {eps = 1.0e-05 : f64, unit_offset = false} : (tensor<1x?x64xf32, #kiln.dims<[s]>>, tensor<64xf32>) -> tensor<1x?x64xf32, #kiln.dims<[s]>>
  %wq@L@ = kiln.weight "l@L@.q" : tensor<64x64xf32>
  %wk@L@ = kiln.weight "l@L@.k" : tensor<32x64xf32>
  %wv@L@ = kiln.weight "l@L@.v" : tensor<32x64xf32>
  %wo@L@ = kiln.weight "l@L@.o" : tensor<64x64xf32>
  %q0@L@ = kiln.matmul %h@L@, %wq@L@ {transpose_b = true} : (tensor<1x?x64xf32, #kiln.dims<[s]>>, tensor<64x64xf32>) -> tensor<1x?x64xf32, #kiln.dims<[s]>>
  %k0@L@ = kiln.matmul %h@L@, %wk@L@ {transpose_b = true} : (tensor<1x?x64xf32, #kiln.dims<[s]>>, tensor<32x64xf32>) -> tensor<1x?x32xf32, #kiln.dims<[s]>>
  %v0@L@ = kiln.matmul %h@L@, %wv@L@ {transpose_b = true} : (tensor<1x?x64xf32, #kiln.dims<[s]>>, tensor<32x64xf32>) -> tensor<1x?x32xf32, #kiln.dims<[s]>>
  %q1@L@ = kiln.reshape %q0@L@ : tensor<1x?x64xf32, #kiln.dims<[s]>> -> tensor<1x?x4x16xf32, #kiln.dims<[s]>>
  %k1@L@ = kiln.reshape %k0@L@ : tensor<1x?x32xf32, #kiln.dims<[s]>> -> tensor<1x?x2x16xf32, #kiln.dims<[s]>>
  %v1@L@ = kiln.reshape %v0@L@ : tensor<1x?x32xf32, #kiln.dims<[s]>> -> tensor<1x?x2x16xf32, #kiln.dims<[s]>>
  %q2@L@ = kiln.transpose %q1@L@ {permutation = array<i64: 0, 2, 1, 3>} : tensor<1x?x4x16xf32, #kiln.dims<[s]>> -> tensor<1x4x?x16xf32, #kiln.dims<[s]>>
  %k2@L@ = kiln.transpose %k1@L@ {permutation = array<i64: 0, 2, 1, 3>} : tensor<1x?x2x16xf32, #kiln.dims<[s]>> -> tensor<1x2x?x16xf32, #kiln.dims<[s]>>
  %v2@L@ = kiln.transpose %v1@L@ {permutation = array<i64: 0, 2, 1, 3>} : tensor<1x?x2x16xf32, #kiln.dims<[s]>> -> tensor<1x2x?x16xf32, #kiln.dims<[s]>>
  %q3@L@ = kiln.rope %q2@L@, %pos, %freq {interleaved = false} : (tensor<1x4x?x16xf32, #kiln.dims<[s]>>, tensor<1x?xi64, #kiln.dims<[s]>>, tensor<8xf32>) -> tensor<1x4x?x16xf32, #kiln.dims<[s]>>
  %k3@L@ = kiln.rope %k2@L@, %pos, %freq {interleaved = false} : (tensor<1x2x?x16xf32, #kiln.dims<[s]>>, tensor<1x?xi64, #kiln.dims<[s]>>, tensor<8xf32>) -> tensor<1x2x?x16xf32, #kiln.dims<[s]>>
  %kc@L@ = kiln.concat %pk@P@, %k3@L@ {axis = 2 : i64} : (tensor<1x2x?x16xf32, #kiln.dims<[p]>>, tensor<1x2x?x16xf32, #kiln.dims<[s]>>) -> tensor<1x2x?x16xf32, #kiln.dims<[p + s]>>
  %vc@L@ = kiln.concat %pv@P@, %v2@L@ {axis = 2 : i64} : (tensor<1x2x?x16xf32, #kiln.dims<[p]>>, tensor<1x2x?x16xf32, #kiln.dims<[s]>>) -> tensor<1x2x?x16xf32, #kiln.dims<[p + s]>>
  %a@L@ = kiln.attention %q3@L@, %kc@L@, %vc@L@ {scale = 0.25 : f64, mask = #kiln.mask<causal>} : (tensor<1x4x?x16xf32, #kiln.dims<[s]>>, tensor<1x2x?x16xf32, #kiln.dims<[p + s]>>, tensor<1x2x?x16xf32, #kiln.dims<[p + s]>>) -> tensor<1x4x?x16xf32, #kiln.dims<[s]>>
  %a1@L@ = kiln.transpose %a@L@ {permutation = array<i64: 0, 2, 1, 3>} : tensor<1x4x?x16xf32, #kiln.dims<[s]>> -> tensor<1x?x4x16xf32, #kiln.dims<[s]>>
  %a2@L@ = kiln.reshape %a1@L@ : tensor<1x?x4x16xf32, #kiln.dims<[s]>> -> tensor<1x?x64xf32, #kiln.dims<[s]>>
  %o@L@ = kiln.matmul %a2@L@, %wo@L@ {transpose_b = true} : (tensor<1x?x64xf32, #kiln.dims<[s]>>, tensor<64x64xf32>) -> tensor<1x?x64xf32, #kiln.dims<[s]>>
  %r@L@ = kiln.add %x@P@, %o@L@ : (tensor<1x?x64xf32, #kiln.dims<[s]>>, tensor<1x?x64xf32, #kiln.dims<[s]>>) -> tensor<1x?x64xf32, #kiln.dims<[s]>>
  %wg@L@ = kiln.weight "l@L@.gate" : tensor<256x64xf32>
  %wu@L@ = kiln.weight "l@L@.up" : tensor<256x64xf32>
  %wd@L@ = kiln.weight "l@L@.down" : tensor<64x256xf32>
  %g@L@ = kiln.matmul %r@L@, %wg@L@ {transpose_b = true} : (tensor<1x?x64xf32, #kiln.dims<[s]>>, tensor<256x64xf32>) -> tensor<1x?x256xf32, #kiln.dims<[s]>>
  %u@L@ = kiln.matmul %r@L@, %wu@L@ {transpose_b = true} : (tensor<1x?x64xf32, #kiln.dims<[s]>>, tensor<256x64xf32>) -> tensor<1x?x256xf32, #kiln.dims<[s]>>
  %s@L@ = kiln.silu %g@L@ : tensor<1x?x256xf32, #kiln.dims<[s]>> -> tensor<1x?x256xf32, #kiln.dims<[s]>>
  %m@L@ = kiln.mul %s@L@, %u@L@ : (tensor<1x?x256xf32, #kiln.dims<[s]>>, tensor<1x?x256xf32, #kiln.dims<[s]>>) -> tensor<1x?x256xf32, #kiln.dims<[s]>>
  %d@L@ = kiln.matmul %m@L@, %wd@L@ {transpose_b = true} : (tensor<1x?x256xf32, #kiln.dims<[s]>>, tensor<64x256xf32>) -> tensor<1x?x64xf32, #kiln.dims<[s]>>
  %x@L@ = kiln.add %r@L@, %d@L@ : (tensor<1x?x64xf32, #kiln.dims<[s]>>, tensor<1x?x64xf32, #kiln.dims<[s]>>) -> tensor<1x?x64xf32, #kiln.dims<[s]>>
)";
  std::string kv = "tensor<1x2x?x16xf32, #kiln.dims<[p]>>";
  std::string src = "func.func @step(%ids: tensor<1x?xi64, #kiln.dims<[s]>>, %pos: tensor<1x?xi64, #kiln.dims<[s]>>, "
                    "%pk0: " + kv + ", %pv0: " + kv + ", %pk1: " + kv + ", %pv1: " + kv +
                    ") -> tensor<1x?x256xf32, #kiln.dims<[s]>> {\n"
                    "  %freq = kiln.weight \"inv_freq\" : tensor<8xf32>\n"
                    "  %emb = kiln.weight \"embed\" : tensor<256x64xf32>\n"
                    "  %x0 = kiln.gather %emb, %ids : (tensor<256x64xf32>, tensor<1x?xi64, #kiln.dims<[s]>>) -> tensor<1x?x64xf32, #kiln.dims<[s]>>\n";
  for (int l = 0; l < 2; ++l)
    src += replaceAll(replaceAll(layer, "@P@", std::to_string(l)), "@L@", std::to_string(l + 1));
  src += "  %nf = kiln.weight \"norm\" : tensor<64xf32>\n"
         "  %hf = kiln.rms_norm %x2, %nf {eps = 1.0e-05 : f64, unit_offset = false} : (tensor<1x?x64xf32, #kiln.dims<[s]>>, tensor<64xf32>) -> tensor<1x?x64xf32, #kiln.dims<[s]>>\n"
         "  %logits = kiln.matmul %hf, %emb {transpose_b = true} : (tensor<1x?x64xf32, #kiln.dims<[s]>>, tensor<256x64xf32>) -> tensor<1x?x256xf32, #kiln.dims<[s]>>\n"
         "  return %logits : tensor<1x?x256xf32, #kiln.dims<[s]>>\n}\n";
  WeightLoader random = [this](llvm::StringRef name, HostTensor &out, std::string &error) {
    std::map<std::string, std::vector<int64_t>> shapes = {{"inv_freq", {8}}, {"embed", {256, 64}}, {"norm", {64}}};
    for (std::string l : {"l1.", "l2."}) {
      shapes[l + "norm"] = {64};
      shapes[l + "q"] = {64, 64};
      shapes[l + "k"] = {32, 64};
      shapes[l + "v"] = {32, 64};
      shapes[l + "o"] = {64, 64};
      shapes[l + "gate"] = {256, 64};
      shapes[l + "up"] = {256, 64};
      shapes[l + "down"] = {64, 256};
    }
    auto it = shapes.find(name.str());
    if (it == shapes.end()) {
      error = "unknown weight " + name.str();
      return false;
    }
    out = randomTensor(it->second, rng, -0.2, 0.2);
    return true;
  };
  mlir::func::FuncOp func = parse(src);
  ASSERT_TRUE(func) << src;
  Interpreter interpreter(random);
  const int64_t s = 7, p = 5;
  std::vector<HostTensor> args = {tensor({1, s}, {}, true), tensor({1, s}, {}, true)};
  for (int64_t i = 0; i < s; ++i) {
    args[0].data.push_back((i * 37) % 256);
    args[1].data.push_back(p + i);
  }
  for (int i = 0; i < 4; ++i)
    args.push_back(randomTensor({1, 2, p, 16}, rng));
  std::vector<HostTensor> results;
  std::string error;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(interpreter.run(func, args, results, error)) << error;
  ASSERT_TRUE(interpreter.run(func, args, results, error)) << error;
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 0.5);
  ASSERT_EQ(results[0].shape, (std::vector<int64_t>{1, s, 256}));
  for (double x : results[0].data)
    ASSERT_TRUE(std::isfinite(x));
}

} // namespace
