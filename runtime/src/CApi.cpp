//===- CApi.cpp - the kiln_* functions of kiln.h and kiln_vulkan.h ----------===//
//
// A thin layer over Model and Session: argument checks, kiln_status codes, the per-object and per-thread
// error messages, and no exception crossing the C boundary.
//
//===----------------------------------------------------------------------===//
#include "kiln/kiln.h"
#include "kiln/vulkan/kiln_vulkan.h"

#include "Model.h"
#include "Session.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

struct kiln_model {
  kiln::runtime::core::Model core;
  std::string error;        // the last failed text call's message ("" otherwise)
  std::vector<int64_t> eos; // kiln_model_eos_ids
};

struct kiln_session {
  kiln::runtime::core::Session core;
  std::string error;
  const kiln_model *model = nullptr; // its EOS ids (generation)
};

namespace {

thread_local std::string tlsLastError;

kiln_status setError(std::string *slot, kiln_status code, std::string message) {
  tlsLastError = message;
  if (slot)
    *slot = std::move(message);
  return code;
}

kiln_status sessionError(kiln_session *s, const kiln::runtime::Error &e) {
  return setError(s ? &s->error : nullptr, e.code(), e.message());
}

} // namespace

extern "C" {

const char *kiln_status_name(kiln_status status) {
  switch (status) {
  case KILN_OK: return "OK";
  case KILN_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
  case KILN_BAD_ARTIFACT: return "BAD_ARTIFACT";
  case KILN_IO_ERROR: return "IO_ERROR";
  case KILN_OUT_OF_RANGE: return "OUT_OF_RANGE";
  case KILN_INTERNAL: return "INTERNAL";
  }
  return "UNKNOWN";
}

const char *kiln_last_error(void) { return tlsLastError.c_str(); }

const char *kiln_version(void) { return "0.1.0"; }

void kiln_load_options_init(kiln_load_options *options) {
  if (!options)
    return;
  options->num_threads = 0;
  options->verify_checksums = 1;
}

kiln_status kiln_model_load(const char *path, const kiln_load_options *options, kiln_model **out) {
  if (!out)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "kiln_model_load: model is NULL");
  *out = nullptr;
  if (!path)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "kiln_model_load: path is NULL");
  kiln_load_options opts;
  kiln_load_options_init(&opts);
  if (options)
    opts = *options;
  if (opts.num_threads < 0)
    return setError(nullptr, KILN_INVALID_ARGUMENT,
                    "kiln_model_load: num_threads must be >= 0, got " + std::to_string(opts.num_threads));
  try {
    auto *m = new kiln_model();
    kiln::runtime::core::LoadOptions loadOptions;
    loadOptions.numThreads = opts.num_threads;
    loadOptions.verifyChecksums = opts.verify_checksums != 0;
    if (kiln::runtime::Error e = m->core.load(path, loadOptions)) {
      delete m;
      return setError(nullptr, e.code(), e.message());
    }
    m->eos = m->core.text().eosIds();
    *out = m;
    return KILN_OK;
  } catch (const std::bad_alloc &) {
    return setError(nullptr, KILN_INTERNAL, std::string(path) + ": out of memory while loading");
  } catch (...) {
    return setError(nullptr, KILN_INTERNAL, std::string(path) + ": unexpected error while loading");
  }
}

void kiln_model_free(kiln_model *model) { delete model; }

const char *kiln_model_error(const kiln_model *m) { return m ? m->error.c_str() : ""; }
const char *kiln_model_task(const kiln_model *m) { return m ? m->core.plan().task.c_str() : ""; }
const char *kiln_model_architecture(const kiln_model *m) { return m ? m->core.plan().architecture.c_str() : ""; }
int64_t kiln_model_vocab_size(const kiln_model *m) { return m ? m->core.plan().vocabSize : 0; }
int64_t kiln_model_hidden_size(const kiln_model *m) { return m ? m->core.plan().hiddenSize : 0; }
int64_t kiln_model_max_context(const kiln_model *m) { return m ? m->core.plan().maxContext : 0; }
int64_t kiln_model_max_batch(const kiln_model *m) { return m ? m->core.plan().maxBatch : 0; }
int kiln_model_num_threads(const kiln_model *m) { return m ? m->core.numThreads() : 0; }
int kiln_model_num_inputs(const kiln_model *m) { return m ? static_cast<int>(m->core.plan().inputNames.size()) : 0; }
const char *kiln_model_input_name(const kiln_model *m, int i) {
  return m && i >= 0 && i < kiln_model_num_inputs(m) ? m->core.plan().inputNames[size_t(i)].c_str() : nullptr;
}
int kiln_model_num_outputs(const kiln_model *m) { return m ? static_cast<int>(m->core.plan().outputNames.size()) : 0; }
const char *kiln_model_output_name(const kiln_model *m, int i) {
  return m && i >= 0 && i < kiln_model_num_outputs(m) ? m->core.plan().outputNames[size_t(i)].c_str() : nullptr;
}
uint64_t kiln_model_session_bytes(const kiln_model *m) { return m ? m->core.sessionBytes() : 0; }

