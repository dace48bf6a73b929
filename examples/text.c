/* text.c: text in, text out with a compiled model, on kiln.h alone.
 *
 *   kiln_text_example MODEL.kiln "PROMPT" [N_TOKENS]        causal LM: streams the greedy continuation
 *   kiln_text_example MODEL.kiln --chat "MESSAGE" [N_TOKENS] causal LM: through the model's chat template
 *   kiln_text_example MODEL.kiln --embed "TEXT" ...          encoder: one pooled, normalized vector per text
 *
 * The artifact must carry its tokenizer (kiln compile of a directory with tokenizer.json). Generation stops at
 * the model's EOS ids or after N_TOKENS (default 64); the text is printed as it comes. */
#include <kiln/kiln.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_piece(const char *piece, size_t len, int64_t id, void *user) {
  (void)id;
  (void)user;
  fwrite(piece, 1, len, stdout);
  fflush(stdout);
  return 0; /* nonzero would stop generation */
}

/* A JSON string literal for `text` (quotes, backslashes and control characters escaped), malloc'ed. */
static char *json_string(const char *text) {
  size_t n = strlen(text);
  char *out = malloc(6 * n + 3), *p = out;
  if (!out)
    return NULL;
  *p++ = '"';
  for (const unsigned char *c = (const unsigned char *)text; *c; ++c) {
    if (*c == '"' || *c == '\\') {
      *p++ = '\\';
      *p++ = (char)*c;
    } else if (*c < 0x20) {
      p += sprintf(p, "\\u%04x", *c);
    } else {
      *p++ = (char)*c;
    }
  }
  *p++ = '"';
  *p = '\0';
  return out;
}

static int generate(kiln_model *model, kiln_session *session, const char *text, int chat, int n) {
  kiln_generate_options options;
  kiln_generate_options_init(&options);
  options.max_new_tokens = n;
  char *prompt = NULL;
  if (chat) {
    char *content = json_string(text);
    size_t size = strlen(content) + 64;
    char *messages = malloc(size);
    snprintf(messages, size, "[{\"role\": \"user\", \"content\": %s}]", content);
    free(content);
    kiln_status st = kiln_chat_template_apply(model, messages, 1, &prompt);
    free(messages);
    if (st != KILN_OK)
      return 1;
    options.add_special_tokens = 0; /* the template wrote them */
    text = prompt;
  }
  kiln_generate_stats stats;
  kiln_status st = kiln_generate_text(session, text, strlen(text), &options, print_piece, NULL, &stats);
  kiln_free(prompt);
  if (st != KILN_OK)
    return 1;
  printf("\n");
  fprintf(stderr, "%lld prompt tokens, %lld generated%s\n", (long long)stats.prompt_tokens,
          (long long)stats.generated_tokens, stats.stopped_at_eos ? " (EOS)" : "");
  return 0;
}

static int embed(kiln_model *model, kiln_session *session, const char *const *texts, int count) {
  int64_t dim = kiln_model_hidden_size(model);
  float *out = malloc(sizeof(float) * (size_t)dim * (size_t)count);
  if (!out || kiln_embed(session, texts, (size_t)count, NULL, out, (size_t)dim * (size_t)count) != KILN_OK) {
    free(out);
    return 1;
  }
  for (int i = 0; i < count; ++i) {
    printf("[");
    for (int64_t d = 0; d < dim; ++d)
      printf(d ? ",%.9g" : "%.9g", (double)out[i * dim + d]);
    printf("]\n");
  }
  free(out);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.kiln PROMPT [N] | --chat MESSAGE [N] | --embed TEXT...\n", argv[0]);
    return 2;
  }
  kiln_model *model = NULL;
  if (kiln_model_load(argv[1], NULL, &model) != KILN_OK) {
    fprintf(stderr, "error: %s\n", kiln_last_error());
    return 1;
  }
  const int embedding = strcmp(argv[2], "--embed") == 0, chat = strcmp(argv[2], "--chat") == 0;
  if ((embedding || chat) && argc < 4) {
    fprintf(stderr, "error: %s needs a text\n", argv[2]);
    kiln_model_free(model);
    return 2;
  }
  int64_t batch = embedding ? argc - 3 : 1;
  if (batch > kiln_model_max_batch(model))
    batch = kiln_model_max_batch(model);
  kiln_session *session = NULL;
  int status = 1;
  if (kiln_session_create(model, batch, &session) == KILN_OK) {
    if (embedding)
      status = embed(model, session, (const char *const *)argv + 3, argc - 3);
    else
      status = generate(model, session, argv[chat ? 3 : 2], chat, argc > (chat ? 4 : 3) ? atoi(argv[chat ? 4 : 3]) : 64);
  }
  if (status != 0)
    fprintf(stderr, "error: %s\n", kiln_last_error());
  kiln_session_free(session);
  kiln_model_free(model);
  return status;
}
