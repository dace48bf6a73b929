// Loading: tokenizer.json into the pipeline, and the config files around it into TextConfig.
#include "Pipeline.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace kiln::tokenizer {

using namespace detail;

namespace {

StatusOr<Truncation> parseTruncation(const JsonNode &node) {
  Truncation t;
  std::optional<std::string> strategy, direction;
  if (Status s = JsonFields(node)
                     .uint("max_length", t.maxLength, 512)
                     .uint("stride", t.stride, 0)
                     .optionalString("strategy", strategy)
                     .optionalString("direction", direction)
                     .status();
      !s)
    return s;
  std::string st = strategy.value_or("LongestFirst"), dir = direction.value_or("Right");
  if (st == "LongestFirst")
    t.strategy = Truncation::LongestFirst;
  else if (st == "OnlyFirst")
    t.strategy = Truncation::OnlyFirst;
  else if (st == "OnlySecond")
    t.strategy = Truncation::OnlySecond;
  else
    return node.error("unknown truncation strategy '" + st + "'");
  if (dir != "Left" && dir != "Right")
    return node.error("unknown truncation direction '" + dir + "'");
  t.left = dir == "Left";
  return t;
}

StatusOr<Padding> parsePadding(const JsonNode &node) {
  Padding p;
  auto strategy = node.member("strategy");
  if (!strategy.ok())
    return strategy.status();
  if (strategy->has_value()) {
    const JsonNode &st = **strategy;
    if (st.json().is_string()) {
      if (st.json().get_ref<const std::string &>() != "BatchLongest")
        return st.error("unknown padding strategy");
    } else {
      uint64_t n = 0;
      if (Status s = st.getUint("Fixed", n, 0); !s)
        return s;
      p.fixedLength = n;
    }
  }
  std::optional<std::string> direction;
  uint64_t padId = 0;
  if (Status s = JsonFields(node)
                     .optionalString("direction", direction)
                     .optionalUint("pad_to_multiple_of", p.multipleOf)
                     .uint("pad_id", padId, 0)
                     .status();
      !s)
    return s;
  if (direction && *direction != "Left" && *direction != "Right")
    return node.error("unknown padding direction '" + *direction + "'");
  p.left = direction == std::optional<std::string>("Left");
  if (padId > UINT32_MAX)
    return node.error("pad_id out of range");
  p.padId = uint32_t(padId);
  return p;
}

// One added token: {"id": 1, "content": "<s>", "single_word": false, ...}.
StatusOr<AddedToken> parseAddedToken(const JsonNode &node) {
  AddedToken t;
  if (Status s = JsonFields(node)
                     .string("content", t.content)
                     .boolean("special", t.special, false)
                     .boolean("single_word", t.singleWord, false)
                     .boolean("lstrip", t.lstrip, false)
                     .boolean("rstrip", t.rstrip, false)
                     .status();
      !s)
    return s;
  if (Status s = node.getBool("normalized", t.normalized, !t.special); !s) // default: only ordinary tokens
    return s;
  return t;
}

// The optional stages; each may be absent or null.
Status parseStages(const JsonNode &root, Tokenizer::Impl &impl) {
  if (auto n = root.member("normalizer"); !n.ok()) {
    return n.status();
  } else if (n->has_value()) {
    auto p = parseNormalizer(**n);
    if (!p.ok())
      return p.status();
    impl.normalizer = std::move(*p);
  }
  if (auto n = root.member("pre_tokenizer"); !n.ok()) {
    return n.status();
  } else if (n->has_value()) {
    auto p = parsePreTokenizer(**n);
    if (!p.ok())
      return p.status();
    impl.preTokenizer = std::move(*p);
  }
  if (auto n = root.member("post_processor"); !n.ok()) {
    return n.status();
  } else if (n->has_value()) {
    auto p = parsePostProcessor(**n);
    if (!p.ok())
      return p.status();
    impl.postProcessor = std::move(*p);
  }
  if (auto n = root.member("decoder"); !n.ok()) {
    return n.status();
  } else if (n->has_value()) {
    auto p = parseDecoder(**n);
    if (!p.ok())
      return p.status();
    impl.decoder = std::move(*p);
  }
  return Status::ok();
}

Status parseLimits(const JsonNode &root, Tokenizer::Impl &impl) {
  if (auto n = root.member("truncation"); !n.ok()) {
    return n.status();
  } else if (n->has_value()) {
    auto t = parseTruncation(**n);
    if (!t.ok())
      return t.status();
    impl.truncation = *t;
  }
  if (auto n = root.member("padding"); !n.ok()) {
    return n.status();
  } else if (n->has_value()) {
    auto p = parsePadding(**n);
    if (!p.ok())
      return p.status();
    impl.padding = *p;
  }
  return Status::ok();
}

} // namespace

