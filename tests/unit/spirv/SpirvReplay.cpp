//===- SpirvReplay.cpp - kiln_spirv_replay: run exported kernel cases on a GPU (ReplayCase.h) -===//
//
//   kiln_spirv_replay DIR    (DIR: written by KILN_SPIRV_EXPORT=DIR kiln_spirv_tests --gtest_filter='*Export*')
//
// Prints the device, its cooperative-matrix shapes, then one line per case: PASS / FAIL, the relative error
// max |out - ref| / max |ref| against the interpreter's result, the bound (a failing case: where its worst element
// is and how many are beyond the bound). Exit 0 when every case passes, 1
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

/// The result buffer against the interpreter's: max |out - ref| / max |ref| (NaN when a value is NaN or
/// missing), where the worst element is, and (for a failing case's diagnosis) how many elements are off by
/// more than the bound and the first of them.
struct Comparison {
  double rel = NAN;
  size_t worst = 0, beyond = 0, firstBeyond = 0;
  float worstOut = 0, worstRef = 0;
};

float resultAt(const ReplayCase &c, size_t i) {
  const std::vector<uint8_t> &out = c.buffers.back();
  if (c.resultKind == 1) {
    uint16_t h;
    std::memcpy(&h, out.data() + 2 * i, 2);
    return halfToFloat(h);
  }
  float a;
  std::memcpy(&a, out.data() + 4 * i, 4);
  return a;
}

Comparison compare(const ReplayCase &c) {
  Comparison r;
  size_t n = c.expected.size(), width = c.resultKind == 1 ? 2 : 4;
  if (c.buffers.back().size() < n * width)
    return r;
  double maxRef = 0, maxErr = 0;
  for (size_t i = 0; i < n; ++i) {
    float a = resultAt(c, i);
    if (std::isnan(a) || std::isnan(c.expected[i]))
      return r;
    maxRef = std::max(maxRef, std::fabs(double(c.expected[i])));
    double err = std::fabs(double(a) - c.expected[i]);
    if (err > maxErr) {
      maxErr = err;
      r.worst = i;
      r.worstOut = a;
      r.worstRef = c.expected[i];
    }
  }
  r.rel = maxRef > 0 ? maxErr / maxRef : maxErr;
  const double bound = c.tolerance * (maxRef > 0 ? maxRef : 1.0);
  for (size_t i = 0; i < n; ++i)
    if (std::fabs(double(resultAt(c, i)) - c.expected[i]) > bound && !r.beyond++)
      r.firstBeyond = i;
  return r;
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
    Comparison cmp = error.empty() ? compare(c) : Comparison{};
    bool ok = error.empty() && cmp.rel <= c.tolerance;
    failed += !ok;
    std::printf("%s %-70s rel error %.3g (bound %.0e)%s%s\n", ok ? "PASS" : "FAIL", c.name.c_str(), cmp.rel,
                c.tolerance, error.empty() ? "" : ": ", error.c_str());
    if (!ok && error.empty() && !std::isnan(cmp.rel))
      std::printf("     worst: element %zu of %zu (out %.6g, ref %.6g); %zu beyond the bound, the first element %zu\n",
                  cmp.worst, c.expected.size(), cmp.worstOut, cmp.worstRef, cmp.beyond, cmp.firstBeyond);
  }
  std::printf("%zu cases, %d failed\n", files.size(), failed);
  return failed ? 1 : 0;
}
