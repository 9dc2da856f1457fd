/*
 * swiftgrpc.h — the C ABI of libswiftgrpc.so, a gRPC runtime written in Swift on libnghttp2.
 *
 * This header is the reference manual. Every function says what it does, who owns each buffer
 * and for how long, which threads may call it, which thread calls back, and what it returns.
 *
 * Conventions that hold for every function unless its comment says otherwise:
 *
 *  - Results. Every function returns an int: SWIFTGRPC_OK (0) on success or a negative
 *    SWIFTGRPC_E_* code. A failed call changes no state. The last failure's message is kept per
 *    thread: swiftgrpc_last_error(). Static text per code: swiftgrpc_errstr().
 *  - Handles (swiftgrpc_runtime, swiftgrpc_server, swiftgrpc_queue, swiftgrpc_channel) are 64-bit
 *    ids from a locked registry: monotonic, never reused, 0 = none, and type-checked on every
 *    call. A stale, destroyed or foreign handle yields SWIFTGRPC_E_BAD_HANDLE, never a crash.
 *    Server call tokens and client call handles (swiftgrpc_call) are never reused either.
 *  - Buffers handed in are borrowed for the duration of the call and copied before it returns.
 *    Buffers handed to a callback are borrowed until the callback returns. Memory the library
 *    allocates for the caller is released with swiftgrpc_event_free().
 *  - Byte strings are (pointer, length) pairs; a NULL pointer is allowed only with length 0.
 *    C strings (const char *) are NUL-terminated UTF-8.
 *  - Thread safety: every function is thread-safe unless marked otherwise.
 *
 * Threading model. A runtime owns N event-loop threads. Every connection is owned by one loop;
 * a channel and all its connections and calls are owned by one loop.
 * Host functions (swiftgrpc_register_host_fn) are invoked on a loop thread and must return
 * promptly: copy what is needed, hand the work to the host's own threads, return. A host fn that
 * blocks starves every connection on its loop. Answers (swiftgrpc_call_*, swiftgrpc_host_complete)
 * may be made from any thread, including from inside the host fn; they never block on I/O: they
 * enqueue onto the loop's completion queue and wake the loop with an eventfd.
 */
#ifndef SWIFTGRPC_H
#define SWIFTGRPC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Version                                                                                    */
/* ------------------------------------------------------------------------------------------ */

#define SWIFTGRPC_VERSION_MAJOR 0
#define SWIFTGRPC_VERSION_MINOR 9
#define SWIFTGRPC_VERSION_PATCH 0
/* MAJOR * 1000000 + MINOR * 1000 + PATCH. Bindings assert it equals swiftgrpc_version_number().
   0.4.0 changed one behaviour (pre-1.0 minor versions may): a server host sends one response
   message at a time and waits for its SWIFTGRPC_EVENT_SEND_DONE before the next (send
   back-pressure); see swiftgrpc_call_send_message. 0.5.0 added TLS (additions only). 0.6.0
   added per-call host tags (swiftgrpc_call_set_tag) and the non-blocking
   swiftgrpc_server_shutdown_notify (additions only). 0.7.0 added swiftgrpc_queue_fd, a queue's
   readiness descriptor for hosts with an event loop of their own (additions only). 0.8.0 added
   sending compressed messages (SWIFTGRPC_COMPRESS_*, the _v2 sends with SWIFTGRPC_WRITE_*
   flags, swiftgrpc_call_set_compression) and swiftgrpc_event.message_flags, server connection
   management (keepalive and ping enforcement, connection idle and age, SO_REUSEPORT: options
   8-16), the built-in health service (swiftgrpc_server_enable_health, _set_health) and DNS
   re-resolution (additions only; a graceful GOAWAY now goes in two steps, and a client retries
   refused unary-request calls transparently). 0.9.0 added the server-wide limit on calls held by
   hosts, SWIFTGRPC_OPT_MAX_CONCURRENT_CALLS, and fork() support (see Runtime) (additions only). */
#define SWIFTGRPC_VERSION_NUMBER 9000
#define SWIFTGRPC_VERSION_STRING "0.9.0"

/* Returns SWIFTGRPC_VERSION_NUMBER of the loaded library. Thread-safe; never fails. */
int swiftgrpc_version_number(void);

/* Returns SWIFTGRPC_VERSION_STRING of the loaded library: static storage, never freed. */
const char *swiftgrpc_version_string(void);

/* ------------------------------------------------------------------------------------------ */
/* Result codes (append-only: codes are never removed or renumbered)                          */
/* ------------------------------------------------------------------------------------------ */

#define SWIFTGRPC_OK 0
/* A required pointer argument was NULL. */
#define SWIFTGRPC_E_NULL_ARGUMENT -1
/* A handle is 0, stale (destroyed), never issued, or of the wrong type. */
#define SWIFTGRPC_E_BAD_HANDLE -2
/* An argument is out of range or malformed (method name, kind, option, address, length). */
#define SWIFTGRPC_E_INVALID_ARGUMENT -3
/* A metadata key is illegal (not [0-9a-z_.-], reserved "grpc-" prefix, pseudo header) or a
   string value is not printable ASCII. (grpc-status-details-bin is allowed: see
   swiftgrpc_metadata.) */
#define SWIFTGRPC_E_INVALID_METADATA -4
/* A C string is not valid UTF-8. */
#define SWIFTGRPC_E_INVALID_UTF8 -5
/* The call is not allowed in the object's current state (listen after start, register after
   start, start twice, read on a unary call, ...). */
#define SWIFTGRPC_E_WRONG_STATE -6
/* The token was never issued by this server. (An unknown client call handle is
   SWIFTGRPC_E_BAD_HANDLE.) */
#define SWIFTGRPC_E_UNKNOWN_TOKEN -7
/* The token's call has ended: it finished, or was cancelled (the host was sent
   SWIFTGRPC_EVENT_CANCELLED), or its server was shut down. For a client call: its
   SWIFTGRPC_EVENT_CLIENT_STATUS event was delivered (or is being delivered). */
#define SWIFTGRPC_E_TOKEN_CLOSED -8
/* swiftgrpc_host_complete was already accepted for this token. */
#define SWIFTGRPC_E_ALREADY_COMPLETED -9
/* The method is already registered on this server. */
#define SWIFTGRPC_E_ALREADY_EXISTS -10
/* A system call failed (bind, listen, thread creation, ...); the message names it. */
#define SWIFTGRPC_E_SYSTEM -11
/* A message exceeds the configured maximum size. */
#define SWIFTGRPC_E_TOO_LARGE -12
/* The function was called from one of the runtime's own loop threads (inside a host fn) where
   that would deadlock: shutdown and destroy functions. Call them from a host thread. */
#define SWIFTGRPC_E_RECURSIVE_CALL -13
/* swiftgrpc_queue_next timed out with no event. Not a failure of the queue. */
#define SWIFTGRPC_E_TIMEOUT -14
/* The queue was shut down and holds no more events. */
#define SWIFTGRPC_E_SHUTDOWN -15
/* The library could not allocate memory. */
#define SWIFTGRPC_E_NO_MEMORY -16

/* Returns static text describing a result code ("unknown result code" for others). */
const char *swiftgrpc_errstr(int code);

/* Returns the message of the last failed call on the calling thread, or "" if none. The pointer
   is valid until the next swiftgrpc_* call on the same thread fails. Thread-safe (per thread). */
const char *swiftgrpc_last_error(void);

/* ------------------------------------------------------------------------------------------ */
/* gRPC status codes (call outcomes, separate from result codes)                              */
/* ------------------------------------------------------------------------------------------ */

#define SWIFTGRPC_STATUS_OK 0
#define SWIFTGRPC_STATUS_CANCELLED 1
#define SWIFTGRPC_STATUS_UNKNOWN 2
#define SWIFTGRPC_STATUS_INVALID_ARGUMENT 3
#define SWIFTGRPC_STATUS_DEADLINE_EXCEEDED 4
#define SWIFTGRPC_STATUS_NOT_FOUND 5
#define SWIFTGRPC_STATUS_ALREADY_EXISTS 6
#define SWIFTGRPC_STATUS_PERMISSION_DENIED 7
#define SWIFTGRPC_STATUS_RESOURCE_EXHAUSTED 8
#define SWIFTGRPC_STATUS_FAILED_PRECONDITION 9
#define SWIFTGRPC_STATUS_ABORTED 10
#define SWIFTGRPC_STATUS_OUT_OF_RANGE 11
#define SWIFTGRPC_STATUS_UNIMPLEMENTED 12
#define SWIFTGRPC_STATUS_INTERNAL 13
#define SWIFTGRPC_STATUS_UNAVAILABLE 14
#define SWIFTGRPC_STATUS_DATA_LOSS 15
#define SWIFTGRPC_STATUS_UNAUTHENTICATED 16

