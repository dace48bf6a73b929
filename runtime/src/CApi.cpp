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
#include <new>
#include <string>

struct kiln_model {
  kiln::runtime::core::Model core;
  std::string error; // "" once loaded: a model's calls do not fail
};

struct kiln_session {
  kiln::runtime::core::Session core;
  std::string error;
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
