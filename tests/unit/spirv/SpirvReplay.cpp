//===- SpirvReplay.cpp - kiln_spirv_replay: run exported kernel cases on a GPU (ReplayCase.h) -===//
//
//   kiln_spirv_replay DIR    (DIR: written by KILN_SPIRV_EXPORT=DIR kiln_spirv_tests --gtest_filter='*Export*')
//
// Prints the device, its cooperative-matrix shapes, then one line per case: PASS / FAIL, the relative error
// max |out - ref| / max |ref| against the interpreter's result, the bound. Exit 0 when every case passes, 1
// when one fails or cannot run, 2 on usage errors. Needs only the Vulkan loader (no LLVM), so it runs on
// the GPU machine beside the runtime-only build.
//
//===----------------------------------------------------------------------===//
#include "ReplayCase.h"
#include "VulkanHarness.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <memory>

using namespace kiln::test;

namespace {

float bitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0x1f)
    return bitsToFloat(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) // zero or subnormal: mant * 2^-24
    return (sign ? -1.0f : 1.0f) * float(mant) * 5.9604644775390625e-8f;
  return bitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
}

/// max |out - ref| / max |ref| of the result buffer; NaN when a value is NaN or missing.
double relativeError(const ReplayCase &c) {
  const std::vector<uint8_t> &out = c.buffers.back();
  size_t n = c.expected.size(), width = c.resultKind == 1 ? 2 : 4;
  if (out.size() < n * width)
    return NAN;
  double maxRef = 0, maxErr = 0;
  for (size_t i = 0; i < n; ++i) {
    float a;
    if (width == 2) {
      uint16_t h;
      std::memcpy(&h, out.data() + 2 * i, 2);
      a = halfToFloat(h);
    } else {
      std::memcpy(&a, out.data() + 4 * i, 4);
    }
    if (std::isnan(a) || std::isnan(c.expected[i]))
      return NAN;
    maxRef = std::max(maxRef, std::fabs(double(c.expected[i])));
    maxErr = std::max(maxErr, std::fabs(double(a) - c.expected[i]));
  }
  return maxRef > 0 ? maxErr / maxRef : maxErr;
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: kiln_spirv_replay DIR\n");
    return 2;
  }
  std::string dir = argv[1];
  std::vector<std::string> files;
  if (DIR *d = opendir(dir.c_str())) {
    while (dirent *e = readdir(d))
      if (std::string(e->d_name).size() > 4 && std::string(e->d_name).rfind(".rpl") == std::strlen(e->d_name) - 4)
        files.push_back(dir + "/" + e->d_name);
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "kiln_spirv_replay: %s: no .rpl files\n", dir.c_str());
    return 1;
  }
  std::string why;
  std::unique_ptr<VulkanHarness> h = VulkanHarness::create(why);
  if (!h) {
    std::fprintf(stderr, "kiln_spirv_replay: no Vulkan device: %s\n", why.c_str());
    return 1;
  }
  std::printf("device: %s\ncooperative matrix shapes (subgroup scope):", h->deviceName().c_str());
  for (const std::string &s : h->cooperativeMatrixShapes())
    std::printf(" [%s]", s.c_str());
  std::printf("\ninteger dot product: %s\n", h->integerDotProduct() ? "yes" : "no (the _idot cases fail)");
  int failed = 0;
  for (const std::string &f : files) {
    ReplayCase c;
    if (!readReplayCase(f, c)) {
      std::printf("FAIL %s: cannot read\n", f.c_str());
      ++failed;
      continue;
    }
    std::vector<std::vector<uint8_t> *> buffers;
    for (std::vector<uint8_t> &b : c.buffers)
      buffers.push_back(&b);
    std::string error = h->dispatch(c.spirv, buffers, c.push, c.groups, c.specialization);
    if (error.empty() && !c.spirv2.empty()) // the second pass over the same buffers (scratch included)
      error = h->dispatch(c.spirv2, buffers, c.push, c.groups2, c.specialization2);
    double rel = error.empty() ? relativeError(c) : NAN;
    bool ok = error.empty() && rel <= c.tolerance;
    failed += !ok;
    std::printf("%s %-70s rel error %.3g (bound %.0e)%s%s\n", ok ? "PASS" : "FAIL", c.name.c_str(), rel, c.tolerance,
                error.empty() ? "" : ": ", error.c_str());
  }
  std::printf("%zu cases, %d failed\n", files.size(), failed);
  return failed ? 1 : 0;
}
