//===- CooperativeMatrixKhr.cpp - SPV_NV_cooperative_matrix -> SPV_KHR_cooperative_matrix -===//
//
// The toolchain's glslang (12) and SPIRV-Tools (2023.1) predate GL_KHR_cooperative_matrix, and the runtime
// enables VK_KHR_cooperative_matrix. So cooperative-matrix kernels are written with GL_NV_cooperative_matrix,
// validated as NV modules, and rewritten here instruction by instruction (the two extensions have the same
// types and operations; the KHR ones differ in encoding):
//   OpCapability CooperativeMatrixNV (5357)      -> CooperativeMatrixKHR (6022)
//   OpExtension "SPV_NV_cooperative_matrix"      -> "SPV_KHR_cooperative_matrix"
//   OpTypeCooperativeMatrixNV (5358) T S R C     -> OpTypeCooperativeMatrixKHR (4456) T S R C Use
//   OpCooperativeMatrixLoadNV (5359) .. P St Col -> OpCooperativeMatrixLoadKHR (4457) .. P Layout St
//   OpCooperativeMatrixStoreNV (5360) P O St Col -> OpCooperativeMatrixStoreKHR (4458) P O Layout St
//   OpCooperativeMatrixMulAddNV (5361)           -> OpCooperativeMatrixMulAddKHR (4459), same operands
//   OpCooperativeMatrixLengthNV (5362)           -> OpCooperativeMatrixLengthKHR (4460)
// Use (MatrixA 0, MatrixB 1, MatrixAccumulator 2) comes from the type's place in the MulAdds; Layout
// (RowMajor 0, ColumnMajor 1) from the NV column-major boolean constant; both are new uint constants. A
// type must have one use: a kernel keeps its A, B and accumulator types distinct (e.g. 16x16, 16x8, f32).
// The KHR extension needs the Vulkan memory model in shaders; the kernels declare it (header.glsl).
//
//===----------------------------------------------------------------------===//
#include "KernelBuilder.h"

#include <map>
#include <set>