kiln_status kiln_session_create(kiln_model *model, int64_t batch, kiln_session **out) {
  if (!out)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "kiln_session_create: session is NULL");
  *out = nullptr;
  if (!model)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "kiln_session_create: model is NULL");
  if (batch < 1)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "batch must be >= 1, got " + std::to_string(batch));
  kiln_session *s = nullptr;
  try {
    s = new kiln_session();
    s->model = model;
    if (kiln::runtime::Error e = s->core.create(model->core, batch)) {
      delete s;
      return setError(nullptr, e.code(), e.message());
    }
    *out = s;
    return KILN_OK;
  } catch (...) {
    delete s;
    return setError(nullptr, KILN_INTERNAL, "out of memory allocating a session");
  }
}

void kiln_session_free(kiln_session *session) { delete session; }

const char *kiln_session_error(const kiln_session *s) { return s ? s->error.c_str() : ""; }

kiln_status kiln_session_run(kiln_session *session, const int64_t *ids, const int64_t *attention_mask,
                             int64_t batch, int64_t seq_len) {
  if (!session)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "kiln_session_run: session is NULL");
  try {
    if (kiln::runtime::Error e = session->core.run(ids, attention_mask, batch, seq_len))
      return sessionError(session, e);
    session->error.clear();
    return KILN_OK;
  } catch (...) {
    return setError(&session->error, KILN_INTERNAL, "unexpected error in kiln_session_run");
  }
}

kiln_status kiln_session_set_logits(kiln_session *s, int rows) {
  if (!s)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "kiln_session_set_logits: session is NULL");
  if (rows != KILN_LOGITS_ALL && rows != KILN_LOGITS_LAST)
    return setError(&s->error, KILN_INVALID_ARGUMENT,
                    "kiln_session_set_logits: logits mode " + std::to_string(rows) +
                        " is neither KILN_LOGITS_ALL (0) nor KILN_LOGITS_LAST (1)");
  if (kiln::runtime::Error e = s->core.setLogitsRows(rows == KILN_LOGITS_LAST))
    return sessionError(s, e);
  s->error.clear();
  return KILN_OK;
}

kiln_status kiln_session_output(kiln_session *s, const char *name, const float **data, int64_t *shape, int *rank) {
  if (!s || !name || !data || !shape || !rank)
    return setError(s ? &s->error : nullptr, KILN_INVALID_ARGUMENT, "kiln_session_output: a NULL argument");
  *data = nullptr;
  *rank = 0;
  try {
    const std::vector<int64_t> *dims = nullptr;
    const float *values = nullptr;
    if (kiln::runtime::Error e = s->core.output(name, &values, &dims))
      return sessionError(s, e);
    if (dims->size() > KILN_MAX_RANK)
      return setError(&s->error, KILN_INTERNAL, std::string("output '") + name + "' has rank > 8");
    std::copy(dims->begin(), dims->end(), shape);
    *rank = static_cast<int>(dims->size());
    *data = values;
    return KILN_OK;
  } catch (...) {
    return setError(&s->error, KILN_INTERNAL, "unexpected error in kiln_session_output");
  }
}

int64_t kiln_session_past_length(const kiln_session *s) { return s ? s->core.past() : 0; }
int64_t kiln_session_batch(const kiln_session *s) { return s ? s->core.batch() : 0; }

kiln_status kiln_session_reset(kiln_session *s) {
  if (!s)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "kiln_session_reset: session is NULL");
  s->core.reset();
  s->error.clear();
  return KILN_OK;
}

