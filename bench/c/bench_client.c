/*
 * bench_client.c — the C client of the benchmark suite, on libswiftgrpc (pull: one thread takes
 * every event from a swiftgrpc_queue). Talks to the methods of bench_server.c (any server of the
 * suite serves them). Every response is checked; mismatches are counted in "failed".
 *
 *   bench_client TARGET unary N CONC SIZE   N unary Get calls of SIZE bytes, CONC in flight
 *                                           (CONC 1: sequential, with p50/p99 latency)
 *   bench_client TARGET stream COUNT SIZE   one Stream call: COUNT messages of SIZE bytes
 *   bench_client TARGET ping N SIZE         one Ping call: N round trips of SIZE bytes
 *
 * Prints one line: RESULT {json}. BENCH_COMPRESSION=gzip: see bench_payload.h.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_payload.h"
#include "swiftgrpc.h"

#define GET "/swiftgrpc.examples.Echo/Get"
static swiftgrpc_runtime rt;
static swiftgrpc_channel ch;
static swiftgrpc_queue q;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(int rc, const char *what) {
  if (rc != SWIFTGRPC_OK) {
    fprintf(stderr, "%s: %s (%s)\n", what, swiftgrpc_errstr(rc), swiftgrpc_last_error());
    exit(1);
  }
}

static swiftgrpc_event *next_event(void) {
  swiftgrpc_event *ev = NULL;
  check(swiftgrpc_queue_next(q, 60000, &ev), "queue_next");
  return ev;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int64_t deadline(void) { return swiftgrpc_now_ns() + 60 * 1000000000LL; }

static void start_unary(const char *req, size_t size, void *tag) {
  swiftgrpc_call call;
  check(swiftgrpc_client_call_start(ch, GET, SWIFTGRPC_KIND_UNARY, NULL, 0, req, size, deadline(), 0,
                                    q, NULL, tag, &call), "call_start");
}

static int unary(long n, long conc, size_t size) {
  char *req = malloc(size ? size : 1);
  bench_fill_request(req, size);
  double *lat = conc == 1 ? malloc(sizeof(double) * (size_t)n) : NULL;
  double *started = malloc(sizeof(double) * (size_t)conc);
  long failed = 0, done = 0, issued = 0;
  start_unary(req, size, (void *)0); /* warm-up: connect */
  swiftgrpc_event *ev = next_event();
  failed += ev->status_code != 0;
  swiftgrpc_event_free(ev);
  double t0 = now_s();
  for (; issued < conc && issued < n; issued++) {
    started[issued] = now_s();
    start_unary(req, size, (void *)(intptr_t)issued);
  }
  while (done < n) {
    ev = next_event();
    if (ev->type != SWIFTGRPC_EVENT_CLIENT_STATUS) { swiftgrpc_event_free(ev); continue; }
    intptr_t slot = (intptr_t)ev->tag;
    if (ev->status_code != 0 || !ev->has_message || ev->message_len != size ||
        (size && memcmp(ev->message, req, size)))
      failed++;
    swiftgrpc_event_free(ev);
    double t = now_s();
    if (lat) lat[done] = t - started[slot];
    done++;
    if (issued < n) {
      started[slot] = t;
      start_unary(req, size, (void *)slot);
      issued++;
    }
  }
  double secs = now_s() - t0;
  if (lat) {
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    printf("RESULT {\"mode\":\"unary\",\"calls\":%ld,\"concurrency\":1,\"size\":%zu,\"calls_per_s\":%.0f,"
           "\"p50_us\":%.1f,\"p99_us\":%.1f,\"failed\":%ld}\n", n, size, n / secs, lat[n / 2] * 1e6,
           lat[(long)(n * 0.99)] * 1e6, failed);
  } else {
    printf("RESULT {\"mode\":\"unary\",\"calls\":%ld,\"concurrency\":%ld,\"size\":%zu,\"calls_per_s\":%.0f,"
           "\"failed\":%ld}\n", n, conc, size, n / secs, failed);
  }
  free(req); free(lat); free(started);
  return failed != 0;
}

