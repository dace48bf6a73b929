// Normalizers (Hugging Face tokenizers/src/normalizers).
#include "Components.h"

namespace kiln::tokenizer::detail {

namespace {

class SequenceNormalizer : public Normalizer {
public:
  std::vector<std::unique_ptr<Normalizer>> parts;
  Status normalize(NormalizedString &s) const override {
    return forEachPart(parts, [&](const Normalizer &n) { return n.normalize(s); });
  }
};

class UnicodeNormalizer : public Normalizer {
public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  Status normalize(NormalizedString &s) const override {
    s.normalize(form_);
    return Status::ok();
  }

private:
  NormalForm form_;
};

class LowercaseNormalizer : public Normalizer {
public:
  Status normalize(NormalizedString &s) const override {
    s.lowercase();
    return Status::ok();
  }
};

class StripAccentsNormalizer : public Normalizer {
public:
  Status normalize(NormalizedString &s) const override {
    s.mapChars([](char32_t c, std::string &out) {
      if (!isCombiningMark(c))
        appendUtf8(out, c);
    });
    return Status::ok();
  }
};

class StripNormalizer : public Normalizer {
public:
  bool left = false, right = false;
  Status normalize(NormalizedString &s) const override {
    s.strip(left, right);
    return Status::ok();
  }
};

class PrependNormalizer : public Normalizer {
public:
  std::string prefix;
  Status normalize(NormalizedString &s) const override {
    s.prepend(prefix);
    return Status::ok();
  }
};

class ReplaceNormalizer : public Normalizer {
public:
  std::shared_ptr<const Regex> pattern;
  std::string content;
  Status normalize(NormalizedString &s) const override { return s.replace(*pattern, content); }
};

class BertNormalizer : public Normalizer {
public:
  bool cleanText = true, handleChineseChars = true, stripAccents = true, lowercase = true;
  Status normalize(NormalizedString &s) const override {
    if (cleanText)
      s.mapChars([](char32_t c, std::string &out) {
        bool control = c != '\t' && c != '\n' && c != '\r' && isOtherCategory(c);
        if (c == 0 || c == 0xfffd || control)
          return;
        bool space = c == '\t' || c == '\n' || c == '\r' || isWhitespace(c);
        appendUtf8(out, space ? U' ' : c);
      });
    if (handleChineseChars)
      s.mapChars([](char32_t c, std::string &out) {
        bool cjk = isChineseChar(c);
        if (cjk)
          out += ' ';
        appendUtf8(out, c);
        if (cjk)
          out += ' ';
      });
    if (stripAccents) {
      s.normalize(NormalForm::NFD);
      s.mapChars([](char32_t c, std::string &out) {
        if (!isMarkNonspacing(c))
          appendUtf8(out, c);
      });
    }
    if (lowercase)
      s.lowercase();
    return Status::ok();
  }
};

// Nmt: SentencePiece's NMT normalization (control characters removed, some spaces unified).
class NmtNormalizer : public Normalizer {
public:
  Status normalize(NormalizedString &s) const override {
    s.mapChars([](char32_t c, std::string &out) {
      if ((c >= 0x1 && c <= 0x8) || c == 0xb || (c >= 0xe && c <= 0x1f) || c == 0x7f || c == 0x8f || c == 0x9f)
        return;
      bool space = c == 0x9 || c == 0xa || c == 0xc || c == 0xd || c == 0x1680 || (c >= 0x200b && c <= 0x200f) ||
                   c == 0x2028 || c == 0x2029 || c == 0x2581 || c == 0xfeff || c == 0xfffd;
      appendUtf8(out, space ? U' ' : c);
    });
    return Status::ok();
  }
};

// ByteLevel as a normalizer: every byte becomes its byte-level character.
class ByteLevelNormalizer : public Normalizer {
public:
  Status normalize(NormalizedString &s) const override {
    s.mapChars([](char32_t c, std::string &out) {
      std::string bytes;
      appendUtf8(bytes, c);
      for (unsigned char b : bytes)
        appendUtf8(out, byteToChar(b));
    });
    return Status::ok();
  }
};

StatusOr<std::unique_ptr<Normalizer>> parseBert(const JsonNode &node) {
  auto n = std::make_unique<BertNormalizer>();
  std::optional<bool> stripAccents;
  if (Status s = JsonFields(node)
                     .boolean("clean_text", n->cleanText, true)
                     .boolean("handle_chinese_chars", n->handleChineseChars, true)
                     .optionalBool("strip_accents", stripAccents)
                     .boolean("lowercase", n->lowercase, true)
                     .status();
      !s)
    return s;
  n->stripAccents = stripAccents.value_or(n->lowercase); // unset: follows lowercase
  return std::unique_ptr<Normalizer>(std::move(n));
}

StatusOr<std::unique_ptr<Normalizer>> parseReplace(const JsonNode &node) {
  auto r = std::make_unique<ReplaceNormalizer>();
  auto re = parsePatternMember(node);
  if (!re.ok())
    return re.status();
  r->pattern = *re;
  if (Status s = node.getString("content", r->content); !s)
    return s;
  return std::unique_ptr<Normalizer>(std::move(r));
}

} // namespace

StatusOr<std::unique_ptr<Normalizer>> parseNormalizer(const JsonNode &node) {
  std::string type;
  if (Status s = node.type(type); !s)
    return s;
  if (type == "Sequence")
    return parseSequenceOf<SequenceNormalizer, Normalizer>(node, "normalizers", parseNormalizer);
  if (type == "BertNormalizer")
    return parseBert(node);
  if (type == "Replace")
    return parseReplace(node);
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    NormalForm f = type == "NFC" ? NormalForm::NFC : type == "NFD" ? NormalForm::NFD
                   : type == "NFKC" ? NormalForm::NFKC : NormalForm::NFKD;
    return std::unique_ptr<Normalizer>(std::make_unique<UnicodeNormalizer>(f));
  }
  if (type == "Lowercase")
    return std::unique_ptr<Normalizer>(std::make_unique<LowercaseNormalizer>());
  if (type == "StripAccents")
    return std::unique_ptr<Normalizer>(std::make_unique<StripAccentsNormalizer>());
  if (type == "Nmt")
    return std::unique_ptr<Normalizer>(std::make_unique<NmtNormalizer>());
  if (type == "ByteLevel")
    return std::unique_ptr<Normalizer>(std::make_unique<ByteLevelNormalizer>());
  if (type == "Strip") {
    auto n = std::make_unique<StripNormalizer>();
    if (Status s = JsonFields(node).boolean("strip_left", n->left, true).boolean("strip_right", n->right, true).status(); !s)
      return s;
    return std::unique_ptr<Normalizer>(std::move(n));
  }
  if (type == "Prepend") {
    auto n = std::make_unique<PrependNormalizer>();
    if (Status s = JsonFields(node).string("prepend", n->prefix).status(); !s)
      return s;
    return std::unique_ptr<Normalizer>(std::move(n));
  }
  return node.error("unsupported normalizer type '" + type + "'");
}

