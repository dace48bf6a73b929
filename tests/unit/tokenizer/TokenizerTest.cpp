// kiln::tokenizer on a small SentencePiece-style BPE (data/spm: byte fallback, Prepend/Replace normalizer,
// added tokens with lstrip / rstrip / single_word, a TemplateProcessing post-processor, the config files).
// Expected ids and strings were produced by Hugging Face tokenizers 0.23.2 (npm `tokenizers`) on the same
// files; tests/e2e/tokenizer compares real tokenizers at scale.
#include "kiln/tokenizer/Tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

using kiln::tokenizer::StreamDecoder;
using kiln::tokenizer::Tokenizer;
using kiln::tokenizer::TokenizerFiles;

namespace {

const std::string kSpmDir = std::string(KILN_TOKENIZER_TEST_DATA) + "/spm";

std::string readText(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Tokenizer loadSpm() {
  auto t = Tokenizer::load(kSpmDir);
  EXPECT_TRUE(t.ok()) << t.status().message();
  return std::move(*t);
}

std::string streamAll(const Tokenizer &tok, const std::vector<uint32_t> &ids, bool skip,
                      std::vector<std::string> *pieces = nullptr) {
  StreamDecoder d = tok.streamDecoder(skip);
  std::string all;
  for (uint32_t id : ids) {
    auto piece = d.step(id);
    EXPECT_TRUE(piece.ok()) << piece.status().message();
    all += *piece;
    if (pieces)
      pieces->push_back(*piece);
  }
  auto rest = d.finish();
  EXPECT_TRUE(rest.ok()) << rest.status().message();
  return all + *rest;
}

} // namespace

TEST(Tokenizer, LoadsAModelDirectory) {
  Tokenizer tok = loadSpm();
  EXPECT_EQ(tok.modelType(), "BPE");
  EXPECT_EQ(tok.vocabSize(), 281u); // 278 model tokens, <|user|>, world, and <|assistant|> from the config
  EXPECT_EQ(tok.tokenToId("<|user|>"), std::optional<uint32_t>(278));
  EXPECT_EQ(tok.idToToken(271), std::optional<std::string>("\xe2\x96\x81hello"));
  EXPECT_FALSE(tok.idToToken(100000).has_value());
  EXPECT_TRUE(tok.isSpecialToken(1));
  EXPECT_FALSE(tok.isSpecialToken(279));
  EXPECT_FALSE(tok.isSpecialToken(271));
}

TEST(Tokenizer, EncodesAsHuggingFace) {
  Tokenizer tok = loadSpm();
  struct Case {
    std::string text;
    std::vector<uint32_t> withSpecial;
  } cases[] = {
      {"hello world", {1, 271, 259, 279}},
      {"hello  world", {1, 271, 259, 259, 279}},
      {"helloworld", {1, 271, 264, 274, 276}},                            // "world" is single_word
      {"h\xc3\xa9llo \xf0\x9f\x98\x80", {1, 267, 272, 270, 259, 243, 162, 155, 131}}, // byte fallback
      {"a <|user|>  hello", {1, 259, 100, 278, 271}},                     // lstrip + rstrip; per-piece Prepend
      {"<|user|>", {1, 278}},
      {" <s>hello</s>", {1, 259, 259, 1, 271, 2}},
      {"", {1}},
      {" ", {1, 259, 259}},
      {"xyz", {1, 259, 123, 124, 125}},
  };
  for (const Case &c : cases) {
    auto ids = tok.encode(c.text);
    ASSERT_TRUE(ids.ok()) << ids.status().message();
    EXPECT_EQ(*ids, c.withSpecial) << c.text;
    auto plain = tok.encode(c.text, /*addSpecialTokens=*/false);
    ASSERT_TRUE(plain.ok());
    EXPECT_EQ(*plain, std::vector<uint32_t>(c.withSpecial.begin() + 1, c.withSpecial.end())) << c.text;
  }
}

TEST(Tokenizer, DecodesAsHuggingFace) {
  Tokenizer tok = loadSpm();
  struct Case {
    std::vector<uint32_t> ids;
    std::string text, skipped;
  } cases[] = {
      {{1, 271, 259, 279}, "<s> hello world", "hello world"},
      {{1, 259, 100, 278, 271}, "<s> a<|user|> hello", "a hello"},
      {{1, 262, 232, 198}, "<s>l\xef\xbf\xbd\xef\xbf\xbd", "l\xef\xbf\xbd\xef\xbf\xbd"}, // a truncated character
      {{196, 184}, "\xef\xbf\xbd\xef\xbf\xbd", "\xef\xbf\xbd\xef\xbf\xbd"},            // one U+FFFD per byte
      {{243, 162, 155, 131}, "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
      {{259, 259, 271}, "  hello", "  hello"},
      {{500, 271, 2}, "hello</s>", "hello"}, // 500 is not a token: skipped
      {{}, "", ""},
  };
  for (const Case &c : cases) {
    auto text = tok.decode(c.ids);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(*text, c.text);
    auto skipped = tok.decode(c.ids, /*skipSpecialTokens=*/true);
    ASSERT_TRUE(skipped.ok());
    EXPECT_EQ(*skipped, c.skipped);
  }
}

TEST(Tokenizer, ReadsTheConfigFiles) {
  Tokenizer tok = loadSpm();
  const auto &c = tok.config();
  ASSERT_TRUE(c.bos && c.eos && c.unk && c.pad);
  EXPECT_EQ(c.bos->content, "<s>");
  EXPECT_EQ(c.bos->id, std::optional<uint32_t>(1));
  EXPECT_EQ(c.eos->content, "</s>");
  EXPECT_EQ(c.unk->content, "<unk>"); // from special_tokens_map.json
  EXPECT_EQ(c.pad->id, std::optional<uint32_t>(2));
  EXPECT_EQ(c.eosTokenIds, (std::vector<uint32_t>{2, 7})); // generation_config.json
  EXPECT_EQ(c.bosTokenId, std::optional<uint32_t>(1));
  EXPECT_EQ(c.addBosToken, std::optional<bool>(true));
  EXPECT_EQ(c.addEosToken, std::optional<bool>(false));
  EXPECT_EQ(c.modelMaxLength, std::optional<uint64_t>(4096));
  EXPECT_EQ(c.chatTemplate, "{% for m in messages %}{{ m.content }}{% endfor %}");
  // added_tokens_decoder lists a token tokenizer.json lacks: added as transformers does.
  EXPECT_EQ(tok.tokenToId("<|assistant|>"), std::optional<uint32_t>(280));
  auto ids = tok.encode("<|assistant|>");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<uint32_t>{1, 280}));
}

