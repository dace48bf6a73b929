// The pipeline's stages, as Hugging Face tokenizers has them: normalizer -> pre-tokenizer -> model ->
// post-processor on the way in, decoder on the way out. Each is parsed from its tokenizer.json object by a
// parse* function that refuses unknown types with a message naming them.
#pragma once

#include "Json.h"
#include "NormalizedString.h"

#include "kiln/support/Status.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::tokenizer::detail {

// One piece of a pre-tokenized string; pieces that already hold ids (added tokens) are final.
struct Split {
  NormalizedString text;
  bool final = false;
  std::vector<uint32_t> ids;
};
using Splits = std::vector<Split>;

// Replaces each non-final split by the pieces `fn` cuts it into, dropping empty ones (Hugging Face
// PreTokenizedString::split). fn: NormalizedString -> StatusOr<std::vector<NormalizedString>>.
template <class F> Status splitEach(Splits &splits, F fn) {
  Splits out;
  out.reserve(splits.size());
  for (Split &s : splits) {
    if (s.final) {
      out.push_back(std::move(s));
      continue;
    }
    auto pieces = fn(std::move(s.text));
    if (!pieces.ok())
      return pieces.status();
    for (NormalizedString &p : *pieces)
      if (!p.empty())
        out.push_back(Split{std::move(p), false, {}});
  }
  splits = std::move(out);
  return Status::ok();
}

class Normalizer {
public:
  virtual ~Normalizer() = default;
  virtual Status normalize(NormalizedString &s) const = 0;
};

class PreTokenizer {
public:
  virtual ~PreTokenizer() = default;
  virtual Status preTokenize(Splits &splits) const = 0;
};

class Model {
public:
  virtual ~Model() = default;
  // Appends the ids of one pre-tokenized piece (non-empty).
  virtual Status tokenize(std::string_view piece, std::vector<uint32_t> &ids) const = 0;
  virtual std::optional<uint32_t> tokenToId(std::string_view token) const = 0;
  virtual const std::string *idToToken(uint32_t id) const = 0;
  // The number of vocabulary entries (Hugging Face get_vocab_size of the model).
  virtual size_t vocabSize() const = 0;
  virtual const char *type() const = 0;
};

// Appends the byte-fallback tokens "<0xNN>" of each byte of `s`; false (and nothing appended) when the model
// lacks one of them.
bool appendByteFallbackIds(const Model &model, std::string_view s, std::vector<uint32_t> &ids);

class PostProcessor {
public:
  virtual ~PostProcessor() = default;
  // How many special tokens process() adds to a single sequence (used by truncation).
  virtual size_t addedTokens() const = 0;
  // A single sequence's ids, with the special tokens added when `addSpecialTokens`.
  virtual void process(std::vector<uint32_t> &ids, bool addSpecialTokens) const = 0;
};

class Decoder {
public:
  virtual ~Decoder() = default;
  // Hugging Face decode_chain: tokens in, transformed tokens out (joined with "" at the end).
  virtual Status decodeChain(std::vector<std::string> &tokens) const = 0;
  // Whether a run of <0xNN> tokens decodes as a whole (ByteFallback: one invalid byte turns the whole run into
  // U+FFFD), so streamed text must wait for the run to end.
  virtual bool decodesByteRuns() const { return false; }
};

// The byte of a byte-fallback token "<0xNN>", or -1.
int byteFallbackValue(const std::string &token);

StatusOr<std::unique_ptr<Normalizer>> parseNormalizer(const JsonNode &node);
StatusOr<std::unique_ptr<PreTokenizer>> parsePreTokenizer(const JsonNode &node);
StatusOr<std::unique_ptr<Model>> parseModel(const JsonNode &node);
StatusOr<std::unique_ptr<PostProcessor>> parsePostProcessor(const JsonNode &node);
StatusOr<std::unique_ptr<Decoder>> parseDecoder(const JsonNode &node);

// The array `key` of `node` (a Sequence's parts), each element parsed by `parse`.
template <class T>
StatusOr<std::vector<std::unique_ptr<T>>> parseList(const JsonNode &node, const std::string &key,
                                                    StatusOr<std::unique_ptr<T>> (*parse)(const JsonNode &)) {
  auto list = node.required(key);
  if (!list.ok())
    return list.status();
  if (!list->isArray())
    return list->error("expected an array");
  std::vector<std::unique_ptr<T>> out;
  for (size_t i = 0; i < list->size(); ++i) {
    auto part = parse(list->element(i));
    if (!part.ok())
      return part.status();
    out.push_back(std::move(*part));
  }
  return out;
}

// A Sequence component: its parts, from the array `key`.
template <class Sequence, class Base>
StatusOr<std::unique_ptr<Base>> parseSequenceOf(const JsonNode &node, const std::string &key,
                                                StatusOr<std::unique_ptr<Base>> (*parse)(const JsonNode &)) {
  auto parts = parseList<Base>(node, key, parse);
  if (!parts.ok())
    return parts.status();
  auto seq = std::make_unique<Sequence>();
  seq->parts = std::move(*parts);
  return std::unique_ptr<Base>(std::move(seq));
}

// Runs `step` on each part of a Sequence, stopping at the first error.
template <class Parts, class Step> Status forEachPart(const Parts &parts, Step step) {
  for (const auto &part : parts)
    if (Status s = step(*part); !s)
      return s;
  return Status::ok();
}

// Metaspace's options (shared by the pre-tokenizer and the decoder).
enum class PrependScheme { First, Never, Always };
struct MetaspaceOptions {
  char32_t replacement = 0x2581;
  PrependScheme scheme = PrependScheme::Always;
  bool split = true;
};
StatusOr<MetaspaceOptions> parseMetaspaceOptions(const JsonNode &node);

// The "pattern" member of `node` ({"String": s} or {"Regex": r}), compiled.
StatusOr<std::shared_ptr<const Regex>> parsePatternMember(const JsonNode &node);

// A {"String": s} or {"Regex": r} pattern (Split, Replace), compiled.
StatusOr<std::shared_ptr<const Regex>> parsePattern(const JsonNode &node);
StatusOr<SplitBehavior> parseSplitBehavior(const JsonNode &node, const std::string &key);

} // namespace kiln::tokenizer::detail
