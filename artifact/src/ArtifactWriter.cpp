//===- ArtifactWriter.cpp -------------------------------------------------===//
#include "kiln/artifact/ArtifactWriter.h"
#include "kiln/artifact/CpuTargets.h"
#include "kiln/artifact/ArtifactFormat.h"
#include "kiln/artifact/ArtifactReader.h"
#include "kiln/artifact/Checksum.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace kiln::artifact {
namespace {

uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// The WEIGHTS section starts page-aligned (a multiple of kAlignment) so mmap'ed weights never share a page
// with the manifest or code.
constexpr uint64_t kWeightsSectionAlignment = 4096;

/// A FILE* that remembers the first error and removes the temporary file unless committed.
class OutFile {
public:
  OutFile(std::string path, std::string tmp) : path_(std::move(path)), tmp_(std::move(tmp)) {}
  ~OutFile() {
    if (f_)
      std::fclose(f_);
    if (!committed_ && opened_)
      std::remove(tmp_.c_str());
  }
  Status open() {
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_)
      return Status::error(path_ + ": cannot write: " + std::strerror(errno));
    opened_ = true;
    return Status::ok();
  }
  Status write(const void *data, size_t size) {
    if (size != 0 && std::fwrite(data, 1, size, f_) != size)
      return Status::error(path_ + ": write failed: " + std::strerror(errno));
    pos_ += size;
    return Status::ok();
  }
  Status zeros(uint64_t n, Xxh64 *h = nullptr) {
    static const uint8_t kZero[4096] = {};
    while (n > 0) {
      size_t chunk = size_t(std::min<uint64_t>(n, sizeof kZero));
      if (h)
        h->update(kZero, chunk);
      if (Status s = write(kZero, chunk); !s)
        return s;
      n -= chunk;
    }
    return Status::ok();
  }
  Status padTo(uint64_t offset) { return zeros(offset - pos_); }
  Status rewriteAt(uint64_t offset, const void *data, size_t size) {
    if (std::fseek(f_, long(offset), SEEK_SET) != 0)
      return Status::error(path_ + ": seek failed: " + std::strerror(errno));
    return write(data, size);
  }
  Status commit() {
    int rc = std::fclose(f_);
    f_ = nullptr;
    if (rc != 0)
      return Status::error(path_ + ": write failed: " + std::strerror(errno));
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
      return Status::error(path_ + ": cannot rename " + tmp_ + ": " + std::strerror(errno));
    committed_ = true;
    return Status::ok();
  }
  uint64_t pos() const { return pos_; }

private:
  std::string path_, tmp_;
  FILE *f_ = nullptr;
  bool opened_ = false, committed_ = false;
  uint64_t pos_ = 0;
};

} // namespace

void recordModelFacts(const ModelFacts &facts, Manifest &manifest) {
  manifest.set_architecture(facts.architecture);
  manifest.set_task(facts.task);
  manifest.set_vocab_size(facts.vocabSize);
  manifest.set_hidden_size(facts.hiddenSize);
}

uint64_t weightsSectionSize(const Manifest &manifest) {
  uint64_t end = 0;
  for (const Buffer &b : manifest.buffers())
    if (b.kind() == Buffer::WEIGHT)
      end = std::max(end, b.offset() + b.max_bytes());
  return alignUp(end, kAlignment);
}

uint64_t storedWeightsSize(const Manifest &manifest) {
  if (!manifest.synthetic_weights())
    return weightsSectionSize(manifest);
  uint64_t end = 0;
  for (const Buffer &b : manifest.buffers())
    if (b.kind() == Buffer::WEIGHT && !b.synthetic())
      end = std::max(end, b.stored_offset() + b.max_bytes());
  return alignUp(end, kAlignment);
}

