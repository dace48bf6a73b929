// The machine's memory-read ceiling for decode: GB/s of T threads streaming one 1 GiB buffer (each a contiguous
// quarter/half, 512-bit loads where the compiler has them, 4 independent sums, software prefetch 2 KiB ahead),
// median of 7 passes after one warm-up. Decode reads every weight once per token, so weight bytes x tokens/s
// can be set against this (bench/peer.sh prints both). usage: membw THREADS
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { kBytes = 1 << 30, kPasses = 7 };
typedef float v16 __attribute__((vector_size(64)));
static const char *buffer;
static int threads;
static float sink[64];

static void *stream(void *arg) {
  long t = (long)arg;
  size_t per = (size_t)kBytes / threads;
  const char *p = buffer + t * per;
  v16 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
  for (size_t i = 0; i + 256 <= per; i += 256) {
    __builtin_prefetch(p + i + 2048);
    __builtin_prefetch(p + i + 2048 + 128);
    s0 += *(const v16 *)(p + i);
    s1 += *(const v16 *)(p + i + 64);
    s2 += *(const v16 *)(p + i + 128);
    s3 += *(const v16 *)(p + i + 192);
  }
  v16 s = s0 + s1 + s2 + s3;
  sink[t] = s[0] + s[15];
  return NULL;
}

static int cmp(const void *a, const void *b) { return *(const double *)a < *(const double *)b ? -1 : 1; }

int main(int argc, char **argv) {
  threads = argc > 1 ? atoi(argv[1]) : 1;
  if (threads < 1 || threads > 64) {
    fprintf(stderr, "usage: membw THREADS (1..64)\n");
    return 2;
  }
  char *b = aligned_alloc(64, kBytes);
  if (!b) {
    fprintf(stderr, "membw: cannot allocate 1 GiB\n");
    return 1;
  }
  memset(b, 1, kBytes);
  buffer = b;
  double gbs[kPasses + 1];
  for (int pass = 0; pass <= kPasses; ++pass) {
    struct timespec t0, t1;
    pthread_t th[64];
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long t = 0; t < threads; ++t) pthread_create(&th[t], NULL, stream, (void *)t);
    for (int t = 0; t < threads; ++t) pthread_join(th[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    gbs[pass] = kBytes / ((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9) / 1e9;
  }
  qsort(gbs + 1, kPasses, sizeof(double), cmp); // pass 0: warm-up
  printf("%.1f %.1f %.1f\n", gbs[1 + kPasses / 2], gbs[1], gbs[kPasses]);
  free(b);
  return 0;
}
