//===- Text.h - the text side of a loaded model: tokenizer, chat template, generation, embeddings -*- C++ -*-===//
//
// Over the artifact's TEXT section (artifact/kiln_artifact.proto TextSection): the tokenizer and the chat
// template are built from it on first use (an app that feeds ids never pays for them) and then shared by
// every thread. generateIds / generateText run prefill + decode on a Session with one sampler; embed
// batches texts with padding and an attention mask and pools as sentence-transformers does.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_TEXT_H
#define KILN_RUNTIME_TEXT_H

#include "Error.h"
#include "kiln_artifact.pb.h"

#include "kiln/template/ChatTemplate.h"
#include "kiln/tokenizer/Tokenizer.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::runtime::core {

class Session;

class TextModel {
public:
  /// `section` may be null (ids only); it must outlive this object. `path` prefixes messages.
  void attach(const kiln::artifact::TextSection *section, std::string path, int64_t vocabSize);
  bool present() const { return section_ != nullptr; }

  /// The tokenizer, loaded on first use. INVALID_ARGUMENT when the artifact has none.
  Error tokenizer(const kiln::tokenizer::Tokenizer **out) const;
  /// Hugging Face encode(text, add_special_tokens); every id is checked against the model's vocabulary. With
  /// `batchMaxLength`: Tokenizer::encodeForBatch (truncated to it, unpadded), as sentence-transformers encodes.
  Error encode(std::string_view text, bool addSpecialTokens, std::vector<int64_t> &ids,
               std::optional<uint64_t> batchMaxLength = std::nullopt) const;
  /// Hugging Face decode(ids, skip_special_tokens).
  Error decode(const int64_t *ids, size_t count, bool skipSpecialTokens, std::string &text) const;
  /// apply_chat_template(messages, tokenize=False, add_generation_prompt): `messagesJson` is a JSON list of
  /// {role, content} objects.
  Error renderChat(std::string_view messagesJson, bool addGenerationPrompt, std::string &prompt) const;

  /// The ids generation stops at (empty without a TEXT section).
  std::vector<int64_t> eosIds() const;
  /// The sentence-transformers pooling, or null.
  const kiln::artifact::Pooling *pooling() const;
  const std::string &path() const { return path_; }

private:
  Error load() const;

  const kiln::artifact::TextSection *section_ = nullptr;
  std::string path_;
  int64_t vocabSize_ = 0;
  mutable std::once_flag once_;
  mutable Error loadError_;
  mutable std::optional<kiln::tokenizer::Tokenizer> tokenizer_;
  mutable std::optional<kiln::ChatTemplate> template_;
  mutable Error templateError_;
  mutable std::optional<kiln::ChatTemplateConfig> templateConfig_;
};

/// Greedy (temperature 0: the first maximum, as torch.argmax) or temperature / top-k / top-p sampling.
struct SamplingOptions {
  double temperature = 0.0;
  int64_t topK = 0;   // 0: all
  double topP = 1.0;  // 1: all
  uint64_t seed = 0;
};

class Sampler {
public:
  explicit Sampler(const SamplingOptions &options) : options_(options), rng_(options.seed) {}
  int64_t pick(const float *logits, int64_t vocab);

private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<int64_t> order_;
  std::vector<double> probs_;
};

struct GenerateRequest {
  int64_t maxNewTokens = 256;
  SamplingOptions sampling;
  std::vector<int64_t> stopIds; // generation ends after producing one of these
};

struct GenerateStats {
  int64_t promptTokens = 0, generatedTokens = 0;
  double prefillSeconds = 0, decodeSeconds = 0;
  bool stoppedAtEos = false, stoppedAtContext = false, stoppedByCaller = false;
};

/// Appends `prompt` to the session's KV cache, then samples up to maxNewTokens ids, calling onToken(id) for
/// each (false: stop). Stops after a stop id or at the compiled max context.
Error generateIds(Session &session, const std::vector<int64_t> &prompt, const GenerateRequest &request,
                  const std::function<bool(int64_t)> &onToken, GenerateStats &stats);

/// generateIds with text: the pieces of the streaming decoder go to onText(piece, id) as ids come (false:
/// stop); then the last piece (what the decoder still held, possibly empty) with id -1.
Error generateText(Session &session, const TextModel &text, const std::vector<int64_t> &prompt,
                   const GenerateRequest &request, bool skipSpecialTokens,
                   const std::function<bool(const std::string &, int64_t)> &onText, GenerateStats &stats);

enum class PoolingMode { Default = 0, Mean = 1, Cls = 2, Max = 3, Last = 4, MeanSqrtLen = 5 };

struct EmbedRequest {
  PoolingMode mode = PoolingMode::Default; // Default: the artifact's
  int normalize = -1;                      // -1: the artifact's (no pooling config: no)
  std::optional<std::string> prefix;       // nullopt: the artifact's default prompt, if any
  bool addSpecialTokens = true;
};

/// One vector per text ([count, hidden] row-major into `out`, which holds `outFloats`): each text truncated to
/// max_seq_length (else the compiled max context) tokens as sentence-transformers does, the texts in batches of
/// the session's batch, right-padded with the pad id and masked, pooled and (optionally) L2-normalized.
Error embed(Session &session, const TextModel &text, const std::vector<std::string> &texts,
            const EmbedRequest &request, float *out, size_t outFloats);

} // namespace kiln::runtime::core

#endif // KILN_RUNTIME_TEXT_H
