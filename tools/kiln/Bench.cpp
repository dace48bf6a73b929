//===- Bench.cpp - `kiln bench`: llama-bench-style throughput --------------===//
//
//   kiln bench MODEL.kiln [-p 512] [-n 128] [-r 5] [--threads N] [--batch B] [--all-logits] [--json]
// Causal LMs, as llama-bench: pp<p> = one prefill chunk of p tokens into an empty cache, logits of its last
// row only (--all-logits: every row); tg<n> = n single-token decodes starting from an empty cache; tokens/s,
// mean ± stddev over r repetitions after a warm-up (at least one run and kWarmupSeconds). Encoders: one batch
// of B x p tokens per repetition; sentences/s and tokens/s. Then the peak RSS.
//
//===----------------------------------------------------------------------===//
#include "Cli.h"
#include "Subcommands.h"

#include "kiln/kiln.hpp"
#include "kiln/vulkan/kiln_vulkan.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <random>
#include <sys/resource.h>

// OpenBLAS introspection (weak: absent when the runtime is linked against another BLAS).
extern "C" __attribute__((weak)) char *openblas_get_corename(void);
extern "C" __attribute__((weak)) char *openblas_get_config(void);

namespace kiln::cli {

int parseThreads(const Args &args, int &threads); // Run.cpp

namespace {

struct Stats {
  double mean = 0, stddev = 0, median = 0, min = 0, max = 0;
};

Stats stats(const std::vector<double> &v) {
  Stats s;
  if (v.empty())
    return s;
  for (double x : v)
    s.mean += x;
  s.mean /= double(v.size());
  std::vector<double> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  s.median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  s.min = sorted.front();
  s.max = sorted.back();
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v)
      ss += (x - s.mean) * (x - s.mean);
    s.stddev = std::sqrt(ss / double(v.size() - 1));
  }
  return s;
}

bool parseCount(const Args &args, const std::string &name, int64_t &value, uint64_t min, std::string *error) {
  auto t = args.get(name);
  if (!t)
    return true;
  std::optional<uint64_t> v = parseIntFlag(name, *t, min, kMaxTokens, error);
  if (v)
    value = int64_t(*v);
  return v.has_value();
}

double peakRssMiB() {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return double(ru.ru_maxrss) / 1024.0; // KiB on Linux
}

struct Row {
  std::string test, unit;
  Stats value;
  Stats second;                 // encoders: tokens/s
  double wallMs = 0, gpuMs = 0; // per repetition, means (gpuMs 0: no Vulkan work)
  std::vector<double> samples, gpuSamplesMs; // each repetition's value and GPU ms, in order (--json)
  int64_t warmupRuns = 1;
};

/// The warm-up before each test's repetitions: runs until this much wall time has passed (at least one run). A
/// GPU that was idle starts at low clocks: on an H100, pp512's first ~250 ms of work ran 4.5x slower than the
/// rest (bench/results-2026-12-07-h100-session10.txt), which one warm-up run of 50 ms left in the samples.
constexpr double kWarmupSeconds = 0.5;

/// What was measured, beside the rows.
struct Run {
  std::string architecture, task;
  int threads;
  int64_t batch, reps;
  bool causal;
  uint64_t sessionBytes;
  std::string cpuTarget; // which CPU kernel object loaded ("" without CPU kernels)
};

const char *openBlasCoreType() {
  const char *forced = std::getenv("OPENBLAS_CORETYPE");
  return forced && *forced ? forced : nullptr;
}

