/*
 * interop_server.c — the C host the interop tests (Tests/interop, grpcio clients) call.
 * Service swiftgrpc.test.Test, opaque bytes; every answer comes from worker threads (the
 * host's own), except where a method exists to test answering inside the host fn.
 *
 *   Unary         echo; request metadata echoed as initial ("echo-" + key) and trailing
 *                 ("trailer-" + key) metadata
 *   Status        request "CODE:text" -> status CODE with message text (bytes exact); request
 *                 metadata x-details-bin comes back as the grpc-status-details-bin trailer
 *   Slow          request "MS" (default 50) -> echo after MS milliseconds, on a timer thread
 *   Never         never answered (shutdown tests)
 *   ServerStream  request "N:SIZE" -> N messages of SIZE bytes
 *   ClientStream  reads every message -> "COUNT:BYTES"
 *   Bidi          echoes each message; completes on half-close
 *   Log           text of the host's event log: one "CANCELLED <method> <code>" line per cancel
 *   Misuse        exercises wrong calls on its token; replies with the result codes
 *   Reenter       calls shutdown/destroy inside the host fn; replies with the result codes
 *   Inline        unary echo answered inside the host fn (no thread hop)
 *   Hold          client streaming; never reads a message (back-pressure tests)
 *   Stats         "sent=N": response messages ServerStream has sent (accepted by the library)
 *   Auth          ":authority=..." and the call's auth properties, "name=value" lines
 *                 (x509_pem_cert left out)
 *   Rotate        replaces the TLS certificate with --tls-rotate-cert/-key (new connections)
 *
 * A ServerStream call cancelled while streaming tries one more send and logs its result
 * ("SEND_AFTER_CANCEL rc"): the library must refuse it.
 *
 * usage: interop_server [--port N] [--pull | --batch] [--grace-ms N] [--exit-after-ms N] [--loops N]
 *                       [--opt NAME=VALUE]... [--trace] [--tls-cert F --tls-key F
 *                       [--tls-client-roots F] [--tls-client-auth none|request|require]
 *                       [--tls-rotate-cert F --tls-rotate-key F [--tls-fetch-rotate-after N]]
 *                       [--also-plain]]
 *   --tls-fetch-rotate-after N: a credentials fetcher rotates to --tls-rotate-cert when the
 *   (N+1)th connection arrives; each fetch logs "FETCH <credentials handle>".
 *   --tls-*: the port is TLS with that certificate and key (PEM files); --also-plain listens on
 *   a second, plaintext port too ("listening on TLS_PORT PLAIN_PORT").
 *   --opt: a server option by the end of its SWIFTGRPC_OPT_ name, lower case with dashes
 *   (max-concurrent-streams=10, max-metadata-size=..., handshake-timeout-ms=...,
 *   max-control-frames-per-second=..., max-recv-message-size=...).
 *   --trace: every log line also goes to stderr at once, prefixed with swiftgrpc_now_ns() in ms.
 * Prints "listening on PORT"; on SIGTERM or stdin EOF: shutdown(grace), destroy, then prints
 * "stopped shutdown_ms=... cancelled=... callbacks_after_destroy=..." and exits 0.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "swiftgrpc.h"
#include "swiftgrpc_util.h"
#include "read_file.h"

static swiftgrpc_runtime runtime;
static swiftgrpc_server server;
static swiftgrpc_queue queue;
static volatile int destroyed;
static volatile int callbacks_after_destroy;
static volatile int cancelled_count;
static volatile long stream_sent;
static int trace;
static swiftgrpc_server_credentials server_creds;
static swiftgrpc_tls_identity rotate_identity;
static long fetches, fetch_rotate_after = -1;

/* ---- event log -------------------------------------------------------------------------- */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char event_log[1 << 16];
static size_t event_log_len;

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void log_line(const char *fmt, ...) {
  pthread_mutex_lock(&log_lock);
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(event_log + event_log_len, sizeof event_log - event_log_len, fmt, ap);
  va_end(ap);
  if (n > 0 && trace) {
    fprintf(stderr, "%lld %.*s", (long long)(swiftgrpc_now_ns() / 1000000), n,
            event_log + event_log_len);
    fflush(stderr);
  }
  if (n > 0 && event_log_len + (size_t)n < sizeof event_log) event_log_len += (size_t)n;
  pthread_mutex_unlock(&log_lock);
}