uint64_t kiln_session_gpu_time_ns(const kiln_session *s) { return s ? s->core.deviceTimeNs() : 0; }

const char *kiln_model_device(const kiln_model *m) { return m ? m->core.device().c_str() : ""; }

const char *kiln_model_cpu_target(const kiln_model *m) { return m ? m->core.cpuTarget().c_str() : ""; }

} // extern "C"

// ---- text ----

struct kiln_stream_decoder {
  kiln::tokenizer::StreamDecoder core;
  kiln_model *model;
};

namespace {

using kiln::runtime::core::TextModel;

kiln_status modelError(kiln_model *m, const kiln::runtime::Error &e) {
  return setError(m ? &m->error : nullptr, e.code(), e.message());
}

/// A malloc'ed NUL-terminated copy (kiln_free), or nullptr when out of memory.
char *copyString(const std::string &s) {
  char *p = static_cast<char *>(std::malloc(s.size() + 1));
  if (p)
    std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

kiln_status returnString(std::string *errorSlot, const std::string &text, char **out) {
  *out = copyString(text);
  if (!*out)
    return setError(errorSlot, KILN_INTERNAL, "out of memory for " + std::to_string(text.size()) + " bytes of text");
  return KILN_OK;
}

/// Runs `body` (returning a kiln_status) with C++ exceptions turned into KILN_INTERNAL.
template <class Body> kiln_status guarded(std::string *errorSlot, const char *what, Body body) {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return setError(errorSlot, KILN_INTERNAL, std::string(what) + ": out of memory");
  } catch (...) {
    return setError(errorSlot, KILN_INTERNAL, std::string("unexpected error in ") + what);
  }
}

kiln::runtime::core::GenerateRequest generateRequest(const kiln_generate_options &o, const kiln_model &m) {
  kiln::runtime::core::GenerateRequest r;
  r.maxNewTokens = o.max_new_tokens;
  r.sampling = {double(o.temperature), o.top_k, double(o.top_p), o.seed};
  if (o.stop_at_eos)
    r.stopIds = m.eos;
  return r;
}

void fillStats(const kiln::runtime::core::GenerateStats &s, kiln_generate_stats *out) {
  if (!out)
    return;
  out->prompt_tokens = s.promptTokens;
  out->generated_tokens = s.generatedTokens;
  out->prefill_seconds = s.prefillSeconds;
  out->decode_seconds = s.decodeSeconds;
  out->stopped_at_eos = s.stoppedAtEos;
  out->stopped_at_context = s.stoppedAtContext;
}

/// Checks the options of a generate call; fills `opts` with them or the defaults.
kiln_status checkGenerateOptions(kiln_session *session, const kiln_generate_options *options,
                                 kiln_generate_options &opts) {
  kiln_generate_options_init(&opts);
  if (options)
    opts = *options;
  std::string bad;
  if (opts.max_new_tokens < 0)
    bad = "max_new_tokens must be >= 0";
  else if (!(opts.temperature >= 0))
    bad = "temperature must be >= 0";
  else if (opts.top_k < 0)
    bad = "top_k must be >= 0";
  else if (!(opts.top_p > 0 && opts.top_p <= 1))
    bad = "top_p must be in (0, 1]";
  if (!bad.empty())
    return setError(&session->error, KILN_INVALID_ARGUMENT, "kiln_generate: " + bad);
  return KILN_OK;
}

} // namespace

extern "C" {

void kiln_free(void *pointer) { std::free(pointer); }

int kiln_model_has_tokenizer(const kiln_model *m) { return m && m->core.text().present() ? 1 : 0; }

kiln_status kiln_model_eos_ids(const kiln_model *m, const int64_t **ids, size_t *count) {
  if (!m || !ids || !count)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "kiln_model_eos_ids: a NULL argument");
  *ids = m->eos.data();
  *count = m->eos.size();
  return KILN_OK;
}

