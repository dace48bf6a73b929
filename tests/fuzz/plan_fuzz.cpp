// libFuzzer target: an artifact (or a manifest wrapped into one, PlanFuzzInput.h) through the reader's
// validation and the runtime's LoadedPlan. Every rejection is one line naming the artifact; an accepted plan
// holds only in-range indices and every symbolic size evaluates without overflow at the symbols' max values
// (UBSan aborts on a signed overflow).
#include "PlanFuzzInput.h"

#include "LoadedPlan.h"
#include "kiln/artifact/ArtifactReader.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

using kiln::runtime::LoadedPlan;

void expectOneLine(const std::string &message) {
  const std::string prefix = std::string(kiln::fuzz::kPlanFuzzName) + ": ";
  if (message.size() <= prefix.size() || message.compare(0, prefix.size(), prefix) != 0 ||
      message.find('\n') != std::string::npos) {
    std::fprintf(stderr, "not one line naming %s: [%s]\n", kiln::fuzz::kPlanFuzzName, message.c_str());
    std::abort();
  }
}

void check(bool ok) {
  if (!ok)
    std::abort();
}

// Buffers: ids, shapes and views; KV entries point back at their buffers.
void checkBuffers(const LoadedPlan &p, const int64_t *atMax) {
  volatile uint64_t sink = 0;
  for (size_t i = 0; i < p.buffers.size(); ++i) {
    const kiln::runtime::PlanBuffer &b = p.buffers[i];
    check(b.id == int(i) && b.elemBytes > 0);
    sink = sink + b.bytesAt(atMax) + uint64_t(b.rowOffset.eval(atMax));
    check(b.kvEntry < int(p.kv.size()) && (b.kind == kiln::artifact::Buffer::KV_CACHE) == (b.kvEntry >= 0));
    if (b.rowCapacity > 0)
      check(b.shape.size() == 4 && p.kv[size_t(b.kvEntry)].inPlace);
  }
  for (size_t e = 0; e < p.kv.size(); ++e)
    for (int id : {p.kv[e].past, p.kv[e].present, p.kv[e].append})
      check(id == -1 || (id >= 0 && size_t(id) < p.buffers.size() && p.buffers[size_t(id)].kvEntry == int(e)));
}

// Dispatches, segments and ports: every index in range, the segments tile the dispatches.
void checkDispatches(const LoadedPlan &p, const int64_t *atMax) {
  volatile int64_t sink = 0;
  for (const kiln::runtime::PlanKernel &k : p.kernels) {
    check(k.spirv != nullptr);
    for (const kiln::runtime::SymbolicDim &g : k.globalSize)
      sink = sink + g.eval(atMax);
  }
  for (const kiln::runtime::PlanDispatch &d : p.dispatches) {
    check(d.executor >= 0 && size_t(d.executor) < p.executors.size());
    check(d.transfer || (d.kernel >= 0 && size_t(d.kernel) < p.kernels.size()));
    check(d.numBuffers > 0 && d.numResults >= 1 && uint32_t(d.numResults) <= d.numBuffers);
    check(uint64_t(d.firstBuffer) + d.numBuffers <= p.dispatchBuffers.size());
    for (uint32_t j = 0; j < d.numBuffers; ++j)
      check(p.buffersOf(d)[j] >= 0 && size_t(p.buffersOf(d)[j]) < p.buffers.size());
  }
  int next = 0;
  for (const kiln::runtime::PlanSegment &s : p.segments) {
    check(s.begin == next && s.end > s.begin);
    for (int d = s.begin; d < s.end; ++d)
      check(p.dispatches[size_t(d)].executor == s.executor);
    next = s.end;
  }
  check(size_t(next) == p.dispatches.size());
  check(p.inputIds >= 0 && size_t(p.inputIds) < p.buffers.size());
  check(!p.outputBuffers.empty() && p.outputBuffers.size() == p.outputNames.size());
  for (int id : p.outputBuffers)
    check(id >= 0 && size_t(id) < p.buffers.size());
  check(p.vocabSize > 0 && p.hiddenSize > 0 && p.maxContext > 0 && p.maxBatch > 0);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::vector<uint8_t> bytes = kiln::fuzz::planFuzzArtifact(data, size);
  const bool fileMode = kiln::fuzz::planFuzzFileMode(data, size);
  auto opened = kiln::artifact::openArtifactBuffer(kiln::fuzz::kPlanFuzzName, bytes.data(), bytes.size(),
                                                   /*verifyChecksums=*/!fileMode);
  if (fileMode) { // the checksum path too (it may refuse what the unverified open accepted)
    auto verified = kiln::artifact::openArtifactBuffer(kiln::fuzz::kPlanFuzzName, bytes.data(), bytes.size(), true);
    if (!verified.ok())
      expectOneLine(verified.status().message());
  }
  if (!opened.ok()) {
    expectOneLine(opened.status().message());
    return 0;
  }
  auto plan = kiln::runtime::buildLoadedPlan(opened->manifest(), kiln::fuzz::kPlanFuzzName, "vulkan");
  if (!plan.ok()) {
    expectOneLine(plan.status().message());
    return 0;
  }
  checkBuffers(*plan, plan->symbolMax.data());
  checkDispatches(*plan, plan->symbolMax.data());
  return 0;
}
