/*
 * swiftgrpc_blocking.h — blocking client helpers for C users who want simple code. Header-only,
 * built only on the public ABI (push callbacks + a mutex and condition variable). Link pthread.
 *
 *   swiftgrpc_unary_blocking(...)     one unary call; waits for its CLIENT_STATUS event
 *   swiftgrpc_stream_open(...)        starts a server-streaming call
 *   swiftgrpc_stream_next(s, &msg)    the next response message (1), end of stream (0), or < 0
 *   swiftgrpc_stream_status(s)        waits for and returns the final CLIENT_STATUS event
 *   swiftgrpc_stream_close(s)         cancels the call if still running, waits, frees
 *
 * Every event handed out is a deep copy (swiftgrpc_event_copy) the caller owns and free()s,
 * except swiftgrpc_stream_status's, which the stream owns until swiftgrpc_stream_close.
 * Do not call these from inside a library callback: they wait for the loop thread.
 */
#ifndef SWIFTGRPC_BLOCKING_H
#define SWIFTGRPC_BLOCKING_H

#include <pthread.h>
#include <stdlib.h>

#include "swiftgrpc.h"
#include "swiftgrpc_util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct swiftgrpc_waiter_ {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  swiftgrpc_event *status;
} swiftgrpc_waiter_;

