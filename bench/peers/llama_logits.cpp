// llama-logits: evaluate token ids with llama.cpp and write the logits of every position.
//
//   llama-logits MODEL.gguf --ids 1,2,3 -o LOGITS.f32 [--chunks 2,5,1] [--threads N] [--fa on|off]
//                [--kv f32|f16] [--ngl N] [--bench R] [--bench-last-only] [-v]
// Runs the ids through one KV cache in the given chunks (default: one chunk), requesting the logits of
// every position, and writes them as raw little-endian f32 [S, V]. --bench R then times R repetitions
// (after one warm-up) of that whole evaluation from an empty cache and prints tokens/s, mean +- stddev:
// with one chunk of 512 ids this is pp512 computing all 512 rows of logits, the work `kiln bench` does
// (llama-bench's pp512 computes the logits of the last position only; --bench-last-only times that, as a
// control that this harness and llama-bench agree). -v keeps llama.cpp's info log. Built by bench/peers/setup.sh against
// the prebuilt libllama of @node-llama-cpp/linux-x64 and the llama.h of the same llama.cpp release; used
// by bench/peers/check_logits.py to check that the GGUF llama.cpp runs computes the same function as the
// Hugging Face model (and as kiln) before the two are timed side by side.
#include "ggml-backend.h"
#include "llama.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static std::vector<long> parseList(const char *s) {
  std::vector<long> out;
  while (*s) {
    char *end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (end == s)
      return {};
    out.push_back(v);
    s = *end == ',' ? end + 1 : end;
    if (*end && *end != ',')
      return {};
  }
  return out;
}

static bool g_verbose = false;
static ggml_log_level g_last = GGML_LOG_LEVEL_INFO;
static void logCallback(ggml_log_level level, const char *text, void *) {
  if (level != GGML_LOG_LEVEL_CONT)
    g_last = level;
  if (g_verbose || g_last >= GGML_LOG_LEVEL_WARN)
    std::fputs(text, stderr);
}

static int fail(const std::string &msg) {
  std::fprintf(stderr, "llama-logits: %s\n", msg.c_str());
  return 1;
}

int main(int argc, char **argv) {
  const char *usage = "usage: llama-logits MODEL.gguf --ids 1,2,3 -o LOGITS.f32 [--chunks 2,5,1] [--threads N] "
                      "[--fa on|off] [--kv f32|f16] [--ngl N] [--bench R] [--bench-last-only] [-v]";
  if (argc < 2)
    return std::fprintf(stderr, "%s\n", usage), 2;
  std::string model_path = argv[1], out_path;
  std::vector<long> ids, chunks;
  int threads = 2, reps = 0, ngl = 0;
  bool fa = false, last_only = false;
  ggml_type kv = GGML_TYPE_F32;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-v" || a == "--bench-last-only") {
      (a == "-v" ? g_verbose : last_only) = true;
      continue;
    }
    if (i + 1 >= argc)
      return std::fprintf(stderr, "%s\n", usage), 2;
    const char *v = argv[++i];
    if (a == "--ids")
      ids = parseList(v);
    else if (a == "--chunks")
      chunks = parseList(v);
    else if (a == "-o")
      out_path = v;
    else if (a == "--threads")
      threads = std::atoi(v);
    else if (a == "--fa")
      fa = std::strcmp(v, "on") == 0;
    else if (a == "--ngl")
      ngl = std::atoi(v);
    else if (a == "--bench")
      reps = std::atoi(v);
    else if (a == "--kv")
      kv = std::strcmp(v, "f16") == 0 ? GGML_TYPE_F16 : GGML_TYPE_F32;
    else
      return std::fprintf(stderr, "%s\n", usage), 2;
  }
  if (ids.empty() || out_path.empty() || threads < 1 || reps < 0)
    return std::fprintf(stderr, "%s\n", usage), 2;
  if (chunks.empty())
    chunks.push_back(long(ids.size()));
  long total = 0;
  for (long c : chunks)
    total += c;
  if (total != long(ids.size()))
    return fail("--chunks sum to " + std::to_string(total) + ", not the " + std::to_string(ids.size()) + " ids");

  llama_log_set(logCallback, nullptr);
  ggml_backend_load_all();
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = ngl; // 0: CPU only; with a GPU build of the libraries, 99 offloads every layer
  llama_model *model = llama_model_load_from_file(model_path.c_str(), mp);
  if (!model)
    return fail(model_path + ": llama.cpp could not load the model");
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  for (long id : ids)
    if (id < 0 || id >= n_vocab)
      return fail("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(n_vocab));

  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = uint32_t(ids.size() < 256 ? 256 : ids.size());
  cp.n_batch = cp.n_ubatch = cp.n_ctx;
  cp.n_threads = cp.n_threads_batch = threads;
  cp.type_k = cp.type_v = kv;
  cp.flash_attn_type = fa ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
  llama_context *ctx = llama_init_from_model(model, cp);
  if (!ctx)
    return fail("llama.cpp could not create a context");

  std::vector<float> logits;
  auto evaluate = [&](bool keep) -> int {
    logits.clear();
    logits.reserve(ids.size() * size_t(n_vocab));
    llama_memory_clear(llama_get_memory(ctx), true);
    long pos = 0;
    for (long c : chunks) {
      llama_batch batch = llama_batch_init(int32_t(c), 0, 1);
      for (long i = 0; i < c; ++i) {
        batch.token[i] = llama_token(ids[size_t(pos + i)]);
        batch.pos[i] = llama_pos(pos + i);
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = keep || !last_only || pos + i + 1 == long(ids.size());
      }
      batch.n_tokens = int32_t(c);
      if (int32_t r = llama_decode(ctx, batch); r != 0)
        return fail("llama_decode returned " + std::to_string(r));
      for (long i = 0; keep && i < c; ++i) {
        const float *row = llama_get_logits_ith(ctx, int32_t(i));
        logits.insert(logits.end(), row, row + n_vocab);
      }
      llama_batch_free(batch);
      pos += c;
    }
    llama_synchronize(ctx);
    return 0;
  };
  if (int r = evaluate(true))
    return r;
  FILE *f = std::fopen(out_path.c_str(), "wb");
  if (!f || std::fwrite(logits.data(), sizeof(float), logits.size(), f) != logits.size() || std::fclose(f) != 0)
    return fail(out_path + ": cannot write");
  std::fprintf(stderr, "llama-logits: %zu positions x %d logits -> %s (%s)\n", ids.size(), n_vocab, out_path.c_str(),
               llama_print_system_info());
  if (reps > 0) {
    std::vector<double> tps;
    for (int r = 0; r < reps; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      if (int code = evaluate(false))
        return code;
      tps.push_back(double(ids.size()) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    double mean = 0, var = 0;
    for (double v : tps)
      mean += v / reps;
    for (double v : tps)
      var += (v - mean) * (v - mean) / (reps > 1 ? reps - 1 : 1);
    std::printf(last_only ? "pp%zu_last_logits %.2f +- %.2f t/s (%d repetitions after 1 warm-up, %d threads)\n"
                          : "pp%zu_all_logits %.2f +- %.2f t/s (%d repetitions after 1 warm-up, %d threads)\n", ids.size(), mean,
                std::sqrt(var), reps, threads);
  }
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
