/*
 * bench_server.c — the C host of the benchmark suite, on libswiftgrpc. Raw byte payloads:
 *
 *   /swiftgrpc.examples.Echo/Get     unary             replies with the request
 *   /swiftgrpc.examples.Echo/Stream  server streaming  request = two little-endian uint32,
 *                                                      COUNT and SIZE: replies with COUNT
 *                                                      messages of SIZE bytes
 *   /swiftgrpc.examples.Echo/Ping    bidi streaming    echoes each request as it comes
 *
 * Host paths: push (default: the host fn copies the event and hands it to worker threads),
 * --batch (push in batches: a swiftgrpc_host_batch_fn hands each loop iteration's events to the
 * workers under one lock, and a worker takes every job queued when it wakes), --pull (worker
 * threads take events from a swiftgrpc_queue), --inline (push, answered inside the host fn on
 * the loop thread: for handlers that never block).
 *
 * usage: bench_server [--pull | --inline | --batch] [--workers N] [--loops N] [--port N]
 *                     [--tls-cert PEM --tls-key PEM]   (TLS on the port)
 * Prints "listening on PORT"; serves until SIGINT/SIGTERM.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_payload.h"
#include "swiftgrpc.h"
#include "swiftgrpc_util.h"

static swiftgrpc_server server;
static swiftgrpc_queue queue;
static char *stream_buf; /* SIZE bytes of Stream replies; grown under stream_lock */
static size_t stream_cap;
static pthread_mutex_t stream_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- a job queue of copied events, for push mode ---------------------------------------- */
typedef struct job { swiftgrpc_event *ev; struct job *next; } job;
static job *jobs_head, *jobs_tail;
static int jobs_closed;
static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cond = PTHREAD_COND_INITIALIZER;

static void jobs_push(swiftgrpc_event *ev) {
  job *j = malloc(sizeof *j);
  if (!j) { free(ev); return; }
  j->ev = ev;
  j->next = NULL;
  pthread_mutex_lock(&jobs_lock);
  if (jobs_tail) jobs_tail->next = j; else jobs_head = j;
  jobs_tail = j;
  pthread_cond_signal(&jobs_cond);
  pthread_mutex_unlock(&jobs_lock);
}

/* Batch mode: `n` copied events queued under one lock, one wake-up. */
static void jobs_push_all(swiftgrpc_event **evs, size_t n) {
  job *first = NULL, *last = NULL;
  for (size_t i = 0; i < n; i++) {
    job *j = malloc(sizeof *j);
    if (!j) { free(evs[i]); continue; }
    j->ev = evs[i];
    j->next = NULL;
    if (last) last->next = j; else first = j;
    last = j;
  }
  if (!first) return;
  pthread_mutex_lock(&jobs_lock);
  if (jobs_tail) jobs_tail->next = first; else jobs_head = first;
  jobs_tail = last;
  if (n > 1) pthread_cond_broadcast(&jobs_cond); else pthread_cond_signal(&jobs_cond);
  pthread_mutex_unlock(&jobs_lock);
}

/* Batch mode: every job queued, in order (NULL once closed and empty). */
static job *jobs_pop_all(void) {
  pthread_mutex_lock(&jobs_lock);
  while (!jobs_head && !jobs_closed) pthread_cond_wait(&jobs_cond, &jobs_lock);
  job *j = jobs_head;
  jobs_head = jobs_tail = NULL;
  pthread_mutex_unlock(&jobs_lock);
  return j;
}

static swiftgrpc_event *jobs_pop(void) {
  pthread_mutex_lock(&jobs_lock);
  while (!jobs_head && !jobs_closed) pthread_cond_wait(&jobs_cond, &jobs_lock);
  job *j = jobs_head;
  if (j) { jobs_head = j->next; if (!jobs_head) jobs_tail = NULL; }
  pthread_mutex_unlock(&jobs_lock);
  if (!j) return NULL;
  swiftgrpc_event *ev = j->ev;
  free(j);
  return ev;
}

