/*===- kiln.h - the kiln runtime C API ------------------------------------===*
 *
 * Loads a .kiln artifact (written by `kiln compile -o`) and runs its step function on the CPU. No
 * exceptions, no aborts: every call returns a kiln_status, and on failure a one-line message is available
 * from the object involved (kiln_model_error / kiln_session_error) and, for every call, from the calling
 * thread's kiln_last_error().
 *
 *   kiln_model *model;
 *   if (kiln_model_load("model.kiln", NULL, &model) != KILN_OK) { puts(kiln_last_error()); ... }
 *   kiln_session *session;
 *   kiln_session_create(model, 1, &session);
 *   kiln_session_run(session, ids, NULL, 1, n);          // prefill: n tokens
 *   kiln_session_output(session, "logits", &data, shape, &rank);  // [1, n, vocab]
 *                                                 // ([1, 1, vocab] after kiln_session_set_logits(.., KILN_LOGITS_LAST))
 *   kiln_session_run(session, &next, NULL, 1, 1);        // decode: one token after the n in the cache
 *   ...
 *   kiln_session_free(session);
 *   kiln_model_free(model);
 *
 * A model is read-only once loaded: any number of sessions of one model may run concurrently, each from
 * one thread at a time. A session owns its arena and KV cache, allocated once at creation.
 *
 *===----------------------------------------------------------------------===*/
#ifndef KILN_KILN_H
#define KILN_KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

typedef enum kiln_status {
  KILN_OK = 0,
  KILN_INVALID_ARGUMENT = 1, /* a NULL pointer, a wrong shape / dtype / batch, a token outside the vocab */
  KILN_BAD_ARTIFACT = 2,     /* another format version, a truncated or corrupted file, an inconsistent plan */
  KILN_IO_ERROR = 3,         /* the file cannot be opened / mapped, or the code cannot be loaded */
  KILN_OUT_OF_RANGE = 4,     /* past + seq beyond the compiled max context, batch beyond the max batch */
  KILN_INTERNAL = 5          /* out of memory or a bug */
} kiln_status;

/* "OK", "INVALID_ARGUMENT", ... (static strings). */
KILN_API const char *kiln_status_name(kiln_status status);

/* The message of the last failed call on this thread ("" if none since the thread started). */
KILN_API const char *kiln_last_error(void);

/* The runtime's version, e.g. "0.1.0". */
KILN_API const char *kiln_version(void);

/* ---- models ---- */

typedef struct kiln_model kiln_model;

typedef struct kiln_load_options {
  /* CPU threads: each session splits the generated kernels over this many (kernel_abi.h) and OpenBLAS
   * runs at this count (set per call under a process-wide lock, so models with different counts do not
   * change each other's). Results do not depend on it. 0: the artifact's default, else 2. */
  int num_threads;
  /* Verify every section's checksum at load (reads the whole file once). Nonzero by default. */
  int verify_checksums;
} kiln_load_options;

/* Fills the defaults (num_threads 0, verify_checksums 1). */
KILN_API void kiln_load_options_init(kiln_load_options *options);

/* Loads PATH. `options` may be NULL (the defaults). On failure *model is NULL. */
KILN_API kiln_status kiln_model_load(const char *path, const kiln_load_options *options, kiln_model **model);
/* Frees the model; every session of it must be freed first. NULL is a no-op. */
KILN_API void kiln_model_free(kiln_model *model);

KILN_API const char *kiln_model_error(const kiln_model *model); /* "" if none */

/* "causal-lm" or "encoder". */
KILN_API const char *kiln_model_task(const kiln_model *model);
KILN_API const char *kiln_model_architecture(const kiln_model *model); /* e.g. "LlamaForCausalLM" */
/* 0 when the artifact does not say. */
KILN_API int64_t kiln_model_vocab_size(const kiln_model *model);
KILN_API int64_t kiln_model_hidden_size(const kiln_model *model);
/* past + seq never exceeds it. */
KILN_API int64_t kiln_model_max_context(const kiln_model *model);
KILN_API int64_t kiln_model_max_batch(const kiln_model *model);
/* The CPU threads this model was loaded with. */
KILN_API int kiln_model_num_threads(const kiln_model *model);
/* The step function's inputs ("input_ids", "attention_mask") and outputs ("logits" or
 * "last_hidden_state"); the KV cache is not among them: sessions own it. NULL for an index out of range. */
KILN_API int kiln_model_num_inputs(const kiln_model *model);
KILN_API const char *kiln_model_input_name(const kiln_model *model, int index);
KILN_API int kiln_model_num_outputs(const kiln_model *model);
KILN_API const char *kiln_model_output_name(const kiln_model *model, int index);
/* Bytes one session allocates (arena + the KV cache: one buffer of max-context rows per in-place entry,
 * both halves of any other). */
KILN_API uint64_t kiln_model_session_bytes(const kiln_model *model);
/* Which of the artifact's CPU kernel objects this CPU runs, e.g. "CPU kernels for x86-64-v3 (object 2 of 3;
 * skipped sapphirerapids: this CPU lacks avx512fp16)"; "" when the artifact has no CPU kernels. An artifact
 * none of whose objects this CPU can run fails to load (KILN_BAD_ARTIFACT, naming the missing features). */
