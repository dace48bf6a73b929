// The CPU check as a function of an injected host feature set (artifact/CpuTargets.h): which object loads,
// the one-line refusal naming the missing features and the fix, and the validation of Manifest.cpu_objects.
#include "kiln/artifact/CpuTargets.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace kiln;
using namespace kiln::artifact;

namespace {

const CpuFeatureSet kBaseline = {"cmov", "cx8", "sse", "sse2"};
const CpuFeatureSet kV3 = {"avx",    "avx2",   "bmi",  "bmi2", "cmov",   "cx16",   "cx8",   "f16c",  "fma", "lzcnt",
                           "movbe",  "popcnt", "sahf", "sse",  "sse2",   "sse3",   "sse4.1", "sse4.2", "ssse3"};

CpuFeatureSet with(CpuFeatureSet s, const std::vector<std::string> &more) {
  s.insert(more.begin(), more.end());
  return s;
}

void addObject(Manifest &m, const std::string &cpu, const CpuFeatureSet &features, uint64_t offset, uint64_t size) {
  CpuObject *o = m.add_cpu_objects();
  o->set_cpu(cpu);
  for (const std::string &f : features) // std::set: sorted
    o->add_features(f);
  o->set_offset(offset);
  o->set_size(size);
}

/// sapphirerapids-like, x86-64-v3, x86-64: the order `kiln compile --cpu portable` stores.
Manifest threeObjects() {
  Manifest m;
  addObject(m, "sapphirerapids", with(kV3, {"avx512f", "avx512bw", "avx512fp16"}), 0, 100);
  addObject(m, "x86-64-v3", kV3, 128, 100);
  addObject(m, "x86-64", kBaseline, 256, 100);
  return m;
}

bool oneLine(const std::string &s) { return !s.empty() && s.find('\n') == std::string::npos; }

TEST(CpuTargets, PicksTheFirstObjectTheHostRuns) {
  const Manifest m = threeObjects();
  CpuObjectChoice all = chooseCpuObject(m, with(kV3, {"avx512f", "avx512bw", "avx512fp16", "avx512vl"}), "m.kiln");
  EXPECT_TRUE(all.ok);
  EXPECT_EQ(all.index, 0);
  EXPECT_NE(all.message.find("sapphirerapids (object 1 of 3)"), std::string::npos) << all.message;

  CpuObjectChoice v3 = chooseCpuObject(m, with(kV3, {"avx512f"}), "m.kiln");
  EXPECT_TRUE(v3.ok);
  EXPECT_EQ(v3.index, 1);
  EXPECT_NE(v3.message.find("skipped sapphirerapids: this CPU lacks avx512bw, avx512fp16"), std::string::npos)
      << v3.message;

  CpuObjectChoice old = chooseCpuObject(m, kBaseline, "m.kiln");
  EXPECT_TRUE(old.ok);
  EXPECT_EQ(old.index, 2);
  EXPECT_TRUE(oneLine(old.message));
}

TEST(CpuTargets, RefusesWithTheMissingFeaturesAndTheFix) {
  Manifest one;
  addObject(one, "sapphirerapids", with(kV3, {"avx512f", "avx512fp16"}), 0, 64);
  CpuObjectChoice c = chooseCpuObject(one, kV3, "dir/m.kiln");
  EXPECT_FALSE(c.ok);
  EXPECT_TRUE(oneLine(c.message)) << c.message;
  EXPECT_EQ(c.message.rfind("dir/m.kiln: ", 0), 0u) << c.message;
  EXPECT_NE(c.message.find("compiled for sapphirerapids and need avx512f, avx512fp16"), std::string::npos) << c.message;
  EXPECT_NE(c.message.find("--cpu x86-64-v3"), std::string::npos) << c.message; // the host's level
  EXPECT_NE(c.message.find("--cpu portable"), std::string::npos) << c.message;

  Manifest m = threeObjects();
  CpuObjectChoice none = chooseCpuObject(m, {"sse", "sse2"}, "m.kiln");
  EXPECT_FALSE(none.ok);
  EXPECT_TRUE(oneLine(none.message));
  EXPECT_NE(none.message.find("none of the 3 CPU kernel objects"), std::string::npos) << none.message;
  EXPECT_NE(none.message.find("x86-64: this CPU lacks cmov, cx8"), std::string::npos) << none.message;
}

TEST(CpuTargets, ManyMissingFeaturesStayOneShortLine) {
  Manifest m;
  CpuFeatureSet many = kV3;
  addObject(m, "x86-64-v3", many, 0, 64);
  CpuObjectChoice c = chooseCpuObject(m, {}, "m.kiln");
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.message.find("and 11 more"), std::string::npos) << c.message; // 19 missing, 8 named
}

