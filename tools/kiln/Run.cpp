//===- Run.cpp - `kiln run`: a compiled artifact through the runtime ------===//
//
// The contract of `kiln eval` (Eval.cpp), on the compiled artifact: input_ids I64 [B, S] (I32 accepted),
// optional attention_mask; a causal LM runs the prompt through one session in the given chunks and writes
// logits F32 [B, S, V] (every position, concatenated over the chunks); an encoder writes
// last_hidden_state F32 [B, S, H].
//
//===----------------------------------------------------------------------===//
#include "Cli.h"
#include "Inputs.h"
#include "Subcommands.h"

#include "kiln/frontend/SafeTensors.h"
#include "kiln/kiln.hpp"
#include "kiln/support/Util.h"

#include <algorithm>
#include <cstring>

namespace kiln::cli {

/// --threads N (N >= 1); 0 when absent (the artifact's default). Shared by run / generate / bench.
int parseThreads(const Args &args, int &threads) {
  threads = 0;
  auto text = args.get("--threads");
  if (!text)
    return kExitOk;
  std::string error;
  std::optional<uint64_t> v = parseIntFlag("--threads", *text, 1, kMaxThreads, &error);
  if (!v)
    return fail(kExitUsage, error);
  threads = int(*v);
  return kExitOk;
}

int runRun(int argc, char **argv) {
  std::optional<Args> parsed;
  if (std::optional<int> done = parseArgs(argc, argv, "run", parsed))
    return *done;
  const Args &args = *parsed;
  const std::string usage = usageLine(*findCommand("run"));
  if (args.positional().size() != 1 || !args.has("--inputs") || !args.has("--outputs"))
    return fail(kExitUsage, usage);
  const std::string modelPath = args.positional()[0];
  const std::string inputsPath = *args.get("--inputs"), outputsPath = *args.get("--outputs");
  int threads = 0;
  if (int code = parseThreads(args, threads))
    return code;
  std::optional<std::vector<int64_t>> chunks;
  if (auto text = args.get("--chunks")) {
    std::string error;
    chunks = parseIntListFlag("--chunks", *text, 1, kMaxTokens, &error);
    if (!chunks)
      return fail(kExitUsage, error);
  }

  if (Status s = support::checkOutputPath("--outputs", outputsPath,
                                          {{"the artifact", modelPath}, {"--inputs", inputsPath}});
      !s)
    return fail(kExitBadInput, s.message());
  runtime::Model model;
  if (runtime::Result r = model.load(modelPath, threads, !args.has("--no-verify")); !r)
    return fail(kExitBadInput, r.message);
  StatusOr<std::unique_ptr<SafeTensorsFile>> inputs = SafeTensorsFile::open(inputsPath);
  if (!inputs.ok())
    return fail(kExitBadInput, inputs.status().message());
  const bool causal = model.isCausalLM();
  StatusOr<IdInputs> in = readIdInputs(**inputs, inputsPath, causal, model.vocabSize(), modelPath);
  if (!in.ok())
    return fail(kExitBadInput, in.status().message());
  const std::vector<int64_t> &ids = in->ids, &mask = in->mask;
  const bool hasMask = !mask.empty();
  const int64_t B = in->batch, S = in->seq;
  if (!causal && chunks)
    return fail(kExitUsage, "--chunks is for causal LMs; " + model.architecture() + " is an encoder");
  std::vector<int64_t> schedule = chunks ? *chunks : std::vector<int64_t>{S};
  int64_t total = 0;
  for (int64_t c : schedule)
    total += c;
  if (total != S)
    return fail(kExitBadInput, "--chunks sum to " + std::to_string(total) + " but input_ids has " +
                                   std::to_string(S) + " tokens");
  if (S > model.maxContext())
    return fail(kExitBadInput, inputsPath + ": " + std::to_string(S) + " tokens exceed the compiled max context of " +
                                   std::to_string(model.maxContext()) + " of " + modelPath);
  if (B > model.maxBatch())
    return fail(kExitBadInput, inputsPath + ": batch " + std::to_string(B) + " exceeds the compiled max batch of " +
                                   std::to_string(model.maxBatch()) + " of " + modelPath);

  runtime::Session session;
  if (runtime::Result r = session.create(model, B); !r)
    return fail(kExitBadInput, r.message);

  // Per output: the concatenation over chunks along dim 1 ([B, S, ...]).
  const std::vector<std::string> names = model.outputNames();
  std::vector<std::vector<float>> data(names.size());
  std::vector<std::vector<int64_t>> shapes(names.size());
  std::vector<int64_t> chunkIds, chunkMask;
  int64_t pos = 0;
  for (int64_t c : schedule) {
    chunkIds.resize(size_t(B * c));
    chunkMask.resize(hasMask ? size_t(B * c) : 0);
    for (int64_t b = 0; b < B; ++b) {
      std::memcpy(&chunkIds[size_t(b * c)], &ids[size_t(b * S + pos)], size_t(c) * 8);
      if (hasMask)
        std::memcpy(&chunkMask[size_t(b * c)], &mask[size_t(b * S + pos)], size_t(c) * 8);
    }
    if (runtime::Result r = session.run(chunkIds.data(), hasMask ? chunkMask.data() : nullptr, B, c); !r)
      return fail(kExitBadInput, modelPath + ": " + r.message);
    for (size_t o = 0; o < names.size(); ++o) {
      runtime::Tensor t;
      if (runtime::Result r = session.output(names[o], t); !r)
        return fail(kExitBadInput, modelPath + ": " + r.message);
      const bool perToken = t.shape.size() >= 2 && t.shape[0] == B && t.shape[1] == c;
      if (!perToken) { // not per token (e.g. pooled): the last chunk's
        shapes[o] = t.shape;
        data[o].assign(t.data, t.data + t.numElements());
        continue;
      }
      int64_t inner = 1;
      for (size_t i = 2; i < t.shape.size(); ++i)
        inner *= t.shape[i];
      if (pos == 0 || shapes[o].size() != t.shape.size()) {
        shapes[o] = t.shape;
        shapes[o][1] = S;
        data[o].assign(size_t(B * S * inner), 0.0f);
      }
      for (int64_t b = 0; b < B; ++b)
        std::copy_n(t.data + b * c * inner, c * inner, data[o].begin() + (b * S + pos) * inner);
    }
    pos += c;
  }

  SafeTensorsWriter writer;
  for (size_t o = 0; o < names.size(); ++o)
    writer.add(names[o], DType::F32, shapes[o], data[o].data(), data[o].size() * sizeof(float));
  Status written = writer.write(outputsPath);
  if (!written.isOk())
    return fail(kExitBadInput, written.message());
  return kExitOk;
}

} // namespace kiln::cli
