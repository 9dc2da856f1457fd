/*
 * swiftgrpc_util.h — header-only conveniences for C hosts, built only on the public ABI.
 *
 *   swiftgrpc_md(key, value)        a swiftgrpc_metadata entry from two C strings
 *   swiftgrpc_md_bytes(key, p, n)   a swiftgrpc_metadata entry with a byte value (for -bin keys)
 *   swiftgrpc_event_copy(ev)        a deep copy of a borrowed event, released with free()
 *   swiftgrpc_md_find(ev, key)      the first metadata entry of an event with that key, or NULL
 *   swiftgrpc_trailer_find(ev, key) the same among the trailers of a CLIENT_STATUS event
 *
 * A host fn receives a borrowed event; to hand the work to another thread, copy it with
 * swiftgrpc_event_copy and return.
 */
#ifndef SWIFTGRPC_UTIL_H
#define SWIFTGRPC_UTIL_H

#include <stdlib.h>
#include <string.h>

#include "swiftgrpc.h"

#ifdef __cplusplus
extern "C" {
#endif

static inline swiftgrpc_metadata swiftgrpc_md(const char *key, const char *value) {
  swiftgrpc_metadata m;
  m.key = key;
  m.key_len = strlen(key);
  m.value = value;
  m.value_len = strlen(value);
  return m;
}

static inline swiftgrpc_metadata swiftgrpc_md_bytes(const char *key, const void *value, size_t len) {
  swiftgrpc_metadata m;
  m.key = key;
  m.key_len = strlen(key);
  m.value = (const char *)value;
  m.value_len = len;
  return m;
}

static inline const swiftgrpc_metadata *swiftgrpc_md_find(const swiftgrpc_event *ev, const char *key) {
  size_t n = strlen(key);
  for (size_t i = 0; i < ev->metadata_count; i++) {
    if (ev->metadata[i].key_len == n && memcmp(ev->metadata[i].key, key, n) == 0) return &ev->metadata[i];
  }
  return NULL;
}

static inline const swiftgrpc_metadata *swiftgrpc_trailer_find(const swiftgrpc_event *ev, const char *key) {
  size_t n = strlen(key);
  for (size_t i = 0; i < ev->trailer_count; i++) {
    if (ev->trailers[i].key_len == n && memcmp(ev->trailers[i].key, key, n) == 0) return &ev->trailers[i];
  }
  return NULL;
}

/* Deep-copies `ev` into one malloc'd block (strings NUL-terminated). Returns NULL when out of
   memory. Release with free(). */
static inline swiftgrpc_event *swiftgrpc_event_copy(const swiftgrpc_event *ev) {
  size_t n_md = ev->metadata_count + ev->trailer_count;
  size_t size = sizeof(swiftgrpc_event) + n_md * sizeof(swiftgrpc_metadata);
  size += ev->method_len + ev->authority_len + ev->peer_len + ev->message_len + ev->status_message_len + 5;
  for (size_t i = 0; i < ev->metadata_count; i++) size += ev->metadata[i].key_len + ev->metadata[i].value_len + 2;
  for (size_t i = 0; i < ev->trailer_count; i++) size += ev->trailers[i].key_len + ev->trailers[i].value_len + 2;
  char *block = (char *)malloc(size);
  if (!block) return NULL;
  swiftgrpc_event *copy = (swiftgrpc_event *)block;
  *copy = *ev;
  swiftgrpc_metadata *md = (swiftgrpc_metadata *)(block + sizeof(swiftgrpc_event));
  char *cursor = (char *)(md + n_md);
#define SWIFTGRPC_UTIL_PUT(dst, src, len) \
  do {                                    \
    memcpy(cursor, (src), (len));         \
    cursor[(len)] = 0;                    \
    (dst) = cursor;                       \
    cursor += (len) + 1;                  \
  } while (0)
  SWIFTGRPC_UTIL_PUT(copy->method, ev->method, ev->method_len);
  SWIFTGRPC_UTIL_PUT(copy->authority, ev->authority, ev->authority_len);
  SWIFTGRPC_UTIL_PUT(copy->peer, ev->peer, ev->peer_len);
  SWIFTGRPC_UTIL_PUT(copy->message, ev->message, ev->message_len);
  SWIFTGRPC_UTIL_PUT(copy->status_message, ev->status_message, ev->status_message_len);
  for (size_t i = 0; i < ev->metadata_count; i++) {
    md[i].key_len = ev->metadata[i].key_len;
    md[i].value_len = ev->metadata[i].value_len;
    SWIFTGRPC_UTIL_PUT(md[i].key, ev->metadata[i].key, ev->metadata[i].key_len);
    SWIFTGRPC_UTIL_PUT(md[i].value, ev->metadata[i].value, ev->metadata[i].value_len);
  }
  for (size_t i = 0; i < ev->trailer_count; i++) {
    swiftgrpc_metadata *t = &md[ev->metadata_count + i];
    t->key_len = ev->trailers[i].key_len;
    t->value_len = ev->trailers[i].value_len;
    SWIFTGRPC_UTIL_PUT(t->key, ev->trailers[i].key, ev->trailers[i].key_len);
    SWIFTGRPC_UTIL_PUT(t->value, ev->trailers[i].value, ev->trailers[i].value_len);
  }
#undef SWIFTGRPC_UTIL_PUT
  copy->metadata = md;
  copy->trailers = md + ev->metadata_count;
  return copy;
}

#ifdef __cplusplus
}
#endif

#endif /* SWIFTGRPC_UTIL_H */
