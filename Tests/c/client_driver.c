/*
 * client_driver.c — the C client the client interop tests (Tests/interop/test_client_*.py) run
 * against grpcio servers and our own. One call (or a batch) per run; every event is printed as a
 * line so the test can assert on the exact sequence.
 *
 *   client_driver --target T [options] call      one call, events printed in order
 *   client_driver --target T [options] concurrent N      N unary calls at once on one channel
 *   client_driver --target T [options] blocking-unary    swiftgrpc_unary_blocking
 *   client_driver --target T [options] blocking-stream   swiftgrpc_stream_* helpers
 *   client_driver --target T [options] states            connectivity states until READY
 *   client_driver --target T [options] bench N CONC      latency (CONC=1) or calls/s
 *
 * Options: --pull (events from a queue instead of a callback), --method M, --kind
 * unary|server|client|bidi, --req HEX (repeatable), --req-size N (one request of N bytes),
 * --md KEY=HEX (repeatable), --deadline-ms N, --wfr, --cancel-after N (cancel after N response
 * messages), --lb rr, --backoff-ms N, --keepalive-ms N, --max-recv N, --blocking (bench through
 * swiftgrpc_unary_blocking); TLS: --tls (a secure channel trusting the system's roots),
 * --tls-roots FILE, --tls-cert FILE --tls-key FILE (a client identity), --tls-name NAME; call
 * credentials: --token T (an access token on the channel), --call-token T (on each call, through
 * swiftgrpc_client_call_start_v2), --plugin-md KEY=VALUE or --plugin-fail MESSAGE (a plugin on the
 * channel; its requests print "PLUGIN method service_url").
 *
 * Output lines: "INITIAL key hex", "MESSAGE len hex-or-checksum", "END", "SEND_DONE code",
 * "STATUS code hex(message)", "RESPONSE len hex-or-checksum", "MD key hex", "TRAILER key hex".
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "swiftgrpc.h"
#include "swiftgrpc_blocking.h"
#include "swiftgrpc_util.h"
#include "read_file.h"

static swiftgrpc_runtime runtime;
static swiftgrpc_channel channel;
static swiftgrpc_queue queue;
static int pull_mode;

static void die(const char *what, int rc) {
  fprintf(stderr, "%s: %s (%d): %s\n", what, swiftgrpc_errstr(rc), rc, swiftgrpc_last_error());
  exit(2);
}
#define CHECK(what, expr)              \
  do {                                 \
    int rc_ = (expr);                  \
    if (rc_ != SWIFTGRPC_OK) die(what, rc_); \
  } while (0)
/* For operations on a running call: the call may end at any moment (connection loss, deadline),
   and then they return SWIFTGRPC_E_TOKEN_CLOSED; its STATUS event is on its way. */
#define OP(what, expr)                 \
  do {                                 \
    int rc_ = (expr);                  \
    if (rc_ == SWIFTGRPC_E_TOKEN_CLOSED) printf("CLOSED %s\n", what); /* the call ended first */ \
    else if (rc_ != SWIFTGRPC_OK) die(what, rc_); \
  } while (0)

/* ---- events: a FIFO filled by the push callback, or the pull queue ------------------------- */
typedef struct node { swiftgrpc_event *ev; struct node *next; } node;
static pthread_mutex_t fifo_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fifo_cond = PTHREAD_COND_INITIALIZER;
static node *fifo_head, *fifo_tail;

static void on_event(const swiftgrpc_event *ev, void *tag) {
  (void)tag;
  node *n = malloc(sizeof *n);
  n->ev = swiftgrpc_event_copy(ev);
  n->next = NULL;
  pthread_mutex_lock(&fifo_lock);
  if (fifo_tail) fifo_tail->next = n; else fifo_head = n;
  fifo_tail = n;
  pthread_cond_signal(&fifo_cond);
  pthread_mutex_unlock(&fifo_lock);
}

static swiftgrpc_event *next_event(void) {
  if (pull_mode) {
    swiftgrpc_event *ev = NULL;
    CHECK("queue_next", swiftgrpc_queue_next(queue, 60000, &ev));
    return ev;
  }
  pthread_mutex_lock(&fifo_lock);
  while (!fifo_head) pthread_cond_wait(&fifo_cond, &fifo_lock);
  node *n = fifo_head;
  fifo_head = n->next;
  if (!fifo_head) fifo_tail = NULL;
  pthread_mutex_unlock(&fifo_lock);
  swiftgrpc_event *ev = n->ev;
  free(n);
  return ev;
}

