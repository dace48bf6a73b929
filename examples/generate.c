/* generate.c: greedy generation with a compiled causal LM, on kiln.h alone.
 *
 *   kiln_example MODEL.kiln [N_TOKENS] [ID ID ...]
 *
 * Loads the artifact, prefills the prompt ids (default: "1"), then decodes N_TOKENS (default 16) tokens
 * one at a time through the session's KV cache, taking the argmax of the last logits each step, and prints
 * the generated ids. An encoder artifact is run once and its first output's shape printed instead. */
#include <kiln/kiln.h>

#include <stdio.h>
#include <stdlib.h>

static int argmax(const float *x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best])
      best = i;
  return (int)best;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL.kiln [N_TOKENS] [ID ID ...]\n", argv[0]);
    return 2;
  }
  int n = argc > 2 ? atoi(argv[2]) : 16;
  int64_t prompt[256];
  int64_t len = 0;
  for (int i = 3; i < argc && len < 256; ++i)
    prompt[len++] = atoll(argv[i]);
  if (len == 0)
    prompt[len++] = 1;

  kiln_load_options options;
  kiln_load_options_init(&options);
  options.num_threads = 2;
  kiln_model *model = NULL;
  if (kiln_model_load(argv[1], &options, &model) != KILN_OK) {
    fprintf(stderr, "error: %s\n", kiln_last_error());
    return 1;
  }
  printf("%s (%s): vocab %lld, max context %lld\n", kiln_model_architecture(model), kiln_model_task(model),
         (long long)kiln_model_vocab_size(model), (long long)kiln_model_max_context(model));

  kiln_session *session = NULL;
  if (kiln_session_create(model, 1, &session) != KILN_OK) {
    fprintf(stderr, "error: %s\n", kiln_last_error());
    kiln_model_free(model);
    return 1;
  }
  /* Generation reads only the last row's logits: compute that row alone ([1, 1, vocab]). An encoder has no
   * logits rows and refuses, harmlessly. */
  (void)kiln_session_set_logits(session, KILN_LOGITS_LAST);
  int status = 0;
  const float *data;
  int64_t shape[KILN_MAX_RANK];
  int rank;
  if (kiln_session_run(session, prompt, NULL, 1, len) != KILN_OK ||
      kiln_session_output(session, kiln_model_output_name(model, 0), &data, shape, &rank) != KILN_OK) {
    fprintf(stderr, "error: %s\n", kiln_session_error(session));
    status = 1;
  } else if (kiln_model_num_outputs(model) > 0 && kiln_model_vocab_size(model) > 0 &&
             kiln_session_past_length(session) > 0) {
    printf("generated:");
    for (int i = 0; i < n; ++i) {
      int64_t next = argmax(data + (shape[1] - 1) * shape[2], shape[2]);
      printf(" %lld", (long long)next);
      if (i + 1 == n || kiln_session_past_length(session) >= kiln_model_max_context(model))
        break;
      if (kiln_session_run(session, &next, NULL, 1, 1) != KILN_OK ||
          kiln_session_output(session, "logits", &data, shape, &rank) != KILN_OK) {
        fprintf(stderr, "\nerror: %s\n", kiln_session_error(session));
        status = 1;
        break;
      }
    }
    printf("\n");
  } else {
    printf("%s: [", kiln_model_output_name(model, 0));
    for (int i = 0; i < rank; ++i)
      printf(i ? ", %lld" : "%lld", (long long)shape[i]);
    printf("], first value %g\n", (double)data[0]);
  }
  kiln_session_free(session);
  kiln_model_free(model);
  return status;
}