StatusOr<std::shared_ptr<Tokenizer::Impl>> parseTokenizerJson(const std::string &text) {
  auto json = parseJson(text, "tokenizer.json");
  if (!json.ok())
    return json.status();
  JsonNode root(*json, "tokenizer.json");
  if (!root.isObject())
    return root.error("expected a JSON object");
  std::optional<std::string> version;
  if (Status s = root.getOptionalString("version", version); !s)
    return s;
  if (version && *version != "1.0")
    return root.error("unknown tokenizer version '" + *version + "'");
  auto impl = std::make_shared<Tokenizer::Impl>();
  auto modelNode = root.required("model");
  if (!modelNode.ok())
    return modelNode.status();
  auto model = parseModel(*modelNode);
  if (!model.ok())
    return model.status();
  impl->model = std::move(*model);
  impl->modelType = impl->model->type();
  if (Status s = parseStages(root, *impl); !s)
    return s;
  if (Status s = parseLimits(root, *impl); !s)
    return s;
  std::vector<AddedToken> tokens;
  if (auto list = root.member("added_tokens"); !list.ok()) {
    return list.status();
  } else if (list->has_value()) {
    if (!(*list)->isArray())
      return (*list)->error("expected an array of added tokens");
    for (size_t i = 0; i < (*list)->size(); ++i) {
      auto t = parseAddedToken((*list)->element(i));
      if (!t.ok())
        return t.status();
      tokens.push_back(std::move(*t));
    }
  }
  if (Status s = impl->added.add(tokens, *impl->model, impl->normalizer.get()); !s)
    return root.error("added_tokens: " + s.message());
  return impl;
}

// ---------------------------------------------------------------------------------------------------------
// tokenizer_config.json, special_tokens_map.json, generation_config.json
// ---------------------------------------------------------------------------------------------------------

