//===- Generate.cpp - `kiln generate`: prefill, then decode token by token ===//
//
//   kiln generate MODEL.kiln (--ids 1,2,3 | --prompt TEXT | --chat TEXT [--system TEXT] | --messages FILE.json)
//                 [-n N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--eos ID] [--ignore-eos]
//                 [--print-prompt] [--threads N] [--no-verify]
// --ids: prints the generated token ids (space-separated, one line). Text (the artifact's tokenizer): streams
// the generated text to stdout as tokens come (special tokens left out), then a newline; --chat / --messages
// render the chat template first (add_generation_prompt, the prompt tokenized without added special tokens,
// as apply_chat_template does); --print-prompt prints the prompt text and exits. Stops after n tokens, after
// the model's EOS ids (unless --ignore-eos) or --eos, or at the compiled max context. Timings on stderr.
// Everything runs through the C API (kiln_generate / kiln_generate_text): one sampler, in the runtime.
//
//===----------------------------------------------------------------------===//
#include "Cli.h"
#include "Subcommands.h"

#include "kiln/kiln.hpp"
#include "kiln/support/Util.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstring>

namespace kiln::cli {

int parseThreads(const Args &args, int &threads); // Run.cpp

namespace {

std::optional<double> parseNumber(const std::string &text) {
  if (text.empty())
    return std::nullopt;
  char *end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (!end || *end != '\0' || !std::isfinite(v))
    return std::nullopt;
  return v;
}

/// One integer flag in [0, max] into `out` (unchanged when absent), read as every command reads them (Cli.h);
/// a usage exit code on a bad value.
int parseCount(const Args &args, const char *flag, uint64_t max, int64_t &out) {
  if (auto t = args.get(flag)) {
    std::string error;
    std::optional<uint64_t> v = parseIntFlag(flag, *t, 0, max, &error);
    if (!v)
      return fail(kExitUsage, error);
    out = int64_t(*v);
  }
  return kExitOk;
}

struct GenerateFlags {
  kiln_generate_options options;
  std::optional<int64_t> eos;
  int threads = 0;
};

int parseGenerateFlags(const Args &args, GenerateFlags &f) {
  kiln_generate_options_init(&f.options);
  f.options.max_new_tokens = args.has("--ids") ? 32 : 256;
  int64_t seed = 0, eos = -1;
  if (int rc = parseCount(args, "-n", kMaxTokens, f.options.max_new_tokens))
    return rc;
  if (int rc = parseCount(args, "--top-k", INT64_MAX, f.options.top_k))
    return rc;
  if (int rc = parseCount(args, "--seed", INT64_MAX, seed))
    return rc;
  if (int rc = parseCount(args, "--eos", INT64_MAX, eos))
    return rc;
  f.options.seed = uint64_t(seed);
  if (eos >= 0)
    f.eos = eos;
  if (auto t = args.get("--temperature")) {
    std::optional<double> v = parseNumber(*t);
    if (!v || *v < 0)
      return fail(kExitUsage, "--temperature must be a number >= 0, got '" + *t + "'");
    f.options.temperature = float(*v);
  }
  if (auto t = args.get("--top-p")) {
    std::optional<double> v = parseNumber(*t);
    if (!v || *v <= 0 || *v > 1)
      return fail(kExitUsage, "--top-p must be in (0, 1], got '" + *t + "'");
    f.options.top_p = float(*v);
  }
  f.options.stop_at_eos = args.has("--ignore-eos") ? 0 : 1;
  return parseThreads(args, f.threads);
}

/// The messages of --chat (with --system) or --messages as JSON text.
StatusOr<std::string> messagesJson(const Args &args) {
  if (auto file = args.get("--messages")) {
    std::string text;
    if (Status s = support::readFile(*file, text, 64u << 20); !s)
      return s;
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_array())
      return Status::error(*file + ": expected a JSON list of {role, content} messages");
    return text;
  }
  nlohmann::json messages = nlohmann::json::array();
  if (auto system = args.get("--system"))
    messages.push_back({{"role", "system"}, {"content", *system}});
  messages.push_back({{"role", "user"}, {"content", *args.get("--chat")}});
  return messages.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// The prompt text: --prompt as given, --chat / --messages through the model's chat template.
StatusOr<std::string> promptText(const Args &args, kiln_model *model) {
  if (auto prompt = args.get("--prompt"))
    return *prompt;
  StatusOr<std::string> messages = messagesJson(args);
  if (!messages.ok())
    return messages;
  char *rendered = nullptr;
  if (kiln_chat_template_apply(model, messages->c_str(), /*add_generation_prompt=*/1, &rendered) != KILN_OK)
    return Status::error(kiln_last_error());
  std::string text(rendered);
  kiln_free(rendered);
  return text;
}

/// "MODEL: message" unless the message names the model already.
std::string withPath(const std::string &path, const std::string &message) {
  return message.compare(0, path.size() + 1, path + ":") == 0 ? message : path + ": " + message;
}

struct StreamState {
  std::optional<int64_t> eos;
  bool sawEos = false;
};

int printText(const char *piece, size_t len, int64_t id, void *user) {
  auto *state = static_cast<StreamState *>(user);
  std::fwrite(piece, 1, len, stdout);
  std::fflush(stdout);
  if (state->eos && id == *state->eos)
    return state->sawEos = true;
  return 0;
}

int collectId(int64_t id, void *user) {
  auto *state = static_cast<std::pair<StreamState, std::vector<int64_t>> *>(user);
  state->second.push_back(id);
  return state->first.eos && id == *state->first.eos ? 1 : 0;
}

void printStats(double loadSeconds, const kiln_generate_stats &s) {
  const int64_t decoded = s.generated_tokens > 0 ? s.generated_tokens - 1 : 0;
  std::fprintf(stderr,
               "kiln: load %.1f ms; prefill %lld tokens in %.1f ms (%.1f tokens/s); decode %lld tokens in %.1f ms "
               "(%.1f tokens/s)%s\n",
               loadSeconds * 1e3, (long long)s.prompt_tokens, s.prefill_seconds * 1e3,
               s.prefill_seconds > 0 ? double(s.prompt_tokens) / s.prefill_seconds : 0.0, (long long)decoded,
               s.decode_seconds * 1e3, s.decode_seconds > 0 ? double(decoded) / s.decode_seconds : 0.0,
               s.stopped_at_eos ? "; stopped at EOS" : s.stopped_at_context ? "; stopped at the max context" : "");
}

/// Which of the prompt flags was given (exactly one), or "" after printing a usage error.
std::string promptFlag(const Args &args, const std::string &usage) {
  std::string flag;
  int given = 0;
  for (const char *f : {"--ids", "--prompt", "--chat", "--messages"})
    if (args.has(f)) {
      flag = f;
      ++given;
    }
  if (args.positional().size() != 1 || given != 1) {
    fail(kExitUsage, "give one MODEL.kiln and exactly one of --ids, --prompt, --chat, --messages; " + usage);
    return "";
  }
  if (args.has("--system") && flag != "--chat") {
    fail(kExitUsage, "--system goes with --chat");
    return "";
  }
  if (args.has("--print-prompt") && flag == "--ids") {
    fail(kExitUsage, "--print-prompt needs a text prompt (--prompt, --chat or --messages)");
    return "";
  }
  return flag;
}

} // namespace

int runGenerate(int argc, char **argv) {
  std::optional<Args> parsed;
  if (std::optional<int> done = parseArgs(argc, argv, "generate", parsed))
    return *done;
  const Args &args = *parsed;
  const std::string flag = promptFlag(args, usageLine(*findCommand("generate")));
  if (flag.empty())
    return kExitUsage;
  std::optional<std::vector<int64_t>> ids;
  std::string error;
  if (flag == "--ids" && !(ids = parseIntListFlag("--ids", *args.get("--ids"), 0, INT64_MAX, &error)))
    return fail(kExitUsage, error);
  GenerateFlags f;
  if (int rc = parseGenerateFlags(args, f))
    return rc;

  const std::string modelPath = args.positional()[0];
  const auto t0 = std::chrono::steady_clock::now();
  runtime::Model model;
  if (runtime::Result r = model.load(modelPath, f.threads, !args.has("--no-verify")); !r)
    return fail(kExitBadInput, r.message);
  if (!model.isCausalLM())
    return fail(kExitBadInput, modelPath + ": generate needs a causal LM; " + model.architecture() + " is an " +
                                   model.task());
  std::string prompt;
  if (!ids) {
    StatusOr<std::string> text = promptText(args, model.get());
    if (!text.ok())
      return fail(kExitBadInput, text.status().message());
    prompt = std::move(*text);
    if (args.has("--print-prompt")) {
      std::fwrite(prompt.data(), 1, prompt.size(), stdout);
      return kExitOk;
    }
  }
  runtime::Session session;
  if (runtime::Result r = session.create(model, 1); !r)
    return fail(kExitBadInput, r.message);
  const double loadSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  kiln_generate_stats stats{};
  if (ids) {
    std::pair<StreamState, std::vector<int64_t>> state{{f.eos, false}, {}};
    if (kiln_generate(session.get(), ids->data(), ids->size(), &f.options, collectId, &state, &stats) != KILN_OK)
      return fail(kExitBadInput, withPath(modelPath, kiln_last_error()));
    std::string line;
    for (int64_t t : state.second)
      line += (line.empty() ? "" : " ") + std::to_string(t);
    std::printf("%s\n", line.c_str());
  } else {
    // A chat prompt holds its special tokens already (apply_chat_template tokenizes without adding them).
    f.options.add_special_tokens = flag == "--prompt" ? 1 : 0;
    StreamState state{f.eos, false};
    if (kiln_generate_text(session.get(), prompt.data(), prompt.size(), &f.options, printText, &state, &stats) !=
        KILN_OK) {
      std::fflush(stdout);
      return fail(kExitBadInput, withPath(modelPath, kiln_last_error()));
    }
    std::printf("\n");
  }
  printStats(loadSeconds, stats);
  return kExitOk;
}

} // namespace kiln::cli
