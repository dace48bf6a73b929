//===- Tokenize.cpp - `kiln tokenize` / `kiln detokenize` -----------------===//
//
//   kiln tokenize MODEL_DIR|MODEL.kiln (--text T | --file TEXTS.jsonl) [--no-special]
//   kiln detokenize MODEL_DIR|MODEL.kiln (--ids 1,2,3 | --file IDS.jsonl) [--skip-special] [--stream]
// MODEL_DIR needs only tokenizer.json (tokenizer_config.json and the others are read when present); MODEL.kiln
// is read for its TEXT section only (the same files, stored by kiln compile).
// tokenize prints one JSON array of ids per input; detokenize one JSON string per input (--stream: the
// pieces of the streaming decoder, as a JSON array of strings, whose concatenation is the decoded text).
//
//===----------------------------------------------------------------------===//
#include "Cli.h"
#include "Subcommands.h"

#include "kiln/artifact/ArtifactReader.h"
#include "kiln/support/Util.h"
#include "kiln/tokenizer/Tokenizer.h"

#include <nlohmann/json.hpp>

#include <sys/stat.h>

namespace kiln::cli {

namespace {

using Json = nlohmann::json;
using kiln::tokenizer::Tokenizer;

constexpr uint64_t kMaxInputBytes = uint64_t(1) << 32;

std::string dumpJson(const Json &j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// The model directory's tokenizer, or the one an artifact carries.
StatusOr<Tokenizer> loadTokenizer(const std::string &path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    return Status::error(path + ": no such file or directory");
  if (S_ISDIR(st.st_mode))
    return Tokenizer::load(path);
  StatusOr<artifact::MappedArtifact> a = artifact::openArtifact(path);
  if (!a.ok())
    return Status::error(a.status().message() + " (expected a model directory or a .kiln artifact)");
  const artifact::TextSection *t = a->text();
  if (!t)
    return Status::error(path + ": no tokenizer: the artifact works on token ids only (compiled from a "
                                "directory without tokenizer.json)");
  return Tokenizer::fromJson({t->tokenizer_json(), t->tokenizer_config_json(), t->special_tokens_map_json(),
                              t->generation_config_json()});
}

// The non-empty lines of a JSONL file, with their line numbers.
StatusOr<std::vector<std::pair<size_t, std::string>>> readLines(const std::string &path) {
  std::string text;
  if (Status s = support::readFile(path, text, kMaxInputBytes); !s)
    return s;
  std::vector<std::pair<size_t, std::string>> lines;
  size_t lineNo = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    ++lineNo;
    pos = nl == std::string::npos ? text.size() : nl + 1;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (!line.empty())
      lines.push_back({lineNo, std::move(line)});
  }
  return lines;
}

// Calls `each(where, line)` for each non-empty line of a JSONL file (where: "FILE:LINE: "), stopping at the first
// non-zero exit code.
template <class Each> int forEachLine(const std::string &path, Each each) {
  auto lines = readLines(path);
  if (!lines.ok())
    return fail(kExitBadInput, lines.status().message());
  for (const auto &[lineNo, line] : *lines)
    if (int rc = each(path + ":" + std::to_string(lineNo) + ": ", line); rc != kExitOk)
      return rc;
  return kExitOk;
}

// A JSON array of ids ("[1,2,3]"; --ids takes the same without brackets).
std::optional<std::vector<uint32_t>> parseIdArray(const std::string &line) {
  Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array())
    return std::nullopt;
  std::vector<uint32_t> ids;
  for (const Json &v : j) {
    if (!v.is_number_unsigned() || v.get<uint64_t>() > UINT32_MAX)
      return std::nullopt;
    ids.push_back(uint32_t(v.get<uint64_t>()));
  }
  return ids;
}

// Positional MODEL_DIR plus exactly one of the two input flags.
int checkInputs(const Args &args, const char *command, const char *inlineFlag) {
  const std::string usage = usageLine(*findCommand(command));
  if (args.positional().size() != 1)
    return fail(kExitUsage, "expected one MODEL_DIR or MODEL.kiln; " + usage);
  if (args.has(inlineFlag) == args.has("--file"))
    return fail(kExitUsage, std::string("give exactly one of ") + inlineFlag + " and --file; " + usage);
  return kExitOk;
}

int printDecoded(const Tokenizer &tok, const std::vector<uint32_t> &ids, bool skip, bool stream,
                 const std::string &where) {
  if (!stream) {
    auto text = tok.decode(ids, skip);
    if (!text.ok())
      return fail(kExitBadInput, where + text.status().message());
    std::printf("%s\n", dumpJson(Json(*text)).c_str());
    return kExitOk;
  }
  auto decoder = tok.streamDecoder(skip);
  Json pieces = Json::array();
  for (uint32_t id : ids) {
    auto piece = decoder.step(id);
    if (!piece.ok())
      return fail(kExitBadInput, where + piece.status().message());
    pieces.push_back(*piece);
  }
  auto rest = decoder.finish();
  if (!rest.ok())
    return fail(kExitBadInput, where + rest.status().message());
  pieces.push_back(*rest);
  std::printf("%s\n", dumpJson(pieces).c_str());
  return kExitOk;
}

} // namespace

int runTokenize(int argc, char **argv) {
  std::optional<Args> parsed;
  if (std::optional<int> done = parseArgs(argc, argv, "tokenize", parsed))
    return *done;
  const Args &args = *parsed;
  if (int rc = checkInputs(args, "tokenize", "--text"); rc != kExitOk)
    return rc;
  auto tok = loadTokenizer(args.positional()[0]);
  if (!tok.ok())
    return fail(kExitBadInput, tok.status().message());
  bool special = !args.has("--no-special");
  auto printIds = [&](const std::string &text, const std::string &where) {
    auto ids = tok->encode(text, special);
    if (!ids.ok())
      return fail(kExitBadInput, where + ids.status().message());
    std::printf("%s\n", dumpJson(Json(*ids)).c_str());
    return kExitOk;
  };
  if (auto text = args.get("--text"))
    return printIds(*text, "--text: ");
  return forEachLine(*args.get("--file"), [&](const std::string &where, const std::string &line) {
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_string())
      return fail(kExitBadInput, where + "expected a JSON string");
    return printIds(j.get<std::string>(), where);
  });
}

int runDetokenize(int argc, char **argv) {
  std::optional<Args> parsed;
  if (std::optional<int> done = parseArgs(argc, argv, "detokenize", parsed))
    return *done;
  const Args &args = *parsed;
  if (int rc = checkInputs(args, "detokenize", "--ids"); rc != kExitOk)
    return rc;
  std::optional<std::vector<uint32_t>> inlineIds;
  if (auto text = args.get("--ids"); text && !(inlineIds = parseIdArray("[" + *text + "]")))
    return fail(kExitUsage, "--ids: expected ids such as 1,2,3 (each at most 4294967295)");
  auto tok = loadTokenizer(args.positional()[0]);
  if (!tok.ok())
    return fail(kExitBadInput, tok.status().message());
  bool skip = args.has("--skip-special"), stream = args.has("--stream");
  if (inlineIds)
    return printDecoded(*tok, *inlineIds, skip, stream, "--ids: ");
  return forEachLine(*args.get("--file"), [&](const std::string &where, const std::string &line) {
    auto ids = parseIdArray(line);
    if (!ids)
      return fail(kExitBadInput, where + "expected a JSON array of ids (each at most 4294967295)");
    return printDecoded(*tok, *ids, skip, stream, where);
  });
}

} // namespace kiln::cli
