//===- Session.cpp - host memory and the step loop ------------------------===//
#include "Session.h"

#include "kiln/artifact/DType.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace kiln::runtime::core {

namespace art = kiln::artifact;

HostBuffer::~HostBuffer() { std::free(data_); }

bool HostBuffer::allocate(uint64_t bytes) {
  std::free(data_);
  data_ = nullptr;
  bytes = (std::max<uint64_t>(bytes, 64) + 63) & ~uint64_t(63);
  if (posix_memalign(&data_, 64, bytes) != 0)
    data_ = nullptr;
  return data_ != nullptr;
}

bool Session::allocateHostMemory() {
  const LoadedPlan &plan = *plan_;
  bool ok = arena_.allocate(plan.arenaBytes);
  for (int h = 0; h < 2; ++h) {
    kvHalves_[h] = std::vector<HostBuffer>(plan.kv.size());
    for (size_t e = 0; ok && e < plan.kv.size(); ++e)
      if (!plan.kv[e].device && !(h == 1 && plan.kv[e].inPlace)) // in place: one buffer, present aliases past
        ok = kvHalves_[h][e].allocate(plan.kv[e].bytes);
  }
  // Inputs: ones for an omitted attention_mask, I32 scratch where the artifact wants I32.
  const uint64_t maxTokens = static_cast<uint64_t>(batch_) * static_cast<uint64_t>(plan.maxContext);
  if (ok && plan.attentionMask >= 0) {
    const PlanBuffer &b = plan.buffers[size_t(plan.attentionMask)];
    ok = onesMask_.allocate(maxTokens * b.elemBytes);
    if (ok && b.dtype == art::I64)
      std::fill_n(reinterpret_cast<int64_t *>(onesMask_.data()), maxTokens, int64_t(1));
    else if (ok)
      std::fill_n(reinterpret_cast<int32_t *>(onesMask_.data()), maxTokens, int32_t(1));
    if (ok && b.dtype == art::I32)
      ok = maskScratch_.allocate(maxTokens * 4);
  }
  if (ok && plan.buffers[size_t(plan.inputIds)].dtype == art::I32)
    ok = idsScratch_.allocate(maxTokens * 4);
  return ok;
}

int64_t Session::maxContext() const { return plan_->maxContext; }

Error Session::create(const Model &model, int64_t batch) {
  model_ = &model;
  plan_ = &model.plan();
  batch_ = batch;
  if (batch > plan_->maxBatch)
    return Error(KILN_OUT_OF_RANGE, "batch " + std::to_string(batch) + " exceeds the compiled max batch of " +
                                        std::to_string(plan_->maxBatch));
  // A session the machine cannot hold is refused before allocating (an overcommitted allocation would
  // succeed and the process be killed on first touch), naming the limits that size it.
  const std::string limits = " (max context " + std::to_string(plan_->maxContext) + ", max batch " +
                             std::to_string(plan_->maxBatch) + "); recompile with a lower --max-context or --max-batch";
  const long pages = ::sysconf(_SC_PHYS_PAGES), pageSize = ::sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && pageSize > 0 && model.sessionBytes() > uint64_t(pages) * uint64_t(pageSize))
    return Error(KILN_OUT_OF_RANGE, "a session needs " + std::to_string(model.sessionBytes()) +
                                        " bytes, more than this machine's memory of " +
                                        std::to_string(uint64_t(pages) * uint64_t(pageSize)) + " bytes" + limits);
  if (!allocateHostMemory())
    return Error(KILN_INTERNAL, "out of memory allocating a session of " + std::to_string(model.sessionBytes()) +
                                    " bytes" + limits);
  executors_.resize(model.executors().size());
  for (int index : model.stepOrder())
    if (Error e = model.executors()[size_t(index)]->createSession(executors_[size_t(index)]))
      return e;
  host_.assign(plan_->buffers.size(), nullptr);
  symbolValues_.assign(plan_->symbols.size(), 0);
  outputData_.assign(plan_->outputBuffers.size(), nullptr);
  outputShapes_.assign(plan_->outputBuffers.size(), {});
  for (auto &shape : outputShapes_)
    shape.reserve(KILN_MAX_RANK);
  return {};
}

Error Session::checkInputs(const int64_t *ids, const int64_t *mask, int64_t batch, int64_t seq) const {
  const LoadedPlan &plan = *plan_;
  const int64_t n = batch * seq;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = ids[i];
    if (t < 0 || t >= plan.vocabSize)
      return Error(KILN_INVALID_ARGUMENT, "input_ids[" + std::to_string(i / seq) + ", " + std::to_string(i % seq) +
                                              "] = " + std::to_string(t) + " is outside the vocabulary [0, " +
                                              std::to_string(plan.vocabSize) + ")");
  }
  for (int64_t i = 0; mask && i < n; ++i) {
    if (mask[i] != 0 && mask[i] != 1)
      return Error(KILN_INVALID_ARGUMENT, "attention_mask[" + std::to_string(i / seq) + ", " +
                                              std::to_string(i % seq) + "] = " + std::to_string(mask[i]) +
                                              " is not 0 or 1");
    if (plan.attentionMask < 0 && mask[i] != 1)
      return Error(KILN_INVALID_ARGUMENT, "this " + plan.task +
                                              " artifact takes no attention_mask (no padding): pass NULL or all ones");
  }
  return {};
}