static int stream(long count, size_t size) {
  unsigned char req[8];
  for (int i = 0; i < 4; i++) { req[i] = (unsigned char)(count >> (8 * i)); req[4 + i] = (unsigned char)(size >> (8 * i)); }
  swiftgrpc_call call;
  double t0 = now_s();
  check(swiftgrpc_client_call_start(ch, "/swiftgrpc.examples.Echo/Stream", SWIFTGRPC_KIND_SERVER_STREAMING,
                                    NULL, 0, req, 8, deadline(), 0, q, NULL, NULL, &call), "call_start");
  long got = 0, failed = 0;
  int status = -1;
  char *expect = malloc(size ? size : 1); /* what the server streams (bench_payload.h) */
  bench_fill_stream(expect, size);
  /* A window of READ_WINDOW reads kept asked: messages already received reach us without a
     loop round trip each; events are taken in batches. */
  enum { READ_WINDOW = 64 };
  for (int i = 0; i < READ_WINDOW; i++) check(swiftgrpc_client_read(ch, call), "read");
  while (status < 0) {
    swiftgrpc_event *evs[READ_WINDOW + 2];
    size_t n = 0;
    check(swiftgrpc_queue_next_batch(q, 60000, evs, READ_WINDOW + 2, &n), "queue_next_batch");
    for (size_t i = 0; i < n; i++) {
      swiftgrpc_event *ev = evs[i];
      if (ev->type == SWIFTGRPC_EVENT_CLIENT_MESSAGE) {
        if (ev->has_message) {
          got++;
          if (ev->message_len != size || (size && memcmp(ev->message, expect, size))) failed++;
          swiftgrpc_client_read(ch, call);
        }
      } else if (ev->type == SWIFTGRPC_EVENT_CLIENT_STATUS) {
        status = ev->status_code;
      }
      swiftgrpc_event_free(ev);
    }
  }
  double secs = now_s() - t0;
  if (status != 0 || got != count) failed += 1 + (count - got);
  printf("RESULT {\"mode\":\"stream\",\"messages\":%ld,\"size\":%zu,\"msgs_per_s\":%.0f,\"mb_per_s\":%.1f,"
         "\"failed\":%ld}\n", got, size, got / secs, got * (double)size / secs / 1e6, failed);
  free(expect);
  return failed != 0;
}

static int ping(long n, size_t size) {
  char *req = malloc(size ? size : 1);
  bench_fill_request(req, size);
  double *lat = malloc(sizeof(double) * (size_t)n);
  swiftgrpc_call call;
  check(swiftgrpc_client_call_start(ch, "/swiftgrpc.examples.Echo/Ping", SWIFTGRPC_KIND_BIDI_STREAMING,
                                    NULL, 0, NULL, 0, deadline(), 0, q, NULL, NULL, &call), "call_start");
  long failed = 0;
  for (long i = -1; i < n; i++) { /* round trip -1 warms up */
    double t = now_s();
    check(swiftgrpc_client_send_message(ch, call, req, size), "send");
    check(swiftgrpc_client_read(ch, call), "read");
    int pending = 2;
    while (pending) {
      swiftgrpc_event *ev = next_event();
      if (ev->type == SWIFTGRPC_EVENT_CLIENT_SEND_DONE) pending--;
      else if (ev->type == SWIFTGRPC_EVENT_CLIENT_MESSAGE) {
        pending--;
        if (!ev->has_message || ev->message_len != size || (size && memcmp(ev->message, req, size))) failed++;
      } else if (ev->type == SWIFTGRPC_EVENT_CLIENT_STATUS) { failed += n; pending = 0; i = n; }
      swiftgrpc_event_free(ev);
    }
    if (i >= 0 && i < n) lat[i] = now_s() - t;
  }
  check(swiftgrpc_client_half_close(ch, call), "half_close");
  int status = -1;
  check(swiftgrpc_client_read(ch, call), "read");
  while (status < 0) {
    swiftgrpc_event *ev = next_event();
    if (ev->type == SWIFTGRPC_EVENT_CLIENT_STATUS) status = ev->status_code;
    swiftgrpc_event_free(ev);
  }
  failed += status != 0;
  qsort(lat, (size_t)n, sizeof(double), cmp_double);
  printf("RESULT {\"mode\":\"ping\",\"round_trips\":%ld,\"size\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"failed\":%ld}\n",
         n, size, lat[n / 2] * 1e6, lat[(long)(n * 0.99)] * 1e6, failed);
  free(req); free(lat);
  return failed != 0;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: bench_client TARGET unary N CONC SIZE | stream COUNT SIZE | ping N SIZE\n");
    return 2;
  }
  check(swiftgrpc_runtime_create(1, &rt), "runtime_create");
  swiftgrpc_channel_arg args[] = {{SWIFTGRPC_CHANNEL_MAX_RECV_MESSAGE_SIZE, 64 << 20, NULL},
                                   {SWIFTGRPC_CHANNEL_DEFAULT_COMPRESSION, SWIFTGRPC_COMPRESS_GZIP, NULL}};
  check(swiftgrpc_channel_create(rt, argv[1], args, bench_gzip() ? 2 : 1, &ch), "channel_create");
  check(swiftgrpc_queue_create(rt, &q), "queue_create");
  int rc;
  if (!strcmp(argv[2], "unary") && argc >= 6) rc = unary(atol(argv[3]), atol(argv[4]), (size_t)atol(argv[5]));
  else if (!strcmp(argv[2], "stream")) rc = stream(atol(argv[3]), (size_t)atol(argv[4]));
  else if (!strcmp(argv[2], "ping")) rc = ping(atol(argv[3]), (size_t)atol(argv[4]));
  else { fprintf(stderr, "unknown mode %s\n", argv[2]); return 2; }
  fflush(stdout);
  swiftgrpc_channel_destroy(ch);
  swiftgrpc_queue_destroy(q);
  swiftgrpc_runtime_destroy(rt);
  return rc;
}
