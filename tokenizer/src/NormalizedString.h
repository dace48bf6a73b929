// A piece of text being normalized and split, with the original byte offset of each byte (as Hugging Face's
// NormalizedString keeps alignments). Only offsets are kept, not full ranges: the pipeline needs them for
// one decision, whether a piece starts at the very beginning of the input (Metaspace's prepend_scheme
// "first").
#pragma once

#include "Regex.h"
#include "Unicode.h"

#include "kiln/support/Status.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::tokenizer::detail {

struct NormalizedString {
  std::string text;
  std::vector<uint32_t> origin; // per byte of `text`: original offset of the character it came from
  uint32_t shift = 0;           // original offset of this piece's start (for text inserted before it)

  static NormalizedString fromOriginal(std::string_view s, uint32_t offset);
  bool empty() const { return text.empty(); }
  // Where this piece starts in the original input (Hugging Face's offsets_original().0).
  uint32_t originalStart() const { return origin.empty() ? shift : origin[0]; }
  NormalizedString slice(size_t begin, size_t end) const;

  // Replaces each character by `f(c, out)`'s output (possibly empty: removed); new characters inherit the
  // original offset of the one they replace.
  template <class F> void mapChars(F f);
  void prepend(std::string_view s);
  void append(std::string_view s);
  void normalize(NormalForm form);
  void lowercase();
  void strip(bool left, bool right);
  // Replaces every match of `pattern` (non-overlapping, left to right) by `content`.
  Status replace(const Regex &pattern, std::string_view content);
};

template <class F> void NormalizedString::mapChars(F f) {
  std::string newText;
  std::vector<uint32_t> newOrigin;
  newText.reserve(text.size());
  newOrigin.reserve(text.size());
  std::string buf;
  for (size_t i = 0; i < text.size();) {
    size_t start = i;
    char32_t c = decodeUtf8(text, i);
    buf.clear();
    f(c, buf);
    newText += buf;
    newOrigin.insert(newOrigin.end(), buf.size(), origin[start]);
  }
  text = std::move(newText);
  origin = std::move(newOrigin);
}

// How a split keeps the delimiters it finds (Hugging Face SplitDelimiterBehavior).
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// Splits `s` by `matches` as `behavior` says; empty pieces are dropped by the caller.
std::vector<NormalizedString> splitByMatches(const NormalizedString &s, const Matches &matches,
                                             SplitBehavior behavior);
// The matches of a character predicate (each matching character is one match).
template <class P> Matches charMatches(std::string_view s, P predicate) {
  Matches out;
  if (s.empty()) {
    out.push_back({{0, 0}, false});
    return out;
  }
  size_t last = 0;
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    char32_t c = decodeUtf8(s, i);
    if (predicate(c)) {
      if (last < start)
        out.push_back({{last, start}, false});
      out.push_back({{start, i}, true});
      last = i;
    }
  }
  if (last < s.size())
    out.push_back({{last, s.size()}, false});
  return out;
}

} // namespace kiln::tokenizer::detail
