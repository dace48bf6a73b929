//===- CpuTargets.cpp - feature names, the object choice, cpu_objects validation ===//
#include "kiln/artifact/CpuTargets.h"

#include "kiln/artifact/ArtifactFormat.h"
#include "kiln/support/Util.h"

#include <algorithm>
#include <utility>

namespace kiln::artifact {
namespace {

// The x86-64 psABI levels, each with the recorded features it adds to the one before (LLVM's definitions
// less the unrecorded fxsr, mmx, crc32, xsave).
const std::pair<const char *, std::vector<std::string>> kX86Levels[] = {
    {"x86-64", {"cmov", "cx8", "sse", "sse2"}},
    {"x86-64-v2", {"cx16", "popcnt", "sahf", "sse3", "sse4.1", "sse4.2", "ssse3"}},
    {"x86-64-v3", {"avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe"}},
    {"x86-64-v4", {"avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl"}},
};

// At most this many missing features are named per object (a one-line message).
constexpr size_t kNamedMissing = 8;

std::string joinFeatures(const std::vector<std::string> &names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < kNamedMissing; ++i)
    out += (i ? ", " : "") + names[i];
  if (names.size() > kNamedMissing)
    out += " and " + std::to_string(names.size() - kNamedMissing) + " more";
  return out;
}

bool printableName(const std::string &s) {
  return !s.empty() && s.size() <= 64 &&
         std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

} // namespace

const std::vector<std::string> &cpuFeatureNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v = {
        "avx",          "avx10.1",     "avx10.2",     "avx2",         "avx512bf16",   "avx512bitalg",
        "avx512bw",     "avx512cd",    "avx512dq",    "avx512f",      "avx512fp16",   "avx512ifma",
        "avx512vbmi",   "avx512vbmi2", "avx512vl",    "avx512vnni",   "avx512vpopcntdq", "avxifma",
        "avxneconvert", "avxvnni",     "avxvnniint16", "avxvnniint8", "bmi",          "bmi2",
        "ccmp",         "cf",          "cmov",        "cx16",         "cx8",          "egpr",
        "f16c",         "fma",         "fma4",        "gfni",         "lzcnt",        "movbe",
        "ndd",          "nf",          "popcnt",      "ppx",          "push2pop2",    "sahf",
        "sse",          "sse2",        "sse3",        "sse4.1",       "sse4.2",       "sse4a",
        "ssse3",        "tbm",         "xop",         "zu"};
    std::sort(v.begin(), v.end());
    return v;
  }();
  return names;
}

bool isCpuFeatureName(const std::string &name) {
  const std::vector<std::string> &names = cpuFeatureNames();
  return std::binary_search(names.begin(), names.end(), name);
}

std::vector<std::string> missingCpuFeatures(const CpuObject &object, const CpuFeatureSet &host) {
  std::vector<std::string> missing;
  for (const std::string &f : object.features())
    if (!host.count(f))
      missing.push_back(f);
  return missing;
}

std::string bestX86Level(const CpuFeatureSet &host) {
  std::string best = kX86Levels[0].first;
  for (const auto &[level, added] : kX86Levels) {
    if (!std::all_of(added.begin(), added.end(), [&](const std::string &f) { return host.count(f) > 0; }))
      break;
    best = level;
  }
  return best;
}

CpuObjectChoice chooseCpuObject(const Manifest &manifest, const CpuFeatureSet &host, const std::string &file) {
  CpuObjectChoice choice;
  if (manifest.cpu_objects_size() == 0) {
    choice.ok = true;
    choice.message = "one CPU kernel object of unrecorded target (an artifact older than the CPU check)";
    return choice;
  }
  const int n = manifest.cpu_objects_size();
  std::string skipped; // "sapphirerapids lacks avx512fp16; ..."
  for (int i = 0; i < n; ++i) {
    const CpuObject &object = manifest.cpu_objects(i);
    std::vector<std::string> missing = missingCpuFeatures(object, host);
    if (missing.empty()) {
      choice.ok = true;
      choice.index = i;
      choice.message = "CPU kernels for " + object.cpu() + " (object " + std::to_string(i + 1) + " of " +
                       std::to_string(n) + (skipped.empty() ? ")" : "; skipped " + skipped + ")");
      return choice;
    }
    skipped += (skipped.empty() ? "" : "; ") + object.cpu() + ": this CPU lacks " + joinFeatures(missing);
  }
  const std::string fix = "; recompile with `kiln compile MODEL_DIR -o " + file + " --cpu " + bestX86Level(host) +
                          "` (this CPU's level) or `--cpu portable` (one object per level, the best one loads)";
  if (n == 1)
    choice.message = file + ": the CPU kernels were compiled for " + manifest.cpu_objects(0).cpu() +
                     " and need " + joinFeatures(missingCpuFeatures(manifest.cpu_objects(0), host)) +
                     ", which this CPU (or its OS) lacks" + fix;
  else
    choice.message = file + ": none of the " + std::to_string(n) + " CPU kernel objects runs on this CPU (" +
                     skipped + ")" + fix;
  choice.message = support::oneLine(choice.message);
  return choice;
}

Status validateCpuObjects(const Manifest &manifest, uint64_t codeSize, const std::string &file) {
  constexpr int kMaxObjects = 16;
  if (manifest.cpu_objects_size() > kMaxObjects)
    return Status::error(support::oneLine(file + ": manifest: " + std::to_string(manifest.cpu_objects_size()) +
                                          " cpu objects, more than " + std::to_string(kMaxObjects)));
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (int i = 0; i < manifest.cpu_objects_size(); ++i) {
    const CpuObject &o = manifest.cpu_objects(i);
    const std::string what = file + ": manifest: cpu object " + std::to_string(i) +
                             (printableName(o.cpu()) ? " (" + o.cpu() + ")" : "") + ": ";
    auto bad = [&](const std::string &why) { return Status::error(support::oneLine(what + why)); };
    if (!printableName(o.cpu()))
      return bad("the CPU name is empty, longer than 64 bytes or not printable");
    for (int j = 0; j < o.features_size(); ++j) {
      const std::string &f = o.features(j);
      if (!isCpuFeatureName(f))
        return bad(printableName(f) ? "unknown CPU feature '" + f + "'" : "a CPU feature name that is not printable");
      if (j > 0 && !(o.features(j - 1) < f))
        return bad("the features are not sorted without repeats ('" + o.features(j - 1) + "', '" + f + "')");
    }
    uint64_t end = 0;
    if (o.size() == 0)
      return bad("empty");
    if (o.offset() % kAlignment != 0)
      return bad("offset " + std::to_string(o.offset()) + " is not 64-byte aligned");
    if (__builtin_add_overflow(o.offset(), o.size(), &end) || end > codeSize)
      return bad("bytes [" + std::to_string(o.offset()) + ", +" + std::to_string(o.size()) +
                 ") lie outside the code section (" + std::to_string(codeSize) + " bytes)");
    ranges.push_back({o.offset(), end});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second)
      return Status::error(support::oneLine(file + ": manifest: two cpu objects overlap at byte " +
                                            std::to_string(ranges[i].first) + " of the code section"));
  return Status::ok();
}

} // namespace kiln::artifact
