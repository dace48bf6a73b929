// Pre-tokenizers (Hugging Face tokenizers/src/pre_tokenizers).
#include "Components.h"

namespace kiln::tokenizer::detail {

namespace {

using Pieces = std::vector<NormalizedString>;

template <class P> Status splitByChars(Splits &splits, P predicate, SplitBehavior behavior) {
  return splitEach(splits, [&](NormalizedString s) -> StatusOr<Pieces> {
    return splitByMatches(s, charMatches(s.text, predicate), behavior);
  });
}

class SequencePreTokenizer : public PreTokenizer {
public:
  std::vector<std::unique_ptr<PreTokenizer>> parts;
  Status preTokenize(Splits &splits) const override {
    return forEachPart(parts, [&](const PreTokenizer &p) { return p.preTokenize(splits); });
  }
};

class SplitPreTokenizer : public PreTokenizer {
public:
  std::shared_ptr<const Regex> pattern;
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  Status preTokenize(Splits &splits) const override {
    return splitEach(splits, [&](NormalizedString s) -> StatusOr<Pieces> {
      auto matches = pattern->findMatches(s.text);
      if (!matches.ok())
        return matches.status();
      if (invert)
        for (auto &m : *matches)
          m.second = !m.second;
      return splitByMatches(s, *matches, behavior);
    });
  }
};

// GPT-2's pre-tokenizer: an optional leading space, the GPT-2 split pattern, then every byte mapped to its
// byte-level character.
class ByteLevelPreTokenizer : public PreTokenizer {
public:
  bool addPrefixSpace = true, useRegex = true;
  static const Regex &gpt2Pattern() {
    static const std::shared_ptr<const Regex> re =
        *Regex::compile(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
    return *re;
  }
  Status preTokenize(Splits &splits) const override {
    Status st = splitEach(splits, [&](NormalizedString s) -> StatusOr<Pieces> {
      if (addPrefixSpace && s.text.compare(0, 1, " ") != 0)
        s.prepend(" ");
      if (!useRegex)
        return Pieces{std::move(s)};
      auto matches = gpt2Pattern().findMatches(s.text);
      if (!matches.ok())
        return matches.status();
      return splitByMatches(s, *matches, SplitBehavior::Isolated);
    });
    if (!st)
      return st;
    for (Split &sp : splits)
      if (!sp.final)
        sp.text.mapChars([](char32_t c, std::string &out) {
          std::string bytes;
          appendUtf8(bytes, c);
          for (unsigned char b : bytes)
            appendUtf8(out, byteToChar(b));
        });
    return Status::ok();
  }
};

// SentencePiece-style: spaces become the replacement character (U+2581), which starts each word.
class MetaspacePreTokenizer : public PreTokenizer {
public:
  char32_t replacement = 0x2581;
  std::string replacementText;
  PrependScheme scheme = PrependScheme::Always;
  bool split = true;
  Status preTokenize(Splits &splits) const override {
    return splitEach(splits, [&](NormalizedString s) -> StatusOr<Pieces> {
      s.mapChars([&](char32_t c, std::string &out) {
        if (c == U' ')
          out += replacementText;
        else
          appendUtf8(out, c);
      });
      bool startsWithReplacement = s.text.compare(0, replacementText.size(), replacementText) == 0;
      if (!startsWithReplacement &&
          (scheme == PrependScheme::Always || (scheme == PrependScheme::First && s.originalStart() == 0)))
        s.prepend(replacementText);
      if (!split)
        return Pieces{std::move(s)};
      char32_t r = replacement;
      return splitByMatches(s, charMatches(s.text, [r](char32_t c) { return c == r; }),
                            SplitBehavior::MergedWithNext);
    });
  }
};

class BertPreTokenizer : public PreTokenizer {
public:
  Status preTokenize(Splits &splits) const override {
    if (Status s = splitByChars(splits, isWhitespace, SplitBehavior::Removed); !s)
      return s;
    return splitByChars(splits, isBertPunctuation, SplitBehavior::Isolated);
  }
  static bool isBertPunctuation(char32_t c) {
    bool asciiPunct = (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) ||
                      (c >= 0x7b && c <= 0x7e);
    return asciiPunct || isPunctuation(c);
  }
};

class PunctuationPreTokenizer : public PreTokenizer {
public:
  SplitBehavior behavior = SplitBehavior::Isolated;
  Status preTokenize(Splits &splits) const override {
    return splitByChars(splits, BertPreTokenizer::isBertPunctuation, behavior);
  }
};

class DigitsPreTokenizer : public PreTokenizer {
public:
  bool individual = false;
  Status preTokenize(Splits &splits) const override {
    return splitByChars(splits, isNumeric, individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous);
  }
};

class WhitespaceSplitPreTokenizer : public PreTokenizer {
public:
  Status preTokenize(Splits &splits) const override {
    return splitByChars(splits, isWhitespace, SplitBehavior::Removed);
  }
};

// Whitespace: keeps the matches of \w+|[^\w\s]+ (regex crate classes) and drops the rest.
class WhitespacePreTokenizer : public PreTokenizer {
public:
  Status preTokenize(Splits &splits) const override {
    return splitEach(splits, [&](NormalizedString s) -> StatusOr<Pieces> {
      Matches m;
      const std::string &t = s.text;
      size_t i = 0, last = 0;
      while (i < t.size()) {
        size_t start = i, j = i;
        char32_t c = decodeUtf8(t, j);
        bool word = isRegexWord(c);
        if (!word && isWhitespace(c)) {
          i = j;
          continue;
        }
        i = j;
        while (i < t.size()) {
          size_t k = i;
          char32_t d = decodeUtf8(t, k);
          if (word ? !isRegexWord(d) : (isRegexWord(d) || isWhitespace(d)))
            break;
          i = k;
        }
        // Inverted: the words are kept (not "matches"), the text between them is removed.
        if (last < start)
          m.push_back({{last, start}, true});
        m.push_back({{start, i}, false});
        last = i;
      }
      if (last < t.size())
        m.push_back({{last, t.size()}, true});
      return splitByMatches(s, m, SplitBehavior::Removed);
    });
  }
};

class DelimiterPreTokenizer : public PreTokenizer {
public:
  char32_t delimiter = U' ';
  Status preTokenize(Splits &splits) const override {
    char32_t d = delimiter;
    return splitByChars(splits, [d](char32_t c) { return c == d; }, SplitBehavior::Removed);
  }
};

// FixedLength: pieces of `length` characters.
class FixedLengthPreTokenizer : public PreTokenizer {
public:
  size_t length = 5;
  Status preTokenize(Splits &splits) const override {
    return splitEach(splits, [&](NormalizedString s) -> StatusOr<Pieces> {
      Pieces out;
      size_t start = 0, i = 0, n = 0;
      while (i < s.text.size()) {
        decodeUtf8(s.text, i);
        if (++n == length) {
          out.push_back(s.slice(start, i));
          start = i;
          n = 0;
        }
      }
      if (start < s.text.size())
        out.push_back(s.slice(start, s.text.size()));
      return out;
    });
  }
};

StatusOr<std::unique_ptr<PreTokenizer>> parseMetaspace(const JsonNode &node) {
  auto options = parseMetaspaceOptions(node);
  if (!options.ok())
    return options.status();
  auto m = std::make_unique<MetaspacePreTokenizer>();
  m->replacement = options->replacement;
  m->scheme = options->scheme;
  m->split = options->split;
  appendUtf8(m->replacementText, m->replacement);
  return std::unique_ptr<PreTokenizer>(std::move(m));
}

StatusOr<std::unique_ptr<PreTokenizer>> parseSplit(const JsonNode &node) {
  auto sp = std::make_unique<SplitPreTokenizer>();
  auto re = parsePatternMember(node);
  if (!re.ok())
    return re.status();
  sp->pattern = *re;
  auto behavior = parseSplitBehavior(node, "behavior");
  if (!behavior.ok())
    return behavior.status();
  sp->behavior = *behavior;
  if (Status s = node.getBool("invert", sp->invert, false); !s)
    return s;
  return std::unique_ptr<PreTokenizer>(std::move(sp));
}

StatusOr<std::unique_ptr<PreTokenizer>> parseSimple(const JsonNode &node, const std::string &type) {
  if (type == "ByteLevel") {
    auto b = std::make_unique<ByteLevelPreTokenizer>();
    if (Status s = JsonFields(node)
                       .boolean("add_prefix_space", b->addPrefixSpace, true)
                       .boolean("use_regex", b->useRegex, true)
                       .status();
        !s)
      return s;
    return std::unique_ptr<PreTokenizer>(std::move(b));
  }
  if (type == "BertPreTokenizer")
    return std::unique_ptr<PreTokenizer>(std::make_unique<BertPreTokenizer>());
  if (type == "Whitespace")
    return std::unique_ptr<PreTokenizer>(std::make_unique<WhitespacePreTokenizer>());
  if (type == "WhitespaceSplit")
    return std::unique_ptr<PreTokenizer>(std::make_unique<WhitespaceSplitPreTokenizer>());
  if (type == "Punctuation") {
    auto p = std::make_unique<PunctuationPreTokenizer>();
    auto has = node.member("behavior");
    if (!has.ok())
      return has.status();
    if (has->has_value()) {
      auto b = parseSplitBehavior(node, "behavior");
      if (!b.ok())
        return b.status();
      p->behavior = *b;
    }
    return std::unique_ptr<PreTokenizer>(std::move(p));
  }
  if (type == "Digits") {
    auto d = std::make_unique<DigitsPreTokenizer>();
    if (Status s = JsonFields(node).boolean("individual_digits", d->individual, false).status(); !s)
      return s;
    return std::unique_ptr<PreTokenizer>(std::move(d));
  }
  if (type == "CharDelimiterSplit" || type == "Delimiter") {
    auto d = std::make_unique<DelimiterPreTokenizer>();
    if (Status s = JsonFields(node).character("delimiter", d->delimiter).status(); !s)
      return s;
    return std::unique_ptr<PreTokenizer>(std::move(d));
  }
  if (type == "FixedLength") {
    auto f = std::make_unique<FixedLengthPreTokenizer>();
    uint64_t length = 5;
    if (Status s = JsonFields(node).uint("length", length, 5).status(); !s)
      return s;
    if (length == 0)
      return node.error("'length' must be positive");
    f->length = size_t(length);
    return std::unique_ptr<PreTokenizer>(std::move(f));
  }
  return node.error("unsupported pre_tokenizer type '" + type + "'");
}

} // namespace

StatusOr<MetaspaceOptions> parseMetaspaceOptions(const JsonNode &node) {
  MetaspaceOptions m;
  std::optional<std::string> scheme;
  std::optional<bool> addPrefixSpace;
  if (Status s = JsonFields(node)
                     .character("replacement", m.replacement)
                     .optionalString("prepend_scheme", scheme)
                     .optionalBool("add_prefix_space", addPrefixSpace)
                     .boolean("split", m.split, true)
                     .status();
      !s)
    return s;
  std::string sc = scheme.value_or("always");
  if (sc == "first")
    m.scheme = PrependScheme::First;
  else if (sc == "never")
    m.scheme = PrependScheme::Never;
  else if (sc != "always")
    return node.error("unknown prepend_scheme '" + sc + "'");
  if (addPrefixSpace == false) { // the legacy field: false means never
    if (m.scheme != PrependScheme::Never)
      return node.error("add_prefix_space does not match declared prepend_scheme");
    m.scheme = PrependScheme::Never;
  }
  return m;
}

StatusOr<std::unique_ptr<PreTokenizer>> parsePreTokenizer(const JsonNode &node) {
  std::string type;
  if (Status s = node.type(type); !s)
    return s;
  if (type == "Sequence")
    return parseSequenceOf<SequencePreTokenizer, PreTokenizer>(node, "pretokenizers", parsePreTokenizer);
  if (type == "Split")
    return parseSplit(node);
  if (type == "Metaspace")
    return parseMetaspace(node);
  return parseSimple(node, type);
}

} // namespace kiln::tokenizer::detail
