//===- ArtifactFormat.h - the .kiln file layout ---------------*- C++ -*-===//
//
// One file, little-endian:
//   [0, 64)   header: magic "KILNART\0", u32 format version, u32 section count, then per section
//             (manifest, code, weights) nothing here — the section table follows the header
//   section table: per section { u32 kind, u32 reserved, u64 offset, u64 size, u64 checksum }
//   sections, each starting 64-byte aligned: MANIFEST (protobuf kiln.artifact.Manifest), CPU_CODE (the
//   shared objects with the generated kernels, one per CPU target: Manifest.cpu_objects, CpuTargets.h), WEIGHTS (every WEIGHT buffer at its offset; with
//   Manifest.synthetic_weights only the non-synthetic ones, at Buffer.stored_offset: the runtime generates
//   the rest at load, SyntheticWeights.h), and optionally TEXT (protobuf kiln.artifact.TextSection: the
//   tokenizer files, chat template, EOS ids and pooling; readers that predate it skip it as an unknown kind)
//   header checksum: the last field of the header covers the header and the section table.
// Checksums are kiln::artifact::checksum64 (xxHash64) of the section's bytes.
//
// No LLVM or MLIR here: the runtime links this library.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_ARTIFACT_ARTIFACTFORMAT_H
#define KILN_ARTIFACT_ARTIFACTFORMAT_H

#include <cstddef>
#include <cstdint>

namespace kiln::artifact {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'A', 'R', 'T', '\0'};
// 2: in-place KV cache views, weight row chunks, specialization constants / shared SPIR-V modules (an
// older runtime would misread them, so it must refuse them).
// 3: Manifest.vocab_size and hidden_size are required (the runtime no longer guesses them from weight names).
constexpr uint32_t kFormatVersion = 3;
constexpr uint64_t kAlignment = 64;

enum class SectionKind : uint32_t { Manifest = 1, CpuCode = 2, Weights = 3, Text = 4 };

struct SectionEntry {
  uint32_t kind;
  uint32_t reserved;
  uint64_t offset;
  uint64_t size;
  uint64_t checksum;
};

struct FileHeader {
  char magic[8];
  uint32_t formatVersion;
  uint32_t sectionCount;
  uint64_t sectionTableOffset; // == sizeof(FileHeader)
  uint64_t headerChecksum;     // checksum64 of this header (with this field 0) and the section table
  uint8_t reserved[32];
};
static_assert(sizeof(FileHeader) == 64, "the header is 64 bytes");
static_assert(sizeof(SectionEntry) == 32, "a section entry is 32 bytes");

/// xxHash64 (seed 0) of `size` bytes.
uint64_t checksum64(const void *data, size_t size);

} // namespace kiln::artifact

#endif // KILN_ARTIFACT_ARTIFACTFORMAT_H
