//===- ReplayCase.h - one kernel dispatch with its inputs and expected output, as a file -*- C++ -*-===//
//
// The GPU machine has no LLVM / MLIR, so kiln_spirv_tests cannot run there. Instead, with KILN_SPIRV_EXPORT=DIR,
// kiln_spirv_tests writes the kernels of its GPU cases (compiled for a device like the nvidia-h200 profile:
// cooperative matrices, 32-wide subgroups) with their inputs and the interpreter's results into DIR, and
// kiln_spirv_replay (VulkanHarness + this header only: no LLVM) runs them on the GPU and compares. One file per
// dispatch (or two: a kernel in two passes), little-endian: "KILNRPL1", then strings and arrays as a u64
// length followed by the data.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TESTS_SPIRV_REPLAYCASE_H
#define KILN_TESTS_SPIRV_REPLAYCASE_H

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace kiln::test {

struct ReplayCase {
  std::string name;                          ///< "<case> <kernel> <bindings>"
  double tolerance = 0;                      ///< max |out - ref| / max |ref| of the last buffer
  std::vector<uint32_t> spirv, specialization, push;
  uint32_t groups[3] = {1, 1, 1};
  std::vector<std::vector<uint8_t>> buffers; ///< operands, then the result (garbage-filled)
  uint32_t resultKind = 0;                   ///< the result's storage: 0 f32, 1 f16
  std::vector<float> expected;               ///< the interpreter's result
  /// A second pass (a kernel in two passes: the buffers are then operands, scratch, result), dispatched after
  /// the first over the same buffers; empty spirv2: one pass. Written after `expected`, absent in older files.
  std::vector<uint32_t> spirv2, specialization2;
  uint32_t groups2[3] = {1, 1, 1};
};

namespace replay {
inline void put(std::ofstream &o, const void *p, uint64_t n) {
  o.write(reinterpret_cast<const char *>(&n), 8);
  o.write(static_cast<const char *>(p), std::streamsize(n));
}
inline bool get(std::ifstream &in, std::vector<uint8_t> &bytes) {
  uint64_t n = 0;
  if (!in.read(reinterpret_cast<char *>(&n), 8) || n > (uint64_t(1) << 34))
    return false;
  bytes.resize(n);
  return bool(in.read(reinterpret_cast<char *>(bytes.data()), std::streamsize(n)));
}
template <typename T> bool getArray(std::ifstream &in, std::vector<T> &out) {
  std::vector<uint8_t> bytes;
  if (!get(in, bytes) || bytes.size() % sizeof(T))
    return false;
  out.resize(bytes.size() / sizeof(T));
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return true;
}
} // namespace replay

inline bool writeReplayCase(const std::string &path, const ReplayCase &c) {
  std::ofstream o(path, std::ios::binary);
  o.write("KILNRPL1", 8);
  replay::put(o, c.name.data(), c.name.size());
  replay::put(o, &c.tolerance, sizeof c.tolerance);
  replay::put(o, c.spirv.data(), c.spirv.size() * 4);
  replay::put(o, c.specialization.data(), c.specialization.size() * 4);
  replay::put(o, c.push.data(), c.push.size() * 4);
  replay::put(o, c.groups, sizeof c.groups);
  uint64_t n = c.buffers.size();
  replay::put(o, &n, 8);
  for (const std::vector<uint8_t> &b : c.buffers)
    replay::put(o, b.data(), b.size());
  replay::put(o, &c.resultKind, 4);
  replay::put(o, c.expected.data(), c.expected.size() * 4);
  if (!c.spirv2.empty()) {
    replay::put(o, c.spirv2.data(), c.spirv2.size() * 4);
    replay::put(o, c.specialization2.data(), c.specialization2.size() * 4);
    replay::put(o, c.groups2, sizeof c.groups2);
  }
  return bool(o);
}

inline bool readReplayCase(const std::string &path, ReplayCase &c) {
  std::ifstream in(path, std::ios::binary);
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "KILNRPL1", 8) != 0)
    return false;
  std::vector<uint8_t> bytes;
  std::vector<double> tolerance;
  std::vector<uint32_t> groups, kind;
  std::vector<uint64_t> count;
  if (!replay::get(in, bytes) || !replay::getArray(in, tolerance) || tolerance.size() != 1 ||
      !replay::getArray(in, c.spirv) || !replay::getArray(in, c.specialization) || !replay::getArray(in, c.push) ||
      !replay::getArray(in, groups) || groups.size() != 3 || !replay::getArray(in, count) || count.size() != 1)
    return false;
  c.name.assign(bytes.begin(), bytes.end());
  c.tolerance = tolerance[0];
  std::memcpy(c.groups, groups.data(), sizeof c.groups);
  c.buffers.resize(count[0]);
  for (std::vector<uint8_t> &b : c.buffers)
    if (!replay::get(in, b))
      return false;
  if (!replay::getArray(in, kind) || kind.size() != 1 || !replay::getArray(in, c.expected))
    return false;
  c.resultKind = kind[0];
  if (in.peek() == std::ifstream::traits_type::eof())
    return true;
  std::vector<uint32_t> groups2;
  if (!replay::getArray(in, c.spirv2) || !replay::getArray(in, c.specialization2) || !replay::getArray(in, groups2) ||
      groups2.size() != 3)
    return false;
  std::memcpy(c.groups2, groups2.data(), sizeof c.groups2);
  return true;
}

} // namespace kiln::test

#endif // KILN_TESTS_SPIRV_REPLAYCASE_H
