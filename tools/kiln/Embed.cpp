//===- Embed.cpp - `kiln embed`: sentence embeddings of an encoder artifact ===//
//
//   kiln embed MODEL.kiln (--text T ... | --file TEXTS.jsonl) [--prefix P] [--pooling mean|cls|max|last|mean_sqrt_len]
//              [--normalize | --no-normalize] [--batch N] [--output OUT.safetensors|OUT.json] [--threads N]
//              [--no-verify]
// As sentence-transformers' encode: the prefix (default: the model's default prompt), the texts in batches with
// padding and an attention mask, the pooling and normalization of the model's sentence-transformers config
// (the flags override it). Prints one JSON array per text, or writes `embeddings` F32 [N, D] to a
// .safetensors file or the arrays as one JSON list to a .json file. Through the C API (kiln_embed).
//
//===----------------------------------------------------------------------===//
#include "Cli.h"
#include "Subcommands.h"

#include "kiln/frontend/SafeTensors.h"
#include "kiln/kiln.hpp"
#include "kiln/support/Util.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

namespace kiln::cli {

int parseThreads(const Args &args, int &threads); // Run.cpp

namespace {

using Json = nlohmann::json;

std::string dumpJson(const Json &j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

/// The texts: every --text, or each non-empty line of --file (a JSON string).
StatusOr<std::vector<std::string>> readTexts(const Args &args) {
  if (!args.has("--file"))
    return args.getAll("--text");
  const std::string path = *args.get("--file");
  std::string content;
  if (Status s = support::readFile(path, content, uint64_t(1) << 32); !s)
    return s;
  std::vector<std::string> texts;
  size_t lineNo = 0;
  for (size_t pos = 0; pos < content.size();) {
    size_t nl = content.find('\n', pos);
    std::string line = content.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? content.size() : nl + 1;
    ++lineNo;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.empty())
      continue;
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_string())
      return Status::error(path + ":" + std::to_string(lineNo) + ": expected a JSON string");
    texts.push_back(j.get<std::string>());
  }
  return texts;
}

int parseEmbedOptions(const Args &args, kiln_embed_options &o) {
  kiln_embed_options_init(&o);
  if (auto p = args.get("--pooling")) {
    static const std::pair<const char *, kiln_pooling> kModes[] = {{"mean", KILN_POOLING_MEAN},
                                                                   {"cls", KILN_POOLING_CLS},
                                                                   {"max", KILN_POOLING_MAX},
                                                                   {"last", KILN_POOLING_LAST},
                                                                   {"mean_sqrt_len", KILN_POOLING_MEAN_SQRT_LEN}};
    auto it = std::find_if(std::begin(kModes), std::end(kModes), [&](const auto &m) { return *p == m.first; });
    if (it == std::end(kModes))
      return fail(kExitUsage, "--pooling must be mean, cls, max, last or mean_sqrt_len, got '" + *p + "'");
    o.pooling = it->second;
  }
  if (args.has("--normalize") && args.has("--no-normalize"))
    return fail(kExitUsage, "give at most one of --normalize and --no-normalize");
  if (args.has("--normalize"))
    o.normalize = 1;
  if (args.has("--no-normalize"))
    o.normalize = 0;
  return kExitOk;
}

int writeOutput(const std::string &path, const std::vector<float> &values, size_t count, int64_t dim) {
  if (path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
    Json all = Json::array();
    for (size_t i = 0; i < count; ++i)
      all.push_back(std::vector<float>(values.begin() + int64_t(i) * dim, values.begin() + int64_t(i + 1) * dim));
    std::string text = dumpJson(all) + "\n";
    if (Status s = support::writeFile(path, text.data(), text.size()); !s)
      return fail(kExitBadInput, s.message());
    return kExitOk;
  }
  SafeTensorsWriter writer;
  writer.add("embeddings", DType::F32, {int64_t(count), dim}, values.data(), values.size() * sizeof(float));
  Status written = writer.write(path);
  if (!written.isOk())
    return fail(kExitBadInput, written.message());
  return kExitOk;
}

} // namespace

int runEmbed(int argc, char **argv) {
  std::optional<Args> parsed;
  if (std::optional<int> done = parseArgs(argc, argv, "embed", parsed))
    return *done;
  const Args &args = *parsed;
  const std::string usage = usageLine(*findCommand("embed"));
  if (args.positional().size() != 1 || args.has("--text") == args.has("--file"))
    return fail(kExitUsage, "give one MODEL.kiln and --text (repeatable) or --file; " + usage);
  kiln_embed_options options;
  if (int rc = parseEmbedOptions(args, options))
    return rc;
  int threads = 0;
  if (int rc = parseThreads(args, threads))
    return rc;
  int64_t batch = 0;
  if (auto b = args.get("--batch")) {
    std::optional<std::vector<int64_t>> v = parseIntList(*b);
    if (!v || v->size() != 1)
      return fail(kExitUsage, "--batch must be a positive integer, got '" + *b + "'");
    batch = (*v)[0];
  }
  const std::string modelPath = args.positional()[0];
  if (auto out = args.get("--output"))
    if (Status s = support::checkOutputPath("--output", *out, {{"the artifact", modelPath}}); !s)
      return fail(kExitBadInput, s.message());
  StatusOr<std::vector<std::string>> texts = readTexts(args);
  if (!texts.ok())
    return fail(kExitBadInput, texts.status().message());
  std::string prefix = args.get("--prefix").value_or("");
  if (args.has("--prefix"))
    options.prefix = prefix.c_str();

  runtime::Model model;
  if (runtime::Result r = model.load(modelPath, threads, !args.has("--no-verify")); !r)
    return fail(kExitBadInput, r.message);
  if (model.task() != "encoder")
    return fail(kExitBadInput, modelPath + ": embed needs an encoder; " + model.architecture() + " is a " + model.task());
  const int64_t sessionBatch = std::max<int64_t>(1, std::min<int64_t>(batch > 0 ? batch : 32, model.maxBatch()));
  runtime::Session session;
  if (runtime::Result r = session.create(model, std::min<int64_t>(sessionBatch, std::max<size_t>(texts->size(), 1))); !r)
    return fail(kExitBadInput, r.message);
  const int64_t dim = model.hiddenSize();
  std::vector<float> values(texts->size() * size_t(dim));
  std::vector<const char *> pointers;
  for (const std::string &t : *texts)
    pointers.push_back(t.c_str());
  if (kiln_embed(session.get(), pointers.data(), pointers.size(), &options, values.data(), values.size()) != KILN_OK)
  {
    const std::string message = kiln_last_error();
    return fail(kExitBadInput, message.compare(0, modelPath.size() + 1, modelPath + ":") == 0 ? message
                                                                                              : modelPath + ": " + message);
  }
  if (auto out = args.get("--output"))
    return writeOutput(*out, values, texts->size(), dim);
  for (size_t i = 0; i < texts->size(); ++i)
    std::printf("%s\n", dumpJson(std::vector<float>(values.begin() + int64_t(i) * dim,
                                                    values.begin() + int64_t(i + 1) * dim)).c_str());
  return kExitOk;
}

} // namespace kiln::cli
