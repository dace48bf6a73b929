//===- Text.cpp - TextModel, the sampler and generation -------------------===//
#include "Text.h"

#include "Session.h"

#include "kiln/support/Util.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

namespace kiln::runtime::core {

namespace {
Error invalid(std::string message) { return Error(KILN_INVALID_ARGUMENT, std::move(message)); }

// Messages stay one line (a template's raise_exception text may hold newlines).
std::string oneLine(const std::string &message) { return kiln::support::oneLine(message); }
} // namespace

void TextModel::attach(const kiln::artifact::TextSection *section, std::string path, int64_t vocabSize) {
  section_ = section;
  path_ = std::move(path);
  vocabSize_ = vocabSize;
}

Error TextModel::load() const {
  std::call_once(once_, [this] {
    const kiln::artifact::TextSection &t = *section_;
    kiln::tokenizer::TokenizerFiles files{t.tokenizer_json(), t.tokenizer_config_json(), t.special_tokens_map_json(),
                                          t.generation_config_json()};
    StatusOr<kiln::tokenizer::Tokenizer> tok = kiln::tokenizer::Tokenizer::fromJson(files);
    if (!tok.ok()) {
      loadError_ = Error(KILN_BAD_ARTIFACT, path_ + ": text section: " + oneLine(tok.status().message()));
      return;
    }
    tokenizer_.emplace(std::move(*tok));
    if (t.chat_template().empty()) {
      templateError_ = invalid(path_ + ": the model has no chat template");
      return;
    }
    StatusOr<kiln::ChatTemplateConfig> config =
        t.tokenizer_config_json().empty()
            ? StatusOr<kiln::ChatTemplateConfig>(kiln::ChatTemplateConfig())
            : kiln::ChatTemplateConfig::fromTokenizerConfig(t.tokenizer_config_json(), path_ + " tokenizer_config.json");
    StatusOr<kiln::ChatTemplate> parsed = kiln::ChatTemplate::parse(t.chat_template(), path_ + " chat_template");
    if (!config.ok() || !parsed.ok()) {
      templateError_ = Error(KILN_BAD_ARTIFACT, oneLine((config.ok() ? parsed.status() : config.status()).message()));
      return;
    }
    templateConfig_.emplace(std::move(*config));
    template_.emplace(std::move(*parsed));
  });
  return loadError_;
}

Error TextModel::tokenizer(const kiln::tokenizer::Tokenizer **out) const {
  *out = nullptr;
  if (!section_)
    return invalid(path_ + ": no tokenizer: the artifact works on token ids only (compiled from a directory "
                           "without tokenizer.json)");
  if (Error e = load())
    return e;
  *out = &*tokenizer_;
  return {};
}

Error TextModel::encode(std::string_view text, bool addSpecialTokens, std::vector<int64_t> &ids,
                        std::optional<uint64_t> batchMaxLength) const {
  const kiln::tokenizer::Tokenizer *tok = nullptr;
  if (Error e = tokenizer(&tok))
    return e;
  StatusOr<std::vector<uint32_t>> encoded = batchMaxLength ? tok->encodeForBatch(text, addSpecialTokens, *batchMaxLength)
                                                           : tok->encode(text, addSpecialTokens);
  if (!encoded.ok())
    return invalid(oneLine(encoded.status().message()));
  ids.assign(encoded->begin(), encoded->end());
  for (int64_t id : ids)
    if (id >= vocabSize_)
      return invalid(path_ + ": the text has token id " + std::to_string(id) + ", outside the model's vocabulary of " +
                     std::to_string(vocabSize_));
  return {};
}

Error TextModel::decode(const int64_t *ids, size_t count, bool skipSpecialTokens, std::string &text) const {
  const kiln::tokenizer::Tokenizer *tok = nullptr;
  if (Error e = tokenizer(&tok))
    return e;
  std::vector<uint32_t> ids32(count);
  for (size_t i = 0; i < count; ++i) {
    if (ids[i] < 0 || ids[i] > int64_t(UINT32_MAX))
      return invalid("token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) + " is out of range");
    ids32[i] = uint32_t(ids[i]);
  }
  StatusOr<std::string> decoded = tok->decode(ids32, skipSpecialTokens);
  if (!decoded.ok())
    return invalid(oneLine(decoded.status().message()));
  text = std::move(*decoded);
  return {};
}

Error TextModel::renderChat(std::string_view messagesJson, bool addGenerationPrompt, std::string &prompt) const {
  const kiln::tokenizer::Tokenizer *tok = nullptr;
  if (Error e = tokenizer(&tok))
    return e;
  if (!template_)
    return templateError_;
  StatusOr<kiln::TemplateValue> messages = kiln::TemplateValue::fromJson(messagesJson, "messages");
  if (!messages.ok())
    return invalid(oneLine(messages.status().message()));
  if (messages->kind() != kiln::TemplateValue::Kind::List)
    return invalid("messages: expected a JSON list of {role, content} objects");
  kiln::ChatTemplateOptions options;
  options.addGenerationPrompt = addGenerationPrompt;
  options.variables = templateConfig_->specialTokens;
  StatusOr<std::string> rendered = template_->render(*messages, options);
  if (!rendered.ok())
    return invalid(oneLine(rendered.status().message()));
  prompt = std::move(*rendered);
  return {};
}

std::vector<int64_t> TextModel::eosIds() const {
  if (!section_)
    return {};
  return std::vector<int64_t>(section_->eos_token_ids().begin(), section_->eos_token_ids().end());
}

const kiln::artifact::Pooling *TextModel::pooling() const {
  return section_ && section_->has_pooling() ? &section_->pooling() : nullptr;
}

int64_t Sampler::pick(const float *logits, int64_t vocab) {
  if (options_.temperature <= 0.0) // greedy: the first maximum
    return int64_t(std::max_element(logits, logits + vocab) - logits);
  order_.resize(size_t(vocab));
  std::iota(order_.begin(), order_.end(), 0);
  const int64_t k = options_.topK > 0 ? std::min(options_.topK, vocab) : vocab;
  auto byLogit = [&](int64_t a, int64_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(order_.begin(), order_.begin() + k, order_.end(), byLogit);
  order_.resize(size_t(k));
  probs_.resize(size_t(k));
  double maxLogit = logits[order_[0]], sum = 0.0;
  for (int64_t i = 0; i < k; ++i)
    sum += probs_[size_t(i)] = std::exp((double(logits[order_[size_t(i)]]) - maxLogit) / options_.temperature);
  // Nucleus: the smallest prefix with mass >= top_p.
  int64_t keep = k;
  if (options_.topP < 1.0) {
    double acc = 0.0;
    for (int64_t i = 0; i < k; ++i) {
      acc += probs_[size_t(i)] / sum;
      if (acc >= options_.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  double mass = 0.0;
  for (int64_t i = 0; i < keep; ++i)
    mass += probs_[size_t(i)];
  double u = std::uniform_real_distribution<double>(0.0, mass)(rng_);
  for (int64_t i = 0; i < keep; ++i) {
    u -= probs_[size_t(i)];
    if (u <= 0.0)
      return order_[size_t(i)];
  }
  return order_[size_t(keep - 1)];
}

Error generateIds(Session &session, const std::vector<int64_t> &prompt, const GenerateRequest &request,
                  const std::function<bool(int64_t)> &onToken, GenerateStats &stats) {
  using Clock = std::chrono::steady_clock;
  stats = GenerateStats{};
  stats.promptTokens = int64_t(prompt.size());
  if (session.batch() != 1)
    return invalid("generation needs a session of batch 1, this one has batch " + std::to_string(session.batch()));
  if (prompt.empty())
    return invalid("the prompt has no tokens");
  if (request.maxNewTokens < 0)
    return invalid("max_new_tokens must be >= 0, got " + std::to_string(request.maxNewTokens));
  // Sampling reads only the last row's logits: compute (and read back) that row alone, prompt and steps; the
  // caller's choice is restored on return.
  struct LogitsRowsScope {
    Session &session;
    bool saved = session.lastRowLogits();
    ~LogitsRowsScope() { (void)session.setLogitsRows(saved); }
  } scope{session};
  if (session.plan().symbolIndex[int(SymbolRole::LogitsRows)] >= 0)
    (void)session.setLogitsRows(true);
  const auto t0 = Clock::now();
  if (Error e = session.run(prompt.data(), nullptr, 1, int64_t(prompt.size())))
    return e;
  const auto t1 = Clock::now();
  stats.prefillSeconds = std::chrono::duration<double>(t1 - t0).count();
  Sampler sampler(request.sampling);
  const int64_t maxContext = session.maxContext();
  while (stats.generatedTokens < request.maxNewTokens) {
    const float *logits = nullptr;
    const std::vector<int64_t> *shape = nullptr;
    if (Error e = session.output("logits", &logits, &shape))
      return e;
    const int64_t vocab = shape->back(), rows = (*shape)[1];
    int64_t next = sampler.pick(logits + (rows - 1) * vocab, vocab);
    ++stats.generatedTokens;
    if (!onToken(next)) {
      stats.stoppedByCaller = true;
      break;
    }
    if (std::find(request.stopIds.begin(), request.stopIds.end(), next) != request.stopIds.end()) {
      stats.stoppedAtEos = true;
      break;
    }
    if (stats.generatedTokens >= request.maxNewTokens)
      break;
    if (session.past() >= maxContext) {
      stats.stoppedAtContext = true;
      break;
    }
    if (Error e = session.run(&next, nullptr, 1, 1))
      return e;
  }
  stats.decodeSeconds = std::chrono::duration<double>(Clock::now() - t1).count();
  return {};
}

Error generateText(Session &session, const TextModel &text, const std::vector<int64_t> &prompt,
                   const GenerateRequest &request, bool skipSpecialTokens,
                   const std::function<bool(const std::string &, int64_t)> &onText, GenerateStats &stats) {
  const kiln::tokenizer::Tokenizer *tok = nullptr;
  if (Error e = text.tokenizer(&tok))
    return e;
  kiln::tokenizer::StreamDecoder decoder = tok->streamDecoder(skipSpecialTokens);
  Error decodeError;
  auto onToken = [&](int64_t id) {
    StatusOr<std::string> piece = decoder.step(uint32_t(id));
    if (!piece.ok()) {
      decodeError = invalid(oneLine(piece.status().message()));
      return false;
    }
    return onText(*piece, id);
  };
  if (Error e = generateIds(session, prompt, request, onToken, stats))
    return e;
  if (decodeError)
    return decodeError;
  StatusOr<std::string> rest = decoder.finish();
  if (!rest.ok())
    return invalid(oneLine(rest.status().message()));
  onText(*rest, -1); // what the decoder held, also when the caller stopped (its return value no longer matters)
  return {};
}

} // namespace kiln::runtime::core