/* ------------------------------------------------------------------------------------------ */
/* Handles and shared types                                                                   */
/* ------------------------------------------------------------------------------------------ */

typedef uint64_t swiftgrpc_runtime;
typedef uint64_t swiftgrpc_server;
typedef uint64_t swiftgrpc_queue;
typedef uint64_t swiftgrpc_channel;
/* A client call: an id issued by swiftgrpc_client_call_start, valid until its STATUS event. */
typedef uint64_t swiftgrpc_call;

/* One metadata entry. Keys are lowercase ASCII [0-9a-z_.-]. Values of keys ending in "-bin" are
   arbitrary bytes (base64 on the wire, handled by the library); other values are printable
   ASCII (0x20-0x7E). Entries with the same key are kept in order. Keys starting "grpc-" belong
   to the protocol, but for "grpc-status-details-bin" (a serialized google.rpc.Status, gRPC's
   rich error model): a server host sets it as a trailer, a client reads it among the trailers,
   unchanged both ways, as grpcio-status and the grpc gem's to_rpc_status expect.

   Message compression (0.7.0): messages a peer sends compressed with gzip or deflate (its
   grpc-encoding) are inflated by the library, up to the receive limit (a message that would
   inflate beyond it ends the call RESOURCE_EXHAUSTED, having allocated no more than the limit;
   corrupt data ends it INTERNAL); a request in another encoding is answered UNIMPLEMENTED.
   Servers and clients advertise grpc-accept-encoding "identity,deflate,gzip". Hosts always see
   messages uncompressed (an event's message_flags says whether one came compressed).

   Sending compressed (0.8.0): a channel (SWIFTGRPC_CHANNEL_DEFAULT_COMPRESSION), a client call
   (SWIFTGRPC_CALL_COMPRESS_* flags), a server (SWIFTGRPC_OPT_DEFAULT_COMPRESSION) and a server
   call (swiftgrpc_call_set_compression) choose a SWIFTGRPC_COMPRESS_* algorithm; a message sent
   with SWIFTGRPC_WRITE_NO_COMPRESS goes uncompressed in a compressed call (C-core's
   GRPC_WRITE_NO_COMPRESS), and so does one that compression would not make smaller, as C-core
   does. A server never compresses toward a client whose grpc-accept-encoding did not list the
   algorithm (none sent: identity only); a client does not compress in an algorithm the
   channel's servers did not list in their last response headers. The library compresses on the
   loop thread of the call. */
typedef struct swiftgrpc_metadata {
  const char *key;
  size_t key_len;
  const char *value;
  size_t value_len;
} swiftgrpc_metadata;

/* RPC kinds, given when registering a method. */
#define SWIFTGRPC_KIND_UNARY 0
#define SWIFTGRPC_KIND_SERVER_STREAMING 1
#define SWIFTGRPC_KIND_CLIENT_STREAMING 2
#define SWIFTGRPC_KIND_BIDI_STREAMING 3

/* Compression algorithms (0.8.0), numbered as gRPC C-core's grpc_compression_algorithm and
   grpcio's grpc.Compression. */
#define SWIFTGRPC_COMPRESS_NONE 0
#define SWIFTGRPC_COMPRESS_DEFLATE 1
#define SWIFTGRPC_COMPRESS_GZIP 2

/* Flags of a sent message (swiftgrpc_call_send_message_v2, swiftgrpc_client_send_message_v2). */
/* This message goes uncompressed, whatever the call's compression. */
#define SWIFTGRPC_WRITE_NO_COMPRESS 1u

/* ------------------------------------------------------------------------------------------ */
/* Runtime                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* fork() (0.9.0). A process that made a runtime may fork. The library holds its process-wide locks
   across fork() (pthread_atfork), so the child's copy of the library is consistent. In the child,
   every runtime made before fork() is abandoned with its servers, channels and queues: their loop
   threads do not exist there. Their handles answer SWIFTGRPC_E_BAD_HANDLE ("created before
   fork()"), their destroy functions do nothing, and the library closes its copies of their
   sockets and descriptors. It never shuts them down, so the parent's connections are untouched
   and the child holds none of them open. The child makes new runtimes and uses them normally.
   Credentials handles stay valid. The parent goes on unaffected. Not supported: fork() from a
   loop thread (inside a host function). */

/* Constructor. Creates a runtime with `loop_threads` event-loop threads (0 = one per core, at
   most 64) and stores its handle in *out.
   Returns SWIFTGRPC_E_NULL_ARGUMENT, SWIFTGRPC_E_INVALID_ARGUMENT (loop_threads > 64) or
   SWIFTGRPC_E_SYSTEM (thread or epoll creation failed). */
int swiftgrpc_runtime_create(uint32_t loop_threads, swiftgrpc_runtime *out);

/* Destructor. Destroys every channel, server and queue of the runtime (as
   swiftgrpc_channel_destroy / swiftgrpc_server_destroy: outstanding calls are failed, the host is
   told), stops and joins the loop threads and the name-resolution thread. No host fn runs and no
   library thread is alive after it returns, so the library may then be unloaded (dlclose). Accepts 0 and already-destroyed handles (returns SWIFTGRPC_OK).
   Must not be called from a loop thread (SWIFTGRPC_E_RECURSIVE_CALL). */
int swiftgrpc_runtime_destroy(swiftgrpc_runtime runtime);

/* Returns the current CLOCK_MONOTONIC time in nanoseconds: the clock of event deadlines. */
int64_t swiftgrpc_now_ns(void);

/* ------------------------------------------------------------------------------------------ */
/* Server events                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* A new call. Carries method, authority, peer, request metadata and deadline. For UNARY and
   SERVER_STREAMING methods it also carries the single request message (delivered once the
   client has sent it and half-closed). For CLIENT_STREAMING and BIDI_STREAMING methods it
   carries no message: call swiftgrpc_call_read() to receive each one. */
#define SWIFTGRPC_EVENT_CALL 1
/* A request message for a streaming-request call, in answer to swiftgrpc_call_read(). */
#define SWIFTGRPC_EVENT_MESSAGE 2
/* The client half-closed: no more request messages. In answer to swiftgrpc_call_read(). */
#define SWIFTGRPC_EVENT_HALF_CLOSE 3
/* The call ended before the host completed it: the client cancelled or disconnected
   (status_code CANCELLED), the deadline passed (DEADLINE_EXCEEDED), or the server was shut down
   (UNAVAILABLE). The token is closed: later answers return SWIFTGRPC_E_TOKEN_CLOSED. It stands
   for the outstanding read and send too (no MESSAGE or SEND_DONE follows). Exactly one of
   "host_complete accepted" and "CANCELLED delivered" happens for every token delivered to the
   host: a call cancelled while its CALL event still waits in a pull queue is taken back from the
   queue, and the host never sees either event. No event follows an accepted host_complete. */
#define SWIFTGRPC_EVENT_CANCELLED 4

/* Client-call events (see "Client calls" below). Per call they arrive in order, and
   CLIENT_STATUS is always the last one. */
/* Response headers arrived: `metadata` holds them. Server-streaming and bidi calls only, at
   most once, before their first CLIENT_MESSAGE (absent if the server answered trailers-only). */
#define SWIFTGRPC_EVENT_CLIENT_INITIAL_METADATA 5
/* Answers swiftgrpc_client_read: has_message 1 with the next response message, or has_message 0:
   the response stream is over (the status follows). */
#define SWIFTGRPC_EVENT_CLIENT_MESSAGE 6
/* Answers swiftgrpc_client_send_message: status_code 0 once the message was handed to HTTP/2
   (flow control let it out), else the code of the status that ended the call first. */
#define SWIFTGRPC_EVENT_CLIENT_SEND_DONE 7
/* The call is over: status_code, status_message and trailers. For SERVER_STREAMING and BIDI
   calls the server's status comes after a read found the end of the stream; local ends
   (cancel, deadline, connection loss, destroy) come at once and drop unread messages. `metadata` holds the initial
   metadata (empty if none came). For UNARY and CLIENT_STREAMING calls with status OK the
   response is in `message` (has_message 1). The call handle is closed afterwards. */