static void free_event(swiftgrpc_event *ev) {
  if (pull_mode) swiftgrpc_event_free(ev); else free(ev);
}

/* Call credentials of each call (--call-token): started through swiftgrpc_client_call_start_v2. */
static swiftgrpc_call_credentials call_creds;

static int start(const char *method, int kind, const swiftgrpc_metadata *md, size_t n,
                 const void *msg, size_t len, int64_t deadline, uint32_t flags, void *tag,
                 swiftgrpc_call *out) {
  if (!call_creds)
    return swiftgrpc_client_call_start(channel, method, kind, md, n, msg, len, deadline, flags,
                                       pull_mode ? queue : 0, pull_mode ? NULL : on_event, tag, out);
  swiftgrpc_call_args a = {sizeof a, method, kind, md, n, msg, len, deadline, flags,
                           pull_mode ? queue : 0, pull_mode ? NULL : on_event, tag, call_creds};
  return swiftgrpc_client_call_start_v2(channel, &a, out);
}

/* A call credentials plugin (--plugin-md KEY=VALUE or --plugin-fail MESSAGE): answers each
   request inside its fn, which the library allows. */
static const char *plugin_key, *plugin_value, *plugin_fail;
static void plugin_fn(const swiftgrpc_event *ev, void *user_data) {
  (void)user_data;
  printf("PLUGIN %.*s %.*s\n", (int)ev->method_len, ev->method, (int)ev->authority_len, ev->authority);
  if (plugin_fail) {
    swiftgrpc_call_credentials_answer(ev->token, NULL, 0, SWIFTGRPC_STATUS_PERMISSION_DENIED, plugin_fail);
  } else {
    swiftgrpc_metadata md = swiftgrpc_md(plugin_key, plugin_value);
    swiftgrpc_call_credentials_answer(ev->token, &md, 1, 0, NULL);
  }
}

/* ---- printing -------------------------------------------------------------------------- */
static void print_hex(const char *p, size_t n) {
  if (n == 0) { printf("-"); return; }
  for (size_t i = 0; i < n; i++) printf("%02x", (unsigned char)p[i]);
}

static void print_payload(const char *p, size_t n) {
  printf("%zu ", n);
  if (n <= 256) { print_hex(p, n); return; }
  uint32_t sum = 2166136261u; /* FNV-1a, so large payloads can be compared */
  for (size_t i = 0; i < n; i++) sum = (sum ^ (unsigned char)p[i]) * 16777619u;
  printf("fnv:%08x", sum);
}

static void print_md(const char *label, const swiftgrpc_metadata *md, size_t n) {
  for (size_t i = 0; i < n; i++) {
    printf("%s %.*s ", label, (int)md[i].key_len, md[i].key);
    print_hex(md[i].value, md[i].value_len);
    printf("\n");
  }
}

/* ---- options --------------------------------------------------------------------------- */
static const char *method = "/swiftgrpc.test.Test/Unary";
static int kind = SWIFTGRPC_KIND_UNARY;
static char *reqs[256];
static size_t req_lens[256];
static int nreqs;
static swiftgrpc_metadata mds[32];
static int nmds;
static int64_t deadline_ms = -1;
static uint32_t flags;
static int cancel_after = -1;
/* Reads kept outstanding on a server-streaming call, sends on a client-streaming one. */
static int read_window = 1, send_window = 1;
static int blocking;

static char *unhex(const char *h, size_t *len) {
  size_t n = strlen(h) / 2;
  char *out = malloc(n + 1);
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    sscanf(h + 2 * i, "%2x", &v);
    out[i] = (char)v;
  }
  *len = n;
  return out;
}

static int64_t deadline_ns(void) {
  return deadline_ms < 0 ? SWIFTGRPC_DEADLINE_DEFAULT : swiftgrpc_now_ns() + deadline_ms * 1000000;
}

static double now_ms(void) { return (double)swiftgrpc_now_ns() / 1e6; }

