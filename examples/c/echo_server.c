/*
 * echo_server.c — a gRPC server in C on libswiftgrpc, implementing all four RPC kinds of
 * swiftgrpc.examples.Echo with opaque byte payloads:
 *
 *   Get      unary             replies with the request
 *   Expand   server streaming  one reply per space-separated word of the request
 *   Collect  client streaming  replies with the requests joined by spaces
 *   Update   bidi streaming    echoes each request as it comes
 *
 * The host fn never does the work itself: it copies the event and hands it to worker threads,
 * which answer with swiftgrpc_call_* / swiftgrpc_host_complete. With --pull the workers take
 * events from a swiftgrpc_queue instead (no callback at all). Streams are paced the way the
 * library asks: one response message at a time, the next after its SWIFTGRPC_EVENT_SEND_DONE,
 * so a client that reads slowly slows the server down instead of filling its memory.
 *
 * usage: echo_server [--port N] [--pull] [--workers N] [--verbose] [--until-signal]
 * Prints "listening on PORT" once serving; stops gracefully on SIGINT/SIGTERM, or on EOF on
 * stdin unless --until-signal is given.
 */
#define _POSIX_C_SOURCE 200809L /* sigwait, pthread_sigmask under -std=c11 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "swiftgrpc.h"
#include "swiftgrpc_util.h"

static swiftgrpc_server server;
static swiftgrpc_queue queue;
static int verbose;

/* ---- a job queue of copied events, for push mode ---------------------------------------- */
typedef struct job { swiftgrpc_event *ev; struct job *next; } job;
static job *jobs_head, *jobs_tail;
static int jobs_closed;
static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cond = PTHREAD_COND_INITIALIZER;