#define SWIFTGRPC_EVENT_CLIENT_STATUS 8

/* Server (added in 0.4.0). Answers swiftgrpc_call_send_message: the message was handed to HTTP/2
   (flow control let it out); one more may be sent. status_code 0. A host that sends faster
   than the client reads is paced by it: the library holds at most the host's outstanding sends
   (SWIFTGRPC_MAX_OUTSTANDING_SENDS) unsent per call. */
#define SWIFTGRPC_EVENT_SEND_DONE 9

/* Call credentials plugin (added in 0.5.0): metadata for a call is asked for. `token` is the
   request (answer it with swiftgrpc_call_credentials_answer), `method` the method's name,
   `authority` the service URL ("https://host:port/package.Service"), `tag` the plugin's
   user_data. */
#define SWIFTGRPC_EVENT_CREDENTIALS_REQUEST 10

/* Server credentials fetcher (added in 0.5.0): a connection is about to be accepted; see
   swiftgrpc_server_credentials_set_fetcher. `token` is the credentials handle. */
#define SWIFTGRPC_EVENT_CREDENTIALS_FETCH 11
/* (0.6.0) A shutdown begun with swiftgrpc_server_shutdown_notify is over: every call has ended
   and every connection is closed. `server` is the server, `tag` the notification's tag, `token`
   0. Delivered to the queue given there. */
#define SWIFTGRPC_EVENT_SERVER_SHUTDOWN 12

/* An event for a server call. In a host fn it is borrowed until the fn returns; from
   swiftgrpc_queue_next it is owned by the caller and released with swiftgrpc_event_free().
   Byte strings are not NUL-terminated unless stated; every pointer is valid (never NULL) even
   when its length is 0. */
typedef struct swiftgrpc_event {
  int32_t type;                      /* SWIFTGRPC_EVENT_* */
  int32_t kind;                      /* SWIFTGRPC_KIND_* of the method */
  uint64_t token;                    /* the call; never reused within the runtime */
  swiftgrpc_server server;           /* the server the call belongs to */
  const char *method;                /* "/pkg.Service/Method"; NUL-terminated */
  size_t method_len;
  const char *authority;             /* :authority; NUL-terminated ("" if absent) */
  size_t authority_len;
  const char *peer;                  /* "ipv4:127.0.0.1:5555", "ipv6:[::1]:5555", "unix:/path" */
  size_t peer_len;
  const swiftgrpc_metadata *metadata; /* request metadata (CALL only; -bin values decoded) */
  size_t metadata_count;
  int64_t deadline_ns;               /* absolute swiftgrpc_now_ns() deadline; INT64_MAX if none */
  const char *message;               /* request message (CALL of unary/server-streaming, MESSAGE);
                                        `message_len` bytes, not NUL-terminated */
  size_t message_len;
  int32_t has_message;               /* 1 if `message` carries a message (it may be empty) */
  int32_t status_code;               /* CANCELLED: why; CLIENT_STATUS: the status;
                                        CLIENT_SEND_DONE: 0, or the status that ended the call */
  /* Appended in 0.2.0 for client calls (zero / empty for server events). For a client event
     `token` is the swiftgrpc_call, `server` is 0, and `method` is the call's method. */
  swiftgrpc_channel channel;         /* the client call's channel */
  void *tag;                         /* the tag given to swiftgrpc_client_call_start; for a server
                                        call (0.6.0) the one bound by swiftgrpc_call_set_tag */
  const char *status_message;        /* CLIENT_STATUS: UTF-8, NUL-terminated ("" if none) */
  size_t status_message_len;
  const swiftgrpc_metadata *trailers; /* CLIENT_STATUS: trailing metadata (-bin values decoded) */
  size_t trailer_count;
  /* Appended in 0.5.0. CALL: the connection's auth properties, gRPC C-core's auth context as
     (property, value) pairs: "transport_security_type" ("insecure" or "ssl") and
     "security_level"; on TLS "ssl_tls_version", "ssl_session_reused", "ssl_requested_server_name"
     (the client's SNI), and for a client that sent a verified certificate "x509_subject"
     (RFC 2253), "x509_common_name", "x509_subject_alternative_name" (one per SAN), "peer_dns",
     "peer_uri", "peer_email", "peer_ip" (one per SAN of that type), "peer_spiffe_id" (the one
     URI SAN, if it is spiffe://), "x509_pem_cert", and "x509_pem_cert_chain" (the further
     certificates the client sent, if any). Empty for other events. */
  const swiftgrpc_metadata *auth;
  size_t auth_count;
  /* Appended in 0.8.0. SWIFTGRPC_MESSAGE_* bits about `message`: SWIFTGRPC_MESSAGE_COMPRESSED if
     the peer sent it compressed (it is handed over inflated either way). */
  uint32_t message_flags;
} swiftgrpc_event;

/* Bits of swiftgrpc_event.message_flags (0.8.0). */
#define SWIFTGRPC_MESSAGE_COMPRESSED 1u

/* A host function: invoked on a loop thread for every event of the calls of the methods it was
   registered for (server side), or of a client call started with it (client side). `event` is borrowed until it returns. It must return promptly and must not
   call swiftgrpc_server_shutdown/destroy or swiftgrpc_runtime_destroy (they return
   SWIFTGRPC_E_RECURSIVE_CALL there); the swiftgrpc_call_* answers are allowed. */
typedef void (*swiftgrpc_host_fn)(const swiftgrpc_event *event, void *user_data);

/* ------------------------------------------------------------------------------------------ */
/* Event queues (pull model)                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* Constructor. Creates an event queue on `runtime`. Methods registered with
   swiftgrpc_register_host_queue push their events onto it; host threads take them with
   swiftgrpc_queue_next (the model of gRPC C-core's grpc_completion_queue_next). */
int swiftgrpc_queue_create(swiftgrpc_runtime runtime, swiftgrpc_queue *out);

/* Method. Waits up to `timeout_ms` milliseconds (< 0: forever, 0: poll) for the next event and
   stores it in *out; the caller owns it and releases it with swiftgrpc_event_free().
   Returns SWIFTGRPC_E_TIMEOUT if none came, SWIFTGRPC_E_SHUTDOWN once the queue is shut down and
   empty. Blocks the calling thread (bindings release their interpreter lock around it).
   A caller that finds the queue empty first spins for up to 50 µs (yielding the CPU with
   sched_yield, never past its timeout), then sleeps: waking a sleeping thread costs more than
   the hand-off itself on virtual machines (a Ruby client's unary call at concurrency 1 went
   from 381 to 204 µs p50 with it). The environment variable SWIFTGRPC_QUEUE_SPIN_US, read
   when a queue is created, sets the spin (0: none; at most 10000). The same holds for
   swiftgrpc_queue_next_batch. */
int swiftgrpc_queue_next(swiftgrpc_queue queue, int64_t timeout_ms, swiftgrpc_event **out);

/* Method (added in 0.5.0). Like swiftgrpc_queue_next, but takes up to `max` events in one call:
   waits up to `timeout_ms` for the first, then takes those already queued behind it without
   waiting. Stores them in out[0] .. out[*out_count - 1] (each owned by the caller, released
   with swiftgrpc_event_free) and their number in *out_count (at least 1 on success, 0
   otherwise). One wake-up and one call per batch instead of per event. The same errors as
   swiftgrpc_queue_next, and SWIFTGRPC_E_INVALID_ARGUMENT for `max` 0. */
int swiftgrpc_queue_next_batch(swiftgrpc_queue queue, int64_t timeout_ms, swiftgrpc_event **out,
                               size_t max, size_t *out_count);

/* Method (added in 0.7.0). Stores in *out a file descriptor that becomes readable when an event
   lands on the empty queue, and when the queue is shut down: for hosts that run an event loop of
   their own (asyncio's add_reader, Ruby's IO.select, libuv, epoll), which then need no thread
   blocked in swiftgrpc_queue_next. The protocol: when it is readable, read 8 bytes from it (that
   clears it; it is non-blocking), then take events with a timeout of 0 until
   SWIFTGRPC_E_TIMEOUT (the queue is empty) or SWIFTGRPC_E_SHUTDOWN: events left in the queue
   make it readable no more. The descriptor belongs to the queue:
   do not close it; stop watching it before swiftgrpc_queue_destroy, which closes it. The same
   descriptor on every call. SWIFTGRPC_E_SYSTEM if no eventfd could be created. Thread-safe. */