/* ---- scenarios ------------------------------------------------------------------------- */
static int scenario_call(void) {
  swiftgrpc_call call;
  const char *first = nreqs > 0 ? reqs[0] : "";
  size_t first_len = nreqs > 0 ? req_lens[0] : 0;
  int client_streams = kind == SWIFTGRPC_KIND_CLIENT_STREAMING || kind == SWIFTGRPC_KIND_BIDI_STREAMING;
  int server_streams = kind == SWIFTGRPC_KIND_SERVER_STREAMING || kind == SWIFTGRPC_KIND_BIDI_STREAMING;
  double t0 = now_ms();
  int rc = start(method, kind, mds, (size_t)nmds, client_streams ? NULL : first,
                 client_streams ? 0 : first_len, deadline_ns(), flags, NULL, &call);
  if (rc != SWIFTGRPC_OK) die("call_start", rc);
  printf("STARTED\n");
  fflush(stdout);
  int sent = 0, received = 0, reading = 0, sending = 0, half_closed = !client_streams;
  /* CLIENT_STREAMING with --send-window W: W sends outstanding, half-close after the last. */
  int windowed = kind == SWIFTGRPC_KIND_CLIENT_STREAMING && send_window > 1;
  if (client_streams && nreqs > 0) {
    do {
      OP("send", swiftgrpc_client_send_message(channel, call, reqs[sent], req_lens[sent]));
      sent++;
      sending++;
    } while (windowed && sent < nreqs && sending < send_window);
    if (windowed && sent == nreqs) { OP("half_close", swiftgrpc_client_half_close(channel, call)); half_closed = 1; }
  }
  else if (client_streams) { OP("half_close", swiftgrpc_client_half_close(channel, call)); half_closed = 1; }
  if (server_streams && kind == SWIFTGRPC_KIND_SERVER_STREAMING) {
    for (int w = 0; w < read_window; w++) OP("read", swiftgrpc_client_read(channel, call));
    reading = 1;
  }
  for (;;) {
    swiftgrpc_event *ev = next_event();
    switch (ev->type) {
      case SWIFTGRPC_EVENT_CLIENT_INITIAL_METADATA:
        printf("INITIAL_METADATA\n");
        print_md("INITIAL", ev->metadata, ev->metadata_count);
        break;
      case SWIFTGRPC_EVENT_CLIENT_SEND_DONE:
        printf("SEND_DONE %d\n", ev->status_code);
        if (windowed) {
          sending--;
          if (ev->status_code == 0 && sent < nreqs) {
            OP("send", swiftgrpc_client_send_message(channel, call, reqs[sent], req_lens[sent]));
            sent++;
            sending++;
            if (sent == nreqs) { OP("half_close", swiftgrpc_client_half_close(channel, call)); half_closed = 1; }
          }
          break;
        }
        sending = 0;
        if (ev->status_code == 0) {
          if (kind == SWIFTGRPC_KIND_BIDI_STREAMING && !reading) {
            OP("read", swiftgrpc_client_read(channel, call));
            reading = 1;
          } else if (sent < nreqs) {
            OP("send", swiftgrpc_client_send_message(channel, call, reqs[sent], req_lens[sent]));
            sent++;
            sending = 1;
          } else if (!half_closed) {
            OP("half_close", swiftgrpc_client_half_close(channel, call));
            half_closed = 1;
          }
        }
        break;
      case SWIFTGRPC_EVENT_CLIENT_MESSAGE:
        reading = 0;
        if (!ev->has_message) { printf("END\n"); break; }
        printf("MESSAGE ");
        print_payload(ev->message, ev->message_len);
        printf("\n");
        fflush(stdout);
        received++;
        if (cancel_after >= 0 && received >= cancel_after) {
          OP("cancel", swiftgrpc_client_cancel(channel, call));
          printf("CANCEL_SENT\n");
          break;
        }
        if (kind == SWIFTGRPC_KIND_BIDI_STREAMING && sent < nreqs && !sending) {
          OP("send", swiftgrpc_client_send_message(channel, call, reqs[sent], req_lens[sent]));
          sent++;
          sending = 1;
        } else if (kind == SWIFTGRPC_KIND_BIDI_STREAMING && !half_closed && !sending) {
          OP("half_close", swiftgrpc_client_half_close(channel, call));
          half_closed = 1;
          OP("read", swiftgrpc_client_read(channel, call));
          reading = 1;
        } else {
          OP("read", swiftgrpc_client_read(channel, call));
          reading = 1;
        }
        break;
      case SWIFTGRPC_EVENT_CLIENT_STATUS:
        printf("STATUS %d ", ev->status_code);
        print_hex(ev->status_message, ev->status_message_len);
        printf("\n");
        if (ev->has_message) {
          printf("RESPONSE ");
          print_payload(ev->message, ev->message_len);
          printf("\n");
        }
        print_md("MD", ev->metadata, ev->metadata_count);
        print_md("TRAILER", ev->trailers, ev->trailer_count);
        printf("ELAPSED_MS %.0f\n", now_ms() - t0);
        /* The call is over: every operation on it is refused now. */
        printf("AFTER_STATUS_READ %d\n", swiftgrpc_client_read(channel, call));
        printf("AFTER_STATUS_CANCEL %d\n", swiftgrpc_client_cancel(channel, call));
        free_event(ev);
        return 0;
      default:
        printf("UNEXPECTED %d\n", ev->type);
    }
    free_event(ev);
  }
}