TEST(Tokenizer, NeedsOnlyTokenizerJson) {
  TokenizerFiles files;
  files.tokenizerJson = readText(kSpmDir + "/tokenizer.json");
  auto tok = Tokenizer::fromJson(files);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  EXPECT_FALSE(tok->config().eos.has_value());
  EXPECT_TRUE(tok->config().eosTokenIds.empty());
  EXPECT_FALSE(tok->tokenToId("<|assistant|>").has_value());
  auto ids = tok->encode("hello world");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<uint32_t>{1, 271, 259, 279}));
}

TEST(Tokenizer, RefusesInvalidUtf8) {
  Tokenizer tok = loadSpm();
  auto ids = tok.encode("ab\xff");
  ASSERT_FALSE(ids.ok());
  EXPECT_NE(ids.status().message().find("not valid UTF-8 (byte 2)"), std::string::npos);
  EXPECT_FALSE(tok.encode("\xed\xa0\x80").ok()); // an encoded surrogate
}

TEST(Tokenizer, StreamsWithoutLosingOrRepeatingText) {
  Tokenizer tok = loadSpm();
  std::vector<std::string> pieces;
  // Byte-fallback pieces: a run of them decodes as a whole (one invalid byte spoils the run), so its text
  // comes when the run ends, here at the next token.
  EXPECT_EQ(streamAll(tok, {243, 162, 155, 131, 271}, false, &pieces), "\xf0\x9f\x98\x80 hello");
  EXPECT_EQ(pieces, (std::vector<std::string>{"", "", "", "", "\xf0\x9f\x98\x80 hello"}));
  pieces.clear();
  EXPECT_EQ(streamAll(tok, {3 + 'f', 259, 3 + 0xE2, 271}, false, &pieces), "f \xef\xbf\xbd hello");
  EXPECT_EQ(pieces, (std::vector<std::string>{"", "f ", "", "\xef\xbf\xbd hello"}));
  // The Strip decoder removes the first token's leading space only.
  pieces.clear();
  EXPECT_EQ(streamAll(tok, {271, 271, 259, 279}, false, &pieces), "hello hello world");
  EXPECT_EQ(pieces, (std::vector<std::string>{"hello", " hello", " ", "world"}));
  // A sequence ending in an incomplete character: finish() gives what decode() gives.
  EXPECT_EQ(streamAll(tok, {271, 243, 162}, false), *tok.decode({271, 243, 162}));
  // Random sequences (special tokens, byte pieces, unknown ids): the concatenation is always decode().
  std::mt19937 rng(7);
  for (int n = 0; n < 2000; ++n) {
    std::vector<uint32_t> ids(rng() % 12);
    for (uint32_t &id : ids)
      id = rng() % 300;
    for (bool skip : {false, true})
      EXPECT_EQ(streamAll(tok, ids, skip), *tok.decode(ids, skip));
  }
}