int swiftgrpc_queue_fd(swiftgrpc_queue queue, int *out);

/* Method. Shuts the queue down: waiting and later swiftgrpc_queue_next calls return the events
   still queued, then SWIFTGRPC_E_SHUTDOWN. Events produced afterwards are dropped, and their
   calls are cancelled by the library. Idempotent. */
int swiftgrpc_queue_shutdown(swiftgrpc_queue queue);

/* Destructor. Shuts the queue down, frees the events still in it and invalidates the handle.
   Accepts 0 and already-destroyed handles. */
int swiftgrpc_queue_destroy(swiftgrpc_queue queue);

/* Releases an event returned by swiftgrpc_queue_next. Accepts NULL. */
void swiftgrpc_event_free(swiftgrpc_event *event);

/* ------------------------------------------------------------------------------------------ */
/* Server                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Constructor. Creates a stopped server on `runtime`. */
int swiftgrpc_server_create(swiftgrpc_runtime runtime, swiftgrpc_server *out);

/* Server options (swiftgrpc_server_set_option), settable before swiftgrpc_server_start. Every
   resource a client can make the server hold is bounded; these set the bounds. */
/* Maximum request message size in bytes (default 4 MiB); larger → RESOURCE_EXHAUSTED. */
#define SWIFTGRPC_OPT_MAX_RECV_MESSAGE_SIZE 1
/* Maximum response message size in bytes (default unlimited, at most 2^32 - 1). */
#define SWIFTGRPC_OPT_MAX_SEND_MESSAGE_SIZE 2
/* Streams served at once per connection (default 100, 1 to 2^31 - 1), advertised as HTTP/2
   SETTINGS_MAX_CONCURRENT_STREAMS. A client that opens more gets each excess stream refused
   (RST_STREAM REFUSED_STREAM) while its other calls go on. */
#define SWIFTGRPC_OPT_MAX_CONCURRENT_STREAMS 3
/* (0.4.0) Largest decoded request header block in bytes (default 16384, at least 1024): the sum
   of name + value + 32 per field (RFC 7541), advertised as SETTINGS_MAX_HEADER_LIST_SIZE. A
   larger request is answered RESOURCE_EXHAUSTED without storing the excess. */
#define SWIFTGRPC_OPT_MAX_METADATA_SIZE 4
/* (0.4.0) Milliseconds a new connection has to send the HTTP/2 preface and its SETTINGS before it
   is closed (default 120000, as gRPC C-core's server handshake timeout). */
#define SWIFTGRPC_OPT_HANDSHAKE_TIMEOUT_MS 5
/* (0.4.0) Control frames a connection may send per second (PING, SETTINGS, WINDOW_UPDATE,
   PRIORITY, RST_STREAM, empty DATA, unknown types), in bursts of as many; each DATA frame the
   server sends earns one back. A peer over the budget gets GOAWAY ENHANCE_YOUR_CALM and the
   connection closes. Default 1000; 0: no limit. */
#define SWIFTGRPC_OPT_MAX_CONTROL_FRAMES_PER_SECOND 6
/* (0.8.0) SWIFTGRPC_COMPRESS_* algorithm responses are compressed in, toward clients that accept
   it (default SWIFTGRPC_COMPRESS_NONE); swiftgrpc_call_set_compression chooses per call. */
#define SWIFTGRPC_OPT_DEFAULT_COMPRESSION 7
/* Connection management (0.8.0), gRFCs A8 and A9, with gRPC C-core's server defaults. Times in
   milliseconds; for the *_MS options below that are off by default, 0 turns them off again. */
/* A PING every this long on a connection with a call open (or on any connection with
   SWIFTGRPC_OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS); default 7200000 (2 hours); 0: none. */
#define SWIFTGRPC_OPT_KEEPALIVE_TIME_MS 8
/* A keepalive PING not acknowledged this long closes the connection (its calls' hosts get
   CANCELLED, its clients UNAVAILABLE); default 20000. */
#define SWIFTGRPC_OPT_KEEPALIVE_TIMEOUT_MS 9
/* 1: keepalive PINGs are sent, and a client's PINGs allowed at the minimum interval, also with no
   call open; default 0 (then a client PING with no call open is a strike if it comes within 2
   hours of the last one). */
#define SWIFTGRPC_OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS 10
/* The shortest interval allowed between a client's PINGs while the server sends no DATA or
   HEADERS (grpc.http2.min_ping_interval_without_data_ms); sooner is a strike; default 300000. */
#define SWIFTGRPC_OPT_MIN_PING_INTERVAL_WITHOUT_DATA_MS 11
/* Strikes allowed before the connection ends with GOAWAY ENHANCE_YOUR_CALM, debug data
   "too_many_pings" (gRPC clients then double their keepalive time); sending DATA or HEADERS
   forgives them. Default 2; 0: no limit. */
#define SWIFTGRPC_OPT_MAX_PING_STRIKES 12
/* A connection with no call open this long gets a graceful GOAWAY, debug data "max_idle";
   default off. */
#define SWIFTGRPC_OPT_MAX_CONNECTION_IDLE_MS 13
/* A connection this old (+-10% jitter) gets a graceful GOAWAY, debug data "max_age": clients
   move new calls to a new connection (and so rebalance, and re-resolve names); default off. */
#define SWIFTGRPC_OPT_MAX_CONNECTION_AGE_MS 14
/* After the max-age GOAWAY, the calls still running this long are failed (UNAVAILABLE) and the
   connection closed; default off (they may run to their end). */
#define SWIFTGRPC_OPT_MAX_CONNECTION_AGE_GRACE_MS 15
/* (0.8.0) 1: SO_REUSEPORT on the TCP addresses listened on after it is set, so that several
   server processes share a port (the kernel spreads connections). Default 0: grpcio's default
   is 1, which lets a second server start on a port in use without an error. */
#define SWIFTGRPC_OPT_SO_REUSEPORT 16
/* (0.9.0) Calls the server's hosts hold at once, over all its connections (grpcio's
   maximum_concurrent_rpcs): a call arriving while this many are open (from their CALL event to
   the host's completion or their cancellation) is answered RESOURCE_EXHAUSTED "Concurrent RPC
   limit exceeded!" and never reaches a host. Default 0: no limit. */
#define SWIFTGRPC_OPT_MAX_CONCURRENT_CALLS 17

/* Method. Sets an integer option. SWIFTGRPC_E_WRONG_STATE after start; SWIFTGRPC_E_INVALID_ARGUMENT
   for an unknown option or a value out of range. */
int swiftgrpc_server_set_option(swiftgrpc_server server, int option, int64_t value);

/* Method. Registers a host function for `method` ("/pkg.Service/Method") of RPC `kind`.
   `fn` is invoked on a loop thread for every event of every call of that method, with
   `user_data`, until the server is destroyed; the host keeps `user_data` valid that long.
   Before start only (SWIFTGRPC_E_WRONG_STATE); SWIFTGRPC_E_ALREADY_EXISTS if registered. */
int swiftgrpc_register_host_fn(swiftgrpc_server server, const char *method, int kind,
                               swiftgrpc_host_fn fn, void *user_data);

/* (0.6.0) A batch host function: handed, at the end of each loop iteration, every event of the
   methods it was registered for that the iteration produced, in order (`count` >= 1). Each
   event and the array are borrowed until it returns. The rules of a host fn apply: it runs on a
   loop thread, must return promptly, may answer calls. One wake-up of the host's own threads per
   batch instead of one per event is what it is for. */
typedef void (*swiftgrpc_host_batch_fn)(const swiftgrpc_event *const *events, size_t count,
                                        void *user_data);

/* Method (added in 0.6.0). Like swiftgrpc_register_host_fn, but the events of `method` are
   handed to `fn` in batches: all those of one loop iteration in one call. Events delivered
   outside a loop iteration (swiftgrpc_server_probe's CALLs) come as batches of one. */
int swiftgrpc_register_host_batch_fn(swiftgrpc_server server, const char *method, int kind,
                                     swiftgrpc_host_batch_fn fn, void *user_data);

/* Method. Like swiftgrpc_register_host_fn, but the events of `method` are pushed onto `queue`
   (of the same runtime) instead of invoking a function. */
