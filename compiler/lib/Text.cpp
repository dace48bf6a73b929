//===- Text.cpp - the text stage: a model directory's tokenizer files into the artifact's TEXT section ===//
//
// The tokenizer files are stored verbatim (the runtime's tokenizer library loads them as from a directory),
// after the tokenizer library and the chat-template engine accepted them here, so that an artifact never
// carries a tokenizer its runtime would refuse. The ids generation stops at and the sentence-transformers
// pooling of an encoder are resolved once, here.
//
//===----------------------------------------------------------------------===//
#include "kiln/compiler/Stages.h"

#include "kiln/support/Util.h"
#include "kiln/template/ChatTemplate.h"
#include "kiln/tokenizer/Tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include <sys/stat.h>

namespace kiln::compiler {
namespace {

using Json = nlohmann::json;
constexpr uint64_t kMaxTextFileBytes = uint64_t(128) << 20;

bool isFile(const std::string &path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

/// DIR/NAME's contents, or "" when it does not exist.
StatusOr<std::string> readOptional(const std::string &dir, const std::string &name) {
  std::string path = dir + "/" + name, text;
  if (!isFile(path))
    return std::string();
  if (Status s = support::readFile(path, text, kMaxTextFileBytes); !s)
    return s;
  return text;
}

/// A JSON object file's contents (nullopt when absent); a file that is not a JSON object is an error.
StatusOr<std::optional<Json>> readJsonObject(const std::string &dir, const std::string &name) {
  StatusOr<std::string> text = readOptional(dir, name);
  if (!text.ok())
    return text.status();
  if (text->empty())
    return std::optional<Json>();
  Json j = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Status::error(dir + "/" + name + ": not a JSON object");
  return std::optional<Json>(std::move(j));
}

/// eos_token_id of a config: one id or a list of ids (absent or null: none).
StatusOr<std::vector<uint32_t>> eosIdsOf(const Json &config, const std::string &file) {
  std::vector<uint32_t> ids;
  auto it = config.find("eos_token_id");
  if (it == config.end() || it->is_null())
    return ids;
  Json list = it->is_array() ? *it : Json::array({*it});
  for (const Json &v : list) {
    if (!v.is_number_unsigned() || v.get<uint64_t>() > UINT32_MAX)
      return Status::error(file + ": eos_token_id: expected a token id or a list of them");
    ids.push_back(uint32_t(v.get<uint64_t>()));
  }
  return ids;
}

bool boolField(const Json &j, const char *key, bool fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

/// 1_Pooling/config.json's one pooling mode (sentence-transformers may combine several; kiln pools one).
StatusOr<artifact::Pooling::Mode> poolingMode(const Json &config, const std::string &file) {
  static const std::pair<const char *, artifact::Pooling::Mode> kModes[] = {
      {"pooling_mode_mean_tokens", artifact::Pooling::MEAN},
      {"pooling_mode_cls_token", artifact::Pooling::CLS},
      {"pooling_mode_max_tokens", artifact::Pooling::MAX},
      {"pooling_mode_lasttoken", artifact::Pooling::LAST},
      {"pooling_mode_mean_sqrt_len_tokens", artifact::Pooling::MEAN_SQRT_LEN}};
  std::vector<artifact::Pooling::Mode> on;
  for (const auto &[key, mode] : kModes)
    if (boolField(config, key, false))
      on.push_back(mode);
  // Newer sentence-transformers may write the mode as one string ("mean", "cls", "max", "lasttoken", ...).
  if (auto it = config.find("pooling_mode"); it != config.end() && it->is_string()) {
    const std::string name = "pooling_mode_" + it->get<std::string>();
    for (const auto &[key, mode] : kModes)
      if (name == key || name + "_token" == key || name + "_tokens" == key)
        on.push_back(mode);
    if (on.empty())
      return Status::error(file + ": pooling_mode '" + it->get<std::string>() + "' is not supported");
  }
  std::sort(on.begin(), on.end());
  on.erase(std::unique(on.begin(), on.end()), on.end());
  if (boolField(config, "pooling_mode_weightedmean_tokens", false))
    return Status::error(file + ": pooling_mode_weightedmean_tokens is not supported");
  if (on.size() != 1)
    return Status::error(file + ": expected exactly one pooling mode, found " + std::to_string(on.size()));
  return on[0];
}

/// The modules of modules.json: the path of its Pooling module ("" when none) and whether a Normalize follows.
Status readModules(const Json &modules, const std::string &file, std::string &poolingPath, bool &normalize) {
  if (!modules.is_array())
    return Status::error(file + ": expected a JSON list of modules");
  for (const Json &m : modules) {
    auto type = m.is_object() ? m.find("type") : Json::const_iterator();
    if (!m.is_object() || type == m.end() || !type->is_string())
      return Status::error(file + ": a module without a \"type\" string");
    const std::string t = type->get<std::string>();
    auto path = m.find("path");
    if (t.find("Pooling") != std::string::npos)
      poolingPath = path != m.end() && path->is_string() ? path->get<std::string>() : "";
    else if (t.find("Normalize") != std::string::npos)
      normalize = true;
  }
  return Status::ok();
}

/// Prompts and the default prompt name (config_sentence_transformers.json), max_seq_length.
Status readPrompts(const std::string &dir, artifact::Pooling &pooling) {
  StatusOr<std::optional<Json>> st = readJsonObject(dir, "config_sentence_transformers.json");
  if (!st.ok())
    return st.status();
  if (*st) {
    const Json &c = **st;
    const std::string file = dir + "/config_sentence_transformers.json";
    if (auto p = c.find("prompts"); p != c.end() && !p->is_null()) {
      if (!p->is_object())
        return Status::error(file + ": prompts: expected an object of strings");
      for (auto it = p->begin(); it != p->end(); ++it) {
        if (!it.value().is_string() || it.key().empty())
          return Status::error(file + ": prompts: expected an object of strings");
        (*pooling.mutable_prompts())[it.key()] = it.value().get<std::string>();
      }
    }
    if (auto d = c.find("default_prompt_name"); d != c.end() && d->is_string())
      pooling.set_default_prompt_name(d->get<std::string>());
  }
  StatusOr<std::optional<Json>> sb = readJsonObject(dir, "sentence_bert_config.json");
  if (!sb.ok())
    return sb.status();
  if (*sb)
    if (auto m = (**sb).find("max_seq_length"); m != (**sb).end() && m->is_number_unsigned())
      pooling.set_max_seq_length(int64_t(m->get<uint64_t>()));
  return Status::ok();
}

/// The sentence-transformers pooling of DIR, or nullopt when DIR has no modules.json with a Pooling module.
StatusOr<std::optional<artifact::Pooling>> readPooling(const std::string &dir) {
  StatusOr<std::string> text = readOptional(dir, "modules.json");
  if (!text.ok())
    return text.status();
  if (text->empty())
    return std::optional<artifact::Pooling>();
  Json modules = Json::parse(*text, nullptr, false);
  std::string poolingPath;
  bool normalize = false;
  if (Status s = readModules(modules, dir + "/modules.json", poolingPath, normalize); !s)
    return s;
  if (poolingPath.empty())
    return std::optional<artifact::Pooling>();
  StatusOr<std::optional<Json>> config = readJsonObject(dir, poolingPath + "/config.json");
  if (!config.ok())
    return config.status();
  const std::string file = dir + "/" + poolingPath + "/config.json";
  if (!*config)
    return Status::error(file + ": missing (modules.json names a Pooling module there)");
  StatusOr<artifact::Pooling::Mode> mode = poolingMode(**config, file);
  if (!mode.ok())
    return mode.status();
  artifact::Pooling pooling;
  pooling.set_mode(*mode);
  pooling.set_normalize(normalize);
  pooling.set_include_prompt(boolField(**config, "include_prompt", true));
  if (Status s = readPrompts(dir, pooling); !s)
    return s;
  if (!pooling.default_prompt_name().empty() && !pooling.prompts().count(pooling.default_prompt_name()))
    return Status::error(dir + "/config_sentence_transformers.json: default_prompt_name '" +
                         pooling.default_prompt_name() + "' is not among the prompts");
  return std::optional<artifact::Pooling>(std::move(pooling));
}

/// generation_config.json's eos_token_id, else config.json's, else the tokenizer's eos token.
StatusOr<std::vector<uint32_t>> resolveEosIds(const std::string &dir, const tokenizer::Tokenizer &tok) {
  for (const char *name : {"generation_config.json", "config.json"}) {
    StatusOr<std::optional<Json>> j = readJsonObject(dir, name);
    if (!j.ok())
      return j.status();
    if (!*j)
      continue;
    StatusOr<std::vector<uint32_t>> ids = eosIdsOf(**j, dir + "/" + name);
    if (!ids.ok() || !ids->empty())
      return ids;
  }
  return tok.config().eosTokenIds;
}

std::string poolingName(artifact::Pooling::Mode mode) {
  switch (mode) {
  case artifact::Pooling::MEAN: return "mean";
  case artifact::Pooling::CLS: return "cls";
  case artifact::Pooling::MAX: return "max";
  case artifact::Pooling::LAST: return "last";
  case artifact::Pooling::MEAN_SQRT_LEN: return "mean_sqrt_len";
  default: return "none";
  }
}

/// "tokenizer: BPE, vocab 32000, eos [2], chat template, pooling mean + normalize".
std::string textLine(const tokenizer::Tokenizer &tok, const artifact::TextSection &text) {
  std::string eos;
  for (uint32_t id : text.eos_token_ids())
    eos += (eos.empty() ? "" : ", ") + std::to_string(id);
  std::string line = "tokenizer: " + tok.modelType() + ", vocab " + std::to_string(tok.vocabSize()) + ", eos [" +
                     eos + "], " + (text.chat_template().empty() ? "no chat template" : "chat template");
  if (text.has_pooling())
    line += ", pooling " + poolingName(text.pooling().mode()) + (text.pooling().normalize() ? " + normalize" : "");
  return line;
}

} // namespace

StatusOr<TextStageResult> textStage(const std::string &dir, const std::string &task, int64_t vocabSize) {
  TextStageResult result;
  tokenizer::TokenizerFiles files;
  for (auto [name, slot] : {std::pair<const char *, std::string *>{"tokenizer.json", &files.tokenizerJson},
                            {"tokenizer_config.json", &files.tokenizerConfigJson},
                            {"special_tokens_map.json", &files.specialTokensMapJson},
                            {"generation_config.json", &files.generationConfigJson}}) {
    StatusOr<std::string> text = readOptional(dir, name);
    if (!text.ok())
      return text.status();
    *slot = std::move(*text);
  }
  if (files.tokenizerJson.empty()) {
    result.lines.push_back("no tokenizer: ids only (" + dir + " has no tokenizer.json)");
    return result;
  }
  StatusOr<tokenizer::Tokenizer> tok = tokenizer::Tokenizer::fromJson(files);
  if (!tok.ok())
    return Status::error(support::oneLine(tok.status().message()));
  artifact::TextSection text;
  text.set_tokenizer_json(files.tokenizerJson);
  text.set_tokenizer_config_json(files.tokenizerConfigJson);
  text.set_special_tokens_map_json(files.specialTokensMapJson);
  text.set_generation_config_json(files.generationConfigJson);
  StatusOr<std::string> jinja = readOptional(dir, "chat_template.jinja");
  if (!jinja.ok())
    return jinja.status();
  text.set_chat_template(!jinja->empty() ? *jinja : tok->config().chatTemplate);
  if (!text.chat_template().empty())
    if (StatusOr<ChatTemplate> t = ChatTemplate::parse(text.chat_template(), dir + " chat_template"); !t.ok())
      result.lines.push_back("warning: the chat template is stored but kiln cannot render it: " +
                             support::oneLine(t.status().message()));
  StatusOr<std::vector<uint32_t>> eos = resolveEosIds(dir, *tok);
  if (!eos.ok())
    return eos.status();
  for (uint32_t id : *eos) {
    if (int64_t(id) >= vocabSize)
      return Status::error(dir + ": eos token id " + std::to_string(id) + " is outside the model's vocabulary of " +
                           std::to_string(vocabSize));
    text.add_eos_token_ids(id);
  }
  if (task == "encoder") {
    StatusOr<std::optional<artifact::Pooling>> pooling = readPooling(dir);
    if (!pooling.ok())
      return pooling.status();
    if (*pooling)
      *text.mutable_pooling() = std::move(**pooling);
  }
  if (int64_t(tok->vocabSize()) > vocabSize)
    result.lines.push_back("warning: the tokenizer's vocabulary (" + std::to_string(tok->vocabSize()) +
                           ") is larger than the model's (" + std::to_string(vocabSize) +
                           "): text with ids outside the model's is refused at run time");
  result.lines.insert(result.lines.begin(), textLine(*tok, text));
  result.text = std::move(text);
  return result;
}

} // namespace kiln::compiler