// A view of an in-place entry's one storage: rows [offset, offset + dim 2) of every (batch, head), capacity
// rows apart; or one half of a two-buffer entry.
Error Session::bindKvView(const PlanBuffer &b, uint64_t bytes, const StepState &step) {
  const PlanKvEntry &e = plan_->kv[size_t(b.kvEntry)];
  if (bytes > e.bytes)
    return Error(KILN_INTERNAL, "KV-cache buffer '" + b.name + "' needs " + std::to_string(bytes) +
                                    " bytes, more than the planned " + std::to_string(e.bytes));
  if (!e.inPlace) {
    host_[size_t(b.id)] = kvHalves_[b.kvPresent ? 1 - step.parity : step.parity][size_t(b.kvEntry)].data();
    return {};
  }
  const int64_t offset = b.rowOffset.eval(step.symbols), rows = b.shape[2].eval(step.symbols);
  if (offset < 0 || rows < 0 || offset > e.capacity || rows > e.capacity - offset || step.batch > plan_->maxBatch)
    return Error(KILN_INTERNAL, "KV-cache view '" + b.name + "' rows [" + std::to_string(offset) + ", " +
                                    std::to_string(offset + rows) + ") exceed its capacity " +
                                    std::to_string(e.capacity));
  host_[size_t(b.id)] = kvHalves_[0][size_t(b.kvEntry)].data() +
                        uint64_t(offset) * uint64_t(b.shape[3].eval(step.symbols)) * b.elemBytes;
  return {};
}

Error Session::bindInput(const PlanBuffer &b, uint64_t bytes, const int64_t *ids, const int64_t *mask,
                         const StepState &step) {
  if (b.shape.size() != 2 || b.shape[0].eval(step.symbols) != step.batch || b.shape[1].eval(step.symbols) != step.seq)
    return Error(KILN_INTERNAL, "input '" + b.name + "' is not [b, s] in the artifact");
  if (bytes > b.maxBytes && b.dtype != art::I64)
    return Error(KILN_INTERNAL, "input '" + b.name + "' exceeds its planned size");
  const bool isIds = b.id == plan_->inputIds;
  const int64_t *src = isIds ? ids : mask;
  if (!src) { // attention_mask omitted: ones
    host_[size_t(b.id)] = onesMask_.data();
    return {};
  }
  if (b.dtype == art::I64) {
    host_[size_t(b.id)] = const_cast<int64_t *>(src);
    return {};
  }
  int32_t *dst = reinterpret_cast<int32_t *>(isIds ? idsScratch_.data() : maskScratch_.data());
  const int64_t n = step.batch * step.seq;
  for (int64_t j = 0; j < n; ++j)
    dst[j] = static_cast<int32_t>(src[j]);
  host_[size_t(b.id)] = dst;
  return {};
}

Error Session::bindHostBuffers(const int64_t *ids, const int64_t *mask, const StepState &step) {
  for (const PlanBuffer &b : plan_->buffers) {
    if (b.device) {
      host_[size_t(b.id)] = nullptr; // the device executor's
      continue;
    }
    const uint64_t bytes = b.kind == art::Buffer::WEIGHT ? 0 : b.bytesAt(step.symbols);
    Error e;
    switch (b.kind) {
    case art::Buffer::ARENA:
      if (bytes > b.maxBytes)
        return Error(KILN_INTERNAL, "arena buffer '" + b.name + "' needs " + std::to_string(bytes) +
                                        " bytes, more than the planned " + std::to_string(b.maxBytes));
      host_[size_t(b.id)] = arena_.data() + b.offset;
      break;
    case art::Buffer::WEIGHT:
      host_[size_t(b.id)] = const_cast<uint8_t *>(model_->weights() + b.offset);
      break;
    case art::Buffer::KV_CACHE:
      e = bindKvView(b, bytes, step);
      break;
    case art::Buffer::INPUT:
      e = bindInput(b, bytes, ids, mask, step);
      break;
    default:
      return Error(KILN_INTERNAL, "buffer '" + b.name + "' has no kind");
    }
    if (e)
      return e;
  }
  return {};
}

Error Session::execute(StepState &step) {
  const std::vector<int> &order = model_->stepOrder();
  for (int index : order)
    if (Error e = executors_[size_t(index)]->beginStep(step))
      return e;
  for (const PlanSegment &segment : plan_->segments)
    if (Error e = executors_[size_t(segment.executor)]->runSegment(segment, step))
      return e;
  for (auto it = order.rbegin(); it != order.rend(); ++it)
    if (Error e = executors_[size_t(*it)]->finishStep(step))
      return e;
  return {};
}