typedef struct { int index; } tag_t;

static int scenario_concurrent(int n) {
  swiftgrpc_call *calls = calloc((size_t)n, sizeof *calls);
  char buf[32];
  for (int i = 0; i < n; i++) {
    int len = snprintf(buf, sizeof buf, "%d", i);
    CHECK("call_start", start(method, SWIFTGRPC_KIND_UNARY, mds, (size_t)nmds, buf, (size_t)len,
                              deadline_ns(), flags, (void *)(intptr_t)(i + 1), &calls[i]));
  }
  int ok = 0, matched = 0, other = 0;
  for (int done = 0; done < n;) {
    swiftgrpc_event *ev = next_event();
    if (ev->type == SWIFTGRPC_EVENT_CLIENT_STATUS) {
      done++;
      int i = (int)(intptr_t)ev->tag - 1;
      int len = snprintf(buf, sizeof buf, "%d", i);
      if (ev->status_code == 0) ok++; else other++;
      if (ev->has_message && ev->message_len == (size_t)len && memcmp(ev->message, buf, (size_t)len) == 0 &&
          ev->token == calls[i]) matched++;
    }
    free_event(ev);
  }
  printf("CONCURRENT n=%d ok=%d matched=%d failed=%d\n", n, ok, matched, other);
  free(calls);
  return 0;
}

static int scenario_blocking_unary(void) {
  swiftgrpc_event *st;
  CHECK("unary_blocking", swiftgrpc_unary_blocking(channel, method, mds, (size_t)nmds, nreqs ? reqs[0] : "",
                                                   nreqs ? req_lens[0] : 0, deadline_ns(), flags, &st));
  printf("STATUS %d ", st->status_code);
  print_hex(st->status_message, st->status_message_len);
  printf("\n");
  if (st->has_message) { printf("RESPONSE "); print_payload(st->message, st->message_len); printf("\n"); }
  print_md("MD", st->metadata, st->metadata_count);
  print_md("TRAILER", st->trailers, st->trailer_count);
  free(st);
  return 0;
}

static int scenario_blocking_stream(void) {
  swiftgrpc_stream *s;
  CHECK("stream_open", swiftgrpc_stream_open(channel, method, mds, (size_t)nmds, nreqs ? reqs[0] : "",
                                             nreqs ? req_lens[0] : 0, deadline_ns(), flags, &s));
  swiftgrpc_event *m;
  int rc, count = 0;
  while ((rc = swiftgrpc_stream_next(s, &m)) == 1) {
    printf("MESSAGE ");
    print_payload(m->message, m->message_len);
    printf("\n");
    free(m);
    if (++count == cancel_after) break;
  }
  if (rc < 0) die("stream_next", rc);
  if (count == cancel_after) swiftgrpc_client_cancel(channel, s->call);
  const swiftgrpc_event *st = swiftgrpc_stream_status(s);
  printf("STATUS %d ", st->status_code);
  print_hex(st->status_message, st->status_message_len);
  printf("\n");
  swiftgrpc_stream_close(s);
  return 0;
}

