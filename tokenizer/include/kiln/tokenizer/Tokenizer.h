// kiln::tokenizer: Hugging Face tokenizer.json, encoded and decoded exactly as the `tokenizers` library does.
//
// Models: BPE (byte-level as GPT-2 / Llama 3 / Qwen2, SentencePiece-style with byte fallback as Llama 2 /
// Mistral / Gemma), WordPiece, Unigram, WordLevel. Added and special tokens, normalizers, pre-tokenizers,
// post-processors and decoders as listed in README.md ("Tokenizers"). A component type this library does not
// implement is refused at load with a message naming it; it is never approximated.
//
// No LLVM/MLIR and no exceptions: the runtime links this library. Errors are kiln::Status with one-line
// messages that start with the file (and the JSON path) they are about.
#pragma once

#include "kiln/support/Status.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::tokenizer {

// The contents of a model directory's tokenizer files (an empty string: the file is absent). Only
// tokenizer.json is required. The artifact can carry these strings, so loading never needs the files.
struct TokenizerFiles {
  std::string tokenizerJson;       // tokenizer.json
  std::string tokenizerConfigJson; // tokenizer_config.json: special tokens, add_bos/eos, chat_template
  std::string specialTokensMapJson; // special_tokens_map.json: special tokens (used when the config lacks them)
  std::string generationConfigJson; // generation_config.json: eos_token_id (one id or a list), bos/pad ids
};

// The text-side configuration of a model, from tokenizer_config.json / special_tokens_map.json /
// generation_config.json. Token ids are resolved against the tokenizer's vocabulary.
struct SpecialToken {
  std::string content;
  std::optional<uint32_t> id; // absent when the vocabulary does not hold the token
};

struct TextConfig {
  std::optional<SpecialToken> bos, eos, unk, pad;
  // Generation stops at any of these: generation_config.json's eos_token_id, else the eos token's id.
  std::vector<uint32_t> eosTokenIds;
  std::optional<uint32_t> bosTokenId; // generation_config.json's bos_token_id, else the bos token's id
  // tokenizer_config.json's add_bos_token / add_eos_token, when present. Informational: the special tokens
  // that encode() adds come from tokenizer.json's post_processor, as in Hugging Face tokenizers.
  std::optional<bool> addBosToken, addEosToken;
  std::string chatTemplate;            // the default chat template ("" when none)
  std::optional<uint64_t> modelMaxLength;
};

class StreamDecoder;

class Tokenizer {
public:
  // Reads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json, DIR/special_tokens_map.json
  // and DIR/generation_config.json.
  static StatusOr<Tokenizer> load(const std::string &dir);
  static StatusOr<Tokenizer> fromJson(const TokenizerFiles &files);

  Tokenizer(Tokenizer &&) noexcept;
  Tokenizer &operator=(Tokenizer &&) noexcept;
  ~Tokenizer();

  // Hugging Face `encode(text, add_special_tokens)`: the ids, after truncation and padding when
  // tokenizer.json asks for them. Text that is not valid UTF-8 is refused (Hugging Face accepts only
  // Unicode strings); the message gives the byte offset.
  StatusOr<std::vector<uint32_t>> encode(std::string_view text, bool addSpecialTokens = true) const;
  // As transformers' tokenizer(texts, padding=True, truncation=True, max_length=maxLength) gives one text's
  // ids (sentence-transformers' encode): tokenizer.json's own truncation and padding are replaced by
  // truncation from the right to maxLength ids, special tokens included (0: none), and no padding (the
  // caller pads the batch and masks it).
  StatusOr<std::vector<uint32_t>> encodeForBatch(std::string_view text, bool addSpecialTokens, uint64_t maxLength) const;
  // Hugging Face `decode(ids, skip_special_tokens)`. Ids outside the vocabulary are skipped, as there.
  StatusOr<std::string> decode(const std::vector<uint32_t> &ids, bool skipSpecialTokens = false) const;
  // Decodes one id at a time (generation); see StreamDecoder.
  StreamDecoder streamDecoder(bool skipSpecialTokens = false) const;

  // The vocabulary size, with the added tokens (Hugging Face `get_vocab_size(true)`).
  size_t vocabSize() const;
  std::optional<uint32_t> tokenToId(std::string_view token) const;
  std::optional<std::string> idToToken(uint32_t id) const;
  bool isSpecialToken(uint32_t id) const;
  // "BPE", "WordPiece", "Unigram" or "WordLevel".
  const std::string &modelType() const;
  const TextConfig &config() const;

  struct Impl; // the pipeline (internal)

private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

// Streaming detokenization: feed ids one at a time; each step returns the text that became final (often
// empty: a partial UTF-8 character waits for its next byte, a leading space waits until it is known to be
// kept). The concatenation of every step() and the last finish() equals decode() of all the ids: no space
// and no partial UTF-8 character is lost or repeated. Works as Hugging Face's DecodeStream, keeping only a
// window of recent ids, plus finish() for what is still held at the end.
class StreamDecoder {
public:
  StatusOr<std::string> step(uint32_t id);
  // The text still held (e.g. an incomplete UTF-8 sequence, decoded as replacement characters as decode()
  // does). Resets the decoder for a new stream.
  StatusOr<std::string> finish();
  void reset();

private:
  friend class Tokenizer;
  StreamDecoder(std::shared_ptr<const Tokenizer::Impl> impl, bool skipSpecialTokens);
  std::shared_ptr<const Tokenizer::Impl> impl_;
  bool skipSpecialTokens_;
  std::vector<uint32_t> ids_; // the window: ids that decode to prefix_, then ids not yet emitted
  std::string prefix_;        // decode(ids_[0, prefixIndex_)): already emitted text of the window
  size_t prefixIndex_ = 0;
};

} // namespace kiln::tokenizer