StatusOr<std::shared_ptr<const Regex>> parsePatternMember(const JsonNode &node) {
  auto pattern = node.required("pattern");
  if (!pattern.ok())
    return pattern.status();
  return parsePattern(*pattern);
}

StatusOr<std::shared_ptr<const Regex>> parsePattern(const JsonNode &node) {
  auto str = node.member("String");
  if (!str.ok())
    return str.status();
  auto rx = node.member("Regex");
  if (!rx.ok())
    return rx.status();
  if (str->has_value() == rx->has_value())
    return node.error("pattern must have exactly one of 'String' and 'Regex'");
  std::string text;
  const JsonNode &which = str->has_value() ? **str : **rx;
  if (Status s = which.asString(text); !s)
    return s;
  auto re = str->has_value() ? Regex::literal(text) : Regex::compile(text);
  if (!re.ok())
    return which.error(re.status().message());
  return re;
}

StatusOr<SplitBehavior> parseSplitBehavior(const JsonNode &node, const std::string &key) {
  std::string b;
  if (Status s = node.getString(key, b); !s)
    return s;
  if (b == "Removed")
    return SplitBehavior::Removed;
  if (b == "Isolated")
    return SplitBehavior::Isolated;
  if (b == "MergedWithPrevious")
    return SplitBehavior::MergedWithPrevious;
  if (b == "MergedWithNext")
    return SplitBehavior::MergedWithNext;
  if (b == "Contiguous")
    return SplitBehavior::Contiguous;
  return node.error("unknown split behavior '" + b + "'");
}

} // namespace kiln::tokenizer::detail