static void swiftgrpc_unary_cb_(const swiftgrpc_event *ev, void *tag) {
  swiftgrpc_waiter_ *w = (swiftgrpc_waiter_ *)tag;
  if (ev->type != SWIFTGRPC_EVENT_CLIENT_STATUS) return;
  swiftgrpc_event *copy = swiftgrpc_event_copy(ev);
  pthread_mutex_lock(&w->lock);
  w->status = copy;
  pthread_cond_signal(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

/* Makes one unary call and waits for its end. On SWIFTGRPC_OK, *out_status holds a copy of the
   CLIENT_STATUS event (status_code, status_message, metadata = initial metadata, trailers, and
   the response in message/message_len when status_code is 0); release it with free(). A
   negative result means the call could not start (nothing to free). `deadline_ns` as in
   swiftgrpc_client_call_start. */
static inline int swiftgrpc_unary_blocking(swiftgrpc_channel channel, const char *method,
                                           const swiftgrpc_metadata *metadata, size_t metadata_count,
                                           const void *request, size_t request_len,
                                           int64_t deadline_ns, uint32_t flags,
                                           swiftgrpc_event **out_status) {
  swiftgrpc_waiter_ w;
  swiftgrpc_call call;
  if (!out_status) return SWIFTGRPC_E_NULL_ARGUMENT;
  *out_status = NULL;
  pthread_mutex_init(&w.lock, NULL);
  pthread_cond_init(&w.cond, NULL);
  w.status = NULL;
  int rc = swiftgrpc_client_call_start(channel, method, SWIFTGRPC_KIND_UNARY, metadata,
                                       metadata_count, request, request_len, deadline_ns, flags, 0,
                                       swiftgrpc_unary_cb_, &w, &call);
  if (rc == SWIFTGRPC_OK) {
    pthread_mutex_lock(&w.lock);
    while (!w.status) pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    *out_status = w.status;
    if (!w.status) rc = SWIFTGRPC_E_NO_MEMORY;
  }
  pthread_cond_destroy(&w.cond);
  pthread_mutex_destroy(&w.lock);
  return rc;
}

typedef struct swiftgrpc_stream {
  swiftgrpc_channel channel;
  swiftgrpc_call call;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  swiftgrpc_event *message; /* answer to the outstanding read */
  int message_ready;
  int ended;                /* a read was answered with end of stream */
  swiftgrpc_event *status;
} swiftgrpc_stream;

static void swiftgrpc_stream_cb_(const swiftgrpc_event *ev, void *tag) {
  swiftgrpc_stream *s = (swiftgrpc_stream *)tag;
  if (ev->type == SWIFTGRPC_EVENT_CLIENT_MESSAGE) {
    swiftgrpc_event *copy = ev->has_message ? swiftgrpc_event_copy(ev) : NULL;
    pthread_mutex_lock(&s->lock);
    s->message = copy;
    s->message_ready = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
  } else if (ev->type == SWIFTGRPC_EVENT_CLIENT_STATUS) {
    swiftgrpc_event *copy = swiftgrpc_event_copy(ev);
    pthread_mutex_lock(&s->lock);
    s->status = copy;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
  }
}

/* Starts a server-streaming call; *out is released with swiftgrpc_stream_close. */
static inline int swiftgrpc_stream_open(swiftgrpc_channel channel, const char *method,
                                        const swiftgrpc_metadata *metadata, size_t metadata_count,
                                        const void *request, size_t request_len,
                                        int64_t deadline_ns, uint32_t flags,
                                        swiftgrpc_stream **out) {
  if (!out) return SWIFTGRPC_E_NULL_ARGUMENT;
  *out = NULL;
  swiftgrpc_stream *s = (swiftgrpc_stream *)calloc(1, sizeof *s);
  if (!s) return SWIFTGRPC_E_NO_MEMORY;
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->cond, NULL);
  s->channel = channel;
  int rc = swiftgrpc_client_call_start(channel, method, SWIFTGRPC_KIND_SERVER_STREAMING, metadata,
                                       metadata_count, request, request_len, deadline_ns, flags, 0,
                                       swiftgrpc_stream_cb_, s, &s->call);
  if (rc != SWIFTGRPC_OK) {
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return rc;
  }
  *out = s;
  return SWIFTGRPC_OK;
}

/* Waits for the next response message. Returns 1 and stores a copy in *out_message (free() it),
   0 at the end of the stream (then see swiftgrpc_stream_status), or a negative result code. */
static inline int swiftgrpc_stream_next(swiftgrpc_stream *s, swiftgrpc_event **out_message) {
  if (!s || !out_message) return SWIFTGRPC_E_NULL_ARGUMENT;
  *out_message = NULL;
  pthread_mutex_lock(&s->lock);
  if (s->ended || s->status) {
    pthread_mutex_unlock(&s->lock);
    return 0;
  }
  s->message_ready = 0;
  int rc = swiftgrpc_client_read(s->channel, s->call);
  if (rc == SWIFTGRPC_E_TOKEN_CLOSED) {
    pthread_mutex_unlock(&s->lock);
    return 0; /* the status was delivered meanwhile */
  }
  if (rc != SWIFTGRPC_OK) {
    pthread_mutex_unlock(&s->lock);
    return rc;
  }
  while (!s->message_ready) pthread_cond_wait(&s->cond, &s->lock);
  *out_message = s->message;
  s->message = NULL;
  if (!*out_message) s->ended = 1;
  pthread_mutex_unlock(&s->lock);
  return *out_message ? 1 : 0;
}

/* Waits for the call's CLIENT_STATUS event and returns it (owned by the stream). For an OK
   status, read every message first: the status follows the last one. */
static inline const swiftgrpc_event *swiftgrpc_stream_status(swiftgrpc_stream *s) {
  if (!s) return NULL;
  pthread_mutex_lock(&s->lock);
  while (!s->status) pthread_cond_wait(&s->cond, &s->lock);
  pthread_mutex_unlock(&s->lock);
  return s->status;
}

/* Cancels the call if it is still running, waits for its status, and frees the stream. */
static inline void swiftgrpc_stream_close(swiftgrpc_stream *s) {
  if (!s) return;
  swiftgrpc_client_cancel(s->channel, s->call); /* TOKEN_CLOSED if already over: fine */
  swiftgrpc_stream_status(s);
  free(s->message);
  free(s->status);
  pthread_cond_destroy(&s->cond);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

#ifdef __cplusplus
}
#endif

#endif /* SWIFTGRPC_BLOCKING_H */
