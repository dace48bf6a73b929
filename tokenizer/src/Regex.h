// Oniguruma, the regex engine Hugging Face tokenizers uses, with the match iteration of the Rust `onig`
// crate (an empty match right after a match is skipped), for Split / Replace patterns.
#pragma once

#include "kiln/support/Status.h"

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::tokenizer::detail {

// Consecutive ranges covering a string, each flagged whether it is a match (Hugging Face find_matches).
using Matches = std::vector<std::pair<std::pair<size_t, size_t>, bool>>;

class Regex {
public:
  // A pattern in Oniguruma's default (Ruby) syntax; an error names the pattern and the reason.
  static StatusOr<std::shared_ptr<const Regex>> compile(std::string_view pattern);
  // A literal string (Hugging Face escapes String patterns and compiles them as regexes).
  static StatusOr<std::shared_ptr<const Regex>> literal(std::string_view text);
  ~Regex();
  Regex(const Regex &) = delete;
  Regex &operator=(const Regex &) = delete;

  // Non-overlapping matches, left to right, as (begin, end) byte ranges.
  StatusOr<std::vector<std::pair<size_t, size_t>>> findAll(std::string_view s) const;
  // The matches and the text between them (one unmatched range for an empty string).
  StatusOr<Matches> findMatches(std::string_view s) const;
  const std::string &pattern() const { return pattern_; }

private:
  Regex() = default;
  void *regex_ = nullptr; // regex_t*
  std::string pattern_;
};

} // namespace kiln::tokenizer::detail
