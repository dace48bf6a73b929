//===- ChatTemplate.cpp - `kiln chat-template`: render a model's chat template ----===//
//
//   kiln chat-template MODEL_DIR|tokenizer_config.json (--messages FILE.json | --chat TEXT [--system TEXT])
//                      [--add-generation-prompt] [--template NAME] [--variables FILE.json] [--now SECONDS]
// Prints the prompt transformers' apply_chat_template(messages, tokenize=False) would give: the config's
// chat_template with its special tokens. --messages: a JSON list of {role, content} objects; --chat: one user
// turn (after an optional system turn). --variables: a JSON object of extra template variables (tools,
// enable_thinking, ...). --now: strftime_now's clock. A debugging aid for templates; exit 1 with one line
// on a bad file or a template error (raise_exception included).
//
//===----------------------------------------------------------------------===//
#include "Cli.h"
#include "Subcommands.h"

#include "kiln/support/Util.h"
#include "kiln/template/ChatTemplate.h"

#include <sys/stat.h>

namespace kiln::cli {
namespace {


StatusOr<std::string> readText(const std::string &path) {
  std::string text;
  if (Status s = support::readFile(path, text, 64u << 20); !s)
    return s;
  return text;
}

// Messages stay one line (a template's raise_exception text may hold newlines).
std::string oneLine(std::string message) {
  for (size_t p = 0; (p = message.find('\n', p)) != std::string::npos; p += 2)
    message.replace(p, 1, "\\n");
  return message;
}

std::string configPath(const std::string &arg) {
  struct stat st {};
  if (::stat(arg.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return arg + "/tokenizer_config.json";
  return arg;
}

StatusOr<TemplateValue> messagesFrom(const Args &args) {
  if (auto file = args.get("--messages")) {
    auto text = readText(*file);
    if (!text.ok())
      return text.status();
    auto v = TemplateValue::fromJson(*text, *file);
    if (v.ok() && v->kind() != TemplateValue::Kind::List)
      return Status::error(*file + ": expected a JSON list of messages");
    return v;
  }
  std::vector<ChatMessage> messages;
  if (auto system = args.get("--system"))
    messages.push_back({"system", *system});
  messages.push_back({"user", *args.get("--chat")});
  return messagesValue(messages);
}

} // namespace

int runChatTemplate(int argc, char **argv) {
  std::optional<Args> parsed;
  if (std::optional<int> done = parseArgs(argc, argv, "chat-template", parsed))
    return *done;
  const Args &args = *parsed;
  if (args.positional().size() != 1 || args.has("--messages") == args.has("--chat") ||
      (args.has("--system") && !args.has("--chat")))
    return fail(kExitUsage, "chat-template needs one model directory and --messages or --chat (run kiln "
                            "chat-template --help)");
  std::optional<std::time_t> now;
  if (auto text = args.get("--now")) {
    char *end = nullptr;
    long long v = std::strtoll(text->c_str(), &end, 10);
    if (text->empty() || *end != '\0')
      return fail(kExitUsage, "--now: expected seconds since the epoch, got '" + *text + "'");
    now = std::time_t(v);
  }
  std::string path = configPath(args.positional()[0]);
  auto configText = readText(path);
  if (!configText.ok())
    return fail(kExitBadInput, configText.status().message());
  auto config = ChatTemplateConfig::fromTokenizerConfig(*configText, path);
  if (!config.ok())
    return fail(kExitBadInput, config.status().message());
  std::string name = args.get("--template").value_or("default");
  const std::string *text = config->find(name);
  if (!text)
    return fail(kExitBadInput, path + ": no chat template" + (name == "default" ? "" : " named '" + name + "'"));
  auto tmpl = ChatTemplate::parse(*text, path + " chat_template");
  if (!tmpl.ok())
    return fail(kExitBadInput, oneLine(tmpl.status().message()));
  auto messages = messagesFrom(args);
  if (!messages.ok())
    return fail(kExitBadInput, messages.status().message());
  ChatTemplateOptions options;
  options.addGenerationPrompt = args.has("--add-generation-prompt");
  options.variables = config->specialTokens;
  options.now = now;
  if (auto file = args.get("--variables")) {
    auto vtext = readText(*file);
    auto vars = vtext.ok() ? TemplateValue::fromJson(*vtext, *file) : StatusOr<TemplateValue>(vtext.status());
    if (vars.ok() && vars->kind() != TemplateValue::Kind::Object)
      vars = Status::error(*file + ": expected a JSON object of variables");
    if (!vars.ok())
      return fail(kExitBadInput, vars.status().message());
    for (const auto &m : vars->members())
      options.variables.push_back(m);
  }
  auto out = tmpl->render(*messages, options);
  if (!out.ok())
    return fail(kExitBadInput, oneLine(out.status().message()));
  std::fwrite(out->data(), 1, out->size(), stdout);
  return kExitOk;
}

} // namespace kiln::cli
