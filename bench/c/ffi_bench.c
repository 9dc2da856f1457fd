/*
 * ffi_bench.c — the cost of the host boundary for a C host, in process, no network: one server
 * (no listener) and swiftgrpc_server_probe, which sends CALL events of a unary method to the
 * host and resumes the call when the host completes it, N times one after the other.
 *
 *   push, answered in the host fn   host fn -> swiftgrpc_host_complete inside it -> loop resumes
 *   push, handed to a thread        host fn copies the event to a worker thread, which completes
 *   pull                            a thread waiting in swiftgrpc_queue_next completes
 *
 * usage: ffi_bench N      Prints one RESULT {json} line per path.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swiftgrpc.h"
#include "swiftgrpc_util.h"

static swiftgrpc_server server;

static void check(int rc, const char *what) {
  if (rc != SWIFTGRPC_OK) {
    fprintf(stderr, "%s: %s (%s)\n", what, swiftgrpc_errstr(rc), swiftgrpc_last_error());
    exit(1);
  }
}

static void complete(const swiftgrpc_event *ev) {
  check(swiftgrpc_host_complete(server, ev->token, ev->message, ev->message_len, 0, NULL, NULL, 0),
        "host_complete");
}

static void on_inline(const swiftgrpc_event *ev, void *user_data) {
  (void)user_data;
  complete(ev);
}

/* A one-slot hand-off to the worker thread (the probe has one call in flight at a time). */
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slot_cond = PTHREAD_COND_INITIALIZER;
static swiftgrpc_event *slot;
static int slot_closed;

static void on_handoff(const swiftgrpc_event *ev, void *user_data) {
  (void)user_data;
  swiftgrpc_event *copy = swiftgrpc_event_copy(ev);
  pthread_mutex_lock(&slot_lock);
  slot = copy;
  pthread_cond_signal(&slot_cond);
  pthread_mutex_unlock(&slot_lock);
}

static void *handoff_worker(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&slot_lock);
    while (!slot && !slot_closed) pthread_cond_wait(&slot_cond, &slot_lock);
    swiftgrpc_event *ev = slot;
    slot = NULL;
    pthread_mutex_unlock(&slot_lock);
    if (!ev) return NULL;
    if (ev->type == SWIFTGRPC_EVENT_CALL) complete(ev);
    free(ev);
  }
}

static void *pull_worker(void *arg) {
  swiftgrpc_queue q = *(swiftgrpc_queue *)arg;
  swiftgrpc_event *ev;
  while (swiftgrpc_queue_next(q, -1, &ev) == SWIFTGRPC_OK) {
    if (ev->type == SWIFTGRPC_EVENT_CALL) complete(ev);
    swiftgrpc_event_free(ev);
  }
  return NULL;
}

static void probe(const char *label, const char *method, uint64_t n) {
  int64_t ns = 0;
  check(swiftgrpc_server_probe(server, method, "hello", 5, n / 10 + 1, 600000, &ns), "probe (warm-up)");
  check(swiftgrpc_server_probe(server, method, "hello", 5, n, 600000, &ns), "probe");
  printf("RESULT {\"path\":\"%s\",\"round_trips\":%llu,\"ns_per_round_trip\":%.0f}\n", label,
         (unsigned long long)n, (double)ns / (double)n);
  fflush(stdout);
}

int main(int argc, char **argv) {
  uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
  swiftgrpc_runtime rt;
  swiftgrpc_queue q;
  check(swiftgrpc_runtime_create(1, &rt), "runtime_create");
  check(swiftgrpc_server_create(rt, &server), "server_create");
  check(swiftgrpc_queue_create(rt, &q), "queue_create");
  check(swiftgrpc_register_host_fn(server, "/ffi.B/Inline", SWIFTGRPC_KIND_UNARY, on_inline, NULL), "register");
  check(swiftgrpc_register_host_fn(server, "/ffi.B/Handoff", SWIFTGRPC_KIND_UNARY, on_handoff, NULL), "register");
  check(swiftgrpc_register_host_queue(server, "/ffi.B/Pull", SWIFTGRPC_KIND_UNARY, q), "register");
  check(swiftgrpc_server_start(server), "start");
  pthread_t handoff, pull;
  pthread_create(&handoff, NULL, handoff_worker, NULL);
  pthread_create(&pull, NULL, pull_worker, &q);

  probe("push, answered in the host fn", "/ffi.B/Inline", n);
  probe("push, handed to a worker thread", "/ffi.B/Handoff", n / 10);
  probe("pull (a thread in swiftgrpc_queue_next)", "/ffi.B/Pull", n / 10);

  swiftgrpc_queue_shutdown(q);
  pthread_mutex_lock(&slot_lock);
  slot_closed = 1;
  pthread_cond_signal(&slot_cond);
  pthread_mutex_unlock(&slot_lock);
  pthread_join(handoff, NULL);
  pthread_join(pull, NULL);
  check(swiftgrpc_server_destroy(server), "server_destroy");
  check(swiftgrpc_runtime_destroy(rt), "runtime_destroy");
  return 0;
}
