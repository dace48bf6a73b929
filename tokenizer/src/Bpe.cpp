// The BPE model (Hugging Face tokenizers/src/models/bpe): byte-level (GPT-2, Llama 3, Qwen2) and
// SentencePiece-style with byte fallback (Llama 2, Mistral, Gemma).
#include "Models.h"

#include <cstdio>
#include <queue>

namespace kiln::tokenizer::detail {

Status Vocab::parse(const JsonNode &node) {
  if (!node.isObject())
    return node.error("expected an object mapping tokens to ids");
  ids.reserve(node.size());
  tokens.reserve(node.size());
  for (const auto &[token, value] : node.json().items()) {
    JsonNode entry(value, childPath(node.where(), token));
    uint64_t id = 0;
    if (Status s = entry.asUint(id); !s)
      return s;
    if (id > UINT32_MAX)
      return entry.error("id out of range");
    if (!isValidUtf8(token))
      return node.error("a token is not valid UTF-8");
    ids[token] = uint32_t(id);
    tokens[uint32_t(id)] = token;
  }
  return Status::ok();
}

bool appendByteFallbackIds(const Model &model, std::string_view s, std::vector<uint32_t> &ids) {
  size_t before = ids.size();
  for (unsigned char b : s) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto id = model.tokenToId(name);
    if (!id) {
      ids.resize(before);
      return false;
    }
    ids.push_back(*id);
  }
  return true;
}

namespace {

class BpeModel : public VocabModel {
public:
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<uint32_t, uint32_t>> merges;
  std::optional<std::string> unkToken, continuingSubwordPrefix, endOfWordSuffix;
  bool fuseUnk = false, byteFallback = false, ignoreMerges = false;

