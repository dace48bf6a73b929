//===- ArtifactReader.cpp -------------------------------------------------===//
#include "kiln/artifact/ArtifactReader.h"
#include "kiln/artifact/ArtifactWriter.h"
#include "kiln/artifact/ArtifactFormat.h"
#include "kiln/artifact/Checksum.h"
#include "kiln/artifact/CpuTargets.h"

#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <cstdlib>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::artifact {

const char *sectionName(uint32_t kind) {
  switch (static_cast<SectionKind>(kind)) {
  case SectionKind::Manifest: return "manifest";
  case SectionKind::CpuCode: return "code";
  case SectionKind::Weights: return "weights";
  case SectionKind::Text: return "text";
  }
  return "unknown";
}

namespace {
bool addOverflows(uint64_t a, uint64_t b, uint64_t *out) { return __builtin_add_overflow(a, b, out); }

Status err(const std::string &file, const std::string &what) { return Status::error(file + ": " + what); }
} // namespace

MappedArtifact::MappedArtifact(MappedArtifact &&o) noexcept { *this = std::move(o); }

MappedArtifact &MappedArtifact::operator=(MappedArtifact &&o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    mapping_ = o.mapping_;
    heap_ = o.heap_;
    fileSize_ = o.fileSize_;
    manifest_ = std::move(o.manifest_);
    text_ = std::move(o.text_);
    sections_ = std::move(o.sections_);
    cpuCode_ = o.cpuCode_;
    cpuCodeSize_ = o.cpuCodeSize_;
    weights_ = o.weights_;
    weightsSize_ = o.weightsSize_;
    checksumsVerified_ = o.checksumsVerified_;
    o.mapping_ = nullptr;
    o.fileSize_ = 0;
    o.cpuCode_ = o.weights_ = nullptr;
  }
  return *this;
}

MappedArtifact::~MappedArtifact() { release(); }

void MappedArtifact::release() {
  if (mapping_ && heap_)
    std::free(mapping_);
  else if (mapping_)
    munmap(mapping_, fileSize_);
  mapping_ = nullptr;
}

void MappedArtifact::releaseWeightPages(uint64_t begin, uint64_t end) const {
  const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  end = std::min(end, weightsSize_);
  if (heap_ || !mapping_ || !weights_ || begin >= end || page == 0)
    return;
  const uintptr_t first = (reinterpret_cast<uintptr_t>(weights_) + begin + page - 1) / page * page;
  const uintptr_t last = (reinterpret_cast<uintptr_t>(weights_) + end) / page * page;
  if (first < last) // a private, never-written file mapping: dropping the pages loses nothing
    madvise(reinterpret_cast<void *>(first), last - first, MADV_DONTNEED);
}

