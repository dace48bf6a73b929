// libFuzzer target: an artifact (or a manifest wrapped into one, PlanFuzzInput.h) through the reader's
// validation and the runtime's LoadedPlan. Every rejection is one line naming the artifact; an accepted plan
// holds only in-range indices and every symbolic size evaluates without overflow at the symbols' max values
// (UBSan aborts on a signed overflow).
// Byte mutations of a protobuf mostly make it unparseable, so a custom mutator also edits manifests field by
// field through protobuf reflection (ids to neighbours and extremes, names to the ones the runtime knows,
// repeated fields shortened, duplicated and reordered).
#include "PlanFuzzInput.h"

#include "LoadedPlan.h"
#include "kiln/artifact/ArtifactReader.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
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
  volatile uint64_t sink = 0; // unsigned: the sum itself may wrap; each eval must not overflow
  for (const kiln::runtime::PlanKernel &k : p.kernels) {
    check(k.spirv != nullptr);
    for (const kiln::runtime::SymbolicDim &g : k.globalSize)
      sink = sink + uint64_t(g.eval(atMax));
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

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// One field of one (sub)message: a place the mutator may change.
struct Slot {
  Message *message;
  const FieldDescriptor *field;
};

void collectSlots(Message &m, std::vector<Slot> &slots) {
  const Reflection *r = m.GetReflection();
  const google::protobuf::Descriptor *d = m.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor *f = d->field(i);
    slots.push_back({&m, f});
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE)
      continue;
    if (f->is_repeated()) {
      for (int j = 0; j < r->FieldSize(m, f); ++j)
        collectSlots(*r->MutableRepeatedMessage(&m, f, j), slots);
    } else if (r->HasField(m, f)) {
      collectSlots(*r->MutableMessage(&m, f), slots);
    }
  }
}

int64_t interestingInt(int64_t old, std::minstd_rand &rng) {
  static const int64_t kValues[] = {0, 1, -1, 2, 3, 4, 63, 64, 65, 255, 256, 4096, INT32_MAX, INT32_MIN,
                                    INT64_MAX, INT64_MIN, int64_t(1) << 32, int64_t(1) << 62};
  switch (rng() % 4) {
  case 0: return int64_t(uint64_t(old) + rng() % 5 - 2); // wrapping, like the extremes below
  case 1: return int64_t(uint64_t(old) * 2);
  case 2: return int64_t(rng() % 80) - 4;
  default: return kValues[rng() % (sizeof kValues / sizeof kValues[0])];
  }
}

std::string interestingString(const std::string &old, std::minstd_rand &rng) {
  static const char *kValues[] = {"", "b", "s", "p", "q", "input_ids", "attention_mask", "logits",
                                  "last_hidden_state", "cpu", "vulkan", "metal", "causal-lm", "encoder",
                                  "past_key.0", "present_key.0", "key.0", "a\nb"};
  if (rng() % 4 == 0)
    return old + "x";
  return kValues[rng() % (sizeof kValues / sizeof kValues[0])];
}