namespace {

// A special token entry: "<s>" or {"content": "<s>", ...}.
Status readSpecialToken(const JsonNode &config, const std::string &key, std::optional<std::string> &out) {
  auto m = config.member(key);
  if (!m.ok())
    return m.status();
  if (!m->has_value())
    return Status::ok();
  std::string content;
  if ((*m)->json().is_string()) {
    if (Status s = (*m)->asString(content); !s)
      return s;
  } else if (Status s = (*m)->getString("content", content); !s) {
    return s;
  }
  out = content;
  return Status::ok();
}

// An id or a list of ids (generation_config.json's eos_token_id).
Status readIds(const JsonNode &config, const std::string &key, std::vector<uint32_t> &out) {
  auto m = config.member(key);
  if (!m.ok())
    return m.status();
  if (!m->has_value())
    return Status::ok();
  auto one = [&](const JsonNode &n) -> Status {
    uint64_t v = 0;
    if (Status s = n.asUint(v); !s)
      return s;
    if (v > UINT32_MAX)
      return n.error("id out of range");
    out.push_back(uint32_t(v));
    return Status::ok();
  };
  if (!(*m)->isArray())
    return one(**m);
  for (size_t i = 0; i < (*m)->size(); ++i)
    if (Status s = one((*m)->element(i)); !s)
      return s;
  return Status::ok();
}

Status readChatTemplate(const JsonNode &config, std::string &out) {
  auto m = config.member("chat_template");
  if (!m.ok())
    return m.status();
  if (!m->has_value())
    return Status::ok();
  if ((*m)->json().is_string())
    return (*m)->asString(out);
  if (!(*m)->isArray())
    return (*m)->error("expected a string or a list of {name, template}");
  // Named templates: the one called "default" is the chat template.
  for (size_t i = 0; i < (*m)->size(); ++i) {
    JsonNode e = (*m)->element(i);
    std::string name;
    if (Status s = e.getString("name", name); !s)
      return s;
    if (name == "default")
      return e.getString("template", out);
  }
  return Status::ok();
}

// transformers adds the tokens of added_tokens_decoder that tokenizer.json lacks.
Status addConfigTokens(const JsonNode &config, Tokenizer::Impl &impl) {
  auto m = config.member("added_tokens_decoder");
  if (!m.ok())
    return m.status();
  if (!m->has_value())
    return Status::ok();
  if (!(*m)->isObject())
    return (*m)->error("expected an object");
  std::vector<std::pair<uint64_t, AddedToken>> missing;
  for (const auto &[key, value] : (*m)->json().items()) {
    JsonNode entry(value, childPath((*m)->where(), key));
    auto t = parseAddedToken(entry);
    if (!t.ok())
      return t.status();
    if (impl.added.find(t->content))
      continue;
    char *end = nullptr;
    uint64_t id = std::strtoull(key.c_str(), &end, 10);
    missing.push_back({id, std::move(*t)});
  }
  std::sort(missing.begin(), missing.end(), [](const auto &a, const auto &b) { return a.first < b.first; });
  std::vector<AddedToken> tokens;
  for (auto &[id, t] : missing)
    tokens.push_back(std::move(t));
  if (tokens.empty())
    return Status::ok();
  if (Status s = impl.added.add(tokens, *impl.model, impl.normalizer.get()); !s)
    return (*m)->error(s.message());
  return Status::ok();
}

Status readTokenizerConfig(const JsonNode &config, const JsonNode *specialMap, Tokenizer::Impl &impl) {
  TextConfig &c = impl.config;
  const char *names[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
  std::optional<SpecialToken> *slots[] = {&c.bos, &c.eos, &c.unk, &c.pad};
  for (int i = 0; i < 4; ++i) {
    std::optional<std::string> content;
    if (Status s = readSpecialToken(config, names[i], content); !s)
      return s;
    if (!content && specialMap)
      if (Status s = readSpecialToken(*specialMap, names[i], content); !s)
        return s;
    if (content)
      *slots[i] = SpecialToken{*content, impl.tokenToId(*content)};
  }
  if (Status s =
          JsonFields(config).optionalBool("add_bos_token", c.addBosToken).optionalBool("add_eos_token", c.addEosToken).status();
      !s)
    return s;
  auto maxLen = config.member("model_max_length");
  if (!maxLen.ok())
    return maxLen.status();
  if (maxLen->has_value() && (*maxLen)->json().is_number()) {
    double v = (*maxLen)->json().get<double>();
    if (v >= 0 && v < 1e15) // transformers writes 1e30 for "no limit"
      c.modelMaxLength = uint64_t(v);
  }
  return readChatTemplate(config, c.chatTemplate);
}

} // namespace

Status applyConfigFiles(const TokenizerFiles &files, Tokenizer::Impl &impl) {
  std::optional<Json> config, specialMap, generation;
  struct File {
    const std::string *text;
    const char *name;
    std::optional<Json> *out;
  } list[] = {{&files.tokenizerConfigJson, "tokenizer_config.json", &config},
              {&files.specialTokensMapJson, "special_tokens_map.json", &specialMap},
              {&files.generationConfigJson, "generation_config.json", &generation}};
  for (const File &f : list) {
    if (f.text->empty())
      continue;
    auto j = parseJson(*f.text, f.name);
    if (!j.ok())
      return j.status();
    if (!j->is_object())
      return Status::error(std::string(f.name) + ": expected a JSON object");
    *f.out = std::move(*j);
  }
  std::optional<JsonNode> specialNode;
  if (specialMap)
    specialNode.emplace(*specialMap, "special_tokens_map.json");
  if (config) {
    JsonNode c(*config, "tokenizer_config.json");
    if (Status s = addConfigTokens(c, impl); !s)
      return s;
    if (Status s = readTokenizerConfig(c, specialNode ? &*specialNode : nullptr, impl); !s)
      return s;
  } else if (specialNode) {
    Json empty = Json::object();
    if (Status s = readTokenizerConfig(JsonNode(empty, "tokenizer_config.json"), &*specialNode, impl); !s)
      return s;
  }
  TextConfig &c = impl.config;
  if (generation) {
    JsonNode g(*generation, "generation_config.json");
    if (Status s = readIds(g, "eos_token_id", c.eosTokenIds); !s)
      return s;
    std::vector<uint32_t> bos;
    if (Status s = readIds(g, "bos_token_id", bos); !s)
      return s;
    if (!bos.empty())
      c.bosTokenId = bos[0];
  }
  if (c.eosTokenIds.empty() && c.eos && c.eos->id)
    c.eosTokenIds.push_back(*c.eos->id);
  if (!c.bosTokenId && c.bos && c.bos->id)
    c.bosTokenId = c.bos->id;
  return Status::ok();
}

} // namespace kiln::tokenizer
