// Post-processors (Hugging Face tokenizers/src/processors): the special tokens around a single sequence.
#include "Components.h"

#include <map>

namespace kiln::tokenizer::detail {

namespace {

// Adds `before` and `after` around the sequence (BertProcessing, RobertaProcessing, TemplateProcessing).
class WrapProcessor : public PostProcessor {
public:
  std::vector<uint32_t> before, after;
  size_t addedTokens() const override { return before.size() + after.size(); }
  void process(std::vector<uint32_t> &ids, bool addSpecialTokens) const override {
    if (!addSpecialTokens)
      return;
    ids.insert(ids.begin(), before.begin(), before.end());
    ids.insert(ids.end(), after.begin(), after.end());
  }
};

// ByteLevel as a post-processor only trims offsets: the ids are unchanged.
class IdentityProcessor : public PostProcessor {
public:
  size_t addedTokens() const override { return 0; }
  void process(std::vector<uint32_t> &, bool) const override {}
};

class SequenceProcessor : public PostProcessor {
public:
  std::vector<std::unique_ptr<PostProcessor>> parts;
  size_t addedTokens() const override {
    size_t n = 0;
    for (const auto &p : parts)
      n += p->addedTokens();
    return n;
  }
  void process(std::vector<uint32_t> &ids, bool addSpecialTokens) const override {
    for (const auto &p : parts)
      p->process(ids, addSpecialTokens);
  }
};

// A ["[CLS]", 101] pair.
Status parseTokenPair(const JsonNode &node, const std::string &key, uint32_t &id) {
  auto m = node.required(key);
  if (!m.ok())
    return m.status();
  if (!m->isArray() || m->size() != 2)
    return m->error("expected a [token, id] pair");
  std::string token;
  if (Status s = m->element(0).asString(token); !s)
    return s;
  uint64_t v = 0;
  if (Status s = m->element(1).asUint(v); !s)
    return s;
  if (v > UINT32_MAX)
    return m->error("id out of range");
  id = uint32_t(v);
  return Status::ok();
}

// One template piece: {"Sequence": {"id": "A", ...}}, {"SpecialToken": {"id": "[CLS]", ...}}, or the
// string forms "$A", "$0", "[CLS]", "[CLS]:1". Sets `special` to the token name, or clears it for a sequence.
Status parsePiece(const JsonNode &piece, std::optional<std::string> &special, bool &isB) {
  isB = false;
  std::string text;
  if (piece.json().is_string()) {
    if (Status s = piece.asString(text); !s)
      return s;
    text = text.substr(0, text.find(':'));
    if (!text.empty() && text[0] == '$') {
      special.reset();
      isB = text == "$B" || text == "$b";
      return Status::ok();
    }
    special = text;
    return Status::ok();
  }
  auto seq = piece.member("Sequence");
  if (!seq.ok())
    return seq.status();
  if (seq->has_value()) {
    std::string id;
    if (Status s = (*seq)->getString("id", id); !s)
      return s;
    if (id != "A" && id != "B")
      return (*seq)->error("sequence id must be 'A' or 'B'");
    special.reset();
    isB = id == "B";
    return Status::ok();
  }
  auto tok = piece.required("SpecialToken");
  if (!tok.ok())
    return tok.status();
  if (Status s = tok->getString("id", text); !s)
    return s;
  special = text;
  return Status::ok();
}

StatusOr<std::map<std::string, std::vector<uint32_t>>> parseSpecialTokens(const JsonNode &node) {
  std::map<std::string, std::vector<uint32_t>> out;
  auto m = node.member("special_tokens");
  if (!m.ok())
    return m.status();
  if (!m->has_value())
    return out;
  if (!(*m)->isObject())
    return (*m)->error("expected an object");
  for (const auto &[name, value] : (*m)->json().items()) {
    JsonNode entry(value, childPath((*m)->where(), name));
    auto ids = entry.required("ids");
    if (!ids.ok())
      return ids.status();
    if (!ids->isArray())
      return ids->error("expected an array of ids");
    std::vector<uint32_t> list;
    for (size_t i = 0; i < ids->size(); ++i) {
      uint64_t v = 0;
      if (Status s = ids->element(i).asUint(v); !s)
        return s;
      if (v > UINT32_MAX)
        return ids->element(i).error("id out of range");
      list.push_back(uint32_t(v));
    }
    out[name] = std::move(list);
  }
  return out;
}

StatusOr<std::unique_ptr<PostProcessor>> parseTemplate(const JsonNode &node) {
  auto specials = parseSpecialTokens(node);
  if (!specials.ok())
    return specials.status();
  auto single = node.required("single");
  if (!single.ok())
    return single.status();
  if (!single->isArray())
    return single->error("expected an array of template pieces");
  auto wrap = std::make_unique<WrapProcessor>();
  bool seenSequence = false;
  for (size_t i = 0; i < single->size(); ++i) {
    std::optional<std::string> special;
    bool isB = false;
    if (Status s = parsePiece(single->element(i), special, isB); !s)
      return s;
    if (!special) {
      if (isB || seenSequence)
        return single->element(i).error("the single-sequence template must use sequence A once");
      seenSequence = true;
      continue;
    }
    auto it = specials->find(*special);
    if (it == specials->end())
      return single->element(i).error("special token '" + *special + "' is not in special_tokens");
    auto &dst = seenSequence ? wrap->after : wrap->before;
    dst.insert(dst.end(), it->second.begin(), it->second.end());
  }
  if (!seenSequence)
    return single->error("the single-sequence template must use sequence A once");
  return std::unique_ptr<PostProcessor>(std::move(wrap));
}

} // namespace

StatusOr<std::unique_ptr<PostProcessor>> parsePostProcessor(const JsonNode &node) {
  std::string type;
  if (Status s = node.type(type); !s)
    return s;
  if (type == "TemplateProcessing")
    return parseTemplate(node);
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto wrap = std::make_unique<WrapProcessor>();
    uint32_t cls = 0, sep = 0;
    if (Status s = parseTokenPair(node, "cls", cls); !s)
      return s;
    if (Status s = parseTokenPair(node, "sep", sep); !s)
      return s;
    wrap->before = {cls};
    wrap->after = {sep};
    return std::unique_ptr<PostProcessor>(std::move(wrap));
  }
  if (type == "ByteLevel")
    return std::unique_ptr<PostProcessor>(std::make_unique<IdentityProcessor>());
  if (type == "Sequence")
    return parseSequenceOf<SequenceProcessor, PostProcessor>(node, "processors", parsePostProcessor);
  return node.error("unsupported post_processor type '" + type + "'");
}

} // namespace kiln::tokenizer::detail