kiln_status kiln_tokenize(kiln_model *m, const char *text, size_t len, int add_special_tokens, int64_t **ids,
                          size_t *count) {
  if (!m || (!text && len) || !ids || !count)
    return setError(m ? &m->error : nullptr, KILN_INVALID_ARGUMENT, "kiln_tokenize: a NULL argument");
  *ids = nullptr;
  *count = 0;
  return guarded(&m->error, "kiln_tokenize", [&] {
    std::vector<int64_t> out;
    if (kiln::runtime::Error e = m->core.text().encode(std::string_view(text ? text : "", len), add_special_tokens != 0, out))
      return modelError(m, e);
    *ids = static_cast<int64_t *>(std::malloc(std::max<size_t>(out.size(), 1) * sizeof(int64_t)));
    if (!*ids)
      return setError(&m->error, KILN_INTERNAL, "kiln_tokenize: out of memory");
    std::copy(out.begin(), out.end(), *ids);
    *count = out.size();
    return KILN_OK;
  });
}

kiln_status kiln_detokenize(kiln_model *m, const int64_t *ids, size_t count, int skip_special_tokens, char **text) {
  if (!m || (!ids && count) || !text)
    return setError(m ? &m->error : nullptr, KILN_INVALID_ARGUMENT, "kiln_detokenize: a NULL argument");
  *text = nullptr;
  return guarded(&m->error, "kiln_detokenize", [&] {
    std::string out;
    if (kiln::runtime::Error e = m->core.text().decode(ids, count, skip_special_tokens != 0, out))
      return modelError(m, e);
    return returnString(&m->error, out, text);
  });
}

kiln_status kiln_stream_decoder_create(kiln_model *m, int skip_special_tokens, kiln_stream_decoder **decoder) {
  if (!m || !decoder)
    return setError(m ? &m->error : nullptr, KILN_INVALID_ARGUMENT, "kiln_stream_decoder_create: a NULL argument");
  *decoder = nullptr;
  return guarded(&m->error, "kiln_stream_decoder_create", [&] {
    const kiln::tokenizer::Tokenizer *tok = nullptr;
    if (kiln::runtime::Error e = m->core.text().tokenizer(&tok))
      return modelError(m, e);
    *decoder = new kiln_stream_decoder{tok->streamDecoder(skip_special_tokens != 0), m};
    return KILN_OK;
  });
}

kiln_status kiln_stream_decoder_step(kiln_stream_decoder *d, int64_t id, char **piece) {
  if (!d || !piece)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "kiln_stream_decoder_step: a NULL argument");
  *piece = nullptr;
  if (id < 0 || id > int64_t(UINT32_MAX))
    return setError(&d->model->error, KILN_INVALID_ARGUMENT, "token id " + std::to_string(id) + " is out of range");
  return guarded(&d->model->error, "kiln_stream_decoder_step", [&] {
    kiln::StatusOr<std::string> text = d->core.step(uint32_t(id));
    if (!text.ok())
      return setError(&d->model->error, KILN_INVALID_ARGUMENT, text.status().message());
    return returnString(&d->model->error, *text, piece);
  });
}

kiln_status kiln_stream_decoder_finish(kiln_stream_decoder *d, char **piece) {
  if (!d || !piece)
    return setError(nullptr, KILN_INVALID_ARGUMENT, "kiln_stream_decoder_finish: a NULL argument");
  *piece = nullptr;
  return guarded(&d->model->error, "kiln_stream_decoder_finish", [&] {
    kiln::StatusOr<std::string> text = d->core.finish();
    if (!text.ok())
      return setError(&d->model->error, KILN_INVALID_ARGUMENT, text.status().message());
    return returnString(&d->model->error, *text, piece);
  });
}

void kiln_stream_decoder_free(kiln_stream_decoder *d) { delete d; }

kiln_status kiln_chat_template_apply(kiln_model *m, const char *messages_json, int add_generation_prompt,
                                     char **prompt) {
  if (!m || !messages_json || !prompt)
    return setError(m ? &m->error : nullptr, KILN_INVALID_ARGUMENT, "kiln_chat_template_apply: a NULL argument");
  *prompt = nullptr;
  return guarded(&m->error, "kiln_chat_template_apply", [&] {
    std::string out;
    if (kiln::runtime::Error e = m->core.text().renderChat(messages_json, add_generation_prompt != 0, out))
      return modelError(m, e);
    return returnString(&m->error, out, prompt);
  });
}

void kiln_generate_options_init(kiln_generate_options *o) {
  if (!o)
    return;
  *o = kiln_generate_options{};
  o->max_new_tokens = 256;
  o->top_p = 1.0f;
  o->stop_at_eos = 1;
  o->add_special_tokens = 1;
  o->skip_special_tokens = 1;
}

