//===- Generate.cpp - `kiln generate`: prefill, then decode token by token ===//
//
//   kiln generate MODEL.kiln --ids 1,2,3 -n 32 [--temperature T] [--top-k K] [--top-p P] [--seed S]
//                 [--eos ID] [--threads N]
// Prints the generated token ids (space-separated, one line) on stdout; timings on stderr. Greedy unless
// --temperature > 0. Stops after n tokens, at --eos, or when the KV cache reaches the compiled max context.
//
//===----------------------------------------------------------------------===//
#include "Cli.h"
#include "Subcommands.h"

#include "kiln/kiln.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

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

struct Sampler {
  double temperature = 0.0;
  int64_t topK = 0;
  double topP = 1.0;
  std::mt19937_64 rng;
  std::vector<int64_t> order;
  std::vector<double> probs;

  int64_t pick(const float *logits, int64_t V) {
    if (temperature <= 0.0) // greedy: the first maximum
      return int64_t(std::max_element(logits, logits + V) - logits);
    order.resize(size_t(V));
    std::iota(order.begin(), order.end(), 0);
    int64_t k = topK > 0 ? std::min(topK, V) : V;
    auto byLogit = [&](int64_t a, int64_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
    std::partial_sort(order.begin(), order.begin() + k, order.end(), byLogit);
    order.resize(size_t(k));
    probs.resize(size_t(k));
    double maxLogit = logits[order[0]], sum = 0.0;
    for (int64_t i = 0; i < k; ++i)
      sum += probs[i] = std::exp((double(logits[order[i]]) - maxLogit) / temperature);
    // Nucleus: the smallest prefix with mass >= top_p.
    int64_t keep = k;
    if (topP < 1.0) {
      double acc = 0.0;
      for (int64_t i = 0; i < k; ++i) {
        acc += probs[i] / sum;
        if (acc >= topP) {
          keep = i + 1;
          break;
        }
      }
    }
    double mass = 0.0;
    for (int64_t i = 0; i < keep; ++i)
      mass += probs[i];
    double u = std::uniform_real_distribution<double>(0.0, mass)(rng);
    for (int64_t i = 0; i < keep; ++i) {
      u -= probs[i];
      if (u <= 0.0)
        return order[i];
    }
    return order[keep - 1];
  }
};

} // namespace

int runGenerate(int argc, char **argv) {
  std::optional<Args> parsed;
  if (std::optional<int> done = parseArgs(argc, argv, "generate", parsed))
    return *done;
  const Args &args = *parsed;
  const std::string usage = usageLine(*findCommand("generate"));
  if (args.positional().size() != 1 || !args.has("--ids"))
    return fail(kExitUsage, usage);
  const std::string modelPath = args.positional()[0];
  // Integer flags as every command reads them (Cli.h): a number beyond its field is "too large".
  std::string error;
  std::optional<std::vector<int64_t>> prompt = parseIntListFlag("--ids", *args.get("--ids"), 0, INT64_MAX, &error);
  if (!prompt)
    return fail(kExitUsage, error);
  int64_t n = 32;
  if (auto t = args.get("-n")) {
    std::optional<uint64_t> v = parseIntFlag("-n", *t, 0, kMaxTokens, &error);
    if (!v)
      return fail(kExitUsage, error);
    n = int64_t(*v);
  }
  Sampler sampler;
  if (auto t = args.get("--temperature")) {
    std::optional<double> v = parseNumber(*t);
    if (!v || *v < 0)
      return fail(kExitUsage, "--temperature must be a number >= 0, got '" + *t + "'");
    sampler.temperature = *v;
  }
  if (auto t = args.get("--top-k")) {
    std::optional<uint64_t> v = parseIntFlag("--top-k", *t, 0, INT64_MAX, &error);
    if (!v)
      return fail(kExitUsage, error);
    sampler.topK = int64_t(*v);
  }
  if (auto t = args.get("--top-p")) {
    std::optional<double> v = parseNumber(*t);
    if (!v || *v <= 0 || *v > 1)
      return fail(kExitUsage, "--top-p must be in (0, 1], got '" + *t + "'");
    sampler.topP = *v;
  }
  uint64_t seed = 0;
  if (auto t = args.get("--seed")) {
    std::optional<uint64_t> v = parseIntFlag("--seed", *t, 0, UINT64_MAX, &error);
    if (!v)
      return fail(kExitUsage, error);
    seed = *v;
  }
  sampler.rng.seed(seed);
  std::optional<int64_t> eos;
  if (auto t = args.get("--eos")) {
    std::optional<uint64_t> v = parseIntFlag("--eos", *t, 0, INT64_MAX, &error);
    if (!v)
      return fail(kExitUsage, error);
    eos = int64_t(*v);
  }
  int threads = 0;
  if (int code = parseThreads(args, threads))
    return code;

  runtime::Model model;
  if (runtime::Result r = model.load(modelPath, threads, !args.has("--no-verify")); !r)
    return fail(kExitBadInput, r.message);
  if (!model.isCausalLM())
    return fail(kExitBadInput, modelPath + ": generate needs a causal LM; " + model.architecture() + " is an " +
                                   model.task());
  const int64_t P = int64_t(prompt->size());
  if (P > model.maxContext())
    return fail(kExitBadInput, "--ids: " + std::to_string(P) + " tokens exceed the compiled max context of " +
                                   std::to_string(model.maxContext()));
  runtime::Session session;
  if (runtime::Result r = session.create(model, 1); !r)
    return fail(kExitBadInput, r.message);

  using Clock = std::chrono::steady_clock;
  auto t0 = Clock::now();
  if (runtime::Result r = session.run(prompt->data(), nullptr, 1, P); !r)
    return fail(kExitBadInput, modelPath + ": " + r.message);
  auto t1 = Clock::now();
  std::vector<int64_t> generated;
  runtime::Tensor logits;
  while (int64_t(generated.size()) < n) {
    if (runtime::Result r = session.output("logits", logits); !r)
      return fail(kExitBadInput, modelPath + ": " + r.message);
    const int64_t V = logits.shape.back(), s = logits.shape[1];
    int64_t next = sampler.pick(logits.data + (s - 1) * V, V);
    generated.push_back(next);
    if ((eos && next == *eos) || int64_t(generated.size()) >= n)
      break;
    if (session.pastLength() >= model.maxContext()) {
      std::fprintf(stderr, "kiln: stopped at the compiled max context of %lld tokens\n",
                   (long long)model.maxContext());
      break;
    }
    if (runtime::Result r = session.run(&next, nullptr, 1, 1); !r)
      return fail(kExitBadInput, modelPath + ": " + r.message);
  }
  auto t2 = Clock::now();

  std::string line;
  for (int64_t t : generated)
    line += (line.empty() ? "" : " ") + std::to_string(t);
  std::printf("%s\n", line.c_str());
  double prefill = std::chrono::duration<double>(t1 - t0).count();
  double decode = std::chrono::duration<double>(t2 - t1).count();
  int64_t decoded = generated.empty() ? 0 : int64_t(generated.size()) - 1;
  std::fprintf(stderr, "kiln: prefill %lld tokens in %.1f ms (%.1f tokens/s); decode %lld tokens in %.1f ms (%.1f tokens/s)\n",
               (long long)P, prefill * 1e3, prefill > 0 ? double(P) / prefill : 0.0, (long long)decoded,
               decode * 1e3, decode > 0 ? double(decoded) / decode : 0.0);
  return kExitOk;
}

} // namespace kiln::cli