int swiftgrpc_register_host_queue(swiftgrpc_server server, const char *method, int kind,
                                  swiftgrpc_queue queue);

/* Health checking (0.8.0): grpc.health.v1.Health served by the library (gRPC's
   doc/health-checking.md; what Kubernetes gRPC probes and grpc_health_probe call). Statuses: */
#define SWIFTGRPC_HEALTH_UNKNOWN 0
#define SWIFTGRPC_HEALTH_SERVING 1
#define SWIFTGRPC_HEALTH_NOT_SERVING 2
#define SWIFTGRPC_HEALTH_SERVICE_UNKNOWN 3

/* Method (added in 0.8.0). Serves /grpc.health.v1.Health/Check and /Watch from the library: Check
   answers a service's status (NOT_FOUND for one never set), Watch sends it and every change
   (SERVICE_UNKNOWN for one never set). The overall status (service "") starts SERVING. A
   graceful shutdown first sets every service NOT_SERVING and ends the Watch streams
   (UNAVAILABLE), before the GOAWAY. Before start (SWIFTGRPC_E_WRONG_STATE after, unless it
   was enabled already: idempotent); SWIFTGRPC_E_ALREADY_EXISTS if a host registered either
   method. */
int swiftgrpc_server_enable_health(swiftgrpc_server server);

/* Method (added in 0.8.0). Sets the health status of `service` (UTF-8, copied; "" is the server
   as a whole) to SWIFTGRPC_HEALTH_*, and tells its watchers. Thread-safe, any time after
   swiftgrpc_server_enable_health (SWIFTGRPC_E_WRONG_STATE before it, and once a shutdown began:
   statuses then stay NOT_SERVING); SWIFTGRPC_E_INVALID_ARGUMENT for a status outside 0-3. */
int swiftgrpc_server_set_health(swiftgrpc_server server, const char *service, int status);

/* Method. Binds and listens on `address`, before start. Forms: "host:port", "[ipv6]:port",
   "unix:/path" (an existing socket file is replaced), "unix-abstract:name". Port 0 picks a free
   port; the bound port is stored in *bound_port (may be NULL; 0 for Unix sockets). Connections
   are accepted once the server starts. */
int swiftgrpc_server_listen(swiftgrpc_server server, const char *address, int *bound_port);

/* Method. Starts accepting connections and serving calls. Once only. */
int swiftgrpc_server_start(swiftgrpc_server server);

/* Method. Graceful shutdown: stops accepting, tells every connection (HTTP/2 GOAWAY, in two
   steps as gRPC C-core: GOAWAY with the largest stream id and a PING, then, once the PING is
   acknowledged or a second passed, GOAWAY with the last stream processed) to open no
   new streams, waits up to `grace_ms` milliseconds for calls in flight to finish, then fails
   the rest: their clients get UNAVAILABLE, their hosts SWIFTGRPC_EVENT_CANCELLED. Returns when
   every call has ended and every connection is closed. Idempotent. Blocks the calling thread;
   from a loop thread it returns SWIFTGRPC_E_RECURSIVE_CALL. */
int swiftgrpc_server_shutdown(swiftgrpc_server server, int64_t grace_ms);

/* Method (added in 0.6.0). Begins the graceful shutdown of swiftgrpc_server_shutdown and returns
   at once (from any thread, a loop thread's host fn included): the server stops accepting, every
   connection gets GOAWAY, calls still running after `grace_ms` milliseconds fail (grace_ms <= 0:
   at once). When every call has ended and every connection is closed, one
   SWIFTGRPC_EVENT_SERVER_SHUTDOWN carrying `tag` is pushed onto `queue` (of the server's
   runtime; 0: no event), as gRPC C-core's grpc_server_shutdown_and_notify. Called again, or
   during a blocking shutdown, it adds its event to the same shutdown (its grace is not used);
   on a stopped server the event is pushed at once. swiftgrpc_server_destroy after the event
   does not block. */
int swiftgrpc_server_shutdown_notify(swiftgrpc_server server, int64_t grace_ms,
                                     swiftgrpc_queue queue, void *tag);

/* Destructor. Shuts down with no grace if still running, then invalidates the handle. No host fn
   of this server runs after it returns. Accepts 0 and already-destroyed handles. From a loop
   thread it returns SWIFTGRPC_E_RECURSIVE_CALL. */
int swiftgrpc_server_destroy(swiftgrpc_server server);

/* Method (diagnostics, added in 0.3.0). Calls the host of the registered UNARY `method` of a
   running server `iterations` times in process, without a connection, one after the other: each
   time a CALL event carrying `message` (`message_len` bytes, copied once; peer "inproc", no
   metadata, no deadline) goes to the method's host fn or queue exactly as for a remote call, and
   the next starts once the loop has applied the host's swiftgrpc_host_complete (its response
   goes nowhere). Stores the nanoseconds all round trips took in *out_elapsed_ns: the cost of the
   host boundary alone. Waits up to `timeout_ms` (< 0: forever) for the host; then the round trip
   in flight is abandoned (its host gets SWIFTGRPC_EVENT_CANCELLED, DEADLINE_EXCEEDED) and
   SWIFTGRPC_E_TIMEOUT returned. Blocks the calling thread; from a loop thread it returns
   SWIFTGRPC_E_RECURSIVE_CALL. SWIFTGRPC_E_WRONG_STATE if the server is not running, the method is
   not unary or its queue was shut down; SWIFTGRPC_E_INVALID_ARGUMENT for an unregistered method
   or 0 iterations. */
int swiftgrpc_server_probe(swiftgrpc_server server, const char *method, const void *message,
                           size_t message_len, uint64_t iterations, int64_t timeout_ms,
                           int64_t *out_elapsed_ns);

/* ------------------------------------------------------------------------------------------ */
/* Answering calls (any thread, never blocks on I/O)                                          */
/* ------------------------------------------------------------------------------------------ */
/* Every answer takes the server and the call's token. Errors common to all of them:
   SWIFTGRPC_E_BAD_HANDLE, SWIFTGRPC_E_UNKNOWN_TOKEN, SWIFTGRPC_E_TOKEN_CLOSED (call ended or
   cancelled), SWIFTGRPC_E_ALREADY_COMPLETED (after swiftgrpc_host_complete). */

/* Method (added in 0.6.0). Binds the host's `tag` to the call, like the tags of gRPC C-core's
   operations: every later event of the call carries it in `tag` (the CALL event carries NULL).
   For a host fn, events delivered after this returns; for a queue, events taken after it
   returns, even those queued before. A host that sets the tag on the thread that takes the
   call's events finds every later event's call without a table. May be called again (the new
   tag replaces the old) until the call ends or is completed; after that it returns
   SWIFTGRPC_E_TOKEN_CLOSED, and a CANCELLED already on its way carries the tag it had (NULL if
   none): a host whose set_tag was refused treats the call as ended and drops untagged events.
   The library never dereferences `tag`. */
int swiftgrpc_call_set_tag(swiftgrpc_server server, uint64_t token, void *tag);

/* Method. Sends response headers with `count` entries of custom initial metadata now (otherwise
   they go with the first message or the status). Once per call (SWIFTGRPC_E_WRONG_STATE). */
int swiftgrpc_call_send_initial_metadata(swiftgrpc_server server, uint64_t token,
                                         const swiftgrpc_metadata *metadata, size_t count);

/* Method. Sends one response message of `len` bytes (copied). The host gets
   SWIFTGRPC_EVENT_SEND_DONE once HTTP/2 flow control let the message out (or
   SWIFTGRPC_EVENT_CANCELLED if the call ends first). Up to SWIFTGRPC_MAX_OUTSTANDING_SENDS sends
   may be outstanding (0.5.0; before, one), each answered by its SEND_DONE in order; one more is
   refused with SWIFTGRPC_E_WRONG_STATE. This is the send back-pressure: a client that reads
   slowly paces the host, and the library holds at most that many unsent messages of a call. A
   host streaming small messages keeps a few sends outstanding to avoid a round trip per
   message.
   swiftgrpc_host_complete may follow without waiting. For a unary or client-streaming method at
   most one message may be sent (SWIFTGRPC_E_WRONG_STATE). SWIFTGRPC_E_TOO_LARGE above
   SWIFTGRPC_OPT_MAX_SEND_MESSAGE_SIZE. */
int swiftgrpc_call_send_message(swiftgrpc_server server, uint64_t token, const void *data,
                                size_t len);