namespace {

// The header: magic, version, table offset and count, header checksum. Sets `tableEnd`.
Status checkHeader(const uint8_t *base, uint64_t size, const std::string &path, uint64_t &tableEnd) {
  // Magic first (even on a short file), so that any other file is "not a kiln artifact".
  if (size == 0)
    return err(path, "not a kiln artifact (empty file)");
  if (std::memcmp(base, kMagic, std::min<uint64_t>(size, sizeof(kMagic))) != 0)
    return err(path, "not a kiln artifact");
  if (size < sizeof(FileHeader))
    return err(path, "truncated: " + std::to_string(size) + " bytes, the header alone is 64");
  FileHeader header;
  std::memcpy(&header, base, sizeof header);
  const std::string otherVersion = "format version " + std::to_string(header.formatVersion) + ", this runtime reads " +
                                   std::to_string(kFormatVersion);
  // The checksum decides between a flipped header byte and another format version, when the table is there
  // to check it; without one, another version is the likelier story.
  const bool tableShape = header.sectionTableOffset == sizeof(FileHeader) && header.sectionCount > 0 &&
                          header.sectionCount <= 64 &&
                          sizeof(FileHeader) + uint64_t(header.sectionCount) * sizeof(SectionEntry) <= size;
  if (header.formatVersion != kFormatVersion && !tableShape)
    return err(path, otherVersion);
  if (header.sectionTableOffset != sizeof(FileHeader))
    return err(path, "corrupted: section table offset " + std::to_string(header.sectionTableOffset) +
                         " (expected 64)");
  if (header.sectionCount == 0 || header.sectionCount > 64)
    return err(path, "corrupted: section count " + std::to_string(header.sectionCount));
  tableEnd = sizeof(FileHeader) + uint64_t(header.sectionCount) * sizeof(SectionEntry);
  if (tableEnd > size)
    return err(path, "truncated: " + std::to_string(size) + " bytes, the section table ends at " +
                         std::to_string(tableEnd));
  FileHeader zeroed = header;
  zeroed.headerChecksum = 0;
  Xxh64 h;
  h.update(&zeroed, sizeof zeroed);
  h.update(base + sizeof(FileHeader), tableEnd - sizeof(FileHeader));
  // A version byte flipped reads as a huge version: only a plausible one is named as the other reading.
  constexpr uint32_t kPlausibleVersions = 1000;
  if (h.digest() != header.headerChecksum)
    return err(path, "corrupted: header checksum mismatch" +
                         (header.formatVersion != kFormatVersion && header.formatVersion < kPlausibleVersions
                              ? " (or a format this runtime does not read: " + otherVersion + ")"
                              : std::string()));
  if (header.formatVersion != kFormatVersion)
    return err(path, otherVersion);
  return Status::ok();
}

struct KnownSections {
  const SectionEntry *manifest = nullptr, *code = nullptr, *weights = nullptr, *text = nullptr;
};

// Every section inside the file, aligned, after the table, disjoint; at most one of each known kind.
Status locateSections(const std::vector<SectionEntry> &sections, uint64_t size, uint64_t tableEnd,
                      const std::string &path, KnownSections &known) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const SectionEntry &s : sections) {
    std::string name = sectionName(s.kind);
    const SectionEntry **slot = nullptr;
    switch (static_cast<SectionKind>(s.kind)) {
    case SectionKind::Manifest: slot = &known.manifest; break;
    case SectionKind::CpuCode: slot = &known.code; break;
    case SectionKind::Weights: slot = &known.weights; break;
    case SectionKind::Text: slot = &known.text; break;
    }
    if (slot) {
      if (*slot)
        return err(path, "corrupted: two " + name + " sections");
      *slot = &s;
    } // an unknown kind (from a newer minor writer) is bounds-checked and ignored
    uint64_t end;
    if (addOverflows(s.offset, s.size, &end) || end > size)
      return err(path, "truncated: the " + name + " section ends at " +
                           (end < s.offset ? std::string("overflow") : std::to_string(end)) + ", the file has " +
                           std::to_string(size) + " bytes");
    if (s.offset % kAlignment != 0)
      return err(path, "corrupted: the " + name + " section is not 64-byte aligned");
    if (s.offset < tableEnd)
      return err(path, "corrupted: the " + name + " section overlaps the header");
    ranges.push_back({s.offset, end});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second)
      return err(path, "corrupted: sections overlap");
  if (!known.manifest)
    return err(path, "corrupted: no manifest section");
  return Status::ok();
}

} // namespace

Status MappedArtifact::parse(bool verifyChecksums) {
  const uint8_t *base = static_cast<const uint8_t *>(mapping_);
  uint64_t tableEnd = 0;
  if (Status s = checkHeader(base, fileSize_, path_, tableEnd); !s)
    return s;
  sections_.resize(header().sectionCount);
  std::memcpy(sections_.data(), base + sizeof(FileHeader), tableEnd - sizeof(FileHeader));
  KnownSections known;
  if (Status s = locateSections(sections_, fileSize_, tableEnd, path_, known); !s)
    return s;
  if (verifyChecksums) {
    for (const SectionEntry &s : sections_)
      if (checksum64(base + s.offset, s.size) != s.checksum)
        return err(path_, std::string("corrupted: ") + sectionName(s.kind) + " section checksum mismatch");
    checksumsVerified_ = true;
  }
  if (known.manifest->size > uint64_t(INT_MAX))
    return err(path_, "corrupted: manifest section too large");
  manifest_ = std::make_unique<Manifest>();
  {
    // The parser logs what it rejects (e.g. a string that is not UTF-8) to stderr; the one-line error below
    // says it instead.
    google::protobuf::LogSilencer quiet;
    if (!manifest_->ParseFromArray(base + known.manifest->offset, int(known.manifest->size)))
      return err(path_, "corrupted: the manifest does not parse");
  }
  if (known.code) {
    cpuCode_ = base + known.code->offset;
    cpuCodeSize_ = known.code->size;
  }
  if (known.weights) {
    weights_ = base + known.weights->offset;
    weightsSize_ = known.weights->size;
  }
  if (Status s = validateManifest(*manifest_, weightsSize_, path_); !s)
    return s;
  if (Status s = validateCpuObjects(*manifest_, cpuCodeSize_, path_); !s)
    return s;
  if (!known.text)
    return Status::ok();
  if (known.text->size > uint64_t(INT_MAX))
    return err(path_, "corrupted: text section too large");
  text_ = std::make_unique<TextSection>();
  {
    google::protobuf::LogSilencer quiet;
    if (!text_->ParseFromArray(base + known.text->offset, int(known.text->size)))
      return err(path_, "corrupted: the text section does not parse");
  }
  return validateTextSection(*text_, *manifest_, path_);
}

