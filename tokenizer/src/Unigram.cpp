// The Unigram model (Hugging Face tokenizers/src/models/unigram): the best-scoring segmentation (Viterbi),
// unknown characters fused into one unknown piece, optional byte fallback.
#include "ByteTrie.h"
#include "Models.h"

#include <algorithm>
#include <cstdio>
#include <limits>

namespace kiln::tokenizer::detail {

namespace {

class UnigramModel : public Model {
public:
  std::vector<std::pair<std::string, double>> pieces;
  std::unordered_map<std::string, uint32_t> ids;
  ByteTrie trie;
  std::optional<uint32_t> unkId;
  bool byteFallback = false;
  double minScore = 0;

  Status tokenize(std::string_view piece, std::vector<uint32_t> &out) const override;
  std::optional<uint32_t> tokenToId(std::string_view token) const override {
    auto it = ids.find(std::string(token));
    if (it == ids.end())
      return std::nullopt;
    return it->second;
  }
  const std::string *idToToken(uint32_t id) const override {
    return id < pieces.size() ? &pieces[id].first : nullptr;
  }
  size_t vocabSize() const override { return pieces.size(); }
  const char *type() const override { return "Unigram"; }

private:
  StatusOr<std::vector<std::string_view>> segment(std::string_view s) const;
};

constexpr double kUnkPenalty = 10.0;

// The best segmentation (SentencePiece's optimized Viterbi, as Hugging Face encode_optimized); consecutive
// unknown pieces are fused.
StatusOr<std::vector<std::string_view>> UnigramModel::segment(std::string_view s) const {
  struct Best {
    double score = 0;
    std::optional<size_t> start;
    uint32_t id = 0;
  };
  std::vector<Best> best(s.size() + 1);
  double unkScore = minScore - kUnkPenalty;
  auto offer = [&](size_t end, size_t start, double score, uint32_t id) {
    Best &b = best[end];
    if (!b.start || score > b.score) {
      b.score = score;
      b.start = start;
      b.id = id;
    }
  };
  for (size_t start = 0; start < s.size();) {
    double base = best[start].score;
    size_t charLen = utf8Length(static_cast<unsigned char>(s[start]));
    bool singleChar = false;
    trie.prefixes(s.substr(start), [&](size_t len, uint32_t id) {
      offer(start + len, start, pieces[id].second + base, id);
      singleChar |= len == charLen;
    });
    if (!singleChar) {
      if (!unkId)
        return Status::error("Unigram: a character is not in the vocabulary and unk_id is missing");
      offer(start + charLen, start, unkScore + base, *unkId);
    }
    start += charLen;
  }
  std::vector<std::string_view> out;
  size_t unkEnd = 0;
  bool inUnk = false;
  for (size_t end = s.size(); end > 0;) {
    const Best &b = best[end];
    size_t start = *b.start;
    if (unkId && b.id == *unkId) {
      if (!inUnk)
        unkEnd = end;
      inUnk = true;
    } else {
      if (inUnk)
        out.push_back(s.substr(end, unkEnd - end));
      inUnk = false;
      out.push_back(s.substr(start, end - start));
    }
    end = start;
  }
  if (inUnk)
    out.push_back(s.substr(0, unkEnd));
  std::reverse(out.begin(), out.end());
  return out;
}

Status UnigramModel::tokenize(std::string_view piece, std::vector<uint32_t> &out) const {
  if (piece.empty())
    return Status::ok();
  auto segments = segment(piece);
  if (!segments.ok())
    return segments.status();
  for (std::string_view seg : *segments) {
    if (auto id = tokenToId(seg)) {
      out.push_back(*id);
      continue;
    }
    if (byteFallback && appendByteFallbackIds(*this, seg, out))
      continue;
    if (!unkId)
      return Status::error("Unigram: a character is not in the vocabulary and unk_id is missing");
    out.push_back(*unkId);
  }
  return Status::ok();
}

} // namespace

StatusOr<std::unique_ptr<Model>> parseUnigram(const JsonNode &node) {
  auto u = std::make_unique<UnigramModel>();
  auto vocab = node.required("vocab");
  if (!vocab.ok())
    return vocab.status();
  if (!vocab->isArray())
    return vocab->error("expected an array of [token, score] pairs");
  u->minScore = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < vocab->size(); ++i) {
    JsonNode e = vocab->element(i);
    std::string token;
    if (!e.isArray() || e.size() != 2 || !e.json()[1].is_number())
      return e.error("expected a [token, score] pair");
    if (Status s = e.element(0).asString(token); !s)
      return s;
    double score = e.json()[1].get<double>();
    u->ids[token] = uint32_t(i);
    u->minScore = std::min(u->minScore, score);
    u->pieces.emplace_back(std::move(token), score);
  }
  // The trie maps each token to the id Hugging Face's token map gives it (the last duplicate).
  for (const auto &[token, id] : u->ids)
    u->trie.insert(token, id);
  std::optional<uint64_t> unk;
  if (Status s = node.getOptionalUint("unk_id", unk); !s)
    return s;
  if (unk) {
    if (u->pieces.empty())
      return node.error("the vocabulary is empty but at least <unk> is needed");
    if (*unk >= u->pieces.size())
      return node.error("'unk_id' is larger than the vocabulary");
    u->unkId = uint32_t(*unk);
  }
  if (Status s = node.getBool("byte_fallback", u->byteFallback, false); !s)
    return s;
  return std::unique_ptr<Model>(std::move(u));
}

} // namespace kiln::tokenizer::detail
