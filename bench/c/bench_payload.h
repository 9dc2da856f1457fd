/*
 * bench_payload.h — the payloads of the benchmark programs, in C and C++ (bench/python/
 * bench_payload.py makes the same bytes). With BENCH_COMPRESSION=gzip in the environment the
 * programs compress (gzip on channels and servers) and send text-like bytes: words of a 16-word
 * list picked by an LCG, which gzip packs about 3:1. Otherwise requests are the letters a-z
 * repeated and streamed responses 'x' bytes.
 */
#ifndef BENCH_PAYLOAD_H
#define BENCH_PAYLOAD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline int bench_gzip(void) {
  const char *e = getenv("BENCH_COMPRESSION");
  return e != NULL && strcmp(e, "gzip") == 0;
}

static inline void bench_fill_text(char *p, size_t n) {
  static const char *const words[16] = {"grpc", "swift", "payload", "compress", "message",
                                        "stream", "server", "client", "the", "of", "and", "a",
                                        "to", "in", "is", "data"};
  uint32_t x = 1;
  size_t i = 0;
  while (i < n) {
    x = x * 1103515245u + 12345u;
    for (const char *w = words[(x >> 16) & 15]; *w && i < n; w++) p[i++] = *w;
    if (i < n) p[i++] = ' ';
  }
}

static inline void bench_fill_request(char *p, size_t n) {
  if (bench_gzip()) {
    bench_fill_text(p, n);
    return;
  }
  for (size_t i = 0; i < n; i++) p[i] = (char)('a' + i % 26);
}

static inline void bench_fill_stream(char *p, size_t n) {
  if (bench_gzip()) bench_fill_text(p, n);
  else memset(p, 'x', n);
}

#endif