void mutateScalar(Message &m, const FieldDescriptor *f, int index, std::minstd_rand &rng) {
  const Reflection *r = m.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
  case FieldDescriptor::CPPTYPE_INT32: {
    int32_t v = int32_t(interestingInt(rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f), rng));
    rep ? r->SetRepeatedInt32(&m, f, index, v) : r->SetInt32(&m, f, v);
    break;
  }
  case FieldDescriptor::CPPTYPE_INT64: {
    int64_t v = interestingInt(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f), rng);
    rep ? r->SetRepeatedInt64(&m, f, index, v) : r->SetInt64(&m, f, v);
    break;
  }
  case FieldDescriptor::CPPTYPE_UINT32: {
    uint32_t v = uint32_t(interestingInt(rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f), rng));
    rep ? r->SetRepeatedUInt32(&m, f, index, v) : r->SetUInt32(&m, f, v);
    break;
  }
  case FieldDescriptor::CPPTYPE_UINT64: {
    uint64_t v = uint64_t(interestingInt(int64_t(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f)), rng));
    rep ? r->SetRepeatedUInt64(&m, f, index, v) : r->SetUInt64(&m, f, v);
    break;
  }
  case FieldDescriptor::CPPTYPE_BOOL:
    rep ? r->SetRepeatedBool(&m, f, index, !r->GetRepeatedBool(m, f, index)) : r->SetBool(&m, f, !r->GetBool(m, f));
    break;
  case FieldDescriptor::CPPTYPE_ENUM: {
    const int n = f->enum_type()->value_count();
    const int v = rng() % 8 == 0 ? 99 : f->enum_type()->value(int(rng() % unsigned(n)))->number();
    rep ? r->SetRepeatedEnumValue(&m, f, index, v) : r->SetEnumValue(&m, f, v);
    break;
  }
  case FieldDescriptor::CPPTYPE_STRING: {
    std::string v = interestingString(rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f), rng);
    rep ? r->SetRepeatedString(&m, f, index, v) : r->SetString(&m, f, v);
    break;
  }
  case FieldDescriptor::CPPTYPE_FLOAT:
  case FieldDescriptor::CPPTYPE_DOUBLE:
  case FieldDescriptor::CPPTYPE_MESSAGE:
    break;
  }
}

// A repeated field: an element removed, duplicated (appended) or two swapped, or one element's value changed.
void mutateRepeated(Message &m, const FieldDescriptor *f, std::minstd_rand &rng) {
  const Reflection *r = m.GetReflection();
  const int n = r->FieldSize(m, f);
  const bool message = f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
  const unsigned op = n == 0 ? 1 : rng() % 4;
  if (op == 0) {
    r->SwapElements(&m, f, int(rng() % unsigned(n)), n - 1);
    r->RemoveLast(&m, f);
  } else if (op == 1 && message) {
    Message *added = r->AddMessage(&m, f);
    if (n > 0)
      added->CopyFrom(r->GetRepeatedMessage(m, f, int(rng() % unsigned(n))));
  } else if (op == 2 && n > 1) {
    r->SwapElements(&m, f, int(rng() % unsigned(n)), int(rng() % unsigned(n)));
  } else if (!message && n > 0) {
    mutateScalar(m, f, int(rng() % unsigned(n)), rng);
  }
}

void mutateManifest(kiln::artifact::Manifest &m, std::minstd_rand &rng) {
  std::vector<Slot> slots;
  collectSlots(m, slots);
  const unsigned edits = 1 + rng() % 3;
  for (unsigned e = 0; e < edits && !slots.empty(); ++e) {
    const Slot &s = slots[rng() % slots.size()];
    if (s.field->is_repeated())
      mutateRepeated(*s.message, s.field, rng);
    else if (s.field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE)
      mutateScalar(*s.message, s.field, -1, rng);
  }
}

} // namespace

extern "C" size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t maxSize);

// Manifest-mode inputs: three times in four a field-level edit of the parsed manifest; otherwise (and for
// file-mode inputs or a manifest that does not parse) libFuzzer's byte mutations.
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t maxSize, unsigned int seed) {
  std::minstd_rand rng(seed);
  kiln::artifact::Manifest m;
  google::protobuf::LogSilencer quiet;
  if (size < 1 || kiln::fuzz::planFuzzFileMode(data, size) || rng() % 4 == 0 || size - 1 > size_t(INT_MAX) ||
      !m.ParseFromArray(data + 1, int(size - 1)))
    return LLVMFuzzerMutate(data, size, maxSize);
  mutateManifest(m, rng);
  const std::string bytes = m.SerializeAsString();
  if (bytes.size() + 1 > maxSize)
    return LLVMFuzzerMutate(data, size, maxSize);
  std::memcpy(data + 1, bytes.data(), bytes.size());
  return bytes.size() + 1;
}

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
