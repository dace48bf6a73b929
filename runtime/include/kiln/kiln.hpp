//===- kiln.hpp - a thin RAII wrapper over kiln.h ---------------*- C++ -*-===//
//
// Header-only; throws nothing. Every fallible call returns a kiln::runtime::Result (a status code and the
// one-line message).
//
//   kiln::runtime::Model model;
//   if (auto r = model.load("m.kiln"); !r) { std::puts(r.message.c_str()); return 1; }
//   kiln::runtime::Session session;
//   if (auto r = session.create(model, 1); !r) ...
//   if (auto r = session.run(ids.data(), nullptr, 1, n); !r) ...
//   kiln::runtime::Tensor logits;
//   session.output("logits", logits);
//
//===----------------------------------------------------------------------===//
#ifndef KILN_KILN_HPP
#define KILN_KILN_HPP

#include "kiln/kiln.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kiln::runtime {

struct Result {
  kiln_status code = KILN_OK;
  std::string message;
  explicit operator bool() const { return code == KILN_OK; }
  bool ok() const { return code == KILN_OK; }
  static Result fromLast(kiln_status code) {
    Result r;
    r.code = code;
    if (code != KILN_OK)
      r.message = kiln_last_error();
    return r;
  }
};

/// A view of a session output (valid until the session's next run / reset / free).
struct Tensor {
  const float *data = nullptr;
  std::vector<int64_t> shape;
  int64_t numElements() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
};

class Model {
public:
  Model() = default;
  ~Model() { kiln_model_free(model_); }
  Model(const Model &) = delete;
  Model &operator=(const Model &) = delete;
  Model(Model &&o) noexcept : model_(std::exchange(o.model_, nullptr)) {}
  Model &operator=(Model &&o) noexcept {
    if (this != &o) {
      kiln_model_free(model_);
      model_ = std::exchange(o.model_, nullptr);
    }
    return *this;
  }

  Result load(const std::string &path, int numThreads = 0, bool verifyChecksums = true) {
    kiln_model_free(model_);
    model_ = nullptr;
    kiln_load_options options;
    kiln_load_options_init(&options);
    options.num_threads = numThreads;
    options.verify_checksums = verifyChecksums ? 1 : 0;
    return Result::fromLast(kiln_model_load(path.c_str(), &options, &model_));
  }

  bool loaded() const { return model_ != nullptr; }
  kiln_model *get() const { return model_; }
  std::string task() const { return model_ ? kiln_model_task(model_) : ""; }
  std::string architecture() const { return model_ ? kiln_model_architecture(model_) : ""; }
  bool isCausalLM() const { return task() == "causal-lm"; }
  int64_t vocabSize() const { return model_ ? kiln_model_vocab_size(model_) : 0; }
  int64_t hiddenSize() const { return model_ ? kiln_model_hidden_size(model_) : 0; }
  int64_t maxContext() const { return model_ ? kiln_model_max_context(model_) : 0; }
  int64_t maxBatch() const { return model_ ? kiln_model_max_batch(model_) : 0; }
  int numThreads() const { return model_ ? kiln_model_num_threads(model_) : 0; }
  uint64_t sessionBytes() const { return model_ ? kiln_model_session_bytes(model_) : 0; }
  std::string cpuTarget() const { return model_ ? kiln_model_cpu_target(model_) : ""; }
  std::vector<std::string> inputNames() const {
    std::vector<std::string> v;
    for (int i = 0; model_ && i < kiln_model_num_inputs(model_); ++i)
      v.emplace_back(kiln_model_input_name(model_, i));
    return v;
  }
  std::vector<std::string> outputNames() const {
    std::vector<std::string> v;
    for (int i = 0; model_ && i < kiln_model_num_outputs(model_); ++i)
      v.emplace_back(kiln_model_output_name(model_, i));
    return v;
  }

private:
  kiln_model *model_ = nullptr;
};

class Session {
public:
  Session() = default;
  ~Session() { kiln_session_free(session_); }
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;
  Session(Session &&o) noexcept : session_(std::exchange(o.session_, nullptr)) {}
  Session &operator=(Session &&o) noexcept {
    if (this != &o) {
      kiln_session_free(session_);
      session_ = std::exchange(o.session_, nullptr);
    }
    return *this;
  }

  Result create(const Model &model, int64_t batch) {
    kiln_session_free(session_);
    session_ = nullptr;
    return Result::fromLast(kiln_session_create(model.get(), batch, &session_));
  }
  Result run(const int64_t *ids, const int64_t *attentionMask, int64_t batch, int64_t seqLen) {
    return Result::fromLast(kiln_session_run(session_, ids, attentionMask, batch, seqLen));
  }
  Result output(const std::string &name, Tensor &out) {
    int64_t shape[KILN_MAX_RANK];
    int rank = 0;
    Result r = Result::fromLast(kiln_session_output(session_, name.c_str(), &out.data, shape, &rank));
    out.shape.assign(shape, shape + (r ? rank : 0));
    return r;
  }
  Result reset() { return Result::fromLast(kiln_session_reset(session_)); }
  /// KILN_LOGITS_ALL or KILN_LOGITS_LAST (kiln_session_set_logits).
  Result setLogits(int rows) { return Result::fromLast(kiln_session_set_logits(session_, rows)); }
  int64_t pastLength() const { return session_ ? kiln_session_past_length(session_) : 0; }
  int64_t batch() const { return session_ ? kiln_session_batch(session_) : 0; }
  kiln_session *get() const { return session_; }

private:
  kiln_session *session_ = nullptr;
};

} // namespace kiln::runtime

#endif // KILN_KILN_HPP