/* ---- the service ------------------------------------------------------------------------ */
static uint32_t le32(const char *p) {
  const unsigned char *u = (const unsigned char *)p;
  return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

/* Stream: COUNT messages of SIZE bytes, SEND_WINDOW of them outstanding: each SEND_DONE lets
   the next go. Per-call state in a small table keyed by token (few streams run at once here). */
enum { SEND_WINDOW = 16 };
static struct { uint64_t token; uint32_t left, size, inflight; } streams[4096];

/* Sends up to `n` more messages; completes once all were sent and acknowledged. */
static void stream_next(const swiftgrpc_event *ev, uint32_t n) {
  size_t slot = (size_t)(ev->token >> 8) % 4096;
  pthread_mutex_lock(&stream_lock);
  int mine = streams[slot].token == ev->token;
  uint32_t left = mine ? streams[slot].left : 0, size = streams[slot].size;
  uint32_t go = left < n ? left : n;
  if (mine) {
    streams[slot].left -= go;
    streams[slot].inflight += go;
    if (ev->type == SWIFTGRPC_EVENT_SEND_DONE) streams[slot].inflight--;
  }
  int done = mine && streams[slot].left == 0 && streams[slot].inflight == 0;
  pthread_mutex_unlock(&stream_lock);
  for (uint32_t i = 0; i < go; i++) swiftgrpc_call_send_message(server, ev->token, stream_buf, size);
  if (done || !mine) swiftgrpc_host_complete(server, ev->token, NULL, 0, SWIFTGRPC_STATUS_OK, NULL, NULL, 0);
}

static void serve_stream(const swiftgrpc_event *ev) {
  if (ev->message_len != 8) {
    swiftgrpc_host_complete(server, ev->token, NULL, 0, SWIFTGRPC_STATUS_INVALID_ARGUMENT,
                            "want COUNT and SIZE as two uint32", NULL, 0);
    return;
  }
  uint32_t count = le32(ev->message), size = le32(ev->message + 4);
  pthread_mutex_lock(&stream_lock);
  if (size > stream_cap) {
    char *grown = realloc(stream_buf, size);
    if (grown) { bench_fill_stream(grown, size); stream_buf = grown; stream_cap = size; }
  }
  int fits = size <= stream_cap;
  if (fits) {
    size_t slot = (size_t)(ev->token >> 8) % 4096;
    streams[slot].token = ev->token;
    streams[slot].left = count;
    streams[slot].size = size;
    streams[slot].inflight = 0;
  }
  pthread_mutex_unlock(&stream_lock);
  if (!fits) {
    swiftgrpc_host_complete(server, ev->token, NULL, 0, SWIFTGRPC_STATUS_RESOURCE_EXHAUSTED, "no memory", NULL, 0);
    return;
  }
  stream_next(ev, SEND_WINDOW);
}

static void handle(const swiftgrpc_event *ev) {
  const char *m = strrchr(ev->method, '/');
  m = m ? m + 1 : ev->method;
  switch (ev->type) {
  case SWIFTGRPC_EVENT_CALL:
    if (!strcmp(m, "Get"))
      swiftgrpc_host_complete(server, ev->token, ev->message, ev->message_len, SWIFTGRPC_STATUS_OK, NULL, NULL, 0);
    else if (!strcmp(m, "Stream")) serve_stream(ev);
    else swiftgrpc_call_read(server, ev->token); /* Ping */
    break;
  case SWIFTGRPC_EVENT_MESSAGE:
    /* Ping: answer, and read the next ping at once. A ping-pong client sends its next ping only
       after this pong arrived, by which time the pong's SEND_DONE has come: one send is never
       outstanding when the next is made. (A client that pipelines needs the read to wait for
       SEND_DONE instead, as examples/c/echo_server.c does.) */
    swiftgrpc_call_send_message(server, ev->token, ev->message, ev->message_len);
    swiftgrpc_call_read(server, ev->token);
    break;
  case SWIFTGRPC_EVENT_SEND_DONE:
    if (!strcmp(m, "Stream")) stream_next(ev, 1);
    break;
  case SWIFTGRPC_EVENT_HALF_CLOSE:
    swiftgrpc_host_complete(server, ev->token, NULL, 0, SWIFTGRPC_STATUS_OK, NULL, NULL, 0);
    break;
  default: break; /* CANCELLED: nothing held per call */
  }
}

static void on_event_inline(const swiftgrpc_event *ev, void *user_data) {
  (void)user_data;
  handle(ev);
}

static void on_event(const swiftgrpc_event *ev, void *user_data) {
  (void)user_data;
  swiftgrpc_event *copy = swiftgrpc_event_copy(ev);
  if (copy) jobs_push(copy);
}

static void on_batch(const swiftgrpc_event *const *events, size_t count, void *user_data) {
  (void)user_data;
  swiftgrpc_event *copies[256];
  while (count) {
    size_t n = count < 256 ? count : 256, k = 0;
    for (size_t i = 0; i < n; i++)
      if ((copies[k] = swiftgrpc_event_copy(events[i]))) k++;
    jobs_push_all(copies, k);
    events += n;
    count -= n;
  }
}

enum { MODE_PUSH, MODE_PULL, MODE_BATCH };

static void *worker(void *arg) {
  int mode = (int)(intptr_t)arg;
  if (mode == MODE_BATCH) {
    for (job *j; (j = jobs_pop_all());) {
      while (j) {
        job *next = j->next;
        handle(j->ev);
        free(j->ev);
        free(j);
        j = next;
      }
    }
    return NULL;
  }
  int pull = mode == MODE_PULL;
  for (;;) {
    swiftgrpc_event *ev = NULL;
    if (pull) {
      if (swiftgrpc_queue_next(queue, -1, &ev) != SWIFTGRPC_OK) return NULL;
      handle(ev);
      swiftgrpc_event_free(ev);
    } else {
      if (!(ev = jobs_pop())) return NULL;
      handle(ev);
      free(ev);
    }
  }
}

static void check(int rc, const char *what) {
  if (rc != SWIFTGRPC_OK) {
    fprintf(stderr, "%s: %s (%s)\n", what, swiftgrpc_errstr(rc), swiftgrpc_last_error());
    exit(1);
  }
}

/* A whole file, malloc'd; exits if unreadable. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) { perror(path); exit(2); }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { perror(path); exit(2); }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

int main(int argc, char **argv) {
  int port = 0, pull = 0, inl = 0, batch = 0, workers = 2, loops = 0;
  const char *tls_cert = NULL, *tls_key = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--pull")) pull = 1;
    else if (!strcmp(argv[i], "--inline")) inl = 1;
    else if (!strcmp(argv[i], "--batch")) batch = 1;
    else if (!strcmp(argv[i], "--workers") && i + 1 < argc) workers = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--loops") && i + 1 < argc) loops = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--tls-cert") && i + 1 < argc) tls_cert = argv[++i];
    else if (!strcmp(argv[i], "--tls-key") && i + 1 < argc) tls_key = argv[++i];
    else { fprintf(stderr, "usage: bench_server [--pull | --inline | --batch] [--workers N] [--loops N] [--port N] [--tls-cert F --tls-key F]\n"); return 2; }
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by every thread, library ones too */

  swiftgrpc_runtime rt;
  check(swiftgrpc_runtime_create((uint32_t)loops, &rt), "runtime_create");
  check(swiftgrpc_server_create(rt, &server), "server_create");
  check(swiftgrpc_server_set_option(server, SWIFTGRPC_OPT_MAX_RECV_MESSAGE_SIZE, 64 << 20), "max receive");
  if (bench_gzip())
    check(swiftgrpc_server_set_option(server, SWIFTGRPC_OPT_DEFAULT_COMPRESSION, SWIFTGRPC_COMPRESS_GZIP), "gzip");
  static const struct { const char *name; int kind; } methods[] = {
      {"/swiftgrpc.examples.Echo/Get", SWIFTGRPC_KIND_UNARY},
      {"/swiftgrpc.examples.Echo/Stream", SWIFTGRPC_KIND_SERVER_STREAMING},
      {"/swiftgrpc.examples.Echo/Ping", SWIFTGRPC_KIND_BIDI_STREAMING},
  };
  if (pull) check(swiftgrpc_queue_create(rt, &queue), "queue_create");
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
    if (pull) check(swiftgrpc_register_host_queue(server, methods[i].name, methods[i].kind, queue), "register");
    else if (batch) check(swiftgrpc_register_host_batch_fn(server, methods[i].name, methods[i].kind, on_batch, NULL), "register");
    else check(swiftgrpc_register_host_fn(server, methods[i].name, methods[i].kind,
                                          inl ? on_event_inline : on_event, NULL), "register");
  }
  char address[64];
  snprintf(address, sizeof address, "127.0.0.1:%d", port);
  int bound = 0;
  swiftgrpc_server_credentials creds = 0;
  if (tls_cert && tls_key) {
    swiftgrpc_tls_identity id;
    id.certificate_chain = slurp(tls_cert, &id.certificate_chain_len);
    id.private_key = slurp(tls_key, &id.private_key_len);
    check(swiftgrpc_server_credentials_create(&id, 1, NULL, 0, SWIFTGRPC_CLIENT_AUTH_NONE, &creds), "credentials");
    free((void *)id.certificate_chain);
    free((void *)id.private_key);
    check(swiftgrpc_server_listen_secure(server, address, creds, &bound), "listen_secure");
  } else {
    check(swiftgrpc_server_listen(server, address, &bound), "listen");
  }
  pthread_t threads[64];
  if (inl) workers = 0;
  if (workers > 64) workers = 64;
  for (int i = 0; i < workers; i++) pthread_create(&threads[i], NULL, worker,
                                                   (void *)(intptr_t)(pull ? MODE_PULL : batch ? MODE_BATCH : MODE_PUSH));
  check(swiftgrpc_server_start(server), "start");
  printf("listening on %d (%s, %d workers)\n", bound, pull ? "pull" : inl ? "inline" : batch ? "batch" : "push", workers);
  fflush(stdout);

  int sig;
  sigwait(&set, &sig);
  check(swiftgrpc_server_shutdown(server, 1000), "shutdown");
  if (pull) swiftgrpc_queue_shutdown(queue);
  pthread_mutex_lock(&jobs_lock);
  jobs_closed = 1;
  pthread_cond_broadcast(&jobs_cond);
  pthread_mutex_unlock(&jobs_lock);
  for (int i = 0; i < workers; i++) pthread_join(threads[i], NULL);
  swiftgrpc_server_destroy(server);
  swiftgrpc_runtime_destroy(rt);
  return 0;
}
