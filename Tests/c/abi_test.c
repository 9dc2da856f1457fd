/*
 * abi_test.c — every exported function with bad input: null pointers, stale, foreign and
 * never-issued handles, wrong order, malformed strings, absurd lengths. Each must return its
 * documented code, set a last-error message, change nothing, and never crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swiftgrpc.h"
#include "swiftgrpc_util.h"

static int failures, checks;

#define EXPECT(expr, want)                                                                    \
  do {                                                                                        \
    int got_ = (expr);                                                                        \
    checks++;                                                                                 \
    if (got_ != (want)) {                                                                     \
      failures++;                                                                             \
      fprintf(stderr, "FAIL %s:%d: %s = %d (%s), want %d\n", __FILE__, __LINE__, #expr, got_, \
              swiftgrpc_last_error(), (want));                                                \
    } else if ((want) < 0 && swiftgrpc_last_error()[0] == 0) {                    \
      failures++;                                                                             \
      fprintf(stderr, "FAIL %s:%d: %s left no last-error message\n", __FILE__, __LINE__, #expr); \
    }                                                                                         \
  } while (0)

static void noop_fn(const swiftgrpc_event *ev, void *user_data) { (void)ev; (void)user_data; }

int main(void) {
  /* Version and error text. */
  EXPECT(swiftgrpc_version_number(), SWIFTGRPC_VERSION_NUMBER);
  EXPECT(strcmp(swiftgrpc_version_string(), SWIFTGRPC_VERSION_STRING), 0);
  for (int code = 0; code >= -16; code--) EXPECT(swiftgrpc_errstr(code)[0] != 0, 1);
  EXPECT(strcmp(swiftgrpc_errstr(-999), "unknown result code"), 0);
  EXPECT(swiftgrpc_now_ns() > 0, 1);

  /* Runtime. */
  swiftgrpc_runtime rt = 0, rt2 = 0;
  EXPECT(swiftgrpc_runtime_create(0, NULL), SWIFTGRPC_E_NULL_ARGUMENT);
  EXPECT(swiftgrpc_runtime_create(65, &rt), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(rt == 0, 1); /* a failed call changes nothing */
  EXPECT(swiftgrpc_runtime_create(2, &rt), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_runtime_create(1, &rt2), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_runtime_destroy(0), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_runtime_destroy(UINT64_MAX), SWIFTGRPC_E_BAD_HANDLE);

  /* Server creation and handle type checks. */
  swiftgrpc_server srv = 0;
  EXPECT(swiftgrpc_server_create(rt, NULL), SWIFTGRPC_E_NULL_ARGUMENT);
  EXPECT(swiftgrpc_server_create(0, &srv), SWIFTGRPC_E_BAD_HANDLE);
  EXPECT(swiftgrpc_server_create(123456789, &srv), SWIFTGRPC_E_BAD_HANDLE);
  EXPECT(swiftgrpc_server_create(rt, &srv), SWIFTGRPC_OK);
  swiftgrpc_server not_a_runtime = srv;
  swiftgrpc_server tmp;
  EXPECT(swiftgrpc_server_create(not_a_runtime, &tmp), SWIFTGRPC_E_BAD_HANDLE);
  EXPECT(swiftgrpc_server_start(rt), SWIFTGRPC_E_BAD_HANDLE);

  /* Options. */
  EXPECT(swiftgrpc_server_set_option(srv, 999, 1), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(swiftgrpc_server_set_option(srv, SWIFTGRPC_OPT_MAX_RECV_MESSAGE_SIZE, -1), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(swiftgrpc_server_set_option(srv, SWIFTGRPC_OPT_MAX_CONCURRENT_STREAMS, 0), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(swiftgrpc_server_set_option(srv, SWIFTGRPC_OPT_MAX_RECV_MESSAGE_SIZE, 1 << 20), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_server_set_option(0, SWIFTGRPC_OPT_MAX_RECV_MESSAGE_SIZE, 1), SWIFTGRPC_E_BAD_HANDLE);

  /* Registration. */
  const char *m = "/pkg.Svc/Method";
  EXPECT(swiftgrpc_register_host_fn(srv, NULL, 0, noop_fn, NULL), SWIFTGRPC_E_NULL_ARGUMENT);
  EXPECT(swiftgrpc_register_host_fn(srv, "no-slash", 0, noop_fn, NULL), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(swiftgrpc_register_host_fn(srv, "/pkg.Svc/", 0, noop_fn, NULL), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(swiftgrpc_register_host_fn(srv, "/a/b/c", 0, noop_fn, NULL), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(swiftgrpc_register_host_fn(srv, "/pkg.Svc/\xff\xfe", 0, noop_fn, NULL), SWIFTGRPC_E_INVALID_UTF8);
  EXPECT(swiftgrpc_register_host_fn(srv, m, 4, noop_fn, NULL), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(swiftgrpc_register_host_fn(srv, m, -1, noop_fn, NULL), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(swiftgrpc_register_host_fn(srv, m, 0, NULL, NULL), SWIFTGRPC_E_NULL_ARGUMENT);
  EXPECT(swiftgrpc_register_host_fn(srv, m, 0, noop_fn, NULL), SWIFTGRPC_OK); /* nothing stuck */
  EXPECT(swiftgrpc_register_host_fn(srv, m, 1, noop_fn, NULL), SWIFTGRPC_E_ALREADY_EXISTS);
  EXPECT(swiftgrpc_register_host_fn(0, m, 0, noop_fn, NULL), SWIFTGRPC_E_BAD_HANDLE);

  /* Queues. */
  swiftgrpc_queue q = 0, q2 = 0;
  swiftgrpc_event *ev = NULL;
  EXPECT(swiftgrpc_queue_create(rt, NULL), SWIFTGRPC_E_NULL_ARGUMENT);
  EXPECT(swiftgrpc_queue_create(srv, &q), SWIFTGRPC_E_BAD_HANDLE);
  EXPECT(swiftgrpc_queue_create(rt, &q), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_queue_create(rt2, &q2), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_register_host_queue(srv, "/pkg.Svc/Other", 0, q2), SWIFTGRPC_E_BAD_HANDLE);
  EXPECT(swiftgrpc_register_host_queue(srv, "/pkg.Svc/Other", 0, srv), SWIFTGRPC_E_BAD_HANDLE);
  EXPECT(swiftgrpc_register_host_queue(srv, "/pkg.Svc/Other", 3, q), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_queue_next(q, 0, NULL), SWIFTGRPC_E_NULL_ARGUMENT);
  EXPECT(swiftgrpc_queue_next(q, 0, &ev), SWIFTGRPC_E_TIMEOUT);
  EXPECT(swiftgrpc_queue_next(q, 20, &ev), SWIFTGRPC_E_TIMEOUT);
  EXPECT(ev == NULL, 1);
  EXPECT(swiftgrpc_queue_next(srv, 0, &ev), SWIFTGRPC_E_BAD_HANDLE);
  swiftgrpc_event_free(NULL);

  /* Listening. */
  int port = -1;
  EXPECT(swiftgrpc_server_listen(srv, NULL, &port), SWIFTGRPC_E_NULL_ARGUMENT);
  EXPECT(swiftgrpc_server_listen(srv, "nonsense", &port), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(swiftgrpc_server_listen(srv, "127.0.0.1:99999", &port), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(swiftgrpc_server_listen(srv, "127.0.0.1:-1", &port), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(swiftgrpc_server_listen(srv, "unix:", &port), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(swiftgrpc_server_listen(srv, "256.1.1.1:0", &port), SWIFTGRPC_E_SYSTEM);
  EXPECT(port, -1);
  EXPECT(swiftgrpc_server_listen(srv, "127.0.0.1:0", &port), SWIFTGRPC_OK);
  EXPECT(port > 0, 1);
  char taken[64];
  snprintf(taken, sizeof taken, "127.0.0.1:%d", port);
  swiftgrpc_server srv2;
  EXPECT(swiftgrpc_server_create(rt, &srv2), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_server_listen(srv2, taken, NULL), SWIFTGRPC_E_SYSTEM);
  EXPECT(swiftgrpc_server_destroy(srv2), SWIFTGRPC_OK); /* never started */
  EXPECT(swiftgrpc_server_listen(srv, "[::1]:0", NULL), SWIFTGRPC_OK);

  /* Start, and the calls that are now out of order. */
  EXPECT(swiftgrpc_server_start(srv), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_server_start(srv), SWIFTGRPC_E_WRONG_STATE);
  EXPECT(swiftgrpc_server_listen(srv, "127.0.0.1:0", NULL), SWIFTGRPC_E_WRONG_STATE);
  EXPECT(swiftgrpc_register_host_fn(srv, "/pkg.Svc/Late", 0, noop_fn, NULL), SWIFTGRPC_E_WRONG_STATE);
  EXPECT(swiftgrpc_server_set_option(srv, SWIFTGRPC_OPT_MAX_RECV_MESSAGE_SIZE, 1), SWIFTGRPC_E_WRONG_STATE);

  /* Answers for tokens that were never issued. */
  swiftgrpc_metadata md = swiftgrpc_md("x-ok", "v");
  EXPECT(swiftgrpc_host_complete(srv, 0, NULL, 0, 0, NULL, NULL, 0), SWIFTGRPC_E_UNKNOWN_TOKEN);
  EXPECT(swiftgrpc_host_complete(srv, 12345, NULL, 0, 0, NULL, NULL, 0), SWIFTGRPC_E_UNKNOWN_TOKEN);
  EXPECT(swiftgrpc_host_complete(srv, 1ull << 60, NULL, 0, 0, NULL, &md, 1), SWIFTGRPC_E_UNKNOWN_TOKEN);
  EXPECT(swiftgrpc_host_complete(srv, 1, NULL, 0, 0, NULL, NULL, 0), SWIFTGRPC_E_UNKNOWN_TOKEN);
  EXPECT(swiftgrpc_host_complete(srv, 256, NULL, 0, 99, NULL, NULL, 0), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(swiftgrpc_host_complete(srv, 256, NULL, 0, -1, NULL, NULL, 0), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(swiftgrpc_host_complete(srv, 256, NULL, 0, 0, "\xc3\x28", NULL, 0), SWIFTGRPC_E_INVALID_UTF8);
  EXPECT(swiftgrpc_host_complete(srv, 256, NULL, 5, 0, NULL, NULL, 0), SWIFTGRPC_E_NULL_ARGUMENT);
  EXPECT(swiftgrpc_host_complete(srv, 256, NULL, 0, 0, NULL, NULL, 3), SWIFTGRPC_E_NULL_ARGUMENT);
  EXPECT(swiftgrpc_host_complete(srv, 256, NULL, 0, 0, NULL, &md, SIZE_MAX), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(swiftgrpc_call_send_message(srv, 256, "x", SIZE_MAX), SWIFTGRPC_E_INVALID_ARGUMENT);
  EXPECT(swiftgrpc_call_send_message(srv, 256, "x", 1), SWIFTGRPC_E_UNKNOWN_TOKEN);
  EXPECT(swiftgrpc_call_read(srv, 256), SWIFTGRPC_E_UNKNOWN_TOKEN);
  EXPECT(swiftgrpc_call_send_initial_metadata(srv, 256, &md, 1), SWIFTGRPC_E_UNKNOWN_TOKEN);
  swiftgrpc_metadata bad[] = {
      swiftgrpc_md("Upper", "v"), swiftgrpc_md("grpc-status", "0"), swiftgrpc_md(":path", "/x"),
      swiftgrpc_md("x-ctl", "a\rb"), swiftgrpc_md("x-utf8", "\xc3\xa9"), swiftgrpc_md("", "v"),
      swiftgrpc_md("content-type", "text/plain"), swiftgrpc_md("te", "trailers"),
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    EXPECT(swiftgrpc_call_send_initial_metadata(srv, 256, &bad[i], 1), SWIFTGRPC_E_INVALID_METADATA);
  }
  swiftgrpc_metadata null_key = {NULL, 3, "v", 1};
  EXPECT(swiftgrpc_call_send_initial_metadata(srv, 256, &null_key, 1), SWIFTGRPC_E_NULL_ARGUMENT);
  swiftgrpc_metadata null_value = {"x-a", 3, NULL, 4};
  EXPECT(swiftgrpc_call_send_initial_metadata(srv, 256, &null_value, 1), SWIFTGRPC_E_NULL_ARGUMENT);
  unsigned char binary[4] = {0, 0xff, '\n', 0x80};
  swiftgrpc_metadata bin = swiftgrpc_md_bytes("x-raw-bin", binary, sizeof binary);
  EXPECT(swiftgrpc_call_send_initial_metadata(srv, 256, &bin, 1), SWIFTGRPC_E_UNKNOWN_TOKEN);

  /* Shutdown, destroy, and use after destroy. */
  EXPECT(swiftgrpc_server_shutdown(srv, 100), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_server_shutdown(srv, 100), SWIFTGRPC_OK); /* idempotent */
  EXPECT(swiftgrpc_server_destroy(srv), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_server_destroy(srv), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_server_destroy(0), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_server_destroy(UINT64_MAX - 1), SWIFTGRPC_E_BAD_HANDLE);
  EXPECT(swiftgrpc_server_start(srv), SWIFTGRPC_E_BAD_HANDLE);
  EXPECT(swiftgrpc_host_complete(srv, 256, NULL, 0, 0, NULL, NULL, 0), SWIFTGRPC_E_BAD_HANDLE);
  EXPECT(swiftgrpc_queue_shutdown(q), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_queue_next(q, -1, &ev), SWIFTGRPC_E_SHUTDOWN); /* returns at once */
  EXPECT(swiftgrpc_queue_destroy(q), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_queue_destroy(q), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_queue_next(q, 0, &ev), SWIFTGRPC_E_BAD_HANDLE);

  /* Destroying a runtime destroys what lives on it. */
  swiftgrpc_server srv3;
  EXPECT(swiftgrpc_server_create(rt2, &srv3), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_server_listen(srv3, "127.0.0.1:0", NULL), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_server_start(srv3), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_runtime_destroy(rt2), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_server_start(srv3), SWIFTGRPC_E_BAD_HANDLE);
  EXPECT(swiftgrpc_queue_next(q2, 0, &ev), SWIFTGRPC_E_BAD_HANDLE);
  EXPECT(swiftgrpc_runtime_destroy(rt2), SWIFTGRPC_OK);
  EXPECT(swiftgrpc_server_create(rt2, &tmp), SWIFTGRPC_E_BAD_HANDLE);
  EXPECT(swiftgrpc_runtime_destroy(rt), SWIFTGRPC_OK);

  printf("%d passed, %d failed\n", checks - failures, failures);
  return failures ? 1 : 0;
}
