// Tokenizer::Impl: the parsed pipeline and its encode / decode.
#pragma once

#include "AddedVocabulary.h"
#include "Components.h"

#include "kiln/tokenizer/Tokenizer.h"

namespace kiln::tokenizer {

struct Truncation {
  uint64_t maxLength = 0, stride = 0;
  enum Strategy { LongestFirst, OnlyFirst, OnlySecond } strategy = LongestFirst;
  bool left = false; // direction
};

struct Padding {
  std::optional<uint64_t> fixedLength; // strategy Fixed(n); nullopt: BatchLongest
  std::optional<uint64_t> multipleOf;
  bool left = false;
  uint32_t padId = 0;
};

struct Tokenizer::Impl {
  std::unique_ptr<detail::Normalizer> normalizer;
  std::unique_ptr<detail::PreTokenizer> preTokenizer;
  std::unique_ptr<detail::Model> model;
  std::unique_ptr<detail::PostProcessor> postProcessor;
  std::unique_ptr<detail::Decoder> decoder;
  detail::AddedVocabulary added;
  std::string modelType; // model->type()
  std::optional<Truncation> truncation;
  std::optional<Padding> padding;
  TextConfig config;

  // With `batchTruncation` (Tokenizer::encodeForBatch), it replaces tokenizer.json's truncation and nothing is
  // padded.
  StatusOr<std::vector<uint32_t>> encode(std::string_view text, bool addSpecialTokens,
                                         const std::optional<Truncation> *batchTruncation = nullptr) const;
  StatusOr<std::string> decode(const std::vector<uint32_t> &ids, bool skipSpecialTokens) const;
  std::optional<uint32_t> tokenToId(std::string_view token) const;
  std::optional<std::string> idToToken(uint32_t id) const;
  // Whether decode(ids) may still change when more ids follow: the decoder groups byte-fallback tokens and
  // the last token it would see is one.
  bool endsInOpenByteRun(const std::vector<uint32_t> &ids, bool skipSpecialTokens) const;

private:
  Status truncate(std::vector<uint32_t> &ids, bool addSpecialTokens, const std::optional<Truncation> &truncation) const;
  void pad(std::vector<uint32_t> &ids) const;
};

// tokenizer.json -> the pipeline (without the text config).
StatusOr<std::shared_ptr<Tokenizer::Impl>> parseTokenizerJson(const std::string &text);
// The config files -> impl.config (and added tokens listed only in tokenizer_config.json).
Status applyConfigFiles(const TokenizerFiles &files, Tokenizer::Impl &impl);

} // namespace kiln::tokenizer
