/*
 * dlclose_test.c — after swiftgrpc_runtime_destroy returns, no library thread is alive, so the
 * library can be unloaded. Loads libswiftgrpc.so with dlopen, serves and calls through a "dns"
 * target (name resolution runs on a library thread), cancels a call at once, destroys
 * everything, checks that the process is back to one thread, dlcloses, checks that the
 * library is unmapped — fifty times.
 *
 * usage: dlclose_test PATH_TO_LIBSWIFTGRPC
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "swiftgrpc.h"

static int threads(void) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static int mapped(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[1024];
  int n = 0;
  while (fgets(line, sizeof line, f))
    if (strstr(line, "libswiftgrpc")) n++;
  fclose(f);
  return n;
}

/* The library's functions, looked up anew after each dlopen. */
static struct {
  int (*runtime_create)(uint32_t, swiftgrpc_runtime *);
  int (*runtime_destroy)(swiftgrpc_runtime);
  int (*server_create)(swiftgrpc_runtime, swiftgrpc_server *);
  int (*register_host_fn)(swiftgrpc_server, const char *, int, swiftgrpc_host_fn, void *);
  int (*server_listen)(swiftgrpc_server, const char *, int *);
  int (*server_start)(swiftgrpc_server);
  int (*host_complete)(swiftgrpc_server, uint64_t, const void *, size_t, int, const char *,
                       const swiftgrpc_metadata *, size_t);
  int (*channel_create)(swiftgrpc_runtime, const char *, const swiftgrpc_channel_arg *, size_t,
                        swiftgrpc_channel *);
  int (*client_call_start)(swiftgrpc_channel, const char *, int, const swiftgrpc_metadata *,
                           size_t, const void *, size_t, int64_t, uint32_t, swiftgrpc_queue,
                           swiftgrpc_host_fn, void *, swiftgrpc_call *);
  int (*client_cancel)(swiftgrpc_channel, swiftgrpc_call);
  int (*queue_create)(swiftgrpc_runtime, swiftgrpc_queue *);
  int (*queue_next)(swiftgrpc_queue, int64_t, swiftgrpc_event **);
  void (*event_free)(swiftgrpc_event *);
} f;

static swiftgrpc_server server;
static void echo(const swiftgrpc_event *ev, void *user_data) {
  (void)user_data;
  if (ev->type == SWIFTGRPC_EVENT_CALL)
    f.host_complete(server, ev->token, ev->message, ev->message_len, 0, NULL, NULL, 0);
}

#define CHECK(expr)                                                                   \
  do {                                                                                \
    if ((expr) != 0) {                                                                \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #expr);                 \
      return 1;                                                                       \
    }                                                                                 \
  } while (0)

#define LOAD(name) CHECK(!(*(void **)&f.name = dlsym(lib, "swiftgrpc_" #name)))

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  int base = threads();
  for (int round = 0; round < 50; round++) {
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      fprintf(stderr, "dlopen: %s\n", dlerror());
      return 1;
    }
    LOAD(runtime_create); LOAD(runtime_destroy); LOAD(server_create); LOAD(register_host_fn);
    LOAD(server_listen); LOAD(server_start); LOAD(host_complete); LOAD(channel_create);
    LOAD(client_call_start); LOAD(client_cancel); LOAD(queue_create); LOAD(queue_next);
    LOAD(event_free);

    swiftgrpc_runtime rt;
    swiftgrpc_queue q;
    swiftgrpc_channel ch;
    swiftgrpc_call call;
    int port;
    char target[64];
    CHECK(f.runtime_create(2, &rt));
    CHECK(f.queue_create(rt, &q));
    CHECK(f.server_create(rt, &server));
    CHECK(f.register_host_fn(server, "/t.T/Echo", SWIFTGRPC_KIND_UNARY, echo, NULL));
    CHECK(f.server_listen(server, "127.0.0.1:0", &port));
    CHECK(f.server_start(server));
    snprintf(target, sizeof target, "dns:///localhost:%d", port);
    CHECK(f.channel_create(rt, target, NULL, 0, &ch));
    if (round % 2 == 0) { /* one call answered, so the resolver has run at least once */
      CHECK(f.client_call_start(ch, "/t.T/Echo", 0, NULL, 0, "a", 1, SWIFTGRPC_DEADLINE_NONE, 0, q,
                                NULL, NULL, &call));
      swiftgrpc_event *ev;
      CHECK(f.queue_next(q, 10000, &ev));
      CHECK(ev->status_code);
      f.event_free(ev);
    }
    /* A call cancelled at once; then everything goes, with the resolver possibly still busy. */
    CHECK(f.client_call_start(ch, "/t.T/Echo", 0, NULL, 0, "b", 1, SWIFTGRPC_DEADLINE_NONE, 0, q,
                              NULL, NULL, &call));
    int cancelled = f.client_cancel(ch, call);  /* or it was answered already */
    CHECK(cancelled == SWIFTGRPC_E_TOKEN_CLOSED ? 0 : cancelled);
    CHECK(f.runtime_destroy(rt));
    /* Every library thread was joined; the kernel may still list one that has just exited (it
       wakes pthread_join before it is reaped, and nothing signals the reaping): allow it a
       moment, polling. A thread still running stays listed and fails the check. */
    for (int i = 0; i < 200 && threads() != base; i++) nanosleep(&(struct timespec){0, 5000000}, NULL);
    if (threads() != base) {
      fprintf(stderr, "FAIL round %d: %d threads alive after runtime_destroy (%d before)\n",
              round, threads(), base);
      return 1;
    }
    CHECK(dlclose(lib));
    if (mapped()) {
      fprintf(stderr, "FAIL round %d: the library is still mapped after dlclose\n", round);
      return 1;
    }
  }
  printf("50 rounds: no thread after destroy, library unloaded\n");
  return 0;
}
