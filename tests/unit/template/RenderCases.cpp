// kiln_chat_template_render CASES.json: renders each case and prints one JSON array of results
// ({"ok": true, "text": ...} or {"ok": false, "error": ...}), for compare_jinja2.py to check against jinja2.
// A case: {"template": TEXT} or {"config": tokenizer_config.json path [, "template_name": NAME]}, plus
// "messages", "add_generation_prompt", "variables" (an object) and "now" (strftime_now's clock).
#include "kiln/template/ChatTemplate.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

namespace {

using Json = nlohmann::ordered_json;

kiln::StatusOr<std::string> readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return kiln::Status::error(path + ": cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Configs by path: the cases reuse a few (Gemma 3's is over 1 MB).
kiln::StatusOr<kiln::ChatTemplateConfig> loadConfig(const std::string &path) {
  static std::map<std::string, kiln::StatusOr<kiln::ChatTemplateConfig>> cache;
  auto it = cache.find(path);
  if (it != cache.end())
    return it->second;
  auto file = readFile(path);
  if (!file.ok())
    return file.status();
  auto config = kiln::ChatTemplateConfig::fromTokenizerConfig(*file, path);
  cache.emplace(path, config);
  return config;
}

kiln::StatusOr<std::string> renderCase(const Json &c) {
  kiln::ChatTemplateOptions options;
  std::string text;
  if (c.contains("config")) {
    auto config = loadConfig(c["config"].get<std::string>());
    if (!config.ok())
      return config.status();
    const std::string *t = config->find(c.value("template_name", std::string("default")));
    if (!t)
      return kiln::Status::error("the config has no such chat template");
    text = *t;
    options.variables = config->specialTokens;
  } else {
    text = c["template"].get<std::string>();
  }
  auto tmpl = kiln::ChatTemplate::parse(text);
  if (!tmpl.ok())
    return tmpl.status();
  auto messages = kiln::TemplateValue::fromJson(c.value("messages", Json::array()).dump(), "messages");
  if (!messages.ok())
    return messages.status();
  if (c.contains("variables")) {
    auto vars = kiln::TemplateValue::fromJson(c["variables"].dump(), "variables");
    if (!vars.ok())
      return vars.status();
    for (const auto &m : vars->members())
      options.variables.push_back(m);
  }
  options.addGenerationPrompt = c.value("add_generation_prompt", false);
  if (c.contains("now"))
    options.now = std::time_t(c["now"].get<int64_t>());
  return tmpl->render(*messages, options);
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: kiln_chat_template_render CASES.json\n");
    return 2;
  }
  auto file = readFile(argv[1]);
  if (!file.ok()) {
    std::fprintf(stderr, "%s\n", file.status().message().c_str());
    return 1;
  }
  Json cases = Json::parse(*file, nullptr, false);
  if (cases.is_discarded() || !cases.is_object() || !cases.contains("cases")) {
    std::fprintf(stderr, "%s: not a JSON object with \"cases\"\n", argv[1]);
    return 1;
  }
  Json results = Json::array();
  for (const Json &c : cases["cases"]) {
    auto r = renderCase(c);
    results.push_back(r.ok() ? Json{{"ok", true}, {"text", *r}}
                             : Json{{"ok", false}, {"error", r.status().message()}});
  }
  std::string out = results.dump(-1, ' ', false, Json::error_handler_t::replace);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}
