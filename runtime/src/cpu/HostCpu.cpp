//===- HostCpu.cpp - cpuid + xgetbv -----------------------------------------===//
#include "cpu/HostCpu.h"

#include <cstdint>
#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace kiln::runtime::cpu {
namespace {

#if defined(__x86_64__) || defined(__i386__)
struct CpuidRegs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

/// cpuid(leaf, subleaf), all zero when the CPU does not have the leaf.
CpuidRegs cpuid(uint32_t leaf, uint32_t subleaf) {
  CpuidRegs r;
  const uint32_t maxLeaf = __get_cpuid_max(leaf & 0x80000000u, nullptr);
  if (leaf > maxLeaf || !__get_cpuid_count(leaf, subleaf, &r.eax, &r.ebx, &r.ecx, &r.edx))
    return CpuidRegs{};
  return r;
}

bool bit(uint32_t reg, int b) { return (reg >> b) & 1u; }

/// XCR0: the register state the OS saves (0 without OSXSAVE).
uint64_t xcr0(const CpuidRegs &leaf1) {
  if (!bit(leaf1.ecx, 27))
    return 0;
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

/// Which register state the OS must save for a feature to count.
enum class State { None, Avx, Avx512 };

struct FeatureBit {
  const char *name;
  const CpuidRegs *regs;
  uint32_t CpuidRegs::*reg;
  int bit;
  State state;
};

void addFeatures(std::set<std::string> &out) {
  const CpuidRegs l1 = cpuid(1, 0), l7 = cpuid(7, 0), l71 = cpuid(7, 1), e1 = cpuid(0x80000001u, 0);
  const uint64_t saved = xcr0(l1);
  const bool avxState = (saved & 0x6) == 0x6;                  // XMM, YMM
  const bool avx512State = avxState && (saved & 0xe0) == 0xe0; // opmask, ZMM_Hi256, Hi16_ZMM
  const bool apxState = bit(uint32_t(saved), 19);              // extended GPRs
  const bool avx10 = bit(l71.edx, 19) && avx512State;
  const uint32_t avx10Version = avx10 ? (cpuid(0x24, 0).ebx & 0xff) : 0;
  using R = CpuidRegs;
  constexpr State N = State::None, V = State::Avx, Z = State::Avx512;
  const FeatureBit table[] = {
      {"cmov", &l1, &R::edx, 15, N},          {"cx8", &l1, &R::edx, 8, N},
      {"sse", &l1, &R::edx, 25, N},           {"sse2", &l1, &R::edx, 26, N},
      {"sse3", &l1, &R::ecx, 0, N},           {"ssse3", &l1, &R::ecx, 9, N},
      {"cx16", &l1, &R::ecx, 13, N},          {"sse4.1", &l1, &R::ecx, 19, N},
      {"sse4.2", &l1, &R::ecx, 20, N},        {"movbe", &l1, &R::ecx, 22, N},
      {"popcnt", &l1, &R::ecx, 23, N},        {"sahf", &e1, &R::ecx, 0, N},
      {"lzcnt", &e1, &R::ecx, 5, N},          {"sse4a", &e1, &R::ecx, 6, N},
      {"tbm", &e1, &R::ecx, 21, N},           {"bmi", &l7, &R::ebx, 3, N},
      {"bmi2", &l7, &R::ebx, 8, N},           {"gfni", &l7, &R::ecx, 8, N},
      {"fma", &l1, &R::ecx, 12, V},           {"avx", &l1, &R::ecx, 28, V},
      {"f16c", &l1, &R::ecx, 29, V},          {"xop", &e1, &R::ecx, 11, V},
      {"fma4", &e1, &R::ecx, 16, V},          {"avx2", &l7, &R::ebx, 5, V},
      {"avxvnni", &l71, &R::eax, 4, V},       {"avxifma", &l71, &R::eax, 23, V},
      {"avxvnniint8", &l71, &R::edx, 4, V},   {"avxneconvert", &l71, &R::edx, 5, V},
      {"avxvnniint16", &l71, &R::edx, 10, V}, {"avx512f", &l7, &R::ebx, 16, Z},
      {"avx512dq", &l7, &R::ebx, 17, Z},      {"avx512ifma", &l7, &R::ebx, 21, Z},
      {"avx512cd", &l7, &R::ebx, 28, Z},      {"avx512bw", &l7, &R::ebx, 30, Z},
      {"avx512vl", &l7, &R::ebx, 31, Z},      {"avx512vbmi", &l7, &R::ecx, 1, Z},
      {"avx512vbmi2", &l7, &R::ecx, 6, Z},    {"avx512vnni", &l7, &R::ecx, 11, Z},
      {"avx512bitalg", &l7, &R::ecx, 12, Z},  {"avx512vpopcntdq", &l7, &R::ecx, 14, Z},
      {"avx512fp16", &l7, &R::edx, 23, Z},    {"avx512bf16", &l71, &R::eax, 5, Z},
  };
  for (const FeatureBit &f : table)
    if (bit(f.regs->*f.reg, f.bit) && (f.state == N || (f.state == V ? avxState : avx512State)))
      out.insert(f.name);
  if (avx10Version >= 1)
    out.insert("avx10.1");
  if (avx10Version >= 2)
    out.insert("avx10.2");
  if (bit(l71.edx, 21) && apxState) // APX: LLVM splits it into these features, all from one bit
    for (const char *f : {"egpr", "push2pop2", "ppx", "ndd", "ccmp", "nf", "cf", "zu"})
      out.insert(f);
}
#endif

} // namespace

std::set<std::string> detectHostCpuFeatures() {
  std::set<std::string> features;
#if defined(__x86_64__) || defined(__i386__)
  addFeatures(features);
#endif
  return features;
}

std::set<std::string> hostCpuFeatures() {
  std::set<std::string> features = detectHostCpuFeatures();
  const char *disable = std::getenv("KILN_CPU_DISABLE");
  std::string names = disable ? disable : "";
  size_t start = 0;
  while (start <= names.size()) {
    size_t comma = names.find(',', start);
    if (comma == std::string::npos)
      comma = names.size();
    features.erase(names.substr(start, comma - start));
    start = comma + 1;
  }
  return features;
}

} // namespace kiln::runtime::cpu