KILN_API const char *kiln_model_cpu_target(const kiln_model *model);

/* ---- sessions ---- */

typedef struct kiln_session kiln_session;

/* A session of `batch` rows (1 <= batch <= max batch). Allocates its arena and KV cache now. */
KILN_API kiln_status kiln_session_create(kiln_model *model, int64_t batch, kiln_session **session);
KILN_API void kiln_session_free(kiln_session *session); /* NULL is a no-op */

KILN_API const char *kiln_session_error(const kiln_session *session); /* "" if none */

/* Runs one chunk: `ids` is [batch, seq_len] row-major; `attention_mask` is [batch, seq_len] of 0/1 or NULL
 * (all ones; a causal LM accepts only NULL or all ones). A causal LM appends the chunk to the KV cache
 * (prefill: seq_len > 1; decode: seq_len == 1; any mix as long as past + seq_len <= max context); an
 * encoder runs each call independently. On failure nothing has changed (the cache is as before). */
KILN_API kiln_status kiln_session_run(kiln_session *session, const int64_t *ids, const int64_t *attention_mask,
                                      int64_t batch, int64_t seq_len);

/* Which rows of each chunk a causal LM computes logits for (and reads back from a device):
 *   KILN_LOGITS_ALL  every row, "logits" [batch, seq_len, vocab] (the default; reference comparisons,
 *                    perplexity, `kiln run`);
 *   KILN_LOGITS_LAST the chunk's last row only, "logits" [batch, 1, vocab] (what generation reads after a
 *                    prompt: the final norm's output is cut to that row before the LM head). With left
 *                    padding that is every sequence's last token.
 * Takes effect from the next run; the selected rows equal those rows of an all-rows run. Errors:
 * KILN_INVALID_ARGUMENT for any other value ("logits mode N"), and for KILN_LOGITS_LAST on an artifact
 * without logits rows (an encoder, or one compiled before this call existed). */
typedef enum { KILN_LOGITS_ALL = 0, KILN_LOGITS_LAST = 1 } kiln_logits_rows;
KILN_API kiln_status kiln_session_set_logits(kiln_session *session, int rows);

/* An output of the last run ("logits": [batch, seq_len, vocab] of that chunk, [batch, 1, vocab] under
 * KILN_LOGITS_LAST; "last_hidden_state": [batch, seq_len, hidden]). `shape` must hold 8 entries; *rank receives the rank. The data stays valid
 * until the next run / reset / free of the session. */
KILN_API kiln_status kiln_session_output(kiln_session *session, const char *name, const float **data,
                                         int64_t *shape, int *rank);

/* Tokens in the KV cache (0 for encoders). */
KILN_API int64_t kiln_session_past_length(const kiln_session *session);
KILN_API int64_t kiln_session_batch(const kiln_session *session);
/* Empties the KV cache (no allocation, nothing freed). */
KILN_API kiln_status kiln_session_reset(kiln_session *session);

#define KILN_MAX_RANK 8

/* ---- text (artifacts compiled from a directory with tokenizer.json; see `kiln inspect`) ----
 *
 * Strings are UTF-8. Results that the library allocates (ids, text) are freed with kiln_free. The tokenizer
 * and the chat template are loaded on the first text call and shared by every thread. Without a tokenizer in
 * the artifact every text call fails with KILN_INVALID_ARGUMENT ("no tokenizer: ...").
 *
 *   char *prompt;  kiln_chat_template_apply(model, "[{\"role\":\"user\",\"content\":\"Hi\"}]", 1, &prompt);
 *   kiln_generate_text(session, prompt, 0, NULL, print_piece, NULL, &stats);   // streams text to print_piece
 *   kiln_free(prompt);
 */

/* Frees what a text call allocated (NULL is a no-op). */
KILN_API void kiln_free(void *pointer);

/* Nonzero when the artifact carries a tokenizer. */
KILN_API int kiln_model_has_tokenizer(const kiln_model *model);
/* The ids generation stops at (generation_config.json's eos_token_id, else config.json's, else the
 * tokenizer's EOS): *ids points into the model (valid while it lives), *count may be 0. */
KILN_API kiln_status kiln_model_eos_ids(const kiln_model *model, const int64_t **ids, size_t *count);

/* Hugging Face tokenizers' encode(text, add_special_tokens): *ids (kiln_free) receives *count ids. Text that is
 * not valid UTF-8, or that gives an id outside the model's vocabulary, is INVALID_ARGUMENT. */
KILN_API kiln_status kiln_tokenize(kiln_model *model, const char *text, size_t text_len, int add_special_tokens,
                                   int64_t **ids, size_t *count);
/* Hugging Face decode(ids, skip_special_tokens): *text (kiln_free) is NUL-terminated. */
KILN_API kiln_status kiln_detokenize(kiln_model *model, const int64_t *ids, size_t count, int skip_special_tokens,
                                     char **text);

