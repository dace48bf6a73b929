// Decoders (Hugging Face tokenizers/src/decoders): tokens back to text.
#include "Components.h"

namespace kiln::tokenizer::detail {

namespace {

// Rust str::replace: every non-overlapping occurrence, left to right (an empty pattern matches between
// every two characters and at both ends).
std::string replaceAll(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  if (from.empty()) {
    out += to;
    for (size_t i = 0; i < s.size();) {
      size_t start = i;
      decodeUtf8(s, i);
      out.append(s.substr(start, i - start));
      out += to;
    }
    return out;
  }
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string_view::npos; pos = hit + from.size()) {
    out.append(s.substr(pos, hit - pos));
    out += to;
  }
  out.append(s.substr(pos));
  return out;
}

// WordPiece's cleanup of tokenization artifacts (spaces before punctuation, English contractions).
std::string cleanup(std::string s) {
  static const std::pair<const char *, const char *> kRules[] = {
      {" .", "."},    {" ?", "?"},     {" !", "!"},     {" ,", ","},          {" ' ", "'"},  {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto &[from, to] : kRules)
    s = replaceAll(s, from, to);
  return s;
}

class ByteLevelDecoder : public Decoder {
public:
  Status decodeChain(std::vector<std::string> &tokens) const override {
    std::string bytes;
    for (const std::string &t : tokens) {
      std::string tb;
      bool allMapped = true;
      for (size_t i = 0; i < t.size() && allMapped;) {
        int b = charToByte(decodeUtf8(t, i));
        if (b < 0)
          allMapped = false;
        else
          tb += char(b);
      }
      bytes += allMapped ? tb : t;
    }
    tokens.assign(1, utf8Lossy(bytes));
    return Status::ok();
  }
};

class MetaspaceDecoder : public Decoder {
public:
  char32_t replacement = 0x2581;
  bool prependNever = false;
  Status decodeChain(std::vector<std::string> &tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string &t = tokens[i];
      for (size_t k = 0; k < t.size();) {
        char32_t c = decodeUtf8(t, k);
        if (c != replacement)
          appendUtf8(out, c);
        else if (i != 0 || prependNever)
          out += ' ';
      }
      tokens[i] = std::move(out);
    }
    return Status::ok();
  }
};

class WordPieceDecoder : public Decoder {
public:
  std::string prefix = "##";
  bool cleanupText = true;
  Status decodeChain(std::vector<std::string> &tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string &t = tokens[i];
      if (i != 0)
        t = t.compare(0, prefix.size(), prefix) == 0 ? t.substr(prefix.size()) : " " + t;
      if (cleanupText)
        t = cleanup(t);
    }
    return Status::ok();
  }
};

class BpeDecoder : public Decoder {
public:
  std::string suffix = "</w>";
  Status decodeChain(std::vector<std::string> &tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i)
      tokens[i] = replaceAll(tokens[i], suffix, i + 1 == tokens.size() ? "" : " ");
    return Status::ok();
  }
};

class CtcDecoder : public Decoder {
public:
  std::string padToken = "<pad>", wordDelimiterToken = "|";
  bool cleanupText = true;
  Status decodeChain(std::vector<std::string> &tokens) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0 && tokens[i] == tokens[i - 1])
        continue; // consecutive duplicates collapse
      std::string t = replaceAll(tokens[i], padToken, "");
      if (cleanupText)
        t = replaceAll(cleanup(t), wordDelimiterToken, " ");
      if (!t.empty())
        out.push_back(std::move(t));
    }
    tokens = std::move(out);
    return Status::ok();
  }
};

class SequenceDecoder : public Decoder {
public:
  std::vector<std::unique_ptr<Decoder>> parts;
  bool decodesByteRuns() const override {
    for (const auto &d : parts)
      if (d->decodesByteRuns())
        return true;
    return false;
  }
  Status decodeChain(std::vector<std::string> &tokens) const override {
    return forEachPart(parts, [&](const Decoder &d) { return d.decodeChain(tokens); });
  }
};

class ReplaceDecoder : public Decoder {
public:
  std::shared_ptr<const Regex> pattern;
  std::string content;
  Status decodeChain(std::vector<std::string> &tokens) const override {
    for (std::string &t : tokens) {
      auto matches = pattern->findMatches(t);
      if (!matches.ok())
        return matches.status();
      std::string out;
      for (const auto &[r, isMatch] : *matches)
        out += isMatch ? std::string_view(content) : std::string_view(t).substr(r.first, r.second - r.first);
      t = std::move(out);
    }
    return Status::ok();
  }
};

class FuseDecoder : public Decoder {
public:
  Status decodeChain(std::vector<std::string> &tokens) const override {
    std::string all;
    for (const std::string &t : tokens)
      all += t;
    tokens.assign(1, std::move(all));
    return Status::ok();
  }
};

