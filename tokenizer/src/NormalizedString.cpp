#include "NormalizedString.h"

#include <algorithm>

namespace kiln::tokenizer::detail {

NormalizedString NormalizedString::fromOriginal(std::string_view s, uint32_t offset) {
  NormalizedString n;
  n.text = std::string(s);
  n.origin.resize(s.size());
  n.shift = offset;
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    decodeUtf8(s, i);
    for (size_t k = start; k < i; ++k)
      n.origin[k] = offset + uint32_t(start);
  }
  return n;
}

NormalizedString NormalizedString::slice(size_t begin, size_t end) const {
  NormalizedString n;
  n.text = text.substr(begin, end - begin);
  n.origin.assign(origin.begin() + begin, origin.begin() + end);
  n.shift = begin < origin.size() ? origin[begin] : shift;
  return n;
}

void NormalizedString::prepend(std::string_view s) {
  if (text.empty())
    return;
  text.insert(0, s);
  origin.insert(origin.begin(), s.size(), origin[0]);
}

void NormalizedString::append(std::string_view s) {
  uint32_t o = origin.empty() ? shift : origin.back();
  text += s;
  origin.insert(origin.end(), s.size(), o);
}

void NormalizedString::normalize(NormalForm form) {
  size_t done = normalizedPrefixLength(form, text);
  if (done == text.size())
    return;
  // Normalize segment by segment (a segment starts at each normalization boundary) so that each output
  // character keeps the original offset of its segment.
  std::string newText = text.substr(0, done);
  std::vector<uint32_t> newOrigin(origin.begin(), origin.begin() + done);
  size_t segStart = done;
  for (size_t i = done; i <= text.size();) {
    size_t at = i;
    bool boundary = at == text.size();
    if (!boundary) {
      char32_t c = decodeUtf8(text, i);
      boundary = at > segStart && hasNormalizationBoundaryBefore(form, c);
    }
    if (boundary) {
      std::string seg = normalizeUtf8(form, std::string_view(text).substr(segStart, at - segStart));
      newText += seg;
      newOrigin.insert(newOrigin.end(), seg.size(), origin[segStart]);
      segStart = at;
      if (at == text.size())
        break;
    }
  }
  text = std::move(newText);
  origin = std::move(newOrigin);
}

void NormalizedString::lowercase() {
  mapChars([](char32_t c, std::string &out) { appendLowercase(out, c); });
}

void NormalizedString::strip(bool left, bool right) {
  size_t begin = 0, end = text.size();
  if (left) {
    while (begin < end) {
      size_t i = begin;
      if (!isWhitespace(decodeUtf8(text, i)))
        break;
      begin = i;
    }
  }
  if (right) {
    while (end > begin) {
      size_t start = lastCharStart(std::string_view(text).substr(0, end)), i = start;
      if (!isWhitespace(decodeUtf8(text, i)))
        break;
      end = start;
    }
  }
  if (begin == 0 && end == text.size())
    return;
  text = text.substr(begin, end - begin);
  origin.assign(origin.begin() + begin, origin.begin() + end);
}

Status NormalizedString::replace(const Regex &pattern, std::string_view content) {
  auto matches = pattern.findMatches(text);
  if (!matches.ok())
    return matches.status();
  std::string newText;
  std::vector<uint32_t> newOrigin;
  for (const auto &[range, isMatch] : *matches) {
    auto [b, e] = range;
    if (!isMatch) {
      newText.append(text, b, e - b);
      newOrigin.insert(newOrigin.end(), origin.begin() + b, origin.begin() + e);
      continue;
    }
    // The replacement aligns with the last byte before its end (Hugging Face: inserted characters share
    // the alignment of the previous one).
    uint32_t o = e >= 1 ? origin[e - 1] : shift;
    newText += content;
    newOrigin.insert(newOrigin.end(), content.size(), o);
  }
  text = std::move(newText);
  origin = std::move(newOrigin);
  return Status::ok();
}

std::vector<NormalizedString> splitByMatches(const NormalizedString &s, const Matches &matches,
                                             SplitBehavior behavior) {
  // (range, remove) per split, following Hugging Face NormalizedString::split.
  std::vector<std::pair<std::pair<size_t, size_t>, bool>> splits;
  switch (behavior) {
  case SplitBehavior::Isolated:
    for (const auto &[r, m] : matches)
      splits.push_back({r, false});
    break;
  case SplitBehavior::Removed:
    splits.assign(matches.begin(), matches.end());
    break;
  case SplitBehavior::Contiguous:
  case SplitBehavior::MergedWithPrevious: {
    // Contiguous joins runs of the same kind; MergedWithPrevious joins a match to the text before it.
    bool contiguous = behavior == SplitBehavior::Contiguous, previous = false;
    for (const auto &[r, m] : matches) {
      bool join = contiguous ? m == previous : m && !previous;
      if (join && !splits.empty())
        splits.back().first.second = r.second;
      else
        splits.push_back({r, false});
      previous = m;
    }
    break;
  }
  case SplitBehavior::MergedWithNext: {
    bool previous = false;
    for (auto it = matches.rbegin(); it != matches.rend(); ++it) {
      const auto &[r, m] = *it;
      if (m && !previous && !splits.empty())
        splits.back().first.first = r.first;
      else
        splits.push_back({r, false});
      previous = m;
    }
    std::reverse(splits.begin(), splits.end());
    break;
  }
  }
  std::vector<NormalizedString> out;
  for (const auto &[r, remove] : splits)
    if (!remove)
      out.push_back(s.slice(r.first, r.second));
  return out;
}

} // namespace kiln::tokenizer::detail