Error Session::run(const int64_t *ids, const int64_t *mask, int64_t batch, int64_t seq) {
  const LoadedPlan &plan = *plan_;
  if (!ids)
    return Error(KILN_INVALID_ARGUMENT, "input_ids is NULL");
  if (batch != batch_)
    return Error(KILN_INVALID_ARGUMENT, "input_ids has batch " + std::to_string(batch) +
                                            " but the session was created for batch " + std::to_string(batch_));
  if (seq <= 0)
    return Error(KILN_INVALID_ARGUMENT,
                 "input_ids must have at least one token (seq_len " + std::to_string(seq) + ")");
  const bool causal = plan.causal();
  const int64_t past = causal ? past_ : 0;
  if (seq > plan.maxContext - past) {
    if (causal && past > 0)
      return Error(KILN_OUT_OF_RANGE, std::to_string(past) + " tokens in the KV cache + " + std::to_string(seq) +
                                          " new exceed the compiled max context of " +
                                          std::to_string(plan.maxContext) + " (reset the session to start over)");
    return Error(KILN_OUT_OF_RANGE, std::to_string(seq) + " tokens exceed the compiled max context of " +
                                        std::to_string(plan.maxContext));
  }
  static const char *kRoleNames[kNumSymbolRoles] = {"batch", "chunk length", "past length", "logits rows"};
  const int64_t byRole[kNumSymbolRoles] = {batch, seq, past, lastRowLogits_ ? 1 : seq};
  for (int role = 0; role < kNumSymbolRoles; ++role) {
    const int k = plan.symbolIndex[role];
    if (k < 0)
      continue;
    if (byRole[role] > plan.symbols[size_t(k)].maxValue)
      return Error(KILN_OUT_OF_RANGE, std::string(kRoleNames[role]) + " " + std::to_string(byRole[role]) +
                                          " exceeds the compiled maximum " +
                                          std::to_string(plan.symbols[size_t(k)].maxValue));
    symbolValues_[size_t(k)] = byRole[role];
  }
  if (Error e = checkInputs(ids, mask, batch, seq))
    return e;

  StepState step;
  step.symbols = symbolValues_.data();
  step.batch = batch;
  step.seq = seq;
  step.past = past;
  step.parity = parity_;
  step.host = &host_;
  if (Error e = bindHostBuffers(ids, mask, step))
    return e;
  if (Error e = execute(step))
    return e;

  for (size_t o = 0; o < plan.outputBuffers.size(); ++o) {
    const PlanBuffer &b = plan.buffers[size_t(plan.outputBuffers[o])];
    b.shapeAt(step.symbols, outputShapes_[o]);
    const void *data = b.device ? executors_[size_t(model_->deviceExecutor())]->outputData(b.id) : host_[size_t(b.id)];
    outputData_[o] = b.dtype == art::F32 ? static_cast<const float *>(data) : nullptr;
  }
  hasOutputs_ = true;
  if (causal) {
    parity_ = 1 - parity_;
    past_ += seq;
  }
  return {};
}

Error Session::output(const std::string &name, const float **data, const std::vector<int64_t> **shape) const {
  const LoadedPlan &plan = *plan_;
  for (size_t o = 0; o < plan.outputNames.size(); ++o) {
    if (plan.outputNames[o] != name)
      continue;
    if (!hasOutputs_)
      return Error(KILN_INVALID_ARGUMENT, "output '" + name + "': the session has not run yet");
    const PlanBuffer &b = plan.buffers[size_t(plan.outputBuffers[o])];
    if (b.dtype != art::F32)
      return Error(KILN_INVALID_ARGUMENT,
                   "output '" + name + "' is " + art::dtypeName(b.dtype) + ", not F32");
    *shape = &outputShapes_[o];
    *data = outputData_[o];
    return {};
  }
  std::string known;
  for (const std::string &n : plan.outputNames)
    known += (known.empty() ? "" : ", ") + n;
  return Error(KILN_INVALID_ARGUMENT, "no output '" + name + "' (outputs: " + known + ")");
}

Error Session::setLogitsRows(bool lastOnly) {
  if (lastOnly && plan_->symbolIndex[int(SymbolRole::LogitsRows)] < 0)
    return Error(KILN_INVALID_ARGUMENT, "this " + plan_->task + " artifact has no logits rows to choose (no symbol r: "
                                        "an encoder, or compiled before kiln_session_set_logits existed)");
  lastRowLogits_ = lastOnly;
  return {};
}

void Session::reset() {
  past_ = 0;
  parity_ = 0;
  hasOutputs_ = false;
}

uint64_t Session::deviceTimeNs() const {
  const int device = model_ ? model_->deviceExecutor() : -1;
  return device >= 0 && executors_[size_t(device)] ? executors_[size_t(device)]->deviceTimeNs() : 0;
}

} // namespace kiln::runtime::core