#define SWIFTGRPC_MAX_OUTSTANDING_SENDS 64

/* Method (added in 0.8.0). swiftgrpc_call_send_message with `flags` (SWIFTGRPC_WRITE_*):
   SWIFTGRPC_WRITE_NO_COMPRESS sends this message uncompressed. SWIFTGRPC_E_INVALID_ARGUMENT
   for unknown flags. */
int swiftgrpc_call_send_message_v2(swiftgrpc_server server, uint64_t token, const void *data,
                                   size_t len, uint32_t flags);

/* Method (added in 0.8.0). Compresses the call's response messages in `algorithm`
   (SWIFTGRPC_COMPRESS_*) instead of the server's default, if the client accepts it (else they go
   uncompressed), as grpcio's context.set_compression. Before the response headers are sent
   (before the first message or initial metadata; SWIFTGRPC_E_WRONG_STATE after);
   SWIFTGRPC_E_INVALID_ARGUMENT for an unknown algorithm. */
int swiftgrpc_call_set_compression(swiftgrpc_server server, uint64_t token, int algorithm);

/* Method. Asks for the next request message of a CLIENT_STREAMING or BIDI_STREAMING call: the
   host is sent exactly one SWIFTGRPC_EVENT_MESSAGE, or SWIFTGRPC_EVENT_HALF_CLOSE at the end (or
   SWIFTGRPC_EVENT_CANCELLED if the call ends). Until asked, the library reads no further than
   the HTTP/2 flow-control window: this is the back-pressure. One read outstanding at a time
   (SWIFTGRPC_E_WRONG_STATE for a second, for a unary call, or after half-close). */
int swiftgrpc_call_read(swiftgrpc_server server, uint64_t token);

/* Method. Completes the call: sends `message` first if it is not NULL (`message_len` bytes,
   possibly 0: an empty message), then the status `status_code` with `status_message` (UTF-8,
   may be NULL) and `trailer_count` entries of trailing metadata. At most once per token; the
   token is closed afterwards. SWIFTGRPC_E_INVALID_ARGUMENT for a status code outside 0-16. */
int swiftgrpc_host_complete(swiftgrpc_server server, uint64_t token, const void *message,
                            size_t message_len, int status_code, const char *status_message,
                            const swiftgrpc_metadata *trailers, size_t trailer_count);

/* ------------------------------------------------------------------------------------------ */
/* Channels (client side)                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* One channel argument for swiftgrpc_channel_create: `key` is a SWIFTGRPC_CHANNEL_* constant;
   integer arguments use `int_value`, string arguments `string_value` (UTF-8, copied). */
typedef struct swiftgrpc_channel_arg {
  int32_t key;
  int64_t int_value;
  const char *string_value;
} swiftgrpc_channel_arg;

/* Minimum time one connection attempt may take (TCP connect + HTTP/2 SETTINGS); default 20000. */
#define SWIFTGRPC_CHANNEL_CONNECT_TIMEOUT_MS 1
/* Reconnect backoff (gRPC connection-backoff: x1.6 per failure, +-20% jitter); default 1000. */
#define SWIFTGRPC_CHANNEL_INITIAL_BACKOFF_MS 2
/* Upper bound of the reconnect backoff; default 120000. */
#define SWIFTGRPC_CHANNEL_MAX_BACKOFF_MS 3
/* Interval of keepalive PINGs on a connection; default 0 (off). */
#define SWIFTGRPC_CHANNEL_KEEPALIVE_TIME_MS 4
/* A PING unanswered this long closes the connection (its calls fail UNAVAILABLE); default 20000.
   (0.8.0) A server's GOAWAY ENHANCE_YOUR_CALM "too_many_pings" doubles the channel's keepalive
   time, as gRPC clients do (gRFC A8). */
#define SWIFTGRPC_CHANNEL_KEEPALIVE_TIMEOUT_MS 5
/* 1: send keepalive PINGs also when no call is open; default 0. */
#define SWIFTGRPC_CHANNEL_KEEPALIVE_PERMIT_WITHOUT_CALLS 6
/* Largest request message; larger sends return SWIFTGRPC_E_TOO_LARGE. Default 2^32 - 1. */
#define SWIFTGRPC_CHANNEL_MAX_SEND_MESSAGE_SIZE 7
/* Largest response message; larger ends the call with RESOURCE_EXHAUSTED. Default 4 MiB. */
#define SWIFTGRPC_CHANNEL_MAX_RECV_MESSAGE_SIZE 8
/* Deadline of calls started with SWIFTGRPC_DEADLINE_DEFAULT; default 0 (none). */
#define SWIFTGRPC_CHANNEL_DEFAULT_TIMEOUT_MS 9
/* (string) user-agent header; default "swiftgrpc/<version>". */
#define SWIFTGRPC_CHANNEL_USER_AGENT 10
/* Load balancing over the resolved addresses: SWIFTGRPC_LB_PICK_FIRST (default: the first
   address that connects) or SWIFTGRPC_LB_ROUND_ROBIN (connect to all, rotate calls). */
#define SWIFTGRPC_CHANNEL_LB_POLICY 11
/* (string) :authority of calls; default derived from the target ("localhost" for unix:). */
#define SWIFTGRPC_CHANNEL_AUTHORITY 12
/* (0.4.0) Largest decoded response header block (headers or trailers) in bytes, counted as
   SWIFTGRPC_OPT_MAX_METADATA_SIZE; larger ends the call with RESOURCE_EXHAUSTED. Default 16384,
   at least 1024. */
#define SWIFTGRPC_CHANNEL_MAX_METADATA_SIZE 13
/* (0.8.0) SWIFTGRPC_COMPRESS_* algorithm requests are compressed in, unless a call chooses
   another with a SWIFTGRPC_CALL_COMPRESS_* flag; default SWIFTGRPC_COMPRESS_NONE. */
#define SWIFTGRPC_CHANNEL_DEFAULT_COMPRESSION 14
/* (0.8.0) A DNS target is resolved again when a connection is lost or told to go away (GOAWAY)
   and after a failed connection pass: new addresses are joined, vanished ones drained (their
   calls finish). At most once per this many milliseconds (later requests wait out the rest);
   default 30000, gRPC C-core's (grpc.dns_min_time_between_resolutions_ms). */
#define SWIFTGRPC_CHANNEL_MIN_TIME_BETWEEN_RESOLUTIONS_MS 15

#define SWIFTGRPC_LB_PICK_FIRST 0
#define SWIFTGRPC_LB_ROUND_ROBIN 1

/* Connectivity states (gRPC's). */
#define SWIFTGRPC_STATE_IDLE 0
#define SWIFTGRPC_STATE_CONNECTING 1
#define SWIFTGRPC_STATE_READY 2
#define SWIFTGRPC_STATE_TRANSIENT_FAILURE 3
#define SWIFTGRPC_STATE_SHUTDOWN 4

/* Constructor. Creates a channel to `target` on `runtime` and stores its handle in *out. It starts
   IDLE and connects on the first call (or swiftgrpc_channel_state with try_to_connect).
   Targets: "host:port" or "dns:///host:port" (resolved with getaddrinfo off the loops; every
   address it returns is a candidate), "ipv4:1.2.3.4:50051[,5.6.7.8:50051...]",
   "ipv6:[::1]:50051[,...]", "unix:/path" or "unix:///path", "unix-abstract:name".
   `args` (may be NULL when `arg_count` is 0) is copied.
   SWIFTGRPC_E_INVALID_ARGUMENT for a malformed target, an unknown key or a value out of range. */
int swiftgrpc_channel_create(swiftgrpc_runtime runtime, const char *target,
                             const swiftgrpc_channel_arg *args, size_t arg_count,
                             swiftgrpc_channel *out);

/* Method. Stores the connectivity state (SWIFTGRPC_STATE_*) in *out_state; if it is IDLE and
   `try_to_connect` is non-zero, starts connecting. */
int swiftgrpc_channel_state(swiftgrpc_channel channel, int try_to_connect, int *out_state);

/* Method. Waits up to `timeout_ms` (< 0: forever) for the state to differ from `last_state`, and
   stores the new state in *out_state. SWIFTGRPC_E_TIMEOUT if it did not change. Blocks the
   calling thread; from a loop thread it returns SWIFTGRPC_E_RECURSIVE_CALL. */
int swiftgrpc_channel_wait_state_change(swiftgrpc_channel channel, int last_state,
                                        int64_t timeout_ms, int *out_state);