/* ---- job queue (push mode) -------------------------------------------------------------- */
typedef struct job { swiftgrpc_event *ev; int64_t due_ns; struct job *next; } job;
static job *jobs_head, *jobs_tail;
static int jobs_closed;
static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cond = PTHREAD_COND_INITIALIZER;

static void jobs_push(swiftgrpc_event *ev) {
  job *j = calloc(1, sizeof *j);
  j->ev = ev;
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

/* ---- delayed completions (Slow), ordered by due time ------------------------------------ */
static job *delayed;
static int delayed_closed;
static pthread_mutex_t delayed_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t delayed_cond;

static void delayed_push(swiftgrpc_event *ev, int64_t due_ns) {
  job *j = calloc(1, sizeof *j);
  j->ev = ev;
  j->due_ns = due_ns;
  pthread_mutex_lock(&delayed_lock);
  job **p = &delayed;
  while (*p && (*p)->due_ns <= due_ns) p = &(*p)->next;
  j->next = *p;
  *p = j;
  pthread_cond_signal(&delayed_cond);
  pthread_mutex_unlock(&delayed_lock);
}

static void *delay_thread(void *arg) {
  (void)arg;
  pthread_mutex_lock(&delayed_lock);
  while (!delayed_closed) {
    if (!delayed) { pthread_cond_wait(&delayed_cond, &delayed_lock); continue; }
    int64_t now = swiftgrpc_now_ns();
    if (delayed->due_ns > now) {
      struct timespec ts = {(time_t)(delayed->due_ns / 1000000000), (long)(delayed->due_ns % 1000000000)};
      pthread_cond_timedwait(&delayed_cond, &delayed_lock, &ts);
      continue;
    }
    job *j = delayed;
    delayed = j->next;
    pthread_mutex_unlock(&delayed_lock);
    /* May fail with SWIFTGRPC_E_TOKEN_CLOSED if the deadline passed or the client cancelled. */
    swiftgrpc_host_complete(server, j->ev->token, j->ev->message, j->ev->message_len, 0, NULL, NULL, 0);
    free(j->ev);
    free(j);
    pthread_mutex_lock(&delayed_lock);
  }
  pthread_mutex_unlock(&delayed_lock);
  return NULL;
}

/* ---- the service ------------------------------------------------------------------------ */
/* The decimal number at the start of `n` bytes (messages are not NUL-terminated). */
static long number_at(const char *p, size_t n) {
  long v = 0;
  for (size_t i = 0; i < n && p[i] >= '0' && p[i] <= '9' && v < 100000000; i++) v = v * 10 + (p[i] - '0');
  return v;
}

static int is(const swiftgrpc_event *ev, const char *name) {
  const char *slash = strrchr(ev->method, '/');
  return slash && strcmp(slash + 1, name) == 0;
}

static void unary_echo(const swiftgrpc_event *ev) {
  size_t n = ev->metadata_count;
  swiftgrpc_metadata *initial = calloc(n + 1, sizeof *initial);
  swiftgrpc_metadata *trailing = calloc(n + 1, sizeof *trailing);
  char **keys = calloc(2 * n + 1, sizeof *keys);
  size_t k = 0, count = 0;
  for (size_t i = 0; i < n; i++) {
    const swiftgrpc_metadata *m = &ev->metadata[i];
    if (m->key_len == 10 && memcmp(m->key, "user-agent", 10) == 0) continue;
    keys[k] = malloc(m->key_len + 16);
    snprintf(keys[k], m->key_len + 16, "echo-%.*s", (int)m->key_len, m->key);
    initial[count] = swiftgrpc_md_bytes(keys[k++], m->value, m->value_len);
    keys[k] = malloc(m->key_len + 16);
    snprintf(keys[k], m->key_len + 16, "trailer-%.*s", (int)m->key_len, m->key);
    trailing[count] = swiftgrpc_md_bytes(keys[k++], m->value, m->value_len);
    count++;
  }
  if (count) swiftgrpc_call_send_initial_metadata(server, ev->token, initial, count);
  swiftgrpc_host_complete(server, ev->token, ev->message, ev->message_len, 0, NULL, trailing, count);
  for (size_t i = 0; i < k; i++) free(keys[i]);
  free(keys);
  free(initial);
  free(trailing);
}

static void status_reply(const swiftgrpc_event *ev) {
  char *text = malloc(ev->message_len + 1);
  memcpy(text, ev->message, ev->message_len);
  text[ev->message_len] = 0;
  char *colon = strchr(text, ':');
  int code = atoi(text);
  /* A rich status: request metadata x-details-bin goes back as the grpc-status-details-bin
     trailer (a serialized google.rpc.Status), as a C host sets it. */
  swiftgrpc_metadata details[1];
  size_t ndetails = 0;
  for (size_t i = 0; i < ev->metadata_count && ndetails == 0; i++)
    if (ev->metadata[i].key_len == 13 && memcmp(ev->metadata[i].key, "x-details-bin", 13) == 0)
      details[ndetails++] =
          swiftgrpc_md_bytes("grpc-status-details-bin", ev->metadata[i].value, ev->metadata[i].value_len);
  int rc = swiftgrpc_host_complete(server, ev->token, NULL, 0, code, colon ? colon + 1 : "",
                                   ndetails ? details : NULL, ndetails ? 1 : 0);
  if (rc != 0) fprintf(stderr, "status_reply: %s\n", swiftgrpc_last_error());
  free(text);
}

static void misuse(const swiftgrpc_event *ev) {
  char report[1024];
  size_t len = 0;
  uint64_t t = ev->token;
#define TRY(label, expr) len += (size_t)snprintf(report + len, sizeof report - len, "%s=%d\n", label, (expr))
  TRY("read_on_unary", swiftgrpc_call_read(server, t));
  swiftgrpc_metadata bad_key = swiftgrpc_md("Bad Key", "v");
  TRY("bad_key", swiftgrpc_call_send_initial_metadata(server, t, &bad_key, 1));
  swiftgrpc_metadata reserved = swiftgrpc_md("grpc-status", "0");
  TRY("reserved_key", swiftgrpc_call_send_initial_metadata(server, t, &reserved, 1));
  swiftgrpc_metadata bad_value = swiftgrpc_md("x-text", "line\nbreak");
  TRY("bad_value", swiftgrpc_call_send_initial_metadata(server, t, &bad_value, 1));
  TRY("null_metadata", swiftgrpc_call_send_initial_metadata(server, t, NULL, 1));
  TRY("bad_utf8", swiftgrpc_host_complete(server, t, NULL, 0, 0, "\xff\xfe", NULL, 0));
  TRY("bad_code", swiftgrpc_host_complete(server, t, NULL, 0, 17, NULL, NULL, 0));
  TRY("null_message", swiftgrpc_call_send_message(server, t, NULL, 5));
  TRY("unknown_token", swiftgrpc_call_send_message(server, t + (1ull << 40), "x", 1));
  TRY("wrong_server", swiftgrpc_call_send_message(server + 1000, t, "x", 1));
  TRY("send_one", swiftgrpc_call_send_message(server, t, "first", 5));
  TRY("send_two", swiftgrpc_call_send_message(server, t, "second", 6));
  /* The call still works after all that: this reply carries the report as trailing metadata. */
  swiftgrpc_metadata md = swiftgrpc_md_bytes("report-bin", report, len);
  TRY("complete", swiftgrpc_host_complete(server, t, NULL, 0, 0, "ok", &md, 1));
  int again = swiftgrpc_host_complete(server, t, NULL, 0, 0, NULL, NULL, 0);
  int send_after = swiftgrpc_call_send_message(server, t, "late", 4);
  log_line("MISUSE again=%d send_after=%d\n", again, send_after);
#undef TRY
}

static void reenter(const swiftgrpc_event *ev) {
  char report[256];
  int a = swiftgrpc_server_shutdown(server, 0);
  int b = swiftgrpc_server_destroy(server);
  int c = swiftgrpc_runtime_destroy(runtime);
  int n = snprintf(report, sizeof report, "shutdown=%d destroy=%d runtime_destroy=%d", a, b, c);
  swiftgrpc_host_complete(server, ev->token, report, (size_t)n, 0, NULL, NULL, 0);
}

static void handle(swiftgrpc_event *ev) {
  if (ev->type == SWIFTGRPC_EVENT_CANCELLED) {
    __sync_fetch_and_add(&cancelled_count, 1);
    log_line("CANCELLED %s %d\n", ev->method, ev->status_code);
    if (is(ev, "ServerStream"))
      log_line("SEND_AFTER_CANCEL %d\n", swiftgrpc_call_send_message(server, ev->token, "x", 1));
    free(ev);
    return;
  }
  if (is(ev, "Unary")) unary_echo(ev);
  else if (is(ev, "Status")) status_reply(ev);
  else if (is(ev, "Slow")) {
    long ms = number_at(ev->message, ev->message_len);
    if (ms <= 0) ms = 50;
    delayed_push(ev, swiftgrpc_now_ns() + ms * 1000000LL);
    return; /* ownership moved */
  } else if (is(ev, "Never")) {
    log_line("NEVER %llu\n", (unsigned long long)ev->token);
  } else if (is(ev, "ServerStream")) {
    /* N messages of SIZE bytes, one at a time: the next after each SEND_DONE. */
    static pthread_mutex_t l = PTHREAD_MUTEX_INITIALIZER;
    static struct { uint64_t token; long left, sent; size_t size; } table[4096];
    size_t slot = (size_t)(ev->token >> 8) % 4096;
    pthread_mutex_lock(&l);
    if (ev->type == SWIFTGRPC_EVENT_CALL) {
      const char *colon = memchr(ev->message, ':', ev->message_len);
      table[slot].token = ev->token;
      table[slot].left = number_at(ev->message, ev->message_len);
      table[slot].sent = 0;
      table[slot].size =
          colon ? (size_t)number_at(colon + 1, ev->message_len - (size_t)(colon + 1 - ev->message)) : 8;
    }
    long left = table[slot].left--, index = table[slot].sent++;
    size_t size = table[slot].size;
    pthread_mutex_unlock(&l);
    if (left <= 0) {
      swiftgrpc_host_complete(server, ev->token, NULL, 0, 0, NULL, NULL, 0);
    } else {
      char *buf = malloc(size + 1);
      memset(buf, 'a' + (int)(index % 26), size);
      if (swiftgrpc_call_send_message(server, ev->token, buf, size) == 0)
        __sync_fetch_and_add(&stream_sent, 1);
      free(buf);
    }
  } else if (is(ev, "ClientStream")) {
    /* State rides in a small table keyed by token. */
    static pthread_mutex_t l = PTHREAD_MUTEX_INITIALIZER;
    static struct { uint64_t token; long count, bytes; } table[4096];
    pthread_mutex_lock(&l);
    size_t slot = (size_t)(ev->token >> 8) % 4096;
    if (ev->type == SWIFTGRPC_EVENT_CALL) { table[slot].token = ev->token; table[slot].count = table[slot].bytes = 0; }
    else if (ev->type == SWIFTGRPC_EVENT_MESSAGE) { table[slot].count++; table[slot].bytes += (long)ev->message_len; }
    long count = table[slot].count, bytes = table[slot].bytes;
    pthread_mutex_unlock(&l);
    if (ev->type == SWIFTGRPC_EVENT_HALF_CLOSE) {
      char reply[64];
      int n = snprintf(reply, sizeof reply, "%ld:%ld", count, bytes);
      swiftgrpc_host_complete(server, ev->token, reply, (size_t)n, 0, NULL, NULL, 0);
    } else {
      swiftgrpc_call_read(server, ev->token);
    }
  } else if (is(ev, "Bidi")) {
    /* Echo each message; read the next once the echo left (SEND_DONE). */
    if (ev->type == SWIFTGRPC_EVENT_MESSAGE) {
      swiftgrpc_call_send_message(server, ev->token, ev->message, ev->message_len);
    } else if (ev->type == SWIFTGRPC_EVENT_HALF_CLOSE) {
      swiftgrpc_host_complete(server, ev->token, NULL, 0, 0, NULL, NULL, 0);
    } else {
      swiftgrpc_call_read(server, ev->token);
    }
  } else if (is(ev, "Log")) {
    pthread_mutex_lock(&log_lock);
    swiftgrpc_host_complete(server, ev->token, event_log, event_log_len, 0, NULL, NULL, 0);
    pthread_mutex_unlock(&log_lock);
  } else if (is(ev, "Auth")) {
    char reply[8192];
    size_t n = (size_t)snprintf(reply, sizeof reply, ":authority=%.*s\n", (int)ev->authority_len, ev->authority);
    for (size_t k = 0; k < ev->auth_count; k++) {
      const swiftgrpc_metadata *a = &ev->auth[k];
      if (a->key_len == 13 && !memcmp(a->key, "x509_pem_cert", 13)) continue;
      n += (size_t)snprintf(reply + n, sizeof reply - n, "%.*s=%.*s\n", (int)a->key_len, a->key,
                            (int)a->value_len, a->value);
    }
    swiftgrpc_host_complete(server, ev->token, reply, n, 0, NULL, NULL, 0);
  } else if (is(ev, "Rotate")) {
    int rc = swiftgrpc_server_credentials_update(server_creds, &rotate_identity, 1, NULL, 0,
                                                 SWIFTGRPC_CLIENT_AUTH_NONE);
    swiftgrpc_host_complete(server, ev->token, "rotated", 7, rc == 0 ? 0 : SWIFTGRPC_STATUS_INTERNAL,
                            rc == 0 ? NULL : swiftgrpc_last_error(), NULL, 0);
  } else if (is(ev, "Stats")) {
    char reply[64];
    int n = snprintf(reply, sizeof reply, "sent=%ld", __sync_fetch_and_add(&stream_sent, 0));
    swiftgrpc_host_complete(server, ev->token, reply, (size_t)n, 0, NULL, NULL, 0);
  } else if (is(ev, "Misuse") && ev->type == SWIFTGRPC_EVENT_CALL) misuse(ev); /* not its SEND_DONE */
  else if (is(ev, "Hold")) log_line("HOLD %llu\n", (unsigned long long)ev->token);
  free(ev);
}

static void on_event(const swiftgrpc_event *ev, void *user_data) {
  (void)user_data;
  if (destroyed) callbacks_after_destroy++;
  if (ev->type == SWIFTGRPC_EVENT_CALL && is(ev, "Inline")) {
    swiftgrpc_host_complete(server, ev->token, ev->message, ev->message_len, 0, NULL, NULL, 0);
    return;
  }
  if (ev->type == SWIFTGRPC_EVENT_CALL && is(ev, "Reenter")) {
    reenter(ev);
    return;
  }
  swiftgrpc_event *copy = swiftgrpc_event_copy(ev);
  if (copy) jobs_push(copy);
}

static int pull_mode, batch_mode;

/* --batch: the events of a loop iteration in one call (swiftgrpc_host_batch_fn), each handled
   as on_event does. */
static void on_batch(const swiftgrpc_event *const *events, size_t count, void *user_data) {
  if (count == 0) log_line("BATCH empty\n");
  for (size_t i = 0; i < count; i++) on_event(events[i], user_data);
}

static void *worker(void *arg) {
  (void)arg;
  for (;;) {
    swiftgrpc_event *ev = NULL;
    if (pull_mode) {
      swiftgrpc_event *owned = NULL;
      if (swiftgrpc_queue_next(queue, -1, &owned) != 0) return NULL;
      ev = swiftgrpc_event_copy(owned); /* handle() frees with free() */
      swiftgrpc_event_free(owned);
    } else if (!(ev = jobs_pop())) {
      return NULL;
    }
    handle(ev);
  }
}

static void check(int rc, const char *what) {
  if (rc != 0) {
    fprintf(stderr, "%s: %s (%s)\n", what, swiftgrpc_errstr(rc), swiftgrpc_last_error());
    exit(1);
  }
}

static volatile sig_atomic_t stop_requested;
/* The credentials fetcher: runs on a loop thread before each TLS handshake. */
static void on_fetch(const swiftgrpc_event *ev, void *user_data) {
  (void)user_data;
  if (ev->type != SWIFTGRPC_EVENT_CREDENTIALS_FETCH || ev->token != server_creds) {
    log_line("FETCH bad event %d\n", ev->type);
    return;
  }
  log_line("FETCH %llu\n", (unsigned long long)ev->token);
  if (++fetches == fetch_rotate_after + 1)
    swiftgrpc_server_credentials_update(server_creds, &rotate_identity, 1, NULL, 0, SWIFTGRPC_CLIENT_AUTH_NONE);
}

static void on_signal(int sig) { (void)sig; stop_requested = 1; }

int main(int argc, char **argv) {
  int port = 0, workers = 4, loops = 0, nopts = 0;
  long grace_ms = 1000, exit_after_ms = -1;
  const char *listen_addr = NULL, *opts[16];
  const char *tls_cert = NULL, *tls_key = NULL, *tls_roots = NULL, *rot_cert = NULL, *rot_key = NULL;
  int client_auth = SWIFTGRPC_CLIENT_AUTH_NONE, also_plain = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--listen") && i + 1 < argc) listen_addr = argv[++i];
    else if (!strcmp(argv[i], "--pull")) pull_mode = 1;
    else if (!strcmp(argv[i], "--batch")) batch_mode = 1;
    else if (!strcmp(argv[i], "--grace-ms") && i + 1 < argc) grace_ms = atol(argv[++i]);
    else if (!strcmp(argv[i], "--exit-after-ms") && i + 1 < argc) exit_after_ms = atol(argv[++i]);
    else if (!strcmp(argv[i], "--loops") && i + 1 < argc) loops = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--opt") && i + 1 < argc && nopts < 16) opts[nopts++] = argv[++i];
    else if (!strcmp(argv[i], "--trace")) trace = 1;
    else if (!strcmp(argv[i], "--tls-cert") && i + 1 < argc) tls_cert = argv[++i];
    else if (!strcmp(argv[i], "--tls-key") && i + 1 < argc) tls_key = argv[++i];
    else if (!strcmp(argv[i], "--tls-client-roots") && i + 1 < argc) tls_roots = argv[++i];
    else if (!strcmp(argv[i], "--tls-rotate-cert") && i + 1 < argc) rot_cert = argv[++i];
    else if (!strcmp(argv[i], "--tls-rotate-key") && i + 1 < argc) rot_key = argv[++i];
    else if (!strcmp(argv[i], "--also-plain")) also_plain = 1;
    else if (!strcmp(argv[i], "--tls-fetch-rotate-after") && i + 1 < argc) fetch_rotate_after = atol(argv[++i]);
    else if (!strcmp(argv[i], "--tls-client-auth") && i + 1 < argc) {
      const char *m = argv[++i];
      client_auth = !strcmp(m, "require") ? SWIFTGRPC_CLIENT_AUTH_REQUIRE
                  : !strcmp(m, "request") ? SWIFTGRPC_CLIENT_AUTH_REQUEST : SWIFTGRPC_CLIENT_AUTH_NONE;
    }
  }
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&delayed_cond, &attr);

  check(swiftgrpc_runtime_create((uint32_t)loops, &runtime), "runtime_create");
  check(swiftgrpc_server_create(runtime, &server), "server_create");
  static const struct { const char *name; int option; } names[] = {
      {"max-recv-message-size", SWIFTGRPC_OPT_MAX_RECV_MESSAGE_SIZE},
      {"max-concurrent-streams", SWIFTGRPC_OPT_MAX_CONCURRENT_STREAMS},
      {"max-metadata-size", SWIFTGRPC_OPT_MAX_METADATA_SIZE},
      {"handshake-timeout-ms", SWIFTGRPC_OPT_HANDSHAKE_TIMEOUT_MS},
      {"max-control-frames-per-second", SWIFTGRPC_OPT_MAX_CONTROL_FRAMES_PER_SECOND},
  };
  for (int i = 0; i < nopts; i++) {
    const char *eq = strchr(opts[i], '=');
    size_t k = 0, len = eq ? (size_t)(eq - opts[i]) : 0;
    while (k < sizeof names / sizeof names[0] && !(strlen(names[k].name) == len && !strncmp(names[k].name, opts[i], len))) k++;
    if (!eq || k == sizeof names / sizeof names[0]) {
      fprintf(stderr, "unknown --opt %s\n", opts[i]);
      return 2;
    }
    check(swiftgrpc_server_set_option(server, names[k].option, atoll(eq + 1)), opts[i]);
  }
  if (pull_mode) check(swiftgrpc_queue_create(runtime, &queue), "queue_create");
  static const struct { const char *name; int kind; } methods[] = {
      {"Unary", SWIFTGRPC_KIND_UNARY}, {"Status", SWIFTGRPC_KIND_UNARY},
      {"Slow", SWIFTGRPC_KIND_UNARY}, {"Never", SWIFTGRPC_KIND_UNARY},
      {"ServerStream", SWIFTGRPC_KIND_SERVER_STREAMING},
      {"ClientStream", SWIFTGRPC_KIND_CLIENT_STREAMING}, {"Bidi", SWIFTGRPC_KIND_BIDI_STREAMING},
      {"Log", SWIFTGRPC_KIND_UNARY}, {"Misuse", SWIFTGRPC_KIND_UNARY},
      {"Reenter", SWIFTGRPC_KIND_UNARY}, {"Inline", SWIFTGRPC_KIND_UNARY},
      {"Hold", SWIFTGRPC_KIND_CLIENT_STREAMING}, {"Stats", SWIFTGRPC_KIND_UNARY},
      {"Auth", SWIFTGRPC_KIND_UNARY}, {"Rotate", SWIFTGRPC_KIND_UNARY},
  };
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
    char path[128];
    snprintf(path, sizeof path, "/swiftgrpc.test.Test/%s", methods[i].name);
    int push_only = !strcmp(methods[i].name, "Inline") || !strcmp(methods[i].name, "Reenter");
    if (pull_mode && !push_only) check(swiftgrpc_register_host_queue(server, path, methods[i].kind, queue), path);
    else if (batch_mode) check(swiftgrpc_register_host_batch_fn(server, path, methods[i].kind, on_batch, NULL), path);
    else check(swiftgrpc_register_host_fn(server, path, methods[i].kind, on_event, NULL), path);
  }
  char address[256];
  if (listen_addr) snprintf(address, sizeof address, "%s", listen_addr);
  else snprintf(address, sizeof address, "127.0.0.1:%d", port);
  int bound = 0, plain = 0;
  if (tls_cert) {
    swiftgrpc_tls_identity id = {0};
    id.certificate_chain = read_file(tls_cert, &id.certificate_chain_len);
    id.private_key = read_file(tls_key, &id.private_key_len);
    size_t roots_len = 0;
    char *roots = tls_roots ? read_file(tls_roots, &roots_len) : NULL;
    check(swiftgrpc_server_credentials_create(&id, 1, roots, roots_len, client_auth, &server_creds),
          "server_credentials_create");
    free((void *)id.certificate_chain); /* the credentials keep their own copy */
    free((void *)id.private_key);
    free(roots);
    if (rot_cert) {
      rotate_identity.certificate_chain = read_file(rot_cert, &rotate_identity.certificate_chain_len);
      rotate_identity.private_key = read_file(rot_key, &rotate_identity.private_key_len);
    }
    if (fetch_rotate_after >= 0) check(swiftgrpc_server_credentials_set_fetcher(server_creds, on_fetch, NULL), "set_fetcher");
    check(swiftgrpc_server_listen_secure(server, address, server_creds, &bound), "listen_secure");
    if (also_plain) check(swiftgrpc_server_listen(server, "127.0.0.1:0", &plain), "listen plain");
  } else {
    check(swiftgrpc_server_listen(server, address, &bound), "listen");
  }
  pthread_t threads[16], delayer;
  for (int i = 0; i < workers; i++) pthread_create(&threads[i], NULL, worker, NULL);
  pthread_create(&delayer, NULL, delay_thread, NULL);
  check(swiftgrpc_server_start(server), "start");
  if (plain) printf("listening on %d %d\n", bound, plain);
  else printf("listening on %d\n", bound);
  fflush(stdout);

  if (exit_after_ms >= 0) {
    /* Failure mode 6c: the host process exits while serving, without stopping anything. */
    usleep((useconds_t)exit_after_ms * 1000);
    printf("exiting without shutdown\n");
    fflush(stdout);
    exit(0);
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  char buf[64];
  while (!stop_requested) {
    if (read(0, buf, sizeof buf) == 0) break;
  }
  int64_t t0 = swiftgrpc_now_ns();
  check(swiftgrpc_server_shutdown(server, grace_ms), "shutdown");
  check(swiftgrpc_server_destroy(server), "destroy");
  destroyed = 1;
  int64_t t1 = swiftgrpc_now_ns();
  if (pull_mode) swiftgrpc_queue_shutdown(queue);
  pthread_mutex_lock(&jobs_lock);
  jobs_closed = 1;
  pthread_cond_broadcast(&jobs_cond);
  pthread_mutex_unlock(&jobs_lock);
  for (int i = 0; i < workers; i++) pthread_join(threads[i], NULL);
  pthread_mutex_lock(&delayed_lock);
  delayed_closed = 1;
  pthread_cond_signal(&delayed_cond);
  pthread_mutex_unlock(&delayed_lock);
  pthread_join(delayer, NULL);
  check(swiftgrpc_runtime_destroy(runtime), "runtime_destroy");
  check(swiftgrpc_server_credentials_destroy(server_creds), "server_credentials_destroy");
  free((void *)rotate_identity.certificate_chain);
  free((void *)rotate_identity.private_key);
  printf("stopped shutdown_ms=%lld cancelled=%d callbacks_after_destroy=%d\n",
         (long long)((t1 - t0) / 1000000), cancelled_count, callbacks_after_destroy);
  return 0;
}