TEST(CpuTargets, AnArtifactWithoutObjectsLoadsTheWholeSection) {
  CpuObjectChoice c = chooseCpuObject(Manifest(), {}, "m.kiln");
  EXPECT_TRUE(c.ok);
  EXPECT_EQ(c.index, -1);
}

TEST(CpuTargets, BestLevel) {
  EXPECT_EQ(bestX86Level({}), "x86-64");
  EXPECT_EQ(bestX86Level(kBaseline), "x86-64");
  EXPECT_EQ(bestX86Level(kV3), "x86-64-v3");
  EXPECT_EQ(bestX86Level(with(kV3, {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"})), "x86-64-v4");
  CpuFeatureSet noFma = kV3;
  noFma.erase("fma");
  EXPECT_EQ(bestX86Level(noFma), "x86-64-v2");
}

TEST(CpuTargets, FeatureNames) {
  const std::vector<std::string> &names = cpuFeatureNames();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const char *n : {"avx2", "avx512fp16", "sse4.2", "fma", "f16c", "avx10.1", "egpr"})
    EXPECT_TRUE(isCpuFeatureName(n)) << n;
  for (const char *n : {"aes", "amx-tile", "xsave", "rdrnd", "fast-gather", "", "AVX2"})
    EXPECT_FALSE(isCpuFeatureName(n)) << n;
}

// Each bad cpu_objects entry is refused with one line naming the file and the object.
TEST(CpuTargets, ValidationRefusesBadEntries) {
  EXPECT_TRUE(validateCpuObjects(threeObjects(), 356, "m.kiln").isOk());
  EXPECT_TRUE(validateCpuObjects(Manifest(), 0, "m.kiln").isOk());
  struct Case {
    const char *expect;
    void (*mutate)(Manifest &);
    uint64_t codeSize;
  };
  const Case cases[] = {
      {"unknown CPU feature 'avx9'", [](Manifest &m) { m.mutable_cpu_objects(1)->add_features("avx9"); }, 356},
      {"not sorted without repeats", [](Manifest &m) { m.mutable_cpu_objects(2)->add_features("sse2"); }, 356},
      {"not printable", [](Manifest &m) { m.mutable_cpu_objects(0)->add_features(std::string("a\nb")); }, 356},
      {"the CPU name is empty", [](Manifest &m) { m.mutable_cpu_objects(0)->set_cpu(""); }, 356},
      {"the CPU name is empty", [](Manifest &m) { m.mutable_cpu_objects(0)->set_cpu("x\x01"); }, 356},
      {"not 64-byte aligned", [](Manifest &m) { m.mutable_cpu_objects(1)->set_offset(100); }, 356},
      {"empty", [](Manifest &m) { m.mutable_cpu_objects(2)->set_size(0); }, 356},
      {"outside the code section", [](Manifest &m) { (void)m; }, 355},
      {"outside the code section", [](Manifest &m) { m.mutable_cpu_objects(2)->set_size(~0ull - 10); }, 356},
      {"two cpu objects overlap", [](Manifest &m) { m.mutable_cpu_objects(1)->set_offset(64); }, 356},
      {"more than 16", [](Manifest &m) {
         for (int i = 0; i < 14; ++i)
           addObject(m, "x86-64", kBaseline, 384 + 64 * uint64_t(i), 1);
       }, 2000},
  };
  for (const Case &c : cases) {
    Manifest m = threeObjects();
    c.mutate(m);
    Status s = validateCpuObjects(m, c.codeSize, "m.kiln");
    ASSERT_FALSE(s.isOk()) << c.expect;
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << s.message();
    EXPECT_EQ(s.message().rfind("m.kiln: manifest: ", 0), 0u) << s.message();
    EXPECT_TRUE(oneLine(s.message())) << s.message();
  }
}

} // namespace