/* Method. Graceful close: new calls are refused (SWIFTGRPC_E_WRONG_STATE); calls in flight run
   to their end; then the connections close and the state becomes SHUTDOWN. Does not block.
   Idempotent. The handle stays valid until swiftgrpc_channel_destroy. */
int swiftgrpc_channel_close(swiftgrpc_channel channel);

/* Destructor. Ends every call still in flight with CANCELLED (each gets its STATUS event; the
   servers see RST_STREAM), closes the connections and invalidates the handle. No event of this
   channel is delivered after it returns. Accepts 0 and already-destroyed handles. From a loop
   thread (inside a callback) it returns SWIFTGRPC_E_RECURSIVE_CALL. */
int swiftgrpc_channel_destroy(swiftgrpc_channel channel);

/* ------------------------------------------------------------------------------------------ */
/* TLS (0.5.0)                                                                                */
/* ------------------------------------------------------------------------------------------ */
/* TLS runs on OpenSSL under HTTP/2: TLS 1.2 and 1.3 only, ALPN "h2" required (a peer that does
   not negotiate it is refused), no renegotiation, no compression. The handshake runs on the
   connection's loop without blocking; on a server it must finish, with the HTTP/2 preface,
   within SWIFTGRPC_OPT_HANDSHAKE_TIMEOUT_MS. A failed handshake ends the connection: a client's
   calls fail with UNAVAILABLE and a message naming the cause ("certificate verify failed:
   certificate has expired", "hostname mismatch", "the peer did not negotiate HTTP/2 ...").
   Credentials are handles of their own, not tied to a runtime; a server or channel keeps the
   credentials it uses alive, so destroying the handle early is allowed. All functions here are
   thread-safe. PEM texts are (pointer, length) and copied. */

typedef uint64_t swiftgrpc_server_credentials;
typedef uint64_t swiftgrpc_channel_credentials;

/* A certificate chain (leaf first, then intermediates) and its private key, both PEM. */
typedef struct swiftgrpc_tls_identity {
  const char *certificate_chain;
  size_t certificate_chain_len;
  const char *private_key;
  size_t private_key_len;
} swiftgrpc_tls_identity;

/* How a TLS server treats client certificates. */
#define SWIFTGRPC_CLIENT_AUTH_NONE 0    /* not asked for */
#define SWIFTGRPC_CLIENT_AUTH_REQUEST 1 /* asked for; one that is sent must verify */
#define SWIFTGRPC_CLIENT_AUTH_REQUIRE 2 /* required and verified (mutual TLS) */

/* Constructor. Server credentials: `count` identities (1 to 64; the first serves by default,
   another when the client's SNI names a host its certificate covers), the roots client
   certificates must chain to (`client_roots`, PEM; may be NULL with 0 when `client_auth` is
   NONE) and `client_auth` (SWIFTGRPC_CLIENT_AUTH_*). SWIFTGRPC_E_INVALID_ARGUMENT names what is
   wrong with a certificate or key (unparsable, key not matching the certificate). */
int swiftgrpc_server_credentials_create(const swiftgrpc_tls_identity *identities, size_t count,
                                        const char *client_roots, size_t client_roots_len,
                                        int client_auth, swiftgrpc_server_credentials *out);

/* Method. Replaces the identities and client settings of `credentials`: connections accepted
   afterwards use the new ones, connections already open keep theirs (certificate rotation
   without a restart). On error nothing changes. */
int swiftgrpc_server_credentials_update(swiftgrpc_server_credentials credentials,
                                        const swiftgrpc_tls_identity *identities, size_t count,
                                        const char *client_roots, size_t client_roots_len,
                                        int client_auth);

/* Method. A fetcher (gRPC's certificate configuration fetcher): `fn(event, user_data)` is
   called on a loop thread before the TLS handshake of every connection accepted with these
   credentials (event type SWIFTGRPC_EVENT_CREDENTIALS_FETCH, `token` the credentials handle);
   it may call swiftgrpc_server_credentials_update, and that connection already gets the new
   identities. It must return promptly (it holds up the handshake). NULL removes it. */
int swiftgrpc_server_credentials_set_fetcher(swiftgrpc_server_credentials credentials,
                                             swiftgrpc_host_fn fn, void *user_data);

/* Destructor. Accepts 0 and already-destroyed handles. */
int swiftgrpc_server_credentials_destroy(swiftgrpc_server_credentials credentials);

/* Method. Like swiftgrpc_server_listen, but the connections on `address` are TLS with
   `credentials`. Calls on them carry the auth properties of the connection (event `auth`). */
int swiftgrpc_server_listen_secure(swiftgrpc_server server, const char *address,
                                   swiftgrpc_server_credentials credentials, int *bound_port);

/* Constructor. Channel credentials: the roots the server's certificate must chain to (`roots`,
   PEM; NULL with 0: the system's trust store), the client's own identity for mutual TLS
   (`identity`, may be NULL), and the name the server's certificate must cover and the client
   sends as SNI (`server_name_override`, may be NULL: the target's host; an IP address is
   checked against the certificate's IP addresses and sent without SNI). As in gRPC C-core, a
   channel with an override also uses it as its default :authority (SWIFTGRPC_CHANNEL_AUTHORITY
   still wins). */
int swiftgrpc_channel_credentials_create(const char *roots, size_t roots_len,
                                         const swiftgrpc_tls_identity *identity,
                                         const char *server_name_override,
                                         swiftgrpc_channel_credentials *out);

/* Destructor. Accepts 0 and already-destroyed handles. */
int swiftgrpc_channel_credentials_destroy(swiftgrpc_channel_credentials credentials);

/* Constructor. Like swiftgrpc_channel_create, but the channel's connections are TLS with
   `credentials` (and its calls use the "https" scheme). */
int swiftgrpc_channel_create_secure(swiftgrpc_runtime runtime, const char *target,
                                    swiftgrpc_channel_credentials credentials,
                                    const swiftgrpc_channel_arg *args, size_t arg_count,
                                    swiftgrpc_channel *out);

/* Call credentials: metadata added to calls to authenticate them, fixed (an access token) or
   asked of a host plugin per call. They are sent only over TLS: a call that carries them on a
   plaintext channel ends with UNAUTHENTICATED ("Established channel does not have a sufficient
   security level to transfer call credential.", as gRPC C-core says). A call waits for its
   plugins' answers before it goes out (its deadline runs meanwhile); a plugin that answers with
   an error ends it with UNAVAILABLE "Getting metadata from plugin failed with error: <message>".
   Attach them to a channel (swiftgrpc_channel_credentials_compose) or to one call
   (swiftgrpc_client_call_start_v2). */
typedef uint64_t swiftgrpc_call_credentials;

/* Constructor. "authorization: Bearer <token>" on every call; `token` printable ASCII. */
int swiftgrpc_call_credentials_create_access_token(const char *token,
                                                   swiftgrpc_call_credentials *out);

/* Constructor. A plugin: for each call, a SWIFTGRPC_EVENT_CREDENTIALS_REQUEST event goes to
   `queue` if it is not 0 (then `fn` must be NULL), else to `fn(event, user_data)` on the call's
   loop thread (return promptly: answer later, from any thread). */
int swiftgrpc_call_credentials_create_plugin(swiftgrpc_queue queue, swiftgrpc_host_fn fn,
                                             void *user_data, swiftgrpc_call_credentials *out);

/* Method. Answers a credentials request: with `status_code` 0, `count` entries of metadata for
   the call (validated: SWIFTGRPC_E_INVALID_METADATA changes nothing, the request stays open);
   otherwise the call fails with UNAVAILABLE and `status_message` (may be NULL). Once per request:
   SWIFTGRPC_E_TOKEN_CLOSED after that or when the call has ended, SWIFTGRPC_E_UNKNOWN_TOKEN for a
   request never issued. */
int swiftgrpc_call_credentials_answer(uint64_t request, const swiftgrpc_metadata *metadata,
                                      size_t count, int status_code, const char *status_message);

/* Constructor. `a`, then `b`: both add their metadata. */
int swiftgrpc_call_credentials_compose(swiftgrpc_call_credentials a, swiftgrpc_call_credentials b,
                                       swiftgrpc_call_credentials *out);

/* Destructor. Accepts 0 and already-destroyed handles; credentials in use stay alive. */
int swiftgrpc_call_credentials_destroy(swiftgrpc_call_credentials credentials);