kiln_status kiln_generate(kiln_session *session, const int64_t *prompt, size_t prompt_len,
                          const kiln_generate_options *options, kiln_token_callback callback, void *user,
                          kiln_generate_stats *stats) {
  if (!session || (!prompt && prompt_len))
    return setError(session ? &session->error : nullptr, KILN_INVALID_ARGUMENT, "kiln_generate: a NULL argument");
  kiln_generate_options opts;
  if (kiln_status st = checkGenerateOptions(session, options, opts); st != KILN_OK)
    return st;
  return guarded(&session->error, "kiln_generate", [&] {
    const kiln_model &model = *session->model;
    std::vector<int64_t> ids(prompt, prompt + prompt_len);
    kiln::runtime::core::GenerateStats s;
    auto onToken = [&](int64_t id) { return !callback || callback(id, user) == 0; };
    kiln::runtime::Error e = kiln::runtime::core::generateIds(session->core, ids, generateRequest(opts, model), onToken, s);
    fillStats(s, stats);
    return e ? sessionError(session, e) : KILN_OK;
  });
}

kiln_status kiln_generate_text(kiln_session *session, const char *prompt, size_t prompt_len,
                               const kiln_generate_options *options, kiln_text_callback callback, void *user,
                               kiln_generate_stats *stats) {
  if (!session || (!prompt && prompt_len))
    return setError(session ? &session->error : nullptr, KILN_INVALID_ARGUMENT, "kiln_generate_text: a NULL argument");
  kiln_generate_options opts;
  if (kiln_status st = checkGenerateOptions(session, options, opts); st != KILN_OK)
    return st;
  return guarded(&session->error, "kiln_generate_text", [&] {
    const kiln_model &model = *session->model;
    const TextModel &text = session->core.model().text();
    std::vector<int64_t> ids;
    if (kiln::runtime::Error e = text.encode(std::string_view(prompt ? prompt : "", prompt_len),
                                             opts.add_special_tokens != 0, ids))
      return sessionError(session, e);
    kiln::runtime::core::GenerateStats s;
    auto onText = [&](const std::string &piece, int64_t id) {
      return !callback || callback(piece.c_str(), piece.size(), id, user) == 0;
    };
    kiln::runtime::Error e = kiln::runtime::core::generateText(session->core, text, ids, generateRequest(opts, model),
                                                               opts.skip_special_tokens != 0, onText, s);
    fillStats(s, stats);
    return e ? sessionError(session, e) : KILN_OK;
  });
}

void kiln_embed_options_init(kiln_embed_options *o) {
  if (!o)
    return;
  o->pooling = KILN_POOLING_DEFAULT;
  o->normalize = -1;
  o->prefix = nullptr;
}

kiln_status kiln_embed(kiln_session *session, const char *const *texts, size_t count, const kiln_embed_options *options,
                       float *out, size_t out_len) {
  if (!session || (!texts && count) || (!out && count))
    return setError(session ? &session->error : nullptr, KILN_INVALID_ARGUMENT, "kiln_embed: a NULL argument");
  kiln_embed_options opts;
  kiln_embed_options_init(&opts);
  if (options)
    opts = *options;
  if (int(opts.pooling) < 0 || int(opts.pooling) > int(KILN_POOLING_MEAN_SQRT_LEN) || opts.normalize < -1 ||
      opts.normalize > 1)
    return setError(&session->error, KILN_INVALID_ARGUMENT, "kiln_embed: pooling or normalize out of range");
  return guarded(&session->error, "kiln_embed", [&] {
    std::vector<std::string> items;
    for (size_t i = 0; i < count; ++i) {
      if (!texts[i])
        return setError(&session->error, KILN_INVALID_ARGUMENT, "kiln_embed: text " + std::to_string(i) + " is NULL");
      items.emplace_back(texts[i]);
    }
    kiln::runtime::core::EmbedRequest request;
    request.mode = kiln::runtime::core::PoolingMode(int(opts.pooling));
    request.normalize = opts.normalize;
    if (opts.prefix)
      request.prefix = std::string(opts.prefix);
    if (kiln::runtime::Error e =
            kiln::runtime::core::embed(session->core, session->core.model().text(), items, request, out, out_len))
      return sessionError(session, e);
    return KILN_OK;
  });
}

} // extern "C"
