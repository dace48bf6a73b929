// What an input of the plan fuzzer (plan_fuzz.cpp) stands for, shared with the test that keeps its seed corpus
// valid (tests/unit/runtime/LoadedPlanTest.cpp). The first byte picks the mode:
//   even: the rest is a serialized Manifest; it is wrapped here into an artifact (the manifest section, an
//         empty code section and a zero WEIGHTS section of the size the manifest asks for, when it parses and
//         that is at most 1 MiB), with every checksum right, so that mutations of the manifest reach
//         validateManifest and the LoadedPlan;
//   odd:  the rest is an artifact file; its header checksum is recomputed (when the header and section table
//         are there) so that mutations reach the section table and the sections (opened without verifying
//         the section checksums).
#pragma once

#include "kiln/artifact/ArtifactFormat.h"
#include "kiln/artifact/ArtifactWriter.h"
#include "kiln/artifact/Checksum.h"
#include "kiln_artifact.pb.h"

#include <google/protobuf/stubs/logging.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <vector>

namespace kiln::fuzz {

/// The name plan-fuzzer artifacts have in messages.
constexpr const char *kPlanFuzzName = "fuzz.kiln";

inline bool planFuzzFileMode(const uint8_t *data, size_t size) { return size > 0 && (data[0] & 1) != 0; }

/// Recomputes the header checksum of the artifact in `bytes` (a no-op when the table is cut off).
inline void fixHeaderChecksum(std::vector<uint8_t> &bytes) {
  if (bytes.size() < sizeof(artifact::FileHeader))
    return;
  artifact::FileHeader header;
  std::memcpy(&header, bytes.data(), sizeof header);
  const uint64_t tableEnd = sizeof header + uint64_t(header.sectionCount) * sizeof(artifact::SectionEntry);
  if (header.sectionCount > 64 || tableEnd > bytes.size())
    return;
  header.headerChecksum = 0;
  artifact::Xxh64 h;
  h.update(&header, sizeof header);
  h.update(bytes.data() + sizeof header, tableEnd - sizeof header);
  header.headerChecksum = h.digest();
  std::memcpy(bytes.data(), &header, sizeof header);
}

/// An artifact holding `manifest` (raw bytes), an empty code section and `weightsSize` zero bytes.
inline std::vector<uint8_t> wrapManifest(const uint8_t *manifest, size_t size, uint64_t weightsSize) {
  auto align = [](uint64_t v) { return (v + artifact::kAlignment - 1) / artifact::kAlignment * artifact::kAlignment; };
  artifact::SectionEntry table[3] = {};
  const uint64_t tableEnd = sizeof(artifact::FileHeader) + sizeof table;
  table[0] = {uint32_t(artifact::SectionKind::Manifest), 0, align(tableEnd), size, 0};
  table[1] = {uint32_t(artifact::SectionKind::CpuCode), 0, align(table[0].offset + size), 0, 0};
  table[2] = {uint32_t(artifact::SectionKind::Weights), 0, table[1].offset, weightsSize, 0};
  std::vector<uint8_t> bytes(table[2].offset + weightsSize, 0);
  if (size)
    std::memcpy(bytes.data() + table[0].offset, manifest, size);
  for (artifact::SectionEntry &s : table)
    s.checksum = artifact::checksum64(bytes.data() + s.offset, s.size);
  artifact::FileHeader header = {};
  std::memcpy(header.magic, artifact::kMagic, sizeof header.magic);
  header.formatVersion = artifact::kFormatVersion;
  header.sectionCount = 3;
  header.sectionTableOffset = sizeof header;
  std::memcpy(bytes.data(), &header, sizeof header);
  std::memcpy(bytes.data() + sizeof header, table, sizeof table);
  fixHeaderChecksum(bytes);
  return bytes;
}

/// The artifact file the input stands for.
inline std::vector<uint8_t> planFuzzArtifact(const uint8_t *data, size_t size) {
  if (size == 0)
    return {};
  if (planFuzzFileMode(data, size)) {
    std::vector<uint8_t> bytes(data + 1, data + size);
    fixHeaderChecksum(bytes);
    return bytes;
  }
  uint64_t weightsSize = 0;
  artifact::Manifest m;
  google::protobuf::LogSilencer quiet; // a manifest that does not parse is the reader's to report
  if (size - 1 <= size_t(INT_MAX) && m.ParseFromArray(data + 1, int(size - 1)) &&
      artifact::storedWeightsSize(m) <= (uint64_t(1) << 20))
    weightsSize = artifact::storedWeightsSize(m);
  return wrapManifest(data + 1, size - 1, weightsSize);
}

} // namespace kiln::fuzz
