// WordPiece and WordLevel (Hugging Face tokenizers/src/models/{wordpiece,wordlevel}), and the model
// dispatcher.
#include "Models.h"

namespace kiln::tokenizer::detail {

namespace {

// Greedy longest-match-first subwords; a word with any unmatchable part becomes the unknown token.
class WordPieceModel : public VocabModel {
public:
  std::string unkToken = "[UNK]", prefix = "##";
  uint64_t maxInputCharsPerWord = 100;

  Status tokenize(std::string_view piece, std::vector<uint32_t> &ids) const override {
    if (charCount(piece) > maxInputCharsPerWord)
      return pushUnk(ids);
    std::vector<uint32_t> sub;
    size_t start = 0;
    std::string candidate;
    while (start < piece.size()) {
      size_t end = piece.size();
      std::optional<uint32_t> found;
      while (start < end) {
        candidate.assign(start > 0 ? prefix : std::string());
        candidate.append(piece.substr(start, end - start));
        if ((found = vocab.find(candidate)))
          break;
        end = lastCharStart(piece.substr(0, end));
      }
      if (!found)
        return pushUnk(ids);
      sub.push_back(*found);
      start = end;
    }
    ids.insert(ids.end(), sub.begin(), sub.end());
    return Status::ok();
  }
  const char *type() const override { return "WordPiece"; }

private:
  Status pushUnk(std::vector<uint32_t> &ids) const {
    auto id = vocab.find(unkToken);
    if (!id)
      return Status::error("WordPiece: unk_token '" + unkToken + "' is not in the vocabulary");
    ids.push_back(*id);
    return Status::ok();
  }
};

// One id per pre-tokenized word.
class WordLevelModel : public VocabModel {
public:
  std::string unkToken = "<unk>";

  Status tokenize(std::string_view piece, std::vector<uint32_t> &ids) const override {
    auto id = vocab.find(piece);
    if (!id)
      id = vocab.find(unkToken);
    if (!id)
      return Status::error("WordLevel: unk_token '" + unkToken + "' is not in the vocabulary");
    ids.push_back(*id);
    return Status::ok();
  }
  const char *type() const override { return "WordLevel"; }
};

StatusOr<std::unique_ptr<Model>> parseWordPiece(const JsonNode &node) {
  auto wp = std::make_unique<WordPieceModel>();
  std::optional<std::string> unk, prefix;
  if (Status st = JsonFields(node)
                      .optionalString("unk_token", unk)
                      .optionalString("continuing_subword_prefix", prefix)
                      .uint("max_input_chars_per_word", wp->maxInputCharsPerWord, 100)
                      .status();
      !st)
    return st;
  wp->unkToken = unk.value_or(wp->unkToken);
  wp->prefix = prefix.value_or(wp->prefix);
  auto vocab = node.required("vocab");
  if (!vocab.ok())
    return vocab.status();
  if (Status st = wp->vocab.parse(*vocab); !st)
    return st;
  return std::unique_ptr<Model>(std::move(wp));
}

StatusOr<std::unique_ptr<Model>> parseWordLevel(const JsonNode &node) {
  auto wl = std::make_unique<WordLevelModel>();
  std::optional<std::string> unk;
  if (Status st = JsonFields(node).optionalString("unk_token", unk).status(); !st)
    return st;
  wl->unkToken = unk.value_or(wl->unkToken);
  auto vocab = node.required("vocab");
  if (!vocab.ok())
    return vocab.status();
  if (Status st = wl->vocab.parse(*vocab); !st)
    return st;
  return std::unique_ptr<Model>(std::move(wl));
}

} // namespace

StatusOr<std::unique_ptr<Model>> parseModel(const JsonNode &node) {
  std::string type;
  auto t = node.member("type");
  if (!t.ok())
    return t.status();
  if (t->has_value()) {
    if (Status s = (*t)->asString(type); !s)
      return s;
  } else {
    // Files from before "type" existed: the fields tell the model apart (Hugging Face tries them in order).
    auto merges = node.member("merges"), prefix = node.member("continuing_subword_prefix");
    if (!merges.ok())
      return merges.status();
    type = merges->has_value() ? "BPE" : (prefix.ok() && prefix->has_value()) ? "WordPiece" : "";
    if (type.empty())
      return node.error("model has no 'type'");
  }
  if (type == "BPE")
    return parseBpe(node);
  if (type == "WordPiece")
    return parseWordPiece(node);
  if (type == "WordLevel")
    return parseWordLevel(node);
  if (type == "Unigram")
    return parseUnigram(node);
  return node.error("unsupported model type '" + type + "'");
}

} // namespace kiln::tokenizer::detail