  Status tokenize(std::string_view piece, std::vector<uint32_t> &ids) const override;
  const char *type() const override { return "BPE"; }

private:
  struct Symbol {
    uint32_t id;
    int64_t prev, next;
    size_t len; // bytes; 0 once merged into its left neighbour
  };
  Status initialSymbols(std::string_view word, std::vector<Symbol> &symbols) const;
  void mergeAll(std::vector<Symbol> &symbols) const;
  const std::pair<uint32_t, uint32_t> *findMerge(uint32_t a, uint32_t b) const {
    auto it = merges.find((uint64_t(a) << 32) | b);
    return it == merges.end() ? nullptr : &it->second;
  }
};

// The word's characters as vocabulary ids (with the subword prefix / suffix), byte-fallback tokens for
// unknown characters, or the unknown token (fused when fuse_unk).
Status BpeModel::initialSymbols(std::string_view word, std::vector<Symbol> &symbols) const {
  std::optional<std::pair<uint32_t, size_t>> unk;
  auto add = [&](uint32_t id, size_t len) {
    int64_t n = int64_t(symbols.size());
    if (!symbols.empty())
      symbols.back().next = n;
    symbols.push_back(Symbol{id, n - 1, -1, len});
  };
  for (size_t i = 0; i < word.size();) {
    size_t start = i;
    decodeUtf8(word, i);
    std::string s(word.substr(start, i - start));
    size_t byteLen = s.size();
    if (start > 0 && continuingSubwordPrefix)
      s = *continuingSubwordPrefix + s;
    if (i == word.size() && endOfWordSuffix)
      s += *endOfWordSuffix;
    if (auto id = vocab.find(s)) {
      if (unk) {
        add(unk->first, unk->second);
        unk.reset();
      }
      add(*id, byteLen);
      continue;
    }
    if (byteFallback) {
      std::vector<uint32_t> byteIds;
      if (appendByteFallbackIds(*this, s, byteIds)) {
        for (uint32_t id : byteIds)
          add(id, 1);
        continue;
      }
    }
    if (!unkToken)
      continue; // Hugging Face drops a character it cannot represent
    auto unkId = vocab.find(*unkToken);
    if (!unkId)
      return Status::error("BPE: unk_token '" + *unkToken + "' is not in the vocabulary");
    if (unk && fuseUnk) {
      unk->second += byteLen;
    } else {
      if (unk)
        add(unk->first, unk->second);
      unk = std::make_pair(*unkId, byteLen);
    }
  }
  if (unk)
    add(unk->first, unk->second);
  return Status::ok();
}

// Applies merges lowest rank first (ties: leftmost), as Hugging Face's Word::merge_all.
void BpeModel::mergeAll(std::vector<Symbol> &symbols) const {
  struct Candidate {
    uint32_t rank;
    size_t pos;
    uint32_t newId;
    bool operator<(const Candidate &o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i)
    if (const auto *m = findMerge(symbols[i].id, symbols[i + 1].id))
      queue.push({m->first, i, m->second});
  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    Symbol &cur = symbols[top.pos];
    if (cur.len == 0 || cur.next == -1)
      continue;
    size_t nextPos = size_t(cur.next);
    Symbol right = symbols[nextPos];
    const auto *m = findMerge(cur.id, right.id);
    if (m == nullptr || m->second != top.newId)
      continue; // stale entry
    cur.id = top.newId;
    cur.len += right.len;
    cur.next = right.next;
    symbols[nextPos].len = 0;
    if (right.next >= 0 && size_t(right.next) < symbols.size())
      symbols[size_t(right.next)].prev = int64_t(top.pos);
    if (cur.prev >= 0)
      if (const auto *pm = findMerge(symbols[size_t(cur.prev)].id, cur.id))
        queue.push({pm->first, size_t(cur.prev), pm->second});
    if (cur.next >= 0 && size_t(cur.next) < symbols.size())
      if (const auto *nm = findMerge(cur.id, symbols[size_t(cur.next)].id))
        queue.push({nm->first, top.pos, nm->second});
  }
}

Status BpeModel::tokenize(std::string_view piece, std::vector<uint32_t> &ids) const {
  if (piece.empty())
    return Status::ok();
  if (ignoreMerges)
    if (auto id = vocab.find(piece)) {
      ids.push_back(*id);
      return Status::ok();
    }
  std::vector<Symbol> symbols;
  if (Status s = initialSymbols(piece, symbols); !s)
    return s;
  mergeAll(symbols);
  for (const Symbol &s : symbols)
    if (s.len != 0)
      ids.push_back(s.id);
  return Status::ok();
}

// One merge: "a b" or ["a", "b"].
Status parseMerge(const JsonNode &entry, std::string &a, std::string &b) {
  if (entry.json().is_string()) {
    std::string line;
    if (Status s = entry.asString(line); !s)
      return s;
    size_t sp = line.find(' ');
    if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
      return entry.error("a merge must be two tokens separated by one space");
    a = line.substr(0, sp);
    b = line.substr(sp + 1);
    return Status::ok();
  }
  if (!entry.isArray() || entry.size() != 2)
    return entry.error("a merge must be \"a b\" or [a, b]");
  if (Status s = entry.element(0).asString(a); !s)
    return s;
  return entry.element(1).asString(b);
}

Status parseMerges(const JsonNode &list, BpeModel &bpe) {
  if (!list.isArray())
    return list.error("expected an array of merges");
  size_t prefixLen = bpe.continuingSubwordPrefix ? bpe.continuingSubwordPrefix->size() : 0;
  bpe.merges.reserve(list.size());
  uint32_t rank = 0;
  for (size_t i = 0; i < list.size(); ++i) {
    JsonNode entry = list.element(i);
    if (entry.json().is_string() && entry.json().get_ref<const std::string &>().rfind("#version", 0) == 0)
      continue;
    std::string a, b;
    if (Status s = parseMerge(entry, a, b); !s)
      return s;
    auto aId = bpe.vocab.find(a), bId = bpe.vocab.find(b);
    if (!aId || !bId)
      return entry.error("merge token '" + (aId ? b : a) + "' is not in the vocabulary");
    if (b.size() < prefixLen)
      return entry.error("merge token '" + b + "' is shorter than continuing_subword_prefix");
    auto merged = bpe.vocab.find(a + b.substr(prefixLen));
    if (!merged)
      return entry.error("merged token '" + a + b.substr(prefixLen) + "' is not in the vocabulary");
    bpe.merges[(uint64_t(*aId) << 32) | *bId] = {rank++, *merged};
  }
  return Status::ok();
}

} // namespace

StatusOr<std::unique_ptr<Model>> parseBpe(const JsonNode &node) {
  auto bpe = std::make_unique<BpeModel>();
  std::optional<double> dropout;
  if (Status s = node.getOptionalDouble("dropout", dropout); !s)
    return s;
  if (dropout && *dropout != 0.0)
    return node.error("BPE dropout is not supported (it makes encoding random)");
  if (Status s = JsonFields(node)
                     .optionalString("unk_token", bpe->unkToken)
                     .optionalString("continuing_subword_prefix", bpe->continuingSubwordPrefix)
                     .optionalString("end_of_word_suffix", bpe->endOfWordSuffix)
                     .boolean("fuse_unk", bpe->fuseUnk, false)
                     .boolean("byte_fallback", bpe->byteFallback, false)
                     .boolean("ignore_merges", bpe->ignoreMerges, false)
                     .status();
      !s)
    return s;
  auto vocab = node.required("vocab");
  if (!vocab.ok())
    return vocab.status();
  if (Status s = bpe->vocab.parse(*vocab); !s)
    return s;
  auto merges = node.required("merges");
  if (!merges.ok())
    return merges.status();
  if (Status s = parseMerges(*merges, *bpe); !s)
    return s;
  return std::unique_ptr<Model>(std::move(bpe));
}

} // namespace kiln::tokenizer::detail