namespace kiln::codegen::spirv {
namespace {

enum : uint32_t {
  kOpExtension = 10,
  kOpTypeInt = 21,
  kOpCapability = 17,
  kOpConstantTrue = 41,
  kOpConstantFalse = 42,
  kOpConstant = 43,
  kCapCoopNV = 5357,
  kCapCoopKHR = 6022,
  kOpTypeCoopNV = 5358,
  kOpLoadNV = 5359,
  kOpStoreNV = 5360,
  kOpMulAddNV = 5361,
  kOpLengthNV = 5362,
  kOpTypeCoopKHR = 4456,
  kOpLoadKHR = 4457,
  kOpStoreKHR = 4458,
  kOpMulAddKHR = 4459,
  kOpLengthKHR = 4460,
};

struct Inst {
  uint32_t opcode;
  std::vector<uint32_t> operands; // the words after the first
};

std::vector<uint32_t> stringWords(const std::string &s) {
  std::vector<uint32_t> w((s.size() + 4) / 4, 0);
  for (size_t i = 0; i < s.size(); ++i)
    w[i / 4] |= uint32_t(uint8_t(s[i])) << (8 * (i % 4));
  return w;
}

std::string wordsString(const std::vector<uint32_t> &w) {
  std::string s;
  for (uint32_t word : w)
    for (int b = 0; b < 4; ++b) {
      char c = char((word >> (8 * b)) & 0xff);
      if (!c)
        return s;
      s += c;
    }
  return s;
}

/// The Use of every cooperative-matrix type: from the MulAdds' operands, whose types come from the
/// instruction that defines each value (every value-producing instruction starts with type, result).
bool matrixUses(const std::vector<Inst> &insts, const std::set<uint32_t> &matrixTypes,
                std::map<uint32_t, uint32_t> &use, std::string &error) {
  std::map<uint32_t, uint32_t> typeOf; // value id -> type id, for values of a matrix type
  for (const Inst &in : insts)
    if (in.operands.size() >= 2 && matrixTypes.count(in.operands[0]))
      typeOf[in.operands[1]] = in.operands[0];
  auto assign = [&](uint32_t type, uint32_t u) {
    auto [it, inserted] = use.emplace(type, u);
    if (!inserted && it->second != u) {
      error = "cooperative matrix type %" + std::to_string(type) + " is used as two different operands";
      return false;
    }
    return true;
  };
  for (const Inst &in : insts) {
    if (in.opcode != kOpMulAddNV)
      continue;
    if (in.operands.size() < 5 || !typeOf.count(in.operands[2]) || !typeOf.count(in.operands[3]))
      return error = "OpCooperativeMatrixMulAddNV: cannot find the types of its A and B operands", false;
    if (!assign(typeOf[in.operands[2]], 0) || !assign(typeOf[in.operands[3]], 1) || !assign(in.operands[0], 2))
      return false;
  }
  for (uint32_t t : matrixTypes)
    use.emplace(t, 2); // not multiplied (loaded and stored only): an accumulator
  return true;
}

} // namespace

bool nvToKhrCooperativeMatrix(std::vector<unsigned> &words, std::string &error) {
  if (words.size() < 5)
    return error = "not a SPIR-V module", false;
  std::vector<Inst> insts;
  for (size_t pos = 5; pos < words.size();) {
    uint32_t count = words[pos] >> 16;
    if (count == 0 || pos + count > words.size())
      return error = "malformed SPIR-V instruction at word " + std::to_string(pos), false;
    insts.push_back({words[pos] & 0xffff, std::vector<uint32_t>(words.begin() + pos + 1, words.begin() + pos + count)});
    pos += count;
  }
  uint32_t bound = words[3], uintType = 0;
  std::set<uint32_t> matrixTypes;
  std::map<uint32_t, bool> boolConstants;
  for (const Inst &in : insts) {
    if (in.opcode == kOpTypeCoopNV)
      matrixTypes.insert(in.operands[0]);
    else if (in.opcode == kOpTypeInt && in.operands[1] == 32 && in.operands[2] == 0 && !uintType)
      uintType = in.operands[0];
    else if (in.opcode == kOpConstantTrue || in.opcode == kOpConstantFalse)
      boolConstants[in.operands[1]] = in.opcode == kOpConstantTrue;
  }
  if (matrixTypes.empty())
    return true; // nothing to rewrite
  if (!uintType)
    return error = "no 32-bit unsigned integer type for the Use / Layout constants", false;
  std::map<uint32_t, uint32_t> use;
  if (!matrixUses(insts, matrixTypes, use, error))
    return false;
  // Constants 0, 1, 2 (Use and Layout), declared right after the uint type.
  const uint32_t constant[3] = {bound, bound + 1, bound + 2};
  bound += 3;
  auto layout = [&](uint32_t colMajorId, uint32_t &out) {
    auto it = boolConstants.find(colMajorId);
    if (it == boolConstants.end())
      return error = "a cooperative matrix load / store whose column-major flag is not a constant", false;
    out = constant[it->second ? 1 : 0];
    return true;
  };
  std::vector<Inst> out;
  for (Inst in : insts) {
    std::vector<uint32_t> &o = in.operands;
    switch (in.opcode) {
    case kOpCapability:
      if (o[0] == kCapCoopNV)
        o[0] = kCapCoopKHR;
      break;
    case kOpExtension:
      if (wordsString(o) == "SPV_NV_cooperative_matrix")
        o = stringWords("SPV_KHR_cooperative_matrix");
      break;
    case kOpTypeCoopNV: // result, component, scope, rows, columns (+ use)
      in.opcode = kOpTypeCoopKHR;
      o.push_back(constant[use.at(o[0])]);
      break;
    case kOpLoadNV: { // type, result, pointer, stride, column-major, [memory operands]
      uint32_t l;
      if (o.size() < 5 || !layout(o[4], l))
        return false;
      std::vector<uint32_t> khr = {o[0], o[1], o[2], l, o[3]};
      khr.insert(khr.end(), o.begin() + 5, o.end());
      in.opcode = kOpLoadKHR;
      o = std::move(khr);
      break;
    }
    case kOpStoreNV: { // pointer, object, stride, column-major, [memory operands]
      uint32_t l;
      if (o.size() < 4 || !layout(o[3], l))
        return false;
      std::vector<uint32_t> khr = {o[0], o[1], l, o[2]};
      khr.insert(khr.end(), o.begin() + 4, o.end());
      in.opcode = kOpStoreKHR;
      o = std::move(khr);
      break;
    }
    case kOpMulAddNV:
      in.opcode = kOpMulAddKHR;
      break;
    case kOpLengthNV:
      in.opcode = kOpLengthKHR;
      break;
    default:
      break;
    }
    out.push_back(std::move(in));
    if (out.back().opcode == kOpTypeInt && out.back().operands[0] == uintType)
      for (uint32_t v = 0; v < 3; ++v)
        out.push_back({kOpConstant, {uintType, constant[v], v}});
  }
  std::vector<unsigned> result(words.begin(), words.begin() + 5);
  result[3] = bound;
  for (const Inst &in : out) {
    result.push_back(uint32_t(in.operands.size() + 1) << 16 | in.opcode);
    result.insert(result.end(), in.operands.begin(), in.operands.end());
  }
  words = std::move(result);
  return true;
}

} // namespace kiln::codegen::spirv