/* Streaming detokenization (one id at a time, as generation produces them): every step's piece, then
 * finish's, concatenate to kiln_detokenize of all the ids; no space or partial UTF-8 character is lost or
 * repeated (a piece is often empty while a character is incomplete). */
typedef struct kiln_stream_decoder kiln_stream_decoder;
KILN_API kiln_status kiln_stream_decoder_create(kiln_model *model, int skip_special_tokens,
                                                kiln_stream_decoder **decoder);
/* *piece (kiln_free) is the text that became final with `id`. */
KILN_API kiln_status kiln_stream_decoder_step(kiln_stream_decoder *decoder, int64_t id, char **piece);
/* What is still held (then the decoder starts over). */
KILN_API kiln_status kiln_stream_decoder_finish(kiln_stream_decoder *decoder, char **piece);
/* NULL is a no-op. Free a model's decoders before the model. */
KILN_API void kiln_stream_decoder_free(kiln_stream_decoder *decoder);

/* transformers' apply_chat_template(messages, tokenize=False, add_generation_prompt): `messages_json` is a
 * JSON list of {"role", "content"} objects; *prompt (kiln_free) is the rendered text. A template's
 * raise_exception is INVALID_ARGUMENT with its message. Tokenize the prompt with add_special_tokens 0 (the
 * template writes them), as apply_chat_template(tokenize=True) does. */
KILN_API kiln_status kiln_chat_template_apply(kiln_model *model, const char *messages_json,
                                              int add_generation_prompt, char **prompt);

typedef struct kiln_generate_options {
  int64_t max_new_tokens;  /* default 256 */
  float temperature;       /* 0 (default): greedy, the first maximum, as transformers' greedy search */
  int64_t top_k;           /* 0 (default): all */
  float top_p;             /* 1 (default): all */
  uint64_t seed;           /* the sampler's seed (default 0) */
  int stop_at_eos;         /* nonzero (default): stop after one of kiln_model_eos_ids */
  int add_special_tokens;  /* kiln_generate_text: encode the prompt with them (default 1; 0 for a chat prompt) */
  int skip_special_tokens; /* kiln_generate_text: leave special tokens out of the text (default 1) */
} kiln_generate_options;
KILN_API void kiln_generate_options_init(kiln_generate_options *options);

typedef struct kiln_generate_stats {
  int64_t prompt_tokens, generated_tokens;
  double prefill_seconds, decode_seconds;
  int stopped_at_eos, stopped_at_context; /* why it ended (else max_new_tokens or the callback) */
} kiln_generate_stats;

/* Called with each generated id (kiln_generate) or each piece of text with the id that completed it
 * (kiln_generate_text; a last call with id -1 flushes what the decoder held, also after the callback asked to
 * stop). Return nonzero to stop. */
typedef int (*kiln_token_callback)(int64_t id, void *user);
typedef int (*kiln_text_callback)(const char *piece, size_t piece_len, int64_t id, void *user);

/* Appends the prompt ids to the session's KV cache (batch 1; kiln_session_reset first to start over), then
 * samples ids one at a time. `options` / `stats` may be NULL. */
KILN_API kiln_status kiln_generate(kiln_session *session, const int64_t *prompt, size_t prompt_len,
                                   const kiln_generate_options *options, kiln_token_callback callback, void *user,
                                   kiln_generate_stats *stats);
/* The same from text: the prompt is tokenized and the output streamed as text (the callback may be NULL). */
KILN_API kiln_status kiln_generate_text(kiln_session *session, const char *prompt, size_t prompt_len,
                                        const kiln_generate_options *options, kiln_text_callback callback,
                                        void *user, kiln_generate_stats *stats);

typedef enum kiln_pooling {
  KILN_POOLING_DEFAULT = 0, /* the artifact's sentence-transformers config */
  KILN_POOLING_MEAN = 1,
  KILN_POOLING_CLS = 2,
  KILN_POOLING_MAX = 3,
  KILN_POOLING_LAST = 4,
  KILN_POOLING_MEAN_SQRT_LEN = 5
} kiln_pooling;

typedef struct kiln_embed_options {
  kiln_pooling pooling; /* default KILN_POOLING_DEFAULT */
  int normalize;        /* -1 (default): as the artifact says (no config: 0); 0 / 1 */
  const char *prefix;   /* NULL (default): the config's default prompt, if any; "" for none */
} kiln_embed_options;
KILN_API void kiln_embed_options_init(kiln_embed_options *options);

/* Sentence embeddings of an encoder: `out` ([count, hidden size] floats, `out_len` of them) receives one
 * vector per text, computed as sentence-transformers' encode: the prefix prepended, the texts run in batches
 * of the session's batch with right padding and an attention mask, pooled, normalized. Each text is truncated
 * to max_seq_length tokens (else the compiled max context), special tokens included. `options` may be NULL. */
KILN_API kiln_status kiln_embed(kiln_session *session, const char *const *texts, size_t count,
                                const kiln_embed_options *options, float *out, size_t out_len);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_KILN_H */