Status writeArtifact(const std::string &path, const Manifest &manifest, const std::vector<uint8_t> &cpuCode,
                     const std::vector<WeightBlob> &weights, const TextSection *text) {
  const uint64_t weightsSize = storedWeightsSize(manifest);
  if (Status s = validateManifest(manifest, weightsSize, path); !s)
    return s;
  if (Status s = validateCpuObjects(manifest, cpuCode.size(), path); !s)
    return s;
  if (text)
    if (Status s = validateTextSection(*text, manifest, path); !s)
      return s;
  // Blobs: sorted by offset, aligned, inside the section, disjoint.
  std::vector<const WeightBlob *> blobs;
  for (const WeightBlob &w : weights)
    blobs.push_back(&w);
  std::sort(blobs.begin(), blobs.end(),
            [](const WeightBlob *a, const WeightBlob *b) { return a->offset < b->offset; });
  uint64_t prevEnd = 0;
  for (const WeightBlob *w : blobs) {
    std::string what = path + ": weight '" + w->name + "'";
    if (w->offset % kAlignment != 0)
      return Status::error(what + " is not 64-byte aligned");
    if (w->offset < prevEnd)
      return Status::error(what + " overlaps the previous weight");
    if (w->offset + w->size > weightsSize || w->offset + w->size < w->offset)
      return Status::error(what + " lies outside the weights section");
    if (!w->data && !w->produce && w->size != 0)
      return Status::error(what + " has no data");
    prevEnd = w->offset + w->size;
  }

  std::string manifestBytes;
  if (!manifest.SerializeToString(&manifestBytes))
    return Status::error(path + ": cannot serialize the manifest");

  std::string textBytes;
  if (text && !text->SerializeToString(&textBytes))
    return Status::error(path + ": cannot serialize the text section");

  // The TEXT section (when there is one) goes last, after the weights.
  const uint32_t kSections = text ? 4 : 3;
  const uint64_t tableEnd = sizeof(FileHeader) + kSections * sizeof(SectionEntry);
  SectionEntry table[4] = {};
  table[0].kind = uint32_t(SectionKind::Manifest);
  table[0].offset = alignUp(tableEnd, kAlignment);
  table[0].size = manifestBytes.size();
  table[0].checksum = checksum64(manifestBytes.data(), manifestBytes.size());
  table[1].kind = uint32_t(SectionKind::CpuCode);
  table[1].offset = alignUp(table[0].offset + table[0].size, kAlignment);
  table[1].size = cpuCode.size();
  table[1].checksum = checksum64(cpuCode.data(), cpuCode.size());
  table[2].kind = uint32_t(SectionKind::Weights);
  table[2].offset = alignUp(table[1].offset + table[1].size, kWeightsSectionAlignment);
  table[2].size = weightsSize;

  OutFile out(path, path + ".tmp");
  if (Status s = out.open(); !s)
    return s;
  // Header and table are written last (the weights checksum is computed while streaming); reserve them.
  if (Status s = out.zeros(tableEnd); !s)
    return s;
  if (Status s = out.padTo(table[0].offset); !s)
    return s;
  if (Status s = out.write(manifestBytes.data(), manifestBytes.size()); !s)
    return s;
  if (Status s = out.padTo(table[1].offset); !s)
    return s;
  if (Status s = out.write(cpuCode.data(), cpuCode.size()); !s)
    return s;
  if (Status s = out.padTo(table[2].offset); !s)
    return s;

  Xxh64 weightsHash;
  uint64_t cursor = 0; // within the weights section
  std::vector<uint8_t> scratch;
  for (const WeightBlob *w : blobs) {
    if (Status s = out.zeros(w->offset - cursor, &weightsHash); !s)
      return s;
    const uint8_t *bytes = w->data;
    if (!bytes && w->size != 0) {
      scratch.assign(size_t(w->size), 0);
      if (Status s = w->produce(scratch.data()); !s)
        return Status::error(path + ": weight '" + w->name + "': " + s.message());
      bytes = scratch.data();
    }
    weightsHash.update(bytes, size_t(w->size));
    if (Status s = out.write(bytes, size_t(w->size)); !s)
      return s;
    cursor = w->offset + w->size;
    if (!w->data)
      std::vector<uint8_t>().swap(scratch);
  }
  if (Status s = out.zeros(weightsSize - cursor, &weightsHash); !s)
    return s;
  table[2].checksum = weightsHash.digest();
  if (text) {
    table[3].kind = uint32_t(SectionKind::Text);
    table[3].offset = alignUp(table[2].offset + table[2].size, kAlignment);
    table[3].size = textBytes.size();
    table[3].checksum = checksum64(textBytes.data(), textBytes.size());
    if (Status s = out.padTo(table[3].offset); !s)
      return s;
    if (Status s = out.write(textBytes.data(), textBytes.size()); !s)
      return s;
  }

  FileHeader header = {};
  std::memcpy(header.magic, kMagic, sizeof kMagic);
  header.formatVersion = kFormatVersion;
  header.sectionCount = kSections;
  header.sectionTableOffset = sizeof(FileHeader);
  header.headerChecksum = 0;
  Xxh64 h;
  h.update(&header, sizeof header);
  h.update(table, kSections * sizeof(SectionEntry));
  header.headerChecksum = h.digest();
  if (Status s = out.rewriteAt(0, &header, sizeof header); !s)
    return s;
  if (Status s = out.write(table, kSections * sizeof(SectionEntry)); !s)
    return s;
  return out.commit();
}

} // namespace kiln::artifact