/* Constructor. Channel credentials whose every call also carries `call_credentials` (gRPC's
   composite channel credentials). */
int swiftgrpc_channel_credentials_compose(swiftgrpc_channel_credentials channel_credentials,
                                          swiftgrpc_call_credentials call_credentials,
                                          swiftgrpc_channel_credentials *out);

/* ------------------------------------------------------------------------------------------ */
/* Client calls (any thread, never block on I/O)                                              */
/* ------------------------------------------------------------------------------------------ */
/* A call's events go either to a function (push: `fn(event, tag)` on the channel's loop thread;
   it must return promptly, may call the swiftgrpc_client_* functions, and the event is borrowed
   until it returns) or to a queue (pull: swiftgrpc_queue_next returns them, owned by the
   caller). Either way each event carries the call handle (`token`), the channel and `tag`.
   Every operation gets exactly one event, whatever happens (cancel, deadline, connection loss,
   channel destroy):
     swiftgrpc_client_call_start   -> one CLIENT_STATUS, always the last event of the call
     swiftgrpc_client_send_message -> one CLIENT_SEND_DONE
     swiftgrpc_client_read         -> one CLIENT_MESSAGE
   Half-close and cancel are requests without events. A call on a shut-down queue is cancelled
   and its events are dropped.
   Errors common to the operations: SWIFTGRPC_E_BAD_HANDLE (channel, or a call this channel never
   issued), SWIFTGRPC_E_TOKEN_CLOSED (the call's STATUS was delivered), SWIFTGRPC_E_WRONG_STATE. */

/* GOAWAY (0.8.0): calls in flight on a connection the server sends GOAWAY finish there; new
   calls go to another connection. A unary or server-streaming call the server refused without
   processing it (REFUSED_STREAM, or above the GOAWAY's last stream id) goes again on another
   connection, transparently (gRFC A6), up to 5 times; a streaming request refused so fails
   UNAVAILABLE (it was not processed: the host may retry it). */

/* Call flags. */
/* Wait for the channel to become READY instead of failing with UNAVAILABLE while it is in
   TRANSIENT_FAILURE; the deadline still applies. */
#define SWIFTGRPC_CALL_WAIT_FOR_READY 1u
/* (0.8.0) At most one of these: the call's requests are compressed so, instead of the
   channel's SWIFTGRPC_CHANNEL_DEFAULT_COMPRESSION. */
#define SWIFTGRPC_CALL_COMPRESS_NONE 2u
#define SWIFTGRPC_CALL_COMPRESS_DEFLATE 4u
#define SWIFTGRPC_CALL_COMPRESS_GZIP 8u

/* Deadlines are absolute swiftgrpc_now_ns() values; these two are special. */
#define SWIFTGRPC_DEADLINE_DEFAULT 0          /* the channel's default timeout, if any */
#define SWIFTGRPC_DEADLINE_NONE INT64_MAX

/* Constructor. Starts a call of `kind` to `method` ("/pkg.Service/Method") with `metadata_count`
   entries of request metadata, and stores its handle in *out.
   UNARY and SERVER_STREAMING: `message` (`message_len` bytes; NULL allowed for 0) is the request;
   the call half-closes by itself. CLIENT_STREAMING and BIDI_STREAMING: `message` must be NULL
   and 0; send with swiftgrpc_client_send_message, end with swiftgrpc_client_half_close.
   `deadline_ns`: absolute, or SWIFTGRPC_DEADLINE_DEFAULT / SWIFTGRPC_DEADLINE_NONE; a deadline
   already past ends the call with DEADLINE_EXCEEDED (as an event). `flags`: SWIFTGRPC_CALL_*.
   Events go to `queue` if it is not 0 (then `fn` must be NULL), else to `fn` (required then).
   SWIFTGRPC_E_WRONG_STATE if the channel was closed; SWIFTGRPC_E_TOO_LARGE for a request above
   SWIFTGRPC_CHANNEL_MAX_SEND_MESSAGE_SIZE. */
int swiftgrpc_client_call_start(swiftgrpc_channel channel, const char *method, int kind,
                                const swiftgrpc_metadata *metadata, size_t metadata_count,
                                const void *message, size_t message_len, int64_t deadline_ns,
                                uint32_t flags, swiftgrpc_queue queue, swiftgrpc_host_fn fn,
                                void *tag, swiftgrpc_call *out);

/* The arguments of swiftgrpc_client_call_start_v2 (0.5.0): those of swiftgrpc_client_call_start,
   plus call credentials. Set `struct_size` to sizeof(swiftgrpc_call_args): fields appended in
   later versions are read only when the size says they are there. */
typedef struct swiftgrpc_call_args {
  uint32_t struct_size;
  const char *method;
  int kind;
  const swiftgrpc_metadata *metadata;
  size_t metadata_count;
  const void *message;
  size_t message_len;
  int64_t deadline_ns;
  uint32_t flags;
  swiftgrpc_queue queue;
  swiftgrpc_host_fn fn;
  void *tag;
  swiftgrpc_call_credentials credentials; /* 0: none (the channel's own still apply) */
} swiftgrpc_call_args;

/* Constructor. swiftgrpc_client_call_start with its arguments in a struct, and call credentials
   for this call (added after the channel's). Same errors, and SWIFTGRPC_E_BAD_HANDLE for unknown
   credentials, SWIFTGRPC_E_INVALID_ARGUMENT for a struct_size below the struct's. */
int swiftgrpc_client_call_start_v2(swiftgrpc_channel channel, const swiftgrpc_call_args *args,
                                   swiftgrpc_call *out);

/* Method. Sends one request message (`len` bytes, copied) on a CLIENT_STREAMING or
   BIDI_STREAMING call. Up to SWIFTGRPC_MAX_OUTSTANDING_SENDS sends may be outstanding (0.5.0;
   before, one), each answered by its CLIENT_SEND_DONE in order (SWIFTGRPC_E_WRONG_STATE for one
   more, and after half-close). This is the send-side back-pressure: SEND_DONE comes when HTTP/2
   flow control let the message out. */
int swiftgrpc_client_send_message(swiftgrpc_channel channel, swiftgrpc_call call, const void *data,
                                  size_t len);

/* Method (added in 0.8.0). swiftgrpc_client_send_message with `flags` (SWIFTGRPC_WRITE_*):
   SWIFTGRPC_WRITE_NO_COMPRESS sends this message uncompressed. SWIFTGRPC_E_INVALID_ARGUMENT
   for unknown flags. */
int swiftgrpc_client_send_message_v2(swiftgrpc_channel channel, swiftgrpc_call call,
                                     const void *data, size_t len, uint32_t flags);

/* Method. Half-closes a CLIENT_STREAMING or BIDI_STREAMING call: no more request messages. The
   end of the stream goes out after an outstanding send. SWIFTGRPC_E_WRONG_STATE if repeated. */
int swiftgrpc_client_half_close(swiftgrpc_channel channel, swiftgrpc_call call);

/* Method. Asks for the next response message of a SERVER_STREAMING or BIDI_STREAMING call: one
   CLIENT_MESSAGE event answers it. Up to SWIFTGRPC_MAX_OUTSTANDING_READS reads may be
   outstanding at once (0.5.0; before, one): they are answered in order, so a host that keeps
   several asked gets the messages already received without a round trip through the loop for
   each (ask again as each one is consumed); one more is refused with SWIFTGRPC_E_WRONG_STATE.
   If the call ends, every outstanding read still gets its CLIENT_MESSAGE (has_message 0) before
   the STATUS. Receive back-pressure: the library buffers at most what the HTTP/2 window lets in
   (1 MiB per call) beyond the messages the host has asked for. Read until a CLIENT_MESSAGE reports the end (has_message 0): the
   server's status is delivered (CLIENT_STATUS) only after that, so that no message is lost.
   A host that stops reading early cancels the call. */
int swiftgrpc_client_read(swiftgrpc_channel channel, swiftgrpc_call call);
#define SWIFTGRPC_MAX_OUTSTANDING_READS 256

/* Method. Cancels the call: the server sees RST_STREAM(CANCEL); the host gets CLIENT_STATUS with
   CANCELLED (after the events of outstanding operations). A second cancel is a no-op. */
int swiftgrpc_client_cancel(swiftgrpc_channel channel, swiftgrpc_call call);


#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SWIFTGRPC_H */