static void jobs_push(swiftgrpc_event *ev) {
  job *j = malloc(sizeof *j);
  j->ev = ev;
  j->next = NULL;
  pthread_mutex_lock(&jobs_lock);
  if (jobs_tail) jobs_tail->next = j; else jobs_head = j;
  jobs_tail = j;
  pthread_cond_signal(&jobs_cond);
  pthread_mutex_unlock(&jobs_lock);
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

/* The host fn: runs on a library thread, so it only copies and hands off. */
static void on_event(const swiftgrpc_event *ev, void *user_data) {
  (void)user_data;
  swiftgrpc_event *copy = swiftgrpc_event_copy(ev);
  if (copy) jobs_push(copy);
}

/* ---- per-call state (token -> text): Collect joins requests, Expand walks the words -------- */
typedef struct callstate { uint64_t token; char *text; size_t len, pos; struct callstate *next; } callstate;
static callstate *calls;
static pthread_mutex_t calls_lock = PTHREAD_MUTEX_INITIALIZER;

static callstate *call_find(uint64_t token, int create) {
  pthread_mutex_lock(&calls_lock);
  callstate *c = calls;
  while (c && c->token != token) c = c->next;
  if (!c && create) {
    c = calloc(1, sizeof *c);
    c->token = token;
    c->next = calls;
    calls = c;
  }
  pthread_mutex_unlock(&calls_lock);
  return c;
}

static void call_remove(uint64_t token) {
  pthread_mutex_lock(&calls_lock);
  for (callstate **p = &calls; *p; p = &(*p)->next) {
    if ((*p)->token == token) {
      callstate *c = *p;
      *p = c->next;
      free(c->text);
      free(c);
      break;
    }
  }
  pthread_mutex_unlock(&calls_lock);
}

/* Expand: sends the next word, or completes the call when there is none. */
static void expand_next(callstate *c) {
  while (c->pos < c->len && c->text[c->pos] == ' ') c->pos++;
  if (c->pos >= c->len) {
    swiftgrpc_host_complete(server, c->token, NULL, 0, SWIFTGRPC_STATUS_OK, NULL, NULL, 0);
    call_remove(c->token);
    return;
  }
  const char *word = c->text + c->pos, *space = memchr(word, ' ', c->len - c->pos);
  size_t n = space ? (size_t)(space - word) : c->len - c->pos;
  c->pos += n;
  swiftgrpc_call_send_message(server, c->token, word, n); /* SEND_DONE brings us back here */
}

/* ---- the service ------------------------------------------------------------------------ */
static const char *method_name(const swiftgrpc_event *ev) {
  const char *slash = strrchr(ev->method, '/');
  return slash ? slash + 1 : ev->method;
}

static void handle(const swiftgrpc_event *ev) {
  const char *m = method_name(ev);
  if (verbose) {
    static const char *names[] = {"?", "CALL", "MESSAGE", "HALF_CLOSE", "CANCELLED",
                                  "?", "?", "?", "?", "SEND_DONE"};
    printf("[server] %-10s %s token=%llu peer=%s bytes=%zu\n", names[ev->type], ev->method,
           (unsigned long long)ev->token, ev->peer, ev->message_len);
    fflush(stdout);
  }
  if (ev->type == SWIFTGRPC_EVENT_CANCELLED) {
    call_remove(ev->token);
    return;
  }
  if (strcmp(m, "Get") == 0) {
    swiftgrpc_host_complete(server, ev->token, ev->message, ev->message_len, SWIFTGRPC_STATUS_OK,
                            NULL, NULL, 0);
  } else if (strcmp(m, "Expand") == 0) {
    callstate *c = call_find(ev->token, ev->type == SWIFTGRPC_EVENT_CALL);
    if (!c) return;
    if (ev->type == SWIFTGRPC_EVENT_CALL) {
      c->text = malloc(ev->message_len + 1);
      memcpy(c->text, ev->message, ev->message_len);
      c->len = ev->message_len;
    }
    expand_next(c); /* on CALL, then on each SEND_DONE */
  } else if (strcmp(m, "Collect") == 0) {
    if (ev->type == SWIFTGRPC_EVENT_CALL) {
      call_find(ev->token, 1);
      swiftgrpc_call_read(server, ev->token);
    } else if (ev->type == SWIFTGRPC_EVENT_MESSAGE) {
      callstate *c = call_find(ev->token, 1);
      c->text = realloc(c->text, c->len + ev->message_len + 2);
      if (c->len) c->text[c->len++] = ' ';
      memcpy(c->text + c->len, ev->message, ev->message_len);
      c->len += ev->message_len;
      swiftgrpc_call_read(server, ev->token);
    } else if (ev->type == SWIFTGRPC_EVENT_HALF_CLOSE) {
      callstate *c = call_find(ev->token, 1);
      swiftgrpc_host_complete(server, ev->token, c->text ? c->text : "", c->len,
                              SWIFTGRPC_STATUS_OK, NULL, NULL, 0);
      call_remove(ev->token);
    }
  } else if (strcmp(m, "Update") == 0) {
    /* Echo each request; read the next once the echo has left (SEND_DONE). */
    if (ev->type == SWIFTGRPC_EVENT_MESSAGE) {
      swiftgrpc_call_send_message(server, ev->token, ev->message, ev->message_len);
    } else if (ev->type == SWIFTGRPC_EVENT_HALF_CLOSE) {
      swiftgrpc_host_complete(server, ev->token, NULL, 0, SWIFTGRPC_STATUS_OK, NULL, NULL, 0);
    } else { /* CALL or SEND_DONE */
      swiftgrpc_call_read(server, ev->token);
    }
  }
}

static void *worker(void *arg) {
  int pull = (int)(intptr_t)arg;
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

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

int main(int argc, char **argv) {
  int port = 50051, pull = 0, workers = 2, until_signal = 0;
  const char *host = "127.0.0.1";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--host") && i + 1 < argc) host = argv[++i];
    else if (!strcmp(argv[i], "--pull")) pull = 1;
    else if (!strcmp(argv[i], "--workers") && i + 1 < argc) workers = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--verbose")) verbose = 1;
    else if (!strcmp(argv[i], "--until-signal")) until_signal = 1;
  }
  if (until_signal) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by every thread, library ones too */
  }
  swiftgrpc_runtime rt;
  check(swiftgrpc_runtime_create(0, &rt), "runtime_create");
  check(swiftgrpc_server_create(rt, &server), "server_create");
  static const struct { const char *name; int kind; } methods[] = {
      {"/swiftgrpc.examples.Echo/Get", SWIFTGRPC_KIND_UNARY},
      {"/swiftgrpc.examples.Echo/Expand", SWIFTGRPC_KIND_SERVER_STREAMING},
      {"/swiftgrpc.examples.Echo/Collect", SWIFTGRPC_KIND_CLIENT_STREAMING},
      {"/swiftgrpc.examples.Echo/Update", SWIFTGRPC_KIND_BIDI_STREAMING},
  };
  if (pull) check(swiftgrpc_queue_create(rt, &queue), "queue_create");
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
    if (pull) check(swiftgrpc_register_host_queue(server, methods[i].name, methods[i].kind, queue), "register");
    else check(swiftgrpc_register_host_fn(server, methods[i].name, methods[i].kind, on_event, NULL), "register");
  }
  char address[300];
  snprintf(address, sizeof address, "%s:%d", host, port);
  int bound = 0;
  check(swiftgrpc_server_listen(server, address, &bound), "listen");
  pthread_t threads[64];
  if (workers < 1) workers = 1;
  if (workers > 64) workers = 64;
  for (int i = 0; i < workers; i++) pthread_create(&threads[i], NULL, worker, (void *)(intptr_t)pull);
  check(swiftgrpc_server_start(server), "start");
  printf("listening on %d (%s mode, %d workers)\n", bound, pull ? "pull" : "push", workers);
  fflush(stdout);

  if (until_signal) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig;
    sigwait(&set, &sig);
  } else {
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    char buf[64];
    while (!stop_requested) {
      ssize_t n = read(0, buf, sizeof buf); /* EOF on stdin or a signal stops the server */
      if (n == 0) break;
    }
  }
  check(swiftgrpc_server_shutdown(server, 1000), "shutdown");
  if (pull) swiftgrpc_queue_shutdown(queue);
  pthread_mutex_lock(&jobs_lock);
  jobs_closed = 1;
  pthread_cond_broadcast(&jobs_cond);
  pthread_mutex_unlock(&jobs_lock);
  for (int i = 0; i < workers; i++) pthread_join(threads[i], NULL);
  swiftgrpc_server_destroy(server);
  swiftgrpc_runtime_destroy(rt);
  printf("server stopped\n");
  return 0;
}
