//===- Inspect.cpp - `kiln inspect MODEL.kiln` ----------------------------===//
//
// A readable dump of an artifact: provenance, model and limits, ports, KV-cache layout, the partition
// (per-device counts, CPU-placed ops with their reasons, transfers), kernels by op, the dispatch list, the
// buffer table, the memory-plan summary (both arenas), the sections with their checksums and the compile
// report (every stage's lines, as kiln compile printed them), and the text side (tokenizer, EOS ids, chat
// template, pooling) when the artifact carries it.
// Needs only kiln_artifact (builds without the compiler). A bad file: exit 1 with one line.
//
//===----------------------------------------------------------------------===//
#include "Cli.h"
#include "Subcommands.h"

#include "kiln/artifact/ArtifactFormat.h"
#include "kiln/artifact/ArtifactReader.h"
#include "kiln/artifact/ArtifactWriter.h"
#include "kiln/target/DeviceProfile.h"
#include "kiln/tokenizer/Tokenizer.h"
#include "kiln_artifact.pb.h"

#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include <cinttypes>
#include <cstring>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace kiln::cli {
namespace {

using namespace kiln::artifact;

/// kiln-split-weights' lines: each weight split into row chunks and each use that kept a weight whole
/// (the compile report's split-weights stage; "partitioning: " notes in artifacts from before it).
std::vector<std::string> splitWeightLines(const Manifest &m) {
  std::vector<std::string> lines;
  auto add = [&](const std::string &line) {
    for (const char *prefix : {"split ", "not split: ", "kept whole: "})
      if (line.rfind(prefix, 0) == 0)
        lines.push_back(line);
  };
  for (const ReportStage &stage : m.compile_report())
    if (stage.stage() == "split-weights")
      for (const std::string &line : stage.lines())
        add(line);
  const std::string legacy = "partitioning: ";
  for (const std::string &n : m.notes())
    if (n.rfind(legacy, 0) == 0)
      add(n.substr(legacy.size()));
  return lines;
}

/// The compile report as kiln compile printed it, by stage with its time, with --report's details.
void printCompileReport(const Manifest &m, std::FILE *o) {
  if (m.compile_report_size() > 0) {
    std::fprintf(o, "\ncompile report\n");
    for (const ReportStage &stage : m.compile_report()) {
      std::fprintf(o, "  %-14s %.3f s\n", stage.stage().c_str(), stage.seconds());
      for (const std::string &line : stage.lines())
        std::fprintf(o, "    %s\n", line.c_str());
      for (const std::string &line : stage.details())
        std::fprintf(o, "    %s\n", line.c_str());
    }
  }
  if (m.notes_size() > 0) { // artifacts from before compile_report
    std::fprintf(o, "\nnotes\n");
    for (const std::string &n : m.notes())
      std::fprintf(o, "  %s\n", n.c_str());
  }
}

std::string dimText(const Dim &d) {
  std::string s;
  for (const Dim::Term &t : d.terms()) {
    if (!s.empty())
      s += " + ";
    if (t.coeff() != 1)
      s += std::to_string(t.coeff()) + "*";
    s += t.symbol();
  }
  if (d.constant() != 0 || s.empty())
    s += (s.empty() ? "" : " + ") + std::to_string(d.constant());
  return s;
}

std::string shapeText(const Buffer &b) {
  std::string s = "[";
  for (int i = 0; i < b.shape_size(); ++i)
    s += (i ? ", " : "") + dimText(b.shape(i));
  return s + "]";
}

std::string typeText(const Buffer &b) { return std::string(dtypeShortName(b.dtype())) + " " + shapeText(b); }

const char *kindText(Buffer::Kind k) {
  switch (k) {
  case Buffer::ARENA: return "ARENA";
  case Buffer::WEIGHT: return "WEIGHT";
  case Buffer::INPUT: return "INPUT";
  case Buffer::KV_CACHE: return "KV_CACHE";
  default: return "?";
  }
}

std::string bytesText(uint64_t n) {
  char buf[64];
  if (n >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%" PRIu64 " bytes (%.2f GiB)", n, double(n) / double(1ull << 30));
  else if (n >= (1ull << 20))
    std::snprintf(buf, sizeof buf, "%" PRIu64 " bytes (%.2f MiB)", n, double(n) / double(1ull << 20));
  else if (n >= 1024)
    std::snprintf(buf, sizeof buf, "%" PRIu64 " bytes (%.1f KiB)", n, double(n) / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%" PRIu64 " bytes", n);
  return buf;
}

const char *locationText(const Buffer &b) { return b.location() == Buffer::DEVICE ? "DEVICE" : "HOST"; }

/// The name of the artifact's device profile ("?" when it has none; the reader's message when unreadable).
std::string profileName(const std::string &json) {
  if (json.empty())
    return "?";
  StatusOr<target::DeviceProfile> p = target::parseDeviceProfile(json, "device_profile_json");
  return p.ok() ? p->name : "? (" + p.status().message() + ")";
}

std::string padRight(std::string s, size_t width) {
  if (s.size() < width)
    s.append(width - s.size(), ' ');
  return s;
}

/// The header line, provenance, model facts and limits, the ports.
void printModel(const std::string &path, const MappedArtifact &a, FILE *o) {
  const Manifest &m = a.manifest();
  std::fprintf(o, "%s: kiln artifact, format version %u, %s\n", path.c_str(), a.header().formatVersion,
               bytesText(a.fileSize()).c_str());

  const Provenance &p = m.provenance();
  std::string command;
  for (const std::string &f : p.flags())
    command += (command.empty() ? "" : " ") + f;
  std::fprintf(o, "\nprovenance\n");
  std::fprintf(o, "  compiler      kiln %s (git %s)\n", p.compiler_version().c_str(), p.git_revision().c_str());
  std::fprintf(o, "  created       %s\n", p.created_utc().c_str());
  std::fprintf(o, "  target        %s\n", p.target().c_str());
  std::fprintf(o, "  model         %s\n", p.model_dir().c_str());
  std::fprintf(o, "  command       %s\n", command.c_str());

  std::fprintf(o, "\nmodel\n");
  std::fprintf(o, "  architecture  %s\n", m.architecture().c_str());
  std::fprintf(o, "  task          %s\n", m.task().c_str());
  std::fprintf(o, "  vocab size    %" PRId64 "\n", m.vocab_size());
  std::fprintf(o, "  hidden size   %" PRId64 "\n", m.hidden_size());
  std::string symbols;
  for (const Symbol &s : m.symbols())
    symbols += (symbols.empty() ? "" : ", ") + s.name() + " <= " + std::to_string(s.max_value());
  std::fprintf(o, "  symbols       %s\n", symbols.empty() ? "(none)" : symbols.c_str());
  std::fprintf(o, "  max context   %" PRId64 " (p + s)\n", m.max_context());
  std::fprintf(o, "  max batch     %" PRId64 "\n", m.max_batch());
  if (m.num_threads_default() > 0)
    std::fprintf(o, "  threads       %" PRId64 "\n", m.num_threads_default());
  else
    std::fprintf(o, "  threads       runtime default\n");

  auto printPorts = [&](const char *title, const google::protobuf::RepeatedPtrField<Port> &ports) {
    std::fprintf(o, "\n%s\n", title);
    size_t w = 0;
    for (const Port &port : ports)
      w = std::max(w, port.name().size());
    for (const Port &port : ports) {
      const Buffer &b = m.buffers(port.buffer());
      std::fprintf(o, "  %s %s  (buffer %d, %s)\n", padRight(port.name(), w).c_str(),
                   padRight(typeText(b), 24).c_str(), port.buffer(), kindText(b.kind()));
    }
  };
  printPorts("inputs", m.inputs());
  printPorts("outputs", m.outputs());
}

/// The KV-cache entries and their layout; returns the cache's bytes per session at max context.
uint64_t printKvCache(const Manifest &m, FILE *o) {
  uint64_t kvBytes = 0;
  if (m.kv_cache_size() > 0) {
    std::fprintf(o, "\nkv cache (%d entries; past = p tokens in, present = p + s tokens out)\n", m.kv_cache_size());
    int inPlace = 0;
    for (const KvCacheEntry &e : m.kv_cache()) {
      const Buffer &past = m.buffers(e.past_buffer()), &present = m.buffers(e.present_buffer());
      kvBytes += (e.in_place() ? 1 : 2) * present.max_bytes();
      inPlace += e.in_place();
      std::fprintf(o, "  %-10s past buffer %d %s -> present buffer %d %s, seq axis %d, max %s\n",
                   e.name().c_str(), e.past_buffer(), typeText(past).c_str(), e.present_buffer(),
                   shapeText(present).c_str(), e.seq_axis(), bytesText(present.max_bytes()).c_str());
      if (!e.in_place()) {
        std::fprintf(o, "             two buffers, copied forward each step (%s)\n", e.reason().c_str());
        continue;
      }
      std::string append = e.append_buffer() >= 0 && e.append_buffer() < m.buffers_size()
                               ? e.producer() + " writes rows [p, p + s) directly (buffer " +
                                     std::to_string(e.append_buffer()) + ")"
                               : std::string("the append dispatch copies rows [p, p + s)");
      std::fprintf(o, "             in place: one buffer, capacity %" PRId64 " rows (row stride fixed), present aliases "
                   "past; %s\n", e.capacity(), append.c_str());
    }
    std::fprintf(o, "  %d of %d entries in place\n", inPlace, m.kv_cache_size());
  }
  return kvBytes;
}

/// Vulkan artifacts: ops per device, split weights, CPU-placed ops with their reasons, the transfers.
void printPartition(const Manifest &m, FILE *o) {
  int numTransfers = 0;
  uint64_t transferBytes = 0;
  for (const Dispatch &d : m.dispatches())
    if (d.kind() == Dispatch::TRANSFER) {
      ++numTransfers;
      if (d.buffers_size() == 2 && d.buffers(0) >= 0 && d.buffers(0) < m.buffers_size())
        transferBytes += m.buffers(d.buffers(0)).max_bytes();
    }
  if (m.partition_size() > 0 || !m.device_profile_json().empty()) {
    std::map<std::string, int> perDevice;
    for (const PartitionEntry &e : m.partition())
      ++perDevice[e.device()];
    std::string counts;
    for (const auto &[device, n] : perDevice)
      counts += (counts.empty() ? "" : ", ") + std::to_string(n) + " on " + device;
    std::fprintf(o, "\npartition (profile %s)\n", profileName(m.device_profile_json()).c_str());
    std::fprintf(o, "  ops           %s\n", counts.empty() ? "(none)" : counts.c_str());
    std::fprintf(o, "  transfers     %d (%s at max context)\n", numTransfers, bytesText(transferBytes).c_str());
    // CPU-placed ops grouped by (op, reason), in order of first appearance.
    std::vector<std::pair<std::string, std::string>> order;
    std::map<std::pair<std::string, std::string>, std::vector<std::string>> groups;
    for (const PartitionEntry &e : m.partition()) {
      if (e.device() != "cpu")
        continue;
      auto key = std::make_pair(e.op(), e.reason());
      if (!groups.count(key))
        order.push_back(key);
      groups[key].push_back(e.location().empty() ? "?" : e.location());
    }
    // Weights split into row chunks for the device (kiln-split-weights), and what kept a weight whole.
    std::vector<std::string> split = splitWeightLines(m);
    if (!split.empty())
      std::fprintf(o, "  split weights\n");
    for (const std::string &line : split)
      std::fprintf(o, "    %s\n", line.c_str());
    if (!order.empty())
      std::fprintf(o, "  on the cpu\n");
    for (const auto &key : order) {
      const std::vector<std::string> &locs = groups[key];
      std::string list;
      for (const std::string &l : locs)
        list += (list.empty() ? "" : ", ") + l;
      std::fprintf(o, "    %s x %zu: %s\n      at %s\n", key.first.c_str(), locs.size(), key.second.c_str(),
                   list.c_str());
    }
    if (numTransfers > 0) {
      std::fprintf(o, "  transfer list\n");
      for (int i = 0; i < m.dispatches_size(); ++i) {
        const Dispatch &d = m.dispatches(i);
        if (d.kind() != Dispatch::TRANSFER || d.buffers_size() != 2)
          continue;
        const Buffer &from = m.buffers(d.buffers(0)), &to = m.buffers(d.buffers(1));
        std::fprintf(o, "    #%-5d %s %s -> %s %s (%s)\n", i, from.name().c_str(), locationText(from),
                     to.name().c_str(), locationText(to), bytesText(from.max_bytes()).c_str());
      }
    }
  }
}

/// Distinct kernels by op, then every dispatch with its buffers.
void printKernels(const Manifest &m, FILE *o) {
  int numTransfers = 0;
  for (const Dispatch &d : m.dispatches())
    numTransfers += d.kind() == Dispatch::TRANSFER;
  // Kernels: distinct kernels and dispatches, by op.
  std::map<std::string, std::pair<int, int>> byOp; // op -> (kernels, dispatches)
  for (const Kernel &k : m.kernels())
    ++byOp[k.op()].first;
  for (const Dispatch &d : m.dispatches())
    if (d.kind() != Dispatch::TRANSFER && d.kernel() >= 0 && d.kernel() < m.kernels_size())
      ++byOp[m.kernels(d.kernel()).op()].second;
  std::fprintf(o, "\nkernels (%d distinct, %d dispatches)\n", m.kernels_size(), m.dispatches_size() - numTransfers);
  std::fprintf(o, "  %-22s %8s %11s\n", "op", "kernels", "dispatches");
  for (const auto &[op, counts] : byOp)
    std::fprintf(o, "  %-22s %8d %11d\n", op.c_str(), counts.first, counts.second);

  std::fprintf(o, "\ndispatches\n");
  std::fprintf(o, "  %5s  %-18s %-6s %-40s %s\n", "#", "op", "device", "location", "buffers (operands -> result)");
  for (int i = 0; i < m.dispatches_size(); ++i) {
    const Dispatch &d = m.dispatches(i);
    std::string buffers;
    const bool transfer = d.kind() == Dispatch::TRANSFER;
    std::string op = transfer ? "transfer"
                     : d.kernel() >= 0 && d.kernel() < m.kernels_size() ? m.kernels(d.kernel()).op()
                                                                      : "?";
    const int firstResult = d.buffers_size() - (transfer ? 1 : std::max(d.num_results(), 1));
    for (int k = 0; k < d.buffers_size(); ++k) {
      if (k == firstResult)
        buffers += (k ? " -> " : "-> ");
      else if (k)
        buffers += ", ";
      buffers += std::to_string(d.buffers(k));
    }
    std::fprintf(o, "  %5d  %-18s %-6s %-40s %s\n", i, op.c_str(),
                 d.device().empty() ? "cpu" : d.device().c_str(),
                 (d.location().empty() ? "-" : d.location()).c_str(), buffers.c_str());
  }
}

/// The CPU_CODE section's kernel objects: target, size and recorded features, in the order the runtime tries them.
void printCpuObjects(const MappedArtifact &a, FILE *o) {
  const Manifest &m = a.manifest();
  if (m.cpu_objects_size() == 0) {
    if (a.cpuCodeSize() > 0)
      std::fprintf(o, "\ncpu kernel objects\n  one (%s), target not recorded: loaded without a CPU check\n",
                   bytesText(a.cpuCodeSize()).c_str());
    return;
  }
  std::fprintf(o, "\ncpu kernel objects (%d; the runtime loads the first whose features the CPU has)\n",
               m.cpu_objects_size());
  for (int i = 0; i < m.cpu_objects_size(); ++i) {
    const CpuObject &c = m.cpu_objects(i);
    std::string features;
    for (const std::string &f : c.features())
      features += (features.empty() ? "" : " ") + f;
    std::fprintf(o, "  %d  %-16s %s\n     %d features: %s\n", i, c.cpu().c_str(), bytesText(c.size()).c_str(),
                 c.features_size(), features.empty() ? "(none)" : features.c_str());
  }
}

/// The buffer table and the memory plan (both arenas, weights, KV cache).
void printBuffers(const MappedArtifact &a, uint64_t kvBytes, FILE *o) {
  const Manifest &m = a.manifest();
  std::fprintf(o, "\nbuffers\n");
  std::fprintf(o, "  %5s  %-8s %-6s %-5s %-24s %12s %12s  %s\n", "id", "kind", "where", "dtype", "shape", "offset",
               "max bytes", "name");
  uint64_t intermediates = 0, weightBytes = 0;
  int numArena = 0, numWeights = 0;
  std::set<uint64_t> weightOffsets;
  for (const Buffer &b : m.buffers()) {
    bool placed = b.kind() == Buffer::ARENA || b.kind() == Buffer::WEIGHT;
    std::fprintf(o, "  %5d  %-8s %-6s %-5s %-24s %12s %12" PRIu64 "  %s\n", b.id(), kindText(b.kind()), locationText(b),
                 dtypeShortName(b.dtype()), shapeText(b).c_str(),
                 placed ? std::to_string(b.offset()).c_str() : "-", b.max_bytes(),
                 (b.name() + (b.weight_row_end() > 0 ? " [rows " + std::to_string(b.weight_row_begin()) + ":" +
                                                          std::to_string(b.weight_row_end()) + "]"
                                                    : std::string()))
                     .c_str());
    if (!b.weight_layout().empty()) // q8_0 / q4_0 (support/Quantize.h)
      std::fprintf(o, "  %5s  %s, layout %s (blocks of 32 along the last dim, one f16 scale each)\n", "",
                   dtypeShortName(b.dtype()), b.weight_layout().c_str());
    if (b.row_capacity() > 0 && b.kv_entry() >= 0 && b.kv_entry() < m.kv_cache_size())
      std::fprintf(o, "  %5s  view of kv cache '%s' from row %s, rows %" PRId64 " apart (capacity)\n", "",
                   m.kv_cache(b.kv_entry()).name().c_str(), dimText(b.row_offset()).c_str(), b.row_capacity());
    if (b.kind() == Buffer::ARENA) {
      intermediates += b.max_bytes();
      ++numArena;
    } else if (b.kind() == Buffer::WEIGHT && weightOffsets.insert(b.offset()).second) {
      weightBytes += b.max_bytes(); // a device copy of a weight shares its bytes (same offset)
      ++numWeights;
    }
  }

  std::fprintf(o, "\nmemory plan (at max context %" PRId64 ", batch %" PRId64 ")\n", m.max_context(), m.max_batch());
  std::fprintf(o, "  arena         %s for %d buffers of %s", bytesText(m.arena_bytes()).c_str(),
               numArena, bytesText(intermediates).c_str());
  if (m.arena_bytes() + m.device_arena_bytes() > 0)
    std::fprintf(o, " (reuse %.1fx)", double(intermediates) / double(m.arena_bytes() + m.device_arena_bytes()));
  if (m.device_arena_bytes() > 0 || m.partition_size() > 0)
    std::fprintf(o, "\n  device arena  %s (DEVICE ARENA buffers; arena above: HOST ARENA buffers)",
                 bytesText(m.device_arena_bytes()).c_str());
  std::fprintf(o, "\n  weights       %s in %d buffers (section %s)\n", bytesText(weightBytes).c_str(),
               numWeights, bytesText(a.weightsSize()).c_str());
  if (m.synthetic_weights()) {
    int stored = 0;
    for (const Buffer &b : m.buffers())
      stored += b.kind() == Buffer::WEIGHT && !b.synthetic();
    std::fprintf(o, "  weights: synthetic (seed %" PRIu64 "), not stored; generated at load into %s "
                 "(%d constant buffers stored)\n",
                 uint64_t(m.synthetic_weights_seed()), bytesText(weightsSectionSize(m)).c_str(), stored);
  }
  if (m.kv_cache_size() > 0)
    std::fprintf(o, "  kv cache      %s per session (at max context: one buffer per in-place entry, two otherwise)\n",
                 bytesText(kvBytes).c_str());
}

void printSections(const MappedArtifact &a, FILE *o) {
  std::fprintf(o, "\nsections (%s)\n", a.checksumsVerified() ? "checksums verified" : "checksums not verified");
  std::fprintf(o, "  header        64 bytes + %zu section entries, checksum 0x%016" PRIx64 "\n", a.sections().size(),
               a.header().headerChecksum);
  for (const SectionEntry &s : a.sections())
    std::fprintf(o, "  %-12s  offset %10" PRIu64 "  size %s  xxh64 0x%016" PRIx64 "\n", sectionName(s.kind), s.offset,
                 padRight(bytesText(s.size), 24).c_str(), s.checksum);
}

const char *poolingModeName(Pooling::Mode mode) {
  switch (mode) {
  case Pooling::MEAN: return "mean";
  case Pooling::CLS: return "cls";
  case Pooling::MAX: return "max";
  case Pooling::LAST: return "last";
  case Pooling::MEAN_SQRT_LEN: return "mean_sqrt_len";
  default: return "none";
  }
}

/// The TEXT section in brief: the tokenizer (loaded, as the runtime would), EOS ids, template, pooling; null
/// when the artifact has none. A tokenizer that does not load is shown with its error.
nlohmann::json textSummary(const MappedArtifact &a) {
  const TextSection *t = a.text();
  if (!t)
    return nullptr;
  nlohmann::json j;
  tokenizer::TokenizerFiles files{t->tokenizer_json(), t->tokenizer_config_json(), t->special_tokens_map_json(),
                                  t->generation_config_json()};
  StatusOr<tokenizer::Tokenizer> tok = tokenizer::Tokenizer::fromJson(files);
  if (tok.ok()) {
    j["tokenizer"] = tok->modelType();
    j["vocab_size"] = tok->vocabSize();
    const tokenizer::TextConfig &c = tok->config();
    j["bos_token"] = c.bos ? nlohmann::json(c.bos->content) : nlohmann::json(nullptr);
    j["eos_token"] = c.eos ? nlohmann::json(c.eos->content) : nlohmann::json(nullptr);
  } else {
    j["tokenizer_error"] = tok.status().message();
  }
  j["eos_token_ids"] = std::vector<uint32_t>(t->eos_token_ids().begin(), t->eos_token_ids().end());
  j["chat_template_bytes"] = t->chat_template().size();
  j["tokenizer_json_bytes"] = t->tokenizer_json().size();
  if (t->has_pooling()) {
    const Pooling &p = t->pooling();
    nlohmann::json prompts = nlohmann::json::object();
    for (const auto &[name, prefix] : p.prompts())
      prompts[name] = prefix;
    j["pooling"] = {{"mode", poolingModeName(p.mode())},  {"normalize", p.normalize()},
                    {"include_prompt", p.include_prompt()}, {"prompts", prompts},
                    {"default_prompt_name", p.default_prompt_name()}, {"max_seq_length", p.max_seq_length()}};
  }
  return j;
}

void printText(const MappedArtifact &a, FILE *o) {
  nlohmann::json j = textSummary(a);
  std::fprintf(o, "\ntext\n");
  if (j.is_null()) {
    std::fprintf(o, "  no tokenizer: ids only\n");
    return;
  }
  auto dump = [](const nlohmann::json &v) { return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); };
  if (j.contains("tokenizer_error"))
    std::fprintf(o, "  tokenizer     does not load: %s\n", j["tokenizer_error"].get<std::string>().c_str());
  else
    std::fprintf(o, "  tokenizer     %s, vocab %s, bos %s, eos %s\n", j["tokenizer"].get<std::string>().c_str(),
                 dump(j["vocab_size"]).c_str(), dump(j["bos_token"]).c_str(), dump(j["eos_token"]).c_str());
  std::fprintf(o, "  stop at ids   %s\n", dump(j["eos_token_ids"]).c_str());
  const uint64_t templateBytes = j["chat_template_bytes"].get<uint64_t>();
  std::fprintf(o, "  chat template %s\n", templateBytes ? bytesText(templateBytes).c_str() : "none");
  if (!j.contains("pooling")) {
    std::fprintf(o, "  pooling       none\n");
    return;
  }
  const nlohmann::json &p = j["pooling"];
  std::fprintf(o, "  pooling       %s%s%s, max_seq_length %s, prompts %s%s\n", p["mode"].get<std::string>().c_str(),
               p["normalize"].get<bool>() ? " + normalize" : "", p["include_prompt"].get<bool>() ? "" : ", prompt excluded",
               dump(p["max_seq_length"]).c_str(), dump(p["prompts"]).c_str(),
               p["default_prompt_name"].get<std::string>().empty()
                   ? ""
                   : (" (default " + p["default_prompt_name"].get<std::string>() + ")").c_str());
}

/// --json: one document for scripts: the file (format version, size, sections, checksums) and the whole
/// manifest in protobuf's JSON mapping (proto field names; 64-bit integers as strings, as that mapping
/// has them); each kernel's SPIR-V as its size ("spirv_bytes") instead of base64 text.
int printJson(const std::string &path, const MappedArtifact &a) {
  Manifest manifest = a.manifest();
  std::vector<size_t> spirvBytes;
  for (Kernel &k : *manifest.mutable_kernels()) {
    spirvBytes.push_back(k.spirv().size());
    k.clear_spirv();
  }
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(manifest, &text, options).ok())
    return fail(kExitBadInput, path + ": the manifest has no JSON form");
  nlohmann::json m = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded())
    return fail(kExitBadInput, path + ": the manifest has no JSON form");
  for (size_t i = 0; i < spirvBytes.size(); ++i) {
    m["kernels"][i].erase("spirv");
    m["kernels"][i]["spirv_bytes"] = spirvBytes[i];
  }
  nlohmann::json sections = nlohmann::json::array();
  char checksum[24];
  for (const SectionEntry &e : a.sections()) {
    std::snprintf(checksum, sizeof checksum, "0x%016" PRIx64, e.checksum);
    sections.push_back({{"kind", sectionName(e.kind)}, {"offset", e.offset}, {"size", e.size}, {"xxh64", checksum}});
  }
  nlohmann::json doc = {{"path", path},
                        {"format_version", a.header().formatVersion},
                        {"file_bytes", a.fileSize()},
                        {"checksums_verified", a.checksumsVerified()},
                        {"sections", sections},
                        {"text", textSummary(a)},
                        {"manifest", m}};
  std::printf("%s\n", doc.dump(2).c_str());
  return kExitOk;
}

} // namespace

int runInspect(int argc, char **argv) {
  std::optional<Args> parsed;
  if (std::optional<int> done = parseArgs(argc, argv, "inspect", parsed))
    return *done;
  const Args &args = *parsed;
  const std::string usage = usageLine(*findCommand("inspect"));
  if (args.positional().size() != 1)
    return fail(kExitUsage, usage);
  const std::string path = args.positional()[0];
  StatusOr<MappedArtifact> opened = openArtifact(path, /*verifyChecksums=*/!args.has("--no-verify"));
  if (!opened.ok())
    return fail(kExitBadInput, opened.status().message());
  const MappedArtifact &a = *opened;
  const Manifest &m = a.manifest();
  if (args.has("--json"))
    return printJson(path, a);
  FILE *o = stdout;

  printModel(path, a, o);
  const uint64_t kvBytes = printKvCache(m, o);
  printPartition(m, o);
  printKernels(m, o);
  printCpuObjects(a, o);
  printBuffers(a, kvBytes, o);
  printSections(a, o);
  printText(a, o);
  printCompileReport(m, o);
  return kExitOk;
}

} // namespace kiln::cli
