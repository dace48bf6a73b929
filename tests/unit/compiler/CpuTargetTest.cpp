// --cpu lists, the features the compiler records of a target, and the runtime's host detection (cpuid + xgetbv,
// runtime/src/cpu/HostCpu.cpp) against LLVM's (llvm::sys::getHostCPUFeatures) on whatever CPU runs the test.
#include "cpu/HostCpu.h"
#include "kiln/artifact/CpuTargets.h"
#include "kiln/codegen/CpuCodegen.h"
#include "kiln/compiler/Stages.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

using namespace kiln;

namespace {

bool x86Host() { return llvm::Triple(llvm::sys::getProcessTriple()).isX86(); }

/// What the compiler records of `cpu`: LLVM's ISA features limited to artifact/CpuTargets.h's names.
std::set<std::string> recorded(const std::string &cpu) {
  StatusOr<codegen::CpuTargetInfo> info = codegen::describeCpuTarget(cpu);
  EXPECT_TRUE(info.ok()) << cpu;
  std::set<std::string> out;
  if (info.ok())
    for (const std::string &f : info->features)
      if (artifact::isCpuFeatureName(f))
        out.insert(f);
  return out;
}

TEST(CpuTargets, EveryRecordedNameIsOneLLVMDetects) {
  if (!x86Host())
    GTEST_SKIP() << "not an x86 host";
  const llvm::StringMap<bool> host = llvm::sys::getHostCPUFeatures();
  for (const std::string &name : artifact::cpuFeatureNames())
    EXPECT_TRUE(host.count(name)) << name << " is not a feature LLVM's host detection knows";
}

// The runtime detects exactly what LLVM detects, for every feature an artifact may record.
TEST(CpuTargets, RuntimeDetectionAgreesWithLLVM) {
  if (!x86Host())
    GTEST_SKIP() << "not an x86 host";
  const llvm::StringMap<bool> llvmHost = llvm::sys::getHostCPUFeatures();
  const std::set<std::string> ours = runtime::cpu::detectHostCpuFeatures();
  for (const std::string &name : artifact::cpuFeatureNames()) {
    auto it = llvmHost.find(name);
    const bool llvmHas = it != llvmHost.end() && it->second;
    EXPECT_EQ(ours.count(name) > 0, llvmHas) << name;
  }
  EXPECT_TRUE(ours.count("sse2")) << "every x86-64 has SSE2";
}

TEST(CpuTargets, NativeObjectRunsHere) {
  if (!x86Host())
    GTEST_SKIP() << "not an x86 host";
  const std::set<std::string> host = runtime::cpu::detectHostCpuFeatures();
  for (const std::string &f : recorded("native"))
    EXPECT_TRUE(host.count(f)) << "native records " << f << ", which this CPU lacks";
}

TEST(CpuTargets, LevelsRecordTheirFeatures) {
  const std::set<std::string> base = {"cmov", "cx8", "sse", "sse2"};
  EXPECT_EQ(recorded("x86-64"), base);
  std::set<std::string> v3 = recorded("x86-64-v3");
  for (const char *f : {"avx", "avx2", "fma", "f16c", "bmi2", "sse4.2"})
    EXPECT_TRUE(v3.count(f)) << f;
  EXPECT_FALSE(v3.count("avx512f"));
  EXPECT_EQ(artifact::bestX86Level(v3), "x86-64-v3");
  EXPECT_EQ(artifact::bestX86Level(recorded("x86-64-v4")), "x86-64-v4");
  std::set<std::string> spr = recorded("sapphirerapids");
  EXPECT_TRUE(spr.count("avx512fp16"));
  EXPECT_FALSE(spr.count("enqcmd")) << "system instructions are not recorded";
}

TEST(CpuTargets, UnknownCpuIsAnError) {
  StatusOr<codegen::CpuTargetInfo> info = codegen::describeCpuTarget("no-such-cpu");
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("no-such-cpu"), std::string::npos);
}

TEST(CpuTargets, CpuLists) {
  StatusOr<std::vector<std::string>> portable = compiler::cpuTargetList("portable");
  ASSERT_TRUE(portable.ok());
  EXPECT_EQ(*portable, (std::vector<std::string>{"x86-64", "x86-64-v3", "x86-64-v4", "sapphirerapids"}));
  StatusOr<std::vector<std::string>> mixed = compiler::cpuTargetList("native,x86-64");
  ASSERT_TRUE(mixed.ok());
  EXPECT_EQ(*mixed, (std::vector<std::string>{"native", "x86-64"}));
  for (const char *bad : {"", "a,,b", "x86-64,", ",x86-64"}) {
    StatusOr<std::vector<std::string>> list = compiler::cpuTargetList(bad);
    ASSERT_FALSE(list.ok()) << bad;
    EXPECT_NE(list.status().message().find("empty entry"), std::string::npos) << list.status().message();
  }
  EXPECT_EQ(compiler::resolveCpuName("x86-64,native"), "x86-64," + llvm::sys::getHostCPUName().str());
}

} // namespace