void printTable(const Run &run, const std::vector<Row> &rows) {
  std::printf("| model | task | threads | batch | test | %s |\n", run.causal ? "t/s" : "sentences/s | tokens/s");
  std::printf("| --- | --- | ---: | ---: | --- | ---: |%s\n", run.causal ? "" : " ---: |");
  for (const Row &r : rows) {
    if (run.causal)
      std::printf("| %s | %s | %d | %lld | %s | %.2f ± %.2f |\n", run.architecture.c_str(), run.task.c_str(),
                  run.threads, (long long)run.batch, r.test.c_str(), r.value.mean, r.value.stddev);
    else
      std::printf("| %s | %s | %d | %lld | %s | %.2f ± %.2f | %.1f ± %.1f |\n", run.architecture.c_str(),
                  run.task.c_str(), run.threads, (long long)run.batch, r.test.c_str(), r.value.mean,
                  r.value.stddev, r.second.mean, r.second.stddev);
  }
  for (const Row &r : rows)
    if (r.gpuMs > 0)
      std::printf("%s: wall %.2f ms, GPU busy %.2f ms per repetition (Vulkan timestamps; the rest is host work: "
                  "recording, submission, waits, CPU dispatches)\n",
                  r.test.c_str(), r.wallMs, r.gpuMs);
  std::printf("\n%lld repetitions after a warm-up of at least %.1f s (one run or more); session %.1f MiB; "
              "peak RSS %.1f MiB\n",
              (long long)run.reps, kWarmupSeconds, double(run.sessionBytes) / (1024.0 * 1024.0), peakRssMiB());
  if (!run.cpuTarget.empty())
    std::printf("%s\n", run.cpuTarget.c_str());
  // The BLAS kernels behind every f32 matmul: OpenBLAS's DYNAMIC_ARCH picks them by CPU detection, which can
  // be wrong (e.g. Prescott on some Xeons: 4x slower sgemm). OPENBLAS_CORETYPE overrides it; say which.
  if (openblas_get_corename) {
    std::printf("OpenBLAS core %s (%s)%s%s\n", openblas_get_corename(),
                openBlasCoreType() ? "forced by OPENBLAS_CORETYPE" : "detected; OPENBLAS_CORETYPE unset",
                openblas_get_config ? "; " : "", openblas_get_config ? openblas_get_config() : "");
  }
}

/// --json: one document on stdout, for scripts; the numbers of the table, unrounded.
void printJson(const Run &run, const std::vector<Row> &rows) {
  nlohmann::json tests = nlohmann::json::array();
  for (const Row &r : rows) {
    auto fields = [](const Stats &s) {
      return nlohmann::json{{"mean", s.mean}, {"stddev", s.stddev}, {"median", s.median}, {"min", s.min}, {"max", s.max}};
    };
    nlohmann::json t = fields(r.value);
    t["test"] = r.test;
    t["unit"] = r.unit;
    t["wall_ms"] = r.wallMs;
    if (!run.causal)
      t["tokens_per_second"] = fields(r.second);
    if (r.gpuMs > 0)
      t["gpu_ms"] = r.gpuMs;
    // Each repetition, in order (llama-bench's samples_ts): one slow repetition shows as such, not as a mean.
    t["samples"] = r.samples;
    t["warmup_runs"] = r.warmupRuns;
    if (r.gpuMs > 0)
      t["gpu_ms_samples"] = r.gpuSamplesMs;
    tests.push_back(t);
  }
  nlohmann::json doc = {{"architecture", run.architecture}, {"task", run.task},       {"threads", run.threads},
                        {"batch", run.batch},               {"repetitions", run.reps}, {"tests", tests},
                        {"session_bytes", run.sessionBytes}, {"peak_rss_mib", peakRssMiB()},
                        {"cpu_target", run.cpuTarget}};
  if (openblas_get_corename) {
    doc["openblas"] = {{"core", openblas_get_corename()}, {"forced", openBlasCoreType() != nullptr}};
  }
  std::printf("%s\n", doc.dump(2).c_str());
}

} // namespace