Status validateTextSection(const TextSection &text, const Manifest &manifest, const std::string &file) {
  auto bad = [&](const std::string &what) { return err(file, "text section: " + what); };
  constexpr uint64_t kMaxTextBytes = uint64_t(256) << 20;
  if (text.tokenizer_json().empty())
    return bad("no tokenizer.json");
  const uint64_t total = text.tokenizer_json().size() + text.tokenizer_config_json().size() +
                         text.special_tokens_map_json().size() + text.generation_config_json().size() +
                         text.chat_template().size();
  if (total > kMaxTextBytes)
    return bad("the tokenizer files hold " + std::to_string(total) + " bytes, more than 256 MiB");
  for (uint32_t id : text.eos_token_ids())
    if (int64_t(id) >= manifest.vocab_size())
      return bad("eos token id " + std::to_string(id) + " is outside the vocabulary of " +
                 std::to_string(manifest.vocab_size()));
  if (!text.has_pooling())
    return Status::ok();
  const Pooling &p = text.pooling();
  if (manifest.task() != "encoder")
    return bad("pooling for a " + manifest.task() + " model (only encoders pool)");
  if (p.mode() <= Pooling::MODE_UNSPECIFIED || p.mode() > Pooling::MEAN_SQRT_LEN)
    return bad("unknown pooling mode " + std::to_string(int(p.mode())));
  if (p.max_seq_length() < 0)
    return bad("max_seq_length " + std::to_string(p.max_seq_length()) + " < 0");
  for (const auto &[name, prefix] : p.prompts())
    if (name.empty())
      return bad("a prompt with an empty name");
  if (!p.default_prompt_name().empty() && !p.prompts().count(p.default_prompt_name()))
    return bad("default prompt '" + p.default_prompt_name() + "' is not among the prompts");
  return Status::ok();
}

StatusOr<MappedArtifact> openArtifact(const std::string &path, bool verifyChecksums) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return err(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return err(path, std::string("cannot stat: ") + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return err(path, "not a regular file");
  }
  const uint64_t size = uint64_t(st.st_size);
  if (size == 0) {
    ::close(fd);
    return err(path, "not a kiln artifact (empty file)");
  }
  void *map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int mapErrno = errno;
  ::close(fd);
  if (map == MAP_FAILED)
    return err(path, std::string("cannot mmap: ") + std::strerror(mapErrno));
  MappedArtifact a;
  a.path_ = path;
  a.mapping_ = map;
  a.fileSize_ = size;
  if (Status s = a.parse(verifyChecksums); !s)
    return s;
  return a;
}

StatusOr<MappedArtifact> openArtifactBuffer(const std::string &name, const uint8_t *data, size_t size,
                                            bool verifyChecksums) {
  MappedArtifact a;
  a.path_ = name;
  // 64-byte aligned like a mapping, so that weights keep their alignment.
  if (posix_memalign(&a.mapping_, kAlignment, std::max<size_t>(size, 1)) != 0) {
    a.mapping_ = nullptr;
    return err(name, "out of memory for " + std::to_string(size) + " bytes");
  }
  a.heap_ = true;
  a.fileSize_ = size;
  if (size)
    std::memcpy(a.mapping_, data, size);
  if (Status s = a.parse(verifyChecksums); !s)
    return s;
  return a;
}

} // namespace kiln::artifact