static int scenario_states(void) {
  int state;
  CHECK("state", swiftgrpc_channel_state(channel, 0, &state));
  printf("STATE %d\n", state);
  CHECK("state", swiftgrpc_channel_state(channel, 1, &state));
  while (state != SWIFTGRPC_STATE_READY) {
    int rc = swiftgrpc_channel_wait_state_change(channel, state, 10000, &state);
    if (rc == SWIFTGRPC_E_TIMEOUT) { printf("TIMEOUT\n"); return 1; }
    CHECK("wait_state_change", rc);
    printf("STATE %d\n", state);
    if (state == SWIFTGRPC_STATE_TRANSIENT_FAILURE) return 0;
  }
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Unary calls of the request: CONC=1 measures sequential latency, else keeps CONC in flight. */
static int scenario_bench(int n, int conc) {
  const char *req = nreqs ? reqs[0] : "hello";
  size_t len = nreqs ? req_lens[0] : 5;
  double *lat = malloc(sizeof(double) * (size_t)n);
  int failed = 0;
  double t0 = now_ms();
  if (conc <= 1) {
    for (int i = 0; i < n; i++) {
      double s = now_ms();
      if (blocking) {
        swiftgrpc_event *st;
        CHECK("unary_blocking", swiftgrpc_unary_blocking(channel, method, NULL, 0, req, len, SWIFTGRPC_DEADLINE_DEFAULT, 0, &st));
        if (st->status_code != 0 || st->message_len != len) failed++;
        free(st);
      } else {
        swiftgrpc_call c;
        CHECK("start", start(method, SWIFTGRPC_KIND_UNARY, NULL, 0, req, len, SWIFTGRPC_DEADLINE_DEFAULT, 0, NULL, &c));
        for (;;) {
          swiftgrpc_event *ev = next_event();
          int t = ev->type;
          if (t == SWIFTGRPC_EVENT_CLIENT_STATUS && (ev->status_code != 0 || ev->message_len != len)) failed++;
          free_event(ev);
          if (t == SWIFTGRPC_EVENT_CLIENT_STATUS) break;
        }
      }
      lat[i] = now_ms() - s;
    }
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    printf("BENCH latency n=%d p50_us=%.1f p99_us=%.1f failed=%d\n", n, lat[n / 2] * 1000,
           lat[(int)(n * 0.99)] * 1000, failed);
  } else {
    int started = 0, done = 0;
    swiftgrpc_call c;
    for (; started < conc && started < n; started++)
      CHECK("start", start(method, SWIFTGRPC_KIND_UNARY, NULL, 0, req, len, SWIFTGRPC_DEADLINE_DEFAULT, 0, NULL, &c));
    while (done < n) {
      swiftgrpc_event *ev = next_event();
      if (ev->type == SWIFTGRPC_EVENT_CLIENT_STATUS) {
        done++;
        if (ev->status_code != 0 || ev->message_len != len) failed++;
        if (started < n) {
          CHECK("start", start(method, SWIFTGRPC_KIND_UNARY, NULL, 0, req, len, SWIFTGRPC_DEADLINE_DEFAULT, 0, NULL, &c));
          started++;
        }
      }
      free_event(ev);
    }
    double secs = (now_ms() - t0) / 1000;
    printf("BENCH throughput n=%d concurrency=%d calls_per_s=%.0f failed=%d\n", n, conc, n / secs, failed);
  }
  free(lat);
  return failed != 0;
}

/* Blocking throughput: CONC threads each making sequential blocking calls. */
typedef struct { int n; int failed; } bench_arg;
static void *blocking_worker(void *p) {
  bench_arg *a = p;
  for (int i = 0; i < a->n; i++) {
    swiftgrpc_event *st;
    CHECK("unary_blocking", swiftgrpc_unary_blocking(channel, method, NULL, 0, "hello", 5, SWIFTGRPC_DEADLINE_DEFAULT, 0, &st));
    if (st->status_code != 0 || st->message_len != 5) a->failed++;
    free(st);
  }
  return NULL;
}

static int scenario_bench_blocking_threads(int n, int conc) {
  pthread_t th[256];
  bench_arg args[256];
  if (conc > 256) conc = 256;
  double t0 = now_ms();
  for (int i = 0; i < conc; i++) { args[i].n = n / conc; args[i].failed = 0; pthread_create(&th[i], NULL, blocking_worker, &args[i]); }
  int failed = 0;
  for (int i = 0; i < conc; i++) { pthread_join(th[i], NULL); failed += args[i].failed; }
  double secs = (now_ms() - t0) / 1000;
  printf("BENCH throughput n=%d concurrency=%d calls_per_s=%.0f failed=%d\n", (n / conc) * conc, conc, (n / conc) * conc / secs, failed);
  return failed != 0;
}

int main(int argc, char **argv) {
  const char *target = NULL, *tls_roots = NULL, *tls_cert = NULL, *tls_key = NULL, *tls_name = NULL;
  int tls = 0;
  const char *token = NULL, *call_token = NULL;
  swiftgrpc_channel_arg args[16];
  size_t nargs = 0;
  int i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(a, "--target")) { target = v; i++; }
    else if (!strcmp(a, "--pull")) pull_mode = 1;
    else if (!strcmp(a, "--blocking")) blocking = 1;
    else if (!strcmp(a, "--wfr")) flags |= SWIFTGRPC_CALL_WAIT_FOR_READY;
    else if (!strcmp(a, "--method")) { method = v; i++; }
    else if (!strcmp(a, "--kind")) {
      kind = !strcmp(v, "server") ? SWIFTGRPC_KIND_SERVER_STREAMING : !strcmp(v, "client") ? SWIFTGRPC_KIND_CLIENT_STREAMING
           : !strcmp(v, "bidi") ? SWIFTGRPC_KIND_BIDI_STREAMING : SWIFTGRPC_KIND_UNARY;
      i++;
    } else if (!strcmp(a, "--req")) { reqs[nreqs] = unhex(v, &req_lens[nreqs]); nreqs++; i++; }
    else if (!strcmp(a, "--req-size")) {
      size_t n = (size_t)atol(v);
      reqs[nreqs] = malloc(n + 1);
      for (size_t k = 0; k < n; k++) reqs[nreqs][k] = (char)(k * 31 + 7);
      req_lens[nreqs++] = n;
      i++;
    } else if (!strcmp(a, "--md")) {
      const char *eq = strchr(v, '=');
      size_t vlen;
      char *key = strndup(v, (size_t)(eq - v));
      char *val = unhex(eq + 1, &vlen);
      mds[nmds++] = swiftgrpc_md_bytes(key, val, vlen);
      i++;
    } else if (!strcmp(a, "--deadline-ms")) { deadline_ms = atol(v); i++; }
    else if (!strcmp(a, "--cancel-after")) { cancel_after = atoi(v); i++; }
    else if (!strcmp(a, "--read-window")) { read_window = atoi(v); i++; }
    else if (!strcmp(a, "--send-window")) { send_window = atoi(v); i++; }
    else if (!strcmp(a, "--lb")) { args[nargs++] = (swiftgrpc_channel_arg){SWIFTGRPC_CHANNEL_LB_POLICY, !strcmp(v, "rr"), NULL}; i++; }
    else if (!strcmp(a, "--backoff-ms")) { args[nargs++] = (swiftgrpc_channel_arg){SWIFTGRPC_CHANNEL_INITIAL_BACKOFF_MS, atol(v), NULL}; i++; }
    else if (!strcmp(a, "--keepalive-ms")) {
      args[nargs++] = (swiftgrpc_channel_arg){SWIFTGRPC_CHANNEL_KEEPALIVE_TIME_MS, atol(v), NULL};
      args[nargs++] = (swiftgrpc_channel_arg){SWIFTGRPC_CHANNEL_KEEPALIVE_TIMEOUT_MS, atol(v), NULL};
      i++;
    } else if (!strcmp(a, "--max-recv")) { args[nargs++] = (swiftgrpc_channel_arg){SWIFTGRPC_CHANNEL_MAX_RECV_MESSAGE_SIZE, atol(v), NULL}; i++; }
    else if (!strcmp(a, "--tls")) tls = 1;
    else if (!strcmp(a, "--tls-roots")) { tls = 1; tls_roots = v; i++; }
    else if (!strcmp(a, "--tls-cert")) { tls = 1; tls_cert = v; i++; }
    else if (!strcmp(a, "--tls-key")) { tls = 1; tls_key = v; i++; }
    else if (!strcmp(a, "--tls-name")) { tls = 1; tls_name = v; i++; }
    else if (!strcmp(a, "--token")) { token = v; i++; }
    else if (!strcmp(a, "--call-token")) { call_token = v; i++; }
    else if (!strcmp(a, "--plugin-fail")) { plugin_fail = v; i++; }
    else if (!strcmp(a, "--plugin-md")) {
      const char *eq = strchr(v, '=');
      plugin_key = strndup(v, (size_t)(eq - v));
      plugin_value = eq + 1;
      i++;
    }
    else { fprintf(stderr, "unknown option %s\n", a); return 2; }
  }
  if (!target || i >= argc) { fprintf(stderr, "usage: client_driver --target T [options] SCENARIO\n"); return 2; }
  CHECK("runtime_create", swiftgrpc_runtime_create(1, &runtime));
  if (tls) {
    size_t roots_len = 0;
    char *roots = tls_roots ? read_file(tls_roots, &roots_len) : NULL;
    swiftgrpc_tls_identity me = {0};
    if (tls_cert) me.certificate_chain = read_file(tls_cert, &me.certificate_chain_len);
    if (tls_key) me.private_key = read_file(tls_key, &me.private_key_len);
    swiftgrpc_channel_credentials creds;
    CHECK("channel_credentials_create", swiftgrpc_channel_credentials_create(
        roots, roots_len, tls_cert ? &me : NULL, tls_name, &creds));
    free(roots); /* the credentials keep their own copies */
    free((void *)me.certificate_chain);
    free((void *)me.private_key);
    swiftgrpc_call_credentials token_creds = 0, plugin = 0, both = 0;
    if (token) CHECK("access_token", swiftgrpc_call_credentials_create_access_token(token, &token_creds));
    if (plugin_key || plugin_fail) CHECK("plugin", swiftgrpc_call_credentials_create_plugin(0, plugin_fn, NULL, &plugin));
    if (token_creds && plugin) CHECK("compose", swiftgrpc_call_credentials_compose(token_creds, plugin, &both));
    swiftgrpc_call_credentials extra = both ? both : token_creds ? token_creds : plugin;
    swiftgrpc_channel_credentials composite = 0;
    if (extra) CHECK("channel_credentials_compose", swiftgrpc_channel_credentials_compose(creds, extra, &composite));
    CHECK("channel_create_secure", swiftgrpc_channel_create_secure(runtime, target, composite ? composite : creds,
                                                                    args, nargs, &channel));
    /* The channel keeps what it uses: every handle made here can go now. */
    CHECK("channel_credentials_destroy", swiftgrpc_channel_credentials_destroy(creds));
    CHECK("channel_credentials_destroy", swiftgrpc_channel_credentials_destroy(composite));
    CHECK("call_credentials_destroy", swiftgrpc_call_credentials_destroy(token_creds));
    CHECK("call_credentials_destroy", swiftgrpc_call_credentials_destroy(plugin));
    CHECK("call_credentials_destroy", swiftgrpc_call_credentials_destroy(both));
  } else {
    CHECK("channel_create", swiftgrpc_channel_create(runtime, target, args, nargs, &channel));
  }
  if (pull_mode) CHECK("queue_create", swiftgrpc_queue_create(runtime, &queue));
  if (call_token) CHECK("call access_token", swiftgrpc_call_credentials_create_access_token(call_token, &call_creds));
  const char *scenario = argv[i];
  int rc;
  if (!strcmp(scenario, "call")) rc = scenario_call();
  else if (!strcmp(scenario, "concurrent")) rc = scenario_concurrent(atoi(argv[i + 1]));
  else if (!strcmp(scenario, "blocking-unary")) rc = scenario_blocking_unary();
  else if (!strcmp(scenario, "blocking-stream")) rc = scenario_blocking_stream();
  else if (!strcmp(scenario, "states")) rc = scenario_states();
  else if (!strcmp(scenario, "bench")) {
    int n = atoi(argv[i + 1]), conc = atoi(argv[i + 2]);
    rc = blocking && conc > 1 ? scenario_bench_blocking_threads(n, conc) : scenario_bench(n, conc);
  } else { fprintf(stderr, "unknown scenario %s\n", scenario); return 2; }
  CHECK("channel_destroy", swiftgrpc_channel_destroy(channel));
  CHECK("runtime_destroy", swiftgrpc_runtime_destroy(runtime));
  CHECK("call_credentials_destroy", swiftgrpc_call_credentials_destroy(call_creds));
  fflush(stdout);
  return rc;
}
