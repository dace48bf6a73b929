// Added tokens (Hugging Face tokenizers/src/tokenizer/added_vocabulary.rs): tokens matched in the text before
// the model sees it. Two passes: tokens with normalized=false are found in the raw text, then each remaining
// piece is normalized and tokens with normalized=true are found in it. Matching is leftmost-longest; a match
// of a single_word token inside a word is skipped, lstrip / rstrip take the spaces around a match with it.
#pragma once

#include "ByteTrie.h"
#include "Components.h"

#include <unordered_map>
#include <unordered_set>

namespace kiln::tokenizer::detail {

struct AddedToken {
  std::string content;
  bool singleWord = false, lstrip = false, rstrip = false, normalized = true, special = false;
  bool operator==(const AddedToken &o) const {
    return content == o.content && singleWord == o.singleWord && lstrip == o.lstrip && rstrip == o.rstrip &&
           normalized == o.normalized && special == o.special;
  }
};

// The added tokens to find, by their text; searched leftmost-longest.
using TokenMatcher = ByteTrie;

class AddedVocabulary {
public:
  // Adds tokens as Hugging Face add_tokens does: a token already in the model keeps the model's id, a new one
  // gets the next id after the model's vocabulary. `normalizer` may be null.
  Status add(const std::vector<AddedToken> &tokens, const Model &model, const Normalizer *normalizer);

  // The input text split around added tokens (final splits with their id), the rest normalized.
  Status extractAndNormalize(std::string_view text, const Normalizer *normalizer, Splits &splits) const;

  std::optional<uint32_t> find(std::string_view content) const;
  // The token's text for decoding (its normalized form when normalization changed it).
  const std::string *decodeForm(uint32_t id) const;
  const AddedToken *token(uint32_t id) const;
  bool isSpecialToken(const std::string &token) const { return special_.count(token) != 0; }
  const std::unordered_map<std::string, uint32_t> &ids() const { return ids_; }

private:
  Status rebuildMatchers();
  std::vector<std::pair<std::pair<size_t, size_t>, std::optional<uint32_t>>> findMatches(
      std::string_view text, const TokenMatcher &matcher) const;
  Status splitWithMatcher(Splits &splits, const TokenMatcher &matcher, const Normalizer *normalizer) const;

  std::unordered_map<std::string, uint32_t> ids_;
  std::unordered_map<uint32_t, AddedToken> tokens_;
  std::unordered_map<uint32_t, std::string> normalizedForm_;
  std::unordered_set<std::string> special_;
  TokenMatcher raw_, normalized_;
};

} // namespace kiln::tokenizer::detail
