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

/* Bytes a copied metadata list needs for its strings (each NUL-terminated). */
static inline size_t swiftgrpc_util_md_size(const swiftgrpc_metadata *list, size_t count) {
  size_t size = 0;
  for (size_t i = 0; i < count; i++) size += list[i].key_len + list[i].value_len + 2;
  return size;
}

/* Copies `len` bytes to *cursor, NUL-terminates them, advances *cursor; returns the copy. */
static inline const char *swiftgrpc_util_put(char **cursor, const char *src, size_t len) {
  char *dst = *cursor;
  if (len) memcpy(dst, src, len);
  dst[len] = 0;
  *cursor += len + 1;
  return dst;
}

/* Copies a metadata list into `out` (its strings at *cursor); returns `out`. */
static inline const swiftgrpc_metadata *swiftgrpc_util_put_md(swiftgrpc_metadata *out, char **cursor,
                                                              const swiftgrpc_metadata *list, size_t count) {
  for (size_t i = 0; i < count; i++) {
    out[i].key_len = list[i].key_len;
    out[i].value_len = list[i].value_len;
    out[i].key = swiftgrpc_util_put(cursor, list[i].key, list[i].key_len);
    out[i].value = swiftgrpc_util_put(cursor, list[i].value, list[i].value_len);
  }
  return out;
}

/* Deep-copies `ev` (its strings, metadata, trailers and auth properties) into one malloc'd
   block (strings NUL-terminated). Returns NULL when out of memory. Release with free(). */
static inline swiftgrpc_event *swiftgrpc_event_copy(const swiftgrpc_event *ev) {
  size_t n_md = ev->metadata_count + ev->trailer_count + ev->auth_count;
  size_t size = sizeof(swiftgrpc_event) + n_md * sizeof(swiftgrpc_metadata);
  size += ev->method_len + ev->authority_len + ev->peer_len + ev->message_len + ev->status_message_len + 5;
  size += swiftgrpc_util_md_size(ev->metadata, ev->metadata_count);
  size += swiftgrpc_util_md_size(ev->trailers, ev->trailer_count);
  size += swiftgrpc_util_md_size(ev->auth, ev->auth_count);
  char *block = (char *)malloc(size);
  if (!block) return NULL;
  swiftgrpc_event *copy = (swiftgrpc_event *)block;
  *copy = *ev;
  swiftgrpc_metadata *md = (swiftgrpc_metadata *)(block + sizeof(swiftgrpc_event));
  char *cursor = (char *)(md + n_md);
  copy->method = swiftgrpc_util_put(&cursor, ev->method, ev->method_len);
  copy->authority = swiftgrpc_util_put(&cursor, ev->authority, ev->authority_len);
  copy->peer = swiftgrpc_util_put(&cursor, ev->peer, ev->peer_len);
  copy->message = swiftgrpc_util_put(&cursor, ev->message, ev->message_len);
  copy->status_message = swiftgrpc_util_put(&cursor, ev->status_message, ev->status_message_len);
  copy->metadata = swiftgrpc_util_put_md(md, &cursor, ev->metadata, ev->metadata_count);
  copy->trailers = swiftgrpc_util_put_md(md + ev->metadata_count, &cursor, ev->trailers, ev->trailer_count);
  copy->auth = swiftgrpc_util_put_md(md + ev->metadata_count + ev->trailer_count, &cursor, ev->auth,
                                     ev->auth_count);
  return copy;
}

#ifdef __cplusplus
}
#endif

#endif /* SWIFTGRPC_UTIL_H */