int runBench(int argc, char **argv) {
  std::optional<Args> parsed;
  if (std::optional<int> done = parseArgs(argc, argv, "bench", parsed))
    return *done;
  const Args &args = *parsed;
  const std::string usage = usageLine(*findCommand("bench"));
  if (args.positional().size() != 1)
    return fail(kExitUsage, usage);
  int64_t p = 512, n = 128, depth = 0, reps = 5, batch = 1;
  std::string countError;
  if (!parseCount(args, "-p", p, 0, &countError) || !parseCount(args, "-n", n, 0, &countError) ||
      !parseCount(args, "-d", depth, 0, &countError) || !parseCount(args, "-r", reps, 1, &countError) ||
      !parseCount(args, "--batch", batch, 1, &countError))
    return fail(kExitUsage, countError);
  int threads = 0;
  if (int code = parseThreads(args, threads))
    return code;
  const std::string modelPath = args.positional()[0];

  runtime::Model model;
  if (runtime::Result r = model.load(modelPath, threads, !args.has("--no-verify")); !r)
    return fail(kExitBadInput, r.message);
  const bool causal = model.isCausalLM();
  if (!causal && p == 0)
    return fail(kExitUsage, "an encoder benchmark needs -p > 0");
  if (!causal && depth > 0)
    return fail(kExitUsage, "-d (the tg test's depth) needs a causal LM; " + modelPath + " is an encoder");
  if (p > model.maxContext())
    return fail(kExitBadInput, "-p " + std::to_string(p) + " exceeds the compiled max context of " +
                                   std::to_string(model.maxContext()) + " of " + modelPath);
  if (causal && depth + n > model.maxContext())
    return fail(kExitBadInput, "-d + -n = " + std::to_string(depth + n) + " exceeds the compiled max context of " +
                                   std::to_string(model.maxContext()) + " of " + modelPath);
  runtime::Session session;
  if (runtime::Result r = session.create(model, batch); !r)
    return fail(kExitBadInput, r.message);
  // llama-bench's prompt computes one row of logits (llama_batch_get_one: the last); so does ours unless asked.
  // An artifact compiled without logits rows (no symbol r) computes every row: said, not refused.
  if (causal && !args.has("--all-logits"))
    if (runtime::Result r = session.setLogits(KILN_LOGITS_LAST); !r)
      std::fprintf(stderr, "kiln bench: %s: %s; the pp test computes every row's logits\n", modelPath.c_str(),
                   r.message.c_str());

  std::mt19937_64 rng(42);
  const int64_t vocab = model.vocabSize() > 0 ? model.vocabSize() : 2;
  std::uniform_int_distribution<int64_t> token(0, vocab - 1);
  std::vector<int64_t> ids(size_t(batch * std::max<int64_t>(std::max(p, depth), 1)));
  for (int64_t &t : ids)
    t = token(rng);
  std::vector<int64_t> step(static_cast<size_t>(batch));
  for (int64_t &t : step)
    t = token(rng);

  using Clock = std::chrono::steady_clock;
  std::string failure;
  // Seconds of one repetition of `test`, or < 0 on failure (failure set).
  // Vulkan: GPU time of the repetition (the segments' timestamps, summed over its runs), beside the wall time.
  double gpuSeconds = 0;
  auto timePrefill = [&]() -> double {
    session.reset();
    auto t0 = Clock::now();
    if (runtime::Result r = session.run(ids.data(), nullptr, batch, p); !r) {
      failure = r.message;
      return -1;
    }
    gpuSeconds = double(kiln_session_gpu_time_ns(session.get())) * 1e-9;
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  auto timeDecode = [&]() -> double {
    session.reset();
    // The depth's prompt (untimed; ids' first batch x depth random tokens): the decode steps then attend
    // over depth + i keys.
    if (depth > 0) {
      if (runtime::Result r = session.run(ids.data(), nullptr, batch, depth); !r) {
        failure = r.message;
        return -1;
      }
    }
    gpuSeconds = 0;
    auto t0 = Clock::now();
    for (int64_t i = 0; i < n; ++i) {
      if (runtime::Result r = session.run(step.data(), nullptr, batch, 1); !r) {
        failure = r.message;
        return -1;
      }
      gpuSeconds += double(kiln_session_gpu_time_ns(session.get())) * 1e-9;
    }
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };

  std::vector<Row> rows;
  auto measure = [&](auto &&once, double work, double work2, const std::string &test, const std::string &unit) {
    int64_t warmups = 0;
    for (double warm = 0; warmups == 0 || warm < kWarmupSeconds; ++warmups) {
      double t = once();
      if (t < 0)
        return false;
      warm += t;
    }
    std::vector<double> v, v2, gpuMs;
    double wall = 0, gpu = 0;
    for (int64_t r = 0; r < reps; ++r) {
      double t = once();
      if (t < 0)
        return false;
      v.push_back(work / t);
      v2.push_back(work2 / t);
      gpuMs.push_back(1e3 * gpuSeconds);
      wall += t;
      gpu += gpuSeconds;
    }
    rows.push_back(
        {test, unit, stats(v), stats(v2), 1e3 * wall / double(reps), 1e3 * gpu / double(reps), v, gpuMs, warmups});
    return true;
  };
  if (causal) {
    if (p > 0 && !measure(timePrefill, double(batch * p), 0, "pp" + std::to_string(p), "t/s"))
      return fail(kExitBadInput, modelPath + ": " + failure);
    const std::string tg = "tg" + std::to_string(n) + (depth > 0 ? " @ d" + std::to_string(depth) : "");
    if (n > 0 && !measure(timeDecode, double(batch * n), 0, tg, "t/s"))
      return fail(kExitBadInput, modelPath + ": " + failure);
  } else {
    if (!measure(timePrefill, double(batch), double(batch * p), "enc" + std::to_string(p) + "x" +
                 std::to_string(batch), "sent/s"))
      return fail(kExitBadInput, modelPath + ": " + failure);
  }

  const Run run{model.architecture(), model.task(), model.numThreads(), batch, reps, causal, model.sessionBytes(),
                model.cpuTarget()};
  if (args.has("--json"))
    printJson(run, rows);
  else
    printTable(run, rows);
  return kExitOk;
}

} // namespace kiln::cli