TEST(Tokenizer, StreamsThroughStripDecoders) {
  // Strip taking up to 2 leading and 1 trailing spaces: stripping reaches past a token that decodes to nothing.
  std::string json = readText(kSpmDir + "/tokenizer.json");
  const std::string from = "\"start\": 1,\n    \"stop\": 0";
  ASSERT_NE(json.find(from), std::string::npos);
  json.replace(json.find(from), from.size(), "\"start\": 2,\n    \"stop\": 1");
  TokenizerFiles files;
  files.tokenizerJson = json;
  auto tok = Tokenizer::fromJson(files);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  EXPECT_EQ(streamAll(*tok, {259, 259, 259, 271}, false), "  hello");
  std::mt19937 rng(11);
  for (int n = 0; n < 3000; ++n) {
    std::vector<uint32_t> ids(rng() % 10);
    for (uint32_t &id : ids)
      id = rng() % 3 == 0 ? 259 : rng() % 282; // many spaces
    for (bool skip : {false, true})
      EXPECT_EQ(streamAll(*tok, ids, skip), *tok->decode(ids, skip));
  }
}

TEST(Tokenizer, StreamDecoderOutlivesTheTokenizer) {
  std::optional<StreamDecoder> d;
  {
    Tokenizer tok = loadSpm();
    d.emplace(tok.streamDecoder());
  }
  auto piece = d->step(271);
  ASSERT_TRUE(piece.ok());
  EXPECT_EQ(*piece, "hello");
}

TEST(Tokenizer, LoadErrorsNameTheFileAndComponent) {
  const std::string base = readText(kSpmDir + "/tokenizer.json");
  struct Case {
    std::string from, to, message;
  } cases[] = {
      {"\"type\": \"Prepend\"", "\"type\": \"Precompiled\"",
       "tokenizer.json: normalizer.normalizers[0]: unsupported normalizer type 'Precompiled'"},
      {"\"pre_tokenizer\": null", "\"pre_tokenizer\": {\"type\": \"UnicodeScripts\"}",
       "tokenizer.json: pre_tokenizer: unsupported pre_tokenizer type 'UnicodeScripts'"},
      {"\"pre_tokenizer\": null",
       "\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a\"}, \"behavior\": \"Isolated\", "
       "\"invert\": false}",
       "tokenizer.json: pre_tokenizer.pattern.Regex: bad regex '(a'"},
      {"\"type\": \"Fuse\"", "\"type\": \"Fusion\"", "tokenizer.json: decoder.decoders[2]: unsupported decoder type 'Fusion'"},
      {"\"type\": \"TemplateProcessing\"", "\"type\": \"Templates\"",
       "tokenizer.json: post_processor: unsupported post_processor type 'Templates'"},
      {"\"type\": \"BPE\"", "\"type\": \"SentencePiece\"", "tokenizer.json: model: unsupported model type 'SentencePiece'"},
      {"\"dropout\": null", "\"dropout\": 0.1", "tokenizer.json: model: BPE dropout is not supported"},
      {"\"version\": \"1.0\"", "\"version\": \"2.0\"", "tokenizer.json: unknown tokenizer version '2.0'"},
      {"\"l\",\n    \"l\"", "\"l\",\n    \"zz\"", "tokenizer.json: model.merges[1]: merge token 'zz' is not in the vocabulary"},
      {"\"ids\": [\n     1\n    ]", "\"ids\": [\n     \"one\"\n    ]",
       "tokenizer.json: post_processor.special_tokens.<s>.ids[0]: expected a non-negative integer"},
      {"{", "[", "tokenizer.json: not valid JSON"},
  };
  for (const Case &c : cases) {
    std::string text = base;
    size_t at = text.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    text.replace(at, c.from.size(), c.to);
    TokenizerFiles files;
    files.tokenizerJson = text;
    auto tok = Tokenizer::fromJson(files);
    ASSERT_FALSE(tok.ok()) << c.message;
    const std::string &m = tok.status().message();
    EXPECT_EQ(m.rfind(c.message, 0), 0u) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

TEST(Tokenizer, RefusesHostileJson) {
  TokenizerFiles files;
  files.tokenizerJson = std::string(100000, '[') + std::string(100000, ']');
  auto tok = Tokenizer::fromJson(files);
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find("nested deeper"), std::string::npos);
  files.tokenizerJson = readText(kSpmDir + "/tokenizer.json");
  files.generationConfigJson = "{\"eos_token_id\": \"two\"}";
  tok = Tokenizer::fromJson(files);
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().message(), "generation_config.json: eos_token_id: expected a non-negative integer, got a string");
}

TEST(Tokenizer, LoadNamesAMissingDirectory) {
  auto tok = Tokenizer::load("/nonexistent/model");
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find("/nonexistent/model/tokenizer.json"), std::string::npos);
}
