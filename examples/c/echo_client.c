/*
 * echo_client.c — a gRPC client in C on libswiftgrpc, calling all four methods of
 * swiftgrpc.examples.Echo (examples/c/echo_server.c, or any server of that service):
 *
 *   Get      unary             swiftgrpc_unary_blocking (swiftgrpc_blocking.h)
 *   Expand   server streaming  swiftgrpc_stream_open / _next / _status
 *   Collect  client streaming  events pulled from a swiftgrpc_queue
 *   Update   bidi streaming    events pulled from a swiftgrpc_queue
 *
 * usage: echo_client [TARGET]     (default 127.0.0.1:50051)
 * Exits 0 if every call returned what the Echo service promises.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swiftgrpc.h"
#include "swiftgrpc_blocking.h"
#include "swiftgrpc_util.h"

static swiftgrpc_channel channel;
static swiftgrpc_queue queue;
static int failures;

static void check(int rc, const char *what) {
  if (rc != SWIFTGRPC_OK) {
    fprintf(stderr, "%s: %s: %s\n", what, swiftgrpc_errstr(rc), swiftgrpc_last_error());
    exit(1);
  }
}

static void expect(int ok, const char *what) {
  printf("  %s %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) failures++;
}

/* Next event of the queue, waiting at most 10 s. */
static swiftgrpc_event *next_event(void) {
  swiftgrpc_event *ev;
  check(swiftgrpc_queue_next(queue, 10000, &ev), "queue_next");
  return ev;
}

static int64_t in_seconds(int s) { return swiftgrpc_now_ns() + (int64_t)s * 1000000000; }

static void get(void) {
  printf("Get (unary):\n");
  swiftgrpc_metadata md[] = {swiftgrpc_md("x-client", "echo_client")};
  swiftgrpc_event *st;
  check(swiftgrpc_unary_blocking(channel, "/swiftgrpc.examples.Echo/Get", md, 1, "hello", 5,
                                 in_seconds(5), 0, &st), "Get");
  printf("  -> status %d, reply '%.*s'\n", st->status_code, (int)st->message_len, st->message);
  expect(st->status_code == 0 && st->message_len == 5 && !memcmp(st->message, "hello", 5), "echoes the request");
  free(st);
}

static void expand(void) {
  printf("Expand (server streaming):\n");
  swiftgrpc_stream *s;
  const char *req = "one two three";
  check(swiftgrpc_stream_open(channel, "/swiftgrpc.examples.Echo/Expand", NULL, 0, req, strlen(req),
                              in_seconds(5), 0, &s), "Expand");
  swiftgrpc_event *m;
  int n = 0, rc;
  while ((rc = swiftgrpc_stream_next(s, &m)) == 1) {
    printf("  -> '%.*s'\n", (int)m->message_len, m->message);
    n++;
    free(m);
  }
  check(rc, "stream_next");
  const swiftgrpc_event *st = swiftgrpc_stream_status(s);
  expect(st->status_code == 0 && n == 3, "one reply per word, then OK");
  swiftgrpc_stream_close(s);
}

static void collect(void) {
  printf("Collect (client streaming):\n");
  const char *words[] = {"a", "b", "c"};
  swiftgrpc_call call;
  check(swiftgrpc_client_call_start(channel, "/swiftgrpc.examples.Echo/Collect", SWIFTGRPC_KIND_CLIENT_STREAMING,
                                    NULL, 0, NULL, 0, in_seconds(5), 0, queue, NULL, NULL, &call), "Collect");
  size_t sent = 0;
  check(swiftgrpc_client_send_message(channel, call, words[0], 1), "send");
  for (;;) {
    swiftgrpc_event *ev = next_event();
    if (ev->type == SWIFTGRPC_EVENT_CLIENT_SEND_DONE && ev->status_code == 0) {
      /* One send at a time: the next goes out when the previous is done. */
      if (++sent < 3) check(swiftgrpc_client_send_message(channel, call, words[sent], 1), "send");
      else check(swiftgrpc_client_half_close(channel, call), "half_close");
    } else if (ev->type == SWIFTGRPC_EVENT_CLIENT_STATUS) {
      printf("  -> status %d, reply '%.*s'\n", ev->status_code, (int)ev->message_len, ev->message);
      expect(ev->status_code == 0 && ev->message_len == 5 && !memcmp(ev->message, "a b c", 5), "joins the requests");
      swiftgrpc_event_free(ev);
      return;
    }
    swiftgrpc_event_free(ev);
  }
}

static void update(void) {
  printf("Update (bidi streaming):\n");
  const char *words[] = {"ping", "pong", "done"};
  swiftgrpc_call call;
  check(swiftgrpc_client_call_start(channel, "/swiftgrpc.examples.Echo/Update", SWIFTGRPC_KIND_BIDI_STREAMING,
                                    NULL, 0, NULL, 0, in_seconds(5), 0, queue, NULL, NULL, &call), "Update");
  int sent = 0, echoed = 0;
  check(swiftgrpc_client_send_message(channel, call, words[0], 4), "send");
  check(swiftgrpc_client_read(channel, call), "read");
  for (;;) {
    swiftgrpc_event *ev = next_event();
    if (ev->type == SWIFTGRPC_EVENT_CLIENT_MESSAGE && ev->has_message) {
      printf("  -> '%.*s'\n", (int)ev->message_len, ev->message);
      echoed += ev->message_len == 4 && !memcmp(ev->message, words[echoed], 4);
      check(swiftgrpc_client_read(channel, call), "read");
    } else if (ev->type == SWIFTGRPC_EVENT_CLIENT_SEND_DONE && ev->status_code == 0) {
      if (++sent < 3) check(swiftgrpc_client_send_message(channel, call, words[sent], 4), "send");
      else check(swiftgrpc_client_half_close(channel, call), "half_close");
    } else if (ev->type == SWIFTGRPC_EVENT_CLIENT_STATUS) {
      printf("  -> status %d\n", ev->status_code);
      expect(ev->status_code == 0 && echoed == 3, "echoes each request, then OK");
      swiftgrpc_event_free(ev);
      return;
    }
    swiftgrpc_event_free(ev);
  }
}

int main(int argc, char **argv) {
  const char *target = argc > 1 ? argv[1] : "127.0.0.1:50051";
  swiftgrpc_runtime runtime;
  check(swiftgrpc_runtime_create(1, &runtime), "runtime_create");
  check(swiftgrpc_channel_create(runtime, target, NULL, 0, &channel), "channel_create");
  check(swiftgrpc_queue_create(runtime, &queue), "queue_create");
  printf("== C client on libswiftgrpc %s -> %s\n", swiftgrpc_version_string(), target);
  get();
  expand();
  collect();
  update();
  check(swiftgrpc_channel_destroy(channel), "channel_destroy");
  check(swiftgrpc_runtime_destroy(runtime), "runtime_destroy");
  return failures ? 1 : 0;
}
