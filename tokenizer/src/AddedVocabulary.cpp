#include "AddedVocabulary.h"

#include <algorithm>
#include <map>

namespace kiln::tokenizer::detail {

namespace {
// The leftmost match at or after `from`, the longest one there (Aho-Corasick's leftmost-longest): begin, end, id.
bool findLeftmostLongest(const TokenMatcher &matcher, std::string_view text, size_t from, size_t &begin,
                         size_t &end, uint32_t &id) {
  if (matcher.empty())
    return false;
  for (size_t s = from; s < text.size(); ++s) {
    size_t longest = 0;
    matcher.prefixes(text.substr(s), [&](size_t length, uint32_t value) {
      longest = length;
      id = value;
    });
    if (longest > 0) {
      begin = s;
      end = s + longest;
      return true;
    }
  }
  return false;
}
} // namespace

Status AddedVocabulary::add(const std::vector<AddedToken> &tokens, const Model &model,
                            const Normalizer *normalizer) {
  uint32_t nextId = uint32_t(model.vocabSize());
  if (!tokens_.empty()) {
    uint32_t maxId = 0;
    for (const auto &[id, t] : tokens_)
      maxId = std::max(maxId, id);
    if (maxId >= model.vocabSize() || model.vocabSize() == 0)
      nextId = maxId + 1;
  }
  for (const AddedToken &token : tokens) {
    if (token.content.empty())
      continue;
    auto known = ids_.find(token.content);
    if (known != ids_.end() && tokens_.count(known->second) && tokens_[known->second] == token)
      continue;
    uint32_t id;
    if (known != ids_.end())
      id = known->second;
    else if (auto m = model.tokenToId(token.content))
      id = *m;
    else
      id = nextId++;
    if (token.normalized && normalizer) {
      NormalizedString s = NormalizedString::fromOriginal(token.content, 0);
      if (Status st = normalizer->normalize(s); !st)
        return st;
      if (s.text != token.content)
        normalizedForm_[id] = s.text;
    }
    ids_[token.content] = id;
    if (token.special)
      special_.insert(token.content);
    tokens_[id] = token;
  }
  return rebuildMatchers();
}

Status AddedVocabulary::rebuildMatchers() {
  raw_ = TokenMatcher();
  normalized_ = TokenMatcher();
  std::map<std::string, uint32_t> rawPatterns, normPatterns; // ordered: deterministic messages
  for (const auto &[id, token] : tokens_) {
    auto cached = normalizedForm_.find(id);
    const std::string &pattern =
        token.normalized && cached != normalizedForm_.end() ? cached->second : token.content;
    auto &patterns = token.normalized ? normPatterns : rawPatterns;
    if (pattern.empty())
      return Status::error("added token '" + token.content + "' normalizes to an empty string");
    auto [it, inserted] = patterns.emplace(pattern, id);
    if (!inserted)
      return Status::error("added tokens " + std::to_string(it->second) + " and " + std::to_string(id) +
                           " match the same text '" + pattern + "'");
  }
  for (const auto &[p, id] : rawPatterns)
    raw_.insert(p, id);
  for (const auto &[p, id] : normPatterns)
    normalized_.insert(p, id);
  return Status::ok();
}

namespace {
bool endsWithWord(std::string_view s) {
  if (s.empty())
    return false;
  size_t i = lastCharStart(s);
  return isRegexWord(decodeUtf8(s, i));
}
bool startsWithWord(std::string_view s) {
  if (s.empty())
    return false;
  size_t i = 0;
  return isRegexWord(decodeUtf8(s, i));
}
// Where the trailing run of whitespace of `s` starts (the regex \s*$).
size_t trailingSpaceStart(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = lastCharStart(s.substr(0, end)), i = start;
    if (!isWhitespace(decodeUtf8(s, i)))
      break;
    end = start;
  }
  return end;
}
// The length of the leading run of whitespace of `s` (the regex ^\s*).
size_t leadingSpaceLength(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t next = i;
    if (!isWhitespace(decodeUtf8(s, next)))
      break;
    i = next;
  }
  return i;
}
} // namespace

std::vector<std::pair<std::pair<size_t, size_t>, std::optional<uint32_t>>> AddedVocabulary::findMatches(
    std::string_view text, const TokenMatcher &matcher) const {
  std::vector<std::pair<std::pair<size_t, size_t>, std::optional<uint32_t>>> splits;
  if (text.empty()) {
    splits.push_back({{0, 0}, std::nullopt});
    return splits;
  }
  size_t startOffset = 0, searchFrom = 0, begin, end;
  uint32_t id;
  while (findLeftmostLongest(matcher, text, searchFrom, begin, end, id)) {
    searchFrom = end; // a skipped match still consumes its text, as the Aho-Corasick iterator does
    auto found = tokens_.find(id);
    if (found == tokens_.end())
      continue; // cannot happen: the matchers are built from tokens_
    const AddedToken &token = found->second;
    size_t start = begin, stop = end;
    if (token.singleWord) {
      bool spaceBefore = start == 0 || !endsWithWord(text.substr(0, start));
      bool spaceAfter = stop == text.size() || !startsWithWord(text.substr(stop));
      if (!spaceBefore || !spaceAfter)
        continue;
    }
    if (token.lstrip)
      start = std::max(trailingSpaceStart(text.substr(0, start)), startOffset);
    if (token.rstrip)
      stop += leadingSpaceLength(text.substr(stop));
    if (startOffset < start)
      splits.push_back({{startOffset, start}, std::nullopt});
    splits.push_back({{start, stop}, id});
    startOffset = stop;
  }
  if (startOffset != text.size())
    splits.push_back({{startOffset, text.size()}, std::nullopt});
  return splits;
}

Status AddedVocabulary::splitWithMatcher(Splits &splits, const TokenMatcher &matcher,
                                         const Normalizer *normalizer) const {
  Splits out;
  for (Split &split : splits) {
    if (split.final) {
      out.push_back(std::move(split));
      continue;
    }
    if (normalizer)
      if (Status s = normalizer->normalize(split.text); !s)
        return s;
    for (const auto &[range, id] : findMatches(split.text.text, matcher)) {
      NormalizedString piece = split.text.slice(range.first, std::max(range.first, range.second));
      if (piece.empty())
        continue;
      Split s{std::move(piece), id.has_value(), {}};
      if (id)
        s.ids.push_back(*id);
      out.push_back(std::move(s));
    }
  }
  splits = std::move(out);
  return Status::ok();
}

Status AddedVocabulary::extractAndNormalize(std::string_view text, const Normalizer *normalizer,
                                            Splits &splits) const {
  splits.clear();
  splits.push_back(Split{NormalizedString::fromOriginal(text, 0), false, {}});
  if (Status s = splitWithMatcher(splits, raw_, nullptr); !s)
    return s;
  return splitWithMatcher(splits, normalized_, normalizer);
}

std::optional<uint32_t> AddedVocabulary::find(std::string_view content) const {
  auto it = ids_.find(std::string(content));
  if (it == ids_.end())
    return std::nullopt;
  return it->second;
}

const std::string *AddedVocabulary::decodeForm(uint32_t id) const {
  auto t = tokens_.find(id);
  if (t == tokens_.end())
    return nullptr;
  auto n = normalizedForm_.find(id);
  return n != normalizedForm_.end() ? &n->second : &t->second.content;
}

const AddedToken *AddedVocabulary::token(uint32_t id) const {
  auto t = tokens_.find(id);
  return t == tokens_.end() ? nullptr : &t->second;
}

} // namespace kiln::tokenizer::detail