// Strip: up to `start` leading and `stop` trailing occurrences of `content` from each token.
class StripDecoder : public Decoder {
public:
  char32_t content = U' ';
  uint64_t start = 0, stop = 0;
  Status decodeChain(std::vector<std::string> &tokens) const override {
    for (std::string &t : tokens) {
      std::vector<char32_t> chars;
      for (size_t i = 0; i < t.size();)
        chars.push_back(decodeUtf8(t, i));
      size_t startCut = 0, stopCut = chars.size();
      for (size_t i = 0; i < chars.size() && i < start && chars[i] == content; ++i)
        startCut = i + 1;
      for (size_t i = 0; i < stop && i < chars.size() && chars[chars.size() - i - 1] == content; ++i)
        stopCut = chars.size() - i - 1;
      std::string out;
      for (size_t i = startCut; i < stopCut; ++i)
        appendUtf8(out, chars[i]);
      t = std::move(out);
    }
    return Status::ok();
  }
};

// ByteFallback: runs of <0xNN> tokens become their bytes, or one U+FFFD per byte if not valid UTF-8.
class ByteFallbackDecoder : public Decoder {
public:
  Status decodeChain(std::vector<std::string> &tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    size_t pendingCount = 0;
    auto flush = [&] {
      if (pendingCount == 0)
        return;
      if (isValidUtf8(pending))
        out.push_back(pending);
      else
        for (size_t i = 0; i < pendingCount; ++i)
          out.push_back("\xef\xbf\xbd");
      pending.clear();
      pendingCount = 0;
    };
    for (std::string &t : tokens) {
      int byte = byteFallbackValue(t);
      if (byte >= 0) {
        pending += char(byte);
        ++pendingCount;
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    tokens = std::move(out);
    return Status::ok();
  }
  bool decodesByteRuns() const override { return true; }
};

StatusOr<std::unique_ptr<Decoder>> parseStructured(const JsonNode &node, const std::string &type);

} // namespace

// Rust's u8::from_str_radix(&token[3..5], 16), which also takes a leading '+'.
int byteFallbackValue(const std::string &t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>')
    return -1;
  auto hex = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
  };
  if (t[3] == '+')
    return hex(t[4]);
  int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

StatusOr<std::unique_ptr<Decoder>> parseDecoder(const JsonNode &node) {
  std::string type;
  if (Status s = node.type(type); !s)
    return s;
  if (type == "ByteLevel")
    return std::unique_ptr<Decoder>(std::make_unique<ByteLevelDecoder>());
  if (type == "Fuse")
    return std::unique_ptr<Decoder>(std::make_unique<FuseDecoder>());
  if (type == "ByteFallback")
    return std::unique_ptr<Decoder>(std::make_unique<ByteFallbackDecoder>());
  return parseStructured(node, type);
}

namespace {

StatusOr<std::unique_ptr<Decoder>> parseMetaspace(const JsonNode &node) {
  auto options = parseMetaspaceOptions(node);
  if (!options.ok())
    return options.status();
  auto m = std::make_unique<MetaspaceDecoder>();
  m->replacement = options->replacement;
  m->prependNever = options->scheme == PrependScheme::Never;
  return std::unique_ptr<Decoder>(std::move(m));
}

StatusOr<std::unique_ptr<Decoder>> parseStructured(const JsonNode &node, const std::string &type) {
  if (type == "Metaspace")
    return parseMetaspace(node);
  if (type == "Sequence")
    return parseSequenceOf<SequenceDecoder, Decoder>(node, "decoders", parseDecoder);
  if (type == "WordPiece") {
    auto w = std::make_unique<WordPieceDecoder>();
    if (Status s = JsonFields(node).string("prefix", w->prefix).boolean("cleanup", w->cleanupText, true).status(); !s)
      return s;
    return std::unique_ptr<Decoder>(std::move(w));
  }
  if (type == "BPEDecoder") {
    auto b = std::make_unique<BpeDecoder>();
    if (Status s = JsonFields(node).string("suffix", b->suffix).status(); !s)
      return s;
    return std::unique_ptr<Decoder>(std::move(b));
  }
  if (type == "CTC") {
    auto c = std::make_unique<CtcDecoder>();
    if (Status s = JsonFields(node)
                       .string("pad_token", c->padToken)
                       .string("word_delimiter_token", c->wordDelimiterToken)
                       .boolean("cleanup", c->cleanupText, true)
                       .status();
        !s)
      return s;
    return std::unique_ptr<Decoder>(std::move(c));
  }
  if (type == "Replace") {
    auto r = std::make_unique<ReplaceDecoder>();
    auto re = parsePatternMember(node);
    if (!re.ok())
      return re.status();
    r->pattern = *re;
    if (Status s = JsonFields(node).string("content", r->content).status(); !s)
      return s;
    return std::unique_ptr<Decoder>(std::move(r));
  }
  if (type == "Strip") {
    auto st = std::make_unique<StripDecoder>();
    if (Status s =
            JsonFields(node).character("content", st->content).uint("start", st->start, 0).uint("stop", st->stop, 0).status();
        !s)
      return s;
    return std::unique_ptr<Decoder>(std::move(st));
  }
  return node.error("unsupported decoder type '" + type + "'");
}

} // namespace

} // namespace kiln::tokenizer::detail
